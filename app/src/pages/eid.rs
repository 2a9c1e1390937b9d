//! The browser's side of the hand-off to a card-reading app that is not the card step (protocol:
//! `pages::card_step::hand_off`): the return page ([`AppReturn`], `/r/{link}/eid-return`) reads
//! the app's result from the fragment (a fragment never reaches the server or its logs), removes
//! it from the address bar and submits the certificate and signature exactly as the card step
//! does; and in demo mode the built-in practice app ([`PracticeApp`], `/r/{link}/eid-app`),
//! which plays the app's part with the practice cards, so the whole round trip can be tried and
//! tested here. The practice app keeps the signer's rule of the protocol ([`AppRequest::check`]):
//! it shows the origin, institution and choices of the text it signs, and refuses a request
//! from another origin (a relaying site) without ever opening its return address.

use leptos::either::{Either, EitherOf3};
use leptos::prelude::*;

use uketsuke_backend::contract::{PrescriptionMethod, binding::SignedText};

use crate::api::{LinkState, landing};
use crate::components::Page;
use crate::data::LandingView;
use crate::i18n::{Lang, flow::code_message, format_date, use_flow_texts, use_lang, use_texts};
use crate::pages::card_step::hand_off::AppRequest;

/// A request the practice app accepted ([`AppRequest::check`]), with its text read back: only
/// such a request is signed, shown or returned to.
#[derive(Debug, Clone)]
pub struct Checked {
    pub request: AppRequest,
    pub text: SignedText,
}

/// `/r/{link}/eid-return`: the app's result arrives here and is submitted (an island: it runs
/// in the browser, which alone sees the fragment).
#[island]
pub fn AppReturn(link: String) -> impl IntoView {
    let f = use_flow_texts();
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    #[cfg(feature = "hydrate")]
    {
        let link = link.clone();
        Effect::new(move |_| live::submit(link.clone(), error));
    }
    view! {
        <div role="alert" aria-live="assertive" class="alert-region" data-testid="card-error">
            {move || error.get().map(|message| view! { <p class="card notice">{message}</p> })}
        </div>
        <noscript>
            <p class="card notice" role="alert">{move || f().card_needs_js}</p>
        </noscript>
        {
            let waiting = Memo::new(move |_| error.with(Option::is_none));
            move || waiting.get().then(|| view! {
                <p class="card" role="status" data-testid="app-return">
                    <span class="spinner" aria-hidden="true"></span>
                    {move || f().app_return_busy}
                </p>
            })
        }
        <p>
            <a class="button secondary" href=format!("/r/{link}/card") data-testid="back-to-card">
                {move || f().app_back_to_card}
            </a>
        </p>
    }
}

/// `/r/{link}/eid-app`: the practice app (demo mode only; elsewhere a 404 page).
#[component]
pub fn PracticeApp(link: String) -> impl IntoView {
    let state = Resource::new(move || link.clone(), landing);
    let f = use_flow_texts();
    view! {
        <Suspense fallback=move || view! { <p class="loading">{move || f().app_return_busy}</p> }>
            {move || Suspend::new(async move {
                match state.await {
                    Ok(LinkState::Open(landing)) if landing.demo => Either::Left(view! {
                        <Page title=Signal::derive(move || f().app_demo_title.to_owned()) demo=true>
                            <PracticeAppBody landing/>
                        </Page>
                    }),
                    _ => {
                        crate::pages::page_status(404);
                        Either::Right(view! { <crate::pages::not_found::NotFound/> })
                    }
                }
            })}
        </Suspense>
    }
}

/// The practice app's page body (an island: it reads the request from the fragment, signs with
/// a practice card and returns to the site).
// An island of the off-path module only (feature `all-islands`; see lib.rs).
#[cfg_attr(any(feature = "ssr", feature = "all-islands"), island)]
#[cfg_attr(not(any(feature = "ssr", feature = "all-islands")), component)]
fn PracticeAppBody(landing: LandingView) -> impl IntoView {
    let f = use_flow_texts();
    let lang = use_lang();
    let request: RwSignal<Option<Checked>> = RwSignal::new(None);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let refused: RwSignal<Option<&'static str>> = RwSignal::new(None);
    let person = RwSignal::new(1u32);
    let busy = RwSignal::new(false);
    // The practice card's chunk could not be fetched: offer a reload.
    let reload = RwSignal::new(false);
    let pin_ref = NodeRef::<leptos::html::Input>::new();
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| live::read_request(request, error, refused));
    let sign = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let digits = pin_ref
            .get_untracked()
            .map(|input| {
                let digits = crate::pages::card_step::pin_pad::pin_digits(&input.value());
                input.set_value("");
                digits
            })
            .unwrap_or_default();
        #[cfg(feature = "hydrate")]
        live::sign(request, error, busy, reload, person.get_untracked(), digits);
        #[cfg(not(feature = "hydrate"))]
        let _ = (digits, reload);
    };
    // The request, to put back into the address for a reload (it was taken out when read).
    let request_fragment = Signal::derive(move || {
        #[cfg(feature = "hydrate")]
        return request.with(|checked| {
            checked
                .as_ref()
                .and_then(|c| crate::pages::card_step::hand_off::fragment::encode(&c.request))
        });
        #[cfg(not(feature = "hydrate"))]
        None
    });
    let cancel = move |_| {
        #[cfg(feature = "hydrate")]
        live::cancel(request);
    };
    view! {
        <h1>{move || f().app_demo_title}</h1>
        <p class="demo-tag-line"><span class="demo-tag">"デモ DEMO"</span></p>
        <p class="card">{move || f().app_demo_lead}</p>
        <div role="alert" aria-live="assertive" class="alert-region" data-testid="card-error">
            {move || error.get().map(|message| view! { <p class="card notice">{message}</p> })}
            {
                let offer = Memo::new(move |_| reload.get() && error.with(Option::is_some));
                move || offer.get().then(|| view! {
                    <p><crate::components::ReloadButton fragment=request_fragment/></p>
                })
            }
            {move || refused.get().map(|code| view! {
                <section class="card notice" data-testid="app-refused" data-code=code>
                    <h2>{move || f().app_refused_title}</h2>
                    <p>{move || code_message(lang.get(), code)}</p>
                </section>
            })}
        </div>
        {move || request.get().map(|checked| {
            let landing = landing.clone();
            view! {
            <form class="card pin-pad" aria-labelledby="app-heading" on:submit=sign>
                <h2 id="app-heading">{move || f().app_demo_site}</h2>
                <p class="app-origin" data-testid="app-origin">{checked.text.origin().to_owned()}</p>
                <SignedDetails text=checked.text.clone() landing/>
                <label for="app-person">{move || f().card_practice_person}</label>
                <crate::pages::card_step::ways::DemoPersonSelect id="app-person" person/>
                <label for="app-pin">{move || f().pin_label}</label>
                <input
                    id="app-pin"
                    node_ref=pin_ref
                    data-testid="pin"
                    type="password"
                    inputmode="numeric"
                    pattern=crate::pages::card_step::pin_pad::PIN_PATTERN
                    minlength="4"
                    maxlength="4"
                    autocomplete="off"
                    required=true
                />
                <button type="submit" class="button" data-testid="app-sign" disabled=move || busy.get()>
                    {move || f().app_demo_sign}
                </button>
                <button type="button" class="button secondary" data-testid="app-cancel" on:click=cancel>
                    {move || f().app_demo_cancel}
                </button>
            </form>
        }})}
    }
}

/// What the signed text says, in words: the institution (its 医療機関等コード from the text; the
/// name the demo link gives for it), and the reception's kind, date and choices, or the
/// 同意照会. Nothing here comes from the request's other fields.
#[component]
fn SignedDetails(text: SignedText, landing: LandingView) -> impl IntoView {
    let f = use_flow_texts();
    let t = use_texts();
    let lang = use_lang();
    let code = text.institution().as_str().to_owned();
    let name = move || match lang.get() {
        Lang::Ja => landing.institution_name_ja.clone(),
        Lang::En => landing.institution_name_en.clone(),
    };
    let consent = move |yes: bool| if yes { f().agree } else { f().disagree };
    let details = match text {
        SignedText::Consent(c) => {
            let kind = c.kind;
            let date = c.visit_date.format("%Y-%m-%d").to_string();
            let choices = c.consent;
            EitherOf3::A(view! {
                <dt>{move || f().review_kind}</dt>
                <dd data-testid="app-kind">{move || t().kind(kind).title}</dd>
                <dt>{move || f().review_visit_date}</dt>
                <dd data-testid="app-date">{move || format_date(lang.get(), &date)}</dd>
                {kind.offers_medical_information().then(|| view! {
                    <dt>{move || f().consent_clinical}</dt>
                    <dd data-testid="app-clinical">{move || consent(choices.clinical_medication)}</dd>
                    <dt>{move || f().consent_checkups}</dt>
                    <dd data-testid="app-checkups">{move || consent(choices.checkups)}</dd>
                })}
                {c.prescription_method.map(|p| view! {
                    <dt>{move || f().prescription}</dt>
                    <dd data-testid="app-prescription">
                        {move || match p {
                            PrescriptionMethod::Paper => f().prescription_paper,
                            PrescriptionMethod::Electronic => f().prescription_electronic,
                        }}
                    </dd>
                })}
            })
        }
        SignedText::Manage(_) => EitherOf3::B(view! {
            <dt>{move || f().review_kind}</dt>
            <dd data-testid="app-manage">{move || f().app_demo_manage}</dd>
        }),
        SignedText::InsuranceUse(i) => {
            let u = crate::i18n::use_insurance_use_texts();
            let terms = i.terms;
            EitherOf3::C(view! {
                <dt>{move || u().app_purpose}</dt>
                <dd data-testid="app-insurance-use">{move || f().app_demo_insurance_use}</dd>
                <dt>{move || u().app_terms}</dt>
                <dd data-testid="app-terms">{terms}</dd>
            })
        }
    };
    view! {
        <h3>{move || f().app_demo_signing_for}</h3>
        <dl class="review" data-testid="app-signed">
            <dt>{move || f().app_demo_institution}</dt>
            <dd data-testid="app-institution">{name}</dd>
            <dt>{move || f().app_demo_institution_code}</dt>
            <dd data-testid="app-institution-code">{code}</dd>
            {details}
        </dl>
    }
}

/// The browser side of the hand-off.
#[cfg(feature = "hydrate")]
mod live {
    use leptos::prelude::*;
    use leptos::task::spawn_local;
    use uketsuke_card::Pin;

    use super::Checked;
    use crate::card::{CardError, people::DEMO_PEOPLE, reader::CardReader};
    use crate::i18n::{Lang, flow::texts, use_lang};
    use crate::pages::card_step::{
        hand_off::{AppRequest, AppResult, PROTOCOL_VERSION, app_error_message, fragment},
        submit::{api_message, go_done, post_json},
    };

    fn lang() -> Lang {
        use_lang().get_untracked()
    }

    /// Reads the app's result from the fragment and submits it as the card step would.
    pub fn submit(link: String, error: RwSignal<Option<String>>) {
        let lang = lang();
        let hash = fragment::take();
        if let Some(code) = fragment::error_code(&hash) {
            return error.set(Some(app_error_message(lang, &code)));
        }
        let Some(result) = fragment::decode::<AppResult>(&hash).filter(|r| r.v == PROTOCOL_VERSION)
        else {
            return error.set(Some(texts(lang).app_return_missing.to_owned()));
        };
        spawn_local(async move {
            let origin = window().location().origin().unwrap_or_default();
            let body = serde_json::json!({
                "challenge": result.challenge,
                "origin": origin,
                "certificate": result.certificate,
                "signature": result.signature,
            });
            match post_json("/api/session/registration", Some(body)).await {
                Ok(_) => go_done(&link),
                Err(code) if code == "already_submitted" => go_done(&link),
                Err(code) => error.set(Some(api_message(lang, &code))),
            }
        });
    }

    /// The practice app: the request from the fragment, accepted only under the signer's rule
    /// ([`AppRequest::check`]). A refused request is shown as refused and never answered: its
    /// return address is not opened.
    pub fn read_request(
        request: RwSignal<Option<Checked>>,
        error: RwSignal<Option<String>>,
        refused: RwSignal<Option<&'static str>>,
    ) {
        let hash = fragment::take();
        let Some(req) = fragment::decode::<AppRequest>(&hash) else {
            return error.set(Some(texts(lang()).app_demo_bad.to_owned()));
        };
        match req.check() {
            Ok(text) => request.set(Some(Checked { request: req, text })),
            Err(refusal) => refused.set(Some(refusal.code())),
        }
    }

    /// Back to the browser: only a checked request's return address, on the origin signed for.
    fn back(checked: &Checked, fragment: &str) {
        let _ = window()
            .location()
            .replace(&format!("{}#{fragment}", checked.request.return_uri));
    }

    /// Back to the browser with `#error=cancelled`.
    pub fn cancel(request: RwSignal<Option<Checked>>) {
        if let Some(req) = request.get_untracked() {
            back(&req, "error=cancelled");
        }
    }

    /// Signs with the practice card of `no` and returns the result to the browser. A wrong PIN
    /// stays in the app (tries left shown), as a real app would.
    pub fn sign(
        request: RwSignal<Option<Checked>>,
        error: RwSignal<Option<String>>,
        busy: RwSignal<bool>,
        reload: RwSignal<bool>,
        no: u32,
        digits: String,
    ) {
        let lang = lang();
        let Some(req) = request.get_untracked() else {
            return;
        };
        let Ok(pin) = Pin::new(&digits) else {
            return error.set(Some(texts(lang).pin_four_digits.to_owned()));
        };
        drop(digits);
        let Some(person) = DEMO_PEOPLE.iter().find(|p| p.no == no) else {
            return;
        };
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let signed = match CardReader::practice(person).await {
                // Exactly the text that was checked and shown.
                Ok(mut card) => card.authenticate(&pin, &req.text.message()).await,
                Err(e) => Err(e),
            };
            drop(pin);
            busy.set(false);
            match signed {
                Ok(auth) => {
                    use base64::Engine as _;
                    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                    let result = AppResult {
                        v: PROTOCOL_VERSION,
                        challenge: req.text.challenge().to_owned(),
                        certificate: b64.encode(&auth.certificate_der),
                        signature: b64.encode(&auth.signature),
                    };
                    match fragment::encode(&result) {
                        Some(text) => back(&req, &text),
                        None => back(&req, "error=app_failed"),
                    }
                }
                Err(CardError::PinBlocked) => back(&req, "error=pin_blocked"),
                Err(e) => {
                    reload.set(e == CardError::PracticeUnavailable);
                    error.set(Some(e.message(lang)));
                }
            }
        });
    }
}
