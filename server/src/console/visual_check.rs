//! 目視確認 (SPEC §2): the staff member's half of a patient's reception on an institution
//! device. The patient's reception session and choices are checked as for a card signature,
//! then the registration is queued through the patient API's own function
//! ([`crate::http::patient::registration`]) with the staff member named as the one who
//! compared the face; the audit log records it.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use serde::Deserialize;
use uketsuke_backend::contract::{IdentityProof, b64_decode};

use crate::{
    AppState,
    http::{
        body::{JsonBody, json_body},
        error::{ApiError, ApiResult},
        patient::{
            challenge::ready_to_sign,
            current_session, open_link, per_link,
            registration::{Accepted, queue_registration},
        },
    },
    storage::receptions::Identity,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisualCheckBody {
    /// The card's user-authentication certificate (read without PIN), DER in base64url.
    pub certificate: String,
    /// The staff member's statement that the face matches the card photo; must be true.
    pub face_matches: bool,
}

/// `POST /api/console/visual-check`: 目視確認 on an institution device. A signed-in staff
/// member of the link's institution has compared the patient's face with the card photo; the
/// card's certificate (chain, validity, revocation) is checked without a signature and the
/// reception records who confirmed. Refused for online care (SPEC §2). The staff member's
/// console session, the CSRF rule of the console and the patient's reception session all
/// apply; the audit log records the confirmation.
pub async fn visual_check(
    State(state): State<AppState>,
    staff: crate::console::session::Staff,
    headers: HeaderMap,
    body: JsonBody<VisualCheckBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let body = json_body(body)?;
    if !body.face_matches {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "face_not_confirmed",
        ));
    }
    let session = current_session(&state, &headers).await?;
    per_link(&state, &session.link_id)?;
    let choices = ready_to_sign(&session)?;
    let link = open_link(&state, &session.link_id).await?;
    if staff.institution_id != link.institution_id {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "staff_other_institution",
        ));
    }
    if !link.kind.allows_visual_check() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "visual_check_not_allowed",
        ));
    }
    let now_ms = state.clock.now_ms();
    let certificate = b64_decode(&body.certificate).ok_or(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "certificate_malformed",
    ))?;
    let card_ref = state
        .trust
        .verify_certificate_only(&certificate, now_ms.div_euclid(1000))
        .await
        .map_err(|r| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, r.code()))?;
    let proof = IdentityProof::VisualCheck {
        certificate: body.certificate,
        staff_account: staff.login_id.clone(),
    };
    let identity = Identity::VisualCheck {
        staff_account: staff.login_id.clone(),
    };
    let accepted = queue_registration(
        &state,
        &session,
        &link,
        choices,
        (proof, identity),
        &card_ref,
        now_ms,
    )
    .await?;
    crate::console::audit::record(
        &state.db,
        &staff.actor(),
        "reception.visual_check",
        Some(&accepted.reception_id),
        now_ms,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}
