//! Cookies: reading one from a request (the patient's reception session and the staff console's
//! session both come this way), and the `Set-Cookie` value of a reception session.

use axum::http::{HeaderMap, header};

use crate::{AppState, storage::challenges};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "uk_session";

/// The value of the cookie `name` in the request's `Cookie` headers, if present.
pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value of a new session: HttpOnly, SameSite=Strict, Secure over https.
pub(crate) fn session_cookie(state: &AppState, session_id: &str) -> String {
    let secure = if state.config.serves_https() {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        challenges::SESSION_TTL_MS / 1000
    )
}
