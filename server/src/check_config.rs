//! `uketsuke-server check-config`: reads the configuration as the server would (the file named
//! by `UKETSUKE_CONFIG` or `./uketsuke.toml`, then `UKETSUKE_*`) and reports **every** problem
//! at once, where start-up stops at the first:
//!
//! 1. the settings themselves: each bad or missing value, one line naming its key and source
//!    (found by reading the configuration again without each bad key, or with a stand-in for a
//!    missing required one, until it reads);
//! 2. the files and services they name: the audit key file (readable, 32 bytes or more, not
//!    readable by other users), every JPKI CA file and CRL file (each on its own: a CA
//!    certificate, a current list of one of those CAs; then one current list per CA), the
//!    built site (`site_root` with `pkg/`), the database (reached, without migrating or
//!    creating anything) and the backend (`/v1/health` answers with our contract version).
//!
//! Problems make the command exit 1; warnings (a list that goes stale within a day, a backend
//! that does not answer now, no `trusted_proxies` in production) are printed and do not.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::Duration,
};

use crate::config::{BackendTarget, Config, ConfigError, Mode};

/// How grave a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The server would not start, or would start and fail patients.
    Problem,
    /// Worth knowing; the server runs.
    Warning,
}

/// One finding: where (a configuration key and its source, or a file) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub what: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let label = match self.severity {
            Severity::Problem => "problem",
            Severity::Warning => "warning",
        };
        write!(f, "{label}: {}", self.what)
    }
}

/// Everything `check-config` found, and the configuration it read when the settings allowed.
#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// A one-line summary of what was checked (mode, database kind, origin, backend).
    pub summary: Option<String>,
}

impl Report {
    pub fn problems(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Problem)
            .count()
    }

    fn problem(&mut self, what: impl Into<String>) {
        self.findings.push(Finding {
            severity: Severity::Problem,
            what: what.into(),
        });
    }

    fn warning(&mut self, what: impl Into<String>) {
        self.findings.push(Finding {
            severity: Severity::Warning,
            what: what.into(),
        });
    }
}

const ENV_CONFIG_FILE: &str = "UKETSUKE_CONFIG";
const DEFAULT_CONFIG_FILE: &str = "uketsuke.toml";

/// Checks the configuration of this process (see the module's list), at the current time.
pub async fn check_process() -> Report {
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let mut report = Report::default();
    // The same file the server reads (config::Config::from_process).
    let named = env
        .iter()
        .find(|(k, _)| k == ENV_CONFIG_FILE)
        .map(|(_, v)| v.clone());
    let file = match named {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => Some((path, text)),
            Err(e) => {
                report.problem(format!("{ENV_CONFIG_FILE}: cannot read {path:?}: {e}"));
                None
            }
        },
        None => match std::fs::read_to_string(DEFAULT_CONFIG_FILE) {
            Ok(text) => Some((DEFAULT_CONFIG_FILE.to_owned(), text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                report.problem(format!("{DEFAULT_CONFIG_FILE}: cannot read: {e}"));
                None
            }
        },
    };
    let now_unix = crate::storage::now_millis().div_euclid(1000);
    let file = file.as_ref().map(|(p, t)| (p.as_str(), t.as_str()));
    check_sources(file, &env, now_unix, &mut report).await;
    report
}

/// Checks a configuration given as a file's name and text and environment pairs, at
/// `now_unix`; findings are added to `report`.
pub async fn check_sources(
    file: Option<(&str, &str)>,
    env: &[(String, String)],
    now_unix: i64,
    report: &mut Report,
) {
    let Some((config, stand_ins)) = settings(file, env, report) else {
        return;
    };
    report.summary = Some(format!(
        "mode {}, database {}, origin {}, backend {}",
        match config.mode {
            Mode::Demo => "demo",
            Mode::Production => "production",
        },
        database_kind(&config.database_url),
        config.origin_string(),
        match &config.backend {
            BackendTarget::Simulator => "the built-in simulator".to_owned(),
            BackendTarget::Remote(url) => url.to_string(),
        }
    ));
    if stand_ins.contains("mode") {
        report.warning("mode: not readable; the rest was checked as for production");
    }
    if config.mode == Mode::Demo {
        report.warning(
            "mode: demo: a test CA is trusted and anyone on this machine can enrol as \
             administrator; not for patients",
        );
    }
    if config.mode == Mode::Production && config.floods.trusted_proxies.is_empty() {
        report.warning(
            "trusted_proxies: none set: behind a reverse proxy every patient shares the \
             proxy's address and its request budget; name the proxy (e.g. 127.0.0.1)",
        );
    }
    if !stand_ins.contains("audit_key_file") {
        audit_key(&config, report);
    }
    if !stand_ins.contains("key_encryption_key_file") {
        key_encryption_key(&config, report);
    }
    if !stand_ins.contains("jpki_ca") && !stand_ins.contains("jpki_crl") {
        trust_files(&config.jpki_ca, &config.jpki_crl, now_unix, report);
    }
    site_root(&config.site_root, report);
    database(&config.database_url, report).await;
    if !stand_ins.contains("backend") {
        backend(&config, report).await;
    }
}

/// The keys whose value may be replaced by a stand-in when missing, and the stand-in: each is
/// valid for the setting's own check and names nothing real, so the checks of files and
/// services skip it. Partners (`jpki_ca`/`jpki_crl`, `backend_key`/`backend_key_id`) come in
/// together.
fn stand_in(key: &str) -> Option<Vec<(&'static str, String)>> {
    let backend_key = || {
        uketsuke_backend::contract::signing::encode_verifying_key(
            &uketsuke_backend::simulator::keys::backend_verifying_key(),
        )
    };
    Some(match key {
        "mode" => vec![("mode", "production".to_owned())],
        "public_origin" => vec![("public_origin", "https://check-config.invalid".to_owned())],
        "backend" => vec![("backend", "https://check-config.invalid".to_owned())],
        "jpki_ca" | "jpki_crl" => vec![
            ("jpki_ca", "/check-config.invalid/ca.pem".to_owned()),
            ("jpki_crl", "/check-config.invalid/ca.crl".to_owned()),
        ],
        "backend_key" | "backend_key_id" => vec![
            ("backend_key", backend_key()),
            ("backend_key_id", "check-config".to_owned()),
        ],
        "audit_key_file" => vec![(
            "audit_key_file",
            "/check-config.invalid/audit.key".to_owned(),
        )],
        "key_encryption_key_file" => vec![(
            "key_encryption_key_file",
            "/check-config.invalid/key-encryption.key".to_owned(),
        )],
        _ => return None,
    })
}

/// The configuration key a [`ConfigError`] names: `UKETSUKE_LISTEN` → `listen`,
/// `listen (uketsuke.toml)` → `listen`; `None` for the file as a whole.
fn key_of(error: &ConfigError) -> Option<String> {
    if error.source == ENV_CONFIG_FILE {
        return None;
    }
    if let Some(rest) = error.source.strip_prefix("UKETSUKE_") {
        return Some(rest.to_ascii_lowercase());
    }
    error.source.split_once(" (").map(|(key, _)| key.to_owned())
}

fn env_name(key: &str) -> String {
    format!("UKETSUKE_{}", key.to_ascii_uppercase())
}

/// Reads the settings again and again, each time without the keys found bad (or with a
/// stand-in for a missing required one), until they read; every bad key is reported once.
/// Returns the configuration read and the keys that hold stand-ins.
fn settings(
    file: Option<(&str, &str)>,
    env: &[(String, String)],
    report: &mut Report,
) -> Option<(Config, BTreeSet<String>)> {
    let name = file.map(|(n, _)| n.to_owned()).unwrap_or_default();
    let mut table: Option<toml::Table> = match file {
        Some((name, text)) => match text.parse::<toml::Table>() {
            Ok(table) => Some(table),
            Err(e) => {
                report.problem(format!("{name}: not valid TOML: {}", e.message().trim()));
                None
            }
        },
        None => None,
    };
    let mut env: Vec<(String, String)> = env.to_vec();
    let mut reported = BTreeSet::new();
    let mut stand_ins = BTreeSet::new();
    // Each round removes or replaces one key; far fewer rounds than this ever run.
    for _ in 0..100 {
        let text = table
            .as_ref()
            .map(|t| toml::to_string(t).unwrap_or_default());
        let file = text.as_deref().map(|t| (name.as_str(), t));
        let error = match Config::from_sources(file, &env) {
            Ok(config) => return Some((config, stand_ins)),
            Err(error) => error,
        };
        let Some(key) = key_of(&error) else {
            report.problem(format!("{}: {}", error.source, error.message));
            return None;
        };
        if reported.insert(key.clone()) {
            report.problem(format!("{}: {}", error.source, error.message));
        }
        let env_key = env_name(&key);
        let in_env = env.iter().any(|(k, _)| *k == env_key);
        let in_file = table.as_ref().is_some_and(|t| t.contains_key(&key));
        if (in_env || in_file) && !stand_ins.contains(&key) {
            // Without the bad value: its default, or the next problem it leaves.
            env.retain(|(k, _)| *k != env_key);
            if let Some(t) = table.as_mut() {
                t.remove(&key);
            }
            continue;
        }
        match stand_in(&key) {
            Some(values) if !stand_ins.contains(&key) => {
                for (k, v) in values {
                    let name = env_name(k);
                    // The key itself always; a partner only when it is not set.
                    let partner_set = env.iter().any(|(e, _)| *e == name)
                        || table.as_ref().is_some_and(|t| t.contains_key(k));
                    if k == key || !partner_set {
                        env.retain(|(e, _)| *e != name);
                        if let Some(t) = table.as_mut() {
                            t.remove(k);
                        }
                        env.push((name, v));
                        stand_ins.insert(k.to_owned());
                    }
                }
            }
            _ => {
                report.problem(format!(
                    "{key}: the other settings cannot be checked until this one is fixed"
                ));
                return None;
            }
        }
    }
    None
}

fn database_kind(url: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        "SQLite"
    } else {
        "PostgreSQL"
    }
}

/// The audit key: readable, long enough, and not readable by every user of the machine.
fn audit_key(config: &Config, report: &mut Report) {
    let path = &config.audit_key_file;
    if config.mode == Mode::Demo && !path.exists() {
        // Demo mode makes the key at first start.
        return;
    }
    if let Err(message) = crate::console::audit::AuditKey::load(path, false) {
        report.problem(format!("audit_key_file: {message}"));
        return;
    }
    world_readable("audit_key_file", path, report);
}

/// The key-encryption key: readable, the right length, and not readable by every user.
fn key_encryption_key(config: &Config, report: &mut Report) {
    let path = &config.keeping.key_encryption_key_file;
    if config.mode == Mode::Demo && !path.exists() {
        // Demo mode makes the key at first start.
        return;
    }
    if let Err(message) = crate::storage::sealing::KeyEncryptionKey::load(path, false) {
        report.problem(format!("key_encryption_key_file: {message}"));
        return;
    }
    world_readable("key_encryption_key_file", path, report);
}

/// A secret file every user of the machine can read is a problem.
fn world_readable(key: &str, path: &std::path::Path, report: &mut Report) {
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt as _;
        if meta.permissions().mode() & 0o004 != 0 {
            report.problem(format!(
                "{key}: {}: every user of this machine can read it; \
                 chmod 0600 (or 0640 with the server's group)",
                path.display()
            ));
        }
    }
}

/// Each CA file and each CRL file on its own, then one current list per CA.
fn trust_files(ca: &[PathBuf], crl: &[PathBuf], now_unix: i64, report: &mut Report) {
    if ca.is_empty() {
        return;
    }
    let mut cas_ok = true;
    for path in ca {
        if let Err(error) = crate::trust::Trust::read_bundle(std::slice::from_ref(path)) {
            report.problem(error.to_string());
            cas_ok = false;
        }
    }
    if !cas_ok {
        // The lists cannot be matched to CAs that were not read.
        for path in crl {
            if let Err(e) = std::fs::read(path) {
                report.problem(format!("jpki_crl: cannot read {}: {e}", path.display()));
            }
        }
        return;
    }
    let bundle = match crate::trust::Trust::read_bundle(ca) {
        Ok(bundle) => bundle,
        Err(error) => {
            report.problem(error.to_string());
            return;
        }
    };
    let mut lists_ok = true;
    for path in crl {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                report.problem(format!("jpki_crl: cannot read {}: {e}", path.display()));
                lists_ok = false;
                continue;
            }
        };
        match bundle.revocation_list_from_pem_or_der(&bytes, now_unix) {
            Ok((index, list)) => {
                if list.is_stale_at(now_unix + 24 * 3600, 0) {
                    let ca = bundle
                        .anchors()
                        .get(index)
                        .map(crate::trust::describe)
                        .unwrap_or_default();
                    report.warning(format!(
                        "jpki_crl: {}: the list of {ca} reaches its nextUpdate within 24 hours; \
                         then that CA's cards are refused until a newer list is in place",
                        path.display()
                    ));
                }
            }
            Err(uketsuke_card::certs::CrlError::OfEndedCa { .. }) => {}
            Err(e) => {
                report.problem(format!(
                    "jpki_crl: {}: not a usable revocation list: {e}",
                    path.display()
                ));
                lists_ok = false;
            }
        }
    }
    if lists_ok && let Err(error) = crate::trust::Trust::from_files(ca, crl, now_unix) {
        report.problem(error.to_string());
    }
}

/// The built site: the folder and its `pkg/` (the WASM, JS and CSS).
fn site_root(root: &Path, report: &mut Report) {
    if !root.is_dir() {
        report.problem(format!(
            "site_root: {}: no such folder (the built site: scripts/build-site.sh makes target/site)",
            root.display()
        ));
    } else if !root.join("pkg").is_dir() {
        report.problem(format!(
            "site_root: {}: has no pkg/ folder: not a built site (scripts/build-site.sh)",
            root.display()
        ));
    }
}

/// The database answers (PostgreSQL: a connection, over TLS when the URL asks; SQLite: the
/// file or its folder). Nothing is created or migrated.
async fn database(url: &str, report: &mut Report) {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        let path = path.split('?').next().unwrap_or(path);
        let path = Path::new(path);
        if path.exists() {
            if let Err(e) = std::fs::OpenOptions::new().read(true).open(path) {
                report.problem(format!("database_url: {}: {e}", path.display()));
            }
        } else {
            report.warning(format!(
                "database_url: {} does not exist yet; the server creates it",
                path.display()
            ));
        }
        return;
    }
    sqlx::any::install_default_drivers();
    let connected = tokio::time::timeout(
        Duration::from_secs(10),
        sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url),
    )
    .await;
    let shown = redact(url);
    match connected {
        Ok(Ok(pool)) => {
            if let Err(e) = sqlx::query("SELECT 1").execute(&pool).await {
                report.problem(format!("database_url: {shown}: {e}"));
            }
            pool.close().await;
        }
        Ok(Err(e)) => report.problem(format!("database_url: {shown}: cannot connect: {e}")),
        Err(_) => report.problem(format!(
            "database_url: {shown}: no answer within 10 seconds"
        )),
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("…"));
            }
            parsed.to_string()
        }
        Err(_) => "(the URL)".to_owned(),
    }
}

/// The backend's health route answers with our contract version (a warning when not: the
/// server starts and queues receptions while the backend is away).
async fn backend(config: &Config, report: &mut Report) {
    let BackendTarget::Remote(url) = &config.backend else {
        return;
    };
    let (key_id, key) = match &config.backend_key {
        Some((id, key)) => (id.clone(), *key),
        None => (
            uketsuke_backend::simulator::keys::BACKEND_KEY_ID.to_owned(),
            uketsuke_backend::simulator::keys::backend_verifying_key(),
        ),
    };
    let client = match crate::backend_client::BackendClient::new(url.clone(), key, key_id) {
        Ok(client) => client,
        Err(e) => {
            report.problem(format!("backend: {url}: {e}"));
            return;
        }
    };
    if let Err(e) = crate::backend_client::check(&client).await {
        report.warning(format!(
            "backend: {url}: not answering now ({e}); receptions queue until it does"
        ));
    }
}

/// `check-config`: prints every finding and a summary; exit status 1 when there is a problem.
pub async fn run() -> std::process::ExitCode {
    let report = check_process().await;
    for finding in &report.findings {
        println!("{finding}");
    }
    let problems = report.problems();
    match (&report.summary, problems) {
        (Some(summary), 0) => {
            println!("configuration ok: {summary}");
            std::process::ExitCode::SUCCESS
        }
        (_, n) => {
            println!(
                "{n} problem{} found; the server would not start or would fail patients",
                if n == 1 { "" } else { "s" }
            );
            std::process::ExitCode::from(1)
        }
    }
}
