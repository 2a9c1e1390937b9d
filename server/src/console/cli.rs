//! The console's command line, run on the server itself with the server's configuration:
//!
//! - `uketsuke-server admin create --institution <code> --name <name> [--kana <kana>]
//!   [--id <ID>] [--institution-name <name>]` — creates the institution if it is missing (with a
//!   fresh P-256 request-signing key) and its first administrator, and prints the enrolment link.
//!   Run again for an existing administrator, it issues a new link (a lost passkey).
//! - `uketsuke-server api-token create --institution <code> --label <text> [--scopes <list>]
//!   [--expires-in-days <1-3650>]` — prints a token for the institution API (default scope
//!   `links:appointment`, default life 365 days) and its id.
//! - `uketsuke-server api-token list --institution <code>` — the institution's tokens by id, with
//!   label, scopes, expiry, revocation and last use (never the secret).
//! - `uketsuke-server api-token revoke --institution <code> --id <token id>` — revokes one.
//! - `uketsuke-server audit verify [--institution <code>]` — recomputes the audit chains with the
//!   configured audit key (`audit_key_file`); exits 1 naming the first broken row, and prints
//!   each chain's head to keep elsewhere.
//!
//! - `uketsuke-server relay resume --institution <code>` — sends the institution's relay rows
//!   that were held for a refusal no retry can cure (see `/status`), once the cause is fixed.
//!
//! Every command first names, on stderr, the database and the origin it works with. None
//! creates a database: on a database that does not exist yet (or holds no Uketsuke tables) it
//! stops, unless `--create` is given. Token creation and revocation are written to the audit
//! log (as `-cli`).

use std::process::ExitCode;

use sqlx::Row;
use uketsuke_backend::contract::b64_encode;
use uketsuke_domain::{InstitutionCode, normalize_digits, window::jst_date};

use super::{
    accounts::{self, NewAccount, login_id_ok},
    audit::{self, Actor},
};
use crate::{
    clock::from_ms,
    config::Config,
    gate::Role,
    storage::{
        self, Db,
        ids::new_id,
        institutions,
        tokens::{self, Scope},
    },
};

const USAGE: &str = "usage:
  uketsuke-server                      start the server
  uketsuke-server admin create --institution <10-digit code> --name <name>
                  [--kana <kana>] [--id <ID, 2-8 letters/digits>] [--institution-name <name>]
  uketsuke-server api-token create --institution <code> --label <text>
                  [--scopes links:appointment,links:standing,links:revoke,home_visits:write]
                  [--expires-in-days <1-3650, default 365>]
  uketsuke-server api-token list --institution <code>
  uketsuke-server api-token revoke --institution <code> --id <token id>
  uketsuke-server audit verify [--institution <code>]
  uketsuke-server backup FILE          copy the SQLite database (server running) into a new FILE
  uketsuke-server restore FILE         replace the SQLite database with a backup (server stopped)
  uketsuke-server relay resume --institution <code>
  uketsuke-server --version
Every command takes --create to make a new database; without it a missing one is refused.";

/// What `admin create` is asked to do.
#[derive(Debug, Clone)]
pub struct AdminCreate {
    pub institution_code: String,
    pub name: String,
    pub kana: String,
    pub login_id: String,
    pub institution_name: Option<String>,
}

/// What `admin create` did.
#[derive(Debug, Clone)]
pub struct AdminCreated {
    pub institution_id: String,
    pub institution_code: String,
    pub institution_created: bool,
    /// A new signing key to register with the backend: (key id, SEC1 public key, base64url).
    pub new_key: Option<(String, String)>,
    pub login_id: String,
    /// The account existed already; only a new code was issued.
    pub reissued: bool,
    pub code: String,
    pub link: String,
    pub expires_at: i64,
}

fn parse_code(text: &str) -> Result<InstitutionCode, String> {
    normalize_digits(text.trim())
        .parse::<InstitutionCode>()
        .map_err(|e| format!("institution code {text:?}: {}", e.message_en()))
}

/// Creates the institution (if missing) and its administrator, and issues an enrolment code.
pub async fn admin_create(
    db: &Db,
    origin: &str,
    request: &AdminCreate,
    now_ms: i64,
) -> Result<AdminCreated, String> {
    let code = parse_code(&request.institution_code)?;
    if !login_id_ok(&request.login_id) {
        return Err("--id must be 2 to 8 ASCII letters or digits".to_owned());
    }
    let storage = |e: storage::StorageError| e.to_string();
    let existing = institutions::id_by_code(db, code.as_str())
        .await
        .map_err(storage)?;
    let (institution_id, institution_created) = match existing {
        Some(id) => {
            // The same code with another name is a typo or another clinic: never quietly
            // add an administrator to an institution the operator did not mean.
            if let Some(wanted) = request.institution_name.as_deref().map(str::trim) {
                let current: String = sqlx::query("SELECT name_ja FROM institutions WHERE id = $1")
                    .bind(&id)
                    .fetch_one(db)
                    .await
                    .and_then(|row| row.try_get("name_ja"))
                    .map_err(|e| e.to_string())?;
                if current != wanted {
                    return Err(format!(
                        "institution {} exists with the name {current:?}, not {wanted:?}: \
                         nothing was changed (check the code; leave out --institution-name \
                         to add an administrator to the existing institution)",
                        code.as_str()
                    ));
                }
            }
            (id, false)
        }
        None => {
            let name = request
                .institution_name
                .clone()
                .unwrap_or_else(|| code.as_str().to_owned());
            if name.trim().is_empty() {
                return Err("--institution-name must be 1 to 100 characters".to_owned());
            }
            if let Err(error) = uketsuke_domain::text::check_short_text(&name, 100) {
                return Err(format!("--institution-name: {}", error.message_en()));
            }
            let id = new_id();
            sqlx::query(
                "INSERT INTO institutions (id, code, name_ja, name_en, created_at) \
                 VALUES ($1, $2, $3, $3, $4)",
            )
            .bind(&id)
            .bind(code.as_str())
            .bind(name.trim())
            .bind(now_ms)
            .execute(db)
            .await
            .map_err(|e| e.to_string())?;
            (id, true)
        }
    };
    // An institution without a usable key (new, or an earlier run stopped halfway) gets one.
    let new_key = if institutions::signer(db, &institution_id)
        .await
        .map_err(storage)?
        .is_none()
    {
        let key = institutions::generate_key();
        let key_id = format!("uk-{}-{}", code.as_str(), &new_id()[..8]);
        institutions::set_key(db, &institution_id, &key_id, &key)
            .await
            .map_err(storage)?;
        let public = key.verifying_key().to_encoded_point(false);
        Some((key_id, b64_encode(public.as_bytes())))
    } else {
        None
    };

    let actor = Actor::cli(&institution_id);
    let reissued = match accounts::by_login(db, &institution_id, &request.login_id)
        .await
        .map_err(storage)?
    {
        Some(account) if account.view.role == Role::Administrator && !account.view.disabled => true,
        Some(_) => {
            return Err(format!(
                "account {} exists and is not an active administrator",
                request.login_id
            ));
        }
        None => {
            let account = NewAccount {
                id: request.login_id.clone(),
                name: request.name.clone(),
                kana: request.kana.clone(),
                role: Role::Administrator,
                start_date: jst_date(from_ms(now_ms)),
            };
            if let Some(problem) = account.problem() {
                return Err(format!("account: {problem}"));
            }
            let mut tx = crate::storage::begin(db).await.map_err(|e| e.to_string())?;
            audit::append(&mut tx, &actor, "account.create", Some(&account.id), now_ms)
                .await
                .map_err(storage)?;
            if accounts::create_in(&mut tx, &institution_id, &account, now_ms)
                .await
                .map_err(storage)?
                .is_none()
            {
                return Err(format!("account ID {} is taken", request.login_id));
            }
            tx.commit().await.map_err(|e| e.to_string())?;
            false
        }
    };
    let issued = accounts::issue_for(db, origin, &actor, &request.login_id, now_ms)
        .await
        .map_err(storage)?
        .ok_or_else(|| "the account cannot be enrolled".to_owned())?;
    Ok(AdminCreated {
        institution_id,
        institution_code: code.as_str().to_owned(),
        institution_created,
        new_key,
        login_id: issued.account,
        reissued,
        code: issued.code,
        link: issued.link,
        expires_at: issued.expires_at.timestamp_millis(),
    })
}

/// A token as made: its id and the secret (shown once).
#[derive(Debug, Clone)]
pub struct TokenCreated {
    pub id: String,
    pub token: String,
    pub scopes: Vec<Scope>,
    pub expires_at: i64,
}

async fn institution_by_code(db: &Db, code: &str) -> Result<String, String> {
    let code = parse_code(code)?;
    institutions::id_by_code(db, code.as_str())
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no institution with code {}", code.as_str()))
}

/// Makes an API token for the institution with `code`, with the default scope and life.
pub async fn api_token_create(
    db: &Db,
    code: &str,
    label: &str,
    now_ms: i64,
) -> Result<String, String> {
    Ok(api_token_create_with(db, code, label, None, None, now_ms)
        .await?
        .token)
}

/// Makes an API token: `scopes` a comma-separated list (default `links:appointment`),
/// `expires_in_days` 1–3650 (default 365). Logged as `api_token.create` naming the token id.
pub async fn api_token_create_with(
    db: &Db,
    code: &str,
    label: &str,
    scopes: Option<&str>,
    expires_in_days: Option<&str>,
    now_ms: i64,
) -> Result<TokenCreated, String> {
    if label.trim().is_empty() || !crate::storage::links::text_ok(label, 100) {
        return Err("--label must be 1 to 100 characters".to_owned());
    }
    if let Err(error) = uketsuke_domain::text::check_short_text(label, 100) {
        return Err(format!("--label: {}", error.message_en()));
    }
    let scopes = match scopes {
        Some(text) => Scope::parse_list(text).map_err(|unknown| {
            let known: Vec<&str> = Scope::ALL.iter().map(|s| s.name()).collect();
            format!(
                "--scopes: unknown scope {unknown:?} (known: {})",
                known.join(", ")
            )
        })?,
        None => vec![Scope::LinksAppointment],
    };
    if scopes.is_empty() {
        return Err("--scopes must name at least one scope".to_owned());
    }
    let lifetime = match expires_in_days {
        Some(text) => match text.trim().parse::<i64>() {
            Ok(days) if (1..=3650).contains(&days) => days * 24 * 3600 * 1000,
            _ => return Err("--expires-in-days must be a number from 1 to 3650".to_owned()),
        },
        None => tokens::DEFAULT_LIFETIME_MS,
    };
    let institution_id = institution_by_code(db, code).await?;
    let storage = |e: storage::StorageError| e.to_string();
    let expires_at = now_ms + lifetime.min(tokens::MAX_LIFETIME_MS);
    let mut tx = crate::storage::begin(db).await.map_err(|e| e.to_string())?;
    let (id, token) = tokens::create_in(
        &mut tx,
        &institution_id,
        label.trim(),
        &scopes,
        expires_at,
        now_ms,
    )
    .await
    .map_err(storage)?;
    audit::append(
        &mut tx,
        &Actor::cli(&institution_id),
        "api_token.create",
        Some(&format!("{id} scopes={}", Scope::join(&scopes))),
        now_ms,
    )
    .await
    .map_err(storage)?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(TokenCreated {
        id,
        token,
        scopes,
        expires_at,
    })
}

/// The institution's tokens, one line each (never the secret).
pub async fn api_token_list(db: &Db, code: &str, now_ms: i64) -> Result<String, String> {
    let institution_id = institution_by_code(db, code).await?;
    let list = tokens::list(db, &institution_id)
        .await
        .map_err(|e| e.to_string())?;
    let when = |ms: i64| {
        uketsuke_domain::window::to_jst(from_ms(ms))
            .format("%Y-%m-%d %H:%M JST")
            .to_string()
    };
    let mut lines = vec!["id\tstate\tscopes\texpires\tlast used\tlabel".to_owned()];
    for t in list {
        let state = match (t.revoked_at, t.expires_at) {
            (Some(_), _) => "revoked",
            (None, Some(at)) if at <= now_ms => "expired",
            _ => "live",
        };
        lines.push(format!(
            "{}\t{state}\t{}\t{}\t{}\t{}",
            t.id,
            Scope::join(&t.scopes),
            t.expires_at.map(when).unwrap_or_else(|| "never".to_owned()),
            t.last_used_at.map(when).unwrap_or_else(|| "-".to_owned()),
            t.label
        ));
    }
    Ok(lines.join("\n"))
}

/// Revokes the token `id` of the institution with `code`; logged as `api_token.revoke`.
pub async fn api_token_revoke(db: &Db, code: &str, id: &str, now_ms: i64) -> Result<(), String> {
    let institution_id = institution_by_code(db, code).await?;
    let storage = |e: storage::StorageError| e.to_string();
    let mut tx = crate::storage::begin(db).await.map_err(|e| e.to_string())?;
    audit::append(
        &mut tx,
        &Actor::cli(&institution_id),
        "api_token.revoke",
        Some(id.trim()),
        now_ms,
    )
    .await
    .map_err(storage)?;
    if !tokens::revoke_by_id_in(&mut tx, &institution_id, id.trim(), now_ms)
        .await
        .map_err(storage)?
    {
        tx.rollback().await.map_err(|e| e.to_string())?;
        return Err(format!("no live token {} at this institution", id.trim()));
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Releases the institution's held relay rows (`relay resume`); logged as `relay.resume` with
/// the number of rows. Returns that number.
pub async fn relay_resume(db: &Db, code: &str, now_ms: i64) -> Result<u64, String> {
    let institution_id = institution_by_code(db, code).await?;
    let rows = storage::outbox::resume(db, &institution_id, now_ms)
        .await
        .map_err(|e| e.to_string())?;
    let mut tx = crate::storage::begin(db).await.map_err(|e| e.to_string())?;
    audit::append(
        &mut tx,
        &Actor::cli(&institution_id),
        "relay.resume",
        Some(&format!("rows={rows}")),
        now_ms,
    )
    .await
    .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(rows)
}

/// The outcome of `audit verify`, as printed.
pub async fn audit_verify(db: &Db, code: Option<&str>) -> Result<Result<String, String>, String> {
    audit_verify_with(db, code, None).await
}

/// `audit verify` with the configured key (`None`: the key this process has loaded for the
/// database, if any).
pub async fn audit_verify_with(
    db: &Db,
    code: Option<&str>,
    key: Option<&audit::AuditKey>,
) -> Result<Result<String, String>, String> {
    let institution_id = match code {
        Some(code) => {
            let code = parse_code(code)?;
            Some(
                institutions::id_by_code(db, code.as_str())
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("no institution with code {}", code.as_str()))?,
            )
        }
        None => None,
    };
    let code_of = async |id: &str| -> String {
        sqlx::query("SELECT code FROM institutions WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await
            .ok()
            .flatten()
            .and_then(|row| row.try_get::<String, _>("code").ok())
            .unwrap_or_else(|| id.to_owned())
    };
    let verified = match key {
        Some(key) => audit::verify_with(db, institution_id.as_deref(), Some(key)).await,
        None => audit::verify(db, institution_id.as_deref()).await,
    };
    let heads = audit::heads(db).await.map_err(|e| e.to_string())?;
    match verified.map_err(|e| e.to_string())? {
        Ok(checked) => {
            let mut lines = Vec::new();
            for (id, rows) in &checked {
                let head = heads
                    .iter()
                    .find(|(i, _, _)| i == id)
                    .map(|(_, _, hash)| hash.as_str())
                    .unwrap_or("-");
                lines.push(format!(
                    "ok: institution {}: {rows} rows, head {head}",
                    code_of(id).await
                ));
            }
            if lines.is_empty() {
                lines.push("ok: no audit rows yet".to_owned());
            }
            Ok(Ok(lines.join("\n")))
        }
        Err(broken) => Ok(Err(format!(
            "audit chain broken: institution {}, row {}: {}",
            code_of(&broken.institution_id).await,
            broken.seq,
            broken.reason
        ))),
    }
}

/// `--name value` or `--name=value` flags after the subcommand.
fn flags(args: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?}"));
        };
        match flag.split_once('=') {
            Some((name, value)) => out.push((name.to_owned(), value.to_owned())),
            None => {
                let value = rest
                    .next()
                    .ok_or_else(|| format!("--{flag} needs a value"))?;
                out.push((flag.to_owned(), value.clone()));
            }
        }
    }
    Ok(out)
}

fn take(flags: &[(String, String)], name: &str) -> Option<String> {
    flags
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn check_known(flags: &[(String, String)], known: &[&str]) -> Result<(), String> {
    match flags.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        Some((k, _)) => Err(format!("unknown option --{k}")),
        None => Ok(()),
    }
}

/// Runs a subcommand; `None` when there is none (start the server).
pub async fn run(args: &[String]) -> Option<ExitCode> {
    // `check-config` and `institution key` (deployment).
    if let Some(code) = crate::deploy_cli::run(args).await {
        return Some(code);
    }
    // Keeping data: `backup FILE`, `restore FILE` (storage::backup).
    if let [command, rest @ ..] = args
        && matches!(command.as_str(), "backup" | "restore")
    {
        return Some(storage::backup::run(command, rest).await);
    }
    let (group, command, rest) = match args {
        [] => return None,
        [one] if one == "help" || one == "--help" || one == "-h" => {
            println!("{USAGE}\n{}", crate::deploy_cli::USAGE);
            return Some(ExitCode::SUCCESS);
        }
        [group, command, rest @ ..] => (group.as_str(), command.as_str(), rest),
        _ => {
            eprintln!("{USAGE}");
            return Some(ExitCode::from(2));
        }
    };
    // `--create` is the one option without a value.
    let create = rest.iter().any(|a| a == "--create");
    let rest: Vec<String> = rest.iter().filter(|a| *a != "--create").cloned().collect();
    let flags = match flags(&rest) {
        Ok(flags) => flags,
        Err(message) => {
            eprintln!("uketsuke: {message}\n{USAGE}");
            return Some(ExitCode::from(2));
        }
    };
    let known: &[&str] = match (group, command) {
        ("admin", "create") => &["institution", "name", "kana", "id", "institution-name"],
        ("api-token", "create") => &["institution", "label", "scopes", "expires-in-days"],
        ("api-token", "list") => &["institution"],
        ("api-token", "revoke") => &["institution", "id"],
        ("audit", "verify") => &["institution"],
        ("relay", "resume") => &["institution"],
        _ => {
            eprintln!("{USAGE}");
            return Some(ExitCode::from(2));
        }
    };
    if let Err(message) = check_known(&flags, known) {
        eprintln!("uketsuke: {message}\n{USAGE}");
        return Some(ExitCode::from(2));
    }
    let config = match Config::from_process() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return Some(ExitCode::from(2));
        }
    };
    // Name what this command works on before touching it: the wrong configuration (another
    // working directory, a missing environment variable) then shows at once.
    eprintln!(
        "uketsuke: database {} ({}), origin {}",
        storage::redacted_url(&config.database_url),
        storage::kind(&config.database_url),
        config.origin_string()
    );
    match storage::is_new(&config.database_url).await {
        Ok(true) if !create => {
            eprintln!(
                "uketsuke: the database {} does not exist yet (or holds no Uketsuke tables); \
                 check database_url, or run again with --create to make it",
                storage::redacted_url(&config.database_url)
            );
            return Some(ExitCode::from(1));
        }
        Ok(_) => {}
        Err(error) => {
            eprintln!("uketsuke: {error}");
            return Some(ExitCode::from(1));
        }
    }
    let db = match storage::open(&config.database_url).await {
        Ok(db) => db,
        Err(error) => {
            eprintln!("uketsuke: {error}");
            return Some(ExitCode::from(1));
        }
    };
    let now = storage::now_millis();
    // The audit chain's key: every command that writes appends keyed rows; `audit verify`
    // checks with it. Demo mode makes the file if it is missing, as the server does.
    let writes = group != "audit";
    let key = match audit::AuditKey::load(
        &config.audit_key_file,
        writes && config.mode == crate::config::Mode::Demo,
    ) {
        Ok(key) => key,
        Err(message) => {
            eprintln!("uketsuke: audit_key_file: {message}");
            return Some(ExitCode::from(2));
        }
    };
    if writes {
        if let Err(error) = audit::install(&db, &key, now).await {
            eprintln!("uketsuke: {error}");
            return Some(ExitCode::from(1));
        }
        // Institution keys are sealed with the key-encryption key (`admin create` makes one).
        let kek = match storage::sealing::KeyEncryptionKey::load(
            &config.keeping.key_encryption_key_file,
            config.mode == crate::config::Mode::Demo,
        ) {
            Ok(kek) => kek,
            Err(message) => {
                eprintln!("uketsuke: key_encryption_key_file: {message}");
                return Some(ExitCode::from(2));
            }
        };
        if let Err(error) = institutions::install_key_encryption(&db, &kek, now).await {
            eprintln!("uketsuke: {error}");
            return Some(ExitCode::from(1));
        }
    } else {
        audit::register(&key);
    }
    let missing = |name: &str| {
        eprintln!("uketsuke: --{name} is required\n{USAGE}");
        Some(ExitCode::from(2))
    };
    match (group, command) {
        ("admin", "create") => {
            let (Some(institution_code), Some(name)) =
                (take(&flags, "institution"), take(&flags, "name"))
            else {
                return missing("institution and --name");
            };
            let request = AdminCreate {
                institution_code,
                name,
                kana: take(&flags, "kana").unwrap_or_default(),
                login_id: take(&flags, "id").unwrap_or_else(|| "admin".to_owned()),
                institution_name: take(&flags, "institution-name"),
            };
            match admin_create(&db, &config.origin_string(), &request, now).await {
                Ok(done) => {
                    print_admin(&done);
                    Some(ExitCode::SUCCESS)
                }
                Err(message) => {
                    eprintln!("uketsuke: {message}");
                    Some(ExitCode::from(1))
                }
            }
        }
        ("api-token", "create") => {
            let (Some(code), Some(label)) = (take(&flags, "institution"), take(&flags, "label"))
            else {
                return missing("institution and --label");
            };
            let scopes = take(&flags, "scopes");
            let days = take(&flags, "expires-in-days");
            match api_token_create_with(&db, &code, &label, scopes.as_deref(), days.as_deref(), now)
                .await
            {
                Ok(made) => {
                    println!("{}", made.token);
                    eprintln!(
                        "(shown once: only its hash is stored) id {}, scopes {}, expires {}",
                        made.id,
                        Scope::join(&made.scopes),
                        uketsuke_domain::window::to_jst(from_ms(made.expires_at))
                            .format("%Y-%m-%d %H:%M JST")
                    );
                    Some(ExitCode::SUCCESS)
                }
                Err(message) => {
                    eprintln!("uketsuke: {message}");
                    Some(ExitCode::from(1))
                }
            }
        }
        ("api-token", "list") => {
            let Some(code) = take(&flags, "institution") else {
                return missing("institution");
            };
            match api_token_list(&db, &code, now).await {
                Ok(text) => {
                    println!("{text}");
                    Some(ExitCode::SUCCESS)
                }
                Err(message) => {
                    eprintln!("uketsuke: {message}");
                    Some(ExitCode::from(1))
                }
            }
        }
        ("api-token", "revoke") => {
            let (Some(code), Some(id)) = (take(&flags, "institution"), take(&flags, "id")) else {
                return missing("institution and --id");
            };
            match api_token_revoke(&db, &code, &id, now).await {
                Ok(()) => {
                    println!("revoked {}", id.trim());
                    Some(ExitCode::SUCCESS)
                }
                Err(message) => {
                    eprintln!("uketsuke: {message}");
                    Some(ExitCode::from(1))
                }
            }
        }
        ("relay", "resume") => {
            let Some(code) = take(&flags, "institution") else {
                return missing("institution");
            };
            match relay_resume(&db, &code, now).await {
                Ok(rows) => {
                    println!(
                        "resumed {rows} held request(s) of institution {}; the running server \
                         sends them now",
                        code.trim()
                    );
                    Some(ExitCode::SUCCESS)
                }
                Err(message) => {
                    eprintln!("uketsuke: {message}");
                    Some(ExitCode::from(1))
                }
            }
        }
        _ => match audit_verify_with(&db, take(&flags, "institution").as_deref(), Some(&key)).await
        {
            Ok(Ok(report)) => {
                println!("{report}");
                Some(ExitCode::SUCCESS)
            }
            Ok(Err(broken)) => {
                eprintln!("{broken}");
                Some(ExitCode::from(1))
            }
            Err(message) => {
                eprintln!("uketsuke: {message}");
                Some(ExitCode::from(2))
            }
        },
    }
}

fn print_admin(done: &AdminCreated) {
    if done.institution_created {
        println!("Created institution {}.", done.institution_code);
    }
    if let Some((key_id, public)) = &done.new_key {
        println!("New request-signing key for {}:", done.institution_code);
        println!("  key id:     {key_id}");
        println!("  public key: {public}  (P-256, SEC1 uncompressed, base64url)");
        println!("  Register it with the confirmation backend before receptions can be relayed;");
        println!(
            "  `uketsuke-server institution key --institution {}` prints it as the backend takes it.",
            done.institution_code
        );
    }
    let what = if done.reissued {
        "New enrolment link for administrator"
    } else {
        "Created administrator"
    };
    println!(
        "{what} {}. Open this link on the device that will hold the passkey, before {}:",
        done.login_id,
        uketsuke_domain::window::to_jst(from_ms(done.expires_at)).format("%Y-%m-%d %H:%M JST")
    );
    println!("  {}", done.link);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags_take_both_spellings() {
        let parsed = flags(&strings(&["--institution", "1", "--name=山田 花子"])).expect("flags");
        assert_eq!(take(&parsed, "institution").as_deref(), Some("1"));
        assert_eq!(take(&parsed, "name").as_deref(), Some("山田 花子"));
        assert!(flags(&strings(&["--label"])).is_err());
        assert!(flags(&strings(&["stray"])).is_err());
        assert!(check_known(&parsed, &["institution"]).is_err());
    }

    #[tokio::test]
    async fn no_arguments_start_the_server() {
        assert!(run(&[]).await.is_none());
    }
}
