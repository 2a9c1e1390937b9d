//! Open consoles and waiting patients, as figures: the real `uketsuke-server` binary runs as a
//! child process (so that its memory and CPU are its own, not this load generator's), then
//! this program opens `--sessions` reception sessions and `--streams` console event streams
//! (`GET /api/console/events`, the live list of an open console) and prints the server's
//! resident memory, its CPU and the database statements it runs per second while they stay
//! open. Statements are counted from the server's own log (`sqlx::query` events at debug,
//! JSON lines on its stdout), so SQLite and PostgreSQL are counted the same way. Run through
//! `scripts/load.sh`, or:
//!
//! ```text
//! cargo build --release -p uketsuke-server
//! cargo run --release -p uketsuke-server --example streams -- --server target/release/uketsuke-server
//!     [--database sqlite|postgres://…] [--streams 1000] [--sessions 1000] [--measure-secs 10]
//! ```
//!
//! Console sessions are written to the database directly for the demo's `staff` account (a
//! passkey sign-in per session would measure WebAuthn, not the streams): four streams each,
//! the default `event_streams_per_session`.

use std::{
    error::Error,
    io::BufRead,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use sqlx::Row;
use uketsuke_server::{console::session, storage};

type BoxError = Box<dyn Error + Send + Sync>;

/// Streams a console session may hold (the default `event_streams_per_session`).
const STREAMS_PER_SESSION: usize = 4;

struct Args {
    server: String,
    database: String,
    streams: usize,
    sessions: usize,
    measure_secs: f64,
}

fn usage() -> String {
    "usage: streams --server PATH [--database sqlite|postgres://…] [--streams N] [--sessions N] [--measure-secs S]"
        .to_owned()
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        server: String::new(),
        database: "sqlite".to_owned(),
        streams: 1000,
        sessions: 1000,
        measure_secs: 10.0,
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
                .ok_or_else(|| format!("{flag}: {text:?} is not a number"))
        };
        match flag.as_str() {
            "--server" => args.server = value()?,
            "--database" => args.database = value()?,
            "--streams" => args.streams = number(value()?)?,
            "--sessions" => args.sessions = number(value()?)?,
            "--measure-secs" => {
                let text = value()?;
                args.measure_secs = text
                    .parse::<f64>()
                    .ok()
                    .filter(|s| (1.0..=600.0).contains(s))
                    .ok_or_else(|| format!("--measure-secs: {text:?} is not 1–600"))?;
            }
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    if args.server.is_empty() {
        return Err(usage());
    }
    Ok(args)
}

/// The child's resident set and its CPU time so far, from `/proc`.
struct Sample {
    rss_kib: u64,
    cpu_ticks: u64,
    statements: u64,
    at: Instant,
}

fn sample(pid: u32, statements: &AtomicU64) -> Result<Sample, BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or("no VmRSS in /proc/<pid>/status")?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at field 3; utime and
    // stime are fields 14 and 15.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("bad stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64, BoxError> {
        Ok(fields.get(i - 3).ok_or("short stat")?.parse::<u64>()?)
    };
    Ok(Sample {
        rss_kib,
        cpu_ticks: ticks(14)? + ticks(15)?,
        statements: statements.load(Ordering::Relaxed),
        at: Instant::now(),
    })
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU (% of one core) and statements per second between two samples.
fn rates(a: &Sample, b: &Sample, tck: f64) -> (f64, f64) {
    let secs = b.at.duration_since(a.at).as_secs_f64().max(1e-3);
    (
        100.0 * (b.cpu_ticks.saturating_sub(a.cpu_ticks)) as f64 / tck / secs,
        (b.statements.saturating_sub(a.statements)) as f64 / secs,
    )
}

/// The server child, stopped however this program ends.
struct StopOnDrop(std::process::Child);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
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
            format!("sqlite://{}/streams.db", dir.path().display()),
            "sqlite",
        )
    } else {
        (args.database.clone(), "postgres")
    };
    let mut child = std::process::Command::new(&args.server)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("UKETSUKE_MODE", "demo")
        .env("UKETSUKE_LISTEN", "127.0.0.1:0")
        .env("UKETSUKE_DATABASE_URL", &database_url)
        .env("UKETSUKE_RATE_LIMITS", "off")
        .env("UKETSUKE_SITE_ROOT", dir.path().join("site"))
        .env("UKETSUKE_AUDIT_KEY_FILE", dir.path().join("audit.key"))
        .env("UKETSUKE_LOG", "warn,sqlx::query=debug")
        .env("UKETSUKE_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let child = StopOnDrop(child);
    let pid = child.0.id();
    let statements = Arc::new(AtomicU64::new(0));
    let (found, mut announced) = tokio::sync::mpsc::channel::<(String, String)>(1);
    {
        let statements = statements.clone();
        std::thread::spawn(move || {
            let mut base = None;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("\"sqlx::query\"") {
                    statements.fetch_add(1, Ordering::Relaxed);
                } else if let Some(at) = line.strip_prefix("Uketsuke is running at ") {
                    base = Some(at.trim().to_owned());
                } else if let (Some(base), Some(rest)) =
                    (&base, line.trim().strip_prefix("demo separate_route"))
                {
                    let link = rest.trim().rsplit('/').next().unwrap_or_default();
                    let _ = found.blocking_send((base.clone(), link.to_owned()));
                }
            }
        });
    }
    let (base, link) = tokio::time::timeout(Duration::from_secs(120), announced.recv())
        .await?
        .ok_or("the server did not announce its address")?;
    let tck = clock_ticks_per_second();
    println!(
        "open consoles and sessions ({engine}): the server binary as its own process, {} streams, {} reception sessions",
        args.streams, args.sessions
    );

    // Console sessions for the demo's general user, written as a sign-in would write them.
    let db = storage::open(&database_url).await?;
    let account: String = sqlx::query("SELECT id FROM staff_accounts WHERE login_id = 'staff'")
        .fetch_one(&db)
        .await?
        .try_get("id")?;
    let now_ms = storage::now_millis();
    let mut tokens = Vec::new();
    for _ in 0..args.streams.div_ceil(STREAMS_PER_SESSION) {
        let mut tx = db.begin().await?;
        tokens.push(session::create_in(&mut tx, &account, "load-streams", now_ms).await?);
        tx.commit().await?;
    }
    db.close().await;

    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = sample(pid, &statements)?;
    tokio::time::sleep(Duration::from_secs_f64(args.measure_secs.min(5.0))).await;
    let idle_end = sample(pid, &statements)?;
    let (idle_cpu, idle_qps) = rates(&idle, &idle_end, tck);

    // Reception sessions: what a patient holds between opening the link and the card.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(16)
        .build()?;
    let mut opened = 0usize;
    for chunk in (0..args.sessions).collect::<Vec<_>>().chunks(16) {
        let calls = chunk.iter().map(|_| {
            http.post(format!("{base}/api/r/{link}/session"))
                .header("x-uketsuke-csrf", "1")
                .send()
        });
        for answer in futures_util::future::join_all(calls).await {
            if answer.is_ok_and(|a| a.status().as_u16() == 201) {
                opened += 1;
            }
        }
    }

    // The event streams, each on its own connection, read as they come.
    let cookie = session::COOKIE;
    let ready = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for i in 0..args.streams {
        let token = tokens[i / STREAMS_PER_SESSION].clone();
        let (base, ready) = (base.clone(), ready.clone());
        readers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let Ok(mut response) = client
                .get(format!("{base}/api/console/events"))
                .header("cookie", format!("{cookie}={token}"))
                .send()
                .await
            else {
                return;
            };
            if response.status().as_u16() != 200 {
                return;
            }
            let mut counted = false;
            while let Ok(Some(chunk)) = response.chunk().await {
                if !counted && chunk.windows(11).any(|w| w == b"event: read") {
                    ready.fetch_add(1, Ordering::Relaxed);
                    counted = true;
                }
            }
        }));
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let waiting = Instant::now();
    while (ready.load(Ordering::Relaxed) as usize) < args.streams
        && waiting.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let streams_open = ready.load(Ordering::Relaxed);
    // Settle (the first polls of every stream), then measure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let busy = sample(pid, &statements)?;
    tokio::time::sleep(Duration::from_secs_f64(args.measure_secs)).await;
    let busy_end = sample(pid, &statements)?;
    let (busy_cpu, busy_qps) = rates(&busy, &busy_end, tck);

    let line = |label: &str, value: String, note: &str| {
        println!("  {label:<44} {value:>9} {note}");
    };
    line("reception sessions opened", opened.to_string(), "");
    line("event streams open", streams_open.to_string(), "");
    line(
        "idle RSS",
        format!("{:.1}", mib(idle_end.rss_kib)),
        "MiB   (no stream, no session)",
    );
    line(
        "RSS",
        format!("{:.1}", mib(busy_end.rss_kib)),
        "MiB   (with the sessions and streams)",
    );
    line("idle CPU", format!("{idle_cpu:.1}"), "% of one core");
    line(
        "streams CPU",
        format!("{busy_cpu:.1}"),
        "% of one core (with the streams open)",
    );
    line("idle queries/s", format!("{idle_qps:.1}"), "");
    line(
        "streams queries/s",
        format!("{busy_qps:.1}"),
        "(with the streams open)",
    );

    for reader in &readers {
        reader.abort();
    }
    drop(child);
    Ok(())
}
