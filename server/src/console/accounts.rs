//! Staff accounts (SPEC §7): an ID of 2–8 ASCII letters or digits unique in the institution,
//! name, kana, one role, a start date, and a disabled flag. Accounts are never deleted, so the
//! ID in an old audit row still names one person. Administrators create accounts, disable them,
//! issue one-time enrolment codes (256 random bits, 24 hours, only the SHA-256 kept) with which
//! the staff member registers a passkey, and list or remove an account's passkeys. A passkey
//! records who enrolled it (the issuer of its code); removing it ends the sessions it opened.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use base64::Engine as _;
use chrono::NaiveDate;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};
use webauthn_rs::prelude::Uuid;

use super::{
    Staff, audit, require_role,
    roles::{role_code, role_from_code},
    session, text_refusal,
};
use crate::{
    AppState,
    clock::from_ms,
    gate::Role,
    http::{
        body::{JsonBody, json_body},
        error::ApiError,
    },
    storage::{
        Db, StorageError,
        ids::{looks_like_id, new_id},
        receptions::sha256_hex,
    },
};

/// How long an enrolment code can be used.
pub const CODE_TTL_MS: i64 = 24 * 3600 * 1000;

/// 2–8 ASCII letters or digits.
pub fn login_id_ok(id: &str) -> bool {
    (2..=8).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A staff account as administrators see it.
#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    pub id: String,
    pub name: String,
    pub kana: String,
    pub role: Role,
    pub start_date: String,
    pub disabled: bool,
    pub passkeys: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// An account row with its internal id.
#[derive(Debug, Clone)]
pub struct Account {
    pub internal_id: String,
    pub institution_id: String,
    pub user_handle: String,
    pub view: AccountView,
}

const ACCOUNT_COLUMNS: &str = "a.id, a.institution_id, a.login_id, a.name, a.kana, a.role, \
     a.start_date, a.disabled, a.user_handle, a.created_at, \
     (SELECT COUNT(*) FROM staff_passkeys p WHERE p.account_id = a.id) AS passkeys";

fn account_of(row: &sqlx::any::AnyRow) -> Result<Option<Account>, StorageError> {
    let role: String = row.try_get("role")?;
    let Some(role) = role_from_code(&role) else {
        tracing::error!("a staff account with an unknown role");
        return Ok(None);
    };
    let disabled: i64 = row.try_get("disabled")?;
    Ok(Some(Account {
        internal_id: row.try_get("id")?,
        institution_id: row.try_get("institution_id")?,
        user_handle: row.try_get("user_handle")?,
        view: AccountView {
            id: row.try_get("login_id")?,
            name: row.try_get("name")?,
            kana: row.try_get("kana")?,
            role,
            start_date: row.try_get("start_date")?,
            disabled: disabled != 0,
            passkeys: row.try_get("passkeys")?,
            created_at: from_ms(row.try_get("created_at")?),
        },
    }))
}

/// The account `login_id` of `institution_id`.
pub async fn by_login(
    db: &Db,
    institution_id: &str,
    login_id: &str,
) -> Result<Option<Account>, StorageError> {
    if !login_id_ok(login_id) {
        return Ok(None);
    }
    let row = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM staff_accounts a \
         WHERE a.institution_id = $1 AND a.login_id = $2"
    ))
    .bind(institution_id)
    .bind(login_id)
    .fetch_optional(db)
    .await?;
    match row {
        Some(row) => account_of(&row),
        None => Ok(None),
    }
}

/// The account with internal id `id`.
pub async fn by_internal_id(db: &Db, id: &str) -> Result<Option<Account>, StorageError> {
    let row = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM staff_accounts a WHERE a.id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await?;
    match row {
        Some(row) => account_of(&row),
        None => Ok(None),
    }
}

/// A new account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub kana: String,
    pub role: Role,
    pub start_date: NaiveDate,
}

impl NewAccount {
    /// The first problem with this account's fields, as a code.
    pub fn problem(&self) -> Option<&'static str> {
        if !login_id_ok(&self.id) {
            return Some("account_id_invalid");
        }
        if self.name.trim().is_empty() {
            return Some("name_invalid");
        }
        if let Some(code) = text_refusal(&self.name, 50, "name_invalid") {
            return Some(code);
        }
        if let Some(code) = text_refusal(&self.kana, 50, "kana_invalid") {
            return Some(code);
        }
        None
    }
}

/// Creates the account in `tx`; `Ok(None)` when the ID is taken in the institution (IDs that
/// differ only in case count as taken, so that no two people read alike in the log).
pub async fn create_in(
    tx: &mut Transaction<'_, Any>,
    institution_id: &str,
    account: &NewAccount,
    now_ms: i64,
) -> Result<Option<String>, StorageError> {
    let taken = sqlx::query(
        "SELECT 1 AS one FROM staff_accounts WHERE institution_id = $1 AND LOWER(login_id) = $2",
    )
    .bind(institution_id)
    .bind(account.id.to_ascii_lowercase())
    .fetch_optional(&mut **tx)
    .await?;
    if taken.is_some() {
        return Ok(None);
    }
    let id = new_id();
    sqlx::query(
        "INSERT INTO staff_accounts \
            (id, institution_id, login_id, name, kana, role, start_date, user_handle, \
             created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(&id)
    .bind(institution_id)
    .bind(&account.id)
    .bind(account.name.trim())
    .bind(account.kana.trim())
    .bind(role_code(account.role))
    .bind(account.start_date.format("%Y-%m-%d").to_string())
    .bind(Uuid::new_v4().to_string())
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(Some(id))
}

/// Issues an enrolment code for `account_id` in `tx`; earlier unused codes of the account stop
/// working. Returns the code (shown once) and its expiry.
pub async fn issue_code_in(
    tx: &mut Transaction<'_, Any>,
    account_id: &str,
    issued_by: &str,
    now_ms: i64,
) -> Result<(String, i64), StorageError> {
    sqlx::query(
        "UPDATE enrolment_codes SET expires_at = $1 \
         WHERE account_id = $2 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now_ms)
    .bind(account_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM enrolment_codes WHERE expires_at <= $1 AND used_at IS NULL")
        .bind(now_ms - CODE_TTL_MS)
        .execute(&mut **tx)
        .await?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let code = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let expires_at = now_ms + CODE_TTL_MS;
    sqlx::query(
        "INSERT INTO enrolment_codes (code_sha256, account_id, created_at, expires_at, issued_by) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(sha256_hex(code.as_bytes()))
    .bind(account_id)
    .bind(now_ms)
    .bind(expires_at)
    .bind(issued_by)
    .execute(&mut **tx)
    .await?;
    Ok((code, expires_at))
}

/// The enrolment page a code opens; the code travels in the fragment, which browsers never send
/// to a server or put in a Referer.
pub fn enrolment_link(origin: &str, code: &str) -> String {
    format!("{origin}/console/enrol#{code}")
}

/// What an administrator (or the demo helper) gets for a new code.
#[derive(Debug, Serialize)]
pub struct CodeIssued {
    pub account: String,
    pub code: String,
    pub link: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Issues a code for `login_id` of the actor's institution, logged; `None` if there is no such
/// active account.
pub async fn issue_for(
    db: &Db,
    origin: &str,
    actor: &audit::Actor,
    login_id: &str,
    now: i64,
) -> Result<Option<CodeIssued>, StorageError> {
    let Some(account) = by_login(db, &actor.institution_id, login_id).await? else {
        return Ok(None);
    };
    if account.view.disabled {
        return Ok(None);
    }
    let mut tx = crate::storage::begin(db).await?;
    audit::append(
        &mut tx,
        actor,
        "enrolment_code.issue",
        Some(&account.view.id),
        now,
    )
    .await?;
    let (code, expires_at) =
        issue_code_in(&mut tx, &account.internal_id, &actor.account, now).await?;
    tx.commit().await?;
    Ok(Some(CodeIssued {
        link: enrolment_link(origin, &code),
        account: account.view.id,
        code,
        expires_at: from_ms(expires_at),
    }))
}

type ApiResult<T> = Result<T, ApiError>;

fn unknown_account() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "account_unknown")
}

/// `GET /api/console/accounts` (administrators).
pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
) -> ApiResult<Json<Vec<AccountView>>> {
    require_role(&staff, &[Role::Administrator])?;
    let rows = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM staff_accounts a WHERE a.institution_id = $1 \
         ORDER BY a.login_id"
    ))
    .bind(&staff.institution_id)
    .fetch_all(&state.db)
    .await
    .map_err(StorageError::from)?;
    let mut accounts = Vec::with_capacity(rows.len());
    for row in &rows {
        if let Some(account) = account_of(row)? {
            accounts.push(account.view);
        }
    }
    Ok(Json(accounts))
}

/// `POST /api/console/accounts` (administrators).
pub async fn create(
    State(state): State<AppState>,
    staff: Staff,
    body: JsonBody<NewAccount>,
) -> ApiResult<(StatusCode, Json<AccountView>)> {
    require_role(&staff, &[Role::Administrator])?;
    let body = json_body(body)?;
    if let Some(code) = body.problem() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code));
    }
    let now = state.clock.now_ms();
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(StorageError::from)?;
    audit::append(
        &mut tx,
        &staff.actor(),
        "account.create",
        Some(&body.id),
        now,
    )
    .await?;
    let Some(id) = create_in(&mut tx, &staff.institution_id, &body, now).await? else {
        tx.rollback().await.map_err(StorageError::from)?;
        return Err(ApiError::new(StatusCode::CONFLICT, "account_id_taken"));
    };
    tx.commit().await.map_err(StorageError::from)?;
    let account = by_internal_id(&state.db, &id)
        .await?
        .ok_or_else(unknown_account)?;
    Ok((StatusCode::CREATED, Json(account.view)))
}

async fn set_disabled(
    state: &AppState,
    staff: &Staff,
    login_id: &str,
    disabled: bool,
) -> ApiResult<Json<AccountView>> {
    require_role(staff, &[Role::Administrator])?;
    let account = by_login(&state.db, &staff.institution_id, login_id)
        .await?
        .ok_or_else(unknown_account)?;
    if disabled && account.internal_id == staff.account_id {
        // An administrator who locks themselves out may leave nobody to undo it.
        return Err(ApiError::new(StatusCode::CONFLICT, "cannot_disable_self"));
    }
    let now = state.clock.now_ms();
    let action = if disabled {
        "account.disable"
    } else {
        "account.enable"
    };
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(StorageError::from)?;
    audit::append(&mut tx, &staff.actor(), action, Some(&account.view.id), now).await?;
    sqlx::query("UPDATE staff_accounts SET disabled = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(disabled))
        .bind(now)
        .bind(&account.internal_id)
        .execute(&mut *tx)
        .await
        .map_err(StorageError::from)?;
    if disabled {
        session::end_all_in(&mut tx, &account.internal_id).await?;
    }
    tx.commit().await.map_err(StorageError::from)?;
    let account = by_internal_id(&state.db, &account.internal_id)
        .await?
        .ok_or_else(unknown_account)?;
    Ok(Json(account.view))
}

/// `POST /api/console/accounts/{account}/disable` (administrators): also ends its sessions.
pub async fn disable(
    State(state): State<AppState>,
    staff: Staff,
    Path(login_id): Path<String>,
) -> ApiResult<Json<AccountView>> {
    set_disabled(&state, &staff, &login_id, true).await
}

/// `POST /api/console/accounts/{account}/enable` (administrators).
pub async fn enable(
    State(state): State<AppState>,
    staff: Staff,
    Path(login_id): Path<String>,
) -> ApiResult<Json<AccountView>> {
    set_disabled(&state, &staff, &login_id, false).await
}

/// `POST /api/console/accounts/{account}/enrolment-code` (administrators).
pub async fn issue_code(
    State(state): State<AppState>,
    staff: Staff,
    Path(login_id): Path<String>,
) -> ApiResult<(StatusCode, Json<CodeIssued>)> {
    require_role(&staff, &[Role::Administrator])?;
    let issued = issue_for(
        &state.db,
        &state.config.origin_string(),
        &staff.actor(),
        &login_id,
        state.clock.now_ms(),
    )
    .await?
    .ok_or_else(unknown_account)?;
    Ok((StatusCode::CREATED, Json(issued)))
}

#[derive(Debug, Serialize)]
pub struct PasskeyView {
    pub id: String,
    /// Who enrolled it: the account's own staff ID, an administrator's (a code issued for this
    /// account), `-cli` or `-demo`; absent for passkeys from before this was recorded.
    pub enrolled_by: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// `GET /api/console/accounts/{account}/passkeys` (administrators).
pub async fn passkeys(
    State(state): State<AppState>,
    staff: Staff,
    Path(login_id): Path<String>,
) -> ApiResult<Json<Vec<PasskeyView>>> {
    require_role(&staff, &[Role::Administrator])?;
    let account = by_login(&state.db, &staff.institution_id, &login_id)
        .await?
        .ok_or_else(unknown_account)?;
    let rows = sqlx::query(
        "SELECT id, created_at, last_used_at, enrolled_by FROM staff_passkeys \
         WHERE account_id = $1 \
         ORDER BY created_at",
    )
    .bind(&account.internal_id)
    .fetch_all(&state.db)
    .await
    .map_err(StorageError::from)?;
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows {
        let last_used: Option<i64> = row.try_get("last_used_at").map_err(StorageError::from)?;
        keys.push(PasskeyView {
            id: row.try_get("id").map_err(StorageError::from)?,
            enrolled_by: row.try_get("enrolled_by").map_err(StorageError::from)?,
            created_at: from_ms(row.try_get("created_at").map_err(StorageError::from)?),
            last_used_at: last_used.map(from_ms),
        });
    }
    Ok(Json(keys))
}

/// `DELETE /api/console/accounts/{account}/passkeys/{passkey}` (administrators).
pub async fn remove_passkey(
    State(state): State<AppState>,
    staff: Staff,
    Path((login_id, passkey)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_role(&staff, &[Role::Administrator])?;
    let account = by_login(&state.db, &staff.institution_id, &login_id)
        .await?
        .ok_or_else(unknown_account)?;
    let unknown = || ApiError::new(StatusCode::NOT_FOUND, "passkey_unknown");
    if !looks_like_id(&passkey) {
        return Err(unknown());
    }
    let now = state.clock.now_ms();
    let target = format!("{}/{passkey}", account.view.id);
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(StorageError::from)?;
    audit::append(
        &mut tx,
        &staff.actor(),
        "passkey.remove",
        Some(&target),
        now,
    )
    .await?;
    let removed = sqlx::query("DELETE FROM staff_passkeys WHERE id = $1 AND account_id = $2")
        .bind(&passkey)
        .bind(&account.internal_id)
        .execute(&mut *tx)
        .await
        .map_err(StorageError::from)?
        .rows_affected();
    if removed != 1 {
        tx.rollback().await.map_err(StorageError::from)?;
        return Err(unknown());
    }
    // The sessions this passkey opened end with it (a lost or compromised device).
    session::end_by_passkey_in(&mut tx, &passkey).await?;
    tx.commit().await.map_err(StorageError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_ids_are_two_to_eight_letters_or_digits() {
        for ok in ["ab", "ADMIN1", "staff", "12345678"] {
            assert!(login_id_ok(ok), "{ok}");
        }
        for bad in ["a", "123456789", "ad-min", "ad min", "ａｄｍｉｎ", ""] {
            assert!(!login_id_ok(bad), "{bad}");
        }
    }
}
