-- One row per /token request (SPEC §6), each chained to the previous record of its writer. Portable types: ids and lists as text (lists are JSON
-- arrays), times as integers (time_us in microseconds, expiry and revocation in seconds).
CREATE TABLE exchanges (
    id TEXT PRIMARY KEY NOT NULL,
    time_us BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    reason TEXT NOT NULL,
    client_id TEXT,
    subject_issuer TEXT,
    subject TEXT,
    subject_jti TEXT,
    actor_issuer TEXT,
    actor TEXT,
    requested_audiences TEXT NOT NULL,
    requested_resources TEXT NOT NULL,
    requested_scopes TEXT NOT NULL,
    granted_audiences TEXT NOT NULL,
    granted_scopes TEXT NOT NULL,
    rule TEXT,
    token_jti TEXT,
    expires_at BIGINT,
    revoked_at BIGINT,
    remote_addr TEXT,
    user_agent TEXT,
    request_id TEXT NOT NULL,
    duration_us BIGINT NOT NULL,
    chain TEXT NOT NULL,
    seq BIGINT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX exchanges_by_time ON exchanges (time_us, id);
CREATE INDEX exchanges_by_subject ON exchanges (subject, time_us, id);
CREATE INDEX exchanges_by_client ON exchanges (client_id, time_us, id);
CREATE INDEX exchanges_by_subject_jti ON exchanges (subject_jti, time_us, id);
CREATE UNIQUE INDEX exchanges_by_token_jti ON exchanges (token_jti);
CREATE UNIQUE INDEX exchanges_by_chain_seq ON exchanges (chain, seq);

-- One row per writer chain: its head (last record written) and its anchor (the last record
-- pruned by retention, -1 and zeros when none), so that removal at either end is detected.
CREATE TABLE audit_chains (
    chain TEXT PRIMARY KEY NOT NULL,
    created_us BIGINT NOT NULL,
    head_seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    anchor_seq BIGINT NOT NULL,
    anchor_hash TEXT NOT NULL
);
