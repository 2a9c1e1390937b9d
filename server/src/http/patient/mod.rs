//! The patient's reception API, used by the patient pages (and by any client that speaks it):
//! start a session from a link, record the choices, get a challenge for the card to sign, submit
//! the signed registration, follow its status, cancel. The session lives in an HttpOnly,
//! SameSite=Strict cookie (`__Host-` over https) whose value the database keeps only hashed;
//! every call carries the [`API_HEADER`] and, from a browser, our own origin.
//!
//! Every refusal is `{"error": "<code>"}` with a status that fits; the pages turn codes into
//! words. One file per step of a reception:
//!
//! - `session` — start a session from a link, record the choices (`validate_choices`)
//! - `challenge` — the one-time challenge the card signs, bound to the choices
//! - `registration` — verify the card's proof and queue the registration (also used by the
//!   console's 目視確認)
//! - `reception` — the reception as it stands, and its cancellation
//! - `insurance_use` — 健康保険証利用登録 when eligibility found the card not registered
//!
//! This file holds the checks every step makes: origin and API header, live session, open link,
//! rate limit.

pub mod challenge;
pub mod insurance_use;
pub mod reception;
pub mod registration;
pub mod session;

use axum::http::{HeaderMap, StatusCode, header};
use uketsuke_app::api::InvalidLink;

use super::{
    cookies::session_token,
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

/// The request header every call of the JSON patient API carries (the same as the console's,
/// [`crate::console::CSRF_HEADER`], with the value `1`). A form or a link on another site cannot
/// send it, and a script of another site can only after a CORS preflight, which this server
/// never grants: so a request with it was made by our own pages (or by a client that is not a
/// browser, and then carries no cookie of a patient's).
pub const API_HEADER: &str = crate::console::CSRF_HEADER;

/// `Origin` check shared by the JSON API and the forms: browsers send `Origin` on every
/// POST/PUT, and it must be ours. Our pages are served with `Referrer-Policy: same-origin`, under
/// which browsers send our own origin, not `null`, on our own forms and calls; `Origin: null`
/// comes from sandboxed frames, `data:` documents and redirects through other sites, and is
/// refused. Clients that are not browsers send none. A request with two `Origin` headers (no
/// browser sends that) is refused whatever their order.
pub(crate) fn same_origin(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    if headers.get_all(header::ORIGIN).iter().count() > 1 {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "foreign_origin"));
    }
    match headers.get(header::ORIGIN) {
        None => Ok(()),
        Some(origin) if origin.as_bytes() == state.config.origin_string().as_bytes() => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::FORBIDDEN, "foreign_origin")),
    }
}

/// The checks at the door of every JSON patient API call, reading or writing: our origin (or
/// none) and the [`API_HEADER`] (`403 {"error": "api_header_missing"}` without it).
pub(crate) fn api_request(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    same_origin(state, headers)?;
    let marked = headers
        .get(API_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1");
    if !marked {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "api_header_missing"));
    }
    Ok(())
}

/// The live session of the request's cookie: 401 `session_missing` / `session_expired`,
/// 400 `session_cookie_duplicate` with two session cookies.
pub(crate) async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> ApiResult<receptions::Session> {
    let Some(token) = session_token(&state.config, headers)? else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "session_missing"));
    };
    receptions::session(&state.db, token, state.clock.now_ms())
        .await?
        .ok_or(ApiError::new(StatusCode::UNAUTHORIZED, "session_expired"))
}

/// [`current_session`] and the link it was started from, read in one statement. The link's
/// checks are [`open_link`]'s, but their refusal is handed back rather than raised, so that
/// each step refuses in its own order (a session's state before its link's).
pub(crate) async fn session_and_link(
    state: &AppState,
    headers: &HeaderMap,
) -> ApiResult<(receptions::Session, ApiResult<OpenLink>)> {
    let Some(token) = session_token(&state.config, headers)? else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "session_missing"));
    };
    let (session, link) = receptions::session_with_link(&state.db, token, state.clock.now_ms())
        .await?
        .ok_or(ApiError::new(StatusCode::UNAUTHORIZED, "session_expired"))?;
    Ok((session, link.map_err(invalid_link).and_then(accepting)))
}

pub(crate) async fn open_link(state: &AppState, link_id: &str) -> ApiResult<OpenLink> {
    links::resolve(&state.db, link_id, state.clock.now_ms())
        .await?
        .map_err(invalid_link)
        .and_then(accepting)
}

/// The link, if its institution takes receptions of its kind (`403 not_accepting`).
fn accepting(link: OpenLink) -> ApiResult<OpenLink> {
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
