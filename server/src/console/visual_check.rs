//! 目視確認 (SPEC §2): the staff member's half of a patient's reception on an institution
//! device. The patient's reception session and choices are checked as for a card signature,
//! then the registration is queued through the patient API's own function
//! ([`crate::http::patient::registration`]) with the staff member named as the one who
//! compared the face; the audit log records it in the reception's own transaction (no
//! reception without its audit row, no audit row without its reception).
//!
//! Who may: the roles the institution's settings allow (`visual_check_roles`; default
//! 医療情報閲覧 and 管理者, 一般利用者 only when an administrator adds it), else 403
//! `visual_check_role_refused`. How often: at most [`PER_HOUR`] per staff member in any hour,
//! counted over the audit log's own rows inside the transaction (so the limit holds across
//! restarts and server instances, and two requests at once cannot both pass the last slot:
//! the audit head's lock orders them); the next is 429 `visual_check_rate_limited`.

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
            challenge::{choices_current, ready_to_sign},
            per_link,
            registration::{Accepted, queue_registration},
            session_and_link,
        },
    },
    storage::{StorageError, receptions::Identity},
};

/// 目視確認 per staff member in any 60 minutes.
pub const PER_HOUR: i64 = 30;
const HOUR_MS: i64 = 3600 * 1000;
/// The audit action of a 目視確認.
pub const ACTION: &str = "reception.visual_check";

/// Writes the audit row of the 目視確認 that made `reception_id`, in the reception's
/// transaction, and counts the staff member's rows of the last hour (this one included). `Ok(Err)`
/// when over [`PER_HOUR`]: the caller rolls everything back.
pub async fn audit_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    staff: &crate::console::audit::Actor,
    reception_id: &str,
    now_ms: i64,
) -> Result<Result<(), ApiError>, StorageError> {
    crate::console::audit::append(tx, staff, ACTION, Some(reception_id), now_ms).await?;
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log \
         WHERE institution_id = $1 AND account = $2 AND action = $3 AND at > $4",
    )
    .bind(&staff.institution_id)
    .bind(&staff.account)
    .bind(ACTION)
    .bind(now_ms - HOUR_MS)
    .fetch_one(&mut **tx)
    .await?;
    if count > PER_HOUR {
        return Ok(Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "visual_check_rate_limited",
        )));
    }
    Ok(Ok(()))
}

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
    let allowed =
        crate::console::settings::visual_check_roles(&state.db, &staff.institution_id).await?;
    if !allowed.contains(&staff.role) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "visual_check_role_refused",
        ));
    }
    if !body.face_matches {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "face_not_confirmed",
        ));
    }
    let (session, link) = session_and_link(&state, &headers).await?;
    per_link(&state, &session.link_id)?;
    let choices = ready_to_sign(&session)?;
    let link = link?;
    choices_current(
        &link,
        &choices,
        uketsuke_domain::window::jst_date(state.clock.now()),
    )?;
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
        (proof, identity, Some(&staff.actor())),
        &card_ref,
        now_ms,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}
