//! The audit log: who did what to which record, when and from where — every view of
//! eligibility or medical information, every export, every change of settings and accounts,
//! every sign-in and sign-out. Rows are only appended, one chain per institution:
//! `hash = HMAC-SHA-256(key, prev_hash || canonical row)` with a key that is not in the database
//! (config `audit_key_file`, see [`AuditKey`]), so an edited, removed or reordered row breaks
//! the chain at that row, rows cut off the end no longer match the chain's head, and someone
//! who can write the database but not read the key file cannot recompute the chain after an
//! edit. Chains begun before the key existed were made with the unkeyed rule
//! `SHA-256(prev_hash || canonical row)`: those rows are checked with it up to the chain's
//! switch point (`audit_heads.keyed_from`, a row `audit.keyed` appended when the server first
//! starts with a key), and every row from there on with the key. The first keyed row covers the
//! last unkeyed row's hash, so the older rows cannot be rewritten either.
//!
//! What the key does not prevent: cutting rows off the end together with the head (the head is
//! in the same database); export the head (`audit verify` prints it) to notice that.
//!
//! Appending is done inside the transaction of the change it records (where there is one), and
//! as the transaction's first write: on SQLite that takes the write lock before anything is
//! read, on PostgreSQL the head row's lock orders concurrent writers of one institution.
//!
//! Also here: `GET /api/console/audit` and its CSV export (administrators), and the check
//! behind `uketsuke-server audit verify`.

use axum::{
    Json,
    extract::{Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};
use std::{
    collections::HashMap,
    path::Path,
    sync::{LazyLock, RwLock},
};

use super::{Staff, csv_file, jst_day_range, require_role};
use crate::{
    AppState,
    clock::from_ms,
    gate::Role,
    http::error::ApiError,
    storage::{Db, StorageError},
};

/// The key of the audit chain: 32 or more secret bytes from a file outside the database.
#[derive(Clone)]
pub struct AuditKey {
    bytes: Vec<u8>,
    id: String,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey({})", self.id)
    }
}

/// The shortest key accepted, in bytes.
pub const KEY_MIN_BYTES: usize = 32;

impl AuditKey {
    /// A key from its bytes; at least [`KEY_MIN_BYTES`].
    pub fn from_bytes(bytes: &[u8]) -> Result<AuditKey, String> {
        if bytes.len() < KEY_MIN_BYTES {
            return Err(format!(
                "the audit key must be at least {KEY_MIN_BYTES} bytes (it has {}); make one with \
                 `head -c 32 /dev/urandom > audit.key`",
                bytes.len()
            ));
        }
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(bytes)
            .map_err(|_| "the audit key cannot be used".to_owned())?;
        mac.update(b"uketsuke-audit-key-id");
        let id = hex(&mac.finalize().into_bytes()[..8]);
        Ok(AuditKey {
            bytes: bytes.to_vec(),
            id,
        })
    }

    /// Reads the key file at `path`. With `create`, a missing file is made with 32 random bytes
    /// (mode 0600 on Unix): demo mode only.
    pub fn load(path: &Path, create: bool) -> Result<AuditKey, String> {
        let bytes = read_secret_file(path, create, "the audit key file")?;
        AuditKey::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The key's fingerprint (16 hex digits, an HMAC of a fixed text): names the key in the
    /// database without revealing it.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The bytes of a secret key file. With `create` (demo mode only), a missing file is made with
/// 32 random bytes, mode 0600. A demo's key at its default place in the shared temporary
/// folder (PostgreSQL demos keep theirs there) must moreover be this user's own private file — a regular file, not a
/// link, owned by this process's user, no access for group or others — as another user could
/// have put a key of their own choosing there (whose chain or seal they could then forge or
/// open).
pub(crate) fn read_secret_file(path: &Path, create: bool, what: &str) -> Result<Vec<u8>, String> {
    let shown = path.display();
    if create
        && is_shared_demo_path(path)
        && let Ok(meta) = std::fs::symlink_metadata(path)
    {
        check_own_private_file(&meta)
            .map_err(|problem| format!("{what} {shown} {problem}; delete it to make a new one"))?;
    }
    if create {
        match std::fs::symlink_metadata(path) {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = vec![0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                }
                write_new_secret(path, &bytes).map_err(|e| format!("cannot write {shown}: {e}"))?;
                return Ok(bytes);
            }
            Err(error) => return Err(format!("cannot read {what} {shown}: {error}")),
        }
    }
    std::fs::read(path).map_err(|error| format!("cannot read {what} {shown}: {error}"))
}

/// The path demo mode picks for a PostgreSQL demo's key (`config::demo_secret_file`):
/// `uketsuke-….key` directly in the shared temporary folder.
fn is_shared_demo_path(path: &Path) -> bool {
    path.parent() == Some(std::env::temp_dir().as_path())
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("uketsuke-") && n.ends_with(".key"))
}

#[cfg(unix)]
fn check_own_private_file(meta: &std::fs::Metadata) -> Result<(), &'static str> {
    use std::os::unix::fs::MetadataExt as _;
    if !meta.file_type().is_file() {
        return Err("is not a regular file");
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err("belongs to another user");
    }
    if meta.mode() & 0o077 != 0 {
        return Err("can be read or changed by other users");
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_own_private_file(meta: &std::fs::Metadata) -> Result<(), &'static str> {
    if meta.file_type().is_file() {
        Ok(())
    } else {
        Err("is not a regular file")
    }
}

#[cfg(unix)]
pub(crate) fn write_new_secret(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
pub(crate) fn write_new_secret(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The keys this process has loaded, by fingerprint: each database names the key of its chain
/// (`audit_keying`), and [`append`] takes that key from here. (One process may serve several
/// databases: the tests run many servers at once.)
static KEYS: LazyLock<RwLock<HashMap<String, AuditKey>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

/// Makes `key` available to [`append`] and [`verify`] in this process.
pub fn register(key: &AuditKey) {
    if let Ok(mut keys) = KEYS.write() {
        keys.insert(key.id.clone(), key.clone());
    }
}

fn registered(key_id: &str) -> Option<AuditKey> {
    KEYS.read().ok().and_then(|keys| keys.get(key_id).cloned())
}

/// Why a key cannot be installed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the audit key (fingerprint {given}) is not the key this database's audit chain is made \
         with (fingerprint {stored}); restore the original audit_key_file"
    )]
    Mismatch { given: String, stored: String },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The fingerprint of the key this database's chains are made with, if any.
async fn keying(
    db_or_tx: impl sqlx::Executor<'_, Database = Any>,
) -> Result<Option<String>, StorageError> {
    let row = sqlx::query("SELECT key_id FROM audit_keying WHERE id = 1")
        .fetch_optional(db_or_tx)
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get("key_id")?),
        None => None,
    })
}

/// At start-up: registers `key`, records it as this database's chain key if none is recorded
/// (refusing a different one), and switches every chain still unkeyed to the key with a row
/// `audit.keyed` (made by `-server`).
pub async fn install(db: &Db, key: &AuditKey, now_ms: i64) -> Result<(), KeyError> {
    register(key);
    sqlx::query(
        "INSERT INTO audit_keying (id, key_id, keyed_at) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&key.id)
    .bind(now_ms)
    .execute(db)
    .await
    .map_err(StorageError::from)?;
    let stored = keying(db).await?.unwrap_or_default();
    if stored != key.id {
        return Err(KeyError::Mismatch {
            given: key.id.clone(),
            stored,
        });
    }
    let unkeyed: Vec<String> = sqlx::query_scalar(
        "SELECT institution_id FROM audit_heads WHERE keyed_from IS NULL ORDER BY institution_id",
    )
    .fetch_all(db)
    .await
    .map_err(StorageError::from)?;
    for institution_id in unkeyed {
        let actor = Actor {
            institution_id,
            account: "-server".to_owned(),
            ip: None,
        };
        // A concurrent instance may switch the same chain: `append` keys the first row after
        // the switch whoever writes it, so a second marker is merely a keyed row like any other.
        record(db, &actor, "audit.keyed", Some(&key.id), now_ms).await?;
    }
    Ok(())
}

/// A chain that must be keyed while its key is not at hand: nothing is appended.
fn key_missing() -> StorageError {
    StorageError::Query(sqlx::Error::Protocol(
        "the audit key of this database is not loaded (audit_key_file)".to_owned(),
    ))
}

/// The `prev_hash` of an institution's first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who acts, for the log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub institution_id: String,
    /// The staff ID, or `-cli` / `-demo`.
    pub account: String,
    /// The client's IP address, when the act came over HTTP.
    pub ip: Option<String>,
}

impl Staff {
    /// This staff member, for the audit log.
    pub fn actor(&self) -> Actor {
        Actor {
            institution_id: self.institution_id.clone(),
            account: self.login_id.clone(),
            ip: self.ip.clone(),
        }
    }
}

impl Actor {
    /// The command line on the server itself.
    pub fn cli(institution_id: &str) -> Actor {
        Actor {
            institution_id: institution_id.to_owned(),
            account: "-cli".to_owned(),
            ip: None,
        }
    }
}

/// One row as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub seq: i64,
    pub at: i64,
    pub account: String,
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    #[serde(skip)]
    pub prev_hash: String,
    #[serde(skip)]
    pub hash: String,
}

/// The bytes a row's hash covers after the previous hash: a JSON array in fixed order, which
/// serde_json writes the same way every time (strings escaped, integers in decimal).
fn canonical(institution_id: &str, e: &Entry) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!([
        "uketsuke-audit-v1",
        institution_id,
        e.seq,
        e.at,
        e.account,
        e.action,
        e.target,
        e.ip,
    ]))
    .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The unkeyed rule of rows made before the chain's switch point.
fn chain_hash(prev_hash: &str, institution_id: &str, e: &Entry) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(canonical(institution_id, e));
    hex(&hasher.finalize())
}

/// The keyed rule: HMAC-SHA-256 under the audit key over the same bytes.
fn keyed_hash(key: &AuditKey, prev_hash: &str, institution_id: &str, e: &Entry) -> String {
    // HMAC takes keys of any length; `from_bytes` has checked this one.
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&key.bytes) else {
        return String::new();
    };
    mac.update(prev_hash.as_bytes());
    mac.update(&canonical(institution_id, e));
    hex(&mac.finalize().into_bytes())
}

/// Appends one row in `tx` and returns its sequence number. Call it before the transaction's
/// other writes (see the module comment); nothing is appended unless the transaction commits.
pub async fn append(
    tx: &mut Transaction<'_, Any>,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    now_ms: i64,
) -> Result<i64, StorageError> {
    let institution = actor.institution_id.as_str();
    sqlx::query(
        "INSERT INTO audit_heads (institution_id, seq, hash) VALUES ($1, 0, $2) \
         ON CONFLICT (institution_id) DO NOTHING",
    )
    .bind(institution)
    .bind(GENESIS)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE audit_heads SET seq = seq + 1 WHERE institution_id = $1")
        .bind(institution)
        .execute(&mut **tx)
        .await?;
    let head =
        sqlx::query("SELECT seq, hash, keyed_from FROM audit_heads WHERE institution_id = $1")
            .bind(institution)
            .fetch_one(&mut **tx)
            .await?;
    let prev_hash: String = head.try_get("hash")?;
    let seq: i64 = head.try_get("seq")?;
    let keyed_from: Option<i64> = head.try_get("keyed_from")?;
    // The chain's key: the one the database names, which this process must have loaded. A chain
    // once keyed never goes back to the unkeyed rule (the database's key row gone is an error).
    let key = match keying(&mut **tx).await? {
        Some(key_id) => Some(registered(&key_id).ok_or_else(|| {
            tracing::error!(key = %key_id, "the audit key of this database is not loaded");
            key_missing()
        })?),
        None if keyed_from.is_some() => {
            tracing::error!("an audit chain is keyed but the database names no key");
            return Err(key_missing());
        }
        None => None,
    };
    if key.is_some() && keyed_from.is_none() {
        sqlx::query("UPDATE audit_heads SET keyed_from = $1 WHERE institution_id = $2")
            .bind(seq)
            .bind(institution)
            .execute(&mut **tx)
            .await?;
    }
    let mut entry = Entry {
        seq,
        at: now_ms,
        account: actor.account.clone(),
        action: action.to_owned(),
        target: target.map(str::to_owned),
        ip: actor.ip.clone(),
        prev_hash: prev_hash.clone(),
        hash: String::new(),
    };
    entry.hash = match &key {
        Some(key) => keyed_hash(key, &prev_hash, institution, &entry),
        None => chain_hash(&prev_hash, institution, &entry),
    };
    sqlx::query("UPDATE audit_heads SET hash = $1 WHERE institution_id = $2")
        .bind(&entry.hash)
        .bind(institution)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO audit_log \
            (institution_id, seq, at, account, action, target, ip, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(institution)
    .bind(entry.seq)
    .bind(entry.at)
    .bind(&entry.account)
    .bind(&entry.action)
    .bind(&entry.target)
    .bind(&entry.ip)
    .bind(&entry.prev_hash)
    .bind(&entry.hash)
    .execute(&mut **tx)
    .await?;
    Ok(entry.seq)
}

/// Appends one row in a transaction of its own (for views, which change nothing else).
pub async fn record(
    db: &Db,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    now_ms: i64,
) -> Result<(), StorageError> {
    let mut tx = crate::storage::begin(db).await?;
    append(&mut tx, actor, action, target, now_ms).await?;
    tx.commit().await?;
    Ok(())
}

/// The target of an `audit.pruned` row: the anchor the chain continues from.
fn anchor_text(through: i64, hash: &str) -> String {
    format!("through={through} hash={hash}")
}

/// Deletes every institution's audit rows written before `cutoff_ms`, rounded down to a UTC day
/// so that a chain is pruned at most once a day. The chain then continues from an anchor: the
/// last deleted row's sequence number and hash, kept in `audit_heads` (`pruned_through`,
/// `pruned_hash`) and named by a keyed row `audit.pruned` (by `-server`) appended in the same
/// transaction, which the deletion cannot reach. [`verify_with`] starts from the anchor and
/// requires the chain's latest `audit.pruned` row to name it, so moving the anchor on (to hide
/// more rows) needs the audit key. Returns the number of rows deleted.
pub async fn prune(db: &Db, cutoff_ms: i64, now_ms: i64) -> Result<u64, StorageError> {
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let cutoff = cutoff_ms.div_euclid(DAY_MS) * DAY_MS;
    let heads = sqlx::query(
        "SELECT h.institution_id, h.pruned_through, \
                (SELECT MIN(l.seq) FROM audit_log l \
                  WHERE l.institution_id = h.institution_id AND l.at >= $1) AS first_kept, \
                (SELECT MIN(l.seq) FROM audit_log l \
                  WHERE l.institution_id = h.institution_id AND l.at < $1) AS first_old, \
                h.seq \
         FROM audit_heads h ORDER BY h.institution_id",
    )
    .bind(cutoff)
    .fetch_all(db)
    .await?;
    let mut deleted = 0;
    for head in heads {
        let institution_id: String = head.try_get("institution_id")?;
        let pruned_through: Option<i64> = head.try_get("pruned_through")?;
        let first_old: Option<i64> = head.try_get("first_old")?;
        let first_kept: Option<i64> = head.try_get("first_kept")?;
        let head_seq: i64 = head.try_get("seq")?;
        if first_old.is_none() {
            continue;
        }
        // Everything before the first row still within retention (a clock set back never
        // takes a younger row with it).
        let through = first_kept.map_or(head_seq, |kept| kept - 1);
        if through < 1 || pruned_through.is_some_and(|p| p >= through) {
            continue;
        }
        let hash: Option<String> =
            sqlx::query_scalar("SELECT hash FROM audit_log WHERE institution_id = $1 AND seq = $2")
                .bind(&institution_id)
                .bind(through)
                .fetch_optional(db)
                .await?;
        let Some(hash) = hash else { continue };
        let actor = Actor {
            institution_id: institution_id.clone(),
            account: "-server".to_owned(),
            ip: None,
        };
        let mut tx = crate::storage::begin(db).await?;
        append(
            &mut tx,
            &actor,
            "audit.pruned",
            Some(&anchor_text(through, &hash)),
            now_ms,
        )
        .await?;
        // Another instance may have pruned meanwhile: then this one writes nothing.
        let current: Option<i64> =
            sqlx::query_scalar("SELECT pruned_through FROM audit_heads WHERE institution_id = $1")
                .bind(&institution_id)
                .fetch_one(&mut *tx)
                .await?;
        if current.is_some_and(|p| p >= through) {
            tx.rollback().await?;
            continue;
        }
        deleted += sqlx::query("DELETE FROM audit_log WHERE institution_id = $1 AND seq <= $2")
            .bind(&institution_id)
            .bind(through)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "UPDATE audit_heads SET pruned_through = $1, pruned_hash = $2 \
             WHERE institution_id = $3",
        )
        .bind(through)
        .bind(&hash)
        .bind(&institution_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(deleted)
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub institution_id: String,
    /// The first row that does not verify (for a cut-off end: the head's sequence number).
    pub seq: i64,
    pub reason: &'static str,
}

/// Recomputes the chain of every institution (or of one) from its first row, with the key this
/// database names (as loaded in this process by [`install`] or [`register`]). `Ok` carries the
/// number of rows checked per institution id.
pub async fn verify(
    db: &Db,
    institution_id: Option<&str>,
) -> Result<Result<Vec<(String, i64)>, Broken>, StorageError> {
    let key = keying(db).await?.and_then(|id| registered(&id));
    verify_with(db, institution_id, key.as_ref()).await
}

/// As [`verify`], with `key` as the one the chains must be made with (the configured key, for
/// `audit verify`). With a key, every chain that has rows must have switched to it: a database
/// writer who removes the switch point and the key's record to recompute the chain unkeyed is
/// found. Without one, keyed rows cannot be checked and are reported.
pub async fn verify_with(
    db: &Db,
    institution_id: Option<&str>,
    key: Option<&AuditKey>,
) -> Result<Result<Vec<(String, i64)>, Broken>, StorageError> {
    let heads = match institution_id {
        Some(id) => {
            sqlx::query(
                "SELECT institution_id, seq, hash, keyed_from, pruned_through, pruned_hash \
                 FROM audit_heads WHERE institution_id = $1",
            )
            .bind(id)
            .fetch_all(db)
            .await?
        }
        None => {
            sqlx::query(
                "SELECT institution_id, seq, hash, keyed_from, pruned_through, pruned_hash \
                 FROM audit_heads ORDER BY institution_id",
            )
            .fetch_all(db)
            .await?
        }
    };
    let stored_key = keying(db).await?;
    let mut checked = Vec::new();
    for head in heads {
        let institution: String = head.try_get("institution_id")?;
        let head_seq: i64 = head.try_get("seq")?;
        let head_hash: String = head.try_get("hash")?;
        let keyed_from: Option<i64> = head.try_get("keyed_from")?;
        let pruned_through: Option<i64> = head.try_get("pruned_through")?;
        let pruned_hash: Option<String> = head.try_get("pruned_hash")?;
        let broken = |seq, reason| Broken {
            institution_id: institution.clone(),
            seq,
            reason,
        };
        if let Some(key) = key {
            if stored_key.as_deref().is_some_and(|stored| stored != key.id) {
                return Ok(Err(broken(
                    keyed_from.unwrap_or(1),
                    "chain made with another audit key",
                )));
            }
            // Every chain with rows has a switch point inside it (the switch row is written
            // with the key, so the point cannot lie past the head).
            if head_seq > 0 && keyed_from.is_none_or(|from| from < 1 || from > head_seq) {
                return Ok(Err(broken(1, "chain not keyed")));
            }
        } else if keyed_from.is_some() {
            return Ok(Err(broken(
                keyed_from.unwrap_or(1),
                "audit key needed to check this chain",
            )));
        }
        // Rows pruned under `audit_retention_days`: the chain continues from the anchor, which
        // the latest `audit.pruned` row must name (checked below).
        let (mut prev, mut expected_seq, anchor) = match (pruned_through, pruned_hash) {
            (None, None) => (GENESIS.to_owned(), 1i64, None),
            (Some(through), Some(hash)) if through >= 1 && through <= head_seq => {
                let anchor = anchor_text(through, &hash);
                (hash, through + 1, Some(anchor))
            }
            _ => return Ok(Err(broken(1, "pruning anchor not well formed"))),
        };
        let first_seq = expected_seq;
        let mut last_pruned_row: Option<String> = None;
        // Read in pages so a long log does not sit in memory at once.
        loop {
            let rows = sqlx::query(
                "SELECT seq, at, account, action, target, ip, prev_hash, hash FROM audit_log \
                 WHERE institution_id = $1 AND seq >= $2 ORDER BY seq LIMIT 1000",
            )
            .bind(&institution)
            .bind(expected_seq)
            .fetch_all(db)
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let entry = entry_of(&row)?;
                if entry.seq != expected_seq {
                    return Ok(Err(broken(expected_seq, "row missing")));
                }
                if entry.prev_hash != prev {
                    return Ok(Err(broken(entry.seq, "previous hash does not match")));
                }
                let expected = match (key, keyed_from) {
                    (Some(key), Some(from)) if entry.seq >= from => {
                        keyed_hash(key, &prev, &institution, &entry)
                    }
                    _ => chain_hash(&prev, &institution, &entry),
                };
                if expected != entry.hash {
                    return Ok(Err(broken(entry.seq, "row altered")));
                }
                if entry.action == "audit.pruned" {
                    last_pruned_row = entry.target.clone();
                }
                prev = entry.hash;
                expected_seq += 1;
            }
        }
        if expected_seq - 1 != head_seq || prev != head_hash {
            return Ok(Err(broken(expected_seq, "rows missing at the end")));
        }
        if anchor.is_some() && last_pruned_row != anchor {
            return Ok(Err(broken(
                first_seq,
                "pruning anchor not recorded in the chain (rows missing at the start)",
            )));
        }
        checked.push((institution, expected_seq - first_seq));
    }
    Ok(Ok(checked))
}

/// The head of each chain (institution id, sequence number, hash), to keep outside the
/// database: a later head that does not continue from it shows rows cut off the end.
pub async fn heads(db: &Db) -> Result<Vec<(String, i64, String)>, StorageError> {
    let rows =
        sqlx::query("SELECT institution_id, seq, hash FROM audit_heads ORDER BY institution_id")
            .fetch_all(db)
            .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push((
            row.try_get("institution_id")?,
            row.try_get("seq")?,
            row.try_get("hash")?,
        ));
    }
    Ok(out)
}

fn entry_of(row: &sqlx::any::AnyRow) -> Result<Entry, StorageError> {
    Ok(Entry {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        account: row.try_get("account")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        ip: row.try_get("ip")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}

/// Filters of the log view.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// First day (JST), inclusive.
    pub from: Option<String>,
    /// Last day (JST), inclusive.
    pub to: Option<String>,
    pub account: Option<String>,
    pub action: Option<String>,
}

/// Rows are shown newest first, at most this many at once.
const PAGE: i64 = 1000;
/// The CSV export's upper bound.
const EXPORT_MAX: i64 = 100_000;

async fn query(
    db: &Db,
    institution_id: &str,
    filter: &Filter,
    limit: i64,
) -> Result<Result<Vec<Entry>, ApiError>, StorageError> {
    let bad = |code| Ok(Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code)));
    let from = match filter.from.as_deref().filter(|s| !s.is_empty()) {
        Some(text) => match jst_day_range(text) {
            Some((start, _)) => start,
            None => return bad("from_invalid"),
        },
        None => i64::MIN,
    };
    let to = match filter.to.as_deref().filter(|s| !s.is_empty()) {
        Some(text) => match jst_day_range(text) {
            Some((_, end)) => end,
            None => return bad("to_invalid"),
        },
        None => i64::MAX,
    };
    let text_ok = |t: &Option<String>| t.as_ref().is_none_or(|t| t.len() <= 64);
    if !text_ok(&filter.account) || !text_ok(&filter.action) {
        return bad("filter_invalid");
    }
    let account = filter.account.clone().filter(|s| !s.is_empty());
    let action = filter.action.clone().filter(|s| !s.is_empty());
    let rows = sqlx::query(
        "SELECT seq, at, account, action, target, ip, prev_hash, hash FROM audit_log \
         WHERE institution_id = $1 AND at >= $2 AND at < $3 \
           AND ($4 IS NULL OR account = $4) AND ($5 IS NULL OR action = $5) \
         ORDER BY seq DESC LIMIT $6",
    )
    .bind(institution_id)
    .bind(from)
    .bind(to)
    .bind(account)
    .bind(action)
    .bind(limit)
    .fetch_all(db)
    .await?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in &rows {
        entries.push(entry_of(row)?);
    }
    Ok(Ok(entries))
}

#[derive(Debug, Serialize)]
pub struct AuditPage {
    pub entries: Vec<EntryView>,
    /// More rows matched than are shown.
    pub truncated: bool,
}

#[derive(Debug, Serialize)]
pub struct EntryView {
    pub seq: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub account: String,
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
}

fn view(entry: Entry) -> EntryView {
    EntryView {
        seq: entry.seq,
        at: from_ms(entry.at),
        account: entry.account,
        action: entry.action,
        target: entry.target,
        ip: entry.ip,
    }
}

/// `GET /api/console/audit?from&to&account&action` (administrators).
pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    filter: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    require_role(&staff, &[Role::Administrator])?;
    let Query(filter) =
        filter.map_err(|_| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "filter_invalid"))?;
    let mut entries = query(&state.db, &staff.institution_id, &filter, PAGE + 1).await??;
    record(
        &state.db,
        &staff.actor(),
        "audit.view",
        None,
        state.clock.now_ms(),
    )
    .await?;
    let truncated = entries.len() as i64 > PAGE;
    entries.truncate(PAGE as usize);
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(view).collect(),
        truncated,
    }))
}

/// `GET /api/console/audit.csv?from&to&account&action` (administrators): UTF-8 with BOM.
pub async fn export(
    State(state): State<AppState>,
    staff: Staff,
    filter: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    require_role(&staff, &[Role::Administrator])?;
    let Query(filter) =
        filter.map_err(|_| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "filter_invalid"))?;
    let entries = query(&state.db, &staff.institution_id, &filter, EXPORT_MAX).await??;
    record(
        &state.db,
        &staff.actor(),
        "audit.export",
        None,
        state.clock.now_ms(),
    )
    .await?;
    let rows: Vec<Vec<String>> = entries
        .into_iter()
        .map(|e| {
            let at = uketsuke_domain::window::to_jst(from_ms(e.at))
                .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
                .to_string();
            vec![
                e.seq.to_string(),
                at,
                e.account,
                e.action,
                e.target.unwrap_or_default(),
                e.ip.unwrap_or_default(),
                e.hash,
            ]
        })
        .collect();
    let out = csv_file::write(
        &["seq", "at", "account", "action", "target", "ip", "hash"],
        &rows,
        csv_file::Encoding::Utf8,
        &csv_file::Substitute::default(),
    )
    .map_err(|error| {
        tracing::error!(%error, "the audit export could not be written");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
    })?
    .bytes;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A demo's key file is made private and read back; one that others can read, or a link,
    /// is refused rather than used; a configured (production) file is read as it is.
    #[cfg(unix)]
    #[test]
    fn demo_key_files_must_be_this_users_private_files() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("temp dir");
        // The place demo mode picks: directly in the temporary folder, `uketsuke-….key`.
        let name = format!("uketsuke-test-{}.key", std::process::id());
        let path = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_file(&path);
        let made = read_secret_file(&path, true, "the key").expect("made");
        assert_eq!(made.len(), 32);
        assert_eq!(
            read_secret_file(&path, true, "the key").expect("read"),
            made
        );
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let refused = read_secret_file(&path, true, "the key").expect_err("readable by others");
        assert!(refused.contains("other users"), "{refused}");
        assert_eq!(
            read_secret_file(&path, false, "the key").expect("configured"),
            made
        );

        // A configured key elsewhere (not the shared default place) is the operator's choice.
        let configured = dir.path().join("audit.key");
        std::fs::write(&configured, &made).expect("write");
        assert_eq!(
            read_secret_file(&configured, true, "the key").expect("read"),
            made
        );

        std::fs::remove_file(&path).expect("remove");
        std::os::unix::fs::symlink(&configured, &path).expect("symlink");
        let refused = read_secret_file(&path, true, "the key").expect_err("a link");
        assert!(refused.contains("not a regular file"), "{refused}");
        std::fs::remove_file(&path).expect("remove the link");
    }

    fn entry(seq: i64) -> Entry {
        Entry {
            seq,
            at: 1_700_000_000_000,
            account: "admin".to_owned(),
            action: "signin".to_owned(),
            target: None,
            ip: Some("127.0.0.1".to_owned()),
            prev_hash: GENESIS.to_owned(),
            hash: String::new(),
        }
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = chain_hash(GENESIS, "i", &entry(1));
        assert_eq!(base.len(), 64);
        assert_eq!(base, chain_hash(GENESIS, "i", &entry(1)));
        assert_ne!(base, chain_hash(GENESIS, "j", &entry(1)));
        assert_ne!(base, chain_hash(GENESIS, "i", &entry(2)));
        let mut other = entry(1);
        other.target = Some("x".to_owned());
        assert_ne!(base, chain_hash(GENESIS, "i", &other));
        let mut other = entry(1);
        other.ip = None;
        assert_ne!(base, chain_hash(GENESIS, "i", &other));
        assert_ne!(base, chain_hash(&"1".repeat(64), "i", &entry(1)));
    }

    #[test]
    fn the_keyed_rule_needs_the_key() {
        let key = AuditKey::from_bytes(&[1u8; 32]).expect("key");
        let other = AuditKey::from_bytes(&[2u8; 32]).expect("key");
        let keyed = keyed_hash(&key, GENESIS, "i", &entry(1));
        assert_eq!(keyed.len(), 64);
        assert_ne!(keyed, chain_hash(GENESIS, "i", &entry(1)));
        assert_ne!(keyed, keyed_hash(&other, GENESIS, "i", &entry(1)));
        assert_ne!(key.id(), other.id());
        assert_eq!(key.id().len(), 16);
        assert!(AuditKey::from_bytes(&[1u8; 31]).is_err());
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        // "ab" + "c" and "a" + "bc" must not hash alike.
        let mut a = entry(1);
        a.account = "ab".to_owned();
        a.action = "c".to_owned();
        let mut b = entry(1);
        b.account = "a".to_owned();
        b.action = "bc".to_owned();
        assert_ne!(chain_hash(GENESIS, "i", &a), chain_hash(GENESIS, "i", &b));
    }
}
