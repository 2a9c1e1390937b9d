//! The sweeper: deletes what the server may no longer keep. Medical information goes as soon as
//! its reception's window has closed; eligibility answers go when the institution's retention
//! period (default 90 days) has passed since the reception; expired patient sessions,
//! challenges, console sessions (idle or past their absolute limit) and unfinished passkey
//! ceremonies and the institution API's idempotency keys go as soon as they have expired, so that a flood of started sessions leaves
//! nothing behind. A reception's cancel token (its hash) goes once its window has closed.
//! Receptions go [`Retention::reception_days`] after they were submitted (with their visits and
//! relay rows), never while their window is open or a request to the backend is pending; audit
//! rows go [`Retention::audit_days`] after they were written, leaving a verifiable anchor
//! (`console::audit::prune`). Runs every minute on every instance;
//! the deletes are idempotent, so instances do not need to agree on who sweeps.

use std::time::Duration;

use sqlx::Row;
use uketsuke_domain::window::is_open;

use crate::{
    clock::Clock,
    storage::{Db, StorageError, challenges, receptions},
};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// How long receptions and audit rows are kept (config `reception_retention_days`,
/// `audit_retention_days`, each 365 to 36,500 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Days from a reception's submission to its deletion; default 1,095 (3 years: the records of
    /// insured care are kept 3 years from their completion, 保険医療機関及び保険医療養担当規則
    /// 第9条).
    pub reception_days: i64,
    /// Days an audit row is kept; default 1,825 (5 years: as long as the medical records
    /// (診療録) the views concern, 医師法第24条).
    pub audit_days: i64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            reception_days: 3 * 365,
            audit_days: 5 * 365,
        }
    }
}

/// Receptions deleted per institution and sweep at most (one transaction each).
const RECEPTION_BATCH: i64 = 500;

/// What one sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub medical_receptions: u64,
    pub eligibility_answers: u64,
    pub challenges: u64,
    pub patient_sessions: u64,
    pub console_sessions: u64,
    pub ceremonies: u64,
    pub cancel_tokens: u64,
    pub receptions: u64,
    pub audit_rows: u64,
    pub idempotency_keys: u64,
}

/// One sweep with the default [`Retention`].
pub async fn sweep(db: &Db, now_ms: i64) -> Result<Swept, StorageError> {
    sweep_with(db, now_ms, &Retention::default()).await
}

/// One sweep at `now_ms` (ms since the Unix epoch).
pub async fn sweep_with(
    db: &Db,
    now_ms: i64,
    retention: &Retention,
) -> Result<Swept, StorageError> {
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
    swept.cancel_tokens = sweep_cancel_tokens(db, now_ms).await?;
    swept.receptions = sweep_receptions(db, now_ms, retention.reception_days).await?;
    swept.audit_rows =
        crate::console::audit::prune(db, now_ms - retention.audit_days * DAY_MS, now_ms).await?;
    swept.idempotency_keys = crate::storage::idempotency::sweep_expired(db, now_ms).await?;
    Ok(swept)
}

/// Whether a reception may still be acted on: queued for the backend, before the end of the day
/// after its visit (JST), or inside its consent window (which home visits move on).
fn still_in_use(reception: &receptions::Reception, now_ms: i64) -> bool {
    let now = crate::clock::from_ms(now_ms);
    if matches!(reception.status, receptions::Status::Queued { .. }) {
        return true;
    }
    let visit_days = reception
        .visit_date
        .checked_add_days(chrono::Days::new(2))
        .is_none_or(|end| uketsuke_domain::window::jst_date(now) < end);
    let window = matches!(
        reception.window(),
        Some(uketsuke_domain::window::Window::Interval { end, .. }) if now < end
    );
    visit_days || window
}

/// Clears the cancel token of every reception no longer in use ([`still_in_use`]): the link on
/// the patient's done screen then answers `cancel_token_unknown` (withdrawal stays open through
/// 同意照会 with the card).
async fn sweep_cancel_tokens(db: &Db, now_ms: i64) -> Result<u64, StorageError> {
    // Every reception is in use into the day after its visit at least: younger ones are skipped.
    let candidates: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM receptions WHERE cancel_token_sha256 IS NOT NULL AND status <> 'queued' \
         AND submitted_at <= $1",
    )
    .bind(now_ms - DAY_MS)
    .fetch_all(db)
    .await?;
    let mut cleared = 0;
    for id in candidates {
        let Some(reception) = receptions::get(db, &id).await? else {
            continue;
        };
        if !still_in_use(&reception, now_ms) {
            cleared +=
                sqlx::query("UPDATE receptions SET cancel_token_sha256 = NULL WHERE id = $1")
                    .bind(&id)
                    .execute(db)
                    .await?
                    .rows_affected();
        }
    }
    Ok(cleared)
}

/// Deletes receptions submitted `days` ago or earlier, with their visits, medical data and relay
/// rows, unless still in use ([`still_in_use`]) or a relay row is not done. Each institution's batch is one
/// transaction with an audit row `retention.receptions` naming the count and the cut-off.
async fn sweep_receptions(db: &Db, now_ms: i64, days: i64) -> Result<u64, StorageError> {
    let cutoff = now_ms - days * DAY_MS;
    let rows = sqlx::query(
        "SELECT r.id, r.institution_id FROM receptions r WHERE r.submitted_at <= $1 \
         AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.reception_id = r.id \
                         AND o.done_at IS NULL) \
         ORDER BY r.institution_id, r.submitted_at",
    )
    .bind(cutoff)
    .fetch_all(db)
    .await?;
    let mut by_institution: Vec<(String, Vec<String>)> = Vec::new();
    for row in rows {
        let id: String = row.try_get("id")?;
        let institution: String = row.try_get("institution_id")?;
        let Some(reception) = receptions::get(db, &id).await? else {
            continue;
        };
        if still_in_use(&reception, now_ms) {
            continue;
        }
        match by_institution.last_mut() {
            Some((i, ids)) if *i == institution => {
                if (ids.len() as i64) < RECEPTION_BATCH {
                    ids.push(id);
                }
            }
            _ => by_institution.push((institution, vec![id])),
        }
    }
    let mut deleted = 0;
    for (institution_id, ids) in by_institution {
        let mut tx = crate::storage::begin(db).await?;
        let mut deleted_here: u64 = 0;
        for id in &ids {
            // Checked again inside the transaction: a request queued since the selection above
            // (a withdrawal, a home visit) keeps its reception and everything of it.
            let pending = sqlx::query(
                "SELECT 1 AS one FROM outbox WHERE reception_id = $1 AND done_at IS NULL",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if pending.is_some() {
                continue;
            }
            for sql in [
                "DELETE FROM medical_data WHERE reception_id = $1",
                "DELETE FROM home_visits WHERE reception_id = $1",
                "DELETE FROM outbox WHERE reception_id = $1 AND done_at IS NOT NULL",
                // 閲覧履歴 rows name the reception (the audit rows themselves stay).
                "DELETE FROM audit_reads WHERE reception_id = $1",
                "UPDATE reception_sessions SET reception_id = NULL WHERE reception_id = $1",
            ] {
                sqlx::query(sql).bind(id).execute(&mut *tx).await?;
            }
            deleted_here += sqlx::query(
                "DELETE FROM receptions WHERE id = $1 AND NOT EXISTS \
                 (SELECT 1 FROM outbox o WHERE o.reception_id = $1 AND o.done_at IS NULL)",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        if deleted_here == 0 {
            tx.rollback().await?;
            continue;
        }
        let actor = crate::console::audit::Actor {
            institution_id,
            account: "-server".to_owned(),
            ip: None,
        };
        let cutoff_day = uketsuke_domain::window::jst_date(crate::clock::from_ms(cutoff));
        crate::console::audit::append(
            &mut tx,
            &actor,
            "retention.receptions",
            Some(&format!(
                "deleted={deleted_here} submitted_before={cutoff_day}"
            )),
            now_ms,
        )
        .await?;
        tx.commit().await?;
        deleted += deleted_here;
    }
    Ok(deleted)
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
pub fn spawn(db: Db, clock: Clock, retention: Retention) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            match sweep_with(&db, clock.now_ms(), &retention).await {
                Ok(s) if s != Swept::default() => tracing::info!(
                    medical = s.medical_receptions,
                    eligibility = s.eligibility_answers,
                    challenges = s.challenges,
                    patient_sessions = s.patient_sessions,
                    console_sessions = s.console_sessions,
                    ceremonies = s.ceremonies,
                    cancel_tokens = s.cancel_tokens,
                    receptions = s.receptions,
                    audit_rows = s.audit_rows,
                    idempotency_keys = s.idempotency_keys,
                    "swept expired data"
                ),
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "sweep failed"),
            }
        }
    });
}
