//! 受付一覧 (the day's receptions, live) and one reception's detail: eligibility, medical
//! information through the gate, 照会番号, home visits, export and withdrawal.
//!
//! `list` is the 受付一覧; the detail page is `detail` with its sections in `eligibility` and
//! `medical`. This file holds the words both use (kinds, statuses, reasons, consents).

mod detail;
mod eligibility;
mod list;
mod medical;
mod rececon;

pub use detail::detail;
pub use list::list;
pub use rececon::page as rececon;

use chrono::{DateTime, Utc};
use uketsuke_app::i18n::Lang;
use uketsuke_domain::{ReceptionKind, window::to_jst};

use super::tr;
use crate::console::receptions::ConsentView;

/// A reception kind as staff call it.
pub fn kind_name(lang: Lang, kind: ReceptionKind) -> &'static str {
    match kind {
        ReceptionKind::OnlineCare => tr(lang, "オンライン診療等", "Online care"),
        ReceptionKind::SeparateRoute => tr(
            lang,
            "外来（通常とは異なる動線）",
            "Outpatient (separate route)",
        ),
        ReceptionKind::DeviceFailure => tr(lang, "機器故障時等", "Reader out of order"),
        ReceptionKind::HomeVisit => tr(lang, "訪問診療等", "Regular home visits"),
        ReceptionKind::HouseCall => tr(lang, "往診", "House call"),
        ReceptionKind::EligibilityOnly => tr(lang, "資格確認限定型", "Eligibility only"),
    }
}

fn status_text(lang: Lang, status: &str) -> &'static str {
    match status {
        "queued" => tr(lang, "確認中", "Confirming"),
        "confirmed" => tr(lang, "確認済み", "Confirmed"),
        _ => tr(lang, "確認できず", "Not confirmed"),
    }
}

/// What a refusal or an unavailable record means, for staff.
fn reason_text(lang: Lang, code: &str) -> String {
    let text = match code {
        "person_not_found" => tr(
            lang,
            "カードの利用者証明用電子証明書に対応する資格が見つかりません",
            "No record for this card's certificate",
        ),
        "certificate_revoked" => tr(
            lang,
            "電子証明書が失効しています",
            "The card's certificate is revoked",
        ),
        "institution_unknown" => tr(
            lang,
            "医療機関がオンライン資格確認に登録されていません",
            "The institution is not registered with the backend",
        ),
        _ => "",
    };
    if text.is_empty() {
        code.to_owned()
    } else {
        format!("{text} ({code})")
    }
}

/// Why sending this reception to the backend has stopped, for staff: the cause is the server's
/// set-up, not the patient, and the reception is kept and sent once it is fixed.
fn held_text(lang: Lang, code: &str) -> String {
    let cause = match code {
        "unknown_key" => tr(
            lang,
            "医療機関の要求署名鍵がオンライン資格確認等システムに登録されていません",
            "the institution's request key is not registered with the backend",
        ),
        "bad_signature" | "missing_authentication" => tr(
            lang,
            "医療機関の要求署名鍵がオンライン資格確認等システムに登録された鍵と一致しません",
            "the institution's request key does not match the key registered with the backend",
        ),
        _ => tr(
            lang,
            "送信先（オンライン資格確認等システム）と仕様のバージョンが合いません",
            "the backend does not accept this server's requests (contract mismatch)",
        ),
    };
    let (lead, tail) = (
        tr(lang, "送信停止中：", "Sending stopped: "),
        tr(
            lang,
            "。受付は保存されています。システム管理者に連絡してください",
            ". The reception is kept; contact your system administrator",
        ),
    );
    format!("{lead}{cause}{tail} ({code})")
}

fn consent_text(lang: Lang, consent: &ConsentView, kind: ReceptionKind) -> String {
    if !kind.offers_medical_information() {
        return tr(lang, "（医療情報なし）", "(no medical information)").to_owned();
    }
    let mut parts = Vec::new();
    if consent.clinical_medication {
        parts.push(tr(lang, "診療・薬剤", "Care & medication"));
    }
    if consent.checkups {
        parts.push(tr(lang, "特定健診等", "Check-ups"));
    }
    if parts.is_empty() {
        tr(lang, "同意なし", "No consent").to_owned()
    } else {
        parts.join(tr(lang, "・", ", "))
    }
}

fn jst_time(at: DateTime<Utc>) -> String {
    to_jst(at).format("%Y-%m-%d %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_staff_name_in_both_languages() {
        for kind in ReceptionKind::ALL {
            assert!(!kind_name(Lang::Ja, kind).is_empty());
            assert_ne!(kind_name(Lang::Ja, kind), kind_name(Lang::En, kind));
        }
    }
}
