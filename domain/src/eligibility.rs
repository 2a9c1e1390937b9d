//! Eligibility data (資格情報) as returned for one confirmation (SPEC §6), and the
//! information-control rules (情報制御) that decide which of it an institution may see. The
//! backend simulator builds the full record; [`apply_information_control`] is what every path
//! to a staff screen goes through, so a hidden field is hidden everywhere.
//!
//! Rules, from seed 003 (令和5年度 report on 医療扶助のオンライン資格確認):
//! - 不開示該当フラグ: 「紙の医療券等によるオンライン資格確認時、大規模災害・システム障害時の
//!   オンライン資格確認時に住所情報等が表示されなくなります。※マイナンバーカードを使用した
//!   オンライン資格確認時には情報制御は行いません。」 — address and postcode are hidden, but
//!   only when the confirmation did not use the My Number card (SPEC §6 says "hidden" without
//!   the condition; the seed wins).
//! - 自己情報提供不可フラグ: 「マイナンバーカードの医療券・調剤券としての利用ができません」 — with
//!   the card, the welfare block is not returned.
//! - 未委託: 「未委託の医療機関・薬局では、資格情報を閲覧できるものの、公費負担者番号・
//!   受給者番号は閲覧できない」.
//! - 医療扶助情報利用有無区分 「利用しない」: 「医療扶助の資格情報等が存在しても返却しない」.
//! - 社会保険状況: a 医療券/調剤券 that says あり while no valid insurance record exists, or なし
//!   while one does, is shown with a warning (staff call the 福祉事務所 or insurer).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::codes::{InsurerNumber, PublicPayerNumber};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
    /// Not set in the record.
    Unknown,
}

/// 被保険者証区分: 本人 or 家族 (被扶養者).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InsuredRelation {
    /// 本人
    Insured,
    /// 家族
    Dependent,
}

/// A health-insurance qualification (医療保険の資格).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsuranceQualification {
    pub relation: InsuredRelation,
    pub insurer_number: InsurerNumber,
    pub insurer_name: String,
    /// 記号 (not every insurer uses one).
    pub symbol: Option<String>,
    /// 番号
    pub number: String,
    /// 枝番 (two digits).
    pub branch: Option<String>,
    /// 資格取得年月日
    pub acquired_on: Option<NaiveDate>,
    /// 有効開始年月日
    pub valid_from: Option<NaiveDate>,
    /// 有効終了年月日; `None` = open-ended.
    pub valid_until: Option<NaiveDate>,
    /// 負担割合 in percent (10, 20, 30).
    pub burden_percent: Option<u8>,
    /// 限度額適用区分 (e.g. ア, イ, 区Ⅰ), as the backend spells it.
    pub limit_category: Option<String>,
}

impl InsuranceQualification {
    /// Valid on `date`, both ends inclusive.
    pub fn is_valid_on(&self, date: NaiveDate) -> bool {
        self.valid_from.is_none_or(|from| from <= date)
            && self.valid_until.is_none_or(|until| date <= until)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketKind {
    /// 医療券
    Medical,
    /// 調剤券
    Dispensing,
}

/// One 医療券 or 調剤券 of 医療扶助.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WelfareTicket {
    pub kind: TicketKind,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    /// 本人支払額 in yen.
    pub patient_payment_yen: Option<u32>,
    /// 社会保険状況: the welfare office records that the person also has health insurance.
    pub social_insurance: bool,
}

/// Public assistance (医療扶助) block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WelfareQualification {
    /// 公費負担者番号; hidden from institutions not contracted (未委託).
    pub public_payer_number: Option<PublicPayerNumber>,
    /// 受給者番号; hidden from institutions not contracted (未委託).
    pub recipient_number: Option<String>,
    pub tickets: Vec<WelfareTicket>,
}

/// What staff should be told about a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "warning", rename_all = "snake_case")]
pub enum EligibilityWarning {
    /// 社会保険状況 disagrees with the insurance records: `ticket_says` is the ticket's
    /// あり (true) / なし (false). Staff confirm by phone with the 福祉事務所 or the insurer.
    SocialInsuranceMismatch { ticket_says: bool },
}

/// The eligibility record of one person. Options are fields that a rule can hide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilityRecord {
    pub name: String,
    pub name_kana: String,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    /// Hidden under 不開示該当フラグ (when not confirmed by card).
    pub address: Option<String>,
    /// Hidden with the address.
    pub postcode: Option<String>,
    pub insurance: Option<InsuranceQualification>,
    pub welfare: Option<WelfareQualification>,
    #[serde(default)]
    pub warnings: Vec<EligibilityWarning>,
}

/// Why no eligibility is returned at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoEligibilityReason {
    /// J-LIS照会で不一致 (閲覧停止): the person's data is under review.
    UnderJlisReview,
    /// 健康保険証利用登録なし: the card is not registered for insurance use.
    CardNotRegisteredForInsurance,
    /// No qualification was found for the person.
    NoQualification,
}

/// The answer of one eligibility confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum EligibilityOutcome {
    /// Boxed: the record is large and the refusal tiny.
    Found {
        record: Box<EligibilityRecord>,
    },
    NotAvailable {
        reason: NoEligibilityReason,
    },
}

/// Flags set on the person by the welfare office (情報制御フラグ).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlFlags {
    /// 不開示該当フラグ
    pub non_disclosure: bool,
    /// 自己情報提供不可フラグ
    pub no_self_information: bool,
}

/// How the person was identified for this confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmationMethod {
    /// マイナンバーカード (every flow of this portal).
    MyNumberCard,
    /// 紙の医療券等 / 被保険者番号等 typed in.
    PaperOrNumbers,
    /// 大規模災害・システム障害時.
    Disaster,
}

/// The institution side of a confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstitutionContext {
    pub method: ConfirmationMethod,
    /// The welfare office entrusted this institution with the person's care (委託); otherwise 未委託.
    pub contracted_for_welfare: bool,
    /// Setting 医療扶助情報: 利用する (true) / 利用しない (false).
    pub use_welfare_information: bool,
    /// JST date of the confirmation, for "valid insurance record".
    pub confirmed_on: NaiveDate,
}

/// Applies the information-control rules to a full record: what the institution may see.
pub fn apply_information_control(
    mut record: EligibilityRecord,
    flags: ControlFlags,
    ctx: &InstitutionContext,
) -> EligibilityRecord {
    if flags.non_disclosure && ctx.method != ConfirmationMethod::MyNumberCard {
        record.address = None;
        record.postcode = None;
    }
    let card_blocked = flags.no_self_information && ctx.method == ConfirmationMethod::MyNumberCard;
    if !ctx.use_welfare_information || card_blocked {
        record.welfare = None;
    }
    if let Some(welfare) = record.welfare.as_mut()
        && !ctx.contracted_for_welfare
    {
        welfare.public_payer_number = None;
        welfare.recipient_number = None;
    }
    record.warnings = social_insurance_warnings(&record, ctx.confirmed_on);
    record
}

/// 社会保険状況 of each ticket against the existence of a valid insurance record.
pub fn social_insurance_warnings(
    record: &EligibilityRecord,
    on: NaiveDate,
) -> Vec<EligibilityWarning> {
    let insured = record.insurance.as_ref().is_some_and(|q| q.is_valid_on(on));
    let mut warnings: Vec<EligibilityWarning> = record
        .welfare
        .iter()
        .flat_map(|w| w.tickets.iter())
        .filter(|t| t.social_insurance != insured)
        .map(|t| EligibilityWarning::SocialInsuranceMismatch {
            ticket_says: t.social_insurance,
        })
        .collect();
    warnings.dedup();
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    fn record() -> EligibilityRecord {
        EligibilityRecord {
            name: "厚労 太郎".into(),
            name_kana: "コウロウ タロウ".into(),
            sex: Sex::Male,
            birth_date: d(1970, 1, 1),
            address: Some("東京都千代田区霞が関1-2-2".into()),
            postcode: Some("100-8916".into()),
            insurance: Some(InsuranceQualification {
                relation: InsuredRelation::Insured,
                insurer_number: "01130012".parse().expect("valid"),
                insurer_name: "全国健康保険協会東京支部".into(),
                symbol: Some("1234".into()),
                number: "56".into(),
                branch: Some("00".into()),
                acquired_on: Some(d(2016, 7, 1)),
                valid_from: Some(d(2016, 7, 1)),
                valid_until: None,
                burden_percent: Some(30),
                limit_category: None,
            }),
            welfare: Some(WelfareQualification {
                public_payer_number: Some(
                    PublicPayerNumber::with_check_digit("1213001").expect("valid"),
                ),
                recipient_number: Some("1234567".into()),
                tickets: vec![WelfareTicket {
                    kind: TicketKind::Medical,
                    valid_from: d(2026, 11, 1),
                    valid_until: d(2026, 11, 30),
                    patient_payment_yen: Some(0),
                    social_insurance: true,
                }],
            }),
            warnings: Vec::new(),
        }
    }

    fn ctx(method: ConfirmationMethod) -> InstitutionContext {
        InstitutionContext {
            method,
            contracted_for_welfare: true,
            use_welfare_information: true,
            confirmed_on: d(2026, 11, 20),
        }
    }

    #[test]
    fn nothing_hidden_without_flags() {
        let out = apply_information_control(
            record(),
            ControlFlags::default(),
            &ctx(ConfirmationMethod::MyNumberCard),
        );
        assert_eq!(out, record());
    }

    #[test]
    fn non_disclosure_hides_address_except_with_the_card() {
        let flags = ControlFlags {
            non_disclosure: true,
            ..Default::default()
        };
        let card =
            apply_information_control(record(), flags, &ctx(ConfirmationMethod::MyNumberCard));
        assert!(card.address.is_some() && card.postcode.is_some());
        for method in [
            ConfirmationMethod::PaperOrNumbers,
            ConfirmationMethod::Disaster,
        ] {
            let out = apply_information_control(record(), flags, &ctx(method));
            assert_eq!((out.address, out.postcode), (None, None));
            assert_eq!(out.name, "厚労 太郎");
        }
    }

    #[test]
    fn no_self_information_blocks_the_card_as_welfare_ticket() {
        let flags = ControlFlags {
            no_self_information: true,
            ..Default::default()
        };
        let out =
            apply_information_control(record(), flags, &ctx(ConfirmationMethod::MyNumberCard));
        assert_eq!(out.welfare, None);
        assert!(out.insurance.is_some());
    }

    #[test]
    fn uncontracted_institution_sees_no_payer_or_recipient_number() {
        let mut c = ctx(ConfirmationMethod::MyNumberCard);
        c.contracted_for_welfare = false;
        let out = apply_information_control(record(), ControlFlags::default(), &c);
        let welfare = out.welfare.expect("welfare still returned");
        assert_eq!(welfare.public_payer_number, None);
        assert_eq!(welfare.recipient_number, None);
        assert_eq!(welfare.tickets.len(), 1);
    }

    #[test]
    fn welfare_information_not_used_drops_welfare() {
        let mut c = ctx(ConfirmationMethod::MyNumberCard);
        c.use_welfare_information = false;
        let out = apply_information_control(record(), ControlFlags::default(), &c);
        assert_eq!(out.welfare, None);
        assert!(out.warnings.is_empty());
    }

    #[test]
    fn social_insurance_mismatch_warns_both_ways() {
        let c = ctx(ConfirmationMethod::MyNumberCard);
        // あり, but no insurance record.
        let mut r = record();
        r.insurance = None;
        let out = apply_information_control(r, ControlFlags::default(), &c);
        assert_eq!(
            out.warnings,
            vec![EligibilityWarning::SocialInsuranceMismatch { ticket_says: true }]
        );
        // あり, but the insurance record expired before the confirmation date.
        let mut r = record();
        if let Some(q) = r.insurance.as_mut() {
            q.valid_until = Some(d(2026, 10, 31));
        }
        let out = apply_information_control(r, ControlFlags::default(), &c);
        assert_eq!(
            out.warnings,
            vec![EligibilityWarning::SocialInsuranceMismatch { ticket_says: true }]
        );
        // なし, but a valid insurance record exists.
        let mut r = record();
        if let Some(w) = r.welfare.as_mut() {
            w.tickets[0].social_insurance = false;
        }
        let out = apply_information_control(r, ControlFlags::default(), &c);
        assert_eq!(
            out.warnings,
            vec![EligibilityWarning::SocialInsuranceMismatch { ticket_says: false }]
        );
    }

    #[test]
    fn outcome_serde_round_trip() {
        let found = EligibilityOutcome::Found {
            record: Box::new(record()),
        };
        let json = serde_json::to_string(&found).expect("serialise");
        assert_eq!(
            serde_json::from_str::<EligibilityOutcome>(&json).expect("round trip"),
            found
        );
        let refused = EligibilityOutcome::NotAvailable {
            reason: NoEligibilityReason::UnderJlisReview,
        };
        let json = serde_json::to_value(refused).expect("serialise");
        assert_eq!(json["result"], "not_available");
        assert_eq!(json["reason"], "under_jlis_review");
    }
}
