//! Standalone reference simulator of the confirmation backend.
//!
//! Usage: `backend-sim [ADDR] [options]` (default address 127.0.0.1:3900)
//!   --db PATH                 SQLite file (default: in memory)
//!   --institution-key FILE    register an institution's request-signing key: the document
//!                             `uketsuke-server institution key` prints (`-` reads standard
//!                             input); repeat for more; kept in the --db file across restarts
//!   --write-jpki DIR          write the test CA that issues the population's cards
//!                             (DIR/test-ca.der) and its current revocation list
//!                             (DIR/test-ca.crl, next update in 7 days), for a production-mode
//!                             server's jpki_ca and jpki_crl in a trial on one machine
//!   --clock RFC3339           freeze the business clock at this instant
//!   --latency-ms N            add N ms to every answer
//!   --error-rate R            answer 503 unavailable to a share R (0..1) of requests
//!   --outage                  answer every request with an unsigned 503
//!   --slow-rate R --slow-ms N make a share R of answers wait N ms
//!   --malformed-rate R        cut a share R of answer bodies short
//!   --bad-signature-rate R    corrupt the signature of a share R of answers
//!   --seed N                  seed of the fault generator
//!   --stats                   also answer `GET /v1/_stats` (unsigned JSON counts of the
//!                             registrations held and of resends answered without registering),
//!                             for `scripts/soak.sh` to count registrations doubled at the
//!                             backend; only this binary has the route, and only when asked

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use uketsuke_backend::contract::key_registration::KeyRegistration;
use uketsuke_backend::simulator::service::Sim;
use uketsuke_backend::simulator::{
    FaultConfig, InstitutionKey, SimClock, SimOptions, build, keys, router_with,
};

/// The soak run's counting route (see `--stats`).
const STATS_PATH: &str = "/v1/_stats";

fn fail(message: &str) -> ! {
    eprintln!("backend-sim: {message}");
    std::process::exit(2);
}

/// What the command line asks for.
struct Args {
    addr: SocketAddr,
    options: SimOptions,
    stats: bool,
    write_jpki: Option<String>,
}

fn parse_args() -> Args {
    let mut addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 3900));
    let mut options = SimOptions::default();
    let mut faults = FaultConfig::default();
    let mut stats = false;
    let mut write_jpki = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| fail(&format!("{name} needs a value")))
        };
        let rate = |text: String, name: &str| match text.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            _ => fail(&format!("{name} must be a number from 0 to 1")),
        };
        let number = |text: String, name: &str| {
            text.parse::<u64>()
                .unwrap_or_else(|_| fail(&format!("{name} must be a whole number")))
        };
        match arg.as_str() {
            "--db" => options.database_path = Some(value("--db")),
            "--institution-key" => {
                let path = value("--institution-key");
                options.institutions.push(institution_key(&path));
            }
            "--clock" => match chrono::DateTime::parse_from_rfc3339(&value("--clock")) {
                Ok(at) => options.clock = SimClock::frozen(at.with_timezone(&chrono::Utc)),
                Err(_) => {
                    fail("--clock must be an RFC 3339 instant such as 2026-11-21T10:00:00+09:00")
                }
            },
            "--latency-ms" => faults.latency = Duration::from_millis(number(value(&arg), &arg)),
            "--error-rate" => faults.error_rate = rate(value(&arg), &arg),
            "--outage" => faults.outage = true,
            "--slow-rate" => faults.slow_rate = rate(value(&arg), &arg),
            "--slow-ms" => faults.slow_delay = Duration::from_millis(number(value(&arg), &arg)),
            "--malformed-rate" => faults.malformed_rate = rate(value(&arg), &arg),
            "--bad-signature-rate" => faults.bad_signature_rate = rate(value(&arg), &arg),
            "--seed" => faults.seed = number(value(&arg), &arg),
            "--stats" => stats = true,
            "--write-jpki" => write_jpki = Some(value(&arg)),
            other if !other.starts_with("--") => {
                addr = other.parse().unwrap_or_else(|_| {
                    fail("the address must be a socket address such as 127.0.0.1:3900")
                })
            }
            other => fail(&format!("unknown option {other}")),
        }
    }
    options.faults = faults;
    Args {
        addr,
        options,
        stats,
        write_jpki,
    }
}

/// `--write-jpki DIR`: the test CA (DER) and its revocation list of the population's revoked
/// and renewed cards, current for 7 days from the business clock's now.
fn write_jpki(dir: &str, clock: &SimClock) {
    use uketsuke_backend::simulator::population;
    let ca = keys::test_ca().unwrap_or_else(|e| fail(&format!("test CA: {e}")));
    let now = clock.now();
    let revoked = population::revoked_serials(&population::population(
        uketsuke_domain::window::jst_date(now),
    ));
    let now_unix = now.timestamp();
    let crl = ca
        .issue_crl(&revoked, now_unix - 3600, now_unix + 7 * 86_400)
        .unwrap_or_else(|e| fail(&format!("test CA's revocation list: {e}")));
    let dir = std::path::Path::new(dir);
    if let Err(e) = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(dir.join("test-ca.der"), ca.certificate_der()))
        .and_then(|()| std::fs::write(dir.join("test-ca.crl"), crl))
    {
        fail(&format!("--write-jpki {}: {e}", dir.display()));
    }
    println!(
        "test CA and revocation list written: {0}/test-ca.der, {0}/test-ca.crl (TEST ONLY: anyone can derive this CA's key)",
        dir.display()
    );
}

/// Reads and checks one key registration document (`-`: standard input).
fn institution_key(path: &str) -> InstitutionKey {
    let text = if path == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
    .unwrap_or_else(|e| fail(&format!("--institution-key {path}: cannot read: {e}")));
    let checked = KeyRegistration::parse(&text)
        .unwrap_or_else(|e| fail(&format!("--institution-key {path}: {e}")));
    InstitutionKey {
        key_id: checked.key_id,
        institution_code: checked.institution_code.as_str().to_owned(),
        verifying_key: checked.verifying_key,
    }
}

/// `GET /v1/_stats`: the registration counts as JSON, or 500 with the storage error.
async fn stats(sim: Arc<Sim>) -> Response {
    match sim.store.registration_counts().await {
        Ok(counts) => Json(counts).into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let Args {
        addr,
        options,
        stats: with_stats,
        write_jpki: jpki_dir,
    } = parse_args();
    if let Some(dir) = &jpki_dir {
        write_jpki(dir, &options.clock);
    }
    let options_summary: Vec<String> = options
        .institutions
        .iter()
        .map(|k| format!("{} of {}", k.key_id, k.institution_code))
        .collect();
    let sim = match build(&options).await {
        Ok(sim) => sim,
        Err(error) => fail(&format!("cannot start: {error}")),
    };
    let mut app = router_with(sim.clone());
    if with_stats {
        app = app.route(STATS_PATH, get(move || stats(sim.clone())));
    }
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("backend-sim: cannot start on {addr}: {error}");
            std::process::exit(1);
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    println!("backend simulator listening on http://{bound}");
    for institution in &options_summary {
        println!("registered institution key {institution}");
    }
    // The answer key as uketsuke.toml takes it (a test key: anyone can derive it).
    println!("answer-signing key, for uketsuke.toml:");
    println!("  backend_key_id = \"{}\"", keys::BACKEND_KEY_ID);
    println!(
        "  backend_key = \"{}\"",
        uketsuke_backend::contract::signing::encode_verifying_key(&keys::backend_verifying_key())
    );
    if with_stats {
        println!("registration counts at http://{bound}{STATS_PATH}");
    }
    // Serve until the process is stopped.
    if let Err(error) = axum::serve(listener, app).await {
        fail(&format!("stopped: {error}"));
    }
}
