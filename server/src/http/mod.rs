//! The HTTP surface: one router with the pages (server-rendered Leptos, their data inside them),
//! the patient and institution APIs, the built site's static files, and the probes; wrapped in the layers every response passes
//! through (security headers, compression, tracing, body limit).

pub mod body;
pub mod cookies;
pub mod error;
pub mod health;
pub mod institution_api;
pub mod patient;
pub mod patient_forms;
pub mod patient_manage;
pub mod rate_limit;
pub mod security;

use std::time::Duration;

use axum::{
    Router, middleware,
    routing::{get, post, put},
};
use http::{HeaderValue, Request, header};
use leptos::prelude::*;
use tower::ServiceBuilder;
use tower_http::{
    CompressionLevel,
    compression::{
        CompressionLayer,
        predicate::{DefaultPredicate, Predicate, SizeAbove},
    },
    limit::RequestBodyLimitLayer,
    services::ServeDir,
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing::Level;
use uketsuke_app::{shell, ssr::Portal};

use crate::AppState;
use security::{SecurityPolicy, security_headers};

/// Requests carry at most a few kilobytes of form data; certificates and signatures later stay
/// well under this.
const BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    let leptos_options = state.leptos.clone();
    let portal = Portal(state.portal.clone());
    let context = move || provide_context(portal.clone());

    let site = state.config.site_root.clone();
    let pkg = ServiceBuilder::new()
        // File names carry no hash yet: browsers revalidate (cheap 304s) instead of caching.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .service(
            ServeDir::new(site.join("pkg"))
                .precompressed_br()
                .precompressed_gzip(),
        );
    let public_files = ServeDir::new(&site).precompressed_br().precompressed_gzip();

    let app_shell = {
        let options = leptos_options.clone();
        move || shell(options.clone())
    };
    // Every page: the app picks the screen from the address (uketsuke_app::address), rendered
    // in full (its data awaited) before the status is sent; an address of no screen gets the
    // app's own 404 page in the visitor's language.
    // Rendering spawns its tasks on Leptos's executor: tokio's (an error only says it is set).
    let _ = any_spawner::Executor::init_tokio();
    let render = leptos_axum::render_app_async_with_context(context, app_shell);
    let not_found = render.clone();
    let not_routed = render.clone();
    // Demo mode: the demo routes answer this machine only; another peer gets the 404 page an
    // unrouted path gets (issue 12 §3).
    let demo = crate::console::demo_router(state.clone()).map(|routes| {
        let not_routed = not_routed.clone();
        routes.layer(middleware::from_fn(
            move |request: axum::extract::Request, next: middleware::Next| {
                crate::console::demo::loopback_only(not_routed.clone(), request, next)
            },
        ))
    });
    let page = get(move |request: axum::extract::Request| render(request));
    let pages = uketsuke_app::address::PAGE_PATHS
        .iter()
        .fold(Router::new(), |pages, path| pages.route(path, page.clone()))
        .fallback(move |request: axum::extract::Request| not_found(request));

    let probes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/status", get(health::status))
        .with_state(state.clone());

    let api = Router::new()
        .route("/api/r/{link}/session", post(patient::session::start))
        .route(
            "/api/r/{link}/manage/session",
            post(patient_manage::start_session),
        )
        .route("/api/session/choices", put(patient::session::choose))
        .route(
            "/api/session/challenge",
            post(patient::challenge::challenge),
        )
        .route(
            "/api/session/registration",
            post(patient::registration::register),
        )
        .route("/api/session/reception", get(patient::reception::status))
        .route(
            "/api/session/insurance-use/challenge",
            post(patient::insurance_use::challenge),
        )
        .route(
            "/api/session/insurance-use",
            post(patient::insurance_use::submit),
        )
        .route("/api/cancel", post(patient::reception::cancel))
        .route("/api/session/manage", get(patient_manage::current))
        .route(
            "/api/session/manage/challenge",
            post(patient_manage::challenge),
        )
        .route("/api/session/manage/proof", post(patient_manage::prove))
        .route(
            "/api/session/manage/withdraw-all",
            post(patient_manage::withdraw_all),
        )
        .route(
            "/api/session/manage/receptions/{id}/consent",
            put(patient_manage::update_consent),
        )
        .route("/r/{link}/start", post(patient_forms::start))
        .route("/r/{link}/date", post(patient_forms::date))
        .route("/r/{link}/consent", post(patient_forms::consent))
        .route("/cancel/{token}", post(patient_forms::cancel))
        .route("/api/v1/openapi.yaml", get(institution_api::openapi))
        .route(
            "/api/v1/links",
            post(institution_api::create_link).get(institution_api::list_links),
        )
        .route(
            "/api/v1/links/{id}",
            get(institution_api::get_link).delete(institution_api::revoke_link),
        )
        .route(
            "/api/v1/links/{id}/receptions",
            get(institution_api::link_receptions),
        )
        .route(
            "/api/v1/receptions/{id}/home-visits",
            post(institution_api::record_home_visit),
        )
        .with_state(state.clone());

    let policy = SecurityPolicy {
        https: state.config.serves_https(),
        origin: state.config.origin_string(),
    };
    let pages = match demo {
        Some(demo) => pages.merge(demo),
        None => pages,
    };
    pages
        .merge(probes)
        .merge(api)
        .merge(crate::console::router(state.clone()))
        .merge(crate::console::pages::router(state.clone()))
        .nest_service("/pkg", pkg)
        .route_service("/favicon.svg", public_files.clone())
        .route_service("/robots.txt", public_files.clone())
        // How to install the desktop card helper (helper/), linked from the card step.
        .route_service("/card-helper.html", public_files)
        // Each Router::layer call wraps the ones before it: the last added sees the request
        // first. Security headers sit outside everything but tracing, so that they are set on
        // every response, including the 408 and 413 answers of the layers inside them.
        .layer(TimeoutLayer::with_status_code(
            http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(middleware::from_fn(api_body_too_large))
        // Answers under 1 KiB (the patient API's JSON) go as they are: compressing them saved a
        // few hundred bytes and cost about 4 % of the server's CPU at the load example's rate.
        .layer(
            CompressionLayer::new()
                .quality(CompressionLevel::Precise(5))
                .compress_when(DefaultPredicate::new().and(SizeAbove::new(1024))),
        )
        .layer(middleware::from_fn_with_state(
            state.config.clone(),
            cookies::refuse_duplicate_session_cookies,
        ))
        .layer(middleware::from_fn_with_state(
            policy.clone(),
            security::same_origin_redirects,
        ))
        .layer(middleware::from_fn_with_state(
            state.limits.clone(),
            rate_limit::limit_requests,
        ))
        .layer(middleware::from_fn_with_state(policy, security_headers))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
}

/// The body limit's own 413 (a `Content-Length` over [`BODY_LIMIT`], refused before any
/// handler) is plain text; on the JSON APIs it becomes the documented refusal,
/// `{"error":"body_too_large",…}`, as a body found too long while read already is.
async fn api_body_too_large(
    request: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if api && response.status() == http::StatusCode::PAYLOAD_TOO_LARGE && !json {
        // The limit's headers stay (the connection that still holds the unread body closes).
        let (mut parts, _) = response.into_parts();
        let (json, body) = axum::response::IntoResponse::into_response(error::ApiError::new(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ))
        .into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        for (name, value) in &json.headers {
            parts.headers.insert(name, value.clone());
        }
        return axum::response::Response::from_parts(parts, body);
    }
    response
}

/// One span per request with the method and the route's *pattern*: ids in paths (reception
/// links, later receptions) are capabilities and never logged.
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| redact_path(request.uri().path()));
    tracing::info_span!("request", method = %request.method(), route = %route)
}

/// Keeps the first path segment and replaces the rest, e.g. `/r/abc…` → `/r/…`.
fn redact_path(path: &str) -> String {
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    match (segments.next(), segments.next()) {
        (Some(first), Some(_)) => format!("/{first}/…"),
        (Some(first), None) => format!("/{first}"),
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_path;

    #[test]
    fn paths_lose_their_ids() {
        assert_eq!(redact_path("/r/0123456789abcdefghjkmnpqrs"), "/r/…");
        assert_eq!(redact_path("/pkg/uketsuke.wasm"), "/pkg/…");
        assert_eq!(redact_path("/healthz"), "/healthz");
        assert_eq!(redact_path("/"), "/");
    }
}
