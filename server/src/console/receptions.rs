//! Receptions in the console: the day's list, one reception's detail with its eligibility as
//! stored, the institution's own patient number (照会番号), home visits, withdrawal on the
//! patient's request, medical information (only ever through [`crate::gate`]), and the export
//! of eligibility for the レセコン as CSV (UTF-8 with BOM, for Excel) or JSON.
//!
//! Views of personal data are logged before they are answered: if the log cannot be written,
//! nothing is shown. Changes are logged in their own transaction.

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Datelike as _, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uketsuke_backend::contract::{
    HomeVisitRequest, MedicalCategory, MedicalInformation, PrescriptionMethod, WithdrawalRequest,
    WithdrawnBy,
};
use uketsuke_domain::{
    ReceptionKind, Window, WindowInput,
    eligibility::{
        EligibilityOutcome, EligibilityRecord, EligibilityWarning, InsuredRelation,
        NoEligibilityReason, Sex, TicketKind,
    },
    window::{self, is_open, jst_date, to_jst},
};

use super::{Staff, audit, csv_field, jst_day_range, text_ok};
use crate::{
    AppState,
    clock::from_ms,
    gate::{self, GateError, GateRefusal, Reader},
    http::patient::{ApiError, JsonBody, json_body},
    relay::{self, StoredEligibility},
    storage::{
        StorageError,
        receptions::{self, Reception, Status, parse_date},
    },
};

type ApiResult<T> = Result<T, ApiError>;

/// A day's list is capped here; a clinic sees far fewer.
const LIST_MAX: i64 = 2000;
/// 照会番号: the institution's own patient number.
const PATIENT_REF_MAX: usize = 32;

fn unknown() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "reception_unknown")
}

fn prescription_of(code: Option<String>) -> Option<PrescriptionMethod> {
    code.and_then(|c| serde_json::from_value(serde_json::Value::String(c)).ok())
}

fn status_parts(status: &Status) -> (&'static str, Option<String>) {
    match status {
        Status::Queued { .. } => ("queued", None),
        Status::Confirmed => ("confirmed", None),
        Status::Refused { code } => ("refused", Some(code.clone())),
    }
}

#[derive(Debug, Serialize)]
pub struct ConsentView {
    pub clinical_medication: bool,
    pub checkups: bool,
    pub prescription_method: Option<PrescriptionMethod>,
}

#[derive(Debug, Serialize)]
pub struct ListRow {
    pub id: String,
    pub submitted_at: DateTime<Utc>,
    /// Submission time, JST, "HH:MM".
    pub time: String,
    /// 受付番号
    pub reception_number: Option<String>,
    pub kind: ReceptionKind,
    pub visit_date: String,
    /// From the stored eligibility, once it is in.
    pub name: Option<String>,
    pub name_kana: Option<String>,
    pub consent: ConsentView,
    pub window_end: Option<DateTime<Utc>>,
    pub window_end_display: Option<String>,
    /// `queued`, `confirmed`, `refused`
    pub status: &'static str,
    pub refusal: Option<String>,
    pub withdrawn: bool,
    /// `pending`, `found`, `not_available`, `refused`
    pub eligibility: &'static str,
    pub patient_ref: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// JST date, default today.
    pub date: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ListView {
    pub date: String,
    pub receptions: Vec<ListRow>,
}

fn eligibility_state(stored: Option<&StoredEligibility>) -> &'static str {
    match stored {
        None => "pending",
        Some(StoredEligibility::Answer {
            outcome: EligibilityOutcome::Found { .. },
            ..
        }) => "found",
        Some(StoredEligibility::Answer { .. }) => "not_available",
        Some(StoredEligibility::Refused { .. }) => "refused",
    }
}

fn record_of(stored: Option<&StoredEligibility>) -> Option<&EligibilityRecord> {
    match stored {
        Some(StoredEligibility::Answer {
            outcome: EligibilityOutcome::Found { record },
            ..
        }) => Some(record),
        _ => None,
    }
}

/// `GET /api/console/receptions?date=YYYY-MM-DD`: receptions submitted on that JST day, or
/// whose visit date it is, oldest first.
pub async fn list(
    State(state): State<AppState>,
    staff: Staff,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ListView>> {
    let Query(query) =
        query.map_err(|_| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "date_invalid"))?;
    let date = match query.date.filter(|d| !d.is_empty()) {
        Some(date) => date,
        None => jst_date(state.clock.now()).format("%Y-%m-%d").to_string(),
    };
    let (start, end) = jst_day_range(&date).ok_or(ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "date_invalid",
    ))?;
    let filter = "r.institution_id = $1 \
                  AND ((r.submitted_at >= $2 AND r.submitted_at < $3) OR r.visit_date = $4)";
    let rows = sqlx::query(&format!(
        "SELECT r.id, r.kind, r.visit_date, r.clinical_medication, r.checkups, r.prescription, \
                r.status, r.refusal_code, r.submitted_at, r.reception_number, r.registered_at, \
                r.withdrawn_at, r.eligibility_json, r.patient_ref \
         FROM receptions r WHERE {filter} ORDER BY r.submitted_at, r.id LIMIT {LIST_MAX}"
    ))
    .bind(&staff.institution_id)
    .bind(start)
    .bind(end)
    .bind(&date)
    .fetch_all(&state.db)
    .await
    .map_err(StorageError::from)?;
    // Home visits keep their window open: fetch them for the whole list at once.
    let visit_rows = sqlx::query(&format!(
        "SELECT h.reception_id, h.visit_date FROM home_visits h \
         JOIN receptions r ON r.id = h.reception_id WHERE {filter}"
    ))
    .bind(&staff.institution_id)
    .bind(start)
    .bind(end)
    .bind(&date)
    .fetch_all(&state.db)
    .await
    .map_err(StorageError::from)?;
    let mut visits: HashMap<String, Vec<NaiveDate>> = HashMap::new();
    for row in visit_rows {
        let id: String = row.try_get("reception_id").map_err(StorageError::from)?;
        let day: String = row.try_get("visit_date").map_err(StorageError::from)?;
        if let Some(day) = parse_date(&day) {
            visits.entry(id).or_default().push(day);
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        if let Some(item) = list_row(&row, &mut visits).map_err(StorageError::from)? {
            out.push(item);
        }
    }
    // The list shows names: it is a view of eligibility.
    audit::record(
        &state.db,
        &staff.actor(),
        "receptions.list",
        Some(&date),
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(ListView {
        date,
        receptions: out,
    }))
}

fn list_row(
    row: &sqlx::any::AnyRow,
    visits: &mut HashMap<String, Vec<NaiveDate>>,
) -> Result<Option<ListRow>, sqlx::Error> {
    let id: String = row.try_get("id")?;
    let kind: String = row.try_get("kind")?;
    let visit_date: String = row.try_get("visit_date")?;
    let (Some(kind), Some(visit_day)) = (ReceptionKind::from_code(&kind), parse_date(&visit_date))
    else {
        tracing::error!("a reception row cannot be read");
        return Ok(None);
    };
    let status: String = row.try_get("status")?;
    let refusal: Option<String> = row.try_get("refusal_code")?;
    let (status, refusal) = match status.as_str() {
        "confirmed" => ("confirmed", None),
        "refused" => (
            "refused",
            Some(refusal.unwrap_or_else(|| "internal".into())),
        ),
        _ => ("queued", None),
    };
    let submitted_at: i64 = row.try_get("submitted_at")?;
    let registered_at: Option<i64> = row.try_get("registered_at")?;
    let withdrawn_at: Option<i64> = row.try_get("withdrawn_at")?;
    let mut home_visits = visits.remove(&id).unwrap_or_default();
    home_visits.sort();
    let window = registered_at.map(|at| {
        window::window(&WindowInput {
            kind,
            registered_at: from_ms(at),
            visit_date: Some(visit_day),
            home_visits,
            withdrawn_at: withdrawn_at.map(from_ms),
        })
    });
    let eligibility: Option<String> = row.try_get("eligibility_json")?;
    let stored: Option<StoredEligibility> =
        eligibility.and_then(|json| serde_json::from_str(&json).ok());
    let record = record_of(stored.as_ref());
    let clinical: i64 = row.try_get("clinical_medication")?;
    let checkups: i64 = row.try_get("checkups")?;
    let submitted = from_ms(submitted_at);
    Ok(Some(ListRow {
        time: to_jst(submitted).format("%H:%M").to_string(),
        submitted_at: submitted,
        reception_number: row.try_get("reception_number")?,
        kind,
        visit_date,
        name: record.map(|r| r.name.clone()),
        name_kana: record.map(|r| r.name_kana.clone()),
        consent: ConsentView {
            clinical_medication: clinical != 0,
            checkups: checkups != 0,
            prescription_method: prescription_of(row.try_get("prescription")?),
        },
        window_end: window.and_then(|w| w.end()),
        window_end_display: window.and_then(|w| w.display_end_jst()),
        status,
        refusal,
        withdrawn: withdrawn_at.is_some(),
        eligibility: eligibility_state(stored.as_ref()),
        patient_ref: row.try_get("patient_ref")?,
        id,
    }))
}

/// The reception `id` if it belongs to the staff member's institution.
async fn own_reception(state: &AppState, staff: &Staff, id: &str) -> ApiResult<Reception> {
    receptions::get(&state.db, id)
        .await?
        .filter(|r| r.institution_id == staff.institution_id)
        .ok_or_else(unknown)
}

/// What the console keeps beside the reception's own fields.
struct Extra {
    patient_ref: Option<String>,
    identity_method: String,
    staff_account: Option<String>,
    eligibility_at: Option<i64>,
}

async fn extra(state: &AppState, id: &str) -> Result<Extra, StorageError> {
    let row = sqlx::query(
        "SELECT patient_ref, identity_method, staff_account, eligibility_at \
         FROM receptions WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&state.db)
    .await?;
    Ok(Extra {
        patient_ref: row.try_get("patient_ref")?,
        identity_method: row.try_get("identity_method")?,
        staff_account: row.try_get("staff_account")?,
        eligibility_at: row.try_get("eligibility_at")?,
    })
}

#[derive(Debug, Serialize)]
pub struct Detail {
    pub id: String,
    pub kind: ReceptionKind,
    pub visit_date: NaiveDate,
    pub submitted_at: DateTime<Utc>,
    pub reception_number: Option<String>,
    pub status: &'static str,
    pub refusal: Option<String>,
    pub consent: ConsentView,
    /// `card` or `visual_check`.
    pub identity_method: String,
    /// Who compared the face with the card photo (visual check).
    pub staff_account: Option<String>,
    /// 照会番号
    pub patient_ref: Option<String>,
    pub registered_at: Option<DateTime<Utc>>,
    pub withdrawn_at: Option<DateTime<Utc>>,
    pub window: Option<Window>,
    pub window_end_display: Option<String>,
    pub window_open: bool,
    pub home_visits: Vec<NaiveDate>,
    /// Every field as the backend answered it (after its information control).
    pub eligibility: Option<StoredEligibility>,
    pub eligibility_at: Option<DateTime<Utc>>,
}

async fn detail_of(state: &AppState, reception: Reception) -> ApiResult<Detail> {
    let extra = extra(state, &reception.id).await?;
    let eligibility = relay::eligibility(&state.db, &reception.id).await?;
    let window = reception.window();
    let (status, refusal) = status_parts(&reception.status);
    Ok(Detail {
        kind: reception.kind,
        visit_date: reception.visit_date,
        submitted_at: from_ms(reception.submitted_at),
        reception_number: reception.reception_number,
        status,
        refusal,
        consent: ConsentView {
            clinical_medication: reception.consent.clinical_medication,
            checkups: reception.consent.checkups,
            prescription_method: reception.prescription,
        },
        identity_method: extra.identity_method,
        staff_account: extra.staff_account,
        patient_ref: extra.patient_ref,
        registered_at: reception.registered_at.map(from_ms),
        withdrawn_at: reception.withdrawn_at.map(from_ms),
        window_end_display: window.and_then(|w| w.display_end_jst()),
        window_open: window.is_some_and(|w| is_open(&w, state.clock.now())),
        window,
        home_visits: reception.home_visits,
        eligibility,
        eligibility_at: extra.eligibility_at.map(from_ms),
        id: reception.id,
    })
}

/// `GET /api/console/receptions/{id}`: the reception with its eligibility; logged as a view.
pub async fn detail(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> ApiResult<Json<Detail>> {
    let reception = own_reception(&state, &staff, &id).await?;
    let detail = detail_of(&state, reception).await?;
    audit::record(
        &state.db,
        &staff.actor(),
        "reception.view",
        Some(&detail.id),
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(detail))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientRef {
    /// Empty or null clears it.
    pub patient_ref: Option<String>,
}

/// `PUT /api/console/receptions/{id}/patient-ref {patient_ref}`.
pub async fn set_patient_ref(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: JsonBody<PatientRef>,
) -> ApiResult<StatusCode> {
    let body = json_body(body)?;
    let value = body
        .patient_ref
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    if value
        .as_deref()
        .is_some_and(|v| !text_ok(v, PATIENT_REF_MAX))
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "patient_ref_invalid",
        ));
    }
    let reception = own_reception(&state, &staff, &id).await?;
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await.map_err(StorageError::from)?;
    audit::append(
        &mut tx,
        &staff.actor(),
        "patient_ref.update",
        Some(&reception.id),
        now,
    )
    .await?;
    sqlx::query(
        "UPDATE receptions SET patient_ref = $1, updated_at = $2 \
         WHERE id = $3 AND institution_id = $4",
    )
    .bind(value)
    .bind(now)
    .bind(&reception.id)
    .bind(&staff.institution_id)
    .execute(&mut *tx)
    .await
    .map_err(StorageError::from)?;
    tx.commit().await.map_err(StorageError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/console/receptions/{id}/home-visits {visit_date}`: a visit of 訪問診療等 that
/// took place, under the same rules as the institution API (not in the future, not before the
/// month of registration).
pub async fn record_home_visit(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    body: JsonBody<HomeVisitRequest>,
) -> ApiResult<StatusCode> {
    let body = json_body(body)?;
    let reception = own_reception(&state, &staff, &id).await?;
    if reception.kind != ReceptionKind::HomeVisit {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_home_visit",
        ));
    }
    let today = jst_date(state.clock.now());
    let first_allowed = jst_date(from_ms(reception.submitted_at))
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
    let target = format!("{}/{}", reception.id, body.visit_date.format("%Y-%m-%d"));
    let mut tx = state.db.begin().await.map_err(StorageError::from)?;
    audit::append(
        &mut tx,
        &staff.actor(),
        "home_visit.record",
        Some(&target),
        now,
    )
    .await?;
    let added =
        receptions::record_home_visit_in(&mut tx, &reception.id, body.visit_date, &payload, now)
            .await?;
    if !added {
        // Already recorded: nothing changed, nothing to log.
        tx.rollback().await.map_err(StorageError::from)?;
        return Ok(StatusCode::OK);
    }
    tx.commit().await.map_err(StorageError::from)?;
    state.relay_wake.notify_one();
    Ok(StatusCode::CREATED)
}

#[derive(Debug, Serialize)]
pub struct Withdrawn {
    pub withdrawn_at: Option<DateTime<Utc>>,
    /// It had been withdrawn before this request.
    pub already: bool,
}

/// `POST /api/console/receptions/{id}/withdrawal`: staff withdraw all consents on the patient's
/// request. Access ends at once here; the backend is told through the outbox.
pub async fn withdraw(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> ApiResult<Json<Withdrawn>> {
    let reception = own_reception(&state, &staff, &id).await?;
    if let Some(at) = reception.withdrawn_at {
        return Ok(Json(Withdrawn {
            withdrawn_at: Some(from_ms(at)),
            already: true,
        }));
    }
    let payload = serde_json::to_string(&WithdrawalRequest {
        requested: WithdrawnBy::Staff {
            staff_account: staff.login_id.clone(),
        },
    })
    .unwrap_or_default();
    let now = state.clock.now_ms();
    let mut tx = state.db.begin().await.map_err(StorageError::from)?;
    audit::append(
        &mut tx,
        &staff.actor(),
        "reception.withdraw",
        Some(&reception.id),
        now,
    )
    .await?;
    if !receptions::withdraw_in(&mut tx, &reception.id, &payload, now).await? {
        // Another request withdrew it in between.
        tx.rollback().await.map_err(StorageError::from)?;
        let again = own_reception(&state, &staff, &id).await?;
        return Ok(Json(Withdrawn {
            withdrawn_at: again.withdrawn_at.map(from_ms),
            already: true,
        }));
    }
    tx.commit().await.map_err(StorageError::from)?;
    state.relay_wake.notify_one();
    Ok(Json(Withdrawn {
        withdrawn_at: Some(from_ms(now)),
        already: false,
    }))
}

fn gate_error(error: GateError) -> ApiError {
    let forbidden = |code| ApiError::new(StatusCode::FORBIDDEN, code);
    match error {
        GateError::Refused(GateRefusal::NotFound) => unknown(),
        GateError::Refused(GateRefusal::Role) => forbidden("role_not_permitted"),
        GateError::Refused(GateRefusal::NotConfirmed) => forbidden("not_confirmed"),
        GateError::Refused(GateRefusal::NoMedicalInformation) => {
            forbidden("no_medical_information")
        }
        GateError::Refused(GateRefusal::NotConsented) => forbidden("not_consented"),
        GateError::Refused(GateRefusal::WindowClosed) => forbidden("window_closed"),
        GateError::Refused(GateRefusal::ConsentPending) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "consent_pending")
        }
        GateError::Backend(error) => {
            tracing::warn!(%error, "medical information not available from the backend");
            ApiError::new(StatusCode::BAD_GATEWAY, "backend_unavailable")
        }
        GateError::Storage(error) => error.into(),
    }
}

/// `GET /api/console/receptions/{id}/medical/{clinical_medication|checkups}`: only through the
/// gate (role 医療情報閲覧, consent, confirmed, window open now); each refusal says why.
pub async fn medical(
    State(state): State<AppState>,
    staff: Staff,
    Path((id, category)): Path<(String, String)>,
) -> ApiResult<Json<MedicalInformation>> {
    let category = match category.as_str() {
        "clinical_medication" => MedicalCategory::ClinicalMedication,
        "checkups" => MedicalCategory::Checkups,
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "category_unknown")),
    };
    let reader = Reader {
        institution_id: &staff.institution_id,
        role: staff.role,
    };
    let information = gate::medical_information(
        &state.db,
        &state.backend,
        &state.clock,
        reader,
        &id,
        category,
    )
    .await
    .map_err(gate_error)?;
    let code = match category {
        MedicalCategory::ClinicalMedication => "clinical_medication",
        MedicalCategory::Checkups => "checkups",
    };
    audit::record(
        &state.db,
        &staff.actor(),
        "medical.view",
        Some(&format!("{id}/{code}")),
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(information))
}

/// The export of one reception's eligibility.
#[derive(Debug, Serialize)]
pub struct Export {
    pub reception_id: String,
    pub reception_number: Option<String>,
    pub patient_ref: Option<String>,
    pub kind: ReceptionKind,
    pub visit_date: NaiveDate,
    pub eligibility: StoredEligibility,
}

async fn export_of(state: &AppState, staff: &Staff, id: &str, format: &str) -> ApiResult<Export> {
    let reception = own_reception(state, staff, id).await?;
    let eligibility = relay::eligibility(&state.db, &reception.id)
        .await?
        .ok_or(ApiError::new(StatusCode::CONFLICT, "eligibility_pending"))?;
    let extra = extra(state, &reception.id).await?;
    audit::record(
        &state.db,
        &staff.actor(),
        "eligibility.export",
        Some(&format!("{}/{format}", reception.id)),
        state.clock.now_ms(),
    )
    .await?;
    Ok(Export {
        reception_id: reception.id,
        reception_number: reception.reception_number,
        patient_ref: extra.patient_ref,
        kind: reception.kind,
        visit_date: reception.visit_date,
        eligibility,
    })
}

fn download(content_type: &'static str, name: String, body: String) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    if let Ok(value) = header::HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

fn file_stem(export: &Export) -> String {
    // The reception number is eight digits; the id is the fallback. Both are safe in a header.
    let key = export
        .reception_number
        .as_deref()
        .filter(|n| n.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or(&export.reception_id);
    format!("eligibility-{key}")
}

/// `GET /api/console/receptions/{id}/eligibility.json`.
pub async fn export_json(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let export = export_of(&state, &staff, &id, "json").await?;
    let body = serde_json::to_string_pretty(&export)
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable"))?;
    Ok(download(
        "application/json",
        format!("{}.json", file_stem(&export)),
        body,
    ))
}

/// `GET /api/console/receptions/{id}/eligibility.csv`: a header row and one data row.
pub async fn export_csv(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let export = export_of(&state, &staff, &id, "csv").await?;
    Ok(download(
        "text/csv; charset=utf-8",
        format!("{}.csv", file_stem(&export)),
        eligibility_csv(&export),
    ))
}

/// Column headers of the CSV export (SPEC §6), in order.
pub const CSV_HEADERS: [&str; 34] = [
    "受付番号",
    "照会番号",
    "受付区分",
    "診療日",
    "資格確認日",
    "結果",
    "氏名",
    "氏名カナ",
    "性別",
    "生年月日",
    "郵便番号",
    "住所",
    "被保険者証区分",
    "保険者番号",
    "保険者名称",
    "記号",
    "番号",
    "枝番",
    "資格取得年月日",
    "有効開始年月日",
    "有効終了年月日",
    "負担割合",
    "限度額適用区分",
    "公費負担者番号",
    "受給者番号",
    "医療券有効開始",
    "医療券有効終了",
    "医療券本人支払額",
    "医療券社会保険状況",
    "調剤券有効開始",
    "調剤券有効終了",
    "調剤券本人支払額",
    "調剤券社会保険状況",
    "警告",
];

fn kind_ja(kind: ReceptionKind) -> &'static str {
    match kind {
        ReceptionKind::OnlineCare => "オンライン診療等",
        ReceptionKind::SeparateRoute => "外来（通常とは異なる動線）",
        ReceptionKind::DeviceFailure => "機器故障時等",
        ReceptionKind::HomeVisit => "訪問診療等",
        ReceptionKind::HouseCall => "往診",
        ReceptionKind::EligibilityOnly => "資格確認限定型",
    }
}

fn day(date: Option<NaiveDate>) -> String {
    date.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The CSV text: BOM, header row, one data row, CRLF line ends.
pub fn eligibility_csv(export: &Export) -> String {
    let mut row: Vec<String> = vec![String::new(); CSV_HEADERS.len()];
    let mut set = |column: &str, value: String| {
        if let Some(i) = CSV_HEADERS.iter().position(|h| *h == column) {
            row[i] = value;
        }
    };
    set(
        "受付番号",
        export.reception_number.clone().unwrap_or_default(),
    );
    set("照会番号", export.patient_ref.clone().unwrap_or_default());
    set("受付区分", kind_ja(export.kind).to_owned());
    set("診療日", day(Some(export.visit_date)));
    match &export.eligibility {
        StoredEligibility::Refused { code } => set("結果", format!("照会不可（{code}）")),
        StoredEligibility::Answer {
            confirmed_on,
            outcome,
        } => {
            set("資格確認日", day(Some(*confirmed_on)));
            match outcome {
                EligibilityOutcome::NotAvailable { reason } => set(
                    "結果",
                    match reason {
                        NoEligibilityReason::UnderJlisReview => "閲覧停止（J-LIS照会中）",
                        NoEligibilityReason::CardNotRegisteredForInsurance => {
                            "健康保険証利用登録なし"
                        }
                        NoEligibilityReason::NoQualification => "資格情報なし",
                    }
                    .to_owned(),
                ),
                EligibilityOutcome::Found { record } => {
                    set("結果", "取得".to_owned());
                    record_columns(record, &mut set);
                }
            }
        }
    }
    let mut out = String::from("\u{feff}");
    out.push_str(&CSV_HEADERS.join(","));
    out.push_str("\r\n");
    let fields: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
    out.push_str(&fields.join(","));
    out.push_str("\r\n");
    out
}

fn record_columns(record: &EligibilityRecord, set: &mut impl FnMut(&str, String)) {
    set("氏名", record.name.clone());
    set("氏名カナ", record.name_kana.clone());
    set(
        "性別",
        match record.sex {
            Sex::Male => "男",
            Sex::Female => "女",
            Sex::Unknown => "不明",
        }
        .to_owned(),
    );
    set("生年月日", day(Some(record.birth_date)));
    set("郵便番号", record.postcode.clone().unwrap_or_default());
    set("住所", record.address.clone().unwrap_or_default());
    if let Some(insurance) = &record.insurance {
        set(
            "被保険者証区分",
            match insurance.relation {
                InsuredRelation::Insured => "本人",
                InsuredRelation::Dependent => "家族",
            }
            .to_owned(),
        );
        set("保険者番号", insurance.insurer_number.as_str().to_owned());
        set("保険者名称", insurance.insurer_name.clone());
        set("記号", insurance.symbol.clone().unwrap_or_default());
        set("番号", insurance.number.clone());
        set("枝番", insurance.branch.clone().unwrap_or_default());
        set("資格取得年月日", day(insurance.acquired_on));
        set("有効開始年月日", day(insurance.valid_from));
        set("有効終了年月日", day(insurance.valid_until));
        set(
            "負担割合",
            insurance
                .burden_percent
                .map(|p| {
                    if p % 10 == 0 {
                        format!("{}割", p / 10)
                    } else {
                        format!("{p}%")
                    }
                })
                .unwrap_or_default(),
        );
        set(
            "限度額適用区分",
            insurance.limit_category.clone().unwrap_or_default(),
        );
    }
    if let Some(welfare) = &record.welfare {
        set(
            "公費負担者番号",
            welfare
                .public_payer_number
                .as_ref()
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
        );
        set(
            "受給者番号",
            welfare.recipient_number.clone().unwrap_or_default(),
        );
        for (kind, prefix) in [
            (TicketKind::Medical, "医療券"),
            (TicketKind::Dispensing, "調剤券"),
        ] {
            // One column group per ticket kind: the first ticket of that kind.
            if let Some(ticket) = welfare.tickets.iter().find(|t| t.kind == kind) {
                set(&format!("{prefix}有効開始"), day(Some(ticket.valid_from)));
                set(&format!("{prefix}有効終了"), day(Some(ticket.valid_until)));
                set(
                    &format!("{prefix}本人支払額"),
                    ticket
                        .patient_payment_yen
                        .map(|y| y.to_string())
                        .unwrap_or_default(),
                );
                set(
                    &format!("{prefix}社会保険状況"),
                    if ticket.social_insurance {
                        "あり"
                    } else {
                        "なし"
                    }
                    .to_owned(),
                );
            }
        }
    }
    let warnings: Vec<String> = record
        .warnings
        .iter()
        .map(|w| match w {
            EligibilityWarning::SocialInsuranceMismatch { ticket_says } => format!(
                "社会保険状況が保険資格と不一致（券: {}）",
                if *ticket_says { "あり" } else { "なし" }
            ),
        })
        .collect();
    set("警告", warnings.join(" / "));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(eligibility: StoredEligibility) -> Export {
        Export {
            reception_id: "r".to_owned(),
            reception_number: Some("12345678".to_owned()),
            patient_ref: Some("P-001".to_owned()),
            kind: ReceptionKind::SeparateRoute,
            visit_date: NaiveDate::from_ymd_opt(2026, 11, 21).expect("date"),
            eligibility,
        }
    }

    #[test]
    fn csv_has_bom_header_and_one_row() {
        let csv = eligibility_csv(&export(StoredEligibility::Answer {
            confirmed_on: NaiveDate::from_ymd_opt(2026, 11, 21).expect("date"),
            outcome: EligibilityOutcome::NotAvailable {
                reason: NoEligibilityReason::CardNotRegisteredForInsurance,
            },
        }));
        assert!(csv.starts_with('\u{feff}'));
        let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').split("\r\n").collect();
        assert_eq!(lines.len(), 3, "{csv}");
        assert_eq!(lines[0].split(',').count(), CSV_HEADERS.len());
        assert_eq!(lines[1].split(',').count(), CSV_HEADERS.len());
        assert!(lines[1].starts_with("12345678,P-001,外来（通常とは異なる動線）,2026-11-21,"));
        assert!(lines[1].contains("健康保険証利用登録なし"));
        assert_eq!(lines[2], "");
    }

    #[test]
    fn refused_eligibility_says_so() {
        let csv = eligibility_csv(&export(StoredEligibility::Refused {
            code: "card_revoked".to_owned(),
        }));
        assert!(csv.contains("照会不可（card_revoked）"));
    }
}
