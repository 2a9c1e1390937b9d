//! PostgreSQL over TLS: the server's own `storage::open` reaches the throw-away cluster that
//! `scripts/test.sh` starts with TLS on (`scripts/pg-cluster.sh start DIR --ssl`; its CA in
//! `UKETSUKE_TEST_POSTGRES_CA`) with `sslmode=require` and with `sslmode=verify-full` and that
//! CA as `sslrootcert`, and the connection is encrypted; `verify-full` against another CA is
//! refused.

mod common;

use std::path::PathBuf;

use sqlx::Row;
use uketsuke_server::{config::Config, storage};

const URL_ENV: &str = "UKETSUKE_TEST_POSTGRES_URL";
const CA_ENV: &str = "UKETSUKE_TEST_POSTGRES_CA";

/// The cluster's URL and CA, or `None` (a skip outside CI) when the run has no TLS cluster.
fn cluster() -> Option<(String, PathBuf)> {
    match (std::env::var(URL_ENV), std::env::var(CA_ENV)) {
        (Ok(url), Ok(ca)) => Some((url, PathBuf::from(ca))),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{URL_ENV} and {CA_ENV} must be set in CI (scripts/test.sh sets both)")
        }
        _ => {
            eprintln!("note: {URL_ENV}/{CA_ENV} not set, PostgreSQL TLS test skipped");
            None
        }
    }
}

/// A fresh database on the cluster; its URL.
async fn fresh_database(admin_url: &str) -> url::Url {
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(admin_url)
        .await
        .expect("cluster reachable");
    let name = format!("uk_tls_{}", rand::random::<u32>());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create database");
    admin.close().await;
    let mut url = url::Url::parse(admin_url).expect("URL");
    url.set_path(&name);
    url
}

/// Whether this connection of `db` is encrypted (PostgreSQL's own view).
async fn encrypted(db: &storage::Db) -> bool {
    sqlx::query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(db)
        .await
        .expect("pg_stat_ssl")
        .try_get::<bool, _>(0)
        .expect("ssl column")
}

#[tokio::test]
async fn require_and_verify_full_connect_encrypted_and_a_foreign_ca_is_refused() {
    let Some((admin, ca)) = cluster() else {
        return;
    };
    let base = fresh_database(&admin).await;
    let ca = ca.display().to_string();
    let with = |host: &str, query: &str| {
        let mut url = base.clone();
        url.set_host(Some(host)).expect("host");
        url.set_query(Some(query));
        url.to_string()
    };

    // sslmode=require: encrypted, the certificate not checked.
    let require = with("127.0.0.1", "sslmode=require");
    let db = storage::open(&require)
        .await
        .expect("sslmode=require opens");
    assert!(encrypted(&db).await, "sslmode=require is encrypted");
    db.close().await;

    // verify-full with the cluster's CA, by address and by name; the configuration takes it.
    for host in ["127.0.0.1", "localhost"] {
        let url = with(host, &format!("sslmode=verify-full&sslrootcert={ca}"));
        let config = Config::from_sources(
            None,
            &[
                ("UKETSUKE_MODE".to_owned(), "demo".to_owned()),
                ("UKETSUKE_DATABASE_URL".to_owned(), url.clone()),
            ],
        )
        .expect("the configuration takes a TLS URL");
        let db = storage::open(&config.database_url)
            .await
            .unwrap_or_else(|e| panic!("verify-full to {host}: {e}"));
        assert!(encrypted(&db).await, "{host}");
        db.close().await;
    }

    // On the same machine, the Unix socket (the cluster's socket folder is beside its CA):
    // no TLS needed, the host a percent-encoded folder, as the README shows.
    let socket_dir = std::path::Path::new(&ca)
        .parent()
        .expect("cluster folder")
        .display()
        .to_string();
    let encoded: String = url::form_urlencoded::byte_serialize(socket_dir.as_bytes()).collect();
    let socket_url = format!(
        "postgres://postgres@{encoded}:{}{}",
        base.port().expect("port"),
        base.path()
    );
    let db = storage::open(&socket_url)
        .await
        .unwrap_or_else(|e| panic!("{socket_url}: {e}"));
    assert!(!encrypted(&db).await, "a socket connection is not TLS");
    db.close().await;

    // verify-full with a CA that did not sign the server's certificate: refused.
    let dir = tempfile::tempdir().expect("temp dir");
    let other = common::tls::Ca::new(dir.path(), "other");
    let url = with(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", other.cert.display()),
    );
    let refused = storage::open(&url).await;
    let message = match refused {
        Ok(_) => panic!("a certificate of another CA was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        message.to_ascii_lowercase().contains("certificate"),
        "{message}"
    );
}
