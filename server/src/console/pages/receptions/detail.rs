//! One reception's page: summary, 照会番号, eligibility, medical information through the gate,
//! home visits, export and withdrawal.

use axum::{
    Json,
    extract::{Path, State},
    response::Response,
};
use chrono::NaiveDate;
use leptos::prelude::*;
use uketsuke_app::i18n::Lang;
use uketsuke_backend::contract::PrescriptionMethod;
use uketsuke_domain::{ReceptionKind, Window};

use super::{consent_text, held_text, jst_time, kind_name, reason_text, status_text};
use super::{eligibility::eligibility_section, medical::medical_section};
use crate::{
    AppState,
    console::pages::{PageLang, Section, Signed, tr},
    console::receptions::{self as api, Detail},
};

/// `GET /console/receptions/{id}?tab=…&from=YYYY-MM&to=YYYY-MM`.
pub async fn detail(
    State(state): State<AppState>,
    lang: PageLang,
    Path(id): Path<String>,
    signed: Signed,
) -> Response {
    let tab = signed.param("tab");
    let from = signed.param("from").filter(|m| month_ok(m));
    let to = signed.param("to").filter(|m| month_ok(m));
    let viewer = &signed.viewer;
    let detail =
        match api::detail(State(state.clone()), viewer.staff.clone(), Path(id.clone())).await {
            Ok(Json(detail)) => detail,
            Err(error) => return signed.refused(lang, error),
        };
    let l = lang.lang;
    // A tab asked for in the address is fetched through the gate exactly as the API does;
    // a refusal is shown in place of the data.
    let medical = match tab.as_deref() {
        Some(code @ ("clinical_medication" | "checkups")) => {
            let answer = api::medical(
                State(state.clone()),
                viewer.staff.clone(),
                Path((id.clone(), code.to_owned())),
            )
            .await;
            Some((code.to_owned(), answer.map(|Json(info)| info)))
        }
        _ => None,
    };
    let title = match &detail.reception_number {
        Some(number) => format!("{} {number}", tr(l, "受付番号", "Reception")),
        None => tr(l, "受付", "Reception").to_owned(),
    };
    let body = view! {
        <p><a href="/console">{tr(l, "← 受付一覧", "← Receptions")}</a></p>
        <h1 data-testid="detail-title">{title.clone()}</h1>
        {summary(l, &detail)}
        {patient_ref_form(l, &detail)}
        {eligibility_section(l, &detail)}
        {medical_section(l, viewer, &detail, medical, from, to)}
        {home_visit_section(l, &detail)}
        {actions_section(l, &detail)}
    }
    .into_any();
    signed.page(lang, title, Section::Receptions, body)
}

fn month_ok(text: &str) -> bool {
    NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").is_ok()
}

fn summary(l: Lang, d: &Detail) -> AnyView {
    let identity = match (d.identity_method.as_str(), &d.staff_account) {
        ("visual_check", Some(staff)) => format!("{} ({staff})", tr(l, "目視確認", "Visual check")),
        _ => tr(l, "マイナンバーカード（暗証番号）", "My Number card (PIN)").to_owned(),
    };
    let prescription = d.consent.prescription_method.map(|m| match m {
        PrescriptionMethod::Electronic => tr(l, "電子処方箋", "Electronic prescription"),
        PrescriptionMethod::Paper => tr(l, "紙の処方箋", "Paper prescription"),
    });
    let window = window_text(l, d);
    let status_class = format!("status status-{}", d.status);
    let refusal = d.refusal.clone().map(|code| reason_text(l, &code));
    let held = d.relay_held.clone().map(|code| held_text(l, &code));
    let visits = (!d.home_visits.is_empty()).then(|| {
        d.home_visits
            .iter()
            .map(|v| v.format("%Y-%m-%d").to_string())
            .collect::<Vec<_>>()
            .join(", ")
    });
    view! {
        <section class="panel" aria-labelledby="summary-h">
            <h2 id="summary-h">{tr(l, "受付の内容", "Reception")}</h2>
            <dl class="facts">
                <dt>{tr(l, "状態", "Status")}</dt>
                <dd><span class=status_class data-testid="status">{status_text(l, d.status)}</span>
                    {refusal.map(|r| view! { " " <span class="muted">{r}</span> })}
                    {held.map(|h| view! { <br/><span class="notice" data-testid="relay-held">{h}</span> })}</dd>
                <dt>{tr(l, "種別", "Kind")}</dt><dd>{kind_name(l, d.kind)}</dd>
                <dt>{tr(l, "受診日", "Visit date")}</dt><dd>{d.visit_date.format("%Y-%m-%d").to_string()}</dd>
                <dt>{tr(l, "受付日時", "Submitted")}</dt><dd>{jst_time(d.submitted_at)}</dd>
                <dt>{tr(l, "本人確認", "Identity")}</dt><dd>{identity}</dd>
                <dt>{tr(l, "医療情報の提供", "Medical information consent")}</dt>
                <dd data-testid="consent">{consent_text(l, &d.consent, d.kind)}</dd>
                {prescription.map(|p| view! { <dt>{tr(l, "処方箋", "Prescription")}</dt><dd>{p}</dd> })}
                <dt>{tr(l, "閲覧期限", "Readable until")}</dt><dd data-testid="window">{window}</dd>
                {visits.map(|v| view! { <dt>{tr(l, "訪問日", "Visits recorded")}</dt><dd>{v}</dd> })}
                {insurance_use_text(l, d).map(|text| view! {
                    <dt>{tr(l, "健康保険証利用登録", "Card registered for insurance use")}</dt>
                    <dd data-testid="insurance-use">{text}</dd>
                })}
            </dl>
        </section>
    }
    .into_any()
}

/// 健康保険証利用登録 through this reception, as staff read it: when the card was registered and
/// which eligibility followed (the eligibility section below shows that answer).
fn insurance_use_text(l: Lang, d: &Detail) -> Option<String> {
    let used = d.insurance_use.as_ref()?;
    Some(match used.state {
        "registered" => {
            let at = used.registered_at.map(jst_time).unwrap_or_default();
            let then = match d.eligibility_at {
                Some(e) if used.registered_at.is_some_and(|r| e >= r) => format!(
                    "{} {}",
                    tr(l, "その後の資格確認:", "eligibility confirmed again at"),
                    jst_time(e)
                ),
                _ => tr(
                    l,
                    "資格を再確認しています",
                    "eligibility being confirmed again",
                )
                .to_owned(),
            };
            let (open, close) = match l {
                Lang::Ja => ("（", "）"),
                Lang::En => (" (", ")"),
            };
            format!(
                "{} {at}{open}{then}{close}",
                tr(
                    l,
                    "この受付で登録しました",
                    "Registered through this reception at"
                )
            )
        }
        "pending" => tr(
            l,
            "患者さんの申し込みを送信中です",
            "The patient's request is being sent",
        )
        .to_owned(),
        _ => format!(
            "{}: {}",
            tr(l, "登録できませんでした", "Not registered"),
            reason_text(l, used.refusal.as_deref().unwrap_or("internal"))
        ),
    })
}

fn window_text(l: Lang, d: &Detail) -> String {
    if let Some(at) = d.withdrawn_at {
        return format!(
            "{} {}",
            tr(l, "同意は撤回されました", "Consent withdrawn at"),
            jst_time(at)
        );
    }
    match (&d.window, &d.window_end_display) {
        (Some(Window::NoMedicalInformation), _) => tr(
            l,
            "医療情報の閲覧はありません",
            "No medical information for this kind",
        )
        .to_owned(),
        (Some(Window::Interval { .. }), Some(end)) if d.window_open => {
            format!("{end} {}", tr(l, "まで（閲覧できます）", "(open now)"))
        }
        (Some(Window::Interval { .. }), Some(end)) => {
            format!("{end} {}", tr(l, "（期限外）", "(closed)"))
        }
        (None, _) => tr(
            l,
            "資格確認の完了後に決まります",
            "Set once eligibility is confirmed",
        )
        .to_owned(),
        _ => tr(l, "閲覧できません", "Not readable").to_owned(),
    }
}

fn patient_ref_form(l: Lang, d: &Detail) -> AnyView {
    let action = format!("/api/console/receptions/{}/patient-ref", d.id);
    let value = d.patient_ref.clone().unwrap_or_default();
    view! {
        <section class="panel" aria-labelledby="ref-h">
            <h2 id="ref-h">{tr(l, "照会番号", "Patient number (照会番号)")}</h2>
            <form data-api=action data-method="PUT" class="inline-form">
                <label>{tr(l, "医療機関の患者番号", "Your own patient number")}
                    <input type="text" name="patient_ref" value=value maxlength="32"
                        autocomplete="off" inputmode="latin"/>
                </label>
                <button type="submit">{tr(l, "保存", "Save")}</button>
                <p class="form-message" role="status"></p>
            </form>
        </section>
    }
    .into_any()
}

fn home_visit_section(l: Lang, d: &Detail) -> Option<AnyView> {
    (d.kind == ReceptionKind::HomeVisit).then(|| {
        let action = format!("/api/console/receptions/{}/home-visits", d.id);
        view! {
            <section class="panel" aria-labelledby="visit-h">
                <h2 id="visit-h">{tr(l, "訪問の記録", "Record a visit")}</h2>
                <p class="muted">{tr(l,
                    "訪問診療等は、訪問のあった月の翌月末まで閲覧できます。訪問した日を記録してください。",
                    "Regular home visits stay readable until the end of the month after a recorded visit. Record each visit.")}</p>
                <form data-api=action data-method="POST" data-reload="true" class="inline-form">
                    <label>{tr(l, "訪問日", "Visit date")}<input type="date" name="visit_date" required/></label>
                    <button type="submit">{tr(l, "記録する", "Record")}</button>
                    <p class="form-message" role="status"></p>
                </form>
            </section>
        }
        .into_any()
    })
}

fn actions_section(l: Lang, d: &Detail) -> AnyView {
    let csv = format!("/api/console/receptions/{}/eligibility.csv", d.id);
    let json = format!("/api/console/receptions/{}/eligibility.json", d.id);
    let withdraw = format!("/api/console/receptions/{}/withdrawal", d.id);
    let has_eligibility = d.eligibility.is_some();
    let withdrawn = d.withdrawn_at.is_some();
    view! {
        <section class="panel" aria-labelledby="act-h">
            <h2 id="act-h">{tr(l, "出力と取消", "Export and withdrawal")}</h2>
            {if has_eligibility {
                view! {
                    <p class="button-row">
                        <a class="button secondary" href=csv download="">{tr(l, "資格情報をCSVで出力", "Export eligibility as CSV")}</a>
                        <a class="button secondary" href=json download="">{tr(l, "JSONで出力", "Export as JSON")}</a>
                    </p>
                }.into_any()
            } else {
                view! { <p class="muted">{tr(l, "資格情報が届くと出力できます。", "Export becomes possible once eligibility arrives.")}</p> }.into_any()
            }}
            {(!withdrawn).then(|| view! {
                <form data-api=withdraw data-method="POST" data-reload="true"
                    data-confirm=tr(l, "患者さんの申し出により、この受付の同意をすべて取り消します。よろしいですか？",
                        "Withdraw every consent of this reception at the patient's request?")>
                    <button type="submit" class="danger">{tr(l, "患者さんの申し出で同意を取り消す", "Withdraw consent at the patient's request")}</button>
                    <p class="form-message" role="status"></p>
                </form>
            })}
        </section>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_checked() {
        assert!(month_ok("2026-10"));
        assert!(!month_ok("2026-13"));
        assert!(!month_ok("<script>"));
    }
}
