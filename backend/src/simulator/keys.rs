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

/// Secret of the simulator's person references (public, like every key here: test only).
const PERSON_REFERENCE_SECRET: &[u8] = b"uketsuke-sim-person-reference-secret-1";

/// The person reference the simulator answers to `institution_code` for its person `person_no`
/// (contract: `PersonReferenceAnswer`): `pr-` and the base64url HMAC-SHA256 of the person's
/// stable number under a key of that institution's own. The same person gets the same
/// reference from every certificate of theirs; two institutions' references of one person have
/// nothing in common, and neither reveals the number without the backend's secret.
pub fn person_reference(institution_code: &str, person_no: u32) -> String {
    let institution_key = hmac_sha256(
        PERSON_REFERENCE_SECRET,
        format!("institution:{institution_code}").as_bytes(),
    );
    let mac = hmac_sha256(&institution_key, format!("person:{person_no}").as_bytes());
    format!("pr-{}", crate::contract::b64_encode(&mac))
}

/// HMAC-SHA256 (RFC 2104 with SHA-256's 64-byte block), small enough to keep here rather than
/// add a crate; checked against RFC 4231's test vectors below.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2: key "Jefe".
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a 131-byte key, longer than the block.
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn person_references_are_per_institution_and_well_formed() {
        let (demo, other) = (
            institution_code(DEMO_CLINIC),
            institution_code(OTHER_CLINIC),
        );
        let here = person_reference(demo.as_str(), 61);
        assert_eq!(here, person_reference(demo.as_str(), 61));
        assert_ne!(here, person_reference(other.as_str(), 61));
        assert_ne!(here, person_reference(demo.as_str(), 62));
        assert!(crate::contract::person_reference_is_well_formed(&here));
    }

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
