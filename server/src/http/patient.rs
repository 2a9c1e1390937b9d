//! The patient's reception API, used by the patient pages (and by any client that speaks it):
//! start a session from a link, record the choices, get a challenge for the card to sign, submit
//! the signed registration, follow its status, cancel. The session lives in an HttpOnly,
//! SameSite=Strict cookie; state-changing calls from a browser must come from our own origin.
//!
//! Every refusal is `{"error": "<code>"}` with a status that fits; the pages turn codes into
//! words.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use uketsuke_app::api::InvalidLink;
use uketsuke_backend::contract::{
    ConsentChoices, IdentityProof, PrescriptionMethod, RegistrationRequest, WithdrawalRequest,
    WithdrawnBy, b64_decode, binding::ChallengeBinding,
};
use uketsuke_domain::{InstitutionCode, ReceptionKind, WindowInput, window, window::jst_date};

use super::rate_limit::Decision;
use crate::{
    AppState,
    clock::to_ms,
    storage::{
        StorageError,
        challenges::{self, ChallengeError, Refusal},
        ids::new_id,
        links::{self, OpenLink},
        receptions::{self, Choices, Identity, NewReception, Status},
    },
};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "uk_session";
/// How far ahead an online-care visit may be booked.
const MAX_DAYS_AHEAD: u64 = 90;

/// A refusal with its code.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
}

impl ApiError {
    pub const fn new(status: StatusCode, code: &'static str) -> Self {
        ApiError { status, code }
    }

    pub const fn status(&self) -> StatusCode {
        self.status
    }

    pub const fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({ "error": self.code }))).into_response()
    }
}

/// A JSON request body as handlers take it: parsed, or the reason it was not.
pub type JsonBody<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

/// The parsed body, or 422 `body_invalid` (the same answer for malformed JSON, a wrong content
/// type, unknown fields and values out of their type).
pub fn json_body<T>(body: JsonBody<T>) -> Result<T, ApiError> {
    body.map(|Json(body)| body)
        .map_err(|_| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "body_invalid"))
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        tracing::error!(%error, "storage error");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn invalid_link(invalid: InvalidLink) -> ApiError {
    match invalid {
        InvalidLink::Unknown => ApiError::new(StatusCode::NOT_FOUND, "link_unknown"),
        InvalidLink::Revoked => ApiError::new(StatusCode::GONE, "link_revoked"),
        InvalidLink::Expired => ApiError::new(StatusCode::GONE, "link_expired"),
    }
}

/// Browsers send `Origin` on every POST/PUT; when it names a site it must be ours (CSRF).
/// Clients that are not browsers send none. Under our `Referrer-Policy: no-referrer` browsers
/// send `Origin: null` for our own forms and calls; that is accepted, since the session cookie
/// is SameSite=Strict (another site's request never carries it) and JSON bodies need a CORS
/// preflight this server never grants.
pub(crate) fn same_origin(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    match headers.get(header::ORIGIN) {
        None => Ok(()),
        Some(origin) if origin.as_bytes() == state.config.origin_string().as_bytes() => Ok(()),
        Some(origin) if origin.as_bytes() == b"null" => Ok(()),
        Some(_) => Err(ApiError::new(StatusCode::FORBIDDEN, "foreign_origin")),
    }
}

pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(crate) async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> ApiResult<receptions::Session> {
    let Some(id) = cookie_value(headers, SESSION_COOKIE) else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "session_missing"));
    };
    receptions::session(&state.db, id, state.clock.now_ms())
        .await?
        .ok_or(ApiError::new(StatusCode::UNAUTHORIZED, "session_expired"))
}

pub(crate) async fn open_link(state: &AppState, link_id: &str) -> ApiResult<OpenLink> {
    let link = links::resolve(&state.db, link_id, state.clock.now_ms())
        .await?
        .map_err(invalid_link)?;
    if !link.accepting {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "not_accepting"));
    }
    Ok(link)
}

fn per_link(state: &AppState, link_id: &str) -> ApiResult<()> {
    match state
        .limits
        .per_link
        .check(&link_id.to_owned(), Instant::now())
    {
        Decision::Allow => Ok(()),
        Decision::Deny { .. } => Err(ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited")),
    }
}

#[derive(Debug, Serialize)]
pub struct SessionStarted {
    pub kind: ReceptionKind,
    /// Fixed by a per-appointment link.
    pub visit_date: Option<NaiveDate>,
    pub expires_at: i64,
}

/// The `Set-Cookie` value of a new session: HttpOnly, SameSite=Strict, Secure over https.
pub(crate) fn session_cookie(state: &AppState, session_id: &str) -> String {
    let secure = if state.config.serves_https() {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        challenges::SESSION_TTL_MS / 1000
    )
}

/// `POST /api/r/{link}/session`: starts a reception session and sets its cookie.
pub async fn start(
    State(state): State<AppState>,
    Path(link_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    same_origin(&state, &headers)?;
    let link = open_link(&state, &link_id).await?;
    let now = state.clock.now_ms();
    let session_id = challenges::start_session(&state.db, &link.id, now).await?;
    let cookie = session_cookie(&state, &session_id);
    let body = SessionStarted {
        kind: link.kind,
        visit_date: link.visit_date,
        expires_at: now + challenges::SESSION_TTL_MS,
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoicesBody {
    /// A date the patient picked (online care) or the link fixed.
    pub visit_date: Option<NaiveDate>,
    pub clinical_medication: bool,
    pub checkups: bool,
    pub prescription_method: Option<PrescriptionMethod>,
}

#[derive(Debug, Serialize)]
pub struct Review {
    pub kind: ReceptionKind,
    pub visit_date: NaiveDate,
    pub clinical_medication: bool,
    pub checkups: bool,
    pub prescription_method: Option<PrescriptionMethod>,
    /// When the institution's access would end if registered now ("2026-11-23 23:59 JST").
    pub window_end: Option<String>,
}

/// Checks choices against the link's kind (SPEC §§2–3).
pub fn validate_choices(
    link: &OpenLink,
    body: &ChoicesBody,
    today: NaiveDate,
) -> Result<Choices, &'static str> {
    let visit_date = match (link.visit_date, body.visit_date) {
        (Some(fixed), Some(asked)) if fixed != asked => return Err("visit_date_fixed"),
        (Some(fixed), _) => fixed,
        (None, Some(asked)) if link.kind.asks_visit_date() => asked,
        (None, None) if link.kind.asks_visit_date() => return Err("visit_date_required"),
        (None, Some(asked)) if asked != today => return Err("visit_date_not_asked"),
        (None, _) => today,
    };
    let latest = today
        .checked_add_days(Days::new(MAX_DAYS_AHEAD))
        .unwrap_or(today);
    if link.kind.asks_visit_date() && (visit_date < today || visit_date > latest) {
        return Err("visit_date_invalid");
    }
    if !link.kind.asks_visit_date() && visit_date != today {
        return Err("visit_date_invalid");
    }
    if !link.kind.offers_medical_information() && (body.clinical_medication || body.checkups) {
        return Err("consent_not_offered");
    }
    let prescription = match (
        link.kind.asks_prescription_method(),
        body.prescription_method,
    ) {
        (true, None) => return Err("prescription_method_required"),
        (false, Some(_)) => return Err("prescription_method_not_asked"),
        (_, p) => p,
    };
    Ok(Choices {
        visit_date,
        consent: ConsentChoices {
            clinical_medication: body.clinical_medication,
            checkups: body.checkups,
        },
        prescription,
    })
}

/// `PUT /api/session/choices`: records the choices and returns the review.
pub async fn choose(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: JsonBody<ChoicesBody>,
) -> ApiResult<Json<Review>> {
    same_origin(&state, &headers)?;
    let body = json_body(body)?;
    let session = current_session(&state, &headers).await?;
    let link = open_link(&state, &session.link_id).await?;
    let now = state.clock.now();
    let choices = validate_choices(&link, &body, jst_date(now))
        .map_err(|code| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code))?;
    if !receptions::set_choices(&state.db, &session.id, &choices).await? {
        return Err(ApiError::new(StatusCode::CONFLICT, "already_submitted"));
    }
    let preview = window(&WindowInput {
        kind: link.kind,
        registered_at: now,
        visit_date: Some(choices.visit_date),
        home_visits: Vec::new(),
        withdrawn_at: None,
    });
    Ok(Json(Review {
        kind: link.kind,
        visit_date: choices.visit_date,
        clinical_medication: choices.consent.clinical_medication,
        checkups: choices.consent.checkups,
        prescription_method: choices.prescription,
        window_end: preview.display_end_jst(),
    }))
}

#[derive(Debug, Serialize)]
pub struct ChallengeIssued {
    pub challenge: String,
    /// The exact text the card signs (SHA-256 DigestInfo, PKCS#1 v1.5).
    pub message: String,
    pub expires_at: i64,
}

/// The link's institution code, checked (a bad row is the server's problem, not the patient's).
fn institution_code(link: &OpenLink) -> ApiResult<InstitutionCode> {
    link.institution_code.parse().map_err(|_| {
        tracing::error!("institution with an invalid code");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
    })
}

/// The exact bytes the card signs for these choices at this origin.
fn binding_message(
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

fn ready_to_sign(session: &receptions::Session) -> ApiResult<Choices> {
    if session.reception_id.is_some() {
        return Err(ApiError::new(StatusCode::CONFLICT, "already_submitted"));
    }
    session
        .choices
        .ok_or(ApiError::new(StatusCode::CONFLICT, "choices_missing"))
}

/// `POST /api/session/challenge`: a one-time challenge bound to this session's choices.
pub async fn challenge(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<ChallengeIssued>> {
    same_origin(&state, &headers)?;
    let session = current_session(&state, &headers).await?;
    per_link(&state, &session.link_id)?;
    let choices = ready_to_sign(&session)?;
    let link = open_link(&state, &session.link_id).await?;
    let code = institution_code(&link)?;
    let origin = state.config.origin_string();
    issue_challenge(&state, &session.id, |value| {
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
    bind: impl FnOnce(&str) -> Vec<u8>,
) -> ApiResult<ChallengeIssued> {
    let mut message = Vec::new();
    let issued = challenges::issue(
        &state.db,
        session_id,
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
            };
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code)
        }
        ChallengeError::Storage(e) => e.into(),
    }
}

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
    same_origin(&state, &headers)?;
    let body = json_body(body)?;
    let session = current_session(&state, &headers).await?;
    let choices = ready_to_sign(&session)?;
    let link = open_link(&state, &session.link_id).await?;
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
    challenges::consume(&state.db, &session.id, &body.challenge, &message, now_ms)
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
        (identity, Identity::Card),
        &card_ref,
        now_ms,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// Stores the reception and its outbox row in one transaction and wakes the relay.
async fn queue_registration(
    state: &AppState,
    session: &receptions::Session,
    link: &OpenLink,
    choices: Choices,
    (proof, identity): (IdentityProof, Identity),
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
    let submitted = receptions::submit(
        &state.db,
        &NewReception {
            institution_id: &link.institution_id,
            link_id: Some(&link.id),
            session_id: Some(&session.id),
            kind: link.kind,
            choices,
            identity,
            card_ref: Some(card_ref),
            outbox_id: &outbox_id,
            payload: &payload,
        },
        now_ms,
    )
    .await?
    .ok_or(ApiError::new(StatusCode::CONFLICT, "already_submitted"))?;
    state.relay_wake.notify_one();
    Ok(Accepted {
        reception_id: submitted.reception_id,
        status: "queued",
        cancel_token: submitted.cancel_token,
    })
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
    }
}

/// `GET /api/session/reception`: the session's reception as it stands (for the progress and
/// done screens, and to resume after a reload).
pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<ReceptionView>> {
    let session = current_session(&state, &headers).await?;
    let Some(id) = session.reception_id else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_submitted"));
    };
    let reception = receptions::get(&state.db, &id)
        .await?
        .ok_or(ApiError::new(StatusCode::NOT_FOUND, "not_submitted"))?;
    Ok(Json(view(&reception)))
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
    same_origin(&state, &headers)?;
    let body = json_body(body)?;
    let not_found = ApiError::new(StatusCode::NOT_FOUND, "cancel_token_unknown");
    let id = receptions::by_cancel_token(&state.db, &body.token)
        .await?
        .ok_or(not_found)?;
    let payload = serde_json::to_string(&WithdrawalRequest {
        requested: WithdrawnBy::Patient,
    })
    .unwrap_or_default();
    if receptions::withdraw(&state.db, &id, &payload, state.clock.now_ms()).await? {
        state.relay_wake.notify_one();
    }
    let reception = receptions::get(&state.db, &id)
        .await?
        .ok_or(ApiError::new(StatusCode::NOT_FOUND, "cancel_token_unknown"))?;
    Ok(Json(view(&reception)))
}
