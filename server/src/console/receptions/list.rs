//! `GET /api/console/receptions?date=…`: the receptions of one JST day, as the list shows them.

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Query, State},
    http::StatusCode,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uketsuke_domain::{
    ReceptionKind, WindowInput,
    window::{self, jst_date, to_jst},
};

use super::{ConsentView, eligibility_state, prescription_of, record_of};
use crate::{
    AppState,
    clock::from_ms,
    console::{Staff, audit, jst_day_range},
    http::error::{ApiError, ApiResult},
    relay::StoredEligibility,
    storage::{StorageError, receptions::parse_date},
};

/// A day's list is capped here; a clinic sees far fewer.
const LIST_MAX: i64 = 2000;

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
    /// The backend refusal this reception's undelivered requests are held for, if any.
    pub relay_held: Option<String>,
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
                r.withdrawn_at, r.eligibility_json, r.patient_ref, \
                (SELECT MIN(o.held_code) FROM outbox o \
                  WHERE o.reception_id = r.id AND o.done_at IS NULL) AS relay_held \
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
        relay_held: row.try_get("relay_held")?,
        withdrawn: withdrawn_at.is_some(),
        eligibility: eligibility_state(stored.as_ref()),
        patient_ref: row.try_get("patient_ref")?,
        id,
    }))
}
