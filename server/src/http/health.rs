//! Probes and the status report.
//!
//! - `/healthz` — the process answers (a liveness probe: restart it when this fails).
//! - `/readyz` — this instance can serve patients: the database answers and the configuration
//!   in force is usable (no CA's revocation list in force is stale; then every card of that CA
//!   is refused, so the body names the CA by its key identifier). It does **not** depend on the
//!   national backend: while the backend is down, receptions are accepted and queue in the
//!   outbox, and nothing is lost, so taking the instance out of a load balancer would only turn
//!   patients away. The backend's state and the relay's held rows are in the body, for people.
//! - `/status` — for monitoring: the backend's health, the outbox (rows waiting, the oldest
//!   one's age, rows held for a refusal no retry can cure, with institution code and key id),
//!   the revocation lists; no personal data. It answers only requests made directly on this
//!   machine (loopback peer, no forwarding header): it names institutions, keys and volumes,
//!   which are not for the internet, and it needs no secret that could leak or need rotating.
//!   A proxy in front adds `X-Forwarded-For`, so even a proxy on the same machine cannot
//!   expose it. A monitoring agent on the server (or an SSH check) reads it.
//!
//! The backend's health in both is at most [`BACKEND_HEALTH_TTL`] old, and one check runs at a
//! time: `/readyz` is public and unthrottled (load balancers call it), so without that each
//! request to it would be a request to the national backend.

use std::{net::SocketAddr, time::Duration};

use axum::{
    Json,
    extract::{ConnectInfo, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{
    AppState, backend_client,
    config::Mode,
    storage::{self, outbox},
};

/// How long a probe waits for the backend's health answer before calling it unavailable.
const BACKEND_CHECK: Duration = Duration::from_millis(1500);

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

pub async fn healthz() -> impl IntoResponse {
    Json(Health { status: "ok" })
}

/// How long one answer of the backend's health serves the probes.
pub const BACKEND_HEALTH_TTL: Duration = Duration::from_secs(1);

/// The backend's health as the probes last saw it, and when. Shared by the instance's probes;
/// the lock is held while a check runs, so concurrent probes wait for that one check.
#[derive(Clone, Default)]
pub struct BackendHealth(
    std::sync::Arc<tokio::sync::Mutex<Option<(std::time::Instant, &'static str)>>>,
);

/// The backend's health as a word: `ok`, `unavailable` (no answer, or not `ok`), or
/// `contract_mismatch` (it answers, but another contract version); at most
/// [`BACKEND_HEALTH_TTL`] old.
async fn backend_word(state: &AppState) -> &'static str {
    let mut last = state.backend_health.0.lock().await;
    if let Some((at, word)) = *last
        && at.elapsed() < BACKEND_HEALTH_TTL
    {
        return word;
    }
    let word = check_backend(state).await;
    *last = Some((std::time::Instant::now(), word));
    word
}

async fn check_backend(state: &AppState) -> &'static str {
    match tokio::time::timeout(BACKEND_CHECK, backend_client::check(&state.backend)).await {
        Ok(Ok(())) => "ok",
        Ok(Err(error @ backend_client::BackendError::ContractMismatch(_))) => {
            tracing::warn!(%error, "the backend speaks another contract version");
            "contract_mismatch"
        }
        Ok(Err(error)) => {
            tracing::debug!(%error, "backend health check failed");
            "unavailable"
        }
        Err(_) => "unavailable",
    }
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    database: &'static str,
    /// `ok`, or `stale` when a CA's revocation list in force is past its next update.
    revocation: &'static str,
    /// The CAs whose list is stale (`SKI …`), absent when none is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stale_revocation_lists: Vec<String>,
    /// For people, not for the decision: `ok`, `unavailable` or `contract_mismatch`.
    backend: &'static str,
    /// `ok`, or `held` when rows wait for an operator (see `/status`).
    relay: &'static str,
    /// Refusal codes rows are held for, absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    relay_held: Vec<String>,
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (database, backend) = tokio::join!(storage::ping(&state.db), backend_word(&state));
    if let Err(error) = &database {
        tracing::warn!(%error, "readiness: database not reachable");
    }
    let stale = state
        .trust
        .stale_lists(state.clock.now_ms().div_euclid(1000))
        .await;
    for ca in &stale {
        tracing::warn!(%ca, "readiness: the CA's revocation list in force is stale");
    }
    let holds = if database.is_ok() {
        outbox::holds(&state.db).await.unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut held: Vec<String> = holds.into_iter().map(|h| h.code).collect();
    held.sort();
    held.dedup();
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let ready = database.is_ok() && stale.is_empty();
    let body = Readiness {
        status: word(ready),
        database: word(database.is_ok()),
        revocation: if stale.is_empty() { "ok" } else { "stale" },
        stale_revocation_lists: stale,
        backend,
        relay: if held.is_empty() { "ok" } else { "held" },
        relay_held: held,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

#[derive(Serialize)]
struct Status {
    version: &'static str,
    mode: &'static str,
    /// `sqlite` or `postgres`.
    database_kind: &'static str,
    database: &'static str,
    origin: String,
    backend: BackendStatus,
    outbox: OutboxStatus,
    revocation: &'static str,
    stale_revocation_lists: Vec<String>,
}

#[derive(Serialize)]
struct BackendStatus {
    /// `ok`, `unavailable` or `contract_mismatch`.
    health: &'static str,
    /// The backend's scheme, host and port (never a path or credentials).
    origin: String,
}

#[derive(Serialize)]
struct OutboxStatus {
    /// Requests not yet delivered, held ones included.
    pending: i64,
    /// Age in seconds of the oldest undelivered request, if any.
    oldest_pending_secs: Option<i64>,
    /// Requests held for a refusal no retry can cure.
    held: i64,
    /// The causes rows are held for: institution code, key id, refusal code, since when.
    holds: Vec<HoldStatus>,
}

#[derive(Serialize)]
struct HoldStatus {
    institution_code: String,
    key_id: String,
    code: String,
    operation: String,
    since: String,
    rows: i64,
}

/// Whether the request came straight from this machine: a loopback peer and no sign that a
/// proxy forwarded it.
fn direct_from_this_machine(request: &Request) -> bool {
    let peer_is_loopback = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback());
    let headers = request.headers();
    let forwarded = ["forwarded", "x-forwarded-for", "x-real-ip", "via"]
        .iter()
        .any(|name| headers.contains_key(*name));
    peer_is_loopback && !forwarded
}

pub async fn status(State(state): State<AppState>, request: Request) -> Response {
    if !direct_from_this_machine(&request) {
        return (
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({ "error": "status_local_only" })),
        )
            .into_response();
    }
    let (database, backend) = tokio::join!(storage::ping(&state.db), backend_word(&state));
    let stale = state
        .trust
        .stale_lists(state.clock.now_ms().div_euclid(1000))
        .await;
    let now = state.clock.now_ms();
    let (pending, oldest, holds) = if database.is_ok() {
        let pending = outbox::pending(&state.db).await.unwrap_or(0);
        let oldest = outbox::oldest_pending(&state.db)
            .await
            .ok()
            .flatten()
            .map(|at| (now - at).max(0) / 1000);
        let holds = outbox::holds(&state.db).await.unwrap_or_default();
        (pending, oldest, holds)
    } else {
        (0, None, Vec::new())
    };
    let body = Status {
        version: env!("CARGO_PKG_VERSION"),
        mode: match state.config.mode {
            Mode::Demo => "demo",
            Mode::Production => "production",
        },
        database_kind: storage::kind(&state.config.database_url),
        database: if database.is_ok() {
            "ok"
        } else {
            "unavailable"
        },
        origin: state.config.origin_string(),
        backend: BackendStatus {
            health: backend,
            origin: state.backend.base().origin().ascii_serialization(),
        },
        outbox: OutboxStatus {
            pending,
            oldest_pending_secs: oldest,
            held: holds.iter().map(|h| h.rows).sum(),
            holds: holds
                .into_iter()
                .map(|h| HoldStatus {
                    since: crate::clock::from_ms(h.since_ms).to_rfc3339(),
                    institution_code: h.institution_code,
                    key_id: h.key_id,
                    code: h.code,
                    operation: h.operation,
                    rows: h.rows,
                })
                .collect(),
        },
        revocation: if stale.is_empty() { "ok" } else { "stale" },
        stale_revocation_lists: stale,
    };
    let code = if database.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}
