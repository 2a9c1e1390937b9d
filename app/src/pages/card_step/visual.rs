//! 目視確認: the certificate is read without a PIN, and a signed-in staff member confirms that
//! the patient's face matches the card photo before the registration is sent in their name.

use leptos::prelude::*;

use super::Controller;
use crate::i18n::use_flow_texts;
#[cfg(feature = "hydrate")]
use {
    super::{Stage, b64, submit::post_json},
    crate::i18n::flow::code_message,
    leptos::task::spawn_local,
};

/// The staff member's confirmation of the face.
#[component]
pub(super) fn ConfirmFace(controller: Controller) -> impl IntoView {
    let f = use_flow_texts();
    let send = controller.clone();
    let again = controller;
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

#[cfg(feature = "hydrate")]
impl Controller {
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
}
