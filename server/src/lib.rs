//! The Uketsuke server: the thin layer between patients' and staff browsers and the
//! confirmation backend. One folder or module per step of the data's path:
//!
//! - `config` — the typed configuration (file + `UKETSUKE_*` environment)
//! - `http/` — the router, security headers, probes
//! - `portal` — what the UI's server functions read, backed by `storage/`
//! - `storage/` — the database: migrations, reception links, the demo seed
//! - `backend_client` — the confirmation backend (the signed relay grows here)
//! - `telemetry` — structured logs without personal data

pub mod backend_client;
pub mod config;
pub mod http;
pub mod portal;
pub mod storage;
pub mod telemetry;

use std::{future::Future, net::SocketAddr, sync::Arc};

use leptos::config::{Env, LeptosOptions};
use tokio::net::TcpListener;
use uketsuke_app::ssr::PortalData;

use crate::{
    backend_client::BackendClient,
    config::{BackendTarget, Config, Mode},
    storage::{Db, seed::DemoLink},
};

/// Everything a request handler may need, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub backend: BackendClient,
    pub leptos: LeptosOptions,
    pub portal: Arc<dyn PortalData>,
    pub limits: http::rate_limit::Limits,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error("cannot start the built-in backend simulator: {0}")]
    Simulator(std::io::Error),
    #[error("cannot create the backend client: {0}")]
    Backend(reqwest::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A server that is bound and ready to serve.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    demo_links: Vec<DemoLink>,
}

impl Server {
    /// Opens storage, seeds the demo in demo mode, starts or locates the backend, and binds the
    /// listen address (port 0 picks a free port, as the tests do).
    pub async fn build(config: Config) -> Result<Server, StartError> {
        let db = storage::open(&config.database_url).await?;
        let demo_links = match config.mode {
            Mode::Demo => storage::seed::ensure_demo(&db).await?,
            Mode::Production => Vec::new(),
        };
        let backend_url = match &config.backend {
            BackendTarget::Simulator => {
                let running =
                    uketsuke_backend::simulator::spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
                        .await
                        .map_err(StartError::Simulator)?;
                let base = running.base_url();
                url::Url::parse(&base).map_err(|e| {
                    StartError::Simulator(std::io::Error::other(format!("{base}: {e}")))
                })?
            }
            BackendTarget::Remote(url) => url.clone(),
        };
        let backend = BackendClient::new(backend_url).map_err(StartError::Backend)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        let leptos = LeptosOptions::builder()
            .output_name("uketsuke")
            .site_root(config.site_root.display().to_string())
            .site_pkg_dir("pkg")
            .site_addr(addr)
            .env(Env::PROD)
            .build();
        let portal: Arc<dyn PortalData> = Arc::new(portal::Portal::new(db.clone()));
        let state = AppState {
            config: Arc::new(config),
            db,
            backend,
            leptos,
            portal,
            limits: http::rate_limit::Limits::production(),
        };
        Ok(Server {
            listener,
            state,
            demo_links,
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// The address browsers use: the configured public origin, or the bound address when the
    /// configuration asked for "any port".
    pub fn base_url(&self) -> String {
        let config = &self.state.config;
        match self.local_addr() {
            Some(addr) if config.listen.port() == 0 => {
                format!("http://{addr}")
            }
            _ => config.origin_string(),
        }
    }

    pub fn demo_links(&self) -> &[DemoLink] {
        &self.demo_links
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = http::router(self.state);
        axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
