//! Steps one and two: `POST /api/r/{link}/session` starts a reception session from a link and
//! sets its cookie; `PUT /api/session/choices` records what the patient chose (checked against
//! the link's kind) and returns the review.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use uketsuke_app::api::VisitDateUse;
use uketsuke_backend::contract::{ConsentChoices, PrescriptionMethod};
use uketsuke_domain::{ReceptionKind, WindowInput, window, window::jst_date};

use super::{api_request, open_link, session_and_link};
use crate::{
    AppState,
    http::{
        body::{JsonBody, json_body},
        cookies::session_cookie,
        error::{ApiError, ApiResult},
    },
    storage::{
        challenges,
        links::{MAX_DAYS_AHEAD, OpenLink},
        receptions::{self, Choices},
    },
};

#[derive(Debug, Serialize)]
pub struct SessionStarted {
    pub kind: ReceptionKind,
    /// Fixed by a per-appointment link.
    pub visit_date: Option<NaiveDate>,
    pub expires_at: i64,
}

/// `POST /api/r/{link}/session`: starts a reception session and sets its cookie.
pub async fn start(
    State(state): State<AppState>,
    Path(link_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    api_request(&state, &headers)?;
    let link = open_link(&state, &link_id).await?;
    let now = state.clock.now_ms();
    let started = challenges::start_session(&state.db, &link.id, now).await?;
    let cookie = session_cookie(&state, &started.token);
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
    // A fixed date that cannot be used today says why (the landing page says so too).
    match link.date_use(today) {
        VisitDateUse::Today => {}
        VisitDateUse::From(_) => return Err("visit_date_not_yet"),
        VisitDateUse::Passed => return Err("visit_date_passed"),
    }
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
    api_request(&state, &headers)?;
    let body = json_body(body)?;
    let (session, link) = session_and_link(&state, &headers).await?;
    let link = link?;
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
