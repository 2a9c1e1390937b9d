//! The patient's reception API, used by the patient pages (and by any client that speaks it):
//! start a session from a link, record the choices, get a challenge for the card to sign, submit
//! the signed registration, follow its status, cancel. The session lives in an HttpOnly,
//! SameSite=Strict cookie; state-changing calls from a browser must come from our own origin.
//!
//! Every refusal is `{"error": "<code>"}` with a status that fits; the pages turn codes into
//! words. One file per step of a reception:
//!
//! - `session` — start a session from a link, record the choices (`validate_choices`)
//! - `challenge` — the one-time challenge the card signs, bound to the choices
//! - `registration` — verify the card's proof and queue the registration (also used by the
//!   console's 目視確認)
//! - `reception` — the reception as it stands, and its cancellation
//!
//! This file holds the checks every step makes: origin, live session, open link, rate limit.

pub mod challenge;
pub mod reception;
pub mod registration;
pub mod session;

use axum::http::{HeaderMap, StatusCode, header};
use uketsuke_app::api::InvalidLink;

use super::{
    cookies::{SESSION_COOKIE, cookie_value},
    error::{ApiError, ApiResult},
    rate_limit::Decision,
};
use crate::{
    AppState,
    storage::{
        links::{self, OpenLink},
        receptions,
    },
};

fn invalid_link(invalid: InvalidLink) -> ApiError {
    match invalid {
        InvalidLink::Unknown => ApiError::new(StatusCode::NOT_FOUND, "link_unknown"),
        InvalidLink::Revoked => ApiError::new(StatusCode::GONE, "link_revoked"),
        InvalidLink::Expired => ApiError::new(StatusCode::GONE, "link_expired"),
    }
}

/// Browsers send `Origin` on every POST/PUT; when it names a site it must be ours (CSRF).
/// Clients that are not browsers send none. Under our `Referrer-Policy: no-referrer` browsers
/// send `Origin: null` for our own forms and calls; that is accepted, since the session cookie
/// is SameSite=Strict (another site's request never carries it) and JSON bodies need a CORS
/// preflight this server never grants.
pub(crate) fn same_origin(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    match headers.get(header::ORIGIN) {
        None => Ok(()),
        Some(origin) if origin.as_bytes() == state.config.origin_string().as_bytes() => Ok(()),
        Some(origin) if origin.as_bytes() == b"null" => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::FORBIDDEN, "foreign_origin")),
    }
}

pub(crate) async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> ApiResult<receptions::Session> {
    let Some(id) = cookie_value(headers, SESSION_COOKIE) else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "session_missing"));
    };
    receptions::session(&state.db, id, state.clock.now_ms())
        .await?
        .ok_or(ApiError::new(StatusCode::UNAUTHORIZED, "session_expired"))
}

pub(crate) async fn open_link(state: &AppState, link_id: &str) -> ApiResult<OpenLink> {
    let link = links::resolve(&state.db, link_id, state.clock.now_ms())
        .await?
        .map_err(invalid_link)?;
    if !link.accepting {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "not_accepting"));
    }
    Ok(link)
}

pub(crate) fn per_link(state: &AppState, link_id: &str) -> ApiResult<()> {
    match state.limits.per_link.check(&link_id.to_owned()) {
        Decision::Allow => Ok(()),
        Decision::Deny { .. } => Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited")),
    }
}
