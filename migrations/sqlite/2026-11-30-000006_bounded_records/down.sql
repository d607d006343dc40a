ALTER TABLE exchanges DROP COLUMN truncated;
ALTER TABLE exchanges DROP COLUMN count;
