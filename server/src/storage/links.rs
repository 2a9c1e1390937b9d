//! Reception links (受付リンク): looking one up for its landing page and for a new reception
//! session, creating per-appointment links (the institution API), listing and revoking them.

use chrono::NaiveDate;
use sqlx::{Row, any::AnyRow};
use uketsuke_app::api::{InvalidLink, LandingView, LinkState, VisitDateUse};
use uketsuke_domain::ReceptionKind;

use super::{Db, StorageError, ids::looks_like_id, ids::new_id};

/// A link that is open for receptions, with what a session needs to know of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenLink {
    pub id: String,
    pub institution_id: String,
    pub institution_code: String,
    pub institution_name_ja: String,
    pub institution_name_en: String,
    pub kind: ReceptionKind,
    /// Fixed by a per-appointment link.
    pub visit_date: Option<NaiveDate>,
    /// False when the institution switched this kind off (feature switch).
    pub accepting: bool,
    pub demo: bool,
}

/// How far ahead (days) a visit may be: an online-care visit the patient books, and a
/// per-appointment link's fixed date.
pub const MAX_DAYS_AHEAD: u64 = 90;

impl OpenLink {
    /// Whether a reception can be registered on `today` (JST) for the link's fixed visit date
    /// (see [`VisitDateUse`]).
    pub fn date_use(&self, today: NaiveDate) -> VisitDateUse {
        let Some(visit) = self.visit_date else {
            return VisitDateUse::Today;
        };
        let from = if self.kind.asks_visit_date() {
            visit
                .checked_sub_days(chrono::Days::new(MAX_DAYS_AHEAD))
                .unwrap_or(visit)
        } else {
            visit
        };
        if visit < today {
            VisitDateUse::Passed
        } else if today < from {
            VisitDateUse::From(from.format("%Y-%m-%d").to_string())
        } else {
            VisitDateUse::Today
        }
    }
}

/// The link as it stands at `now_ms`.
pub async fn resolve(
    db: &Db,
    link_id: &str,
    now_ms: i64,
) -> Result<Result<OpenLink, InvalidLink>, StorageError> {
    Ok(Found::resolve(lookup(db, link_id).await?, now_ms))
}

/// A known link as 同意照会・取消 sees it: the patient may always see and withdraw the consents
/// given at its institution, whatever the institution did to the link since (revoked it, let a
/// per-appointment link expire, switched its kind off) — withdrawal never depends on the
/// clinic. `closed` says the link no longer takes receptions, and then nothing new may be
/// granted through it (views and withdrawals only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedLink {
    pub link: OpenLink,
    /// Revoked, expired, or its kind switched off at `now_ms`.
    pub closed: bool,
}

/// The link for 同意照会・取消 at `now_ms`; `None` only for a link that never was (or that this
/// code cannot read), which stays "not found".
pub async fn resolve_for_manage(
    db: &Db,
    link_id: &str,
    now_ms: i64,
) -> Result<Option<ManagedLink>, StorageError> {
    Ok(lookup(db, link_id).await?.map(|found| ManagedLink {
        closed: found.closure(now_ms).is_some() || !found.link.accepting,
        link: found.link,
    }))
}

/// A link row with its end instants, before any check of them.
pub(crate) struct Found {
    link: OpenLink,
    revoked_at: Option<i64>,
    expires_at: Option<i64>,
}

impl Found {
    /// Why the link takes no receptions at `now_ms` (revocation first), if it does not.
    fn closure(&self, now_ms: i64) -> Option<InvalidLink> {
        if self.revoked_at.is_some_and(|t| t <= now_ms) {
            return Some(InvalidLink::Revoked);
        }
        if self.expires_at.is_some_and(|t| t <= now_ms) {
            return Some(InvalidLink::Expired);
        }
        None
    }

    /// The link as [`resolve`] gives it at `now_ms`, from what a query found (`None`: unknown).
    pub(crate) fn resolve(found: Option<Found>, now_ms: i64) -> Result<OpenLink, InvalidLink> {
        match found {
            None => Err(InvalidLink::Unknown),
            Some(found) => match found.closure(now_ms) {
                Some(invalid) => Err(invalid),
                None => Ok(found.link),
            },
        }
    }
}

/// The columns [`found_in`] reads, from a query that names the link `l` and its institution
/// `i` (`reception_links l JOIN institutions i ON i.id = l.institution_id`); a literal, for
/// `concat!` into other queries (the patient API reads its session and link in one).
macro_rules! link_columns {
    () => {
        "l.kind, l.visit_date, l.expires_at, l.revoked_at, l.institution_id, \
         i.code, i.name_ja, i.name_en, i.accepts_remote, i.is_demo"
    };
}
pub(crate) use link_columns;

/// The link `link_id` whatever its state; `None` when unknown, malformed or unreadable.
async fn lookup(db: &Db, link_id: &str) -> Result<Option<Found>, StorageError> {
    if !looks_like_id(link_id) {
        return Ok(None);
    }
    let row = sqlx::query(concat!(
        "SELECT ",
        link_columns!(),
        " FROM reception_links l JOIN institutions i ON i.id = l.institution_id \
         WHERE l.id = $1"
    ))
    .bind(link_id)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    found_in(&row, link_id)
}

/// The link `link_id` in a row of a query that read [`link_columns`]; `None` when the row has
/// no link (an outer join that found none) or one this code cannot read.
pub(crate) fn found_in(row: &AnyRow, link_id: &str) -> Result<Option<Found>, StorageError> {
    let kind_code: Option<String> = row.try_get("kind")?;
    let Some(kind_code) = kind_code else {
        return Ok(None);
    };
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    let expires_at: Option<i64> = row.try_get("expires_at")?;
    let Some(kind) = ReceptionKind::from_code(&kind_code) else {
        // A row the code no longer understands is not the patient's problem: show it as
        // unknown, and let the log say why.
        tracing::warn!(kind = %kind_code, "reception link with an unknown kind");
        return Ok(None);
    };
    let visit_date: Option<String> = row.try_get("visit_date")?;
    let visit_date = match visit_date {
        Some(text) => match NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
            Ok(date) => Some(date),
            Err(_) => {
                tracing::warn!("reception link with an unreadable visit date");
                return Ok(None);
            }
        },
        None => None,
    };
    let accepts_remote: i64 = row.try_get("accepts_remote")?;
    let is_demo: i64 = row.try_get("is_demo")?;
    Ok(Some(Found {
        link: OpenLink {
            id: link_id.to_owned(),
            institution_id: row.try_get("institution_id")?,
            institution_code: row.try_get("code")?,
            institution_name_ja: row.try_get("name_ja")?,
            institution_name_en: row.try_get("name_en")?,
            kind,
            visit_date,
            accepting: !kind.behind_feature_switch() || accepts_remote != 0,
            demo: is_demo != 0,
        },
        revoked_at,
        expires_at,
    }))
}

/// The state of a link at `now_ms` as the patient's landing page shows it.
pub async fn landing(db: &Db, link_id: &str, now_ms: i64) -> Result<LinkState, StorageError> {
    Ok(match resolve(db, link_id, now_ms).await? {
        Ok(link) => LinkState::Open(LandingView {
            date_use: link.date_use(uketsuke_domain::window::jst_date(
                chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default(),
            )),
            institution_name_ja: link.institution_name_ja,
            institution_name_en: link.institution_name_en,
            kind: link.kind,
            visit_date: link.visit_date.map(|d| d.format("%Y-%m-%d").to_string()),
            accepting: link.accepting,
            demo: link.demo,
        }),
        Err(invalid) => LinkState::Invalid(invalid),
    })
}

/// A link asked for by the institution (console or institution API), before its checks.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    pub kind: ReceptionKind,
    /// Per appointment: the visit date (JST). Absent: a long-lived link.
    pub visit_date: Option<NaiveDate>,
    /// The booking system's own reference (予約番号), up to 100 characters.
    pub booking_ref: Option<String>,
    pub label: Option<String>,
    /// Absent: a per-appointment link ends with its window (visit date + 2 days, 00:00 JST); a
    /// long-lived link does not end.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Longest booking reference or label.
pub const MAX_LINK_TEXT: usize = 100;

/// Short free text of at most `max` characters without control characters, bidirectional
/// controls or zero-width characters ([`uketsuke_domain::text`]).
pub fn text_ok(text: &str, max: usize) -> bool {
    uketsuke_domain::text::check_short_text(text, max).is_ok()
}

/// The refusal's code for a short text set by staff or an administrator: `None` when it is
/// fine; `text_bidi_control` or `text_zero_width` for a character that changes how the text
/// looks without being seen (the console says so in Japanese and English); `field_code` (the
/// field's own code, e.g. `name_invalid`) for the rest (too long, control characters).
pub fn text_refusal(text: &str, max: usize, field_code: &'static str) -> Option<&'static str> {
    match uketsuke_domain::text::check_short_text(text, max) {
        Ok(()) => None,
        Err(error) if error.is_invisible() => Some(error.code()),
        Err(_) => Some(field_code),
    }
}

impl LinkRequest {
    /// Checks the request at `now` and gives the link to create, or the refusal's code
    /// (`text_invalid`, `text_bidi_control`, `text_zero_width`, `visit_date_past`,
    /// `visit_date_too_far`, `expires_at_past`).
    pub fn check<'a>(
        &'a self,
        institution_id: &'a str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<NewLink<'a>, &'static str> {
        self.check_fields(institution_id, now).map_err(|r| r.code)
    }

    /// As [`LinkRequest::check`], with the refusal naming the field at fault (`booking_ref`,
    /// `label`, `visit_date`, `expires_at`).
    pub fn check_fields<'a>(
        &'a self,
        institution_id: &'a str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<NewLink<'a>, FieldRefusal> {
        for (field, text) in [("booking_ref", &self.booking_ref), ("label", &self.label)] {
            if let Some(code) = text
                .as_deref()
                .and_then(|t| text_refusal(t, MAX_LINK_TEXT, "text_invalid"))
            {
                return Err(FieldRefusal { field, code });
            }
        }
        let today = uketsuke_domain::window::jst_date(now);
        if self.visit_date.is_some_and(|date| date < today) {
            return Err(FieldRefusal {
                field: "visit_date",
                code: "visit_date_past",
            });
        }
        // A patient could not use it before the last 90 days: the booking system sends it later.
        let latest = today
            .checked_add_days(chrono::Days::new(MAX_DAYS_AHEAD))
            .unwrap_or(today);
        if self.visit_date.is_some_and(|date| date > latest) {
            return Err(FieldRefusal {
                field: "visit_date",
                code: "visit_date_too_far",
            });
        }
        let expires_at = match (self.expires_at, self.visit_date) {
            (Some(at), _) if at <= now => {
                return Err(FieldRefusal {
                    field: "expires_at",
                    code: "expires_at_past",
                });
            }
            (Some(at), _) => Some(at.timestamp_millis()),
            (None, Some(date)) => date
                .checked_add_days(chrono::Days::new(2))
                .map(|d| uketsuke_domain::window::jst_start_of_day(d).timestamp_millis()),
            (None, None) => None,
        };
        Ok(NewLink {
            institution_id,
            kind: self.kind,
            visit_date: self.visit_date,
            booking_ref: self.booking_ref.as_deref(),
            label: self.label.as_deref(),
            expires_at,
        })
    }
}

/// Why a link request was refused: the field at fault and the refusal's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRefusal {
    pub field: &'static str,
    pub code: &'static str,
}

/// A new link: long-lived (no visit date) or per appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink<'a> {
    pub institution_id: &'a str,
    pub kind: ReceptionKind,
    pub visit_date: Option<NaiveDate>,
    pub booking_ref: Option<&'a str>,
    pub label: Option<&'a str>,
    pub expires_at: Option<i64>,
}

/// Creates a link; returns its id. `db` may be the pool or a transaction (the console writes
/// its audit row in the same one).
pub async fn create<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    link: &NewLink<'_>,
    now_ms: i64,
) -> Result<String, StorageError> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO reception_links \
            (id, institution_id, kind, visit_date, booking_ref, label, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(link.institution_id)
    .bind(link.kind.code())
    .bind(link.visit_date.map(|d| d.format("%Y-%m-%d").to_string()))
    .bind(link.booking_ref)
    .bind(link.label)
    .bind(link.expires_at)
    .bind(now_ms)
    .execute(db)
    .await?;
    Ok(id)
}

/// A link as its institution sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRecord {
    pub id: String,
    pub kind: ReceptionKind,
    pub visit_date: Option<String>,
    pub booking_ref: Option<String>,
    pub label: Option<String>,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub use_count: i64,
    pub created_at: i64,
}

/// One link of `institution_id` (another institution's link is not found).
pub async fn get(
    db: &Db,
    institution_id: &str,
    link_id: &str,
) -> Result<Option<LinkRecord>, StorageError> {
    if !looks_like_id(link_id) {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT id, kind, visit_date, booking_ref, label, expires_at, revoked_at, use_count, \
                created_at \
         FROM reception_links WHERE id = $1 AND institution_id = $2",
    )
    .bind(link_id)
    .bind(institution_id)
    .fetch_optional(db)
    .await?;
    let Some(row) = row else { return Ok(None) };
    record_of(&row)
}

/// The links of `institution_id`, newest first, at most `limit`.
pub async fn list(
    db: &Db,
    institution_id: &str,
    limit: i64,
) -> Result<Vec<LinkRecord>, StorageError> {
    let rows = sqlx::query(
        "SELECT id, kind, visit_date, booking_ref, label, expires_at, revoked_at, use_count, \
                created_at \
         FROM reception_links WHERE institution_id = $1 \
         ORDER BY created_at DESC, id LIMIT $2",
    )
    .bind(institution_id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows {
        records.extend(record_of(row)?);
    }
    Ok(records)
}

/// Where a page of [`list_by_token`] starts: after the link created at `created_at` (ms) with
/// `id`, in the order newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    pub created_at: i64,
    pub id: String,
}

/// The links of `institution_id` that the API token `token_id` made, newest first (ties by
/// id), at most `limit`, only those with `booking_ref` when given, starting after `after`.
pub async fn list_by_token(
    db: &Db,
    institution_id: &str,
    token_id: &str,
    booking_ref: Option<&str>,
    after: Option<&After>,
    limit: i64,
) -> Result<Vec<LinkRecord>, StorageError> {
    let rows = sqlx::query(
        "SELECT id, kind, visit_date, booking_ref, label, expires_at, revoked_at, use_count, \
                created_at \
         FROM reception_links \
         WHERE institution_id = $1 AND created_by_token = $2 \
           AND ($3 IS NULL OR booking_ref = $3) \
           AND ($4 IS NULL OR created_at < $4 OR (created_at = $4 AND id > $5)) \
         ORDER BY created_at DESC, id LIMIT $6",
    )
    .bind(institution_id)
    .bind(token_id)
    .bind(booking_ref)
    .bind(after.map(|a| a.created_at))
    .bind(after.map(|a| a.id.as_str()))
    .bind(limit)
    .fetch_all(db)
    .await?;
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows {
        records.extend(record_of(row)?);
    }
    Ok(records)
}

/// A link row; `None` for a kind this code no longer knows.
fn record_of(row: &sqlx::any::AnyRow) -> Result<Option<LinkRecord>, StorageError> {
    let kind: String = row.try_get("kind")?;
    let Some(kind) = ReceptionKind::from_code(&kind) else {
        return Ok(None);
    };
    Ok(Some(LinkRecord {
        id: row.try_get("id")?,
        kind,
        visit_date: row.try_get("visit_date")?,
        booking_ref: row.try_get("booking_ref")?,
        label: row.try_get("label")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        use_count: row.try_get("use_count")?,
        created_at: row.try_get("created_at")?,
    }))
}

/// Revokes a link of `institution_id`; false when there is no such link. Revoking twice keeps
/// the first instant. `db` may be the pool or a transaction.
pub async fn revoke<'e>(
    db: impl sqlx::Executor<'e, Database = sqlx::Any>,
    institution_id: &str,
    link_id: &str,
    now_ms: i64,
) -> Result<bool, StorageError> {
    if !looks_like_id(link_id) {
        return Ok(false);
    }
    let found = sqlx::query(
        "UPDATE reception_links SET revoked_at = COALESCE(revoked_at, $1) \
         WHERE id = $2 AND institution_id = $3",
    )
    .bind(now_ms)
    .bind(link_id)
    .bind(institution_id)
    .execute(db)
    .await?
    .rows_affected();
    Ok(found == 1)
}

/// The ids of the receptions made through the link `link_id` of `institution_id`, newest
/// first (ties by id), at most `limit`, starting after the reception submitted at
/// `after.created_at` (ms) with `after.id`.
pub async fn reception_ids(
    db: &Db,
    institution_id: &str,
    link_id: &str,
    after: Option<&After>,
    limit: i64,
) -> Result<Vec<String>, StorageError> {
    let rows = sqlx::query(
        "SELECT id FROM receptions \
         WHERE link_id = $1 AND institution_id = $2 \
           AND ($3 IS NULL OR submitted_at < $3 OR (submitted_at = $3 AND id > $4)) \
         ORDER BY submitted_at DESC, id LIMIT $5",
    )
    .bind(link_id)
    .bind(institution_id)
    .bind(after.map(|a| a.created_at))
    .bind(after.map(|a| a.id.as_str()))
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|row| row.try_get("id").map_err(StorageError::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(kind: ReceptionKind, visit_date: Option<NaiveDate>) -> OpenLink {
        OpenLink {
            id: String::new(),
            institution_id: String::new(),
            institution_code: String::new(),
            institution_name_ja: String::new(),
            institution_name_en: String::new(),
            kind,
            visit_date,
            accepting: true,
            demo: false,
        }
    }

    #[test]
    fn a_fixed_visit_date_is_usable_on_its_day_or_for_online_care_up_to_90_days_before() {
        let day = |d: &str| d.parse::<NaiveDate>().expect("date");
        let today = day("2026-12-01");
        let from = |d: &str| VisitDateUse::From(d.to_owned());
        for (kind, visit, expected) in [
            (ReceptionKind::HouseCall, None, VisitDateUse::Today),
            (ReceptionKind::OnlineCare, None, VisitDateUse::Today),
            (
                ReceptionKind::HouseCall,
                Some("2026-12-01"),
                VisitDateUse::Today,
            ),
            (
                ReceptionKind::HouseCall,
                Some("2026-12-02"),
                from("2026-12-02"),
            ),
            (
                ReceptionKind::HouseCall,
                Some("2026-11-30"),
                VisitDateUse::Passed,
            ),
            (
                ReceptionKind::OnlineCare,
                Some("2027-03-01"),
                VisitDateUse::Today,
            ),
            (
                ReceptionKind::OnlineCare,
                Some("2027-03-02"),
                from("2026-12-02"),
            ),
            (
                ReceptionKind::OnlineCare,
                Some("2026-11-30"),
                VisitDateUse::Passed,
            ),
        ] {
            let got = link(kind, visit.map(day)).date_use(today);
            assert_eq!(got, expected, "{kind:?} on {visit:?}");
        }
    }
}
