//! The production path on one machine, behind Debian's nginx with the shipped configuration
//! (`deploy/nginx-uketsuke.conf`) and a throw-away certificate: a production-mode server (JPKI
//! CA and CRL files, audit key, `trusted_proxies`), the backend simulator with the
//! institution's key registered from the document `uketsuke-server institution key` prints,
//! an administrator enrolled with a passkey, a reception link, a patient's reception — all
//! over https through nginx — and the console's live list: its event stream, opened through
//! nginx, must deliver the new reception while it is still open (nginx must not buffer it).
//!
//! nginx comes from Debian (`scripts/setup.sh test` installs it); outside CI a machine without
//! it skips the test with a note.

mod common;

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::{
    console::SoftPasskey,
    patient::{Patient, register},
    tls::Ca,
};
use serde_json::{Value, json};
use uketsuke_backend::contract::key_registration::KeyRegistration;
use uketsuke_backend::simulator::{self, InstitutionKey, SimOptions, keys, population};
use uketsuke_server::{Options, Server, config::Config, console, deploy_cli, storage};

const NGINX: &str = "/usr/sbin/nginx";
const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/nginx-uketsuke.conf");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// nginx with the shipped site configuration, its ports and certificate replaced; stopped
/// (SIGTERM: fast shutdown, then waited for) when dropped.
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "deploy/nginx-uketsuke.conf no longer contains {from:?}: update this test"
    );
    text.replace(from, to)
}

/// Starts nginx in `dir` in front of `upstream`, serving https on `https` and redirecting
/// plain http on `http`. `site` is the shipped configuration's text (a test may change it).
fn nginx(
    dir: &Path,
    site: &str,
    upstream: &str,
    https: u16,
    http: u16,
    tls: (&Path, &Path),
) -> Nginx {
    let mut site = replace(
        site,
        "server 127.0.0.1:3000;",
        &format!("server {upstream};"),
    );
    site = replace(
        &site,
        "listen 443 ssl http2;",
        &format!("listen 127.0.0.1:{https} ssl http2;"),
    );
    site = replace(&site, "listen 80;", &format!("listen 127.0.0.1:{http};"));
    site = replace(
        &site,
        "/etc/uketsuke/tls/fullchain.pem",
        &tls.0.display().to_string(),
    );
    site = replace(
        &site,
        "/etc/uketsuke/tls/privkey.pem",
        &tls.1.display().to_string(),
    );
    // This machine may have no IPv6; the shipped file listens on both.
    site = site
        .lines()
        .filter(|line| !line.contains("listen [::]"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("site.conf"), site).expect("write site");
    // Root runs its workers as root here (the temporary folder is private).
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    let d = dir.display();
    let main = format!(
        "{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{ worker_connections 128; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  include {d}/site.conf;\n}}\n",
        user = if root { "user root;\n" } else { "" },
    );
    std::fs::write(dir.join("nginx.conf"), main).expect("write nginx.conf");
    let conf = dir.join("nginx.conf").display().to_string();
    let prefix = format!("{d}/");
    let checked = Command::new(NGINX)
        .args(["-t", "-p", &prefix, "-c", &conf])
        .output()
        .expect("nginx -t runs");
    assert!(
        checked.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
    let child = Command::new(NGINX)
        .args(["-p", &prefix, "-c", &conf, "-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let started = Nginx {
        child,
        dir: dir.to_owned(),
    };
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", https)).is_ok() {
            return started;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!(
        "nginx did not listen on {https}: {}",
        std::fs::read_to_string(started.dir.join("error.log")).unwrap_or_default()
    );
}

/// What a production deployment has ready before the server starts: the institution, its
/// first administrator's enrolment code, and the key document for the backend.
struct Prepared {
    code: String,
    key_document: String,
}

async fn prepare(database_url: &str, audit_key: &Path, kek: &Path, origin: &str) -> Prepared {
    let db = storage::open(database_url).await.expect("database");
    let key = console::audit::AuditKey::load(audit_key, false).expect("audit key");
    let now = storage::now_millis();
    console::audit::install(&db, &key, now)
        .await
        .expect("audit key installed");
    let kek = storage::sealing::KeyEncryptionKey::load(kek, false).expect("key-encryption key");
    storage::institutions::install_key_encryption(&db, &kek, now)
        .await
        .expect("key-encryption key installed");
    let institution =
        uketsuke_domain::InstitutionCode::with_check_digit("131765432").expect("institution code");
    let made = console::cli::admin_create(
        &db,
        origin,
        &console::cli::AdminCreate {
            institution_code: institution.as_str().to_owned(),
            name: "受付 管理者".to_owned(),
            kana: String::new(),
            login_id: "admin".to_owned(),
            institution_name: Some("うけつけ本番テスト診療所".to_owned()),
        },
        now,
    )
    .await
    .expect("admin create");
    let document = deploy_cli::institution_key(&db, institution.as_str())
        .await
        .expect("institution key")
        .to_json();
    db.close().await;
    Prepared {
        code: made.code,
        key_document: document,
    }
}

/// A browser of this machine: trusts the throw-away CA only, keeps cookies.
fn browser(ca: &Path, csrf: bool) -> reqwest::Client {
    let pem = std::fs::read(ca).expect("CA");
    let mut headers = reqwest::header::HeaderMap::new();
    if csrf {
        headers.insert(
            "x-uketsuke-csrf",
            reqwest::header::HeaderValue::from_static("1"),
        );
    }
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"))
        .tls_built_in_root_certs(false)
        .cookie_store(true)
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A console call as the page makes it (Origin and the CSRF header on writes).
async fn console_post(
    http: &reqwest::Client,
    origin: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let response = http
        .post(format!("{origin}{path}"))
        .header("origin", origin)
        .header("x-uketsuke-csrf", "1")
        .json(&body)
        .send()
        .await
        .expect("nginx answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Reads the event stream until its text contains `needle`, or `limit` passes.
async fn read_until(
    events: &mut reqwest::Response,
    seen: &mut String,
    needle: &str,
    limit: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !seen.contains(needle) {
        match tokio::time::timeout_at(deadline, events.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            _ => return false,
        }
    }
    true
}

fn nginx_or_skip() -> bool {
    if Path::new(NGINX).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{NGINX} is missing: CI must run this test (scripts/setup.sh test installs nginx)"
    );
    eprintln!(
        "note: {NGINX} not installed, the nginx test is skipped (scripts/setup.sh test installs it)"
    );
    false
}

/// Runs the whole path with `site` as nginx's site configuration; returns whether the new
/// reception's event came through the open stream within 10 s.
async fn production_behind_nginx(site: &str) -> bool {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let (https, http) = (free_port(), free_port());
    let origin = format!("https://localhost:{https}");

    // TLS for nginx: a throw-away CA and a certificate for localhost.
    let ca = Ca::new(d, "proxy");
    let (cert, key) = ca.server("localhost");

    // The JPKI CA and its current list: the simulator's test CA stands in for J-LIS.
    let test_ca = keys::test_ca().expect("test CA");
    std::fs::write(d.join("jpki-ca.der"), test_ca.certificate_der()).expect("CA file");
    let now = storage::now_millis() / 1000;
    let today = uketsuke_domain::window::jst_date(chrono::Utc::now());
    let revoked = population::revoked_serials(&population::population(today));
    let crl = test_ca
        .issue_crl(&revoked, now - 3600, now + 86_400)
        .expect("CRL");
    std::fs::write(d.join("jpki.crl"), crl).expect("CRL file");
    let audit_key = d.join("audit.key");
    std::fs::write(&audit_key, rand::random::<[u8; 32]>()).expect("audit key");
    let kek = d.join("key-encryption.key");
    std::fs::write(&kek, rand::random::<[u8; 32]>()).expect("key-encryption key");
    std::fs::create_dir_all(d.join("site/pkg")).expect("site");

    let database_url = format!("sqlite://{}/uketsuke.db", d.display());
    let prepared = prepare(&database_url, &audit_key, &kek, &origin).await;

    // The backend: the simulator, the institution's key registered from the printed document.
    let checked = KeyRegistration::parse(&prepared.key_document).expect("the document reads");
    let sim = simulator::spawn_with(
        "127.0.0.1:0".parse().expect("addr"),
        SimOptions {
            institutions: vec![InstitutionKey {
                key_id: checked.key_id,
                institution_code: checked.institution_code.as_str().to_owned(),
                verifying_key: checked.verifying_key,
            }],
            ..Default::default()
        },
    )
    .await
    .expect("simulator");

    let env: Vec<(String, String)> = [
        ("UKETSUKE_MODE", "production".to_owned()),
        ("UKETSUKE_LISTEN", "127.0.0.1:0".to_owned()),
        ("UKETSUKE_PUBLIC_ORIGIN", origin.clone()),
        ("UKETSUKE_DATABASE_URL", database_url.clone()),
        ("UKETSUKE_BACKEND", sim.base_url()),
        (
            "UKETSUKE_BACKEND_KEY",
            uketsuke_backend::contract::signing::encode_verifying_key(
                &keys::backend_verifying_key(),
            ),
        ),
        ("UKETSUKE_BACKEND_KEY_ID", keys::BACKEND_KEY_ID.to_owned()),
        (
            "UKETSUKE_JPKI_CA",
            d.join("jpki-ca.der").display().to_string(),
        ),
        (
            "UKETSUKE_JPKI_CRL",
            d.join("jpki.crl").display().to_string(),
        ),
        ("UKETSUKE_AUDIT_KEY_FILE", audit_key.display().to_string()),
        (
            "UKETSUKE_KEY_ENCRYPTION_KEY_FILE",
            kek.display().to_string(),
        ),
        ("UKETSUKE_SITE_ROOT", d.join("site").display().to_string()),
        ("UKETSUKE_TRUSTED_PROXIES", "127.0.0.1, ::1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::from_sources(None, &env).expect("production configuration");
    let server = Server::build_with(config, Options::default())
        .await
        .expect("server starts");
    let upstream = server.local_addr().expect("bound").to_string();
    tokio::spawn(server.run(std::future::pending()));

    let nginx_dir = d.join("nginx");
    std::fs::create_dir_all(&nginx_dir).expect("nginx dir");
    let _nginx = nginx(&nginx_dir, site, &upstream, https, http, (&cert, &key));

    // Plain http is redirected to https.
    let plain = browser(&ca.cert, false)
        .get(format!("http://127.0.0.1:{http}/console"))
        .send()
        .await
        .expect("nginx answers http");
    assert_eq!(plain.status(), 301);
    assert!(
        plain
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .is_some_and(|l| l.starts_with("https://uketsuke.example.jp/console")),
        "{plain:?}"
    );
    // Another Host is not an open redirect: the answer names the server's own name.
    let foreign = browser(&ca.cert, false)
        .get(format!("http://127.0.0.1:{http}/console"))
        .header("host", "evil.example")
        .send()
        .await
        .expect("nginx answers http");
    assert_eq!(
        foreign
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok()),
        Some("https://uketsuke.example.jp/console"),
        "{foreign:?}"
    );

    // The administrator enrols a passkey and signs in, through nginx.
    let staff = browser(&ca.cert, false);
    let (status, start) = console_post(
        &staff,
        &origin,
        "/api/console/enrol/start",
        json!({ "code": prepared.code }),
    )
    .await;
    assert_eq!(status, 200, "{start}");
    let (mut passkey, credential) = SoftPasskey::create(&origin, &start["options"]);
    let (status, finish) = console_post(
        &staff,
        &origin,
        "/api/console/enrol/finish",
        json!({ "code": prepared.code, "credential": credential }),
    )
    .await;
    assert_eq!(status, 201, "{finish}");
    let (status, start) =
        console_post(&staff, &origin, "/api/console/signin/start", json!({})).await;
    assert_eq!(status, 200, "{start}");
    let credential = passkey.get(&start["options"]);
    let (status, signed_in) = console_post(
        &staff,
        &origin,
        "/api/console/signin/finish",
        json!({ "ceremony": start["ceremony"], "credential": credential }),
    )
    .await;
    assert_eq!(status, 200, "{signed_in}");

    // A reception link, and the live list's event stream, opened through nginx.
    let (status, link) = console_post(
        &staff,
        &origin,
        "/api/console/links",
        json!({ "kind": "separate_route" }),
    )
    .await;
    assert_eq!(status, 201, "{link}");
    let link = link["id"].as_str().expect("link id").to_owned();
    // A buffering proxy holds even the stream's head back: wait 10 s at most.
    let Ok(events) = tokio::time::timeout(
        Duration::from_secs(10),
        staff.get(format!("{origin}/api/console/events")).send(),
    )
    .await
    else {
        return false;
    };
    let mut events = events.expect("event stream");
    assert_eq!(events.status(), 200);
    assert_eq!(
        events
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    // The server's HSTS header passes through once.
    assert_eq!(
        events
            .headers()
            .get_all("strict-transport-security")
            .iter()
            .count(),
        1
    );
    let mut seen = String::new();
    let ready = read_until(
        &mut events,
        &mut seen,
        "event: ready",
        Duration::from_secs(10),
    )
    .await;

    // A patient's reception through nginx, with a card of the simulator's population.
    let patient = Patient {
        http: browser(&ca.cert, true),
        base: origin.clone(),
    };
    let accepted = register(&patient, &link, "separate_route", 1, &origin, today).await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    assert_eq!(patient.settled(400).await.body["status"], "confirmed");
    let id = accepted.body["reception_id"]
        .as_str()
        .expect("reception id")
        .to_owned();

    // The event arrives through the open stream, before the stream ends.
    let announced = read_until(&mut events, &mut seen, &id, Duration::from_secs(10)).await;

    // The day's list, read through nginx, shows it confirmed.
    let list: Value = staff
        .get(format!("{origin}/api/console/receptions"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("JSON list");
    let row = list["receptions"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == id.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(row["status"], "confirmed", "{list}");
    ready && announced
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reception_and_the_live_list_run_through_nginx_with_tls() {
    if !nginx_or_skip() {
        return;
    }
    let shipped = std::fs::read_to_string(SHIPPED).expect("deploy/nginx-uketsuke.conf");
    assert!(
        production_behind_nginx(&shipped).await,
        "the console's event stream did not deliver through nginx while open"
    );
}
