//! Soak run of crashes and outages (issue 12, section 8): patients register continuously
//! through the real patient API while the `uketsuke-server` process is killed with SIGKILL N
//! times at random moments and restarted on the same database, and the backend (a standalone
//! `backend-sim` process with a SQLite file, so it remembers its registrations and idempotency
//! keys across its own restart) is killed for a stretch and brought back. Then the queue drains
//! and the run prints: registrations accepted (202 answers the patients got), confirmed, lost,
//! doubled at the backend, and the longest time a registration stayed queued. Exit status 1 if
//! anything was lost or doubled.
//!
//! Run through `scripts/soak.sh`, or:
//!
//! ```text
//! cargo run --release -p uketsuke-server --example soak -- --server-bin target/release/uketsuke-server
//!     --sim-bin target/release/backend-sim [--kills 10] [--database sqlite|postgres://…]
//!     [--instances 1|2] [--outage-secs 90] [--concurrency 8] [--dir DIR]
//! ```
//!
//! With two instances (PostgreSQL), they share the database and the backend, and are killed one
//! at a time: an instance is killed only while the other one is serving.
//!
//! "Doubled" is counted at the backend: every registration it holds must be the one
//! registration of one reception of the server (matched through the idempotency key, which is
//! the reception's outbox id); the simulator's `GET /v1/_stats` (`backend-sim --stats`) lists
//! them and counts the resends it answered from its record and the new keys it refused for an
//! already registered card challenge.

#[path = "../tests/common/patient.rs"]
mod patient;

use std::{
    collections::{HashMap, HashSet},
    error::Error,
    fs::File,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use rand::Rng;
use serde_json::{Value, json};
use sqlx::{Row, any::AnyPoolOptions};
use uketsuke_backend::simulator::population::{self, CertificateCase};
use uketsuke_domain::window::jst_date;

type BoxError = Box<dyn Error + Send + Sync>;

/// People whose cards sign in turn (valid certificate, insurance use registered, no J-LIS
/// review): a handful, so their RSA keys are made once.
const PEOPLE: usize = 8;
/// How long a (re)started process may take to say it is serving.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// After the last kill, how long the queue may take to drain: a row held by a killed worker
/// waits out its 30 s lease, a row that failed through the outage waits up to 75 s of backoff.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(900);
/// Share of kills aimed at a process that may still be starting (migrations, seeding).
const KILL_DURING_START: f64 = 0.2;
/// Longest a serving instance lives before its kill.
const MAX_UPTIME_MS: u64 = 3_000;

struct Args {
    kills: usize,
    database: String,
    instances: usize,
    outage: Duration,
    concurrency: usize,
    server_bin: PathBuf,
    sim_bin: PathBuf,
    dir: Option<PathBuf>,
}

fn usage() -> String {
    "usage: soak --server-bin PATH --sim-bin PATH [--kills N] [--database sqlite|postgres://…] \
     [--instances 1|2] [--outage-secs S] [--concurrency C] [--dir DIR]"
        .to_owned()
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        kills: 10,
        database: "sqlite".to_owned(),
        instances: 1,
        outage: Duration::from_secs(90),
        concurrency: 8,
        server_bin: PathBuf::new(),
        sim_bin: PathBuf::new(),
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))
        };
        let number = |text: String| {
            text.parse::<usize>()
                .map_err(|_| format!("{flag}: {text:?} is not a whole number"))
        };
        match flag.as_str() {
            "--kills" => args.kills = number(value()?)?,
            "--database" => args.database = value()?,
            "--instances" => args.instances = number(value()?)?,
            "--outage-secs" => args.outage = Duration::from_secs(number(value()?)? as u64),
            "--concurrency" => args.concurrency = number(value()?)?.max(1),
            "--server-bin" => args.server_bin = value()?.into(),
            "--sim-bin" => args.sim_bin = value()?.into(),
            "--dir" => args.dir = Some(value()?.into()),
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    if args.server_bin.as_os_str().is_empty() || args.sim_bin.as_os_str().is_empty() {
        return Err(format!(
            "--server-bin and --sim-bin are required\n{}",
            usage()
        ));
    }
    // Absolute: the servers run in the run's own folder.
    for bin in [&mut args.server_bin, &mut args.sim_bin] {
        *bin = std::fs::canonicalize(&*bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    }
    if !(1..=2).contains(&args.instances) {
        return Err("--instances must be 1 or 2".to_owned());
    }
    if args.instances > 1 && args.database == "sqlite" {
        return Err(
            "two instances share a PostgreSQL database: give --database postgres://…".into(),
        );
    }
    Ok(args)
}

/// A free loopback port (bound and released: the process started on it binds it again).
fn free_port() -> Result<u16, BoxError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One child process whose output goes to a log file; killed when dropped.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(command: &mut Command, log: PathBuf) -> Result<Process, BoxError> {
        let out = File::create(&log)?;
        let err = out.try_clone()?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()?;
        Ok(Process { child, log })
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: nothing finishes, nothing is flushed but what the kernel already has.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits until `ready` finds what it looks for in the log; an exit before that is an error.
    async fn wait_for<T>(&mut self, ready: impl Fn(&str) -> Option<T>) -> Result<T, BoxError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = self.log_text();
            if let Some(found) = ready(&text) {
                return Ok(found);
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(format!(
                    "{} exited at start-up ({status}):\n{text}",
                    self.log.display()
                )
                .into());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not start in {START_TIMEOUT:?}:\n{text}",
                    self.log.display()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The separate-route demo link id a server prints at start-up, once it serves.
fn demo_link(log: &str) -> Option<String> {
    log.lines()
        .find(|l| l.starts_with("Uketsuke is running at "))?;
    log.lines()
        .find(|l| l.trim_start().starts_with("demo separate_route "))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|url| url.rsplit_once("/r/"))
        .map(|(_, id)| id.to_owned())
}

/// What every server instance is started with.
struct ServerSetup {
    bin: PathBuf,
    dir: PathBuf,
    database_url: String,
    backend: String,
}

/// One server instance on a fixed port, so patients reach it again after its restart.
struct Instance {
    no: usize,
    base: String,
    port: u16,
    /// The demo link of the running process (`None` while it starts or is down).
    link: Arc<RwLock<Option<String>>>,
    process: Option<Process>,
    runs: usize,
}

impl Instance {
    fn start(&mut self, setup: &ServerSetup) -> Result<(), BoxError> {
        self.runs += 1;
        // A folder shaped like the built site: start-up checks it is there.
        for file in uketsuke_server::config::SITE_FILES {
            let path = setup.dir.join("site").join(file);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(path, b"")?;
        }
        let log = setup
            .dir
            .join(format!("server-{}-{}.log", self.no, self.runs));
        let process = Process::spawn(
            Command::new(&setup.bin)
                .current_dir(&setup.dir)
                .env_clear()
                .env("UKETSUKE_MODE", "demo")
                .env("UKETSUKE_LISTEN", format!("127.0.0.1:{}", self.port))
                // The address the patients use is the origin their cards sign.
                .env("UKETSUKE_PUBLIC_ORIGIN", &self.base)
                .env("UKETSUKE_DATABASE_URL", &setup.database_url)
                .env("UKETSUKE_BACKEND", &setup.backend)
                // Every patient here comes from 127.0.0.1: the per-IP limit would refuse them.
                .env("UKETSUKE_RATE_LIMITS", "off")
                .env("UKETSUKE_RELAY_WORKERS", "4")
                .env("UKETSUKE_SITE_ROOT", setup.dir.join("site"))
                .env("UKETSUKE_LOG", "warn"),
            log,
        )?;
        self.process = Some(process);
        Ok(())
    }

    /// Waits until the running process serves, and publishes its link to the patients.
    async fn ready(&mut self) -> Result<(), BoxError> {
        let process = self.process.as_mut().ok_or("instance not started")?;
        let link = process.wait_for(demo_link).await?;
        *self.link.write().map_err(|_| "link lock")? = Some(link);
        Ok(())
    }

    fn serving(&self) -> bool {
        self.link.read().map(|l| l.is_some()).unwrap_or(false)
    }

    fn kill(&mut self) {
        if let Ok(mut link) = self.link.write() {
            *link = None;
        }
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }
}

/// The standalone backend simulator on a fixed port with its SQLite file.
struct Backend {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    process: Option<Process>,
    runs: usize,
}

impl Backend {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self) -> Result<(), BoxError> {
        self.runs += 1;
        let log = self.dir.join(format!("backend-{}.log", self.runs));
        let mut process = Process::spawn(
            Command::new(&self.bin)
                .arg(format!("127.0.0.1:{}", self.port))
                .arg("--db")
                .arg(self.dir.join("backend.db"))
                .arg("--stats"),
            log,
        )?;
        process
            .wait_for(|log| log.contains("registration counts at ").then_some(()))
            .await?;
        self.process = Some(process);
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }
}

/// A patient's flow that ended without a 202.
enum Failure {
    /// No connection, or it broke: the instance was down or died under the request.
    Connection,
    /// An answer other than the expected one (kept for the report).
    Refused(String),
}

struct Accepted {
    reception_id: String,
}

async fn call(request: reqwest::RequestBuilder) -> Result<(u16, Value), Failure> {
    let response = request.send().await.map_err(|_| Failure::Connection)?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|_| Failure::Connection)?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

/// One patient: link → choices → challenge → card signature → submit, on one instance.
async fn one_registration(
    base: &str,
    link: &str,
    no: u32,
    today: chrono::NaiveDate,
) -> Result<Accepted, Failure> {
    // The patient API's header, as the app's own calls send it (CSRF: `x-uketsuke-csrf: 1`).
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::HeaderName::from_static("x-uketsuke-csrf"),
        reqwest::header::HeaderValue::from_static("1"),
    );
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(headers)
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| Failure::Refused(format!("client: {e}")))?;
    let expect = |step: &str, want: u16, (status, body): (u16, Value)| {
        if status == want {
            Ok(body)
        } else {
            Err(Failure::Refused(format!("{step}: {status} {body}")))
        }
    };
    let api = |path: &str| format!("{base}/api/{path}");
    expect(
        "session",
        201,
        call(http.post(api(&format!("r/{link}/session")))).await?,
    )?;
    let choices = patient::choices_for("separate_route", today);
    expect(
        "choices",
        200,
        call(http.put(api("session/choices")).json(&choices)).await?,
    )?;
    let challenge = expect(
        "challenge",
        200,
        call(http.post(api("session/challenge"))).await?,
    )?;
    let message = challenge["message"]
        .as_str()
        .ok_or_else(|| Failure::Refused(format!("challenge without message: {challenge}")))?
        .to_owned();
    let (certificate, signature) = patient::card_sign(no, CertificateCase::Valid, &message).await;
    let body = json!({
        "challenge": challenge["challenge"],
        "origin": base,
        "certificate": certificate,
        "signature": signature,
    });
    let accepted = expect(
        "registration",
        202,
        call(http.post(api("session/registration")).json(&body)).await?,
    )?;
    let reception_id = accepted["reception_id"]
        .as_str()
        .ok_or_else(|| Failure::Refused(format!("202 without reception id: {accepted}")))?
        .to_owned();
    Ok(Accepted { reception_id })
}

/// What the patients saw.
#[derive(Default)]
struct Seen {
    accepted: Vec<String>,
    connection_failures: usize,
    refusals: Vec<String>,
}

/// Patients registering until `stop`: each picks a serving instance at random and runs the
/// whole flow there; a flow that meets a kill is simply abandoned (no 202, nothing promised).
fn patients(
    concurrency: usize,
    instances: Vec<(String, Arc<RwLock<Option<String>>>)>,
    people: Vec<u32>,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let next = Arc::new(AtomicUsize::new(0));
    (0..concurrency)
        .map(|_| {
            let (instances, people, stop, seen, next) = (
                instances.clone(),
                people.clone(),
                stop.clone(),
                seen.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let serving: Vec<(String, String)> = instances
                        .iter()
                        .filter_map(|(base, link)| {
                            link.read().ok()?.clone().map(|l| (base.clone(), l))
                        })
                        .collect();
                    if serving.is_empty() {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    let pick = rand::rng().random_range(0..serving.len());
                    let (base, link) = serving[pick].clone();
                    let no = people[next.fetch_add(1, Ordering::Relaxed) % people.len()];
                    let today = jst_date(chrono::Utc::now());
                    let outcome = one_registration(&base, &link, no, today).await;
                    let Ok(mut seen) = seen.lock() else { return };
                    match outcome {
                        Ok(accepted) => seen.accepted.push(accepted.reception_id),
                        Err(Failure::Connection) => seen.connection_failures += 1,
                        Err(Failure::Refused(why)) => seen.refusals.push(why),
                    }
                }
            })
        })
        .collect()
}

fn random_ms(below: u64) -> Duration {
    Duration::from_millis(rand::rng().random_range(0..below.max(1)))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let temp = tempfile::tempdir()?;
    let dir = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => temp.path().to_path_buf(),
    };
    let (database_url, engine) = if args.database == "sqlite" {
        (format!("sqlite://{}/server.db", dir.display()), "SQLite")
    } else {
        (args.database.clone(), "PostgreSQL")
    };
    println!(
        "soak ({engine}, {} server instance{}): {} SIGKILLs, backend away for {:?}; logs in {}",
        args.instances,
        if args.instances == 1 { "" } else { "s" },
        args.kills,
        args.outage,
        dir.display()
    );

    // The cards' RSA keys are made once, before anything runs.
    let today = jst_date(chrono::Utc::now());
    let people: Vec<u32> = population::population(today)
        .into_iter()
        .filter(|p| {
            p.certificate == CertificateCase::Valid && p.insurance_registered && !p.jlis_review
        })
        .map(|p| p.no)
        .take(PEOPLE)
        .collect();
    let warm = people.clone();
    tokio::task::spawn_blocking(move || {
        warm.into_iter()
            .try_for_each(|no| population::virtual_card(no, CertificateCase::Valid).map(drop))
    })
    .await??;

    let mut backend = Backend {
        bin: args.sim_bin.clone(),
        dir: dir.clone(),
        port: free_port()?,
        process: None,
        runs: 0,
    };
    backend.start().await?;
    let setup = ServerSetup {
        bin: args.server_bin.clone(),
        dir: dir.clone(),
        database_url: database_url.clone(),
        backend: backend.base(),
    };
    let mut instances = Vec::new();
    for no in 1..=args.instances {
        let port = free_port()?;
        let mut instance = Instance {
            no,
            base: format!("http://127.0.0.1:{port}"),
            port,
            link: Arc::new(RwLock::new(None)),
            process: None,
            runs: 0,
        };
        // One after the other: the first one migrates and seeds the shared database.
        instance.start(&setup)?;
        instance.ready().await?;
        instances.push(instance);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let clients = patients(
        args.concurrency,
        instances
            .iter()
            .map(|i| (i.base.clone(), i.link.clone()))
            .collect(),
        people,
        stop.clone(),
        seen.clone(),
    );
    let run_started = Instant::now();

    // The kills, one instance at a time; the backend goes away after a quarter of them and
    // comes back after the outage while the kills go on.
    let outage_after = args.kills / 4;
    let mut outage: Option<tokio::task::JoinHandle<Result<(Backend, Duration), String>>> = None;
    let mut backend = Some(backend);
    let mut kills_during_start = 0usize;
    let (mut turn, mut previous) = (0usize, 0usize);
    for kill in 0..args.kills {
        if kill == outage_after
            && let Some(mut away) = backend.take()
        {
            away.kill();
            let length = args.outage;
            println!("  backend killed after {kill} server kills, away for {length:?}");
            let since = Instant::now();
            outage = Some(tokio::spawn(async move {
                tokio::time::sleep(length).await;
                away.start().await.map_err(|e| e.to_string())?;
                let away_for = since.elapsed();
                println!("  backend back after {away_for:.0?}");
                Ok((away, away_for))
            }));
        }
        // Now and then the instance killed last is killed again while it starts (migrations,
        // seeding, the relay's first claims); otherwise the instances take turns.
        let during_start = kill > 0 && rand::rng().random_bool(KILL_DURING_START);
        let target = if during_start {
            previous
        } else {
            turn += 1;
            turn % instances.len()
        };
        previous = target;
        // Never both down: the other instance must be serving before this one dies.
        for (i, other) in instances.iter_mut().enumerate() {
            if i != target && !other.serving() {
                other.ready().await?;
            }
        }
        if during_start {
            tokio::time::sleep(random_ms(1_000)).await;
        } else {
            if !instances[target].serving() {
                instances[target].ready().await?;
            }
            tokio::time::sleep(random_ms(MAX_UPTIME_MS)).await;
        }
        if !instances[target].serving() {
            kills_during_start += 1;
        }
        instances[target].kill();
        instances[target].start(&setup)?;
        if (kill + 1) % 10 == 0 {
            let accepted = seen.lock().map(|s| s.accepted.len()).unwrap_or(0);
            println!(
                "  {} kills, {accepted} accepted, {:.0?}",
                kill + 1,
                run_started.elapsed()
            );
        }
    }
    for instance in &mut instances {
        if !instance.serving() {
            instance.ready().await?;
        }
    }
    let backend_away = match outage {
        Some(back) => {
            let (returned, away) = back.await?.map_err(|e| format!("backend restart: {e}"))?;
            backend = Some(returned);
            away
        }
        None => Duration::ZERO,
    };
    let backend = backend.ok_or("the backend did not come back")?;
    // A little more load on the recovered system, then the patients stop.
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        let _ = tokio::time::timeout(Duration::from_secs(30), client).await;
    }
    let load_for = run_started.elapsed();

    // Drain: every outbox row delivered.
    sqlx::any::install_default_drivers();
    let read_url = if args.database == "sqlite" {
        format!("{database_url}?mode=ro")
    } else {
        database_url.clone()
    };
    let db = AnyPoolOptions::new()
        .max_connections(2)
        .connect(&read_url)
        .await?;
    let drain_started = Instant::now();
    loop {
        let pending: i64 = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE done_at IS NULL")
            .fetch_one(&db)
            .await?
            .try_get("n")?;
        if pending == 0 {
            break;
        }
        if drain_started.elapsed() > DRAIN_TIMEOUT {
            println!("  {pending} outbox rows still pending after {DRAIN_TIMEOUT:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let drained_in = drain_started.elapsed();

    // The server's record of every reception and its registration row.
    let rows = sqlx::query(
        "SELECT r.id AS id, r.status AS status, r.registration_id AS registration_id, \
                o.id AS key, o.created_at AS created_at, o.done_at AS done_at \
         FROM receptions r JOIN outbox o ON o.reception_id = r.id AND o.operation = 'register'",
    )
    .fetch_all(&db)
    .await?;
    struct Held {
        status: String,
        registration_id: Option<String>,
        key: String,
        queued_ms: Option<i64>,
    }
    let mut held: HashMap<String, Held> = HashMap::new();
    let mut register_rows = 0usize;
    for row in &rows {
        register_rows += 1;
        let created: i64 = row.try_get("created_at")?;
        let done: Option<i64> = row.try_get("done_at")?;
        held.insert(
            row.try_get("id")?,
            Held {
                status: row.try_get("status")?,
                registration_id: row.try_get("registration_id")?,
                key: row.try_get("key")?,
                queued_ms: done.map(|d| d - created),
            },
        );
    }
    let receptions_total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM receptions")
        .fetch_one(&db)
        .await?
        .try_get("n")?;

    // The backend's record.
    let stats: Value = reqwest::get(format!("{}/v1/_stats", backend.base()))
        .await?
        .error_for_status()?
        .json()
        .await?;
    let count = |name: &str| stats[name].as_i64().unwrap_or(-1);
    let backend_keys: Vec<(String, String)> = stats["keys"]
        .as_array()
        .ok_or("stats without keys")?
        .iter()
        .filter_map(|pair| Some((pair[0].as_str()?.to_owned(), pair[1].as_str()?.to_owned())))
        .collect();
    let key_to_reception: HashMap<&str, &str> = held
        .iter()
        .map(|(id, h)| (h.key.as_str(), id.as_str()))
        .collect();
    let mut registrations_of: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut unknown_keys = 0usize;
    for (registration, key) in &backend_keys {
        match key_to_reception.get(key.as_str()) {
            Some(reception) => registrations_of
                .entry(reception)
                .or_default()
                .push(registration.as_str()),
            None => unknown_keys += 1,
        }
    }
    // Doubled: backend registrations beyond one per server reception, and registrations the
    // server cannot place at all.
    let doubled = backend_keys.len() - registrations_of.len();

    let seen = seen.lock().map_err(|_| "seen lock")?;
    let accepted: HashSet<&str> = seen.accepted.iter().map(String::as_str).collect();
    let mut confirmed = 0usize;
    let mut lost = Vec::new();
    let mut longest_ms = 0i64;
    let mut queued_ms: Vec<i64> = Vec::with_capacity(accepted.len());
    for id in &accepted {
        let Some(h) = held.get(*id) else {
            lost.push(format!("{id}: not in the server's database"));
            continue;
        };
        longest_ms = longest_ms.max(h.queued_ms.unwrap_or(0));
        queued_ms.extend(h.queued_ms);
        let at_backend = registrations_of.get(*id);
        let matches = match (&h.registration_id, at_backend) {
            (Some(reg), Some(regs)) => regs.contains(&reg.as_str()),
            _ => false,
        };
        if h.status == "confirmed" && matches {
            confirmed += 1;
        } else {
            lost.push(format!(
                "{id}: status {}, registration {:?}, at the backend {:?}",
                h.status, h.registration_id, at_backend
            ));
        }
    }
    let unanswered = held.len().saturating_sub(accepted.len());
    let unanswered_confirmed = held
        .iter()
        .filter(|(id, h)| !accepted.contains(id.as_str()) && h.status == "confirmed")
        .count();

    println!();
    println!(
        "== soak on {engine}, {} instance(s), {} SIGKILLs",
        args.instances, args.kills
    );
    println!(
        "  registrations accepted       {:>8}   (202 answers the patients got)",
        accepted.len()
    );
    println!("  confirmed                    {confirmed:>8}");
    println!(
        "  lost                         {:>8}   (accepted, never confirmed by the backend)",
        lost.len()
    );
    println!(
        "  doubled at the backend       {doubled:>8}   (backend registrations beyond one per reception)"
    );
    println!(
        "  longest queued               {:>8.1} s (submit → the backend's answer recorded)",
        longest_ms as f64 / 1e3
    );
    queued_ms.sort_unstable();
    let percentile = |p: f64| {
        let index = ((queued_ms.len() as f64 - 1.0) * p).round() as usize;
        queued_ms.get(index).copied().unwrap_or(0) as f64 / 1e3
    };
    println!(
        "  queued p50 / p99              {:>7.1} s / {:.1} s",
        percentile(0.5),
        percentile(0.99)
    );
    println!("  --");
    println!(
        "  load ran                     {:>8.0} s, then drained in {:.0} s",
        load_for.as_secs_f64(),
        drained_in.as_secs_f64()
    );
    println!(
        "  backend away                 {:>8.0} s (killed and restarted on its SQLite file)",
        backend_away.as_secs_f64()
    );
    println!(
        "  kills during start-up        {kills_during_start:>8}   (before the instance served)"
    );
    println!(
        "  flows cut by a kill          {:>8}   (connection refused or broken: no 202)",
        seen.connection_failures
    );
    println!("  other refusals               {:>8}", seen.refusals.len());
    for why in seen.refusals.iter().take(5) {
        println!("    {why}");
    }
    println!(
        "  receptions without a 202     {unanswered:>8}   (stored, answer lost in a kill; {unanswered_confirmed} confirmed)"
    );
    println!(
        "  receptions in the database   {receptions_total:>8}   ({register_rows} registration rows)"
    );
    println!(
        "  backend registrations        {:>8}   ({} distinct idempotency keys, {} distinct challenges, {unknown_keys} with a key the server never wrote)",
        count("registrations"),
        count("distinct_idempotency_keys"),
        count("distinct_challenges")
    );
    println!(
        "  resends answered from record {:>8}   (same idempotency key again: after a kill, a timeout or the outage)",
        count("idempotent_replays")
    );
    println!(
        "  resends refused              {:>8}   ({} key reused with another body, {} new key for a registered challenge)",
        count("idempotency_conflicts") + count("challenge_reused"),
        count("idempotency_conflicts"),
        count("challenge_reused")
    );
    for line in lost.iter().take(10) {
        println!("    lost {line}");
    }
    // A run without load, or with refusals a healthy pipeline never gives, proves nothing.
    let failed =
        !lost.is_empty() || doubled > 0 || accepted.is_empty() || !seen.refusals.is_empty();
    drop(instances);
    drop(backend);
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
