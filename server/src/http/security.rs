//! Security headers on every response, the per-request nonce that lets exactly the page's
//! own inline scripts run under the Content-Security-Policy, and the rule that no response
//! redirects to another site.

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
#[derive(Debug, Clone)]
pub struct SecurityPolicy {
    /// Send HSTS: only when browsers reach the server over https.
    pub https: bool,
    /// Our public origin as browsers write it (`https://clinic.example`, no trailing slash).
    pub origin: String,
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
        // Our own origin in `Origin` (not `null`) on our own forms and calls, so the patient
        // API can refuse `Origin: null`; other sites get no referrer at all.
        (header::REFERRER_POLICY, "same-origin"),
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

/// Whether `target` (a `Location` or `Referer` value) stays on `origin`: a path on this host
/// (`/…`, but not `//host` or `/\\host`, which browsers read as another host), or an absolute
/// URL on exactly our origin.
pub fn same_origin_target(target: &str, origin: &str) -> bool {
    let path_only = |t: &str| {
        t.starts_with('/')
            && !t.starts_with("//")
            && !t.starts_with("/\\")
            && !t.bytes().any(|b| b.is_ascii_control())
    };
    if path_only(target) {
        return true;
    }
    match target.strip_prefix(origin) {
        Some("") => true,
        Some(rest) => path_only(rest),
        None => false,
    }
}

/// Middleware: no response of ours sends a browser to another site. Leptos answers a server
/// function posted by a plain HTML form with a redirect to the request's `Referer`; another site
/// can post such a form with its own address as the referrer and use us as an open redirect
/// (a trusted link that lands on a phishing page). A `Referer` that is not ours is removed before
/// any handler sees it, and a `Location` that is not ours is replaced by `/`.
pub async fn same_origin_redirects(
    State(policy): State<SecurityPolicy>,
    mut request: Request,
    next: Next,
) -> Response {
    let foreign_referer = request.headers().get(header::REFERER).is_some_and(|r| {
        !r.to_str()
            .is_ok_and(|r| same_origin_target(r, &policy.origin))
    });
    if foreign_referer {
        request.headers_mut().remove(header::REFERER);
    }
    let mut response = next.run(request).await;
    let foreign_location = response.headers().get(header::LOCATION).is_some_and(|l| {
        !l.to_str()
            .is_ok_and(|l| same_origin_target(l, &policy.origin))
    });
    if foreign_location {
        tracing::warn!("a redirect to another site was replaced");
        response
            .headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static("/"));
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
    fn redirect_targets_stay_on_our_origin() {
        let ours = "https://clinic.example";
        for good in [
            "/",
            "/r/abc/done?x=1",
            "https://clinic.example",
            "https://clinic.example/r/a",
        ] {
            assert!(same_origin_target(good, ours), "{good}");
        }
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example/",
            "https://clinic.example.evil.example/",
            "https://clinic.example@evil.example/",
            "http://clinic.example/",
            "javascript:alert(1)",
            "",
        ] {
            assert!(!same_origin_target(bad, ours), "{bad}");
        }
    }

    #[test]
    fn policy_allows_wasm_and_only_the_nonce() {
        let csp = content_security_policy("abc");
        assert!(csp.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval';"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
    }
}
