//! Step four: `POST /api/session/registration` verifies the card's proof (challenge, certificate,
//! signature) and queues the registration: the reception and its relay request are written to
//! the outbox in one transaction. The console's 目視確認 queues through the same function.

use axum::{Json, extract::State, http::HeaderMap, http::StatusCode};
use serde::{Deserialize, Serialize};
use uketsuke_backend::contract::{IdentityProof, RegistrationRequest, b64_decode};

use super::{
    api_request,
    challenge::{
        binding_message, challenge_error, choices_current, institution_code, ready_to_sign,
    },
    session_and_link,
};
use crate::{
    AppState,
    http::{
        body::{JsonBody, json_body},
        error::{ApiError, ApiResult},
    },
    storage::{
        challenges,
        ids::new_id,
        links::OpenLink,
        receptions::{self, Choices, Identity, NewReception},
    },
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRegistration {
    pub challenge: String,
    /// The origin the browser showed the patient (`location.origin`).
    pub origin: String,
    /// The card's user-authentication certificate, DER in base64url.
    pub certificate: String,
    /// The card's signature over the message, base64url.
    pub signature: String,
}

#[derive(Debug, Serialize)]
pub struct Accepted {
    pub reception_id: String,
    pub status: &'static str,
    /// For the done screen's cancel link; shown once.
    pub cancel_token: String,
}

/// `POST /api/session/registration`: verifies the card's proof and queues the registration.
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: JsonBody<SignedRegistration>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    api_request(&state, &headers)?;
    let body = json_body(body)?;
    let (session, link) = session_and_link(&state, &headers).await?;
    let choices = ready_to_sign(&session)?;
    let link = link?;
    choices_current(
        &link,
        &choices,
        uketsuke_domain::window::jst_date(state.clock.now()),
    )?;
    if body.origin != state.config.origin_string() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "foreign_origin",
        ));
    }
    let institution_code = institution_code(&link)?;
    let message = binding_message(
        &body.origin,
        &institution_code,
        &link,
        &choices,
        &body.challenge,
    );
    let now_ms = state.clock.now_ms();
    challenges::consume(
        &state.db,
        &session.id,
        challenges::Purpose::Reception,
        &body.challenge,
        &message,
        now_ms,
    )
    .await
    .map_err(challenge_error)?;
    let malformed = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "certificate_malformed");
    let certificate = b64_decode(&body.certificate).ok_or(malformed)?;
    let signature = b64_decode(&body.signature).ok_or(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "signature_invalid",
    ))?;
    let card_ref = state
        .trust
        .verify(&certificate, &message, &signature, now_ms.div_euclid(1000))
        .await
        .map_err(|r| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, r.code()))?;

    let identity = IdentityProof::Card {
        certificate: body.certificate,
        signature: body.signature,
        origin: body.origin,
        challenge: body.challenge,
    };
    let accepted = queue_registration(
        &state,
        &session,
        &link,
        choices,
        (identity, Identity::Card, None),
        &card_ref,
        now_ms,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// Stores the reception and its outbox row in one transaction and wakes the relay.
pub(crate) async fn queue_registration(
    state: &AppState,
    session: &receptions::Session,
    link: &OpenLink,
    choices: Choices,
    // With the staff member who confirmed, for 目視確認 (audited in the reception's transaction).
    (proof, identity, visual_check): (
        IdentityProof,
        Identity,
        Option<&crate::console::audit::Actor>,
    ),
    card_ref: &str,
    now_ms: i64,
) -> ApiResult<Accepted> {
    let outbox_id = new_id();
    let request = RegistrationRequest {
        institution_code: institution_code(link)?,
        kind: link.kind,
        visit_date: choices.visit_date,
        consent: choices.consent,
        prescription_method: choices.prescription,
        identity: proof,
        idempotency_key: outbox_id.clone(),
    };
    let payload = serde_json::to_string(&request)
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"))?;
    // The reception's rows are written in this process's turn (see `storage::write_turn`).
    let _turn = crate::storage::write_turn(&state.db).await;
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(crate::storage::StorageError::from)?;
    let submitted = receptions::submit_in(
        &mut tx,
        &NewReception {
            institution_id: &link.institution_id,
            link_id: Some(&link.id),
            session_id: Some(&session.id),
            session_token: Some(&session.token),
            kind: link.kind,
            choices,
            identity,
            card_ref: Some(card_ref),
            outbox_id: &outbox_id,
            payload: &payload,
        },
        now_ms,
    )
    .await?;
    let Some(submitted) = submitted else {
        tx.rollback()
            .await
            .map_err(crate::storage::StorageError::from)?;
        return Err(ApiError::new(StatusCode::CONFLICT, "already_submitted"));
    };
    // 目視確認: the staff member's audit row and rate limit in the reception's transaction.
    if let Some(staff) = visual_check {
        let limited =
            crate::console::visual_check::audit_in(&mut tx, staff, &submitted.reception_id, now_ms)
                .await?;
        if let Err(refusal) = limited {
            tx.rollback()
                .await
                .map_err(crate::storage::StorageError::from)?;
            return Err(refusal);
        }
    }
    tx.commit()
        .await
        .map_err(crate::storage::StorageError::from)?;
    state.relay_wake.notify_one();
    Ok(Accepted {
        reception_id: submitted.reception_id,
        status: "queued",
        cancel_token: submitted.cancel_token,
    })
}
