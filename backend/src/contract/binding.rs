//! The challenge binding: the exact bytes the patient's card signs when registering consent.
//! It ties the server's one-time challenge to the origin the browser showed and to every choice
//! the patient made, so a signature cannot be replayed for another institution, kind, date or
//! consent. The browser, the server and the backend must build the same bytes: all three call
//! [`ChallengeBinding::message`].

use chrono::NaiveDate;
use uketsuke_domain::{InstitutionCode, ReceptionKind};

use super::{ConsentChoices, PrescriptionMethod, RegistrationRequest};

/// First line of the message; a new layout gets a new tag.
pub const BINDING_TAG: &str = "uketsuke-consent-binding-v1";
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
}
