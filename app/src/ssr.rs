//! The server side of the UI: the interface through which the page-data functions reach the server's
//! storage (implemented in the `server` crate, so this crate stays free of databases), and what
//! the page needs from the HTTP request (cookies, CSP nonce, status code; the language is
//! `i18n`'s).

use std::sync::Arc;

use async_trait::async_trait;
use http::{StatusCode, request::Parts};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;

use crate::data::{CancelInfo, FlowState, LinkState};

/// Error of a data call, already stripped of detail that must not reach a browser.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DataError(pub String);

/// What the page-data functions need from the server.
#[async_trait]
pub trait PortalData: Send + Sync + 'static {
    async fn landing(&self, link_id: &str) -> Result<LinkState, DataError>;
    /// `staff_session`: the console cookie, when a staff member is signed in on this device.
    async fn flow(
        &self,
        link_id: &str,
        session: Option<&str>,
        staff_session: Option<&str>,
    ) -> Result<FlowState, DataError>;
    /// [`PortalData::flow`] for 同意照会・取消: any link that ever was, even one revoked,
    /// expired or of a kind switched off (withdrawal never depends on the clinic); only an
    /// unknown link is `Invalid`.
    async fn manage_flow(
        &self,
        link_id: &str,
        session: Option<&str>,
        staff_session: Option<&str>,
    ) -> Result<FlowState, DataError>;
    async fn cancel_view(&self, token: &str) -> Result<Option<CancelInfo>, DataError>;
    /// The reception session cookie's name in this deployment (`__Host-uk_session` over https,
    /// [`SESSION_COOKIE`] over plain http).
    fn session_cookie_name(&self) -> &'static str;
    /// The `Set-Cookie` value that drops the session cookie.
    fn clear_session_cookie(&self) -> String;
    /// The staff console's session cookie's name in this deployment (`__Host-uk_console` over
    /// https, [`CONSOLE_COOKIE`] over plain http).
    fn console_cookie_name(&self) -> &'static str;
}

/// Name of the reception session cookie over plain http (set by the server's patient routes;
/// over https the server names it `__Host-uk_session`: [`PortalData::session_cookie_name`]).
pub const SESSION_COOKIE: &str = "uk_session";
/// Name of the staff console's session cookie over plain http (set at passkey sign-in; over
/// https `__Host-uk_console`: [`PortalData::console_cookie_name`]).
pub const CONSOLE_COOKIE: &str = "uk_console";

/// The value of cookie `name` on this request, if any.
pub fn request_cookie(name: &str) -> Option<String> {
    let parts = use_context::<Parts>()?;
    crate::cookie::values(&parts.headers, name)
        .next()
        .map(str::to_owned)
}

/// The reception session cookie's value this request carries, if any (the server has already
/// refused a request with two).
pub fn session_cookie() -> Option<String> {
    let name = use_context::<Portal>()
        .map(|p| p.0.session_cookie_name())
        .unwrap_or(SESSION_COOKIE);
    request_cookie(name)
}

/// The staff console's session cookie on this request, if it carries exactly one (an
/// institution device): two are ignored, as the console itself refuses them.
pub fn console_cookie() -> Option<String> {
    let name = use_context::<Portal>()
        .map(|p| p.0.console_cookie_name())
        .unwrap_or(CONSOLE_COOKIE);
    let parts = use_context::<Parts>()?;
    let mut values = crate::cookie::values(&parts.headers, name);
    let first = values.next()?;
    values.next().is_none().then(|| first.to_owned())
}

/// Tells the browser, with this response, to drop its session cookie.
pub fn clear_session_cookie() {
    let (Some(options), Some(portal)) = (use_context::<ResponseOptions>(), use_context::<Portal>())
    else {
        return;
    };
    if let Ok(value) = http::HeaderValue::from_str(&portal.0.clear_session_cookie()) {
        options.append_header(http::header::SET_COOKIE, value);
    }
}

/// Handle to the server's data, provided as context for every request.
#[derive(Clone)]
pub struct Portal(pub Arc<dyn PortalData>);

/// The per-request CSP nonce, put into the request's extensions by the server's security
/// middleware, which also writes it into the Content-Security-Policy header.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

pub fn portal_data() -> Result<Arc<dyn PortalData>, crate::api::Unavailable> {
    use_context::<Portal>()
        .map(|p| p.0)
        .ok_or(crate::api::Unavailable)
}

/// Makes the page's inline scripts carry the nonce that the response's CSP allows.
pub fn provide_request_nonce() {
    if let Some(parts) = use_context::<Parts>()
        && let Some(nonce) = parts.extensions.get::<CspNonce>()
    {
        provide_context(leptos::nonce::Nonce::from_value(nonce.0.clone()));
    }
}

/// Sets the HTTP status of the page being rendered (pages render with `SsrMode::Async` where
/// this matters, so the status is known before the first byte is sent).
pub fn set_status(status: StatusCode) {
    if let Some(options) = use_context::<ResponseOptions>() {
        options.set_status(status);
    }
}
