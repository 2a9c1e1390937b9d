//! Wire types of the backend contract, version 1: what the relay sends to a confirmation backend
//! and what it gets back, as serde JSON. Every path starts with `/v1/`. How requests and answers
//! are signed is in [`signing`]; what the card signs is in [`binding`]. `PROTOCOL.md` beside
//! `Cargo.toml` is the same contract in prose, for teams implementing it in other languages.

pub mod binding;
pub mod key_registration;
pub mod signing;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uketsuke_domain::eligibility::EligibilityOutcome;
use uketsuke_domain::{InstitutionCode, ReceptionKind, Window};

/// Path of the liveness probe the relay uses for its readiness check (unsigned).
pub const HEALTH_PATH: &str = "/v1/health";
/// `POST`: register consent ([`RegistrationRequest`] → [`RegistrationAccepted`]).
pub const REGISTRATIONS_PATH: &str = "/v1/registrations";

/// `POST`: the institution's reference of the person who holds a certificate
/// ([`PersonReferenceRequest`] → [`PersonReferenceAnswer`]).
pub const PERSON_REFERENCES_PATH: &str = "/v1/person-references";

/// `POST`: eligibility of a registration ([`EligibilityRequest`] → [`EligibilityAnswer`]).
pub fn eligibility_path(registration_id: &str) -> String {
    format!("/v1/registrations/{registration_id}/eligibility")
}

/// `POST`: medical information ([`MedicalInformationRequest`] → [`MedicalInformationAnswer`]).
pub fn medical_information_path(registration_id: &str) -> String {
    format!("/v1/registrations/{registration_id}/medical-information")
}

/// `POST`: withdraw all consents ([`WithdrawalRequest`] → [`WithdrawalAccepted`]).
pub fn withdrawal_path(registration_id: &str) -> String {
    format!("/v1/registrations/{registration_id}/withdrawal")
}

/// `POST`: change the consents of a registration ([`ConsentUpdateRequest`] →
/// [`ConsentUpdated`]).
pub fn consent_path(registration_id: &str) -> String {
    format!("/v1/registrations/{registration_id}/consent")
}

/// `POST`: record a home visit ([`HomeVisitRequest`] → [`HomeVisitRecorded`]).
pub fn home_visits_path(registration_id: &str) -> String {
    format!("/v1/registrations/{registration_id}/home-visits")
}

/// `POST`: 健康保険証利用登録, register the card of a registration's patient for use as a
/// health insurance card ([`InsuranceUseRequest`] → [`InsuranceUseRegistered`]).
pub fn insurance_use_path(registration_id: &str) -> String {
    format!("/v1/registrations/{registration_id}/insurance-use")
}

/// Answer of [`HEALTH_PATH`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `"ok"` when the backend accepts requests.
    pub status: String,
    /// Contract version the backend speaks.
    pub contract: u32,
}

pub const CONTRACT_VERSION: u32 = 1;

/// The two consent categories of SPEC §3 (同意する = `true`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConsentChoices {
    /// 診療・薬剤情報 (clinical, medication and surgery history).
    pub clinical_medication: bool,
    /// 特定健診等情報 (health check-ups).
    pub checkups: bool,
}

/// 処方箋の発行方法, asked for online care only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrescriptionMethod {
    /// 電子処方箋
    Electronic,
    /// 紙の処方箋
    Paper,
}

impl PrescriptionMethod {
    pub const fn code(self) -> &'static str {
        match self {
            PrescriptionMethod::Electronic => "electronic",
            PrescriptionMethod::Paper => "paper",
        }
    }
}

/// How the patient was identified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum IdentityProof {
    /// PIN entered, the card signed the challenge binding ([`binding::ChallengeBinding`]).
    Card {
        /// The user-authentication certificate read from the card (DER, base64url, no padding).
        certificate: String,
        /// The card's RSA PKCS#1 v1.5 SHA-256 signature over the binding (base64url, no padding).
        signature: String,
        /// The origin the browser showed (e.g. `https://uketsuke.example.jp`).
        origin: String,
        /// The server's one-time challenge (base64url, no padding, at least 32 bytes decoded).
        challenge: String,
    },
    /// 目視確認: the certificate was read without PIN and a staff member compared the face with
    /// the card photo. Never allowed for online care.
    VisualCheck {
        /// The user-authentication certificate read from the card (DER, base64url, no padding).
        certificate: String,
        /// The staff account that confirmed (2–8 ASCII letters or digits).
        staff_account: String,
    },
}

/// `POST /v1/registrations`: register the patient's consent at an institution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationRequest {
    pub institution_code: InstitutionCode,
    pub kind: ReceptionKind,
    /// 診療日 (JST). Kinds other than online care register for today's JST date.
    pub visit_date: NaiveDate,
    pub consent: ConsentChoices,
    /// Online care: required; other kinds: must be absent.
    pub prescription_method: Option<PrescriptionMethod>,
    pub identity: IdentityProof,
    /// Chosen by the relay, 1–64 characters `[A-Za-z0-9_-]`. Sending the same key with the same
    /// body again returns the first answer; with a different body it is refused.
    pub idempotency_key: String,
}

/// Answer of a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationAccepted {
    /// The backend's id of the registration, used in every later path (`[A-Za-z0-9-]`).
    pub registration_id: String,
    /// 受付番号 shown to the patient (8 digits).
    pub reception_number: String,
    pub registered_at: DateTime<Utc>,
    pub kind: ReceptionKind,
    pub visit_date: NaiveDate,
    pub consent: ConsentChoices,
    /// The consent window as the backend computed it (domain::window).
    pub window: Window,
    /// The person who registered, as this institution knows them ([`PersonReferenceAnswer`]).
    /// Always sent by a backend of this contract; `None` when an answer lacks it (a stored
    /// answer of an older backend), which a relay treats as "person not linked".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_reference: Option<String>,
}

/// `POST /v1/person-references`: who holds this certificate, as the signing institution may
/// know them. The relay sends it after it verified the card's proof itself (同意照会: the card
/// signed a one-time challenge after the PIN), so that the patient finds the receptions made
/// with an earlier certificate of theirs: the 利用者証明用電子証明書 is renewed every five years
/// and with a reissued card, and its serial changes each time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonReferenceRequest {
    pub institution_code: InstitutionCode,
    /// The user-authentication certificate read from the card (DER, base64url, no padding).
    pub certificate: String,
}

/// Answer of [`PERSON_REFERENCES_PATH`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonReferenceAnswer {
    /// Opaque, stable for one person across all their certificates, and different for every
    /// institution (two institutions cannot link their references): 1–128 characters
    /// `[A-Za-z0-9_-]` ([`person_reference_is_well_formed`]).
    pub person_reference: String,
}

/// The form every person reference has: 1–128 characters `[A-Za-z0-9_-]`.
pub fn person_reference_is_well_formed(reference: &str) -> bool {
    (1..=128).contains(&reference.len())
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `POST /v1/registrations/{id}/eligibility`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilityRequest {
    /// The institution setting 医療扶助情報 利用する (`true`) / 利用しない (`false`).
    pub use_welfare_information: bool,
}

/// Answer of an eligibility retrieval; information control is already applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilityAnswer {
    pub registration_id: String,
    /// JST date the confirmation refers to.
    pub confirmed_on: NaiveDate,
    pub outcome: EligibilityOutcome,
}

/// A medical information category (one per request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MedicalCategory {
    /// 診療・薬剤情報
    ClinicalMedication,
    /// 特定健診等情報
    Checkups,
}

/// `POST /v1/registrations/{id}/medical-information`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MedicalInformationRequest {
    pub category: MedicalCategory,
}

/// One dispensed medication (薬剤情報).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MedicationEntry {
    pub dispensed_on: NaiveDate,
    pub drug_name: String,
    pub dose: String,
    pub days: u16,
    pub pharmacy: String,
}

/// One clinical fact (診療情報: diagnosis-related care, procedure, surgery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClinicalEntry {
    pub date: NaiveDate,
    pub institution: String,
    pub description: String,
}

/// One health check-up (特定健診等).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckupEntry {
    pub date: NaiveDate,
    pub height_cm: f32,
    pub weight_kg: f32,
    pub systolic_mmhg: u16,
    pub diastolic_mmhg: u16,
    /// HbA1c (NGSP, %), when measured.
    pub hba1c_percent: Option<f32>,
    pub ldl_mg_dl: Option<u16>,
}

/// The data of one category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "category", rename_all = "snake_case")]
pub enum MedicalInformation {
    ClinicalMedication {
        clinical: Vec<ClinicalEntry>,
        medications: Vec<MedicationEntry>,
    },
    Checkups {
        checkups: Vec<CheckupEntry>,
    },
}

/// Answer of a medical information retrieval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MedicalInformationAnswer {
    pub registration_id: String,
    /// The exclusive end of the window at the time of the answer.
    pub window_end: DateTime<Utc>,
    pub information: MedicalInformation,
}

/// Who asked for the withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum WithdrawnBy {
    /// The patient, after the relay verified their card and PIN.
    Patient,
    /// A staff member on the patient's request (2–8 ASCII letters or digits).
    Staff { staff_account: String },
}

/// `POST /v1/registrations/{id}/withdrawal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawalRequest {
    pub requested: WithdrawnBy,
}

/// Answer of a withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawalAccepted {
    pub registration_id: String,
    pub withdrawn_at: DateTime<Utc>,
    pub window: Window,
}

/// `POST /v1/registrations/{id}/consent`: 同意の更新. The patient proved their card and PIN
/// again to the relay, so a category may be granted as well as revoked. The request carries
/// both categories as they now stand, not a difference, so a retry changes nothing more; the
/// window is not moved by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentUpdateRequest {
    pub consent: ConsentChoices,
}

/// Answer of a consent update: the consents and the window as they now stand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentUpdated {
    pub registration_id: String,
    pub consent: ConsentChoices,
    pub window: Window,
}

/// `POST /v1/registrations/{id}/home-visits` (訪問診療等 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeVisitRequest {
    /// JST date of a visit that took place (not in the future).
    pub visit_date: NaiveDate,
}

/// Answer of recording a home visit: the window as it now stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HomeVisitRecorded {
    pub registration_id: String,
    pub visits: Vec<NaiveDate>,
    pub window: Window,
}

/// The version of the terms of 健康保険証利用登録 that a patient is shown before registering
/// (the words are the portal's: `app/src/i18n`). The signed text names it, so a signature
/// agrees to these terms only; a backend refuses a version it does not offer
/// ([`ErrorCode::TermsVersionUnknown`]).
pub const INSURANCE_USE_TERMS_VERSION: &str = "2026-12";

/// `POST /v1/registrations/{id}/insurance-use`: 健康保険証利用登録. The patient agreed to the
/// terms, entered the PIN and the card signed [`binding::InsuranceUseBinding`]; the backend
/// verifies that proof itself (chain, validity, revocation, signature) and that the card is
/// the registration's patient's, and registers the card for insurance use. Registering a card
/// that already is registered changes nothing and answers as a success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsuranceUseRequest {
    /// The user-authentication certificate read from the card (DER, base64url, no padding).
    pub certificate: String,
    /// The card's RSA PKCS#1 v1.5 SHA-256 signature over the binding (base64url, no padding).
    pub signature: String,
    /// The origin the browser showed.
    pub origin: String,
    /// The server's one-time challenge (base64url, no padding, 32–64 bytes decoded).
    pub challenge: String,
    /// The terms the patient agreed to ([`INSURANCE_USE_TERMS_VERSION`]).
    pub terms_version: String,
    /// As in [`RegistrationRequest::idempotency_key`].
    pub idempotency_key: String,
}

/// Answer of a 健康保険証利用登録.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsuranceUseRegistered {
    pub registration_id: String,
    /// When the card became registered for insurance use (on a repeat: the first time).
    pub registered_at: DateTime<Utc>,
    /// The card was registered before this request; nothing changed.
    pub already_registered: bool,
}

/// Every refusal the backend can answer with. The wire form is the snake_case name; each code
/// has exactly one HTTP status ([`ErrorCode::http_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // --- transport and request signing (PROTOCOL.md §3) ---
    /// A signature header is missing or not in its format.
    MissingAuthentication,
    /// The key id is not registered with the backend.
    UnknownKey,
    /// The timestamp is more than five minutes from the backend's time.
    StaleTimestamp,
    /// The request signature does not verify over the canonical request.
    BadSignature,
    /// The nonce was already used with this key.
    ReplayedNonce,
    /// The body is larger than 64 KiB.
    BodyTooLarge,
    /// The body is not the JSON of the endpoint's request type.
    MalformedRequest,
    /// No such endpoint.
    NotFound,
    // --- registration: the request itself ---
    /// The institution code in the body is not the institution that signed.
    InstitutionMismatch,
    /// Online care needs a prescription method; other kinds must not send one.
    PrescriptionMethodInvalid,
    /// Consent to medical information for 資格確認限定型.
    ConsentNotOffered,
    /// Visual check for online care.
    VisualCheckNotAllowed,
    /// The staff account is not 2–8 ASCII letters or digits.
    StaffAccountInvalid,
    /// The visit date is not allowed for the kind (past, or not today for day-based kinds).
    VisitDateInvalid,
    /// The challenge or origin is not in its format.
    ChallengeInvalid,
    /// The challenge was already used for another registration.
    ChallengeReused,
    /// The idempotency key was used before with a different body.
    IdempotencyConflict,
    // --- registration: the patient's certificate and signature ---
    /// The certificate is not DER X.509 or not an RSA key.
    CertificateMalformed,
    /// The certificate does not chain to the JPKI user-authentication CA.
    CertificateUntrusted,
    /// The certificate's validity ended.
    CertificateExpired,
    /// The certificate's validity has not started.
    CertificateNotYetValid,
    /// The certificate is on the revocation list (also when it was revoked by its renewal:
    /// only the new certificate proves the person from then on).
    CertificateRevoked,
    /// The certificate is valid but belongs to no person the backend knows.
    PersonNotFound,
    /// The card's signature does not verify over the challenge binding.
    CardSignatureInvalid,
    // --- reads and updates of a registration ---
    /// No registration with this id for the signing institution.
    RegistrationNotFound,
    /// 資格確認限定型: no medical information at all.
    NoMedicalInformation,
    /// The patient did not consent to this category.
    ConsentNotGiven,
    /// The consent window is closed (ended, or not started).
    WindowClosed,
    /// The consents were withdrawn.
    ConsentWithdrawn,
    /// J-LIS照会で不一致 (閲覧停止): no data about the person is released.
    PersonUnderReview,
    /// Home visits can be recorded for 訪問診療等 only.
    NotHomeVisit,
    /// 健康保険証利用登録: the card is not the card of the registration's patient.
    PersonMismatch,
    /// 健康保険証利用登録: the terms version is not one the backend offers.
    TermsVersionUnknown,
    /// A home visit in the future or before the registration's month.
    HomeVisitDateInvalid,
    // --- the backend itself ---
    /// The backend cannot answer now (outage, maintenance, injected fault).
    Unavailable,
    /// The backend failed; retrying with a new nonce may help.
    Internal,
}

impl ErrorCode {
    /// The HTTP status this code is always sent with.
    pub const fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            MissingAuthentication | UnknownKey | StaleTimestamp | BadSignature => 401,
            ReplayedNonce | ChallengeReused | IdempotencyConflict => 409,
            BodyTooLarge => 413,
            MalformedRequest => 400,
            NotFound | RegistrationNotFound => 404,
            InstitutionMismatch => 403,
            PrescriptionMethodInvalid
            | ConsentNotOffered
            | VisualCheckNotAllowed
            | StaffAccountInvalid
            | VisitDateInvalid
            | ChallengeInvalid
            | CertificateMalformed
            | CertificateUntrusted
            | CertificateExpired
            | CertificateNotYetValid
            | CertificateRevoked
            | PersonNotFound
            | CardSignatureInvalid
            | NotHomeVisit
            | HomeVisitDateInvalid
            | PersonMismatch
            | TermsVersionUnknown => 422,
            NoMedicalInformation | ConsentNotGiven | WindowClosed | ConsentWithdrawn
            | PersonUnderReview => 403,
            Unavailable => 503,
            Internal => 500,
        }
    }

    /// The wire name (`"certificate_revoked"`).
    pub fn as_str(self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(s)) => s,
            // A unit variant always serialises to a string; keep a readable fallback anyway.
            _ => format!("{self:?}"),
        }
    }
}

/// Body of every refusal (non-2xx answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// English detail for logs; never shown to patients as is.
    pub message: String,
}

/// Base64url without padding, the one binary encoding of the contract.
pub fn b64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `None` for anything else (padding, `+`, `/`, spaces).
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_have_snake_case_wire_names() {
        assert_eq!(
            ErrorCode::CertificateRevoked.as_str(),
            "certificate_revoked"
        );
        assert_eq!(ErrorCode::ReplayedNonce.http_status(), 409);
        let body: ErrorBody =
            serde_json::from_str(r#"{"code":"stale_timestamp","message":"x"}"#).expect("parse");
        assert_eq!(body.code, ErrorCode::StaleTimestamp);
    }

    #[test]
    fn identity_proof_is_tagged_by_method() {
        let proof = IdentityProof::VisualCheck {
            certificate: "AA".into(),
            staff_account: "kato01".into(),
        };
        let json = serde_json::to_value(&proof).expect("serialise");
        assert_eq!(json["method"], "visual_check");
        assert_eq!(json["staff_account"], "kato01");
    }

    #[test]
    fn person_references_have_one_form_and_may_be_absent_from_old_answers() {
        assert!(person_reference_is_well_formed("pr-AbC_09"));
        for bad in ["", "a b", "ä", "x/y", &"a".repeat(129)] {
            assert!(!person_reference_is_well_formed(bad), "{bad:?}");
        }
        let old = r#"{"registration_id":"reg-1","reception_number":"20000001",
            "registered_at":"2026-11-21T01:00:00Z","kind":"separate_route",
            "visit_date":"2026-11-21","consent":{"clinical_medication":true,"checkups":false},
            "window":{"state":"no_medical_information"}}"#;
        let answer: RegistrationAccepted = serde_json::from_str(old).expect("old answer");
        assert_eq!(answer.person_reference, None);
    }

    #[test]
    fn base64url_refuses_padding_and_standard_alphabet() {
        assert_eq!(
            b64_decode(&b64_encode(&[0xfb, 0xff])),
            Some(vec![0xfb, 0xff])
        );
        assert_eq!(b64_decode("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(b64_decode("+/8="), None);
    }
}
