-- The console (SPEC §11): every console action that changes something (a revocation) is
-- recorded with who did it, their role, what it named and what it came to.
CREATE TABLE console_actions (
    id TEXT PRIMARY KEY NOT NULL,
    time_us BIGINT NOT NULL,
    who TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE INDEX console_actions_by_time ON console_actions (time_us);
