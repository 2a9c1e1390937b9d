//! Probes for orchestrators: `/healthz` says the process answers; `/readyz` says it can serve
//! patients, i.e. the database and the confirmation backend both answer.

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
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let ready = database.is_ok() && backend.is_ok();
    let body = Readiness {
        status: word(ready),
        database: word(database.is_ok()),
        backend: word(backend.is_ok()),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
