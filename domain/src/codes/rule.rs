//! Which digits a 検証番号 is computed from, and for 医療機関等コード which of the two rules each
//! prefecture and score table uses, as established from the 地方厚生局's published lists
//! (「コード内容別医療機関一覧表」). The evidence, with counts per prefecture and score table and
//! its sources, is in `domain/README.md`; `domain/tests/institution_codes.rs` checks a sample of
//! the published codes against this table.
//!
//! Both rules use the same scheme ([`super::check_digit`]: modulus 10, weights 2 and 1 from the
//! rightmost digit); they differ only in which digits go in:
//! - 埼玉・千葉・東京・神奈川 compute it over the six digits 郡市区番号 + 医療機関番号, so the
//!   seven-digit 医療機関コード carries the same check digit whatever its 点数表;
//! - the other 43 prefectures compute it over all nine digits before it, 都道府県番号 and
//!   点数表番号 included.
//!
//! The lists show this for 医科 in all 47 prefectures, for 歯科 in nine and for 薬局 in ten of
//! them (every prefecture sampled follows its 医科 rule in every score table). Where no published
//! code of a prefecture and score table was found, a code satisfying either rule is accepted
//! ("never refuse a published code" wins over catching a typo there) and codes are built with
//! the prefecture's 医科 rule.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ScoreTable, check_digit};

/// The digits a check digit is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckDigitRule {
    /// 保険者番号 and 公費負担者番号: every digit before the check digit (`digits` of them: 7, or
    /// 5 for a six-digit 国民健康保険 number).
    Preceding { digits: u8 },
    /// 医療機関等コード: the nine digits 都道府県番号 (2) + 点数表番号 (1) + 郡市区番号 (2) +
    /// 医療機関番号 (4).
    InstitutionNine,
    /// 医療機関等コード: the six digits 郡市区番号 (2) + 医療機関番号 (4) only.
    InstitutionSix,
}

impl CheckDigitRule {
    /// The check digit this rule gives for `body`, the digits before the check digit (nine for
    /// a 医療機関等コード). `None` when `body` is shorter than the rule needs.
    pub fn check_digit_of(self, body: &[u8]) -> Option<u8> {
        match self {
            CheckDigitRule::Preceding { .. } => Some(check_digit(body)),
            CheckDigitRule::InstitutionNine => body.get(0..9).map(check_digit),
            CheckDigitRule::InstitutionSix => body.get(3..9).map(check_digit),
        }
    }

    /// The other 医療機関等コード rule; a 保険者番号 rule has none and is returned unchanged.
    pub const fn other(self) -> Self {
        match self {
            CheckDigitRule::InstitutionNine => CheckDigitRule::InstitutionSix,
            CheckDigitRule::InstitutionSix => CheckDigitRule::InstitutionNine,
            preceding => preceding,
        }
    }

    /// Which digits, in Japanese, to finish 「…から計算」.
    pub fn digits_ja(self) -> String {
        match self {
            CheckDigitRule::Preceding { digits } => format!("前の{digits}桁"),
            CheckDigitRule::InstitutionNine => {
                "都道府県番号・点数表番号・郡市区番号・医療機関番号の9桁".to_owned()
            }
            CheckDigitRule::InstitutionSix => "郡市区番号と医療機関番号の6桁".to_owned(),
        }
    }

    /// Which digits, in English, to finish "computed from …".
    pub fn digits_en(self) -> String {
        match self {
            CheckDigitRule::Preceding { digits } => format!("the {digits} digits before it"),
            CheckDigitRule::InstitutionNine => "the nine digits of prefecture, score table, area (郡市区番号) and institution number".to_owned(),
            CheckDigitRule::InstitutionSix => "the six digits of area (郡市区番号) and institution number".to_owned(),
        }
    }
}

impl fmt::Display for CheckDigitRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.digits_en())
    }
}

/// The 検証番号 rule of one prefecture and score table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstitutionRule {
    /// The rule codes are checked and built with.
    pub rule: CheckDigitRule,
    /// `true`: established from published codes, and only `rule` is accepted. `false`: no
    /// published code of this prefecture and score table was found; `rule` is the prefecture's
    /// 医科 rule, presumed, and a code satisfying the other rule is accepted too.
    pub established: bool,
}

/// 都道府県番号 whose codes compute the check digit over six digits: 11 埼玉, 12 千葉, 13 東京,
/// 14 神奈川. Every 医科 code of these four in the lists satisfies the six-digit rule and none the
/// nine-digit one; every 医科 code of the other 43 prefectures satisfies the nine-digit rule.
pub const SIX_DIGIT_PREFECTURES: [u8; 4] = [11, 12, 13, 14];

/// 都道府県番号 whose 歯科 codes were found in the published lists with check digits that tell the
/// two rules apart, all following the prefecture's 医科 rule: 01 北海道, 11 埼玉, 13 東京,
/// 14 神奈川, 23 愛知 (届出受理医療機関名簿), 27 大阪, 28 兵庫, 29 奈良, 30 和歌山 (also the
/// 近畿厚生局's 医科併設 lists). 04 宮城 and 12 千葉 歯科 codes were found too, but there the two
/// rules give the same digit.
pub const DENTAL_ESTABLISHED: [u8; 9] = [1, 11, 13, 14, 23, 27, 28, 29, 30];

/// 都道府県番号 whose 薬局 codes were found in the published lists (届出受理医療機関名簿),
/// all following the prefecture's 医科 rule: 01 北海道, 11 埼玉, 12 千葉, 13 東京, 14 神奈川,
/// 23 愛知, 27 大阪, 34 広島, 40 福岡, 47 沖縄.
pub const PHARMACY_ESTABLISHED: [u8; 10] = [1, 11, 12, 13, 14, 23, 27, 34, 40, 47];

/// The rule for a 都道府県番号 (1–47) and score table. A number outside 1–47 gets the
/// nine-digit rule, not established (parsing refuses such a number before asking).
pub fn institution_rule(prefecture: u8, table: ScoreTable) -> InstitutionRule {
    let rule = if SIX_DIGIT_PREFECTURES.contains(&prefecture) {
        CheckDigitRule::InstitutionSix
    } else {
        CheckDigitRule::InstitutionNine
    };
    let known_prefecture = (1..=47).contains(&prefecture);
    let established = known_prefecture
        && match table {
            ScoreTable::Medical => true,
            ScoreTable::Dental => DENTAL_ESTABLISHED.contains(&prefecture),
            ScoreTable::Pharmacy => PHARMACY_ESTABLISHED.contains(&prefecture),
            ScoreTable::HomeNursing => false,
        };
    InstitutionRule { rule, established }
}
