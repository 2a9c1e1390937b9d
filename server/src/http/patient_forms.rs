//! The patient's screens without JavaScript: plain HTML forms that post here and are redirected
//! to the next screen (post/redirect/get), so the flow works up to the card step before the
//! WASM arrives, on old browsers, and with scripts off. The JSON API in `patient` does the same
//! checks; these handlers only translate forms and redirects.
//!
//! A form error goes back to the same screen with `?error=<code>`; the page shows the words.
//!
//! Forms that change a session carry its form token ([`form_token`], a hidden field the page
//! writes): derived from the session cookie's value, which another site cannot read, so a form
//! posted from elsewhere is refused (`403 form_token_invalid`) even if a browser sent the cookie.

use axum::{
    Form,
    extract::rejection::FormRejection,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use chrono::NaiveDate;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use uketsuke_app::api::VisitDateUse;
use uketsuke_backend::contract::PrescriptionMethod;
use uketsuke_domain::window::jst_date;

use super::{
    cookies::session_cookie,
    patient::{
        current_session, open_link, same_origin,
        session::{ChoicesBody, validate_choices},
    },
    patient_manage::{manage_link, withdraw_by_patient},
};
use crate::{
    AppState,
    storage::{challenges, ids::looks_like_id, receptions},
};

/// Label of the hash that derives a session's form token.
const FORM_TOKEN_LABEL: &[u8] = b"uketsuke-form-token-v1\n";

/// The form token of the session whose cookie value is `session_token`: the first 128 bits of
/// SHA-256 of a label and that value, lower-case hex (32 characters). Stored nowhere; the page
/// writes it into its forms, and the post is checked against the cookie it comes with.
pub fn form_token(session_token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(FORM_TOKEN_LABEL);
    hasher.update(session_token.as_bytes());
    hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `presented` is the form token of `session` (compared without early exit).
fn form_token_matches(session: &receptions::Session, presented: Option<&str>) -> bool {
    let expected = form_token(&session.token);
    let Some(presented) = presented else {
        return false;
    };
    presented.len() == expected.len()
        && presented
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn refused_form() -> Response {
    failure(StatusCode::FORBIDDEN, "form_token_invalid")
}

fn back(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn failure(status: StatusCode, code: &str) -> Response {
    (status, format!("{code}\n")).into_response()
}

/// Link ids become part of redirect targets: only well-formed ids are used.
fn checked(link: &str) -> Option<&str> {
    looks_like_id(link).then_some(link)
}

#[derive(Debug, Deserialize)]
pub struct StartForm {
    /// `manage` to go to 同意照会・取消 instead of a new reception.
    pub next: Option<String>,
}

/// `POST /r/{link}/start`: starts a session and goes to the first question (or to the
/// management of earlier consents).
pub async fn start(
    State(state): State<AppState>,
    Path(link): Path<String>,
    headers: HeaderMap,
    form: Result<Form<StartForm>, FormRejection>,
) -> Response {
    let manage = matches!(&form, Ok(Form(StartForm { next: Some(n) })) if n == "manage");
    if same_origin(&state, &headers).is_err() {
        return failure(StatusCode::FORBIDDEN, "foreign_origin");
    }
    let Some(link) = checked(&link) else {
        return failure(StatusCode::NOT_FOUND, "link_unknown");
    };
    // 同意照会・取消 takes a closed link too (withdrawal never depends on the clinic); its
    // reception steps stay closed.
    let open = if manage {
        match manage_link(&state, link).await {
            Ok(managed) => managed.link,
            Err(_) => return back(&format!("/r/{link}")),
        }
    } else {
        match open_link(&state, link).await {
            Ok(open) if open.date_use(jst_date(state.clock.now())) == VisitDateUse::Today => open,
            // Closed, or its fixed date not usable today: the landing page says which.
            _ => return back(&format!("/r/{link}")),
        }
    };
    let session = match challenges::start_session(&state.db, &open.id, state.clock.now_ms()).await {
        Ok(started) => started.token,
        Err(error) => {
            tracing::error!(%error, "cannot start a session");
            return back(&format!("/r/{link}?error=temporarily_unavailable"));
        }
    };
    let next = if manage {
        format!("/r/{link}/manage")
    } else if open.kind.asks_visit_date() && open.visit_date.is_none() {
        format!("/r/{link}/date")
    } else {
        format!("/r/{link}/consent")
    };
    let mut response = back(&next);
    if let Ok(value) = HeaderValue::from_str(&session_cookie(&state, &session)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct DateForm {
    pub visit_date: String,
    pub form_token: Option<String>,
}

/// `POST /r/{link}/date`: the visit date of online care, carried to the consent screen.
pub async fn date(
    State(state): State<AppState>,
    Path(link): Path<String>,
    headers: HeaderMap,
    form: Result<Form<DateForm>, FormRejection>,
) -> Response {
    let Some(link) = checked(&link) else {
        return failure(StatusCode::NOT_FOUND, "link_unknown");
    };
    if same_origin(&state, &headers).is_err() {
        return failure(StatusCode::FORBIDDEN, "foreign_origin");
    }
    let Ok(session) = current_session(&state, &headers).await else {
        return back(&format!("/r/{link}?error=session_expired"));
    };
    let form = form.ok().map(|Form(f)| f);
    if !form_token_matches(
        &session,
        form.as_ref().and_then(|f| f.form_token.as_deref()),
    ) {
        return refused_form();
    }
    let today = jst_date(state.clock.now());
    let date = form.and_then(|f| NaiveDate::parse_from_str(f.visit_date.trim(), "%Y-%m-%d").ok());
    match date {
        Some(date) if date >= today && date <= today + chrono::Days::new(90) => {
            back(&format!("/r/{link}/consent?visit_date={date}"))
        }
        _ => back(&format!("/r/{link}/date?error=visit_date_invalid")),
    }
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    pub visit_date: Option<String>,
    /// `yes` / `no`
    pub clinical_medication: Option<String>,
    pub checkups: Option<String>,
    /// `electronic` / `paper`
    pub prescription_method: Option<String>,
    pub form_token: Option<String>,
}

fn yes_no(value: &Option<String>) -> Option<bool> {
    match value.as_deref() {
        Some("yes") => Some(true),
        Some("no") => Some(false),
        _ => None,
    }
}

/// `POST /r/{link}/consent`: records the choices and goes to the review.
pub async fn consent(
    State(state): State<AppState>,
    Path(link): Path<String>,
    headers: HeaderMap,
    form: Result<Form<ConsentForm>, FormRejection>,
) -> Response {
    let Some(link) = checked(&link) else {
        return failure(StatusCode::NOT_FOUND, "link_unknown");
    };
    if same_origin(&state, &headers).is_err() {
        return failure(StatusCode::FORBIDDEN, "foreign_origin");
    }
    let Ok(session) = current_session(&state, &headers).await else {
        return back(&format!("/r/{link}?error=session_expired"));
    };
    if session.link_id != link {
        return back(&format!("/r/{link}?error=session_expired"));
    }
    let Ok(open) = open_link(&state, link).await else {
        return back(&format!("/r/{link}"));
    };
    let presented = form
        .as_ref()
        .ok()
        .and_then(|Form(f)| f.form_token.as_deref());
    if !form_token_matches(&session, presented) {
        return refused_form();
    }
    let Ok(Form(form)) = form else {
        return back(&format!("/r/{link}/consent?error=answer_missing"));
    };
    let date_query = form
        .visit_date
        .as_deref()
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let again = |code: &str| {
        let date = date_query
            .map(|d| format!("&visit_date={d}"))
            .unwrap_or_default();
        back(&format!("/r/{link}/consent?error={code}{date}"))
    };
    let medical = open.kind.offers_medical_information();
    let (clinical, checkups) = if medical {
        match (yes_no(&form.clinical_medication), yes_no(&form.checkups)) {
            (Some(a), Some(b)) => (a, b),
            _ => return again("answer_missing"),
        }
    } else {
        (false, false)
    };
    let prescription = match form.prescription_method.as_deref() {
        Some("electronic") => Some(PrescriptionMethod::Electronic),
        Some("paper") => Some(PrescriptionMethod::Paper),
        _ => None,
    };
    let body = ChoicesBody {
        visit_date: date_query,
        clinical_medication: clinical,
        checkups,
        prescription_method: prescription,
    };
    let choices = match validate_choices(&open, &body, jst_date(state.clock.now())) {
        Ok(choices) => choices,
        Err(code) => return again(code),
    };
    match receptions::set_choices(&state.db, &session.id, &choices).await {
        Ok(true) => back(&format!("/r/{link}/review")),
        Ok(false) => back(&format!("/r/{link}/done")),
        Err(error) => {
            tracing::error!(%error, "cannot store choices");
            again("temporarily_unavailable")
        }
    }
}

/// `POST /cancel/{token}`: the patient withdraws the consents of one reception.
pub async fn cancel(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    if same_origin(&state, &headers).is_err() {
        return failure(StatusCode::FORBIDDEN, "foreign_origin");
    }
    if !looks_like_id(&token) {
        return failure(StatusCode::NOT_FOUND, "cancel_token_unknown");
    }
    let id = match receptions::by_cancel_token(&state.db, &token).await {
        Ok(Some(id)) => id,
        Ok(None) => return back(&format!("/cancel/{token}")),
        Err(error) => {
            tracing::error!(%error, "cannot read a reception");
            return back(&format!("/cancel/{token}?error=temporarily_unavailable"));
        }
    };
    let institution_id = match receptions::get(&state.db, &id).await {
        Ok(Some(reception)) => reception.institution_id,
        Ok(None) => return back(&format!("/cancel/{token}")),
        Err(error) => {
            tracing::error!(%error, "cannot read a reception");
            return back(&format!("/cancel/{token}?error=temporarily_unavailable"));
        }
    };
    // The withdrawal and its audit row commit together.
    match withdraw_by_patient(&state, &institution_id, &id, "consent.cancel").await {
        Ok(changed) => {
            if changed {
                state.relay_wake.notify_one();
            }
            back(&format!("/cancel/{token}"))
        }
        Err(error) => {
            tracing::error!(%error, "cannot withdraw");
            back(&format!("/cancel/{token}?error=temporarily_unavailable"))
        }
    }
}
