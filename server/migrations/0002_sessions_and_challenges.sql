-- Reception sessions (one per patient's visit to a link) and the one-time challenges their
-- cards sign. A challenge is single use, lives five minutes, and is bound to its session and to
-- the SHA-256 of the exact binding (origin, institution, kind, date, consent choices) shown on
-- the review screen.

CREATE TABLE reception_sessions (
    -- Random 128 bits; held by the patient's browser in an HttpOnly cookie.
    id          TEXT PRIMARY KEY,
    link_id     TEXT NOT NULL REFERENCES reception_links (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE challenges (
    -- 256 random bits, base64url without padding.
    value           TEXT PRIMARY KEY,
    session_id      TEXT NOT NULL REFERENCES reception_sessions (id),
    -- Lower-case hex SHA-256 of the binding message the card is to sign.
    binding_sha256  TEXT NOT NULL,
    issued_at       BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);

CREATE INDEX challenges_by_session ON challenges (session_id);
