-- Bounded against abuse (SPEC §6). `count`: how many requests a record stands for (1, or the
-- refused requests from one address in one minute that a summary record counts). `truncated`:
-- request values were cut to fit a record's bounds. Neither is hashed unless it differs from its
-- default, so records written before keep their hashes.
ALTER TABLE exchanges ADD COLUMN count BIGINT NOT NULL DEFAULT 1;
ALTER TABLE exchanges ADD COLUMN truncated BOOLEAN NOT NULL DEFAULT FALSE;
