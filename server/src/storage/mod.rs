//! Storage: one connection pool over SQLite (the embedded default) through sqlx's `Any` driver,
//! so the same portable SQL will serve PostgreSQL too. Migrations are plain SQL files in
//! `server/migrations/`, embedded in the binary and applied at start-up.
//!
//! The SQLite file holds patients' data and the audit log: it is readable by the server's user
//! only (mode 0600, and so are its `-wal` and `-shm` files).
//!
//! A database migrated by a newer build is refused before anything is applied
//! ([`StorageError::NewerDatabase`]); `backup` copies and restores SQLite files; `sealing` keeps
//! institutions' signing keys encrypted under a key outside the database.

pub mod backup;
pub mod challenges;
pub mod idempotency;
pub mod ids;
pub mod institutions;
pub mod insurance_use;
pub mod links;
pub mod outbox;
pub mod receptions;
pub mod sealing;
pub mod seed;
pub mod tokens;

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    AnyPool, Executor,
    any::{AnyPoolOptions, install_default_drivers},
    sqlite::SqliteConnectOptions,
};

pub type Db = AnyPool;

/// A transaction on the pool, as [`begin`] gives it.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Begins a transaction. On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken at the
/// start, waiting up to the busy timeout. A deferred transaction (sqlx's plain `BEGIN`) that
/// reads and then writes fails at once with `SQLITE_BUSY` when another connection committed in
/// between, since its read snapshot cannot become a write; the busy timeout does not apply to
/// that, so every read-then-write (a check before an insert, the relay's claim) could fail
/// under concurrent writers. PostgreSQL locks rows as it goes: a plain `BEGIN`.
///
/// Every transaction of the server begins here; `crate::storage::begin(&db)` is not used.
pub async fn begin(db: &Db) -> Result<Tx, sqlx::Error> {
    if is_sqlite(db) {
        db.begin_with("BEGIN IMMEDIATE").await
    } else {
        db.begin().await
    }
}

/// This process's turn to write to a SQLite database, held until dropped; `None` on PostgreSQL,
/// which locks rows, not the database.
///
/// SQLite lets one connection write at a time. A connection that finds another writing waits
/// in SQLite's busy handler, which sleeps 1, 2, 5, 10… ms between looks whatever the other
/// writer does: under a steady stream of small writes most of a writer's time went to those
/// sleeps (about 600 a second at the load example's maximum rate), not to writing. The frequent
/// writes of a reception and of the relay take this turn first and queue here instead, each
/// woken as soon as the one before is done; writes that do not (rare ones, other processes) are
/// still serialised by SQLite itself, as before.
///
/// Take it before the write it covers (before [`begin`] for a transaction, whose end it must
/// outlast), and never while holding it again: it is not re-entrant.
pub async fn write_turn(db: &Db) -> Option<tokio::sync::OwnedMutexGuard<()>> {
    if !is_sqlite(db) {
        return None;
    }
    let url = db.connect_options().database_url.as_str().to_owned();
    let turn = TURNS
        .lock()
        .ok()
        .map(|mut turns| turns.entry(url).or_default().clone())?;
    Some(turn.lock_owned().await)
}

/// One write turn per SQLite database this process opened (by URL; a few bytes each).
static TURNS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
> = std::sync::LazyLock::new(Default::default);

/// The pool is a SQLite database.
pub fn is_sqlite(db: &Db) -> bool {
    db.connect_options().database_url.scheme() == "sqlite"
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create the database folder {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Connect(sqlx::Error),
    #[error("cannot apply database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error(
        "this database was migrated by a newer Uketsuke (migration {version}: {description}); \
         this one knows migrations up to {known}: install that version or newer (or restore a \
         backup made before the upgrade)"
    )]
    NewerDatabase {
        version: i64,
        description: String,
        known: i64,
    },
    #[error("cannot create the database file {path} readable by this user only: {source}")]
    Permissions {
        path: String,
        source: std::io::Error,
    },
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Opens (creating if missing) the database, sets SQLite up for concurrent use, and migrates it.
pub async fn open(database_url: &str) -> Result<Db, StorageError> {
    install_default_drivers();
    let sqlite_file = if database_url.starts_with("sqlite:") {
        ensure_sqlite_folder(database_url)?;
        sqlite_file(database_url)?
    } else {
        None
    };
    if let Some(file) = &sqlite_file {
        create_private(file)?;
    }
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        // One connection always open: `restore` tells a running server by its lock on the
        // SQLite file, even after a quiet spell.
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        // sqlx pings a pooled connection before handing it out, to find one a network or a
        // database restart broke. A SQLite connection is a file handle in this process with
        // nothing between to break; the ping was a round trip to its worker thread on every
        // statement (about 6 % of the process's CPU at the load example's maximum rate).
        // PostgreSQL connections keep it.
        .test_before_acquire(!database_url.starts_with("sqlite:"))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                if conn.backend_name() == "SQLite" {
                    // WAL lets readers work while one writer commits; the busy timeout turns
                    // a brief lock into a short wait instead of an error.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                }
                Ok(())
            })
        })
        .connect(&with_create_mode(database_url))
        .await
        .map_err(StorageError::Connect)?;
    if let Some(file) = &sqlite_file {
        // SQLite gives the -wal and -shm files the database file's permissions; a database
        // made before this rule (or copied in) is tightened here, with its companions.
        for path in companions(file) {
            make_private(&path)?;
        }
    }
    check_not_newer(&pool).await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// The latest migration this build knows.
pub fn latest_migration() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The latest migration applied to the database (version, description); `None` for a database
/// never migrated.
pub async fn applied_migration(db: &Db) -> Result<Option<(i64, String)>, StorageError> {
    // A database never migrated has no bookkeeping table: its absence is not an error.
    let Ok(row) = sqlx::query(
        "SELECT version, description FROM _sqlx_migrations ORDER BY version DESC LIMIT 1",
    )
    .fetch_optional(db)
    .await
    else {
        return Ok(None);
    };
    Ok(match row {
        Some(row) => Some((
            sqlx::Row::try_get(&row, "version")?,
            sqlx::Row::try_get(&row, "description")?,
        )),
        None => None,
    })
}

/// Refuses a database that a newer build has migrated, naming the migration, before sqlx would
/// refuse it with "migration N was previously applied but is missing in the resolved
/// migrations".
async fn check_not_newer(db: &Db) -> Result<(), StorageError> {
    let known = latest_migration();
    match applied_migration(db).await? {
        Some((version, description)) if version > known => Err(StorageError::NewerDatabase {
            version,
            description,
            known,
        }),
        _ => Ok(()),
    }
}

/// The database file a `sqlite:` URL names, unless it is an in-memory database.
fn sqlite_file(database_url: &str) -> Result<Option<std::path::PathBuf>, StorageError> {
    if database_url.contains("mode=memory") {
        return Ok(None);
    }
    let options = SqliteConnectOptions::from_str(database_url).map_err(StorageError::Connect)?;
    let file = options.get_filename();
    let name = file.as_os_str();
    if name.is_empty() || name == ":memory:" {
        return Ok(None);
    }
    Ok(Some(file.to_path_buf()))
}

/// The database file and the `-wal` and `-shm` files beside it.
fn companions(file: &Path) -> Vec<std::path::PathBuf> {
    let mut paths = vec![file.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        paths.push(name.into());
    }
    paths
}

/// Creates the database file, empty and with mode 0600, before SQLite opens it: SQLite would
/// create it with 0644 less the umask, readable by every user of the machine. An existing file
/// is left as it is here (see `make_private`).
fn create_private(file: &Path) -> Result<(), StorageError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StorageError::Permissions {
            path: file.display().to_string(),
            source,
        }),
    }
}

/// Takes group and other permissions away from `path` if it exists and has any.
fn make_private(path: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let error = |source| StorageError::Permissions {
            path: path.display().to_string(),
            source,
        };
        let metadata = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(error(e)),
        };
        let mode = metadata.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                mode = format!("{:o}", mode & 0o777),
                "database file readable by other users: setting it to 0600"
            );
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(error)?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Whether the database `database_url` names holds no Uketsuke data yet: a SQLite file that
/// does not exist (or is empty), or a database without the migrations table. Creates nothing:
/// the command line and a production start refuse such a database unless asked to create it
/// (`--create`), so that a mistyped `database_url` is not quietly a fresh, empty database.
pub async fn is_new(database_url: &str) -> Result<bool, StorageError> {
    install_default_drivers();
    if database_url.starts_with("sqlite:") {
        let Some(file) = sqlite_file(database_url)? else {
            return Ok(true);
        };
        match std::fs::metadata(&file) {
            Ok(meta) if meta.len() == 0 => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(source) => {
                return Err(StorageError::Permissions {
                    path: file.display().to_string(),
                    source,
                });
            }
        }
        let options = SqliteConnectOptions::new().filename(&file).read_only(true);
        let mut conn = sqlx::ConnectOptions::connect(&options)
            .await
            .map_err(StorageError::Connect)?;
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&mut conn)
        .await?;
        let n: i64 = sqlx::Row::try_get(&row, "n")?;
        let _ = sqlx::Connection::close(conn).await;
        return Ok(n == 0);
    }
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(database_url)
        .await
        .map_err(StorageError::Connect)?;
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
    )
    .fetch_one(&pool)
    .await?;
    let n: i64 = sqlx::Row::try_get(&row, "n")?;
    pool.close().await;
    Ok(n == 0)
}

/// The database kind a URL names (`sqlite` or `postgres`), for reports that must not show it.
pub fn kind(database_url: &str) -> &'static str {
    if database_url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    }
}

/// A database URL fit to print: the password of a PostgreSQL URL replaced by `***`.
pub fn redacted_url(database_url: &str) -> String {
    match url::Url::parse(database_url) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => database_url.to_owned(),
    }
}

/// `SELECT 1`, for the readiness probe.
pub async fn ping(db: &Db) -> Result<(), StorageError> {
    sqlx::query("SELECT 1").execute(db).await?;
    Ok(())
}

/// SQLite creates the file but not its folder: make `./data/` (or whatever the URL names).
fn ensure_sqlite_folder(database_url: &str) -> Result<(), StorageError> {
    let options = SqliteConnectOptions::from_str(database_url).map_err(StorageError::Connect)?;
    let file = options.get_filename();
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty())
        && !Path::new(parent).exists()
    {
        std::fs::create_dir_all(parent).map_err(|source| StorageError::Folder {
            path: parent.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// Asks SQLite to create the file if it is missing, unless the URL already says otherwise.
fn with_create_mode(database_url: &str) -> String {
    if !database_url.starts_with("sqlite:") || database_url.contains("mode=") {
        return database_url.to_owned();
    }
    let sep = if database_url.contains('?') { '&' } else { '?' };
    format!("{database_url}{sep}mode=rwc")
}

/// Milliseconds since the Unix epoch, the form instants take in the database.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_mode_is_added_once() {
        assert_eq!(
            with_create_mode("sqlite://data/a.db"),
            "sqlite://data/a.db?mode=rwc"
        );
        assert_eq!(
            with_create_mode("sqlite://a.db?mode=ro"),
            "sqlite://a.db?mode=ro"
        );
        assert_eq!(
            with_create_mode("sqlite://a.db?cache=shared"),
            "sqlite://a.db?cache=shared&mode=rwc"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_database_and_its_companions_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("private.db");
        let db = open(&format!("sqlite://{}", file.display()))
            .await
            .expect("opens");
        ping(&db).await.expect("pings");
        let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        for path in companions(&file) {
            assert!(path.exists(), "{} exists (WAL mode)", path.display());
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
        // A database left readable by others (made before this rule) is tightened on open.
        drop(db);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let db = open(&format!("sqlite://{}", file.display()))
            .await
            .expect("reopens");
        ping(&db).await.expect("pings");
        assert_eq!(mode(&file), 0o600);
    }

    /// The failure [`begin`] exists for: a transaction reads, another connection commits a
    /// write, the first then writes. Deferred, the write fails at once; immediate, it waits for
    /// the other writer and succeeds.
    #[tokio::test]
    async fn a_read_then_write_transaction_survives_a_concurrent_commit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = open(&format!("sqlite://{}/db.sqlite", dir.path().display()))
            .await
            .expect("opens");
        assert!(is_sqlite(&db));
        sqlx::query("CREATE TABLE t (n INTEGER)")
            .execute(&db)
            .await
            .expect("table");
        let race = |immediate: bool| {
            let db = db.clone();
            async move {
                let mut first = if immediate {
                    begin(&db).await?
                } else {
                    db.begin().await?
                };
                sqlx::query("SELECT COUNT(*) AS n FROM t")
                    .fetch_one(&mut *first)
                    .await?;
                let other = {
                    let db = db.clone();
                    tokio::spawn(async move {
                        let mut tx = begin(&db).await?;
                        sqlx::query("INSERT INTO t (n) VALUES (2)")
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await
                    })
                };
                // Let the other writer reach the database first.
                tokio::time::sleep(Duration::from_millis(200)).await;
                sqlx::query("INSERT INTO t (n) VALUES (1)")
                    .execute(&mut *first)
                    .await?;
                first.commit().await?;
                other
                    .await
                    .map_err(|e| sqlx::Error::Protocol(e.to_string()))?
            }
        };
        assert!(race(false).await.is_err(), "a deferred transaction fails");
        race(true)
            .await
            .expect("an immediate transaction waits and succeeds");
    }

    #[tokio::test]
    async fn opens_a_fresh_file_in_a_new_folder_with_wal() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}/nested/db.sqlite", dir.path().display());
        let db = open(&url).await.expect("opens");
        ping(&db).await.expect("pings");
        let row: (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&db)
            .await
            .expect("journal mode");
        assert_eq!(row.0.to_lowercase(), "wal");
        // Opening again keeps the data and does not re-run migrations.
        drop(db);
        let db = open(&url).await.expect("reopens");
        ping(&db).await.expect("pings again");
    }
}
