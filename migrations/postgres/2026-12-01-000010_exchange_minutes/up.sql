-- The console's overview (SPEC §11): exchanges counted per minute by outcome, error, client and
-- audience, kept up by the audit writer in the transaction of the records themselves, so the
-- overview reads a day of minutes, never a day of records.
CREATE TABLE exchange_minutes (
    minute BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT NOT NULL,
    client_id TEXT NOT NULL,
    audience TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (minute, outcome, error, client_id, audience)
);
