//! `GET /api/console/receptions/{id}/medical/{category}`: medical information, only ever through
//! [`crate::gate`]; each refusal of the gate becomes its own code.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use uketsuke_backend::contract::{MedicalCategory, MedicalInformation};

use super::unknown;
use crate::{
    AppState,
    console::{
        Staff,
        reads::{self, ReadCategory},
    },
    gate::{self, GateError, GateRefusal, Reader},
    http::error::{ApiError, ApiResult},
};

fn gate_error(error: GateError) -> ApiError {
    let forbidden = |code| ApiError::new(StatusCode::FORBIDDEN, code);
    match error {
        GateError::Refused(GateRefusal::NotFound) => unknown(),
        GateError::Refused(GateRefusal::Role) => forbidden("role_not_permitted"),
        GateError::Refused(GateRefusal::NotConfirmed) => forbidden("not_confirmed"),
        GateError::Refused(GateRefusal::NoMedicalInformation) => {
            forbidden("no_medical_information")
        }
        GateError::Refused(GateRefusal::NotConsented) => forbidden("not_consented"),
        GateError::Refused(GateRefusal::WindowClosed) => forbidden("window_closed"),
        GateError::Refused(GateRefusal::ConsentPending) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "consent_pending")
        }
        GateError::Backend(error) => {
            tracing::warn!(%error, "medical information not available from the backend");
            ApiError::new(StatusCode::BAD_GATEWAY, "backend_unavailable")
        }
        GateError::Storage(error) => error.into(),
    }
}

/// `GET /api/console/receptions/{id}/medical/{clinical_medication|checkups}`: only through the
/// gate (role 医療情報閲覧, consent, confirmed, window open now); each refusal says why.
pub async fn medical(
    State(state): State<AppState>,
    staff: Staff,
    Path((id, category)): Path<(String, String)>,
) -> ApiResult<Json<MedicalInformation>> {
    let category = match category.as_str() {
        "clinical_medication" => MedicalCategory::ClinicalMedication,
        "checkups" => MedicalCategory::Checkups,
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "category_unknown")),
    };
    let reader = Reader {
        institution_id: &staff.institution_id,
        role: staff.role,
    };
    let information = gate::medical_information(
        &state.db,
        &state.backend,
        &state.clock,
        reader,
        &id,
        category,
    )
    .await
    .map_err(gate_error)?;
    let read = match category {
        MedicalCategory::ClinicalMedication => ReadCategory::ClinicalMedication,
        MedicalCategory::Checkups => ReadCategory::Checkups,
    };
    reads::record(
        &state.db,
        &staff,
        "medical.view",
        Some(&format!("{id}/{}", read.code())),
        &[id.as_str()],
        read,
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(information))
}
