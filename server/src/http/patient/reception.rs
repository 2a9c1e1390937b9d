//! After the registration: `GET /api/session/reception`, the reception as it stands (progress and
//! done screens), and `POST /api/cancel`, the withdrawal with the done screen's cancel token.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uketsuke_app::api::InsuranceUseView;
use uketsuke_domain::ReceptionKind;

use super::{api_request, current_session};
use crate::http::patient_manage::withdraw_by_patient;
use crate::{
    AppState,
    clock::to_ms,
    http::{
        body::{JsonBody, json_body},
        error::{ApiError, ApiResult},
    },
    storage::receptions::{self, Status},
};

#[derive(Debug, Serialize)]
pub struct ReceptionView {
    /// `queued`, `confirmed`, `refused`
    pub status: &'static str,
    /// Queued and the backend has failed to answer several times: tell the patient it waits.
    pub backend_busy: bool,
    pub refusal: Option<String>,
    pub kind: ReceptionKind,
    pub visit_date: NaiveDate,
    pub reception_number: Option<String>,
    /// Exclusive end of the window, milliseconds.
    pub window_end: Option<i64>,
    /// The last minute of access as the patient reads it ("2026-11-23 23:59 JST").
    pub window_end_display: Option<String>,
    pub withdrawn: bool,
    /// Registered, but the confirmation found no usable insurance record: the reason code
    /// (as on the done screen). Filled by `GET /api/session/reception`.
    pub eligibility_problem: Option<String>,
    /// 健康保険証利用登録 through this reception (as on the done screen).
    pub insurance_use: Option<InsuranceUseView>,
}

/// Attempts after which the patient is told the backend is busy.
const BUSY_AFTER_ATTEMPTS: i64 = 3;

pub(crate) fn view(reception: &receptions::Reception) -> ReceptionView {
    let window = reception.window();
    let (status, backend_busy, refusal) = match &reception.status {
        Status::Queued { attempts } => ("queued", *attempts >= BUSY_AFTER_ATTEMPTS, None),
        Status::Confirmed => ("confirmed", false, None),
        Status::Refused { code } => ("refused", false, Some(code.clone())),
    };
    ReceptionView {
        status,
        backend_busy,
        refusal,
        kind: reception.kind,
        visit_date: reception.visit_date,
        reception_number: reception.reception_number.clone(),
        window_end: window.and_then(|w| w.end()).map(to_ms),
        window_end_display: window.and_then(|w| w.display_end_jst()),
        withdrawn: reception.withdrawn_at.is_some(),
        eligibility_problem: None,
        insurance_use: None,
    }
}

/// `GET /api/session/reception`: the session's reception as it stands (for the progress and
/// done screens, and to resume after a reload).
pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<ReceptionView>> {
    api_request(&state, &headers)?;
    let session = current_session(&state, &headers).await?;
    let Some(id) = session.reception_id else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_submitted"));
    };
    let reception = receptions::get(&state.db, &id)
        .await?
        .ok_or(ApiError::new(StatusCode::NOT_FOUND, "not_submitted"))?;
    let (_, insurance_use, eligibility_problem) =
        super::insurance_use::eligibility_and_use(&state.db, &reception).await?;
    Ok(Json(ReceptionView {
        eligibility_problem,
        insurance_use,
        ..view(&reception)
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    pub token: String,
}

/// `POST /api/cancel`: the patient withdraws the consents of one reception with the cancel
/// token from its done screen. Access ends at once; the backend is told through the outbox.
pub async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: JsonBody<CancelBody>,
) -> ApiResult<Json<ReceptionView>> {
    api_request(&state, &headers)?;
    let body = json_body(body)?;
    let not_found = ApiError::new(StatusCode::NOT_FOUND, "cancel_token_unknown");
    let id = receptions::by_cancel_token(&state.db, &body.token)
        .await?
        .ok_or(not_found)?;
    let reception = receptions::get(&state.db, &id)
        .await?
        .ok_or(ApiError::new(StatusCode::NOT_FOUND, "cancel_token_unknown"))?;
    // The withdrawal and its audit row commit together.
    if withdraw_by_patient(&state, &reception.institution_id, &id, "consent.cancel").await? {
        state.relay_wake.notify_one();
    }
    let reception = receptions::get(&state.db, &id)
        .await?
        .ok_or(ApiError::new(StatusCode::NOT_FOUND, "cancel_token_unknown"))?;
    Ok(Json(view(&reception)))
}
