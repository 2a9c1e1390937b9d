//! The one gate every read of medical information passes: the reader's institution owns the
//! reception, the reader has the 医療情報閲覧 role, the patient consented to this category, the
//! registration was confirmed, and the consent window — as this server computes it from the
//! domain rules and its own record of visits and withdrawal — is open now. The consent is read
//! from the reception's own columns, so a change the patient saves (同意の更新) holds from the
//! next read on. Only then is the backend asked (or the copy fetched earlier inside the same
//! window returned). The backend checks again on its side; the gate does not rely on it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::Row;
use uketsuke_backend::contract::{
    ErrorCode, MedicalCategory, MedicalInformation, MedicalInformationAnswer,
    MedicalInformationRequest, medical_information_path,
};
use uketsuke_domain::window::is_open;

use crate::{
    backend_client::{BackendClient, CallError},
    clock::Clock,
    storage::{
        Db, StorageError, institutions,
        outbox::{self, Operation},
        receptions::{self, Status},
    },
};

/// Staff roles (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 管理者
    Administrator,
    /// 一般利用者: eligibility only.
    General,
    /// 医療情報閲覧
    MedicalViewer,
}

/// Who is reading.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    pub institution_id: &'a str,
    pub role: Role,
}

/// Why the gate stays shut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateRefusal {
    /// No such reception at the reader's institution (another institution's is "not found").
    NotFound,
    /// The reader's role does not include medical information.
    Role,
    /// The backend has not confirmed the registration (queued or refused).
    NotConfirmed,
    /// 資格確認限定型: never any medical information.
    NoMedicalInformation,
    /// The patient did not consent to this category.
    NotConsented,
    /// Outside the window: not yet, ended, or withdrawn.
    WindowClosed,
    /// The patient just changed their consents and the change has not reached the backend yet
    /// (it is still in the outbox after a short wait): ask again in a moment.
    ConsentPending,
}

/// How long a read waits for a consent change of the same reception to reach the backend, and
/// how often it looks. The relay usually delivers within milliseconds.
const CONSENT_WAIT: Duration = Duration::from_secs(3);
const CONSENT_POLL: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("refused: {0:?}")]
    Refused(GateRefusal),
    #[error("backend: {0}")]
    Backend(CallError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for GateError {
    fn from(e: sqlx::Error) -> Self {
        GateError::Storage(StorageError::Query(e))
    }
}

fn category_code(category: MedicalCategory) -> &'static str {
    match category {
        MedicalCategory::ClinicalMedication => "clinical_medication",
        MedicalCategory::Checkups => "checkups",
    }
}

/// Checks everything the gate checks, without reading anything.
pub async fn authorize(
    db: &Db,
    clock: &Clock,
    reader: Reader<'_>,
    reception_id: &str,
    category: MedicalCategory,
) -> Result<receptions::Reception, GateError> {
    let refuse = |r| Err(GateError::Refused(r));
    let Some(reception) = receptions::get(db, reception_id).await? else {
        return refuse(GateRefusal::NotFound);
    };
    if reception.institution_id != reader.institution_id {
        return refuse(GateRefusal::NotFound);
    }
    if reader.role != Role::MedicalViewer {
        return refuse(GateRefusal::Role);
    }
    if !reception.kind.offers_medical_information() {
        return refuse(GateRefusal::NoMedicalInformation);
    }
    let consented = match category {
        MedicalCategory::ClinicalMedication => reception.consent.clinical_medication,
        MedicalCategory::Checkups => reception.consent.checkups,
    };
    if !consented {
        return refuse(GateRefusal::NotConsented);
    }
    if reception.status != Status::Confirmed {
        return refuse(GateRefusal::NotConfirmed);
    }
    let Some(window) = reception.window() else {
        return refuse(GateRefusal::NotConfirmed);
    };
    if !is_open(&window, clock.now()) {
        return refuse(GateRefusal::WindowClosed);
    }
    Ok(reception)
}

/// The medical information of one category, if the gate opens.
pub async fn medical_information(
    db: &Db,
    backend: &BackendClient,
    clock: &Clock,
    reader: Reader<'_>,
    reception_id: &str,
    category: MedicalCategory,
) -> Result<MedicalInformation, GateError> {
    let reception = authorize(db, clock, reader, reception_id, category).await?;
    let cached =
        sqlx::query("SELECT body_json FROM medical_data WHERE reception_id = $1 AND category = $2")
            .bind(&reception.id)
            .bind(category_code(category))
            .fetch_optional(db)
            .await?;
    if let Some(row) = cached {
        let json: String = row.try_get("body_json")?;
        if let Ok(information) = serde_json::from_str(&json) {
            return Ok(information);
        }
    }
    // A category the patient granted a moment ago is already consented here, but the backend
    // only releases it once the relay has delivered the change: wait for that, briefly.
    let waited = tokio::time::Instant::now();
    while outbox::undelivered(db, &reception.id, Operation::ConsentUpdate).await? {
        if waited.elapsed() >= CONSENT_WAIT {
            return Err(GateError::Refused(GateRefusal::ConsentPending));
        }
        tokio::time::sleep(CONSENT_POLL).await;
    }
    let (Some(registration), Some(identity)) = (
        reception.registration_id.as_deref(),
        institutions::signer(db, &reception.institution_id).await?,
    ) else {
        return Err(GateError::Refused(GateRefusal::NotConfirmed));
    };
    let body = serde_json::to_vec(&MedicalInformationRequest { category })
        .map_err(|e| GateError::Backend(CallError::NoAnswer(e.to_string())))?;
    let answer = backend
        .call::<MedicalInformationAnswer>(
            &identity.signer,
            &medical_information_path(registration),
            &body,
        )
        .await
        .map_err(|e| match &e {
            CallError::Refused(b)
                if matches!(
                    b.code,
                    ErrorCode::WindowClosed | ErrorCode::ConsentWithdrawn
                ) =>
            {
                GateError::Refused(GateRefusal::WindowClosed)
            }
            CallError::Refused(b) if b.code == ErrorCode::ConsentNotGiven => {
                GateError::Refused(GateRefusal::NotConsented)
            }
            _ => GateError::Backend(e),
        })?;
    let matches_category = matches!(
        (&answer.information, category),
        (
            MedicalInformation::ClinicalMedication { .. },
            MedicalCategory::ClinicalMedication
        ) | (
            MedicalInformation::Checkups { .. },
            MedicalCategory::Checkups
        )
    );
    if answer.registration_id != registration || !matches_category {
        tracing::error!("backend answered medical information for something else");
        return Err(GateError::Backend(CallError::NoAnswer(
            "answer does not match the request".to_owned(),
        )));
    }
    let json = serde_json::to_string(&answer.information)
        .map_err(|e| GateError::Backend(CallError::NoAnswer(e.to_string())))?;
    if !store_if_still_consented(db, &reception.id, category, &json, clock.now_ms()).await? {
        // The patient withdrew, or took this category back, while the backend was answering:
        // the answer was asked for under a consent that no longer holds. Nothing is kept and
        // nothing is shown.
        return Err(GateError::Refused(GateRefusal::WindowClosed));
    }
    Ok(answer.information)
}

/// Keeps the backend's answer only if the reception is, at the instant of the write, still not
/// withdrawn and still consented to `category`; returns whether it is. The backend call takes
/// time, and a withdrawal (or a consent taken back) that commits during it has already deleted
/// the reception's medical data: an answer written after it would outlive the consent.
///
/// Portable to SQLite and PostgreSQL: the transaction's first statement is an update of the
/// reception's row that matches only while the consent holds. On PostgreSQL it locks the row,
/// so a withdrawal (which updates the same row first) either committed before — the update then
/// re-reads the row, matches nothing and nothing is written — or waits for this commit and then
/// deletes what was written. On SQLite it takes the database's write lock, which serialises the
/// two the same way. The update writes the value already there, so nothing else moves.
async fn store_if_still_consented(
    db: &Db,
    reception_id: &str,
    category: MedicalCategory,
    json: &str,
    now_ms: i64,
) -> Result<bool, GateError> {
    // The column name comes from this match, never from outside.
    let still_consented = match category {
        MedicalCategory::ClinicalMedication => {
            "UPDATE receptions SET clinical_medication = clinical_medication \
             WHERE id = $1 AND withdrawn_at IS NULL AND clinical_medication = 1"
        }
        MedicalCategory::Checkups => {
            "UPDATE receptions SET checkups = checkups \
             WHERE id = $1 AND withdrawn_at IS NULL AND checkups = 1"
        }
    };
    let mut tx = crate::storage::begin(db).await?;
    let held = sqlx::query(still_consented)
        .bind(reception_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if held != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO medical_data (reception_id, category, body_json, fetched_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (reception_id, category) DO NOTHING",
    )
    .bind(reception_id)
    .bind(category_code(category))
    .bind(json)
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}
