//! 同意照会・更新・取消: the patient sees, with their card and PIN again, every reception they
//! made at this institution, can change the consent categories of those still open, and can
//! withdraw all their consents at once. Each reception lists every read of its information by
//! the institution (閲覧履歴: when, what, role and staff ID; [`reads`]). The card proves itself by
//! signing a one-time challenge bound to the origin, the institution and the action; the server
//! then asks the backend who holds the certificate (PROTOCOL.md §6.7) and knows, for this
//! session only, the card's reference (the hash of its certificate serial) and the backend's
//! reference of the person here. It lists the receptions of the same person — made with this
//! certificate or an earlier one, since the 利用者証明用電子証明書 is renewed every five years
//! and with a reissued card — and those made with this card before person references existed.
//! When the backend cannot name the person, the list holds this card's receptions only and says
//! so (`earlier_cards_unknown`), with where else to withdraw.
//!
//! Withdrawal never depends on the clinic: every step here (starting the session, the
//! challenge, the proof, the list, withdrawing) takes any link that ever was, even one the
//! institution revoked, one whose per-appointment date has passed, or one whose kind it switched
//! off ([`links::resolve_for_manage`]). Through such a closed link the patient may only see and
//! withdraw: a change of consent that grants anything is refused (`link_closed_withdraw_only`).
//! The reception steps stay closed for it, since they check the link again themselves. Every
//! change the patient makes — a change of consent, a withdrawal, a cancel with the done screen's
//! token ([`withdraw_by_patient`]) — writes its audit row in the change's own transaction.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use uketsuke_backend::contract::{
    ConsentChoices, ConsentUpdateRequest, WithdrawalRequest, WithdrawnBy, b64_decode,
};
use uketsuke_domain::window::is_open;

use super::{
    body::{JsonBody, json_body},
    cookies::session_cookie,
    error::ApiError,
    patient::{
        api_request,
        challenge::{ChallengeIssued, challenge_error, issue_challenge},
        current_session,
        reception::{ReceptionView, view},
    },
};
use crate::{
    AppState,
    backend_client::{self, CallError},
    console::{
        audit::{self, Actor},
        reads,
    },
    storage::{
        StorageError, challenges, institutions,
        links::{self, ManagedLink, OpenLink},
        receptions::{self, ProvenCard, ProvenPatient, Reception, Status},
    },
};
use uketsuke_backend::contract::ErrorCode;
use uketsuke_domain::InstitutionCode;

type ApiResult<T> = Result<T, ApiError>;

/// The text the card signs here is built beside the reception's, in the contract crate that
/// card-reading apps also parse it with.
pub use uketsuke_backend::contract::binding::{MANAGE_TAG, manage_message};

/// The account name of the patient's own acts in the audit log (staff IDs are 2–8 letters or
/// digits, so it never collides with one).
pub const PATIENT_ACCOUNT: &str = "-patient";

/// The link of a 同意照会・取消 session, whatever the institution did to it since; only a link
/// that never was is refused (404 `link_unknown`).
pub(crate) async fn manage_link(state: &AppState, link_id: &str) -> ApiResult<ManagedLink> {
    links::resolve_for_manage(&state.db, link_id, state.clock.now_ms())
        .await?
        .ok_or(ApiError::new(StatusCode::NOT_FOUND, "link_unknown"))
}

/// `POST /api/r/{link}/manage/session`: starts a session for 同意照会・取消 and sets its
/// cookie. Unlike `POST /api/r/{link}/session` it takes a closed link too (revoked, expired,
/// kind switched off); the reception steps of such a session stay refused.
pub async fn start_session(
    State(state): State<AppState>,
    Path(link_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    api_request(&state, &headers)?;
    let managed = manage_link(&state, &link_id).await?;
    let now = state.clock.now_ms();
    let started = challenges::start_session(&state.db, &managed.link.id, now).await?;
    let body = serde_json::json!({
        "expires_at": now + challenges::SESSION_TTL_MS,
        "link_closed": managed.closed,
    });
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&session_cookie(&state, &started.token)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// `POST /api/session/manage/challenge`
pub async fn challenge(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<ChallengeIssued>> {
    api_request(&state, &headers)?;
    let session = current_session(&state, &headers).await?;
    let link = manage_link(&state, &session.link_id).await?.link;
    let origin = state.config.origin_string();
    issue_challenge(&state, &session.id, challenges::Purpose::Manage, |value| {
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
    /// Receptions made with an earlier certificate of the patient's may be missing from the
    /// list: the backend could not name the person (unreachable, or it does not know the card),
    /// or the institution still has open receptions from before person references that no
    /// person is linked to ([`receptions::unlinked_open_elsewhere`]). The page says so, and
    /// where to withdraw those (the institution, or マイナポータル).
    pub earlier_cards_unknown: bool,
    /// The link no longer takes receptions (revoked, expired, kind switched off): the patient
    /// can see and withdraw, not grant.
    pub link_closed: bool,
}

#[derive(Debug, Serialize)]
pub struct ManagedReception {
    /// The reception's id, by which the page addresses it (only ever within this card's list).
    pub id: String,
    #[serde(flatten)]
    pub view: ReceptionView,
    pub clinical_medication: bool,
    pub checkups: bool,
    /// The consents can be changed now (see [`unchangeable`]).
    pub changeable: bool,
    /// 閲覧履歴: every read of this reception's information by the institution, oldest first
    /// ([`reads::of_receptions`]).
    pub reads: Vec<reads::Read>,
}

/// Why the consents of a reception cannot be changed now, as the refusal's code; `None` when
/// they can: the kind offers medical information, the backend confirmed it, it is not
/// withdrawn, and its window is open. A closed window stays closed: changing a consent never
/// reopens or moves it.
fn unchangeable(reception: &Reception, now: chrono::DateTime<chrono::Utc>) -> Option<ApiError> {
    if !reception.kind.offers_medical_information() {
        return Some(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_medical_information",
        ));
    }
    if reception.withdrawn_at.is_some() {
        return Some(ApiError::new(StatusCode::CONFLICT, "reception_withdrawn"));
    }
    if reception.status != Status::Confirmed {
        return Some(ApiError::new(StatusCode::CONFLICT, "not_confirmed"));
    }
    match reception.window() {
        Some(window) if is_open(&window, now) => None,
        _ => Some(ApiError::new(StatusCode::CONFLICT, "window_closed")),
    }
}

async fn list(
    state: &AppState,
    managed: &ManagedLink,
    patient: &ProvenPatient,
) -> Result<Managed, StorageError> {
    let link = &managed.link;
    let all = receptions::of_card(&state.db, &link.institution_id, patient).await?;
    let now = state.clock.now();
    let earlier_cards_unknown = patient.person_ref.is_none()
        || receptions::unlinked_open_elsewhere(
            &state.db,
            &link.institution_id,
            &patient.card_ref,
            state.clock.now_ms(),
        )
        .await?;
    let ids: Vec<String> = all.iter().map(|r| r.id.clone()).collect();
    let mut history =
        reads::of_receptions(&state.db, &link.institution_id, &ids, state.clock.now_ms()).await?;
    Ok(Managed {
        earlier_cards_unknown,
        link_closed: managed.closed,
        receptions: all
            .iter()
            .map(|r| ManagedReception {
                id: r.id.clone(),
                view: view(r),
                clinical_medication: r.consent.clinical_medication,
                checkups: r.consent.checkups,
                changeable: unchangeable(r, now).is_none(),
                reads: history.remove(&r.id).unwrap_or_default(),
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
    api_request(&state, &headers)?;
    let body = json_body(body)?;
    let session = current_session(&state, &headers).await?;
    let managed = manage_link(&state, &session.link_id).await?;
    let link = &managed.link;
    if body.origin != state.config.origin_string() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "foreign_origin",
        ));
    }
    let message = manage_message(&body.origin, &body.challenge, &link.institution_code);
    let now_ms = state.clock.now_ms();
    challenges::consume(
        &state.db,
        &session.id,
        challenges::Purpose::Manage,
        &body.challenge,
        &message,
        now_ms,
    )
    .await
    .map_err(challenge_error)?;
    // From here on this session proves this card or none.
    receptions::forget_card(&state.db, &session.id).await?;
    let certificate = b64_decode(&body.certificate).ok_or(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "certificate_malformed",
    ))?;
    let signature = b64_decode(&body.signature).ok_or(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "signature_invalid",
    ))?;
    let (card_ref, legacy_card_ref) = state
        .trust
        .verify_with_legacy(&certificate, &message, &signature, now_ms.div_euclid(1000))
        .await
        .map_err(|r| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, r.code()))?;
    let person_ref = person_of(&state, link, &certificate).await?;
    receptions::adopt_card_ref(&state.db, &link.institution_id, &legacy_card_ref, &card_ref)
        .await?;
    let patient = ProvenPatient {
        card_ref,
        person_ref,
    };
    receptions::prove_card(&state.db, &session.id, &patient, now_ms).await?;
    receptions::link_person(&state.db, &link.institution_id, &patient).await?;
    Ok(Json(list(&state, &managed, &patient).await?))
}

/// The backend's reference of the person who holds the verified certificate at this
/// institution; `None` when the backend cannot say now (down, slow, no key here yet, a person
/// it does not know), so that the patient still sees this card's receptions. A certificate the
/// backend calls revoked, expired or not yet valid is refused as the server's own check would: the
/// backend may know of a revocation first — a renewal revokes the old certificate at once, and
/// an old certificate proves nothing any more.
async fn person_of(
    state: &AppState,
    link: &OpenLink,
    certificate: &[u8],
) -> ApiResult<Option<String>> {
    let Ok(code) = link.institution_code.parse::<InstitutionCode>() else {
        tracing::error!("institution with an invalid code");
        return Ok(None);
    };
    let Some(identity) = institutions::signer(&state.db, &link.institution_id).await? else {
        return Ok(None);
    };
    let answer =
        backend_client::person_reference(&state.backend, &identity.signer, &code, certificate)
            .await;
    match answer {
        Ok(reference) => Ok(Some(reference)),
        Err(CallError::Refused(body)) => {
            let refusal = match body.code {
                ErrorCode::CertificateRevoked => Some("certificate_revoked"),
                ErrorCode::CertificateExpired => Some("certificate_expired"),
                ErrorCode::CertificateNotYetValid => Some("certificate_not_yet_valid"),
                // Untrusted or malformed there but trusted here means the two disagree about
                // the CA: the server's own check stands, and the person stays unnamed.
                _ => None,
            };
            match refusal {
                Some(code) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code)),
                None => {
                    tracing::warn!(code = %body.code.as_str(), "backend did not name the card's holder");
                    Ok(None)
                }
            }
        }
        Err(error) => {
            tracing::warn!(%error, "backend did not name the card's holder");
            Ok(None)
        }
    }
}

async fn proven(state: &AppState, headers: &HeaderMap) -> ApiResult<(ManagedLink, ProvenPatient)> {
    let session = current_session(state, headers).await?;
    let link = manage_link(state, &session.link_id).await?;
    // A proof lapses after `receptions::CARD_IDLE_MS` without use (a shared device left open).
    let patient =
        match receptions::proven_card(&state.db, &session.id, state.clock.now_ms()).await? {
            ProvenCard::Proven(patient) => patient,
            ProvenCard::Idle => {
                return Err(ApiError::new(StatusCode::UNAUTHORIZED, "card_proof_idle"));
            }
            ProvenCard::None => {
                return Err(ApiError::new(StatusCode::UNAUTHORIZED, "card_not_proven"));
            }
        };
    Ok((link, patient))
}

/// `GET /api/session/manage`: the list again (after a proof in this session).
pub async fn current(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Managed>> {
    api_request(&state, &headers)?;
    let (link, patient) = proven(&state, &headers).await?;
    Ok(Json(list(&state, &link, &patient).await?))
}

/// `POST /api/session/manage/withdraw-all`: すべての同意を取り消す at this institution.
pub async fn withdraw_all(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<Managed>> {
    api_request(&state, &headers)?;
    let (link, patient) = proven(&state, &headers).await?;
    let ids = receptions::open_ids_of_card(&state.db, &link.link.institution_id, &patient).await?;
    for id in ids {
        withdraw_by_patient(&state, &link.link.institution_id, &id, "consent.withdraw").await?;
    }
    state.relay_wake.notify_one();
    Ok(Json(list(&state, &link, &patient).await?))
}

/// Withdraws all consents of one reception on the patient's request (同意の取消 from
/// 同意照会, or the done screen's cancel token): the withdrawal, its outbox entry and the audit
/// row `action` (`consent.withdraw`, `consent.cancel`) by [`PATIENT_ACCOUNT`] in one
/// transaction. False when it was withdrawn already (then nothing is written, no audit row).
/// The caller wakes the relay.
pub(crate) async fn withdraw_by_patient(
    state: &AppState,
    institution_id: &str,
    reception_id: &str,
    action: &str,
) -> Result<bool, StorageError> {
    let payload = serde_json::to_string(&WithdrawalRequest {
        requested: WithdrawnBy::Patient,
    })
    .unwrap_or_default();
    let now = state.clock.now_ms();
    let mut tx = crate::storage::begin(&state.db).await?;
    audit::append(
        &mut tx,
        &patient_actor(institution_id),
        action,
        Some(reception_id),
        now,
    )
    .await?;
    if !receptions::withdraw_in(&mut tx, reception_id, &payload, now).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// The patient, for the audit log: no IP address is kept of patients.
fn patient_actor(institution_id: &str) -> Actor {
    Actor {
        institution_id: institution_id.to_owned(),
        account: PATIENT_ACCOUNT.to_owned(),
        ip: None,
    }
}

/// The consents as the patient saves them: both categories, 同意する = `true`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    pub clinical_medication: bool,
    pub checkups: bool,
}

/// `PUT /api/session/manage/receptions/{id}/consent`: 同意の更新 of one of this patient's
/// receptions at this institution (as listed: [`receptions::of_card`]). Granting is allowed as
/// well as revoking, since the card and PIN were proven again in this session — except through
/// a closed link (403 `link_closed_withdraw_only`). The visit date and the window stay as they
/// are. The change and its audit row (`consent.update`) commit together.
/// Another card's or another institution's reception is "not found", like one that never was.
pub async fn update_consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: JsonBody<ConsentBody>,
) -> ApiResult<Json<Managed>> {
    api_request(&state, &headers)?;
    let (link, patient) = proven(&state, &headers).await?;
    let body = json_body(body)?;
    let reception = receptions::of_card_by_id(&state.db, &link.link.institution_id, &patient, &id)
        .await?
        .ok_or(ApiError::new(StatusCode::NOT_FOUND, "reception_unknown"))?;
    if let Some(refusal) = unchangeable(&reception, state.clock.now()) {
        return Err(refusal);
    }
    let consent = ConsentChoices {
        clinical_medication: body.clinical_medication,
        checkups: body.checkups,
    };
    if consent == reception.consent {
        return Err(ApiError::new(StatusCode::CONFLICT, "consent_unchanged"));
    }
    let grants = (consent.clinical_medication && !reception.consent.clinical_medication)
        || (consent.checkups && !reception.consent.checkups);
    if link.closed && grants {
        // Through a link the institution closed, the patient may take consents back but not
        // give new ones: granting is a new reception's business, and the institution ended it.
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "link_closed_withdraw_only",
        ));
    }
    let payload = serde_json::to_string(&ConsentUpdateRequest { consent }).unwrap_or_default();
    let now = state.clock.now_ms();
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(StorageError::from)?;
    audit::append(
        &mut tx,
        &patient_actor(&link.link.institution_id),
        "consent.update",
        Some(&reception.id),
        now,
    )
    .await?;
    let changed =
        receptions::update_consent_in(&mut tx, &reception.id, consent, &payload, now).await?;
    if changed {
        tx.commit().await.map_err(StorageError::from)?;
    } else {
        tx.rollback().await.map_err(StorageError::from)?;
    }
    if !changed {
        // Another request withdrew it, or saved the same consents, in between.
        let again = receptions::get(&state.db, &reception.id).await?;
        let withdrawn = again.is_some_and(|r| r.withdrawn_at.is_some());
        return Err(if withdrawn {
            ApiError::new(StatusCode::CONFLICT, "reception_withdrawn")
        } else {
            ApiError::new(StatusCode::CONFLICT, "consent_unchanged")
        });
    }
    state.relay_wake.notify_one();
    Ok(Json(list(&state, &link, &patient).await?))
}
