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
use chrono::{DateTime, Utc};
use qrcode::{EcLevel, QrCode, render::svg};
use serde::Serialize;
use uketsuke_domain::ReceptionKind;

use super::{Staff, audit, require_role};
use crate::{
    AppState,
    clock::from_ms,
    gate::Role,
    http::{
        body::{JsonBody, json_body},
        error::ApiError,
    },
    storage::{
        StorageError,
        links::{self, LinkRecord, LinkRequest},
    },
};

type ApiResult<T> = Result<T, ApiError>;

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

pub(super) fn view(state: &AppState, record: LinkRecord) -> LinkView {
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

pub(super) fn link_url(state: &AppState, id: &str) -> String {
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

/// `POST /api/console/links` (administrators).
pub async fn create(
    State(state): State<AppState>,
    staff: Staff,
    body: JsonBody<LinkRequest>,
) -> ApiResult<(StatusCode, Json<LinkView>)> {
    require_role(&staff, &[Role::Administrator])?;
    let body = json_body(body)?;
    let link = body
        .check(&staff.institution_id, state.clock.now())
        .map_err(|code| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code))?;
    let now_ms = state.clock.now_ms();
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(StorageError::from)?;
    audit::append(
        &mut tx,
        &staff.actor(),
        "link.create",
        Some(body.kind.code()),
        now_ms,
    )
    .await?;
    let id = links::create(&mut *tx, &link, now_ms).await?;
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
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(StorageError::from)?;
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
