//! Section 5, "Connections and floods", each against a real running server:
//! - a connection that sends one header line and stops is closed by the header-read timeout;
//!   a kept-alive connection left idle is closed by the idle timeout;
//! - the connection cap holds (one more connection is answered 503 and closed; a freed place
//!   is taken again);
//! - a console session's fifth event stream is refused with 429 `too_many_event_streams`;
//! - `X-Forwarded-For` from a peer that is not a trusted proxy is ignored: a flood rotating it
//!   is still cut off; behind a trusted proxy two clients have separate budgets, a spoofed
//!   left-most entry does not help, and two IPv6 addresses of one /64 share one;
//! - the console and the patient routes have separate budgets;
//! - expired patient sessions, challenges and console sessions are swept;
//! - the SQLite file and its `-wal`/`-shm` files are readable by the server's user only.
//!
//! Every wait has a generous bound and none is measured: a test fails only if the refusal or
//! the close never comes.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use uketsuke_server::{
    AppState, Background, Options, Server, config::Config, console, storage, storage::challenges,
    sweeper,
};

/// How long a test waits for a close or a freed place before it fails (far above the timeouts
/// configured here, so only a missing close fails it).
const BOUND: Duration = Duration::from_secs(30);

/// A server in demo mode with its own database, configured by `settings` (`UKETSUKE_` + key).
struct Served {
    base: String,
    addr: std::net::SocketAddr,
    state: AppState,
    links: Vec<String>,
    dir: tempfile::TempDir,
}

async fn serve(settings: &[(&str, &str)]) -> Served {
    serve_on(None, settings).await
}

/// As [`serve`], on the database at `url` (default: a SQLite file in the server's folder).
async fn serve_on(url: Option<&str>, settings: &[(&str, &str)]) -> Served {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = url
        .map(str::to_owned)
        .unwrap_or_else(|| format!("sqlite://{}/server.db", dir.path().display()));
    let mut env: Vec<(String, String)> = vec![
        ("UKETSUKE_MODE".into(), "demo".into()),
        ("UKETSUKE_LISTEN".into(), "127.0.0.1:0".into()),
        ("UKETSUKE_DATABASE_URL".into(), url),
        (
            "UKETSUKE_SITE_ROOT".into(),
            dir.path().join("site").display().to_string(),
        ),
    ];
    for (key, value) in settings {
        env.push((
            format!("UKETSUKE_{}", key.to_ascii_uppercase()),
            (*value).into(),
        ));
    }
    let config = Config::from_sources(None, &env).expect("valid configuration");
    let server = Server::build_with(
        config,
        Options {
            background: Background::Off,
            ..Options::default()
        },
    )
    .await
    .expect("server starts");
    let base = server.base_url();
    let addr = server.local_addr().expect("bound");
    let links = server.demo_links().iter().map(|l| l.id.clone()).collect();
    let state = server.state().clone();
    tokio::spawn(server.run(std::future::pending()));
    Served {
        base,
        addr,
        state,
        links,
        dir,
    }
}

/// Reads until the server closes the connection (EOF or an error), for at most `BOUND`;
/// returns what arrived, or `None` if the connection was still open then.
async fn read_until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(BOUND, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.is_ok().then_some(received)
}

/// Reads one HTTP/1.1 response with a `Content-Length` body; returns its head and body.
async fn read_response(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = tokio::time::timeout(BOUND, stream.read(&mut buf))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(n > 0, "closed before a response");
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("content-length");
    while data.len() < head_end + length {
        let n = tokio::time::timeout(BOUND, stream.read(&mut buf))
            .await
            .expect("a body in time")
            .expect("read");
        assert!(n > 0, "closed inside the body");
        data.extend_from_slice(&buf[..n]);
    }
    (head, data[head_end..head_end + length].to_vec())
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

#[tokio::test]
async fn a_connection_that_sends_one_header_line_and_stops_is_closed() {
    // The idle timeout is far longer than the bound: only the header timeout can close it.
    let served = serve(&[
        ("header_read_timeout_secs", "1"),
        ("keep_alive_idle_secs", "600"),
    ])
    .await;
    let mut stream = TcpStream::connect(served.addr).await.expect("connects");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .expect("writes");
    let received = read_until_closed(&mut stream).await;
    assert!(
        received.is_some(),
        "the connection is still open {BOUND:?} after one header line"
    );
    // Whatever was answered, it was not the page: the request never completed.
    let text = String::from_utf8_lossy(received.as_deref().unwrap_or_default()).to_string();
    assert!(!text.contains("200 OK"), "{text}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    // The header timeout is far longer than the bound: only the idle timeout can close it.
    let served = serve(&[
        ("header_read_timeout_secs", "300"),
        ("keep_alive_idle_secs", "1"),
    ])
    .await;
    let mut stream = TcpStream::connect(served.addr).await.expect("connects");
    stream.write_all(HEALTHZ).await.expect("writes");
    let (head, _) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("connection: close"),
        "kept alive: {head}"
    );
    assert!(
        read_until_closed(&mut stream).await.is_some(),
        "the idle connection is still open after {BOUND:?}"
    );
}

#[tokio::test]
async fn the_connection_cap_holds() {
    let served = serve(&[
        ("max_connections", "2"),
        ("header_read_timeout_secs", "300"),
        ("keep_alive_idle_secs", "300"),
    ])
    .await;
    // Two connections take the two places (each answered, so each is surely accepted).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(served.addr).await.expect("connects");
        stream.write_all(HEALTHZ).await.expect("writes");
        let (head, _) = read_response(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        held.push(stream);
    }
    // A third is refused at once: 503 with Retry-After, then closed.
    let mut third = TcpStream::connect(served.addr).await.expect("connects");
    let _ = third.write_all(HEALTHZ).await;
    let answer = read_until_closed(&mut third)
        .await
        .expect("the refused connection is closed");
    let text = String::from_utf8_lossy(&answer).to_string();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("Retry-After: 1"), "{text}");
    // Closing one held connection frees its place for a new one.
    drop(held.pop());
    let mut served_again = false;
    for _ in 0..300 {
        let mut stream = TcpStream::connect(served.addr).await.expect("connects");
        let _ = stream.write_all(HEALTHZ).await;
        let answer = read_until_closed_or_response(&mut stream).await;
        if answer.starts_with("HTTP/1.1 200") {
            served_again = true;
            break;
        }
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served_again, "the freed place was never taken again");
    // The one still held is untouched.
    let stream = &mut held[0];
    stream.write_all(HEALTHZ).await.expect("writes");
    let (head, _) = read_response(stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

/// The status line and headers of a response, whether the connection stays open (200) or is
/// closed after it (503).
async fn read_until_closed_or_response(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if data.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        match tokio::time::timeout(BOUND, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => data.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&data).to_string()
}

/// A console session of a demo account, made directly in storage (the passkey ceremony is
/// tested in the console suite); returns the cookie value.
async fn console_session(state: &AppState) -> String {
    use sqlx::Row;
    let account: String = sqlx::query("SELECT id FROM staff_accounts WHERE disabled = 0 LIMIT 1")
        .fetch_one(&state.db)
        .await
        .expect("a demo account")
        .get("id");
    let mut tx = state.db.begin().await.expect("begin");
    let token =
        console::session::create_in(&mut tx, &account, "test-passkey", state.clock.now_ms())
            .await
            .expect("session");
    tx.commit().await.expect("commit");
    token
}

#[tokio::test]
async fn the_fifth_event_stream_of_one_console_session_is_refused() {
    let served = serve(&[]).await;
    let token = console_session(&served.state).await;
    let cookie = format!("{}={token}", console::session::COOKIE);
    let http = reqwest::Client::new();
    let open = || {
        http.get(format!("{}/api/console/events", served.base))
            .header(reqwest::header::COOKIE, &cookie)
            .send()
    };
    let mut streams = Vec::new();
    for i in 0..4 {
        let response = open().await.expect("answers");
        assert_eq!(response.status(), StatusCode::OK, "stream {i}");
        streams.push(response);
    }
    let fifth = open().await.expect("answers");
    assert_eq!(fifth.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: serde_json::Value = fifth.json().await.expect("JSON");
    assert_eq!(body["error"], "too_many_event_streams");
    // Another session has its own four.
    let other = format!(
        "{}={}",
        console::session::COOKIE,
        console_session(&served.state).await
    );
    let response = http
        .get(format!("{}/api/console/events", served.base))
        .header(reqwest::header::COOKIE, &other)
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    // Closing one stream frees its place (the server sees the close at its next write at the
    // latest: the keep-alive comment every 15 s).
    drop(streams.pop());
    let mut reopened = None;
    for _ in 0..120 {
        let response = open().await.expect("answers");
        if response.status() == StatusCode::OK {
            reopened = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        reopened.is_some(),
        "a closed stream's place was never freed"
    );
}

/// Sends `count` requests to `path` (each with the headers `with(i)` adds); returns statuses.
async fn flood(
    base: &str,
    path: &str,
    count: usize,
    with: impl Fn(usize) -> Vec<(&'static str, String)>,
) -> Vec<StatusCode> {
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for i in 0..count {
        let mut request = http.get(format!("{base}{path}"));
        for (name, value) in with(i) {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("answers");
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(
                response
                    .headers()
                    .contains_key(reqwest::header::RETRY_AFTER),
                "429 carries Retry-After"
            );
        }
        statuses.push(response.status());
    }
    statuses
}

fn refused(statuses: &[StatusCode]) -> usize {
    statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count()
}

/// A budget of 5 requests, refilled at one a minute: nothing comes back during a test.
const TIGHT: [(&str, &str); 4] = [
    ("patient_request_burst", "5"),
    ("patient_requests_per_minute", "1"),
    ("console_request_burst", "5"),
    ("console_requests_per_minute", "1"),
];

/// A patient API address that answers 401 without a session: cheap, and JSON either way.
const PATIENT_API: &str = "/api/session/reception";
const CONSOLE_API: &str = "/api/console/me";

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let served = serve(&TIGHT).await;
    // Every request claims another client; none is believed.
    let statuses = flood(&served.base, PATIENT_API, 20, |i| {
        vec![("x-forwarded-for", format!("198.51.100.{i}"))]
    })
    .await;
    assert_eq!(refused(&statuses), 15, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
    // The refusal is the API's JSON error.
    let response = reqwest::get(format!("{}{PATIENT_API}", served.base))
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()[reqwest::header::RETRY_AFTER]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry >= 1);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "rate_limited");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_budget() {
    // The test client plays the proxy: it connects from 127.0.0.1.
    let mut settings = TIGHT.to_vec();
    settings.push(("trusted_proxies", "127.0.0.1, ::1"));
    let served = serve(&settings).await;
    let from = |client: &'static str| move |_| vec![("x-forwarded-for", client.to_owned())];
    let a = flood(&served.base, PATIENT_API, 8, from("203.0.113.1")).await;
    assert_eq!(refused(&a), 3, "client A's budget is 5: {a:?}");
    // Client B is not held back by A.
    let b = flood(&served.base, PATIENT_API, 5, from("203.0.113.2")).await;
    assert_eq!(refused(&b), 0, "client B has its own budget: {b:?}");
    // A, spoofing another client in front of what the proxy appended: still A.
    let spoofed = flood(&served.base, PATIENT_API, 10, |i| {
        vec![("x-forwarded-for", format!("192.0.2.{i}, 203.0.113.1"))]
    })
    .await;
    assert_eq!(
        refused(&spoofed),
        10,
        "the left-most entry is ignored: {spoofed:?}"
    );
    // Two addresses of one IPv6 /64 share a budget; the next /64 has its own.
    let first = flood(&served.base, PATIENT_API, 3, from("2001:db8:1:2::1")).await;
    let second = flood(&served.base, PATIENT_API, 4, from("2001:db8:1:2:ffff::9")).await;
    assert_eq!(
        refused(&first) + refused(&second),
        2,
        "{first:?} {second:?}"
    );
    let other = flood(&served.base, PATIENT_API, 5, from("2001:db8:1:3::1")).await;
    assert_eq!(refused(&other), 0, "{other:?}");
    // The proxy's own requests without the header draw on the proxy's budget, not on A's.
    let own = flood(&served.base, PATIENT_API, 1, |_| Vec::new()).await;
    assert_eq!(refused(&own), 0);
}

#[tokio::test]
async fn console_and_patient_routes_have_separate_budgets() {
    let served = serve(&TIGHT).await;
    let none = |_| Vec::new();
    let patient = flood(&served.base, PATIENT_API, 8, none).await;
    assert_eq!(refused(&patient), 3, "{patient:?}");
    // The patient flood has not touched the console's budget (401: not signed in).
    let console = flood(&served.base, CONSOLE_API, 8, none).await;
    assert_eq!(refused(&console), 3, "{console:?}");
    assert_eq!(console[0], StatusCode::UNAUTHORIZED);
    // Nor the console's the patients'.
    let patient = flood(&served.base, PATIENT_API, 1, none).await;
    assert_eq!(refused(&patient), 1);
    // Probes stay out of both.
    let probe = flood(&served.base, "/healthz", 3, none).await;
    assert_eq!(refused(&probe), 0);
}

#[tokio::test]
async fn expired_sessions_and_challenges_are_swept() {
    for engine in crate::common::engines().await {
        expired_sessions_and_challenges_are_swept_on(&engine.url).await;
    }
}

async fn expired_sessions_and_challenges_are_swept_on(url: &str) {
    let served = serve_on(Some(url), &[]).await;
    let state = &served.state;
    let db = &state.db;
    let count = |table: &'static str| async move {
        use sqlx::Row;
        sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(db)
            .await
            .expect("count")
            .get::<i64, _>("n")
    };
    // A flood of started sessions, each with a challenge, and a console session.
    let link = served.links.first().expect("a demo link").clone();
    let now = state.clock.now_ms();
    for _ in 0..20 {
        let session = challenges::start_session(db, &link, now)
            .await
            .expect("session");
        challenges::issue(
            db,
            &session.id,
            challenges::Purpose::Reception,
            |c| c.as_bytes().to_vec(),
            now,
        )
        .await
        .expect("challenge");
    }
    let _ = console_session(state).await;
    let sessions_before = count("reception_sessions").await;
    assert!(sessions_before >= 20);
    // Nothing is live-expired yet: nothing goes.
    let swept = sweeper::sweep(db, state.clock.now_ms())
        .await
        .expect("sweep");
    assert_eq!((swept.challenges, swept.patient_sessions), (0, 0));
    // Past the challenges' five minutes: the challenges go, the sessions stay.
    state.clock.advance_ms(challenges::CHALLENGE_TTL_MS);
    let swept = sweeper::sweep(db, state.clock.now_ms())
        .await
        .expect("sweep");
    assert_eq!(swept.challenges, 20);
    assert_eq!(count("challenges").await, 0);
    assert_eq!(count("reception_sessions").await, sessions_before);
    // Past the sessions' lifetime and the console's idle limit: all of them go.
    state
        .clock
        .advance_ms(console::session::IDLE_MS.max(challenges::SESSION_TTL_MS));
    let swept = sweeper::sweep(db, state.clock.now_ms())
        .await
        .expect("sweep");
    assert!(swept.patient_sessions >= 20, "{swept:?}");
    assert!(swept.console_sessions >= 1, "{swept:?}");
    assert_eq!(count("reception_sessions").await, 0);
    assert_eq!(count("console_sessions").await, 0);
}

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let served = serve(&[]).await;
    storage::ping(&served.state.db).await.expect("pings");
    let file = served.dir.path().join("server.db");
    for suffix in ["", "-wal", "-shm"] {
        let path = std::path::PathBuf::from(format!("{}{suffix}", file.display()));
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{}: {mode:o}", path.display());
    }
}
