//! 健康保険証利用登録 through a reception (issue 15 §2): its state on the reception row, and the
//! outbox row that carries the request to the backend. A request is queued by one conditional
//! UPDATE, so two submissions (two tabs, two instances) cannot both queue one.

use sqlx::{Any, Row, Transaction};

use super::{
    Db, StorageError,
    ids::looks_like_id,
    outbox::{self, Operation},
};

/// Where a reception's 健康保険証利用登録 stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Never asked for.
    None,
    /// Queued for the backend since `requested_at` (ms).
    Pending { requested_at: i64 },
    /// The backend registered the card at `registered_at` (ms; on a repeat, the first time).
    Registered { registered_at: i64 },
    /// The backend refused with `code`; the patient may try again.
    Refused { code: String },
}

impl State {
    pub const fn code(&self) -> &'static str {
        match self {
            State::None => "none",
            State::Pending { .. } => "pending",
            State::Registered { .. } => "registered",
            State::Refused { .. } => "refused",
        }
    }
}

/// A reception's 健康保険証利用登録, with what the checks need.
#[derive(Debug, Clone)]
pub struct InsuranceUse {
    pub state: State,
    /// The card the reception was made with ([`crate::trust::Trust::verify`]'s reference).
    pub card_ref: Option<String>,
}

/// The reception's 健康保険証利用登録; `None` for a reception that does not exist.
pub async fn get(db: &Db, reception_id: &str) -> Result<Option<InsuranceUse>, StorageError> {
    if !looks_like_id(reception_id) {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT card_ref, insurance_use_state, insurance_use_requested_at, \
                insurance_use_registered_at, insurance_use_refusal \
         FROM receptions WHERE id = $1",
    )
    .bind(reception_id)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let state: Option<String> = row.try_get("insurance_use_state")?;
    let state = match state.as_deref() {
        Some("pending") => State::Pending {
            requested_at: row
                .try_get::<Option<i64>, _>("insurance_use_requested_at")?
                .unwrap_or(0),
        },
        Some("registered") => State::Registered {
            registered_at: row
                .try_get::<Option<i64>, _>("insurance_use_registered_at")?
                .unwrap_or(0),
        },
        Some("refused") => State::Refused {
            code: row
                .try_get::<Option<String>, _>("insurance_use_refusal")?
                .unwrap_or_else(|| "internal".to_owned()),
        },
        _ => State::None,
    };
    Ok(Some(InsuranceUse {
        state,
        card_ref: row.try_get("card_ref")?,
    }))
}

/// Marks the reception's 健康保険証利用登録 pending and queues its outbox row, in the caller's
/// transaction; only from no request or a refused one. False (and nothing written) when a
/// request is already pending or the card is registered.
pub async fn queue_in(
    tx: &mut Transaction<'_, Any>,
    reception_id: &str,
    outbox_id: &str,
    payload: &str,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let queued = sqlx::query(
        "UPDATE receptions SET insurance_use_state = 'pending', \
                insurance_use_requested_at = $1, insurance_use_refusal = NULL, updated_at = $1 \
         WHERE id = $2 AND (insurance_use_state IS NULL OR insurance_use_state = 'refused') \
           AND status = 'confirmed' AND withdrawn_at IS NULL",
    )
    .bind(now_ms)
    .bind(reception_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if queued != 1 {
        return Ok(false);
    }
    outbox::enqueue(
        tx,
        outbox_id,
        reception_id,
        Operation::InsuranceUse,
        payload,
        now_ms,
    )
    .await?;
    Ok(true)
}

/// Records the backend's registration in the caller's transaction.
pub async fn registered_in(
    tx: &mut Transaction<'_, Any>,
    reception_id: &str,
    registered_at: i64,
    now_ms: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE receptions SET insurance_use_state = 'registered', \
                insurance_use_registered_at = $1, insurance_use_refusal = NULL, updated_at = $2 \
         WHERE id = $3",
    )
    .bind(registered_at)
    .bind(now_ms)
    .bind(reception_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records the backend's refusal in the caller's transaction.
pub async fn refused_in(
    tx: &mut Transaction<'_, Any>,
    reception_id: &str,
    code: &str,
    now_ms: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE receptions SET insurance_use_state = 'refused', insurance_use_refusal = $1, \
                updated_at = $2 \
         WHERE id = $3",
    )
    .bind(code)
    .bind(now_ms)
    .bind(reception_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
