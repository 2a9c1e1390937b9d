//! The demo institution, created at the first start in demo mode, with one long-lived
//! reception link per kind so that every flow can be tried from the start. It is the
//! simulator's demo clinic: same 医療機関等コード and request-signing key, so the built-in
//! simulator and a standalone `backend-sim` both know it, and the population's welfare
//! contracts (委託) point to it. A production start on the same database retires it
//! (`console::demo::retire`); a later demo start re-opens a link of every kind.

use sqlx::Row;
use uketsuke_backend::simulator::keys::{DEMO_CLINIC, institution_code, institution_signing_key};
use uketsuke_domain::ReceptionKind;

use super::{Db, StorageError, ids::new_id, now_millis};

const DEMO_NAME_JA: &str = "うけつけ内科クリニック（デモ）";
const DEMO_NAME_EN: &str = "Uketsuke Internal Medicine Clinic (demo)";

/// One demo link.
#[derive(Debug, Clone)]
pub struct DemoLink {
    pub kind: ReceptionKind,
    pub id: String,
}

/// Creates the demo institution and its links unless they exist; returns the links.
pub async fn ensure_demo(db: &Db) -> Result<Vec<DemoLink>, StorageError> {
    let existing = sqlx::query("SELECT id FROM institutions WHERE is_demo = 1 ORDER BY created_at")
        .fetch_optional(db)
        .await?;
    let institution_id = match existing {
        Some(row) => row.try_get::<String, _>("id")?,
        None => create_demo(db).await?,
    };
    // Databases from before the relay have the demo without its key (or with an older code).
    sqlx::query("UPDATE institutions SET code = $1 WHERE id = $2")
        .bind(institution_code(DEMO_CLINIC).as_str())
        .bind(&institution_id)
        .execute(db)
        .await?;
    super::institutions::set_key(
        db,
        &institution_id,
        DEMO_CLINIC.key_id,
        &institution_signing_key(DEMO_CLINIC),
    )
    .await?;
    let rows = sqlx::query(
        "SELECT id, kind FROM reception_links \
         WHERE institution_id = $1 AND revoked_at IS NULL AND visit_date IS NULL \
         ORDER BY created_at, kind",
    )
    .bind(&institution_id)
    .fetch_all(db)
    .await?;
    let mut links = Vec::new();
    for row in rows {
        let kind: String = row.try_get("kind")?;
        if let Some(kind) = ReceptionKind::from_code(&kind) {
            links.push(DemoLink {
                kind,
                id: row.try_get("id")?,
            });
        }
    }
    // A kind without an open link (a production start revoked them, or a visitor did): a new
    // one, so that every flow can still be tried.
    for kind in ReceptionKind::ALL {
        if !links.iter().any(|l| l.kind == kind) {
            let id = new_id();
            insert_link(db, &institution_id, kind, &id, now_millis()).await?;
            links.push(DemoLink { kind, id });
        }
    }
    links.sort_by_key(|l| ReceptionKind::ALL.iter().position(|k| *k == l.kind));
    links.dedup_by_key(|l| l.kind);
    Ok(links)
}

async fn insert_link<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    executor: E,
    institution_id: &str,
    kind: ReceptionKind,
    id: &str,
    now: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO reception_links (id, institution_id, kind, label, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(institution_id)
    .bind(kind.code())
    .bind("demo")
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

async fn create_demo(db: &Db) -> Result<String, StorageError> {
    let now = now_millis();
    let institution_id = new_id();
    let mut tx = crate::storage::begin(db).await?;
    sqlx::query(
        "INSERT INTO institutions (id, code, name_ja, name_en, is_demo, created_at) \
         VALUES ($1, $2, $3, $4, 1, $5)",
    )
    .bind(&institution_id)
    .bind(institution_code(DEMO_CLINIC).as_str())
    .bind(DEMO_NAME_JA)
    .bind(DEMO_NAME_EN)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    for kind in ReceptionKind::ALL {
        insert_link(&mut *tx, &institution_id, kind, &new_id(), now).await?;
    }
    tx.commit().await?;
    Ok(institution_id)
}
