-- Institutions and their reception links (受付リンク).
-- Portable SQL: runs on SQLite and PostgreSQL. Instants are BIGINT milliseconds since the Unix
-- epoch (UTC); calendar dates are TEXT 'YYYY-MM-DD' in Japan time. Every number and every flag
-- (0/1) is BIGINT, so that it reads back as the same type from both engines.

CREATE TABLE institutions (
    id                  TEXT PRIMARY KEY,
    -- 医療機関等コード, 10 digits with check digit.
    code                TEXT NOT NULL UNIQUE,
    name_ja             TEXT NOT NULL,
    name_en             TEXT NOT NULL,
    -- 「オンライン診療等・外来診療等（通常とは異なる動線）機能を利用する」
    accepts_remote      BIGINT NOT NULL DEFAULT 1,
    -- 医療扶助情報 利用する / 利用しない
    uses_welfare_info   BIGINT NOT NULL DEFAULT 1,
    eligibility_retention_days BIGINT NOT NULL DEFAULT 90,
    is_demo             BIGINT NOT NULL DEFAULT 0,
    created_at          BIGINT NOT NULL
);

CREATE TABLE reception_links (
    -- Random, unguessable: 128 bits in lower-case Crockford base32.
    id              TEXT PRIMARY KEY,
    institution_id  TEXT NOT NULL REFERENCES institutions (id),
    kind            TEXT NOT NULL,
    -- Per-appointment links fix the visit date and carry the booking system's reference.
    visit_date      TEXT,
    booking_ref     TEXT,
    label           TEXT,
    expires_at      BIGINT,
    revoked_at      BIGINT,
    use_count       BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL
);

CREATE INDEX reception_links_by_institution ON reception_links (institution_id);
