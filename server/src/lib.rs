//! The Uketsuke server: the thin layer between patients' and staff browsers and the
//! confirmation backend. One folder or module per step of the data's path:
//!
//! - `config` — the typed configuration (file + `UKETSUKE_*` environment)
//! - `http/` — the router, security headers, probes; `error` (the one error type of every JSON
//!   answer), `body` and `cookies`; `patient/` (the reception API, one file per step),
//!   `institution_api` (tokens for booking systems)
//! - `portal` — what the UI's pages read while they render, backed by `storage/`
//! - `storage/` — the database: links, sessions and challenges, receptions, the outbox
//! - `trust` — the card's certificate, revocation and signature, checked before relaying
//! - `backend_client` — one signed call to the confirmation backend, answer verified
//! - `relay` — the workers that drain the outbox to the backend
//! - `gate` — the one gate for every read of medical information
//! - `console/` — the institution console's API: passkeys, staff, receptions, audit log, 目視確認
//! - `serve` — connections: header-read and idle timeouts, the connection cap, shutdown
//! - `sweeper` — deletes medical data after its window, eligibility, receptions and audit rows
//!   after their retention, and expired sessions and challenges
//! - `clock`, `telemetry` — business time; structured logs without personal data
//! - `check_config`, `deploy_cli` — `check-config` (every configuration problem at once) and
//!   `institution key` (the request key as the backend registers it)

pub mod backend_client;
pub mod check_config;
pub mod clock;
pub mod config;
pub mod console;
pub mod deploy_cli;
pub mod gate;
pub mod http;
pub mod portal;
pub mod relay;
mod serve;
pub mod storage;
pub mod sweeper;
pub mod telemetry;
pub mod trust;

use std::{future::Future, net::SocketAddr, sync::Arc};

use leptos::config::{Env, LeptosOptions};
use tokio::net::TcpListener;
use uketsuke_app::ssr::PortalData;

use crate::{
    backend_client::BackendClient,
    clock::Clock,
    config::{BackendTarget, Config, Mode, RateLimits},
    storage::{Db, seed::DemoLink},
    trust::Trust,
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
    pub clock: Clock,
    pub trust: Trust,
    /// Wakes an idle relay worker when a row is written to the outbox.
    pub relay_wake: Arc<tokio::sync::Notify>,
    /// The console's change feed, shared by every event stream of this instance.
    pub events: console::events::ChangeFeed,
    /// The built-in simulator's business clock, when it runs in this process: the demo clock
    /// moves it with ours, so that both agree on the date.
    pub simulator_clock: Option<uketsuke_backend::simulator::SimClock>,
    /// The backend's health as the probes last saw it (`http::health`).
    pub backend_health: http::health::BackendHealth,
}

/// What tests may set beyond the configuration.
#[derive(Clone, Default)]
pub struct Options {
    /// The business clock (tests move it); default: the system clock.
    pub clock: Clock,
    /// Whether to start the relay workers and the sweeper (tests that drive them by hand
    /// switch them off).
    pub background: Background,
    /// The relay's safety poll (default `relay::SAFETY_POLL`); tests set it very long to show
    /// that rows are sent on a wake-up, not found by the poll.
    pub relay_safety_poll: Option<std::time::Duration>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Background {
    #[default]
    Run,
    Off,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error("cannot start the built-in backend simulator: {0}")]
    Simulator(std::io::Error),
    #[error("cannot create the backend client: {0}")]
    Backend(reqwest::Error),
    #[error("JPKI trust: {0}")]
    Trust(#[from] trust::TrustError),
    #[error("audit_key_file: {0}")]
    AuditKey(String),
    #[error(transparent)]
    AuditKeyMismatch(#[from] console::audit::KeyError),
    #[error("key_encryption_key_file: {0}")]
    KeyEncryptionKey(String),
    #[error(transparent)]
    KeyEncryption(#[from] storage::institutions::KekError),
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
        Server::build_with(config, Options::default()).await
    }

    pub async fn build_with(config: Config, options: Options) -> Result<Server, StartError> {
        let clock = options.clock;
        let db = storage::open(&config.database_url).await?;
        // The audit chain's key (outside the database); demo mode makes one if missing.
        let audit_key =
            console::audit::AuditKey::load(&config.audit_key_file, config.mode == Mode::Demo)
                .map_err(StartError::AuditKey)?;
        console::audit::install(&db, &audit_key, clock.now_ms()).await?;
        // The key that seals institutions' request-signing keys; keys stored in the clear by an
        // earlier version are sealed now (audited).
        let kek = storage::sealing::KeyEncryptionKey::load(
            &config.keeping.key_encryption_key_file,
            config.mode == Mode::Demo,
        )
        .map_err(StartError::KeyEncryptionKey)?;
        storage::institutions::install_key_encryption(&db, &kek, clock.now_ms()).await?;
        let demo_links = match config.mode {
            Mode::Demo => storage::seed::ensure_demo(&db).await?,
            Mode::Production => {
                // A database that served a demo keeps no way in to the demo institution.
                console::demo::retire(&db, clock.now_ms()).await?;
                Vec::new()
            }
        };
        console::demo::ensure_accounts(&db, config.mode).await?;
        let now_unix = clock.now_ms().div_euclid(1000);
        let trust = if config.jpki_ca.is_empty() {
            Trust::demo(now_unix)?
        } else {
            Trust::from_files(&config.jpki_ca, &config.jpki_crl, now_unix)?
        };
        let mut simulator_clock = None;
        let backend_url = match &config.backend {
            BackendTarget::Simulator => {
                // The built-in simulator learns every institution key in the database, as a
                // real backend would have them registered.
                let institutions = storage::institutions::all_keys(&db)
                    .await?
                    .into_iter()
                    .map(|(key_id, institution_code, key)| {
                        uketsuke_backend::simulator::InstitutionKey {
                            key_id,
                            institution_code,
                            verifying_key: *key.verifying_key(),
                        }
                    })
                    .collect();
                let running = uketsuke_backend::simulator::spawn_with(
                    SocketAddr::from(([127, 0, 0, 1], 0)),
                    uketsuke_backend::simulator::SimOptions {
                        institutions,
                        ..Default::default()
                    },
                )
                .await
                .map_err(StartError::Simulator)?;
                simulator_clock = Some(running.clock.clone());
                let base = running.base_url();
                url::Url::parse(&base).map_err(|e| {
                    StartError::Simulator(std::io::Error::other(format!("{base}: {e}")))
                })?
            }
            BackendTarget::Remote(url) => url.clone(),
        };
        let (backend_key_id, backend_key) = match &config.backend_key {
            Some((id, key)) => (id.clone(), *key),
            None => (
                uketsuke_backend::simulator::keys::BACKEND_KEY_ID.to_owned(),
                uketsuke_backend::simulator::keys::backend_verifying_key(),
            ),
        };
        let backend = BackendClient::new(backend_url, backend_key, backend_key_id)
            .map_err(StartError::Backend)?;
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
        if config.mode == Mode::Demo {
            demo_banner(addr, config.demo_public);
        }
        // "Any port" with no public origin set: browsers reach the port actually bound, and
        // that is the origin challenges are bound to.
        let mut config = config;
        if config.public_origin.port() == Some(0) {
            let _ = config.public_origin.set_port(Some(addr.port()));
        }
        let leptos = LeptosOptions::builder()
            .output_name("uketsuke")
            .site_root(config.site_root.display().to_string())
            .site_pkg_dir("pkg")
            .site_addr(addr)
            .env(Env::PROD)
            .build();
        let config = Arc::new(config);
        let portal: Arc<dyn PortalData> = Arc::new(portal::Portal::new(
            db.clone(),
            clock.clone(),
            config.clone(),
        ));
        let limits = match config.rate_limits {
            RateLimits::On => http::rate_limit::Limits::production(&config.floods),
            RateLimits::Off => http::rate_limit::Limits::unlimited(&config.floods),
        };
        let relay_wake = Arc::new(tokio::sync::Notify::new());
        if options.background == Background::Run {
            relay::Relay {
                db: db.clone(),
                backend: backend.clone(),
                clock: clock.clone(),
                wake: relay_wake.clone(),
                safety_poll: options.relay_safety_poll.unwrap_or(relay::SAFETY_POLL),
            }
            .spawn(config.relay_workers);
            storage::outbox::listen(&config.database_url, relay_wake.clone());
            sweeper::spawn(db.clone(), clock.clone(), config.keeping.retention);
            if !config.jpki_crl.is_empty() {
                spawn_crl_reload(trust.clone(), config.jpki_crl.clone(), clock.clone());
            }
        }
        let events = console::events::ChangeFeed::new(db.clone(), clock.clone());
        let state = AppState {
            config,
            events,
            db,
            backend,
            leptos,
            portal,
            limits,
            clock,
            trust,
            relay_wake,
            simulator_clock,
            backend_health: Default::default(),
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
            // "Any port" with the origin derived from the listen address: the origin now
            // carries the port bound. An origin set explicitly keeps its own port, so the
            // bound address is how this machine reaches the server.
            Some(addr)
                if config.listen.port() == 0
                    && config.public_origin.port() == Some(addr.port()) =>
            {
                config.origin_string()
            }
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

    /// Serves until `shutdown` completes, then finishes the requests in flight, cutting what
    /// is still open after the drain time, and closes the database (see `serve` for the
    /// connection limits, timeouts and the shutdown's steps). Returns within
    /// [`SHUTDOWN_BOUND`] of `shutdown` completing.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let floods = self.state.config.floods.clone();
        let upkeep = sweeper::spawn_limiter_upkeep(self.state.limits.clone());
        let db = self.state.db.clone();
        let router = http::router(self.state);
        let served = serve::serve(self.listener, router, &floods, shutdown).await;
        upkeep.abort();
        // Hand back the connections, so that SQLite checkpoints its log; a relay worker still
        // waiting for the backend holds its row's lease, and the row is sent again (with the
        // same idempotency key) by the next start.
        if tokio::time::timeout(DB_CLOSE, db.close()).await.is_err() {
            tracing::warn!("shutdown: the database did not close in time");
        }
        served
    }
}

/// The demo-mode notice at start: one warn event (so that JSON logs stay JSON) whose message
/// spells out what a demo trusts and allows. With `demo_public` a second warn names the opt-in.
fn demo_banner(addr: SocketAddr, demo_public: bool) {
    if demo_public {
        tracing::warn!(
            listen = %addr,
            "demo_public is set: this DEMO server accepts connections from other machines \
             (the demo routes still answer this machine only)"
        );
    }
    let reach = if demo_public {
        "OTHER MACHINES CAN REACH IT (demo_public = true)"
    } else {
        "it listens on loopback: only this machine can reach it"
    };
    tracing::warn!(
        listen = %addr,
        demo_public,
        "\n\
         ==================== UKETSUKE DEMO MODE / デモモード ====================\n\
         This server is a DEMONSTRATION. Not for patients. 患者さんの受付には使えません。\n\
         - It trusts a TEST CA whose key anyone can re-derive: its card signatures prove nothing.\n\
         - Anyone on this machine can enrol as the demo ADMINISTRATOR (POST /api/console/demo/enrolment-code).\n\
         - The business clock can be moved forward on request (POST /api/console/demo/clock).\n\
         - Its backend is the built-in simulator unless one was set; its people are made up.\n\
         - {reach}.\n\
         For real patients: mode = \"production\" (UKETSUKE_MODE=production).\n\
         ========================================================================="
    );
}

/// Re-reads the revocation lists every ten minutes; a bad or stale file keeps the current lists.
fn spawn_crl_reload(trust: Trust, paths: Vec<std::path::PathBuf>, clock: Clock) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(error) = trust
                .reload_crls(&paths, clock.now_ms().div_euclid(1000))
                .await
            {
                tracing::error!(%error, "revocation lists not reloaded; keeping the current ones");
            }
        }
    });
}

/// The longest a stop takes from the signal: the connections' drain time, cutting what is
/// left, and closing the database.
pub const SHUTDOWN_BOUND: std::time::Duration = std::time::Duration::from_secs(10);
/// How long closing the database may take at shutdown.
const DB_CLOSE: std::time::Duration = std::time::Duration::from_secs(1);

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
    tracing::info!(
        bound_secs = SHUTDOWN_BOUND.as_secs(),
        "shutting down: event streams end now, requests in flight finish or are cut"
    );
}
