-- Records by subject token (the `subject_jti` filter, revocation and lineage) without a
-- per-record index keyed by the token: each new record would write a random page of such an
-- index, the largest cost of an audit commit. Instead, one row per distinct subject token holds
-- the subject it belongs to and the span of time its records lie in; its records are then found
-- through `exchanges_by_subject` within that span. A token is used many times, its row written
-- once (and again only when a record falls outside the span).
--
-- `subject_until_us` on a record is the end of the span its token can have records in (when the
-- token stops being accepted: exp plus leeway); it is not part of the hashed content.
ALTER TABLE exchanges ADD COLUMN subject_until_us BIGINT;

CREATE TABLE subject_tokens (
    subject_jti TEXT NOT NULL,
    subject_issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    first_us BIGINT NOT NULL,
    until_us BIGINT NOT NULL,
    PRIMARY KEY (subject_jti, subject_issuer, subject)
);
CREATE INDEX subject_tokens_by_until ON subject_tokens (until_us);

INSERT INTO subject_tokens (subject_jti, subject_issuer, subject, first_us, until_us)
SELECT subject_jti, subject_issuer, subject, MIN(time_us), MAX(time_us) + 1
FROM exchanges
WHERE subject_jti IS NOT NULL AND subject_issuer IS NOT NULL AND subject IS NOT NULL
GROUP BY subject_jti, subject_issuer, subject;

-- In the database rather than in the writer, so that every instance keeps the spans whole,
-- whichever version it runs. Once per statement, over all its rows. New tokens are inserted in
-- key order, so instances inserting the same new tokens at once wait for each other instead of
-- deadlocking; a token already known is left alone (DO NOTHING takes no row lock, so instances
-- using the same token do not queue behind each other) unless a record falls outside its span.
CREATE FUNCTION exchanges_subject_token_spans() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO subject_tokens (subject_jti, subject_issuer, subject, first_us, until_us)
    SELECT subject_jti, subject_issuer, subject, MIN(time_us),
           MAX(GREATEST(COALESCE(subject_until_us, 0), time_us + 1))
    FROM new_records
    WHERE subject_jti IS NOT NULL AND subject_issuer IS NOT NULL AND subject IS NOT NULL
    GROUP BY subject_jti, subject_issuer, subject
    ORDER BY subject_jti, subject_issuer, subject
    ON CONFLICT DO NOTHING;
    UPDATE subject_tokens t
    SET first_us = LEAST(t.first_us, s.first_us), until_us = GREATEST(t.until_us, s.until_us)
    FROM (
        SELECT subject_jti, subject_issuer, subject, MIN(time_us) AS first_us,
               MAX(GREATEST(COALESCE(subject_until_us, 0), time_us + 1)) AS until_us
        FROM new_records
        WHERE subject_jti IS NOT NULL AND subject_issuer IS NOT NULL AND subject IS NOT NULL
        GROUP BY subject_jti, subject_issuer, subject
    ) s
    WHERE t.subject_jti = s.subject_jti AND t.subject_issuer = s.subject_issuer
      AND t.subject = s.subject AND (s.first_us < t.first_us OR s.until_us > t.until_us);
    RETURN NULL;
END
$$;

CREATE TRIGGER exchanges_subject_token_spans AFTER INSERT ON exchanges
REFERENCING NEW TABLE AS new_records
FOR EACH STATEMENT EXECUTE FUNCTION exchanges_subject_token_spans();

DROP INDEX exchanges_by_subject_jti;
