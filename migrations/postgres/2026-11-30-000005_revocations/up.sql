-- Revocation that holds (SPEC §6).
--
-- `actor_jti` is the `jti` of the actor token an exchange used, so that revoking a token this
-- server minted also revokes what was minted with it as actor token. Most records have none:
-- the index holds only those that do.
ALTER TABLE exchanges ADD COLUMN actor_jti TEXT;
CREATE INDEX exchanges_by_actor_jti ON exchanges (actor_jti) WHERE actor_jti IS NOT NULL;
-- Revoking a subject also revokes what was minted with its tokens as actor tokens.
CREATE INDEX exchanges_by_actor ON exchanges (actor, time_us) WHERE actor IS NOT NULL;

-- What a revocation names upstream, kept so that it stays revoked (sticky): a subject token by
-- its jti (`kind` 'subject_jti', `issuer` '' for any), or a subject of an issuer (`kind`
-- 'subject', `issuer` its id), whose tokens issued at or before `revoked_at` (seconds) are
-- refused. A row goes once nothing it could refuse would be accepted any more (`until_s`).
CREATE TABLE revocations (
    kind TEXT NOT NULL,
    issuer TEXT NOT NULL,
    value TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    until_s BIGINT NOT NULL,
    PRIMARY KEY (kind, issuer, value)
);
CREATE INDEX revocations_by_until ON revocations (until_s);
-- The audit writer looks up, for each batch, the revocations naming its tokens or subjects.
CREATE INDEX revocations_by_value ON revocations (value);
