DROP TABLE txn_replacements;
DROP TABLE exchange_kinds;
