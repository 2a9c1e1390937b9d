//! The eligibility section of a reception's page: the backend's answer as stored, every field.

use chrono::NaiveDate;
use leptos::prelude::*;
use uketsuke_app::i18n::Lang;
use uketsuke_domain::eligibility::{
    EligibilityOutcome, EligibilityRecord, EligibilityWarning, InsuredRelation,
    NoEligibilityReason, Sex, TicketKind,
};

use super::{jst_time, reason_text};
use crate::{console::pages::tr, console::receptions::Detail, relay::StoredEligibility};

pub(super) fn eligibility_section(l: Lang, d: &Detail) -> AnyView {
    let at = d.eligibility_at.map(jst_time);
    let content = match &d.eligibility {
        None => view! {
            <p data-testid="eligibility-pending">{tr(l,
                "資格確認の結果を待っています。届き次第この画面に表示されます。",
                "Waiting for the eligibility answer; it appears here when it arrives.")}</p>
        }
        .into_any(),
        Some(StoredEligibility::Refused { code }) => view! {
            <p class="notice">{tr(l, "資格確認はできませんでした: ", "Eligibility could not be confirmed: ")}
                {reason_text(l, code)}</p>
        }
        .into_any(),
        Some(StoredEligibility::Answer { outcome: EligibilityOutcome::NotAvailable { reason }, .. }) => {
            let text = match reason {
                NoEligibilityReason::UnderJlisReview => tr(l,
                    "閲覧停止中です（J-LIS照会で不一致）。資格情報は表示できません。保険証等で確認してください。",
                    "Viewing is suspended (J-LIS mismatch under review). Confirm eligibility another way."),
                NoEligibilityReason::CardNotRegisteredForInsurance => tr(l,
                    "このカードは健康保険証として利用登録されていません。",
                    "This card is not registered for use as a health insurance card."),
                NoEligibilityReason::NoQualification => tr(l,
                    "有効な資格が見つかりませんでした。",
                    "No valid qualification was found."),
            };
            view! { <p class="notice" data-testid="eligibility-none">{text}</p> }.into_any()
        }
        Some(StoredEligibility::Answer { outcome: EligibilityOutcome::Found { record }, confirmed_on }) => {
            record_view(l, record, *confirmed_on)
        }
    };
    view! {
        <section class="panel" aria-labelledby="elig-h">
            <h2 id="elig-h">{tr(l, "資格情報", "Eligibility")}</h2>
            {at.map(|at| view! { <p class="muted">{tr(l, "取得日時: ", "Received: ")}{at}</p> })}
            {content}
        </section>
    }
    .into_any()
}

fn record_view(l: Lang, r: &EligibilityRecord, confirmed_on: NaiveDate) -> AnyView {
    let sex = match r.sex {
        Sex::Male => tr(l, "男", "Male"),
        Sex::Female => tr(l, "女", "Female"),
        Sex::Unknown => tr(l, "未設定", "Not set"),
    };
    let hidden = tr(l, "（非表示: 不開示該当）", "(hidden: non-disclosure)");
    let address = r.address.clone().unwrap_or_else(|| hidden.to_owned());
    let postcode = r.postcode.clone().unwrap_or_else(|| hidden.to_owned());
    let warnings = r
        .warnings
        .iter()
        .map(|w| match w {
            EligibilityWarning::SocialInsuranceMismatch { ticket_says } => {
                let said = if *ticket_says { tr(l, "あり", "yes") } else { tr(l, "なし", "no") };
                view! {
                    <p class="warning" role="note" data-testid="social-insurance-warning">
                        <strong>{tr(l, "社会保険状況の確認が必要です。", "Check the social-insurance status.")}</strong>
                        " "
                        {tr(l, "医療券等の社会保険状況（", "The welfare ticket says social insurance: ")}
                        {said}
                        {tr(l, "）と医療保険の資格が一致しません。福祉事務所または保険者に電話で確認してください。",
                            "; this disagrees with the insurance records. Confirm by phone with the welfare office or the insurer.")}
                    </p>
                }
            }
        })
        .collect_view();
    let insurance = r.insurance.as_ref().map(|q| {
        let relation = match q.relation {
            InsuredRelation::Insured => tr(l, "本人", "Insured"),
            InsuredRelation::Dependent => tr(l, "家族", "Dependent"),
        };
        let date = |d: Option<NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_else(|| "—".to_owned());
        let valid_until = q
            .valid_until
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| tr(l, "（期限なし）", "(open-ended)").to_owned());
        view! {
            <h3>{tr(l, "医療保険", "Health insurance")}</h3>
            <dl class="facts">
                <dt>{tr(l, "保険者番号", "Insurer number")}</dt><dd>{q.insurer_number.as_str().to_owned()}</dd>
                <dt>{tr(l, "保険者名", "Insurer")}</dt><dd>{q.insurer_name.clone()}</dd>
                <dt>{tr(l, "記号", "Symbol")}</dt><dd>{q.symbol.clone().unwrap_or_else(|| "—".to_owned())}</dd>
                <dt>{tr(l, "番号", "Number")}</dt><dd>{q.number.clone()}</dd>
                <dt>{tr(l, "枝番", "Branch")}</dt><dd>{q.branch.clone().unwrap_or_else(|| "—".to_owned())}</dd>
                <dt>{tr(l, "本人・家族", "Relation")}</dt><dd>{relation}</dd>
                <dt>{tr(l, "資格取得日", "Acquired")}</dt><dd>{date(q.acquired_on)}</dd>
                <dt>{tr(l, "有効期間", "Valid")}</dt><dd>{date(q.valid_from)}" – "{valid_until}</dd>
                <dt>{tr(l, "負担割合", "Co-payment")}</dt>
                <dd>{q.burden_percent.map(|p| format!("{}{}", p / 10, tr(l, "割", "0 %"))).unwrap_or_else(|| "—".to_owned())}</dd>
                <dt>{tr(l, "限度額適用区分", "Limit category")}</dt><dd>{q.limit_category.clone().unwrap_or_else(|| "—".to_owned())}</dd>
            </dl>
        }
    });
    let welfare = r.welfare.as_ref().map(|w| {
        let not_contracted = tr(l, "（未委託のため非表示）", "(hidden: not contracted)");
        let payer = w
            .public_payer_number
            .as_ref()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| not_contracted.to_owned());
        let recipient = w
            .recipient_number
            .clone()
            .unwrap_or_else(|| not_contracted.to_owned());
        let tickets = w
            .tickets
            .iter()
            .map(|t| {
                let kind = match t.kind {
                    TicketKind::Medical => tr(l, "医療券", "Medical ticket"),
                    TicketKind::Dispensing => tr(l, "調剤券", "Dispensing ticket"),
                };
                let pay = t
                    .patient_payment_yen
                    .map(|y| format!("{y}{}", tr(l, "円", " yen")))
                    .unwrap_or_else(|| "—".to_owned());
                view! {
                    <li>{kind}" "{t.valid_from.format("%Y-%m-%d").to_string()}" – "
                        {t.valid_until.format("%Y-%m-%d").to_string()}" · "
                        {tr(l, "本人支払額 ", "patient pays ")}{pay}</li>
                }
            })
            .collect_view();
        view! {
            <h3>{tr(l, "医療扶助", "Public assistance (医療扶助)")}</h3>
            <dl class="facts">
                <dt>{tr(l, "公費負担者番号", "Public payer number")}</dt><dd>{payer}</dd>
                <dt>{tr(l, "受給者番号", "Recipient number")}</dt><dd>{recipient}</dd>
            </dl>
            <ul>{tickets}</ul>
        }
    });
    view! {
        {warnings}
        <dl class="facts" data-testid="eligibility">
            <dt>{tr(l, "氏名", "Name")}</dt><dd data-testid="patient-name">{r.name.clone()}</dd>
            <dt>{tr(l, "カナ氏名", "Name (kana)")}</dt><dd>{r.name_kana.clone()}</dd>
            <dt>{tr(l, "性別", "Sex")}</dt><dd>{sex}</dd>
            <dt>{tr(l, "生年月日", "Date of birth")}</dt><dd>{r.birth_date.format("%Y-%m-%d").to_string()}</dd>
            <dt>{tr(l, "郵便番号", "Postcode")}</dt><dd>{postcode}</dd>
            <dt>{tr(l, "住所", "Address")}</dt><dd>{address}</dd>
            <dt>{tr(l, "確認日", "Confirmed on")}</dt><dd>{confirmed_on.format("%Y-%m-%d").to_string()}</dd>
        </dl>
        {insurance}
        {welfare}
    }
    .into_any()
}
