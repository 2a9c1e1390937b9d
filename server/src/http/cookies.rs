//! Cookies: reading one from a request (the patient's reception session and the staff console's
//! session both come this way), the `Set-Cookie` values of a reception session, and the refusal
//! of a request that carries two session cookies.
//!
//! Over https (production) the session cookie is `__Host-uk_session`: browsers accept that name
//! only with `Secure`, `Path=/` and no `Domain`, so neither a sibling subdomain nor a network
//! attacker on plain http can plant or overwrite it. An unprefixed `uk_session` is then ignored.
//! A demo served over plain http (`http://127.0.0.1:…`) keeps the unprefixed name: browsers
//! refuse a `__Host-` cookie without `Secure`, and whether a `Secure` cookie is kept on an http
//! loopback address differs between browsers (Chromium and Firefox keep one for `localhost`,
//! Safari does not, and `127.0.0.1` is treated differently again), so the demo would break.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{AppState, config::Config, http::error::ApiError, storage::challenges};

/// The session cookie's name over plain http (the loopback demo).
pub const SESSION_COOKIE: &str = "uk_session";
/// The session cookie's name over https (production): see the module's note.
pub const SESSION_COOKIE_HOST: &str = "__Host-uk_session";

/// The session cookie's name for this deployment.
pub fn session_cookie_name(config: &Config) -> &'static str {
    if config.serves_https() {
        SESSION_COOKIE_HOST
    } else {
        SESSION_COOKIE
    }
}

/// The values of cookie `name` in the request's `Cookie` headers, in the order sent.
pub(crate) fn cookie_values<'a, 'n>(
    headers: &'a HeaderMap,
    name: &'n str,
) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The value of the cookie `name` in the request's `Cookie` headers, if present.
pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    cookie_values(headers, name).next()
}

/// How many session cookies the request carries, under either name.
fn session_cookie_count(headers: &HeaderMap) -> usize {
    cookie_values(headers, SESSION_COOKIE).count()
        + cookie_values(headers, SESSION_COOKIE_HOST).count()
}

/// The refusal of a request carrying more than one session cookie (the same name twice, or the
/// prefixed and the unprefixed name): which one is the patient's cannot be known, and picking
/// one is what a planted cookie counts on.
pub fn duplicate_session_cookie() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "session_cookie_duplicate")
}

/// The session cookie's value: `Ok(None)` without one, an error with two or more.
pub(crate) fn session_token<'a>(
    config: &Config,
    headers: &'a HeaderMap,
) -> Result<Option<&'a str>, ApiError> {
    if session_cookie_count(headers) > 1 {
        return Err(duplicate_session_cookie());
    }
    Ok(cookie_value(headers, session_cookie_name(config)))
}

fn attributes(config: &Config) -> &'static str {
    if config.serves_https() {
        "; Path=/; HttpOnly; SameSite=Strict; Secure"
    } else {
        "; Path=/; HttpOnly; SameSite=Strict"
    }
}

/// The `Set-Cookie` value of a new session: HttpOnly, SameSite=Strict, Path=/, no Domain;
/// `__Host-` and Secure over https.
pub(crate) fn session_cookie(state: &AppState, session_token: &str) -> String {
    format!(
        "{}={session_token}{}; Max-Age={}",
        session_cookie_name(&state.config),
        attributes(&state.config),
        challenges::SESSION_TTL_MS / 1000
    )
}

/// The `Set-Cookie` value that makes the browser drop its session cookie.
pub fn clear_session_cookie(config: &Config) -> String {
    format!(
        "{}={}; Max-Age=0",
        session_cookie_name(config),
        attributes(config)
    )
}

/// Middleware: refuses, before any route sees it, a request carrying two session cookies
/// (`400 {"error": "session_cookie_duplicate"}`), and tells the browser to drop them both so
/// that the patient can start again from the link.
pub async fn refuse_duplicate_session_cookies(
    State(config): State<std::sync::Arc<Config>>,
    request: Request,
    next: Next,
) -> Response {
    if session_cookie_count(request.headers()) <= 1 {
        return next.run(request).await;
    }
    tracing::warn!("a request carried two session cookies");
    let mut response = duplicate_session_cookie().into_response();
    let clear = [
        clear_session_cookie(&config),
        format!("{SESSION_COOKIE}=; Path=/; Max-Age=0"),
    ];
    for value in clear {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for c in cookies {
            map.append(header::COOKIE, HeaderValue::from_str(c).expect("ascii"));
        }
        map
    }

    #[test]
    fn two_session_cookies_are_counted_under_either_name() {
        assert_eq!(session_cookie_count(&headers(&["uk_lang=en"])), 0);
        assert_eq!(
            session_cookie_count(&headers(&["uk_session=a; uk_lang=en"])),
            1
        );
        assert_eq!(
            session_cookie_count(&headers(&["uk_session=a; uk_session=b"])),
            2
        );
        assert_eq!(
            session_cookie_count(&headers(&["__Host-uk_session=a", "uk_session=b"])),
            2
        );
        // A name that merely ends like ours is another cookie.
        assert_eq!(session_cookie_count(&headers(&["xuk_session=a"])), 0);
    }
}
