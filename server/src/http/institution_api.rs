//! The institution API (`/api/v1/…`) for booking systems and レセコン, authenticated with an
//! institution API token (`Authorization: Bearer ukt_…`): create per-appointment reception
//! links (idempotently with `Idempotency-Key`), list them and find them by booking reference,
//! read and revoke them, list the receptions made through one, record home visits. Described
//! in `server/openapi.yaml`, served at `/api/v1/openapi.yaml`; `scripts/contract-test.sh` runs
//! Schemathesis against a live server to keep the two in step. Everything is scoped to the
//! token's institution: another institution's link or reception is "not found".
//!
//! Refusals are `{"error": code, "message": text}` plus `"field"` naming the body field, query
//! parameter or header at fault ([`ApiError`]).
//!
//! Each route needs a scope of the token ([`Scope`]; 403 `scope_missing` otherwise); an expired
//! token is 401 `token_expired`, an unknown or revoked one 401 `token_invalid`. A token reads
//! and revokes only the links it made (403 `link_other_token`). Every action is written to the
//! audit log in the transaction of its change, as account `-api:<token id>` (never the secret).

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State, rejection::BytesRejection, rejection::QueryRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Serialize, de::DeserializeOwned};
use uketsuke_backend::contract::HomeVisitRequest;
use uketsuke_domain::ReceptionKind;

use super::error::ApiError;
use crate::{
    AppState,
    clock::from_ms,
    console::audit::{self, Actor},
    storage::{
        StorageError, idempotency,
        links::{self, After, LinkRecord, LinkRequest},
        receptions::{self, Status},
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

/// The request header that makes `POST /api/v1/links` safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The answer header saying a create was answered from an earlier request with the same key.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// A JSON request body, or a refusal naming the field at fault: 413 `body_too_large`, 422
/// `body_invalid` with `field` (the JSON path, e.g. `kind`, or the unknown or missing field's
/// name) and serde's reason as the message.
fn api_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<T> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
        } else {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "body_invalid")
        }
    })?;
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|v| v == "application/json" || v.ends_with("+json"));
    if !json_type {
        return Err(
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "body_invalid")
                .with_field("Content-Type")
                .with_message("The body must be JSON, sent as Content-Type: application/json."),
        );
    }
    let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
    let parsed: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let reason = error.inner().to_string();
        let field = if path == "." || path.is_empty() {
            named_field(&reason)
        } else {
            Some(path)
        };
        let refusal = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "body_invalid");
        match field {
            Some(field) => {
                let message = format!("{field}: {reason}");
                refusal.with_field(field).with_message(message)
            }
            None => refusal.with_message(reason),
        }
    })?;
    deserializer.end().map_err(|error| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "body_invalid")
            .with_message(error.to_string())
    })?;
    Ok(parsed)
}

/// The field serde names in "unknown field `x`" or "missing field `x`".
fn named_field(reason: &str) -> Option<String> {
    let rest = reason
        .strip_prefix("unknown field `")
        .or_else(|| reason.strip_prefix("missing field `"))?;
    rest.split('`').next().map(str::to_owned)
}

/// The request's `Idempotency-Key`, if it sent one; 422 `idempotency_key_invalid` for a key
/// that is not 1–255 visible ASCII characters, or for the header given twice.
fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_invalid")
            .with_field("Idempotency-Key")
    };
    if values.next().is_some() {
        return Err(invalid());
    }
    let key = value.to_str().map_err(|_| invalid())?;
    if !idempotency::key_ok(key) {
        return Err(invalid());
    }
    Ok(Some(key.to_owned()))
}

/// The SHA-256 (hex) of a request as parsed: the same request however its JSON was spelled.
fn request_sha256<T: Serialize>(request: &T) -> String {
    let canonical = serde_json::to_vec(request).unwrap_or_default();
    receptions::sha256_hex(&canonical)
}

/// The answer to a create whose key was used before: the same link (201, with
/// `Idempotent-Replayed: true`) for the same request, else 422 `idempotency_key_reused`.
async fn replay(
    state: &AppState,
    bearer: &Bearer,
    used: idempotency::Used,
    request_sha256: &str,
) -> ApiResult<Response> {
    if used.request_sha256 != request_sha256 {
        return Err(
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
                .with_field("Idempotency-Key"),
        );
    }
    let record = links::get(&state.db, &bearer.institution_id, &used.link_id)
        .await?
        .ok_or(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
        ))?;
    let mut response = (StatusCode::CREATED, Json(link_view(state, record))).into_response();
    response
        .headers_mut()
        .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    Ok(response)
}

/// `POST /api/v1/links`: a per-appointment link (with `visit_date`) needs `links:appointment`,
/// a long-lived one `links:standing`. With `Idempotency-Key`, a retry of the same request
/// within 24 hours gets the same link. A kind the institution switched off (オンライン診療等・
/// 外来診療等（通常とは異なる動線）機能) is 409 `kind_switched_off`.
pub async fn create_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let bearer = bearer(&state, &headers).await?;
    let body: LinkRequest = api_body(&headers, body)?;
    let scope = if body.visit_date.is_some() {
        Scope::LinksAppointment
    } else {
        Scope::LinksStanding
    };
    require(&bearer, scope)?;
    let key = idempotency_key(&headers)?;
    let hash = request_sha256(&body);
    let now = state.clock.now_ms();
    if let Some(key) = &key
        && let Some(used) = idempotency::find(&state.db, &bearer.id, key, now).await?
    {
        return replay(&state, &bearer, used, &hash).await;
    }
    let link = body
        .check_fields(&bearer.institution_id, state.clock.now())
        .map_err(|refusal| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, refusal.code).with_field(refusal.field)
        })?;
    if link.kind.behind_feature_switch()
        && !crate::console::settings::accepts_remote(&state.db, &bearer.institution_id).await?
    {
        return Err(ApiError::new(StatusCode::CONFLICT, "kind_switched_off").with_field("kind"));
    }
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(StorageError::from)?;
    let id = links::create(&mut *tx, &link, now).await?;
    tokens::mark_link_in(&mut tx, &id, &bearer.id).await?;
    if let Some(key) = &key
        && !idempotency::remember_in(&mut tx, &bearer.id, key, &hash, &id, now).await?
    {
        // Another request with this key committed first: answer as its retry.
        tx.rollback().await.map_err(StorageError::from)?;
        let used = idempotency::find(&state.db, &bearer.id, key, now)
            .await?
            .ok_or(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
            ))?;
        return replay(&state, &bearer, used, &hash).await;
    }
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

/// The most a page of a list holds, and what it holds unless asked.
pub const MAX_PAGE: i64 = 100;
pub const DEFAULT_PAGE: i64 = 50;

/// A list's query: `limit` (1–100), `cursor` (from the previous page's `next_cursor`), and the
/// list's own filters. A malformed one is 422 `query_invalid` naming the parameter.
struct ListQuery {
    limit: i64,
    after: Option<After>,
    booking_ref: Option<String>,
}

fn list_query(
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    filters: &[&'static str],
) -> ApiResult<ListQuery> {
    let Query(pairs) = query.map_err(|rejection| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "query_invalid")
            .with_message(rejection.body_text())
    })?;
    let invalid = |field: &'static str, message: &str| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "query_invalid")
            .with_field(field)
            .with_message(format!("{field}: {message}"))
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut out = ListQuery {
        limit: DEFAULT_PAGE,
        after: None,
        booking_ref: None,
    };
    for (name, value) in &pairs {
        let name: &'static str = match name.as_str() {
            "limit" => "limit",
            "cursor" => "cursor",
            "booking_ref" if filters.contains(&"booking_ref") => "booking_ref",
            // Parameters this route does not take are ignored, as HTTP APIs do.
            _ => continue,
        };
        if seen.contains(&name) {
            return Err(invalid(name, "given more than once"));
        }
        seen.push(name);
        match name {
            "limit" => {
                out.limit = value
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| invalid("limit", "must be a whole number from 1 to 100"))?;
            }
            "cursor" => {
                out.after =
                    Some(parse_cursor(value).ok_or_else(|| {
                        invalid("cursor", "must be a next_cursor this API returned")
                    })?);
            }
            _ => {
                if let Some(code) = links::text_refusal(value, links::MAX_LINK_TEXT, "text_invalid")
                {
                    return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code)
                        .with_field("booking_ref"));
                }
                out.booking_ref = Some(value.clone());
            }
        }
    }
    Ok(out)
}

/// A page's cursor: the last item's instant (ms) and id, as `<ms>_<id>`.
fn cursor_of(at: i64, id: &str) -> String {
    format!("{at}_{id}")
}

fn parse_cursor(text: &str) -> Option<After> {
    let (at, id) = text.split_once('_')?;
    let created_at = at.parse::<i64>().ok().filter(|n| *n >= 0)?;
    crate::storage::ids::looks_like_id(id).then(|| After {
        created_at,
        id: id.to_owned(),
    })
}

/// A page of links.
#[derive(Debug, Serialize)]
pub struct LinkPage {
    pub links: Vec<LinkView>,
    /// Give it as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/links[?booking_ref=…&limit=…&cursor=…]`: the links this token made, newest
/// first; with `booking_ref`, only those with exactly that reference (`links:appointment` or
/// `links:standing`).
pub async fn list_links(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ApiResult<Json<LinkPage>> {
    let bearer = bearer(&state, &headers).await?;
    if !bearer.allows(Scope::LinksAppointment) && !bearer.allows(Scope::LinksStanding) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "scope_missing"));
    }
    let query = list_query(query, &["booking_ref"])?;
    let mut records = links::list_by_token(
        &state.db,
        &bearer.institution_id,
        &bearer.id,
        query.booking_ref.as_deref(),
        query.after.as_ref(),
        query.limit + 1,
    )
    .await?;
    let more = records.len() as i64 > query.limit;
    records.truncate(usize::try_from(query.limit).unwrap_or(0));
    let next_cursor = more
        .then(|| records.last().map(|r| cursor_of(r.created_at, &r.id)))
        .flatten();
    audit::record(
        &state.db,
        &actor(&bearer),
        "api.link.list",
        None,
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(LinkPage {
        links: records.into_iter().map(|r| link_view(&state, r)).collect(),
        next_cursor,
    }))
}

/// A reception as the institution API shows it: what a booking system needs to follow it and
/// to record home visits, no personal data.
#[derive(Debug, Serialize)]
pub struct ReceptionView {
    /// The id `POST /api/v1/receptions/{id}/home-visits` takes.
    pub id: String,
    pub kind: ReceptionKind,
    /// JST date.
    pub visit_date: NaiveDate,
    /// `queued` (waiting for the backend), `confirmed` or `refused`.
    pub status: &'static str,
    pub submitted_at: DateTime<Utc>,
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// Recorded visits of 訪問診療等 (JST dates, oldest first).
    pub home_visits: Vec<NaiveDate>,
}

/// A page of receptions.
#[derive(Debug, Serialize)]
pub struct ReceptionPage {
    pub receptions: Vec<ReceptionView>,
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/links/{id}/receptions[?limit=…&cursor=…]`: the receptions made through a link
/// this token made, newest first (`links:appointment`, `links:standing` or `home_visits:write`).
/// Their ids are what `POST /api/v1/receptions/{id}/home-visits` takes.
pub async fn link_receptions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ApiResult<Json<ReceptionPage>> {
    let bearer = bearer(&state, &headers).await?;
    if ![
        Scope::LinksAppointment,
        Scope::LinksStanding,
        Scope::HomeVisitsWrite,
    ]
    .into_iter()
    .any(|s| bearer.allows(s))
    {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "scope_missing"));
    }
    let query = list_query(query, &[])?;
    let link = own_link(&state, &bearer, &id).await?;
    let mut ids = links::reception_ids(
        &state.db,
        &bearer.institution_id,
        &link.id,
        query.after.as_ref(),
        query.limit + 1,
    )
    .await?;
    let more = ids.len() as i64 > query.limit;
    ids.truncate(usize::try_from(query.limit).unwrap_or(0));
    let mut receptions = Vec::with_capacity(ids.len());
    for id in &ids {
        if let Some(r) = receptions::get(&state.db, id).await? {
            receptions.push(ReceptionView {
                status: match r.status {
                    Status::Queued { .. } => "queued",
                    Status::Confirmed => "confirmed",
                    Status::Refused { .. } => "refused",
                },
                id: r.id,
                kind: r.kind,
                visit_date: r.visit_date,
                submitted_at: from_ms(r.submitted_at),
                withdrawn_at: r.withdrawn_at.map(from_ms),
                home_visits: r.home_visits,
            });
        }
    }
    let next_cursor = more
        .then(|| {
            receptions
                .last()
                .map(|r| cursor_of(r.submitted_at.timestamp_millis(), &r.id))
        })
        .flatten();
    audit::record(
        &state.db,
        &actor(&bearer),
        "api.link.receptions",
        Some(&link.id),
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(ReceptionPage {
        receptions,
        next_cursor,
    }))
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
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(StorageError::from)?;
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

/// The body of `POST /api/v1/receptions/{id}/home-visits`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HomeVisitBody {
    /// JST date of a visit that took place.
    visit_date: NaiveDate,
}

/// `POST /api/v1/receptions/{id}/home-visits`: records a visit of 訪問診療等 that took place.
pub async fn record_home_visit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<StatusCode> {
    let bearer = authorized(&state, &headers, Scope::HomeVisitsWrite).await?;
    let institution_id = bearer.institution_id.clone();
    let HomeVisitBody { visit_date } = api_body(&headers, body)?;
    let body = HomeVisitRequest { visit_date };
    let reception = receptions::get(&state.db, &id)
        .await?
        .filter(|r| r.institution_id == institution_id)
        .ok_or(ApiError::new(StatusCode::NOT_FOUND, "reception_unknown"))?;
    if reception.kind != ReceptionKind::HomeVisit {
        return Err(
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "not_home_visit").with_field("id"),
        );
    }
    let today = uketsuke_domain::window::jst_date(state.clock.now());
    let first_allowed = uketsuke_domain::window::jst_date(from_ms(reception.submitted_at))
        .with_day(1)
        .unwrap_or(today);
    if body.visit_date > today || body.visit_date < first_allowed {
        return Err(
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "visit_date_invalid")
                .with_field("visit_date"),
        );
    }
    let payload = serde_json::to_string(&body).unwrap_or_default();
    let now = state.clock.now_ms();
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(StorageError::from)?;
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
