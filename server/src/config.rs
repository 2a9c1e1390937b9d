//! Configuration: one typed struct, read from embedded defaults, then an optional TOML file, then
//! `UKETSUKE_*` environment variables (each later source wins). Every value is checked at start-up;
//! a bad one stops the server with one line that names the key and where it came from.

use std::{collections::BTreeMap, fmt, net::SocketAddr, path::PathBuf};

use url::Url;

/// Whether the server runs for demonstrations and practice, or for real patients. There is no
/// default: `mode` (file) or `UKETSUKE_MODE` must choose one, and demo mode listens on loopback
/// unless `demo_public` opts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Demo institution seeded, practice card allowed, built-in simulator allowed.
    Demo,
    /// Real patients: no practice card, no simulator, https required.
    Production,
}

/// Where the confirmation backend is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendTarget {
    /// The reference simulator, started inside this process on a loopback port.
    Simulator,
    /// A backend reached at this base URL.
    Remote(Url),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The whole configuration of one server process.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Origin patients' browsers use (scheme, host, port), bound into every challenge.
    pub public_origin: Url,
    pub database_url: String,
    pub mode: Mode,
    /// Demo mode on an address other machines can reach (`demo_public = true`): an explicit,
    /// logged opt-in. False in production. The demo routes still answer loopback peers only.
    pub demo_public: bool,
    pub backend: BackendTarget,
    /// Folder with the built site (`pkg/` with the WASM, JS and CSS, and the public files).
    pub site_root: PathBuf,
    /// Where `site_root` came from (`UKETSUKE_SITE_ROOT`, `site_root (uketsuke.toml)`, or the
    /// default), for [`Config::check_site_root`]'s message.
    pub site_root_source: String,
    pub log_filter: String,
    pub log_format: LogFormat,
    /// The JPKI user-authentication CA bundle: files of one or more CA certificates (PEM
    /// blocks, or one DER certificate each), every generation whose cards are in use (J-LIS
    /// 2015 and 2023). Empty: the demo's test CA. Set together with `jpki_crl`.
    pub jpki_ca: Vec<PathBuf>,
    /// The CAs' revocation lists, one CRL (PEM or DER) per file and per CA, each matched to its
    /// CA by the CA's key; re-read every ten minutes. Empty: a list of the demo population's
    /// revoked cards.
    pub jpki_crl: Vec<PathBuf>,
    /// The backend's answer-signing key (P-256, SEC1, base64url) and its key id; default with
    /// the simulator or in demo mode: the simulator's.
    pub backend_key: Option<(String, p256::ecdsa::VerifyingKey)>,
    pub rate_limits: RateLimits,
    /// Relay workers in this process (each sends one request at a time).
    pub relay_workers: usize,
    /// Connection and request limits against floods (issue 12 §5).
    pub floods: Floods,
    /// The file of the audit chain's HMAC key (32 or more random bytes), outside the database.
    /// Required in production; in demo mode, default `audit.key` beside the SQLite file (for
    /// PostgreSQL: in the system's temporary folder, named after the database URL's hash), made
    /// when missing.
    pub audit_key_file: PathBuf,
    /// Keeping data: the key-encryption key file and the retention periods (issue 17).
    pub keeping: Keeping,
}

/// Keeping data (see the README's retention table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keeping {
    /// `key_encryption_key_file`: 32 random bytes (or 64 hex digits) that seal the
    /// institutions' request-signing keys in the database (AES-256-GCM, `storage::sealing`).
    /// Required in production; in demo mode, default `key-encryption.key` beside the SQLite file
    /// (for PostgreSQL: in the system's temporary folder), made when missing.
    pub key_encryption_key_file: PathBuf,
    /// How long the sweeper keeps receptions and audit rows.
    pub retention: crate::sweeper::Retention,
}

/// The settings of [`Keeping`].
const KEEPING_KEYS: [&str; 3] = [
    "key_encryption_key_file",
    "reception_retention_days",
    "audit_retention_days",
];

/// Reads the [`Keeping`] keys; each bad value names its key.
fn keeping(
    raw: &BTreeMap<&'static str, Raw>,
    mode: Mode,
    database_url: &str,
) -> Result<Keeping, ConfigError> {
    let key_encryption_key_file = match raw.get("key_encryption_key_file") {
        Some(r) if r.value.trim().is_empty() => return Err(r.error("must name a file")),
        Some(r) => PathBuf::from(r.value.trim()),
        None if mode == Mode::Production => {
            return Err(ConfigError {
                source: "UKETSUKE_KEY_ENCRYPTION_KEY_FILE".to_owned(),
                message: "production mode needs the key-encryption key file that seals the \
                          institutions' request-signing keys (32 random bytes, e.g. `head -c 32 \
                          /dev/urandom > /etc/uketsuke/key-encryption.key`, mode 0600)"
                    .to_owned(),
            });
        }
        None => demo_secret_file(database_url, "key-encryption.key", "kek"),
    };
    let defaults = crate::sweeper::Retention::default();
    let days = |key: &str, default: i64| match raw.get(key) {
        Some(r) => match r.value.trim().parse::<i64>() {
            Ok(n) if (365..=36_500).contains(&n) => Ok(n),
            _ => Err(r.error("must be a whole number of days from 365 to 36500")),
        },
        None => Ok(default),
    };
    Ok(Keeping {
        key_encryption_key_file,
        retention: crate::sweeper::Retention {
            reception_days: days("reception_retention_days", defaults.reception_days)?,
            audit_days: days("audit_retention_days", defaults.audit_days)?,
        },
    })
}

/// Limits against floods: how long a connection may take to send its headers or sit idle, how
/// many connections and event streams may be open, whose address a request comes from, and the
/// request budgets per client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Floods {
    /// `header_read_timeout_secs` (default 10): a connection that has not sent a whole request
    /// head this long after it started waiting for one is closed (hyper's own timer; it also
    /// runs while a kept-alive connection waits for its next request).
    pub header_read_timeout: std::time::Duration,
    /// `keep_alive_idle_secs` (default 5): a connection over which no byte has moved either way
    /// for this long is asked to close; a response in progress is finished first.
    pub keep_alive_idle: std::time::Duration,
    /// `max_connections` (default 1024): open connections at most; one more is answered 503
    /// with `Retry-After: 1` and closed at once (it does not wait for a slot).
    pub max_connections: usize,
    /// `event_streams_per_session` (default 4): open `/api/console/events` streams per console
    /// session; one more is refused with 429 `too_many_event_streams`.
    pub event_streams_per_session: usize,
    /// `trusted_proxies` (default none): addresses or CIDR ranges of the TLS proxies in front of
    /// the server. Only from these is `X-Forwarded-For` read, and the client is its right-most
    /// entry that is not itself a trusted proxy.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `patient_request_burst` / `patient_requests_per_minute` (default 60 / 120): each client
    /// address's budget on the patient routes (reception links, the patient API, cancellation).
    pub patient_budget: RequestBudget,
    /// `console_request_burst` / `console_requests_per_minute` (default 120 / 600): each client
    /// address's budget on the console (pages, API, institution API).
    pub console_budget: RequestBudget,
}

/// A request budget: `burst` requests at once, refilled evenly at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestBudget {
    pub burst: u32,
    pub per_minute: u32,
}

impl Default for Floods {
    fn default() -> Self {
        Floods {
            header_read_timeout: std::time::Duration::from_secs(10),
            keep_alive_idle: std::time::Duration::from_secs(5),
            max_connections: 1024,
            event_streams_per_session: 4,
            trusted_proxies: Vec::new(),
            patient_budget: RequestBudget {
                burst: 60,
                per_minute: 120,
            },
            console_budget: RequestBudget {
                burst: 120,
                per_minute: 600,
            },
        }
    }
}

/// The settings of [`Floods`]; kept apart from `KEYS` so that each list is edited on its own.
const FLOOD_KEYS: [&str; 9] = [
    "header_read_timeout_secs",
    "keep_alive_idle_secs",
    "max_connections",
    "event_streams_per_session",
    "trusted_proxies",
    "patient_request_burst",
    "patient_requests_per_minute",
    "console_request_burst",
    "console_requests_per_minute",
];

/// Every known key: `KEYS` then `FLOOD_KEYS`.
fn known_keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter()
        .chain(FLOOD_KEYS.iter())
        .chain(KEEPING_KEYS.iter())
        .copied()
}

/// The name of every setting, as the file writes it (for `deploy/uketsuke.toml`'s test).
pub fn setting_names() -> Vec<&'static str> {
    known_keys().collect()
}

/// Reads the [`Floods`] keys; each bad value names its key.
fn floods(raw: &BTreeMap<&'static str, Raw>) -> Result<Floods, ConfigError> {
    let defaults = Floods::default();
    let number = |key: &str, range: std::ops::RangeInclusive<u64>, default: u64| match raw.get(key)
    {
        Some(r) => match r.value.trim().parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(r.error(format!(
                "must be a whole number from {} to {}",
                range.start(),
                range.end()
            ))),
        },
        None => Ok(default),
    };
    let secs = std::time::Duration::from_secs;
    let as_u32 = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    // `{area}_request_burst` and `{area}_requests_per_minute`, each 1 to 1,000,000.
    let budget = |area: &str, default: RequestBudget| -> Result<RequestBudget, ConfigError> {
        Ok(RequestBudget {
            burst: as_u32(number(
                &format!("{area}_request_burst"),
                1..=1_000_000,
                u64::from(default.burst),
            )?),
            per_minute: as_u32(number(
                &format!("{area}_requests_per_minute"),
                1..=1_000_000,
                u64::from(default.per_minute),
            )?),
        })
    };
    let trusted_proxies = match raw.get("trusted_proxies") {
        None => Vec::new(),
        Some(r) => {
            let items: Vec<String> = match &r.items {
                Some(items) => items.clone(),
                None => r.value.split(',').map(str::to_owned).collect(),
            };
            let mut nets = Vec::new();
            for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
                let net = item
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        r.error(format!(
                            "{item:?} is not an IP address or CIDR range (e.g. 10.0.0.5, 10.0.0.0/24, fd00::/64)"
                        ))
                    })?;
                nets.push(net.trunc());
            }
            nets
        }
    };
    Ok(Floods {
        header_read_timeout: secs(number(
            "header_read_timeout_secs",
            1..=300,
            defaults.header_read_timeout.as_secs(),
        )?),
        keep_alive_idle: secs(number(
            "keep_alive_idle_secs",
            1..=3600,
            defaults.keep_alive_idle.as_secs(),
        )?),
        max_connections: usize::try_from(number(
            "max_connections",
            1..=1_000_000,
            defaults.max_connections as u64,
        )?)
        .unwrap_or(defaults.max_connections),
        event_streams_per_session: usize::try_from(number(
            "event_streams_per_session",
            1..=64,
            defaults.event_streams_per_session as u64,
        )?)
        .unwrap_or(defaults.event_streams_per_session),
        trusted_proxies,
        patient_budget: budget("patient", defaults.patient_budget)?,
        console_budget: budget("console", defaults.console_budget)?,
    })
}

/// Whether the per-IP and per-link request limits apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimits {
    On,
    /// For load tests on one machine (every request comes from 127.0.0.1); demo mode only.
    Off,
}

impl Config {
    /// True when browsers reach the server over https (then HSTS is sent).
    pub fn serves_https(&self) -> bool {
        self.public_origin.scheme() == "https"
    }

    /// The origin as browsers send it in the `Origin` header, without a trailing slash.
    pub fn origin_string(&self) -> String {
        self.public_origin.origin().ascii_serialization()
    }
}

/// The keys a configuration may set; file keys are these, environment names are
/// `UKETSUKE_` + the key in upper case.
const KEYS: [&str; 16] = [
    "listen",
    "public_origin",
    "database_url",
    "mode",
    "demo_public",
    "backend",
    "site_root",
    "log",
    "log_format",
    "jpki_ca",
    "jpki_crl",
    "backend_key",
    "backend_key_id",
    "rate_limits",
    "relay_workers",
    "audit_key_file",
];

/// The keys whose value is a list of files: a TOML array of strings, or one string with the
/// paths separated as in `PATH` (`:`, on Windows `;`).
const LIST_KEYS: [&str; 2] = ["jpki_ca", "jpki_crl"];

const ENV_PREFIX: &str = "UKETSUKE_";
/// Names the TOML file; not a setting itself.
const ENV_CONFIG_FILE: &str = "UKETSUKE_CONFIG";
const DEFAULT_CONFIG_FILE: &str = "uketsuke.toml";

/// A configuration problem, printed as one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the bad value came from, e.g. `UKETSUKE_LISTEN` or `listen (uketsuke.toml)`.
    pub source: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration error: {}: {}", self.source, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A raw value and where it came from.
#[derive(Debug, Clone)]
struct Raw {
    value: String,
    source: String,
    /// The items of a TOML array (list keys only); `value` then shows them for messages.
    items: Option<Vec<String>>,
}

impl Raw {
    fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError {
            source: self.source.clone(),
            message: format!("{:?}: {}", self.value, message.into()),
        }
    }
}

impl Config {
    /// Reads the configuration of this process: the file named by `UKETSUKE_CONFIG` (or
    /// `uketsuke.toml` in the working directory if present), then the environment.
    pub fn from_process() -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let named_file = env
            .iter()
            .find(|(k, _)| k == ENV_CONFIG_FILE)
            .map(|(_, v)| v.clone());
        let file = match named_file {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
                    source: ENV_CONFIG_FILE.to_owned(),
                    message: format!("cannot read {path:?}: {e}"),
                })?;
                Some((path, text))
            }
            None => match std::fs::read_to_string(DEFAULT_CONFIG_FILE) {
                Ok(text) => Some((DEFAULT_CONFIG_FILE.to_owned(), text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(ConfigError {
                        source: DEFAULT_CONFIG_FILE.to_owned(),
                        message: format!("cannot read: {e}"),
                    });
                }
            },
        };
        let file_ref = file.as_ref().map(|(p, t)| (p.as_str(), t.as_str()));
        Config::from_sources(file_ref, &env)
    }

    /// Builds the configuration from a file's text (its name for messages) and environment
    /// pairs. Pure, so tests can feed it anything.
    pub fn from_sources(
        file: Option<(&str, &str)>,
        env: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let mut raw: BTreeMap<&'static str, Raw> = BTreeMap::new();
        if let Some((name, text)) = file {
            read_file(name, text, &mut raw)?;
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if name == ENV_CONFIG_FILE {
                continue;
            }
            let lower = rest.to_ascii_lowercase();
            let Some(key) = known_keys().find(|k| *k == lower) else {
                return Err(ConfigError {
                    source: name.clone(),
                    message: format!("unknown setting (known: {})", env_names().join(", ")),
                });
            };
            raw.insert(
                key,
                Raw {
                    value: value.clone(),
                    source: name.clone(),
                    items: None,
                },
            );
        }
        build(&raw)
    }
}

fn env_names() -> Vec<String> {
    known_keys()
        .map(|k| format!("{ENV_PREFIX}{}", k.to_ascii_uppercase()))
        .collect()
}

fn read_file(
    name: &str,
    text: &str,
    raw: &mut BTreeMap<&'static str, Raw>,
) -> Result<(), ConfigError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
        source: name.to_owned(),
        message: format!("not valid TOML: {}", e.message()),
    })?;
    for (key, value) in table {
        let Some(known) = known_keys().find(|k| *k == key) else {
            return Err(ConfigError {
                source: format!("{key} ({name})"),
                message: format!(
                    "unknown setting (known: {})",
                    known_keys().collect::<Vec<_>>().join(", ")
                ),
            });
        };
        let source = format!("{key} ({name})");
        let mut items = None;
        let value = match value {
            toml::Value::String(s) => s,
            // The one yes/no setting may be a TOML boolean as well as a string.
            toml::Value::Boolean(b) if known == "demo_public" => b.to_string(),
            toml::Value::Array(array)
                if LIST_KEYS.contains(&known) || known == "trusted_proxies" =>
            {
                let strings = array
                    .into_iter()
                    .map(|item| match item {
                        toml::Value::String(s) => Ok(s),
                        other => Err(ConfigError {
                            source: source.clone(),
                            message: format!(
                                "must be a list of strings, found {}",
                                other.type_str()
                            ),
                        }),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let shown = format!("{strings:?}");
                items = Some(strings);
                shown
            }
            other => {
                return Err(ConfigError {
                    source,
                    message: format!("must be a string, found {}", other.type_str()),
                });
            }
        };
        raw.insert(
            known,
            Raw {
                value,
                source,
                items,
            },
        );
    }
    Ok(())
}

fn build(raw: &BTreeMap<&'static str, Raw>) -> Result<Config, ConfigError> {
    let get = |key: &str| raw.get(key);

    let listen = match get("listen") {
        Some(r) => r.value.trim().parse::<SocketAddr>().map_err(|_| {
            r.error("not a socket address (expected host:port, e.g. 127.0.0.1:3000)")
        })?,
        None => SocketAddr::from(([127, 0, 0, 1], 3000)),
    };

    let mode = mode_of(get("mode"))?;
    let demo_public = demo_public_of(mode, get("demo_public"))?;
    check_demo_listen(mode, demo_public, listen, get("listen"))?;

    let public_origin = match get("public_origin") {
        Some(r) => parse_origin(r)?,
        None => {
            // Browsers on this machine reach loopback and a wildcard listen address as
            // `localhost`: a name, because passkeys (WebAuthn) refuse IP addresses as relying
            // party ids, and a secure context like 127.0.0.1.
            let host = if listen.ip().is_unspecified() || listen.ip().is_loopback() {
                "localhost".to_owned()
            } else {
                match listen {
                    SocketAddr::V4(a) => a.ip().to_string(),
                    SocketAddr::V6(a) => format!("[{}]", a.ip()),
                }
            };
            let text = format!("http://{host}:{}", listen.port());
            Url::parse(&text).map_err(|e| ConfigError {
                source: "listen".to_owned(),
                message: format!("cannot derive the public origin: {e}"),
            })?
        }
    };
    if mode == Mode::Production && public_origin.scheme() != "https" {
        return Err(ConfigError {
            source: get("public_origin")
                .map(|r| r.source.clone())
                .unwrap_or_else(|| "UKETSUKE_PUBLIC_ORIGIN".to_owned()),
            message: "production mode needs an https public origin (set UKETSUKE_PUBLIC_ORIGIN)"
                .to_owned(),
        });
    }

    let database_url = match get("database_url") {
        Some(r) => {
            let v = r.value.trim();
            let postgres = v.starts_with("postgres://") || v.starts_with("postgresql://");
            if postgres && Url::parse(v).map(|u| u.host().is_none()).unwrap_or(true) {
                return Err(r.error("not a PostgreSQL URL (postgres://user@host:port/database)"));
            }
            if v.starts_with("sqlite:") || postgres {
                v.to_owned()
            } else {
                return Err(r.error(
                    "must start with sqlite: or postgres:// (e.g. sqlite://data/uketsuke.db)",
                ));
            }
        }
        None => "sqlite://data/uketsuke.db".to_owned(),
    };

    let backend = match get("backend") {
        Some(r) if r.value.trim() == "simulator" => BackendTarget::Simulator,
        Some(r) => {
            let url = Url::parse(r.value.trim())
                .map_err(|_| r.error("must be \"simulator\" or an http(s) URL"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(r.error("must be \"simulator\" or an http(s) URL"));
            }
            if mode == Mode::Production && url.scheme() == "http" && !is_loopback_url(&url) {
                return Err(r.error(
                    "production mode needs an https:// backend URL: the relay carries patients' \
                     consents and medical information (plain http is allowed only to a loopback \
                     host, 127.0.0.0/8, ::1 or localhost, e.g. the simulator on the same machine)",
                ));
            }
            BackendTarget::Remote(url)
        }
        None => BackendTarget::Simulator,
    };
    if mode == Mode::Production && backend == BackendTarget::Simulator {
        return Err(ConfigError {
            source: get("backend")
                .map(|r| r.source.clone())
                .unwrap_or_else(|| "UKETSUKE_BACKEND".to_owned()),
            message: "the built-in simulator is for demo mode only; set the backend URL".to_owned(),
        });
    }

    let (site_root, site_root_source) = match get("site_root") {
        Some(r) if r.value.trim().is_empty() => return Err(r.error("must not be empty")),
        Some(r) => (PathBuf::from(r.value.trim()), r.source.clone()),
        None => (
            PathBuf::from("target/site"),
            "UKETSUKE_SITE_ROOT (default)".to_owned(),
        ),
    };

    let log_filter = match get("log") {
        Some(r) => {
            let v = r.value.trim().to_owned();
            tracing_subscriber::EnvFilter::try_new(&v)
                .map_err(|e| r.error(format!("not a log filter ({e})")))?;
            v
        }
        None => "info".to_owned(),
    };

    let log_format = match get("log_format") {
        Some(r) => match r.value.trim() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => return Err(r.error("must be \"text\" or \"json\"")),
        },
        None => LogFormat::Text,
    };

    let jpki_ca = path_list(get("jpki_ca"))?;
    let jpki_crl = path_list(get("jpki_crl"))?;
    match (get("jpki_ca"), get("jpki_crl")) {
        (Some(r), None) | (None, Some(r)) => {
            return Err(r.error(
                "jpki_ca and jpki_crl go together: the CA certificates and their revocation lists",
            ));
        }
        _ => {}
    }
    if mode == Mode::Production && jpki_ca.is_empty() {
        return Err(ConfigError {
            source: "UKETSUKE_JPKI_CA".to_owned(),
            message: "production mode needs the JPKI CA certificates and their revocation lists (jpki_ca, jpki_crl: PEM or DER files)".to_owned(),
        });
    }

    let backend_key = match (get("backend_key"), get("backend_key_id")) {
        (Some(k), Some(id)) => {
            let key = uketsuke_backend::contract::signing::decode_verifying_key(k.value.trim())
                .ok_or_else(|| k.error("not a P-256 public key (SEC1, base64url)"))?;
            if !uketsuke_backend::contract::signing::key_id_is_well_formed(id.value.trim()) {
                return Err(id.error("must be 1–64 characters [A-Za-z0-9._-]"));
            }
            Some((id.value.trim().to_owned(), key))
        }
        (Some(r), None) | (None, Some(r)) => {
            return Err(r.error("backend_key and backend_key_id go together"));
        }
        (None, None) => None,
    };
    if mode == Mode::Production && backend_key.is_none() {
        return Err(ConfigError {
            source: "UKETSUKE_BACKEND_KEY".to_owned(),
            message: "production mode needs the backend's answer-signing key (backend_key, backend_key_id)".to_owned(),
        });
    }

    let rate_limits = match get("rate_limits") {
        Some(r) => match r.value.trim() {
            "on" => RateLimits::On,
            "off" if mode == Mode::Demo => RateLimits::Off,
            "off" => return Err(r.error("rate limits can be switched off in demo mode only")),
            _ => return Err(r.error("must be \"on\" or \"off\"")),
        },
        None => RateLimits::On,
    };

    let relay_workers = match get("relay_workers") {
        Some(r) => match r.value.trim().parse::<usize>() {
            Ok(n) if (1..=64).contains(&n) => n,
            _ => return Err(r.error("must be a number from 1 to 64")),
        },
        None => 4,
    };

    let audit_key_file = match get("audit_key_file") {
        Some(r) if r.value.trim().is_empty() => return Err(r.error("must name a file")),
        Some(r) => PathBuf::from(r.value.trim()),
        None if mode == Mode::Production => {
            return Err(ConfigError {
                source: "UKETSUKE_AUDIT_KEY_FILE".to_owned(),
                message: "production mode needs the audit chain's key file (32 or more random \
                          bytes, e.g. `head -c 32 /dev/urandom > /etc/uketsuke/audit.key`, \
                          mode 0600)"
                    .to_owned(),
            });
        }
        None => demo_audit_key_file(&database_url),
    };
    let floods = floods(raw)?;
    let keeping = keeping(raw, mode, &database_url)?;

    Ok(Config {
        floods,
        audit_key_file,
        keeping,
        jpki_ca,
        jpki_crl,
        backend_key,
        rate_limits,
        relay_workers,
        listen,
        public_origin,
        database_url,
        mode,
        demo_public,
        backend,
        site_root,
        site_root_source,
        log_filter,
        log_format,
    })
}

/// The files of the built site the pages load; a `site_root` without them serves pages that
/// never come alive. `pkg/all/` holds the WASM with every island, for the screens off the
/// reception's path (`uketsuke_app::ALL_ISLANDS_DIR`).
pub const SITE_FILES: [&str; 5] = [
    "pkg/uketsuke.js",
    "pkg/uketsuke.wasm",
    "pkg/uketsuke.css",
    "pkg/all/uketsuke.js",
    "pkg/all/uketsuke.wasm",
];

impl Config {
    /// Whether `site_root` holds the built site ([`SITE_FILES`]). The server checks this at
    /// start-up and stops, like on any bad value, naming the key and the first missing file
    /// (relative paths are relative to the working directory). The command line's other
    /// commands do not serve pages and do not check it.
    pub fn check_site_root(&self) -> Result<(), ConfigError> {
        let error = |message: String| ConfigError {
            source: self.site_root_source.clone(),
            message: format!("{:?}: {message}", self.site_root.display().to_string()),
        };
        if !self.site_root.is_dir() {
            return Err(error(
                "no such folder: build the site (scripts/build-site.sh) or set site_root to \
                 the folder that holds it"
                    .to_owned(),
            ));
        }
        for file in SITE_FILES {
            if !self.site_root.join(file).is_file() {
                return Err(error(format!(
                    "{file} is missing: this is not a built site (scripts/build-site.sh makes one)"
                )));
            }
        }
        Ok(())
    }
}

/// The mode has no default: a server that hands out administrator enrolment codes to anyone
/// must be started that way on purpose (issue 12 §3). The message names both ways to set it.
fn mode_of(raw: Option<&Raw>) -> Result<Mode, ConfigError> {
    match raw {
        Some(r) => match r.value.trim() {
            "demo" => Ok(Mode::Demo),
            "production" => Ok(Mode::Production),
            _ => Err(r.error(
                "must be \"demo\" or \"production\" (set mode in uketsuke.toml or UKETSUKE_MODE)",
            )),
        },
        None => Err(ConfigError {
            source: "UKETSUKE_MODE".to_owned(),
            message: "not set: choose mode = \"demo\" (practice on this machine: a test CA is \
                      trusted and anyone here can enrol as administrator) or mode = \
                      \"production\" (real patients), in uketsuke.toml or as UKETSUKE_MODE"
                .to_owned(),
        }),
    }
}

/// `demo_public`: `true`/`1`/`yes` or `false`/`0`/`no`; only demo mode may set it true.
fn demo_public_of(mode: Mode, raw: Option<&Raw>) -> Result<bool, ConfigError> {
    let Some(r) = raw else {
        return Ok(false);
    };
    let on = match r.value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => true,
        "false" | "0" | "no" => false,
        _ => return Err(r.error("must be true or false")),
    };
    if on && mode != Mode::Demo {
        return Err(r.error("applies to demo mode only; remove it in production"));
    }
    Ok(on)
}

/// Demo mode listens on loopback only (127.0.0.0/8, ::1), unless `demo_public` opts in.
fn check_demo_listen(
    mode: Mode,
    demo_public: bool,
    listen: SocketAddr,
    raw: Option<&Raw>,
) -> Result<(), ConfigError> {
    if mode != Mode::Demo || demo_public || is_loopback(listen.ip()) {
        return Ok(());
    }
    let message = "demo mode listens on loopback only (127.0.0.1 or [::1]): anyone who reaches \
                   a demo can enrol as administrator and trust its test CA; to show it to other \
                   machines anyway set demo_public = true (UKETSUKE_DEMO_PUBLIC=1)";
    Err(match raw {
        Some(r) => r.error(message),
        None => ConfigError {
            source: "UKETSUKE_LISTEN".to_owned(),
            message: message.to_owned(),
        },
    })
}

/// Loopback: 127.0.0.0/8, ::1, and IPv4 loopback written as an IPv4-mapped IPv6 address (how a
/// dual-stack socket reports a 127.x peer).
pub fn is_loopback(ip: std::net::IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Demo mode's audit key file: `audit.key` beside the SQLite database, or for PostgreSQL (and
/// an in-memory SQLite) one per database URL in the system's temporary folder.
fn demo_audit_key_file(database_url: &str) -> PathBuf {
    demo_secret_file(database_url, "audit.key", "audit")
}

/// A demo-mode secret file: `name` beside the SQLite database, or for PostgreSQL (and an
/// in-memory SQLite) `uketsuke-{kind}-{hash of the URL}.key` in the temporary folder.
fn demo_secret_file(database_url: &str, name: &str, kind: &str) -> PathBuf {
    use std::str::FromStr as _;
    if database_url.starts_with("sqlite:")
        && let Ok(options) = sqlx::sqlite::SqliteConnectOptions::from_str(database_url)
    {
        let file = options.get_filename();
        if file != std::path::Path::new(":memory:") {
            let parent = file.parent().unwrap_or(std::path::Path::new(""));
            return parent.join(name);
        }
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(database_url.as_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    std::env::temp_dir().join(format!("uketsuke-{kind}-{hash}.key"))
}

/// A list of files: a TOML array's items, or one string split like `PATH` (`a.pem:b.pem`; `;`
/// on Windows). No item may be empty, so a stray separator is an error, not a silent skip.
fn path_list(raw: Option<&Raw>) -> Result<Vec<PathBuf>, ConfigError> {
    let Some(r) = raw else {
        return Ok(Vec::new());
    };
    let paths: Vec<PathBuf> = match &r.items {
        Some(items) => items.iter().map(|i| PathBuf::from(i.trim())).collect(),
        None => std::env::split_paths(r.value.trim()).collect(),
    };
    if paths.is_empty() || paths.iter().any(|p| p.as_os_str().is_empty()) {
        return Err(r.error(
            "must name one or more files, none empty (a TOML list, or paths separated by ':')",
        ));
    }
    Ok(paths)
}

/// The URL's host is this machine: a loopback address (127.0.0.0/8, ::1) or `localhost`
/// (RFC 6761 §6.3 reserves the name for loopback). Traffic to it never leaves the machine, so a
/// clinic testing against the simulator on the same machine may use plain http in production.
fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn parse_origin(r: &Raw) -> Result<Url, ConfigError> {
    let url = Url::parse(r.value.trim())
        .map_err(|_| r.error("not a URL (expected e.g. https://uketsuke.example.jp)"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(r.error("must start with https:// or http://"));
    }
    if url.host().is_none() {
        return Err(r.error("must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(r.error("must not contain a user name or password"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(r.error("must be an origin only: no path, query or fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn err(file: Option<&str>, pairs: &[(&str, &str)]) -> String {
        match Config::from_sources(file.map(|t| ("uketsuke.toml", t)), &env(pairs)) {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// The one key without a default.
    fn demo() -> Vec<(String, String)> {
        env(&[("UKETSUKE_MODE", "demo")])
    }

    #[test]
    fn runs_with_only_the_mode_set() {
        let c = Config::from_sources(None, &demo()).expect("defaults are valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
        assert_eq!(c.origin_string(), "http://localhost:3000");
        assert_eq!(c.mode, Mode::Demo);
        assert!(!c.demo_public);
        assert_eq!(c.backend, BackendTarget::Simulator);
        assert_eq!(c.database_url, "sqlite://data/uketsuke.db");
        assert!(!c.serves_https());
        assert_eq!(c.audit_key_file, std::path::PathBuf::from("data/audit.key"));
    }

    #[test]
    fn production_needs_the_audit_key_file() {
        let key = uketsuke_backend::contract::signing::encode_verifying_key(
            &uketsuke_backend::simulator::keys::backend_verifying_key(),
        );
        let pairs = [
            ("UKETSUKE_MODE", "production"),
            ("UKETSUKE_PUBLIC_ORIGIN", "https://uketsuke.example.jp"),
            ("UKETSUKE_BACKEND", "https://oqs.example.jp/api"),
            ("UKETSUKE_BACKEND_KEY", key.as_str()),
            ("UKETSUKE_BACKEND_KEY_ID", "oqs-1"),
            ("UKETSUKE_JPKI_CA", "/etc/uketsuke/jpki-ca.pem"),
            ("UKETSUKE_JPKI_CRL", "/etc/uketsuke/jpki.crl"),
        ];
        let m = err(None, &pairs);
        assert!(
            m.contains("UKETSUKE_AUDIT_KEY_FILE: production mode needs"),
            "{m}"
        );
        // Demo mode on PostgreSQL: a key file per database in the temporary folder.
        let c = Config::from_sources(
            None,
            &env(&[
                ("UKETSUKE_MODE", "demo"),
                ("UKETSUKE_DATABASE_URL", "postgres://u@db.example/uk"),
            ]),
        )
        .expect("valid");
        assert!(c.audit_key_file.starts_with(std::env::temp_dir()));
    }

    #[test]
    fn environment_overrides_file() {
        let c = Config::from_sources(
            Some(("f.toml", "listen = \"127.0.0.1:4000\"\nmode = \"demo\"")),
            &env(&[
                ("UKETSUKE_LISTEN", "0.0.0.0:5000"),
                ("UKETSUKE_DEMO_PUBLIC", "1"),
                ("OTHER", "x"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.listen.port(), 5000);
        // A wildcard listen address is reached through loopback by default.
        assert_eq!(c.origin_string(), "http://localhost:5000");
    }

    #[test]
    fn production_with_https_and_remote_backend() {
        let c = Config::from_sources(
            None,
            &env(&[
                ("UKETSUKE_MODE", "production"),
                ("UKETSUKE_PUBLIC_ORIGIN", "https://uketsuke.example.jp"),
                ("UKETSUKE_BACKEND", "https://oqs.example.jp/api"),
                ("UKETSUKE_JPKI_CA", "/etc/uketsuke/jpki-ca.pem"),
                ("UKETSUKE_JPKI_CRL", "/etc/uketsuke/jpki.crl"),
                (
                    "UKETSUKE_BACKEND_KEY",
                    &uketsuke_backend::contract::signing::encode_verifying_key(
                        &uketsuke_backend::simulator::keys::backend_verifying_key(),
                    ),
                ),
                ("UKETSUKE_BACKEND_KEY_ID", "oqs-1"),
                ("UKETSUKE_AUDIT_KEY_FILE", "/etc/uketsuke/audit.key"),
                (
                    "UKETSUKE_KEY_ENCRYPTION_KEY_FILE",
                    "/etc/uketsuke/key-encryption.key",
                ),
            ]),
        )
        .expect("valid");
        assert!(c.serves_https());
        assert_eq!(
            c.audit_key_file,
            std::path::PathBuf::from("/etc/uketsuke/audit.key")
        );
        assert_eq!(c.origin_string(), "https://uketsuke.example.jp");
    }

    #[test]
    fn every_bad_value_names_its_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("UKETSUKE_LISTEN", "abc")],
                "UKETSUKE_LISTEN: \"abc\": not a socket address",
            ),
            (&[("UKETSUKE_LISTEN", "127.0.0.1")], "UKETSUKE_LISTEN"),
            (
                &[("UKETSUKE_MODE", "prod")],
                "UKETSUKE_MODE: \"prod\": must be",
            ),
            (
                &[("UKETSUKE_PUBLIC_ORIGIN", "not a url")],
                "UKETSUKE_PUBLIC_ORIGIN: \"not a url\": not a URL",
            ),
            (
                &[("UKETSUKE_PUBLIC_ORIGIN", "ftp://x.jp")],
                "UKETSUKE_PUBLIC_ORIGIN: \"ftp://x.jp\": must start with",
            ),
            (
                &[("UKETSUKE_PUBLIC_ORIGIN", "https://x.jp/path")],
                "origin only",
            ),
            (
                &[("UKETSUKE_PUBLIC_ORIGIN", "https://u:p@x.jp")],
                "user name",
            ),
            (
                &[("UKETSUKE_DATABASE_URL", "mysql://db")],
                "UKETSUKE_DATABASE_URL: \"mysql://db\": must start with sqlite:",
            ),
            (
                &[("UKETSUKE_DATABASE_URL", "postgres://")],
                "UKETSUKE_DATABASE_URL: \"postgres://\": not a PostgreSQL URL",
            ),
            (
                &[("UKETSUKE_BACKEND", "simulatr")],
                "UKETSUKE_BACKEND: \"simulatr\": must be",
            ),
            (&[("UKETSUKE_BACKEND", "file:///etc")], "UKETSUKE_BACKEND"),
            (&[("UKETSUKE_SITE_ROOT", " ")], "UKETSUKE_SITE_ROOT"),
            (&[("UKETSUKE_LOG", "info,=[")], "UKETSUKE_LOG"),
            (
                &[("UKETSUKE_LOG_FORMAT", "xml")],
                "UKETSUKE_LOG_FORMAT: \"xml\": must be",
            ),
            (
                &[("UKETSUKE_LISTN", "x")],
                "UKETSUKE_LISTN: unknown setting",
            ),
            (
                &[("UKETSUKE_MODE", "production")],
                "UKETSUKE_PUBLIC_ORIGIN: production mode needs an https",
            ),
            (
                &[
                    ("UKETSUKE_MODE", "production"),
                    ("UKETSUKE_PUBLIC_ORIGIN", "https://a.jp"),
                ],
                "UKETSUKE_BACKEND: the built-in simulator is for demo mode only",
            ),
        ];
        for (pairs, expected) in cases {
            // Every case chooses demo mode unless it sets the mode itself (later pairs win).
            let mut with_mode = vec![("UKETSUKE_MODE", "demo")];
            with_mode.extend_from_slice(pairs);
            let message = err(None, &with_mode);
            assert!(
                message.starts_with("configuration error: ") && message.contains(expected),
                "{pairs:?}: {message}"
            );
            assert!(!message.contains('\n'), "one line: {message}");
        }
    }

    fn production(extra: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let key = uketsuke_backend::contract::signing::encode_verifying_key(
            &uketsuke_backend::simulator::keys::backend_verifying_key(),
        );
        let mut pairs = vec![
            ("UKETSUKE_MODE", "production"),
            ("UKETSUKE_PUBLIC_ORIGIN", "https://uketsuke.example.jp"),
            ("UKETSUKE_BACKEND", "https://oqs.example.jp/api"),
            ("UKETSUKE_BACKEND_KEY", key.as_str()),
            ("UKETSUKE_BACKEND_KEY_ID", "oqs-1"),
            ("UKETSUKE_AUDIT_KEY_FILE", "/etc/uketsuke/audit.key"),
            (
                "UKETSUKE_KEY_ENCRYPTION_KEY_FILE",
                "/etc/uketsuke/key-encryption.key",
            ),
        ];
        pairs.extend_from_slice(extra);
        Config::from_sources(None, &env(&pairs))
    }

    #[test]
    fn keeping_data_settings() {
        let ca = ("UKETSUKE_JPKI_CA", "/etc/uketsuke/jpki-ca.pem");
        let crl = ("UKETSUKE_JPKI_CRL", "/etc/uketsuke/jpki.crl");
        let c = production(&[ca, crl]).expect("valid");
        assert_eq!(
            c.keeping.key_encryption_key_file,
            PathBuf::from("/etc/uketsuke/key-encryption.key")
        );
        assert_eq!(c.keeping.retention, crate::sweeper::Retention::default());
        assert_eq!(c.keeping.retention.reception_days, 1095);
        assert_eq!(c.keeping.retention.audit_days, 1825);
        // Production needs the key-encryption key file.
        let m = production(&[ca, crl, ("UKETSUKE_KEY_ENCRYPTION_KEY_FILE", "")])
            .expect_err("empty")
            .to_string();
        assert!(m.contains("UKETSUKE_KEY_ENCRYPTION_KEY_FILE"), "{m}");
        let key = uketsuke_backend::contract::signing::encode_verifying_key(
            &uketsuke_backend::simulator::keys::backend_verifying_key(),
        );
        let m = err(
            None,
            &[
                ("UKETSUKE_MODE", "production"),
                ("UKETSUKE_PUBLIC_ORIGIN", "https://uketsuke.example.jp"),
                ("UKETSUKE_BACKEND", "https://oqs.example.jp/api"),
                ("UKETSUKE_BACKEND_KEY", key.as_str()),
                ("UKETSUKE_BACKEND_KEY_ID", "oqs-1"),
                ("UKETSUKE_AUDIT_KEY_FILE", "/etc/uketsuke/audit.key"),
                ca,
                crl,
            ],
        );
        assert!(
            m.contains("UKETSUKE_KEY_ENCRYPTION_KEY_FILE: production mode needs"),
            "{m}"
        );
        // Demo mode: beside the SQLite file, like audit.key.
        let c = Config::from_sources(
            None,
            &env(&[
                ("UKETSUKE_MODE", "demo"),
                ("UKETSUKE_DATABASE_URL", "sqlite://data/uk.db"),
                ("UKETSUKE_RECEPTION_RETENTION_DAYS", "3650"),
            ]),
        )
        .expect("demo");
        assert_eq!(
            c.keeping.key_encryption_key_file,
            PathBuf::from("data/key-encryption.key")
        );
        assert_eq!(c.keeping.retention.reception_days, 3650);
        for bad in ["364", "36501", "three years", "-1"] {
            let m = err(
                None,
                &[
                    ("UKETSUKE_MODE", "demo"),
                    ("UKETSUKE_AUDIT_RETENTION_DAYS", bad),
                ],
            );
            assert!(
                m.contains("UKETSUKE_AUDIT_RETENTION_DAYS") && m.contains("365 to 36500"),
                "{bad}: {m}"
            );
        }
    }

    #[test]
    fn production_refuses_a_plain_http_backend_except_on_loopback() {
        let ca = ("UKETSUKE_JPKI_CA", "/etc/uketsuke/jpki-ca.pem");
        let crl = ("UKETSUKE_JPKI_CRL", "/etc/uketsuke/jpki.crl");
        for url in [
            "http://oqs.example.jp/api",
            "http://192.0.2.10:8080",
            "http://[2001:db8::1]/",
            "http://localhost.example.jp/",
        ] {
            let m = production(&[("UKETSUKE_BACKEND", url), ca, crl])
                .expect_err(url)
                .to_string();
            assert!(m.contains("UKETSUKE_BACKEND: \""), "{m}");
            assert!(
                m.contains("production mode needs an https:// backend URL"),
                "{m}"
            );
        }
        for url in [
            "http://127.0.0.1:8081",
            "http://127.8.0.1/",
            "http://[::1]:8081/",
            "http://LOCALHOST:8081",
            "https://oqs.example.jp/api",
        ] {
            let c = production(&[("UKETSUKE_BACKEND", url), ca, crl]).expect(url);
            assert!(matches!(c.backend, BackendTarget::Remote(_)), "{url}");
        }
        // Demo mode may use any http backend.
        let demo = Config::from_sources(
            None,
            &env(&[
                ("UKETSUKE_MODE", "demo"),
                ("UKETSUKE_BACKEND", "http://oqs.example.jp/api"),
            ]),
        );
        assert!(demo.is_ok(), "{demo:?}");
    }

    #[test]
    fn the_ca_bundle_and_lists_are_lists_of_files() {
        // Environment: paths separated as in PATH.
        let c = production(&[
            (
                "UKETSUKE_JPKI_CA",
                "/etc/jpki/ca-2015.pem:/etc/jpki/ca-2023.pem",
            ),
            ("UKETSUKE_JPKI_CRL", "/etc/jpki/2015.crl:/etc/jpki/2023.crl"),
        ])
        .expect("valid");
        assert_eq!(
            c.jpki_ca,
            [
                PathBuf::from("/etc/jpki/ca-2015.pem"),
                PathBuf::from("/etc/jpki/ca-2023.pem")
            ]
        );
        assert_eq!(c.jpki_crl.len(), 2);
        // One file (a bundle of PEM blocks) is a list of one.
        let c = production(&[
            ("UKETSUKE_JPKI_CA", "/etc/jpki/bundle.pem"),
            ("UKETSUKE_JPKI_CRL", "/etc/jpki/2023.crl"),
        ])
        .expect("valid");
        assert_eq!(c.jpki_ca, [PathBuf::from("/etc/jpki/bundle.pem")]);
        // The file: a TOML list, or a string.
        let c = Config::from_sources(
            Some((
                "f.toml",
                "mode = \"demo\"\njpki_ca = [\"a.pem\", \"b.pem\"]\njpki_crl = \"a.crl:b.crl\"",
            )),
            &[],
        )
        .expect("valid");
        assert_eq!(c.jpki_ca, [PathBuf::from("a.pem"), PathBuf::from("b.pem")]);
        assert_eq!(c.jpki_crl, [PathBuf::from("a.crl"), PathBuf::from("b.crl")]);
        // Demo mode without either: the test CA.
        let c = Config::from_sources(None, &demo()).expect("valid");
        assert!(c.jpki_ca.is_empty() && c.jpki_crl.is_empty());
    }

    #[test]
    fn bad_ca_and_list_settings_name_their_key() {
        let message = |r: Result<Config, ConfigError>| match r {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e.to_string(),
        };
        let m = message(production(&[]));
        assert!(m.contains("UKETSUKE_JPKI_CA: production mode needs"), "{m}");
        let m = message(production(&[("UKETSUKE_JPKI_CA", "/a.pem")]));
        assert!(
            m.contains("UKETSUKE_JPKI_CA: \"/a.pem\": jpki_ca and jpki_crl go together"),
            "{m}"
        );
        let m = message(production(&[("UKETSUKE_JPKI_CRL", "/a.crl")]));
        assert!(m.contains("UKETSUKE_JPKI_CRL"), "{m}");
        for bad in ["", " ", "/a.pem:", "/a.pem::/b.pem", ":/a.pem"] {
            let m = message(production(&[
                ("UKETSUKE_JPKI_CA", bad),
                ("UKETSUKE_JPKI_CRL", "/a.crl"),
            ]));
            assert!(
                m.contains("UKETSUKE_JPKI_CA") && m.contains("none empty"),
                "{bad:?}: {m}"
            );
            assert!(!m.contains('\n'));
        }
        assert!(
            err(Some("jpki_ca = [1]\njpki_crl = \"a.crl\""), &[])
                .contains("jpki_ca (uketsuke.toml): must be a list of strings")
        );
        assert!(
            err(
                Some("mode = \"demo\"\njpki_ca = []\njpki_crl = \"a.crl\""),
                &[]
            )
            .contains("jpki_ca (uketsuke.toml): \"[]\": must name one or more files")
        );
        // Lists are for the file lists only.
        assert!(
            err(Some("listen = [\"x\"]"), &[]).contains("listen (uketsuke.toml): must be a string")
        );
    }

    #[test]
    fn bad_files_name_the_key_and_file() {
        assert!(
            err(Some("listen = 3000"), &[]).contains("listen (uketsuke.toml): must be a string")
        );
        assert!(
            err(Some("colour = \"red\""), &[]).contains("colour (uketsuke.toml): unknown setting")
        );
        assert!(err(Some("listen = "), &[]).contains("uketsuke.toml: not valid TOML"));
        assert!(err(Some("mode = \"x\""), &[]).contains("mode (uketsuke.toml): \"x\""));
    }

    #[test]
    fn flood_limits_have_defaults_and_read_their_keys() {
        let c = Config::from_sources(None, &demo()).expect("defaults are valid");
        assert_eq!(c.floods, Floods::default());
        assert!(c.floods.trusted_proxies.is_empty());
        assert_eq!(c.floods.event_streams_per_session, 4);

        let file = r#"
            trusted_proxies = ["10.0.0.5", "10.1.0.0/16", "fd00::1/64"]
            header_read_timeout_secs = "3"
        "#;
        let c = Config::from_sources(
            Some(("uketsuke.toml", file)),
            &env(&[
                ("UKETSUKE_MODE", "demo"),
                ("UKETSUKE_MAX_CONNECTIONS", "50"),
                ("UKETSUKE_CONSOLE_REQUEST_BURST", "7"),
            ]),
        )
        .expect("valid");
        let nets: Vec<String> = c
            .floods
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["10.0.0.5/32", "10.1.0.0/16", "fd00::/64"]);
        assert_eq!(c.floods.header_read_timeout.as_secs(), 3);
        assert_eq!(c.floods.max_connections, 50);
        assert_eq!(c.floods.console_budget.burst, 7);
        assert_eq!(c.floods.console_budget.per_minute, 600);

        // From the environment: a comma-separated list.
        let c = Config::from_sources(
            None,
            &env(&[
                ("UKETSUKE_MODE", "demo"),
                ("UKETSUKE_TRUSTED_PROXIES", "127.0.0.1, ::1"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.floods.trusted_proxies.len(), 2);

        for (pairs, expected) in [
            (
                &[("UKETSUKE_TRUSTED_PROXIES", "10.0.0.0/33")][..],
                "UKETSUKE_TRUSTED_PROXIES",
            ),
            (
                &[("UKETSUKE_TRUSTED_PROXIES", "proxy.example.jp")][..],
                "not an IP address or CIDR range",
            ),
            (&[("UKETSUKE_MAX_CONNECTIONS", "0")][..], "from 1 to"),
            (
                &[("UKETSUKE_EVENT_STREAMS_PER_SESSION", "many")][..],
                "UKETSUKE_EVENT_STREAMS_PER_SESSION",
            ),
            (
                &[("UKETSUKE_KEEP_ALIVE_IDLE_SECS", "-1")][..],
                "UKETSUKE_KEEP_ALIVE_IDLE_SECS",
            ),
        ] {
            let mut all = vec![("UKETSUKE_MODE", "demo")];
            all.extend_from_slice(pairs);
            let message = err(None, &all);
            assert!(message.contains(expected), "{pairs:?}: {message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
    }

    #[test]
    fn the_mode_must_be_chosen() {
        for file in [None, Some("listen = \"127.0.0.1:3000\"")] {
            let m = err(file, &[]);
            assert!(
                m.starts_with("configuration error: UKETSUKE_MODE: not set"),
                "{m}"
            );
            // The message names both places and both values.
            for part in [
                "uketsuke.toml",
                "UKETSUKE_MODE",
                "\"demo\"",
                "\"production\"",
            ] {
                assert!(m.contains(part), "{part}: {m}");
            }
            assert!(!m.contains('\n'), "one line: {m}");
        }
        // Either source chooses it.
        let c = Config::from_sources(Some(("f.toml", "mode = \"demo\"")), &[]).expect("valid");
        assert_eq!(c.mode, Mode::Demo);
        let m = err(None, &[("UKETSUKE_MODE", "")]);
        assert!(m.contains("UKETSUKE_MODE: \"\": must be"), "{m}");
    }

    #[test]
    fn demo_mode_listens_on_loopback_unless_opted_in() {
        let with = |pairs: &[(&str, &str)]| {
            let mut all = vec![("UKETSUKE_MODE", "demo")];
            all.extend_from_slice(pairs);
            Config::from_sources(None, &env(&all))
        };
        for loopback in [
            "127.0.0.1:3000",
            "127.8.9.10:0",
            "[::1]:3000",
            "[::ffff:127.0.0.1]:0",
        ] {
            let c = with(&[("UKETSUKE_LISTEN", loopback)]).expect(loopback);
            assert!(!c.demo_public);
        }
        for open in [
            "0.0.0.0:3000",
            "[::]:3000",
            "192.0.2.7:3000",
            "[2001:db8::1]:3000",
        ] {
            let m = match with(&[("UKETSUKE_LISTEN", open)]) {
                Ok(c) => panic!("{open}: expected a refusal, got {c:?}"),
                Err(e) => e.to_string(),
            };
            assert!(
                m.starts_with(&format!("configuration error: UKETSUKE_LISTEN: \"{open}\": demo mode listens on loopback only")),
                "{m}"
            );
            assert!(m.contains("UKETSUKE_DEMO_PUBLIC=1"), "{m}");
            assert!(!m.contains('\n'));
            // The opt-in, from the environment or as a TOML boolean.
            let c = with(&[("UKETSUKE_LISTEN", open), ("UKETSUKE_DEMO_PUBLIC", "true")])
                .expect("opted in");
            assert!(c.demo_public);
        }
        let c = Config::from_sources(
            Some((
                "f.toml",
                "mode = \"demo\"\nlisten = \"0.0.0.0:3000\"\ndemo_public = true",
            )),
            &[],
        )
        .expect("valid");
        assert!(c.demo_public);
        let m = err(
            Some("mode = \"demo\"\nlisten = \"0.0.0.0:3000\"\ndemo_public = false"),
            &[],
        );
        assert!(
            m.contains("listen (uketsuke.toml): \"0.0.0.0:3000\": demo mode"),
            "{m}"
        );
        let m = err(
            None,
            &[("UKETSUKE_MODE", "demo"), ("UKETSUKE_DEMO_PUBLIC", "maybe")],
        );
        assert!(
            m.contains("UKETSUKE_DEMO_PUBLIC: \"maybe\": must be true or false"),
            "{m}"
        );
        // Production listens where it is told and refuses the demo-only key.
        let c = production(&[
            ("UKETSUKE_LISTEN", "0.0.0.0:3000"),
            ("UKETSUKE_JPKI_CA", "/a.pem"),
            ("UKETSUKE_JPKI_CRL", "/a.crl"),
        ])
        .expect("valid");
        assert!(!c.demo_public);
        let m = production(&[("UKETSUKE_DEMO_PUBLIC", "1")])
            .expect_err("demo only")
            .to_string();
        assert!(
            m.contains("UKETSUKE_DEMO_PUBLIC: \"1\": applies to demo mode only"),
            "{m}"
        );
    }
}
