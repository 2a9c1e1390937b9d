//! The simulator's key material, all derived from public seeds (test and demo only): the test
//! JPKI CA that issues the population's cards, the backend's response-signing key, and the
//! demo institutions with their request-signing keys. A relay in demo mode takes its keys from
//! here; a production relay takes them from its configuration.

use std::sync::OnceLock;

use p256::ecdsa::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use uketsuke_card::test_ca::{TestCa, TestCaError};
use uketsuke_domain::InstitutionCode;

use crate::contract::signing::{RequestSigner, SigningError};

/// Seed of the test CA every population card chains to.
pub const TEST_CA_SEED: u64 = 1;
/// Key id the simulator signs its answers with.
pub const BACKEND_KEY_ID: &str = "sim-backend-1";

/// A demo institution known to the simulator from the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoInstitution {
    pub key_id: &'static str,
    /// The first nine digits of the 医療機関等コード; the check digit is computed.
    pub code_prefix: &'static str,
    pub name: &'static str,
}

/// うけつけデモ診療所: the clinic the server's demo uses; welfare contracts (委託) point here.
pub const DEMO_CLINIC: DemoInstitution = DemoInstitution {
    key_id: "demo-clinic-1",
    code_prefix: "131123456",
    name: "うけつけデモ診療所",
};
/// A second clinic, not contracted for most welfare recipients (未委託 from their side).
pub const OTHER_CLINIC: DemoInstitution = DemoInstitution {
    key_id: "other-clinic-1",
    code_prefix: "271654321",
    name: "うけつけ第二クリニック",
};
pub const DEMO_INSTITUTIONS: [DemoInstitution; 2] = [DEMO_CLINIC, OTHER_CLINIC];

/// The 10-digit code of a demo institution.
pub fn institution_code(institution: DemoInstitution) -> InstitutionCode {
    // The prefixes are constants with a valid prefecture and score table (tested below), so
    // the fallback never runs; it exists so that no path can panic.
    InstitutionCode::with_check_digit(institution.code_prefix)
        .or_else(|_| InstitutionCode::with_check_digit("131123456"))
        .unwrap_or_else(|_| std::process::abort())
}

/// A P-256 key from a label and seed: SHA-256 of both, re-hashed in the rare case the digest
/// is not a valid scalar.
pub fn p256_key_from_seed(label: &str, seed: u64) -> SigningKey {
    let mut digest = Sha256::digest(format!("uketsuke-test-p256:{label}:{seed}").as_bytes());
    loop {
        if let Ok(key) = SigningKey::from_slice(&digest) {
            return key;
        }
        digest = Sha256::digest(digest);
    }
}

pub fn backend_signing_key() -> SigningKey {
    p256_key_from_seed("backend", 1)
}

/// What a relay pins to verify the simulator's answers.
pub fn backend_verifying_key() -> VerifyingKey {
    *backend_signing_key().verifying_key()
}

pub fn institution_signing_key(institution: DemoInstitution) -> SigningKey {
    p256_key_from_seed(institution.key_id, 1)
}

/// The request signer of a demo institution, as a demo relay would hold it.
pub fn institution_signer(institution: DemoInstitution) -> Result<RequestSigner, SigningError> {
    RequestSigner::new(institution.key_id, institution_signing_key(institution))
}

/// The test CA, built once per process (its key generation is the slow part).
pub fn test_ca() -> Result<&'static TestCa, TestCaError> {
    static CA: OnceLock<Result<TestCa, String>> = OnceLock::new();
    match CA.get_or_init(|| TestCa::from_seed(TEST_CA_SEED).map_err(|e| e.to_string())) {
        Ok(ca) => Ok(ca),
        Err(_) => Err(TestCaError::InvalidRequest("test CA could not be built")),
    }
}

/// The trust anchor a relay uses to verify cards in demo mode (DER).
pub fn test_ca_certificate_der() -> Result<&'static [u8], TestCaError> {
    Ok(test_ca()?.certificate_der())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_codes_and_keys_are_stable() {
        for institution in DEMO_INSTITUTIONS {
            let code = InstitutionCode::with_check_digit(institution.code_prefix).expect("valid");
            assert_eq!(institution_code(institution), code);
        }
        assert_eq!(backend_signing_key(), backend_signing_key());
        assert_ne!(
            institution_signing_key(DEMO_CLINIC),
            institution_signing_key(OTHER_CLINIC)
        );
    }
}
