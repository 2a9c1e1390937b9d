//! The card step's live part: which ways to the card this device offers, then the PIN pad, then
//! the signature and the submission. It runs only in the browser (WebUSB, the practice card);
//! the server renders a placeholder that the hydrated page replaces.
//!
//! The PIN lives in the input and in a zeroising [`uketsuke_card::Pin`] for the moment it takes
//! to reach the card; it is never put in a request. The request carries the challenge, the
//! origin, the certificate and the card's signature.

use leptos::prelude::*;

use crate::card::people::DEMO_PEOPLE;
use crate::i18n::{Lang, flow::FlowTexts, use_flow_texts, use_lang};

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
    /// 目視確認: the certificate is read; the staff member confirms the face.
    Visual,
}

/// How the patient's identity is confirmed on this device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The patient types the PIN and the card signs.
    Pin,
    /// A signed-in staff member compares the face with the card photo; no PIN, no signature.
    Visual,
}

#[component]
pub fn CardWays(
    link: String,
    demo: bool,
    #[prop(optional)] purpose: Option<Purpose>,
    /// Offer 目視確認 (a staff member of the institution is signed in on this device and the
    /// kind allows it).
    #[prop(optional)]
    visual: bool,
) -> impl IntoView {
    let purpose = purpose.unwrap_or(Purpose::Register);
    let f = use_flow_texts();
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    let stage = RwSignal::new(Stage::Choose);
    let error: RwSignal<Option<String>> = RwSignal::new(None);
    let person = RwSignal::new(1u32);
    let show_pin = RwSignal::new(false);
    let usb = RwSignal::new(false);
    Effect::new(move |_| usb.set(live::usb_usable()));
    let method = RwSignal::new(Method::Pin);
    let controller = live::Controller::new(link, stage, error, purpose, method);
    let pin_ref = NodeRef::<leptos::html::Input>::new();
    if matches!(purpose, Purpose::Manage(_)) {
        let controller = controller.clone();
        Effect::new(move |_| controller.resume_from_app());
    }

    let choose = {
        let controller = controller.clone();
        move || {
            let for_usb = controller.clone();
            let for_practice = controller.clone();
            let for_app = controller.clone();
            view! {
                <section class="card" aria-labelledby="ways-heading">
                    {visual.then(|| view! {
                        <fieldset class="choice method" data-testid="method">
                            <legend>{move || f().method_title}</legend>
                            {[
                                (Method::Pin, "method-pin", (|t| t.method_pin) as fn(&FlowTexts) -> &'static str),
                                (Method::Visual, "method-visual", |t| t.method_visual),
                            ].into_iter().map(|(value, testid, text)| view! {
                                <label class="option">
                                    <input
                                        type="radio"
                                        name="method"
                                        data-testid=testid
                                        prop:checked=move || method.get() == value
                                        on:change=move |_| method.set(value)
                                    />
                                    {move || text(f())}
                                </label>
                            }).collect_view()}
                        </fieldset>
                    })}
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
                    // The app takes the PIN itself: offered for PIN confirmation only.
                    {move || (method.get() == Method::Pin).then(|| {
                        let controller = for_app.clone();
                        view! {
                            <button
                                type="button"
                                class="button secondary"
                                data-testid="use-app"
                                on:click=move |_| controller.use_app(demo)
                            >
                                {move || f().card_app}
                            </button>
                            <p class="hint-text">{move || f().card_app_hint}</p>
                        }
                    })}
                    {demo.then(|| {
                        let controller = for_practice.clone();
                        view! {
                            <div class="practice">
                                <p class="demo-tag-line"><span class="demo-tag">"デモ DEMO"</span></p>
                                <label for="demo-person">{move || f().card_practice_person}</label>
                                <DemoPersonSelect id="demo-person" person described_by="practice-hint"/>
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

    let confirm_face = {
        let controller = controller.clone();
        move || {
            let send = controller.clone();
            let again = controller.clone();
            let confirmed = RwSignal::new(false);
            view! {
                <form
                    class="card visual-check"
                    aria-labelledby="visual-heading"
                    on:submit=move |ev| {
                        ev.prevent_default();
                        send.submit_visual(confirmed.get_untracked());
                    }
                >
                    <h2 id="visual-heading">{move || f().visual_title}</h2>
                    <p>{move || f().visual_body}</p>
                    <label class="inline">
                        <input
                            type="checkbox"
                            data-testid="face-matches"
                            required=true
                            on:change=move |ev| confirmed.set(event_target_checked(&ev))
                        />
                        {move || f().visual_confirm}
                    </label>
                    <div class="actions">
                        <button
                            type="button"
                            class="button secondary"
                            on:click=move |_| again.restart()
                        >
                            {move || f().visual_read_again}
                        </button>
                        <button type="submit" class="button" data-testid="visual-send">{move || f().visual_send}</button>
                    </div>
                </form>
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
                Stage::Visual => confirm_face().into_any(),
            }
        }}
    }
}

/// The demo people to choose a practice card from (the card step and the practice app).
#[component]
pub(crate) fn DemoPersonSelect(
    id: &'static str,
    person: RwSignal<u32>,
    #[prop(optional)] described_by: Option<&'static str>,
) -> impl IntoView {
    let lang = use_lang();
    view! {
        <select
            id=id
            data-testid="demo-person"
            aria-describedby=described_by
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
                    <option value=no.to_string() selected=no == person.get_untracked()>
                        {move || format!("{no}. {} (PIN {pin})", if lang.get() == Lang::Ja { ja } else { en })}
                    </option>
                }
            }).collect_view()}
        </select>
    }
}

/// The browser side: the reader, the API calls.
#[cfg(feature = "hydrate")]
mod live {
    use base64::Engine as _;
    use leptos::prelude::*;
    use leptos::task::spawn_local;
    use uketsuke_card::{Pin, PinStatus};

    use super::{Method, Purpose, Stage, post_json};
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
        method: RwSignal<Method>,
        /// The certificate read for 目視確認.
        certificate: StoredValue<Option<Vec<u8>>>,
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    impl Controller {
        pub fn new(
            link: String,
            stage: RwSignal<Stage>,
            error: RwSignal<Option<String>>,
            purpose: Purpose,
            method: RwSignal<Method>,
        ) -> Self {
            Controller {
                link,
                stage,
                error,
                reader: StoredValue::new_local(None),
                lang: use_lang(),
                purpose,
                method,
                certificate: StoredValue::new(None),
            }
        }

        fn card_failed(&self, e: CardError) {
            self.error.set(Some(e.message(self.lang.get_untracked())));
        }

        fn api_failed(&self, code: &str) {
            self.error
                .set(Some(super::api_message(self.lang.get_untracked(), code)));
        }

        /// Reads the tries left (without spending one) and opens the PIN pad; for 目視確認,
        /// reads the certificate (no PIN) and asks the staff member to confirm the face.
        async fn connect(&self, reader: CardReader) {
            let mut reader = reader;
            if self.method.get_untracked() == Method::Visual {
                let read = reader.read_certificate().await;
                self.reader.set_value(Some(reader));
                match read {
                    Ok(der) => {
                        self.certificate.set_value(Some(der));
                        self.stage.set(Stage::Visual);
                    }
                    Err(e) => {
                        self.stage.set(Stage::Choose);
                        self.card_failed(e);
                    }
                }
                return;
            }
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

        /// Back to the choice of ways (the certificate read so far is dropped).
        pub fn restart(&self) {
            self.certificate.set_value(None);
            self.error.set(None);
            self.stage.set(Stage::Choose);
        }

        /// Sends the 目視確認 registration with the staff member's confirmation.
        pub fn submit_visual(&self, face_matches: bool) {
            let lang = self.lang.get_untracked();
            if !face_matches {
                self.error
                    .set(Some(code_message(lang, "face_not_confirmed").to_owned()));
                return;
            }
            let Some(certificate) = self.certificate.get_value() else {
                return self.restart();
            };
            let this = self.clone();
            self.error.set(None);
            self.stage.set(Stage::Busy("sending"));
            spawn_local(async move {
                let body = serde_json::json!({
                    "certificate": b64(&certificate),
                    "face_matches": true,
                });
                match post_json("/api/console/visual-check", Some(body)).await {
                    Ok(_) => this.finished(),
                    Err(code) if code == "already_submitted" => this.finished(),
                    Err(code) => {
                        this.stage.set(Stage::Visual);
                        this.api_failed(&code);
                    }
                }
            });
        }

        fn finished(&self) {
            super::go_done(&self.link);
        }

        /// The hand-off to a card-reading app: a challenge as for a reader, then the app's deep
        /// link (in demo mode the built-in practice app). See [`crate::pages::eid`].
        pub fn use_app(&self, demo: bool) {
            use crate::pages::eid::{APP_SCHEME, AppRequest, PROTOCOL_VERSION, fragment};
            let this = self.clone();
            self.error.set(None);
            self.stage.set(Stage::Busy("reading"));
            let (challenge_path, return_path) = match self.purpose {
                Purpose::Register => ("/api/session/challenge", "eid-return"),
                Purpose::Manage(_) => ("/api/session/manage/challenge", "manage"),
            };
            spawn_local(async move {
                let challenge = match post_json(challenge_path, None).await {
                    Ok(value) => value,
                    Err(code) => {
                        this.stage.set(Stage::Choose);
                        return this.api_failed(&code);
                    }
                };
                let field = |name: &str| {
                    challenge
                        .get(name)
                        .and_then(|v| v.as_str())
                        .map(str::to_owned)
                };
                let (Some(value), Some(message)) = (field("challenge"), field("message")) else {
                    this.stage.set(Stage::Choose);
                    return this.api_failed("temporarily_unavailable");
                };
                let origin = window().location().origin().unwrap_or_default();
                let request = AppRequest {
                    v: PROTOCOL_VERSION,
                    return_uri: format!("{origin}/r/{}/{return_path}", this.link),
                    origin,
                    challenge: value,
                    message,
                };
                let Some(encoded) = fragment::encode(&request) else {
                    this.stage.set(Stage::Choose);
                    return this.api_failed("temporarily_unavailable");
                };
                let target = if demo {
                    format!("/r/{}/eid-app#{encoded}", this.link)
                } else {
                    format!("{APP_SCHEME}#{encoded}")
                };
                let _ = window().location().set_href(&target);
                // If no app takes the link, the page stays: back to the choice of ways.
                this.stage.set(Stage::Choose);
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
                let challenge = match post_json(challenge_path, None).await {
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
                this.deliver(submit_path, body, Stage::Pin { tries: None })
                    .await;
            });
        }

        /// Sends the card's proof: registration → the done screen; management → the list.
        /// On a refusal the step goes back to `on_refusal` with the reason shown.
        async fn deliver(&self, submit_path: &str, body: serde_json::Value, on_refusal: Stage) {
            let answer = post_json(submit_path, Some(body)).await;
            if let (Purpose::Manage(list), Ok(value)) = (self.purpose, &answer) {
                self.stage.set(Stage::Choose);
                match serde_json::from_value(value.clone()) {
                    Ok(managed) => list.set(Some(managed)),
                    Err(_) => self.api_failed("temporarily_unavailable"),
                }
                return;
            }
            match answer {
                Ok(_) => self.finished(),
                Err(code) if code == "already_submitted" => self.finished(),
                Err(code) => {
                    self.stage.set(on_refusal);
                    self.api_failed(&code);
                }
            }
        }

        /// On the 同意照会 page: the card-reading app's result, if the app just returned here
        /// (`#<result>` or `#error=<code>`), is sent as the card step would send it.
        pub fn resume_from_app(&self) {
            use crate::pages::eid::{AppResult, PROTOCOL_VERSION, app_error_message, fragment};
            let hash = fragment::take();
            if hash.is_empty() {
                return;
            }
            let lang = self.lang.get_untracked();
            if let Some(code) = fragment::error_code(&hash) {
                return self.error.set(Some(app_error_message(lang, &code)));
            }
            let Some(result) =
                fragment::decode::<AppResult>(&hash).filter(|r| r.v == PROTOCOL_VERSION)
            else {
                return self
                    .error
                    .set(Some(texts(lang).app_return_missing.to_owned()));
            };
            let this = self.clone();
            self.stage.set(Stage::Busy("sending"));
            spawn_local(async move {
                let body = serde_json::json!({
                    "challenge": result.challenge,
                    "origin": window().location().origin().unwrap_or_default(),
                    "certificate": result.certificate,
                    "signature": result.signature,
                });
                this.deliver("/api/session/manage/proof", body, Stage::Choose)
                    .await;
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
    use super::{Method, Purpose, Stage};
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
            _method: RwSignal<Method>,
        ) -> Self {
            Controller
        }
        pub fn restart(&self) {}
        pub fn use_app(&self, _demo: bool) {}
        pub fn resume_from_app(&self) {}
        pub fn submit_visual(&self, _face_matches: bool) {}
        pub fn use_usb(&self) {}
        pub fn use_practice(&self, _no: u32) {}
        pub fn submit_pin(&self, _digits: String) {}
    }
}

/// The browser's calls to our API, shared by the card step and the app hand-off's return page.
#[cfg(feature = "hydrate")]
/// A refusal from our API: its code, or "offline" when nothing answered. Console calls
/// (目視確認) carry the console's CSRF header.
pub(crate) async fn post_json(
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, String> {
    let mut request = gloo_net::http::Request::post(path);
    if path.starts_with("/api/console/") {
        request = request.header("x-uketsuke-csrf", "1");
    }
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

/// The words for a refusal code of our API (or `offline`).
#[cfg(feature = "hydrate")]
pub(crate) fn api_message(lang: crate::i18n::Lang, code: &str) -> String {
    if code == "offline" {
        crate::i18n::flow::texts(lang).offline.to_owned()
    } else {
        crate::i18n::flow::code_message(lang, code).to_owned()
    }
}

/// To the done screen of `link` (the reception is registered).
#[cfg(feature = "hydrate")]
pub(crate) fn go_done(link: &str) {
    let _ = window().location().set_href(&format!("/r/{link}/done"));
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
