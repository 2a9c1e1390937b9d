//! Step three: `POST /api/session/challenge`, a one-time challenge bound to the origin, the
//! institution and the session's choices, and the exact text the card signs around it.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use chrono::NaiveDate;
use serde::Serialize;
use uketsuke_app::api::VisitDateUse;
use uketsuke_backend::contract::binding::ChallengeBinding;
use uketsuke_domain::{InstitutionCode, window::jst_date};

use super::{api_request, per_link, session_and_link};
use crate::{
    AppState,
    http::error::{ApiError, ApiResult},
    storage::{
        challenges::{self, ChallengeError, Purpose as ChallengePurpose, Refusal},
        links::OpenLink,
        receptions::{self, Choices},
    },
};

#[derive(Debug, Serialize)]
pub struct ChallengeIssued {
    pub challenge: String,
    /// The exact text the card signs (SHA-256 DigestInfo, PKCS#1 v1.5).
    pub message: String,
    pub expires_at: i64,
}

/// The link's institution code, checked (a bad row is the server's problem, not the patient's).
pub(crate) fn institution_code(link: &OpenLink) -> ApiResult<InstitutionCode> {
    link.institution_code.parse().map_err(|_| {
        tracing::error!("institution with an invalid code");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
    })
}

/// The exact bytes the card signs for these choices at this origin.
pub(crate) fn binding_message(
    origin: &str,
    code: &InstitutionCode,
    link: &OpenLink,
    choices: &Choices,
    challenge: &str,
) -> Vec<u8> {
    ChallengeBinding {
        origin,
        challenge,
        institution: code,
        kind: link.kind,
        visit_date: choices.visit_date,
        consent: choices.consent,
        prescription_method: choices.prescription,
    }
    .message()
}

pub(crate) fn ready_to_sign(session: &receptions::Session) -> ApiResult<Choices> {
    if session.reception_id.is_some() {
        return Err(ApiError::new(StatusCode::CONFLICT, "already_submitted"));
    }
    session
        .choices
        .ok_or(ApiError::new(StatusCode::CONFLICT, "choices_missing"))
}

/// The session's choices still hold on `today` (JST), checked again where the card signs and
/// where the registration is taken: the session may have crossed midnight since the choices
/// were made, taking a fixed visit date past. 422 `visit_date_passed` (or `visit_date_not_yet`)
/// for a link's fixed date; `choices_stale` otherwise (the patient starts again and the date
/// is today's).
pub(crate) fn choices_current(
    link: &OpenLink,
    choices: &Choices,
    today: NaiveDate,
) -> ApiResult<()> {
    let current = if link.kind.asks_visit_date() {
        choices.visit_date >= today
    } else {
        choices.visit_date == today
    };
    let code = match link.date_use(today) {
        VisitDateUse::Passed => "visit_date_passed",
        VisitDateUse::From(_) => "visit_date_not_yet",
        VisitDateUse::Today if current => return Ok(()),
        VisitDateUse::Today => "choices_stale",
    };
    Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code))
}

/// `POST /api/session/challenge`: a one-time challenge bound to this session's choices.
pub async fn challenge(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<ChallengeIssued>> {
    api_request(&state, &headers)?;
    let (session, link) = session_and_link(&state, &headers).await?;
    per_link(&state, &session.link_id)?;
    let choices = ready_to_sign(&session)?;
    let link = link?;
    choices_current(&link, &choices, jst_date(state.clock.now()))?;
    let code = institution_code(&link)?;
    let origin = state.config.origin_string();
    issue_challenge(&state, &session.id, ChallengePurpose::Reception, |value| {
        binding_message(&origin, &code, &link, &choices, value)
    })
    .await
    .map(Json)
}

/// Issues a one-time challenge for `session_id` bound to the message `bind` builds around it
/// (built once: hashed into the challenge's record and returned for the card to sign).
pub(crate) async fn issue_challenge(
    state: &AppState,
    session_id: &str,
    purpose: ChallengePurpose,
    bind: impl FnOnce(&str) -> Vec<u8>,
) -> ApiResult<ChallengeIssued> {
    let mut message = Vec::new();
    let issued = challenges::issue(
        &state.db,
        session_id,
        purpose,
        |value| {
            message = bind(value);
            message.clone()
        },
        state.clock.now_ms(),
    )
    .await
    .map_err(challenge_error)?;
    Ok(ChallengeIssued {
        challenge: issued.value,
        message: String::from_utf8_lossy(&message).into_owned(),
        expires_at: issued.expires_at,
    })
}

pub(crate) fn challenge_error(error: ChallengeError) -> ApiError {
    match error {
        ChallengeError::Refused(refusal) => {
            let code = match refusal {
                Refusal::Unknown => "challenge_unknown",
                Refusal::AlreadyUsed => "challenge_used",
                Refusal::Expired => "challenge_expired",
                Refusal::SessionExpired => "session_expired",
                Refusal::BindingMismatch => "binding_mismatch",
                Refusal::OtherPurpose => "challenge_other_purpose",
            };
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code)
        }
        ChallengeError::Storage(e) => e.into(),
    }
}
