//! Receptions in the console: the day's list, one reception's detail with its eligibility as
//! stored, the institution's own patient number (照会番号), home visits, withdrawal on the
//! patient's request, medical information (only ever through [`crate::gate`]), and the export
//! of eligibility for the レセコン as CSV (UTF-8 with BOM, for Excel) or JSON.
//!
//! Views of personal data are logged before they are answered: if the log cannot be written,
//! nothing is shown. Changes are logged in their own transaction.
//!
//! One file per concern: `list` (the day's list), `detail` (one reception), `changes` (照会番号,
//! home visits, withdrawal), `medical` (through the gate), `export` (CSV and JSON for the
//! レセコン), `rececon` (a day's or a range's receptions as one file for the レセコン, UTF-8 or
//! cp932, and the bulk 照会番号 upload). This file holds what they share: the institution check and the stored extras.

mod changes;
mod detail;
mod export;
mod list;
mod medical;
pub mod rececon;

pub use changes::{PatientRef, Withdrawn, record_home_visit, set_patient_ref, withdraw};
pub use detail::{Detail, detail};
pub use export::{CSV_HEADERS, Export, eligibility_csv, export_csv, export_json};
pub use list::{ListQuery, ListRow, ListView, list};
pub use medical::medical;

use axum::http::StatusCode;
use serde::Serialize;
use sqlx::Row;
use uketsuke_backend::contract::PrescriptionMethod;
use uketsuke_domain::eligibility::{EligibilityOutcome, EligibilityRecord};

use super::Staff;
use crate::{
    AppState,
    http::error::{ApiError, ApiResult},
    relay::StoredEligibility,
    storage::{
        StorageError,
        receptions::{self, Reception, Status},
    },
};

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
