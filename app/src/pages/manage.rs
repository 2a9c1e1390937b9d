//! 同意の更新 on the 同意照会 screen: for each reception whose consents can still change, the two
//! categories as 同意する / 同意しない and a save button. The card was proven again in this
//! session, so the server accepts a grant as well as a revocation; the visit date and the end
//! of the window are shown elsewhere on the screen and never sent. The list on the screen is
//! replaced by the server's answer, so what the patient sees is what was stored.

use leptos::either::Either;
use leptos::prelude::*;

use crate::api::{ManagedItem, ManagedList, ReadItem};
use crate::i18n::{Lang, flow::code_message, format_end, use_flow_texts, use_lang};

/// What the last save said, for the screen's status line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Saved,
    Refused(String),
}

/// The words for a save's outcome. Refusals that concern this screen get its own words; the
/// rest (offline, rate limited, …) the flow's.
pub fn outcome_message(lang: Lang, outcome: &Outcome) -> &'static str {
    let f = crate::i18n::flow::texts(lang);
    match outcome {
        Outcome::Saved => f.manage_saved,
        Outcome::Refused(code) => match code.as_str() {
            "consent_unchanged" => f.manage_unchanged,
            "link_closed_withdraw_only" => f.manage_link_closed,
            "reception_withdrawn"
            | "window_closed"
            | "not_confirmed"
            | "no_medical_information" => f.manage_not_changeable,
            "card_not_proven" | "reception_unknown" | "session_expired" | "session_missing" => {
                f.manage_prove_again
            }
            other => code_message(lang, other),
        },
    }
}

/// The note under the list when the backend could not name the person: consents given with an
/// earlier card (the certificate is renewed every five years and with a reissued card) are not
/// shown, and the patient learns where to withdraw them. Nothing when the list is complete.
#[component]
pub fn EarlierCards(unknown: bool) -> impl IntoView {
    let f = use_flow_texts();
    unknown.then(|| {
        view! {
            <p class="hint-text" data-testid="earlier-cards-unknown">
                {move || f().manage_earlier_cards_unknown}
            </p>
        }
    })
}

/// One read in the patient's words: when, what, and who by role and staff ID.
pub fn read_line(lang: Lang, read: &ReadItem) -> String {
    let f = crate::i18n::flow::texts(lang);
    let what = match read.category.as_str() {
        "clinical_medication" => f.read_clinical,
        "checkups" => f.read_checkups,
        _ => f.read_eligibility,
    };
    let role = match read.role.as_str() {
        "administrator" => f.role_administrator,
        "medical_viewer" => f.role_medical_viewer,
        _ => f.role_general,
    };
    format!(
        "{} · {what} · {role}{}",
        format_end(lang, &read.at),
        (f.staff_id)(&read.staff_id)
    )
}

/// 閲覧履歴 of one reception: every read of its information by the institution, oldest first,
/// as the server listed it from the audit log.
#[component]
pub fn ReadHistory(reads: Vec<ReadItem>) -> impl IntoView {
    let f = use_flow_texts();
    let lang = use_lang();
    let body = if reads.is_empty() {
        Either::Left(view! { <p data-testid="reads-none">{move || f().reads_none}</p> })
    } else {
        Either::Right(view! {
            <ol class="reads" data-testid="reads">
                {reads.into_iter().map(|read| view! {
                    <li data-testid="read">{move || read_line(lang.get(), &read)}</li>
                }).collect_view()}
            </ol>
        })
    };
    view! {
        <details class="read-history" data-testid="read-history" open>
            <summary>{move || f().reads_title}</summary>
            <p class="hint-text">{move || f().reads_hint}</p>
            {body}
        </details>
    }
}

/// Where the read history is (done screen, cancel page), with the link to 同意照会 when known.
#[component]
pub fn ReadsWhere(link: Option<String>) -> impl IntoView {
    let f = use_flow_texts();
    view! {
        <section class="card hint" data-testid="reads-where">
            <p>{move || f().reads_where}</p>
            {link.map(|link| view! {
                <a href=format!("/r/{link}/manage") data-testid="reads-where-link">{move || f().manage_link}</a>
            })}
        </section>
    }
}

/// One 同意する / 同意しない group of a reception's change form.
#[component]
fn Category(
    /// Unique on the page: the radio group's name and the hint's id derive from it.
    name: String,
    legend: Signal<&'static str>,
    hint: Signal<&'static str>,
    value: RwSignal<bool>,
) -> impl IntoView {
    let f = use_flow_texts();
    let hint_id = format!("{name}-hint");
    let described = hint_id.clone();
    let (yes_id, no_id) = (format!("{name}-yes"), format!("{name}-no"));
    let other_name = name.clone();
    view! {
        <fieldset class="choice" aria-describedby=described>
            <legend>{move || legend.get()}</legend>
            <p id=hint_id class="hint-text">{move || hint.get()}</p>
            <label class="option">
                <input
                    type="radio"
                    name=name
                    value="yes"
                    data-testid=yes_id
                    prop:checked=move || value.get()
                    on:change=move |_| value.set(true)
                />
                <span>{move || f().agree}</span>
            </label>
            <label class="option">
                <input
                    type="radio"
                    name=other_name
                    value="no"
                    data-testid=no_id
                    prop:checked=move || !value.get()
                    on:change=move |_| value.set(false)
                />
                <span>{move || f().disagree}</span>
            </label>
        </fieldset>
    }
}

/// The change form of one reception. `title_id` names the element that says which reception
/// it is, so that a screen reader announces the form with it. On an answer the whole list is
/// replaced and `outcome` set; the screen moves focus to its status line.
#[component]
pub fn ConsentEditor(
    item: ManagedItem,
    title_id: String,
    list: RwSignal<Option<ManagedList>>,
    outcome: RwSignal<Option<Outcome>>,
) -> impl IntoView {
    let f = use_flow_texts();
    let clinical = RwSignal::new(item.clinical_medication);
    let checkups = RwSignal::new(item.checkups);
    let busy = RwSignal::new(false);
    let heading_id = format!("change-{}", item.id);
    let id = item.id.clone();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        let (id, wanted) = (
            id.clone(),
            (clinical.get_untracked(), checkups.get_untracked()),
        );
        #[cfg(feature = "hydrate")]
        leptos::task::spawn_local(async move {
            match save_consent(&id, wanted.0, wanted.1).await {
                Ok(updated) => {
                    outcome.set(Some(Outcome::Saved));
                    list.set(Some(updated));
                }
                Err(code) => outcome.set(Some(Outcome::Refused(code))),
            }
            busy.set(false);
        });
        #[cfg(not(feature = "hydrate"))]
        let _ = (id, wanted, list, outcome);
    };
    view! {
        <form
            class="consent-edit"
            aria-labelledby=format!("{heading_id} {title_id}")
            data-testid=format!("consent-edit-{}", item.id)
            on:submit=save
        >
            <h3 id=heading_id.clone()>{move || f().manage_change}</h3>
            <p class="hint-text">{move || f().manage_change_hint}</p>
            <Category
                name=format!("clinical-{}", item.id)
                legend=Signal::derive(move || f().consent_clinical)
                hint=Signal::derive(move || f().consent_clinical_hint)
                value=clinical
            />
            <Category
                name=format!("checkups-{}", item.id)
                legend=Signal::derive(move || f().consent_checkups)
                hint=Signal::derive(move || f().consent_checkups_hint)
                value=checkups
            />
            <button
                type="submit"
                class="button wide"
                data-testid="save-consent"
                prop:disabled=move || busy.get()
            >
                {move || f().manage_save}
            </button>
        </form>
    }
}

/// `PUT /api/session/manage/receptions/{id}/consent` from the browser: the new list, or the
/// refusal's code (`offline` when nothing answered).
#[cfg(feature = "hydrate")]
pub async fn save_consent(
    id: &str,
    clinical_medication: bool,
    checkups: bool,
) -> Result<ManagedList, String> {
    let body = serde_json::json!({
        "clinical_medication": clinical_medication,
        "checkups": checkups,
    });
    let response =
        gloo_net::http::Request::put(&format!("/api/session/manage/receptions/{id}/consent"))
            .header(
                crate::pages::card_step::submit::API_HEADER.0,
                crate::pages::card_step::submit::API_HEADER.1,
            )
            .json(&body)
            .map_err(|_| "body_invalid".to_owned())?
            .send()
            .await
            .map_err(|_| "offline".to_owned())?;
    if response.ok() {
        return response
            .json()
            .await
            .map_err(|_| "temporarily_unavailable".to_owned());
    }
    let refusal: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
    Err(refusal
        .get("error")
        .and_then(|e| e.as_str())
        .unwrap_or("temporarily_unavailable")
        .to_owned())
}
