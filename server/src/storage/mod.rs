//! Storage: one connection pool over SQLite (the embedded default) through sqlx's `Any` driver,
//! so the same portable SQL will serve PostgreSQL too. Migrations are plain SQL files in
//! `server/migrations/`, embedded in the binary and applied at start-up.

pub mod challenges;
pub mod ids;
pub mod institutions;
pub mod links;
pub mod outbox;
pub mod receptions;
pub mod seed;
pub mod tokens;

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    AnyPool, Executor,
    any::{AnyPoolOptions, install_default_drivers},
    sqlite::SqliteConnectOptions,
};

pub type Db = AnyPool;

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
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Opens (creating if missing) the database, sets SQLite up for concurrent use, and migrates it.
pub async fn open(database_url: &str) -> Result<Db, StorageError> {
    install_default_drivers();
    if database_url.starts_with("sqlite:") {
        ensure_sqlite_folder(database_url)?;
    }
    let pool = AnyPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
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
    MIGRATOR.run(&pool).await?;
    Ok(pool)
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
