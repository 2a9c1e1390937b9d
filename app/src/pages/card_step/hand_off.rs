//! The hand-off to a card-reading app, for phones whose browser cannot reach the card (SPEC §4):
//! the protocol, and the card step's half of it (the other half, the return page and the demo
//! practice app, is `pages::eid`).
//!
//! The protocol, modelled on Web eID for Mobile:
//! 1. The card step gets a one-time challenge from the server, as for a USB reader, and opens
//!    `uketsuke-eid://sign#<request>`, where `<request>` is base64url (no padding) of the JSON
//!    [`AppRequest`]: the origin, the challenge, the exact message to sign and where to return.
//! 2. The app shows the patient the origin it signs for, reads the card over NFC, takes the PIN
//!    (the PIN stays in the app and on the card), signs the message and opens
//!    `<return_uri>#<result>` in the browser: base64url of the JSON [`AppResult`], or
//!    `#error=<code>` when the patient stopped or the card failed.
//! 3. The return page ([`crate::pages::eid::AppReturn`]) reads the fragment in the browser (a fragment never
//!    reaches the server or its logs), removes it from the address bar and submits the
//!    certificate and signature exactly as the card step does; the server checks the challenge,
//!    its binding to the session's choices and origin, the certificate and the signature.
//!
//! The app must refuse a request whose `return_uri` is not on `origin`. In demo mode the link
//! opens the built-in practice app ([`crate::pages::eid::PracticeApp`], `/r/{link}/eid-app`),
//! which plays the app's part with the practice cards, so the whole round trip can be tried and
//! tested here.

use serde::{Deserialize, Serialize};
#[cfg(feature = "hydrate")]
use {
    super::{Controller, Purpose, Stage, submit::post_json},
    crate::i18n::flow::texts,
    leptos::{prelude::*, task::spawn_local},
};

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

#[cfg(feature = "hydrate")]
impl Controller {
    /// The hand-off to a card-reading app: a challenge as for a reader, then the app's deep
    /// link (in demo mode the built-in practice app). See the module above.
    pub fn use_app(&self, demo: bool) {
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

    /// On the 同意照会 page: the card-reading app's result, if the app just returned here
    /// (`#<result>` or `#error=<code>`), is sent as the card step would send it.
    pub fn resume_from_app(&self) {
        let hash = fragment::take();
        if hash.is_empty() {
            return;
        }
        let lang = self.lang.get_untracked();
        if let Some(code) = fragment::error_code(&hash) {
            return self.error.set(Some(app_error_message(lang, &code)));
        }
        let Some(result) = fragment::decode::<AppResult>(&hash).filter(|r| r.v == PROTOCOL_VERSION)
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
