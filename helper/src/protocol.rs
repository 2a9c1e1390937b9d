//! The hand-off protocol, the helper's side: `uketsuke-eid://sign#<request>` in, and
//! `<return_uri>#<result>` or `<return_uri>#error=<code>` out.
//!
//! The protocol is defined by the card step (`app/src/pages/card_step/hand_off.rs`, modelled on
//! Web eID for Mobile): `<request>` is base64url (no padding) of the JSON [`AppRequest`], the
//! result base64url of the JSON [`AppResult`]. The signer's rule is
//! [`uketsuke_backend::contract::binding::check_signing_request`]: the text to sign is a binding
//! the server builds, byte for byte; its `origin=` line, the request's `origin` and the origin
//! of `return_uri` are one and the same canonical web origin; its challenge is the request's.
//! A refused request is never answered: its return address was chosen by whoever sent it.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use uketsuke_backend::contract::binding::{SignedText, SigningRefusal, check_signing_request};
use uketsuke_card::Authentication;

/// The link prefix the operating system hands the helper (the scheme it registers is
/// [`SCHEME`]).
pub const LINK_PREFIX: &str = "uketsuke-eid://sign#";
/// The URL scheme the helper registers.
pub const SCHEME: &str = "uketsuke-eid";
/// Version of the request and result formats (the card step's `PROTOCOL_VERSION`).
pub const PROTOCOL_VERSION: u8 = 1;
/// Longest link read, in bytes (a request is about 1 KiB: the signed text is at most 1 KiB).
pub const MAX_LINK_LEN: usize = 8 * 1024;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What the browser hands to the helper (the card step's `AppRequest`, same JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRequest {
    pub v: u8,
    /// The origin the patient is on.
    pub origin: String,
    /// The server's one-time challenge (base64url).
    pub challenge: String,
    /// The exact text the card signs.
    pub message: String,
    /// Where the result goes (on `origin`).
    pub return_uri: String,
}

/// What the helper hands back (the card step's `AppResult`, same JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppResult {
    pub v: u8,
    pub challenge: String,
    /// The user-authentication certificate, DER in base64url.
    pub certificate: String,
    /// The card's signature over the message, base64url.
    pub signature: String,
}

/// Why the helper refuses a link. A refusal is shown, never sent anywhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a link of this protocol version: wrong prefix, too long, not base64url JSON of an
    /// [`AppRequest`], or another `v`.
    #[error("not a request of this protocol")]
    Request,
    /// The signer's rule refused it.
    #[error("{0}")]
    Signing(SigningRefusal),
}

impl Refusal {
    /// The refusal's code, as the practice app names it: `request_invalid`, `text_invalid`,
    /// `origin_mismatch`, `return_mismatch`, `challenge_mismatch`.
    pub const fn code(&self) -> &'static str {
        match self {
            Refusal::Request => "request_invalid",
            Refusal::Signing(refusal) => refusal.code(),
        }
    }
}

/// The errors a checked request gets back as `#error=<code>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The patient stopped (the cancel button, or closed the window).
    Cancelled,
    /// The PIN is blocked (no tries left): reset at the municipal office.
    PinBlocked,
    /// No PC/SC reader is connected (or the platform's smart-card service is not running).
    NoReader,
    /// A reader but no card on it.
    NoCard,
    /// The card left the reader during the read.
    CardRemoved,
    /// The card has no JPKI application.
    NotMyNumberCard,
    /// Anything else (reader or card failure).
    AppFailed,
}

impl ErrorCode {
    /// The code after `#error=`.
    pub const fn code(self) -> &'static str {
        match self {
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::PinBlocked => "pin_blocked",
            ErrorCode::NoReader => "no_reader",
            ErrorCode::NoCard => "no_card",
            ErrorCode::CardRemoved => "card_removed",
            ErrorCode::NotMyNumberCard => "not_my_number_card",
            ErrorCode::AppFailed => "app_failed",
        }
    }
}

/// A request that passed the signer's rule, with its text read back. Only such a request is
/// signed, shown or returned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub request: AppRequest,
    /// What the patient is shown and what the card signs: from the text, never from the
    /// request's other fields.
    pub text: SignedText,
}

impl Checked {
    /// The bytes the card signs (SHA-256 DigestInfo over them), exactly the text checked.
    pub fn message(&self) -> Vec<u8> {
        self.text.message()
    }

    /// `<return_uri>#<result>` for the card's answer.
    pub fn result_url(&self, auth: &Authentication) -> String {
        let result = AppResult {
            v: PROTOCOL_VERSION,
            challenge: self.text.challenge().to_owned(),
            certificate: B64.encode(&auth.certificate_der),
            signature: B64.encode(&auth.signature),
        };
        match serde_json::to_vec(&result) {
            Ok(json) => format!("{}#{}", self.request.return_uri, B64.encode(json)),
            Err(_) => self.error_url(ErrorCode::AppFailed),
        }
    }

    /// `<return_uri>#error=<code>`.
    pub fn error_url(&self, code: ErrorCode) -> String {
        format!("{}#error={}", self.request.return_uri, code.code())
    }
}

/// Reads and checks a link: `uketsuke-eid://sign#<request>` under the signer's rule.
pub fn check_link(link: &str) -> Result<Checked, Refusal> {
    if link.len() > MAX_LINK_LEN {
        return Err(Refusal::Request);
    }
    let encoded = link.strip_prefix(LINK_PREFIX).ok_or(Refusal::Request)?;
    let json = B64.decode(encoded).map_err(|_| Refusal::Request)?;
    let request: AppRequest = serde_json::from_slice(&json).map_err(|_| Refusal::Request)?;
    if request.v != PROTOCOL_VERSION {
        return Err(Refusal::Request);
    }
    let text = check_signing_request(
        &request.origin,
        &request.challenge,
        &request.message,
        &request.return_uri,
    )
    .map_err(Refusal::Signing)?;
    Ok(Checked { request, text })
}

/// The link for `request` (what the card step opens); for tests and tools.
pub fn link_for(request: &AppRequest) -> String {
    let json = serde_json::to_vec(request).unwrap_or_default();
    format!("{LINK_PREFIX}{}", B64.encode(json))
}

/// Decodes the fragment of a result URL (for tests and tools): the [`AppResult`], or the code
/// of `#error=<code>` as `Err`.
pub fn read_result_url(url: &str) -> Result<AppResult, String> {
    let (_, fragment) = url
        .split_once('#')
        .ok_or_else(|| "no fragment".to_owned())?;
    if let Some(code) = fragment.strip_prefix("error=") {
        return Err(code.to_owned());
    }
    let json = B64.decode(fragment).map_err(|e| e.to_string())?;
    serde_json::from_slice(&json).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uketsuke_backend::contract::b64_encode;
    use uketsuke_backend::contract::binding::manage_message;
    use uketsuke_domain::InstitutionCode;

    const REAL: &str = "https://uketsuke.example.jp";

    fn challenge() -> String {
        b64_encode(&[42; 32])
    }

    fn request(origin: &str, text_origin: &str, return_uri: &str) -> AppRequest {
        let institution = InstitutionCode::with_check_digit("131234567").expect("valid");
        AppRequest {
            v: PROTOCOL_VERSION,
            origin: origin.to_owned(),
            challenge: challenge(),
            message: String::from_utf8(manage_message(
                text_origin,
                &challenge(),
                institution.as_str(),
            ))
            .expect("utf-8"),
            return_uri: return_uri.to_owned(),
        }
    }

    fn code(link: &str) -> &'static str {
        match check_link(link) {
            Ok(_) => "ok",
            Err(refusal) => refusal.code(),
        }
    }

    #[test]
    fn the_real_request_is_accepted_and_answered_on_its_return_address() {
        let req = request(REAL, REAL, "https://uketsuke.example.jp/r/abc/manage");
        let checked = check_link(&link_for(&req)).expect("accepted");
        assert_eq!(checked.text.origin(), REAL);
        let auth = Authentication {
            certificate_der: vec![1, 2, 3],
            signature: vec![4; 256],
        };
        let url = checked.result_url(&auth);
        assert!(url.starts_with("https://uketsuke.example.jp/r/abc/manage#"));
        let result = read_result_url(&url).expect("result");
        assert_eq!(result.challenge, challenge());
        assert_eq!(result.certificate, "AQID");
        assert_eq!(
            checked.error_url(ErrorCode::NoReader),
            "https://uketsuke.example.jp/r/abc/manage#error=no_reader"
        );
    }

    /// The look-alike-origin attack: a relaying site holds a real text and sends the helper
    /// its own origin or return address.
    #[test]
    fn look_alike_and_relayed_requests_are_refused() {
        for look_alike in [
            "https://uketsuke.example.jp.evil.example",
            "https://uketsukе.example.jp",
            "https://xn--uketsuke-p63c.example.jp",
            "https://uketsuke.example.jp:443",
            "https://UKETSUKE.example.jp",
            "http://uketsuke.example.jp",
        ] {
            let back = format!("{look_alike}/r/abc/manage");
            assert_eq!(
                code(&link_for(&request(look_alike, REAL, &back))),
                "origin_mismatch",
                "{look_alike}"
            );
            assert_eq!(
                code(&link_for(&request(REAL, REAL, &back))),
                "return_mismatch",
                "{look_alike}"
            );
        }
    }

    #[test]
    fn links_that_are_not_requests_are_refused() {
        let good = link_for(&request(
            REAL,
            REAL,
            "https://uketsuke.example.jp/r/a/manage",
        ));
        let mut other_version = request(REAL, REAL, "https://uketsuke.example.jp/r/a/manage");
        other_version.v = 2;
        for bad in [
            good.replacen("sign#", "sign?", 1),
            good.replacen("uketsuke-eid", "uketsuke-eidx", 1),
            format!("{good}!"),
            format!("{good}{}", "A".repeat(MAX_LINK_LEN)),
            link_for(&other_version),
            format!("{LINK_PREFIX}{}", B64.encode(b"{\"v\":1}")),
            String::new(),
        ] {
            assert_eq!(code(&bad), "request_invalid", "{bad}");
        }
        assert_eq!(code(&good), "ok");
    }
}
