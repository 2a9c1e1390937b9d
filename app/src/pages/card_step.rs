//! The card step's live part: which ways to the card this device offers, then the PIN pad, then
//! the signature and the submission. It runs only in the browser (WebUSB, the practice card);
//! the server renders a placeholder that the hydrated page replaces.
//!
//! The PIN lives in the input and in a zeroising [`uketsuke_card::Pin`] for the moment it takes
//! to reach the card; it is never put in a request. The request carries the challenge, the
//! origin, the certificate and the card's signature.

use leptos::prelude::*;

use crate::card::people::DEMO_PEOPLE;
use crate::i18n::{Lang, use_flow_texts, use_lang};

/// What the card proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Sign the consent binding and submit the reception.
    Register,
    /// Sign the management binding to see (and withdraw) earlier consents; the list lands in
    /// the given signal.
    Manage(RwSignal<Option<crate::api::ManagedList>>),
}

/// What the card step shows.
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    /// Choose a way to the card.
    Choose,
    /// Reading the card (tries left, or signing).
    Busy(&'static str),
    /// Ready for the PIN; tries left when the card told us.
    Pin { tries: Option<u8> },
}

#[component]
pub fn CardWays(
    link: String,
    demo: bool,
    #[prop(optional)] purpose: Option<Purpose>,
) -> impl IntoView {
    let purpose = purpose.unwrap_or(Purpose::Register);
    let f = use_flow_texts();
    let lang = use_lang();
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let stage = RwSignal::new(Stage::Choose);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let person = RwSignal::new(1u32);
    let show_pin = RwSignal::new(false);
    let usb = RwSignal::new(false);
    Effect::new(move |_| usb.set(live::usb_usable()));
    let controller = live::Controller::new(link, stage, error, purpose);
    let pin_ref = NodeRef::<leptos::html::Input>::new();

    let choose = {
        let controller = controller.clone();
        move || {
            let for_usb = controller.clone();
            let for_practice = controller.clone();
            view! {
                <section class="card" aria-labelledby="ways-heading">
                    <h2 id="ways-heading">{move || f().card_ways}</h2>
                    <Show when=move || usb.get()>
                        <button
                            type="button"
                            class="button"
                            data-testid="use-usb"
                            on:click={
                                let controller = for_usb.clone();
                                move |_| controller.use_usb()
                            }
                        >
                            {move || f().card_usb}
                        </button>
                        <p class="hint-text">{move || f().card_usb_hint}</p>
                    </Show>
                    {demo.then(|| {
                        let controller = for_practice.clone();
                        view! {
                            <div class="practice">
                                <p class="demo-tag-line"><span class="demo-tag">"デモ DEMO"</span></p>
                                <label for="demo-person">{move || f().card_practice_person}</label>
                                <select
                                    id="demo-person"
                                    data-testid="demo-person"
                                    aria-describedby="practice-hint"
                                    on:change=move |ev| {
                                        if let Ok(no) = event_target_value(&ev).parse() {
                                            person.set(no);
                                        }
                                    }
                                >
                                    {DEMO_PEOPLE.iter().map(|p| {
                                        let no = p.no;
                                        let pin = crate::card::people::demo_pin(no);
                                        let (ja, en) = (p.case_ja, p.case_en);
                                        view! {
                                            <option value=no.to_string() selected=no == 1>
                                                {move || format!("{no}. {} (PIN {pin})", if lang.get() == Lang::Ja { ja } else { en })}
                                            </option>
                                        }
                                    }).collect_view()}
                                </select>
                                <p id="practice-hint" class="hint-text">{move || f().card_practice_hint}</p>
                                <button
                                    type="button"
                                    class="button secondary"
                                    data-testid="use-practice"
                                    on:click=move |_| controller.use_practice(person.get_untracked())
                                >
                                    {move || f().card_practice}
                                </button>
                            </div>
                        }
                    })}
                </section>
            }
        }
    };

    let pin_pad = move |tries: Option<u8>| {
        let controller = controller.clone();
        view! {
            <form
                class="card pin-pad"
                aria-labelledby="pin-heading"
                on:submit=move |ev| {
                    ev.prevent_default();
                    if let Some(input) = pin_ref.get_untracked() {
                        let digits = input.value();
                        // The input is cleared at once; the digits go only to the card.
                        input.set_value("");
                        controller.submit_pin(digits);
                    }
                }
            >
                <h2 id="pin-heading">{move || f().pin_title}</h2>
                {tries.map(|n| view! { <p class="tries" data-testid="tries">{move || (f().pin_tries)(n)}</p> })}
                <label for="pin">{move || f().pin_label}</label>
                <input
                    id="pin"
                    node_ref=pin_ref
                    data-testid="pin"
                    type=move || if show_pin.get() { "text" } else { "password" }
                    inputmode="numeric"
                    pattern="[0-9]{4}"
                    minlength="4"
                    maxlength="4"
                    autocomplete="off"
                    required=true
                    aria-describedby="pin-hint"
                />
                <p id="pin-hint" class="hint-text">{move || f().pin_hint}</p>
                <label class="inline">
                    <input
                        type="checkbox"
                        on:change=move |ev| show_pin.set(event_target_checked(&ev))
                    />
                    {move || f().pin_show}
                </label>
                <button type="submit" class="button" data-testid="send">{move || f().pin_send}</button>
            </form>
        }
    };

    view! {
        <div role="alert" aria-live="assertive" class="alert-region" data-testid="card-error">
            {move || error.get().map(|message| view! { <p class="card notice">{message}</p> })}
        </div>
        {move || {
            if !hydrated.get() {
                return view! { <p class="card loading" data-testid="card-loading">{move || f().card_loading}</p> }.into_any();
            }
            match stage.get() {
                Stage::Choose => choose().into_any(),
                Stage::Busy(what) => view! {
                    <p class="card" role="status" data-testid="card-busy">
                        <span class="spinner" aria-hidden="true"></span>
                        {move || match what {
                            "signing" => f().signing,
                            "sending" => f().sending,
                            _ => f().card_reading,
                        }}
                    </p>
                }.into_any(),
                Stage::Pin { tries } => pin_pad(tries).into_any(),
            }
        }}
    }
}

/// The browser side: the reader, the API calls.
#[cfg(feature = "hydrate")]
mod live {
    use base64::Engine as _;
    use leptos::prelude::*;
    use leptos::task::spawn_local;
    use uketsuke_card::{Pin, PinStatus};

    use super::{Purpose, Stage};
    use crate::card::{CardError, people::DEMO_PEOPLE, reader::CardReader};
    use crate::i18n::{flow::code_message, flow::texts, use_lang};

    pub fn usb_usable() -> bool {
        crate::card::reader::detect_capabilities().usb_reader_usable()
    }

    #[derive(Clone)]
    pub struct Controller {
        link: String,
        stage: RwSignal<Stage>,
        error: RwSignal<Option<String>>,
        reader: StoredValue<Option<CardReader>, LocalStorage>,
        lang: RwSignal<crate::i18n::Lang>,
        purpose: Purpose,
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A refusal from our API: its code, or "offline" when nothing answered.
    async fn post(
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, String> {
        let request = gloo_net::http::Request::post(path);
        let sent = match body {
            Some(json) => {
                request
                    .json(&json)
                    .map_err(|_| "body".to_owned())?
                    .send()
                    .await
            }
            None => request.send().await,
        };
        let response = sent.map_err(|_| "offline".to_owned())?;
        let value: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
        if response.ok() {
            Ok(value)
        } else {
            Err(value
                .get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("temporarily_unavailable")
                .to_owned())
        }
    }

    impl Controller {
        pub fn new(
            link: String,
            stage: RwSignal<Stage>,
            error: RwSignal<Option<String>>,
            purpose: Purpose,
        ) -> Self {
            Controller {
                link,
                stage,
                error,
                reader: StoredValue::new_local(None),
                lang: use_lang(),
                purpose,
            }
        }

        fn card_failed(&self, e: CardError) {
            self.error.set(Some(e.message(self.lang.get_untracked())));
        }

        fn api_failed(&self, code: &str) {
            let lang = self.lang.get_untracked();
            let message = if code == "offline" {
                texts(lang).offline.to_owned()
            } else {
                code_message(lang, code).to_owned()
            };
            self.error.set(Some(message));
        }

        /// Reads the tries left (without spending one) and opens the PIN pad.
        async fn connect(&self, reader: CardReader) {
            let mut reader = reader;
            let status = reader.pin_status().await;
            self.reader.set_value(Some(reader));
            match status {
                Ok(PinStatus::Blocked) => {
                    self.stage.set(Stage::Choose);
                    self.card_failed(CardError::PinBlocked);
                }
                Ok(PinStatus::TriesLeft(n)) => self.stage.set(Stage::Pin { tries: Some(n) }),
                Ok(PinStatus::Verified) => self.stage.set(Stage::Pin { tries: None }),
                Err(e) => {
                    self.stage.set(Stage::Choose);
                    self.card_failed(e);
                }
            }
        }

        pub fn use_usb(&self) {
            let this = self.clone();
            self.error.set(None);
            spawn_local(async move {
                match CardReader::request_usb().await {
                    Ok(reader) => {
                        this.stage.set(Stage::Busy("reading"));
                        this.connect(reader).await;
                    }
                    Err(e) => this.card_failed(e),
                }
            });
        }

        pub fn use_practice(&self, no: u32) {
            let this = self.clone();
            self.error.set(None);
            self.stage.set(Stage::Busy("reading"));
            spawn_local(async move {
                let Some(person) = DEMO_PEOPLE.iter().find(|p| p.no == no) else {
                    this.stage.set(Stage::Choose);
                    return;
                };
                // Let the busy message paint before the key is generated.
                gloo_timers_yield().await;
                match CardReader::practice(person) {
                    Ok(reader) => this.connect(reader).await,
                    Err(e) => {
                        this.stage.set(Stage::Choose);
                        this.card_failed(e);
                    }
                }
            });
        }

        pub fn submit_pin(&self, digits: String) {
            let lang = self.lang.get_untracked();
            let pin = match Pin::new(&digits) {
                Ok(pin) => pin,
                Err(_) => {
                    self.error.set(Some(texts(lang).pin_four_digits.to_owned()));
                    return;
                }
            };
            drop(digits);
            let this = self.clone();
            self.error.set(None);
            self.stage.set(Stage::Busy("signing"));
            spawn_local(async move {
                let (challenge_path, submit_path) = match this.purpose {
                    Purpose::Register => ("/api/session/challenge", "/api/session/registration"),
                    Purpose::Manage(_) => {
                        ("/api/session/manage/challenge", "/api/session/manage/proof")
                    }
                };
                let challenge = match post(challenge_path, None).await {
                    Ok(value) => value,
                    Err(code) => {
                        this.stage.set(Stage::Pin { tries: None });
                        return this.api_failed(&code);
                    }
                };
                let (Some(value), Some(message)) = (
                    challenge
                        .get("challenge")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned),
                    challenge
                        .get("message")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned),
                ) else {
                    this.stage.set(Stage::Pin { tries: None });
                    return this.api_failed("temporarily_unavailable");
                };
                let taken = this.reader.try_update_value(Option::take).flatten();
                let Some(mut reader) = taken else {
                    this.stage.set(Stage::Choose);
                    return;
                };
                let signed = reader.authenticate(&pin, message.as_bytes()).await;
                drop(pin);
                this.reader.set_value(Some(reader));
                let auth = match signed {
                    Ok(auth) => auth,
                    Err(CardError::WrongPin { tries_left }) => {
                        this.stage.set(Stage::Pin {
                            tries: Some(tries_left),
                        });
                        return this.card_failed(CardError::WrongPin { tries_left });
                    }
                    Err(e) => {
                        this.stage.set(Stage::Choose);
                        return this.card_failed(e);
                    }
                };
                this.stage.set(Stage::Busy("sending"));
                let origin = window().location().origin().unwrap_or_default();
                let body = serde_json::json!({
                    "challenge": value,
                    "origin": origin,
                    "certificate": b64(&auth.certificate_der),
                    "signature": b64(&auth.signature),
                });
                let answer = post(submit_path, Some(body)).await;
                if let (Purpose::Manage(list), Ok(value)) = (this.purpose, &answer) {
                    match serde_json::from_value(value.clone()) {
                        Ok(managed) => {
                            list.set(Some(managed));
                            this.stage.set(Stage::Choose);
                        }
                        Err(_) => {
                            this.stage.set(Stage::Choose);
                            this.api_failed("temporarily_unavailable");
                        }
                    }
                    return;
                }
                match answer {
                    Ok(_) => {
                        let _ = window()
                            .location()
                            .set_href(&format!("/r/{}/done", this.link));
                    }
                    Err(code) if code == "already_submitted" => {
                        let _ = window()
                            .location()
                            .set_href(&format!("/r/{}/done", this.link));
                    }
                    Err(code) => {
                        this.stage.set(Stage::Pin { tries: None });
                        this.api_failed(&code);
                    }
                }
            });
        }
    }

    /// One turn of the event loop, so the page can repaint before heavy work.
    async fn gloo_timers_yield() {
        let promise = js_sys::Promise::new(&mut |resolve, _| {
            let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 30);
        });
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
}

/// On the server the card step is a placeholder; nothing here runs.
#[cfg(not(feature = "hydrate"))]
mod live {
    use super::{Purpose, Stage};
    use leptos::prelude::*;

    pub fn usb_usable() -> bool {
        false
    }

    #[derive(Clone)]
    pub struct Controller;

    impl Controller {
        pub fn new(
            _link: String,
            _stage: RwSignal<Stage>,
            _error: RwSignal<Option<String>>,
            _purpose: Purpose,
        ) -> Self {
            Controller
        }
        pub fn use_usb(&self) {}
        pub fn use_practice(&self, _no: u32) {}
        pub fn submit_pin(&self, _digits: String) {}
    }
}

/// `POST /api/session/manage/withdraw-all` from the browser; the new list, or an error code.
#[cfg(feature = "hydrate")]
pub async fn withdraw_all() -> Result<crate::api::ManagedList, String> {
    let response = gloo_net::http::Request::post("/api/session/manage/withdraw-all")
        .send()
        .await
        .map_err(|_| "offline".to_owned())?;
    if !response.ok() {
        return Err("temporarily_unavailable".to_owned());
    }
    response
        .json()
        .await
        .map_err(|_| "temporarily_unavailable".to_owned())
}
