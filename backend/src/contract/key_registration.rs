//! The document an institution hands to the backend's operator to register its request-signing
//! key (PROTOCOL.md §3: the backend looks the key up by `uketsuke-key-id` and checks that it
//! belongs to the institution named in the request). `uketsuke-server institution key` prints
//! it; `backend-sim --institution-key FILE` takes it.
//!
//! Shape (JSON, UTF-8):
//!
//! ```json
//! {
//!   "format": "uketsuke-institution-key-v1",
//!   "institution_code": "1311234561",
//!   "key_id": "uk-1311234561-3f9a0c1d",
//!   "algorithm": "ES256",
//!   "public_key": "BPz…"
//! }
//! ```
//!
//! `institution_code` is the 10-digit 医療機関等コード (check digit verified), `key_id` 1–64
//! characters `[A-Za-z0-9._-]`, `algorithm` always `ES256` (ECDSA P-256 with SHA-256), and
//! `public_key` the uncompressed SEC1 point (65 bytes) in base64url without padding. Only the
//! public half leaves the server; the document is not secret, but whoever registers it must
//! have checked that it comes from that institution (e.g. through the institution's own
//! account with the backend's operator).

use p256::ecdsa::VerifyingKey;
use serde::{Deserialize, Serialize};
use uketsuke_domain::InstitutionCode;

use super::signing::{decode_verifying_key, encode_verifying_key, key_id_is_well_formed};

/// The `format` value of this version of the document.
pub const KEY_REGISTRATION_FORMAT: &str = "uketsuke-institution-key-v1";
/// The one signature algorithm of contract version 1.
pub const KEY_ALGORITHM: &str = "ES256";

/// An institution's public request-signing key, as registered with the backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRegistration {
    pub format: String,
    pub institution_code: String,
    pub key_id: String,
    pub algorithm: String,
    pub public_key: String,
}

/// Why a registration document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRegistrationError {
    #[error("not a key registration document: {0}")]
    Json(String),
    #[error("format must be {KEY_REGISTRATION_FORMAT:?}, found {0:?}")]
    Format(String),
    #[error("institution_code {0:?} is not a valid 10-digit 医療機関等コード")]
    InstitutionCode(String),
    #[error("key_id {0:?} must be 1-64 characters [A-Za-z0-9._-]")]
    KeyId(String),
    #[error("algorithm must be {KEY_ALGORITHM:?}, found {0:?}")]
    Algorithm(String),
    #[error("public_key is not a P-256 public key (SEC1, base64url)")]
    PublicKey,
}

/// A registration whose every field has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedKeyRegistration {
    pub institution_code: InstitutionCode,
    pub key_id: String,
    pub verifying_key: VerifyingKey,
}

impl KeyRegistration {
    /// The document for `key` of the institution `institution_code` under `key_id`.
    pub fn new(institution_code: &InstitutionCode, key_id: &str, key: &VerifyingKey) -> Self {
        KeyRegistration {
            format: KEY_REGISTRATION_FORMAT.to_owned(),
            institution_code: institution_code.as_str().to_owned(),
            key_id: key_id.to_owned(),
            algorithm: KEY_ALGORITHM.to_owned(),
            public_key: encode_verifying_key(key),
        }
    }

    /// Pretty JSON with a final newline, as printed for the operator.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Reads and checks a document (see the module's shape).
    pub fn parse(text: &str) -> Result<CheckedKeyRegistration, KeyRegistrationError> {
        let document: KeyRegistration =
            serde_json::from_str(text).map_err(|e| KeyRegistrationError::Json(e.to_string()))?;
        document.check()
    }

    /// Checks every field.
    pub fn check(&self) -> Result<CheckedKeyRegistration, KeyRegistrationError> {
        if self.format != KEY_REGISTRATION_FORMAT {
            return Err(KeyRegistrationError::Format(self.format.clone()));
        }
        let institution_code = self
            .institution_code
            .parse::<InstitutionCode>()
            .map_err(|_| KeyRegistrationError::InstitutionCode(self.institution_code.clone()))?;
        if !key_id_is_well_formed(&self.key_id) {
            return Err(KeyRegistrationError::KeyId(self.key_id.clone()));
        }
        if self.algorithm != KEY_ALGORITHM {
            return Err(KeyRegistrationError::Algorithm(self.algorithm.clone()));
        }
        let verifying_key =
            decode_verifying_key(&self.public_key).ok_or(KeyRegistrationError::PublicKey)?;
        Ok(CheckedKeyRegistration {
            institution_code,
            key_id: self.key_id.clone(),
            verifying_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;

    fn key() -> VerifyingKey {
        *SigningKey::from_slice(&[7u8; 32])
            .expect("a valid scalar")
            .verifying_key()
    }

    fn code() -> InstitutionCode {
        InstitutionCode::with_check_digit("131123456").expect("valid prefix")
    }

    #[test]
    fn a_printed_document_reads_back() {
        let document = KeyRegistration::new(&code(), "uk-1-abc", &key());
        let checked = KeyRegistration::parse(&document.to_json()).expect("valid");
        assert_eq!(checked.institution_code, code());
        assert_eq!(checked.key_id, "uk-1-abc");
        assert_eq!(checked.verifying_key, key());
        // 65 bytes uncompressed → 87 base64url characters.
        assert_eq!(document.public_key.len(), 87);
        assert!(document.public_key.starts_with('B'));
    }

    #[test]
    fn every_bad_field_is_named() {
        let good = KeyRegistration::new(&code(), "uk-1-abc", &key());
        let with = |change: &dyn Fn(&mut KeyRegistration)| {
            let mut d = good.clone();
            change(&mut d);
            KeyRegistration::parse(&d.to_json()).expect_err("refused")
        };
        assert!(matches!(
            with(&|d| d.format = "v0".into()),
            KeyRegistrationError::Format(_)
        ));
        assert!(matches!(
            with(&|d| d.institution_code = "13112345".into()),
            KeyRegistrationError::InstitutionCode(_)
        ));
        assert!(matches!(
            with(&|d| d.key_id = "has space".into()),
            KeyRegistrationError::KeyId(_)
        ));
        assert!(matches!(
            with(&|d| d.algorithm = "RS256".into()),
            KeyRegistrationError::Algorithm(_)
        ));
        assert!(matches!(
            with(&|d| d.public_key = "AAAA".into()),
            KeyRegistrationError::PublicKey
        ));
        assert!(matches!(
            KeyRegistration::parse("{\"format\": 1}"),
            Err(KeyRegistrationError::Json(_))
        ));
        let extra = good.to_json().replacen('{', "{\"private_key\": \"x\",", 1);
        assert!(matches!(
            KeyRegistration::parse(&extra),
            Err(KeyRegistrationError::Json(_))
        ));
    }
}
