//! The sweeper: deletes what the server may no longer keep. Medical information goes as soon as
//! its reception's window has closed; eligibility answers go when the institution's retention
//! period (default 90 days) has passed since the reception; expired patient sessions,
//! challenges, console sessions (idle or past their absolute limit) and unfinished passkey
//! ceremonies, and the institution API's idempotency keys go as soon as they have expired, so that a flood of started sessions leaves
//! nothing behind. Runs every minute on every instance;
//! the deletes are idempotent, so instances do not need to agree on who sweeps.

use std::time::Duration;

use sqlx::Row;
use uketsuke_domain::window::is_open;

use crate::{
    clock::Clock,
    storage::{Db, StorageError, challenges, receptions},
};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// What one sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub medical_receptions: u64,
    pub eligibility_answers: u64,
    pub challenges: u64,
    pub patient_sessions: u64,
    pub console_sessions: u64,
    pub ceremonies: u64,
    pub idempotency_keys: u64,
}

pub async fn sweep(db: &Db, now_ms: i64) -> Result<Swept, StorageError> {
    let mut swept = Swept::default();
    let rows = sqlx::query("SELECT DISTINCT reception_id FROM medical_data")
        .fetch_all(db)
        .await?;
    let now = crate::clock::from_ms(now_ms);
    for row in rows {
        let id: String = row.try_get("reception_id")?;
        let open = match receptions::get(db, &id).await? {
            Some(reception) => reception.window().is_some_and(|w| is_open(&w, now)),
            None => false,
        };
        if !open {
            sqlx::query("DELETE FROM medical_data WHERE reception_id = $1")
                .bind(&id)
                .execute(db)
                .await?;
            swept.medical_receptions += 1;
        }
    }
    swept.eligibility_answers = sqlx::query(
        "UPDATE receptions SET eligibility_json = NULL \
         WHERE eligibility_json IS NOT NULL AND EXISTS ( \
             SELECT 1 FROM institutions i WHERE i.id = receptions.institution_id \
               AND receptions.submitted_at + i.eligibility_retention_days * $1 <= $2)",
    )
    .bind(DAY_MS)
    .bind(now_ms)
    .execute(db)
    .await?
    .rows_affected();
    swept.challenges = challenges::sweep_expired(db, now_ms).await?;
    swept.patient_sessions = receptions::sweep_expired_sessions(db, now_ms).await?;
    swept.console_sessions =
        sqlx::query("DELETE FROM console_sessions WHERE last_seen_at <= $1 OR created_at <= $2")
            .bind(now_ms - crate::console::session::IDLE_MS)
            .bind(now_ms - crate::console::session::ABSOLUTE_MS)
            .execute(db)
            .await?
            .rows_affected();
    swept.ceremonies = sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at <= $1")
        .bind(now_ms)
        .execute(db)
        .await?
        .rows_affected();
    swept.idempotency_keys = crate::storage::idempotency::sweep_expired(db, now_ms).await?;
    Ok(swept)
}

/// Gives the rate limiters' memory back every minute: keys whose budget is full again are
/// forgotten (`Limits::upkeep`). Runs while the server serves.
pub fn spawn_limiter_upkeep(
    limits: crate::http::rate_limit::Limits,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            limits.upkeep();
        }
    })
}

/// Sweeps every minute for as long as the runtime runs.
pub fn spawn(db: Db, clock: Clock) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            match sweep(&db, clock.now_ms()).await {
                Ok(s) if s != Swept::default() => tracing::info!(
                    medical = s.medical_receptions,
                    eligibility = s.eligibility_answers,
                    challenges = s.challenges,
                    patient_sessions = s.patient_sessions,
                    console_sessions = s.console_sessions,
                    ceremonies = s.ceremonies,
                    idempotency_keys = s.idempotency_keys,
                    "swept expired data"
                ),
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "sweep failed"),
            }
        }
    });
}
