//! The challenge bindings: the exact bytes the patient's card signs, for registering consent
//! ([`ChallengeBinding`]) and for 同意照会・取消 ([`ManageBinding`]), and their parser
//! ([`parse_signed_text`]) with the signer's rule ([`check_signing_request`]).
//!
//! A binding ties the server's one-time challenge to the origin the browser showed and to every
//! choice the patient made, so a signature cannot be replayed for another institution, kind,
//! date or consent. The browser, the server and the backend must build the same bytes: all call
//! [`ChallengeBinding::message`] or [`ManageBinding::message`]. A signer that is not the page
//! (a card-reading app, a desktop helper) parses the text before signing it, shows the patient
//! what the text says (not what the caller claims) and signs only for the origin the text names
//! and the result returns to; everything here is pure (no I/O), for the browser, the server and
//! native helpers alike.
use chrono::NaiveDate;
use uketsuke_domain::{InstitutionCode, ReceptionKind};

use super::{ConsentChoices, PrescriptionMethod, RegistrationRequest};

/// First line of the message; a new layout gets a new tag.
pub const BINDING_TAG: &str = "uketsuke-consent-binding-v1";
/// First line of the message the card signs to see, change or withdraw consents (同意照会).
pub const MANAGE_TAG: &str = "uketsuke-manage-binding-v1";
/// First line of the message the card signs for 健康保険証利用登録.
pub const INSURANCE_USE_TAG: &str = "uketsuke-insurance-use-binding-v1";
/// Shortest challenge accepted (decoded bytes): 256 bits, SPEC §5.
pub const MIN_CHALLENGE_BYTES: usize = 32;
/// Longest challenge accepted (decoded bytes).
pub const MAX_CHALLENGE_BYTES: usize = 64;
/// Longest origin accepted.
pub const MAX_ORIGIN_LEN: usize = 200;

/// What the card signs (SHA-256 DigestInfo over [`ChallengeBinding::message`], PKCS#1 v1.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeBinding<'a> {
    pub origin: &'a str,
    /// base64url (no padding) text of the challenge, exactly as sent in the request.
    pub challenge: &'a str,
    pub institution: &'a InstitutionCode,
    pub kind: ReceptionKind,
    pub visit_date: NaiveDate,
    pub consent: ConsentChoices,
    pub prescription_method: Option<PrescriptionMethod>,
}

impl<'a> ChallengeBinding<'a> {
    /// The binding of a registration request whose identity proof has `origin` and `challenge`.
    pub fn of_request(
        request: &'a RegistrationRequest,
        origin: &'a str,
        challenge: &'a str,
    ) -> Self {
        ChallengeBinding {
            origin,
            challenge,
            institution: &request.institution_code,
            kind: request.kind,
            visit_date: request.visit_date,
            consent: request.consent,
            prescription_method: request.prescription_method,
        }
    }

    /// The UTF-8 message: `key=value` lines joined by LF, no trailing LF, in this order:
    ///
    /// ```text
    /// uketsuke-consent-binding-v1
    /// origin=https://uketsuke.example.jp
    /// challenge=<base64url>
    /// institution=1312345670
    /// kind=online_care
    /// visit_date=2026-11-21
    /// clinical_medication=1
    /// checkups=0
    /// prescription=electronic        (or "none" for kinds without one)
    /// ```
    pub fn message(&self) -> Vec<u8> {
        let flag = |b: bool| if b { "1" } else { "0" };
        format!(
            "{BINDING_TAG}\norigin={}\nchallenge={}\ninstitution={}\nkind={}\nvisit_date={}\nclinical_medication={}\ncheckups={}\nprescription={}",
            self.origin,
            self.challenge,
            self.institution.as_str(),
            self.kind.code(),
            self.visit_date.format("%Y-%m-%d"),
            flag(self.consent.clinical_medication),
            flag(self.consent.checkups),
            self.prescription_method.map_or("none", PrescriptionMethod::code),
        )
        .into_bytes()
    }
}

/// The origin is `scheme://host[:port]` with an http(s) scheme and no line breaks, path or
/// spaces, so that it cannot inject extra lines into the binding.
pub fn origin_is_well_formed(origin: &str) -> bool {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    match rest {
        Some(host) => {
            origin.len() <= MAX_ORIGIN_LEN
                && !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        }
        None => false,
    }
}

/// The challenge is base64url without padding and decodes to 32–64 bytes.
pub fn challenge_is_well_formed(challenge: &str) -> bool {
    super::b64_decode(challenge)
        .is_some_and(|bytes| (MIN_CHALLENGE_BYTES..=MAX_CHALLENGE_BYTES).contains(&bytes.len()))
}

/// What the card signs to see, change or withdraw the consents given at one institution
/// (同意照会・更新・取消); like [`ChallengeBinding`], over SHA-256 DigestInfo, PKCS#1 v1.5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManageBinding<'a> {
    pub origin: &'a str,
    /// base64url (no padding) text of the challenge, exactly as sent in the request.
    pub challenge: &'a str,
    /// The 医療機関等コード of the link's institution, as stored.
    pub institution: &'a str,
}

impl ManageBinding<'_> {
    /// The UTF-8 message: `key=value` lines joined by LF, no trailing LF, in this order:
    ///
    /// ```text
    /// uketsuke-manage-binding-v1
    /// origin=https://uketsuke.example.jp
    /// challenge=<base64url>
    /// institution=1312345670
    /// action=manage
    /// ```
    pub fn message(&self) -> Vec<u8> {
        format!(
            "{MANAGE_TAG}\norigin={}\nchallenge={}\ninstitution={}\naction=manage",
            self.origin, self.challenge, self.institution
        )
        .into_bytes()
    }
}

/// The bytes the card signs for the management of consents at one institution
/// ([`ManageBinding::message`]).
pub fn manage_message(origin: &str, challenge: &str, institution_code: &str) -> Vec<u8> {
    ManageBinding {
        origin,
        challenge,
        institution: institution_code,
    }
    .message()
}

/// What the card signs to register itself for use as a health insurance card
/// (健康保険証利用登録, [`super::InsuranceUseRequest`]); like [`ChallengeBinding`], over SHA-256
/// DigestInfo, PKCS#1 v1.5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsuranceUseBinding<'a> {
    pub origin: &'a str,
    /// base64url (no padding) text of the challenge, exactly as sent in the request.
    pub challenge: &'a str,
    /// The institution where the patient registers (whose link they used).
    pub institution: &'a InstitutionCode,
    /// The terms the patient agreed to ([`super::INSURANCE_USE_TERMS_VERSION`]): 1–16
    /// characters `[0-9A-Za-z.-]`.
    pub terms: &'a str,
}

impl InsuranceUseBinding<'_> {
    /// The UTF-8 message: `key=value` lines joined by LF, no trailing LF, in this order:
    ///
    /// ```text
    /// uketsuke-insurance-use-binding-v1
    /// origin=https://uketsuke.example.jp
    /// challenge=<base64url>
    /// institution=1312345670
    /// terms=2026-12
    /// action=register_insurance_use
    /// ```
    pub fn message(&self) -> Vec<u8> {
        format!(
            "{INSURANCE_USE_TAG}\norigin={}\nchallenge={}\ninstitution={}\nterms={}\naction=register_insurance_use",
            self.origin,
            self.challenge,
            self.institution.as_str(),
            self.terms
        )
        .into_bytes()
    }
}

/// A terms version is 1–16 characters `[0-9A-Za-z.-]`, so that it cannot add lines.
pub fn terms_version_is_well_formed(terms: &str) -> bool {
    (1..=16).contains(&terms.len())
        && terms
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// Longest signed text a signer reads (a binding is about 300 bytes).
pub const MAX_SIGNED_TEXT: usize = 1024;

/// A signed text, read back: what a signer shows the patient and checks before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedText {
    /// `uketsuke-consent-binding-v1`: a reception with its choices.
    Consent(SignedConsent),
    /// `uketsuke-manage-binding-v1`: 同意照会・更新・取消 at one institution.
    Manage(SignedManage),
    /// `uketsuke-insurance-use-binding-v1`: 健康保険証利用登録.
    InsuranceUse(SignedInsuranceUse),
}

/// The fields of a [`ChallengeBinding`] text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedConsent {
    pub origin: String,
    pub challenge: String,
    pub institution: InstitutionCode,
    pub kind: ReceptionKind,
    pub visit_date: NaiveDate,
    pub consent: ConsentChoices,
    pub prescription_method: Option<PrescriptionMethod>,
}

/// The fields of a [`ManageBinding`] text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedManage {
    pub origin: String,
    pub challenge: String,
    pub institution: InstitutionCode,
}

/// The fields of an [`InsuranceUseBinding`] text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedInsuranceUse {
    pub origin: String,
    pub challenge: String,
    pub institution: InstitutionCode,
    pub terms: String,
}

impl SignedText {
    /// The origin the text binds the signature to.
    pub fn origin(&self) -> &str {
        match self {
            SignedText::Consent(c) => &c.origin,
            SignedText::Manage(m) => &m.origin,
            SignedText::InsuranceUse(i) => &i.origin,
        }
    }

    /// The server's challenge in the text (base64url).
    pub fn challenge(&self) -> &str {
        match self {
            SignedText::Consent(c) => &c.challenge,
            SignedText::Manage(m) => &m.challenge,
            SignedText::InsuranceUse(i) => &i.challenge,
        }
    }

    /// The 医療機関等コード in the text.
    pub fn institution(&self) -> &InstitutionCode {
        match self {
            SignedText::Consent(c) => &c.institution,
            SignedText::Manage(m) => &m.institution,
            SignedText::InsuranceUse(i) => &i.institution,
        }
    }

    /// The exact bytes of this text, as the builders make them.
    pub fn message(&self) -> Vec<u8> {
        match self {
            SignedText::Consent(c) => ChallengeBinding {
                origin: &c.origin,
                challenge: &c.challenge,
                institution: &c.institution,
                kind: c.kind,
                visit_date: c.visit_date,
                consent: c.consent,
                prescription_method: c.prescription_method,
            }
            .message(),
            SignedText::Manage(m) => {
                manage_message(&m.origin, &m.challenge, m.institution.as_str())
            }
            SignedText::InsuranceUse(i) => InsuranceUseBinding {
                origin: &i.origin,
                challenge: &i.challenge,
                institution: &i.institution,
                terms: &i.terms,
            }
            .message(),
        }
    }
}

/// Why a text is not one of the bindings above, byte for byte. Line numbers count from 1 (the
/// tag line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("the text is longer than {MAX_SIGNED_TEXT} bytes")]
    TooLong,
    #[error("the text is not UTF-8")]
    NotUtf8,
    #[error("the first line is not a known binding tag")]
    UnknownTag,
    #[error("line {line} is not key=value")]
    NotKeyValue { line: usize },
    #[error("line {line} has a key this binding does not have")]
    UnexpectedKey { line: usize },
    #[error("the line {key}= appears more than once")]
    DuplicateLine { key: &'static str },
    #[error("the line {key}= is missing")]
    MissingLine { key: &'static str },
    #[error("the value of {key}= is not valid")]
    BadValue { key: &'static str },
    #[error("the text is not in the exact layout (order, spelling or line ends)")]
    NotCanonical,
}

/// Splits the lines after the tag into the values of `keys`, each exactly once.
fn fields<'t, const N: usize>(
    lines: core::str::Split<'t, char>,
    keys: [&'static str; N],
) -> Result<[&'t str; N], TextError> {
    let mut values: [Option<&'t str>; N] = [None; N];
    for (index, line) in lines.enumerate() {
        let number = index + 2;
        let (key, value) = line
            .split_once('=')
            .ok_or(TextError::NotKeyValue { line: number })?;
        let slot = keys
            .iter()
            .position(|k| *k == key)
            .ok_or(TextError::UnexpectedKey { line: number })?;
        if values[slot].is_some() {
            return Err(TextError::DuplicateLine { key: keys[slot] });
        }
        values[slot] = Some(value);
    }
    let mut out = [""; N];
    for (slot, value) in values.into_iter().enumerate() {
        out[slot] = value.ok_or(TextError::MissingLine { key: keys[slot] })?;
    }
    Ok(out)
}

fn flag(key: &'static str, value: &str) -> Result<bool, TextError> {
    match value {
        "1" => Ok(true),
        "0" => Ok(false),
        _ => Err(TextError::BadValue { key }),
    }
}

fn well_formed_origin(value: &str) -> Result<String, TextError> {
    origin_is_well_formed(value)
        .then(|| value.to_owned())
        .ok_or(TextError::BadValue { key: "origin" })
}

fn well_formed_challenge(value: &str) -> Result<String, TextError> {
    challenge_is_well_formed(value)
        .then(|| value.to_owned())
        .ok_or(TextError::BadValue { key: "challenge" })
}

fn institution_code(value: &str) -> Result<InstitutionCode, TextError> {
    value
        .parse::<InstitutionCode>()
        .map_err(|_| TextError::BadValue { key: "institution" })
}

/// Reads a signed text ([`ChallengeBinding::message`], [`ManageBinding::message`] or
/// [`InsuranceUseBinding::message`]) back into
/// its fields. Anything but the exact bytes the builders make is refused: an unknown tag or
/// key, a line twice or missing, another order, CR or a trailing LF, a value the builders
/// would not write (the text is built again from the fields and compared byte for byte).
pub fn parse_signed_text(bytes: &[u8]) -> Result<SignedText, TextError> {
    if bytes.len() > MAX_SIGNED_TEXT {
        return Err(TextError::TooLong);
    }
    let text = core::str::from_utf8(bytes).map_err(|_| TextError::NotUtf8)?;
    let (tag, rest) = text.split_once('\n').ok_or(TextError::UnknownTag)?;
    let parsed = match tag {
        BINDING_TAG => {
            let [
                origin,
                challenge,
                institution,
                kind,
                visit_date,
                clinical_medication,
                checkups,
                prescription,
            ] = fields(
                rest.split('\n'),
                [
                    "origin",
                    "challenge",
                    "institution",
                    "kind",
                    "visit_date",
                    "clinical_medication",
                    "checkups",
                    "prescription",
                ],
            )?;
            SignedText::Consent(SignedConsent {
                origin: well_formed_origin(origin)?,
                challenge: well_formed_challenge(challenge)?,
                institution: institution_code(institution)?,
                kind: ReceptionKind::from_code(kind).ok_or(TextError::BadValue { key: "kind" })?,
                visit_date: NaiveDate::parse_from_str(visit_date, "%Y-%m-%d")
                    .map_err(|_| TextError::BadValue { key: "visit_date" })?,
                consent: ConsentChoices {
                    clinical_medication: flag("clinical_medication", clinical_medication)?,
                    checkups: flag("checkups", checkups)?,
                },
                prescription_method: match prescription {
                    "none" => None,
                    "electronic" => Some(PrescriptionMethod::Electronic),
                    "paper" => Some(PrescriptionMethod::Paper),
                    _ => {
                        return Err(TextError::BadValue {
                            key: "prescription",
                        });
                    }
                },
            })
        }
        MANAGE_TAG => {
            let [origin, challenge, institution, action] = fields(
                rest.split('\n'),
                ["origin", "challenge", "institution", "action"],
            )?;
            if action != "manage" {
                return Err(TextError::BadValue { key: "action" });
            }
            SignedText::Manage(SignedManage {
                origin: well_formed_origin(origin)?,
                challenge: well_formed_challenge(challenge)?,
                institution: institution_code(institution)?,
            })
        }
        INSURANCE_USE_TAG => {
            let [origin, challenge, institution, terms, action] = fields(
                rest.split('\n'),
                ["origin", "challenge", "institution", "terms", "action"],
            )?;
            if action != "register_insurance_use" {
                return Err(TextError::BadValue { key: "action" });
            }
            if !terms_version_is_well_formed(terms) {
                return Err(TextError::BadValue { key: "terms" });
            }
            SignedText::InsuranceUse(SignedInsuranceUse {
                origin: well_formed_origin(origin)?,
                challenge: well_formed_challenge(challenge)?,
                institution: institution_code(institution)?,
                terms: terms.to_owned(),
            })
        }
        _ => return Err(TextError::UnknownTag),
    };
    if parsed.message() != bytes {
        return Err(TextError::NotCanonical);
    }
    Ok(parsed)
}

/// True for the hosts a browser treats as this machine: `localhost`, `127.x.y.z`, `[::1]`.
pub fn is_loopback_host(host: &str) -> bool {
    if host == "localhost" || host == "[::1]" {
        return true;
    }
    let mut octets = host.split('.');
    octets.next() == Some("127")
        && octets.clone().count() == 3
        && octets.all(|o| {
            !o.is_empty()
                && o.len() <= 3
                && o.bytes().all(|b| b.is_ascii_digit())
                && o.parse::<u8>().is_ok()
        })
}

/// True when `origin` is an origin a signer may sign for, in the one spelling a browser
/// serialises it (`window.location.origin`): `https://host[:port]`, or `http://` on a loopback
/// host ([`is_loopback_host`]); the host in lower case, ASCII only (an internationalised name
/// only in its punycode `xn--` form), labels non-empty (no trailing dot), or a bracketed IPv6
/// address; the port in decimal without leading zeros, not the scheme's default, no userinfo,
/// path, query or fragment. Two origins are then the same exactly when their texts are equal.
pub fn origin_is_signable(origin: &str) -> bool {
    if origin.len() > MAX_ORIGIN_LEN {
        return false;
    }
    let (https, authority) = match (
        origin.strip_prefix("https://"),
        origin.strip_prefix("http://"),
    ) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return false,
    };
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => {
                let (host, rest) = authority.split_at(end + 1);
                match rest {
                    "" => (host, None),
                    _ => match rest.strip_prefix(':') {
                        Some(port) => (host, Some(port)),
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        inner.contains(':')
            && inner
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'a'..=b'f' | b':' | b'.'))
    } else {
        !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
    };
    let port_ok = match port {
        None => true,
        Some(port) => {
            !port.is_empty()
                && !port.starts_with('0')
                && port.bytes().all(|b| b.is_ascii_digit())
                && port
                    .parse::<u16>()
                    .is_ok_and(|p| p != if https { 443 } else { 80 })
        }
    };
    host_ok && port_ok && (https || is_loopback_host(host))
}

/// The origin part of an absolute `http(s)` URL with a path (`https://host[:port]` of
/// `https://host[:port]/path…`), or `None` when the URL has userinfo (`@`), a backslash,
/// spaces or control characters, no path, or another scheme. The result is the URL's leading
/// text, not a normalised form: compare it with [`origin_is_signable`] origins only.
pub fn origin_of_url(url: &str) -> Option<&str> {
    if url.len() > 2048
        || url
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    let start = if url.starts_with("https://") {
        "https://".len()
    } else if url.starts_with("http://") {
        "http://".len()
    } else {
        return None;
    };
    let end = url[start..].find(['/', '?', '#']).map(|at| start + at)?;
    let origin = &url[..end];
    (url[end..].starts_with('/') && !origin.contains('@')).then_some(origin)
}

/// Why a signer refuses a signing request ([`check_signing_request`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningRefusal {
    /// The text to sign is not a binding this signer knows, byte for byte.
    #[error("the text to sign is not a binding: {0}")]
    Text(TextError),
    /// The request's origin is not one a signer signs for ([`origin_is_signable`]).
    #[error("the origin is not a secure web origin in its canonical form")]
    OriginNotSignable,
    /// The text names another origin than the request.
    #[error("the signed text names another origin than the request")]
    OriginMismatch,
    /// The result would go to another origin than the one signed for.
    #[error("the return address is not on the origin signed for")]
    ReturnElsewhere,
    /// The text holds another challenge than the request.
    #[error("the signed text holds another challenge than the request")]
    ChallengeMismatch,
}

impl SigningRefusal {
    /// The code a signer returns as `#error=<code>` (to a trusted return address only) and the
    /// browser shows words for.
    pub const fn code(&self) -> &'static str {
        match self {
            SigningRefusal::Text(_) => "text_invalid",
            SigningRefusal::OriginNotSignable | SigningRefusal::OriginMismatch => "origin_mismatch",
            SigningRefusal::ReturnElsewhere => "return_mismatch",
            SigningRefusal::ChallengeMismatch => "challenge_mismatch",
        }
    }
}

/// The signer's rule: sign `message` for a page on `origin` that asked with `challenge` and
/// wants the result at `return_uri` only when the message is a binding byte for byte
/// ([`parse_signed_text`]), `origin` is signable ([`origin_is_signable`]), the message's
/// `origin=` line equals `origin`, the origin of `return_uri` ([`origin_of_url`]) equals it too,
/// and the message's challenge equals `challenge`. All comparisons are of exact bytes.
///
/// Returns the parsed text: a signer shows the patient the origin, institution and choices
/// from it, never from the request's other fields.
pub fn check_signing_request(
    origin: &str,
    challenge: &str,
    message: &str,
    return_uri: &str,
) -> Result<SignedText, SigningRefusal> {
    let text = parse_signed_text(message.as_bytes()).map_err(SigningRefusal::Text)?;
    if !origin_is_signable(origin) {
        return Err(SigningRefusal::OriginNotSignable);
    }
    if text.origin() != origin {
        return Err(SigningRefusal::OriginMismatch);
    }
    if origin_of_url(return_uri) != Some(origin) {
        return Err(SigningRefusal::ReturnElsewhere);
    }
    if text.challenge() != challenge {
        return Err(SigningRefusal::ChallengeMismatch);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_layout_is_fixed() {
        let institution: InstitutionCode =
            InstitutionCode::with_check_digit("131234567").expect("valid prefix");
        let binding = ChallengeBinding {
            origin: "https://uketsuke.example.jp",
            challenge: "AAAA",
            institution: &institution,
            kind: ReceptionKind::OnlineCare,
            visit_date: NaiveDate::from_ymd_opt(2026, 11, 21).expect("date"),
            consent: ConsentChoices {
                clinical_medication: true,
                checkups: false,
            },
            prescription_method: Some(PrescriptionMethod::Electronic),
        };
        let text = String::from_utf8(binding.message()).expect("utf-8");
        let expected = format!(
            "uketsuke-consent-binding-v1\norigin=https://uketsuke.example.jp\nchallenge=AAAA\ninstitution={}\nkind=online_care\nvisit_date=2026-11-21\nclinical_medication=1\ncheckups=0\nprescription=electronic",
            institution.as_str()
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn origin_and_challenge_formats() {
        assert!(origin_is_well_formed("https://a.example:8443"));
        assert!(origin_is_well_formed("http://127.0.0.1:3000"));
        assert!(!origin_is_well_formed("https://a.example/path"));
        assert!(!origin_is_well_formed("https://a\nkind=house_call"));
        assert!(!origin_is_well_formed("ftp://a.example"));
        assert!(challenge_is_well_formed(&super::super::b64_encode(
            &[7; 32]
        )));
        assert!(!challenge_is_well_formed(&super::super::b64_encode(
            &[7; 31]
        )));
        assert!(!challenge_is_well_formed("not base64!"));
    }

    const ORIGIN: &str = "https://uketsuke.example.jp";

    fn code() -> InstitutionCode {
        InstitutionCode::with_check_digit("131234567").expect("valid prefix")
    }

    fn challenge() -> String {
        super::super::b64_encode(&[42; 32])
    }

    fn consent_text(origin: &str, challenge: &str) -> String {
        let institution = code();
        let binding = ChallengeBinding {
            origin,
            challenge,
            institution: &institution,
            kind: ReceptionKind::OnlineCare,
            visit_date: NaiveDate::from_ymd_opt(2026, 11, 21).expect("date"),
            consent: ConsentChoices {
                clinical_medication: true,
                checkups: false,
            },
            prescription_method: Some(PrescriptionMethod::Paper),
        };
        String::from_utf8(binding.message()).expect("utf-8")
    }

    fn manage_text(origin: &str, challenge: &str) -> String {
        String::from_utf8(manage_message(origin, challenge, code().as_str())).expect("utf-8")
    }

    #[test]
    fn manage_layout_is_fixed() {
        let text = manage_text(ORIGIN, "AAAA");
        assert_eq!(
            text,
            format!(
                "uketsuke-manage-binding-v1\norigin=https://uketsuke.example.jp\nchallenge=AAAA\ninstitution={}\naction=manage",
                code().as_str()
            )
        );
    }

    fn insurance_use_text(origin: &str, challenge: &str, terms: &str) -> String {
        let institution = code();
        let binding = InsuranceUseBinding {
            origin,
            challenge,
            institution: &institution,
            terms,
        };
        String::from_utf8(binding.message()).expect("utf-8")
    }

    #[test]
    fn insurance_use_layout_is_fixed_and_reads_back() {
        let text = insurance_use_text(ORIGIN, "AAAA", "2026-12");
        assert_eq!(
            text,
            format!(
                "uketsuke-insurance-use-binding-v1\norigin=https://uketsuke.example.jp\nchallenge=AAAA\ninstitution={}\nterms=2026-12\naction=register_insurance_use",
                code().as_str()
            )
        );
        let c = challenge();
        match parse_signed_text(insurance_use_text(ORIGIN, &c, "2026-12").as_bytes()) {
            Ok(SignedText::InsuranceUse(read)) => {
                assert_eq!(read.origin, ORIGIN);
                assert_eq!(read.challenge, c);
                assert_eq!(read.institution, code());
                assert_eq!(read.terms, "2026-12");
            }
            other => panic!("{other:?}"),
        }
        // Another action, a terms value that could smuggle text, or a reordered text is no
        // insurance-use text.
        let other_action = insurance_use_text(ORIGIN, &c, "2026-12")
            .replace("action=register_insurance_use", "action=manage");
        assert_eq!(
            parse_signed_text(other_action.as_bytes()),
            Err(TextError::BadValue { key: "action" })
        );
        for terms in ["", "2026 12", "2026-12;x", "12345678901234567"] {
            assert_eq!(
                parse_signed_text(insurance_use_text(ORIGIN, &c, terms).as_bytes()),
                Err(TextError::BadValue { key: "terms" }),
                "{terms:?}"
            );
        }
        let mut lines: Vec<&str> = text.split('\n').collect();
        lines.swap(4, 5);
        assert!(parse_signed_text(lines.join("\n").as_bytes()).is_err());
    }

    #[test]
    fn both_texts_read_back_into_their_fields() {
        let c = challenge();
        match parse_signed_text(consent_text(ORIGIN, &c).as_bytes()) {
            Ok(SignedText::Consent(read)) => {
                assert_eq!(read.origin, ORIGIN);
                assert_eq!(read.challenge, c);
                assert_eq!(read.institution, code());
                assert_eq!(read.kind, ReceptionKind::OnlineCare);
                assert_eq!(read.visit_date.to_string(), "2026-11-21");
                assert!(read.consent.clinical_medication && !read.consent.checkups);
                assert_eq!(read.prescription_method, Some(PrescriptionMethod::Paper));
            }
            other => panic!("{other:?}"),
        }
        match parse_signed_text(manage_text(ORIGIN, &c).as_bytes()) {
            Ok(SignedText::Manage(read)) => {
                assert_eq!(read.origin, ORIGIN);
                assert_eq!(read.challenge, c);
                assert_eq!(read.institution, code());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn anything_but_the_exact_bytes_is_refused() {
        let c = challenge();
        let good = consent_text(ORIGIN, &c);
        let manage = manage_text(ORIGIN, &c);
        let cases: Vec<(String, TextError)> = vec![
            (good.replacen("v1", "v2", 1), TextError::UnknownTag),
            (format!("{good}\n"), TextError::NotKeyValue { line: 10 }),
            (good.replace('\n', "\r\n"), TextError::UnknownTag),
            (
                good.replace("\nkind=", "\r\nkind="),
                TextError::BadValue { key: "institution" },
            ),
            (
                good.replace(
                    &format!("origin={ORIGIN}\n"),
                    &format!("origin={ORIGIN}\norigin=https://evil.example\n"),
                ),
                TextError::DuplicateLine { key: "origin" },
            ),
            (
                good.replace(
                    &format!("origin={ORIGIN}\n"),
                    &format!("origin=https://evil.example\norigin={ORIGIN}\n"),
                ),
                TextError::DuplicateLine { key: "origin" },
            ),
            (
                good.replace("checkups=0", "checkups=0\nnote=hello"),
                TextError::UnexpectedKey { line: 9 },
            ),
            (
                good.replace("checkups=0\n", ""),
                TextError::MissingLine { key: "checkups" },
            ),
            (
                good.replace("checkups=0", "checkups=yes"),
                TextError::BadValue { key: "checkups" },
            ),
            (
                good.replace("kind=online_care", "kind=ONLINE_CARE"),
                TextError::BadValue { key: "kind" },
            ),
            (
                good.replace("2026-11-21", "2026-11-2"),
                TextError::NotCanonical,
            ),
            (
                good.replace(&format!("origin={ORIGIN}"), "origin=https://evil.example/x"),
                TextError::BadValue { key: "origin" },
            ),
            (
                good.replace(&format!("challenge={c}"), "challenge=short"),
                TextError::BadValue { key: "challenge" },
            ),
            (
                good.replace("institution=", "institution=0"),
                TextError::BadValue { key: "institution" },
            ),
            (
                // Lines swapped: every field still there once.
                good.replace(
                    "clinical_medication=1\ncheckups=0",
                    "checkups=0\nclinical_medication=1",
                ),
                TextError::NotCanonical,
            ),
            (
                good.replace(
                    "prescription=paper",
                    "prescription=none\nprescription=paper",
                ),
                TextError::DuplicateLine {
                    key: "prescription",
                },
            ),
            (
                good.replace("kind", "kind "),
                TextError::UnexpectedKey { line: 5 },
            ),
            (
                manage.replace("action=manage", "action=grant"),
                TextError::BadValue { key: "action" },
            ),
            (
                manage.replace("action=manage", "action=manage\naction=manage"),
                TextError::DuplicateLine { key: "action" },
            ),
            (
                // One binding's lines under the other's tag.
                good.replacen(BINDING_TAG, MANAGE_TAG, 1),
                TextError::UnexpectedKey { line: 5 },
            ),
            (BINDING_TAG.to_owned(), TextError::UnknownTag),
            (String::new(), TextError::UnknownTag),
            ("x".repeat(MAX_SIGNED_TEXT + 1), TextError::TooLong),
        ];
        for (text, want) in cases {
            assert_eq!(parse_signed_text(text.as_bytes()), Err(want), "{text:?}");
        }
        assert_eq!(parse_signed_text(&[0xff, b'\n']), Err(TextError::NotUtf8));
    }

    #[test]
    fn signable_origins_are_canonical_and_secure() {
        for good in [
            ORIGIN,
            "https://uketsuke.example.jp:8443",
            "https://xn--r8jz45g.example",
            "https://192.0.2.1",
            "https://[2001:db8::1]:8443",
            "http://localhost:3000",
            "http://127.0.0.1:3000",
            "http://[::1]:3000",
        ] {
            assert!(origin_is_signable(good), "{good}");
        }
        for bad in [
            "http://uketsuke.example.jp",
            "http://192.168.1.5:3000",
            "http://localhost.evil.example:3000",
            "http://127.0.0.1.evil.example",
            "https://Uketsuke.example.jp",
            "HTTPS://uketsuke.example.jp",
            "https://uketsuke.example.jp.",
            "https://uketsuke..example.jp",
            "https://uketsuke.example.jp:443",
            "http://localhost:80",
            "https://uketsuke.example.jp:08443",
            "https://uketsuke.example.jp:99999",
            "https://uketsuke.example.jp:",
            "https://user@uketsuke.example.jp",
            "https://uketsukе.example.jp",
            "https://uketsuke.example.jp/",
            "https://-a.example",
            "https://[2001:DB8::1]",
            "https://",
            "uketsuke.example.jp",
        ] {
            assert!(!origin_is_signable(bad), "{bad}");
        }
    }

    #[test]
    fn the_origin_of_a_url_is_its_leading_text() {
        assert_eq!(
            origin_of_url("https://a.example/r/x"),
            Some("https://a.example")
        );
        assert_eq!(
            origin_of_url("http://127.0.0.1:3000/r/x?y#z"),
            Some("http://127.0.0.1:3000")
        );
        for refused in [
            "https://a.example",
            "https://a.example?x=/",
            "https://a.example#/",
            "https://real.example@evil.example/",
            "https://evil.example\\@real.example/",
            "https://a.example/ x",
            "https://a.example\n/",
            "javascript:alert(1)//",
            "//a.example/",
        ] {
            assert_eq!(origin_of_url(refused), None, "{refused}");
        }
    }

    /// A relaying (phishing) site holds a real challenge and text from its own session on the
    /// real origin: whatever origin and return address it puts in the request, the signer
    /// either refuses or returns the result to the real origin only.
    #[test]
    fn the_signer_refuses_look_alike_and_relayed_origins() {
        let c = challenge();
        let text = consent_text(ORIGIN, &c);
        let back = format!("{ORIGIN}/r/abc/eid-return");
        assert!(check_signing_request(ORIGIN, &c, &text, &back).is_ok());
        let manage = manage_text(ORIGIN, &c);
        assert!(
            check_signing_request(ORIGIN, &c, &manage, &format!("{ORIGIN}/r/abc/manage")).is_ok()
        );
        let loopback = consent_text("http://localhost:3000", &c);
        assert!(
            check_signing_request(
                "http://localhost:3000",
                &c,
                &loopback,
                "http://localhost:3000/r/a/eid-return"
            )
            .is_ok()
        );

        use SigningRefusal::*;
        let mismatch = [
            "https://evil.example",
            "https://uketsuke.example.jp.evil.example",
            "https://uketsuke-example.jp",
            "https://uketsuke.example.jp:8443",
            "https://xn--uketsuke-9w3d.example.jp",
            "https://www.uketsuke.example.jp",
            "https://example.jp",
        ];
        for origin in mismatch {
            // The text is the real one; the request names the attacker and returns to it.
            let attacker_back = format!("{origin}/r/abc/eid-return");
            assert_eq!(
                check_signing_request(origin, &c, &text, &attacker_back),
                Err(OriginMismatch),
                "{origin}"
            );
            // The real request, returning to a look-alike.
            assert_eq!(
                check_signing_request(ORIGIN, &c, &text, &attacker_back),
                Err(ReturnElsewhere),
                "{origin}"
            );
            // A text with the attacker's origin presented as for the real one.
            let theirs = consent_text(origin, &c);
            assert_eq!(
                check_signing_request(ORIGIN, &c, &theirs, &back),
                Err(OriginMismatch),
                "{origin}"
            );
        }
        for origin in [
            "https://Uketsuke.example.jp",
            "https://UKETSUKE.EXAMPLE.JP",
            "https://uketsuke.example.jp.",
            "https://uketsuke.example.jp:443",
            "http://uketsuke.example.jp",
            "https://uketsukе.example.jp",
        ] {
            let back = format!("{origin}/r/abc/eid-return");
            let text = consent_text(origin, &c);
            let refused = check_signing_request(origin, &c, &text, &back);
            assert!(
                matches!(refused, Err(OriginNotSignable) | Err(Text(_))),
                "{origin}: {refused:?}"
            );
        }
        for return_uri in [
            "https://uketsuke.example.jp@evil.example/r/abc/eid-return",
            "https://user:pw@uketsuke.example.jp/r/abc/eid-return",
            "https://Uketsuke.example.jp/r/abc/eid-return",
            "https://uketsuke.example.jp./r/abc/eid-return",
            "https://uketsuke.example.jp:443/r/abc/eid-return",
            "http://uketsuke.example.jp/r/abc/eid-return",
            "https://uketsuke.example.jp\\@evil.example/",
            "https://evil.example/https://uketsuke.example.jp/",
            "https://uketsuke.example.jp",
            "https://uketsuke.example.jp?x=/",
            "",
        ] {
            assert_eq!(
                check_signing_request(ORIGIN, &c, &text, return_uri),
                Err(ReturnElsewhere),
                "{return_uri}"
            );
        }
        // origin= twice, the attacker's first or second: not a binding at all.
        for injected in [
            text.replace(
                &format!("origin={ORIGIN}\n"),
                &format!("origin={ORIGIN}\norigin=https://evil.example\n"),
            ),
            text.replace(
                &format!("origin={ORIGIN}\n"),
                &format!("origin=https://evil.example\norigin={ORIGIN}\n"),
            ),
        ] {
            assert!(matches!(
                check_signing_request(ORIGIN, &c, &injected, &back),
                Err(Text(TextError::DuplicateLine { key: "origin" }))
            ));
        }
        // Another challenge than the text's.
        let other = super::super::b64_encode(&[7; 32]);
        assert_eq!(
            check_signing_request(ORIGIN, &other, &text, &back),
            Err(ChallengeMismatch)
        );
        assert_eq!(OriginMismatch.code(), "origin_mismatch");
        assert_eq!(ReturnElsewhere.code(), "return_mismatch");
    }
}
