-- The institution console: staff accounts and their passkeys, one-time enrolment codes, WebAuthn
-- ceremonies in progress, console sessions, and the append-only audit log with its hash chain.
-- Same portable conventions as 0001: instants BIGINT ms, flags BIGINT 0/1, dates TEXT.

CREATE TABLE staff_accounts (
    -- Random internal id (sessions, passkeys and codes point here).
    id              TEXT PRIMARY KEY,
    institution_id  TEXT NOT NULL REFERENCES institutions (id),
    -- The ID staff know each other by: 2–8 ASCII letters or digits, unique per institution.
    login_id        TEXT NOT NULL,
    name            TEXT NOT NULL,
    kana            TEXT NOT NULL,
    -- 'administrator', 'general' or 'medical_viewer'.
    role            TEXT NOT NULL,
    -- 利用開始日 (JST): no sign-in before it.
    start_date      TEXT NOT NULL,
    disabled        BIGINT NOT NULL DEFAULT 0,
    -- The WebAuthn user handle (a random UUID): what a discoverable passkey returns at sign-in.
    user_handle     TEXT NOT NULL UNIQUE,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (institution_id, login_id)
);

CREATE TABLE staff_passkeys (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES staff_accounts (id),
    -- base64url of the credential id, for the look-up at sign-in.
    credential_id   TEXT NOT NULL UNIQUE,
    -- The verified credential (public key, counter, flags) as webauthn-rs serialises it.
    passkey_json    TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT
);

CREATE INDEX staff_passkeys_by_account ON staff_passkeys (account_id);

-- One-time enrolment codes: 256 random bits shown once; only the SHA-256 (hex) is kept.
CREATE TABLE enrolment_codes (
    code_sha256     TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES staff_accounts (id),
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);

CREATE INDEX enrolment_codes_by_account ON enrolment_codes (account_id);

-- WebAuthn ceremonies between their start and finish calls, so that any instance can finish
-- what another began. Enrolment ceremonies are keyed by the SHA-256 of their enrolment code,
-- sign-in ceremonies by the SHA-256 of a random id the browser holds.
CREATE TABLE webauthn_ceremonies (
    id_sha256       TEXT PRIMARY KEY,
    -- 'enrol' or 'signin'
    purpose         TEXT NOT NULL,
    account_id      TEXT,
    state_json      TEXT NOT NULL,
    expires_at      BIGINT NOT NULL
);

-- Console sessions; the cookie holds the random id, the table only its SHA-256 (hex).
CREATE TABLE console_sessions (
    id_sha256       TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES staff_accounts (id),
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL
);

CREATE INDEX console_sessions_by_account ON console_sessions (account_id);

-- The audit log: one hash chain per institution. hash = SHA-256(prev_hash || canonical row);
-- rows are only ever inserted (a PostgreSQL deployment should also REVOKE UPDATE, DELETE on it
-- from the application's role). `account` is the staff ID, or '-cli' / '-demo' for the
-- command line and the demo helper.
CREATE TABLE audit_log (
    institution_id  TEXT NOT NULL REFERENCES institutions (id),
    seq             BIGINT NOT NULL,
    at              BIGINT NOT NULL,
    account         TEXT NOT NULL,
    action          TEXT NOT NULL,
    target          TEXT,
    ip              TEXT,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL,
    PRIMARY KEY (institution_id, seq)
);

CREATE INDEX audit_log_by_time ON audit_log (institution_id, at);

-- The head of each chain. Appending starts by bumping it, which serialises writers of one
-- institution on both engines; it also shows when rows were cut off the end.
CREATE TABLE audit_heads (
    institution_id  TEXT PRIMARY KEY REFERENCES institutions (id),
    seq             BIGINT NOT NULL,
    hash            TEXT NOT NULL
);
