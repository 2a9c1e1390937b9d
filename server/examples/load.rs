//! Load generator for the whole pipeline: patients' HTTP calls → the server (trust checks,
//! storage, outbox) → the relay → the backend simulator → the confirmed reception. Prints
//! registrations/s and p50/p99 latency from submit to `confirmed` and of the submit call alone.
//! Run through `scripts/load.sh`, or:
//!
//! ```text
//! cargo run --release -p uketsuke-server --example load -- [--n 300] [--concurrency 16]
//!     [--database sqlite|postgres://…] [--relay-workers 4]
//! ```
//!
//! The simulator and the server run in this process (rate limits off: every patient comes from
//! 127.0.0.1). Virtual cards are made before the clock starts; each registration still signs
//! on the card, as a patient's card would.

#[path = "../tests/common/patient.rs"]
mod patient;

use std::{
    collections::HashMap,
    error::Error,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::json;
use sqlx::Row;
use uketsuke_backend::simulator::{
    SimOptions,
    population::{self, CertificateCase},
    spawn_with,
};
use uketsuke_domain::window::jst_date;
use uketsuke_server::{Options, Server, config::Config, telemetry};

type BoxError = Box<dyn Error + Send + Sync>;

/// People whose cards sign in turn (valid certificate, insurance use registered, no J-LIS
/// review): a handful, so their RSA keys are made once.
const PEOPLE: usize = 8;
/// How long the relay may take to confirm everything after the last submit.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(300);

struct Args {
    n: usize,
    concurrency: usize,
    database: String,
    relay_workers: Option<usize>,
}

fn usage() -> String {
    "usage: load [--n N] [--concurrency C] [--database sqlite|postgres://…] [--relay-workers W]"
        .to_owned()
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        n: 300,
        concurrency: 16,
        database: "sqlite".to_owned(),
        relay_workers: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))
        };
        let number = |text: String| {
            text.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{flag}: {text:?} is not a positive number"))
        };
        match flag.as_str() {
            "--n" => args.n = number(value()?)?,
            "--concurrency" => args.concurrency = number(value()?)?,
            "--database" => args.database = value()?,
            "--relay-workers" => args.relay_workers = Some(number(value()?)?),
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    Ok(args)
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or(0.0)
}

/// One patient's registration as measured from the patient's side.
struct Submitted {
    reception_id: String,
    /// Wall clock when the submit call started (the server stamps its rows the same way).
    submit_started_ms: i64,
    submit_ms: f64,
}

/// One patient: link → choices → challenge → card signature → submit.
async fn one_registration(
    base: &str,
    link: &str,
    no: u32,
    today: chrono::NaiveDate,
) -> Result<Submitted, String> {
    let patient = patient::Patient::new(base);
    let refused = |step: &str, answer: &patient::Answer| {
        format!("{step}: {} {:?}", answer.status, answer.body)
    };
    let started = patient.start(link).await;
    if started.status != 201 {
        return Err(refused("session", &started));
    }
    let review = patient
        .choose(patient::choices_for("separate_route", today))
        .await;
    if review.status != 200 {
        return Err(refused("choices", &review));
    }
    let challenge = patient.challenge().await;
    if challenge.status != 200 {
        return Err(refused("challenge", &challenge));
    }
    let message = challenge.body["message"]
        .as_str()
        .ok_or_else(|| refused("challenge without message", &challenge))?;
    let (certificate, signature) = patient::card_sign(no, CertificateCase::Valid, message).await;
    let submit_started_ms = unix_ms();
    let t = Instant::now();
    let answer = patient
        .submit(json!({
            "challenge": challenge.body["challenge"],
            "origin": base,
            "certificate": certificate,
            "signature": signature,
        }))
        .await;
    let submit_ms = t.elapsed().as_secs_f64() * 1e3;
    if answer.status != 202 {
        return Err(refused("registration", &answer));
    }
    let reception_id = answer.body["reception_id"]
        .as_str()
        .ok_or_else(|| refused("registration without reception id", &answer))?
        .to_owned();
    Ok(Submitted {
        reception_id,
        submit_started_ms,
        submit_ms,
    })
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
    let dir = tempfile::tempdir()?;
    let (database_url, engine) = if args.database == "sqlite" {
        (
            format!("sqlite://{}/load.db", dir.path().display()),
            "sqlite",
        )
    } else {
        (args.database.clone(), "postgres")
    };

    let sim = spawn_with(SocketAddr::from(([127, 0, 0, 1], 0)), SimOptions::default()).await?;
    let mut env = vec![
        ("UKETSUKE_LISTEN", "127.0.0.1:0".to_owned()),
        ("UKETSUKE_MODE", "demo".to_owned()),
        ("UKETSUKE_DATABASE_URL", database_url),
        ("UKETSUKE_BACKEND", sim.base_url()),
        // Every patient here comes from 127.0.0.1: the per-IP limit would measure itself.
        ("UKETSUKE_RATE_LIMITS", "off".to_owned()),
        (
            "UKETSUKE_SITE_ROOT",
            dir.path().join("site").display().to_string(),
        ),
        ("UKETSUKE_LOG", "warn".to_owned()),
    ];
    if let Some(workers) = args.relay_workers {
        env.push(("UKETSUKE_RELAY_WORKERS", workers.to_string()));
    }
    let env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let config = Config::from_sources(None, &env)?;
    let relay_workers = config.relay_workers;
    telemetry::init(&config);
    let server = Server::build_with(config, Options::default()).await?;
    let base = server.base_url();
    let link = server
        .demo_links()
        .iter()
        .find(|l| l.kind.code() == "separate_route")
        .map(|l| l.id.clone())
        .ok_or("the demo has no separate-route link")?;
    let db = server.state().db.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    // The cards' RSA keys (and the test CA) are made once, before the clock starts.
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

    println!(
        "pipeline benchmark ({engine}): {} card registrations, concurrency {}, {relay_workers} relay workers",
        args.n, args.concurrency
    );
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(Vec::with_capacity(args.n)));
    let run_started_ms = unix_ms();
    let run_started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (next, results, people) = (next.clone(), results.clone(), people.clone());
        let (base, link, n) = (base.clone(), link.clone(), args.n);
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let no = people[i % people.len()];
                let outcome = one_registration(&base, &link, no, today).await;
                if let Ok(mut results) = results.lock() {
                    results.push(outcome);
                }
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    let submitted_in = run_started.elapsed();
    let outcomes: Vec<Result<Submitted, String>> = results
        .lock()
        .map(|mut r| std::mem::take(&mut *r))
        .map_err(|_| "a load worker panicked")?;
    let mut failures = Vec::new();
    let mut accepted = HashMap::new();
    for outcome in outcomes {
        match outcome {
            Ok(s) => {
                accepted.insert(s.reception_id.clone(), s);
            }
            Err(e) => failures.push(e),
        }
    }

    // The relay's own records say when each registration was answered: the outbox row of a
    // registration is marked done in the transaction that confirms (or refuses) the reception.
    // Reading them afterwards measures the pipeline without adding polling load to the server.
    let waited = Instant::now();
    let done_sql = "SELECT reception_id, done_at FROM outbox \
                    WHERE operation = 'register' AND created_at >= $1 AND done_at IS NOT NULL";
    let mut answered_at: HashMap<String, i64> = HashMap::new();
    while answered_at.len() < accepted.len() && waited.elapsed() < CONFIRM_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let rows = sqlx::query(done_sql)
            .bind(run_started_ms)
            .fetch_all(&db)
            .await?;
        answered_at.clear();
        for row in rows {
            let id: String = row.try_get("reception_id")?;
            if accepted.contains_key(&id) {
                answered_at.insert(id, row.try_get("done_at")?);
            }
        }
    }
    let refused: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM receptions WHERE status = 'refused' AND submitted_at >= $1",
    )
    .bind(run_started_ms)
    .fetch_one(&db)
    .await?
    .try_get("n")?;

    let mut pipeline: Vec<f64> = accepted
        .iter()
        .filter_map(|(id, s)| {
            answered_at
                .get(id)
                .map(|done| (done - s.submit_started_ms) as f64)
        })
        .collect();
    pipeline.sort_by(f64::total_cmp);
    let mut submit: Vec<f64> = accepted.values().map(|s| s.submit_ms).collect();
    submit.sort_by(f64::total_cmp);
    let last_answer = answered_at
        .values()
        .copied()
        .max()
        .unwrap_or(run_started_ms);
    let pipeline_secs = ((last_answer - run_started_ms) as f64 / 1e3).max(1e-3);
    let confirmed = answered_at.len().saturating_sub(usize::try_from(refused)?);

    println!(
        "  registrations/s                              {:>9.1}",
        confirmed as f64 / pipeline_secs
    );
    println!(
        "  p50 latency                                  {:>9.2} ms   (submit → confirmed)",
        percentile(&pipeline, 0.50)
    );
    println!(
        "  p99 latency                                  {:>9.2} ms",
        percentile(&pipeline, 0.99)
    );
    println!(
        "  p50 submit                                   {:>9.2} ms   (the submit call alone)",
        percentile(&submit, 0.50)
    );
    println!(
        "  p99 submit                                   {:>9.2} ms",
        percentile(&submit, 0.99)
    );
    println!(
        "  submits/s (whole patient flow)               {:>9.1}",
        accepted.len() as f64 / submitted_in.as_secs_f64().max(1e-3)
    );
    println!(
        "  failed                                       {:>9}",
        failures.len() + (accepted.len() - answered_at.len()) + usize::try_from(refused)?
    );
    for failure in failures.iter().take(5) {
        println!("    {failure}");
    }
    if answered_at.len() < accepted.len() {
        println!(
            "    {} accepted registrations not confirmed within {CONFIRM_TIMEOUT:?}",
            accepted.len() - answered_at.len()
        );
    }
    if refused > 0 {
        println!("    {refused} registrations refused by the backend");
    }

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), serving).await;
    Ok(())
}
