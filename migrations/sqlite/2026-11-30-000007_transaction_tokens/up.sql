-- Transaction tokens (SPEC §8).
--
-- `exchange_kinds`: what a record says beyond an access-token exchange, kept beside it so that
-- the records of access tokens (nearly all) stay as narrow as before: the kind of token asked
-- for (`token_type`, the RFC 8693 type's last part, e.g. `txn_token`) and the transaction
-- (`txn`) of the Txn-Token minted or presented for replacement. A record without a row here is
-- of an access-token request. Rows go with their record (by id) when retention prunes. Two
-- B-trees per row: the key (the table itself, without a rowid) and the transactions.
CREATE TABLE exchange_kinds (
    id TEXT PRIMARY KEY NOT NULL,
    token_type TEXT NOT NULL,
    txn TEXT
) WITHOUT ROWID;
CREATE INDEX exchange_kinds_by_txn ON exchange_kinds (txn) WHERE txn IS NOT NULL;

-- How many times the Txn-Tokens of a transaction were replaced, bounded by
-- `transaction_tokens.max_replacements`; a row goes once no Txn-Token of it can be presented.
CREATE TABLE txn_replacements (
    txn TEXT PRIMARY KEY NOT NULL,
    count BIGINT NOT NULL,
    until_s BIGINT NOT NULL
);
CREATE INDEX txn_replacements_by_until ON txn_replacements (until_s);
