//! The export of one reception's eligibility for the レセコン: JSON as stored, or CSV (UTF-8 with
//! BOM for Excel, SPEC §6 columns, CRLF).

use axum::{
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::NaiveDate;
use serde::Serialize;
use uketsuke_domain::{
    ReceptionKind,
    eligibility::{
        EligibilityOutcome, EligibilityRecord, EligibilityWarning, InsuredRelation,
        NoEligibilityReason, Sex, TicketKind,
    },
};

use super::{extra, own_reception};
use crate::{
    AppState,
    console::{
        Staff,
        csv_file::{self, Encoding, Substitute},
        reads::{self, ReadCategory},
    },
    http::error::{ApiError, ApiResult},
    relay::{self, StoredEligibility},
};

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
    reads::record(
        &state.db,
        staff,
        "eligibility.export",
        Some(&format!("{}/{format}", reception.id)),
        &[reception.id.as_str()],
        ReadCategory::Eligibility,
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

/// A file download, never cached.
pub(super) fn download(
    content_type: &'static str,
    name: String,
    body: impl IntoResponse,
) -> Response {
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
    let body = eligibility_csv(&export).map_err(|error| {
        tracing::error!(%error, "an eligibility export could not be written");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
    })?;
    Ok(download(
        Encoding::Utf8.content_type(),
        format!("{}.csv", file_stem(&export)),
        body,
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

/// The CSV file: BOM, header row, one data row, CRLF line ends (UTF-8).
pub fn eligibility_csv(export: &Export) -> Result<String, csv_file::WriteError> {
    let written = csv_file::write(
        &CSV_HEADERS,
        &[eligibility_row(export)],
        Encoding::Utf8,
        &Substitute::default(),
    )?;
    String::from_utf8(written.bytes).map_err(|_| csv_file::WriteError::Unencodable)
}

/// One reception's cells under [`CSV_HEADERS`], as stored (not yet defused or encoded).
pub fn eligibility_row(export: &Export) -> Vec<String> {
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
    row
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
        }))
        .expect("csv");
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
        }))
        .expect("csv");
        assert!(csv.contains("照会不可（card_revoked）"));
    }
}
