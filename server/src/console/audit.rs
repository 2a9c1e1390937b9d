//! The audit log: who did what to which record, when and from where — every view of
//! eligibility or medical information, every export, every change of settings and accounts,
//! every sign-in and sign-out. Rows are only appended, one hash chain per institution:
//! `hash = SHA-256(prev_hash || canonical row)`, so an edited, removed or reordered row breaks
//! the chain at that row, and rows cut off the end no longer match the chain's head.
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
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};

use super::{Staff, csv_field, jst_day_range, require_role};
use crate::{
    AppState,
    clock::from_ms,
    gate::Role,
    http::error::ApiError,
    storage::{Db, StorageError},
};

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

fn chain_hash(prev_hash: &str, institution_id: &str, e: &Entry) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(canonical(institution_id, e));
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Appends one row in `tx`. Call it before the transaction's other writes (see the module
/// comment); nothing is appended unless the transaction commits.
pub async fn append(
    tx: &mut Transaction<'_, Any>,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    now_ms: i64,
) -> Result<(), StorageError> {
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
    let head = sqlx::query("SELECT seq, hash FROM audit_heads WHERE institution_id = $1")
        .bind(institution)
        .fetch_one(&mut **tx)
        .await?;
    let prev_hash: String = head.try_get("hash")?;
    let mut entry = Entry {
        seq: head.try_get("seq")?,
        at: now_ms,
        account: actor.account.clone(),
        action: action.to_owned(),
        target: target.map(str::to_owned),
        ip: actor.ip.clone(),
        prev_hash: prev_hash.clone(),
        hash: String::new(),
    };
    entry.hash = chain_hash(&prev_hash, institution, &entry);
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
    Ok(())
}

/// Appends one row in a transaction of its own (for views, which change nothing else).
pub async fn record(
    db: &Db,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    now_ms: i64,
) -> Result<(), StorageError> {
    let mut tx = db.begin().await?;
    append(&mut tx, actor, action, target, now_ms).await?;
    tx.commit().await?;
    Ok(())
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub institution_id: String,
    /// The first row that does not verify (for a cut-off end: the head's sequence number).
    pub seq: i64,
    pub reason: &'static str,
}

/// Recomputes the chain of every institution (or of one) from its first row. `Ok` carries the
/// number of rows checked per institution id.
pub async fn verify(
    db: &Db,
    institution_id: Option<&str>,
) -> Result<Result<Vec<(String, i64)>, Broken>, StorageError> {
    let heads = match institution_id {
        Some(id) => {
            sqlx::query(
                "SELECT institution_id, seq, hash FROM audit_heads WHERE institution_id = $1",
            )
            .bind(id)
            .fetch_all(db)
            .await?
        }
        None => {
            sqlx::query("SELECT institution_id, seq, hash FROM audit_heads ORDER BY institution_id")
                .fetch_all(db)
                .await?
        }
    };
    let mut checked = Vec::new();
    for head in heads {
        let institution: String = head.try_get("institution_id")?;
        let head_seq: i64 = head.try_get("seq")?;
        let head_hash: String = head.try_get("hash")?;
        let broken = |seq, reason| Broken {
            institution_id: institution.clone(),
            seq,
            reason,
        };
        let mut prev = GENESIS.to_owned();
        let mut expected_seq = 1i64;
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
                if chain_hash(&prev, &institution, &entry) != entry.hash {
                    return Ok(Err(broken(entry.seq, "row altered")));
                }
                prev = entry.hash;
                expected_seq += 1;
            }
        }
        let count = expected_seq - 1;
        if count != head_seq || prev != head_hash {
            return Ok(Err(broken(count + 1, "rows missing at the end")));
        }
        checked.push((institution, count));
    }
    Ok(Ok(checked))
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
    let mut out = String::from("\u{feff}seq,at,account,action,target,ip,hash\r\n");
    for e in entries {
        let at = uketsuke_domain::window::to_jst(from_ms(e.at))
            .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string();
        let fields = [
            e.seq.to_string(),
            at,
            e.account,
            e.action,
            e.target.unwrap_or_default(),
            e.ip.unwrap_or_default(),
            e.hash,
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
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
