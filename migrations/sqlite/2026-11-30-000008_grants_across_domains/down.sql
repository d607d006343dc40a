ALTER TABLE exchange_kinds DROP COLUMN grant_kind;
ALTER TABLE exchange_kinds DROP COLUMN grant_type;
