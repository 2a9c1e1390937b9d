//! Keeping data (issue 17): backup and restore of a running SQLite database, the refusal of a
//! database migrated by a newer version, institutions' signing keys sealed at rest, and the
//! retention sweep (receptions, cancel tokens, audit rows with a verifiable anchor).

mod common;

use std::path::Path;

use sqlx::Row;
use tokio::sync::oneshot;
use uketsuke_backend::simulator::{self, SimOptions};
use uketsuke_server::{
    AppState, Background, Options, Server,
    config::Config,
    console::audit,
    storage::{self, Db, backup, ids::new_id},
    sweeper::{self, Retention},
};

use common::patient::{Patient, register};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// A running demo server on `url` that can be stopped.
struct Running {
    base: String,
    links: Vec<(String, String)>,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    fn link(&self, kind: &str) -> String {
        self.links
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, id)| id.clone())
            .expect("demo link")
    }

    /// Stops serving and closes every database connection (the relay and sweeper included).
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.served.await;
        self.state.db.close().await;
    }
}

fn demo_env(url: &str, backend: &str, dir: &Path) -> Vec<(String, String)> {
    [
        ("UKETSUKE_LISTEN", "127.0.0.1:0".to_owned()),
        ("UKETSUKE_MODE", "demo".to_owned()),
        ("UKETSUKE_DATABASE_URL", url.to_owned()),
        ("UKETSUKE_BACKEND", backend.to_owned()),
        ("UKETSUKE_RATE_LIMITS", "off".to_owned()),
        ("UKETSUKE_SITE_ROOT", dir.join("site").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn start(env: &[(String, String)], background: Background) -> Result<Running, String> {
    let config = Config::from_sources(None, env).map_err(|e| e.to_string())?;
    let server = Server::build_with(
        config,
        Options {
            background,
            ..Options::default()
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let base = server.base_url();
    let links = server
        .demo_links()
        .iter()
        .map(|l| (l.kind.code().to_owned(), l.id.clone()))
        .collect();
    let state = server.state().clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Ok(Running {
        base,
        links,
        state,
        stop: Some(stop),
        served,
    })
}

async fn simulator(dir: &Path) -> simulator::Running {
    simulator::spawn_with(
        "127.0.0.1:0".parse().expect("addr"),
        SimOptions {
            database_path: Some(dir.join("sim.db").display().to_string()),
            ..Default::default()
        },
    )
    .await
    .expect("simulator starts")
}

/// One confirmed reception through the whole flow; returns its id.
async fn one_reception(server: &Running, no: u32) -> String {
    let patient = Patient::new(&server.base);
    let origin = server.state.config.origin_string();
    let today = uketsuke_domain::window::jst_date(server.state.clock.now());
    let link = server.link("separate_route");
    let accepted = register(&patient, &link, "separate_route", no, &origin, today).await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let settled = patient.settled(200).await;
    assert_eq!(settled.body["status"], "confirmed", "{:?}", settled.body);
    accepted.body["reception_id"]
        .as_str()
        .expect("reception id")
        .to_owned()
}

async fn reception_ids(db: &Db) -> Vec<String> {
    sqlx::query_scalar("SELECT id FROM receptions ORDER BY id")
        .fetch_all(db)
        .await
        .expect("receptions")
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("file").permissions().mode() & 0o777
}

#[tokio::test]
async fn a_backup_of_a_running_database_restores_with_its_receptions_and_audit_chain() {
    let dir = tempfile::tempdir().expect("dir");
    let sim = simulator(dir.path()).await;
    let db_file = dir.path().join("data/uketsuke.db");
    let url = format!("sqlite://{}", db_file.display());
    let env = demo_env(&url, &sim.base_url(), dir.path());
    let server = start(&env, Background::Run).await.expect("starts");
    let kept = one_reception(&server, 1).await;

    // The backup is taken while the server serves (its pool holds the database open).
    let file = dir.path().join("backups/uketsuke-1.db");
    std::fs::create_dir_all(file.parent().expect("parent")).expect("backups folder");
    let report = backup::backup(&url, &file).await.expect("backup");
    assert_eq!(report.receptions, 1);
    assert!(report.audit_rows >= 1, "{report:?}");
    assert_eq!(report.migration, storage::latest_migration());
    #[cfg(unix)]
    assert_eq!(
        mode(&file),
        0o600,
        "the backup is readable by its owner only"
    );
    // Never overwritten, not even with an identical copy.
    let before = std::fs::read(&file).expect("backup bytes");
    let again = backup::backup(&url, &file).await.expect_err("exists");
    assert!(matches!(again, backup::BackupError::Exists(_)), "{again}");
    assert_eq!(std::fs::read(&file).expect("backup bytes"), before);

    // A restore while the server runs is refused, and changes nothing.
    let keys = backup::ConfiguredKeys::default();
    let refused = backup::restore(&url, &file, &keys, chrono::Utc::now())
        .await
        .expect_err("in use");
    assert!(
        matches!(refused, backup::BackupError::InUse(_)),
        "{refused}"
    );

    // Work after the backup, which the restore takes back.
    let lost = one_reception(&server, 2).await;
    assert_eq!(reception_ids(&server.state.db).await.len(), 2);
    server.stop().await;

    // The keys the configuration names must be those of the backup.
    let wrong = backup::ConfiguredKeys {
        audit_key: Some("0000000000000000".to_owned()),
        key_encryption_key: None,
    };
    let mismatch = backup::restore(&url, &file, &wrong, chrono::Utc::now())
        .await
        .expect_err("another audit key");
    assert!(mismatch.to_string().contains("audit key"), "{mismatch}");
    // The database belongs to the service's user; the restore is run by another (root here,
    // when the tests run as root): the restored file goes to the database's owner.
    #[cfg(unix)]
    let owner = {
        use std::os::unix::fs::MetadataExt as _;
        let me = std::fs::metadata(&file).expect("backup").uid();
        if me == 0 {
            std::os::unix::fs::chown(&db_file, Some(65534), Some(65534)).expect("chown");
        }
        let m = std::fs::metadata(&db_file).expect("database");
        (m.uid(), m.gid())
    };
    let restored = backup::restore(&url, &file, &keys, chrono::Utc::now())
        .await
        .expect("restores");
    let previous = restored.previous.expect("the replaced database is kept");
    assert!(previous.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        assert_eq!(mode(&db_file), 0o600);
        let m = std::fs::metadata(&db_file).expect("restored");
        assert_eq!((m.uid(), m.gid()), owner, "the database's owner keeps it");
        if owner.0 != 0 {
            // Back to this user, so the server below (running as this user) opens it.
            let me = std::fs::metadata(&file).expect("backup");
            std::os::unix::fs::chown(&db_file, Some(me.uid()), Some(me.gid())).expect("chown");
        }
    }

    // The restored database serves: the reception of before the backup is there, the later one
    // is not, the audit chain verifies and the relay signs with the institution's key.
    let server = start(&env, Background::Run).await.expect("starts again");
    let ids = reception_ids(&server.state.db).await;
    assert_eq!(ids, vec![kept.clone()]);
    assert!(!ids.contains(&lost));
    let checked = audit::verify(&server.state.db, None)
        .await
        .expect("verify runs")
        .expect("the audit chain verifies");
    assert!(!checked.is_empty());
    let third = one_reception(&server, 3).await;
    assert_ne!(third, kept);
    server.stop().await;

    // The replaced database is whole: it still holds both receptions.
    let old = storage::open(&format!("sqlite://{}", previous.display()))
        .await
        .expect("the kept database opens");
    assert_eq!(reception_ids(&old).await.len(), 2);
}

#[tokio::test]
async fn an_older_binary_names_the_newer_migration_instead_of_failing_obscurely() {
    for engine in common::engines().await {
        let db = storage::open(&engine.url).await.expect("opens");
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES (9999, 'from the future', TRUE, $1, 0)",
        )
        .bind(vec![0u8; 48])
        .execute(&db)
        .await
        .expect("a future migration row");
        db.close().await;
        let error = storage::open(&engine.url)
            .await
            .expect_err("a newer database is refused")
            .to_string();
        assert!(
            error.contains(
                "this database was migrated by a newer Uketsuke (migration 9999: from the future)"
            ),
            "{}: {error}",
            engine.engine
        );
        assert!(error.contains("install that version or newer"), "{error}");
        // The binary says the same in one line and stops, on SQLite as an operator would meet it.
        if engine.engine == "sqlite" {
            // A built site, so that start-up gets as far as the database.
            let site = tempfile::tempdir().expect("site");
            for file in uketsuke_server::config::SITE_FILES {
                let path = site.path().join(file);
                std::fs::create_dir_all(path.parent().expect("parent")).expect("pkg");
                std::fs::write(path, b"").expect("site file");
            }
            let out = std::process::Command::new(BIN)
                .env_clear()
                .env("UKETSUKE_SITE_ROOT", site.path())
                .env("UKETSUKE_MODE", "demo")
                .env("UKETSUKE_LISTEN", "127.0.0.1:0")
                .env("UKETSUKE_DATABASE_URL", &engine.url)
                .output()
                .expect("runs");
            assert_eq!(out.status.code(), Some(1));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains(
                    "cannot start: this database was migrated by a newer Uketsuke (migration 9999"
                ),
                "{stderr}"
            );
        }
    }
}

/// A key stored in the clear, as versions before migration 0012 did.
async fn plain_key_institution(db: &Db, code: &str) -> (String, p256::ecdsa::SigningKey) {
    let id = new_id();
    let key = storage::institutions::generate_key();
    let secret = uketsuke_backend::contract::b64_encode(&key.to_bytes());
    sqlx::query(
        "INSERT INTO institutions (id, code, name_ja, name_en, created_at, key_id, signing_key) \
         VALUES ($1, $2, '旧版クリニック', 'Old Clinic', 0, 'uk-old-1', $3)",
    )
    .bind(&id)
    .bind(code)
    .bind(&secret)
    .execute(db)
    .await
    .expect("institution with a plain key");
    (secret, key)
}

#[tokio::test]
async fn signing_keys_stored_in_the_clear_are_sealed_at_start_and_nothing_is_lost() {
    for engine in common::engines().await {
        let dir = tempfile::tempdir().expect("dir");
        let env = demo_env(&engine.url, "simulator", dir.path());
        let db = storage::open(&engine.url).await.expect("opens");
        let (secret, key) = plain_key_institution(&db, "1310000017").await;
        db.close().await;

        let server = start(&env, Background::Off).await.expect("starts");
        let db = server.state.db.clone();
        let row = sqlx::query(
            "SELECT id, signing_key, signing_key_sealed FROM institutions WHERE code = $1",
        )
        .bind("1310000017")
        .fetch_one(&db)
        .await
        .expect("row");
        let id: String = row.get("id");
        assert_eq!(row.get::<Option<String>, _>("signing_key"), None);
        let sealed: String = row.get("signing_key_sealed");
        assert!(sealed.starts_with("v1.") && !sealed.contains(&secret));
        // The relay signs with the same key as before.
        let identity = storage::institutions::signer(&db, &id)
            .await
            .expect("reads")
            .expect("the key opens");
        assert_eq!(
            identity.signer.verifying_key(),
            *key.verifying_key(),
            "{}",
            engine.engine
        );
        // Audited, and the chain verifies.
        let audited: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE institution_id = $1 \
             AND action = 'institution.key_sealed' AND target = 'uk-old-1'",
        )
        .bind(&id)
        .fetch_one(&db)
        .await
        .expect("audit");
        assert_eq!(audited, 1);
        audit::verify(&db, None)
            .await
            .expect("verify")
            .expect("chain verifies");
        // No rows and no pages of the SQLite file hold the clear key any more.
        if engine.engine == "sqlite" {
            let file = backup::sqlite_path(&engine.url).expect("path");
            for path in [file.clone(), format!("{}-wal", file.display()).into()] {
                if let Ok(bytes) = std::fs::read(&path) {
                    assert!(
                        !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                        "{} holds the clear key",
                        path.display()
                    );
                }
            }
        }
        server.stop().await;

        // Another key-encryption key is refused at start, naming the setting.
        let other = dir.path().join("other.key");
        std::fs::write(&other, [9u8; 32]).expect("other key");
        let mut env = env.clone();
        env.push((
            "UKETSUKE_KEY_ENCRYPTION_KEY_FILE".to_owned(),
            other.display().to_string(),
        ));
        let refused = start(&env, Background::Off)
            .await
            .err()
            .expect("another KEK is refused");
        assert!(
            refused.contains("restore the original key_encryption_key_file"),
            "{refused}"
        );
    }
}

/// Inserts a confirmed separate-route reception submitted at `at` (ms), visited that day.
async fn reception_at(db: &Db, institution: &str, at: i64, status: &str) -> String {
    let id = new_id();
    let day = uketsuke_domain::window::jst_date(uketsuke_server::clock::from_ms(at))
        .format("%Y-%m-%d")
        .to_string();
    let registered = (status != "queued").then_some(at);
    sqlx::query(
        "INSERT INTO receptions (id, institution_id, kind, visit_date, clinical_medication, \
         checkups, identity_method, status, submitted_at, registered_at, cancel_token_sha256, \
         updated_at) VALUES ($1, $2, 'separate_route', $3, 1, 0, 'card', $4, $5, $6, $7, $5)",
    )
    .bind(&id)
    .bind(institution)
    .bind(&day)
    .bind(status)
    .bind(at)
    .bind(registered)
    .bind(format!("{id}-cancel"))
    .execute(db)
    .await
    .expect("reception");
    id
}

#[tokio::test]
async fn the_sweeper_deletes_what_is_past_retention_and_keeps_the_audit_chain_verifiable() {
    for engine in common::engines().await {
        let dir = tempfile::tempdir().expect("dir");
        let env = demo_env(&engine.url, "simulator", dir.path());
        let server = start(&env, Background::Off).await.expect("starts");
        let db = server.state.db.clone();
        let now = server.state.clock.now_ms();
        let institution: String =
            sqlx::query_scalar("SELECT id FROM institutions WHERE is_demo = 1")
                .fetch_one(&db)
                .await
                .expect("demo institution");
        let retention = Retention::default();

        // Receptions: four years old (goes, with its rows), four years old but still queued for
        // the backend (stays), ten days old (stays, its cancel token goes), today (stays whole).
        let old = reception_at(&db, &institution, now - 4 * 365 * DAY_MS, "confirmed").await;
        let queued = reception_at(&db, &institution, now - 4 * 365 * DAY_MS, "queued").await;
        let recent = reception_at(&db, &institution, now - 10 * DAY_MS, "confirmed").await;
        let today = reception_at(&db, &institution, now, "confirmed").await;
        for (id, done) in [(&old, Some(now - 4 * 365 * DAY_MS)), (&queued, None)] {
            sqlx::query(
                "INSERT INTO outbox (id, reception_id, operation, payload, created_at, \
                 next_attempt_at, done_at) VALUES ($1, $2, 'register', '', 0, 0, $3)",
            )
            .bind(new_id())
            .bind(id)
            .bind(done)
            .execute(&db)
            .await
            .expect("outbox");
        }
        sqlx::query(
            "INSERT INTO home_visits (reception_id, visit_date, recorded_at) \
             VALUES ($1, '2022-01-05', 0)",
        )
        .bind(&old)
        .execute(&db)
        .await
        .expect("home visit");

        // Audit rows of a second institution: six years old, then current ones.
        let other = new_id();
        sqlx::query(
            "INSERT INTO institutions (id, code, name_ja, name_en, created_at) \
             VALUES ($1, '1310000025', '第二', 'Second', 0)",
        )
        .bind(&other)
        .execute(&db)
        .await
        .expect("institution");
        let actor = audit::Actor {
            institution_id: other.clone(),
            account: "-cli".to_owned(),
            ip: None,
        };
        for i in 0..5 {
            audit::record(
                &db,
                &actor,
                "old.view",
                Some(&i.to_string()),
                now - 6 * 365 * DAY_MS,
            )
            .await
            .expect("old audit row");
        }
        for i in 0..3 {
            audit::record(&db, &actor, "new.view", Some(&i.to_string()), now)
                .await
                .expect("new audit row");
        }
        let swept = sweeper::sweep_with(&db, now, &retention)
            .await
            .expect("sweep");
        assert_eq!(swept.receptions, 1, "{}: {swept:?}", engine.engine);
        assert_eq!(swept.cancel_tokens, 2, "{swept:?}");
        assert_eq!(swept.audit_rows, 5, "{swept:?}");

        let ids = reception_ids(&db).await;
        assert!(!ids.contains(&old));
        for kept in [&queued, &recent, &today] {
            assert!(ids.contains(kept), "{kept} kept");
        }
        for table in ["outbox", "home_visits"] {
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT COUNT(*) FROM {table} WHERE reception_id = $1"
            ))
            .bind(&old)
            .fetch_one(&db)
            .await
            .expect("count");
            assert_eq!(n, 0, "{table} rows of the deleted reception");
        }
        let token = async |id: &str| -> Option<String> {
            sqlx::query_scalar("SELECT cancel_token_sha256 FROM receptions WHERE id = $1")
                .bind(id)
                .fetch_one(&db)
                .await
                .expect("token")
        };
        assert_eq!(token(&recent).await, None);
        assert!(token(&today).await.is_some());
        assert!(token(&queued).await.is_some());
        let actions: Vec<String> = sqlx::query_scalar(
            "SELECT action FROM audit_log WHERE institution_id = $1 ORDER BY seq",
        )
        .bind(&other)
        .fetch_all(&db)
        .await
        .expect("actions");
        assert!(!actions.iter().any(|a| a == "old.view"), "{actions:?}");
        assert_eq!(actions.iter().filter(|a| *a == "new.view").count(), 3);
        assert!(actions.iter().any(|a| a == "audit.pruned"));
        let retention_rows: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE institution_id = $1 \
             AND action = 'retention.receptions'",
        )
        .bind(&institution)
        .fetch_one(&db)
        .await
        .expect("count");
        assert_eq!(retention_rows, 1);

        // The chain verifies from its anchor; a second sweep the same day changes nothing.
        audit::verify(&db, None)
            .await
            .expect("verify")
            .expect("the pruned chain verifies");
        let again = sweeper::sweep_with(&db, now, &retention)
            .await
            .expect("sweep");
        assert_eq!(again.audit_rows + again.receptions + again.cancel_tokens, 0);

        // Moving the anchor on to hide more rows needs the audit key: refused.
        let first: (i64, String) = {
            let row = sqlx::query(
                "SELECT seq, hash FROM audit_log WHERE institution_id = $1 ORDER BY seq LIMIT 1",
            )
            .bind(&other)
            .fetch_one(&db)
            .await
            .expect("first row");
            (row.get("seq"), row.get("hash"))
        };
        sqlx::query("DELETE FROM audit_log WHERE institution_id = $1 AND seq = $2")
            .bind(&other)
            .bind(first.0)
            .execute(&db)
            .await
            .expect("cut");
        sqlx::query(
            "UPDATE audit_heads SET pruned_through = $1, pruned_hash = $2 \
             WHERE institution_id = $3",
        )
        .bind(first.0)
        .bind(&first.1)
        .bind(&other)
        .execute(&db)
        .await
        .expect("move the anchor");
        let broken = audit::verify(&db, None)
            .await
            .expect("verify")
            .expect_err("a moved anchor is found");
        assert!(broken.reason.contains("pruning anchor"), "{broken:?}");
        server.stop().await;
    }
}

const BIN: &str = env!("CARGO_BIN_EXE_uketsuke-server");

#[test]
fn the_backup_command_writes_a_private_copy_and_explains_pg_dump_for_postgresql() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}/uk.db", dir.path().display());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let db = storage::open(&url).await.expect("opens");
        db.close().await;
    });
    let run = |args: &[&str], url: &str| {
        std::process::Command::new(BIN)
            .current_dir(dir.path())
            .env_clear()
            .env("UKETSUKE_MODE", "demo")
            .env("UKETSUKE_DATABASE_URL", url)
            .args(args)
            .output()
            .expect("runs")
    };
    let out = run(&["backup", "copy.db"], &url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("backed up to copy.db"));
    #[cfg(unix)]
    assert_eq!(mode(&dir.path().join("copy.db")), 0o600);
    let again = run(&["backup", "copy.db"], &url);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    let missing = run(&["backup"], &url);
    assert_eq!(missing.status.code(), Some(2));
    let pg = run(&["backup", "x.dump"], "postgres://u@db.example/uk");
    assert_eq!(pg.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&pg.stdout).contains("pg_dump --format=custom"));
    assert!(!dir.path().join("x.dump").exists());
}
