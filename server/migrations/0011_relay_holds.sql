-- Refusals that retrying cannot cure (issue 17, "Running"). When the backend refuses a relayed
-- request because of how this server or its institution is set up (the request key is not
-- registered, the signature does not verify against the registered key, or the request is not
-- of the backend's contract), the row stops being sent: `held_code` names the refusal, and the
-- row waits, with its payload, until an operator has fixed the cause and runs
-- `uketsuke-server relay resume`. Transient failures never set it.
ALTER TABLE outbox ADD COLUMN held_code TEXT;

-- One row per institution and refusal while rows are held: when it began and under which key,
-- for the status endpoint and so that the log names each cause once, not once per row.
CREATE TABLE relay_holds (
    institution_id  TEXT NOT NULL REFERENCES institutions (id),
    code            TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    operation       TEXT NOT NULL,
    since           BIGINT NOT NULL,
    PRIMARY KEY (institution_id, code)
);
