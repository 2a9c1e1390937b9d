//! Probes for orchestrators: `/healthz` says the process answers; `/readyz` says it can serve
//! patients, i.e. the database and the confirmation backend both answer and no CA's revocation
//! list in force is stale (then every card of that CA is refused, so the instance cannot serve
//! patients; the body names the CA by its key identifier).

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::Serialize;

use crate::{AppState, backend_client, storage};

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

pub async fn healthz() -> impl IntoResponse {
    Json(Health { status: "ok" })
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    database: &'static str,
    backend: &'static str,
    /// `ok`, or `stale` when a CA's revocation list in force is past its next update.
    revocation: &'static str,
    /// The CAs whose list is stale (`SKI …`), absent when none is.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    stale_revocation_lists: Vec<String>,
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (database, backend) = tokio::join!(
        storage::ping(&state.db),
        backend_client::check(&state.backend)
    );
    if let Err(error) = &database {
        tracing::warn!(%error, "readiness: database not reachable");
    }
    if let Err(error) = &backend {
        tracing::warn!(%error, "readiness: backend not reachable");
    }
    let stale = state
        .trust
        .stale_lists(state.clock.now_ms().div_euclid(1000))
        .await;
    for ca in &stale {
        tracing::warn!(%ca, "readiness: the CA's revocation list in force is stale");
    }
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let ready = database.is_ok() && backend.is_ok() && stale.is_empty();
    let body = Readiness {
        status: word(ready),
        database: word(database.is_ok()),
        backend: word(backend.is_ok()),
        revocation: if stale.is_empty() { "ok" } else { "stale" },
        stale_revocation_lists: stale,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
