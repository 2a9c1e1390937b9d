//! The institution console's server side (SPEC §7): JSON routes under `/api/console/…` for
//! staff signed in with a passkey. One file per resource:
//!
//! - `session` — the `uk_console` cookie, idle and absolute timeouts, the [`Staff`] extractor
//! - `passkeys` — WebAuthn enrolment with a one-time code, discoverable sign-in, sign-out
//! - `accounts` — staff accounts, enrolment codes, passkey lists (administrators)
//! - `receptions` — the day's list, detail with eligibility, 照会番号, home visits, withdrawal,
//!   medical information through [`crate::gate`], exports for the レセコン
//! - `events` — server-sent events naming receptions that changed
//! - `links` — reception links and their QR codes
//! - `settings` — the institution's settings (administrators)
//! - `audit` — the hash-chained audit log, its view and export
//! - `csv_file` — CSV written and read with the `csv` crate: defused cells, UTF-8 or cp932
//! - `reads` — 閲覧履歴: the reads of each reception, for the patient's 同意照会
//! - `roles` — the stable database form of a role
//! - `visual_check` — 目視確認: a staff member confirms a patient's face on an institution device
//! - `demo` — demo accounts, the demo-only routes (loopback peers only), retiring a demo
//! - `cli` — `uketsuke-server admin create`, `api-token create`, `audit verify`
//!
//! Every route answers only about the signed-in account's institution: another institution's
//! reception or link is "not found". Every state-changing request must carry our `Origin` and
//! the `x-uketsuke-csrf: 1` header (see [`csrf`]).

pub mod accounts;
pub mod audit;
pub mod cli;
pub mod csv_file;
pub mod demo;
pub mod events;
pub mod links;
pub mod pages;
pub mod passkeys;
pub mod reads;
pub mod receptions;
pub mod roles;
pub mod session;
pub mod settings;
pub mod visual_check;

use axum::{
    Router,
    extract::{Request, State},
    http::{Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use chrono::NaiveDate;
use uketsuke_domain::window::jst_start_of_day;

pub use session::Staff;

use crate::{AppState, clock::to_ms, config::Mode, gate::Role, http::error::ApiError};

/// The header a console page adds to every state-changing request. A cross-site form cannot
/// set it, and a cross-site script cannot send it without a CORS preflight we never answer.
pub const CSRF_HEADER: &str = "x-uketsuke-csrf";

/// All console routes, with the CSRF check in front of them.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/api/console/enrol/start", post(passkeys::enrol_start))
        .route("/api/console/enrol/finish", post(passkeys::enrol_finish))
        .route("/api/console/signin/start", post(passkeys::signin_start))
        .route("/api/console/signin/finish", post(passkeys::signin_finish))
        .route("/api/console/signout", post(passkeys::signout))
        .route(
            "/api/console/signout-everywhere",
            post(passkeys::signout_everywhere),
        )
        .route("/api/console/me", get(passkeys::me))
        .route("/api/console/receptions", get(receptions::list))
        .route("/api/console/events", get(events::stream))
        .route("/api/console/receptions/{id}", get(receptions::detail))
        .route(
            "/api/console/receptions/{id}/patient-ref",
            axum::routing::put(receptions::set_patient_ref),
        )
        .route(
            "/api/console/receptions/{id}/home-visits",
            post(receptions::record_home_visit),
        )
        .route(
            "/api/console/receptions/{id}/withdrawal",
            post(receptions::withdraw),
        )
        .route(
            "/api/console/receptions/{id}/medical/{category}",
            get(receptions::medical),
        )
        .route(
            "/api/console/receptions/{id}/eligibility.csv",
            get(receptions::export_csv),
        )
        .route(
            "/api/console/receptions/{id}/eligibility.json",
            get(receptions::export_json),
        )
        .route(
            "/api/console/exports/receptions",
            get(receptions::rececon::check),
        )
        .route(
            "/api/console/exports/receptions.csv",
            get(receptions::rececon::file),
        )
        .route(
            "/api/console/exports/receptions-report.csv",
            get(receptions::rececon::report),
        )
        .route(
            "/api/console/patient-refs",
            post(receptions::rececon::upload_patient_refs),
        )
        .route("/api/console/links", get(links::list).post(links::create))
        .route("/api/console/links/{id}", delete(links::revoke))
        .route("/api/console/links/{id}/qr.svg", get(links::qr_svg))
        .route(
            "/api/console/settings",
            get(settings::get_settings).put(settings::put_settings),
        )
        .route(
            "/api/console/accounts",
            get(accounts::list).post(accounts::create),
        )
        .route(
            "/api/console/accounts/{account}/disable",
            post(accounts::disable),
        )
        .route(
            "/api/console/accounts/{account}/enable",
            post(accounts::enable),
        )
        .route(
            "/api/console/accounts/{account}/enrolment-code",
            post(accounts::issue_code),
        )
        .route(
            "/api/console/accounts/{account}/passkeys",
            get(accounts::passkeys),
        )
        .route(
            "/api/console/accounts/{account}/passkeys/{passkey}",
            delete(accounts::remove_passkey),
        )
        // 目視確認: the staff member's half of a patient's reception on an institution device.
        .route(
            "/api/console/visual-check",
            post(visual_check::visual_check),
        )
        .route("/api/console/audit", get(audit::list))
        .route("/api/console/audit.csv", get(audit::export));
    routes
        .layer(middleware::from_fn_with_state(state.clone(), csrf))
        .with_state(state)
}

/// The demo-only routes (the enrolment-code shortcut for the e2e suite's virtual authenticator,
/// the clock), with the CSRF check; `None` in production, where the paths are not routed at
/// all. The caller puts [`demo::loopback_only`] in front of them.
pub fn demo_router(state: AppState) -> Option<Router> {
    if state.config.mode != Mode::Demo {
        return None;
    }
    let routes = Router::new()
        .route(
            "/api/console/demo/enrolment-code",
            post(demo::enrolment_code),
        )
        .route("/api/console/demo/clock", post(demo::move_clock));
    Some(
        routes
            .layer(middleware::from_fn_with_state(state.clone(), csrf))
            .with_state(state),
    )
}

/// Refuses a state-changing request (anything but GET, HEAD, OPTIONS) unless its `Origin` is
/// our public origin and it carries `x-uketsuke-csrf: 1`. Browsers always send `Origin` on such
/// requests, so a missing one means a client we do not serve. Our pages are served with
/// `Referrer-Policy: same-origin`, so our own calls carry our origin; `Origin: null` (a
/// sandboxed frame, a `data:` page, a privacy redirect) is refused like any foreign origin. The
/// custom header is a second lock: a cross-origin request carrying it needs a CORS preflight,
/// which this server never grants.
pub async fn csrf(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method();
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let headers = request.headers();
    // Exactly one Origin, ours (no browser sends two).
    let mut origins = headers.get_all(header::ORIGIN).iter();
    let origin_ok = origins
        .next()
        .is_some_and(|o| o.as_bytes() == state.config.origin_string().as_bytes())
        && origins.next().is_none();
    if !origin_ok {
        return ApiError::new(StatusCode::FORBIDDEN, "origin_refused").into_response();
    }
    let token_ok = headers
        .get(CSRF_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1");
    if !token_ok {
        return ApiError::new(StatusCode::FORBIDDEN, "csrf_header_missing").into_response();
    }
    next.run(request).await
}

/// 403 unless the signed-in account has one of `roles`.
pub fn require_role(staff: &Staff, roles: &[Role]) -> Result<(), ApiError> {
    if roles.contains(&staff.role) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "role_not_permitted"))
    }
}

/// The instants `[start, end)` of a JST calendar day given as `YYYY-MM-DD`.
pub fn jst_day_range(text: &str) -> Option<(i64, i64)> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let next = date.succ_opt()?;
    Some((to_ms(jst_start_of_day(date)), to_ms(jst_start_of_day(next))))
}

/// Free text from staff: at most `max` characters, no control characters, bidirectional
/// controls or zero-width characters ([`uketsuke_domain::text`]).
pub use crate::storage::links::{text_ok, text_refusal};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jst_day_is_24_hours_from_15_00_utc() {
        let (start, end) = jst_day_range("2026-11-21").expect("date");
        assert_eq!(end - start, 24 * 3600 * 1000);
        assert_eq!(
            crate::clock::from_ms(start).to_rfc3339(),
            "2026-11-20T15:00:00+00:00"
        );
        assert!(jst_day_range("2026-13-01").is_none());
        assert!(jst_day_range("yesterday").is_none());
    }
}
