//! Load generator for the whole pipeline: patients' HTTP calls → the server (trust checks,
//! storage, outbox) → the relay → the backend simulator → the confirmed reception. Two phases
//! on one server: as fast as `--concurrency` patients go (the maximum rate), then the same
//! number of registrations arriving at half that rate, one every 2/max seconds whatever the
//! server does (open loop: the latency the issue's goal is about). Each phase prints
//! registrations/s and p50/p99 latency from submit to `confirmed` and of the submit call alone.
//! Before and after the phases it measures the crypto ceiling (`ceiling.rs`) and prints the
//! ratio of the maximum rate to it. Run through `scripts/load.sh`, or:
//!
//! ```text
//! cargo run --release -p uketsuke-server --example load -- [--n 300] [--concurrency 16]
//!     [--database sqlite|postgres://…] [--relay-workers 4] [--ceiling-secs 2]
//!     [--count-statements]
//! ```
//!
//! `--count-statements` also prints the database statements each phase ran per registration,
//! by statement (`count.rs`); it slows the statements a little, so count in a run of its own.
//!
//! The simulator and the server run in this process (rate limits off: every patient comes from
//! 127.0.0.1). Virtual cards are made before the clock starts; each registration still signs
//! on the card, as a patient's card would, on a blocking thread (as a card's latency would not
//! hold up the server's tasks either).

#[path = "../../tests/common/patient.rs"]
mod patient;

mod ceiling;
mod count;

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
use uketsuke_backend::{
    contract::b64_encode,
    simulator::{
        SimOptions,
        population::{self, CertificateCase},
        spawn_with,
    },
};
use uketsuke_card::{Pin, VirtualCard, authenticate};
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
    ceiling_secs: f64,
    count_statements: bool,
}

fn usage() -> String {
    "usage: load [--n N] [--concurrency C] [--database sqlite|postgres://…] [--relay-workers W] \
     [--ceiling-secs S] [--count-statements]"
        .to_owned()
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        n: 300,
        concurrency: 16,
        database: "sqlite".to_owned(),
        relay_workers: None,
        ceiling_secs: 2.0,
        count_statements: false,
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
            "--ceiling-secs" => {
                let text = value()?;
                args.ceiling_secs = text
                    .parse::<f64>()
                    .ok()
                    .filter(|s| (0.1..=60.0).contains(s))
                    .ok_or_else(|| format!("--ceiling-secs: {text:?} is not 0.1–60"))?;
            }
            "--count-statements" => args.count_statements = true,
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

/// A fresh browser (its own cookie jar and connections), as `patient::Patient::new` makes it
/// but without the TLS root store: the patients here speak plain HTTP to 127.0.0.1, and
/// reading the system's root certificates for each browser cost the load generator about a
/// quarter of the run's CPU.
fn browser(base: &str) -> Result<patient::Patient, String> {
    let http = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(2))
        .cookie_store(true)
        .tls_built_in_root_certs(false)
        .default_headers(reqwest::header::HeaderMap::from_iter([(
            reqwest::header::HeaderName::from_static("x-uketsuke-csrf"),
            reqwest::header::HeaderValue::from_static("1"),
        )]))
        .build()
        .map_err(|e| format!("browser: {e}"))?;
    Ok(patient::Patient {
        http,
        base: base.trim_end_matches('/').to_owned(),
    })
}

/// One person's card, made (key and certificate) before the clock starts, as a real card is
/// issued once; each registration signs on a copy of it.
struct Card {
    no: u32,
    card: VirtualCard,
    pin: String,
}

/// The card signs `message` after its PIN: (certificate, signature) as base64url.
async fn card_sign(card: &Card, message: &str) -> Result<(String, String), String> {
    let mut copy = card.card.clone();
    let pin = Pin::new(&card.pin).map_err(|e| format!("card {}: PIN: {e:?}", card.no))?;
    let auth = authenticate(&mut copy, &pin, message.as_bytes())
        .await
        .map_err(|e| format!("card {}: {e}", card.no))?;
    Ok((
        b64_encode(&auth.certificate_der),
        b64_encode(&auth.signature),
    ))
}

/// One patient: link → choices → challenge → card signature → submit.
async fn one_registration(
    base: &str,
    link: &str,
    card: Arc<Card>,
    today: chrono::NaiveDate,
) -> Result<Submitted, String> {
    let patient = browser(base)?;
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
    // The card's RSA signature takes milliseconds of CPU: off the async workers.
    let message = message.to_owned();
    let (certificate, signature) = tokio::task::spawn_blocking(move || {
        tokio::runtime::Handle::current().block_on(card_sign(&card, &message))
    })
    .await
    .map_err(|e| format!("card: {e}"))??;
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

/// What one phase measured.
struct Phase {
    /// Confirmed registrations per second, from the phase's start to the last answer.
    rate: f64,
    latency: Vec<f64>,
    /// Submit → the backend's registration time, and from there → the confirming commit.
    to_backend: Vec<f64>,
    from_backend: Vec<f64>,
    submit: Vec<f64>,
    submits_per_s: f64,
    failures: Vec<String>,
    unconfirmed: usize,
    refused: usize,
    /// This process's CPU time (user + system) from the phase's start to the end of its
    /// eligibility fetches, per accepted registration: every part of the pipeline, the cards'
    /// signatures and the load's own clients included.
    cpu_per_registration: Duration,
    /// This process's context switches over the same span, per accepted registration.
    switches_per_registration: f64,
}

/// This process's CPU time so far (user + system) and its context switches (voluntary: a
/// thread waited, as a task's thread does for a database answer; involuntary: the scheduler
/// took the core away), on every thread.
fn process_usage() -> (Duration, u64) {
    // SAFETY: getrusage writes into the struct it is given and nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return (Duration::ZERO, 0);
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    let switches =
        u64::try_from(usage.ru_nvcsw).unwrap_or(0) + u64::try_from(usage.ru_nivcsw).unwrap_or(0);
    (time(usage.ru_utime) + time(usage.ru_stime), switches)
}

/// How a phase sends its patients.
#[derive(Clone, Copy)]
enum Arrivals {
    /// `concurrency` patients, each starting the next registration when theirs is submitted.
    Closed { concurrency: usize },
    /// One registration every `1/rate` seconds, however long each takes.
    Open { rate: f64 },
}

struct Target {
    base: String,
    link: String,
    cards: Vec<Arc<Card>>,
    today: chrono::NaiveDate,
    db: uketsuke_server::storage::Db,
}

async fn phase(target: &Arc<Target>, n: usize, arrivals: Arrivals) -> Result<Phase, BoxError> {
    let results = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let run_started_ms = unix_ms();
    let run_started = Instant::now();
    let (cpu_started, switches_started) = process_usage();
    let mut tasks = Vec::new();
    match arrivals {
        Arrivals::Closed { concurrency } => {
            let next = Arc::new(AtomicUsize::new(0));
            for _ in 0..concurrency {
                let (next, results, target) = (next.clone(), results.clone(), target.clone());
                tasks.push(tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let card = target.cards[i % target.cards.len()].clone();
                        let outcome =
                            one_registration(&target.base, &target.link, card, target.today).await;
                        if let Ok(mut results) = results.lock() {
                            results.push(outcome);
                        }
                    }
                }));
            }
        }
        Arrivals::Open { rate } => {
            let every = Duration::from_secs_f64(1.0 / rate.max(0.1));
            for i in 0..n {
                tokio::time::sleep_until((run_started + every.mul_f64(i as f64)).into()).await;
                let (results, target) = (results.clone(), target.clone());
                tasks.push(tokio::spawn(async move {
                    let card = target.cards[i % target.cards.len()].clone();
                    let outcome =
                        one_registration(&target.base, &target.link, card, target.today).await;
                    if let Ok(mut results) = results.lock() {
                        results.push(outcome);
                    }
                }));
            }
        }
    }
    for task in tasks {
        task.await?;
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
    let done_sql = "/* load */ SELECT reception_id, done_at FROM outbox \
                    WHERE operation = 'register' AND created_at >= $1 AND done_at IS NOT NULL";
    let mut answered_at: HashMap<String, i64> = HashMap::new();
    while answered_at.len() < accepted.len() && waited.elapsed() < CONFIRM_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let rows = sqlx::query(done_sql)
            .bind(run_started_ms)
            .fetch_all(&target.db)
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
        "/* load */ SELECT COUNT(*) AS n FROM receptions \
         WHERE status = 'refused' AND submitted_at >= $1",
    )
    .bind(run_started_ms)
    .fetch_one(&target.db)
    .await?
    .try_get("n")?;
    let refused = usize::try_from(refused)?;

    // Where the time goes: from submit to the backend's registration (queue, relay signing,
    // the call, the backend's checks), and from there to the confirming commit.
    let mut registered_at: HashMap<String, i64> = HashMap::new();
    for row in sqlx::query(
        "/* load */ SELECT id, registered_at FROM receptions \
         WHERE submitted_at >= $1 AND registered_at IS NOT NULL",
    )
    .bind(run_started_ms)
    .fetch_all(&target.db)
    .await?
    {
        registered_at.insert(row.try_get("id")?, row.try_get("registered_at")?);
    }
    let mut to_backend = Vec::new();
    let mut from_backend = Vec::new();
    for (id, s) in &accepted {
        if let (Some(at), Some(done)) = (registered_at.get(id), answered_at.get(id)) {
            to_backend.push((at - s.submit_started_ms) as f64);
            from_backend.push((done - at) as f64);
        }
    }
    to_backend.sort_by(f64::total_cmp);
    from_backend.sort_by(f64::total_cmp);
    let mut latency: Vec<f64> = accepted
        .iter()
        .filter_map(|(id, s)| {
            answered_at
                .get(id)
                .map(|done| (done - s.submit_started_ms) as f64)
        })
        .collect();
    latency.sort_by(f64::total_cmp);
    let mut submit: Vec<f64> = accepted.values().map(|s| s.submit_ms).collect();
    submit.sort_by(f64::total_cmp);
    let last_answer = answered_at
        .values()
        .copied()
        .max()
        .unwrap_or(run_started_ms);
    let secs = ((last_answer - run_started_ms) as f64 / 1e3).max(1e-3);
    let confirmed = answered_at.len().saturating_sub(refused);
    // Let the eligibility fetches of this phase drain before the next one starts.
    let drained = Instant::now();
    while drained.elapsed() < CONFIRM_TIMEOUT {
        let pending: i64 =
            sqlx::query("/* load */ SELECT COUNT(*) AS n FROM outbox WHERE done_at IS NULL")
                .fetch_one(&target.db)
                .await?
                .try_get("n")?;
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (cpu, switches) = process_usage();
    let cpu = cpu.saturating_sub(cpu_started);
    let cpu_per_registration = cpu / u32::try_from(accepted.len().max(1)).unwrap_or(u32::MAX);
    let switches_per_registration =
        switches.saturating_sub(switches_started) as f64 / accepted.len().max(1) as f64;
    Ok(Phase {
        rate: confirmed as f64 / secs,
        latency,
        to_backend,
        from_backend,
        submit,
        submits_per_s: accepted.len() as f64 / submitted_in.as_secs_f64().max(1e-3),
        unconfirmed: accepted.len() - answered_at.len(),
        failures,
        refused,
        cpu_per_registration,
        switches_per_registration,
    })
}

fn print_phase(name: &str, phase: &Phase) {
    let line = |label: &str, value: String, note: &str| {
        println!("  {name} {label:<40} {value:>9} {note}");
    };
    line("registrations/s", format!("{:.1}", phase.rate), "");
    line(
        "p50 latency",
        format!("{:.2}", percentile(&phase.latency, 0.50)),
        "ms   (submit → confirmed)",
    );
    line(
        "p99 latency",
        format!("{:.2}", percentile(&phase.latency, 0.99)),
        "ms",
    );
    line(
        "p50 to backend",
        format!("{:.2}", percentile(&phase.to_backend, 0.50)),
        "ms   (submit → the backend registered it)",
    );
    line(
        "p50 from backend",
        format!("{:.2}", percentile(&phase.from_backend, 0.50)),
        "ms   (the backend registered it → confirmed)",
    );
    line(
        "p50 submit",
        format!("{:.2}", percentile(&phase.submit, 0.50)),
        "ms   (the submit call alone)",
    );
    line(
        "p99 submit",
        format!("{:.2}", percentile(&phase.submit, 0.99)),
        "ms",
    );
    line(
        "submits/s",
        format!("{:.1}", phase.submits_per_s),
        "(whole patient flow)",
    );
    line(
        "CPU per registration",
        format!("{:.0}", phase.cpu_per_registration.as_secs_f64() * 1e6),
        "µs   (this process, user + system, until the phase's eligibility fetches are done)",
    );
    line(
        "context switches per registration",
        format!("{:.0}", phase.switches_per_registration),
        "(this process, voluntary + involuntary, the same span)",
    );
    line(
        "failed",
        (phase.failures.len() + phase.unconfirmed + phase.refused).to_string(),
        "",
    );
    for failure in phase.failures.iter().take(5) {
        println!("    {failure}");
    }
    if phase.unconfirmed > 0 {
        println!(
            "    {} accepted registrations not confirmed within {CONFIRM_TIMEOUT:?}",
            phase.unconfirmed
        );
    }
    if phase.refused > 0 {
        println!("    {} registrations refused by the backend", phase.refused);
    }
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
    if args.count_statements {
        count::install();
    }
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
    let trust = server.state().trust.clone();
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
    let made = people.clone();
    let cards: Vec<Arc<Card>> = tokio::task::spawn_blocking(move || {
        made.into_iter()
            .map(|no| {
                population::virtual_card(no, CertificateCase::Valid).map(|card| {
                    Arc::new(Card {
                        no,
                        card,
                        pin: population::pin_of(no),
                    })
                })
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await??;
    let first = *people.first().ok_or("no valid person in the population")?;
    let material = Arc::new(ceiling::Material::prepare(trust, first).await?);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);

    println!(
        "pipeline benchmark ({engine}): {} card registrations per phase, concurrency {}, \
         {relay_workers} relay workers, {cores} cores",
        args.n, args.concurrency
    );
    println!("  crypto per operation (one thread, mean of 200):");
    let costs = {
        let material = material.clone();
        tokio::task::spawn_blocking(move || material.costs(200)).await??
    };
    let mut pipeline_per_registration = Duration::ZERO;
    let mut card_per_registration = Duration::ZERO;
    for cost in &costs {
        println!(
            "    {:<64} {:>8.1} µs × {}",
            cost.label,
            cost.each.as_secs_f64() * 1e6,
            cost.per_registration
        );
        let total = cost.each * cost.per_registration;
        if cost.pipeline {
            pipeline_per_registration += total;
        } else {
            card_per_registration += total;
        }
    }
    println!(
        "    {:<64} {:>8.1} µs   (+ {:.1} µs the card's signature)",
        "one registration's pipeline crypto",
        pipeline_per_registration.as_secs_f64() * 1e6,
        card_per_registration.as_secs_f64() * 1e6
    );
    let ceiling_run = Duration::from_secs_f64(args.ceiling_secs);
    let measure_ceiling = |with_card: bool| {
        let material = material.clone();
        tokio::task::spawn_blocking(move || material.throughput(cores, ceiling_run, with_card))
    };
    let before = (
        measure_ceiling(true).await??,
        measure_ceiling(false).await??,
    );

    // Counted from here: the phases' statements only.
    let _ = count::take();
    let target = Arc::new(Target {
        base,
        link,
        cards,
        today,
        db,
    });
    let max = phase(
        &target,
        args.n,
        Arrivals::Closed {
            concurrency: args.concurrency,
        },
    )
    .await?;
    print_phase("max", &max);
    if args.count_statements {
        count::print("max", &count::take(), args.n);
    }
    let half_rate = (max.rate / 2.0).max(0.5);
    println!(
        "  half offered rate {half_rate:>41.1} /s (one registration every {:.1} ms)",
        1e3 / half_rate
    );
    let half = phase(&target, args.n, Arrivals::Open { rate: half_rate }).await?;
    print_phase("half", &half);
    if args.count_statements {
        count::print("half", &count::take(), args.n);
    }

    let after = (
        measure_ceiling(true).await??,
        measure_ceiling(false).await??,
    );
    let with_card = (before.0 + after.0) / 2.0;
    let pipeline_only = (before.1 + after.1) / 2.0;
    println!(
        "  ceiling with card {:>41.1} /s   (crypto alone on {cores} threads, card's signature included; before {:.1}, after {:.1})",
        with_card, before.0, after.0
    );
    println!(
        "  ceiling pipeline {:>42.1} /s   (server and simulator crypto only; before {:.1}, after {:.1})",
        pipeline_only, before.1, after.1
    );
    println!(
        "  ratio with card {:>43.1} %   (max registrations/s ÷ ceiling with card)",
        100.0 * max.rate / with_card.max(1e-9)
    );
    println!(
        "  ratio pipeline {:>44.1} %   (max registrations/s ÷ pipeline ceiling)",
        100.0 * max.rate / pipeline_only.max(1e-9)
    );
    // What the ratio would be if the phase's CPU were all this run had: the crypto's share of
    // the CPU each registration took. Other processes on the machine move the rates and the
    // ceiling between runs much more than they move this.
    let cpu_share = |crypto: Duration| {
        100.0 * crypto.as_secs_f64() / max.cpu_per_registration.as_secs_f64().max(1e-9)
    };
    println!(
        "  CPU share pipeline crypto {:>33.1} %   (one registration's pipeline crypto ÷ max CPU per registration)",
        cpu_share(pipeline_per_registration)
    );
    println!(
        "  CPU share crypto with card {:>32.1} %   (the same, the card's signature included)",
        cpu_share(pipeline_per_registration + card_per_registration)
    );

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), serving).await;
    Ok(())
}
