-- The console's overview (SPEC §11): exchanges counted as they are recorded, by the audit writer
-- in the transaction of the records themselves, so the overview reads a day of counts, never a
-- day of records. Each writer (its chain) raises rows of its own: instances on one database
-- never wait on each other's counts.
-- Per minute, granted and denied: the charts.
CREATE TABLE exchange_minutes (
    minute BIGINT NOT NULL,
    chain TEXT NOT NULL,
    granted BIGINT NOT NULL,
    denied BIGINT NOT NULL,
    PRIMARY KEY (minute, chain)
);
-- Per ten minutes, by outcome, error, client and audience: the largest of each.
CREATE TABLE exchange_tallies (
    bucket BIGINT NOT NULL,
    chain TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT NOT NULL,
    client_id TEXT NOT NULL,
    audience TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (bucket, chain, outcome, error, client_id, audience)
);
