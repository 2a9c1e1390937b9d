//! The helper's words, in Japanese and English (the same terms as the card step's).

use uketsuke_backend::contract::PrescriptionMethod;
use uketsuke_backend::contract::binding::SignedText;
use uketsuke_domain::ReceptionKind;

use crate::reader::CardFailure;

/// The window's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    /// `ja` or `en` (the `--lang` option); `None` for anything else.
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "ja" => Some(Lang::Ja),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// From a BCP 47 locale (`ja-JP`, `en_US.UTF-8`): Japanese for `ja…`, English for any other
    /// language, Japanese when none is known (the helper is for clinics in Japan).
    pub fn from_locale(locale: Option<&str>) -> Self {
        match locale.map(|l| l.trim().to_ascii_lowercase()) {
            Some(l) if l.is_empty() || l == "c" || l == "posix" => Lang::Ja,
            Some(l) if !l.starts_with("ja") => Lang::En,
            _ => Lang::Ja,
        }
    }

    /// The other language (the window's language switch).
    pub fn other(self) -> Self {
        match self {
            Lang::Ja => Lang::En,
            Lang::En => Lang::Ja,
        }
    }
}

/// The fixed words of the window.
pub struct Texts {
    pub title: &'static str,
    pub switch_language: &'static str,
    pub lead: &'static str,
    pub site: &'static str,
    pub institution_code: &'static str,
    pub purpose: &'static str,
    pub manage: &'static str,
    pub insurance_use: &'static str,
    pub terms: &'static str,
    pub kind: &'static str,
    pub visit_date: &'static str,
    pub clinical: &'static str,
    pub checkups: &'static str,
    pub prescription: &'static str,
    pub agree: &'static str,
    pub disagree: &'static str,
    pub paper: &'static str,
    pub electronic: &'static str,
    pub check_site: &'static str,
    pub read_card: &'static str,
    pub cancel: &'static str,
    pub reading: &'static str,
    pub pin_title: &'static str,
    pub pin_label: &'static str,
    pub pin_four_digits: &'static str,
    pub sign: &'static str,
    pub try_again: &'static str,
    pub back_to_browser: &'static str,
    pub refused_title: &'static str,
    pub refused_close: &'static str,
    pub done: &'static str,
}

pub const JA: Texts = Texts {
    title: "Uketsuke カード読み取り",
    switch_language: "English",
    lead: "マイナンバーカードで本人確認をします。次のサイトと内容で合っているか確かめてください。",
    site: "確認するサイト",
    institution_code: "医療機関等コード",
    purpose: "内容",
    manage: "同意の確認・取消",
    insurance_use: "マイナンバーカードの健康保険証利用登録",
    terms: "同意する利用規約の版",
    kind: "受付の種類",
    visit_date: "受診日",
    clinical: "診療・薬剤情報の提供",
    checkups: "特定健診等情報の提供",
    prescription: "処方箋",
    agree: "同意する",
    disagree: "同意しない",
    paper: "紙の処方箋",
    electronic: "電子処方箋",
    check_site: "ブラウザのアドレスがこのサイトと同じでない場合は、中止してください。",
    read_card: "カードを読み取る",
    cancel: "中止",
    reading: "カードを読み取っています。カードをリーダーから離さないでください…",
    pin_title: "暗証番号の入力",
    pin_label: "利用者証明用電子証明書の暗証番号（数字4桁）",
    pin_four_digits: "暗証番号は数字4桁です。",
    sign: "確認する",
    try_again: "もう一度試す",
    back_to_browser: "ブラウザに戻る",
    refused_title: "この要求には応じられません",
    refused_close: "閉じる",
    done: "ブラウザに戻りました。このウィンドウは閉じてかまいません。",
};

pub const EN: Texts = Texts {
    title: "Uketsuke card reading",
    switch_language: "日本語",
    lead: "Confirm your identity with your My Number card. Check that the site and the details below are right.",
    site: "Site",
    institution_code: "Institution code",
    purpose: "Purpose",
    manage: "See or withdraw consents",
    insurance_use: "Register the My Number card for use as a health insurance card",
    terms: "Version of the terms you agree to",
    kind: "Kind of reception",
    visit_date: "Visit date",
    clinical: "Share clinical and medication information",
    checkups: "Share health check-up information",
    prescription: "Prescription",
    agree: "I agree",
    disagree: "I do not agree",
    paper: "Paper prescription",
    electronic: "Electronic prescription",
    check_site: "If the address in your browser is not this site, stop here.",
    read_card: "Read the card",
    cancel: "Cancel",
    reading: "Reading the card. Keep it on the reader…",
    pin_title: "Enter your PIN",
    pin_label: "PIN of the user-authentication certificate (4 digits)",
    pin_four_digits: "The PIN is 4 digits.",
    sign: "Confirm",
    try_again: "Try again",
    back_to_browser: "Back to the browser",
    refused_title: "This request cannot be answered",
    refused_close: "Close",
    done: "You are back in the browser. You may close this window.",
};

/// The words of `lang`.
pub fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::Ja => &JA,
        Lang::En => &EN,
    }
}

/// Tries left, shown before the PIN field.
pub fn tries_left(lang: Lang, tries: u8) -> String {
    match lang {
        Lang::Ja => format!("残り {tries} 回まちがえると暗証番号がロックされます。"),
        Lang::En => format!("{tries} wrong tries left before the PIN locks."),
    }
}

/// What went wrong with the card, and what to do.
pub fn failure(lang: Lang, failure: &CardFailure) -> String {
    let (ja, en): (&str, &str) = match failure {
        CardFailure::NoReader => (
            "カードリーダーが見つかりません。リーダーをパソコンに接続してから、もう一度お試しください。",
            "No card reader was found. Connect the reader to this computer and try again.",
        ),
        CardFailure::NoCard => (
            "リーダーにカードがありません。マイナンバーカードをリーダーに置いてください。",
            "There is no card on the reader. Place your My Number card on the reader.",
        ),
        CardFailure::CardRemoved => (
            "読み取りの途中でカードが離れました。カードを置いたまま、もう一度お試しください。",
            "The card left the reader during the read. Keep it on the reader and try again.",
        ),
        CardFailure::NotMyNumberCard => (
            "マイナンバーカードではないようです。マイナンバーカードを置いてください。",
            "This does not seem to be a My Number card. Place your My Number card on the reader.",
        ),
        CardFailure::PinBlocked => (
            "暗証番号がロックされています。市区町村の窓口で解除してください。",
            "The PIN is locked. It can be reset at your municipal office.",
        ),
        CardFailure::WrongPin { tries_left: n } => {
            return match lang {
                Lang::Ja => format!("暗証番号が違います。あと {n} 回まちがえるとロックされます。"),
                Lang::En => format!("Wrong PIN. {n} more wrong tries will lock it."),
            };
        }
        CardFailure::Failed(_) => (
            "カードを読み取れませんでした。カードを置き直して、もう一度お試しください。",
            "The card could not be read. Place it again and try again.",
        ),
    };
    match lang {
        Lang::Ja => ja.to_owned(),
        Lang::En => en.to_owned(),
    }
}

/// Why a request was refused (the refusal's code, [`crate::protocol::Refusal::code`]).
pub fn refusal(lang: Lang, code: &str) -> &'static str {
    match (code, lang) {
        ("origin_mismatch" | "return_mismatch", Lang::Ja) => {
            "署名を求めたサイトと、署名する内容に書かれたサイトが一致しません。偽のサイトの可能性があるため、署名しません。ブラウザのアドレスを確かめてください。"
        }
        ("origin_mismatch" | "return_mismatch", Lang::En) => {
            "The site that asked for the signature is not the site named in what would be signed. It may be a fake site, so nothing is signed. Check the address in your browser."
        }
        (_, Lang::Ja) => "この要求は正しい形式ではないため、署名しません。",
        (_, Lang::En) => "This request is not in the right form, so nothing is signed.",
    }
}

/// A reception kind's name.
pub fn kind(lang: Lang, kind: ReceptionKind) -> &'static str {
    let (ja, en) = match kind {
        ReceptionKind::OnlineCare => ("オンライン診療等の受付", "Online consultation"),
        ReceptionKind::SeparateRoute => (
            "外来受付（通常とは異なる動線）",
            "Outpatient visit (separate route)",
        ),
        ReceptionKind::DeviceFailure => (
            "受付（機器の故障時など）",
            "Reception (when the clinic's reader is out of order)",
        ),
        ReceptionKind::HomeVisit => ("訪問診療等の受付", "Regular home visits"),
        ReceptionKind::HouseCall => ("往診の受付", "House call"),
        ReceptionKind::EligibilityOnly => ("資格確認の受付", "Insurance check only"),
    };
    match lang {
        Lang::Ja => ja,
        Lang::En => en,
    }
}

/// The signed text in rows of (label, value), for the window and for screen readers.
pub fn rows(lang: Lang, text: &SignedText) -> Vec<(&'static str, String)> {
    let t = texts(lang);
    let mut rows = vec![
        (t.site, text.origin().to_owned()),
        (t.institution_code, text.institution().as_str().to_owned()),
    ];
    match text {
        SignedText::Manage(_) => rows.push((t.purpose, t.manage.to_owned())),
        SignedText::InsuranceUse(i) => {
            rows.push((t.purpose, t.insurance_use.to_owned()));
            rows.push((t.terms, i.terms.clone()));
        }
        SignedText::Consent(c) => {
            rows.push((t.kind, kind(lang, c.kind).to_owned()));
            rows.push((t.visit_date, c.visit_date.format("%Y-%m-%d").to_string()));
            if c.kind.offers_medical_information() {
                let say = |yes: bool| if yes { t.agree } else { t.disagree };
                rows.push((t.clinical, say(c.consent.clinical_medication).to_owned()));
                rows.push((t.checkups, say(c.consent.checkups).to_owned()));
            }
            if let Some(p) = c.prescription_method {
                let value = match p {
                    PrescriptionMethod::Paper => t.paper,
                    PrescriptionMethod::Electronic => t.electronic,
                };
                rows.push((t.prescription, value.to_owned()));
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use uketsuke_backend::contract::ConsentChoices;
    use uketsuke_backend::contract::binding::SignedConsent;
    use uketsuke_domain::InstitutionCode;

    #[test]
    fn the_language_follows_the_system_locale() {
        assert_eq!(Lang::from_locale(Some("ja-JP")), Lang::Ja);
        assert_eq!(Lang::from_locale(Some("ja_JP.UTF-8")), Lang::Ja);
        assert_eq!(Lang::from_locale(Some("en-US")), Lang::En);
        assert_eq!(Lang::from_locale(Some("vi-VN")), Lang::En);
        assert_eq!(Lang::from_locale(Some("C")), Lang::Ja);
        assert_eq!(Lang::from_locale(None), Lang::Ja);
    }

    #[test]
    fn the_rows_come_from_the_signed_text() {
        let code = InstitutionCode::with_check_digit("131234567").expect("code");
        let text = SignedText::Consent(SignedConsent {
            origin: "https://uketsuke.example.jp".to_owned(),
            challenge: "x".to_owned(),
            institution: code.clone(),
            kind: ReceptionKind::OnlineCare,
            visit_date: NaiveDate::from_ymd_opt(2026, 12, 1).expect("date"),
            consent: ConsentChoices {
                clinical_medication: true,
                checkups: false,
            },
            prescription_method: Some(PrescriptionMethod::Paper),
        });
        let rows = rows(Lang::Ja, &text);
        let values: Vec<&str> = rows.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(
            values,
            [
                "https://uketsuke.example.jp",
                code.as_str(),
                "オンライン診療等の受付",
                "2026-12-01",
                "同意する",
                "同意しない",
                "紙の処方箋"
            ]
        );
        assert_eq!(rows[0].0, "確認するサイト");
    }
}
