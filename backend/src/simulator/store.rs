//! The simulator's own SQLite database: institutions and their keys, the population, revoked
//! certificate serials, seen nonces, registrations (with idempotency keys and stored answers),
//! recorded home visits and 健康保険証利用登録. In-memory by default (one connection, so every query sees the
//! same database), or a file for a standalone simulator that keeps state across restarts.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{Row, sqlite::SqliteRow};
use std::str::FromStr;
use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};
use uketsuke_domain::ReceptionKind;
use uketsuke_domain::eligibility::{ControlFlags, EligibilityRecord};

use super::population::{CertificateCase, MedicalHistory, Person};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS institutions (
    key_id TEXT PRIMARY KEY, code TEXT NOT NULL, public_key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS persons (
    no INTEGER PRIMARY KEY, cert_serial INTEGER NOT NULL UNIQUE, record TEXT NOT NULL,
    non_disclosure INTEGER NOT NULL, no_self_information INTEGER NOT NULL,
    jlis_review INTEGER NOT NULL, insurance_registered INTEGER NOT NULL, medical TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS welfare_contracts (
    person_no INTEGER NOT NULL, institution_code TEXT NOT NULL,
    PRIMARY KEY (person_no, institution_code));
CREATE TABLE IF NOT EXISTS revoked_certificates (serial INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS renewed_certificates (
    serial INTEGER PRIMARY KEY, person_no INTEGER NOT NULL, revoked_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nonces (
    key_id TEXT NOT NULL, nonce TEXT NOT NULL, expires_at INTEGER NOT NULL,
    PRIMARY KEY (key_id, nonce));
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at);
CREATE TABLE IF NOT EXISTS registrations (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, institution_code TEXT NOT NULL,
    key_id TEXT NOT NULL, idempotency_key TEXT NOT NULL, request_hash TEXT NOT NULL,
    person_no INTEGER NOT NULL, kind TEXT NOT NULL, visit_date TEXT NOT NULL,
    clinical_medication INTEGER NOT NULL, checkups INTEGER NOT NULL, challenge TEXT UNIQUE,
    registered_at TEXT NOT NULL, withdrawn_at TEXT, answer TEXT NOT NULL,
    UNIQUE (key_id, idempotency_key));
CREATE TABLE IF NOT EXISTS resends (
    kind TEXT NOT NULL, key_id TEXT NOT NULL, idempotency_key TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS insurance_use (
    key_id TEXT NOT NULL, idempotency_key TEXT NOT NULL, request_hash TEXT NOT NULL,
    registration_id TEXT NOT NULL, person_no INTEGER NOT NULL, challenge TEXT NOT NULL UNIQUE,
    answer TEXT NOT NULL, PRIMARY KEY (key_id, idempotency_key));
CREATE TABLE IF NOT EXISTS insurance_registered_at (
    person_no INTEGER PRIMARY KEY, registered_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS home_visits (
    registration_id TEXT NOT NULL, visit_date TEXT NOT NULL,
    PRIMARY KEY (registration_id, visit_date));
"#;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// When expired nonces were last purged (Unix seconds); see [`Store::record_nonce`].
    nonces_purged_at: Arc<AtomicI64>,
}

/// Expired nonces are purged at most once in this many seconds, not on every request.
const NONCE_PURGE_EVERY_SECS: i64 = 60;

/// A person as the service needs it.
#[derive(Debug, Clone)]
pub struct StoredPerson {
    pub no: u32,
    pub record: EligibilityRecord,
    pub flags: ControlFlags,
    pub jlis_review: bool,
    pub insurance_registered: bool,
    pub medical: MedicalHistory,
}

/// Why a certificate no longer proves anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// On the CA's revocation list (lost card, death, …).
    Listed,
    /// Replaced by a renewed certificate of the same person (CRL reason superseded).
    Superseded,
}

/// A registration row.
#[derive(Debug, Clone)]
pub struct StoredRegistration {
    pub id: String,
    pub institution_code: String,
    pub person_no: u32,
    pub kind: ReceptionKind,
    pub visit_date: NaiveDate,
    pub clinical_medication: bool,
    pub checkups: bool,
    pub registered_at: DateTime<Utc>,
    pub withdrawn_at: Option<DateTime<Utc>>,
}

/// Everything inserted for a new registration.
pub struct NewRegistration<'a> {
    pub institution_code: &'a str,
    pub key_id: &'a str,
    pub idempotency_key: &'a str,
    pub request_hash: &'a str,
    pub person_no: u32,
    pub kind: ReceptionKind,
    pub visit_date: NaiveDate,
    pub clinical_medication: bool,
    pub checkups: bool,
    pub challenge: Option<&'a str>,
    pub registered_at: DateTime<Utc>,
}

/// Everything recorded for a 健康保険証利用登録.
pub struct NewInsuranceUse<'a> {
    pub key_id: &'a str,
    pub idempotency_key: &'a str,
    pub request_hash: &'a str,
    pub registration_id: &'a str,
    pub person_no: u32,
    pub challenge: &'a str,
}

/// The instant given for a card registered for insurance use before the simulator's time began
/// (the population's registered people): the test CA's start, as for earlier renewals.
const REGISTERED_BEFORE_TIME: &str = "2024-01-01T00:00:00+00:00";

impl Store {
    /// Opens (and creates) the database: `None` = in memory.
    pub async fn open(path: Option<&str>) -> Result<Store, StoreError> {
        let options = match path {
            Some(path) => {
                SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?.create_if_missing(true)
            }
            None => SqliteConnectOptions::from_str("sqlite::memory:")?,
        };
        // One connection: an in-memory database exists per connection, and the simulator's
        // check-then-insert steps (nonces, idempotency) rely on serialised access anyway.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        Ok(Store {
            pool,
            nonces_purged_at: Arc::new(AtomicI64::new(0)),
        })
    }

    pub async fn add_institution(
        &self,
        key_id: &str,
        code: &str,
        public_key: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO institutions (key_id, code, public_key) VALUES (?, ?, ?)",
        )
        .bind(key_id)
        .bind(code)
        .bind(public_key)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `(institution code, public key text)` of a key id.
    pub async fn institution(&self, key_id: &str) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT code, public_key FROM institutions WHERE key_id = ?")
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| (r.get::<String, _>(0), r.get::<String, _>(1))))
    }

    /// Seeds the people the database does not know yet (a file database keeps its own state of
    /// the others, renewals included).
    pub async fn seed_population(&self, people: &[Person]) -> Result<(), StoreError> {
        let known: Vec<i64> = sqlx::query_scalar("SELECT no FROM persons")
            .fetch_all(&self.pool)
            .await?;
        let mut tx = self.pool.begin().await?;
        for p in people.iter().filter(|p| !known.contains(&i64::from(p.no))) {
            let record = serde_json::to_string(&p.record).map_err(corrupt)?;
            let medical = serde_json::to_string(&p.medical).map_err(corrupt)?;
            sqlx::query("INSERT INTO persons VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(p.no)
                .bind(p.card_seed() as i64)
                .bind(record)
                .bind(p.flags.non_disclosure)
                .bind(p.flags.no_self_information)
                .bind(p.jlis_review)
                .bind(p.insurance_registered)
                .bind(medical)
                .execute(&mut *tx)
                .await?;
            for code in &p.welfare_contracted_at {
                sqlx::query("INSERT INTO welfare_contracts VALUES (?, ?)")
                    .bind(p.no)
                    .bind(code)
                    .execute(&mut *tx)
                    .await?;
            }
            if p.certificate == CertificateCase::Revoked {
                sqlx::query("INSERT INTO revoked_certificates VALUES (?)")
                    .bind(p.card_seed() as i64)
                    .execute(&mut *tx)
                    .await?;
            }
            for old in &p.previous_certificates {
                // Renewed before the simulator's time began: the instant is the CA's start.
                sqlx::query("INSERT INTO renewed_certificates VALUES (?, ?, ?)")
                    .bind(*old as i64)
                    .bind(p.no)
                    .bind("2024-01-01T00:00:00+00:00")
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether the serial is revoked: on the revocation list, or replaced by a renewal.
    pub async fn revocation(&self, serial: u64) -> Result<Option<Revocation>, StoreError> {
        let Ok(serial) = i64::try_from(serial) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT 'listed' FROM revoked_certificates WHERE serial = ?1 \
             UNION ALL SELECT 'superseded' FROM renewed_certificates WHERE serial = ?1",
        )
        .bind(serial)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| {
            if r.get::<String, _>(0) == "superseded" {
                Revocation::Superseded
            } else {
                Revocation::Listed
            }
        }))
    }

    /// J-LIS issues person `no` a new certificate: `new_serial` becomes the one that proves
    /// them, and the current one is revoked by the renewal (CRL reason superseded) at `at`.
    /// Returns the serial that was replaced, or `None` for an unknown person or a serial that
    /// is already someone's.
    pub async fn renew_certificate(
        &self,
        no: u32,
        new_serial: u64,
        at: DateTime<Utc>,
    ) -> Result<Option<u64>, StoreError> {
        let Ok(new_serial) = i64::try_from(new_serial) else {
            return Ok(None);
        };
        let mut tx = self.pool.begin().await?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT cert_serial FROM persons WHERE no = ?")
                .bind(no)
                .fetch_optional(&mut *tx)
                .await?;
        let taken: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM persons WHERE cert_serial = ?1 \
             UNION ALL SELECT 1 FROM renewed_certificates WHERE serial = ?1",
        )
        .bind(new_serial)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(current) = current.filter(|_| taken.is_none()) else {
            tx.rollback().await?;
            return Ok(None);
        };
        sqlx::query("INSERT INTO renewed_certificates VALUES (?, ?, ?)")
            .bind(current)
            .bind(no)
            .bind(at.to_rfc3339())
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE persons SET cert_serial = ? WHERE no = ?")
            .bind(new_serial)
            .bind(no)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(u64::try_from(current).ok())
    }

    /// The serial of person `no`'s current certificate.
    pub async fn current_serial(&self, no: u32) -> Result<Option<u64>, StoreError> {
        let serial: Option<i64> =
            sqlx::query_scalar("SELECT cert_serial FROM persons WHERE no = ?")
                .bind(no)
                .fetch_optional(&self.pool)
                .await?;
        Ok(serial.and_then(|s| u64::try_from(s).ok()))
    }

    pub async fn person_by_serial(&self, serial: u64) -> Result<Option<StoredPerson>, StoreError> {
        let Ok(serial) = i64::try_from(serial) else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT * FROM persons WHERE cert_serial = ?")
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| person_from_row(&r)).transpose()
    }

    pub async fn person(&self, no: u32) -> Result<Option<StoredPerson>, StoreError> {
        let row = sqlx::query("SELECT * FROM persons WHERE no = ?")
            .bind(no)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| person_from_row(&r)).transpose()
    }

    pub async fn welfare_contracted(
        &self,
        person_no: u32,
        institution_code: &str,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 FROM welfare_contracts WHERE person_no = ? AND institution_code = ?",
        )
        .bind(person_no)
        .bind(institution_code)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Records a nonce; `false` if it was seen before and has not expired. One statement: an
    /// expired entry of the same nonce is taken over, so the purge of expired entries (a
    /// request that old is refused for its timestamp anyway) can wait; it runs at most once
    /// in [`NONCE_PURGE_EVERY_SECS`] instead of on every request.
    pub async fn record_nonce(
        &self,
        key_id: &str,
        nonce: &str,
        now_unix: i64,
        keep_secs: i64,
    ) -> Result<bool, StoreError> {
        let purged_at = self.nonces_purged_at.load(Ordering::Relaxed);
        if now_unix - purged_at >= NONCE_PURGE_EVERY_SECS
            && self
                .nonces_purged_at
                .compare_exchange(purged_at, now_unix, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            sqlx::query("DELETE FROM nonces WHERE expires_at < ?")
                .bind(now_unix)
                .execute(&self.pool)
                .await?;
        }
        let done = sqlx::query(
            "INSERT INTO nonces (key_id, nonce, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (key_id, nonce) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE nonces.expires_at < ?4",
        )
        .bind(key_id)
        .bind(nonce)
        .bind(now_unix + keep_secs)
        .bind(now_unix)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// `(request hash, stored answer)` for an idempotency key.
    pub async fn idempotent_answer(
        &self,
        key_id: &str,
        idempotency_key: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT request_hash, answer FROM registrations WHERE key_id = ? AND idempotency_key = ?")
            .bind(key_id)
            .bind(idempotency_key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// Whether a challenge was used, by a registration or a 健康保険証利用登録 (a challenge
    /// proves one request only, whatever it was for).
    pub async fn challenge_used(&self, challenge: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 FROM registrations WHERE challenge = ?1 \
             UNION ALL SELECT 1 FROM insurance_use WHERE challenge = ?1",
        )
        .bind(challenge)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// `(request hash, stored answer)` of a 健康保険証利用登録 by its idempotency key.
    pub async fn insurance_use_answer(
        &self,
        key_id: &str,
        idempotency_key: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT request_hash, answer FROM insurance_use WHERE key_id = ? AND idempotency_key = ?",
        )
        .bind(key_id)
        .bind(idempotency_key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// When person `no`'s card was registered for insurance use: the instant this simulator
    /// recorded, or for a person registered before its time began, the CA's start. `None`: not
    /// registered.
    pub async fn insurance_registered_at(
        &self,
        no: u32,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row = sqlx::query(
            "SELECT p.insurance_registered, r.registered_at FROM persons p \
             LEFT JOIN insurance_registered_at r ON r.person_no = p.no WHERE p.no = ?",
        )
        .bind(no)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        if !row.get::<bool, _>(0) {
            return Ok(None);
        }
        let at: Option<String> = row.get(1);
        Ok(Some(parse_instant(
            at.as_deref().unwrap_or(REGISTERED_BEFORE_TIME),
        )?))
    }

    /// Records a 健康保険証利用登録: the person's card is registered from `at` (unless it was
    /// already), and the request's answer is kept for its idempotency key. `answer` builds the
    /// stored answer from the instant of registration and whether it was registered before.
    pub async fn register_insurance_use(
        &self,
        new: &NewInsuranceUse<'_>,
        at: DateTime<Utc>,
        answer: impl FnOnce(DateTime<Utc>, bool) -> Result<String, String>,
    ) -> Result<String, StoreError> {
        let mut tx = self.pool.begin().await?;
        let registered: Option<bool> =
            sqlx::query_scalar("SELECT insurance_registered FROM persons WHERE no = ?")
                .bind(new.person_no)
                .fetch_optional(&mut *tx)
                .await?;
        let already = registered.unwrap_or(false);
        let since = if already {
            let at: Option<String> = sqlx::query_scalar(
                "SELECT registered_at FROM insurance_registered_at WHERE person_no = ?",
            )
            .bind(new.person_no)
            .fetch_optional(&mut *tx)
            .await?;
            parse_instant(at.as_deref().unwrap_or(REGISTERED_BEFORE_TIME))?
        } else {
            sqlx::query("UPDATE persons SET insurance_registered = 1 WHERE no = ?")
                .bind(new.person_no)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT OR REPLACE INTO insurance_registered_at VALUES (?, ?)")
                .bind(new.person_no)
                .bind(at.to_rfc3339())
                .execute(&mut *tx)
                .await?;
            at
        };
        let text = answer(since, already).map_err(StoreError::Corrupt)?;
        sqlx::query("INSERT INTO insurance_use VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(new.key_id)
            .bind(new.idempotency_key)
            .bind(new.request_hash)
            .bind(new.registration_id)
            .bind(new.person_no)
            .bind(new.challenge)
            .bind(&text)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(text)
    }

    /// J-LIS puts person `no` under review (照会で不一致: 閲覧停止), or ends the review.
    /// Returns `false` for an unknown person.
    pub async fn set_jlis_review(&self, no: u32, under_review: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE persons SET jlis_review = ? WHERE no = ?")
            .bind(under_review)
            .bind(no)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Inserts a registration; `answer` builds the stored answer from the new id and sequence.
    pub async fn insert_registration(
        &self,
        new: &NewRegistration<'_>,
        answer: impl FnOnce(&str, i64) -> Result<String, String>,
    ) -> Result<String, StoreError> {
        let mut tx = self.pool.begin().await?;
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM registrations")
            .fetch_one(&mut *tx)
            .await?;
        let id = format!("reg-{seq:08}");
        let text = answer(&id, seq).map_err(StoreError::Corrupt)?;
        sqlx::query(
            "INSERT INTO registrations (id, seq, institution_code, key_id, idempotency_key, request_hash, person_no, kind, visit_date, clinical_medication, checkups, challenge, registered_at, withdrawn_at, answer) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
        )
        .bind(&id)
        .bind(seq)
        .bind(new.institution_code)
        .bind(new.key_id)
        .bind(new.idempotency_key)
        .bind(new.request_hash)
        .bind(new.person_no)
        .bind(new.kind.code())
        .bind(new.visit_date.to_string())
        .bind(new.clinical_medication)
        .bind(new.checkups)
        .bind(new.challenge)
        .bind(new.registered_at.to_rfc3339())
        .bind(&text)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(text)
    }

    /// A registration of `institution_code` (another institution's id is "not found").
    pub async fn registration(
        &self,
        id: &str,
        institution_code: &str,
    ) -> Result<Option<StoredRegistration>, StoreError> {
        let row = sqlx::query("SELECT id, institution_code, person_no, kind, visit_date, clinical_medication, checkups, registered_at, withdrawn_at FROM registrations WHERE id = ? AND institution_code = ?")
            .bind(id)
            .bind(institution_code)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let kind: String = r.get(3);
        let visit: String = r.get(4);
        let registered: String = r.get(7);
        let withdrawn: Option<String> = r.get(8);
        Ok(Some(StoredRegistration {
            id: r.get(0),
            institution_code: r.get(1),
            person_no: r.get(2),
            kind: ReceptionKind::from_code(&kind).ok_or_else(|| corrupt(kind))?,
            visit_date: visit.parse().map_err(corrupt)?,
            clinical_medication: r.get(5),
            checkups: r.get(6),
            registered_at: parse_instant(&registered)?,
            withdrawn_at: withdrawn.as_deref().map(parse_instant).transpose()?,
        }))
    }

    pub async fn withdraw(&self, id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE registrations SET withdrawn_at = ? WHERE id = ? AND withdrawn_at IS NULL",
        )
        .bind(at.to_rfc3339())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets both consent categories of a registration (同意の更新).
    pub async fn update_consent(
        &self,
        id: &str,
        clinical_medication: bool,
        checkups: bool,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE registrations SET clinical_medication = ?, checkups = ? WHERE id = ?")
            .bind(clinical_medication)
            .bind(checkups)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn add_home_visit(&self, id: &str, date: NaiveDate) -> Result<(), StoreError> {
        sqlx::query("INSERT OR IGNORE INTO home_visits VALUES (?, ?)")
            .bind(id)
            .bind(date.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn home_visits(&self, id: &str) -> Result<Vec<NaiveDate>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT visit_date FROM home_visits WHERE registration_id = ? ORDER BY visit_date",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|d| d.parse().map_err(corrupt)).collect()
    }
}

/// What a soak run needs to know of the registrations the simulator holds (see
/// [`Store::registration_counts`]).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RegistrationCounts {
    /// Registrations stored.
    pub registrations: i64,
    /// Distinct `(key id, idempotency key)` pairs among them (a UNIQUE constraint too).
    pub distinct_idempotency_keys: i64,
    /// Distinct card challenges among them (a UNIQUE constraint too).
    pub distinct_challenges: i64,
    /// Resends of a known idempotency key with the same body, answered from the record.
    pub idempotent_replays: i64,
    /// Resends of a known idempotency key with another body (refused).
    pub idempotency_conflicts: i64,
    /// A new idempotency key with an already registered challenge (refused): the same
    /// reception sent as a new registration.
    pub challenge_reused: i64,
    /// `[registration id, idempotency key]` of every registration, in order.
    pub keys: Vec<[String; 2]>,
}

impl Store {
    /// Notes a request the simulator answered without registering: `kind` is
    /// `idempotent_replay`, `idempotency_conflict` or `challenge_reused`. Kept in the database,
    /// so the counts of a file database survive the simulator's own restart.
    pub async fn record_resend(
        &self,
        kind: &str,
        key_id: &str,
        idempotency_key: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO resends (kind, key_id, idempotency_key, at) VALUES (?, ?, ?, ?)")
            .bind(kind)
            .bind(key_id)
            .bind(idempotency_key)
            .bind(at.to_rfc3339())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Counts of registrations and resends, for the soak run's "doubled at the backend".
    pub async fn registration_counts(&self) -> Result<RegistrationCounts, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*), COUNT(DISTINCT key_id || ' ' || idempotency_key), \
                    COUNT(DISTINCT challenge) FROM registrations",
        )
        .fetch_one(&self.pool)
        .await?;
        let resends = |kind: &'static str| {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM resends WHERE kind = ?")
                .bind(kind)
                .fetch_one(&self.pool)
        };
        let keys = sqlx::query("SELECT id, idempotency_key FROM registrations ORDER BY seq")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| [r.get::<String, _>(0), r.get::<String, _>(1)])
            .collect();
        Ok(RegistrationCounts {
            registrations: row.try_get(0)?,
            distinct_idempotency_keys: row.try_get(1)?,
            distinct_challenges: row.try_get(2)?,
            idempotent_replays: resends("idempotent_replay").await?,
            idempotency_conflicts: resends("idempotency_conflict").await?,
            challenge_reused: resends("challenge_reused").await?,
            keys,
        })
    }
}

fn parse_instant(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(corrupt)
}

fn person_from_row(r: &SqliteRow) -> Result<StoredPerson, StoreError> {
    let record: String = r.try_get("record")?;
    let medical: String = r.try_get("medical")?;
    Ok(StoredPerson {
        no: r.try_get("no")?,
        record: serde_json::from_str(&record).map_err(corrupt)?,
        flags: ControlFlags {
            non_disclosure: r.try_get("non_disclosure")?,
            no_self_information: r.try_get("no_self_information")?,
        },
        jlis_review: r.try_get("jlis_review")?,
        insurance_registered: r.try_get("insurance_registered")?,
        medical: serde_json::from_str(&medical).map_err(corrupt)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration<'a>(key: &'a str, challenge: &'a str) -> NewRegistration<'a> {
        NewRegistration {
            institution_code: "1310000001",
            key_id: "inst-1",
            idempotency_key: key,
            request_hash: "hash",
            person_no: 1,
            kind: ReceptionKind::SeparateRoute,
            visit_date: NaiveDate::from_ymd_opt(2026, 12, 1).expect("date"),
            clinical_medication: true,
            checkups: false,
            challenge: Some(challenge),
            registered_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn a_nonce_counts_once_until_it_expires_and_expired_ones_are_purged() {
        let store = Store::open(None).await.expect("store");
        let (now, keep) = (1_800_000_000, 600);
        let record = |key: &'static str, nonce: &'static str, at: i64| {
            let store = store.clone();
            async move {
                store
                    .record_nonce(key, nonce, at, keep)
                    .await
                    .expect("nonce")
            }
        };
        assert!(record("inst-1", "n1", now).await, "a new nonce");
        assert!(
            !record("inst-1", "n1", now + 1).await,
            "the same nonce again"
        );
        assert!(record("inst-2", "n1", now + 1).await, "another key's nonce");
        assert!(
            !record("inst-1", "n1", now + keep).await,
            "still kept at the last second"
        );
        // Expired but not purged yet (the last purge was at `now`): taken over, not refused.
        assert!(
            record("inst-1", "n1", now + keep + 1).await,
            "after it expired"
        );
        assert!(
            !record("inst-1", "n1", now + keep + 2).await,
            "kept again from then"
        );
        let kept = || async {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM nonces")
                .fetch_one(&store.pool)
                .await
                .expect("count")
        };
        assert_eq!(kept().await, 2);
        // A minute after the last purge, the next nonce purges every expired one first.
        let later = now + keep + 1 + keep + 1;
        assert!(record("inst-3", "n2", later).await);
        assert_eq!(kept().await, 1, "only the new one is left");
    }

    #[tokio::test]
    async fn counts_registrations_and_each_kind_of_resend() {
        let store = Store::open(None).await.expect("store");
        assert_eq!(
            store
                .registration_counts()
                .await
                .expect("counts")
                .registrations,
            0
        );
        for (key, challenge) in [("key-1", "c1"), ("key-2", "c2")] {
            store
                .insert_registration(&registration(key, challenge), |id, _| Ok(id.to_owned()))
                .await
                .expect("insert");
        }
        let at = Utc::now();
        for kind in ["idempotent_replay", "idempotent_replay", "challenge_reused"] {
            store
                .record_resend(kind, "inst-1", "key-1", at)
                .await
                .expect("resend");
        }
        let counts = store.registration_counts().await.expect("counts");
        assert_eq!(
            (
                counts.registrations,
                counts.distinct_idempotency_keys,
                counts.distinct_challenges
            ),
            (2, 2, 2)
        );
        assert_eq!(
            (
                counts.idempotent_replays,
                counts.idempotency_conflicts,
                counts.challenge_reused
            ),
            (2, 0, 1)
        );
        assert_eq!(
            counts.keys,
            vec![
                ["reg-00000001".to_owned(), "key-1".to_owned()],
                ["reg-00000002".to_owned(), "key-2".to_owned()],
            ]
        );
    }
}
