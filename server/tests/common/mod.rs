//! Test databases on every engine the server supports: a fresh SQLite file always, and a fresh
//! database in the PostgreSQL cluster that `scripts/test.sh` starts (its URL in
//! `UKETSUKE_TEST_POSTGRES_URL`). In CI a missing cluster is an error, not a skip.

#![allow(dead_code)]

pub mod console;
pub mod patient;
pub mod stack;
pub mod tls;

use rand::RngCore;

pub struct TestDb {
    pub engine: &'static str,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

const POSTGRES_ENV: &str = "UKETSUKE_TEST_POSTGRES_URL";

pub async fn engines() -> Vec<TestDb> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut dbs = vec![TestDb {
        engine: "sqlite",
        url: format!("sqlite://{}/test.db", dir.path().display()),
        _dir: Some(dir),
    }];
    match std::env::var(POSTGRES_ENV) {
        Ok(admin_url) => dbs.push(fresh_postgres(&admin_url).await),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!(
                "{POSTGRES_ENV} is not set: CI must run the PostgreSQL tests (scripts/test.sh starts a cluster)"
            )
        }
        Err(_) => eprintln!(
            "note: {POSTGRES_ENV} not set, PostgreSQL tests skipped (scripts/test.sh sets it)"
        ),
    }
    dbs
}

/// A database of its own for one test, so tests can run in parallel on one cluster.
async fn fresh_postgres(admin_url: &str) -> TestDb {
    sqlx::any::install_default_drivers();
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    let name = format!("uk_test_{}", u64::from_le_bytes(bytes));
    let admin = sqlx::AnyPool::connect(admin_url)
        .await
        .expect("PostgreSQL cluster reachable");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    let mut url = url::Url::parse(admin_url).expect("PostgreSQL URL");
    url.set_path(&name);
    TestDb {
        engine: "postgres",
        url: url.to_string(),
        _dir: None,
    }
}
