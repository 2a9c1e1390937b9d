//! Security headers on every response, and the per-request nonce that lets exactly the page's
//! own inline scripts run under the Content-Security-Policy.

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use base64::Engine as _;
use http::{HeaderName, HeaderValue, header};
use rand::RngCore;
use uketsuke_app::ssr::CspNonce;

/// What the middleware needs to know about this deployment.
#[derive(Debug, Clone, Copy)]
pub struct SecurityPolicy {
    /// Send HSTS: only when browsers reach the server over https.
    pub https: bool,
}

/// The policy for a page whose inline scripts carry `nonce`. WASM needs `'wasm-unsafe-eval'`;
/// nothing else may run, load from elsewhere, or frame the page.
pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
         manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; \
         object-src 'none'"
    )
}

fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

const HSTS: &str = "max-age=63072000; includeSubDomains";
const PERMISSIONS: &str = "camera=(), microphone=(), geolocation=(), payment=(), usb=(self)";

pub async fn security_headers(
    State(policy): State<SecurityPolicy>,
    mut request: Request,
    next: Next,
) -> Response {
    let nonce = new_nonce();
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(&nonce)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    let fixed: [(HeaderName, &'static str); 6] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (HeaderName::from_static("permissions-policy"), PERMISSIONS),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if policy.https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    // Pages may carry personal data: never keep them in a shared or back-forward cache.
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html || !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_fresh_and_url_safe() {
        let a = new_nonce();
        assert_ne!(a, new_nonce());
        assert_eq!(a.len(), 22);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn policy_allows_wasm_and_only_the_nonce() {
        let csp = content_security_policy("abc");
        assert!(csp.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval';"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
    }
}
