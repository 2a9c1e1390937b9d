//! Standalone reference simulator of the confirmation backend.
//!
//! Usage: `backend-sim [ADDR] [options]` (default address 127.0.0.1:3900)
//!   --db PATH                 SQLite file (default: in memory)
//!   --clock RFC3339           freeze the business clock at this instant
//!   --latency-ms N            add N ms to every answer
//!   --error-rate R            answer 503 unavailable to a share R (0..1) of requests
//!   --outage                  answer every request with an unsigned 503
//!   --slow-rate R --slow-ms N make a share R of answers wait N ms
//!   --malformed-rate R        cut a share R of answer bodies short
//!   --bad-signature-rate R    corrupt the signature of a share R of answers
//!   --seed N                  seed of the fault generator

use std::net::SocketAddr;
use std::time::Duration;

use uketsuke_backend::simulator::{FaultConfig, SimClock, SimOptions, keys, spawn_with};

fn fail(message: &str) -> ! {
    eprintln!("backend-sim: {message}");
    std::process::exit(2);
}

fn parse_args() -> (SocketAddr, SimOptions) {
    let mut addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 3900));
    let mut options = SimOptions::default();
    let mut faults = FaultConfig::default();
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
            other if !other.starts_with("--") => {
                addr = other.parse().unwrap_or_else(|_| {
                    fail("the address must be a socket address such as 127.0.0.1:3900")
                })
            }
            other => fail(&format!("unknown option {other}")),
        }
    }
    options.faults = faults;
    (addr, options)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (addr, options) = parse_args();
    match spawn_with(addr, options).await {
        Ok(running) => {
            println!("backend simulator listening on {}", running.base_url());
            println!(
                "backend key {} = {}",
                keys::BACKEND_KEY_ID,
                uketsuke_backend::contract::signing::encode_verifying_key(
                    &keys::backend_verifying_key()
                )
            );
            // Serve until the process is stopped.
            std::future::pending::<()>().await;
        }
        Err(error) => {
            eprintln!("backend-sim: cannot start on {addr}: {error}");
            std::process::exit(1);
        }
    }
}
