//! The simulator's test population: 62 people, each one case of SPEC §6 (insurance kinds,
//! burden and limit categories, welfare, information-control flags, J-LIS review, certificate
//! trouble, long and alphabet names, 外字 and variation sequences, children, renewed
//! certificates), with a virtual My Number card and a plausible medical history. Everything is
//! derived from the person's number and a reference date, so the
//! same date gives the same people, and the README table stays true.
//!
//! Cards cost an RSA-2048 key generation each, so they are made only when asked for
//! ([`virtual_card`]) and their keys are cached for the life of the process.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use chrono::{Datelike, Months, NaiveDate};
use rsa::RsaPrivateKey;
use serde::{Deserialize, Serialize};
use uketsuke_card::test_ca::{TestCa, TestCaError, UserCertificateRequest, generate_rsa_key};
use uketsuke_card::virtual_card::{DEMO_NOT_AFTER_UNIX, DEMO_NOT_BEFORE_UNIX};
use uketsuke_card::{Pin, VirtualCard};
use uketsuke_domain::eligibility::{
    ControlFlags, EligibilityRecord, InsuranceQualification, InsuredRelation, Sex, TicketKind,
    WelfareQualification, WelfareTicket,
};
use uketsuke_domain::{InsurerNumber, PublicPayerNumber};

use super::keys::{self, DEMO_CLINIC, OTHER_CLINIC};
use crate::contract::{CheckupEntry, ClinicalEntry, MedicationEntry};

/// How many people the simulator knows.
pub const POPULATION_SIZE: u32 = 62;
/// The last of the generated ordinary people (35..=60); the blocks after them add special
/// cases with their own numbers.
const ORDINARY_LAST: u32 = 60;
/// Card seeds (= certificate serials) are this times (1 + the certificate's generation) plus
/// the person's number: a person's first certificate is `10_000 + no`, the one that renewed
/// it `20_000 + no`, and so on ([`card_seed_of`]).
pub const CARD_SEED_BASE: u64 = 10_000;
/// Expired certificates: 2024-01-01 .. 2025-01-01 (the CA itself starts 2024-01-01).
const EXPIRED_NOT_BEFORE_UNIX: u64 = 1_704_067_200;
const EXPIRED_NOT_AFTER_UNIX: u64 = 1_735_689_600;
/// Not yet valid: 2031-01-01 .. 2036-01-01.
const FUTURE_NOT_BEFORE_UNIX: u64 = 1_924_992_000;
const FUTURE_NOT_AFTER_UNIX: u64 = 2_082_758_400;

/// What the person's card certificate is like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateCase {
    Valid,
    Revoked,
    Expired,
    NotYetValid,
}

/// Medical history returned for consented categories.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MedicalHistory {
    pub clinical: Vec<ClinicalEntry>,
    pub medications: Vec<MedicationEntry>,
    pub checkups: Vec<CheckupEntry>,
}

/// One person of the population.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    /// 1..=60, stable.
    pub no: u32,
    /// The case this person stands for, in English and Japanese (README table).
    pub case_en: &'static str,
    pub case_ja: &'static str,
    /// The full record before information control.
    pub record: EligibilityRecord,
    pub flags: ControlFlags,
    /// J-LIS照会で不一致 (閲覧停止).
    pub jlis_review: bool,
    /// 健康保険証利用登録 done.
    pub insurance_registered: bool,
    pub certificate: CertificateCase,
    /// Institution codes entrusted with the person's welfare care (委託).
    pub welfare_contracted_at: Vec<String>,
    pub medical: MedicalHistory,
    /// Earlier certificates of the person (serials), each revoked when the next one was issued
    /// (CRL reason `superseded`): they prove nothing any more, but the person is the same.
    pub previous_certificates: Vec<u64>,
}

impl Person {
    /// The serial (= key seed) of the person's current certificate.
    pub fn card_seed(&self) -> u64 {
        card_seed(self.no)
    }

    /// The card's 4-digit PIN (test material, printed in the README on purpose).
    pub fn pin(&self) -> String {
        pin_of(self.no)
    }
}

/// The serial (= key seed) of person `no`'s current certificate as the population starts.
pub fn card_seed(no: u32) -> u64 {
    card_seed_of(no, renewals_of(no))
}

/// The serial (= key seed) of person `no`'s certificate of `generation` (0 = the first one).
pub fn card_seed_of(no: u32, generation: u32) -> u64 {
    CARD_SEED_BASE * (1 + u64::from(generation)) + u64::from(no)
}

/// Person 1 has 1234 (the PIN every demo text mentions); the others differ so that a test
/// cannot pass with the wrong person's PIN by luck.
pub fn pin_of(no: u32) -> String {
    if no == 1 {
        "1234".to_owned()
    } else {
        format!("{:04}", (1234 + no * 1111) % 10_000)
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    // Only called with valid literals or clamped values; fall back to the epoch day otherwise.
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn birth(today: NaiveDate, age: i32, no: u32) -> NaiveDate {
    // Birthdays fall on an early day of a month already past, so the age is exact on `today`.
    let month = 1 + no % today.month().max(1);
    let month = month.min(today.month());
    let day = 1 + no % 20;
    let candidate = date(today.year() - age, month, day);
    if candidate > date(today.year() - age, today.month(), today.day()) {
        date(today.year() - age - 1, month, day)
    } else {
        candidate
    }
}

/// Insurers used by the population (numbers built with their check digit).
struct Insurer {
    prefix: &'static str,
    name: &'static str,
}

const KYOKAI_TOKYO: Insurer = Insurer {
    prefix: "0113001",
    name: "全国健康保険協会東京支部",
};
const KYOKAI_OSAKA: Insurer = Insurer {
    prefix: "0127001",
    name: "全国健康保険協会大阪支部",
};
const KUMIAI: Insurer = Insurer {
    prefix: "0613001",
    name: "うけつけ商事健康保険組合",
};
const KYOSAI: Insurer = Insurer {
    prefix: "3113001",
    name: "東京都職員共済組合",
};
const KOKUHO: Insurer = Insurer {
    prefix: "13101",
    name: "千代田区国民健康保険",
};
const KOKI: Insurer = Insurer {
    prefix: "3913100",
    name: "東京都後期高齢者医療広域連合",
};

fn welfare_payer() -> Option<PublicPayerNumber> {
    PublicPayerNumber::with_check_digit("1213001").ok()
}

/// Builder state for one person.
struct Draft {
    person: Person,
}

impl Draft {
    fn new(
        no: u32,
        case_en: &'static str,
        case_ja: &'static str,
        name: (&str, &str),
        sex: Sex,
        birth_date: NaiveDate,
    ) -> Self {
        let town = [
            "千代田区霞が関1-2-2",
            "港区芝公園4-2-8",
            "新宿区西新宿2-8-1",
            "世田谷区太子堂4-1-1",
        ];
        let post = ["100-8916", "105-0011", "163-8001", "154-0004"];
        let i = (no as usize) % town.len();
        Draft {
            person: Person {
                no,
                case_en,
                case_ja,
                record: EligibilityRecord {
                    name: name.0.to_owned(),
                    name_kana: name.1.to_owned(),
                    sex,
                    birth_date,
                    address: Some(format!("東京都{}", town[i])),
                    postcode: Some(post[i].to_owned()),
                    insurance: None,
                    welfare: None,
                    warnings: Vec::new(),
                },
                flags: ControlFlags::default(),
                jlis_review: false,
                insurance_registered: true,
                certificate: CertificateCase::Valid,
                welfare_contracted_at: Vec::new(),
                medical: MedicalHistory::default(),
                previous_certificates: Vec::new(),
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn insurance(
        mut self,
        insurer: &Insurer,
        relation: InsuredRelation,
        burden: u8,
        limit: Option<&str>,
        acquired: NaiveDate,
        until: Option<NaiveDate>,
    ) -> Self {
        let no = self.person.no;
        let national = insurer.prefix.len() == 5;
        // The prefixes are constants checked by a test; a bad one leaves the person uninsured.
        let Ok(insurer_number) = InsurerNumber::with_check_digit(insurer.prefix) else {
            return self;
        };
        self.person.record.insurance = Some(InsuranceQualification {
            relation,
            insurer_number,
            insurer_name: insurer.name.to_owned(),
            symbol: if national {
                Some("千代".to_owned())
            } else {
                Some(format!("{}", 1000 + no * 7))
            },
            number: format!("{}", 100 + no * 13),
            branch: Some(if relation == InsuredRelation::Insured {
                "00".into()
            } else {
                "01".into()
            }),
            acquired_on: Some(acquired),
            valid_from: Some(acquired),
            valid_until: until,
            burden_percent: Some(burden),
            limit_category: limit.map(str::to_owned),
        });
        self
    }

    fn welfare(mut self, today: NaiveDate, social_insurance: bool, contracted: &[&str]) -> Self {
        let first = date(today.year(), today.month(), 1);
        let last = first
            .checked_add_months(Months::new(1))
            .and_then(|d| d.pred_opt())
            .unwrap_or(first);
        self.person.record.welfare = Some(WelfareQualification {
            public_payer_number: welfare_payer(),
            recipient_number: Some(format!("{:07}", 1_000_000 + self.person.no * 31)),
            tickets: vec![
                WelfareTicket {
                    kind: TicketKind::Medical,
                    valid_from: first,
                    valid_until: last,
                    patient_payment_yen: Some(0),
                    social_insurance,
                },
                WelfareTicket {
                    kind: TicketKind::Dispensing,
                    valid_from: first,
                    valid_until: last,
                    patient_payment_yen: Some(0),
                    social_insurance,
                },
            ],
        });
        self.person.welfare_contracted_at = contracted.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    fn with(mut self, f: impl FnOnce(&mut Person)) -> Self {
        f(&mut self.person);
        self
    }

    fn done(mut self, today: NaiveDate) -> Person {
        self.person.medical = medical_history(&self.person, today);
        self.person
    }
}

/// The whole population as of `today` (JST): the reference for "last month", ages and tickets.
pub fn population(today: NaiveDate) -> Vec<Person> {
    let demo = keys::institution_code(DEMO_CLINIC);
    let other = keys::institution_code(OTHER_CLINIC);
    let (demo, other) = (demo.as_str(), other.as_str());
    let y = today.year();
    let since = |years: i32| date(y - years, 4, 1);
    let b = |age: i32, no: u32| birth(today, age, no);
    let last_month_end = date(y, today.month(), 1).pred_opt().unwrap_or(today);
    use InsuredRelation::{Dependent, Insured};
    use Sex::{Female, Male};

    let mut drafts = vec![
        Draft::new(
            1,
            "Kyokai kenpo, insured, 30%",
            "協会けんぽ 本人 3割",
            ("厚労 太郎", "コウロウ タロウ"),
            Male,
            b(45, 1),
        )
        .insurance(&KYOKAI_TOKYO, Insured, 30, None, since(10), None),
        Draft::new(
            2,
            "Kyokai kenpo, dependent (spouse)",
            "協会けんぽ 家族（配偶者）",
            ("厚労 花子", "コウロウ ハナコ"),
            Female,
            b(43, 2),
        )
        .insurance(&KYOKAI_TOKYO, Dependent, 30, None, since(10), None),
        Draft::new(
            3,
            "Union kenpo, insured, limit ア",
            "組合健保 本人 限度額ア",
            ("組合 一郎", "クミアイ イチロウ"),
            Male,
            b(52, 3),
        )
        .insurance(&KUMIAI, Insured, 30, Some("ア"), since(20), None),
        Draft::new(
            4,
            "Union kenpo, dependent child aged 4 (20%)",
            "組合健保 家族 未就学児 2割",
            ("組合 さくら", "クミアイ サクラ"),
            Female,
            b(4, 4),
        )
        .insurance(&KUMIAI, Dependent, 20, None, since(4), None),
        Draft::new(
            5,
            "National health insurance, limit エ",
            "国保 限度額エ",
            ("国保 三郎", "コクホ サブロウ"),
            Male,
            b(38, 5),
        )
        .insurance(&KOKUHO, Insured, 30, Some("エ"), since(6), None),
        Draft::new(
            6,
            "National health insurance, child aged 10",
            "国保 小学生",
            ("国保 ゆい", "コクホ ユイ"),
            Female,
            b(10, 6),
        )
        .insurance(&KOKUHO, Insured, 30, None, since(10), None),
        Draft::new(
            7,
            "Late-stage elderly, 10%, limit 区Ⅰ",
            "後期高齢者 1割 低所得Ⅰ",
            ("後期 キヨ", "コウキ キヨ"),
            Female,
            b(88, 7),
        )
        .insurance(&KOKI, Insured, 10, Some("区Ⅰ"), since(13), None),
        Draft::new(
            8,
            "Late-stage elderly, 20%",
            "後期高齢者 2割",
            ("後期 茂", "コウキ シゲル"),
            Male,
            b(79, 8),
        )
        .insurance(&KOKI, Insured, 20, None, since(4), None),
        Draft::new(
            9,
            "Late-stage elderly, 30% (現役並みⅢ)",
            "後期高齢者 3割 現役並みⅢ",
            ("後期 正子", "コウキ マサコ"),
            Female,
            b(77, 9),
        )
        .insurance(&KOKI, Insured, 30, Some("現役並みⅢ"), since(2), None),
        Draft::new(
            10,
            "Aged 70–74, 20% (一般)",
            "70〜74歳 2割 一般",
            ("高齢 勝", "コウレイ マサル"),
            Male,
            b(72, 10),
        )
        .insurance(&KYOKAI_TOKYO, Insured, 20, Some("一般"), since(30), None),
        Draft::new(
            11,
            "Aged 70–74, 30% (現役並みⅠ)",
            "70〜74歳 3割 現役並みⅠ",
            ("高齢 和子", "コウレイ カズコ"),
            Female,
            b(71, 11),
        )
        .insurance(&KUMIAI, Insured, 30, Some("現役並みⅠ"), since(25), None),
        Draft::new(
            12,
            "Limit category イ",
            "限度額適用区分 イ",
            ("限度 健", "ゲンド ケン"),
            Male,
            b(48, 12),
        )
        .insurance(&KYOKAI_OSAKA, Insured, 30, Some("イ"), since(15), None),
        Draft::new(
            13,
            "Limit category ウ",
            "限度額適用区分 ウ",
            ("限度 恵", "ゲンド メグミ"),
            Female,
            b(36, 13),
        )
        .insurance(&KYOKAI_OSAKA, Insured, 30, Some("ウ"), since(8), None),
        Draft::new(
            14,
            "Limit category オ",
            "限度額適用区分 オ",
            ("限度 誠", "ゲンド マコト"),
            Male,
            b(61, 14),
        )
        .insurance(&KOKUHO, Insured, 30, Some("オ"), since(3), None),
        Draft::new(
            15,
            "Medical assistance only (医療扶助)",
            "医療扶助のみ",
            ("扶助 一男", "フジョ カズオ"),
            Male,
            b(66, 15),
        )
        .welfare(today, false, &[demo]),
        Draft::new(
            16,
            "Insurance and welfare (併用)",
            "併用（被用者保険＋医療扶助）",
            ("併用 明美", "ヘイヨウ アケミ"),
            Female,
            b(41, 16),
        )
        .insurance(&KYOKAI_TOKYO, Dependent, 30, None, since(5), None)
        .welfare(today, true, &[demo]),
        Draft::new(
            17,
            "Welfare recipient, demo clinic not contracted (未委託)",
            "医療扶助 未委託（デモ診療所）",
            ("委託 外男", "イタク ソトオ"),
            Male,
            b(58, 17),
        )
        .welfare(today, false, &[other]),
        Draft::new(
            18,
            "不開示該当フラグ (no hiding with the card)",
            "不開示該当フラグ",
            ("不開 示子", "フカイ シメコ"),
            Female,
            b(34, 18),
        )
        .welfare(today, false, &[demo])
        .with(|p| p.flags.non_disclosure = true),
        Draft::new(
            19,
            "自己情報提供不可フラグ (welfare not returned)",
            "自己情報提供不可フラグ",
            ("提供 不可男", "テイキョウ フカオ"),
            Male,
            b(50, 19),
        )
        .insurance(&KOKUHO, Insured, 30, None, since(2), None)
        .welfare(today, true, &[demo])
        .with(|p| p.flags.no_self_information = true),
        Draft::new(
            20,
            "J-LIS mismatch (閲覧停止)",
            "J-LIS照会不一致（閲覧停止）",
            ("照会 停止", "ショウカイ テイシ"),
            Male,
            b(40, 20),
        )
        .insurance(&KYOKAI_TOKYO, Insured, 30, None, since(9), None)
        .with(|p| p.jlis_review = true),
        Draft::new(
            21,
            "Card not registered for insurance use",
            "健康保険証利用登録なし",
            ("未登録 良子", "ミトウロク ヨシコ"),
            Female,
            b(29, 21),
        )
        .insurance(&KYOKAI_TOKYO, Insured, 30, None, since(5), None)
        .with(|p| p.insurance_registered = false),
        Draft::new(
            22,
            "Insurance ended last month",
            "先月末で資格喪失",
            ("喪失 進", "ソウシツ ススム"),
            Male,
            b(33, 22),
        )
        .insurance(&KUMIAI, Insured, 30, None, since(7), Some(last_month_end)),
        Draft::new(
            23,
            "No qualification at all",
            "資格なし",
            ("資格 無男", "シカク ナオ"),
            Male,
            b(27, 23),
        ),
        Draft::new(
            24,
            "社会保険状況 あり, but no insurance record",
            "社会保険状況不一致（医療券あり・保険なし）",
            ("状況 有子", "ジョウキョウ アリコ"),
            Female,
            b(55, 24),
        )
        .welfare(today, true, &[demo]),
        Draft::new(
            25,
            "社会保険状況 なし, but insured",
            "社会保険状況不一致（医療券なし・保険あり）",
            ("状況 無男", "ジョウキョウ ナシオ"),
            Male,
            b(47, 25),
        )
        .insurance(&KOKUHO, Insured, 30, None, since(1), None)
        .welfare(today, false, &[demo]),
        Draft::new(
            26,
            "Revoked certificate",
            "失効した電子証明書",
            ("失効 証一", "シッコウ ショウイチ"),
            Male,
            b(39, 26),
        )
        .insurance(&KYOKAI_TOKYO, Insured, 30, None, since(3), None)
        .with(|p| p.certificate = CertificateCase::Revoked),
        Draft::new(
            27,
            "Expired certificate",
            "有効期限切れの電子証明書",
            ("期限 切子", "キゲン キリコ"),
            Female,
            b(68, 27),
        )
        .insurance(&KOKUHO, Insured, 30, None, since(8), None)
        .with(|p| p.certificate = CertificateCase::Expired),
        Draft::new(
            28,
            "Certificate not yet valid",
            "有効期間開始前の電子証明書",
            ("未来 始", "ミライ ハジメ"),
            Male,
            b(31, 28),
        )
        .insurance(&KYOKAI_OSAKA, Insured, 30, None, since(2), None)
        .with(|p| p.certificate = CertificateCase::NotYetValid),
        Draft::new(
            29,
            "Long name",
            "長い氏名",
            (
                "勅使河原 左衛門三郎太郎兵衛之介",
                "テシガワラ サエモンサブロウタロウベエノスケ",
            ),
            Male,
            b(57, 29),
        )
        .insurance(&KYOSAI, Insured, 30, None, since(30), None),
        Draft::new(
            30,
            "Name in the alphabet",
            "アルファベット氏名",
            ("SMITH JOHN ALEXANDER", "スミス ジョン アレキサンダー"),
            Male,
            b(42, 30),
        )
        .insurance(&KYOKAI_TOKYO, Insured, 30, None, since(3), None),
        Draft::new(
            31,
            "Name in the alphabet, long",
            "アルファベット氏名（長い）",
            (
                "NGUYEN THI MAI ANH PHUONG",
                "グエン ティ マイ アイン フォン",
            ),
            Female,
            b(26, 31),
        )
        .insurance(&KOKUHO, Insured, 30, None, since(1), None),
        Draft::new(
            32,
            "Infant aged 1, dependent (20%)",
            "乳児 家族 2割",
            ("厚労 こはる", "コウロウ コハル"),
            Female,
            b(1, 32),
        )
        .insurance(&KYOKAI_TOKYO, Dependent, 20, None, date(y - 1, 6, 1), None),
        Draft::new(
            33,
            "Child aged 15, dependent",
            "中学生 家族",
            ("厚労 陽太", "コウロウ ヨウタ"),
            Male,
            b(15, 33),
        )
        .insurance(&KYOKAI_TOKYO, Dependent, 30, None, since(15), None),
        Draft::new(
            34,
            "Mutual aid (共済), insured",
            "共済 本人",
            ("共済 公子", "キョウサイ キミコ"),
            Female,
            b(49, 34),
        )
        .insurance(&KYOSAI, Insured, 30, None, since(22), None),
    ];
    drafts.extend(variant_name_people(drafts.len() as u32 + 1, &b, &since));
    let mut people = drafts
        .into_iter()
        .map(|d| d.done(today))
        .collect::<Vec<_>>();

    // Everyone else: ordinary people across insurers, ages and both sexes.
    const FAMILY: [(&str, &str); 12] = [
        ("佐藤", "サトウ"),
        ("鈴木", "スズキ"),
        ("高橋", "タカハシ"),
        ("田中", "タナカ"),
        ("伊藤", "イトウ"),
        ("渡辺", "ワタナベ"),
        ("山本", "ヤマモト"),
        ("中村", "ナカムラ"),
        ("小林", "コバヤシ"),
        ("加藤", "カトウ"),
        ("吉田", "ヨシダ"),
        ("山田", "ヤマダ"),
    ];
    const GIVEN_M: [(&str, &str); 5] = [
        ("大輔", "ダイスケ"),
        ("翔", "ショウ"),
        ("健一", "ケンイチ"),
        ("隆", "タカシ"),
        ("蓮", "レン"),
    ];
    const GIVEN_F: [(&str, &str); 5] = [
        ("陽子", "ヨウコ"),
        ("美咲", "ミサキ"),
        ("由美", "ユミ"),
        ("千尋", "チヒロ"),
        ("葵", "アオイ"),
    ];
    for no in (people.len() as u32 + 1)..=ORDINARY_LAST {
        let (family, family_kana) = FAMILY[(no as usize) % FAMILY.len()];
        let female = no % 2 == 0;
        let (given, given_kana) = if female { GIVEN_F } else { GIVEN_M }[(no as usize / 2) % 5];
        let name = format!("{family} {given}");
        let kana = format!("{family_kana} {given_kana}");
        let age = [8, 19, 24, 37, 44, 53, 62, 67, 73, 81][(no as usize) % 10];
        let sex = if female { Female } else { Male };
        let draft = Draft::new(
            no,
            "Ordinary insured person",
            "一般",
            (&name, &kana),
            sex,
            b(age, no),
        );
        let draft = match age {
            0..=5 => draft.insurance(&KYOKAI_TOKYO, Dependent, 20, None, since(age), None),
            6..=17 => draft.insurance(&KUMIAI, Dependent, 30, None, since(age), None),
            70..=74 => draft.insurance(&KOKUHO, Insured, 20, None, since(10), None),
            75.. => draft.insurance(
                &KOKI,
                Insured,
                if no % 3 == 0 { 20 } else { 10 },
                None,
                since(age - 75),
                None,
            ),
            _ => match no % 4 {
                0 => draft.insurance(&KYOKAI_TOKYO, Insured, 30, None, since(5), None),
                1 => draft.insurance(&KUMIAI, Dependent, 30, None, since(3), None),
                2 => draft.insurance(&KOKUHO, Insured, 30, None, since(2), None),
                _ => draft.insurance(&KYOKAI_OSAKA, Insured, 30, Some("ウ"), since(4), None),
            },
        };
        people.push(draft.done(today));
    }
    people.extend(renewed_people(today, since, b));
    people
}

/// The names of [`variant_name_people`], for tests that follow them through every path.
pub const VARIANT_NAMES: [&str; 3] = ["髙﨑 はな", "𠮷田 𩸽太郎", "辻\u{E0100} 葛\u{E0100}子"];

/// Names as the registry holds them, the most common complaint about eligibility data in
/// clinics (a name shown as ● or 〓): 外字 outside JIS X 0208 (髙 U+9AD9, 﨑 U+FA11, a CJK
/// compatibility ideograph without a canonical decomposition), a character outside the Basic
/// Multilingual Plane (𠮷 U+20BB7, 𩸽 U+29E3D) and ideographic variation sequences (辻 U+8FBB and
/// 葛 U+845B followed by VARIATION SELECTOR-17 U+E0100, the Adobe-Japan1 variant). They must
/// reach the console, the print view and the exports code point for code point: no
/// normalisation, no replacement, no truncation inside a surrogate pair or a sequence.
/// Numbered from `first` on.
fn variant_name_people(
    first: u32,
    b: &impl Fn(i32, u32) -> NaiveDate,
    since: &impl Fn(i32) -> NaiveDate,
) -> Vec<Draft> {
    use InsuredRelation::Insured;
    use Sex::{Female, Male};
    /// English case, Japanese case, (name, kana), sex, age.
    type Case = (
        &'static str,
        &'static str,
        (&'static str, &'static str),
        Sex,
        i32,
    );
    let cases: [Case; 3] = [
        (
            "Name with 外字 (髙, 﨑)",
            "外字氏名（髙・﨑）",
            (VARIANT_NAMES[0], "タカサキ ハナ"),
            Female,
            52,
        ),
        (
            "Name outside the BMP (𠮷, 𩸽)",
            "BMP外の文字を含む氏名（𠮷・𩸽）",
            (VARIANT_NAMES[1], "ヨシダ ホッケタロウ"),
            Male,
            39,
        ),
        (
            "Name with variation sequences (辻, 葛 + VS17)",
            "異体字セレクタ付き氏名（辻・葛＋VS17）",
            (VARIANT_NAMES[2], "ツジ クズコ"),
            Female,
            71,
        ),
    ];
    cases
        .into_iter()
        .zip(first..)
        .map(|((case_en, case_ja, name, sex, age), no)| {
            Draft::new(no, case_en, case_ja, name, sex, b(age, no)).insurance(
                &KYOKAI_TOKYO,
                Insured,
                if age >= 70 { 20 } else { 30 },
                None,
                since(5),
                None,
            )
        })
        .collect()
}

// --- Renewed certificates (issue 11 §4) -----------------------------------------------------
// The 利用者証明用電子証明書 is valid for five birthdays and is renewed at the municipal office,
// or issued anew with a reissued card; either way the new certificate has a new serial and
// J-LIS revokes the old one (CRL reason superseded). The person stays the same: the backend
// answers the same person reference for the new certificate, and the old one proves nothing.

/// People whose current certificate renewed an earlier one: `(no, renewals so far)`.
const RENEWED: [(u32, u32); 2] = [(61, 1), (62, 2)];

/// How many times person `no`'s certificate was renewed before the population starts.
pub fn renewals_of(no: u32) -> u32 {
    RENEWED
        .iter()
        .find(|(n, _)| *n == no)
        .map_or(0, |(_, renewals)| *renewals)
}

fn renewed_people(
    today: NaiveDate,
    since: impl Fn(i32) -> NaiveDate,
    b: impl Fn(i32, u32) -> NaiveDate,
) -> Vec<Person> {
    use InsuredRelation::Insured;
    use Sex::{Female, Male};
    let previous = |no: u32| (0..renewals_of(no)).map(|g| card_seed_of(no, g)).collect();
    vec![
        Draft::new(
            61,
            "Certificate renewed (the old one revoked by renewal)",
            "電子証明書を更新（旧証明書は更新により失効）",
            ("更新 新太", "コウシン アラタ"),
            Male,
            b(46, 61),
        )
        .insurance(&KYOKAI_TOKYO, Insured, 30, None, since(12), None)
        .with(|p| p.previous_certificates = previous(61)),
        Draft::new(
            62,
            "Card reissued twice (two earlier certificates revoked)",
            "カード再交付2回（以前の証明書2枚は失効）",
            ("再交付 二葉", "サイコウフ フタバ"),
            Female,
            b(63, 62),
        )
        .insurance(&KOKUHO, Insured, 30, None, since(9), None)
        .with(|p| p.previous_certificates = previous(62)),
    ]
    .into_iter()
    .map(|d| d.done(today))
    .collect()
}

/// The card of person `no` as it was at certificate `generation` (0 = the first one; see
/// [`card_seed_of`]): the same PIN, another key and serial. A generation before the person's
/// current one is revoked by renewal; one after it is what [`crate::simulator::Running::
/// renew_certificate`] issues.
pub fn virtual_card_of_generation(no: u32, generation: u32) -> Result<VirtualCard, TestCaError> {
    card_with_seed(no, card_seed_of(no, generation), CertificateCase::Valid)
}
/// Every serial the CA has revoked as the population starts: the revoked cards, and the
/// certificates replaced by a renewal (reason superseded). A relay's demo revocation list
/// should hold them all.
pub fn revoked_serials(people: &[Person]) -> Vec<u64> {
    let mut serials: Vec<u64> = people
        .iter()
        .filter(|p| p.certificate == CertificateCase::Revoked)
        .map(Person::card_seed)
        .chain(
            people
                .iter()
                .flat_map(|p| p.previous_certificates.iter().copied()),
        )
        .collect();
    serials.sort_unstable();
    serials
}
// --- end of renewed certificates ------------------------------------------------------------

/// A small deterministic generator (xorshift), so histories are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn medical_history(person: &Person, today: NaiveDate) -> MedicalHistory {
    const DRUGS: [(&str, &str); 8] = [
        ("アムロジピン錠5mg", "1回1錠 1日1回 朝食後"),
        ("メトホルミン塩酸塩錠250mg", "1回1錠 1日2回 朝夕食後"),
        ("ロスバスタチン錠2.5mg", "1回1錠 1日1回 夕食後"),
        ("カルボシステイン錠500mg", "1回1錠 1日3回 毎食後"),
        ("アセトアミノフェン錠200mg", "1回2錠 疼痛時"),
        ("ランソプラゾールOD錠15mg", "1回1錠 1日1回 朝食後"),
        ("モンテルカスト錠10mg", "1回1錠 1日1回 就寝前"),
        ("ロキソプロフェンNa錠60mg", "1回1錠 1日3回 毎食後"),
    ];
    const CARE: [&str; 6] = [
        "外来診療（再診）・血液検査",
        "胸部エックス線撮影",
        "上部消化管内視鏡検査",
        "外来診療（初診）・インフルエンザ抗原検査",
        "白内障手術（水晶体再建術）",
        "腹腔鏡下胆嚢摘出術",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ u64::from(person.no));
    let age = today.year() - person.record.birth_date.year();
    let day = |rng: &mut Rng| today - chrono::Days::new(7 + rng.below(300));
    let mut history = MedicalHistory::default();
    for _ in 0..(1 + rng.below(3)) {
        let date = day(&mut rng);
        history.clinical.push(ClinicalEntry {
            date,
            institution: "うけつけ記念病院".to_owned(),
            description: CARE[rng.below(CARE.len() as u64) as usize].to_owned(),
        });
    }
    let count = if age < 15 {
        rng.below(2)
    } else {
        1 + rng.below(3)
    };
    for _ in 0..count {
        let (drug, dose) = DRUGS[rng.below(DRUGS.len() as u64) as usize];
        history.medications.push(MedicationEntry {
            dispensed_on: day(&mut rng),
            drug_name: drug.to_owned(),
            dose: dose.to_owned(),
            days: [7, 14, 28, 30][rng.below(4) as usize],
            pharmacy: "うけつけ薬局".to_owned(),
        });
    }
    // 特定健診 is for ages 40–74; later ages have 後期高齢者健診, so both get check-ups.
    if age >= 40 {
        for years_ago in [1, 2] {
            let height = 150.0 + rng.below(30) as f32;
            history.checkups.push(CheckupEntry {
                date: date(today.year() - years_ago, 6, 1 + (person.no % 28)),
                height_cm: height,
                weight_kg: (height - 105.0) + rng.below(20) as f32,
                systolic_mmhg: 110 + rng.below(40) as u16,
                diastolic_mmhg: 65 + rng.below(25) as u16,
                hba1c_percent: Some(5.0 + rng.below(20) as f32 / 10.0),
                ldl_mg_dl: Some(90 + rng.below(80) as u16),
            });
        }
    }
    history.clinical.sort_by_key(|e| e.date);
    history.medications.sort_by_key(|e| e.dispensed_on);
    history
}

fn key_cache() -> &'static Mutex<HashMap<u64, RsaPrivateKey>> {
    static CACHE: OnceLock<Mutex<HashMap<u64, RsaPrivateKey>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The card key of a seed, generated once per process (RSA-2048 generation is slow).
pub fn card_key(seed: u64) -> Result<RsaPrivateKey, TestCaError> {
    if let Ok(cache) = key_cache().lock()
        && let Some(key) = cache.get(&seed)
    {
        return Ok(key.clone());
    }
    let key = generate_rsa_key(seed)?;
    if let Ok(mut cache) = key_cache().lock() {
        cache.insert(seed, key.clone());
    }
    Ok(key)
}

/// The virtual My Number card of person `no` with their PIN, their certificate case applied.
pub fn virtual_card(no: u32, certificate: CertificateCase) -> Result<VirtualCard, TestCaError> {
    card_with_seed(no, card_seed(no), certificate)
}

fn card_with_seed(
    no: u32,
    seed: u64,
    certificate: CertificateCase,
) -> Result<VirtualCard, TestCaError> {
    let ca = keys::test_ca()?;
    let key = card_key(seed)?;
    let (not_before_unix, not_after_unix) = match certificate {
        CertificateCase::Valid | CertificateCase::Revoked => {
            (DEMO_NOT_BEFORE_UNIX, DEMO_NOT_AFTER_UNIX)
        }
        CertificateCase::Expired => (EXPIRED_NOT_BEFORE_UNIX, EXPIRED_NOT_AFTER_UNIX),
        CertificateCase::NotYetValid => (FUTURE_NOT_BEFORE_UNIX, FUTURE_NOT_AFTER_UNIX),
    };
    let cert = ca.issue_user_certificate(
        &UserCertificateRequest {
            serial: seed,
            subject_common_name: format!("UKETSUKE TEST CARD {seed}"),
            not_before_unix,
            not_after_unix,
        },
        &key.to_public_key(),
    )?;
    let pin = Pin::new(&pin_of(no)).map_err(|_| TestCaError::InvalidRequest("PIN"))?;
    Ok(VirtualCard::new(key, cert, ca.certificate_der(), &pin))
}

/// The CA used for everything above (re-exported for tests that forge certificates).
pub fn ca() -> Result<&'static TestCa, TestCaError> {
    keys::test_ca()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_with_unique_numbers_and_valid_pins() {
        let today = date(2026, 11, 21);
        let people = population(today);
        assert_eq!(people.len(), POPULATION_SIZE as usize);
        for (i, p) in people.iter().enumerate() {
            assert_eq!(p.no as usize, i + 1);
            assert!(Pin::new(&p.pin()).is_ok(), "PIN of {}", p.no);
        }
        assert_eq!(people[0].pin(), "1234");
        for prefix in [KYOKAI_TOKYO, KYOKAI_OSAKA, KUMIAI, KYOSAI, KOKUHO, KOKI].map(|i| i.prefix) {
            assert!(InsurerNumber::with_check_digit(prefix).is_ok(), "{prefix}");
        }
        assert!(welfare_payer().is_some());
    }

    #[test]
    fn variant_names_keep_their_code_points() {
        let people = population(date(2026, 11, 21));
        for name in VARIANT_NAMES {
            let person = people
                .iter()
                .find(|p| p.record.name == name)
                .unwrap_or_else(|| panic!("{name} is in the population"));
            assert!(person.case_en.starts_with("Name"), "{}", person.case_en);
        }
        let all: String = VARIANT_NAMES.concat();
        assert!(
            all.contains('\u{20BB7}') && all.contains('\u{29E3D}'),
            "outside the BMP"
        );
        assert!(all.contains('\u{FA11}') && all.contains('\u{9AD9}'), "外字");
        assert_eq!(all.matches('\u{E0100}').count(), 2, "variation sequences");
    }

    #[test]
    fn ages_and_dates_are_as_labelled() {
        let today = date(2026, 11, 21);
        let people = population(today);
        let age = |no: usize| {
            let b = people[no - 1].record.birth_date;
            today.years_since(b).unwrap_or(0)
        };
        assert_eq!(age(4), 4);
        assert!((70..=74).contains(&age(10)));
        assert!(age(7) >= 75);
        let ended = people[21]
            .record
            .insurance
            .as_ref()
            .and_then(|q| q.valid_until);
        assert_eq!(ended, Some(date(2026, 10, 31)));
    }

    #[test]
    fn renewed_people_have_distinct_previous_certificates() {
        let people = population(date(2026, 11, 21));
        let mut serials = std::collections::HashSet::new();
        for p in &people {
            assert!(serials.insert(p.card_seed()), "serial of {}", p.no);
            for old in &p.previous_certificates {
                assert!(serials.insert(*old), "old serial of {}", p.no);
            }
        }
        let renewed: Vec<_> = people
            .iter()
            .filter(|p| !p.previous_certificates.is_empty())
            .map(|p| (p.no, p.previous_certificates.clone(), p.card_seed()))
            .collect();
        assert_eq!(
            renewed,
            [
                (61, vec![10_061], 20_061),
                (62, vec![10_062, 20_062], 30_062)
            ]
        );
        assert_eq!(card_seed(1), 10_001);
        assert_eq!(revoked_serials(&people), [10_026, 10_061, 10_062, 20_062]);
    }
}
