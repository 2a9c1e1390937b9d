//! The レセコン side of the console (issue 15 §3): the receptions of a day or a date range as one
//! CSV file, in UTF-8 with a BOM or in cp932, with the eligibility columns a レセコン imports
//! ([`CSV_HEADERS`]: 保険者番号, 記号・番号・枝番, 負担割合, 有効期間, 公費負担者番号・受給者番号
//! and the 医療券/調剤券 of 医療扶助, 照会番号) and the reception's id last; and the bulk upload of
//! 照会番号 from a CSV of (受付番号 or 受付ID, 照会番号), applied row by row.
//!
//! A character cp932 cannot hold is written as the substitute the staff member chose (default
//! 〓) and listed — reception, column, character, code points — in a report shown on the screen
//! and offered as a file beside the export ([`crate::console::csv_file`]).
//!
//! The file is a read of every reception's eligibility in it: the audit row and the patients'
//! read history ([`crate::console::reads`]) record it. The check on the screen and the report
//! show single characters, not records, and are audited as plain rows.

use std::collections::HashSet;

use axum::{
    Json,
    body::Bytes,
    extract::{Query, State},
    http::{HeaderValue, StatusCode},
    response::Response,
};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uketsuke_domain::{ReceptionKind, window::jst_date};

use super::{
    changes::{PATIENT_REF_MAX, store_patient_ref},
    export::{CSV_HEADERS, Export, download, eligibility_row},
};
use crate::{
    AppState,
    console::{
        Staff, audit,
        csv_file::{self, Encoding, FORMULA_STARTERS, Substitute, Unrepresentable},
        jst_day_range,
        reads::{self, ReadCategory},
        text_refusal,
    },
    http::error::{ApiError, ApiResult},
    relay::StoredEligibility,
    storage::{StorageError, receptions::parse_date},
};

/// The longest range one file covers, in days.
pub const RANGE_MAX_DAYS: i64 = 31;
/// The most receptions one file holds.
const ROWS_MAX: i64 = 5000;
/// The largest upload, in bytes (the server's limit on every request body: about 2,500 rows of
/// (受付番号, 照会番号), or 200 rows of the export file itself), and its most data rows.
pub const UPLOAD_MAX_BYTES: usize = 64 * 1024;
pub const UPLOAD_MAX_ROWS: usize = 5000;

/// The column after [`CSV_HEADERS`]: the reception's id, which the bulk upload takes as well.
pub const ID_HEADER: &str = "受付ID";

/// The file's columns: [`CSV_HEADERS`], then [`ID_HEADER`].
pub fn headers() -> Vec<&'static str> {
    let mut headers = CSV_HEADERS.to_vec();
    headers.push(ID_HEADER);
    headers
}

/// `?from=YYYY-MM-DD&to=YYYY-MM-DD&encoding=utf-8|cp932&substitute=〓` (all optional: today,
/// the same day, UTF-8, 〓).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub encoding: Option<String>,
    pub substitute: Option<String>,
}

/// A checked [`RangeQuery`].
#[derive(Debug, Clone)]
pub struct Range {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub encoding: Encoding,
    pub substitute: Substitute,
}

fn unprocessable(code: &'static str) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code)
}

impl RangeQuery {
    /// The range, or the refusal: `date_invalid`, `range_invalid` (to before from, or longer
    /// than [`RANGE_MAX_DAYS`]), `encoding_invalid`, `substitute_invalid`.
    pub fn check(&self, today: NaiveDate) -> ApiResult<Range> {
        let day = |text: &Option<String>, default: NaiveDate| match text
            .as_deref()
            .filter(|t| !t.is_empty())
        {
            Some(text) => parse_date(text).ok_or(unprocessable("date_invalid")),
            None => Ok(default),
        };
        let from = day(&self.from, today)?;
        let to = day(&self.to, from)?;
        let days = (to - from).num_days();
        if !(0..RANGE_MAX_DAYS).contains(&days) {
            return Err(unprocessable("range_invalid"));
        }
        let encoding = match self.encoding.as_deref().filter(|e| !e.is_empty()) {
            Some(code) => Encoding::from_code(code).ok_or(unprocessable("encoding_invalid"))?,
            None => Encoding::Utf8,
        };
        let substitute = Substitute::parse(self.substitute.as_deref()).map_err(unprocessable)?;
        Ok(Range {
            from,
            to,
            encoding,
            substitute,
        })
    }
}

impl Range {
    fn day(date: NaiveDate) -> String {
        date.format("%Y-%m-%d").to_string()
    }

    /// The audit log's target: `from..to`.
    fn target(&self) -> String {
        format!("{}..{}", Range::day(self.from), Range::day(self.to))
    }

    fn file_name(&self, part: &str) -> String {
        let days = if self.from == self.to {
            Range::day(self.from)
        } else {
            format!("{}_{}", Range::day(self.from), Range::day(self.to))
        };
        format!("{part}-{days}-{}.csv", self.encoding.code())
    }
}

/// The receptions of a range with their eligibility, and how many are still waiting for it.
struct Gathered {
    exports: Vec<Export>,
    pending: usize,
}

/// The receptions submitted on a day of the range or whose visit date is in it (the day's list,
/// over several days), oldest first; those whose eligibility has not come yet are counted, not
/// written.
async fn gather(state: &AppState, staff: &Staff, range: &Range) -> ApiResult<Gathered> {
    let from = Range::day(range.from);
    let to = Range::day(range.to);
    let (Some((start, _)), Some((_, end))) = (jst_day_range(&from), jst_day_range(&to)) else {
        return Err(unprocessable("date_invalid"));
    };
    let rows = sqlx::query(&format!(
        "SELECT id, kind, visit_date, reception_number, patient_ref, eligibility_json \
         FROM receptions WHERE institution_id = $1 \
           AND ((submitted_at >= $2 AND submitted_at < $3) OR (visit_date >= $4 AND visit_date <= $5)) \
         ORDER BY submitted_at, id LIMIT {}",
        ROWS_MAX + 1
    ))
    .bind(&staff.institution_id)
    .bind(start)
    .bind(end)
    .bind(&from)
    .bind(&to)
    .fetch_all(&state.db)
    .await
    .map_err(StorageError::from)?;
    // More than a file may hold: refused whole, never cut silently (a レセコン would import
    // a file missing the newest receptions without a sign).
    if rows.len() as i64 > ROWS_MAX {
        return Err(unprocessable("range_too_large"));
    }
    let mut gathered = Gathered {
        exports: Vec::with_capacity(rows.len()),
        pending: 0,
    };
    for row in rows {
        let get =
            |column: &str| -> Result<Option<String>, StorageError> { Ok(row.try_get(column)?) };
        let id: String = row.try_get("id").map_err(StorageError::from)?;
        let kind = get("kind")?.and_then(|k| ReceptionKind::from_code(&k));
        let visit_date = get("visit_date")?.and_then(|d| parse_date(&d));
        let eligibility: Option<StoredEligibility> =
            get("eligibility_json")?.and_then(|json| serde_json::from_str(&json).ok());
        let (Some(kind), Some(visit_date)) = (kind, visit_date) else {
            tracing::error!("a reception row cannot be read");
            continue;
        };
        let Some(eligibility) = eligibility else {
            gathered.pending += 1;
            continue;
        };
        gathered.exports.push(Export {
            reception_id: id,
            reception_number: get("reception_number")?,
            patient_ref: get("patient_ref")?,
            kind,
            visit_date,
            eligibility,
        });
    }
    Ok(gathered)
}

fn rows_of(exports: &[Export]) -> Vec<Vec<String>> {
    exports
        .iter()
        .map(|export| {
            let mut row = eligibility_row(export);
            row.push(export.reception_id.clone());
            row
        })
        .collect()
}

fn write_failed(error: csv_file::WriteError) -> ApiError {
    tracing::error!(%error, "an export could not be written");
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
}

/// One character cp932 cannot hold, with the reception it is in.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub reception_id: String,
    pub reception_number: Option<String>,
    pub column: String,
    pub character: String,
    pub code_points: String,
}

fn report_of(exports: &[Export], found: Vec<Unrepresentable>) -> Vec<ReportRow> {
    found
        .into_iter()
        .filter_map(|u| {
            let export = exports.get(u.row)?;
            Some(ReportRow {
                reception_id: export.reception_id.clone(),
                reception_number: export.reception_number.clone(),
                column: u.column,
                character: u.character,
                code_points: u.code_points,
            })
        })
        .collect()
}

/// What the export of a range would hold.
#[derive(Debug, Serialize)]
pub struct ExportCheck {
    pub from: String,
    pub to: String,
    pub encoding: Encoding,
    pub substitute: String,
    /// Receptions in the file.
    pub receptions: usize,
    /// Receptions of the range still waiting for their eligibility (not in the file).
    pub pending: usize,
    /// Every character that is written as the substitute (cp932 only; none in UTF-8).
    pub unrepresentable: Vec<ReportRow>,
}

async fn build(
    state: &AppState,
    staff: &Staff,
    query: RangeQuery,
) -> ApiResult<(Range, Gathered, csv_file::Written)> {
    let range = query.check(jst_date(state.clock.now()))?;
    let gathered = gather(state, staff, &range).await?;
    let written = csv_file::write(
        &headers(),
        &rows_of(&gathered.exports),
        range.encoding,
        &range.substitute,
    )
    .map_err(write_failed)?;
    Ok((range, gathered, written))
}

type RangeParams = Result<Query<RangeQuery>, axum::extract::rejection::QueryRejection>;

fn params(query: RangeParams) -> ApiResult<RangeQuery> {
    query
        .map(|Query(q)| q)
        .map_err(|_| unprocessable("query_invalid"))
}

/// `GET /api/console/exports/receptions?from&to&encoding&substitute`: what the file would hold
/// — how many receptions, and each character written as the substitute.
pub async fn check(
    State(state): State<AppState>,
    staff: Staff,
    query: RangeParams,
) -> ApiResult<Json<ExportCheck>> {
    let (range, gathered, written) = build(&state, &staff, params(query)?).await?;
    let unrepresentable = report_of(&gathered.exports, written.unrepresentable);
    record_shown(
        &state,
        &staff,
        "receptions.export_check",
        &range.target(),
        &unrepresentable,
    )
    .await?;
    Ok(Json(ExportCheck {
        from: Range::day(range.from),
        to: Range::day(range.to),
        encoding: range.encoding,
        substitute: range.substitute.as_str().to_owned(),
        receptions: gathered.exports.len(),
        pending: gathered.pending,
        unrepresentable,
    }))
}

/// Audits a check or report as `action`. The characters it lists come from the receptions'
/// eligibility (names, addresses), so each reception it shows one of is a read of its
/// eligibility in the patient's read history (閲覧履歴); counts alone are not.
async fn record_shown(
    state: &AppState,
    staff: &Staff,
    action: &str,
    target: &str,
    shown: &[ReportRow],
) -> ApiResult<()> {
    let mut ids: Vec<&str> = shown.iter().map(|r| r.reception_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    reads::record(
        &state.db,
        staff,
        action,
        Some(target),
        &ids,
        ReadCategory::Eligibility,
        state.clock.now_ms(),
    )
    .await?;
    Ok(())
}

/// The header naming how many characters were written as the substitute.
pub const SUBSTITUTED_HEADER: &str = "x-uketsuke-substituted";

/// `GET /api/console/exports/receptions.csv?from&to&encoding&substitute`: the file. A read of
/// every reception's eligibility in it, audited as `receptions.export` and in each patient's
/// read history.
pub async fn file(
    State(state): State<AppState>,
    staff: Staff,
    query: RangeParams,
) -> ApiResult<Response> {
    let (range, gathered, written) = build(&state, &staff, params(query)?).await?;
    let ids: Vec<&str> = gathered
        .exports
        .iter()
        .map(|e| e.reception_id.as_str())
        .collect();
    reads::record(
        &state.db,
        &staff,
        "receptions.export",
        Some(&format!("{}/{}", range.target(), range.encoding.code())),
        &ids,
        ReadCategory::Eligibility,
        state.clock.now_ms(),
    )
    .await?;
    let count = written.unrepresentable.len();
    let mut response = download(
        range.encoding.content_type(),
        range.file_name("receptions"),
        written.bytes,
    );
    response
        .headers_mut()
        .insert(SUBSTITUTED_HEADER, HeaderValue::from(count));
    Ok(response)
}

/// The report's columns.
pub const REPORT_HEADERS: [&str; 6] = [
    "受付番号",
    ID_HEADER,
    "列",
    "文字",
    "コードポイント",
    "書き出した文字",
];

/// `GET /api/console/exports/receptions-report.csv?…`: the report beside the file, UTF-8 with
/// a BOM (it must hold the characters the file could not): one row per character written as the
/// substitute.
pub async fn report(
    State(state): State<AppState>,
    staff: Staff,
    query: RangeParams,
) -> ApiResult<Response> {
    let (range, gathered, written) = build(&state, &staff, params(query)?).await?;
    let shown = report_of(&gathered.exports, written.unrepresentable);
    record_shown(
        &state,
        &staff,
        "receptions.export_report",
        &format!("{}/{}", range.target(), range.encoding.code()),
        &shown,
    )
    .await?;
    let rows: Vec<Vec<String>> = shown
        .into_iter()
        .map(|r| {
            vec![
                r.reception_number.unwrap_or_default(),
                r.reception_id,
                r.column,
                r.character,
                r.code_points,
                range.substitute.as_str().to_owned(),
            ]
        })
        .collect();
    let report = csv_file::write(
        &REPORT_HEADERS,
        &rows,
        Encoding::Utf8,
        &Substitute::default(),
    )
    .map_err(write_failed)?;
    Ok(download(
        Encoding::Utf8.content_type(),
        range.file_name("receptions-report"),
        report.bytes,
    ))
}

// ---------------------------------------------------------------------------------------------
// Bulk 照会番号.

/// What became of one row of an upload.
#[derive(Debug, Clone, Serialize)]
pub struct RowResult {
    /// The row's line in the file (1-based).
    pub line: u64,
    /// The 受付番号 or 受付ID as given.
    pub key: String,
    pub patient_ref: String,
    /// The reception it named, when found.
    pub reception_id: Option<String>,
    /// `applied`, `unchanged` or `refused`.
    pub result: &'static str,
    /// Why it was refused.
    pub reason: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct UploadResult {
    pub applied: usize,
    pub unchanged: usize,
    pub refused: usize,
    pub rows: Vec<RowResult>,
}

/// Where the key and the 照会番号 are in each row.
#[derive(Debug, Clone, Copy)]
struct Columns {
    id: Option<usize>,
    number: Option<usize>,
    patient_ref: usize,
    /// Without a header every row has exactly two fields.
    exact: Option<usize>,
}

fn header_of(fields: &[String]) -> Option<Result<Columns, ApiError>> {
    let find = |names: &[&str]| {
        fields
            .iter()
            .position(|f| names.contains(&f.trim().trim_start_matches('\u{feff}')))
    };
    let patient_ref = find(&["照会番号", "patient_ref"])?;
    let id = find(&[ID_HEADER, "reception_id"]);
    let number = find(&["受付番号", "reception_number"]);
    Some(if id.is_none() && number.is_none() {
        Err(unprocessable("header_invalid"))
    } else {
        Ok(Columns {
            id,
            number,
            patient_ref,
            exact: None,
        })
    })
}

/// A cell as the export wrote it, back: the apostrophe that defused a formula-like value goes.
fn undefuse(value: &str) -> &str {
    match value.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTERS) => rest,
        _ => value,
    }
}

/// The reception `key` names at the institution: its id, else its 受付番号.
async fn find_reception(
    state: &AppState,
    staff: &Staff,
    key: &str,
) -> Result<Result<(String, Option<String>), &'static str>, StorageError> {
    let rows = sqlx::query(
        "SELECT id, patient_ref FROM receptions WHERE institution_id = $1 \
           AND (id = $2 OR reception_number = $2) ORDER BY id LIMIT 2",
    )
    .bind(&staff.institution_id)
    .bind(key)
    .fetch_all(&state.db)
    .await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        found.push((
            row.try_get::<String, _>("id")?,
            row.try_get::<Option<String>, _>("patient_ref")?,
        ));
    }
    Ok(match found.len() {
        0 => Err("reception_unknown"),
        1 => Ok(found.remove(0)),
        _ => match found.iter().position(|(id, _)| id == key) {
            Some(i) => Ok(found.remove(i)),
            None => Err("reception_ambiguous"),
        },
    })
}

/// `POST /api/console/patient-refs`, the body a CSV file (UTF-8 or cp932): sets the 照会番号 of
/// many receptions. Rows are (受付番号 or 受付ID, 照会番号); a header row naming 照会番号 and
/// 受付番号 and/or 受付ID may put them in any columns (the export file itself, edited, is
/// such a file). Each row is applied alone, with its audit row, or refused with its reason:
/// `columns_invalid`, `key_missing`, `reception_unknown`, `reception_ambiguous`,
/// `patient_ref_missing`, `patient_ref_invalid` (too long, control or invisible characters),
/// `duplicate_in_file`. A file that cannot be read at all is refused whole: `file_empty`,
/// `file_too_large`, `file_encoding_unknown`, `file_malformed`, `header_invalid`,
/// `too_many_rows`.
pub async fn upload_patient_refs(
    State(state): State<AppState>,
    staff: Staff,
    body: Bytes,
) -> ApiResult<Json<UploadResult>> {
    if body.len() > UPLOAD_MAX_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "file_too_large",
        ));
    }
    let records = csv_file::read(&body).map_err(|e| unprocessable(e.code()))?;
    let mut records = records.into_iter().peekable();
    let columns = match records.peek().and_then(|r| header_of(&r.fields)) {
        Some(columns) => {
            records.next();
            columns?
        }
        None => Columns {
            id: None,
            number: Some(0),
            patient_ref: 1,
            exact: Some(2),
        },
    };
    let records: Vec<_> = records
        .filter(|r| r.fields.iter().any(|f| !f.trim().is_empty()))
        .collect();
    if records.is_empty() {
        return Err(unprocessable("file_empty"));
    }
    if records.len() > UPLOAD_MAX_ROWS {
        return Err(unprocessable("too_many_rows"));
    }
    let mut seen = HashSet::new();
    let mut result = UploadResult {
        applied: 0,
        unchanged: 0,
        refused: 0,
        rows: Vec::with_capacity(records.len()),
    };
    for record in records {
        let field = |i: Option<usize>| {
            i.and_then(|i| record.fields.get(i))
                .map(|f| undefuse(f.trim()).to_owned())
                .filter(|f| !f.is_empty())
        };
        let key = field(columns.id).or_else(|| field(columns.number));
        let value = field(Some(columns.patient_ref));
        let mut row = RowResult {
            line: record.line,
            key: key.clone().unwrap_or_default(),
            patient_ref: value.clone().unwrap_or_default(),
            reception_id: None,
            result: "refused",
            reason: None,
        };
        let outcome = apply_row(
            &state,
            &staff,
            &columns,
            &record.fields,
            key,
            value,
            &mut seen,
        )
        .await?;
        match outcome {
            Ok((id, applied)) => {
                row.reception_id = Some(id);
                if applied {
                    row.result = "applied";
                    result.applied += 1;
                } else {
                    row.result = "unchanged";
                    result.unchanged += 1;
                }
            }
            Err((id, reason)) => {
                row.reception_id = id;
                row.reason = Some(reason);
                result.refused += 1;
            }
        }
        result.rows.push(row);
    }
    audit::record(
        &state.db,
        &staff.actor(),
        "patient_refs.upload",
        Some(&format!(
            "applied={} unchanged={} refused={}",
            result.applied, result.unchanged, result.refused
        )),
        state.clock.now_ms(),
    )
    .await?;
    Ok(Json(result))
}

type RowOutcome = Result<(String, bool), (Option<String>, &'static str)>;

/// One row: found, checked and stored in one transaction with its audit row, or refused.
async fn apply_row(
    state: &AppState,
    staff: &Staff,
    columns: &Columns,
    fields: &[String],
    key: Option<String>,
    value: Option<String>,
    seen: &mut HashSet<String>,
) -> Result<RowOutcome, StorageError> {
    if columns.exact.is_some_and(|n| fields.len() != n) {
        return Ok(Err((None, "columns_invalid")));
    }
    let Some(key) = key else {
        return Ok(Err((None, "key_missing")));
    };
    let (id, stored) = match find_reception(state, staff, &key).await? {
        Ok(found) => found,
        Err(reason) => return Ok(Err((None, reason))),
    };
    if !seen.insert(id.clone()) {
        return Ok(Err((Some(id), "duplicate_in_file")));
    }
    let Some(value) = value else {
        return Ok(Err((Some(id), "patient_ref_missing")));
    };
    if let Some(reason) = text_refusal(&value, PATIENT_REF_MAX, "patient_ref_invalid") {
        return Ok(Err((Some(id), reason)));
    }
    if stored.as_deref() == Some(value.as_str()) {
        return Ok(Ok((id, false)));
    }
    store_patient_ref(state, staff, &id, Some(&value)).await?;
    Ok(Ok((id, true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(from: Option<&str>, to: Option<&str>) -> RangeQuery {
        RangeQuery {
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
            ..Default::default()
        }
    }

    #[test]
    fn ranges_are_checked() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
        let range = query(None, None).check(today).expect("today");
        assert_eq!((range.from, range.to), (today, today));
        assert_eq!(range.encoding, Encoding::Utf8);
        assert_eq!(range.substitute.as_str(), "〓");
        let code = |q: RangeQuery| q.check(today).err().map(|e| e.code().to_owned());
        assert_eq!(
            code(query(Some("2026-12-02"), Some("2026-12-01"))),
            Some("range_invalid".into())
        );
        // 31 days at most, both ends included.
        assert_eq!(
            code(query(Some("2026-10-31"), Some("2026-12-01"))),
            Some("range_invalid".into())
        );
        assert!(
            query(Some("2026-11-01"), Some("2026-12-01"))
                .check(today)
                .is_ok()
        );
        assert_eq!(
            code(query(Some("2026-13-01"), None)),
            Some("date_invalid".into())
        );
        let mut bad = query(None, None);
        bad.encoding = Some("latin-1".into());
        assert_eq!(code(bad), Some("encoding_invalid".into()));
        let mut bad = query(None, None);
        bad.substitute = Some("𠮷".into());
        assert_eq!(code(bad), Some("substitute_invalid".into()));
    }

    #[test]
    fn the_export_header_is_an_upload_header() {
        let fields: Vec<String> = headers().into_iter().map(str::to_owned).collect();
        let columns = header_of(&fields).expect("a header").expect("valid");
        assert_eq!(columns.number, Some(0));
        assert_eq!(columns.patient_ref, 1);
        assert_eq!(columns.id, Some(CSV_HEADERS.len()));
        let only_ref = vec!["照会番号".to_owned()];
        assert!(header_of(&only_ref).expect("a header").is_err());
        assert!(header_of(&["12345678".to_owned(), "P1".to_owned()]).is_none());
        assert_eq!(undefuse("'=1"), "=1");
        assert_eq!(undefuse("'abc"), "'abc");
    }
}
