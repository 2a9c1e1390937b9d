//! The institution API (`/api/v1/…`) for booking systems and レセコン, authenticated with an
//! institution API token (`Authorization: Bearer ukt_…`): create per-appointment reception
//! links, read and revoke them, record home visits. Described in `server/openapi.yaml`, served
//! at `/api/v1/openapi.yaml`. Everything is scoped to the token's institution: another
//! institution's link or reception is "not found".

use super::body::{JsonBody, json_body};
use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uketsuke_backend::contract::HomeVisitRequest;
use uketsuke_domain::ReceptionKind;

use super::error::ApiError;
use crate::{
    AppState,
    clock::from_ms,
    storage::{
        links::{self, LinkRecord, LinkRequest},
        receptions, tokens,
    },
};

/// The OpenAPI description, as served.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

type ApiResult<T> = Result<T, ApiError>;

async fn institution(state: &AppState, headers: &HeaderMap) -> ApiResult<String> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "token_missing"));
    };
    tokens::institution_of(&state.db, token, state.clock.now_ms())
        .await?
        .ok_or(ApiError::new(StatusCode::UNAUTHORIZED, "token_invalid"))
}

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
    pub use_count: i64,
    pub created_at: DateTime<Utc>,
}

fn link_view(state: &AppState, record: LinkRecord) -> LinkView {
    LinkView {
        url: format!("{}/r/{}", state.config.origin_string(), record.id),
        id: record.id,
        kind: record.kind,
        visit_date: record.visit_date,
        booking_ref: record.booking_ref,
        label: record.label,
        expires_at: record.expires_at.map(from_ms),
        revoked_at: record.revoked_at.map(from_ms),
        use_count: record.use_count,
        created_at: from_ms(record.created_at),
    }
}

/// `POST /api/v1/links`
pub async fn create_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: JsonBody<LinkRequest>,
) -> ApiResult<Response> {
    let institution_id = institution(&state, &headers).await?;
    let body = json_body(body)?;
    let link = body
        .check(&institution_id, state.clock.now())
        .map_err(|code| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code))?;
    let id = links::create(&state.db, &link, state.clock.now_ms()).await?;
    let record = links::get(&state.db, &institution_id, &id)
        .await?
        .ok_or(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
        ))?;
    Ok((StatusCode::CREATED, Json(link_view(&state, record))).into_response())
}

/// `GET /api/v1/links/{id}`
pub async fn get_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<LinkView>> {
    let institution_id = institution(&state, &headers).await?;
    let record = links::get(&state.db, &institution_id, &id)
        .await?
        .ok_or(ApiError::new(StatusCode::NOT_FOUND, "link_unknown"))?;
    Ok(Json(link_view(&state, record)))
}

/// `DELETE /api/v1/links/{id}`
pub async fn revoke_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let institution_id = institution(&state, &headers).await?;
    if links::revoke(&state.db, &institution_id, &id, state.clock.now_ms()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "link_unknown"))
    }
}

/// `POST /api/v1/receptions/{id}/home-visits`: records a visit of 訪問診療等 that took place.
pub async fn record_home_visit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: JsonBody<HomeVisitRequest>,
) -> ApiResult<StatusCode> {
    let institution_id = institution(&state, &headers).await?;
    let body = json_body(body)?;
    let reception = receptions::get(&state.db, &id)
        .await?
        .filter(|r| r.institution_id == institution_id)
        .ok_or(ApiError::new(StatusCode::NOT_FOUND, "reception_unknown"))?;
    if reception.kind != ReceptionKind::HomeVisit {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_home_visit",
        ));
    }
    let today = uketsuke_domain::window::jst_date(state.clock.now());
    let first_allowed = uketsuke_domain::window::jst_date(from_ms(reception.submitted_at))
        .with_day(1)
        .unwrap_or(today);
    if body.visit_date > today || body.visit_date < first_allowed {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "visit_date_invalid",
        ));
    }
    let payload = serde_json::to_string(&body).unwrap_or_default();
    let added = receptions::record_home_visit(
        &state.db,
        &reception.id,
        body.visit_date,
        &payload,
        state.clock.now_ms(),
    )
    .await?;
    if added {
        state.relay_wake.notify_one();
        Ok(StatusCode::CREATED)
    } else {
        Ok(StatusCode::OK)
    }
}

/// `GET /api/v1/openapi.yaml`
pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/yaml; charset=utf-8")],
        OPENAPI_YAML,
    )
}

use chrono::Datelike as _;
