//! 同意照会・取消: the patient sees, with their card and PIN again, every reception they made at
//! this institution, and can withdraw all their consents at once. The card proves itself by
//! signing a one-time challenge bound to the origin, the institution and the action; the server
//! then knows the card's reference (the hash of its certificate serial) for this session only,
//! and lists the receptions registered with the same card.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use serde::{Deserialize, Serialize};
use uketsuke_backend::contract::{WithdrawalRequest, WithdrawnBy, b64_decode};

use super::patient::{
    ApiError, ChallengeIssued, JsonBody, ReceptionView, challenge_error, current_session,
    issue_challenge, json_body, open_link, same_origin, view,
};
use crate::{
    AppState,
    storage::{StorageError, challenges, links::OpenLink, receptions},
};

type ApiResult<T> = Result<T, ApiError>;

/// First line of the message the card signs to see or withdraw consents.
pub const MANAGE_TAG: &str = "uketsuke-manage-binding-v1";

/// The bytes the card signs for the management of consents at one institution.
pub fn manage_message(origin: &str, challenge: &str, institution_code: &str) -> Vec<u8> {
    format!("{MANAGE_TAG}\norigin={origin}\nchallenge={challenge}\ninstitution={institution_code}\naction=manage")
        .into_bytes()
}

/// `POST /api/session/manage/challenge`
pub async fn challenge(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<ChallengeIssued>> {
    same_origin(&state, &headers)?;
    let session = current_session(&state, &headers).await?;
    let link = open_link(&state, &session.link_id).await?;
    let origin = state.config.origin_string();
    issue_challenge(&state, &session.id, |value| {
        manage_message(&origin, value, &link.institution_code)
    })
    .await
    .map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    pub challenge: String,
    pub origin: String,
    pub certificate: String,
    pub signature: String,
}

#[derive(Debug, Serialize)]
pub struct Managed {
    pub receptions: Vec<ManagedReception>,
}

#[derive(Debug, Serialize)]
pub struct ManagedReception {
    #[serde(flatten)]
    pub view: ReceptionView,
    pub clinical_medication: bool,
    pub checkups: bool,
}

async fn list(state: &AppState, link: &OpenLink, card_ref: &str) -> Result<Managed, StorageError> {
    let all = receptions::of_card(&state.db, &link.institution_id, card_ref).await?;
    Ok(Managed {
        receptions: all
            .iter()
            .map(|r| ManagedReception {
                view: view(r),
                clinical_medication: r.consent.clinical_medication,
                checkups: r.consent.checkups,
            })
            .collect(),
    })
}

/// `POST /api/session/manage/proof`: verifies the card and lists its receptions here.
pub async fn prove(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: JsonBody<Proof>,
) -> ApiResult<Json<Managed>> {
    same_origin(&state, &headers)?;
    let body = json_body(body)?;
    let session = current_session(&state, &headers).await?;
    let link = open_link(&state, &session.link_id).await?;
    if body.origin != state.config.origin_string() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "foreign_origin",
        ));
    }
    let message = manage_message(&body.origin, &body.challenge, &link.institution_code);
    let now_ms = state.clock.now_ms();
    challenges::consume(&state.db, &session.id, &body.challenge, &message, now_ms)
        .await
        .map_err(challenge_error)?;
    let certificate = b64_decode(&body.certificate).ok_or(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "certificate_malformed",
    ))?;
    let signature = b64_decode(&body.signature).ok_or(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "signature_invalid",
    ))?;
    let card_ref = state
        .trust
        .verify(&certificate, &message, &signature, now_ms.div_euclid(1000))
        .await
        .map_err(|r| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, r.code()))?;
    receptions::prove_card(&state.db, &session.id, &card_ref).await?;
    Ok(Json(list(&state, &link, &card_ref).await?))
}

async fn proven(state: &AppState, headers: &HeaderMap) -> ApiResult<(OpenLink, String)> {
    let session = current_session(state, headers).await?;
    let link = open_link(state, &session.link_id).await?;
    let card_ref = receptions::proven_card(&state.db, &session.id)
        .await?
        .ok_or(ApiError::new(StatusCode::UNAUTHORIZED, "card_not_proven"))?;
    Ok((link, card_ref))
}

/// `GET /api/session/manage`: the list again (after a proof in this session).
pub async fn current(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Managed>> {
    let (link, card_ref) = proven(&state, &headers).await?;
    Ok(Json(list(&state, &link, &card_ref).await?))
}

/// `POST /api/session/manage/withdraw-all`: すべての同意を取り消す at this institution.
pub async fn withdraw_all(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Managed>> {
    same_origin(&state, &headers)?;
    let (link, card_ref) = proven(&state, &headers).await?;
    let payload = serde_json::to_string(&WithdrawalRequest {
        requested: WithdrawnBy::Patient,
    })
    .unwrap_or_default();
    let now = state.clock.now_ms();
    for reception in receptions::of_card(&state.db, &link.institution_id, &card_ref).await? {
        if reception.withdrawn_at.is_none() {
            receptions::withdraw(&state.db, &reception.id, &payload, now).await?;
        }
    }
    state.relay_wake.notify_one();
    Ok(Json(list(&state, &link, &card_ref).await?))
}
