//! Demo staff: in demo mode the demo institution gets three accounts — `admin`
//! (administrator), `staff` (general) and `doctor` (medical viewer) — and
//! `POST /api/console/demo/enrolment-code {account}` hands out a fresh enrolment code for one of
//! them without signing in, so that a demo visitor or the e2e suite (Chromium's virtual
//! authenticator) can register a passkey; `POST /api/console/demo/clock` moves the business
//! clock forward to show a consent window closing. Neither is routed outside demo mode, and in
//! demo mode both answer loopback peers only ([`loopback_only`]; issue 12 §3).
//!
//! When a database that served a demo is started in production mode, [`retire`] takes every
//! way in to the demo institution away: its staff's passkeys, console sessions, outstanding
//! enrolment codes and ceremonies are deleted, its accounts disabled, its reception links and
//! API tokens revoked, and the counts logged and written to its audit chain.

use std::net::SocketAddr;

use axum::{
    Json,
    extract::{ConnectInfo, Request, State},
    http::StatusCode,
    middleware::Next,
    response::Response,
};
use chrono::NaiveDate;
use serde::Deserialize;
use sqlx::Row;

use super::{
    Staff,
    accounts::{self, CodeIssued, NewAccount},
    audit::{self, Actor},
    passkeys::ClientIp,
};
use crate::{
    AppState,
    config::{Mode, is_loopback},
    gate::Role,
    http::{
        body::{JsonBody, json_body},
        error::ApiError,
    },
    storage::{Db, StorageError, now_millis},
};

/// Whether a request came over a connection from this machine: its peer address (as the
/// listener reported it; never a header such as `X-Forwarded-For`, which any client can set) is
/// loopback. A request without a peer address (not served by our listener) is not.
pub fn from_loopback_peer(request: &Request) -> bool {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| is_loopback(peer.ip()))
}

/// Middleware in front of the demo routes: a request from another machine gets `not_routed`'s
/// answer, exactly what a path that does not exist gets, so that a scan cannot even tell that a
/// demo is running. `not_routed` is the router's fallback (the app's 404 page).
pub async fn loopback_only<F, Fut>(not_routed: F, request: Request, next: Next) -> Response
where
    F: Fn(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    if from_loopback_peer(&request) {
        next.run(request).await
    } else {
        not_routed(request).await
    }
}

/// The audit account of the production start-up that retires a demo.
const RETIRE_ACTOR: &str = "-production";

/// (ID, name, kana, role) of the demo accounts.
const ACCOUNTS: [(&str, &str, &str, Role); 3] = [
    (
        "admin",
        "デモ 管理者",
        "デモ カンリシャ",
        Role::Administrator,
    ),
    ("staff", "デモ 受付", "デモ ウケツケ", Role::General),
    ("doctor", "デモ 医師", "デモ イシ", Role::MedicalViewer),
];

async fn demo_institution(db: &Db) -> Result<Option<String>, StorageError> {
    let row = sqlx::query("SELECT id FROM institutions WHERE is_demo = 1 ORDER BY created_at")
        .fetch_optional(db)
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get("id")?),
        None => None,
    })
}

/// In demo mode, creates the demo accounts that are missing (after the demo institution is
/// seeded). In production mode it does nothing, even if the database once served a demo.
pub async fn ensure_accounts(db: &Db, mode: Mode) -> Result<(), StorageError> {
    if mode != Mode::Demo {
        return Ok(());
    }
    let Some(institution_id) = demo_institution(db).await? else {
        return Ok(());
    };
    let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default();
    for (id, name, kana, role) in ACCOUNTS {
        if let Some(account) = accounts::by_login(db, &institution_id, id).await? {
            // Back in demo mode after a production start retired the demo: the demo accounts
            // are usable again (their passkeys stay gone; the demo route hands out codes).
            if account.view.disabled {
                let now = now_millis();
                let actor = Actor {
                    institution_id: institution_id.clone(),
                    account: "-demo".to_owned(),
                    ip: None,
                };
                let mut tx = crate::storage::begin(db).await?;
                let enabled = sqlx::query(
                    "UPDATE staff_accounts SET disabled = 0, updated_at = $1 \
                     WHERE id = $2 AND disabled = 1",
                )
                .bind(now)
                .bind(&account.internal_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if enabled > 0 {
                    audit::append(&mut tx, &actor, "account.enable", Some(id), now).await?;
                    tx.commit().await?;
                } else {
                    tx.rollback().await?;
                }
            }
            continue;
        }
        let now = now_millis();
        let actor = Actor {
            institution_id: institution_id.clone(),
            account: "-demo".to_owned(),
            ip: None,
        };
        let mut tx = crate::storage::begin(db).await?;
        audit::append(&mut tx, &actor, "account.create", Some(id), now).await?;
        let account = NewAccount {
            id: id.to_owned(),
            name: name.to_owned(),
            kana: kana.to_owned(),
            role,
            start_date: start,
        };
        if accounts::create_in(&mut tx, &institution_id, &account, now)
            .await?
            .is_some()
        {
            tx.commit().await?;
        } else {
            // Another instance created it first.
            tx.rollback().await?;
        }
    }
    Ok(())
}

/// Runs one statement of [`retire`] (`$1` the institution, `$2` the time if used) and counts the
/// rows it changed.
async fn rows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    institution_id: &str,
    now: i64,
    sql: String,
) -> Result<u64, StorageError> {
    let query = sqlx::query(&sql).bind(institution_id);
    let query = if sql.contains("$2") {
        query.bind(now)
    } else {
        query
    };
    Ok(query.execute(&mut **tx).await?.rows_affected())
}

/// What [`retire`] removed from the demo institution: counts only.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Retired {
    pub passkeys: u64,
    pub console_sessions: u64,
    pub enrolment_codes: u64,
    pub ceremonies: u64,
    pub accounts_disabled: u64,
    pub links_revoked: u64,
    pub api_tokens_revoked: u64,
}

impl Retired {
    fn is_empty(&self) -> bool {
        *self == Retired::default()
    }

    /// The audit row's target: `passkeys=2 sessions=1 …`.
    pub fn summary(&self) -> String {
        format!(
            "passkeys={} sessions={} enrolment_codes={} ceremonies={} accounts_disabled={} \
             links_revoked={} api_tokens_revoked={}",
            self.passkeys,
            self.console_sessions,
            self.enrolment_codes,
            self.ceremonies,
            self.accounts_disabled,
            self.links_revoked,
            self.api_tokens_revoked
        )
    }
}

/// At a production start: takes every way in away from the demo institution (if this database
/// ever had one). Its staff — the demo accounts and any a visitor created there — lose their
/// passkeys, console sessions, unused enrolment codes and WebAuthn ceremonies in progress, and
/// are disabled; its open reception links and API tokens are revoked, so that a printed demo QR
/// code leads nowhere. The demo institution itself and its audit chain stay, as records.
///
/// One transaction; the audit row (account `-production`, action `demo.retire`, the counts as
/// target) is written in it, and a warn line logs the counts. Idempotent: once nothing is left
/// it changes, logs and audits nothing and returns `None` — also when two instances start at
/// once (the second finds the rows gone).
pub async fn retire(db: &Db, now: i64) -> Result<Option<Retired>, StorageError> {
    let Some(institution_id) = demo_institution(db).await? else {
        return Ok(None);
    };
    const STAFF: &str = "SELECT id FROM staff_accounts WHERE institution_id = $1";
    let mut tx = crate::storage::begin(db).await?;
    let retired = Retired {
        passkeys: rows(
            &mut tx,
            &institution_id,
            now,
            format!("DELETE FROM staff_passkeys WHERE account_id IN ({STAFF})"),
        )
        .await?,
        console_sessions: rows(
            &mut tx,
            &institution_id,
            now,
            format!("DELETE FROM console_sessions WHERE account_id IN ({STAFF})"),
        )
        .await?,
        enrolment_codes: rows(
            &mut tx,
            &institution_id,
            now,
            format!(
                "DELETE FROM enrolment_codes WHERE used_at IS NULL AND account_id IN ({STAFF})"
            ),
        )
        .await?,
        ceremonies: rows(
            &mut tx,
            &institution_id,
            now,
            format!("DELETE FROM webauthn_ceremonies WHERE account_id IN ({STAFF})"),
        )
        .await?,
        accounts_disabled: rows(
            &mut tx,
            &institution_id,
            now,
            "UPDATE staff_accounts SET disabled = 1, updated_at = $2 \
             WHERE institution_id = $1 AND disabled = 0"
                .to_owned(),
        )
        .await?,
        links_revoked: rows(
            &mut tx,
            &institution_id,
            now,
            "UPDATE reception_links SET revoked_at = $2 \
             WHERE institution_id = $1 AND revoked_at IS NULL"
                .to_owned(),
        )
        .await?,
        api_tokens_revoked: rows(
            &mut tx,
            &institution_id,
            now,
            "UPDATE api_tokens SET revoked_at = $2 \
             WHERE institution_id = $1 AND revoked_at IS NULL"
                .to_owned(),
        )
        .await?,
    };
    if retired.is_empty() {
        tx.rollback().await?;
        return Ok(None);
    }
    let actor = Actor {
        institution_id,
        account: RETIRE_ACTOR.to_owned(),
        ip: None,
    };
    audit::append(
        &mut tx,
        &actor,
        "demo.retire",
        Some(&retired.summary()),
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::warn!(
        passkeys = retired.passkeys,
        console_sessions = retired.console_sessions,
        enrolment_codes = retired.enrolment_codes,
        ceremonies = retired.ceremonies,
        accounts_disabled = retired.accounts_disabled,
        links_revoked = retired.links_revoked,
        api_tokens_revoked = retired.api_tokens_revoked,
        "production mode on a database that served a demo: the demo institution's passkeys, \
         sessions and enrolment codes were removed, its accounts disabled and its links and API \
         tokens revoked (recorded in its audit log as demo.retire)"
    );
    Ok(Some(retired))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoCode {
    pub account: String,
}

/// `POST /api/console/demo/enrolment-code {account}` (demo mode only).
pub async fn enrolment_code(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    body: JsonBody<DemoCode>,
) -> Result<(StatusCode, Json<CodeIssued>), ApiError> {
    if state.config.mode != Mode::Demo {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found"));
    }
    let body = json_body(body)?;
    let unknown = || ApiError::new(StatusCode::NOT_FOUND, "account_unknown");
    let institution_id = demo_institution(&state.db).await?.ok_or_else(unknown)?;
    let actor = Actor {
        institution_id,
        account: "-demo".to_owned(),
        ip,
    };
    let issued = accounts::issue_for(
        &state.db,
        &state.config.origin_string(),
        &actor,
        &body.account,
        state.clock.now_ms(),
    )
    .await?
    .ok_or_else(unknown)?;
    Ok((StatusCode::CREATED, Json(issued)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoClock {
    /// Forward only, one hour to thirty days.
    pub advance_hours: i64,
}

#[derive(Debug, serde::Serialize)]
pub struct ClockMoved {
    pub now: chrono::DateTime<chrono::Utc>,
}

/// `POST /api/console/demo/clock {advance_hours}` (demo mode only, a signed-in administrator of
/// the demo institution): moves the business clock forward, so that a demo (and the browser
/// suite) can watch a consent window close without waiting two days. Every session idles out
/// on the way; the move is logged.
pub async fn move_clock(
    State(state): State<AppState>,
    staff: Staff,
    body: JsonBody<DemoClock>,
) -> Result<Json<ClockMoved>, ApiError> {
    if state.config.mode != Mode::Demo {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found"));
    }
    super::require_role(&staff, &[Role::Administrator])?;
    if demo_institution(&state.db).await?.as_deref() != Some(staff.institution_id.as_str()) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "role_not_permitted"));
    }
    let body = json_body(body)?;
    if !(1..=24 * 30).contains(&body.advance_hours) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "advance_hours_invalid",
        ));
    }
    audit::record(
        &state.db,
        &staff.actor(),
        "demo.clock",
        Some(&format!("+{}h", body.advance_hours)),
        state.clock.now_ms(),
    )
    .await?;
    state.clock.advance_ms(body.advance_hours * 3600 * 1000);
    if let Some(simulator) = &state.simulator_clock {
        simulator.advance(chrono::Duration::hours(body.advance_hours));
    }
    Ok(Json(ClockMoved {
        now: state.clock.now(),
    }))
}
