//! Reception links in the console: the institution's links with their state and use count,
//! creating one per kind (long-lived) or per appointment, revoking, and the QR code of a link
//! as SVG for the printed A4 sheet and the website. Creating and revoking are for
//! administrators (SPEC §1: the administrator publishes the QR codes); every role may see them.
//! The same rules as the institution API apply to dates and text.

use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, NaiveDate, Utc};
use qrcode::{EcLevel, QrCode, render::svg};
use serde::{Deserialize, Serialize};
use uketsuke_domain::{
    ReceptionKind,
    window::{jst_date, jst_start_of_day},
};

use super::{Staff, audit, require_role, text_ok};
use crate::{
    AppState,
    clock::{from_ms, to_ms},
    gate::Role,
    http::patient::ApiError,
    storage::{
        StorageError,
        links::{self, LinkRecord, NewLink},
    },
};

type ApiResult<T> = Result<T, ApiError>;

/// Booking references and labels, as in the institution API.
const MAX_TEXT: usize = 100;

#[derive(Debug, Serialize)]
pub struct LinkView {
    pub id: String,
    pub url: String,
    pub kind: ReceptionKind,
    pub visit_date: Option<String>,
    pub booking_ref: Option<String>,
    pub label: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// `open`, `revoked` or `expired`, now.
    pub state: &'static str,
    pub use_count: i64,
    pub created_at: DateTime<Utc>,
}

fn view(state: &AppState, record: LinkRecord) -> LinkView {
    let now = state.clock.now_ms();
    let status = if record.revoked_at.is_some_and(|t| t <= now) {
        "revoked"
    } else if record.expires_at.is_some_and(|t| t <= now) {
        "expired"
    } else {
        "open"
    };
    LinkView {
        url: link_url(state, &record.id),
        id: record.id,
        kind: record.kind,
        visit_date: record.visit_date,
        booking_ref: record.booking_ref,
        label: record.label,
        expires_at: record.expires_at.map(from_ms),
        revoked_at: record.revoked_at.map(from_ms),
        state: status,
        use_count: record.use_count,
        created_at: from_ms(record.created_at),
    }
}

fn link_url(state: &AppState, id: &str) -> String {
    format!("{}/r/{id}", state.config.origin_string())
}

fn unknown() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "link_unknown")
}

/// `GET /api/console/links`: newest first.
pub async fn list(State(state): State<AppState>, staff: Staff) -> ApiResult<Json<Vec<LinkView>>> {
    let records = links::list(&state.db, &staff.institution_id, 1000).await?;
    Ok(Json(records.into_iter().map(|r| view(&state, r)).collect()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateLink {
    pub kind: ReceptionKind,
    /// Per appointment: the visit date (JST). Absent: a long-lived link.
    pub visit_date: Option<NaiveDate>,
    pub booking_ref: Option<String>,
    pub label: Option<String>,
    /// Absent: a per-appointment link ends with its window; a long-lived one does not end.
    pub expires_at: Option<DateTime<Utc>>,
}

/// `POST /api/console/links` (administrators).
pub async fn create(
    State(state): State<AppState>,
    staff: Staff,
    body: Result<Json<CreateLink>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<LinkView>)> {
    require_role(&staff, &[Role::Administrator])?;
    let Json(body) =
        body.map_err(|_| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "body_invalid"))?;
    let texts_ok = [&body.booking_ref, &body.label]
        .iter()
        .all(|t| t.as_deref().is_none_or(|t| text_ok(t, MAX_TEXT)));
    if !texts_ok {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "text_invalid",
        ));
    }
    let now = state.clock.now();
    if body.visit_date.is_some_and(|date| date < jst_date(now)) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "visit_date_past",
        ));
    }
    let expires_at = match (body.expires_at, body.visit_date) {
        (Some(at), _) if at <= now => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "expires_at_past",
            ));
        }
        (Some(at), _) => Some(to_ms(at)),
        (None, Some(date)) => date
            .checked_add_days(chrono::Days::new(2))
            .map(|d| to_ms(jst_start_of_day(d))),
        (None, None) => None,
    };
    let now_ms = state.clock.now_ms();
    let mut tx = state.db.begin().await.map_err(StorageError::from)?;
    audit::append(
        &mut tx,
        &staff.actor(),
        "link.create",
        Some(body.kind.code()),
        now_ms,
    )
    .await?;
    let id = links::create(
        &mut *tx,
        &NewLink {
            institution_id: &staff.institution_id,
            kind: body.kind,
            visit_date: body.visit_date,
            booking_ref: body.booking_ref.as_deref(),
            label: body.label.as_deref(),
            expires_at,
        },
        now_ms,
    )
    .await?;
    tx.commit().await.map_err(StorageError::from)?;
    let record = links::get(&state.db, &staff.institution_id, &id)
        .await?
        .ok_or_else(unknown)?;
    Ok((StatusCode::CREATED, Json(view(&state, record))))
}

/// `DELETE /api/console/links/{id}` (administrators).
pub async fn revoke(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require_role(&staff, &[Role::Administrator])?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await.map_err(StorageError::from)?;
    audit::append(&mut tx, &staff.actor(), "link.revoke", Some(&id), now).await?;
    if !links::revoke(&mut *tx, &staff.institution_id, &id, now).await? {
        tx.rollback().await.map_err(StorageError::from)?;
        return Err(unknown());
    }
    tx.commit().await.map_err(StorageError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The QR code of `url` as an SVG document. Level M survives a smudged print.
pub fn qr_svg_of(url: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M).ok()?;
    Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(256, 256)
            .quiet_zone(true)
            .build(),
    )
}

/// `GET /api/console/links/{id}/qr.svg`.
pub async fn qr_svg(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let record = links::get(&state.db, &staff.institution_id, &id)
        .await?
        .ok_or_else(unknown)?;
    let svg = qr_svg_of(&link_url(&state, &record.id)).ok_or(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    ))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        svg,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_url_makes_an_svg_qr_code() {
        let svg =
            qr_svg_of("https://uketsuke.example.jp/r/0123456789abcdefghjkmnpqrs").expect("encodes");
        assert!(svg.starts_with("<?xml"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.contains("<svg"));
    }
}
