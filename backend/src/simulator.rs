//! The reference simulator of the confirmation backend: an HTTP service that answers like the
//! national system would, through the signed wire format of [`crate::contract`]. It is started
//! in-process by the server in demo mode (on a loopback port, reached over real HTTP like a
//! remote backend) or standalone as `backend-sim`.
//!
//! Modules: `keys` (test CA, backend and demo institution keys, person references),
//! `population` (62 people with virtual cards), `store` (SQLite), `certs` (certificate and card signature checks), `service`
//! (the operations), `clock` (settable time), `faults` (fault injection), `client` (a signed
//! HTTP client for tests and the benchmark).

pub mod certs;
pub mod client;
pub mod clock;
pub mod faults;
pub mod keys;
pub mod population;
pub mod service;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use p256::ecdsa::VerifyingKey;
use tokio::net::TcpListener;
use uketsuke_domain::window::jst_date;

pub use clock::SimClock;
pub use faults::{FaultConfig, Faults};

use crate::contract::signing::encode_verifying_key;
use crate::contract::{
    CONTRACT_VERSION, HEALTH_PATH, Health, PERSON_REFERENCES_PATH, REGISTRATIONS_PATH,
};
use service::{Operation, Sim};

/// An institution key the simulator should accept besides the demo ones.
#[derive(Debug, Clone)]
pub struct InstitutionKey {
    pub key_id: String,
    /// 医療機関等コード (10 digits).
    pub institution_code: String,
    pub verifying_key: VerifyingKey,
}

/// How to run a simulator.
#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    /// SQLite file; `None` keeps everything in memory for the life of the process.
    pub database_path: Option<String>,
    /// The business clock (shared: keep a clone to move time in tests).
    pub clock: SimClock,
    /// Faults at start; change them later through [`Running::faults`].
    pub faults: FaultConfig,
    /// Extra institutions (the relay's own key in a configured demo).
    pub institutions: Vec<InstitutionKey>,
}

/// A running simulator; dropping the handle does not stop it (it lives as long as the runtime).
pub struct Running {
    pub addr: SocketAddr,
    /// The simulator's business clock.
    pub clock: SimClock,
    /// The simulator's fault settings.
    pub faults: Faults,
    store: store::Store,
}

impl Running {
    /// J-LIS renews person `no`'s certificate now (business clock): the next generation's
    /// certificate ([`population::virtual_card_of_generation`]) becomes the one that proves
    /// them, and the current one is revoked by the renewal. Returns `(old serial, new serial)`.
    /// The relay's own revocation list does not learn of it until its next list; the backend
    /// refuses the old certificate at once.
    pub async fn renew_certificate(&self, no: u32) -> Result<(u64, u64), ControlError> {
        let current = self
            .store
            .current_serial(no)
            .await?
            .ok_or(ControlError::UnknownPerson(no))?;
        let generation = (current / population::CARD_SEED_BASE).saturating_sub(1);
        let next = population::card_seed_of(no, u32::try_from(generation + 1).unwrap_or(0));
        let old = self
            .store
            .renew_certificate(no, next, self.clock.now())
            .await?
            .ok_or(ControlError::UnknownPerson(no))?;
        Ok((old, next))
    }

    /// J-LIS puts person `no` under review (照会で不一致: 閲覧停止), or ends it: from now on the
    /// backend releases nothing about them and refuses their 健康保険証利用登録.
    pub async fn set_jlis_review(&self, no: u32, under_review: bool) -> Result<(), ControlError> {
        if self.store.set_jlis_review(no, under_review).await? {
            Ok(())
        } else {
            Err(ControlError::UnknownPerson(no))
        }
    }

    /// Base URL to reach this simulator, e.g. `http://127.0.0.1:43123`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Why a test control on [`Running`] (a renewal, a J-LIS review) could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    Store(#[from] store::StoreError),
    #[error("no person {0} (or, for a renewal, the next certificate is taken)")]
    UnknownPerson(u32),
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Store(#[from] store::StoreError),
    #[error("test CA: {0}")]
    Ca(String),
}

/// Builds the state: database, demo institutions, population.
pub async fn build(options: &SimOptions) -> Result<Arc<Sim>, BuildError> {
    let store = store::Store::open(options.database_path.as_deref()).await?;
    for institution in keys::DEMO_INSTITUTIONS {
        let key = *keys::institution_signing_key(institution).verifying_key();
        let code = keys::institution_code(institution);
        store
            .add_institution(
                institution.key_id,
                code.as_str(),
                &encode_verifying_key(&key),
            )
            .await?;
    }
    for extra in &options.institutions {
        store
            .add_institution(
                &extra.key_id,
                &extra.institution_code,
                &encode_verifying_key(&extra.verifying_key),
            )
            .await?;
    }
    let today = jst_date(options.clock.now());
    store
        .seed_population(&population::population(today))
        .await?;
    // The CA's RSA key generation is slow; run it off the async workers, once per process.
    let ca = tokio::task::spawn_blocking(keys::test_ca)
        .await
        .map_err(|e| BuildError::Ca(e.to_string()))?
        .map_err(|e| BuildError::Ca(e.to_string()))?;
    let trust_anchor = certs::TrustAnchor::from_der(ca.certificate_der())
        .map_err(|e| BuildError::Ca(e.to_string()))?;
    Ok(Arc::new(Sim {
        store,
        clock: options.clock.clone(),
        faults: Faults::new(options.faults.clone()),
        backend_key: keys::backend_signing_key(),
        trust_anchor,
    }))
}

/// The simulator's HTTP routes over a built state.
pub fn router_with(sim: Arc<Sim>) -> Router {
    Router::new()
        .route(HEALTH_PATH, get(health))
        .route(REGISTRATIONS_PATH, post(register))
        .route(PERSON_REFERENCES_PATH, post(person_reference))
        .route("/v1/registrations/{id}/{operation}", post(per_registration))
        .fallback(not_found)
        .with_state(sim)
}

async fn health(State(sim): State<Arc<Sim>>) -> Response {
    use axum::response::IntoResponse;
    let plan = sim.faults.plan();
    if !plan.delay.is_zero() {
        tokio::time::sleep(plan.delay).await;
    }
    if plan.outage {
        return service::outage();
    }
    Json(Health {
        status: "ok".to_owned(),
        contract: CONTRACT_VERSION,
    })
    .into_response()
}

fn path_of(uri: &Uri) -> &str {
    uri.path_and_query().map_or(uri.path(), |p| p.as_str())
}

/// Every signed operation goes through [`Sim::serve`], which authenticates before it looks at
/// what was asked, so the handlers only name the operation.
async fn serve(
    sim: &Sim,
    operation: Operation,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    sim.serve(operation, method.as_str(), path_of(uri), headers, body)
        .await
}

async fn register(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&sim, Operation::Register, &method, &uri, &headers, body).await
}

async fn person_reference(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(
        &sim,
        Operation::PersonReference,
        &method,
        &uri,
        &headers,
        body,
    )
    .await
}

/// `/v1/registrations/{id}/{operation}`: the operations on one registration.
async fn per_registration(
    State(sim): State<Arc<Sim>>,
    Path((id, operation)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let operation = match operation.as_str() {
        "eligibility" => Operation::Eligibility(id),
        "medical-information" => Operation::MedicalInformation(id),
        "withdrawal" => Operation::Withdraw(id),
        "consent" => Operation::ConsentUpdate(id),
        "home-visits" => Operation::HomeVisit(id),
        "insurance-use" => Operation::InsuranceUse(id),
        _ => Operation::NotFound,
    };
    serve(&sim, operation, &method, &uri, &headers, body).await
}

async fn not_found(
    State(sim): State<Arc<Sim>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&sim, Operation::NotFound, &method, &uri, &headers, body).await
}

/// Binds `addr` (port 0 for any free port) and serves a default simulator (in-memory database,
/// real time, no faults) in a background task.
pub async fn spawn(addr: SocketAddr) -> std::io::Result<Running> {
    spawn_with(addr, SimOptions::default()).await
}

/// Like [`spawn`], with options.
pub async fn spawn_with(addr: SocketAddr, options: SimOptions) -> std::io::Result<Running> {
    let sim = build(&options).await.map_err(std::io::Error::other)?;
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let running = Running {
        addr,
        clock: sim.clock.clone(),
        faults: sim.faults.clone(),
        store: sim.store.clone(),
    };
    let app = router_with(sim);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            eprintln!("backend simulator stopped: {error}");
        }
    });
    Ok(running)
}
