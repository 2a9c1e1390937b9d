//! Backup and restore of the SQLite database, and what to do with PostgreSQL.
//!
//! - `uketsuke-server backup FILE` copies the live database with SQLite's `VACUUM INTO`: a
//!   consistent snapshot taken while the server runs (readers and the writer go on), written to
//!   a new file created with mode 0600; an existing FILE is never overwritten. The copy is
//!   checked (`PRAGMA integrity_check`) and its contents counted. It does not migrate: a backup
//!   taken before an upgrade is the database as the old version left it.
//! - `uketsuke-server restore FILE` (server stopped) checks the backup (integrity, made by this
//!   version or an older one, chained with the configured audit key, its institution keys sealed
//!   with the configured key-encryption key), moves the current database and its `-wal`/`-shm`
//!   aside as `<file>.before-restore-<UTC time>` (nothing is deleted), and puts a copy of the
//!   backup in its place (mode 0600). The next start migrates it if it is older.
//! - With PostgreSQL both commands explain `pg_dump` / `pg_restore` instead.
//!
//! Neither the audit key nor the key-encryption key is in a backup: keep them (and their own
//! copies) apart from the database's backups.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    str::FromStr,
};

use sqlx::{
    ConnectOptions, Connection, Row,
    sqlite::{SqliteConnectOptions, SqliteConnection},
};

/// What a backup or restore could not do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists: choose a new file name (a backup never overwrites)")]
    Exists(String),
    #[error("no SQLite database at {0}")]
    NoDatabase(String),
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Sqlite { path: String, source: sqlx::Error },
    #[error("{0} is not a sound SQLite database: {1}")]
    Damaged(String, String),
    #[error("{0} is not an Uketsuke database (no migrations recorded)")]
    NotUketsuke(String),
    #[error(
        "{path} was made by a newer Uketsuke (migration {version}); this one knows migrations up \
         to {known}: restore it with that version or newer"
    )]
    Newer {
        path: String,
        version: i64,
        known: i64,
    },
    #[error(
        "{path}: its {what} is the one with fingerprint {stored}, the configuration's has \
         {configured}: restore with the key files that belong to this backup"
    )]
    KeyMismatch {
        path: String,
        what: &'static str,
        stored: String,
        configured: String,
    },
    #[error("the database {0} is in use (a running server?): stop the server before restoring")]
    InUse(String),
    #[error("{0}")]
    Url(String),
}

/// What [`backup`] wrote.
#[derive(Debug, Clone)]
pub struct Report {
    pub file: PathBuf,
    pub bytes: u64,
    pub migration: i64,
    pub institutions: i64,
    pub receptions: i64,
    pub audit_rows: i64,
}

/// The database file a `sqlite:` URL names (`None` for an in-memory database).
pub fn sqlite_path(database_url: &str) -> Result<PathBuf, BackupError> {
    let options = SqliteConnectOptions::from_str(database_url)
        .map_err(|e| BackupError::Url(format!("database_url: {e}")))?;
    let file = options.get_filename();
    if file.as_os_str().is_empty()
        || file == Path::new(":memory:")
        || database_url.contains("mode=memory")
    {
        return Err(BackupError::Url(
            "an in-memory database has nothing to back up or restore".to_owned(),
        ));
    }
    Ok(file.to_path_buf())
}

async fn connect(path: &Path, read_only: bool) -> Result<SqliteConnection, BackupError> {
    if !path.is_file() {
        return Err(BackupError::NoDatabase(path.display().to_string()));
    }
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .read_only(read_only)
        .busy_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .map_err(|source| BackupError::Sqlite {
            path: path.display().to_string(),
            source,
        })
}

/// Creates `path` empty with mode 0600, refusing an existing file.
fn create_private_new(path: &Path) -> Result<std::fs::File, BackupError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            BackupError::Exists(path.display().to_string())
        } else {
            BackupError::File {
                path: path.display().to_string(),
                source,
            }
        }
    })
}

/// Backs the SQLite database of `database_url` up into the new file `target` (see the module
/// comment). On failure a partly written `target` is removed.
pub async fn backup(database_url: &str, target: &Path) -> Result<Report, BackupError> {
    let source = sqlite_path(database_url)?;
    let mut conn = connect(&source, true).await?;
    create_private_new(target)?;
    let written = async {
        let target_text = target
            .to_str()
            .ok_or_else(|| BackupError::Url("the backup file name must be UTF-8".to_owned()))?;
        sqlx::query("VACUUM INTO ?")
            .bind(target_text)
            .execute(&mut conn)
            .await
            .map_err(|source| BackupError::Sqlite {
                path: target.display().to_string(),
                source,
            })?;
        conn.close().await.ok();
        let file = std::fs::File::open(target).map_err(|source| BackupError::File {
            path: target.display().to_string(),
            source,
        })?;
        file.sync_all().map_err(|source| BackupError::File {
            path: target.display().to_string(),
            source,
        })?;
        inspect(target).await
    }
    .await;
    if written.is_err() {
        let _ = std::fs::remove_file(target);
    }
    written
}

/// Checks a database file (integrity) and counts what it holds.
async fn inspect(path: &Path) -> Result<Report, BackupError> {
    let shown = path.display().to_string();
    let mut conn = connect(path, true).await?;
    let sqlite = |source: sqlx::Error| BackupError::Sqlite {
        path: shown.clone(),
        source,
    };
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| BackupError::Damaged(shown.clone(), e.to_string()))?;
    if check != "ok" {
        return Err(BackupError::Damaged(shown.clone(), check));
    }
    let migration: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .map_err(|_| BackupError::NotUketsuke(shown.clone()))?;
    let migration = migration.ok_or_else(|| BackupError::NotUketsuke(shown.clone()))?;
    let count = async |conn: &mut SqliteConnection, table: &str| -> Result<i64, BackupError> {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(conn)
            .await
            .map_err(sqlite)
    };
    let institutions = count(&mut conn, "institutions").await?;
    let receptions = count(&mut conn, "receptions").await?;
    let audit_rows = count(&mut conn, "audit_log").await?;
    conn.close().await.ok();
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(Report {
        file: path.to_path_buf(),
        bytes,
        migration,
        institutions,
        receptions,
        audit_rows,
    })
}

/// The fingerprint stored in a one-row key table (`audit_keying`, `key_encryption`), if the
/// table and the row exist.
async fn stored_fingerprint(conn: &mut SqliteConnection, table: &str) -> Option<String> {
    sqlx::query(&format!("SELECT key_id FROM {table} WHERE id = 1"))
        .fetch_optional(conn)
        .await
        .ok()
        .flatten()
        .and_then(|row| row.try_get("key_id").ok())
}

/// The fingerprints of the configured keys, to compare with a backup's.
#[derive(Debug, Clone, Default)]
pub struct ConfiguredKeys {
    pub audit_key: Option<String>,
    pub key_encryption_key: Option<String>,
}

/// What [`restore`] did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub report: Report,
    /// Where the database that was replaced now is (`None`: there was none).
    pub previous: Option<PathBuf>,
}

/// Restores the backup `source` as the SQLite database of `database_url` (see the module
/// comment). Refuses while another connection has the database open.
pub async fn restore(
    database_url: &str,
    source: &Path,
    keys: &ConfiguredKeys,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Restored, BackupError> {
    let target = sqlite_path(database_url)?;
    let shown = source.display().to_string();
    let report = inspect(source).await?;
    let known = super::latest_migration();
    if report.migration > known {
        return Err(BackupError::Newer {
            path: shown,
            version: report.migration,
            known,
        });
    }
    let mut conn = connect(source, true).await?;
    for (table, what, configured) in [
        ("audit_keying", "audit key", &keys.audit_key),
        (
            "key_encryption",
            "key-encryption key",
            &keys.key_encryption_key,
        ),
    ] {
        if let (Some(stored), Some(configured)) =
            (stored_fingerprint(&mut conn, table).await, configured)
            && stored != *configured
        {
            return Err(BackupError::KeyMismatch {
                path: shown,
                what,
                stored,
                configured: configured.clone(),
            });
        }
    }
    conn.close().await.ok();

    // The restored file belongs to whoever owned the database it replaces (or its folder): a
    // restore run with sudo must not leave a root-owned 0600 file the service cannot open.
    #[cfg(unix)]
    let owner = {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata(&target)
            .or_else(|_| {
                std::fs::metadata(
                    target
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new(".")),
                )
            })
            .ok()
            .map(|m| (m.uid(), m.gid()))
    };
    // Copy beside the target, then rename: the database file is whole or absent.
    let mut partial = target.as_os_str().to_owned();
    partial.push(".restoring");
    let partial = PathBuf::from(partial);
    // Made (and given the database's owner) before anything is moved aside, so a restore that
    // cannot do that stops with the database untouched.
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| BackupError::File {
            path: parent.display().to_string(),
            source,
        })?;
    }
    let made = (|| -> Result<std::fs::File, BackupError> {
        let out = create_private_new(&partial)?;
        #[cfg(unix)]
        if let Some((uid, gid)) = owner {
            use std::os::unix::fs::MetadataExt as _;
            let mine = out.metadata().map(|m| (m.uid(), m.gid())).ok();
            if mine != Some((uid, gid)) {
                std::os::unix::fs::fchown(&out, Some(uid), Some(gid)).map_err(|e| {
                    BackupError::File {
                        path: format!(
                            "{} (to owner {uid}:{gid}, the database's; run restore as that \
                         user or as root)",
                            partial.display()
                        ),
                        source: e,
                    }
                })?;
            }
        }
        Ok(out)
    })();
    let mut out = match made {
        Ok(out) => out,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    let previous = async {
        if target.exists() {
            ensure_unused(&target).await?;
            let stamp = now.format("%Y%m%dT%H%M%SZ");
            let mut moved = None;
            for path in super::companions(&target) {
                if !path.exists() {
                    continue;
                }
                let mut aside = path.as_os_str().to_owned();
                aside.push(format!(".before-restore-{stamp}"));
                let aside = PathBuf::from(aside);
                if aside.exists() {
                    return Err(BackupError::Exists(aside.display().to_string()));
                }
                std::fs::rename(&path, &aside).map_err(|source| BackupError::File {
                    path: path.display().to_string(),
                    source,
                })?;
                moved.get_or_insert(aside);
            }
            Ok(moved)
        } else {
            Ok(None)
        }
    }
    .await;
    let previous = match previous {
        Ok(previous) => previous,
        Err(error) => {
            drop(out);
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    let copied = (|| {
        let mut input = std::fs::File::open(source).map_err(|e| BackupError::File {
            path: shown.clone(),
            source: e,
        })?;
        let file_error = |e| BackupError::File {
            path: partial.display().to_string(),
            source: e,
        };
        std::io::copy(&mut input, &mut out).map_err(file_error)?;
        out.sync_all().map_err(file_error)?;
        std::fs::rename(&partial, &target).map_err(file_error)
    })();
    if copied.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    copied?;
    Ok(Restored {
        report: Report {
            file: target,
            ..report
        },
        previous,
    })
}

/// Fails when another connection (a running server) has the database open: in WAL mode every
/// open connection holds a shared lock, so an exclusive lock is refused at once.
async fn ensure_unused(path: &Path) -> Result<(), BackupError> {
    let in_use = || BackupError::InUse(path.display().to_string());
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(std::time::Duration::ZERO)
        .locking_mode(sqlx::sqlite::SqliteLockingMode::Exclusive)
        .connect()
        .await
        .map_err(|_| in_use())?;
    let locked = sqlx::query("BEGIN EXCLUSIVE").execute(&mut conn).await;
    if locked.is_err() {
        conn.close().await.ok();
        return Err(in_use());
    }
    sqlx::query("COMMIT")
        .execute(&mut conn)
        .await
        .map_err(|_| in_use())?;
    // Closing the last connection folds the write-ahead log into the file.
    conn.close().await.map_err(|source| BackupError::Sqlite {
        path: path.display().to_string(),
        source,
    })
}

/// The words for PostgreSQL: this command does not run `pg_dump` itself (the clinic's database
/// administrator chooses where dumps go and who may read them).
pub fn postgres_help(command: &str) -> String {
    match command {
        "backup" => "The database is PostgreSQL: back it up with pg_dump while the server runs, \
                     e.g.\n  pg_dump --format=custom --no-owner --file=uketsuke-$(date +%F).dump \
                     \"$UKETSUKE_DATABASE_URL\"\n(make the file readable by you only: umask 077). \
                     Keep audit_key_file and key_encryption_key_file apart from the dumps."
            .to_owned(),
        _ => "The database is PostgreSQL: stop the server, then restore a pg_dump file into an \
              empty database, e.g.\n  createdb uketsuke_restored\n  pg_restore --no-owner \
              --exit-on-error --dbname=uketsuke_restored uketsuke-2026-12-01.dump\npoint \
              database_url at it, start the server with the same audit_key_file and \
              key_encryption_key_file, and run `uketsuke-server audit verify`."
            .to_owned(),
    }
}

/// `uketsuke-server backup FILE` and `uketsuke-server restore FILE`.
pub async fn run(command: &str, args: &[String]) -> ExitCode {
    let [file] = args else {
        eprintln!("usage: uketsuke-server {command} FILE");
        return ExitCode::from(2);
    };
    let config = match crate::config::Config::from_process() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    if !config.database_url.starts_with("sqlite:") {
        println!("{}", postgres_help(command));
        return ExitCode::from(2);
    }
    let file = PathBuf::from(file);
    let database = sqlite_path(&config.database_url)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| config.database_url.clone());
    eprintln!("database: {database}");
    let describe = |r: &Report| {
        format!(
            "{} ({} bytes, migration {}): {} institutions, {} receptions, {} audit rows",
            r.file.display(),
            r.bytes,
            r.migration,
            r.institutions,
            r.receptions,
            r.audit_rows
        )
    };
    if command == "backup" {
        return match backup(&config.database_url, &file).await {
            Ok(report) => {
                println!("backed up to {}", describe(&report));
                println!(
                    "Keep audit_key_file and key_encryption_key_file apart from the backups: \
                     a restore needs both."
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("uketsuke: backup failed: {error}");
                ExitCode::from(1)
            }
        };
    }
    let fingerprint_of_audit = crate::console::audit::AuditKey::load(&config.audit_key_file, false)
        .ok()
        .map(|k| k.id().to_owned());
    let fingerprint_of_kek =
        super::sealing::KeyEncryptionKey::load(&config.keeping.key_encryption_key_file, false)
            .ok()
            .map(|k| k.id().to_owned());
    let keys = ConfiguredKeys {
        audit_key: fingerprint_of_audit,
        key_encryption_key: fingerprint_of_kek,
    };
    match restore(&config.database_url, &file, &keys, chrono::Utc::now()).await {
        Ok(done) => {
            println!("restored {}", describe(&done.report));
            if let Some(previous) = &done.previous {
                println!("the database it replaced is kept as {}", previous.display());
            }
            if done.report.migration < super::latest_migration() {
                println!(
                    "the backup is from an older version: the next start migrates it to \
                     migration {}",
                    super::latest_migration()
                );
            }
            println!("Start the server, then run `uketsuke-server audit verify`.");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("uketsuke: restore failed: {error}");
            ExitCode::from(1)
        }
    }
}
