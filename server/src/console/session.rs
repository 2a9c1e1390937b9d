//! Console sessions: after a passkey sign-in the browser holds a random 256-bit id in the
//! `uk_console` cookie (HttpOnly, SameSite=Strict, Secure over https); the database holds only
//! its SHA-256, so a copy of the database signs nobody in. A session ends after 30 minutes
//! without a request, 12 hours after sign-in whatever happens, at sign-out, when its account is
//! disabled, at "sign out everywhere", or when the passkey that opened it is removed. Times come from the server's business clock.

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, HeaderValue, StatusCode, request::Parts},
};
use base64::Engine as _;
use rand::RngCore;
use sqlx::{Any, Row, Transaction};

use super::roles::role_from_code;
use crate::{
    AppState,
    gate::Role,
    http::error::ApiError,
    storage::{Db, StorageError, receptions::sha256_hex},
};

/// The cookie's name.
pub const COOKIE: &str = "uk_console";
/// The cookie's name over https (production): `__Host-` makes browsers take it only with
/// `Secure`, `Path=/` and no `Domain`, so a sibling subdomain or a plain-http attacker cannot
/// plant a session of their own on a ward laptop (see `http::cookies` for the patient's).
pub const COOKIE_HOST: &str = "__Host-uk_console";

/// The console cookie's name for this deployment: [`COOKIE_HOST`] over https, [`COOKIE`] on
/// the plain-http loopback demo.
pub fn cookie_name(config: &crate::config::Config) -> &'static str {
    if config.serves_https() {
        COOKIE_HOST
    } else {
        COOKIE
    }
}
/// Idle timeout.
pub const IDLE_MS: i64 = 30 * 60 * 1000;
/// Absolute lifetime.
pub const ABSOLUTE_MS: i64 = 12 * 3600 * 1000;
/// `last_seen_at` is rewritten at most this often, so that a busy page does not write on every
/// request; a session may thus end up to this much before 30 idle minutes, never after.
const TOUCH_EVERY_MS: i64 = 60 * 1000;
/// base64url of 32 bytes, unpadded.
const TOKEN_LEN: usize = 43;

/// The signed-in staff member of a request.
#[derive(Debug, Clone)]
pub struct Staff {
    pub account_id: String,
    /// The staff ID (2–8 letters or digits).
    pub login_id: String,
    pub name: String,
    pub institution_id: String,
    pub role: Role,
    /// The client's address as this server sees it (behind a proxy: the proxy's).
    pub ip: Option<String>,
    /// SHA-256 of the session id.
    pub session: String,
}

/// A fresh session id: 256 bits from the operating system's generator, base64url.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Starts a session for `account_id` in `tx` (with the sign-in's audit row), opened by the
/// passkey `passkey_id` (removing that passkey ends the session); returns the id for the
/// cookie. Expired sessions of everyone are cleared on the way.
pub async fn create_in(
    tx: &mut Transaction<'_, Any>,
    account_id: &str,
    passkey_id: &str,
    now_ms: i64,
) -> Result<String, StorageError> {
    sqlx::query("DELETE FROM console_sessions WHERE last_seen_at <= $1 OR created_at <= $2")
        .bind(now_ms - IDLE_MS)
        .bind(now_ms - ABSOLUTE_MS)
        .execute(&mut **tx)
        .await?;
    let token = new_token();
    sqlx::query(
        "INSERT INTO console_sessions \
            (id_sha256, account_id, created_at, last_seen_at, passkey_id) \
         VALUES ($1, $2, $3, $3, $4)",
    )
    .bind(sha256_hex(token.as_bytes()))
    .bind(account_id)
    .bind(now_ms)
    .bind(passkey_id)
    .execute(&mut **tx)
    .await?;
    Ok(token)
}

/// Whether a session made at `created_at` and last used at `last_seen_at` (ms) is still live
/// at `now_ms`: within both the idle timeout and the absolute lifetime.
pub fn is_live(created_at: i64, last_seen_at: i64, now_ms: i64) -> bool {
    now_ms - last_seen_at < IDLE_MS && now_ms - created_at < ABSOLUTE_MS
}

/// The session whose id hashes to `session`, if it is live at `now_ms`. With `touch`, the
/// request counts as activity.
pub async fn lookup(
    db: &Db,
    session: &str,
    now_ms: i64,
    touch: bool,
) -> Result<Option<Staff>, StorageError> {
    let row = sqlx::query(
        "SELECT s.account_id, s.created_at, s.last_seen_at, a.login_id, a.name, \
                a.institution_id, a.role \
         FROM console_sessions s JOIN staff_accounts a ON a.id = s.account_id \
         WHERE s.id_sha256 = $1 AND a.disabled = 0",
    )
    .bind(session)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let created_at: i64 = row.try_get("created_at")?;
    let last_seen_at: i64 = row.try_get("last_seen_at")?;
    if !is_live(created_at, last_seen_at, now_ms) {
        sqlx::query("DELETE FROM console_sessions WHERE id_sha256 = $1")
            .bind(session)
            .execute(db)
            .await?;
        return Ok(None);
    }
    let role: String = row.try_get("role")?;
    let Some(role) = role_from_code(&role) else {
        tracing::error!("a staff account with an unknown role");
        return Ok(None);
    };
    if touch && now_ms - last_seen_at >= TOUCH_EVERY_MS {
        sqlx::query("UPDATE console_sessions SET last_seen_at = $1 WHERE id_sha256 = $2")
            .bind(now_ms)
            .bind(session)
            .execute(db)
            .await?;
    }
    Ok(Some(Staff {
        account_id: row.try_get("account_id")?,
        login_id: row.try_get("login_id")?,
        name: row.try_get("name")?,
        institution_id: row.try_get("institution_id")?,
        role,
        ip: None,
        session: session.to_owned(),
    }))
}

/// Ends one session.
pub async fn end_in(tx: &mut Transaction<'_, Any>, session: &str) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM console_sessions WHERE id_sha256 = $1")
        .bind(session)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Ends every session of an account.
pub async fn end_all_in(
    tx: &mut Transaction<'_, Any>,
    account_id: &str,
) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM console_sessions WHERE account_id = $1")
        .bind(account_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Ends every session the passkey `passkey_id` opened.
pub async fn end_by_passkey_in(
    tx: &mut Transaction<'_, Any>,
    passkey_id: &str,
) -> Result<u64, StorageError> {
    Ok(
        sqlx::query("DELETE FROM console_sessions WHERE passkey_id = $1")
            .bind(passkey_id)
            .execute(&mut **tx)
            .await?
            .rows_affected(),
    )
}

/// The `Set-Cookie` value that carries `token`.
pub fn set_cookie(state: &AppState, token: &str) -> Option<HeaderValue> {
    let secure = if state.config.serves_https() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        cookie_name(&state.config),
        ABSOLUTE_MS / 1000
    ))
    .ok()
}

/// The `Set-Cookie` value that makes the browser forget the session.
pub fn clear_cookie(state: &AppState) -> Option<HeaderValue> {
    let secure = if state.config.serves_https() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
        cookie_name(&state.config)
    ))
    .ok()
}

/// The client's IP address: the one the rate limiter found (behind a trusted proxy, the
/// forwarded client's), else the connection's peer.
pub fn client_ip(parts: &Parts) -> Option<String> {
    if let Some(client) = parts.extensions.get::<crate::http::rate_limit::ClientIp>() {
        return Some(client.0.to_string());
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// The SHA-256 of the request's session cookie (under this deployment's name), if it carries
/// one well-formed cookie; none when it carries two, since which one is the staff member's
/// cannot be known.
pub fn session_of(config: &crate::config::Config, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(config);
    let mut values = crate::http::cookies::cookie_values(headers, name);
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    hash_token(first)
}

/// The stored form (SHA-256) of a session id taken from a cookie, if it is well formed.
pub fn hash_token(token: &str) -> Option<String> {
    well_formed(token).then(|| sha256_hex(token.as_bytes()))
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(session) = session_of(&state.config, &parts.headers) else {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "signin_required"));
        };
        let mut staff = lookup(&state.db, &session, state.clock.now_ms(), true)
            .await?
            .ok_or(ApiError::new(StatusCode::UNAUTHORIZED, "session_expired"))?;
        staff.ip = client_ip(parts);
        Ok(staff)
    }
}
