//! The medical information section of a reception's page: tabs per category, fetched only
//! through the gate, filtered by month.

use chrono::NaiveDate;
use leptos::prelude::*;
use uketsuke_app::i18n::Lang;
use uketsuke_backend::contract::MedicalInformation;

use crate::{
    console::pages::{Viewer, tr},
    console::receptions::Detail,
    gate::Role,
};

pub(super) type MedicalAnswer = Option<(
    String,
    Result<MedicalInformation, crate::http::error::ApiError>,
)>;

pub(super) fn medical_section(
    l: Lang,
    viewer: &Viewer,
    d: &Detail,
    answer: MedicalAnswer,
    from: Option<String>,
    to: Option<String>,
) -> AnyView {
    let heading = view! { <h2 id="med-h">{tr(l, "医療情報", "Medical information")}</h2> };
    if !d.kind.offers_medical_information() {
        return view! {
            <section class="panel" aria-labelledby="med-h">{heading}
                <p>{tr(l, "資格確認限定型の受付には医療情報はありません。", "Eligibility-only receptions carry no medical information.")}</p>
            </section>
        }
        .into_any();
    }
    if viewer.staff.role != Role::MedicalViewer {
        return view! {
            <section class="panel" aria-labelledby="med-h">{heading}
                <p data-testid="medical-role-note">{tr(l,
                    "医療情報は「医療情報閲覧」の権限を持つ利用者だけが閲覧できます。",
                    "Only accounts with the role “medical information viewer” can read medical information.")}</p>
            </section>
        }
        .into_any();
    }
    let base = format!("/console/receptions/{}", d.id);
    let tab = |code: &'static str, label: &'static str, consented: bool| {
        let current = answer.as_ref().is_some_and(|(c, _)| c == code);
        let href = format!("{base}?tab={code}");
        consented.then(|| {
            view! {
                <li><a href=href aria-current=current.then_some("page")
                    class=if current { "tab current" } else { "tab" }>{label}</a></li>
            }
        })
    };
    let tabs = view! {
        <ul class="tabs" role="list">
            {tab("clinical_medication", tr(l, "診療・薬剤情報", "Care & medication"), d.consent.clinical_medication)}
            {tab("checkups", tr(l, "特定健診等情報", "Check-ups"), d.consent.checkups)}
        </ul>
    };
    let none_consented = !d.consent.clinical_medication && !d.consent.checkups;
    // A refused tab says why itself; the general line would only repeat it.
    let refused = answer.as_ref().is_some_and(|(_, result)| result.is_err());
    let intro = if refused {
        None
    } else if none_consented {
        Some(tr(
            l,
            "患者さんは医療情報の提供に同意していません。",
            "The patient did not consent to sharing medical information.",
        ))
    } else if !d.window_open {
        Some(tr(
            l,
            "閲覧期限外のため、医療情報は表示できません。",
            "Outside the consent window: medical information cannot be shown.",
        ))
    } else if answer.is_none() {
        Some(tr(
            l,
            "見る情報を選んでください。閲覧は記録されます。",
            "Choose what to read. Every view is logged.",
        ))
    } else {
        None
    };
    let content = answer.map(|(code, result)| match result {
        Ok(info) => medical_view(l, &base, &code, info, from.clone(), to.clone()),
        Err(error) => {
            let text = match error.code() {
                "window_closed" => tr(l, "閲覧期限外です。", "The consent window is closed."),
                "not_consented" => tr(
                    l,
                    "この情報の提供には同意がありません。",
                    "No consent for this information.",
                ),
                "role_not_permitted" => {
                    tr(l, "権限がありません。", "Your role does not allow this.")
                }
                "no_medical_information" => tr(
                    l,
                    "この受付には医療情報がありません。",
                    "This reception carries no medical information.",
                ),
                "not_confirmed" => tr(
                    l,
                    "資格確認が完了していません。",
                    "Eligibility is not confirmed yet.",
                ),
                "consent_pending" => tr(
                    l,
                    "患者さんが変更した同意を反映中です。少し待ってから、もう一度開いてください。",
                    "The patient's changed consent is still being passed on. Wait a moment and open it again.",
                ),
                _ => tr(l, "表示できませんでした。", "This could not be shown."),
            };
            view! {
                <p class="notice" role="alert" data-testid="medical-refused">
                    {text}" "<code>{error.code()}</code>
                </p>
            }
            .into_any()
        }
    });
    view! {
        <section class="panel" aria-labelledby="med-h">
            {heading}
            {tabs}
            {intro.map(|t| view! { <p data-testid="medical-intro">{t}</p> })}
            {content}
        </section>
    }
    .into_any()
}

fn in_months(date: NaiveDate, from: &Option<String>, to: &Option<String>) -> bool {
    let month = date.format("%Y-%m").to_string();
    from.as_ref().is_none_or(|f| month >= *f) && to.as_ref().is_none_or(|t| month <= *t)
}

fn medical_view(
    l: Lang,
    base: &str,
    code: &str,
    info: MedicalInformation,
    from: Option<String>,
    to: Option<String>,
) -> AnyView {
    match info {
        MedicalInformation::ClinicalMedication {
            clinical,
            medications,
        } => {
            let clinical_rows = clinical
                .into_iter()
                .filter(|c| in_months(c.date, &from, &to))
                .map(|c| view! {
                    <tr><td>{c.date.format("%Y-%m-%d").to_string()}</td><td>{c.institution}</td><td>{c.description}</td></tr>
                })
                .collect_view();
            let medication_rows = medications
                .into_iter()
                .filter(|m| in_months(m.dispensed_on, &from, &to))
                .map(|m| view! {
                    <tr><td>{m.dispensed_on.format("%Y-%m-%d").to_string()}</td><td>{m.drug_name}</td>
                        <td>{m.dose}</td><td>{m.days}</td><td>{m.pharmacy}</td></tr>
                })
                .collect_view();
            view! {
                <form method="get" action=base.to_owned() class="inline-form">
                    <input type="hidden" name="tab" value=code.to_owned()/>
                    <label>{tr(l, "診療年月（から）", "From month")}
                        <input type="month" name="from" value=from.clone().unwrap_or_default()/></label>
                    <label>{tr(l, "診療年月（まで）", "To month")}
                        <input type="month" name="to" value=to.clone().unwrap_or_default()/></label>
                    <button type="submit" class="secondary">{tr(l, "絞り込む", "Filter")}</button>
                </form>
                <h3>{tr(l, "診療情報", "Care")}</h3>
                <div class="table-wrap"><table data-testid="clinical">
                    <thead><tr><th scope="col">{tr(l, "日付", "Date")}</th><th scope="col">{tr(l, "医療機関", "Institution")}</th>
                        <th scope="col">{tr(l, "内容", "Description")}</th></tr></thead>
                    <tbody>{clinical_rows}</tbody>
                </table></div>
                <h3>{tr(l, "薬剤情報", "Medication")}</h3>
                <div class="table-wrap"><table data-testid="medications">
                    <thead><tr><th scope="col">{tr(l, "調剤日", "Dispensed")}</th><th scope="col">{tr(l, "薬剤名", "Drug")}</th>
                        <th scope="col">{tr(l, "用量", "Dose")}</th><th scope="col">{tr(l, "日数", "Days")}</th>
                        <th scope="col">{tr(l, "薬局", "Pharmacy")}</th></tr></thead>
                    <tbody>{medication_rows}</tbody>
                </table></div>
            }
            .into_any()
        }
        MedicalInformation::Checkups { checkups } => {
            let rows = checkups
                .into_iter()
                .map(|c| {
                    let opt = |v: Option<String>| v.unwrap_or_else(|| "—".to_owned());
                    view! {
                        <tr><td>{c.date.format("%Y-%m-%d").to_string()}</td>
                            <td>{format!("{:.1}", c.height_cm)}</td><td>{format!("{:.1}", c.weight_kg)}</td>
                            <td>{format!("{}/{}", c.systolic_mmhg, c.diastolic_mmhg)}</td>
                            <td>{opt(c.hba1c_percent.map(|v| format!("{v:.1}")))}</td>
                            <td>{opt(c.ldl_mg_dl.map(|v| v.to_string()))}</td></tr>
                    }
                })
                .collect_view();
            view! {
                <div class="table-wrap"><table data-testid="checkups">
                    <thead><tr><th scope="col">{tr(l, "受診日", "Date")}</th><th scope="col">{tr(l, "身長 cm", "Height cm")}</th>
                        <th scope="col">{tr(l, "体重 kg", "Weight kg")}</th><th scope="col">{tr(l, "血圧 mmHg", "Blood pressure mmHg")}</th>
                        <th scope="col">"HbA1c %"</th><th scope="col">"LDL mg/dL"</th></tr></thead>
                    <tbody>{rows}</tbody>
                </table></div>
            }
            .into_any()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_filters_are_inclusive() {
        let day = NaiveDate::from_ymd_opt(2026, 10, 15).expect("date");
        assert!(in_months(day, &None, &None));
        assert!(in_months(
            day,
            &Some("2026-10".into()),
            &Some("2026-10".into())
        ));
        assert!(!in_months(day, &Some("2026-11".into()), &None));
        assert!(!in_months(day, &None, &Some("2026-09".into())));
    }
}
