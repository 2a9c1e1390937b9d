//! The PIN pad: four digits that go to the card only (never into a request), then the card's
//! signature over the server's challenge, sent as the proof.

use leptos::prelude::*;

use super::Controller;
use crate::i18n::use_flow_texts;
#[cfg(feature = "hydrate")]
use {
    super::{Stage, b64, submit::post_json},
    crate::{card::CardError, i18n::flow::texts},
    leptos::task::spawn_local,
    uketsuke_card::Pin,
};

/// What the PIN inputs take: four digits, half- or full-width (a Japanese input method in
/// full-width mode types １２３４).
pub const PIN_PATTERN: &str = "[0-9０-９]{4}";

/// The PIN as typed, full-width digits (U+FF10–U+FF19) made ASCII; anything else is left for
/// the PIN's own check to refuse.
pub fn pin_digits(typed: &str) -> String {
    typed
        .chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(u32::from(c) - 0xFF10 + 0x30).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// The PIN pad; `tries` left when the card told us.
#[component]
pub(super) fn PinPad(
    controller: Controller,
    tries: Option<u8>,
    show_pin: RwSignal<bool>,
    pin_ref: NodeRef<leptos::html::Input>,
    /// 健康保険証利用登録: the button registers the card rather than the reception.
    #[prop(optional)]
    insurance_use: bool,
) -> impl IntoView {
    let f = use_flow_texts();
    let u = crate::i18n::use_insurance_use_texts();
    view! {
        <form
            class="card pin-pad"
            aria-labelledby="pin-heading"
            on:submit=move |ev| {
                ev.prevent_default();
                if let Some(input) = pin_ref.get_untracked() {
                    let digits = pin_digits(&input.value());
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
                pattern=PIN_PATTERN
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
            <button type="submit" class="button" data-testid="send">{move || if insurance_use { u().pin_send } else { f().pin_send }}</button>
        </form>
    }
}

#[cfg(feature = "hydrate")]
impl Controller {
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
            let (challenge_path, submit_path) = this.purpose.paths();
            let challenge = match post_json(challenge_path, None).await {
                Ok(value) => value,
                Err(code) => return this.challenge_refused(&code, Stage::Pin { tries: None }),
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
            let body = super::proof_body(
                this.purpose,
                &value,
                &origin,
                &b64(&auth.certificate_der),
                &b64(&auth.signature),
            );
            this.deliver(submit_path, body, Stage::Pin { tries: None })
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::pin_digits;

    #[test]
    fn full_width_digits_become_ascii_and_nothing_else_changes() {
        assert_eq!(pin_digits("１２３４"), "1234");
        assert_eq!(pin_digits("1２3４"), "1234");
        assert_eq!(pin_digits("12a4"), "12a4");
        assert_eq!(pin_digits("一二三四"), "一二三四");
        assert_eq!(pin_digits(""), "");
    }
}
