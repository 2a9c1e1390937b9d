//! The deployment commands of `uketsuke-server`, beside the console's (`console::cli`):
//!
//! - `uketsuke-server check-config` — every configuration problem at once (`check_config`);
//!   exit 1 when there is one.
//! - `uketsuke-server institution key --institution <code>` — prints the institution's public
//!   request-signing key as the registration document the backend's operator takes
//!   (`uketsuke_backend::contract::key_registration`; `backend-sim --institution-key FILE`
//!   reads it). Only the public half is printed.

use std::process::ExitCode;

use uketsuke_backend::contract::key_registration::KeyRegistration;
use uketsuke_domain::{InstitutionCode, normalize_digits};

use crate::{
    config::Config,
    storage::{self, Db, institutions},
};

/// The usage lines of these commands, for the command line's help.
pub const USAGE: &str = "  uketsuke-server check-config
  uketsuke-server institution key --institution <code>";

/// The key registration document of the institution with `code`.
pub async fn institution_key(db: &Db, code: &str) -> Result<KeyRegistration, String> {
    let code = normalize_digits(code.trim())
        .parse::<InstitutionCode>()
        .map_err(|e| format!("institution code {code:?}: {}", e.message_en()))?;
    let id = institutions::id_by_code(db, code.as_str())
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no institution with code {}", code.as_str()))?;
    let identity = institutions::signer(db, &id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!(
                "institution {} has no usable request-signing key (`uketsuke-server admin create` makes one)",
                code.as_str()
            )
        })?;
    Ok(KeyRegistration::new(
        &code,
        identity.signer.key_id(),
        &identity.signer.verifying_key(),
    ))
}

/// Runs `check-config` or `institution key`; `None` for any other command line.
pub async fn run(args: &[String]) -> Option<ExitCode> {
    match args {
        [command] if command == "check-config" => Some(crate::check_config::run().await),
        [group, command, rest @ ..] if group == "institution" && command == "key" => {
            let code = match rest {
                [flag, code] if flag == "--institution" => code.clone(),
                [flag] if flag.starts_with("--institution=") => {
                    flag.trim_start_matches("--institution=").to_owned()
                }
                _ => {
                    eprintln!("usage:\n{USAGE}");
                    return Some(ExitCode::from(2));
                }
            };
            Some(print_key(&code).await)
        }
        _ => None,
    }
}

async fn print_key(code: &str) -> ExitCode {
    let config = match Config::from_process() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "uketsuke: database {} ({}), origin {}",
        storage::redacted_url(&config.database_url),
        storage::kind(&config.database_url),
        config.origin_string()
    );
    // Printing a key never makes a database: a new one has no institution to print.
    match storage::is_new(&config.database_url).await {
        Ok(true) => {
            eprintln!(
                "uketsuke: the database {} does not exist yet (or holds no Uketsuke tables); \
                 check database_url",
                storage::redacted_url(&config.database_url)
            );
            return ExitCode::from(1);
        }
        Ok(false) => {}
        Err(error) => {
            eprintln!("uketsuke: {error}");
            return ExitCode::from(1);
        }
    }
    let db = match storage::open(&config.database_url).await {
        Ok(db) => db,
        Err(error) => {
            eprintln!("uketsuke: {error}");
            return ExitCode::from(1);
        }
    };
    // The private key is sealed in the database; opening it needs the key-encryption key.
    let kek = match storage::sealing::KeyEncryptionKey::load(
        &config.keeping.key_encryption_key_file,
        false,
    ) {
        Ok(kek) => kek,
        Err(message) => {
            eprintln!("uketsuke: key_encryption_key_file: {message}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = institutions::install_key_encryption(&db, &kek, storage::now_millis()).await
    {
        eprintln!("uketsuke: {error}");
        return ExitCode::from(1);
    }
    match institution_key(&db, code).await {
        Ok(document) => {
            print!("{}", document.to_json());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("uketsuke: {message}");
            ExitCode::from(1)
        }
    }
}
