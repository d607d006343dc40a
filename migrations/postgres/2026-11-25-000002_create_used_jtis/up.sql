-- Single-use identifiers (DPoP proofs, client assertions): a replay is a unique violation,
-- whichever instance it reaches. Rows are pruned once expired.
CREATE TABLE used_jtis (
    kind TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, jti)
);
CREATE INDEX used_jtis_by_expiry ON used_jtis (expires_at);
