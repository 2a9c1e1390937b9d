//! Short text that staff and administrators set and that others read: account names, link
//! labels and booking references, institution names, 照会番号. Such text reaches patients'
//! screens, printed QR sheets, the audit log and CSV files opened in spreadsheets, so characters
//! that change how the text *looks* without being seen are refused at input:
//!
//! - bidirectional controls — the embeddings and overrides U+202A–U+202E, the isolates
//!   U+2066–U+2069, the marks U+200E/U+200F and U+061C (ARABIC LETTER MARK): they reorder what
//!   is shown, so `ABC` + U+202E + `txt.exe` reads as something else (Unicode UAX #9, and the "Trojan
//!   Source" attacks, CVE-2021-42574);
//! - zero-width characters — U+200B ZERO WIDTH SPACE, U+200C/U+200D (non-)joiners, U+2060 WORD
//!   JOINER, U+FEFF (BOM): two names that look the same would differ, and a prefix would hide
//!   from a search;
//! - control characters (C0, C1, and the line and paragraph separators U+2028/U+2029).
//!
//! Variation selectors (U+FE00–U+FE0F, and the ideographic variation sequences' U+E0100–U+E01EF
//! of the Ideographic Variation Database) are accepted: they choose the glyph of a 異体字 in a
//! person's registered name (髙, 﨑 and their kin) and are part of the name.

use std::fmt;

/// Why a short text is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextError {
    /// More than the field's maximum, in Unicode scalar values.
    TooLong { max: usize },
    /// A control character (C0, C1, U+2028, U+2029).
    Control,
    /// A bidirectional control (the character is given).
    BidiControl(char),
    /// A zero-width character (the character is given).
    ZeroWidth(char),
}

impl TextError {
    /// The refusal's code, as the HTTP APIs answer it: `text_too_long`, `text_control`,
    /// `text_bidi_control`, `text_zero_width`.
    pub const fn code(self) -> &'static str {
        match self {
            TextError::TooLong { .. } => "text_too_long",
            TextError::Control => "text_control",
            TextError::BidiControl(_) => "text_bidi_control",
            TextError::ZeroWidth(_) => "text_zero_width",
        }
    }

    /// True for the characters that change how text looks without being seen (the refusals
    /// this module adds to the length and control checks every field already had).
    pub const fn is_invisible(self) -> bool {
        matches!(self, TextError::BidiControl(_) | TextError::ZeroWidth(_))
    }

    /// What to tell the person who typed the text, in Japanese.
    pub fn message_ja(self) -> String {
        match self {
            TextError::TooLong { max } => format!("{max}文字以内で入力してください。"),
            TextError::Control => {
                "改行や制御文字は使えません。削除してから保存してください。".to_owned()
            }
            TextError::BidiControl(c) => format!(
                "文字の向きを変える見えない制御文字（U+{:04X}）が含まれています。貼り付けた文字を削除し、直接入力し直してください。",
                u32::from(c)
            ),
            TextError::ZeroWidth(c) => format!(
                "幅のない見えない文字（U+{:04X}）が含まれています。貼り付けた文字を削除し、直接入力し直してください。",
                u32::from(c)
            ),
        }
    }

    /// What to tell the person who typed the text, in English.
    pub fn message_en(self) -> String {
        match self {
            TextError::TooLong { max } => format!("Use at most {max} characters."),
            TextError::Control => {
                "Line breaks and control characters are not allowed. Remove them and save again."
                    .to_owned()
            }
            TextError::BidiControl(c) => format!(
                "The text contains an invisible character that changes the text direction (U+{:04X}). Delete the pasted text and type it again.",
                u32::from(c)
            ),
            TextError::ZeroWidth(c) => format!(
                "The text contains an invisible zero-width character (U+{:04X}). Delete the pasted text and type it again.",
                u32::from(c)
            ),
        }
    }
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} / {}", self.message_ja(), self.message_en())
    }
}

impl std::error::Error for TextError {}

/// The bidirectional controls of UAX #9: embeddings and overrides, isolates, implicit marks.
pub const fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Zero-width characters that are not variation selectors: ZWSP, ZWNJ, ZWJ, WORD JOINER, BOM.
pub const fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// Checks a short text of at most `max` characters (Unicode scalar values) for the rules above;
/// the first problem found, the length first.
pub fn check_short_text(text: &str, max: usize) -> Result<(), TextError> {
    if text.chars().count() > max {
        return Err(TextError::TooLong { max });
    }
    for c in text.chars() {
        if is_bidi_control(c) {
            return Err(TextError::BidiControl(c));
        }
        if is_zero_width(c) {
            return Err(TextError::ZeroWidth(c));
        }
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            return Err(TextError::Control);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_variation_selectors_and_ordinary_text_pass() {
        for ok in [
            "渡邉 太郎",
            // 葛 with the IVS selector of the Adobe-Japan1 collection (U+E0100).
            "葛\u{E0100}飾 花子",
            // A standardized variation sequence (U+FE00).
            "辻\u{FE00}",
            "Sakura Clinic (さくら内科)",
            "",
        ] {
            assert_eq!(check_short_text(ok, 50), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn every_bidi_control_is_refused() {
        let bidi = ('\u{202A}'..='\u{202E}')
            .chain('\u{2066}'..='\u{2069}')
            .chain(['\u{200E}', '\u{200F}', '\u{061C}']);
        let mut n = 0;
        for c in bidi {
            let text = format!("invoice{c}fdp.exe");
            assert_eq!(check_short_text(&text, 50), Err(TextError::BidiControl(c)));
            n += 1;
        }
        assert_eq!(n, 12);
    }

    #[test]
    fn every_zero_width_character_is_refused() {
        for c in ['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}'] {
            let text = format!("山田{c}太郎");
            let refusal = check_short_text(&text, 50);
            assert_eq!(refusal, Err(TextError::ZeroWidth(c)));
            assert!(refusal.is_err_and(TextError::is_invisible));
        }
    }

    #[test]
    fn controls_and_length() {
        assert_eq!(check_short_text("a\nb", 10), Err(TextError::Control));
        assert_eq!(check_short_text("a\u{2028}b", 10), Err(TextError::Control));
        assert_eq!(check_short_text("a\u{85}b", 10), Err(TextError::Control));
        assert_eq!(
            check_short_text("あいう", 2),
            Err(TextError::TooLong { max: 2 })
        );
        assert!(!TextError::Control.is_invisible());
    }

    #[test]
    fn messages_name_the_character_in_both_languages() {
        let e = TextError::BidiControl('\u{202E}');
        assert!(e.message_ja().contains("U+202E"));
        assert!(e.message_en().contains("U+202E"));
        assert_eq!(e.code(), "text_bidi_control");
        assert_eq!(TextError::ZeroWidth('\u{FEFF}').code(), "text_zero_width");
    }
}
