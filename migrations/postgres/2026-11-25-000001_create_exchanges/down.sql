DROP TABLE audit_chains;
DROP TABLE exchanges;
