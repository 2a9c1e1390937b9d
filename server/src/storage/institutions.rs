//! Institutions: their settings as the relay and the gate need them, and their request-signing
//! keys. Each institution signs what the relay sends on its behalf with its own ECDSA P-256 key,
//! registered with the backend under `key_id`.
//!
//! The private scalar is stored sealed under the key-encryption key (`storage::sealing`,
//! config `key_encryption_key_file`), never in the clear: whoever reads the database (or a
//! backup of it) without the key file cannot sign for the institution. [`install_key_encryption`]
//! seals, at start, keys stored in the clear by earlier versions. A deployment that wants the
//! key in an HSM replaces [`signer_in`] and [`all_keys`], the places that open it.

use p256::ecdsa::SigningKey;
use rand::RngCore;
use sqlx::Row;
use uketsuke_backend::contract::{b64_decode, signing::RequestSigner};

use super::{
    Db, StorageError,
    sealing::{self, KeyEncryptionKey, SealError},
};

/// What the relay needs of an institution.
#[derive(Debug, Clone)]
pub struct RelayIdentity {
    pub institution_id: String,
    pub code: String,
    pub signer: RequestSigner,
    /// 医療扶助情報 利用する.
    pub uses_welfare_info: bool,
}

/// Opens a row's sealed key; `None` (logged, naming the institution code) when it cannot be.
fn open_key(code: &str, key_id: &str, sealed: &str) -> Option<SigningKey> {
    match sealing::open_sealed(code, key_id, sealed) {
        Ok(bytes) => match SigningKey::from_slice(&bytes) {
            Ok(key) => Some(key),
            Err(_) => {
                tracing::error!(
                    institution = code,
                    "an institution's signing key is not a P-256 key"
                );
                None
            }
        },
        Err(error) => {
            tracing::error!(institution = code, %error, "an institution's signing key cannot be opened");
            None
        }
    }
}

/// Keys the relay opened, by the row's code, key id and sealed text (so a new or re-sealed key
/// is a new entry, opened and checked afresh). Opening is an AES-GCM decryption and a P-256
/// public-key derivation, about a tenth of a registration's crypto when it ran for every
/// relayed row. Held in memory as the opened key of every row was already; the key-encryption
/// keys it was opened with stay loaded for the life of the process as well.
static OPENED: std::sync::LazyLock<std::sync::Mutex<OpenedKeys>> =
    std::sync::LazyLock::new(Default::default);
/// (code, key id, sealed text) → the key they open to.
type OpenedKeys = std::collections::HashMap<(String, String, String), SigningKey>;
/// More entries than a server has institutions, with room for their rotated keys: past it the
/// cache starts again (a rotation leaves the old entry behind).
const OPENED_MAX: usize = 256;

/// [`open_key`] through [`OPENED`].
fn opened_key(code: &str, key_id: &str, sealed: &str) -> Option<SigningKey> {
    let entry = (code.to_owned(), key_id.to_owned(), sealed.to_owned());
    if let Ok(cache) = OPENED.lock()
        && let Some(key) = cache.get(&entry)
    {
        return Some(key.clone());
    }
    let key = open_key(code, key_id, sealed)?;
    if let Ok(mut cache) = OPENED.lock() {
        if cache.len() >= OPENED_MAX {
            cache.clear();
        }
        cache.insert(entry, key.clone());
    }
    Some(key)
}

/// The columns [`signer_in`] reads, from a query that names the institution `i`; a literal,
/// for `concat!` into other queries (the relay reads a reception and its signer in one).
macro_rules! signer_columns {
    () => {
        "i.code AS i_code, i.key_id AS i_key_id, i.signing_key_sealed AS i_signing_key_sealed, \
         i.uses_welfare_info AS i_uses_welfare_info"
    };
}
pub(crate) use signer_columns;

/// The relay identity of `institution_id`, or `None` if it has no usable key.
pub async fn signer(db: &Db, institution_id: &str) -> Result<Option<RelayIdentity>, StorageError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        signer_columns!(),
        " FROM institutions i WHERE i.id = $1"
    ))
    .bind(institution_id)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    signer_in(&row, institution_id)
}

/// [`signer`] from a row of a query that read [`signer_columns`]: `None` when the row has no
/// institution (an outer join that found none) or the institution no usable key.
pub(crate) fn signer_in(
    row: &sqlx::any::AnyRow,
    institution_id: &str,
) -> Result<Option<RelayIdentity>, StorageError> {
    let code: Option<String> = row.try_get("i_code")?;
    let key_id: Option<String> = row.try_get("i_key_id")?;
    let sealed: Option<String> = row.try_get("i_signing_key_sealed")?;
    let (Some(code), Some(key_id), Some(sealed)) = (code, key_id, sealed) else {
        return Ok(None);
    };
    let Some(key) = opened_key(&code, &key_id, &sealed) else {
        return Ok(None);
    };
    let Ok(signer) = RequestSigner::new(key_id, key) else {
        tracing::error!(institution = %code, "an institution's key id is not well formed");
        return Ok(None);
    };
    let welfare: i64 = row.try_get("i_uses_welfare_info")?;
    Ok(Some(RelayIdentity {
        institution_id: institution_id.to_owned(),
        code,
        signer,
        uses_welfare_info: welfare != 0,
    }))
}

/// The key-encryption key this database's keys are sealed with (`key_encryption`), loaded in
/// this process.
async fn database_kek(db: &Db) -> Result<KeyEncryptionKey, StorageError> {
    let kek_id: Option<String> =
        sqlx::query_scalar("SELECT key_id FROM key_encryption WHERE id = 1")
            .fetch_optional(db)
            .await?;
    kek_id
        .as_deref()
        .and_then(sealing::registered)
        .ok_or_else(|| {
            StorageError::Query(sqlx::Error::Protocol(
                "the key-encryption key of this database is not loaded \
                 (key_encryption_key_file)"
                    .to_owned(),
            ))
        })
}

/// Stores `key` as the institution's signing key under `key_id`, sealed under the database's
/// key-encryption key (which [`install_key_encryption`] has loaded).
pub async fn set_key(
    db: &Db,
    institution_id: &str,
    key_id: &str,
    key: &SigningKey,
) -> Result<(), StorageError> {
    let kek = database_kek(db).await?;
    let code: Option<String> = sqlx::query_scalar("SELECT code FROM institutions WHERE id = $1")
        .bind(institution_id)
        .fetch_optional(db)
        .await?;
    let Some(code) = code else { return Ok(()) };
    let sealed = kek.seal(&code, key_id, &key.to_bytes());
    sqlx::query(
        "UPDATE institutions SET key_id = $1, signing_key_sealed = $2, signing_key = NULL \
         WHERE id = $3",
    )
    .bind(key_id)
    .bind(sealed)
    .bind(institution_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Re-seals the institution's signing key for its new 医療機関等コード inside `tx` (the code is
/// part of the sealed key's associated data): called by the settings change that renames the
/// code, before it commits, so the key never stays sealed under a code the row no longer has.
/// Nothing to do when the institution has no sealed key. Errors when the key cannot be opened
/// (the change is then refused and nothing is written).
pub async fn reseal_for_code(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    institution_id: &str,
    old_code: &str,
    new_code: &str,
) -> Result<(), StorageError> {
    let row = sqlx::query("SELECT key_id, signing_key_sealed FROM institutions WHERE id = $1")
        .bind(institution_id)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(()) };
    let key_id: Option<String> = row.try_get("key_id")?;
    let sealed: Option<String> = row.try_get("signing_key_sealed")?;
    let (Some(key_id), Some(sealed)) = (key_id, sealed) else {
        return Ok(());
    };
    let protocol = |message: String| StorageError::Query(sqlx::Error::Protocol(message));
    let kek_id = sealing::sealed_with(&sealed).map_err(|e| protocol(e.to_string()))?;
    let kek = sealing::registered(kek_id).ok_or_else(|| {
        protocol("the key-encryption key of this database is not loaded".to_owned())
    })?;
    let secret = kek.open(old_code, &key_id, &sealed).map_err(|e| {
        protocol(format!(
            "the institution's signing key cannot be opened: {e}"
        ))
    })?;
    let resealed = kek.seal(new_code, &key_id, &secret);
    sqlx::query("UPDATE institutions SET signing_key_sealed = $1 WHERE id = $2")
        .bind(resealed)
        .bind(institution_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Why the key-encryption key cannot be installed.
#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error(
        "the key-encryption key (fingerprint {given}) is not the key this database's \
         institution keys are sealed with (fingerprint {stored}); restore the original \
         key_encryption_key_file"
    )]
    Mismatch { given: String, stored: String },
    #[error("institution {code}: its request-signing key does not open: {error}")]
    Unreadable { code: String, error: SealError },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// At start-up: registers `kek`, records it as the database's key-encryption key if none is
/// recorded (refusing a different one), checks that every sealed key opens, and seals every key
/// an earlier version stored in the clear, each in a transaction of its own with an audit row
/// `institution.key_sealed` (by `-server`, naming the key id). On SQLite the clear value is
/// overwritten in the file (`secure_delete`) and the write-ahead log truncated. Returns the
/// number of keys sealed.
pub async fn install_key_encryption(
    db: &Db,
    kek: &KeyEncryptionKey,
    now_ms: i64,
) -> Result<u64, KekError> {
    sealing::register(kek);
    sqlx::query(
        "INSERT INTO key_encryption (id, key_id, installed_at) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(kek.id())
    .bind(now_ms)
    .execute(db)
    .await
    .map_err(StorageError::from)?;
    let stored: String = sqlx::query_scalar("SELECT key_id FROM key_encryption WHERE id = 1")
        .fetch_one(db)
        .await
        .map_err(StorageError::from)?;
    if stored != kek.id() {
        return Err(KekError::Mismatch {
            given: kek.id().to_owned(),
            stored,
        });
    }
    let sealed_rows = sqlx::query(
        "SELECT code, key_id, signing_key_sealed FROM institutions \
         WHERE signing_key_sealed IS NOT NULL ORDER BY code",
    )
    .fetch_all(db)
    .await
    .map_err(StorageError::from)?;
    for row in sealed_rows {
        let code: String = row.try_get("code").map_err(StorageError::from)?;
        let key_id: Option<String> = row.try_get("key_id").map_err(StorageError::from)?;
        let sealed: String = row
            .try_get("signing_key_sealed")
            .map_err(StorageError::from)?;
        if let Err(error) = kek.open(&code, key_id.as_deref().unwrap_or(""), &sealed) {
            return Err(match error {
                SealError::KeyNotLoaded(stored) => KekError::Mismatch {
                    given: kek.id().to_owned(),
                    stored,
                },
                error => KekError::Unreadable { code, error },
            });
        }
    }
    seal_clear_keys(db, kek, now_ms).await
}

/// Seals the keys stored in the clear (before migration 0012).
async fn seal_clear_keys(db: &Db, kek: &KeyEncryptionKey, now_ms: i64) -> Result<u64, KekError> {
    let clear = sqlx::query(
        "SELECT id, code, key_id, signing_key FROM institutions WHERE signing_key IS NOT NULL \
         ORDER BY code",
    )
    .fetch_all(db)
    .await
    .map_err(StorageError::from)?;
    if clear.is_empty() {
        return Ok(0);
    }
    let sqlite = db
        .acquire()
        .await
        .map_err(StorageError::from)?
        .backend_name()
        == "SQLite";
    let mut sealed_count = 0;
    for row in clear {
        let id: String = row.try_get("id").map_err(StorageError::from)?;
        let code: String = row.try_get("code").map_err(StorageError::from)?;
        let key_id: Option<String> = row.try_get("key_id").map_err(StorageError::from)?;
        let secret: String = row.try_get("signing_key").map_err(StorageError::from)?;
        let Some(key_id) = key_id else {
            tracing::error!(institution = %code, "a signing key without a key id is left as it is");
            continue;
        };
        // A value that is not a key is kept as found (nothing is lost) and never used.
        let Some(key) = b64_decode(&secret).and_then(|b| SigningKey::from_slice(&b).ok()) else {
            tracing::error!(institution = %code, "a stored signing key is not a P-256 key; left as it is");
            continue;
        };
        let sealed = kek.seal(&code, &key_id, &key.to_bytes());
        let mut conn = db.acquire().await.map_err(StorageError::from)?;
        if sqlite {
            // The clear value's bytes are overwritten in the file, not merely unlinked.
            sqlx::query("PRAGMA secure_delete = ON")
                .execute(&mut *conn)
                .await
                .map_err(StorageError::from)?;
        }
        let mut tx = sqlx::Connection::begin_with(
            &mut *conn,
            if sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" },
        )
        .await
        .map_err(StorageError::from)?;
        crate::console::audit::append(
            &mut tx,
            &crate::console::audit::Actor {
                institution_id: id.clone(),
                account: "-server".to_owned(),
                ip: None,
            },
            "institution.key_sealed",
            Some(&key_id),
            now_ms,
        )
        .await?;
        let changed = sqlx::query(
            "UPDATE institutions SET signing_key_sealed = $1, signing_key = NULL \
             WHERE id = $2 AND signing_key = $3",
        )
        .bind(&sealed)
        .bind(&id)
        .bind(&secret)
        .execute(&mut *tx)
        .await
        .map_err(StorageError::from)?
        .rows_affected();
        if changed == 1 {
            tx.commit().await.map_err(StorageError::from)?;
            sealed_count += 1;
            tracing::info!(institution = %code, key_id = %key_id, "request-signing key sealed");
        } else {
            // Another instance sealed it meanwhile.
            tx.rollback().await.map_err(StorageError::from)?;
        }
        if sqlite {
            sqlx::query("PRAGMA secure_delete = OFF")
                .execute(&mut *conn)
                .await
                .map_err(StorageError::from)?;
        }
    }
    if sqlite && sealed_count > 0 {
        // The write-ahead log still holds the pages with the clear value: copy the new pages
        // into the database file and empty the log.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(db)
            .await
            .map_err(StorageError::from)?;
    }
    Ok(sealed_count)
}

/// A fresh P-256 key from the operating system's CSPRNG.
pub fn generate_key() -> SigningKey {
    loop {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        // Almost every 32-byte string is a valid scalar; the loop covers the rest.
        if let Ok(key) = SigningKey::from_slice(&bytes) {
            return key;
        }
    }
}

/// Every institution key that opens, for registering with the built-in simulator at start:
/// (key id, institution code, key).
pub async fn all_keys(db: &Db) -> Result<Vec<(String, String, SigningKey)>, StorageError> {
    let rows = sqlx::query(
        "SELECT code, key_id, signing_key_sealed FROM institutions \
         WHERE key_id IS NOT NULL AND signing_key_sealed IS NOT NULL",
    )
    .fetch_all(db)
    .await?;
    let mut keys = Vec::new();
    for row in rows {
        let code: String = row.try_get("code")?;
        let key_id: String = row.try_get("key_id")?;
        let sealed: String = row.try_get("signing_key_sealed")?;
        if let Some(key) = open_key(&code, &key_id, &sealed) {
            keys.push((key_id, code, key));
        }
    }
    Ok(keys)
}

/// The institution id of a 医療機関等コード.
pub async fn id_by_code(db: &Db, code: &str) -> Result<Option<String>, StorageError> {
    let row = sqlx::query("SELECT id FROM institutions WHERE code = $1")
        .bind(code)
        .fetch_optional(db)
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get("id")?),
        None => None,
    })
}

/// The retention of eligibility answers, in days.
pub async fn retention_days(db: &Db, institution_id: &str) -> Result<i64, StorageError> {
    let row = sqlx::query("SELECT eligibility_retention_days FROM institutions WHERE id = $1")
        .bind(institution_id)
        .fetch_optional(db)
        .await?;
    Ok(match row {
        Some(row) => row.try_get("eligibility_retention_days")?,
        None => 90,
    })
}
