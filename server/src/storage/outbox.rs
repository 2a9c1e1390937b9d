//! The relay's outbox: requests to the backend, written in the same transaction as the state
//! change they carry, and drained by the relay workers of every server instance. A worker
//! claims a row with one conditional UPDATE (so two instances never send the same row at the
//! same moment) and holds it for a lease; a worker that dies mid-send loses its lease and the row
//! is sent again, with the same idempotency key, so the backend answers it once.

use sqlx::{Any, Row, Transaction};

use super::{Db, StorageError};

/// What an outbox row asks the backend to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Register,
    Eligibility,
    Withdraw,
    HomeVisit,
    /// 同意の更新: both categories as the patient last saved them.
    ConsentUpdate,
}

impl Operation {
    pub const fn code(self) -> &'static str {
        match self {
            Operation::Register => "register",
            Operation::Eligibility => "eligibility",
            Operation::Withdraw => "withdraw",
            Operation::HomeVisit => "home_visit",
            Operation::ConsentUpdate => "consent_update",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [
            Operation::Register,
            Operation::Eligibility,
            Operation::Withdraw,
            Operation::HomeVisit,
            Operation::ConsentUpdate,
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
    Ok(())
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

/// Claims up to one due row for `worker`, holding it until `now_ms + lease_ms`.
pub async fn claim(
    db: &Db,
    worker: &str,
    now_ms: i64,
    lease_ms: i64,
) -> Result<Option<Job>, StorageError> {
    let candidates = sqlx::query(
        "SELECT id FROM outbox \
         WHERE done_at IS NULL AND next_attempt_at <= $1 \
           AND (locked_until IS NULL OR locked_until <= $1) \
         ORDER BY next_attempt_at LIMIT 16",
    )
    .bind(now_ms)
    .fetch_all(db)
    .await?;
    for candidate in candidates {
        let id: String = candidate.try_get("id")?;
        let won = sqlx::query(
            "UPDATE outbox SET locked_until = $1, locked_by = $2 \
             WHERE id = $3 AND done_at IS NULL AND (locked_until IS NULL OR locked_until <= $4)",
        )
        .bind(now_ms + lease_ms)
        .bind(worker)
        .bind(&id)
        .bind(now_ms)
        .execute(db)
        .await?
        .rows_affected();
        if won != 1 {
            // Another worker took it between the look and the claim.
            continue;
        }
        let row = sqlx::query(
            "SELECT reception_id, operation, payload, attempts FROM outbox WHERE id = $1",
        )
        .bind(&id)
        .fetch_one(db)
        .await?;
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
    Ok(None)
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

/// Rows not yet delivered, for the readiness report and tests.
pub async fn pending(db: &Db) -> Result<i64, StorageError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE done_at IS NULL")
        .fetch_one(db)
        .await?;
    Ok(row.try_get("n")?)
}
