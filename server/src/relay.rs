//! The relay worker: drains the outbox to the backend. Each server instance runs a few workers;
//! they claim rows through the database, so any number of instances can share one PostgreSQL
//! database. A row is retried with exponential backoff until the backend gives a verified
//! answer; registrations carry their outbox id as idempotency key, so a resend after a crash or a
//! timeout returns the first answer instead of registering twice.

use std::{sync::Arc, time::Duration};

use chrono::NaiveDate;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use tokio::sync::Notify;
use uketsuke_backend::contract::{
    ConsentUpdateRequest, ConsentUpdated, EligibilityAnswer, EligibilityRequest, ErrorCode,
    HomeVisitRecorded, REGISTRATIONS_PATH, RegistrationAccepted, WithdrawalAccepted, consent_path,
    eligibility_path, home_visits_path, person_reference_is_well_formed, withdrawal_path,
};
use uketsuke_domain::eligibility::EligibilityOutcome;

use crate::{
    backend_client::{BackendClient, CallError},
    clock::{Clock, to_ms},
    storage::{
        Db, StorageError,
        ids::new_id,
        institutions, insurance_use,
        outbox::{self, Job, Operation},
        receptions::{self, Status},
    },
};

/// How long a worker holds a claimed row: well over the backend call's 5 s timeout.
const LEASE_MS: i64 = 30_000;
/// Longest wait between two tries of one row.
const MAX_BACKOFF_MS: i64 = 60_000;
/// Idle workers look for due rows at least this often even without a wake-up or a known due
/// time: the safety net for a missed notification (a row written by another instance while
/// its NOTIFY was lost). Wake-ups and due times do the real work.
pub const SAFETY_POLL: Duration = Duration::from_secs(5);
/// A worker that hit a storage error waits this long before trying again.
const ERROR_PAUSE: Duration = Duration::from_millis(500);

/// The eligibility answer as stored with the reception.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StoredEligibility {
    Answer {
        confirmed_on: NaiveDate,
        outcome: EligibilityOutcome,
    },
    Refused {
        code: String,
    },
}

impl StoredEligibility {
    /// The reason no usable insurance record came back (`under_jlis_review`,
    /// `card_not_registered_for_insurance`, `no_qualification`, or the backend's refusal code);
    /// `None` for an answer with a record.
    pub fn problem(&self) -> Option<String> {
        match self {
            StoredEligibility::Answer {
                outcome: EligibilityOutcome::NotAvailable { reason },
                ..
            } => serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned)),
            StoredEligibility::Refused { code } => Some(code.clone()),
            StoredEligibility::Answer { .. } => None,
        }
    }
}

/// What the workers share.
#[derive(Clone)]
pub struct Relay {
    pub db: Db,
    pub backend: BackendClient,
    pub clock: Clock,
    /// Rung when a row is written, so an idle worker sends it at once (by the writer after its
    /// commit, and on PostgreSQL by `outbox::listen` for rows other instances wrote).
    pub wake: Arc<Notify>,
    /// The longest an idle worker sleeps without a wake-up ([`SAFETY_POLL`] by default).
    pub safety_poll: Duration,
}

impl Relay {
    /// Starts `workers` workers on the current runtime; they run as long as it does.
    pub fn spawn(&self, workers: usize) {
        let process = new_id();
        for n in 0..workers {
            let relay = self.clone();
            let worker = format!("{process}-{n}");
            tokio::spawn(async move { relay.run(worker).await });
        }
    }

    async fn run(self, worker: String) {
        loop {
            match outbox::claim(&self.db, &worker, self.clock.now_ms(), LEASE_MS).await {
                Ok(Some(job)) => {
                    if let Err(error) = self.process(&worker, &job).await {
                        tracing::error!(%error, operation = job.operation.code(), "relay storage error");
                        tokio::time::sleep(ERROR_PAUSE).await;
                    }
                }
                Ok(None) => self.idle().await,
                Err(error) => {
                    tracing::error!(%error, "relay cannot read the outbox");
                    tokio::time::sleep(ERROR_PAUSE * 4).await;
                }
            }
        }
    }

    /// Waits, with nothing to claim now, until a wake-up, the next row's due time (a retry's
    /// backoff, a lapsing lease), the business clock moving (tests and the demo clock), or the
    /// safety poll, whichever comes first.
    async fn idle(&self) {
        let mut sleep = self.safety_poll;
        match outbox::next_due(&self.db).await {
            Ok(Some(due)) => {
                let wait = u64::try_from(due.saturating_sub(self.clock.now_ms())).unwrap_or(0);
                // A floor against spinning on a row that is due but cannot be claimed yet.
                sleep = sleep.min(Duration::from_millis(wait.max(5)));
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "relay cannot read the next due time"),
        }
        tokio::select! {
            () = self.wake.notified() => {},
            () = self.clock.moved() => {},
            () = tokio::time::sleep(sleep) => {},
        }
    }

    /// Sends one claimed row and records the outcome.
    pub async fn process(&self, worker: &str, job: &Job) -> Result<(), StorageError> {
        // The reception and its institution's signer, in one read.
        let Some((reception, identity)) =
            receptions::for_relay(&self.db, &job.reception_id).await?
        else {
            tracing::error!("outbox row for a missing reception");
            return outbox::finish_alone(
                &self.db,
                &job.id,
                self.clock.now_ms(),
                Some("no reception"),
            )
            .await;
        };
        let Some(identity) = identity else {
            return self
                .retry(worker, job, "the institution has no signing key")
                .await;
        };
        let signer = &identity.signer;
        match job.operation {
            Operation::Register => {
                let answer = self
                    .backend
                    .call::<RegistrationAccepted>(
                        signer,
                        REGISTRATIONS_PATH,
                        job.payload.as_bytes(),
                    )
                    .await;
                match answer {
                    Ok(accepted) => {
                        if accepted.kind != reception.kind
                            || accepted.visit_date != reception.visit_date
                            || accepted.consent != reception.consent
                        {
                            tracing::error!("backend confirmed other choices than were sent");
                            return self
                                .retry(worker, job, "answer does not match the request")
                                .await;
                        }
                        let follow_up = serde_json::to_string(&EligibilityRequest {
                            use_welfare_information: identity.uses_welfare_info,
                        })
                        .unwrap_or_else(|_| "{}".to_owned());
                        let now = self.clock.now_ms();
                        let _turn = crate::storage::write_turn(&self.db).await;
                        let mut tx = crate::storage::begin(&self.db).await?;
                        if !outbox::finish(&mut tx, &job.id, worker, now).await? {
                            tx.rollback().await?;
                            return Ok(());
                        }
                        // The person as the backend names them at this institution, so the
                        // patient finds the reception again with a renewed certificate.
                        let person_ref = accepted
                            .person_reference
                            .as_deref()
                            .filter(|r| person_reference_is_well_formed(r));
                        if person_ref.is_none() {
                            tracing::warn!("registration answer without a usable person reference");
                        }
                        sqlx::query(
                            "UPDATE receptions SET status = 'confirmed', registration_id = $1, \
                                    reception_number = $2, registered_at = $3, updated_at = $4, \
                                    person_ref = COALESCE($5, person_ref) \
                             WHERE id = $6",
                        )
                        .bind(&accepted.registration_id)
                        .bind(&accepted.reception_number)
                        .bind(to_ms(accepted.registered_at))
                        .bind(now)
                        .bind(person_ref)
                        .bind(&reception.id)
                        .execute(&mut *tx)
                        .await?;
                        self.commit_then_fetch_eligibility(tx, &reception.id, &follow_up, now)
                            .await
                    }
                    Err(e) if e.is_final() => {
                        let code = refusal_code(&e);
                        let now = self.clock.now_ms();
                        let _turn = crate::storage::write_turn(&self.db).await;
                        let mut tx = crate::storage::begin(&self.db).await?;
                        if !outbox::finish(&mut tx, &job.id, worker, now).await? {
                            tx.rollback().await?;
                            return Ok(());
                        }
                        sqlx::query(
                            "UPDATE receptions SET status = 'refused', refusal_code = $1, \
                                    updated_at = $2 WHERE id = $3",
                        )
                        .bind(&code)
                        .bind(now)
                        .bind(&reception.id)
                        .execute(&mut *tx)
                        .await?;
                        tx.commit().await?;
                        Ok(())
                    }
                    Err(e) => self.failed(worker, job, &identity, &e).await,
                }
            }
            Operation::Eligibility => {
                let Some(registration) = reception.registration_id.as_deref() else {
                    return self.retry(worker, job, "not registered yet").await;
                };
                let answer = self
                    .backend
                    .call::<EligibilityAnswer>(
                        signer,
                        &eligibility_path(registration),
                        job.payload.as_bytes(),
                    )
                    .await;
                let stored = match answer {
                    Ok(answer) => StoredEligibility::Answer {
                        confirmed_on: answer.confirmed_on,
                        outcome: answer.outcome,
                    },
                    Err(e) if e.is_final() => StoredEligibility::Refused {
                        code: refusal_code(&e),
                    },
                    Err(e) => return self.failed(worker, job, &identity, &e).await,
                };
                let json = serde_json::to_string(&stored).unwrap_or_else(|_| "null".to_owned());
                let now = self.clock.now_ms();
                let _turn = crate::storage::write_turn(&self.db).await;
                let mut tx = crate::storage::begin(&self.db).await?;
                if !outbox::finish(&mut tx, &job.id, worker, now).await? {
                    tx.rollback().await?;
                    return Ok(());
                }
                sqlx::query(
                    "UPDATE receptions SET eligibility_json = $1, eligibility_at = $2, \
                            updated_at = $2 WHERE id = $3",
                )
                .bind(json)
                .bind(now)
                .bind(&reception.id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }
            Operation::InsuranceUse => self.insurance_use(worker, job, &reception, &identity).await,
            Operation::Withdraw | Operation::HomeVisit | Operation::ConsentUpdate => {
                let registration = match (&reception.status, reception.registration_id.as_deref()) {
                    (Status::Confirmed, Some(registration)) => registration,
                    (Status::Refused { .. }, _) => {
                        // Nothing registered, nothing to withdraw or extend.
                        return outbox::finish_alone(
                            &self.db,
                            &job.id,
                            self.clock.now_ms(),
                            Some("reception refused"),
                        )
                        .await;
                    }
                    _ => {
                        // The registration is still on its way: wait for it, without counting.
                        let later = self.clock.now_ms() + 2_000;
                        return outbox::postpone(&self.db, &job.id, worker, later).await;
                    }
                };
                let result = match job.operation {
                    Operation::Withdraw => self
                        .backend
                        .call::<WithdrawalAccepted>(
                            signer,
                            &withdrawal_path(registration),
                            job.payload.as_bytes(),
                        )
                        .await
                        .map(|_| true),
                    Operation::ConsentUpdate => {
                        if outbox::older_pending(&self.db, job).await? {
                            // An earlier change of the same reception goes first.
                            let later = self.clock.now_ms() + 500;
                            return outbox::postpone(&self.db, &job.id, worker, later).await;
                        }
                        let sent = serde_json::from_str::<ConsentUpdateRequest>(&job.payload)
                            .map(|r| r.consent)
                            .ok();
                        self.backend
                            .call::<ConsentUpdated>(
                                signer,
                                &consent_path(registration),
                                job.payload.as_bytes(),
                            )
                            .await
                            .map(|updated| {
                                updated.registration_id == registration
                                    && Some(updated.consent) == sent
                            })
                    }
                    _ => self
                        .backend
                        .call::<HomeVisitRecorded>(
                            signer,
                            &home_visits_path(registration),
                            job.payload.as_bytes(),
                        )
                        .await
                        .map(|_| true),
                };
                match result {
                    Ok(false) => {
                        tracing::error!("backend confirmed another consent than was sent");
                        self.retry(worker, job, "answer does not match the request")
                            .await
                    }
                    Ok(true) => {
                        outbox::finish_alone(&self.db, &job.id, self.clock.now_ms(), None).await
                    }
                    Err(e) if e.is_final() => {
                        // e.g. already withdrawn at the backend: the server's own record rules.
                        tracing::warn!(code = %refusal_code(&e), operation = job.operation.code(), "backend refused an update");
                        outbox::finish_alone(
                            &self.db,
                            &job.id,
                            self.clock.now_ms(),
                            Some(&refusal_code(&e)),
                        )
                        .await
                    }
                    Err(e) => self.failed(worker, job, &identity, &e).await,
                }
            }
        }
    }

    /// 健康保険証利用登録: sends the request; on success records it (audited) and fetches
    /// eligibility again with the same operation as after a registration; a refusal the request
    /// itself earned is recorded with its code (audited) for the patient's screen.
    async fn insurance_use(
        &self,
        worker: &str,
        job: &Job,
        reception: &receptions::Relayed,
        identity: &institutions::RelayIdentity,
    ) -> Result<(), StorageError> {
        let Some(registration) = reception.registration_id.as_deref() else {
            // Offered only after the registration: nothing to register against.
            tracing::error!("insurance-use request for a reception not registered");
            let now = self.clock.now_ms();
            let _turn = crate::storage::write_turn(&self.db).await;
            let mut tx = crate::storage::begin(&self.db).await?;
            if !outbox::finish(&mut tx, &job.id, worker, now).await? {
                tx.rollback().await?;
                return Ok(());
            }
            insurance_use::refused_in(&mut tx, &reception.id, "registration_not_found", now)
                .await?;
            tx.commit().await?;
            return Ok(());
        };
        let answer = crate::backend_client::insurance_use(
            &self.backend,
            &identity.signer,
            registration,
            job.payload.as_bytes(),
        )
        .await;
        let server = crate::console::audit::Actor {
            institution_id: reception.institution_id.clone(),
            account: "-server".to_owned(),
            ip: None,
        };
        match answer {
            Ok(registered) => {
                let follow_up = serde_json::to_string(&EligibilityRequest {
                    use_welfare_information: identity.uses_welfare_info,
                })
                .unwrap_or_else(|_| "{}".to_owned());
                let now = self.clock.now_ms();
                let _turn = crate::storage::write_turn(&self.db).await;
                let mut tx = crate::storage::begin(&self.db).await?;
                crate::console::audit::append(
                    &mut tx,
                    &server,
                    if registered.already_registered {
                        "insurance_use.already_registered"
                    } else {
                        "insurance_use.registered"
                    },
                    Some(&reception.id),
                    now,
                )
                .await?;
                if !outbox::finish(&mut tx, &job.id, worker, now).await? {
                    tx.rollback().await?;
                    return Ok(());
                }
                insurance_use::registered_in(
                    &mut tx,
                    &reception.id,
                    to_ms(registered.registered_at),
                    now,
                )
                .await?;
                self.commit_then_fetch_eligibility(tx, &reception.id, &follow_up, now)
                    .await
            }
            Err(e) if e.is_final() => {
                let code = refusal_code(&e);
                let now = self.clock.now_ms();
                let _turn = crate::storage::write_turn(&self.db).await;
                let mut tx = crate::storage::begin(&self.db).await?;
                crate::console::audit::append(
                    &mut tx,
                    &server,
                    "insurance_use.refused",
                    Some(&reception.id),
                    now,
                )
                .await?;
                if !outbox::finish(&mut tx, &job.id, worker, now).await? {
                    tx.rollback().await?;
                    return Ok(());
                }
                insurance_use::refused_in(&mut tx, &reception.id, &code, now).await?;
                tx.commit().await?;
                Ok(())
            }
            Err(e) => self.failed(worker, job, identity, &e).await,
        }
    }

    /// A send that brought no answer to act on: retried later, unless the refusal is one no
    /// retry can cure ([`CallError::needs_operator`]); then the row is held for an operator,
    /// and the cause is logged once per institution (with its key id, never the request).
    async fn failed(
        &self,
        worker: &str,
        job: &Job,
        identity: &institutions::RelayIdentity,
        error: &CallError,
    ) -> Result<(), StorageError> {
        if !error.needs_operator() {
            return self.retry(worker, job, &error.to_string()).await;
        }
        let code = error.code();
        let key_id = identity.signer.key_id();
        let new_cause = outbox::hold(
            &self.db,
            &job.id,
            worker,
            &identity.institution_id,
            key_id,
            job.operation,
            &code,
            self.clock.now_ms(),
        )
        .await?;
        if new_cause {
            tracing::error!(
                institution = %identity.code,
                key_id,
                code = %code,
                operation = job.operation.code(),
                "the backend refused this institution's requests in a way retrying cannot cure: \
                 its rows are held (see /status). Fix the cause (register the key with the \
                 backend, or correct the backend's address or version), then run \
                 `uketsuke-server relay resume --institution <code>`"
            );
        } else {
            tracing::debug!(code = %code, operation = job.operation.code(), "relay row held");
        }
        Ok(())
    }

    /// Queues the eligibility fetch `follow_up` (an `EligibilityRequest`) of the reception in
    /// `tx`, commits, and wakes a worker for it: after a confirmation, and after a
    /// 健康保険証利用登録.
    async fn commit_then_fetch_eligibility(
        &self,
        mut tx: crate::storage::Tx,
        reception_id: &str,
        follow_up: &str,
        now: i64,
    ) -> Result<(), StorageError> {
        outbox::enqueue(
            &mut tx,
            &new_id(),
            reception_id,
            Operation::Eligibility,
            follow_up,
            now,
        )
        .await?;
        tx.commit().await?;
        self.wake.notify_one();
        Ok(())
    }

    async fn retry(&self, worker: &str, job: &Job, error: &str) -> Result<(), StorageError> {
        let next = self.clock.now_ms() + backoff_ms(job.attempts);
        tracing::warn!(
            attempts = job.attempts + 1,
            operation = job.operation.code(),
            error,
            "relay will retry"
        );
        outbox::retry_later(&self.db, &job.id, worker, next, error).await
    }
}

/// 0.5 s, 1 s, 2 s, … up to a minute, with up to a quarter more at random so that many rows
/// failing together do not come back together.
pub fn backoff_ms(attempts: i64) -> i64 {
    let base = 500i64
        .saturating_mul(1i64 << attempts.clamp(0, 20))
        .min(MAX_BACKOFF_MS);
    base + rand::rng().random_range(0..=base / 4)
}

fn refusal_code(error: &CallError) -> String {
    match error {
        CallError::Refused(body) => body.code.as_str(),
        CallError::NoAnswer(_) => ErrorCode::Unavailable.as_str(),
    }
}

/// The stored eligibility of a reception, if any.
pub async fn eligibility(
    db: &Db,
    reception_id: &str,
) -> Result<Option<StoredEligibility>, StorageError> {
    let row = sqlx::query("SELECT eligibility_json FROM receptions WHERE id = $1")
        .bind(reception_id)
        .fetch_optional(db)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let json: Option<String> = row.try_get("eligibility_json")?;
    Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let first = backoff_ms(0);
        assert!((500..=625).contains(&first), "{first}");
        let fourth = backoff_ms(3);
        assert!((4_000..=5_000).contains(&fourth), "{fourth}");
        for attempts in [10, 40, i64::MAX] {
            let late = backoff_ms(attempts);
            assert!((60_000..=75_000).contains(&late), "{late}");
        }
    }
}
