//! The demo people the practice card can stand for, with their demo PINs: shown on the card
//! screen in demo mode. Plain data, so both the server's render and the browser have it.

/// What a demo person's card is like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoCertificate {
    Valid,
    Revoked,
    Expired,
}

/// A person of the demo population the practice card can stand for.
#[derive(Clone, Copy, Debug)]
pub struct DemoPerson {
    pub no: u32,
    pub case_ja: &'static str,
    pub case_en: &'static str,
    pub certificate: DemoCertificate,
    /// How often the person's certificate was renewed (each renewal a new key and serial, the
    /// old certificate revoked): the practice card holds the current one.
    pub renewals: u32,
}

/// A selection covering the population's cases (the simulator's README lists all 60).
pub const DEMO_PEOPLE: [DemoPerson; 19] = [
    DemoPerson {
        no: 1,
        case_ja: "協会けんぽ 本人 3割",
        case_en: "Kyokai kenpo, insured, 30%",
        certificate: DemoCertificate::Valid,
        renewals: 0,
    },
    DemoPerson {
        no: 4,
        case_ja: "組合健保 家族 未就学児",
        case_en: "Union kenpo, child aged 4",
        certificate: DemoCertificate::Valid,
        renewals: 0,
    },
    DemoPerson {
        no: 7,
        case_ja: "後期高齢者 1割",
        case_en: "Late-stage elderly, 10%",
        certificate: DemoCertificate::Valid,
        renewals: 0,
    },
    DemoPerson {
        no: 15,
        case_ja: "医療扶助のみ",
        case_en: "Medical assistance only",
        certificate: DemoCertificate::Valid,
        renewals: 0,
    },
    DemoPerson {
        no: 16,
        case_ja: "保険＋医療扶助（併用）",
        case_en: "Insurance and welfare",
        certificate: DemoCertificate::Valid,
        renewals: 0,
    },
    DemoPerson {
        no: 17,
        case_ja: "医療扶助 未委託",
        case_en: "Welfare, clinic not contracted",
        certificate: DemoCertificate::Valid,
        renewals: 0,
    },
    DemoPerson {
        no: 18,
        case_ja: "不開示該当フラグ",
        case_en: "Non-disclosure flag",
        certificate: DemoCertificate::Valid,
        renewals: 0,
    },
    DemoPerson {
        no: 20,
        case_ja: "J-LIS照会不一致（閲覧停止）",
        case_en: "J-LIS mismatch (under review)",
        certificate: DemoCertificate::Valid,
        renewals: 0,
    },
    DemoPerson {
        no: 21,
        case_ja: "健康保険証利用登録なし",
        case_en: "Not registered for insurance use",
        certificate: DemoCertificate::Valid,
        renewals: 0,
    },
    DemoPerson {
        no: 22,
        case_ja: "先月末で資格喪失",
        case_en: "Insurance ended last month",
        certificate: DemoCertificate::Valid,
        renewals: 0,
    },
    DemoPerson {
        no: 23,
        case_ja: "保険資格なし",
        case_en: "No insurance at all",
        certificate: DemoCertificate::Valid,
        renewals: 0,
    },
    DemoPerson {
        no: 26,
        case_ja: "失効した電子証明書",
        case_en: "Revoked certificate",
        certificate: DemoCertificate::Revoked,
        renewals: 0,
    },
    DemoPerson {
        no: 27,
        case_ja: "有効期限切れの電子証明書",
        case_en: "Expired certificate",
        certificate: DemoCertificate::Expired,
        renewals: 0,
    },
    DemoPerson {
        no: 29,
        case_ja: "長い氏名",
        case_en: "Long name",
        certificate: DemoCertificate::Valid,
        renewals: 0,
    },
    DemoPerson {
        no: 30,
        case_ja: "アルファベット氏名",
        case_en: "Name in the alphabet",
        certificate: DemoCertificate::Valid,
        renewals: 0,
    },
    DemoPerson {
        no: 35,
        case_ja: "外字氏名（髙・﨑）",
        case_en: "Name with 外字 (髙, 﨑)",
        certificate: DemoCertificate::Valid,
        renewals: 0,
    },
    DemoPerson {
        no: 36,
        case_ja: "BMP外の文字を含む氏名（𠮷・𩸽）",
        case_en: "Name outside the BMP (𠮷, 𩸽)",
        certificate: DemoCertificate::Valid,
        renewals: 0,
    },
    DemoPerson {
        no: 37,
        case_ja: "異体字セレクタ付き氏名（辻・葛＋VS17）",
        case_en: "Name with variation sequences (辻, 葛 + VS17)",
        certificate: DemoCertificate::Valid,
        renewals: 0,
    },
    DemoPerson {
        no: 61,
        case_ja: "電子証明書を更新済み（新しい証明書）",
        case_en: "Certificate renewed (the new one)",
        certificate: DemoCertificate::Valid,
        renewals: 1,
    },
];

/// The demo PIN of person `no` (the simulator's rule: person 1 has 1234).
pub fn demo_pin(no: u32) -> String {
    if no == 1 {
        "1234".to_owned()
    } else {
        format!("{:04}", (1234 + no * 1111) % 10_000)
    }
}
