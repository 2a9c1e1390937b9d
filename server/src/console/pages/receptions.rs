//! 受付一覧 (the day's receptions, live) and one reception's detail: eligibility, medical
//! information through the gate, 照会番号, home visits, export and withdrawal.

use axum::{
    Json,
    extract::{Path, Query, State},
    response::Response,
};
use chrono::{DateTime, NaiveDate, Utc};
use leptos::prelude::*;
use uketsuke_backend::contract::{MedicalInformation, PrescriptionMethod};
use uketsuke_domain::{
    ReceptionKind, Window,
    eligibility::{
        EligibilityOutcome, EligibilityRecord, EligibilityWarning, InsuredRelation,
        NoEligibilityReason, Sex, TicketKind,
    },
    window::to_jst,
};

use super::{PageLang, Section, Signed, Viewer, tr};
use crate::{
    AppState,
    console::receptions::{self as api, ConsentView, Detail, ListQuery, ListRow},
    gate::Role,
    relay::StoredEligibility,
};
use uketsuke_app::i18n::Lang;

/// A reception kind as staff call it.
pub fn kind_name(lang: Lang, kind: ReceptionKind) -> &'static str {
    match kind {
        ReceptionKind::OnlineCare => tr(lang, "オンライン診療等", "Online care"),
        ReceptionKind::SeparateRoute => tr(
            lang,
            "外来（通常とは異なる動線）",
            "Outpatient (separate route)",
        ),
        ReceptionKind::DeviceFailure => tr(lang, "機器故障時等", "Reader out of order"),
        ReceptionKind::HomeVisit => tr(lang, "訪問診療等", "Regular home visits"),
        ReceptionKind::HouseCall => tr(lang, "往診", "House call"),
        ReceptionKind::EligibilityOnly => tr(lang, "資格確認限定型", "Eligibility only"),
    }
}

fn status_text(lang: Lang, status: &str) -> &'static str {
    match status {
        "queued" => tr(lang, "確認中", "Confirming"),
        "confirmed" => tr(lang, "確認済み", "Confirmed"),
        _ => tr(lang, "確認できず", "Not confirmed"),
    }
}

/// What a refusal or an unavailable record means, for staff.
fn reason_text(lang: Lang, code: &str) -> String {
    let text = match code {
        "person_not_found" => tr(
            lang,
            "カードの利用者証明用電子証明書に対応する資格が見つかりません",
            "No record for this card's certificate",
        ),
        "certificate_revoked" => tr(
            lang,
            "電子証明書が失効しています",
            "The card's certificate is revoked",
        ),
        "institution_unknown" => tr(
            lang,
            "医療機関がオンライン資格確認に登録されていません",
            "The institution is not registered with the backend",
        ),
        _ => "",
    };
    if text.is_empty() {
        code.to_owned()
    } else {
        format!("{text} ({code})")
    }
}

fn consent_text(lang: Lang, consent: &ConsentView, kind: ReceptionKind) -> String {
    if !kind.offers_medical_information() {
        return tr(lang, "（医療情報なし）", "(no medical information)").to_owned();
    }
    let mut parts = Vec::new();
    if consent.clinical_medication {
        parts.push(tr(lang, "診療・薬剤", "Care & medication"));
    }
    if consent.checkups {
        parts.push(tr(lang, "特定健診等", "Check-ups"));
    }
    if parts.is_empty() {
        tr(lang, "同意なし", "No consent").to_owned()
    } else {
        parts.join(tr(lang, "・", ", "))
    }
}

fn jst_time(at: DateTime<Utc>) -> String {
    to_jst(at).format("%Y-%m-%d %H:%M").to_string()
}

/// `GET /console?date=YYYY-MM-DD`.
pub async fn list(State(state): State<AppState>, lang: PageLang, signed: Signed) -> Response {
    let date = signed.param("date").filter(|d| !d.is_empty());
    let viewer = &signed.viewer;
    let listed = api::list(
        State(state.clone()),
        viewer.staff.clone(),
        Ok(Query(ListQuery { date })),
    )
    .await;
    let list = match listed {
        Ok(Json(list)) => list,
        Err(error) => return signed.refused(lang, error),
    };
    let l = lang.lang;
    let today = uketsuke_domain::window::jst_date(state.clock.now())
        .format("%Y-%m-%d")
        .to_string();
    let heading = if list.date == today {
        tr(l, "本日の受付", "Today's receptions").to_owned()
    } else {
        format!("{} {}", tr(l, "受付", "Receptions on"), list.date)
    };
    let count = list.receptions.len();
    let rows = list
        .receptions
        .into_iter()
        .map(|row| list_row(l, row))
        .collect_view();
    let table = if count == 0 {
        view! {
            <p class="empty" data-testid="no-receptions">
                {tr(l, "この日の受付はまだありません。患者さんが受付を終えると、ここに自動で表示されます。",
                    "No receptions on this day yet. They appear here by themselves as patients finish.")}
            </p>
        }
        .into_any()
    } else {
        view! {
            <div class="table-wrap">
                <table class="receptions">
                    <caption class="visually-hidden">{heading.clone()}</caption>
                    <thead>
                        <tr>
                            <th scope="col">{tr(l, "時刻", "Time")}</th>
                            <th scope="col">{tr(l, "受付番号", "No.")}</th>
                            <th scope="col">{tr(l, "種別", "Kind")}</th>
                            <th scope="col">{tr(l, "氏名", "Name")}</th>
                            <th scope="col">{tr(l, "同意", "Consent")}</th>
                            <th scope="col">{tr(l, "閲覧期限", "Readable until")}</th>
                            <th scope="col">{tr(l, "状態", "Status")}</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        }
        .into_any()
    };
    let body = view! {
        <div class="heading-row">
            <h1>{heading.clone()}</h1>
            <form method="get" action="/console" class="inline-form">
                <label>{tr(l, "日付", "Date")}
                    <input type="date" name="date" value=list.date.clone()/>
                </label>
                <button type="submit" class="secondary">{tr(l, "表示", "Show")}</button>
            </form>
        </div>
        <p class="muted live-note">
            {tr(l, "患者さんが受付を終えると自動で更新されます（", "Updates by itself as patients finish (")}
            <span data-testid="count">{count}</span>
            {tr(l, "件）。", " so far).")}
        </p>
        <section id="receptions" data-live="/api/console/events" aria-label=heading>
            {table}
        </section>
    }
    .into_any();
    signed.page(
        lang,
        tr(l, "受付一覧", "Receptions").to_owned(),
        Section::Receptions,
        body,
    )
}

fn list_row(l: Lang, row: ListRow) -> impl IntoView {
    let href = format!("/console/receptions/{}", row.id);
    let name = match (&row.name, row.eligibility) {
        (Some(name), _) => name.clone(),
        (None, "pending") => tr(l, "（確認中）", "(confirming)").to_owned(),
        (None, _) => tr(l, "（資格情報なし）", "(no eligibility record)").to_owned(),
    };
    let kana = row.name_kana.clone().unwrap_or_default();
    let number = row
        .reception_number
        .clone()
        .unwrap_or_else(|| "—".to_owned());
    let consent = if row.withdrawn {
        tr(l, "撤回済み", "Withdrawn").to_owned()
    } else {
        consent_text(l, &row.consent, row.kind)
    };
    let end = row.window_end.map(|end| {
        let iso = end.to_rfc3339();
        let shown = row.window_end_display.clone().unwrap_or_default();
        view! { <time datetime=iso.clone() data-window-end=iso>{shown}</time> }
    });
    let status = status_text(l, row.status);
    let status_class = format!("status status-{}", row.status);
    let refusal = row.refusal.clone().map(|code| reason_text(l, &code));
    view! {
        <tr data-reception=row.id.clone()>
            <td>{row.time.clone()}</td>
            <td><a href=href.clone()>{number}</a></td>
            <td>{kind_name(l, row.kind)}</td>
            <td><a href=href>{name}</a><br/><span class="kana">{kana}</span></td>
            <td>{consent}</td>
            <td>{end}<span class="countdown" aria-live="off"></span></td>
            <td>
                <span class=status_class>{status}</span>
                {refusal.map(|r| view! { <br/><span class="muted small">{r}</span> })}
            </td>
        </tr>
    }
}

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
                    {refusal.map(|r| view! { " " <span class="muted">{r}</span> })}</dd>
                <dt>{tr(l, "種別", "Kind")}</dt><dd>{kind_name(l, d.kind)}</dd>
                <dt>{tr(l, "受診日", "Visit date")}</dt><dd>{d.visit_date.format("%Y-%m-%d").to_string()}</dd>
                <dt>{tr(l, "受付日時", "Submitted")}</dt><dd>{jst_time(d.submitted_at)}</dd>
                <dt>{tr(l, "本人確認", "Identity")}</dt><dd>{identity}</dd>
                <dt>{tr(l, "医療情報の提供", "Medical information consent")}</dt>
                <dd data-testid="consent">{consent_text(l, &d.consent, d.kind)}</dd>
                {prescription.map(|p| view! { <dt>{tr(l, "処方箋", "Prescription")}</dt><dd>{p}</dd> })}
                <dt>{tr(l, "閲覧期限", "Readable until")}</dt><dd data-testid="window">{window}</dd>
                {visits.map(|v| view! { <dt>{tr(l, "訪問日", "Visits recorded")}</dt><dd>{v}</dd> })}
            </dl>
        </section>
    }
    .into_any()
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

fn eligibility_section(l: Lang, d: &Detail) -> AnyView {
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

type MedicalAnswer = Option<(
    String,
    Result<MedicalInformation, crate::http::patient::ApiError>,
)>;

fn medical_section(
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
        assert!(month_ok("2026-10"));
        assert!(!month_ok("2026-13"));
        assert!(!month_ok("<script>"));
    }

    #[test]
    fn every_kind_has_a_staff_name_in_both_languages() {
        for kind in ReceptionKind::ALL {
            assert!(!kind_name(Lang::Ja, kind).is_empty());
            assert_ne!(kind_name(Lang::Ja, kind), kind_name(Lang::En, kind));
        }
    }
}
