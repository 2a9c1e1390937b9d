//! Institution API tokens: bearer secrets for booking systems and レセコン. Only the SHA-256 of a
//! token is stored; the token is shown once, when it is made.

use sqlx::Row;

use super::{Db, StorageError, ids::new_id, receptions::sha256_hex};

/// Token prefix, so a leaked token is recognisable in a scan.
pub const PREFIX: &str = "ukt_";

/// Makes a token for `institution_id`; returns the token (256 random bits).
pub async fn create(
    db: &Db,
    institution_id: &str,
    label: &str,
    now_ms: i64,
) -> Result<String, StorageError> {
    let token = format!("{PREFIX}{}{}", new_id(), new_id());
    sqlx::query(
        "INSERT INTO api_tokens (id, institution_id, token_sha256, label, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new_id())
    .bind(institution_id)
    .bind(sha256_hex(token.as_bytes()))
    .bind(label)
    .bind(now_ms)
    .execute(db)
    .await?;
    Ok(token)
}

/// The institution a live token belongs to.
pub async fn institution_of(
    db: &Db,
    token: &str,
    now_ms: i64,
) -> Result<Option<String>, StorageError> {
    if !token.starts_with(PREFIX) || token.len() != PREFIX.len() + 52 {
        return Ok(None);
    }
    let hash = sha256_hex(token.as_bytes());
    let row = sqlx::query(
        "SELECT institution_id FROM api_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL",
    )
    .bind(&hash)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE token_sha256 = $2")
        .bind(now_ms)
        .bind(&hash)
        .execute(db)
        .await?;
    Ok(Some(row.try_get("institution_id")?))
}

/// Revokes a token by its value; false if it was not live.
pub async fn revoke(db: &Db, token: &str, now_ms: i64) -> Result<bool, StorageError> {
    let n = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 WHERE token_sha256 = $2 AND revoked_at IS NULL",
    )
    .bind(now_ms)
    .bind(sha256_hex(token.as_bytes()))
    .execute(db)
    .await?
    .rows_affected();
    Ok(n == 1)
}
