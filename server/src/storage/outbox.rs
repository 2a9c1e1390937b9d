//! The relay's outbox: requests to the backend, written in the same transaction as the state
//! change they carry, and drained by the relay workers of every server instance. A worker
//! claims a row with one conditional UPDATE (so two instances never send the same row at the
//! same moment) and holds it for a lease; a worker that dies mid-send loses its lease and the row
//! is sent again, with the same idempotency key, so the backend answers it once.
//!
//! Workers are woken, not left to find rows on a timer: the writer of a row rings the relay's
//! in-process `Notify` after its commit, and on PostgreSQL the row's transaction also sends a
//! `NOTIFY` on [`CHANNEL`], which every instance's [`listen`] task turns into a wake-up of its
//! own workers. Idle workers otherwise sleep until the next row falls due ([`next_due`]: a
//! retry's backoff or a lease that lapses) or a slow safety poll, so a missed notification
//! delays a row, never loses it.

use std::{sync::Arc, time::Duration};

use sqlx::{Any, Row, Transaction};
use tokio::sync::Notify;

use super::{Db, StorageError};

/// The PostgreSQL notification channel on which a committed outbox row is announced to the
/// relay workers of every server instance sharing the database.
pub const CHANNEL: &str = "uketsuke_outbox";

/// What an outbox row asks the backend to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Register,
    Eligibility,
    Withdraw,
    HomeVisit,
    /// 同意の更新: both categories as the patient last saved them.
    ConsentUpdate,
    /// 健康保険証利用登録 of the reception's card (`storage::insurance_use`).
    InsuranceUse,
}

impl Operation {
    pub const fn code(self) -> &'static str {
        match self {
            Operation::Register => "register",
            Operation::Eligibility => "eligibility",
            Operation::Withdraw => "withdraw",
            Operation::HomeVisit => "home_visit",
            Operation::ConsentUpdate => "consent_update",
            Operation::InsuranceUse => "insurance_use",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [
            Operation::Register,
            Operation::Eligibility,
            Operation::Withdraw,
            Operation::HomeVisit,
            Operation::ConsentUpdate,
            Operation::InsuranceUse,
        ]
        .into_iter()
        .find(|o| o.code() == code)
    }
}

/// Adds a row to the outbox inside the caller's transaction.
pub async fn enqueue(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    reception_id: &str,
    operation: Operation,
    payload: &str,
    now_ms: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO outbox (id, reception_id, operation, payload, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(id)
    .bind(reception_id)
    .bind(operation.code())
    .bind(payload)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    announce_in(tx).await
}

/// On PostgreSQL, queues a notification on [`CHANNEL`] in the caller's transaction: it is
/// delivered to the listening instances when (and only if) the transaction commits, so no
/// worker looks for a row that is not visible yet. Several rows of one transaction are one
/// notification. SQLite has a single instance: the caller's in-process wake-up is enough.
pub async fn announce_in(tx: &mut Transaction<'_, Any>) -> Result<(), StorageError> {
    if tx.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// When the next undelivered row can be claimed (ms, business clock): its `next_attempt_at`,
/// or the end of its lease if a worker holds it longer. Held rows (`hold`) are not waiting:
/// only `relay resume` releases them. `None` when nothing is waiting.
pub async fn next_due(db: &Db) -> Result<Option<i64>, StorageError> {
    let row = sqlx::query(
        "SELECT MIN(CASE WHEN locked_until IS NOT NULL AND locked_until > next_attempt_at \
                         THEN locked_until ELSE next_attempt_at END) AS due \
         FROM outbox WHERE done_at IS NULL AND held_code IS NULL",
    )
    .fetch_one(db)
    .await?;
    Ok(row.try_get::<Option<i64>, _>("due")?)
}

/// On PostgreSQL, listens on [`CHANNEL`] for as long as the runtime runs and wakes one of this
/// instance's idle workers per notification. When the listening connection drops, every idle
/// worker is woken once (a notification may have been missed meanwhile) and the listener
/// reconnects; it keeps retrying every few seconds while the database is unreachable. Nothing
/// to do on SQLite.
pub fn listen(database_url: &str, wake: Arc<Notify>) {
    if !database_url.starts_with("postgres:") && !database_url.starts_with("postgresql:") {
        return;
    }
    let url = database_url.to_owned();
    tokio::spawn(async move {
        let mut listener = None;
        loop {
            let Some(active) = listener.as_mut() else {
                match connect_listener(&url).await {
                    Ok(connected) => {
                        listener = Some(connected);
                        // Rows written while nobody listened.
                        wake.notify_waiters();
                    }
                    Err(error) => {
                        tracing::warn!(%error, "relay cannot listen for outbox notifications; retrying");
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                }
                continue;
            };
            match active.try_recv().await {
                Ok(Some(_)) => wake.notify_one(),
                Ok(None) => {
                    // The connection was lost and will be re-established by the next call.
                    tracing::warn!("outbox notifications: connection lost; reconnecting");
                    wake.notify_waiters();
                }
                Err(error) => {
                    tracing::warn!(%error, "outbox notifications: listener failed; reconnecting");
                    listener = None;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
}

async fn connect_listener(url: &str) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// A claimed row.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub reception_id: String,
    pub operation: Operation,
    pub payload: String,
    /// Sends tried before this one.
    pub attempts: i64,
}

/// The claim: $1 the end of the lease, $2 the worker, $3 now; the argument is the row lock the
/// look takes (PostgreSQL's; none on SQLite).
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE outbox SET locked_until = $1, locked_by = $2 \
             WHERE id = (SELECT id FROM outbox \
                         WHERE done_at IS NULL AND held_code IS NULL AND next_attempt_at <= $3 \
                           AND (locked_until IS NULL OR locked_until <= $3) \
                         ORDER BY next_attempt_at LIMIT 1 ",
            $lock,
            ") \
               AND done_at IS NULL AND held_code IS NULL \
               AND (locked_until IS NULL OR locked_until <= $3) \
             RETURNING id, reception_id, operation, payload, attempts"
        )
    };
}

/// Claims up to one due row for `worker`, holding it until `now_ms + lease_ms`: the oldest due
/// row, found, leased and read in one statement. On SQLite the statement holds the write lock
/// from the look to the lease, so no other worker can come between; on PostgreSQL the look
/// locks the row it picks and passes over rows another worker is claiming at that moment
/// (`FOR UPDATE SKIP LOCKED`), and the lease's own conditions are checked again on the row as
/// it is when it is updated.
pub async fn claim(
    db: &Db,
    worker: &str,
    now_ms: i64,
    lease_ms: i64,
) -> Result<Option<Job>, StorageError> {
    let sql = if super::is_sqlite(db) {
        claim_sql!("")
    } else {
        claim_sql!("FOR UPDATE SKIP LOCKED")
    };
    loop {
        let turn = super::write_turn(db).await;
        let claimed = sqlx::query(sql)
            .bind(now_ms + lease_ms)
            .bind(worker)
            .bind(now_ms)
            .fetch_optional(db)
            .await?;
        drop(turn);
        let Some(row) = claimed else {
            return Ok(None);
        };
        let id: String = row.try_get("id")?;
        let operation: String = row.try_get("operation")?;
        let Some(operation) = Operation::from_code(&operation) else {
            tracing::error!(operation = %operation, "outbox row with an unknown operation");
            finish_alone(db, &id, now_ms, Some("unknown operation")).await?;
            continue;
        };
        return Ok(Some(Job {
            id,
            reception_id: row.try_get("reception_id")?,
            operation,
            payload: row.try_get("payload")?,
            attempts: row.try_get("attempts")?,
        }));
    }
}

/// Marks a row delivered inside the caller's transaction (with the state change the answer
/// brings), only if `worker` still holds it. The payload is dropped: it may hold the card's
/// certificate, which is not needed once the backend has it. False when the lease was lost.
pub async fn finish(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    worker: &str,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE outbox SET done_at = $1, payload = '', locked_until = NULL, last_error = NULL \
         WHERE id = $2 AND locked_by = $3 AND done_at IS NULL",
    )
    .bind(now_ms)
    .bind(id)
    .bind(worker)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(done == 1)
}

/// Marks a row done with nothing else to change (e.g. a withdrawal of a refused reception).
pub async fn finish_alone(
    db: &Db,
    id: &str,
    now_ms: i64,
    note: Option<&str>,
) -> Result<(), StorageError> {
    let _turn = super::write_turn(db).await;
    sqlx::query(
        "UPDATE outbox SET done_at = $1, payload = '', locked_until = NULL, last_error = $2 \
         WHERE id = $3 AND done_at IS NULL",
    )
    .bind(now_ms)
    .bind(note)
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// Gives a row back after a failed send, to be tried again at `next_attempt_at`.
pub async fn retry_later(
    db: &Db,
    id: &str,
    worker: &str,
    next_attempt_at: i64,
    error: &str,
) -> Result<(), StorageError> {
    let _turn = super::write_turn(db).await;
    sqlx::query(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, locked_until = NULL, \
                last_error = $2 \
         WHERE id = $3 AND locked_by = $4 AND done_at IS NULL",
    )
    .bind(next_attempt_at)
    .bind(error)
    .bind(id)
    .bind(worker)
    .execute(db)
    .await?;
    Ok(())
}

/// Gives a row back without counting a failure (it waits for an earlier row of its reception).
pub async fn postpone(
    db: &Db,
    id: &str,
    worker: &str,
    next_attempt_at: i64,
) -> Result<(), StorageError> {
    let _turn = super::write_turn(db).await;
    sqlx::query(
        "UPDATE outbox SET next_attempt_at = $1, locked_until = NULL \
         WHERE id = $2 AND locked_by = $3 AND done_at IS NULL",
    )
    .bind(next_attempt_at)
    .bind(id)
    .bind(worker)
    .execute(db)
    .await?;
    Ok(())
}

/// Whether an older row of the same reception and operation is still undelivered. Each consent
/// update carries the whole state, so they must reach the backend in the order they were saved:
/// a newer one waits for the older ones instead of racing them on another worker. Rows of the
/// same millisecond are ordered by id, so two of them never wait for each other.
pub async fn older_pending(db: &Db, job: &Job) -> Result<bool, StorageError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM outbox o, outbox c \
         WHERE c.id = $1 AND o.reception_id = c.reception_id AND o.operation = c.operation \
           AND o.done_at IS NULL \
           AND (o.created_at < c.created_at OR (o.created_at = c.created_at AND o.id < c.id))",
    )
    .bind(&job.id)
    .fetch_one(db)
    .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Whether a row of `operation` for the reception is still waiting to be delivered.
pub async fn undelivered(
    db: &Db,
    reception_id: &str,
    operation: Operation,
) -> Result<bool, StorageError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM outbox \
         WHERE reception_id = $1 AND operation = $2 AND done_at IS NULL",
    )
    .bind(reception_id)
    .bind(operation.code())
    .fetch_one(db)
    .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Whether `operation` of the reception is still on its way: not delivered, not held for a
/// refusal no retry can cure, and tried fewer than `max_attempts` times.
pub async fn in_flight(
    db: &Db,
    reception_id: &str,
    operation: Operation,
    max_attempts: i64,
) -> Result<bool, StorageError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM outbox \
         WHERE reception_id = $1 AND operation = $2 AND done_at IS NULL \
           AND held_code IS NULL AND attempts < $3",
    )
    .bind(reception_id)
    .bind(operation.code())
    .bind(max_attempts)
    .fetch_one(db)
    .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// When the oldest undelivered row was written (ms), for the status report.
pub async fn oldest_pending(db: &Db) -> Result<Option<i64>, StorageError> {
    let row = sqlx::query("SELECT MIN(created_at) AS at FROM outbox WHERE done_at IS NULL")
        .fetch_one(db)
        .await?;
    Ok(row.try_get("at")?)
}

/// Rows not yet delivered, for the readiness report and tests.
pub async fn pending(db: &Db) -> Result<i64, StorageError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE done_at IS NULL")
        .fetch_one(db)
        .await?;
    Ok(row.try_get("n")?)
}

/// Stops sending a row after a refusal no retry can cure (see
/// [`crate::backend_client::CallError::needs_operator`]): the row keeps its payload and waits
/// for [`resume`]. Records the cause for the institution; true when it is a new cause (no row
/// of the institution was held for `code` before), which the caller logs.
#[allow(clippy::too_many_arguments)]
pub async fn hold(
    db: &Db,
    id: &str,
    worker: &str,
    institution_id: &str,
    key_id: &str,
    operation: Operation,
    code: &str,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let mut tx = crate::storage::begin(db).await?;
    let held = sqlx::query(
        "UPDATE outbox SET held_code = $1, attempts = attempts + 1, locked_until = NULL, \
                last_error = $1 \
         WHERE id = $2 AND locked_by = $3 AND done_at IS NULL",
    )
    .bind(code)
    .bind(id)
    .bind(worker)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if held != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    // The console's live list follows `updated_at`: it shows the hold without a reload.
    sqlx::query(
        "UPDATE receptions SET updated_at = $1 \
         WHERE id = (SELECT reception_id FROM outbox WHERE id = $2)",
    )
    .bind(now_ms)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    // A cause recorded earlier whose rows are all gone (delivered after a resume, or deleted)
    // is over: forget it, so that this hold is a new cause and is logged.
    sqlx::query(
        "DELETE FROM relay_holds WHERE institution_id = $1 AND code = $2 AND NOT EXISTS \
         (SELECT 1 FROM outbox o JOIN receptions r ON r.id = o.reception_id \
           WHERE r.institution_id = $1 AND o.held_code = $2 AND o.done_at IS NULL \
             AND o.id <> $3)",
    )
    .bind(institution_id)
    .bind(code)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let new_cause = sqlx::query(
        "INSERT INTO relay_holds (institution_id, code, key_id, operation, since) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (institution_id, code) DO NOTHING",
    )
    .bind(institution_id)
    .bind(code)
    .bind(key_id)
    .bind(operation.code())
    .bind(now_ms)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(new_cause == 1)
}

/// A cause for which rows are held: the institution (code), the key it signed with, the
/// refusal, the operation that met it first, since when (ms), and how many rows wait.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hold {
    pub institution_code: String,
    pub key_id: String,
    pub code: String,
    pub operation: String,
    pub since_ms: i64,
    pub rows: i64,
}

/// Every cause rows are held for, oldest first.
pub async fn holds(db: &Db) -> Result<Vec<Hold>, StorageError> {
    let rows = sqlx::query(
        "SELECT i.code AS institution_code, h.key_id, h.code, h.operation, h.since, \
                (SELECT COUNT(*) FROM outbox o JOIN receptions r ON r.id = o.reception_id \
                  WHERE r.institution_id = h.institution_id AND o.held_code = h.code \
                    AND o.done_at IS NULL) AS n \
         FROM relay_holds h JOIN institutions i ON i.id = h.institution_id \
         ORDER BY h.since, i.code, h.code",
    )
    .fetch_all(db)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let rows: i64 = row.try_get("n")?;
        if rows == 0 {
            // Nothing waits for this cause any more.
            continue;
        }
        out.push(Hold {
            institution_code: row.try_get("institution_code")?,
            key_id: row.try_get("key_id")?,
            code: row.try_get("code")?,
            operation: row.try_get("operation")?,
            since_ms: row.try_get("since")?,
            rows,
        });
    }
    Ok(out)
}

/// The refusal a reception's undelivered rows are held for, if any.
pub async fn held_code(db: &Db, reception_id: &str) -> Result<Option<String>, StorageError> {
    let row = sqlx::query(
        "SELECT MIN(held_code) AS code FROM outbox \
         WHERE reception_id = $1 AND done_at IS NULL AND held_code IS NOT NULL",
    )
    .bind(reception_id)
    .fetch_one(db)
    .await?;
    Ok(row.try_get("code")?)
}

/// Sends an institution's held rows again, now, and forgets their causes; the number of rows.
/// Run once the cause is fixed (the key registered, the backend's address or version right).
/// A cause still there holds the rows again after one more send each, and is logged again.
pub async fn resume(db: &Db, institution_id: &str, now_ms: i64) -> Result<u64, StorageError> {
    let mut tx = crate::storage::begin(db).await?;
    sqlx::query(
        "UPDATE receptions SET updated_at = $1 \
         WHERE institution_id = $2 AND id IN \
           (SELECT reception_id FROM outbox WHERE held_code IS NOT NULL AND done_at IS NULL)",
    )
    .bind(now_ms)
    .bind(institution_id)
    .execute(&mut *tx)
    .await?;
    let resumed = sqlx::query(
        "UPDATE outbox SET held_code = NULL, next_attempt_at = $1 \
         WHERE held_code IS NOT NULL AND done_at IS NULL \
           AND reception_id IN (SELECT id FROM receptions WHERE institution_id = $2)",
    )
    .bind(now_ms)
    .bind(institution_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM relay_holds WHERE institution_id = $1")
        .bind(institution_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(resumed)
}
