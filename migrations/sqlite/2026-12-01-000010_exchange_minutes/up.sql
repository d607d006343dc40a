-- The console's overview (SPEC §11): exchanges counted per minute by outcome, error, client and
-- audience, kept up by the audit writer in the transaction of the records themselves, so the
-- overview reads a day of minutes, never a day of records. Each writer (its chain) raises rows of
-- its own: instances on one database never wait on each other's counts.
CREATE TABLE exchange_minutes (
    minute BIGINT NOT NULL,
    chain TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT NOT NULL,
    client_id TEXT NOT NULL,
    audience TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (minute, chain, outcome, error, client_id, audience)
);
