//! Reception links (受付リンク): looking one up for its landing page.

use sqlx::Row;
use uketsuke_app::api::{InvalidLink, LandingView, LinkState};
use uketsuke_domain::ReceptionKind;

use super::{Db, StorageError, ids::looks_like_id};

/// The state of a link at `now_ms` as the patient's landing page shows it.
pub async fn landing(db: &Db, link_id: &str, now_ms: i64) -> Result<LinkState, StorageError> {
    if !looks_like_id(link_id) {
        return Ok(LinkState::Invalid(InvalidLink::Unknown));
    }
    let row = sqlx::query(
        "SELECT l.kind, l.visit_date, l.expires_at, l.revoked_at, \
                i.name_ja, i.name_en, i.accepts_remote, i.is_demo \
         FROM reception_links l JOIN institutions i ON i.id = l.institution_id \
         WHERE l.id = $1",
    )
    .bind(link_id)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(LinkState::Invalid(InvalidLink::Unknown));
    };
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    if revoked_at.is_some_and(|t| t <= now_ms) {
        return Ok(LinkState::Invalid(InvalidLink::Revoked));
    }
    let expires_at: Option<i64> = row.try_get("expires_at")?;
    if expires_at.is_some_and(|t| t <= now_ms) {
        return Ok(LinkState::Invalid(InvalidLink::Expired));
    }
    let kind_code: String = row.try_get("kind")?;
    let Some(kind) = ReceptionKind::from_code(&kind_code) else {
        // A row the code no longer understands is not the patient's problem: show it as
        // unknown, and let the log say why.
        tracing::warn!(kind = %kind_code, "reception link with an unknown kind");
        return Ok(LinkState::Invalid(InvalidLink::Unknown));
    };
    let accepts_remote: i64 = row.try_get("accepts_remote")?;
    let is_demo: i64 = row.try_get("is_demo")?;
    Ok(LinkState::Open(LandingView {
        institution_name_ja: row.try_get("name_ja")?,
        institution_name_en: row.try_get("name_en")?,
        kind,
        visit_date: row.try_get("visit_date")?,
        accepting: !kind.behind_feature_switch() || accepts_remote != 0,
        demo: is_demo != 0,
    }))
}
