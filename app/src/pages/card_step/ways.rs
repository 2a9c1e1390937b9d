//! The choice of ways to the card this device offers: a USB reader (WebUSB), the card-reading
//! app, the practice card in demo mode; with 目視確認 on offer, the choice of method first.

use leptos::prelude::*;

use super::{Controller, Method};
use crate::card::people::DEMO_PEOPLE;
use crate::i18n::{Lang, flow::FlowTexts, use_flow_texts, use_lang};
#[cfg(feature = "hydrate")]
use {
    super::Stage,
    crate::card::{CardError, reader::CardReader},
    leptos::task::spawn_local,
    uketsuke_card::PinStatus,
};

/// The ways to the card, as buttons.
#[component]
pub(super) fn Ways(
    controller: Controller,
    visual: bool,
    demo: bool,
    method: RwSignal<Method>,
    usb: RwSignal<bool>,
    person: RwSignal<u32>,
) -> impl IntoView {
    let f = use_flow_texts();
    let for_usb = controller.clone();
    let for_practice = controller.clone();
    let for_app = controller.clone();
    let for_helper = controller;
    let lang = use_lang();
    // The desktop card helper: offered on computers (where a PC/SC reader is the usual way to
    // the card and browsers cannot reach it), never on phones.
    let desktop = RwSignal::new(false);
    Effect::new(move |_| desktop.set(is_desktop()));
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
            {move || usb.get().then(|| {
                let controller = for_usb.clone();
                view! {
                    <button
                        type="button"
                        class="button"
                        data-testid="use-usb"
                        on:click=move |_| controller.use_usb()
                    >
                        {move || f().card_usb}
                    </button>
                    <p class="hint-text">{move || f().card_usb_hint}</p>
                }
            })}
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
            {move || (method.get() == Method::Pin && desktop.get()).then(|| {
                let controller = for_helper.clone();
                let words = move || helper_texts(lang.get());
                view! {
                    <button
                        type="button"
                        class="button secondary"
                        data-testid="use-helper"
                        on:click=move |_| controller.use_app(false)
                    >
                        {move || words().0}
                    </button>
                    <p class="hint-text">
                        {move || words().1}" "
                        <a href="/card-helper.html" data-testid="helper-install">{move || words().2}</a>
                    </p>
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

/// The words of the desktop card helper's offer: button, hint, install link.
fn helper_texts(lang: Lang) -> (&'static str, &'static str, &'static str) {
    match lang {
        Lang::Ja => (
            "パソコンのカード読み取りアプリで読み取る",
            "ICカードリーダーをつないだパソコンで、Uketsuke カード読み取りアプリ（カードヘルパー）が開きます。暗証番号はアプリに入力します。",
            "アプリの入れ方",
        ),
        Lang::En => (
            "Read with the card helper on this computer",
            "Opens the Uketsuke card helper on a computer with a card reader; you enter your PIN in the helper.",
            "How to install the helper",
        ),
    }
}

/// True on a computer: not a phone or tablet by its user agent (Client Hints' `mobile` where the
/// browser has them).
#[cfg(feature = "hydrate")]
fn is_desktop() -> bool {
    let navigator = window().navigator();
    let hints = js_sys::Reflect::get(&navigator, &"userAgentData".into()).ok();
    let mobile_hint = hints
        .filter(|h| h.is_object())
        .and_then(|h| js_sys::Reflect::get(&h, &"mobile".into()).ok())
        .and_then(|m| m.as_bool());
    let agent = navigator.user_agent().unwrap_or_default();
    let mobile_agent = ["Android", "iPhone", "iPad", "Mobile"]
        .iter()
        .any(|word| agent.contains(word));
    !mobile_hint.unwrap_or(false) && !mobile_agent
}

#[cfg(not(feature = "hydrate"))]
fn is_desktop() -> bool {
    false
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

#[cfg(feature = "hydrate")]
impl Controller {
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
            match CardReader::practice(person).await {
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
}

/// One turn of the event loop, so the page can repaint before heavy work.
#[cfg(feature = "hydrate")]
async fn gloo_timers_yield() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 30);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
