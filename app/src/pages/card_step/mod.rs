//! The card step's live part: which ways to the card this device offers, then the PIN pad, then
//! the signature and the submission. It runs only in the browser (WebUSB, the practice card);
//! the server renders a placeholder that the hydrated page replaces.
//!
//! The PIN lives in the input and in a zeroising [`uketsuke_card::Pin`] for the moment it takes
//! to reach the card; it is never put in a request. The request carries the challenge, the
//! origin, the certificate and the card's signature.
//!
//! One file per part: `ways` (how this device reaches the card), `pin_pad` (the PIN and the
//! signature), `visual` (目視確認), `hand_off` (the card-reading app and its protocol), `submit`
//! (the calls to our API that send the proof). This file holds the step's state and the frame
//! that shows one part at a time.

pub mod hand_off;
pub mod pin_pad;
pub mod submit;
mod visual;
pub mod ways;

use leptos::either::EitherOf5;
use leptos::prelude::*;

use crate::i18n::use_flow_texts;
#[cfg(feature = "hydrate")]
use crate::{
    card::{CardError, reader::CardReader},
    i18n::use_lang,
};
use pin_pad::PinPad;
use visual::ConfirmFace;
use ways::Ways;

/// What the card proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Sign the consent binding and submit the reception.
    Register,
    /// Sign the management binding to see (and withdraw) earlier consents; the list lands in
    /// the given signal.
    Manage(RwSignal<Option<crate::api::ManagedList>>),
    /// Sign the insurance-use text to register the card of the session's reception for use as a
    /// health insurance card (健康保険証利用登録); the done screen follows it.
    InsuranceUse,
}

#[cfg(feature = "hydrate")]
impl Purpose {
    /// Where the challenge comes from and where the proof goes.
    pub(crate) const fn paths(self) -> (&'static str, &'static str) {
        match self {
            Purpose::Register => ("/api/session/challenge", "/api/session/registration"),
            Purpose::Manage(_) => ("/api/session/manage/challenge", "/api/session/manage/proof"),
            Purpose::InsuranceUse => (
                "/api/session/insurance-use/challenge",
                "/api/session/insurance-use",
            ),
        }
    }

    /// The page of the link the card-reading app returns to.
    pub(crate) const fn return_page(self) -> &'static str {
        match self {
            Purpose::Register => "eid-return",
            Purpose::Manage(_) => "manage",
            Purpose::InsuranceUse => "insurance-use",
        }
    }
}

/// The proof as the server takes it: the challenge, the origin, the card's certificate and
/// signature; for 健康保険証利用登録 also the version of the terms the patient agreed to.
#[cfg(feature = "hydrate")]
pub(crate) fn proof_body(
    purpose: Purpose,
    challenge: &str,
    origin: &str,
    certificate: &str,
    signature: &str,
) -> serde_json::Value {
    let mut body = serde_json::json!({
        "challenge": challenge,
        "origin": origin,
        "certificate": certificate,
        "signature": signature,
    });
    if purpose == Purpose::InsuranceUse {
        body["terms_version"] = uketsuke_backend::contract::INSURANCE_USE_TERMS_VERSION.into();
    }
    body
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
    Effect::new(move |_| usb.set(usb_usable()));
    let method = RwSignal::new(Method::Pin);
    // A part of the page could not be fetched (the practice card's chunk): offer a reload.
    let reload = RwSignal::new(false);
    let controller = Controller::new(link, stage, error, purpose, method, reload);
    let pin_ref = NodeRef::<leptos::html::Input>::new();
    if matches!(purpose, Purpose::Manage(_) | Purpose::InsuranceUse) {
        let controller = controller.clone();
        Effect::new(move |_| controller.resume_from_app());
    }

    view! {
        <div role="alert" aria-live="assertive" class="alert-region" data-testid="card-error">
            {move || error.get().map(|message| view! { <p class="card notice">{message}</p> })}
            {
                let offer = Memo::new(move |_| reload.get() && error.with(Option::is_some));
                move || offer.get().then(|| view! { <p><crate::components::ReloadButton/></p> })
            }
        </div>
        {move || {
            if !hydrated.get() {
                return EitherOf5::A(view! { <p class="card loading" data-testid="card-loading">{move || f().card_loading}</p> });
            }
            let controller = controller.clone();
            match stage.get() {
                Stage::Choose => EitherOf5::B(view! { <Ways controller visual demo method usb person/> }),
                Stage::Busy(what) => EitherOf5::C(view! {
                    <p class="card" role="status" data-testid="card-busy">
                        <span class="spinner" aria-hidden="true"></span>
                        {move || match what {
                            "signing" => f().signing,
                            "sending" => f().sending,
                            _ => f().card_reading,
                        }}
                    </p>
                }),
                Stage::Pin { tries } => EitherOf5::D(view! {
                    <PinPad controller tries show_pin pin_ref insurance_use=purpose == Purpose::InsuranceUse/>
                }),
                Stage::Visual => EitherOf5::E(view! { <ConfirmFace controller/> }),
            }
        }}
    }
}

/// The card step of a reception (`/r/{link}/card`) as an island: the flow's one screen part
/// that runs in the browser. Its props come to the browser in the island's `data-props`.
#[island]
pub fn CardStep(link: String, demo: bool, visual: bool) -> impl IntoView {
    view! { <CardWays link demo visual/> }
}

/// The card step's browser side: the reader and the calls to our API. Its methods live with
/// the part of the step they serve.
#[cfg(feature = "hydrate")]
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
    /// Set when a part of the page could not be fetched; the page offers a reload.
    reload: RwSignal<bool>,
}

#[cfg(feature = "hydrate")]
fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(feature = "hydrate")]
impl Controller {
    pub fn new(
        link: String,
        stage: RwSignal<Stage>,
        error: RwSignal<Option<String>>,
        purpose: Purpose,
        method: RwSignal<Method>,
        reload: RwSignal<bool>,
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
            reload,
        }
    }

    fn card_failed(&self, e: CardError) {
        self.reload.set(e == CardError::PracticeUnavailable);
        self.error.set(Some(e.message(self.lang.get_untracked())));
    }

    fn api_failed(&self, code: &str) {
        self.error
            .set(Some(submit::api_message(self.lang.get_untracked(), code)));
    }

    /// A refused challenge request. `already_submitted` means the card's proof went through
    /// before (its answer was lost on the way, say on a phone's flaky network, and the patient
    /// tried again): the done screen shows the reception, the card is not asked again.
    /// Anything else goes back to `back_to` with the reason shown.
    fn challenge_refused(&self, code: &str, back_to: Stage) {
        if code == "already_submitted" && !matches!(self.purpose, Purpose::Manage(_)) {
            return self.finished();
        }
        self.stage.set(back_to);
        self.api_failed(code);
    }
}

#[cfg(feature = "hydrate")]
fn usb_usable() -> bool {
    crate::card::reader::detect_capabilities().usb_reader_usable()
}

/// On the server the card step is a placeholder; nothing here runs.
#[cfg(not(feature = "hydrate"))]
#[derive(Clone)]
pub struct Controller;

#[cfg(not(feature = "hydrate"))]
impl Controller {
    pub fn new(
        _link: String,
        _stage: RwSignal<Stage>,
        _error: RwSignal<Option<String>>,
        _purpose: Purpose,
        _method: RwSignal<Method>,
        _reload: RwSignal<bool>,
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

#[cfg(not(feature = "hydrate"))]
fn usb_usable() -> bool {
    false
}
