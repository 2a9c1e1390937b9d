//! Institution and insurer codes with their check digits (検証番号): 医療機関等コード (10 digits),
//! 保険者番号 (8 digits, or 6 for 国民健康保険) and 公費負担者番号 (8 digits). Parsing checks
//! length, digits, prefecture and check digit, so a mistyped code is caught at the form, before
//! it reaches the confirmation backend.
//!
//! The check digit rule (the 保険者番号設定要領 of the health ministry, as quoted by the pages
//! cited in the tests) is a modulus-10 scheme with weights 2 and 1:
//! 1. multiply the digits before the check digit by 2, 1, 2, 1, … **starting from the last of
//!    them** (the rightmost digit gets 2);
//! 2. add the products, a two-digit product counting as the sum of its two digits;
//! 3. the check digit is 10 minus the last digit of that sum, or 0 when the last digit is 0.
//!
//! That is the Luhn scheme. For 保険者番号 and 公費負担者番号 it runs over 法別番号, 都道府県番号
//! and 保険者別番号 (7 digits; 5 for 国保). For 医療機関等コード it runs over **all nine digits
//! before the check digit**: 都道府県番号, 点数表番号 and the first six digits of the
//! 医療機関コード, not over the six digits of the 医療機関コード alone. The seven-digit
//! 医療機関コード's check digit is 「2桁の都道府県番号および1桁の点数表番号と合わせて算出」
//! (Wikipedia, 処方箋発行医療機関コード), and only the nine-digit reading matches published codes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a code was refused. Each variant says what to fix; see [`CodeError::message_ja`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("wrong length: expected {expected} digits, found {found}")]
    WrongLength {
        expected: &'static str,
        found: usize,
    },
    /// Full-width digits (０–９) are refused with their own error so the form can offer
    /// [`normalize_digits`] instead of a vague "invalid".
    #[error("full-width digit at position {position}: use half-width digits 0-9")]
    FullWidthDigit { position: usize },
    #[error("not a digit at position {position}: {found:?}")]
    NotDigit { position: usize, found: char },
    #[error("prefecture number {found:02} is not 01-47")]
    BadPrefecture { found: u8 },
    #[error("score table number {found} is not one of 1 (医科), 3 (歯科), 4 (調剤), 6 (訪問看護)")]
    BadScoreTable { found: u8 },
    #[error("check digit is {found}, expected {expected}: the code is mistyped")]
    BadCheckDigit { expected: u8, found: u8 },
}

impl CodeError {
    /// The message for a patient or staff member, in Japanese.
    pub fn message_ja(&self) -> String {
        match self {
            CodeError::WrongLength { expected, found } => {
                format!("桁数が違います（{expected}桁のところ{found}桁）。番号を確かめてください。")
            }
            CodeError::FullWidthDigit { position } => {
                format!(
                    "{}文字目が全角数字です。半角数字で入力してください。",
                    position + 1
                )
            }
            CodeError::NotDigit { position, .. } => {
                format!(
                    "{}文字目が数字ではありません。数字だけを入力してください。",
                    position + 1
                )
            }
            CodeError::BadPrefecture { found } => {
                format!(
                    "都道府県番号「{found:02}」は01〜47の範囲にありません。番号を確かめてください。"
                )
            }
            CodeError::BadScoreTable { found } => format!(
                "点数表番号「{found}」は使えません（1 医科・3 歯科・4 調剤・6 訪問看護）。番号を確かめてください。"
            ),
            CodeError::BadCheckDigit { .. } => {
                "検証番号（最後の1桁）が合いません。入力の誤りがないか確かめてください。".to_owned()
            }
        }
    }

    /// The message for a patient or staff member, in English.
    pub fn message_en(&self) -> String {
        match self {
            CodeError::WrongLength { expected, found } => {
                format!("Wrong number of digits ({found}, expected {expected}). Please check the number.")
            }
            CodeError::FullWidthDigit { position } => format!(
                "Character {} is a full-width digit. Please type half-width digits.",
                position + 1
            ),
            CodeError::NotDigit { position, .. } => {
                format!("Character {} is not a digit. Please type digits only.", position + 1)
            }
            CodeError::BadPrefecture { found } => format!(
                "Prefecture number {found:02} is not between 01 and 47. Please check the number."
            ),
            CodeError::BadScoreTable { found } => format!(
                "Score table number {found} is not used (1 medical, 3 dental, 4 pharmacy, 6 home nursing). Please check the number."
            ),
            CodeError::BadCheckDigit { .. } => {
                "The check digit (the last digit) does not match. Please check for a typing mistake.".to_owned()
            }
        }
    }
}

/// Maps full-width digits ０–９ to ASCII 0–9 and leaves every other character alone, for input
/// forms where a Japanese IME produced full-width digits. Parsing itself never does this
/// silently.
pub fn normalize_digits(input: &str) -> String {
    input
        .chars()
        .map(|c| match c {
            '０'..='９' => {
                char::from_u32(u32::from(c) - u32::from('０') + u32::from('0')).unwrap_or(c)
            }
            _ => c,
        })
        .collect()
}

/// The check digit of `digits` (each 0–9): weights 2, 1, 2, … from the rightmost digit, a
/// two-digit product counted as the sum of its digits, 10 minus the last digit of the total.
pub fn check_digit(digits: &[u8]) -> u8 {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let product = u32::from(d) * if i % 2 == 0 { 2 } else { 1 };
            product / 10 + product % 10
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// The 47 prefectures by 都道府県番号 (JIS X 0401), 01 = 北海道 … 47 = 沖縄県.
const PREFECTURES: [&str; 47] = [
    "北海道",
    "青森県",
    "岩手県",
    "宮城県",
    "秋田県",
    "山形県",
    "福島県",
    "茨城県",
    "栃木県",
    "群馬県",
    "埼玉県",
    "千葉県",
    "東京都",
    "神奈川県",
    "新潟県",
    "富山県",
    "石川県",
    "福井県",
    "山梨県",
    "長野県",
    "岐阜県",
    "静岡県",
    "愛知県",
    "三重県",
    "滋賀県",
    "京都府",
    "大阪府",
    "兵庫県",
    "奈良県",
    "和歌山県",
    "鳥取県",
    "島根県",
    "岡山県",
    "広島県",
    "山口県",
    "徳島県",
    "香川県",
    "愛媛県",
    "高知県",
    "福岡県",
    "佐賀県",
    "長崎県",
    "熊本県",
    "大分県",
    "宮崎県",
    "鹿児島県",
    "沖縄県",
];

/// The prefecture's name for a 都道府県番号 1–47.
pub fn prefecture_name(number: u8) -> Option<&'static str> {
    PREFECTURES
        .get(usize::from(number).checked_sub(1)?)
        .copied()
}

/// Checks that `s` is ASCII digits only, of one of the allowed lengths, and returns the digits.
fn digits_of(s: &str, lengths: &[usize], expected: &'static str) -> Result<Vec<u8>, CodeError> {
    let mut digits = Vec::with_capacity(s.len());
    for (position, c) in s.chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c as u8 - b'0'),
            '０'..='９' => return Err(CodeError::FullWidthDigit { position }),
            _ => return Err(CodeError::NotDigit { position, found: c }),
        }
    }
    if !lengths.contains(&digits.len()) {
        return Err(CodeError::WrongLength {
            expected,
            found: digits.len(),
        });
    }
    Ok(digits)
}

fn two_digits(d: &[u8]) -> u8 {
    d.iter().fold(0, |n, &x| n * 10 + x)
}

fn check_prefecture(d: &[u8]) -> Result<u8, CodeError> {
    let number = two_digits(d);
    if (1..=47).contains(&number) {
        Ok(number)
    } else {
        Err(CodeError::BadPrefecture { found: number })
    }
}

/// Verifies the last digit of `digits` against the rest.
fn verify_check_digit(digits: &[u8]) -> Result<(), CodeError> {
    let Some((&found, body)) = digits.split_last() else {
        return Err(CodeError::WrongLength {
            expected: "1+",
            found: 0,
        });
    };
    let expected = check_digit(body);
    if found == expected {
        Ok(())
    } else {
        Err(CodeError::BadCheckDigit { expected, found })
    }
}

/// Appends the check digit to a digit-only prefix.
fn append_check_digit(
    prefix: &str,
    lengths: &[usize],
    expected: &'static str,
) -> Result<String, CodeError> {
    let digits = digits_of(prefix, lengths, expected)?;
    Ok(format!("{prefix}{}", check_digit(&digits)))
}

/// 点数表番号: which fee schedule the institution bills under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreTable {
    /// 1 医科
    Medical,
    /// 3 歯科
    Dental,
    /// 4 調剤 (保険薬局)
    Pharmacy,
    /// 6 訪問看護 (訪問看護ステーション)
    HomeNursing,
}

impl ScoreTable {
    pub const fn number(self) -> u8 {
        match self {
            ScoreTable::Medical => 1,
            ScoreTable::Dental => 3,
            ScoreTable::Pharmacy => 4,
            ScoreTable::HomeNursing => 6,
        }
    }

    pub const fn from_number(n: u8) -> Option<Self> {
        match n {
            1 => Some(ScoreTable::Medical),
            3 => Some(ScoreTable::Dental),
            4 => Some(ScoreTable::Pharmacy),
            6 => Some(ScoreTable::HomeNursing),
            _ => None,
        }
    }
}

/// 医療機関等コード: 都道府県番号 (2) + 点数表番号 (1) + 医療機関コード (7, the last digit the
/// 検証番号 over all nine digits before it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstitutionCode(String);

impl InstitutionCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// 都道府県番号, 1–47.
    pub fn prefecture(&self) -> u8 {
        two_digits(&self.digits()[0..2])
    }

    pub fn score_table(&self) -> ScoreTable {
        // Validated on construction; Medical is never reached as a fallback.
        ScoreTable::from_number(self.digits()[2]).unwrap_or(ScoreTable::Medical)
    }

    /// The seven-digit 医療機関コード as printed on receipts.
    pub fn institution_number(&self) -> &str {
        &self.0[3..]
    }

    /// Builds a valid code from its first nine digits, for test and demo data.
    pub fn with_check_digit(prefix: &str) -> Result<Self, CodeError> {
        append_check_digit(prefix, &[9], "9")?.parse()
    }

    fn digits(&self) -> Vec<u8> {
        self.0.bytes().map(|b| b - b'0').collect()
    }
}

impl FromStr for InstitutionCode {
    type Err = CodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = digits_of(s, &[10], "10")?;
        check_prefecture(&digits[0..2])?;
        if ScoreTable::from_number(digits[2]).is_none() {
            return Err(CodeError::BadScoreTable { found: digits[2] });
        }
        verify_check_digit(&digits)?;
        Ok(InstitutionCode(s.to_owned()))
    }
}

/// 保険者番号: 法別番号 (2) + 都道府県番号 (2) + 保険者別番号 (3) + 検証番号 (1), or for
/// 国民健康保険 (市町村 and 国保組合) six digits without 法別番号.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InsurerNumber(String);

impl InsurerNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Six digits: 国民健康保険.
    pub fn is_national_health_insurance(&self) -> bool {
        self.0.len() == 6
    }

    /// 法別番号, `None` for the six-digit 国保 numbers.
    pub fn law_number(&self) -> Option<&str> {
        (self.0.len() == 8).then(|| &self.0[0..2])
    }

    /// 都道府県番号, 1–47.
    pub fn prefecture(&self) -> u8 {
        let at = if self.is_national_health_insurance() {
            0
        } else {
            2
        };
        self.0[at..at + 2].parse().unwrap_or(0)
    }

    /// Builds a valid number from its first seven (or five, for 国保) digits.
    pub fn with_check_digit(prefix: &str) -> Result<Self, CodeError> {
        append_check_digit(prefix, &[5, 7], "5 or 7")?.parse()
    }
}

impl FromStr for InsurerNumber {
    type Err = CodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = digits_of(s, &[6, 8], "6 or 8")?;
        let at = if digits.len() == 6 { 0 } else { 2 };
        check_prefecture(&digits[at..at + 2])?;
        verify_check_digit(&digits)?;
        Ok(InsurerNumber(s.to_owned()))
    }
}

/// 公費負担者番号: 法別番号 (2) + 都道府県番号 (2) + 実施機関番号 (3) + 検証番号 (1), the same
/// check digit rule as 保険者番号 (e.g. 12 生活保護 for 医療扶助).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicPayerNumber(String);

impl PublicPayerNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// 法別番号, e.g. "12" for 生活保護.
    pub fn law_number(&self) -> &str {
        &self.0[0..2]
    }

    pub fn prefecture(&self) -> u8 {
        self.0[2..4].parse().unwrap_or(0)
    }

    /// Builds a valid number from its first seven digits.
    pub fn with_check_digit(prefix: &str) -> Result<Self, CodeError> {
        append_check_digit(prefix, &[7], "7")?.parse()
    }
}

impl FromStr for PublicPayerNumber {
    type Err = CodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = digits_of(s, &[8], "8")?;
        check_prefecture(&digits[2..4])?;
        verify_check_digit(&digits)?;
        Ok(PublicPayerNumber(s.to_owned()))
    }
}

/// `TryFrom<&str>`, `TryFrom<String>`, `Display` and `Into<String>` for the code types.
macro_rules! string_code {
    ($t:ty) => {
        impl TryFrom<&str> for $t {
            type Error = CodeError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl TryFrom<String> for $t {
            type Error = CodeError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl From<$t> for String {
            fn from(code: $t) -> String {
                code.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_code!(InstitutionCode);
string_code!(InsurerNumber);
string_code!(PublicPayerNumber);

/// A fictional 東京都 医科 clinic for demos and tests: 13 (東京都) + 1 (医科) + 99 (a 郡市区番号
/// chosen to be unlikely) + 9990 + check digit.
pub const DEMO_INSTITUTION_CODE: &str = "1319999908";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Real codes, published:
    /// - 0110113719: the example of ja.wikipedia 「処方箋発行医療機関コード」 (北海道, 医科).
    /// - 0110112489, 0110113982, 0110117702, 0110117975, 0110118015, 0110118064, 0110118494,
    ///   0110118700, 0110119013: 北海道 医科 institutions in 「医療扶助のオンライン資格確認
    ///   参加医療機関・薬局リスト (2024年3月11日 現在)」, reproduced in the project's seed 003
    ///   (the 令和5年度 report on 医療扶助のオンライン資格確認).
    /// - 3618010015: 徳島大学病院, 徳島県 郡市区 80 番号 1001 検証番号 5 per the 「全医療機関一覧表」
    ///   as quoted in the Q助6 manual (myozai119.jp), with 点数表 1 (医科).
    const REAL_INSTITUTION_CODES: [&str; 11] = [
        "0110113719",
        "0110112489",
        "0110113982",
        "0110117702",
        "0110117975",
        "0110118015",
        "0110118064",
        "0110118494",
        "0110118700",
        "0110119013",
        "3618010015",
    ];

    #[test]
    fn real_institution_codes_pass() {
        for code in REAL_INSTITUTION_CODES {
            let parsed: InstitutionCode = code.parse().unwrap_or_else(|e| panic!("{code}: {e}"));
            assert_eq!(parsed.as_str(), code);
            assert_eq!(parsed.score_table(), ScoreTable::Medical);
        }
        let tokushima: InstitutionCode = "3618010015".parse().expect("real code");
        assert_eq!(tokushima.prefecture(), 36);
        assert_eq!(prefecture_name(tokushima.prefecture()), Some("徳島県"));
        assert_eq!(tokushima.institution_number(), "8010015");
    }

    #[test]
    fn the_check_digit_covers_prefecture_and_table_too() {
        // Over the six-digit body alone the Wikipedia example would need 2, not 9.
        assert_eq!(check_digit(&[0, 1, 1, 3, 7, 1]), 2);
        assert_eq!(check_digit(&[0, 1, 1, 0, 1, 1, 3, 7, 1]), 9);
        // The same seven digits in another prefecture or table need another check digit.
        assert!("0210113719".parse::<InstitutionCode>().is_err());
        assert!("0130113719".parse::<InstitutionCode>().is_err());
    }

    #[test]
    fn demo_code_is_valid_tokyo_medical() {
        let demo: InstitutionCode = DEMO_INSTITUTION_CODE
            .parse()
            .expect("demo code must be valid");
        assert_eq!(demo.prefecture(), 13);
        assert_eq!(demo.score_table(), ScoreTable::Medical);
        assert_eq!(InstitutionCode::with_check_digit("131999990"), Ok(demo));
    }

    /// Real numbers, published:
    /// - 01040013: 全国健康保険協会 宮城支部 (kyoukaikenpo.or.jp 宮城支部 「保険証記号番号変換」).
    /// - 01130012: 全国健康保険協会 東京支部, as printed on its cards (passes the rule; no page
    ///   with it was found in the search index, so it stands with the two above).
    /// - 33120015: 千葉県警察 共済組合, the worked example of the 保険者番号 検証番号 page at
    ///   www5f.biglobe.ne.jp/~h-it (mc0124).
    const REAL_INSURER_NUMBERS: [&str; 3] = ["01040013", "01130012", "33120015"];

    #[test]
    fn real_insurer_numbers_pass() {
        for number in REAL_INSURER_NUMBERS {
            let parsed: InsurerNumber = number.parse().unwrap_or_else(|e| panic!("{number}: {e}"));
            assert!(!parsed.is_national_health_insurance());
        }
        let tokyo: InsurerNumber = "01130012".parse().expect("real number");
        assert_eq!(tokyo.law_number(), Some("01"));
        assert_eq!(tokyo.prefecture(), 13);
        // Worked example step by step: 3 3 1 2 0 0 1 × 2 1 2 1 2 1 2 = 15, 10 - 5 = 5.
        assert_eq!(check_digit(&[3, 3, 1, 2, 0, 0, 1]), 5);
    }

    #[test]
    fn national_health_insurance_has_six_digits() {
        let kokuho = InsurerNumber::with_check_digit("13101").expect("valid prefix");
        assert_eq!(kokuho.as_str(), "131011");
        assert!(kokuho.is_national_health_insurance());
        assert_eq!(kokuho.law_number(), None);
        assert_eq!(kokuho.prefecture(), 13);
        assert_eq!(
            "131012".parse::<InsurerNumber>(),
            Err(CodeError::BadCheckDigit {
                expected: 1,
                found: 2
            })
        );
        assert!(matches!(
            "4810013".parse::<InsurerNumber>(),
            Err(CodeError::WrongLength { found: 7, .. })
        ));
    }

    #[test]
    fn public_payer_number_uses_the_same_rule() {
        // 54016027: 特定医療費 (指定難病), 北海道 — the worked example of nanbyo.ukure.com/kiten.
        let payer: PublicPayerNumber = "54016027".parse().expect("real number");
        assert_eq!(payer.law_number(), "54");
        assert_eq!(payer.prefecture(), 1);
        let welfare = PublicPayerNumber::with_check_digit("1213001").expect("valid prefix");
        assert_eq!(welfare.law_number(), "12");
        assert!("54016028".parse::<PublicPayerNumber>().is_err());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(
            "011011371".parse::<InstitutionCode>(),
            Err(CodeError::WrongLength {
                expected: "10",
                found: 9
            })
        );
        assert_eq!(
            "01101137１9".parse::<InstitutionCode>(),
            Err(CodeError::FullWidthDigit { position: 8 })
        );
        assert_eq!(
            "0110-13719".parse::<InstitutionCode>(),
            Err(CodeError::NotDigit {
                position: 4,
                found: '-'
            })
        );
        assert_eq!(
            "4810113719".parse::<InstitutionCode>(),
            Err(CodeError::BadPrefecture { found: 48 })
        );
        assert_eq!(
            "0010113719".parse::<InstitutionCode>(),
            Err(CodeError::BadPrefecture { found: 0 })
        );
        assert_eq!(
            "0120113719".parse::<InstitutionCode>(),
            Err(CodeError::BadScoreTable { found: 2 })
        );
        assert_eq!(
            "0110113718".parse::<InstitutionCode>(),
            Err(CodeError::BadCheckDigit {
                expected: 9,
                found: 8
            })
        );
        assert_eq!(
            "".parse::<InstitutionCode>(),
            Err(CodeError::WrongLength {
                expected: "10",
                found: 0
            })
        );
        for e in [
            CodeError::WrongLength {
                expected: "8",
                found: 3,
            },
            CodeError::FullWidthDigit { position: 0 },
            CodeError::NotDigit {
                position: 0,
                found: 'a',
            },
            CodeError::BadPrefecture { found: 99 },
            CodeError::BadScoreTable { found: 9 },
            CodeError::BadCheckDigit {
                expected: 1,
                found: 2,
            },
        ] {
            assert!(!e.message_ja().is_empty() && !e.message_en().is_empty());
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn full_width_input_is_normalised_only_on_request() {
        let typed = "０１１０１１３７１９";
        assert!(matches!(
            typed.parse::<InstitutionCode>(),
            Err(CodeError::FullWidthDigit { position: 0 })
        ));
        assert_eq!(normalize_digits(typed), "0110113719");
        assert!(normalize_digits(typed).parse::<InstitutionCode>().is_ok());
        assert_eq!(normalize_digits("ab－１"), "ab－1");
    }

    #[test]
    fn serde_is_the_plain_string_and_validates() {
        let code: InstitutionCode = "0110113719".parse().expect("valid");
        assert_eq!(
            serde_json::to_string(&code).expect("serialise"),
            "\"0110113719\""
        );
        let back: InstitutionCode = serde_json::from_str("\"0110113719\"").expect("valid");
        assert_eq!(back, code);
        assert!(serde_json::from_str::<InstitutionCode>("\"0110113718\"").is_err());
        let insurer: InsurerNumber = serde_json::from_str("\"01130012\"").expect("valid");
        assert_eq!(String::from(insurer), "01130012");
        assert!(serde_json::from_str::<PublicPayerNumber>("12").is_err());
        assert_eq!(
            InstitutionCode::try_from("3618010015").map(|c| c.to_string()),
            Ok("3618010015".into())
        );
    }

    #[test]
    fn prefecture_names() {
        assert_eq!(prefecture_name(1), Some("北海道"));
        assert_eq!(prefecture_name(13), Some("東京都"));
        assert_eq!(prefecture_name(47), Some("沖縄県"));
        assert_eq!(prefecture_name(0), None);
        assert_eq!(prefecture_name(48), None);
    }

    proptest! {
        #[test]
        fn built_codes_parse_and_any_single_digit_change_is_caught(
            pref in 1u8..=47,
            table in proptest::sample::select(vec![1u8, 3, 4, 6]),
            body in 0u32..1_000_000,
            position in 0usize..10,
            delta in 1u8..10,
        ) {
            let prefix = format!("{pref:02}{table}{body:06}");
            let code = InstitutionCode::with_check_digit(&prefix).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(code.prefecture(), pref);
            prop_assert_eq!(code.score_table().number(), table);
            prop_assert_eq!(code.as_str().parse::<InstitutionCode>(), Ok(code.clone()));
            // The Luhn scheme detects every single-digit error.
            let mut bytes = code.as_str().as_bytes().to_vec();
            bytes[position] = b'0' + (bytes[position] - b'0' + delta) % 10;
            let changed = String::from_utf8(bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(changed.parse::<InstitutionCode>().is_err());
        }

        #[test]
        fn insurer_numbers_round_trip(law in 1u8..100, pref in 1u8..=47, n in 0u16..1000, six in any::<bool>()) {
            let prefix = if six { format!("{pref:02}{n:03}") } else { format!("{law:02}{pref:02}{n:03}") };
            let number = InsurerNumber::with_check_digit(&prefix).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(number.prefecture(), pref);
            prop_assert_eq!(number.is_national_health_insurance(), six);
            let json = serde_json::to_string(&number).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back: InsurerNumber = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back, number);
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,12}") {
            let _ = s.parse::<InstitutionCode>();
            let _ = s.parse::<InsurerNumber>();
            let _ = s.parse::<PublicPayerNumber>();
            let _ = normalize_digits(&s);
        }
    }
}
