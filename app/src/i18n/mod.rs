//! Languages and every text a person reads. Japanese first, English complete: each language is
//! one value of [`Texts`], so a missing translation is a compile error, not a blank on screen.

mod en;
pub mod flow;
pub mod insurance_use;
mod ja;
#[cfg(feature = "ssr")]
pub mod request;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uketsuke_domain::ReceptionKind;

/// Cookie that remembers the patient's language choice (a preference, not personal data).
pub const LANG_COOKIE: &str = "uk_lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Lang {
    #[default]
    Ja,
    En,
}

impl Lang {
    pub const fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        match code {
            "ja" => Some(Lang::Ja),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub const fn other(self) -> Lang {
        match self {
            Lang::Ja => Lang::En,
            Lang::En => Lang::Ja,
        }
    }

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Ja => &ja::TEXTS,
            Lang::En => &en::TEXTS,
        }
    }
}

/// Texts about one reception kind.
pub struct KindTexts {
    /// What the reception is called, e.g. 「オンライン診療の受付」.
    pub title: &'static str,
    /// Until when the institution may read medical information, in words.
    pub window: &'static str,
}

pub struct Texts {
    pub product: &'static str,
    /// The label of the switch to *this* language, written in this language.
    pub language_name: &'static str,
    pub switch_language_label: &'static str,
    pub demo_banner: &'static str,

    pub home_title: &'static str,
    pub home_body: &'static str,

    pub landing_lead: &'static str,
    pub landing_visit_date: &'static str,
    pub landing_needed_heading: &'static str,
    pub landing_needed_card: &'static str,
    pub landing_needed_pin: &'static str,
    pub landing_needed_reader: &'static str,
    pub landing_use_heading: &'static str,
    pub landing_use_eligibility: &'static str,
    pub landing_use_medical: &'static str,
    pub landing_use_window: &'static str,
    pub landing_use_no_medical: &'static str,
    pub landing_use_pin: &'static str,
    pub landing_on_institution_device: &'static str,
    pub landing_how_read_heading: &'static str,
    pub landing_how_read_body: &'static str,
    pub landing_not_accepting_title: &'static str,
    pub landing_not_accepting_body: &'static str,
    /// A per-appointment link opened too early: before the date shown after it.
    pub landing_not_yet_title: &'static str,
    pub landing_not_yet_from: &'static str,
    pub landing_not_yet_body: &'static str,
    /// A per-appointment link opened after its visit date.
    pub landing_passed_title: &'static str,
    pub landing_passed_body: &'static str,
    pub loading: &'static str,

    pub invalid_link_title: &'static str,
    pub invalid_link_body: &'static str,
    pub invalid_link_expired: &'static str,
    pub invalid_link_revoked: &'static str,
    pub not_found_title: &'static str,
    pub not_found_body: &'static str,
    pub server_error_title: &'static str,
    pub server_error_body: &'static str,

    pub kinds: [KindTexts; 6],
}

impl Texts {
    pub fn kind(&self, kind: ReceptionKind) -> &KindTexts {
        let index = ReceptionKind::ALL
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_default();
        &self.kinds[index]
    }
}

/// The language of this page, shared by every component.
#[derive(Clone, Copy)]
pub struct LangSignal(pub RwSignal<Lang>);

pub fn use_lang() -> RwSignal<Lang> {
    use_context::<LangSignal>()
        .map(|l| l.0)
        .unwrap_or_else(|| RwSignal::new(Lang::Ja))
}

/// The current texts, reactive.
pub fn use_texts() -> impl Fn() -> &'static Texts + Copy + Send + Sync + 'static {
    let lang = use_lang();
    move || lang.get().texts()
}

/// The current texts of the reception flow, reactive.
pub fn use_flow_texts() -> impl Fn() -> &'static flow::FlowTexts + Copy + Send + Sync + 'static {
    let lang = use_lang();
    move || flow::texts(lang.get())
}

pub fn use_insurance_use_texts()
-> impl Fn() -> &'static insurance_use::InsuranceUseTexts + Copy + Send + Sync + 'static {
    let lang = use_lang();
    move || insurance_use::texts(lang.get())
}

/// The end of a consent window as the server gives it ("2026-11-23 23:59 JST"), in words:
/// 2026年11月23日 23時59分（日本時間） / 23 November 2026, 23:59 (Japan time).
pub fn format_end(lang: Lang, end: &str) -> String {
    let mut parts = end.split(' ');
    let (Some(date), Some(time)) = (parts.next(), parts.next()) else {
        return end.to_owned();
    };
    let Some((h, m)) = time.split_once(':') else {
        return end.to_owned();
    };
    match lang {
        Lang::Ja => format!("{} {h}時{m}分（日本時間）", format_date(lang, date)),
        Lang::En => format!("{}, {h}:{m} (Japan time)", format_date(lang, date)),
    }
}

/// The language the page starts in. On the server: `?lang=` first, then the cookie, then
/// Japanese. In the browser: whatever the server rendered into `<html lang>`, so hydration
/// matches the server's markup exactly.
pub fn initial_lang() -> Lang {
    #[cfg(feature = "ssr")]
    {
        request::request_lang()
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
            .and_then(|e| e.get_attribute("lang"))
            .and_then(|code| Lang::from_code(&code))
            .unwrap_or_default()
    }
    #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
    {
        Lang::Ja
    }
}

/// A calendar date `YYYY-MM-DD` as people write it: 2026年11月22日 / 22 November 2026.
/// Anything else is shown as it is rather than hidden.
pub fn format_date(lang: Lang, iso: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let mut parts = iso.splitn(3, '-').map(str::parse::<u32>);
    let (Some(Ok(y)), Some(Ok(m)), Some(Ok(d))) = (parts.next(), parts.next(), parts.next()) else {
        return iso.to_owned();
    };
    let Some(month) = m.checked_sub(1).and_then(|i| MONTHS.get(i as usize)) else {
        return iso.to_owned();
    };
    match lang {
        Lang::Ja => format!("{y}年{m}月{d}日"),
        Lang::En => format!("{d} {month} {y}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_both_languages() {
        assert_eq!(format_date(Lang::Ja, "2026-11-22"), "2026年11月22日");
        assert_eq!(format_date(Lang::En, "2026-01-05"), "5 January 2026");
        assert_eq!(format_date(Lang::En, "2026-13-05"), "2026-13-05");
        assert_eq!(format_date(Lang::Ja, "garbage"), "garbage");
    }

    #[test]
    fn every_kind_has_texts_in_both_languages() {
        for lang in [Lang::Ja, Lang::En] {
            for kind in ReceptionKind::ALL {
                assert!(!lang.texts().kind(kind).title.is_empty());
                assert!(!lang.texts().kind(kind).window.is_empty());
            }
        }
        assert_ne!(
            Lang::Ja.texts().kind(ReceptionKind::HouseCall).title,
            Lang::Ja.texts().kind(ReceptionKind::HomeVisit).title
        );
    }
}
