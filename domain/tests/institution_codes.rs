//! Published codes through the parsers: the 医療機関等コード sample in `tests/data/` (drawn from
//! the 地方厚生局 lists, every prefecture; see `domain/README.md` for the sources and the full
//! counts) and the field samples in `../shared/field/codes/` (保険者番号 too).

use std::collections::BTreeMap;

use uketsuke_domain::codes::rule::{DENTAL_ESTABLISHED, PHARMACY_ESTABLISHED};
use uketsuke_domain::codes::{
    CheckDigitRule, CodeError, InstitutionCode, InsurerNumber, ScoreTable, institution_rule,
};

const SAMPLE: &str = include_str!("data/institution-codes.csv");
/// A file of the field data (`codes/`): under `SHARED_FIELD_DIR` if set, else `shared/field`
/// beside the checkout, where CI has it.
fn field_codes(name: &str) -> String {
    let path = std::env::var_os("SHARED_FIELD_DIR")
        .map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/field"),
            std::path::PathBuf::from,
        )
        .join("codes")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("field sample {}: {e}", path.display()))
}

/// The sources named in the sample's `source` column (described in `domain/README.md`).
const SOURCES: [&str; 7] = [
    "facility-standards-2026",
    "kouseikyoku-2025-08",
    "kouseikyoku-2024-09",
    "kouseikyoku-2022-09",
    "seed-003",
    "ja-wikipedia",
    "q-suke6-manual",
];

struct Row<'a> {
    code: &'a str,
    prefecture: u8,
    table: u8,
}

fn sample() -> Vec<Row<'static>> {
    let mut lines = SAMPLE.lines();
    assert_eq!(lines.next(), Some("code,prefecture,table,source"));
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            let [code, prefecture, table, source] = fields[..] else {
                panic!("four fields: {line}");
            };
            assert!(SOURCES.contains(&source), "unknown source: {line}");
            Row {
                code,
                prefecture: prefecture.parse().expect("prefecture"),
                table: table.parse().expect("table"),
            }
        })
        .collect()
}

#[test]
fn every_published_code_in_the_sample_passes() {
    let rows = sample();
    let mut per_prefecture: BTreeMap<(u8, u8), usize> = BTreeMap::new();
    for row in &rows {
        let code: InstitutionCode = row
            .code
            .parse()
            .unwrap_or_else(|e: CodeError| panic!("{}: {}", row.code, e.message_en()));
        assert_eq!(code.prefecture(), row.prefecture, "{}", row.code);
        assert_eq!(code.score_table().number(), row.table, "{}", row.code);
        *per_prefecture
            .entry((row.prefecture, row.table))
            .or_default() += 1;
    }
    // 医科 codes of every one of the 47 prefectures, at least 25 each.
    for prefecture in 1..=47 {
        let n = per_prefecture.get(&(prefecture, 1)).copied().unwrap_or(0);
        assert!(n >= 25, "{prefecture:02}: {n} 医科 codes");
    }
    // 歯科 and 薬局 codes of every prefecture whose rule for them is established.
    for (table, prefectures) in [(3, &DENTAL_ESTABLISHED[..]), (4, &PHARMACY_ESTABLISHED[..])] {
        for &prefecture in prefectures {
            let n = per_prefecture
                .get(&(prefecture, table))
                .copied()
                .unwrap_or(0);
            assert!(n >= 2, "{prefecture:02} table {table}: {n} codes");
        }
    }
    assert!(rows.len() > 1700, "{}", rows.len());
}

#[test]
fn a_published_code_with_another_check_digit_is_refused_naming_its_rule() {
    for row in sample() {
        let table = ScoreTable::from_number(row.table).expect("table");
        let rule = institution_rule(row.prefecture, table);
        if !rule.established {
            continue;
        }
        let (body, last) = row.code.split_at(9);
        let last: u8 = last.parse().expect("digit");
        for typo in (0..10u8).filter(|d| *d != last) {
            let typed = format!("{body}{typo}");
            match typed.parse::<InstitutionCode>() {
                Err(CodeError::BadCheckDigit {
                    found,
                    expected,
                    rule: named,
                    alternative: None,
                    institution,
                }) => {
                    assert_eq!((found, expected), (typo, last), "{typed}");
                    assert_eq!(named, rule.rule, "{typed}");
                    assert_eq!(institution, Some((row.prefecture, table)), "{typed}");
                }
                other => panic!("{typed}: {other:?}"),
            }
        }
    }
}

#[test]
fn the_six_digit_rule_is_the_rule_of_saitama_chiba_tokyo_kanagawa_in_every_table() {
    for row in sample() {
        let digits: Vec<u8> = row.code.bytes().map(|b| b - b'0').collect();
        let nine = CheckDigitRule::InstitutionNine.check_digit_of(&digits[..9]);
        let six = CheckDigitRule::InstitutionSix.check_digit_of(&digits[..9]);
        let last = Some(digits[9]);
        let (own, other) = if (11..=14).contains(&row.prefecture) {
            (six, nine)
        } else {
            (nine, six)
        };
        assert_eq!(own, last, "{}", row.code);
        // The other rule gives another digit unless 都道府県番号 and 点数表番号 add a
        // multiple of ten (then the two rules agree).
        let prefix_sum = [digits[0] * 2, digits[1], digits[2] * 2]
            .iter()
            .map(|p| p / 10 + p % 10)
            .sum::<u8>();
        assert_eq!(other == last, prefix_sum % 10 == 0, "{}", row.code);
    }
}

#[test]
fn field_institution_codes_pass() {
    let text = field_codes("institution-codes-sample.csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("code10,name,prefecture,valid"));
    let mut n = 0;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let [code, name, prefecture, valid] = fields[..] else {
            panic!("four fields: {line}");
        };
        let parsed = code.parse::<InstitutionCode>();
        match valid {
            "yes" => {
                let parsed = parsed.unwrap_or_else(|e| panic!("{code} {name}: {}", e.message_ja()));
                assert_eq!(format!("{:02}", parsed.prefecture()), prefecture, "{code}");
            }
            "no" => assert!(parsed.is_err(), "{code} {name}"),
            other => panic!("valid column {other:?}"),
        }
        n += 1;
    }
    assert!(n >= 6, "{n} field codes");
}

#[test]
fn field_insurer_numbers() {
    let text = field_codes("insurer-numbers-sample.txt");
    let mut n = 0;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(number), Some(valid)) = (fields.next(), fields.next()) else {
            panic!("number and verdict: {line}");
        };
        let parsed = number.parse::<InsurerNumber>();
        match valid {
            "valid" => {
                let parsed = parsed.unwrap_or_else(|e| panic!("{number}: {}", e.message_ja()));
                assert_eq!(parsed.eight_digit_form(), number.to_owned());
                if let Some(six_digits) = number.strip_prefix("00") {
                    assert!(parsed.is_national_health_insurance(), "{number}");
                    assert_eq!(parsed.law_number(), None, "{number}");
                    assert_eq!(parsed.as_str(), six_digits);
                } else {
                    assert_eq!(parsed.law_number(), Some(&number[0..2]));
                }
            }
            "invalid" => {
                let e = parsed.expect_err(number);
                assert!(!e.message_ja().is_empty() && !e.message_en().is_empty());
            }
            other => panic!("verdict {other:?}"),
        }
        n += 1;
    }
    assert!(n >= 3, "{n} field numbers");
    // The line's own claims: 00131011 is 国保 131011, and 06123456 would need check digit 9.
    let kokuho: InsurerNumber = "00131011".parse().expect("valid");
    assert_eq!(kokuho.as_str(), "131011");
    assert_eq!(
        "06123456".parse::<InsurerNumber>(),
        Err(CodeError::BadCheckDigit {
            found: 6,
            expected: 9,
            rule: CheckDigitRule::Preceding { digits: 7 },
            alternative: None,
            institution: None,
        })
    );
}
