//! The reference simulator of the confirmation backend: an HTTP service that answers like the
//! national system would. It is started in-process by the server in demo mode (on a loopback
//! port, reached over real HTTP like a remote backend) or standalone as `backend-sim`.

use std::net::SocketAddr;

use axum::{Json, Router, routing::get};
use tokio::net::TcpListener;

use crate::contract::{CONTRACT_VERSION, HEALTH_PATH, Health};

/// The simulator's HTTP routes.
pub fn router() -> Router {
    Router::new().route(HEALTH_PATH, get(health))
}

async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
        contract: CONTRACT_VERSION,
    })
}

/// A running simulator; dropping the handle does not stop it (it lives as long as the runtime).
pub struct Running {
    pub addr: SocketAddr,
}

impl Running {
    /// Base URL to reach this simulator, e.g. `http://127.0.0.1:43123`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Binds `addr` (port 0 for any free port) and serves the simulator in a background task.
pub async fn spawn(addr: SocketAddr) -> std::io::Result<Running> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router()).await {
            eprintln!("backend simulator stopped: {error}");
        }
    });
    Ok(Running { addr })
}
