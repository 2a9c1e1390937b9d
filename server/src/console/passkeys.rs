//! Passkeys (WebAuthn) for staff, with `webauthn-rs`: the relying party id is the host of the
//! public origin, the only accepted origin is the public origin itself. Every credential is a
//! discoverable one (resident key required) with user verification required, so that signing
//! in is one gesture — the device's own PIN, face or fingerprint — with no ID to type.
//!
//! Enrolment: `POST /api/console/enrol/start {code}` → creation options;
//! `POST /api/console/enrol/finish {code, credential}` registers the passkey and spends the code.
//! Sign-in: `POST /api/console/signin/start` → `{ceremony, options}`;
//! `POST /api/console/signin/finish {ceremony, credential}` sets the session cookie.
//!
//! Between start and finish the ceremony state waits in the database (not in this process), so
//! the finish may reach another server instance; each state is used once and lives ten minutes.

use axum::{
    Json,
    extract::{FromRequestParts, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use uketsuke_domain::window::jst_date;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Webauthn, WebauthnBuilder,
};

use super::{Staff, audit, session};
use crate::{
    AppState,
    gate::Role,
    http::{
        body::{JsonBody, json_body},
        error::ApiError,
    },
    storage::{Db, StorageError, ids::new_id, receptions::sha256_hex},
};

/// How long a started ceremony can be finished.
const CEREMONY_TTL_MS: i64 = 10 * 60 * 1000;
/// base64url of 32 bytes, unpadded: enrolment codes and ceremony ids.
const SECRET_LEN: usize = 43;

type ApiResult<T> = Result<T, ApiError>;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn secret_ok(text: &str) -> bool {
    text.len() == SECRET_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The relying party of this deployment. Browsers refuse WebAuthn on an IP address, and so does
/// the library: the public origin must name a host (e.g. `http://localhost:3000` in a demo).
fn relying_party(state: &AppState) -> ApiResult<Webauthn> {
    let origin = &state.config.public_origin;
    let unavailable = || {
        tracing::error!("passkeys need a public origin with a host name, not an IP address");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "passkeys_unavailable")
    };
    let rp_id = origin.domain().ok_or_else(unavailable)?;
    WebauthnBuilder::new(rp_id, origin)
        .and_then(|b| b.rp_name("Uketsuke").build())
        .map_err(|_| unavailable())
}

fn internal() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
}

/// Stores (or replaces) a ceremony's state.
async fn put_ceremony(
    db: &Db,
    id_sha256: &str,
    purpose: &str,
    account_id: Option<&str>,
    state_json: &str,
    now_ms: i64,
) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at <= $1")
        .bind(now_ms)
        .execute(db)
        .await?;
    sqlx::query(
        "INSERT INTO webauthn_ceremonies (id_sha256, purpose, account_id, state_json, expires_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id_sha256) DO UPDATE SET purpose = excluded.purpose, \
             account_id = excluded.account_id, state_json = excluded.state_json, \
             expires_at = excluded.expires_at",
    )
    .bind(id_sha256)
    .bind(purpose)
    .bind(account_id)
    .bind(state_json)
    .bind(now_ms + CEREMONY_TTL_MS)
    .execute(db)
    .await?;
    Ok(())
}

/// Takes a live ceremony's state out of the database; `None` if it is unknown, expired, of
/// another purpose, or another request took it first.
async fn take_ceremony(
    db: &Db,
    id_sha256: &str,
    purpose: &str,
    now_ms: i64,
) -> Result<Option<String>, StorageError> {
    let row = sqlx::query(
        "SELECT state_json FROM webauthn_ceremonies \
         WHERE id_sha256 = $1 AND purpose = $2 AND expires_at > $3",
    )
    .bind(id_sha256)
    .bind(purpose)
    .bind(now_ms)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let state: String = row.try_get("state_json")?;
    let taken = sqlx::query("DELETE FROM webauthn_ceremonies WHERE id_sha256 = $1")
        .bind(id_sha256)
        .execute(db)
        .await?
        .rows_affected();
    Ok((taken == 1).then_some(state))
}

/// An enrolment code's account, if the code can still be used.
struct CodeAccount {
    account_id: String,
    institution_id: String,
    login_id: String,
    name: String,
    user_handle: String,
    institution_name_ja: String,
    institution_name_en: String,
    /// Who issued the code: the staff ID of an administrator, or `-cli` / `-demo`.
    issued_by: Option<String>,
}

async fn code_account(
    db: &Db,
    code_sha256: &str,
    now_ms: i64,
) -> Result<Option<CodeAccount>, StorageError> {
    let row = sqlx::query(
        "SELECT a.id, a.institution_id, a.login_id, a.name, a.user_handle, \
                i.name_ja, i.name_en, c.issued_by \
         FROM enrolment_codes c \
         JOIN staff_accounts a ON a.id = c.account_id \
         JOIN institutions i ON i.id = a.institution_id \
         WHERE c.code_sha256 = $1 AND c.used_at IS NULL AND c.expires_at > $2 \
           AND a.disabled = 0",
    )
    .bind(code_sha256)
    .bind(now_ms)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(CodeAccount {
        account_id: row.try_get("id")?,
        institution_id: row.try_get("institution_id")?,
        login_id: row.try_get("login_id")?,
        name: row.try_get("name")?,
        user_handle: row.try_get("user_handle")?,
        institution_name_ja: row.try_get("name_ja")?,
        institution_name_en: row.try_get("name_en")?,
        issued_by: row.try_get("issued_by")?,
    }))
}

/// The passkeys of an account, as webauthn-rs reads them (unreadable rows are skipped).
async fn account_passkeys(
    db: &Db,
    account_id: &str,
) -> Result<Vec<(String, Passkey)>, StorageError> {
    let rows = sqlx::query("SELECT id, passkey_json FROM staff_passkeys WHERE account_id = $1")
        .bind(account_id)
        .fetch_all(db)
        .await?;
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows {
        let json: String = row.try_get("passkey_json")?;
        match serde_json::from_str::<Passkey>(&json) {
            Ok(key) => keys.push((row.try_get("id")?, key)),
            Err(_) => tracing::error!("a stored passkey cannot be read"),
        }
    }
    Ok(keys)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolStart {
    pub code: String,
}

#[derive(Debug, Serialize)]
pub struct EnrolOptions {
    /// For `navigator.credentials.create` (binary fields in base64url).
    pub options: Value,
    pub account: EnrolAccount,
}

#[derive(Debug, Serialize)]
pub struct EnrolAccount {
    pub id: String,
    pub name: String,
    pub institution_name_ja: String,
    pub institution_name_en: String,
}

fn code_invalid() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "code_invalid")
}

/// `POST /api/console/enrol/start {code}`.
pub async fn enrol_start(
    State(state): State<AppState>,
    body: JsonBody<EnrolStart>,
) -> ApiResult<Json<EnrolOptions>> {
    let body = json_body(body)?;
    if !secret_ok(&body.code) {
        return Err(code_invalid());
    }
    let webauthn = relying_party(&state)?;
    let now = state.clock.now_ms();
    let code_sha256 = sha256_hex(body.code.as_bytes());
    let account = code_account(&state.db, &code_sha256, now)
        .await?
        .ok_or_else(code_invalid)?;
    let user_handle =
        webauthn_rs::prelude::Uuid::parse_str(&account.user_handle).map_err(|_| {
            tracing::error!("a staff account's user handle is not a UUID");
            internal()
        })?;
    // The same authenticator must not register twice for one account.
    let existing: Vec<_> = account_passkeys(&state.db, &account.account_id)
        .await?
        .into_iter()
        .map(|(_, key)| key.cred_id().clone())
        .collect();
    let (options, registration) = webauthn
        .start_passkey_registration(
            user_handle,
            &account.login_id,
            &account.name,
            (!existing.is_empty()).then_some(existing),
        )
        .map_err(|error| {
            tracing::error!(%error, "cannot start a passkey registration");
            internal()
        })?;
    let state_json = serde_json::to_string(&registration).map_err(|_| internal())?;
    put_ceremony(
        &state.db,
        &code_sha256,
        "enrol",
        Some(&account.account_id),
        &state_json,
        now,
    )
    .await?;
    let mut options = serde_json::to_value(&options).map_err(|_| internal())?;
    // Passkeys here are discoverable by design: sign-in offers no ID field. webauthn-rs's
    // passkey registration leaves residency to the authenticator, so ask for it explicitly
    // (the library does not check residency on the response; the browser enforces it).
    if let Some(selection) = options
        .get_mut("publicKey")
        .and_then(|p| p.get_mut("authenticatorSelection"))
        .and_then(Value::as_object_mut)
    {
        selection.insert("residentKey".to_owned(), Value::from("required"));
        selection.insert("requireResidentKey".to_owned(), Value::from(true));
    }
    Ok(Json(EnrolOptions {
        options,
        account: EnrolAccount {
            id: account.login_id,
            name: account.name,
            institution_name_ja: account.institution_name_ja,
            institution_name_en: account.institution_name_en,
        },
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolFinish {
    pub code: String,
    pub credential: RegisterPublicKeyCredential,
}

#[derive(Debug, Serialize)]
pub struct Enrolled {
    pub account: String,
    pub passkey: String,
}

/// The client's address, for requests that have no session yet.
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(session::client_ip(parts)))
    }
}

/// `POST /api/console/enrol/finish {code, credential}`.
pub async fn enrol_finish(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    body: JsonBody<EnrolFinish>,
) -> ApiResult<(StatusCode, Json<Enrolled>)> {
    let body = json_body(body)?;
    if !secret_ok(&body.code) {
        return Err(code_invalid());
    }
    let webauthn = relying_party(&state)?;
    let now = state.clock.now_ms();
    let code_sha256 = sha256_hex(body.code.as_bytes());
    let account = code_account(&state.db, &code_sha256, now)
        .await?
        .ok_or_else(code_invalid)?;
    let state_json = take_ceremony(&state.db, &code_sha256, "enrol", now)
        .await?
        .ok_or(ApiError::new(StatusCode::CONFLICT, "ceremony_unknown"))?;
    let registration: PasskeyRegistration =
        serde_json::from_str(&state_json).map_err(|_| internal())?;
    let passkey = webauthn
        .finish_passkey_registration(&body.credential, &registration)
        .map_err(|error| {
            tracing::warn!(%error, "a passkey registration was refused");
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "passkey_refused")
        })?;
    let credential_id = b64(passkey.cred_id());
    let passkey_json = serde_json::to_string(&passkey).map_err(|_| internal())?;
    let passkey_id = new_id();
    let actor = audit::Actor {
        institution_id: account.institution_id.clone(),
        account: account.login_id.clone(),
        ip,
    };
    // Who enrolled it for whom: a code an administrator issued for another account (or the
    // command line, or the demo helper) is named on the passkey and in the audit row.
    let enrolled_by = account
        .issued_by
        .clone()
        .unwrap_or_else(|| account.login_id.clone());
    let target = if enrolled_by == account.login_id {
        format!("{}/{passkey_id}", account.login_id)
    } else {
        format!(
            "{}/{passkey_id} enrolled_by={enrolled_by}",
            account.login_id
        )
    };
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(StorageError::from)?;
    audit::append(&mut tx, &actor, "passkey.register", Some(&target), now).await?;
    let spent = sqlx::query(
        "UPDATE enrolment_codes SET used_at = $1 \
         WHERE code_sha256 = $2 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(&code_sha256)
    .execute(&mut *tx)
    .await
    .map_err(StorageError::from)?
    .rows_affected();
    if spent != 1 {
        tx.rollback().await.map_err(StorageError::from)?;
        return Err(code_invalid());
    }
    let known = sqlx::query("SELECT 1 AS one FROM staff_passkeys WHERE credential_id = $1")
        .bind(&credential_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StorageError::from)?;
    if known.is_some() {
        tx.rollback().await.map_err(StorageError::from)?;
        return Err(ApiError::new(StatusCode::CONFLICT, "passkey_exists"));
    }
    sqlx::query(
        "INSERT INTO staff_passkeys \
            (id, account_id, credential_id, passkey_json, created_at, enrolled_by) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&passkey_id)
    .bind(&account.account_id)
    .bind(&credential_id)
    .bind(&passkey_json)
    .bind(now)
    .bind(&enrolled_by)
    .execute(&mut *tx)
    .await
    .map_err(StorageError::from)?;
    tx.commit().await.map_err(StorageError::from)?;
    Ok((
        StatusCode::CREATED,
        Json(Enrolled {
            account: account.login_id,
            passkey: passkey_id,
        }),
    ))
}

#[derive(Debug, Serialize)]
pub struct SigninOptions {
    /// Sent back with the credential.
    pub ceremony: String,
    /// For `navigator.credentials.get` (binary fields in base64url).
    pub options: Value,
}

/// `POST /api/console/signin/start`: options for a discoverable credential (no ID to type).
pub async fn signin_start(State(state): State<AppState>) -> ApiResult<Json<SigninOptions>> {
    let webauthn = relying_party(&state)?;
    let (mut options, authentication) =
        webauthn
            .start_discoverable_authentication()
            .map_err(|error| {
                tracing::error!(%error, "cannot start a passkey sign-in");
                internal()
            })?;
    // webauthn-rs marks these options for conditional UI (autofill); the console signs in from
    // a button, which is the modal ceremony. A page that wants autofill adds it back.
    options.mediation = None;
    let ceremony = session::new_token();
    let state_json = serde_json::to_string(&authentication).map_err(|_| internal())?;
    put_ceremony(
        &state.db,
        &sha256_hex(ceremony.as_bytes()),
        "signin",
        None,
        &state_json,
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(SigninOptions {
        ceremony,
        options: serde_json::to_value(&options).map_err(|_| internal())?,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigninFinish {
    pub ceremony: String,
    pub credential: PublicKeyCredential,
}

/// The signed-in account as the console shows it.
#[derive(Debug, Serialize)]
pub struct Me {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub institution: InstitutionName,
}

#[derive(Debug, Serialize)]
pub struct InstitutionName {
    pub code: String,
    pub name_ja: String,
    pub name_en: String,
}

async fn me_of(db: &Db, staff: &Staff) -> Result<Me, StorageError> {
    let row = sqlx::query("SELECT code, name_ja, name_en FROM institutions WHERE id = $1")
        .bind(&staff.institution_id)
        .fetch_one(db)
        .await?;
    Ok(Me {
        id: staff.login_id.clone(),
        name: staff.name.clone(),
        role: staff.role,
        institution: InstitutionName {
            code: row.try_get("code")?,
            name_ja: row.try_get("name_ja")?,
            name_en: row.try_get("name_en")?,
        },
    })
}

/// `GET /api/console/me`.
pub async fn me(State(state): State<AppState>, staff: Staff) -> ApiResult<Json<Me>> {
    Ok(Json(me_of(&state.db, &staff).await?))
}

fn signin_failed() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "signin_failed")
}

/// `POST /api/console/signin/finish {ceremony, credential}`: verifies the passkey's assertion
/// and starts a session with a fresh id (any session the browser had is ended).
pub async fn signin_finish(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: JsonBody<SigninFinish>,
) -> ApiResult<Response> {
    let body = json_body(body)?;
    if !secret_ok(&body.ceremony) {
        return Err(signin_failed());
    }
    let webauthn = relying_party(&state)?;
    let now = state.clock.now_ms();
    let state_json = take_ceremony(
        &state.db,
        &sha256_hex(body.ceremony.as_bytes()),
        "signin",
        now,
    )
    .await?
    .ok_or_else(signin_failed)?;
    let authentication: DiscoverableAuthentication =
        serde_json::from_str(&state_json).map_err(|_| internal())?;
    let (user_handle, credential_id) = webauthn
        .identify_discoverable_authentication(&body.credential)
        .map_err(|_| signin_failed())?;
    let row = sqlx::query(
        "SELECT p.id, p.passkey_json, a.id AS account_id, a.user_handle, a.start_date, \
                a.disabled \
         FROM staff_passkeys p JOIN staff_accounts a ON a.id = p.account_id \
         WHERE p.credential_id = $1",
    )
    .bind(b64(credential_id))
    .fetch_optional(&state.db)
    .await
    .map_err(StorageError::from)?;
    let Some(row) = row else {
        tracing::warn!("sign-in with a passkey this server does not know");
        return Err(signin_failed());
    };
    let get = |name: &str| row.try_get::<String, _>(name).map_err(StorageError::from);
    let passkey_id = get("id")?;
    let account_id = get("account_id")?;
    let disabled: i64 = row.try_get("disabled").map_err(StorageError::from)?;
    // 利用開始日: no sign-in before it (dates compare as YYYY-MM-DD text).
    let today = jst_date(state.clock.now()).format("%Y-%m-%d").to_string();
    let started = get("start_date")? <= today;
    if get("user_handle")? != user_handle.to_string() || disabled != 0 || !started {
        tracing::warn!("sign-in refused: account disabled, not started, or handle mismatch");
        return Err(signin_failed());
    }
    let mut passkey: Passkey =
        serde_json::from_str(&get("passkey_json")?).map_err(|_| internal())?;
    let result = webauthn
        .finish_discoverable_authentication_v2(&body.credential, authentication, &passkey)
        .map_err(|error| {
            tracing::warn!(%error, "a passkey assertion was refused");
            signin_failed()
        })?;
    if !result.user_verified() {
        return Err(signin_failed());
    }
    let updated = passkey.update_credential(&result).unwrap_or(false);
    let passkey_json = serde_json::to_string(&passkey).map_err(|_| internal())?;

    let account = super::accounts::by_internal_id(&state.db, &account_id)
        .await?
        .ok_or_else(signin_failed)?;
    let actor = audit::Actor {
        institution_id: account.institution_id.clone(),
        account: account.view.id.clone(),
        ip: ip.clone(),
    };
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(StorageError::from)?;
    audit::append(&mut tx, &actor, "signin", None, now).await?;
    if let Some(previous) = session::session_of(&state.config, &headers) {
        session::end_in(&mut tx, &previous).await?;
    }
    if updated {
        sqlx::query("UPDATE staff_passkeys SET passkey_json = $1 WHERE id = $2")
            .bind(&passkey_json)
            .bind(&passkey_id)
            .execute(&mut *tx)
            .await
            .map_err(StorageError::from)?;
    }
    sqlx::query("UPDATE staff_passkeys SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(&passkey_id)
        .execute(&mut *tx)
        .await
        .map_err(StorageError::from)?;
    let token = session::create_in(&mut tx, &account_id, &passkey_id, now).await?;
    tx.commit().await.map_err(StorageError::from)?;

    let staff = Staff {
        account_id,
        login_id: account.view.id,
        name: account.view.name,
        institution_id: account.institution_id,
        role: account.view.role,
        ip,
        session: sha256_hex(token.as_bytes()),
    };
    let me = me_of(&state.db, &staff).await?;
    let mut response = Json(me).into_response();
    if let Some(cookie) = session::set_cookie(&state, &token) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

fn signed_out(state: &AppState) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(cookie) = session::clear_cookie(state) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /api/console/signout`: ends this session.
pub async fn signout(State(state): State<AppState>, staff: Staff) -> ApiResult<Response> {
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(StorageError::from)?;
    audit::append(
        &mut tx,
        &staff.actor(),
        "signout",
        None,
        state.clock.now_ms(),
    )
    .await?;
    session::end_in(&mut tx, &staff.session).await?;
    tx.commit().await.map_err(StorageError::from)?;
    Ok(signed_out(&state))
}

/// `POST /api/console/signout-everywhere`: ends every session of this account (a lost tablet).
pub async fn signout_everywhere(
    State(state): State<AppState>,
    staff: Staff,
) -> ApiResult<Response> {
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(StorageError::from)?;
    audit::append(
        &mut tx,
        &staff.actor(),
        "signout_everywhere",
        None,
        state.clock.now_ms(),
    )
    .await?;
    session::end_all_in(&mut tx, &staff.account_id).await?;
    tx.commit().await.map_err(StorageError::from)?;
    Ok(signed_out(&state))
}
