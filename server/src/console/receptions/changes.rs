//! What staff change on a reception, each logged in its own transaction: the institution's own
//! patient number (照会番号), home visits of 訪問診療等, and withdrawal on the patient's request.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use chrono::{DateTime, Datelike as _, Utc};
use serde::{Deserialize, Serialize};
use uketsuke_backend::contract::{HomeVisitRequest, WithdrawalRequest, WithdrawnBy};
use uketsuke_domain::{ReceptionKind, window::jst_date};

use super::own_reception;
use crate::{
    AppState,
    clock::from_ms,
    console::{Staff, audit, text_refusal},
    http::{
        body::{JsonBody, json_body},
        error::{ApiError, ApiResult},
    },
    storage::{StorageError, receptions},
};

/// 照会番号: the institution's own patient number.
pub(super) const PATIENT_REF_MAX: usize = 32;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientRef {
    /// Empty or null clears it.
    pub patient_ref: Option<String>,
}

/// `PUT /api/console/receptions/{id}/patient-ref {patient_ref}`.
pub async fn set_patient_ref(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: JsonBody<PatientRef>,
) -> ApiResult<StatusCode> {
    let body = json_body(body)?;
    let value = body
        .patient_ref
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    if let Some(code) = value
        .as_deref()
        .and_then(|v| text_refusal(v, PATIENT_REF_MAX, "patient_ref_invalid"))
    {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code));
    }
    let reception = own_reception(&state, &staff, &id).await?;
    store_patient_ref(&state, &staff, &reception.id, value.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stores the checked 照会番号 `value` (`None` clears it) of reception `id` of the staff
/// member's institution, with its audit row `patient_ref.update`, in one transaction.
pub(super) async fn store_patient_ref(
    state: &AppState,
    staff: &Staff,
    id: &str,
    value: Option<&str>,
) -> Result<(), StorageError> {
    let now = state.clock.now_ms();
    let mut tx = crate::storage::begin(&state.db).await?;
    audit::append(&mut tx, &staff.actor(), "patient_ref.update", Some(id), now).await?;
    sqlx::query(
        "UPDATE receptions SET patient_ref = $1, updated_at = $2 \
         WHERE id = $3 AND institution_id = $4",
    )
    .bind(value)
    .bind(now)
    .bind(id)
    .bind(&staff.institution_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /api/console/receptions/{id}/home-visits {visit_date}`: a visit of 訪問診療等 that
/// took place, under the same rules as the institution API (not in the future, not before the
/// month of registration).
pub async fn record_home_visit(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: JsonBody<HomeVisitRequest>,
) -> ApiResult<StatusCode> {
    let body = json_body(body)?;
    let reception = own_reception(&state, &staff, &id).await?;
    if reception.kind != ReceptionKind::HomeVisit {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_home_visit",
        ));
    }
    let today = jst_date(state.clock.now());
    let first_allowed = jst_date(from_ms(reception.submitted_at))
        .with_day(1)
        .unwrap_or(today);
    if body.visit_date > today || body.visit_date < first_allowed {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "visit_date_invalid",
        ));
    }
    let payload = serde_json::to_string(&body).unwrap_or_default();
    let now = state.clock.now_ms();
    let target = format!("{}/{}", reception.id, body.visit_date.format("%Y-%m-%d"));
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(StorageError::from)?;
    audit::append(
        &mut tx,
        &staff.actor(),
        "home_visit.record",
        Some(&target),
        now,
    )
    .await?;
    let added =
        receptions::record_home_visit_in(&mut tx, &reception.id, body.visit_date, &payload, now)
            .await?;
    if !added {
        // Already recorded: nothing changed, nothing to log.
        tx.rollback().await.map_err(StorageError::from)?;
        return Ok(StatusCode::OK);
    }
    tx.commit().await.map_err(StorageError::from)?;
    state.relay_wake.notify_one();
    Ok(StatusCode::CREATED)
}

#[derive(Debug, Serialize)]
pub struct Withdrawn {
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// It had been withdrawn before this request.
    pub already: bool,
}

/// `POST /api/console/receptions/{id}/withdrawal`: staff withdraw all consents on the patient's
/// request. Access ends at once here; the backend is told through the outbox.
pub async fn withdraw(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> ApiResult<Json<Withdrawn>> {
    let reception = own_reception(&state, &staff, &id).await?;
    if let Some(at) = reception.withdrawn_at {
        return Ok(Json(Withdrawn {
            withdrawn_at: Some(from_ms(at)),
            already: true,
        }));
    }
    let payload = serde_json::to_string(&WithdrawalRequest {
        requested: WithdrawnBy::Staff {
            staff_account: staff.login_id.clone(),
        },
    })
    .unwrap_or_default();
    let now = state.clock.now_ms();
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(StorageError::from)?;
    audit::append(
        &mut tx,
        &staff.actor(),
        "reception.withdraw",
        Some(&reception.id),
        now,
    )
    .await?;
    if !receptions::withdraw_in(&mut tx, &reception.id, &payload, now).await? {
        // Another request withdrew it in between.
        tx.rollback().await.map_err(StorageError::from)?;
        let again = own_reception(&state, &staff, &id).await?;
        return Ok(Json(Withdrawn {
            withdrawn_at: again.withdrawn_at.map(from_ms),
            already: true,
        }));
    }
    tx.commit().await.map_err(StorageError::from)?;
    state.relay_wake.notify_one();
    Ok(Json(Withdrawn {
        withdrawn_at: Some(from_ms(now)),
        already: false,
    }))
}
