//! Institution API tokens: bearer secrets for booking systems and レセコン. Only the SHA-256 of a
//! token is stored; the token is shown once, when it is made. Each token has scopes (what it
//! may do: [`Scope`]) and an expiry, and is named everywhere else (the audit log, the command
//! line's list) by its id, never by its secret.

use sqlx::{Any, Row, Transaction};

use super::{Db, StorageError, ids::new_id, receptions::sha256_hex};

/// Token prefix, so a leaked token is recognisable in a scan.
pub const PREFIX: &str = "ukt_";
/// A token's life when its maker does not say: 365 days, in ms.
pub const DEFAULT_LIFETIME_MS: i64 = 365 * 24 * 3600 * 1000;
/// The longest life a token may be given: 3650 days, in ms.
pub const MAX_LIFETIME_MS: i64 = 3650 * 24 * 3600 * 1000;

/// What a token may do; one scope per kind of route of the institution API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// `links:appointment` — create per-appointment links (with a visit date) and read the
    /// links it created. The default.
    LinksAppointment,
    /// `links:standing` — create long-lived links (no visit date).
    LinksStanding,
    /// `links:revoke` — revoke the links it created.
    LinksRevoke,
    /// `home_visits:write` — record visits of 訪問診療等.
    HomeVisitsWrite,
}

impl Scope {
    /// Every scope, in the order they are listed.
    pub const ALL: [Scope; 4] = [
        Scope::LinksAppointment,
        Scope::LinksStanding,
        Scope::LinksRevoke,
        Scope::HomeVisitsWrite,
    ];

    /// The scope's name, as stored and as the command line and the API's errors spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Scope::LinksAppointment => "links:appointment",
            Scope::LinksStanding => "links:standing",
            Scope::LinksRevoke => "links:revoke",
            Scope::HomeVisitsWrite => "home_visits:write",
        }
    }

    /// The scope named `name`.
    pub fn from_name(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == name.trim())
    }

    /// A comma-separated list of scope names, sorted and without repeats; `Err` names the first
    /// unknown one.
    pub fn parse_list(text: &str) -> Result<Vec<Scope>, String> {
        let mut scopes = Vec::new();
        for name in text.split(',').filter(|n| !n.trim().is_empty()) {
            scopes.push(Scope::from_name(name).ok_or_else(|| name.trim().to_owned())?);
        }
        scopes.sort();
        scopes.dedup();
        Ok(scopes)
    }

    /// The stored form of a list: sorted, without repeats.
    pub fn join(scopes: &[Scope]) -> String {
        let mut scopes = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        scopes
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A token as the command line lists it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub institution_id: String,
    pub label: String,
    pub scopes: Vec<Scope>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// The live token a request presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bearer {
    pub id: String,
    pub institution_id: String,
    pub scopes: Vec<Scope>,
}

impl Bearer {
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// Why a presented token is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed, unknown or revoked.
    Invalid,
    /// Past its expiry.
    Expired,
}

/// Makes a token with the default scope (`links:appointment`) and life (365 days).
pub async fn create(
    db: &Db,
    institution_id: &str,
    label: &str,
    now_ms: i64,
) -> Result<String, StorageError> {
    let mut tx = crate::storage::begin(db).await?;
    let (_, token) = create_in(
        &mut tx,
        institution_id,
        label,
        &[Scope::LinksAppointment],
        now_ms + DEFAULT_LIFETIME_MS,
        now_ms,
    )
    .await?;
    tx.commit().await?;
    Ok(token)
}

/// Makes a token with `scopes`, ending at `expires_at` (ms); returns its id and the token.
pub async fn create_with(
    db: &Db,
    institution_id: &str,
    label: &str,
    scopes: &[Scope],
    expires_at: i64,
    now_ms: i64,
) -> Result<(String, String), StorageError> {
    let mut tx = crate::storage::begin(db).await?;
    let made = create_in(&mut tx, institution_id, label, scopes, expires_at, now_ms).await?;
    tx.commit().await?;
    Ok(made)
}

/// Makes a token in `tx` with `scopes`, ending at `expires_at` (ms); returns its id and the
/// token (256 random bits after the prefix).
pub async fn create_in(
    tx: &mut Transaction<'_, Any>,
    institution_id: &str,
    label: &str,
    scopes: &[Scope],
    expires_at: i64,
    now_ms: i64,
) -> Result<(String, String), StorageError> {
    let token = format!("{PREFIX}{}{}", new_id(), new_id());
    let id = new_id();
    sqlx::query(
        "INSERT INTO api_tokens \
            (id, institution_id, token_sha256, label, created_at, scopes, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(institution_id)
    .bind(sha256_hex(token.as_bytes()))
    .bind(label)
    .bind(now_ms)
    .bind(Scope::join(scopes))
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok((id, token))
}

fn scopes_of(text: &str) -> Vec<Scope> {
    // A scope this version does not know grants nothing.
    text.split(',').filter_map(Scope::from_name).collect()
}

/// The live token `token` at `now_ms`, or why it is refused.
pub async fn bearer(
    db: &Db,
    token: &str,
    now_ms: i64,
) -> Result<Result<Bearer, Refusal>, StorageError> {
    if !token.starts_with(PREFIX) || token.len() != PREFIX.len() + 52 {
        return Ok(Err(Refusal::Invalid));
    }
    let hash = sha256_hex(token.as_bytes());
    let row = sqlx::query(
        "SELECT id, institution_id, scopes, expires_at FROM api_tokens \
         WHERE token_sha256 = $1 AND revoked_at IS NULL",
    )
    .bind(&hash)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(Err(Refusal::Invalid));
    };
    let expires_at: Option<i64> = row.try_get("expires_at")?;
    if expires_at.is_some_and(|at| at <= now_ms) {
        return Ok(Err(Refusal::Expired));
    }
    let id: String = row.try_get("id")?;
    sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
        .bind(now_ms)
        .bind(&id)
        .execute(db)
        .await?;
    let scopes: String = row.try_get("scopes")?;
    Ok(Ok(Bearer {
        id,
        institution_id: row.try_get("institution_id")?,
        scopes: scopes_of(&scopes),
    }))
}

/// The institution a live token belongs to.
pub async fn institution_of(
    db: &Db,
    token: &str,
    now_ms: i64,
) -> Result<Option<String>, StorageError> {
    Ok(bearer(db, token, now_ms)
        .await?
        .ok()
        .map(|b| b.institution_id))
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

/// Revokes the token `id` of `institution_id` in `tx`; false if there was no such live token.
pub async fn revoke_by_id_in(
    tx: &mut Transaction<'_, Any>,
    institution_id: &str,
    id: &str,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let n = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $1 \
         WHERE id = $2 AND institution_id = $3 AND revoked_at IS NULL",
    )
    .bind(now_ms)
    .bind(id)
    .bind(institution_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Every token of `institution_id`, newest first.
pub async fn list(db: &Db, institution_id: &str) -> Result<Vec<TokenInfo>, StorageError> {
    let rows = sqlx::query(
        "SELECT id, institution_id, label, scopes, created_at, expires_at, revoked_at, \
                last_used_at \
         FROM api_tokens WHERE institution_id = $1 ORDER BY created_at DESC, id",
    )
    .bind(institution_id)
    .fetch_all(db)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let scopes: String = row.try_get("scopes")?;
        out.push(TokenInfo {
            id: row.try_get("id")?,
            institution_id: row.try_get("institution_id")?,
            label: row.try_get("label")?,
            scopes: scopes_of(&scopes),
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            revoked_at: row.try_get("revoked_at")?,
            last_used_at: row.try_get("last_used_at")?,
        });
    }
    Ok(out)
}

/// Records in `tx` that the token `token_id` made the link `link_id`.
pub async fn mark_link_in(
    tx: &mut Transaction<'_, Any>,
    link_id: &str,
    token_id: &str,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE reception_links SET created_by_token = $1 WHERE id = $2")
        .bind(token_id)
        .bind(link_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Whether the token `token_id` made the link `link_id` of `institution_id`.
pub async fn made_link(
    db: &Db,
    institution_id: &str,
    link_id: &str,
    token_id: &str,
) -> Result<bool, StorageError> {
    let row = sqlx::query(
        "SELECT 1 AS one FROM reception_links \
         WHERE id = $1 AND institution_id = $2 AND created_by_token = $3",
    )
    .bind(link_id)
    .bind(institution_id)
    .bind(token_id)
    .fetch_optional(db)
    .await?;
    Ok(row.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_lists_parse_and_name_the_unknown() {
        assert_eq!(
            Scope::parse_list("links:revoke, links:appointment,links:revoke"),
            Ok(vec![Scope::LinksAppointment, Scope::LinksRevoke])
        );
        assert_eq!(Scope::parse_list("links:all"), Err("links:all".to_owned()));
        for scope in Scope::ALL {
            assert_eq!(Scope::from_name(scope.name()), Some(scope));
        }
        assert_eq!(
            scopes_of("links:appointment,future:scope"),
            vec![Scope::LinksAppointment]
        );
    }
}
