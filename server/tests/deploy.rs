//! The deployment as an operator meets it: `check-config` lists every problem of a
//! configuration at once and passes a good one; the example `deploy/uketsuke.toml` explains
//! every setting and reads as a production configuration; `institution key` prints the key
//! document the backend takes, with the key `admin create` made.

use std::{
    path::Path,
    process::{Command, Output},
};

use uketsuke_backend::contract::key_registration::KeyRegistration;
use uketsuke_backend::simulator::{self, keys, population};
use uketsuke_server::config::{Config, Mode, setting_names};

const BIN: &str = env!("CARGO_BIN_EXE_uketsuke-server");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/uketsuke.toml");
const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/uketsuke.service");

/// Runs the server binary in `dir` with only `env` (and PATH).
fn run(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the server binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A production configuration that works: the test CA and its list, an audit key, a built
/// site folder, SQLite, and `backend` at `backend_url`.
fn good_production(dir: &Path, backend_url: &str) -> Vec<(&'static str, String)> {
    let ca = keys::test_ca().expect("test CA");
    let now = chrono::Utc::now().timestamp();
    let today = uketsuke_domain::window::jst_date(chrono::Utc::now());
    let revoked = population::revoked_serials(&population::population(today));
    std::fs::write(dir.join("ca.der"), ca.certificate_der()).expect("CA");
    std::fs::write(
        dir.join("ca.crl"),
        ca.issue_crl(&revoked, now - 3600, now + 7 * 86_400)
            .expect("CRL"),
    )
    .expect("CRL file");
    let audit = dir.join("audit.key");
    std::fs::write(&audit, rand::random::<[u8; 32]>()).expect("audit key");
    set_mode(&audit, 0o600);
    let kek = dir.join("key-encryption.key");
    std::fs::write(&kek, rand::random::<[u8; 32]>()).expect("key-encryption key");
    set_mode(&kek, 0o600);
    std::fs::create_dir_all(dir.join("site/pkg")).expect("site");
    vec![
        ("UKETSUKE_MODE", "production".to_owned()),
        (
            "UKETSUKE_PUBLIC_ORIGIN",
            "https://uketsuke.example.jp".to_owned(),
        ),
        ("UKETSUKE_TRUSTED_PROXIES", "127.0.0.1".to_owned()),
        (
            "UKETSUKE_DATABASE_URL",
            format!("sqlite://{}/u.db", dir.display()),
        ),
        ("UKETSUKE_BACKEND", backend_url.to_owned()),
        (
            "UKETSUKE_BACKEND_KEY",
            uketsuke_backend::contract::signing::encode_verifying_key(
                &keys::backend_verifying_key(),
            ),
        ),
        ("UKETSUKE_BACKEND_KEY_ID", keys::BACKEND_KEY_ID.to_owned()),
        ("UKETSUKE_JPKI_CA", dir.join("ca.der").display().to_string()),
        (
            "UKETSUKE_JPKI_CRL",
            dir.join("ca.crl").display().to_string(),
        ),
        ("UKETSUKE_AUDIT_KEY_FILE", audit.display().to_string()),
        (
            "UKETSUKE_KEY_ENCRYPTION_KEY_FILE",
            kek.display().to_string(),
        ),
        ("UKETSUKE_SITE_ROOT", dir.join("site").display().to_string()),
    ]
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn with(
    env: &[(&'static str, String)],
    changes: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = env
        .iter()
        .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
        .cloned()
        .collect();
    for (k, v) in changes {
        if !v.is_empty() {
            out.push((k, (*v).to_owned()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_passes_a_good_production_configuration() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = simulator::spawn("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("simulator");
    let env = good_production(dir.path(), &sim.base_url());
    let root = dir.path().to_owned();
    let output = tokio::task::spawn_blocking(move || run(&root, &["check-config"], &env))
        .await
        .expect("ran");
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(!stdout.contains("problem:"), "{stdout}");
    assert!(
        stdout.contains(
            "configuration ok: mode production, database SQLite, origin https://uketsuke.example.jp"
        ),
        "{stdout}"
    );
    // Nothing was created: the database is only looked for.
    assert!(stdout.contains("does not exist yet"), "{stdout}");
    assert!(!dir.path().join("u.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_reports_every_problem_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let good = good_production(d, "https://backend.example.jp/");
    std::fs::write(
        d.join("not-a-ca.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let bad_ca = d.join("not-a-ca.pem").display().to_string();
    let missing_crl = d.join("missing.crl").display().to_string();
    let env = with(
        &good,
        &[
            // No audit key file set at all.
            ("UKETSUKE_AUDIT_KEY_FILE", ""),
            // A plain-http backend on another machine.
            ("UKETSUKE_BACKEND", "http://backend.example.jp/"),
            // An http origin.
            ("UKETSUKE_PUBLIC_ORIGIN", "http://uketsuke.example.jp"),
            // A site folder that is not there.
            ("UKETSUKE_SITE_ROOT", "/nonexistent/site"),
            // A relay worker count out of range.
            ("UKETSUKE_RELAY_WORKERS", "0"),
            // A setting that does not exist.
            ("UKETSUKE_LISTN", "127.0.0.1:3000"),
            // A CA file that is not a certificate, and a list that is not there.
            ("UKETSUKE_JPKI_CA", &bad_ca),
            ("UKETSUKE_JPKI_CRL", &missing_crl),
        ],
    );
    let output = run(d, &["check-config"], &env);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let expected = [
        "UKETSUKE_AUDIT_KEY_FILE: production mode needs the audit chain's key file",
        "UKETSUKE_BACKEND: \"http://backend.example.jp/\": production mode needs an https:// backend URL",
        "UKETSUKE_PUBLIC_ORIGIN: production mode needs an https public origin",
        "site_root: /nonexistent/site: no such folder",
        "UKETSUKE_RELAY_WORKERS: \"0\": must be a number from 1 to 64",
        "UKETSUKE_LISTN: unknown setting",
        "jpki_ca: ",
        "jpki_crl: cannot read",
    ];
    for line in expected {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("problem: ") && l.contains(line)),
            "{line}:\n{stdout}"
        );
    }
    assert!(stdout.contains("8 problems found"), "{stdout}");
    // Each problem once.
    let problems: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("problem: "))
        .collect();
    assert_eq!(problems.len(), 8, "{stdout}");

    // The files behind good settings are checked too: a key every user can read, a CA file
    // that is fine with a list of no configured CA, a site without pkg/.
    let audit = d.join("audit.key");
    set_mode(&audit, 0o644);
    let other_crl = d.join("other.crl");
    let other = uketsuke_card::test_ca::TestCa::from_seed(2).expect("another CA");
    let now = chrono::Utc::now().timestamp();
    std::fs::write(
        &other_crl,
        other.issue_crl(&[], now - 60, now + 86_400).expect("CRL"),
    )
    .expect("write");
    std::fs::create_dir_all(d.join("bare-site")).expect("site");
    let bare_site = d.join("bare-site").display().to_string();
    let other_crl = other_crl.display().to_string();
    let env = with(
        &good,
        &[
            ("UKETSUKE_JPKI_CRL", &other_crl),
            ("UKETSUKE_SITE_ROOT", &bare_site),
        ],
    );
    let output = run(d, &["check-config"], &env);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    for line in [
        "audit_key_file: ",
        "every user of this machine can read it",
        "other.crl: not a usable revocation list",
        "has no pkg/ folder",
        // The backend is only a warning: the server queues receptions while it is away.
        "warning: backend: https://backend.example.jp/",
    ] {
        assert!(stdout.contains(line), "{line}:\n{stdout}");
    }
    assert!(stdout.contains("3 problems found"), "{stdout}");

    // A bad file of its own: not TOML; the environment's settings are still checked.
    std::fs::write(d.join("broken.toml"), "mode = \n").expect("write");
    let env = with(
        &good,
        &[
            ("UKETSUKE_CONFIG", "broken.toml"),
            ("UKETSUKE_RELAY_WORKERS", "99"),
        ],
    );
    let output = run(d, &["check-config"], &env);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("problem: broken.toml: not valid TOML"),
        "{stdout}"
    );
    assert!(
        stdout.contains("UKETSUKE_RELAY_WORKERS: \"99\""),
        "{stdout}"
    );
}

#[test]
fn the_example_configuration_explains_every_setting_and_reads_as_production() {
    let example = std::fs::read_to_string(EXAMPLE).expect("deploy/uketsuke.toml");
    // Every setting appears, set or as a commented default, under a comment that explains
    // it (settings that go together share one).
    let lines: Vec<&str> = example.lines().collect();
    let setting = |line: &str| {
        let bare = line.trim_start_matches('#').trim_start();
        bare.split_once(" =").is_some_and(|(key, _)| {
            !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        })
    };
    for name in setting_names() {
        let at = lines
            .iter()
            .position(|l| {
                let l = l.trim_start_matches('#').trim_start();
                l.starts_with(&format!("{name} ="))
            })
            .unwrap_or_else(|| panic!("deploy/uketsuke.toml does not mention {name}"));
        let above = lines[..at].iter().rev().find(|l| !setting(l));
        assert!(
            above.is_some_and(|l| l.starts_with("# ") && l.len() > 10),
            "{name} has no explanation above it"
        );
    }
    // The settings it makes read as a production configuration, with nothing missing.
    let config =
        Config::from_sources(Some(("uketsuke.toml", &example)), &[]).expect("the example reads");
    assert_eq!(config.mode, Mode::Production);
    assert!(config.serves_https());
    assert_eq!(config.jpki_ca.len(), 2);
    assert!(!config.floods.trusted_proxies.is_empty());
    assert!(config.database_url.contains("sslmode=verify-full"));

    // The unit starts the server with that file, checks it first, and is hardened.
    let unit = std::fs::read_to_string(UNIT).expect("deploy/uketsuke.service");
    for line in [
        "Environment=UKETSUKE_CONFIG=/etc/uketsuke/uketsuke.toml",
        "ExecStartPre=/opt/uketsuke/bin/uketsuke-server check-config",
        "ExecStart=/opt/uketsuke/bin/uketsuke-server\n",
        "User=uketsuke",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(unit.contains(line), "{line}");
    }
}

#[test]
fn institution_key_prints_the_document_the_backend_takes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [
        ("UKETSUKE_MODE", "demo".to_owned()),
        ("UKETSUKE_LOG", "warn".to_owned()),
    ];
    let code = uketsuke_domain::InstitutionCode::with_check_digit("131765432").expect("code");
    let made = run(
        dir.path(),
        &[
            "admin",
            "create",
            "--create",
            "--institution",
            code.as_str(),
            "--name",
            "管理 太郎",
        ],
        &env,
    );
    assert!(made.status.success(), "{}", text(&made.stderr));
    let made = text(&made.stdout);
    let public = made
        .lines()
        .find_map(|l| l.trim().strip_prefix("public key: "))
        .and_then(|l| l.split_whitespace().next())
        .expect("admin create prints the public key")
        .to_owned();
    assert!(made.contains("institution key --institution"), "{made}");

    let printed = run(
        dir.path(),
        &["institution", "key", "--institution", code.as_str()],
        &env,
    );
    assert!(printed.status.success(), "{}", text(&printed.stderr));
    let document = text(&printed.stdout);
    let checked = KeyRegistration::parse(&document).expect("a key registration document");
    assert_eq!(checked.institution_code, code);
    assert_eq!(
        uketsuke_backend::contract::signing::encode_verifying_key(&checked.verifying_key),
        public
    );
    assert!(!document.contains("private"), "{document}");

    // An unknown institution: a clear refusal.
    let unknown = run(
        dir.path(),
        &["institution", "key", "--institution", "1311234560"],
        &env,
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown.stderr).contains("institution"),
        "{}",
        text(&unknown.stderr)
    );
}

#[test]
fn the_systemd_unit_verifies_and_its_exposure_is_low() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        eprintln!("note: systemd-analyze missing, the unit's check is skipped");
        return;
    }
    // The binary's place on this machine stands in for /opt/uketsuke/bin.
    let dir = tempfile::tempdir().expect("temp dir");
    let unit = std::fs::read_to_string(UNIT)
        .expect("unit")
        .replace("/opt/uketsuke/bin/uketsuke-server", BIN);
    let path = dir.path().join("uketsuke.service");
    std::fs::write(&path, unit).expect("write");
    let verified = Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze runs");
    assert!(
        verified.status.success() && verified.stderr.is_empty(),
        "{}",
        text(&verified.stderr)
    );
    // systemd's own exposure score, 0 (locked down) to 10; the threshold is in tenths.
    let security = Command::new(analyze)
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&path)
        .output()
        .expect("systemd-analyze runs");
    let report = text(&security.stdout);
    let score = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        security.status.success(),
        "exposure above 2.0: {score}\n{report}"
    );
    eprintln!("{score}");
}
