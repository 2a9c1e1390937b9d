//! After the registration, when eligibility came back `card_not_registered_for_insurance`:
//! 健康保険証利用登録 with the card and PIN again (issue 15 §2).
//!
//! - `POST /api/session/insurance-use/challenge`: a one-time challenge of its own purpose and the
//!   exact text the card signs ([`InsuranceUseBinding`]: origin, institution, terms version).
//! - `POST /api/session/insurance-use`: the card's proof and the terms version agreed. The server
//!   verifies the proof itself (challenge, chain, validity, revocation, signature) and that it is
//!   the card of the reception, then queues the backend call in the outbox and answers 202; the
//!   relay sends it, records the outcome and fetches eligibility again.
//!
//! Offered only to the session that submitted the reception (the patient's own device, or an
//! institution device while its session lasts), only while the reception's eligibility problem
//! is `card_not_registered_for_insurance`, and one request at a time. The PIN goes to the card
//! only; nothing personal is logged.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use serde::{Deserialize, Serialize};
use uketsuke_app::api::InsuranceUseView;
use uketsuke_backend::contract::{
    INSURANCE_USE_TERMS_VERSION, InsuranceUseRequest, b64_decode, binding::InsuranceUseBinding,
};
use uketsuke_domain::InstitutionCode;

use super::{
    api_request,
    challenge::{ChallengeIssued, challenge_error, issue_challenge},
    current_session, per_link,
};
use crate::{
    AppState,
    http::{
        body::{JsonBody, json_body},
        error::{ApiError, ApiResult},
    },
    relay::StoredEligibility,
    storage::{
        challenges::{self, Purpose},
        ids::new_id,
        insurance_use::{self, State as UseState},
        links,
        outbox::{self, Operation},
        receptions::{self, Reception, Status},
    },
};

/// Tries after which a pending registration is shown as waiting for a busy backend.
const BUSY_AFTER_ATTEMPTS: i64 = 3;

/// The eligibility problem that offers 健康保険証利用登録.
pub const OFFERED_FOR: &str = "card_not_registered_for_insurance";

/// Whether the stored eligibility says the card is not registered for insurance use.
pub fn eligibility_offers(eligibility: Option<&StoredEligibility>) -> bool {
    eligibility.and_then(StoredEligibility::problem).as_deref() == Some(OFFERED_FOR)
}

/// The reception's 健康保険証利用登録 as the patient's screens show it (see
/// [`InsuranceUseView`]); `None` when it never applied to this reception.
pub async fn patient_view(
    db: &crate::storage::Db,
    reception: &Reception,
    eligibility: Option<&StoredEligibility>,
) -> Result<Option<InsuranceUseView>, crate::storage::StorageError> {
    let Some(use_state) = insurance_use::get(db, &reception.id).await? else {
        return Ok(None);
    };
    let open = reception.status == Status::Confirmed && reception.withdrawn_at.is_none();
    let offers = open && eligibility_offers(eligibility);
    let view = |state: &str, refusal: Option<String>| InsuranceUseView {
        state: state.to_owned(),
        refusal,
        registered_at: None,
        eligibility_pending: false,
        backend_busy: false,
    };
    Ok(match use_state.state {
        UseState::Registered { registered_at } => Some(InsuranceUseView {
            registered_at: Some(jst_minute(registered_at)),
            eligibility_pending: outbox::undelivered(db, &reception.id, Operation::Eligibility)
                .await?,
            ..view("registered", None)
        }),
        UseState::Pending { .. } => Some(InsuranceUseView {
            backend_busy: !outbox::in_flight(
                db,
                &reception.id,
                Operation::InsuranceUse,
                BUSY_AFTER_ATTEMPTS,
            )
            .await?,
            ..view("pending", None)
        }),
        UseState::Refused { code } if offers => Some(view("offered", Some(code))),
        UseState::None if offers => Some(view("offered", None)),
        UseState::Refused { .. } | UseState::None => None,
    })
}

/// The reception's stored eligibility, its 健康保険証利用登録 ([`patient_view`]) and the
/// eligibility problem to show: read so that a registration recorded between the reads never
/// leaves the answer from before it on the screen (the answer that said the card was not
/// registered is not shown once it is, until eligibility comes again).
pub async fn eligibility_and_use(
    db: &crate::storage::Db,
    reception: &Reception,
) -> Result<
    (
        Option<StoredEligibility>,
        Option<InsuranceUseView>,
        Option<String>,
    ),
    crate::storage::StorageError,
> {
    let mut eligibility = crate::relay::eligibility(db, &reception.id).await?;
    let view = patient_view(db, reception, eligibility.as_ref()).await?;
    let registered = view.as_ref().filter(|u| u.state == "registered");
    if registered.is_some_and(|u| !u.eligibility_pending) {
        // The new answer was stored before the view was read: read it again.
        eligibility = crate::relay::eligibility(db, &reception.id).await?;
    }
    let stale = registered.is_some_and(|u| u.eligibility_pending);
    let problem = eligibility
        .as_ref()
        .and_then(StoredEligibility::problem)
        .filter(|_| !stale);
    Ok((eligibility, view, problem))
}

/// JST, to the minute, as the pages read window ends: `YYYY-MM-DD HH:MM JST`.
fn jst_minute(ms: i64) -> String {
    uketsuke_domain::window::to_jst(crate::clock::from_ms(ms))
        .format("%Y-%m-%d %H:%M JST")
        .to_string()
}

/// What a request of this session may act on.
struct Offered {
    reception: Reception,
    card_ref: Option<String>,
    institution: InstitutionCode,
}

fn conflict(code: &'static str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code)
}

/// The session's reception, if 健康保険証利用登録 is on offer for it now: 409
/// `insurance_use_already_registered`, `insurance_use_pending` or `insurance_use_not_offered`
/// otherwise (404 `not_submitted` for a session that submitted nothing).
async fn offered(state: &AppState, session: &receptions::Session) -> ApiResult<Offered> {
    let Some(id) = session.reception_id.as_deref() else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_submitted"));
    };
    let reception = receptions::get(&state.db, id)
        .await?
        .ok_or(ApiError::new(StatusCode::NOT_FOUND, "not_submitted"))?;
    let use_state = insurance_use::get(&state.db, id)
        .await?
        .ok_or(ApiError::new(StatusCode::NOT_FOUND, "not_submitted"))?;
    match use_state.state {
        UseState::Registered { .. } => return Err(conflict("insurance_use_already_registered")),
        UseState::Pending { .. } => return Err(conflict("insurance_use_pending")),
        UseState::None | UseState::Refused { .. } => {}
    }
    let eligibility = crate::relay::eligibility(&state.db, id).await?;
    if reception.status != Status::Confirmed
        || reception.withdrawn_at.is_some()
        || !eligibility_offers(eligibility.as_ref())
    {
        return Err(conflict("insurance_use_not_offered"));
    }
    // The institution is the link's: a link closed since the reception still names it.
    let link = links::resolve_for_manage(&state.db, &session.link_id, state.clock.now_ms())
        .await?
        .ok_or(ApiError::new(StatusCode::NOT_FOUND, "link_unknown"))?
        .link;
    let institution = link.institution_code.parse().map_err(|_| {
        tracing::error!("institution with an invalid code");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
    })?;
    Ok(Offered {
        reception,
        card_ref: use_state.card_ref,
        institution,
    })
}

/// `POST /api/session/insurance-use/challenge`
pub async fn challenge(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<ChallengeIssued>> {
    api_request(&state, &headers)?;
    let session = current_session(&state, &headers).await?;
    per_link(&state, &session.link_id)?;
    let offered = offered(&state, &session).await?;
    let origin = state.config.origin_string();
    issue_challenge(&state, &session.id, Purpose::InsuranceUse, |value| {
        InsuranceUseBinding {
            origin: &origin,
            challenge: value,
            institution: &offered.institution,
            terms: INSURANCE_USE_TERMS_VERSION,
        }
        .message()
    })
    .await
    .map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedInsuranceUse {
    pub challenge: String,
    /// The origin the browser showed the patient (`location.origin`).
    pub origin: String,
    /// The card's user-authentication certificate, DER in base64url.
    pub certificate: String,
    /// The card's signature over the insurance-use text, base64url.
    pub signature: String,
    /// The version of the terms the patient agreed to.
    pub terms_version: String,
}

#[derive(Debug, Serialize)]
pub struct Queued {
    pub status: &'static str,
}

/// `POST /api/session/insurance-use`: verifies the card's proof and queues the request.
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: JsonBody<SignedInsuranceUse>,
) -> ApiResult<(StatusCode, Json<Queued>)> {
    api_request(&state, &headers)?;
    let body = json_body(body)?;
    let session = current_session(&state, &headers).await?;
    per_link(&state, &session.link_id)?;
    let offered = offered(&state, &session).await?;
    if body.origin != state.config.origin_string() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "foreign_origin",
        ));
    }
    if body.terms_version != INSURANCE_USE_TERMS_VERSION {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "terms_version_unknown",
        ));
    }
    let message = InsuranceUseBinding {
        origin: &body.origin,
        challenge: &body.challenge,
        institution: &offered.institution,
        terms: &body.terms_version,
    }
    .message();
    let now_ms = state.clock.now_ms();
    challenges::consume(
        &state.db,
        &session.id,
        Purpose::InsuranceUse,
        &body.challenge,
        &message,
        now_ms,
    )
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
    if offered.card_ref.as_deref() != Some(card_ref.as_str()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "card_mismatch",
        ));
    }

    let outbox_id = new_id();
    let request = InsuranceUseRequest {
        certificate: body.certificate,
        signature: body.signature,
        origin: body.origin,
        challenge: body.challenge,
        terms_version: body.terms_version,
        idempotency_key: outbox_id.clone(),
    };
    let payload = serde_json::to_string(&request)
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"))?;
    let reception = &offered.reception;
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(crate::storage::StorageError::from)?;
    crate::console::audit::append(
        &mut tx,
        &crate::console::audit::Actor {
            institution_id: reception.institution_id.clone(),
            account: crate::http::patient_manage::PATIENT_ACCOUNT.to_owned(),
            ip: None,
        },
        "insurance_use.request",
        Some(&reception.id),
        now_ms,
    )
    .await?;
    if !insurance_use::queue_in(&mut tx, &reception.id, &outbox_id, &payload, now_ms).await? {
        tx.rollback()
            .await
            .map_err(crate::storage::StorageError::from)?;
        return Err(conflict("insurance_use_pending"));
    }
    tx.commit()
        .await
        .map_err(crate::storage::StorageError::from)?;
    state.relay_wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(Queued { status: "queued" })))
}
