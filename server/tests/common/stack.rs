//! A whole stack for integration tests: the reference simulator with its own SQLite file, and a
//! server in demo mode relaying to it over the signed wire format, on a free port with rate
//! limits off (every request comes from 127.0.0.1).

#![allow(dead_code)]

use chrono::NaiveDate;
use sqlx::Row;
use uketsuke_backend::simulator::{self, SimOptions};
use uketsuke_domain::window::jst_date;
use uketsuke_server::{AppState, Options, Server, config::Config};

pub struct Stack {
    pub base: String,
    pub links: Vec<(String, String)>,
    pub state: AppState,
    pub sim: simulator::Running,
    pub sim_db: String,
    pub dir: tempfile::TempDir,
}

impl Stack {
    /// The demo link of `kind` (`separate_route`, …).
    pub fn link(&self, kind: &str) -> String {
        self.links
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, id)| id.clone())
            .expect("demo link of that kind")
    }

    pub fn today(&self) -> NaiveDate {
        jst_date(self.state.clock.now())
    }

    pub fn origin(&self) -> String {
        self.state.config.origin_string()
    }

    /// Registrations the simulator holds.
    pub async fn backend_registrations(&self) -> i64 {
        let pool = sqlx::SqlitePool::connect(&self.sim_db)
            .await
            .expect("sim db");
        let row = sqlx::query("SELECT COUNT(*) AS n FROM registrations")
            .fetch_one(&pool)
            .await
            .expect("count");
        row.get::<i64, _>("n")
    }
}

impl Stack {
    /// Waits until the simulator holds the consents `want` (診療・薬剤, 特定健診) for the
    /// reception's registration and the outbox is empty; panics after 200 polls of 25 ms.
    pub async fn backend_consent_becomes(&self, reception_id: &str, want: (bool, bool)) {
        let registration = uketsuke_server::storage::receptions::get(&self.state.db, reception_id)
            .await
            .expect("read")
            .and_then(|r| r.registration_id)
            .expect("registered");
        let pool = sqlx::SqlitePool::connect(&self.sim_db)
            .await
            .expect("sim db");
        let mut seen = (false, false);
        for _ in 0..200 {
            let row =
                sqlx::query("SELECT clinical_medication, checkups FROM registrations WHERE id = ?")
                    .bind(&registration)
                    .fetch_one(&pool)
                    .await
                    .expect("registration");
            seen = (row.get::<bool, _>(0), row.get::<bool, _>(1));
            if seen == want
                && uketsuke_server::storage::outbox::pending(&self.state.db)
                    .await
                    .expect("pending")
                    == 0
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the backend holds {seen:?}, not {want:?}");
    }
}

/// A simulator and a server on `database_url` (default: a fresh SQLite file). `origin` is the
/// public origin (default: derived from the bound address); a port of 0 takes the bound port.
pub async fn stack(database_url: Option<&str>, origin: Option<&str>) -> Stack {
    stack_with(database_url, origin, Options::default()).await
}

/// [`stack`] with the server's test options (e.g. the relay's safety poll).
pub async fn stack_with(
    database_url: Option<&str>,
    origin: Option<&str>,
    options: Options,
) -> Stack {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim_path = dir.path().join("sim.db");
    let sim = simulator::spawn_with(
        "127.0.0.1:0".parse().expect("addr"),
        SimOptions {
            database_path: Some(sim_path.display().to_string()),
            ..Default::default()
        },
    )
    .await
    .expect("simulator starts");
    let url = database_url
        .map(str::to_owned)
        .unwrap_or_else(|| format!("sqlite://{}/server.db", dir.path().display()));
    let (base, links, state) =
        server_with(&url, &sim.base_url(), dir.path(), origin, options).await;
    Stack {
        base,
        links,
        state,
        sim,
        sim_db: format!("sqlite://{}", sim_path.display()),
        dir,
    }
}

/// One server instance on `url`, relaying to the simulator at `sim_base`.
pub async fn server(
    url: &str,
    sim_base: &str,
    dir: &std::path::Path,
    origin: Option<&str>,
) -> (String, Vec<(String, String)>, AppState) {
    server_with(url, sim_base, dir, origin, Options::default()).await
}

/// [`server`] with the server's test options.
pub async fn server_with(
    url: &str,
    sim_base: &str,
    dir: &std::path::Path,
    origin: Option<&str>,
    options: Options,
) -> (String, Vec<(String, String)>, AppState) {
    let mut env: Vec<(String, String)> = [
        ("UKETSUKE_LISTEN", "127.0.0.1:0".to_owned()),
        ("UKETSUKE_MODE", "demo".to_owned()),
        ("UKETSUKE_DATABASE_URL", url.to_owned()),
        ("UKETSUKE_BACKEND", sim_base.to_owned()),
        ("UKETSUKE_RATE_LIMITS", "off".to_owned()),
        ("UKETSUKE_SITE_ROOT", dir.join("site").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(origin) = origin {
        env.push(("UKETSUKE_PUBLIC_ORIGIN".to_owned(), origin.to_owned()));
    }
    let config = Config::from_sources(None, &env).expect("valid configuration");
    let server = Server::build_with(config, options)
        .await
        .expect("server starts");
    let base = server.base_url();
    let links = server
        .demo_links()
        .iter()
        .map(|l| (l.kind.code().to_owned(), l.id.clone()))
        .collect();
    let state = server.state().clone();
    tokio::spawn(server.run(std::future::pending()));
    (base, links, state)
}

impl Stack {
    /// A confirmed reception of `kind` at the demo institution by simulator person `no`, once
    /// its eligibility is stored; returns its id.
    pub async fn confirmed_reception(&self, kind: &str, no: u32) -> String {
        self.confirmed_reception_by(kind, no).await.1
    }

    /// [`Stack::confirmed_reception`], with the patient's browser (the session that
    /// submitted it).
    pub async fn confirmed_reception_by(
        &self,
        kind: &str,
        no: u32,
    ) -> (super::patient::Patient, String) {
        let patient = super::patient::Patient::new(&self.base);
        let accepted = super::patient::register(
            &patient,
            &self.link(kind),
            kind,
            no,
            &self.origin(),
            self.today(),
        )
        .await;
        assert_eq!(accepted.status, 202, "{:?}", accepted.body);
        assert_eq!(patient.settled(400).await.body["status"], "confirmed");
        let id = accepted.body["reception_id"]
            .as_str()
            .expect("id")
            .to_owned();
        for _ in 0..400 {
            if uketsuke_server::relay::eligibility(&self.state.db, &id)
                .await
                .expect("read")
                .is_some()
            {
                return (patient, id);
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("eligibility never arrived");
    }
}
