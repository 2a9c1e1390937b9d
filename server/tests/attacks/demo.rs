//! Section 3, "Demo mode cannot be left open": a demo hands out administrator enrolment codes
//! to anyone who asks, moves the clock on request and trusts a test CA whose key is public.
//! The attacks, each refused:
//! - a server started with no mode (once the default was demo): it does not start, and the
//!   message names `mode` / `UKETSUKE_MODE` and both values;
//! - demo mode on every interface (0.0.0.0, [::]) without the opt-in: it does not start; with
//!   `UKETSUKE_DEMO_PUBLIC=1` it starts and says so in its log;
//! - the demo routes asked by another machine (peer 192.0.2.10, also with
//!   `X-Forwarded-For: 127.0.0.1`, and with no peer at all): the same 404 an unrouted path gets;
//!   the router is driven with the peer address the listener would attach (`ConnectInfo`), as
//!   one CI machine has no second host to ask from;
//! - a demo database later started in production: the demo institution's passkeys, console
//!   sessions and outstanding enrolment codes are gone (a code handed out in the demo no longer
//!   enrols), its accounts disabled and its links revoked, recorded once in its audit chain;
//!   another institution in the same database keeps its passkey. Both engines.

use std::{
    io::Read,
    net::SocketAddr,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use axum::{Router, body::Body, extract::ConnectInfo};
use http::{Request, header};
use serde_json::json;
use sqlx::Row;
use tower::ServiceExt as _;
use uketsuke_backend::simulator::keys;
use uketsuke_card::test_ca::CrlRequest;
use uketsuke_server::{
    Background, Options, Server,
    config::Config,
    console::cli::{AdminCreate, admin_create},
    storage::Db,
};

const BIN: &str = env!("CARGO_BIN_EXE_uketsuke-server");

/// The binary run with only `env`, in an empty folder; its exit code and stderr.
fn run_binary(dir: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(BIN);
    command.current_dir(dir).env_clear();
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("the binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_server_without_a_mode_does_not_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, stderr) = run_binary(dir.path(), &[("UKETSUKE_LISTEN", "127.0.0.1:0")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("configuration error: UKETSUKE_MODE: not set"),
        "{stderr}"
    );
    for part in ["uketsuke.toml", "\"demo\"", "\"production\""] {
        assert!(stderr.contains(part), "{part}: {stderr}");
    }
    // A configuration file without `mode` is refused the same way.
    std::fs::write(
        dir.path().join("uketsuke.toml"),
        "listen = \"127.0.0.1:0\"\n",
    )
    .expect("write");
    let (code, stderr) = run_binary(dir.path(), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("UKETSUKE_MODE: not set"), "{stderr}");
    // Nothing was created: no database, no demo institution.
    assert!(!dir.path().join("data").exists());
}

#[test]
fn demo_mode_on_every_interface_does_not_start_without_the_opt_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let (code, stderr) = run_binary(
            dir.path(),
            &[("UKETSUKE_MODE", "demo"), ("UKETSUKE_LISTEN", listen)],
        );
        assert_eq!(code, Some(2), "{listen}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with(&format!(
                "configuration error: UKETSUKE_LISTEN: \"{listen}\": demo mode listens on loopback only"
            )),
            "{stderr}"
        );
        assert!(stderr.contains("UKETSUKE_DEMO_PUBLIC=1"), "{stderr}");
    }
    assert!(!dir.path().join("data").exists());

    // The explicit opt-in starts it, and the log says so loudly, with the demo banner.
    let log = dir.path().join("public.log");
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    // A folder shaped like the built site: start-up checks it is there.
    let site = dir.path().join("site");
    for file in uketsuke_server::config::SITE_FILES {
        let path = site.join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("site folder");
        std::fs::write(path, b"").expect("site file");
    }
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .env("UKETSUKE_SITE_ROOT", &site)
        .env("UKETSUKE_MODE", "demo")
        .env("UKETSUKE_LISTEN", "0.0.0.0:0")
        .env("UKETSUKE_DEMO_PUBLIC", "1")
        .env("UKETSUKE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&log) {
            let _ = file.read_to_string(&mut text);
        }
        if text.contains("Staff console: ") {
            break text;
        }
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("the opted-in demo exited ({status}):\n{text}");
        }
        assert!(Instant::now() < deadline, "no start-up lines:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(text.contains("demo_public is set"), "{text}");
    assert!(text.contains("UKETSUKE DEMO MODE"), "{text}");
    assert!(text.contains("TEST CA"), "{text}");
    assert!(text.contains("Not for patients"), "{text}");
}

/// A demo server on loopback (its own SQLite file, the built-in simulator), background off.
async fn demo_server(database_url: &str, dir: &Path) -> Server {
    let env: Vec<(String, String)> = [
        ("UKETSUKE_MODE", "demo".to_owned()),
        ("UKETSUKE_LISTEN", "127.0.0.1:0".to_owned()),
        ("UKETSUKE_DATABASE_URL", database_url.to_owned()),
        ("UKETSUKE_RATE_LIMITS", "off".to_owned()),
        ("UKETSUKE_SITE_ROOT", dir.join("site").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_sources(None, &env).expect("demo configuration");
    Server::build_with(
        config,
        Options {
            background: Background::Off,
            ..Options::default()
        },
    )
    .await
    .expect("demo server starts")
}

/// Sends one request straight into the router, as the listener would with a connection from
/// `peer` (`None`: no peer address attached at all).
async fn ask(
    router: &Router,
    peer: Option<&str>,
    path: &str,
    origin: &str,
    extra: &[(&str, &str)],
) -> (u16, String) {
    let mut request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ORIGIN, origin)
        .header("x-uketsuke-csrf", "1");
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let mut request = request
        .body(Body::from(json!({ "account": "admin" }).to_string()))
        .expect("request");
    if let Some(peer) = peer {
        let peer: SocketAddr = peer.parse().expect("peer address");
        request.extensions_mut().insert(ConnectInfo(peer));
    }
    let response = router.clone().oneshot(request).await.expect("answered");
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A peer address (none: not attached) and the headers a request adds.
type Attempt = (
    Option<&'static str>,
    &'static [(&'static str, &'static str)],
);

/// A page with its per-response CSP nonce replaced, so that two answers compare.
fn without_nonce(page: &str) -> String {
    let Some(start) = page.find("nonce=\"").map(|i| i + "nonce=\"".len()) else {
        return page.to_owned();
    };
    let nonce = page[start..].split('"').next().unwrap_or_default();
    assert!(!nonce.is_empty());
    page.replace(nonce, "NONCE")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_routes_answer_only_this_machine() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/demo.db", dir.path().display());
    let server = demo_server(&url, dir.path()).await;
    let base = server.base_url();
    let state = server.state().clone();
    let origin = state.config.origin_string();
    let router = uketsuke_server::http::router(state.clone());
    tokio::spawn(server.run(std::future::pending()));

    // Over a real loopback connection the demo hands out a code, as the e2e suite uses it.
    let answer = reqwest::Client::new()
        .post(format!("{base}/api/console/demo/enrolment-code"))
        .header(header::ORIGIN, &origin)
        .header("x-uketsuke-csrf", "1")
        .json(&json!({ "account": "admin" }))
        .send()
        .await
        .expect("answers");
    assert_eq!(answer.status().as_u16(), 201);

    const CODE: &str = "/api/console/demo/enrolment-code";
    const CLOCK: &str = "/api/console/demo/clock";
    // What a path that is not routed at all gets, asked from another machine.
    let (unrouted_status, unrouted_body) = ask(
        &router,
        Some("192.0.2.10:40000"),
        "/api/console/demo/nothing",
        &origin,
        &[],
    )
    .await;
    assert_eq!(unrouted_status, 404);

    // Any loopback peer is this machine (IPv4 /8, IPv6, IPv4-mapped).
    for peer in [
        "127.0.0.1:50000",
        "127.8.9.10:50000",
        "[::1]:50000",
        "[::ffff:127.0.0.1]:50000",
    ] {
        let (status, body) = ask(&router, Some(peer), CODE, &origin, &[]).await;
        assert_eq!(status, 201, "{peer}: {body}");
    }
    // Another machine, also one that claims to be loopback in a header, and a request with no
    // peer address: exactly the unrouted answer, for both demo routes.
    let attempts: [Attempt; 6] = [
        (Some("192.0.2.10:40000"), &[]),
        (
            Some("192.0.2.10:40000"),
            &[("x-forwarded-for", "127.0.0.1")],
        ),
        (
            Some("192.0.2.10:40000"),
            &[("forwarded", "for=127.0.0.1"), ("x-real-ip", "::1")],
        ),
        (Some("[2001:db8::7]:40000"), &[]),
        (Some("[::ffff:192.0.2.10]:40000"), &[]),
        (None, &[]),
    ];
    for (peer, headers) in attempts {
        for path in [CODE, CLOCK] {
            let (status, body) = ask(&router, peer, path, &origin, headers).await;
            assert_eq!(
                status, unrouted_status,
                "{peer:?} {path} {headers:?}: {body}"
            );
            assert_eq!(
                without_nonce(&body),
                without_nonce(&unrouted_body),
                "{peer:?} {path}: not the unrouted answer"
            );
        }
    }
    // No code was issued for the refused requests: the five granted are all the log holds.
    let issued: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM audit_log \
         WHERE account = '-demo' AND action = 'enrolment_code.issue'",
    )
    .fetch_one(&state.db)
    .await
    .expect("count")
    .get("n");
    assert_eq!(issued, 5);
}

/// The audit key file demo mode uses for `database_url` (its default), which production must be
/// given to keep verifying the same chain.
fn demo_audit_key_file(database_url: &str) -> std::path::PathBuf {
    demo_config(database_url).audit_key_file
}

/// The key-encryption key file demo mode uses for `database_url`, which production must be
/// given to open the institution keys the demo sealed.
fn demo_kek_file(database_url: &str) -> std::path::PathBuf {
    demo_config(database_url).keeping.key_encryption_key_file
}

fn demo_config(database_url: &str) -> Config {
    let env: Vec<(String, String)> = [
        ("UKETSUKE_MODE", "demo"),
        ("UKETSUKE_DATABASE_URL", database_url),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Config::from_sources(None, &env).expect("demo configuration")
}

/// A production server on `database_url`: the test CA from files as its trust (production needs
/// CA and CRL files), a backend it never calls (background off).
async fn production_server(database_url: &str, dir: &Path) -> Server {
    let ca = keys::test_ca().expect("test CA");
    let ca_path = dir.join("ca.der");
    std::fs::write(&ca_path, ca.certificate_der()).expect("write CA");
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
    let crl_path = dir.join("ca.crl");
    std::fs::write(&crl_path, crl).expect("write CRL");
    let backend_key =
        uketsuke_backend::contract::signing::encode_verifying_key(&keys::backend_verifying_key());
    let env: Vec<(String, String)> = [
        ("UKETSUKE_MODE", "production".to_owned()),
        ("UKETSUKE_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "UKETSUKE_PUBLIC_ORIGIN",
            "https://uketsuke.example.jp".to_owned(),
        ),
        ("UKETSUKE_DATABASE_URL", database_url.to_owned()),
        ("UKETSUKE_BACKEND", "https://oqs.example.jp/api".to_owned()),
        ("UKETSUKE_BACKEND_KEY", backend_key),
        ("UKETSUKE_BACKEND_KEY_ID", keys::BACKEND_KEY_ID.to_owned()),
        ("UKETSUKE_JPKI_CA", ca_path.display().to_string()),
        ("UKETSUKE_JPKI_CRL", crl_path.display().to_string()),
        ("UKETSUKE_SITE_ROOT", dir.join("site").display().to_string()),
        // The key the demo chained its audit log with (its default for this database).
        (
            "UKETSUKE_AUDIT_KEY_FILE",
            demo_audit_key_file(database_url).display().to_string(),
        ),
        (
            "UKETSUKE_KEY_ENCRYPTION_KEY_FILE",
            demo_kek_file(database_url).display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_sources(None, &env).expect("production configuration");
    Server::build_with(
        config,
        Options {
            background: Background::Off,
            ..Options::default()
        },
    )
    .await
    .expect("production server starts")
}

async fn count(db: &Db, sql: &str, institution: &str) -> i64 {
    sqlx::query(sql)
        .bind(institution)
        .fetch_one(db)
        .await
        .expect("count")
        .get::<i64, _>(0)
}

/// What the demo institution still has: (passkeys, sessions, unused codes, enabled accounts,
/// open links).
async fn ways_in(db: &Db, demo: &str) -> (i64, i64, i64, i64, i64) {
    const STAFF: &str = "SELECT id FROM staff_accounts WHERE institution_id = $1";
    (
        count(
            db,
            &format!("SELECT COUNT(*) FROM staff_passkeys WHERE account_id IN ({STAFF})"),
            demo,
        )
        .await,
        count(
            db,
            &format!("SELECT COUNT(*) FROM console_sessions WHERE account_id IN ({STAFF})"),
            demo,
        )
        .await,
        count(
            db,
            &format!(
                "SELECT COUNT(*) FROM enrolment_codes WHERE used_at IS NULL AND account_id IN ({STAFF})"
            ),
            demo,
        )
        .await,
        count(
            db,
            "SELECT COUNT(*) FROM staff_accounts WHERE institution_id = $1 AND disabled = 0",
            demo,
        )
        .await,
        count(
            db,
            "SELECT COUNT(*) FROM reception_links WHERE institution_id = $1 AND revoked_at IS NULL",
            demo,
        )
        .await,
    )
}

/// A passkey row for `account` (the credential's content does not matter here: the test asks
/// whether the row survives, not whether it signs in).
async fn add_passkey(db: &Db, account: &str, n: u32) {
    sqlx::query(
        "INSERT INTO staff_passkeys (id, account_id, credential_id, passkey_json, created_at) \
         VALUES ($1, $2, $3, '{}', 0)",
    )
    .bind(format!("pk-{account}-{n}"))
    .bind(account)
    .bind(format!("cred-{account}-{n}"))
    .execute(db)
    .await
    .expect("passkey row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_database_started_in_production_keeps_no_way_in_to_the_demo() {
    for engine in crate::common::engines().await {
        let dir = tempfile::tempdir().expect("temp dir");
        // The demo, as a visitor leaves it: codes handed out, a passkey per demo account
        // enrolled, one console session open.
        let server = demo_server(&engine.url, dir.path()).await;
        assert!(!server.demo_links().is_empty());
        let base = server.base_url();
        let state = server.state().clone();
        let origin = state.config.origin_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::new();
        let mut codes = Vec::new();
        for account in ["admin", "staff", "admin"] {
            let answer = client
                .post(format!("{base}/api/console/demo/enrolment-code"))
                .header(header::ORIGIN, &origin)
                .header("x-uketsuke-csrf", "1")
                .json(&json!({ "account": account }))
                .send()
                .await
                .expect("answers");
            assert_eq!(answer.status().as_u16(), 201, "{}", engine.engine);
            let body: serde_json::Value = answer.json().await.expect("JSON");
            codes.push(body["code"].as_str().expect("code").to_owned());
        }
        let db = state.db.clone();
        let demo: String = sqlx::query("SELECT id FROM institutions WHERE is_demo = 1")
            .fetch_one(&db)
            .await
            .expect("demo institution")
            .get("id");
        let accounts: Vec<String> =
            sqlx::query("SELECT id FROM staff_accounts WHERE institution_id = $1 ORDER BY id")
                .bind(&demo)
                .fetch_all(&db)
                .await
                .expect("accounts")
                .iter()
                .map(|r| r.get("id"))
                .collect();
        assert_eq!(accounts.len(), 3);
        for (n, account) in accounts.iter().enumerate() {
            add_passkey(&db, account, n as u32).await;
        }
        sqlx::query(
            "INSERT INTO console_sessions (id_sha256, account_id, created_at, last_seen_at) \
             VALUES ('session-hash', $1, 0, 0)",
        )
        .bind(&accounts[0])
        .execute(&db)
        .await
        .expect("session row");
        // A real clinic in the same database, with its administrator's passkey.
        let clinic = admin_create(
            &db,
            &origin,
            &AdminCreate {
                institution_code: uketsuke_domain::InstitutionCode::with_check_digit("271234567")
                    .expect("code")
                    .as_str()
                    .to_owned(),
                name: "本番 管理者".to_owned(),
                kana: "ホンバン カンリシャ".to_owned(),
                login_id: "ADMIN1".to_owned(),
                institution_name: Some("ほんばんクリニック".to_owned()),
            },
            state.clock.now_ms(),
        )
        .await
        .expect("clinic admin");
        let clinic_admin: String =
            sqlx::query("SELECT id FROM staff_accounts WHERE institution_id = $1")
                .bind(&clinic.institution_id)
                .fetch_one(&db)
                .await
                .expect("clinic admin")
                .get("id");
        add_passkey(&db, &clinic_admin, 9).await;
        let before = ways_in(&db, &demo).await;
        assert_eq!(before.0, 3);
        assert_eq!(before.1, 1);
        assert_eq!(before.2, 3);
        assert_eq!(before.3, 3);
        assert!(before.4 >= 1);
        let _ = stop.send(());
        running.await.expect("task").expect("demo server stopped");
        drop(state);

        // The database moves to production.
        let production = production_server(&engine.url, dir.path()).await;
        let db = production.state().db.clone();
        assert!(production.demo_links().is_empty());
        assert_eq!(
            ways_in(&db, &demo).await,
            (0, 0, 0, 0, 0),
            "{}: the demo keeps a way in",
            engine.engine
        );
        // The clinic is untouched.
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM staff_passkeys WHERE account_id = $1",
                &clinic_admin
            )
            .await,
            1
        );
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM enrolment_codes WHERE used_at IS NULL AND account_id = $1",
                &clinic_admin
            )
            .await,
            1
        );
        // Recorded once, in the demo institution's chain, counts only; the chain verifies.
        let rows = sqlx::query(
            "SELECT account, target FROM audit_log WHERE institution_id = $1 AND action = 'demo.retire'",
        )
        .bind(&demo)
        .fetch_all(&db)
        .await
        .expect("audit rows");
        assert_eq!(rows.len(), 1, "{}", engine.engine);
        assert_eq!(rows[0].get::<String, _>("account"), "-production");
        let target: String = rows[0].get("target");
        assert!(
            target.starts_with("passkeys=3 sessions=1 enrolment_codes=3 ")
                && target.contains("accounts_disabled=3"),
            "{target}"
        );
        let verified = uketsuke_server::console::audit::verify(&db, Some(&demo))
            .await
            .expect("read");
        assert!(verified.is_ok(), "{verified:?}");

        // A code handed out in the demo no longer enrols; the demo route is not routed.
        let prod_state = production.state().clone();
        let prod_origin = prod_state.config.origin_string();
        let router = uketsuke_server::http::router(prod_state);
        for code in &codes {
            let mut request = Request::post("/api/console/enrol/start")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::ORIGIN, &prod_origin)
                .header("x-uketsuke-csrf", "1")
                .body(Body::from(json!({ "code": code }).to_string()))
                .expect("request");
            request.extensions_mut().insert(ConnectInfo(
                "127.0.0.1:50000".parse::<SocketAddr>().expect("addr"),
            ));
            let response = router.clone().oneshot(request).await.expect("answered");
            assert_eq!(response.status().as_u16(), 404, "{}", engine.engine);
        }
        let (status, _) = ask(
            &router,
            Some("127.0.0.1:50000"),
            "/api/console/demo/enrolment-code",
            &prod_origin,
            &[],
        )
        .await;
        assert_eq!(status, 404);
        drop(router);
        drop(production);

        // Idempotent: a second production start changes and records nothing more.
        let again = production_server(&engine.url, dir.path()).await;
        let db = again.state().db.clone();
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM audit_log WHERE institution_id = $1 AND action = 'demo.retire'",
                &demo
            )
            .await,
            1
        );
        drop(again);

        // Back to demo mode on purpose: the demo is usable again (accounts enabled, a link of
        // every kind), its old passkeys still gone.
        let demo_again = demo_server(&engine.url, dir.path()).await;
        assert_eq!(
            demo_again.demo_links().len(),
            uketsuke_domain::ReceptionKind::ALL.len()
        );
        let db = demo_again.state().db.clone();
        let (passkeys, sessions, _, enabled, links) = ways_in(&db, &demo).await;
        assert_eq!((passkeys, sessions, enabled), (0, 0, 3));
        assert_eq!(links as usize, uketsuke_domain::ReceptionKind::ALL.len());
    }
}
