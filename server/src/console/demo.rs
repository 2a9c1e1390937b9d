//! Demo staff: in demo mode the demo institution gets three accounts — `admin`
//! (administrator), `staff` (general) and `doctor` (medical viewer) — and
//! `POST /api/console/demo/enrolment-code {account}` hands out a fresh enrolment code for one of
//! them without signing in, so that a demo visitor or the e2e suite (Chromium's virtual
//! authenticator) can register a passkey; `POST /api/console/demo/clock` moves the business
//! clock forward to show a consent window closing. Neither is routed outside demo mode.

use axum::{Json, extract::State, http::StatusCode};
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
    config::Mode,
    gate::Role,
    http::{
        body::{JsonBody, json_body},
        error::ApiError,
    },
    storage::{Db, StorageError, now_millis},
};

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
        if accounts::by_login(db, &institution_id, id).await?.is_some() {
            continue;
        }
        let now = now_millis();
        let actor = Actor {
            institution_id: institution_id.clone(),
            account: "-demo".to_owned(),
            ip: None,
        };
        let mut tx = db.begin().await?;
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
