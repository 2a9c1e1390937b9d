//! Institution and insurer codes with their check digits (検証番号): 医療機関等コード (10 digits),
//! 保険者番号 (8 digits, or 6 for 国民健康保険) and 公費負担者番号 (8 digits). Parsing checks
//! length, digits, prefecture and check digit, so a mistyped code is caught at the form, before
//! it reaches the confirmation backend.
//!
//! Every check digit here is a modulus-10 scheme with weights 2 and 1 (the 保険者番号設定要領 of
//! the health ministry, as quoted by the pages cited in the tests):
//! 1. multiply the digits it covers by 2, 1, 2, 1, … **starting from the last of them** (the
//!    rightmost digit gets 2);
//! 2. add the products, a two-digit product counting as the sum of its two digits;
//! 3. the check digit is 10 minus the last digit of that sum, or 0 when the last digit is 0.
//!
//! That is the Luhn scheme. For 保険者番号 and 公費負担者番号 it covers 法別番号, 都道府県番号 and
//! 保険者別番号 (7 digits; 5 for 国保). For 医療機関等コード **which digits it covers depends on
//! the prefecture** ([`rule`]): 埼玉・千葉・東京・神奈川 use the six digits 郡市区番号 +
//! 医療機関番号, the other 43 prefectures all nine digits before it. This was established from
//! the 地方厚生局's published lists, not from one formula; `domain/README.md` has the counts per
//! prefecture and score table and the sources.

pub mod rule;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use rule::{CheckDigitRule, InstitutionRule, institution_rule};

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
    /// The last digit is not what the rule gives: the code is mistyped.
    #[error("check digit is {found}, expected {expected} (computed from {rule})")]
    BadCheckDigit {
        /// The check digit as typed.
        found: u8,
        /// The check digit `rule` gives.
        expected: u8,
        /// The rule applied: for a 医療機関等コード, its prefecture's rule for its score table.
        rule: CheckDigitRule,
        /// Where that prefecture's rule for that score table is not established, so a code
        /// satisfying either 医療機関等コード rule is accepted: the other rule and the digit it
        /// gives. `None` otherwise.
        alternative: Option<(CheckDigitRule, u8)>,
        /// 医療機関等コード only: its 都道府県番号 and 点数表, whose rule was applied.
        institution: Option<(u8, ScoreTable)>,
    },
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
            CodeError::BadCheckDigit {
                found,
                expected,
                rule,
                alternative,
                institution,
            } => {
                let whose = match institution {
                    Some((prefecture, table)) => format!(
                        "{}の{}のコードは",
                        prefecture_name(*prefecture).unwrap_or("この都道府県"),
                        table.name_ja()
                    ),
                    None => "この番号は".to_owned(),
                };
                match alternative {
                    None => format!(
                        "検証番号（最後の1桁）が合いません。{whose}{}から計算し、検証番号は{expected}になります（入力は{found}）。入力の誤りがないか確かめてください。",
                        rule.digits_ja()
                    ),
                    Some((other, other_expected)) => format!(
                        "検証番号（最後の1桁）が合いません。{whose}{}から計算すると検証番号は{expected}、{}から計算すると{other_expected}になります（入力は{found}）。この組み合わせの計算方法は公表された一覧で確かめられていないため、どちらでも受け付けます。入力の誤りがないか確かめてください。",
                        rule.digits_ja(),
                        other.digits_ja()
                    ),
                }
            }
        }
    }

    /// The message for a patient or staff member, in English.
    pub fn message_en(&self) -> String {
        match self {
            CodeError::WrongLength { expected, found } => {
                format!(
                    "Wrong number of digits ({found}, expected {expected}). Please check the number."
                )
            }
            CodeError::FullWidthDigit { position } => format!(
                "Character {} is a full-width digit. Please type half-width digits.",
                position + 1
            ),
            CodeError::NotDigit { position, .. } => {
                format!(
                    "Character {} is not a digit. Please type digits only.",
                    position + 1
                )
            }
            CodeError::BadPrefecture { found } => format!(
                "Prefecture number {found:02} is not between 01 and 47. Please check the number."
            ),
            CodeError::BadScoreTable { found } => format!(
                "Score table number {found} is not used (1 medical, 3 dental, 4 pharmacy, 6 home nursing). Please check the number."
            ),
            CodeError::BadCheckDigit {
                found,
                expected,
                rule,
                alternative,
                institution,
            } => {
                let whose = match institution {
                    Some((prefecture, table)) => format!(
                        "For {} {} codes it",
                        prefecture_name_en(*prefecture).unwrap_or("this prefecture's"),
                        table.name_en()
                    ),
                    None => "For this number it".to_owned(),
                };
                match alternative {
                    None => format!(
                        "The check digit (the last digit) does not match. {whose} is computed from {} and is {expected} (you typed {found}). Please check for a typing mistake.",
                        rule.digits_en()
                    ),
                    Some((other, other_expected)) => format!(
                        "The check digit (the last digit) does not match. {whose} is {expected} when computed from {}, or {other_expected} when computed from {} (you typed {found}). Which rule applies here is not confirmed by the published lists, so either is accepted. Please check for a typing mistake.",
                        rule.digits_en(),
                        other.digits_en()
                    ),
                }
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

/// The prefectures' names in English, in the same order.
const PREFECTURES_EN: [&str; 47] = [
    "Hokkaido",
    "Aomori",
    "Iwate",
    "Miyagi",
    "Akita",
    "Yamagata",
    "Fukushima",
    "Ibaraki",
    "Tochigi",
    "Gunma",
    "Saitama",
    "Chiba",
    "Tokyo",
    "Kanagawa",
    "Niigata",
    "Toyama",
    "Ishikawa",
    "Fukui",
    "Yamanashi",
    "Nagano",
    "Gifu",
    "Shizuoka",
    "Aichi",
    "Mie",
    "Shiga",
    "Kyoto",
    "Osaka",
    "Hyogo",
    "Nara",
    "Wakayama",
    "Tottori",
    "Shimane",
    "Okayama",
    "Hiroshima",
    "Yamaguchi",
    "Tokushima",
    "Kagawa",
    "Ehime",
    "Kochi",
    "Fukuoka",
    "Saga",
    "Nagasaki",
    "Kumamoto",
    "Oita",
    "Miyazaki",
    "Kagoshima",
    "Okinawa",
];

/// The prefecture's name for a 都道府県番号 1–47.
pub fn prefecture_name(number: u8) -> Option<&'static str> {
    PREFECTURES
        .get(usize::from(number).checked_sub(1)?)
        .copied()
}

/// The prefecture's name in English for a 都道府県番号 1–47, e.g. "Tokyo".
pub fn prefecture_name_en(number: u8) -> Option<&'static str> {
    PREFECTURES_EN
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

/// Verifies the last digit of `digits` against all the digits before it (保険者番号,
/// 公費負担者番号).
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
        Err(CodeError::BadCheckDigit {
            found,
            expected,
            rule: CheckDigitRule::Preceding {
                digits: u8::try_from(body.len()).unwrap_or(u8::MAX),
            },
            alternative: None,
            institution: None,
        })
    }
}

/// Verifies the check digit of a ten-digit 医療機関等コード under its prefecture's rule for its
/// score table ([`institution_rule`]); where that rule is not established, either rule passes.
fn verify_institution_check_digit(
    digits: &[u8],
    prefecture: u8,
    table: ScoreTable,
) -> Result<(), CodeError> {
    let (Some(body), Some(&found)) = (digits.get(0..9), digits.get(9)) else {
        return Err(CodeError::WrongLength {
            expected: "10",
            found: digits.len(),
        });
    };
    let InstitutionRule { rule, established } = institution_rule(prefecture, table);
    // `body` has nine digits, so both rules give a digit.
    let expected = rule.check_digit_of(body).unwrap_or(0);
    if found == expected {
        return Ok(());
    }
    let alternative = if established {
        None
    } else {
        let other = rule.other();
        let other_expected = other.check_digit_of(body).unwrap_or(0);
        if found == other_expected {
            return Ok(());
        }
        // Where 都道府県番号 and 点数表番号 add a multiple of ten, both rules give the same
        // digit and there is nothing else to name.
        (other_expected != expected).then_some((other, other_expected))
    };
    Err(CodeError::BadCheckDigit {
        found,
        expected,
        rule,
        alternative,
        institution: Some((prefecture, table)),
    })
}

/// Appends the check digit over all of a digit-only prefix (保険者番号, 公費負担者番号).
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

    /// Every score table, in 点数表番号 order.
    pub const ALL: [ScoreTable; 4] = [
        ScoreTable::Medical,
        ScoreTable::Dental,
        ScoreTable::Pharmacy,
        ScoreTable::HomeNursing,
    ];

    /// 医科, 歯科, 薬局, 訪問看護.
    pub const fn name_ja(self) -> &'static str {
        match self {
            ScoreTable::Medical => "医科",
            ScoreTable::Dental => "歯科",
            ScoreTable::Pharmacy => "薬局",
            ScoreTable::HomeNursing => "訪問看護",
        }
    }

    /// medical, dental, pharmacy, home nursing.
    pub const fn name_en(self) -> &'static str {
        match self {
            ScoreTable::Medical => "medical",
            ScoreTable::Dental => "dental",
            ScoreTable::Pharmacy => "pharmacy",
            ScoreTable::HomeNursing => "home nursing",
        }
    }
}

/// 医療機関等コード: 都道府県番号 (2) + 点数表番号 (1) + 医療機関コード (7: 郡市区番号 (2) +
/// 医療機関番号 (4) + 検証番号 (1), the check digit under the prefecture's rule, see [`rule`]).
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

    /// The 検証番号 rule of this code's prefecture and score table.
    pub fn check_rule(&self) -> InstitutionRule {
        institution_rule(self.prefecture(), self.score_table())
    }

    /// Builds a valid code from its first nine digits (都道府県番号, 点数表番号, 郡市区番号,
    /// 医療機関番号), with the check digit of the prefecture's rule for the score table
    /// ([`institution_rule`]); for test and demo data. Refuses a prefix of another length, with
    /// a non-digit, or with a bad prefecture or score table.
    pub fn with_check_digit(prefix: &str) -> Result<Self, CodeError> {
        let digits = digits_of(prefix, &[9], "9")?;
        let prefecture = check_prefecture(&digits[0..2])?;
        let table = ScoreTable::from_number(digits[2])
            .ok_or(CodeError::BadScoreTable { found: digits[2] })?;
        let rule = institution_rule(prefecture, table).rule;
        let check = rule.check_digit_of(&digits).unwrap_or(0);
        format!("{prefix}{check}").parse()
    }

    fn digits(&self) -> Vec<u8> {
        self.0.bytes().map(|b| b - b'0').collect()
    }
}

impl FromStr for InstitutionCode {
    type Err = CodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = digits_of(s, &[10], "10")?;
        let prefecture = check_prefecture(&digits[0..2])?;
        let table = ScoreTable::from_number(digits[2])
            .ok_or(CodeError::BadScoreTable { found: digits[2] })?;
        verify_institution_check_digit(&digits, prefecture, table)?;
        Ok(InstitutionCode(s.to_owned()))
    }
}

/// 保険者番号: 法別番号 (2) + 都道府県番号 (2) + 保険者別番号 (3) + 検証番号 (1), or for
/// 国民健康保険 (市町村 and 国保組合) six digits without 法別番号.
///
/// A six-digit 国保 number is also written zero-padded to eight digits (`00131011` for
/// `131011`: the 特定健診 data standard pads numbers shorter than eight digits with leading
/// zeros, and レセプト records do the same). 法別番号 `00` is never assigned, so an eight-digit
/// number starting `00` is read as that 国保 number and kept in its canonical six-digit form;
/// [`InsurerNumber::eight_digit_form`] gives the padded form back.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InsurerNumber(String);

impl InsurerNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Six digits: 国民健康保険 (also when it was written zero-padded to eight).
    pub fn is_national_health_insurance(&self) -> bool {
        self.0.len() == 6
    }

    /// The number as eight digits: a 国保 number zero-padded (`00131011`), any other unchanged.
    pub fn eight_digit_form(&self) -> String {
        if self.is_national_health_insurance() {
            format!("00{}", self.0)
        } else {
            self.0.clone()
        }
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
        // 法別番号 00 does not exist: eight digits starting 00 are a zero-padded 国保 number.
        let (digits, canonical) = match digits.as_slice() {
            [0, 0, rest @ ..] if rest.len() == 6 => (rest, &s[2..]),
            all => (all, s),
        };
        let at = if digits.len() == 6 { 0 } else { 2 };
        check_prefecture(&digits[at..at + 2])?;
        verify_check_digit(digits)?;
        Ok(InsurerNumber(canonical.to_owned()))
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
/// chosen to be unlikely) + 9990 + check digit 5, computed as 東京都 does, over the six digits
/// 郡市区番号 + 医療機関番号 (`999990`).
pub const DEMO_INSTITUTION_CODE: &str = "1319999905";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The two 医療機関等コード rules written out independently of [`rule`], from the evidence
    /// in `domain/README.md`: the reference the generated cases are judged by.
    fn reference_accepts(code: &[u8]) -> bool {
        let pref = code[0] * 10 + code[1];
        let table = code[2];
        if !(1..=47).contains(&pref) || ![1, 3, 4, 6].contains(&table) {
            return false;
        }
        let nine = check_digit(&code[0..9]) == code[9];
        let six = check_digit(&code[3..9]) == code[9];
        let six_prefecture = (11..=14).contains(&pref);
        let established = match table {
            1 => true,
            3 => [1, 11, 13, 14, 23, 27, 28, 29, 30].contains(&pref),
            4 => [1, 11, 12, 13, 14, 23, 27, 34, 40, 47].contains(&pref),
            _ => false,
        };
        match (established, six_prefecture) {
            (true, true) => six,
            (true, false) => nine,
            (false, _) => six || nine,
        }
    }

    #[test]
    fn the_rule_differs_by_prefecture() {
        // 東京大学医学部附属病院 (field sample): over six digits 881479 → 0; over nine → 3.
        assert_eq!(check_digit(&[8, 8, 1, 4, 7, 9]), 0);
        assert_eq!(check_digit(&[1, 3, 1, 8, 8, 1, 4, 7, 9]), 3);
        assert!("1318814790".parse::<InstitutionCode>().is_ok());
        assert!("1318814793".parse::<InstitutionCode>().is_err());
        // 北海道: the ja.wikipedia example; over the six digits alone it would need 2, not 9.
        assert_eq!(check_digit(&[0, 1, 1, 3, 7, 1]), 2);
        assert_eq!(check_digit(&[0, 1, 1, 0, 1, 1, 3, 7, 1]), 9);
        assert!("0110113719".parse::<InstitutionCode>().is_ok());
        assert!("0110113712".parse::<InstitutionCode>().is_err());
        // Under the nine-digit rule the same seven digits in another prefecture or table need
        // another check digit; under the six-digit rule they do not.
        assert!("0210113719".parse::<InstitutionCode>().is_err());
        assert!("0130113719".parse::<InstitutionCode>().is_err());
        assert!("1418814790".parse::<InstitutionCode>().is_ok());
    }

    #[test]
    fn rule_table() {
        for pref in 1..=47u8 {
            let medical = institution_rule(pref, ScoreTable::Medical);
            assert!(medical.established, "{pref}");
            let six = [11, 12, 13, 14].contains(&pref);
            assert_eq!(
                medical.rule,
                if six {
                    CheckDigitRule::InstitutionSix
                } else {
                    CheckDigitRule::InstitutionNine
                }
            );
            for table in ScoreTable::ALL {
                assert_eq!(institution_rule(pref, table).rule, medical.rule);
            }
            assert!(!institution_rule(pref, ScoreTable::HomeNursing).established);
        }
        assert!(institution_rule(27, ScoreTable::Dental).established);
        assert!(institution_rule(13, ScoreTable::Dental).established);
        assert!(institution_rule(13, ScoreTable::Pharmacy).established);
        assert!(!institution_rule(2, ScoreTable::Dental).established);
        assert!(!institution_rule(15, ScoreTable::Pharmacy).established);
        let demo: InstitutionCode = DEMO_INSTITUTION_CODE.parse().expect("demo");
        assert_eq!(demo.check_rule(), institution_rule(13, ScoreTable::Medical));
    }

    #[test]
    fn demo_code_is_valid_tokyo_medical() {
        let demo: InstitutionCode = DEMO_INSTITUTION_CODE
            .parse()
            .expect("demo code must be valid");
        assert_eq!(demo.prefecture(), 13);
        assert_eq!(demo.score_table(), ScoreTable::Medical);
        assert_eq!(InstitutionCode::with_check_digit("131999990"), Ok(demo));
        // The old demo code had the nine-digit check digit, which 東京都 does not use.
        assert!("1319999908".parse::<InstitutionCode>().is_err());
    }

    #[test]
    fn with_check_digit_uses_the_prefectures_rule() {
        assert_eq!(
            InstitutionCode::with_check_digit("131881479").map(String::from),
            Ok("1318814790".to_owned())
        );
        assert_eq!(
            InstitutionCode::with_check_digit("271990024").map(String::from),
            Ok("2719900249".to_owned())
        );
        // Not established (東京都 歯科): built with 東京都's six-digit rule.
        assert_eq!(
            InstitutionCode::with_check_digit("133881479").map(String::from),
            Ok("1338814790".to_owned())
        );
        assert_eq!(
            InstitutionCode::with_check_digit("481881479"),
            Err(CodeError::BadPrefecture { found: 48 })
        );
        assert_eq!(
            InstitutionCode::with_check_digit("132881479"),
            Err(CodeError::BadScoreTable { found: 2 })
        );
        assert!(matches!(
            InstitutionCode::with_check_digit("13188147"),
            Err(CodeError::WrongLength { found: 8, .. })
        ));
    }

    #[test]
    fn a_failed_check_names_the_rule_and_the_digit() {
        let tokyo = "1318814791".parse::<InstitutionCode>();
        assert_eq!(
            tokyo,
            Err(CodeError::BadCheckDigit {
                found: 1,
                expected: 0,
                rule: CheckDigitRule::InstitutionSix,
                alternative: None,
                institution: Some((13, ScoreTable::Medical)),
            })
        );
        let e = tokyo.expect_err("refused");
        assert!(
            e.message_ja()
                .contains("東京都の医科のコードは郡市区番号と医療機関番号の6桁から計算し、検証番号は0になります"),
            "{}",
            e.message_ja()
        );
        assert!(
            e.message_en().contains(
                "For Tokyo medical codes it is computed from the six digits of area (郡市区番号) and institution number and is 0"
            ),
            "{}",
            e.message_en()
        );

        let osaka = "2719900240"
            .parse::<InstitutionCode>()
            .expect_err("refused");
        assert_eq!(
            osaka,
            CodeError::BadCheckDigit {
                found: 0,
                expected: 9,
                rule: CheckDigitRule::InstitutionNine,
                alternative: None,
                institution: Some((27, ScoreTable::Medical)),
            }
        );
        assert!(osaka.message_ja().contains(
            "大阪府の医科のコードは都道府県番号・点数表番号・郡市区番号・医療機関番号の9桁から計算し、検証番号は9になります"
        ));

        // 東京都 訪問看護: no published code found, so both rules are named with their digits.
        let body = [1, 3, 6, 8, 8, 1, 4, 7, 9];
        let six = check_digit(&body[3..]);
        let nine = check_digit(&body);
        assert_ne!(six, nine);
        let wrong = (0..10)
            .find(|d| *d != six && *d != nine)
            .expect("a third digit");
        let typed = format!("136881479{wrong}");
        let nursing = typed.parse::<InstitutionCode>().expect_err("refused");
        assert_eq!(
            nursing,
            CodeError::BadCheckDigit {
                found: wrong,
                expected: six,
                rule: CheckDigitRule::InstitutionSix,
                alternative: Some((CheckDigitRule::InstitutionNine, nine)),
                institution: Some((13, ScoreTable::HomeNursing)),
            }
        );
        let ja = nursing.message_ja();
        assert!(ja.contains(&format!(
            "東京都の訪問看護のコードは郡市区番号と医療機関番号の6桁から計算すると検証番号は{six}"
        )));
        assert!(
            ja.contains(&format!("9桁から計算すると{nine}になります")),
            "{ja}"
        );
        assert!(ja.contains("どちらでも受け付けます"));
        assert!(nursing.message_en().contains("either is accepted"));
        // Either digit is accepted there.
        assert!(format!("136881479{six}").parse::<InstitutionCode>().is_ok());
        assert!(
            format!("136881479{nine}")
                .parse::<InstitutionCode>()
                .is_ok()
        );

        // Where both rules give the same digit (千葉県 歯科: 2×1 + 2 + 2×3 = 10), only one is named.
        let chiba_dental = "1230130295"
            .parse::<InstitutionCode>()
            .expect_err("refused");
        assert!(matches!(
            chiba_dental,
            CodeError::BadCheckDigit {
                found: 5,
                expected: 4,
                alternative: None,
                ..
            }
        ));
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
            assert_eq!(parsed.eight_digit_form(), number);
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
        assert_eq!(kokuho.eight_digit_form(), "00131011");
        let err = "131012".parse::<InsurerNumber>().expect_err("refused");
        assert_eq!(
            err,
            CodeError::BadCheckDigit {
                found: 2,
                expected: 1,
                rule: CheckDigitRule::Preceding { digits: 5 },
                alternative: None,
                institution: None,
            }
        );
        assert!(err.message_ja().contains("前の5桁から計算し、検証番号は1"));
        assert!(matches!(
            "4810013".parse::<InsurerNumber>(),
            Err(CodeError::WrongLength { found: 7, .. })
        ));
    }

    #[test]
    fn zero_padded_national_health_insurance_is_read_as_such() {
        let padded: InsurerNumber = "00131011".parse().expect("padded 国保");
        assert_eq!(padded.as_str(), "131011");
        assert!(padded.is_national_health_insurance());
        assert_eq!(padded.law_number(), None);
        assert_eq!(padded.prefecture(), 13);
        assert_eq!(padded.eight_digit_form(), "00131011");
        assert_eq!(Ok(padded), "131011".parse::<InsurerNumber>());
        assert_eq!(
            "00131012".parse::<InsurerNumber>(),
            Err(CodeError::BadCheckDigit {
                found: 2,
                expected: 1,
                rule: CheckDigitRule::Preceding { digits: 5 },
                alternative: None,
                institution: None,
            })
        );
        assert_eq!(
            "00481011".parse::<InsurerNumber>(),
            Err(CodeError::BadPrefecture { found: 48 })
        );
        let json: InsurerNumber = serde_json::from_str("\"00131011\"").expect("valid");
        assert_eq!(
            serde_json::to_string(&json).expect("serialise"),
            "\"131011\""
        );
    }

    #[test]
    fn public_payer_number_uses_the_same_rule() {
        // 54016027: 特定医療費 (指定難病), 北海道 — the worked example of nanbyo.ukure.com/kiten.
        let payer: PublicPayerNumber = "54016027".parse().expect("real number");
        assert_eq!(payer.law_number(), "54");
        assert_eq!(payer.prefecture(), 1);
        let welfare = PublicPayerNumber::with_check_digit("1213001").expect("valid prefix");
        assert_eq!(welfare.law_number(), "12");
        assert_eq!(
            "54016028".parse::<PublicPayerNumber>(),
            Err(CodeError::BadCheckDigit {
                found: 8,
                expected: 7,
                rule: CheckDigitRule::Preceding { digits: 7 },
                alternative: None,
                institution: None,
            })
        );
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
                found: 2,
                expected: 1,
                rule: CheckDigitRule::Preceding { digits: 7 },
                alternative: None,
                institution: None,
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
        assert_eq!(prefecture_name_en(13), Some("Tokyo"));
        assert_eq!(prefecture_name_en(47), Some("Okinawa"));
        assert_eq!(prefecture_name_en(48), None);
    }

    proptest! {
        #[test]
        fn built_codes_of_every_prefecture_and_table_round_trip(
            pref in 1u8..=47,
            table in proptest::sample::select(vec![1u8, 3, 4, 6]),
            body in 0u32..1_000_000,
        ) {
            let prefix = format!("{pref:02}{table}{body:06}");
            let code = InstitutionCode::with_check_digit(&prefix).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(code.prefecture(), pref);
            prop_assert_eq!(code.score_table().number(), table);
            prop_assert_eq!(code.institution_number(), &code.as_str()[3..]);
            prop_assert_eq!(code.as_str().parse::<InstitutionCode>(), Ok(code.clone()));
            let digits: Vec<u8> = code.as_str().bytes().map(|b| b - b'0').collect();
            prop_assert!(reference_accepts(&digits));
            // Built with the prefecture's (established or presumed) rule.
            let rule = code.check_rule().rule;
            prop_assert_eq!(rule.check_digit_of(&digits[..9]), Some(digits[9]));
        }

        #[test]
        fn any_single_digit_change_is_caught_under_the_prefectures_rule(
            pref in 1u8..=47,
            table in proptest::sample::select(vec![1u8, 3, 4, 6]),
            body in 0u32..1_000_000,
            position in 0usize..10,
            delta in 1u8..10,
        ) {
            let prefix = format!("{pref:02}{table}{body:06}");
            let code = InstitutionCode::with_check_digit(&prefix).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let InstitutionRule { rule, established } = code.check_rule();
            let mut digits: Vec<u8> = code.as_str().bytes().map(|b| b - b'0').collect();
            digits[position] = (digits[position] + delta) % 10;
            let changed: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
            let parsed = changed.parse::<InstitutionCode>();
            // The parser agrees with the independent reference on every changed code.
            prop_assert_eq!(parsed.is_ok(), reference_accepts(&digits));
            let covered = match rule {
                CheckDigitRule::InstitutionSix => 3..10,
                _ => 0..10,
            };
            if covered.contains(&position) {
                // Within the digits the rule covers, the Luhn scheme catches every single-digit
                // change: the rule no longer gives the last digit.
                prop_assert_ne!(rule.check_digit_of(&digits[..9]), Some(digits[9]));
                // With prefecture and table unchanged, an established rule refuses it.
                if established && position >= 3 {
                    prop_assert!(parsed.is_err());
                }
                if let Err(CodeError::BadCheckDigit { found, institution, .. }) = parsed {
                    prop_assert_eq!(found, digits[9]);
                    prop_assert_eq!(institution.map(|(p, _)| p), Some(digits[0] * 10 + digits[1]));
                }
            }
        }

        #[test]
        fn insurer_numbers_round_trip(law in 1u8..100, pref in 1u8..=47, n in 0u16..1000, six in any::<bool>(), padded in any::<bool>()) {
            let prefix = if six { format!("{pref:02}{n:03}") } else { format!("{law:02}{pref:02}{n:03}") };
            let number = InsurerNumber::with_check_digit(&prefix).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(number.prefecture(), pref);
            prop_assert_eq!(number.is_national_health_insurance(), six);
            let json = serde_json::to_string(&number).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back: InsurerNumber = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&back, &number);
            let eight = number.eight_digit_form();
            prop_assert_eq!(eight.len(), 8);
            let typed = if padded { eight } else { number.as_str().to_owned() };
            prop_assert_eq!(typed.parse::<InsurerNumber>(), Ok(number));
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,12}") {
            let _ = s.parse::<InstitutionCode>();
            let _ = s.parse::<InsurerNumber>();
            let _ = s.parse::<PublicPayerNumber>();
            let _ = InstitutionCode::with_check_digit(&s);
            let _ = InsurerNumber::with_check_digit(&s);
            let _ = normalize_digits(&s);
        }
    }
}
