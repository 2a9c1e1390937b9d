//! The institution API (`/api/v1/…`) for booking systems and レセコン, authenticated with an
//! institution API token (`Authorization: Bearer ukt_…`): create per-appointment reception
//! links, read and revoke them, record home visits. Described in `server/openapi.yaml`, served
//! at `/api/v1/openapi.yaml`. Everything is scoped to the token's institution: another
//! institution's link or reception is "not found".
//!
//! Each route needs a scope of the token ([`Scope`]; 403 `scope_missing` otherwise); an expired
//! token is 401 `token_expired`, an unknown or revoked one 401 `token_invalid`. A token reads
//! and revokes only the links it made (403 `link_other_token`). Every action is written to the
//! audit log in the transaction of its change, as account `-api:<token id>` (never the secret).

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
    console::audit::{self, Actor},
    storage::{
        StorageError,
        links::{self, LinkRecord, LinkRequest},
        receptions,
        tokens::{self, Bearer, Refusal, Scope},
    },
};

/// The OpenAPI description, as served.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

type ApiResult<T> = Result<T, ApiError>;

/// The live token of the request.
async fn bearer(state: &AppState, headers: &HeaderMap) -> ApiResult<Bearer> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "token_missing"));
    };
    match tokens::bearer(&state.db, token, state.clock.now_ms()).await? {
        Ok(bearer) => Ok(bearer),
        Err(Refusal::Expired) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "token_expired")),
        Err(Refusal::Invalid) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "token_invalid")),
    }
}

/// The live token of the request, if it has `scope`.
async fn authorized(state: &AppState, headers: &HeaderMap, scope: Scope) -> ApiResult<Bearer> {
    let bearer = bearer(state, headers).await?;
    require(&bearer, scope)?;
    Ok(bearer)
}

fn require(bearer: &Bearer, scope: Scope) -> ApiResult<()> {
    if bearer.allows(scope) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "scope_missing"))
    }
}

/// The token, for the audit log: `-api:<token id>`.
fn actor(bearer: &Bearer) -> Actor {
    Actor {
        institution_id: bearer.institution_id.clone(),
        account: format!("-api:{}", bearer.id),
        ip: None,
    }
}

/// The link `id` if this token made it; another token's link is 403, a link of another
/// institution or none at all 404.
async fn own_link(state: &AppState, bearer: &Bearer, id: &str) -> ApiResult<LinkRecord> {
    let record = links::get(&state.db, &bearer.institution_id, id)
        .await?
        .ok_or(ApiError::new(StatusCode::NOT_FOUND, "link_unknown"))?;
    if !tokens::made_link(&state.db, &bearer.institution_id, id, &bearer.id).await? {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "link_other_token"));
    }
    Ok(record)
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

/// `POST /api/v1/links`: a per-appointment link (with `visit_date`) needs `links:appointment`,
/// a long-lived one `links:standing`.
pub async fn create_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: JsonBody<LinkRequest>,
) -> ApiResult<Response> {
    let bearer = bearer(&state, &headers).await?;
    let body = json_body(body)?;
    let scope = if body.visit_date.is_some() {
        Scope::LinksAppointment
    } else {
        Scope::LinksStanding
    };
    require(&bearer, scope)?;
    let now = state.clock.now_ms();
    let link = body
        .check(&bearer.institution_id, state.clock.now())
        .map_err(|code| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code))?;
    let mut tx = state.db.begin().await.map_err(StorageError::from)?;
    let id = links::create(&mut *tx, &link, now).await?;
    tokens::mark_link_in(&mut tx, &id, &bearer.id).await?;
    audit::append(&mut tx, &actor(&bearer), "api.link.create", Some(&id), now).await?;
    tx.commit().await.map_err(StorageError::from)?;
    let record = links::get(&state.db, &bearer.institution_id, &id)
        .await?
        .ok_or(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
        ))?;
    Ok((StatusCode::CREATED, Json(link_view(&state, record))).into_response())
}

/// `GET /api/v1/links/{id}`: a link this token made (`links:appointment` or `links:standing`).
pub async fn get_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<LinkView>> {
    let bearer = bearer(&state, &headers).await?;
    if !bearer.allows(Scope::LinksAppointment) && !bearer.allows(Scope::LinksStanding) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "scope_missing"));
    }
    let record = own_link(&state, &bearer, &id).await?;
    audit::record(
        &state.db,
        &actor(&bearer),
        "api.link.read",
        Some(&record.id),
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(link_view(&state, record)))
}

/// `DELETE /api/v1/links/{id}`: revokes a link this token made (`links:revoke`).
pub async fn revoke_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let bearer = authorized(&state, &headers, Scope::LinksRevoke).await?;
    let record = own_link(&state, &bearer, &id).await?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await.map_err(StorageError::from)?;
    audit::append(
        &mut tx,
        &actor(&bearer),
        "api.link.revoke",
        Some(&record.id),
        now,
    )
    .await?;
    if links::revoke(&mut *tx, &bearer.institution_id, &record.id, now).await? {
        tx.commit().await.map_err(StorageError::from)?;
        Ok(StatusCode::NO_CONTENT)
    } else {
        tx.rollback().await.map_err(StorageError::from)?;
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
    let bearer = authorized(&state, &headers, Scope::HomeVisitsWrite).await?;
    let institution_id = bearer.institution_id.clone();
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
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await.map_err(StorageError::from)?;
    let added =
        receptions::record_home_visit_in(&mut tx, &reception.id, body.visit_date, &payload, now)
            .await?;
    if added {
        audit::append(
            &mut tx,
            &actor(&bearer),
            "api.home_visit.record",
            Some(&reception.id),
            now,
        )
        .await?;
        tx.commit().await.map_err(StorageError::from)?;
    } else {
        tx.rollback().await.map_err(StorageError::from)?;
    }
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
