-- Readiness probes (/readyz): after a failed audit commit, each writer proves the store takes a
-- write of a batch's size again by rewriting its row here. One row per writer chain.
CREATE TABLE store_probes (
    chain TEXT PRIMARY KEY NOT NULL,
    probed_us BIGINT NOT NULL,
    padding TEXT NOT NULL
);
