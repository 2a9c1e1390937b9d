-- Receptions and the relay: the institution's signing key, the choices a session makes, the
-- receptions it submits, the outbox the relay worker drains, the results it stores, and the API
-- tokens of booking systems. Same portable conventions as 0001.

-- The institution's ECDSA P-256 key for signing relayed requests, registered with the backend
-- under key_id. Private scalar as base64url; NULL until a key is made.
ALTER TABLE institutions ADD COLUMN key_id TEXT;
ALTER TABLE institutions ADD COLUMN signing_key TEXT;

-- What the patient chose on the way to the review screen; the challenge binds exactly these.
ALTER TABLE reception_sessions ADD COLUMN visit_date TEXT;
ALTER TABLE reception_sessions ADD COLUMN clinical_medication BIGINT;
ALTER TABLE reception_sessions ADD COLUMN checkups BIGINT;
ALTER TABLE reception_sessions ADD COLUMN prescription TEXT;
ALTER TABLE reception_sessions ADD COLUMN reception_id TEXT;
-- The cancel token of the submitted reception, for the done screen while the session lives
-- (the session cookie already gives the same reach); the reception keeps only its hash.
ALTER TABLE reception_sessions ADD COLUMN cancel_token TEXT;
-- Set once the patient proved a card in this session to see their consents (同意照会): the
-- card reference below.
ALTER TABLE reception_sessions ADD COLUMN card_ref TEXT;

CREATE TABLE receptions (
    id                  TEXT PRIMARY KEY,
    institution_id      TEXT NOT NULL REFERENCES institutions (id),
    link_id             TEXT REFERENCES reception_links (id),
    -- One reception per session: a second submission of the same session is refused.
    session_id          TEXT UNIQUE,
    kind                TEXT NOT NULL,
    visit_date          TEXT NOT NULL,
    clinical_medication BIGINT NOT NULL,
    checkups            BIGINT NOT NULL,
    prescription        TEXT,
    -- 'card' or 'visual_check' (then staff_account names who compared the face).
    identity_method     TEXT NOT NULL,
    -- SHA-256 (hex) of the card certificate's serial under the configured CA: lets the patient
    -- find their receptions again with the same card, without storing the certificate.
    card_ref            TEXT,
    staff_account       TEXT,
    -- 'queued' until the backend answers, then 'confirmed' or 'refused' (refusal_code).
    status              TEXT NOT NULL,
    refusal_code        TEXT,
    submitted_at        BIGINT NOT NULL,
    registration_id     TEXT,
    reception_number    TEXT,
    registered_at       BIGINT,
    withdrawn_at        BIGINT,
    -- SHA-256 (hex) of the patient's cancel token; the token itself is only on their screen.
    cancel_token_sha256 TEXT UNIQUE,
    -- 照会番号: the institution's own patient number, set by staff.
    patient_ref         TEXT,
    -- The eligibility answer (JSON of domain::eligibility::EligibilityOutcome), deleted after
    -- the institution's retention period.
    eligibility_json    TEXT,
    eligibility_at      BIGINT,
    updated_at          BIGINT NOT NULL
);

CREATE INDEX receptions_by_institution ON receptions (institution_id, submitted_at);
CREATE INDEX receptions_by_card ON receptions (institution_id, card_ref);

-- 訪問診療等: the visits staff recorded; they keep the window open month by month.
CREATE TABLE home_visits (
    reception_id    TEXT NOT NULL REFERENCES receptions (id),
    visit_date      TEXT NOT NULL,
    recorded_at     BIGINT NOT NULL,
    PRIMARY KEY (reception_id, visit_date)
);

-- Medical information fetched inside the window; the sweeper deletes it when the window closes.
CREATE TABLE medical_data (
    reception_id    TEXT NOT NULL REFERENCES receptions (id),
    category        TEXT NOT NULL,
    body_json       TEXT NOT NULL,
    fetched_at      BIGINT NOT NULL,
    PRIMARY KEY (reception_id, category)
);

-- Requests to the backend, written in the same transaction as the state change they carry.
-- The id is the idempotency key: a retry after a crash or a timeout cannot register twice.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    reception_id    TEXT NOT NULL REFERENCES receptions (id),
    -- 'register', 'eligibility', 'withdraw', 'home_visit'
    operation       TEXT NOT NULL,
    -- The request body (JSON); emptied once delivered, since it may carry the card certificate.
    payload         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- A worker holds a row while sending; a crashed worker's hold lapses.
    locked_until    BIGINT,
    locked_by       TEXT,
    done_at         BIGINT,
    last_error      TEXT
);

CREATE INDEX outbox_due ON outbox (done_at, next_attempt_at);
CREATE INDEX outbox_by_reception ON outbox (reception_id);

-- Bearer tokens for booking systems and レセコン; only the SHA-256 is kept.
CREATE TABLE api_tokens (
    id              TEXT PRIMARY KEY,
    institution_id  TEXT NOT NULL REFERENCES institutions (id),
    token_sha256    TEXT NOT NULL UNIQUE,
    label           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    last_used_at    BIGINT
);
