-- The institution API (issue 17): idempotent link creation, and finding a token's links by the
-- booking system's reference. Same portable conventions as 0001 (SQLite and PostgreSQL).

-- An `Idempotency-Key` a token sent with `POST /api/v1/links`, and the link that request made.
-- Keys belong to one token (a token belongs to one institution), so two booking systems can
-- never collide. `request_sha256` is the SHA-256 (hex) of the request as parsed: a retry with
-- the same key and the same request gets the same link; with another request, a refusal.
-- Rows live 24 hours (`expires_at`, ms), then the sweeper deletes them and the key may be used
-- again. The key is the client's own string (no personal data); no foreign keys, so that the
-- sweeper of tokens or links never has to mind this table.
CREATE TABLE api_idempotency_keys (
    token_id        TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_sha256  TEXT NOT NULL,
    link_id         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    PRIMARY KEY (token_id, idempotency_key)
);

CREATE INDEX api_idempotency_keys_by_expiry ON api_idempotency_keys (expires_at);

-- `GET /api/v1/links?booking_ref=…` lists the links a token made, newest first.
CREATE INDEX reception_links_by_token
    ON reception_links (created_by_token, booking_ref, created_at);

-- `GET /api/v1/links/{id}/receptions`.
CREATE INDEX receptions_by_link ON receptions (link_id, submitted_at);
