//! `GET /api/console/receptions/{id}`: one reception with its eligibility as stored, logged as a
//! view before it is answered.

use axum::{
    Json,
    extract::{Path, State},
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uketsuke_domain::{ReceptionKind, Window, window::is_open};

use super::{ConsentView, extra, own_reception, status_parts};
use crate::{
    AppState,
    clock::from_ms,
    console::{
        Staff,
        reads::{self, ReadCategory},
    },
    http::error::ApiResult,
    relay::{self, StoredEligibility},
    storage::{insurance_use::State as UseState, receptions::Reception},
};

#[derive(Debug, Serialize)]
pub struct Detail {
    pub id: String,
    pub kind: ReceptionKind,
    pub visit_date: NaiveDate,
    pub submitted_at: DateTime<Utc>,
    pub reception_number: Option<String>,
    pub status: &'static str,
    pub refusal: Option<String>,
    /// The backend refusal this reception's undelivered requests are held for (sending stopped
    /// until an operator fixes the cause), e.g. `unknown_key`.
    pub relay_held: Option<String>,
    pub consent: ConsentView,
    /// `card` or `visual_check`.
    pub identity_method: String,
    /// Who compared the face with the card photo (visual check).
    pub staff_account: Option<String>,
    /// 照会番号
    pub patient_ref: Option<String>,
    pub registered_at: Option<DateTime<Utc>>,
    pub withdrawn_at: Option<DateTime<Utc>>,
    pub window: Option<Window>,
    pub window_end_display: Option<String>,
    pub window_open: bool,
    pub home_visits: Vec<NaiveDate>,
    /// Every field as the backend answered it (after its information control).
    pub eligibility: Option<StoredEligibility>,
    pub eligibility_at: Option<DateTime<Utc>>,
    /// 健康保険証利用登録 through this reception; `None` when the patient never asked.
    pub insurance_use: Option<InsuranceUse>,
}

/// 健康保険証利用登録 through a reception, for staff.
#[derive(Debug, Serialize)]
pub struct InsuranceUse {
    /// `pending`, `registered` or `refused`.
    pub state: &'static str,
    /// When the patient asked.
    pub requested_at: Option<DateTime<Utc>>,
    /// When the backend registered the card (on a repeat: the first time).
    pub registered_at: Option<DateTime<Utc>>,
    /// The backend's refusal code.
    pub refusal: Option<String>,
}

async fn detail_of(state: &AppState, reception: Reception) -> ApiResult<Detail> {
    let extra = extra(state, &reception.id).await?;
    let eligibility = relay::eligibility(&state.db, &reception.id).await?;
    let window = reception.window();
    let (status, refusal) = status_parts(&reception.status);
    let relay_held = crate::storage::outbox::held_code(&state.db, &reception.id).await?;
    let insurance_use = crate::storage::insurance_use::get(&state.db, &reception.id)
        .await?
        .and_then(|u| match u.state {
            UseState::None => None,
            UseState::Pending { requested_at } => Some(InsuranceUse {
                state: "pending",
                requested_at: Some(from_ms(requested_at)),
                registered_at: None,
                refusal: None,
            }),
            UseState::Registered { registered_at } => Some(InsuranceUse {
                state: "registered",
                requested_at: None,
                registered_at: Some(from_ms(registered_at)),
                refusal: None,
            }),
            UseState::Refused { code } => Some(InsuranceUse {
                state: "refused",
                requested_at: None,
                registered_at: None,
                refusal: Some(code),
            }),
        });
    Ok(Detail {
        insurance_use,
        relay_held,
        kind: reception.kind,
        visit_date: reception.visit_date,
        submitted_at: from_ms(reception.submitted_at),
        reception_number: reception.reception_number,
        status,
        refusal,
        consent: ConsentView {
            clinical_medication: reception.consent.clinical_medication,
            checkups: reception.consent.checkups,
            prescription_method: reception.prescription,
        },
        identity_method: extra.identity_method,
        staff_account: extra.staff_account,
        patient_ref: extra.patient_ref,
        registered_at: reception.registered_at.map(from_ms),
        withdrawn_at: reception.withdrawn_at.map(from_ms),
        window_end_display: window.and_then(|w| w.display_end_jst()),
        window_open: window.is_some_and(|w| is_open(&w, state.clock.now())),
        window,
        home_visits: reception.home_visits,
        eligibility,
        eligibility_at: extra.eligibility_at.map(from_ms),
        id: reception.id,
    })
}

/// `GET /api/console/receptions/{id}`: the reception with its eligibility; logged as a view.
pub async fn detail(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> ApiResult<Json<Detail>> {
    let reception = own_reception(&state, &staff, &id).await?;
    let detail = detail_of(&state, reception).await?;
    // The patient's history lists it as a read of 資格情報 when there was eligibility to see.
    let id = detail.id.as_str();
    let read: &[&str] = if detail.eligibility.is_some() {
        std::slice::from_ref(&id)
    } else {
        &[]
    };
    reads::record(
        &state.db,
        &staff,
        "reception.view",
        Some(&detail.id),
        read,
        ReadCategory::Eligibility,
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(detail))
}
