//! The server binary as an operator meets it: a bad setting (a missing built site included)
//! stops it with one line naming the key; SIGTERM stops it cleanly, within ten seconds, even
//! with an event stream open and requests half sent, and leaves the database consistent; JSON
//! logs are JSON from the first line, text logs carry no colour codes into a file; `--version`;
//! the command line names its database and origin and creates none unless asked.

mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{
    console::{Console, SoftPasskey},
    patient::{Patient, register},
};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_uketsuke-server");

/// A folder shaped like the built site (the files the pages load), for starting the binary
/// without building the WASM.
fn site(dir: &Path) -> PathBuf {
    let site = dir.join("site");
    for file in uketsuke_server::config::SITE_FILES {
        let path = site.join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("site folder");
        std::fs::write(path, b"").expect("site file");
    }
    site
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (key, value) in [
        ("UKETSUKE_LISTEN", "nowhere"),
        ("UKETSUKE_MODE", "live"),
        ("UKETSUKE_DATABASE_URL", "mysql://x"),
        ("UKETSUKE_PUBLIC_ORIGIN", "https://x.jp/path"),
    ] {
        let output = Command::new(BIN)
            .current_dir(dir.path())
            .env_clear()
            // The mode has no default; the bad value is the one under test.
            .env("UKETSUKE_MODE", "demo")
            .env(key, value)
            .output()
            .expect("runs");
        assert_eq!(output.status.code(), Some(2), "{key}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{key}: {stderr}");
        assert!(
            stderr.starts_with(&format!("configuration error: {key}: ")),
            "{stderr}"
        );
        assert!(output.stdout.is_empty());
    }
    // Nothing was created on the way out.
    assert!(!dir.path().join("data").exists());
}

#[test]
fn a_bad_config_file_names_the_file_and_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("uketsuke.toml"), "listen = 3000\n").expect("write");
    let output = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("listen (uketsuke.toml): must be a string"),
        "{stderr}"
    );
}

#[test]
fn prints_the_demo_url_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("UKETSUKE_LISTEN", "127.0.0.1:0")
        .env("UKETSUKE_MODE", "demo")
        .env("UKETSUKE_LOG", "warn")
        .env("UKETSUKE_SITE_ROOT", site(dir.path()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut landing = None;
    for line in lines.by_ref() {
        let line = line.expect("utf-8 output");
        if let Some(url) = line.strip_prefix("Open the demo landing page: ") {
            landing = Some(url.to_owned());
            break;
        }
    }
    let landing = landing.expect("the landing URL is printed");
    assert!(
        landing.starts_with("http://localhost:") && landing.contains("/r/"),
        "{landing}"
    );
    // The default database was created under ./data/ of the working directory.
    assert!(dir.path().join("data").join("uketsuke.db").exists());

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit after SIGTERM: {status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the server did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn version_prints_the_version() {
    let output = Command::new(BIN)
        .arg("--version")
        .env_clear()
        .output()
        .expect("runs");
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("uketsuke-server {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_missing_site_stops_start_up_like_a_bad_value() {
    let dir = tempfile::tempdir().expect("temp dir");
    let half = dir.path().join("half");
    std::fs::create_dir_all(half.join("pkg")).expect("folder");
    for (site, source, words) in [
        (
            None,
            "UKETSUKE_SITE_ROOT (default)",
            "\"target/site\": no such folder",
        ),
        (
            Some(dir.path().join("nowhere")),
            "UKETSUKE_SITE_ROOT",
            "no such folder",
        ),
        (
            Some(half),
            "UKETSUKE_SITE_ROOT",
            "pkg/uketsuke.js is missing",
        ),
    ] {
        let mut command = Command::new(BIN);
        command
            .current_dir(dir.path())
            .env_clear()
            .env("UKETSUKE_MODE", "demo")
            .env("UKETSUKE_LISTEN", "127.0.0.1:0");
        if let Some(site) = &site {
            command.env("UKETSUKE_SITE_ROOT", site);
        }
        let output = command.output().expect("runs");
        assert_eq!(output.status.code(), Some(2), "{site:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with(&format!("configuration error: {source}: ")),
            "{stderr}"
        );
        assert!(stderr.contains(words), "{words}: {stderr}");
        assert!(output.stdout.is_empty());
    }
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

/// The binary started in demo mode on `database_url` with `env` besides; its stdout is read
/// line by line until the console's address is printed (text) or the start-up event (JSON).
struct Running {
    child: Child,
    base: String,
    links: Vec<(String, String)>,
    lines: Vec<String>,
    rest: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

impl Running {
    fn start(dir: &Path, env: &[(&str, &str)]) -> Running {
        let mut command = Command::new(BIN);
        command
            .current_dir(dir)
            .env_clear()
            .env("UKETSUKE_LISTEN", "127.0.0.1:0")
            .env("UKETSUKE_MODE", "demo")
            .env("UKETSUKE_LOG", "warn")
            .env("UKETSUKE_SITE_ROOT", site(dir))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("starts");
        let mut rest = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut lines = Vec::new();
        let mut base = String::new();
        let mut links = Vec::new();
        for line in rest.by_ref() {
            let line = line.expect("utf-8 output");
            lines.push(line.clone());
            if let Some(url) = line.strip_prefix("Uketsuke is running at ") {
                base = url.to_owned();
            }
            if let Some((kind, url)) = line
                .trim_start()
                .strip_prefix("demo ")
                .and_then(|l| l.split_once(' '))
                && let Some((_, id)) = url.trim().rsplit_once("/r/")
            {
                links.push((kind.to_owned(), id.to_owned()));
            }
            if line.starts_with("Staff console: ") || line.contains("Uketsuke is running\"") {
                break;
            }
        }
        Running {
            child,
            base,
            links,
            lines,
            rest,
        }
    }

    fn sigterm(&self) -> Instant {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
        Instant::now()
    }

    /// Waits for the exit; panics past `limit` after `since`.
    fn exits_within(&mut self, since: Instant, limit: Duration) -> Duration {
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "exit after SIGTERM: {status}");
                return since.elapsed();
            }
            if since.elapsed() > limit {
                let _ = self.child.kill();
                panic!("the server did not stop within {limit:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn json_logs_are_json_from_the_first_line_and_text_logs_have_no_colour_in_a_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/json.db", dir.path().display());
    let mut server = Running::start(
        dir.path(),
        &[
            ("UKETSUKE_LOG_FORMAT", "json"),
            ("UKETSUKE_LOG", "info"),
            ("UKETSUKE_DATABASE_URL", &url),
        ],
    );
    let started = server
        .lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: {l}"))
        })
        .find(|v| v["fields"]["message"] == "uketsuke-server starting")
        .expect("the start-up event");
    let fields = &started["fields"];
    assert_eq!(fields["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(fields["mode"], "demo");
    assert_eq!(fields["listen"], "127.0.0.1:0");
    assert_eq!(fields["database"], "sqlite");
    // As configured ("any port"); the running event names the port bound.
    assert_eq!(fields["origin"], "http://localhost:0");
    let running: serde_json::Value =
        serde_json::from_str(server.lines.last().expect("a line")).expect("json");
    assert_eq!(running["fields"]["message"], "Uketsuke is running");
    let origin = running["fields"]["origin"].as_str().expect("origin");
    assert!(
        origin.starts_with("http://localhost:") && !origin.ends_with(":0"),
        "{origin}"
    );
    assert_eq!(running["fields"]["url"], origin);
    assert_eq!(running["fields"]["mode"], "demo");
    assert_eq!(running["fields"]["database"], "sqlite");
    let since = server.sigterm();
    server.exits_within(since, Duration::from_secs(10));
    let after: Vec<String> = server.rest.by_ref().map(|l| l.expect("utf-8")).collect();
    let all: Vec<&String> = server.lines.iter().chain(after.iter()).collect();
    for line in &all {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value["level"].is_string(), "{line}");
        assert!(!line.contains('\u{1b}'), "colour code in {line}");
        // The database is named by its kind only.
        assert!(!line.contains(&url), "database URL in {line}");
    }
    assert!(
        after.iter().any(|l| l.contains("shutting down")),
        "the stop is logged: {after:?}"
    );
    let mut stderr = String::new();
    server
        .child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    assert!(
        stderr.is_empty(),
        "nothing outside the JSON lines: {stderr}"
    );

    // Text logs into a pipe: readable lines, no escape codes.
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Running::start(dir.path(), &[("UKETSUKE_LOG", "info")]);
    let since = server.sigterm();
    server.exits_within(since, Duration::from_secs(10));
    let after: Vec<String> = server.rest.by_ref().map(|l| l.expect("utf-8")).collect();
    let text = server.lines.join("\n") + &after.join("\n");
    assert!(text.contains("uketsuke-server starting"), "{text}");
    assert!(!text.contains('\u{1b}'), "colour codes in a pipe: {text:?}");
}

/// The demo administrator signed in to the console of the server at `base`.
async fn demo_admin(base: &str) -> Console {
    let console = Console::new(base, base);
    let code = console
        .post(
            "/api/console/demo/enrolment-code",
            json!({ "account": "admin" }),
        )
        .await;
    assert_eq!(code.status, 201, "{code:?}");
    let code = code.body["code"].as_str().expect("code").to_owned();
    let start = console
        .post("/api/console/enrol/start", json!({ "code": code }))
        .await;
    assert_eq!(start.status, 200, "{start:?}");
    let (mut passkey, credential) = SoftPasskey::create(base, &start.body["options"]);
    let finish = console
        .post(
            "/api/console/enrol/finish",
            json!({ "code": code, "credential": credential }),
        )
        .await;
    assert_eq!(finish.status, 201, "{finish:?}");
    let start = console.post("/api/console/signin/start", json!({})).await;
    let credential = passkey.get(&start.body["options"]);
    let done = console
        .post(
            "/api/console/signin/finish",
            json!({ "ceremony": start.body["ceremony"], "credential": credential }),
        )
        .await;
    assert_eq!(done.status, 200, "{done:?}");
    console
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_streams_and_half_sent_requests_within_ten_seconds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("stop.db");
    let url = format!("sqlite://{}", db_path.display());
    let mut server = Running::start(dir.path(), &[("UKETSUKE_DATABASE_URL", &url)]);
    let base = server.base.clone();
    let link = server
        .links
        .iter()
        .find(|(kind, _)| kind == "separate_route")
        .map(|(_, id)| id.clone())
        .expect("separate_route link");
    let today = uketsuke_domain::window::jst_date(chrono::Utc::now());
    // Receptions on their way to the backend when the signal comes.
    for no in 1..=3 {
        let patient = Patient::new(&base);
        let answer = register(&patient, &link, "separate_route", no, &base, today).await;
        assert_eq!(answer.status, 202, "{:?}", answer.body);
    }
    // An open event stream of the console.
    let console = demo_admin(&base).await;
    let mut events = console
        .bare(reqwest::Method::GET, "/api/console/events")
        .send()
        .await
        .expect("event stream");
    assert_eq!(events.status(), 200);
    assert!(
        events.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/event-stream")
    );
    let addr = base
        .trim_start_matches("http://")
        .replace("localhost", "127.0.0.1");
    // A request whose head is half sent, and one whose body is half sent.
    let mut half_head = TcpStream::connect(&addr).expect("connect");
    half_head
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .expect("write");
    let mut half_body = TcpStream::connect(&addr).expect("connect");
    half_body
        .write_all(
            b"POST /api/session/choices HTTP/1.1\r\nHost: localhost\r\n\
              Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"visit",
        )
        .expect("write");
    // An idle kept-alive connection.
    let mut idle = TcpStream::connect(&addr).expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).expect("answer");
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let since = server.sigterm();
    // The event stream ends cleanly (an end of stream, not a cut connection).
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(15), events.chunk()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => break Ok(()),
            Ok(Err(error)) => break Err(error.to_string()),
            Err(_) => break Err("no end".to_owned()),
        }
    };
    assert_eq!(ended, Ok(()), "the event stream ends, not cut");
    let took = tokio::task::spawn_blocking(move || {
        let took = server.exits_within(since, uketsuke_server::SHUTDOWN_BOUND);
        (took, server)
    })
    .await
    .expect("join");
    let (took, _server) = took;
    eprintln!("stopped {:.2} s after SIGTERM", took.as_secs_f64());
    // Every connection was closed by the server.
    for (name, stream) in [
        ("half head", &mut half_head),
        ("half body", &mut half_body),
        ("idle", &mut idle),
    ] {
        stream
            .set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        let mut rest = Vec::new();
        let read = stream.read_to_end(&mut rest);
        // Closed by the server: the end of the stream (or a reset, when it cut unread bytes).
        let closed = match &read {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        assert!(closed, "{name}: {read:?}");
    }

    // The database is whole, and every reception is either confirmed or still has its
    // request in the outbox, not held by a lease that never ends.
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db_path.display()))
        .await
        .expect("open");
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .expect("integrity check");
    assert_eq!(check, "ok");
    let stranded: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM receptions r WHERE r.status = 'queued' AND NOT EXISTS \
         (SELECT 1 FROM outbox o WHERE o.reception_id = r.id AND o.operation = 'register' \
          AND o.done_at IS NULL)",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(stranded, 0, "a queued reception lost its request");
    let receptions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM receptions")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(receptions, 3);
    pool.close().await;

    // Started again on the same database, every reception ends confirmed.
    let server = Running::start(dir.path(), &[("UKETSUKE_DATABASE_URL", &url)]);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db_path.display()))
        .await
        .expect("open");
    let mut confirmed = 0;
    for _ in 0..400 {
        confirmed = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM receptions WHERE status = 'confirmed'",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        if confirmed == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(confirmed, 3, "every reception confirmed after the restart");
    drop(server);
}

/// The binary with only `env` in `dir` and `args`: (exit code, stdout, stderr).
fn run_cli(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String, String) {
    let mut command = Command::new(BIN);
    command.current_dir(dir).env_clear().args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_command_line_names_its_database_and_creates_none_unless_asked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("clinic.db");
    let url = format!("sqlite://{}", db.display());
    let env = [
        ("UKETSUKE_MODE", "demo"),
        ("UKETSUKE_DATABASE_URL", url.as_str()),
        ("UKETSUKE_PUBLIC_ORIGIN", "http://localhost:3000"),
    ];
    let code = uketsuke_domain::InstitutionCode::with_check_digit("131234567")
        .expect("code")
        .as_str()
        .to_owned();
    let admin = [
        "admin",
        "create",
        "--institution",
        code.as_str(),
        "--name",
        "山田 花子",
        "--institution-name",
        "やまだ医院",
    ];
    let named = format!("uketsuke: database {url} (sqlite), origin http://localhost:3000");

    // No database yet: refused, nothing created.
    let (status, stdout, stderr) = run_cli(dir.path(), &env, &admin);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.starts_with(&named), "{stderr}");
    assert!(stderr.contains("--create"), "{stderr}");
    assert!(stdout.is_empty());
    assert!(!db.exists(), "no database was made");
    for other in [
        &["api-token", "list", "--institution", code.as_str()][..],
        &["audit", "verify"],
    ] {
        let (status, _, stderr) = run_cli(dir.path(), &env, other);
        assert_eq!(status, Some(1), "{other:?}: {stderr}");
        assert!(stderr.starts_with(&named), "{stderr}");
        assert!(!db.exists());
    }

    // Asked to: made, and said where.
    let mut with_create = admin.to_vec();
    with_create.push("--create");
    let (status, stdout, stderr) = run_cli(dir.path(), &env, &with_create);
    assert_eq!(status, Some(0), "{stderr}");
    assert!(stderr.starts_with(&named), "{stderr}");
    assert!(
        stdout.contains(&format!("Created institution {code}")),
        "{stdout}"
    );
    assert!(db.exists());

    // The same code and name again: a new enrolment link, no --create needed.
    let (status, stdout, stderr) = run_cli(dir.path(), &env, &admin);
    assert_eq!(status, Some(0), "{stderr}");
    assert!(stdout.contains("New enrolment link"), "{stdout}");
    // The same code with another name: refused, nothing changed.
    let mut other_name = admin.to_vec();
    other_name[7] = "すずき医院";
    other_name[5] = "鈴木 一郎";
    other_name.extend(["--id", "suzuki"]);
    let (status, stdout, stderr) = run_cli(dir.path(), &env, &other_name);
    assert_eq!(status, Some(1), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "institution {code} exists with the name \"やまだ医院\", not \"すずき医院\""
        )),
        "{stderr}"
    );
    let (status, stdout, _) = run_cli(
        dir.path(),
        &env,
        &["api-token", "list", "--institution", code.as_str()],
    );
    assert_eq!(status, Some(0));
    assert!(stdout.starts_with("id\t"), "{stdout}");

    // A PostgreSQL URL is named without its password.
    let (_, _, stderr) = run_cli(
        dir.path(),
        &[
            ("UKETSUKE_MODE", "demo"),
            (
                "UKETSUKE_DATABASE_URL",
                "postgres://clinic:s3cret@127.0.0.1:1/clinic",
            ),
        ],
        &["audit", "verify"],
    );
    assert!(
        stderr
            .starts_with("uketsuke: database postgres://clinic:***@127.0.0.1:1/clinic (postgres)"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn a_production_start_creates_no_database_unless_asked() {
    use uketsuke_backend::simulator::keys;
    use uketsuke_card::test_ca::CrlRequest;
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = keys::test_ca().expect("test CA");
    std::fs::write(dir.path().join("ca.der"), ca.certificate_der()).expect("write CA");
    let now = chrono::Utc::now().timestamp();
    let crl = ca
        .issue_crl_with(&CrlRequest {
            revoked_serials: &[],
            this_update_unix: now - 3600,
            next_update_unix: Some(now + 86_400),
            crl_number: Some(1),
            deviation: None,
        })
        .expect("CRL");
    std::fs::write(dir.path().join("ca.crl"), crl).expect("write CRL");
    std::fs::write(dir.path().join("audit.key"), [7u8; 32]).expect("audit key");
    std::fs::write(dir.path().join("key-encryption.key"), [9u8; 32]).expect("kek");
    let db = dir.path().join("prod.db");
    let url = format!("sqlite://{}", db.display());
    let backend_key =
        uketsuke_backend::contract::signing::encode_verifying_key(&keys::backend_verifying_key());
    let site = site(dir.path());
    let env = [
        ("UKETSUKE_MODE", "production"),
        ("UKETSUKE_LISTEN", "127.0.0.1:0"),
        ("UKETSUKE_PUBLIC_ORIGIN", "https://uketsuke.example.jp"),
        ("UKETSUKE_DATABASE_URL", url.as_str()),
        ("UKETSUKE_BACKEND", "http://127.0.0.1:9"),
        ("UKETSUKE_BACKEND_KEY", backend_key.as_str()),
        ("UKETSUKE_BACKEND_KEY_ID", keys::BACKEND_KEY_ID),
        ("UKETSUKE_JPKI_CA", "ca.der"),
        ("UKETSUKE_JPKI_CRL", "ca.crl"),
        ("UKETSUKE_AUDIT_KEY_FILE", "audit.key"),
        ("UKETSUKE_KEY_ENCRYPTION_KEY_FILE", "key-encryption.key"),
        ("UKETSUKE_SITE_ROOT", site.to_str().expect("path")),
        ("UKETSUKE_LOG", "warn"),
    ];
    let (status, _, stderr) = run_cli(dir.path(), &env, &[]);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("does not exist yet"), "{stderr}");
    assert!(stderr.contains("--create"), "{stderr}");
    assert!(!db.exists(), "no database was made");

    let mut command = Command::new(BIN);
    command
        .current_dir(dir.path())
        .env_clear()
        .arg("--create")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    // Read up to the last start-up line, and keep reading to the end: a closed pipe would
    // fail the server's next print.
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let mut running = false;
    for line in lines.by_ref() {
        running |= line.starts_with("Uketsuke is running at ");
        if line.starts_with("Staff console: ") {
            break;
        }
    }
    assert!(running, "started with --create");
    assert!(db.exists());
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _rest: Vec<String> = lines.collect();
    assert!(child.wait().expect("wait").success());
}

#[test]
fn a_configuration_error_is_a_json_line_when_json_logs_are_asked_for() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("UKETSUKE_MODE", "demo")
        .env("UKETSUKE_LOG_FORMAT", "json")
        .env("UKETSUKE_LISTEN", "nowhere")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let line: serde_json::Value = serde_json::from_str(stderr.trim()).expect("a JSON line");
    assert_eq!(line["level"], "ERROR");
    assert!(
        line["fields"]["message"]
            .as_str()
            .expect("message")
            .starts_with("configuration error: UKETSUKE_LISTEN: "),
        "{line}"
    );
}
