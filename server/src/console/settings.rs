//! The institution's settings (administrators): names in Japanese and English, the
//! 医療機関等コード (check digit verified), the feature switch
//! 「オンライン診療等・外来診療等（通常とは異なる動線）機能を利用する」 (`accepts_remote`),
//! 医療扶助情報 利用する/しない (`uses_welfare_info`), and how long eligibility answers are kept
//! (1–3650 days), and the staff roles that may do 目視確認 (`visual_check_roles`; default
//! 医療情報閲覧 and 管理者; left out of a PUT, unchanged). A change is logged, with the names of the fields that changed, in the same
//! transaction.

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uketsuke_domain::{InstitutionCode, codes::normalize_digits};

use super::{Staff, audit, require_role, text_refusal};
use crate::{
    AppState,
    gate::Role,
    http::{
        body::{JsonBody, json_body},
        error::ApiError,
    },
    storage::{Db, StorageError},
};

type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub name_ja: String,
    pub name_en: String,
    pub code: String,
    pub accepts_remote: bool,
    pub uses_welfare_info: bool,
    pub eligibility_retention_days: i64,
    /// The roles allowed to do 目視確認. Absent from a PUT: unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visual_check_roles: Option<Vec<Role>>,
}

/// 目視確認's roles when the institution has not chosen: 医療情報閲覧 and 管理者.
pub const DEFAULT_VISUAL_CHECK_ROLES: [Role; 2] = [Role::MedicalViewer, Role::Administrator];

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| super::roles::role_code(*r))
        .collect::<Vec<_>>()
        .join(",")
}

fn roles_of(text: &str) -> Vec<Role> {
    text.split(',')
        .filter_map(|code| super::roles::role_from_code(code.trim()))
        .collect()
}

/// The roles that may do 目視確認 at `institution_id` (none for an unknown institution).
pub async fn visual_check_roles(db: &Db, institution_id: &str) -> Result<Vec<Role>, StorageError> {
    Ok(load(db, institution_id)
        .await?
        .and_then(|s| s.visual_check_roles)
        .unwrap_or_default())
}

async fn load(db: &Db, institution_id: &str) -> Result<Option<Settings>, StorageError> {
    let row = sqlx::query(
        "SELECT name_ja, name_en, code, accepts_remote, uses_welfare_info, \
                eligibility_retention_days, visual_check_roles \
         FROM institutions WHERE id = $1",
    )
    .bind(institution_id)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let accepts: i64 = row.try_get("accepts_remote")?;
    let welfare: i64 = row.try_get("uses_welfare_info")?;
    Ok(Some(Settings {
        name_ja: row.try_get("name_ja")?,
        name_en: row.try_get("name_en")?,
        code: row.try_get("code")?,
        accepts_remote: accepts != 0,
        uses_welfare_info: welfare != 0,
        eligibility_retention_days: row.try_get("eligibility_retention_days")?,
        visual_check_roles: Some(roles_of(&row.try_get::<String, _>("visual_check_roles")?)),
    }))
}

/// Whether the institution accepts the receptions behind the feature switch.
pub async fn accepts_remote(db: &Db, institution_id: &str) -> Result<bool, StorageError> {
    Ok(load(db, institution_id)
        .await?
        .is_some_and(|s| s.accepts_remote))
}

/// `GET /api/console/settings` (administrators).
pub async fn get_settings(
    State(state): State<AppState>,
    staff: Staff,
) -> ApiResult<Json<Settings>> {
    require_role(&staff, &[Role::Administrator])?;
    load(&state.db, &staff.institution_id)
        .await?
        .map(Json)
        .ok_or(ApiError::new(StatusCode::NOT_FOUND, "institution_unknown"))
}

/// Checks and normalises new settings (full-width digits in the code are accepted).
pub fn validated(mut settings: Settings) -> Result<Settings, &'static str> {
    settings.name_ja = settings.name_ja.trim().to_owned();
    settings.name_en = settings.name_en.trim().to_owned();
    if settings.name_ja.is_empty() {
        return Err("name_ja_invalid");
    }
    if let Some(code) = text_refusal(&settings.name_ja, 100, "name_ja_invalid") {
        return Err(code);
    }
    if settings.name_en.is_empty() {
        return Err("name_en_invalid");
    }
    if let Some(code) = text_refusal(&settings.name_en, 100, "name_en_invalid") {
        return Err(code);
    }
    let code: InstitutionCode = normalize_digits(&settings.code)
        .parse()
        .map_err(|_| "code_invalid")?;
    settings.code = code.as_str().to_owned();
    if !(1..=3650).contains(&settings.eligibility_retention_days) {
        return Err("retention_invalid");
    }
    if let Some(roles) = &mut settings.visual_check_roles {
        roles.sort_by_key(|r| super::roles::role_code(*r));
        roles.dedup();
    }
    Ok(settings)
}

/// `PUT /api/console/settings` (administrators): replaces all settings.
pub async fn put_settings(
    State(state): State<AppState>,
    staff: Staff,
    body: JsonBody<Settings>,
) -> ApiResult<Json<Settings>> {
    require_role(&staff, &[Role::Administrator])?;
    let body = json_body(body)?;
    let mut new =
        validated(body).map_err(|code| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code))?;
    let old = load(&state.db, &staff.institution_id)
        .await?
        .ok_or(ApiError::new(StatusCode::NOT_FOUND, "institution_unknown"))?;
    if new.visual_check_roles.is_none() {
        new.visual_check_roles = old.visual_check_roles.clone();
    }
    let mut old = old;
    if let Some(roles) = &mut old.visual_check_roles {
        roles.sort_by_key(|r| super::roles::role_code(*r));
    }
    if new == old {
        return Ok(Json(old));
    }
    let changed: Vec<&str> = [
        ("name_ja", old.name_ja != new.name_ja),
        ("name_en", old.name_en != new.name_en),
        ("code", old.code != new.code),
        ("accepts_remote", old.accepts_remote != new.accepts_remote),
        (
            "uses_welfare_info",
            old.uses_welfare_info != new.uses_welfare_info,
        ),
        (
            "eligibility_retention_days",
            old.eligibility_retention_days != new.eligibility_retention_days,
        ),
        (
            "visual_check_roles",
            old.visual_check_roles != new.visual_check_roles,
        ),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect();
    let now = state.clock.now_ms();
    let mut tx = crate::storage::begin(&state.db)
        .await
        .map_err(StorageError::from)?;
    audit::append(
        &mut tx,
        &staff.actor(),
        "settings.update",
        Some(&changed.join(",")),
        now,
    )
    .await?;
    let taken = sqlx::query("SELECT 1 AS one FROM institutions WHERE code = $1 AND id <> $2")
        .bind(&new.code)
        .bind(&staff.institution_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(StorageError::from)?;
    if taken.is_some() {
        tx.rollback().await.map_err(StorageError::from)?;
        return Err(ApiError::new(StatusCode::CONFLICT, "code_taken"));
    }
    sqlx::query(
        "UPDATE institutions SET name_ja = $1, name_en = $2, code = $3, accepts_remote = $4, \
                uses_welfare_info = $5, eligibility_retention_days = $6, \
                visual_check_roles = $8 \
         WHERE id = $7",
    )
    .bind(&new.name_ja)
    .bind(&new.name_en)
    .bind(&new.code)
    .bind(i64::from(new.accepts_remote))
    .bind(i64::from(new.uses_welfare_info))
    .bind(new.eligibility_retention_days)
    .bind(&staff.institution_id)
    .bind(roles_text(
        new.visual_check_roles.as_deref().unwrap_or_default(),
    ))
    .execute(&mut *tx)
    .await
    .map_err(StorageError::from)?;
    if old.code != new.code {
        crate::storage::institutions::reseal_for_code(
            &mut tx,
            &staff.institution_id,
            &old.code,
            &new.code,
        )
        .await?;
    }
    tx.commit().await.map_err(StorageError::from)?;
    Ok(Json(new))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(code: &str, days: i64) -> Settings {
        Settings {
            name_ja: " うけつけ内科 ".to_owned(),
            name_en: "Uketsuke Clinic".to_owned(),
            code: code.to_owned(),
            accepts_remote: true,
            uses_welfare_info: false,
            eligibility_retention_days: days,
            visual_check_roles: None,
        }
    }

    #[test]
    fn visual_check_roles_read_back_and_default_as_the_migration_stores_them() {
        // The column default of migration 0007.
        assert_eq!(
            roles_of("medical_viewer,administrator"),
            DEFAULT_VISUAL_CHECK_ROLES
        );
        let all = [Role::General, Role::MedicalViewer, Role::Administrator];
        assert_eq!(roles_of(&roles_text(&all)), all);
        // An unknown code grants nothing.
        assert_eq!(roles_of("root, general"), [Role::General]);
    }

    #[test]
    fn codes_are_check_digit_verified_and_names_trimmed() {
        let good = InstitutionCode::with_check_digit("131234567").expect("code");
        let ok = validated(settings(good.as_str(), 90)).expect("valid");
        assert_eq!(ok.name_ja, "うけつけ内科");
        let mut digits: Vec<u8> = good.as_str().bytes().collect();
        digits[9] = b'0' + (digits[9] - b'0' + 1) % 10;
        let bad = String::from_utf8(digits).expect("ascii");
        assert_eq!(validated(settings(&bad, 90)), Err("code_invalid"));
        assert_eq!(
            validated(settings(good.as_str(), 0)),
            Err("retention_invalid")
        );
        assert_eq!(
            validated(settings(good.as_str(), 3651)),
            Err("retention_invalid")
        );
        assert!(validated(settings(good.as_str(), 3650)).is_ok());
    }
}
