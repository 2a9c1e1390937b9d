//! The crash test: the real `uketsuke-server` binary is killed with SIGKILL while patients are
//! registering and the relay is sending, then restarted on the same database. Every registration
//! that got its 202 must end confirmed, and the backend (an in-process simulator with a SQLite
//! file) must hold exactly one registration per confirmed reception: the outbox survives the
//! crash, and its idempotency keys keep resends after the crash, after a 503 or after a timeout
//! from registering twice. One variant runs with a healthy backend, one with injected faults.

#[path = "common/patient.rs"]
mod patient;

use std::{
    collections::BTreeSet,
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    str::FromStr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use sqlx::{
    Row, SqlitePool,
    sqlite::{SqliteConnectOptions, SqlitePoolOptions},
};
use uketsuke_backend::simulator::{
    FaultConfig, Running, SimOptions,
    population::{self, CertificateCase},
    spawn_with,
};
use uketsuke_domain::window::jst_date;

const BIN: &str = env!("CARGO_BIN_EXE_uketsuke-server");
/// Patients registering at the same time.
const PATIENTS: usize = 8;
/// Receptions accepted before the kill.
const ACCEPTED_BEFORE_KILL: usize = 40;
/// People whose cards sign in turn: a few, so their RSA keys are made once and cached.
const PEOPLE: usize = 8;
/// Upper bound on registrations per run, so a driver that never sees the kill still stops.
const MAX_REGISTRATIONS: usize = 400;

/// The server binary running as a child process; killed when dropped, so a failing test does
/// not leave it behind.
struct ServerProcess {
    child: Child,
    base: String,
    link: String,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts the binary and waits for the lines that say where it listens and which demo link
    /// takes separate-route receptions. Its output goes to a file, read back on failure.
    async fn start(dir: &Path, database_url: &str, backend: &str, run: u32) -> ServerProcess {
        let log = dir.join(format!("server-{run}.log"));
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        // A folder shaped like the built site: start-up checks it is there.
        for file in uketsuke_server::config::SITE_FILES {
            let path = dir.join("site").join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("site folder");
            std::fs::write(path, b"").expect("site file");
        }
        let child = Command::new(BIN)
            .current_dir(dir)
            .env_clear()
            .env("UKETSUKE_LISTEN", "127.0.0.1:0")
            .env("UKETSUKE_MODE", "demo")
            .env("UKETSUKE_DATABASE_URL", database_url)
            .env("UKETSUKE_BACKEND", backend)
            // All patients come from 127.0.0.1: the per-IP limit would refuse most of them.
            .env("UKETSUKE_RATE_LIMITS", "off")
            // More workers than the default: more rows in flight when the process dies.
            .env("UKETSUKE_RELAY_WORKERS", "8")
            .env("UKETSUKE_SITE_ROOT", dir.join("site"))
            .env("UKETSUKE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("server binary starts");
        let mut server = ServerProcess {
            child,
            base: String::new(),
            link: String::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&server.log).unwrap_or_default();
            let base = text
                .lines()
                .find_map(|l| l.strip_prefix("Uketsuke is running at "))
                .map(str::trim);
            let link = text
                .lines()
                .find(|l| l.trim_start().starts_with("demo separate_route "))
                .and_then(|l| l.split_whitespace().last())
                .and_then(|url| url.rsplit_once("/r/"))
                .map(|(_, id)| id);
            if let (Some(base), Some(link)) = (base, link) {
                server.base = base.to_owned();
                server.link = link.to_owned();
                return server;
            }
            if let Some(status) = server.child.try_wait().expect("wait") {
                panic!("server {run} exited at start-up ({status}):\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "server {run} did not print its demo links:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no graceful shutdown, no chance to finish anything.
    fn kill(&mut self) {
        self.child.kill().expect("kill the server");
        self.child.wait().expect("reap the server");
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A read-only view of a SQLite file another process (or pool) writes: read-only so that the
/// test never checkpoints or otherwise changes the database the server recovers from.
async fn reader(path: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .expect("sqlite path")
        .read_only(true)
        .busy_timeout(Duration::from_secs(5));
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("open the database read-only")
}

async fn strings(pool: &SqlitePool, sql: &str) -> Vec<String> {
    sqlx::query(sql)
        .fetch_all(pool)
        .await
        .expect(sql)
        .iter()
        .map(|row| row.get::<String, _>(0))
        .collect()
}

async fn count(pool: &SqlitePool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

/// People of the population whose registrations go through: a valid certificate, registered
/// for insurance use, not held by a J-LIS review.
fn valid_people() -> Vec<u32> {
    population::population(jst_date(chrono::Utc::now()))
        .into_iter()
        .filter(|p| {
            p.certificate == CertificateCase::Valid && p.insurance_registered && !p.jlis_review
        })
        .map(|p| p.no)
        .take(PEOPLE)
        .collect()
}

/// What the drivers saw.
#[derive(Default)]
struct Driven {
    accepted: Vec<String>,
    /// Anything but a 202, or a broken connection, before the kill: a failure of the test.
    before_kill_failures: Vec<String>,
}

/// Patients registering in a loop until the server is killed. Each registration runs in a task
/// of its own: the shared client panics on a broken connection, which is expected after the
/// kill and ends that driver.
fn drive(
    base: &str,
    link: &str,
    people: &[u32],
    killed: &Arc<AtomicBool>,
    driven: &Arc<Mutex<Driven>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let next = Arc::new(AtomicUsize::new(0));
    let today = jst_date(chrono::Utc::now());
    (0..PATIENTS)
        .map(|_| {
            let (base, link, people) = (base.to_owned(), link.to_owned(), people.to_vec());
            let (killed, driven, next) = (killed.clone(), driven.clone(), next.clone());
            tokio::spawn(async move {
                while !killed.load(Ordering::SeqCst) {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= MAX_REGISTRATIONS {
                        break;
                    }
                    let no = people[n % people.len()];
                    let (base, link) = (base.clone(), link.clone());
                    let one = tokio::spawn(async move {
                        let patient = patient::Patient::new(&base);
                        patient::register(&patient, &link, "separate_route", no, &base, today).await
                    });
                    let outcome = one.await;
                    let after_kill = killed.load(Ordering::SeqCst);
                    let mut driven = driven.lock().expect("lock");
                    match outcome {
                        Ok(answer) if answer.status == 202 => {
                            let id = answer.body["reception_id"].as_str().expect("reception id");
                            driven.accepted.push(id.to_owned());
                        }
                        // A request that met the kill half-way: no 202, nothing promised.
                        _ if after_kill => break,
                        Ok(answer) => driven
                            .before_kill_failures
                            .push(format!("{}: {:?}", answer.status, answer.body)),
                        Err(error) => {
                            driven.before_kill_failures.push(error.to_string());
                            break;
                        }
                    }
                }
            })
        })
        .collect()
}

struct Scenario {
    name: &'static str,
    /// Faults of the backend from the first registration on.
    faults: Option<FaultConfig>,
    /// After the restart, how long every accepted reception may take to be confirmed and the
    /// outbox to drain.
    recovery: Duration,
}

async fn crash_and_recover(scenario: Scenario) {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let sim_path = dir.path().join("simulator.db");
    let sim: Running = spawn_with(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        SimOptions {
            database_path: Some(sim_path.display().to_string()),
            ..Default::default()
        },
    )
    .await
    .expect("simulator starts");
    let people = valid_people();
    assert_eq!(
        people.len(),
        PEOPLE,
        "enough valid people in the population"
    );
    // Each card's RSA key is made once per process; make them before the clock matters.
    let warm = people.clone();
    tokio::task::spawn_blocking(move || {
        for no in warm {
            population::virtual_card(no, CertificateCase::Valid).expect("virtual card");
        }
    })
    .await
    .expect("cards made");

    let server_path = dir.path().join("server.db");
    let database_url = format!("sqlite://{}", server_path.display());
    let mut first = ServerProcess::start(dir.path(), &database_url, &sim.base_url(), 1).await;
    if let Some(faults) = &scenario.faults {
        sim.faults.set(faults.clone());
    }

    // Patients register until enough are accepted; then the process dies under them.
    let killed = Arc::new(AtomicBool::new(false));
    let driven = Arc::new(Mutex::new(Driven::default()));
    let drive_started = Instant::now();
    let drivers = drive(&first.base, &first.link, &people, &killed, &driven);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (accepted, failures) = {
            let d = driven.lock().expect("lock");
            (d.accepted.len(), d.before_kill_failures.len())
        };
        if accepted >= ACCEPTED_BEFORE_KILL || failures > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}: only {accepted} registrations accepted in 40 s\n{}",
            scenario.name,
            first.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    killed.store(true, Ordering::SeqCst);
    first.kill();
    let killed_at = Instant::now();
    let drove_for = killed_at - drive_started;
    for driver in drivers {
        tokio::time::timeout(Duration::from_secs(10), driver)
            .await
            .expect("drivers stop after the kill")
            .expect("driver task");
    }
    let accepted = {
        let d = driven.lock().expect("lock");
        assert!(
            d.before_kill_failures.is_empty(),
            "{}: refused or failed before the kill: {:?}\n{}",
            scenario.name,
            d.before_kill_failures,
            first.log_tail()
        );
        d.accepted.clone()
    };
    assert!(accepted.len() >= ACCEPTED_BEFORE_KILL);

    // What the crash left: receptions still queued, and registrations the backend made whose
    // answer the server never recorded (the case the idempotency key is for).
    let server_db = reader(&server_path).await;
    let sim_db = reader(&sim_path).await;
    let queued_at_kill = count(
        &server_db,
        "SELECT COUNT(*) FROM receptions WHERE status = 'queued'",
    )
    .await;
    let unsent_keys: BTreeSet<String> = strings(
        &server_db,
        "SELECT id FROM outbox WHERE operation = 'register' AND done_at IS NULL",
    )
    .await
    .into_iter()
    .collect();
    let registered_keys: BTreeSet<String> =
        strings(&sim_db, "SELECT idempotency_key FROM registrations")
            .await
            .into_iter()
            .collect();
    let answer_lost = unsent_keys.intersection(&registered_keys).count();

    // The same database, a new process. Its relay must finish what the first one started.
    let second = ServerProcess::start(dir.path(), &database_url, &sim.base_url(), 2).await;
    let restarted_at = Instant::now();
    let accepted_list = accepted
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    let unconfirmed_sql = format!(
        "SELECT COUNT(*) FROM receptions WHERE id IN ({accepted_list}) AND status <> 'confirmed'"
    );
    let mut faults_on = scenario.faults.is_some();
    loop {
        let unconfirmed = count(&server_db, &unconfirmed_sql).await;
        let pending = count(
            &server_db,
            "SELECT COUNT(*) FROM outbox WHERE done_at IS NULL",
        )
        .await;
        // Registrations are retried under faults until all are confirmed; then the faults
        // stop, so the follow-up eligibility rows do not stretch the test with long backoffs.
        if faults_on && (unconfirmed == 0 || restarted_at.elapsed() > scenario.recovery / 2) {
            sim.faults.set(FaultConfig::default());
            faults_on = false;
        }
        if unconfirmed == 0 && pending == 0 {
            break;
        }
        assert!(
            restarted_at.elapsed() < scenario.recovery,
            "{}: after {:?}, {unconfirmed} accepted receptions unconfirmed and {pending} outbox \
             rows pending\n{}",
            scenario.name,
            scenario.recovery,
            second.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recovered_in = restarted_at.elapsed();

    // Every reception the server holds (those whose 202 was lost in the crash too) is
    // confirmed, and the backend registered each exactly once.
    let statuses = strings(
        &server_db,
        "SELECT status || ':' || COUNT(*) FROM receptions GROUP BY status",
    )
    .await;
    let confirmed = count(
        &server_db,
        "SELECT COUNT(*) FROM receptions WHERE status = 'confirmed'",
    )
    .await;
    let receptions = count(&server_db, "SELECT COUNT(*) FROM receptions").await;
    assert_eq!(
        confirmed, receptions,
        "{}: receptions by status {statuses:?}",
        scenario.name
    );
    assert!(confirmed >= accepted.len() as i64);
    let sim_rows = count(&sim_db, "SELECT COUNT(*) FROM registrations").await;
    let sim_keys = count(
        &sim_db,
        "SELECT COUNT(DISTINCT idempotency_key) FROM registrations",
    )
    .await;
    assert_eq!(
        sim_rows, sim_keys,
        "{}: an idempotency key registered twice",
        scenario.name
    );
    assert_eq!(
        sim_rows, confirmed,
        "{}: backend registrations vs confirmed receptions",
        scenario.name
    );
    // The very same ones: each backend registration is the answer to one outbox row of one
    // confirmed reception.
    let sim_ids: BTreeSet<String> = strings(&sim_db, "SELECT id FROM registrations")
        .await
        .into_iter()
        .collect();
    let server_ids: BTreeSet<String> = strings(
        &server_db,
        "SELECT registration_id FROM receptions WHERE status = 'confirmed'",
    )
    .await
    .into_iter()
    .collect();
    assert_eq!(sim_ids, server_ids, "{}: registration ids", scenario.name);
    let sim_keys: BTreeSet<String> = strings(&sim_db, "SELECT idempotency_key FROM registrations")
        .await
        .into_iter()
        .collect();
    let outbox_keys: BTreeSet<String> = strings(
        &server_db,
        "SELECT id FROM outbox WHERE operation = 'register'",
    )
    .await
    .into_iter()
    .collect();
    assert_eq!(sim_keys, outbox_keys, "{}: idempotency keys", scenario.name);

    let retries = count(&server_db, "SELECT COALESCE(SUM(attempts), 0) FROM outbox").await;
    eprintln!(
        "{}: {} accepted in {drove_for:.1?} before the kill, {receptions} receptions in all; at \
         the kill {queued_at_kill} queued, {answer_lost} registered at the backend without the \
         server knowing; {retries} failed sends retried; recovered {recovered_in:.1?} after the \
         restart, {:.1?} in all",
        scenario.name,
        accepted.len(),
        started.elapsed(),
    );
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_under_load_loses_no_registration_and_doubles_none() {
    crash_and_recover(Scenario {
        name: "healthy backend",
        faults: None,
        // A row the dead process had claimed waits out its 30 s lease.
        recovery: Duration::from_secs(50),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_with_a_faulty_backend_loses_no_registration_and_doubles_none() {
    crash_and_recover(Scenario {
        name: "faulty backend",
        // 503s and answers slower than the relay's 5 s timeout: each is resent with the same
        // idempotency key.
        faults: Some(FaultConfig {
            error_rate: 0.3,
            slow_rate: 0.1,
            slow_delay: Duration::from_secs(7),
            ..Default::default()
        }),
        recovery: Duration::from_secs(60),
    })
    .await;
}
