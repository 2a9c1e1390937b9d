//! `Idempotency-Key` of the institution API's `POST /api/v1/links`: which link a token's key
//! made, so that a retried request (a lost answer, a booking system restarting) gets the same
//! link instead of a second one. Keys are per token and live [`KEY_LIFETIME_MS`]; the request
//! is remembered by its SHA-256 only, so the same key with another request is told apart.

use sqlx::{Any, Row, Transaction};

use super::{Db, StorageError};

/// How long a key is remembered: 24 hours, in ms. A retry after that makes a new link.
pub const KEY_LIFETIME_MS: i64 = 24 * 3600 * 1000;

/// Longest key, in bytes (visible ASCII only).
pub const MAX_KEY_LEN: usize = 255;

/// Whether `key` is a usable key: 1 to [`MAX_KEY_LEN`] visible ASCII characters (0x21–0x7E).
pub fn key_ok(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic())
}

/// A key already used by a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Used {
    /// SHA-256 (hex) of the request that first came with the key.
    pub request_sha256: String,
    /// The link that request made.
    pub link_id: String,
}

/// The live use of `key` by `token_id` at `now_ms`, if any.
pub async fn find<'e>(
    db: impl sqlx::Executor<'e, Database = Any>,
    token_id: &str,
    key: &str,
    now_ms: i64,
) -> Result<Option<Used>, StorageError> {
    let row = sqlx::query(
        "SELECT request_sha256, link_id FROM api_idempotency_keys \
         WHERE token_id = $1 AND idempotency_key = $2 AND expires_at > $3",
    )
    .bind(token_id)
    .bind(key)
    .bind(now_ms)
    .fetch_optional(db)
    .await?;
    row.map(|row| {
        Ok(Used {
            request_sha256: row.try_get("request_sha256")?,
            link_id: row.try_get("link_id")?,
        })
    })
    .transpose()
}

/// Records in `tx` that `key` of `token_id` made `link_id`; false when a live use of the key
/// is already recorded (another request with the key got there first: the caller rolls back
/// and answers from [`find`]). An expired use of the key is replaced.
pub async fn remember_in(
    tx: &mut Transaction<'_, Any>,
    token_id: &str,
    key: &str,
    request_sha256: &str,
    link_id: &str,
    now_ms: i64,
) -> Result<bool, StorageError> {
    sqlx::query(
        "DELETE FROM api_idempotency_keys \
         WHERE token_id = $1 AND idempotency_key = $2 AND expires_at <= $3",
    )
    .bind(token_id)
    .bind(key)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    let added = sqlx::query(
        "INSERT INTO api_idempotency_keys \
            (token_id, idempotency_key, request_sha256, link_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (token_id, idempotency_key) DO NOTHING",
    )
    .bind(token_id)
    .bind(key)
    .bind(request_sha256)
    .bind(link_id)
    .bind(now_ms)
    .bind(now_ms + KEY_LIFETIME_MS)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(added == 1)
}

/// Deletes the keys expired at `now_ms`; returns how many.
pub async fn sweep_expired(db: &Db, now_ms: i64) -> Result<u64, StorageError> {
    Ok(
        sqlx::query("DELETE FROM api_idempotency_keys WHERE expires_at <= $1")
            .bind(now_ms)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert!(key_ok("booking-42/attempt"));
        assert!(key_ok(&"k".repeat(MAX_KEY_LEN)));
        assert!(!key_ok(""));
        assert!(!key_ok(&"k".repeat(MAX_KEY_LEN + 1)));
        assert!(!key_ok("with space"));
        assert!(!key_ok("予約"));
    }
}
