//! Prints the population as the Markdown table of backend/README.md, for the given JST date
//! (default 2026-11-21): `cargo run -p uketsuke-backend --features simulator --example population`.

use chrono::NaiveDate;
use uketsuke_backend::simulator::keys::{self, DEMO_CLINIC};
use uketsuke_backend::simulator::population::{CertificateCase, population};

fn main() {
    let today = std::env::args()
        .nth(1)
        .and_then(|d| d.parse::<NaiveDate>().ok())
        .or_else(|| NaiveDate::from_ymd_opt(2026, 11, 21))
        .unwrap_or_default();
    let demo = keys::institution_code(DEMO_CLINIC);
    println!("| # | name | case | insurance | welfare | card | PIN |");
    println!("|---|---|---|---|---|---|---|");
    for p in population(today) {
        let insurance = p.record.insurance.as_ref().map_or("—".to_owned(), |q| {
            format!(
                "{} {} {}%{}",
                q.insurer_number,
                if q.relation == uketsuke_domain::eligibility::InsuredRelation::Insured {
                    "本人"
                } else {
                    "家族"
                },
                q.burden_percent.unwrap_or(0),
                q.limit_category
                    .as_deref()
                    .map(|l| format!(" 限度額{l}"))
                    .unwrap_or_default()
            )
        });
        let welfare = match &p.record.welfare {
            None => "—".to_owned(),
            Some(w) => format!(
                "医療扶助 社保{}{}",
                if w.tickets.first().is_some_and(|t| t.social_insurance) {
                    "あり"
                } else {
                    "なし"
                },
                if p.welfare_contracted_at.iter().any(|c| c == demo.as_str()) {
                    " 委託"
                } else {
                    " 未委託"
                }
            ),
        };
        let mut card = match p.certificate {
            CertificateCase::Valid => "valid",
            CertificateCase::Revoked => "revoked",
            CertificateCase::Expired => "expired",
            CertificateCase::NotYetValid => "not yet valid",
        }
        .to_owned();
        if !p.previous_certificates.is_empty() {
            let old: Vec<String> = p.previous_certificates.iter().map(u64::to_string).collect();
            card = format!(
                "{card} ({}; {} revoked by renewal)",
                p.card_seed(),
                old.join(", ")
            );
        }
        println!(
            "| {} | {}（{}） | {} / {} | {} | {} | {} | {} |",
            p.no,
            p.record.name,
            p.record.name_kana,
            p.case_ja,
            p.case_en,
            insurance,
            welfare,
            card,
            p.pin()
        );
    }
}
