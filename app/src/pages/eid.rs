//! The hand-off to a card-reading app, for phones whose browser cannot reach the card (SPEC §4).
//!
//! The protocol, modelled on Web eID for Mobile:
//! 1. The card step gets a one-time challenge from the server, as for a USB reader, and opens
//!    `uketsuke-eid://sign#<request>`, where `<request>` is base64url (no padding) of the JSON
//!    [`AppRequest`]: the origin, the challenge, the exact message to sign and where to return.
//! 2. The app shows the patient the origin it signs for, reads the card over NFC, takes the PIN
//!    (the PIN stays in the app and on the card), signs the message and opens
//!    `<return_uri>#<result>` in the browser: base64url of the JSON [`AppResult`], or
//!    `#error=<code>` when the patient stopped or the card failed.
//! 3. The return page ([`AppReturn`]) reads the fragment in the browser (a fragment never
//!    reaches the server or its logs), removes it from the address bar and submits the
//!    certificate and signature exactly as the card step does; the server checks the challenge,
//!    its binding to the session's choices and origin, the certificate and the signature.
//!
//! The app must refuse a request whose `return_uri` is not on `origin`. In demo mode the link
//! opens the built-in practice app ([`PracticeApp`], `/r/{link}/eid-app`), which plays the
//! app's part with the practice cards, so the whole round trip can be tried and tested here.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::api::{LinkState, landing};
use crate::components::Page;
use crate::i18n::use_flow_texts;

/// The custom scheme a card-reading app registers for this protocol.
pub const APP_SCHEME: &str = "uketsuke-eid://sign";
/// Version of the request and result formats.
pub const PROTOCOL_VERSION: u8 = 1;

/// What the browser hands to the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRequest {
    pub v: u8,
    /// The origin the patient is on; the app shows it and signs only for it.
    pub origin: String,
    /// The server's one-time challenge.
    pub challenge: String,
    /// The exact text the card signs (it names the origin, the institution and the choices).
    pub message: String,
    /// Where the app sends the result (on `origin`).
    pub return_uri: String,
}

/// What the app hands back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppResult {
    pub v: u8,
    pub challenge: String,
    /// The user-authentication certificate, DER in base64url.
    pub certificate: String,
    /// The card's signature over the message, base64url.
    pub signature: String,
}

impl AppRequest {
    /// True when the return address is on the origin signed for (an app must check this).
    pub fn returns_to_origin(&self) -> bool {
        self.return_uri
            .strip_prefix(self.origin.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// The words for an app's `#error=<code>`.
#[cfg(feature = "hydrate")]
pub fn app_error_message(lang: crate::i18n::Lang, code: &str) -> String {
    match code {
        "cancelled" => crate::i18n::flow::texts(lang).app_cancelled.to_owned(),
        "pin_blocked" => crate::card::CardError::PinBlocked.message(lang),
        other => crate::i18n::flow::code_message(lang, other).to_owned(),
    }
}

/// base64url JSON in a URL fragment, both ways (browser only).
#[cfg(feature = "hydrate")]
pub mod fragment {
    use base64::Engine as _;
    use serde::{Serialize, de::DeserializeOwned};

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

    pub fn encode<T: Serialize>(value: &T) -> Option<String> {
        serde_json::to_vec(value).ok().map(|json| B64.encode(json))
    }

    /// The value in a fragment (with or without its `#`), or `None` when it is not one.
    pub fn decode<T: DeserializeOwned>(fragment: &str) -> Option<T> {
        let text = fragment.strip_prefix('#').unwrap_or(fragment);
        let bytes = B64.decode(text).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The error code of an `#error=<code>` fragment (letters, digits and `_` only).
    pub fn error_code(fragment: &str) -> Option<String> {
        let code = fragment
            .strip_prefix('#')
            .unwrap_or(fragment)
            .strip_prefix("error=")?;
        (!code.is_empty()
            && code.len() <= 40
            && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then(|| code.to_owned())
    }

    /// The fragment, taken off the address bar so that a reload or a shared address does not
    /// carry it.
    pub fn take() -> String {
        let window = leptos::prelude::window();
        let hash = window.location().hash().unwrap_or_default();
        if !hash.is_empty()
            && let Ok(history) = window.history()
        {
            let path = window.location().pathname().unwrap_or_default();
            let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&path));
        }
        hash
    }
}

/// `/r/{link}/eid-return`: the app's result arrives here and is submitted.
#[component]
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
        <Show when=move || error.get().is_none()>
            <p class="card" role="status" data-testid="app-return">
                <span class="spinner" aria-hidden="true"></span>
                {move || f().app_return_busy}
            </p>
        </Show>
        <p>
            <a class="button secondary" href=format!("/r/{link}/card") data-testid="back-to-card">
                {move || f().app_back_to_card}
            </a>
        </p>
    }
}

/// `/r/{link}/eid-app`: the practice app (demo mode only; elsewhere a 404 page).
#[component]
pub fn PracticeApp() -> impl IntoView {
    let params = use_params_map();
    let link = move || params.read().get("link").unwrap_or_default();
    let state = Resource::new(link, landing);
    let f = use_flow_texts();
    view! {
        <Suspense fallback=move || view! { <p class="loading">{move || f().app_return_busy}</p> }>
            {move || Suspend::new(async move {
                match state.await {
                    Ok(LinkState::Open(landing)) if landing.demo => practice_app().into_any(),
                    _ => {
                        crate::pages::page_status(404);
                        view! { <crate::pages::not_found::NotFound/> }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

fn practice_app() -> impl IntoView {
    let f = use_flow_texts();
    let request: RwSignal<Option<AppRequest>> = RwSignal::new(None);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let person = RwSignal::new(1u32);
    let busy = RwSignal::new(false);
    let pin_ref = NodeRef::<leptos::html::Input>::new();
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| live::read_request(request, error));
    let sign = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let digits = pin_ref
            .get_untracked()
            .map(|input| {
                let digits = input.value();
                input.set_value("");
                digits
            })
            .unwrap_or_default();
        #[cfg(feature = "hydrate")]
        live::sign(request, error, busy, person.get_untracked(), digits);
        #[cfg(not(feature = "hydrate"))]
        let _ = digits;
    };
    let cancel = move |_| {
        #[cfg(feature = "hydrate")]
        live::cancel(request);
    };
    view! {
        <Page title=Signal::derive(move || f().app_demo_title.to_owned()) demo=true>
            <h1>{move || f().app_demo_title}</h1>
            <p class="demo-tag-line"><span class="demo-tag">"デモ DEMO"</span></p>
            <p class="card">{move || f().app_demo_lead}</p>
            <div role="alert" aria-live="assertive" class="alert-region" data-testid="card-error">
                {move || error.get().map(|message| view! { <p class="card notice">{message}</p> })}
            </div>
            {move || request.get().map(|req| view! {
                <form class="card pin-pad" aria-labelledby="app-heading" on:submit=sign>
                    <h2 id="app-heading">{move || f().app_demo_site}</h2>
                    <p class="app-origin" data-testid="app-origin">{req.origin.clone()}</p>
                    <label for="app-person">{move || f().card_practice_person}</label>
                    <crate::pages::card_step::DemoPersonSelect id="app-person" person/>
                    <label for="app-pin">{move || f().pin_label}</label>
                    <input
                        id="app-pin"
                        node_ref=pin_ref
                        data-testid="pin"
                        type="password"
                        inputmode="numeric"
                        pattern="[0-9]{4}"
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
            })}
        </Page>
    }
}

/// The browser side of the hand-off.
#[cfg(feature = "hydrate")]
mod live {
    use leptos::prelude::*;
    use leptos::task::spawn_local;
    use uketsuke_card::Pin;

    use super::{AppRequest, AppResult, PROTOCOL_VERSION, fragment};
    use crate::card::{CardError, people::DEMO_PEOPLE, reader::CardReader};
    use crate::i18n::{Lang, flow::texts, use_lang};
    use crate::pages::card_step::{api_message, go_done, post_json};

    fn lang() -> Lang {
        use_lang().get_untracked()
    }

    /// Reads the app's result from the fragment and submits it as the card step would.
    pub fn submit(link: String, error: RwSignal<Option<String>>) {
        let lang = lang();
        let hash = fragment::take();
        if let Some(code) = fragment::error_code(&hash) {
            return error.set(Some(super::app_error_message(lang, &code)));
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

    /// The practice app: the request from the fragment, refused unless it returns to its origin.
    pub fn read_request(request: RwSignal<Option<AppRequest>>, error: RwSignal<Option<String>>) {
        let hash = fragment::take();
        match fragment::decode::<AppRequest>(&hash) {
            Some(req) if req.v == PROTOCOL_VERSION && req.returns_to_origin() => {
                request.set(Some(req));
            }
            _ => error.set(Some(texts(lang()).app_demo_bad.to_owned())),
        }
    }

    fn back(req: &AppRequest, fragment: &str) {
        let _ = window()
            .location()
            .replace(&format!("{}#{fragment}", req.return_uri));
    }

    /// Back to the browser with `#error=cancelled`.
    pub fn cancel(request: RwSignal<Option<AppRequest>>) {
        if let Some(req) = request.get_untracked() {
            back(&req, "error=cancelled");
        }
    }

    /// Signs with the practice card of `no` and returns the result to the browser. A wrong PIN
    /// stays in the app (tries left shown), as a real app would.
    pub fn sign(
        request: RwSignal<Option<AppRequest>>,
        error: RwSignal<Option<String>>,
        busy: RwSignal<bool>,
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
            let signed = match CardReader::practice(person) {
                Ok(mut card) => card.authenticate(&pin, req.message.as_bytes()).await,
                Err(e) => Err(e),
            };
            drop(pin);
            busy.set(false);
            match signed {
                Ok(auth) => {
                    use base64::Engine as _;
                    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                    let result = AppResult {
                        v: super::PROTOCOL_VERSION,
                        challenge: req.challenge.clone(),
                        certificate: b64.encode(&auth.certificate_der),
                        signature: b64.encode(&auth.signature),
                    };
                    match fragment::encode(&result) {
                        Some(text) => back(&req, &text),
                        None => back(&req, "error=app_failed"),
                    }
                }
                Err(CardError::PinBlocked) => back(&req, "error=pin_blocked"),
                Err(e) => error.set(Some(e.message(lang))),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(return_uri: &str) -> AppRequest {
        AppRequest {
            v: PROTOCOL_VERSION,
            origin: "https://uketsuke.example.jp".to_owned(),
            challenge: "c".repeat(43),
            message: "m".to_owned(),
            return_uri: return_uri.to_owned(),
        }
    }

    #[test]
    fn the_app_returns_only_to_the_origin_it_signs_for() {
        assert!(request("https://uketsuke.example.jp/r/abc/eid-return").returns_to_origin());
        for foreign in [
            "https://uketsuke.example.jp.evil.example/r/abc/eid-return",
            "https://uketsuke.example.jp@evil.example/r/abc",
            "https://uketsuke.example.jp:8443/r/abc",
            "http://uketsuke.example.jp/r/abc",
            "https://evil.example/https://uketsuke.example.jp/",
            "https://uketsuke.example.jp",
            "",
        ] {
            assert!(!request(foreign).returns_to_origin(), "{foreign}");
        }
    }
}
