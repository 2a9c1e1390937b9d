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
//! ## The signer's rule (the origin rule)
//!
//! The page that asks for a signature chooses every field of the request, and a phishing site
//! can hold a real challenge and text: it opens a real reception link in its own session, and
//! would send the patient to the app with its own `origin` and `return_uri`. The signature
//! would then come back to the phishing site, which submits it in its own session, where the
//! challenge is valid. So the app, not the page, decides what it signs for
//! ([`AppRequest::check`], which is
//! [`uketsuke_backend::contract::binding::check_signing_request`]), and signs only when all hold:
//! 1. `v` is [`PROTOCOL_VERSION`];
//! 2. `message` is, byte for byte, a text the server builds
//!    ([`uketsuke_backend::contract::binding::parse_signed_text`]: the reception binding
//!    `uketsuke-consent-binding-v1` or the 同意照会 binding `uketsuke-manage-binding-v1`; an
//!    unknown tag or key, a line twice or missing, another order or spelling is refused);
//! 3. `origin` is a web origin in the exact form browsers serialise it: `https://host[:port]`,
//!    `http://` only on a loopback host (`localhost`, `127.x.y.z`, `[::1]`), host in lower
//!    case ASCII (punycode for international names), no trailing dot, no default port, no
//!    userinfo or path;
//! 4. the text's `origin=` line equals `origin`, byte for byte;
//! 5. the origin of `return_uri` (its text up to the path; no userinfo, backslash or spaces)
//!    equals `origin`, byte for byte, and `return_uri` has a path;
//! 6. the text's `challenge=` line equals `challenge`.
//!
//! The app shows the patient the origin, the institution and the choices FROM THE TEXT it
//! signs, never from other fields of the request. Since the server puts its own origin in the
//! text and checks the signature over it, a relaying site gets either a refusal here (its own
//! origin is not the text's) or a result sent to the real origin, where the patient's own
//! session never held that challenge (`challenge_unknown`).
//!
//! A refused request is never answered: the app shows the refusal and does not open
//! `return_uri` (the address was chosen by whoever sent the request). The refusal's code
//! ([`AppRefusal::code`]: `request_invalid`, `text_invalid`, `origin_mismatch`,
//! `return_mismatch`, `challenge_mismatch`) names it in the app's words. `#error=<code>` goes
//! back only for a checked request (`cancelled`, `pin_blocked`, `app_failed`; the desktop card
//! helper, `helper/`, also `no_reader`, `no_card`, `card_removed`, `not_my_number_card`).
//!
//! In demo mode the link opens the built-in practice app ([`crate::pages::eid::PracticeApp`],
//! `/r/{link}/eid-app`), which plays the app's part with the practice cards and applies the
//! same rule, so the whole round trip, and the refusal of a relayed request, can be tried and
//! tested here.

use serde::{Deserialize, Serialize};
use uketsuke_backend::contract::binding::{SignedText, SigningRefusal, check_signing_request};
#[cfg(feature = "hydrate")]
use {
    super::{Controller, Stage, submit::post_json},
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

/// Why an app refuses a request (see the signer's rule above).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppRefusal {
    /// Not a request of this protocol version (or not readable at all).
    Request,
    /// The rule of the signed text refused it.
    Signing(SigningRefusal),
}

impl AppRefusal {
    /// The refusal's code, shown in the app's words ([`crate::i18n::flow::code_message`]).
    pub const fn code(&self) -> &'static str {
        match self {
            AppRefusal::Request => "request_invalid",
            AppRefusal::Signing(refusal) => refusal.code(),
        }
    }
}

impl AppRequest {
    /// The signer's rule (the module's doc): the text to sign, read back, when the app may sign
    /// it for this request and return the result to `return_uri`; otherwise why not.
    pub fn check(&self) -> Result<SignedText, AppRefusal> {
        if self.v != PROTOCOL_VERSION {
            return Err(AppRefusal::Request);
        }
        check_signing_request(
            &self.origin,
            &self.challenge,
            &self.message,
            &self.return_uri,
        )
        .map_err(AppRefusal::Signing)
    }
}

/// The words for an app's `#error=<code>`.
#[cfg(feature = "hydrate")]
pub fn app_error_message(lang: crate::i18n::Lang, code: &str) -> String {
    match code {
        "cancelled" => crate::i18n::flow::texts(lang).app_cancelled.to_owned(),
        "pin_blocked" => crate::card::CardError::PinBlocked.message(lang),
        // The desktop card helper's card errors (helper/src/protocol.rs, `ErrorCode`).
        "card_removed" => crate::card::CardError::CardRemoved.message(lang),
        "no_card" => crate::card::CardError::NoCard.message(lang),
        "not_my_number_card" => crate::card::CardError::NotMyNumberCard.message(lang),
        "no_reader" => match lang {
            crate::i18n::Lang::Ja => "カードリーダーが見つかりませんでした。リーダーをパソコンに接続してから、もう一度お試しください。",
            crate::i18n::Lang::En => "No card reader was found. Connect the reader to the computer and try again.",
        }
        .to_owned(),
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
        let (challenge_path, _) = self.purpose.paths();
        let return_path = self.purpose.return_page();
        spawn_local(async move {
            let challenge = match post_json(challenge_path, None).await {
                Ok(value) => value,
                Err(code) => return this.challenge_refused(&code, Stage::Choose),
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

    /// On the 同意照会 and 健康保険証利用登録 pages: the card-reading app's result, if the app
    /// just returned here (`#<result>` or `#error=<code>`), is sent as the card step would send
    /// it.
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
            let body = super::proof_body(
                this.purpose,
                &result.challenge,
                &window().location().origin().unwrap_or_default(),
                &result.certificate,
                &result.signature,
            );
            let (_, submit_path) = this.purpose.paths();
            this.deliver(submit_path, body, Stage::Choose).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uketsuke_backend::contract::binding::{TextError, manage_message};

    const REAL: &str = "https://uketsuke.example.jp";

    fn challenge() -> String {
        "Kioqg".repeat(9)[..43].to_owned()
    }

    /// The 同意照会 text the real server builds for its own origin.
    fn text(origin: &str) -> String {
        String::from_utf8(manage_message(origin, &challenge(), institution().as_str()))
            .expect("utf-8")
    }

    fn institution() -> uketsuke_domain::InstitutionCode {
        uketsuke_domain::InstitutionCode::with_check_digit("131234567").expect("valid prefix")
    }

    fn request(origin: &str, message: &str, return_uri: &str) -> AppRequest {
        AppRequest {
            v: PROTOCOL_VERSION,
            origin: origin.to_owned(),
            challenge: challenge(),
            message: message.to_owned(),
            return_uri: return_uri.to_owned(),
        }
    }

    fn code(req: &AppRequest) -> &'static str {
        match req.check() {
            Ok(_) => "ok",
            Err(refusal) => refusal.code(),
        }
    }

    #[test]
    fn the_real_request_is_signed_and_read_from_the_text() {
        let req = request(
            REAL,
            &text(REAL),
            "https://uketsuke.example.jp/r/abc/manage",
        );
        let signed = req.check().expect("signable");
        assert_eq!(signed.origin(), REAL);
        assert_eq!(signed.institution(), &institution());
        let local = "http://localhost:3000";
        let req = request(local, &text(local), "http://localhost:3000/r/abc/manage");
        assert_eq!(code(&req), "ok");
    }

    /// The relaying site's requests: the real text, with the attacker's or a look-alike origin
    /// and return address.
    #[test]
    fn relayed_and_look_alike_requests_are_refused() {
        let real = text(REAL);
        for look_alike in [
            "https://evil.example",
            "https://uketsuke.example.jp.evil.example",
            "https://xn--uketsuke-p63c.example.jp",
            "https://uketsukе.example.jp",
            "https://www.uketsuke.example.jp",
            "https://uketsuke.example.jp:8443",
            "https://uketsuke.example.jp.",
            "https://UKETSUKE.example.jp",
            "https://uketsuke.example.jp:443",
            "http://uketsuke.example.jp",
            "https://user@uketsuke.example.jp",
        ] {
            let back = format!("{look_alike}/r/abc/manage");
            assert_eq!(
                code(&request(look_alike, &real, &back)),
                "origin_mismatch",
                "{look_alike}"
            );
            // The real origin claimed, the result sent elsewhere.
            assert_eq!(
                code(&request(REAL, &real, &back)),
                "return_mismatch",
                "{look_alike}"
            );
        }
        for back in [
            "https://uketsuke.example.jp@evil.example/r/abc",
            "https://evil.example/https://uketsuke.example.jp/",
            "https://uketsuke.example.jp",
            "",
        ] {
            assert_eq!(
                code(&request(REAL, &real, back)),
                "return_mismatch",
                "{back}"
            );
        }
        // A text naming the attacker, sent as if for the real site.
        let theirs = text("https://evil.example");
        assert_eq!(
            code(&request(
                REAL,
                &theirs,
                "https://uketsuke.example.jp/r/abc/manage"
            )),
            "origin_mismatch"
        );
        // origin= twice.
        let twice = real.replace("\nchallenge=", "\norigin=https://evil.example\nchallenge=");
        assert_eq!(
            request(REAL, &twice, "https://uketsuke.example.jp/r/abc/manage").check(),
            Err(AppRefusal::Signing(SigningRefusal::Text(
                TextError::DuplicateLine { key: "origin" }
            )))
        );
        // Another challenge than the text's, and another version.
        let mut other = request(REAL, &real, "https://uketsuke.example.jp/r/abc/manage");
        other.challenge = "A".repeat(43);
        assert_eq!(code(&other), "challenge_mismatch");
        let mut old = request(REAL, &real, "https://uketsuke.example.jp/r/abc/manage");
        old.v = 0;
        assert_eq!(code(&old), "request_invalid");
        assert_eq!(
            code(&request(
                REAL,
                "sign anything",
                "https://uketsuke.example.jp/r/abc/manage"
            )),
            "text_invalid"
        );
    }
}
