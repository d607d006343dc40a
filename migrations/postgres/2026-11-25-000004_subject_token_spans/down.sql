CREATE INDEX exchanges_by_subject_jti ON exchanges (subject_jti, time_us, id);
DROP TRIGGER exchanges_subject_token_spans ON exchanges;
DROP FUNCTION exchanges_subject_token_spans();
DROP TABLE subject_tokens;
ALTER TABLE exchanges DROP COLUMN subject_until_us;
