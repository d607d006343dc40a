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
) WITHOUT ROWID;
CREATE INDEX subject_tokens_by_until ON subject_tokens (until_us);

-- Record by record rather than GROUP BY: grouping sorts every token in memory (temp_store =
-- MEMORY), 800 MB for 10 million records; this keeps to the page cache, in about the same time.
INSERT INTO subject_tokens (subject_jti, subject_issuer, subject, first_us, until_us)
SELECT subject_jti, subject_issuer, subject, time_us, time_us + 1
FROM exchanges
WHERE subject_jti IS NOT NULL AND subject_issuer IS NOT NULL AND subject IS NOT NULL
ON CONFLICT DO UPDATE SET
    first_us = min(first_us, excluded.first_us),
    until_us = max(until_us, excluded.until_us);

-- In the database rather than in the writer, so that every writer keeps the spans whole,
-- whichever version it runs. The row is only rewritten when a record falls outside its span.
CREATE TRIGGER exchanges_subject_token_span AFTER INSERT ON exchanges
WHEN NEW.subject_jti IS NOT NULL AND NEW.subject_issuer IS NOT NULL AND NEW.subject IS NOT NULL
BEGIN
    INSERT INTO subject_tokens (subject_jti, subject_issuer, subject, first_us, until_us)
    VALUES (NEW.subject_jti, NEW.subject_issuer, NEW.subject, NEW.time_us,
            max(coalesce(NEW.subject_until_us, 0), NEW.time_us + 1))
    ON CONFLICT DO UPDATE SET
        first_us = min(first_us, excluded.first_us),
        until_us = max(until_us, excluded.until_us)
    WHERE excluded.first_us < first_us OR excluded.until_us > until_us;
END;

DROP INDEX exchanges_by_subject_jti;
