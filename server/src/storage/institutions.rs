//! Institutions: their settings as the relay and the gate need them, and their request-signing
//! keys. Each institution signs what the relay sends on its behalf with its own ECDSA P-256 key,
//! registered with the backend under `key_id`.
//!
//! The private scalar is kept in the database, so whoever can read the database can sign for
//! the institution; a deployment that wants the key out of the database puts it in an HSM and
//! replaces [`signer`], the one place that reads it.

use p256::ecdsa::SigningKey;
use rand::RngCore;
use sqlx::Row;
use uketsuke_backend::contract::{b64_decode, b64_encode, signing::RequestSigner};

use super::{Db, StorageError};

/// What the relay needs of an institution.
#[derive(Debug, Clone)]
pub struct RelayIdentity {
    pub institution_id: String,
    pub code: String,
    pub signer: RequestSigner,
    /// 医療扶助情報 利用する.
    pub uses_welfare_info: bool,
}

/// The relay identity of `institution_id`, or `None` if it has no usable key.
pub async fn signer(db: &Db, institution_id: &str) -> Result<Option<RelayIdentity>, StorageError> {
    let row = sqlx::query(
        "SELECT code, key_id, signing_key, uses_welfare_info FROM institutions WHERE id = $1",
    )
    .bind(institution_id)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let key_id: Option<String> = row.try_get("key_id")?;
    let secret: Option<String> = row.try_get("signing_key")?;
    let (Some(key_id), Some(secret)) = (key_id, secret) else {
        return Ok(None);
    };
    let Some(key) = b64_decode(&secret).and_then(|b| SigningKey::from_slice(&b).ok()) else {
        tracing::error!("an institution's signing key cannot be read");
        return Ok(None);
    };
    let Ok(signer) = RequestSigner::new(key_id, key) else {
        tracing::error!("an institution's key id is not well formed");
        return Ok(None);
    };
    let welfare: i64 = row.try_get("uses_welfare_info")?;
    Ok(Some(RelayIdentity {
        institution_id: institution_id.to_owned(),
        code: row.try_get("code")?,
        signer,
        uses_welfare_info: welfare != 0,
    }))
}

/// Stores `key` as the institution's signing key under `key_id`.
pub async fn set_key(
    db: &Db,
    institution_id: &str,
    key_id: &str,
    key: &SigningKey,
) -> Result<(), StorageError> {
    sqlx::query("UPDATE institutions SET key_id = $1, signing_key = $2 WHERE id = $3")
        .bind(key_id)
        .bind(b64_encode(&key.to_bytes()))
        .bind(institution_id)
        .execute(db)
        .await?;
    Ok(())
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

/// Every institution key, for registering with the built-in simulator at start.
pub async fn all_keys(db: &Db) -> Result<Vec<(String, String, SigningKey)>, StorageError> {
    let rows = sqlx::query(
        "SELECT code, key_id, signing_key FROM institutions \
         WHERE key_id IS NOT NULL AND signing_key IS NOT NULL",
    )
    .fetch_all(db)
    .await?;
    let mut keys = Vec::new();
    for row in rows {
        let secret: String = row.try_get("signing_key")?;
        if let Some(key) = b64_decode(&secret).and_then(|b| SigningKey::from_slice(&b).ok()) {
            keys.push((row.try_get("key_id")?, row.try_get("code")?, key));
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
