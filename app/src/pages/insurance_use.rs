//! 健康保険証利用登録 from the done screen (issue 15 §2). When the reception's eligibility came
//! back `card_not_registered_for_insurance`, the done screen offers to register the card there
//! ([`Offer`]); `/r/{link}/insurance-use` shows the terms in plain words, the consent, then the
//! card step (PIN only: no 目視確認, registration needs the PIN); the done screen follows the
//! request ([`Progress`]) until the card is registered and eligibility has come again, or shows
//! the refusal in plain words with the offer again.

use leptos::either::{Either, EitherOf3, EitherOf4};
use leptos::prelude::*;
use uketsuke_backend::contract::INSURANCE_USE_TERMS_VERSION;

use crate::api::{FlowState, FlowView, InsuranceUseView, flow};
use crate::components::Page;
use crate::i18n::{
    format_end, insurance_use::refusal_message, use_flow_texts, use_insurance_use_texts, use_lang,
    use_texts,
};
use crate::pages::card_step::{CardWays, Purpose};
use crate::pages::flow::{SessionGone, institution_name};
use crate::pages::landing::{link_unusable, server_error};
use crate::pages::page_status;

/// The eligibility problem for which registration is offered.
pub const OFFERED_FOR: &str = "card_not_registered_for_insurance";

/// Whether registering is under way (the done screen then reloads itself to follow it).
pub fn in_progress(view: Option<&InsuranceUseView>) -> bool {
    view.is_some_and(|u| u.state == "pending" || (u.state == "registered" && u.eligibility_pending))
}

/// On the done screen, in place of the eligibility problem's words: the card is not registered
/// for insurance use, and it can be here (with the last refusal, if any, in plain words).
#[component]
pub fn Offer(link: String, refusal: Option<String>) -> impl IntoView {
    let u = use_insurance_use_texts();
    let lang = use_lang();
    let again = refusal.is_some();
    view! {
        <section class="card notice" aria-labelledby="insurance-offer-heading" data-testid="insurance-offer">
            <h2 id="insurance-offer-heading">{move || u().offer_title}</h2>
            {refusal.map(|code| {
                let attr = code.clone();
                view! {
                    <div role="alert" data-testid="insurance-refusal" data-code=attr>
                        <p><strong>{move || u().refused_title}</strong></p>
                        <p>{move || refusal_message(lang.get(), &code)}</p>
                    </div>
                }
            })}
            <p>{move || u().offer_body}</p>
            <a class="button wide" href=format!("/r/{link}/insurance-use") data-testid="insurance-offer-button">
                {move || if again { u().try_again } else { u().offer_button }}
            </a>
            <p class="hint-text">{move || u().offer_or_desk}</p>
        </section>
    }
}

/// On the done screen: the registration under way, or done.
#[component]
pub fn Progress(view: InsuranceUseView, problem_left: bool) -> impl IntoView {
    let u = use_insurance_use_texts();
    match view.state.as_str() {
        "pending" => {
            let busy = view.backend_busy;
            EitherOf4::A(view! {
                <section class="card" role="status" aria-live="polite" data-testid="insurance-progress">
                    <h2>{move || u().pending_title}</h2>
                    <p class="spinner" aria-hidden="true"></p>
                    <p>{move || u().pending_body}</p>
                    {busy.then(|| view! {
                        <p class="hint-text" data-testid="insurance-busy">{move || u().pending_busy}</p>
                    })}
                </section>
            })
        }
        "registered" if view.eligibility_pending => EitherOf4::B(view! {
            <section class="card" role="status" aria-live="polite" data-testid="insurance-progress">
                <h2>{move || u().registered_title}</h2>
                <p class="spinner" aria-hidden="true"></p>
                <p>{move || u().checking_body}</p>
            </section>
        }),
        "registered" => {
            let at = view.registered_at.clone().unwrap_or_default();
            let lang = use_lang();
            EitherOf4::C(view! {
                <section class="card result" role="status" data-testid="insurance-registered">
                    <h2>{move || u().registered_title}</h2>
                    <p class="label">{move || (u().registered_at)(&format_end(lang.get(), &at))}</p>
                    {(!problem_left).then(|| view! {
                        <p data-testid="insurance-eligibility-found">{move || u().registered_found}</p>
                    })}
                    <p class="hint-text">{move || u().registered_next}</p>
                </section>
            })
        }
        _ => EitherOf4::D(()),
    }
}

/// `/r/{link}/insurance-use`: the terms, the consent, then the card and PIN.
#[component]
pub fn InsuranceUseScreen(link: String) -> impl IntoView {
    let state = Resource::new(
        {
            let link = link.clone();
            move || link.clone()
        },
        flow,
    );
    let t = use_texts();
    view! {
        <Suspense fallback=move || view! { <p class="loading">{move || t().loading}</p> }>
            {move || { let link = link.clone(); Suspend::new(async move {
                match state.await {
                    Ok(FlowState::Open(view)) => {
                        let view = *view;
                        let offered = view
                            .submitted
                            .as_ref()
                            .and_then(|s| s.insurance_use.as_ref())
                            .filter(|u| u.state == "offered")
                            .map(|u| u.refusal.clone());
                        match offered {
                            _ if !view.has_session => {
                                page_status(410);
                                Either::Left(EitherOf3::A(view! { <SessionGone link view/> }))
                            }
                            Some(refusal) => Either::Left(EitherOf3::B(view! { <Terms link view refusal/> })),
                            None => Either::Left(EitherOf3::C(view! { <NotOffered link view/> })),
                        }
                    }
                    Ok(FlowState::Invalid(reason)) => Either::Right(Either::Left(link_unusable(reason))),
                    Err(_) => Either::Right(Either::Right(server_error())),
                }
            })}}
        </Suspense>
    }
}

#[component]
fn NotOffered(link: String, view: FlowView) -> impl IntoView {
    let u = use_insurance_use_texts();
    let name = institution_name(&view);
    view! {
        <Page title=Signal::derive(move || u().terms_title.to_owned()) demo=view.landing.demo>
            <p class="step">{move || name.get()}</p>
            <h1>{move || u().terms_title}</h1>
            <p class="card" data-testid="insurance-not-offered">{move || u().not_offered}</p>
            <a class="button wide" href=format!("/r/{link}/done")>{move || u().back_to_done}</a>
        </Page>
    }
}

#[component]
fn Terms(link: String, view: FlowView, refusal: Option<String>) -> impl IntoView {
    let u = use_insurance_use_texts();
    let lang = use_lang();
    let name = institution_name(&view);
    let demo = view.landing.demo;
    view! {
        <Page title=Signal::derive(move || u().terms_title.to_owned()) demo>
            <p class="step">{move || name.get()}</p>
            <h1>{move || u().terms_title}</h1>
            {refusal.map(|code| view! {
                <section class="card notice" role="alert" data-testid="insurance-refusal">
                    <h2>{move || u().refused_title}</h2>
                    <p>{move || refusal_message(lang.get(), &code)}</p>
                </section>
            })}
            <section class="card" aria-labelledby="terms-heading" data-testid="insurance-terms">
                <p>{move || u().terms_lead}</p>
                <h2 id="terms-heading">{move || u().terms_heading}</h2>
                <ul class="checklist terms">
                    {(0..6).map(|i| view! { <li>{move || u().terms_points[i]}</li> }).collect_view()}
                </ul>
                <p class="hint-text" data-testid="terms-version">
                    {move || (u().terms_version)(INSURANCE_USE_TERMS_VERSION)}
                </p>
            </section>
            <InsuranceConsent link=link.clone() demo/>
            <p>
                <a class="button secondary wide" href=format!("/r/{link}/done") data-testid="insurance-back">
                    {move || u().back_to_done}
                </a>
            </p>
        </Page>
    }
}

/// The agreement to the terms and, once given, the card step (an island: the part of the
/// screen that runs in the browser).
// An island of the off-path module only (feature `all-islands`; see lib.rs).
#[cfg_attr(any(feature = "ssr", feature = "all-islands"), island)]
#[cfg_attr(not(any(feature = "ssr", feature = "all-islands")), component)]
fn InsuranceConsent(link: String, demo: bool) -> impl IntoView {
    let u = use_insurance_use_texts();
    let f = use_flow_texts();
    let agreed = RwSignal::new(false);
    // The box can be ticked once this island runs: ticked before, its hydration would clear it
    // and the card step would never follow.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    // Back from the card-reading app with its result (`#<result>` or `#error=<code>`): the
    // patient agreed before going there, and the card step sends the app's result. Any other
    // fragment (a crafted link) leaves the box as it is.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        use crate::pages::card_step::hand_off::{AppResult, PROTOCOL_VERSION, fragment};
        let hash = window().location().hash().unwrap_or_default();
        let from_app = fragment::error_code(&hash).is_some()
            || fragment::decode::<AppResult>(&hash).is_some_and(|r| r.v == PROTOCOL_VERSION);
        if from_app {
            agreed.set(true);
        }
    });
    view! {
        <section class="card agreement" data-testid="insurance-agreement">
            <fieldset class="choice">
                <legend>{move || u().consent_legend}</legend>
                <label class="option consent-check">
                    <input
                        type="checkbox"
                        data-testid="insurance-consent"
                        aria-describedby="insurance-consent-hint"
                        prop:checked=move || agreed.get()
                        disabled=move || !hydrated.get()
                        on:change=move |ev| agreed.set(event_target_checked(&ev))
                    />
                    <span>{move || u().consent_label}</span>
                </label>
                <p id="insurance-consent-hint" class="hint-text">{move || u().consent_hint}</p>
            </fieldset>
        </section>
        <noscript>
            <p class="card notice" role="alert">{move || f().card_needs_js}</p>
        </noscript>
        {move || agreed.get().then(|| view! {
            <section aria-labelledby="insurance-card-heading" data-testid="insurance-card">
                <h2 id="insurance-card-heading">{move || u().card_heading}</h2>
                <p>{move || u().card_lead}</p>
                <CardWays link=link.clone() demo purpose=Purpose::InsuranceUse/>
            </section>
        })}
    }
}
