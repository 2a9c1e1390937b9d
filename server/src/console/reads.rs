//! 閲覧履歴: which reads of a reception's information the institution made, for the patient's
//! 同意照会 (issue 15 §1). A read is recorded as its audit row (when, which staff ID) plus one
//! `audit_reads` row per reception it showed (which reception, which category, the reader's role
//! at that moment), in one transaction: there is no read in the history without its audit row,
//! and no audit row of a read without its history. Only reads that answered are written — the
//! handlers record after the gate and the look-ups succeeded — so refusals never appear.
//!
//! What counts as a read of a reception (the choice where the issue is silent):
//! - its detail with the eligibility stored (`reception.view`): 資格情報;
//! - its medical information through the gate (`medical.view`): 診療・薬剤情報 or 特定健診等情報;
//! - an export that holds its eligibility (`eligibility.export`, `receptions.export`): 資格情報.
//!
//! The day's list (`receptions.list`) shows only names and is refreshed by live updates all day:
//! it stays in the audit log, not in the patient's history.
//!
//! The patient sees a read while the institution keeps eligibility (its retention period,
//! `eligibility_retention_days`, counted from the read), whatever became of the window.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::Row;

use super::{Staff, audit, roles::role_code};
use crate::storage::{Db, StorageError};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// What a read showed: 資格情報, 診療・薬剤情報 or 特定健診等情報.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadCategory {
    /// 資格情報
    Eligibility,
    /// 診療・薬剤情報
    ClinicalMedication,
    /// 特定健診等情報
    Checkups,
}

impl ReadCategory {
    /// The stable database form.
    pub const fn code(self) -> &'static str {
        match self {
            ReadCategory::Eligibility => "eligibility",
            ReadCategory::ClinicalMedication => "clinical_medication",
            ReadCategory::Checkups => "checkups",
        }
    }

    fn from_code(code: &str) -> Option<ReadCategory> {
        [
            ReadCategory::Eligibility,
            ReadCategory::ClinicalMedication,
            ReadCategory::Checkups,
        ]
        .into_iter()
        .find(|c| c.code() == code)
    }
}

/// Appends the audit row `action` (`target` as the log shows it) by `staff`, and one history
/// row per reception in `read` (all of `category`), in one transaction. With `read` empty it is
/// a plain audit row.
pub async fn record(
    db: &Db,
    staff: &Staff,
    action: &str,
    target: Option<&str>,
    read: &[&str],
    category: ReadCategory,
    now_ms: i64,
) -> Result<(), StorageError> {
    let mut tx = crate::storage::begin(db).await?;
    let seq = audit::append(&mut tx, &staff.actor(), action, target, now_ms).await?;
    for reception_id in read {
        sqlx::query(
            "INSERT INTO audit_reads (institution_id, seq, reception_id, category, role) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&staff.institution_id)
        .bind(seq)
        .bind(*reception_id)
        .bind(category.code())
        .bind(role_code(staff.role))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// One read as the patient sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Read {
    /// JST, to the minute: `YYYY-MM-DD HH:MM`.
    pub at: String,
    pub category: ReadCategory,
    /// The reader's role then: `administrator`, `general` or `medical_viewer`.
    pub role: String,
    /// The reader's staff ID (never the name).
    pub staff_id: String,
}

/// The reads of each of `reception_ids` at `institution_id` still within the institution's
/// retention at `now_ms`, oldest first. Receptions never read are absent from the map.
pub async fn of_receptions(
    db: &Db,
    institution_id: &str,
    reception_ids: &[String],
    now_ms: i64,
) -> Result<HashMap<String, Vec<Read>>, StorageError> {
    let mut out: HashMap<String, Vec<Read>> = HashMap::new();
    if reception_ids.is_empty() {
        return Ok(out);
    }
    let retention_days = crate::storage::institutions::retention_days(db, institution_id).await?;
    let since = now_ms.saturating_sub(retention_days.saturating_mul(DAY_MS));
    for reception_id in reception_ids {
        let rows = sqlx::query(
            "SELECT l.at, l.account, r.category, r.role FROM audit_reads r \
             JOIN audit_log l ON l.institution_id = r.institution_id AND l.seq = r.seq \
             WHERE r.institution_id = $1 AND r.reception_id = $2 AND l.at > $3 \
             ORDER BY l.seq",
        )
        .bind(institution_id)
        .bind(reception_id)
        .bind(since)
        .fetch_all(db)
        .await?;
        for row in rows {
            let category: String = row.try_get("category")?;
            let Some(category) = ReadCategory::from_code(&category) else {
                tracing::error!("a read of an unknown category is in the history");
                continue;
            };
            let at: i64 = row.try_get("at")?;
            out.entry(reception_id.clone()).or_default().push(Read {
                at: uketsuke_domain::window::to_jst(crate::clock::from_ms(at))
                    .format("%Y-%m-%d %H:%M")
                    .to_string(),
                category,
                role: row.try_get("role")?,
                staff_id: row.try_get("account")?,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_round_trip() {
        for c in [
            ReadCategory::Eligibility,
            ReadCategory::ClinicalMedication,
            ReadCategory::Checkups,
        ] {
            assert_eq!(ReadCategory::from_code(c.code()), Some(c));
        }
        assert_eq!(ReadCategory::from_code("name"), None);
    }
}
