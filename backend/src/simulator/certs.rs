//! The simulator's use of certificate verification: `uketsuke_card::certs` does the checks
//! (issuer, CA signature, validity, key) against the test CA's anchor; this module maps its
//! refusals to the contract's error codes and reads the serial the population is keyed by.
//! Revocation stays with the store, which the tests drive per person.

use rsa::RsaPublicKey;
use uketsuke_card::certs::{self, CertRefusal};
pub use uketsuke_card::certs::{TrustAnchor, verify_card_signature};

use crate::contract::ErrorCode;

/// A certificate that chains to the CA and is valid now, with the serial as a number.
#[derive(Debug, Clone)]
pub struct VerifiedCertificate {
    pub serial: u64,
    pub public_key: RsaPublicKey,
}

/// The contract's code for a refused certificate.
pub fn error_code(refusal: CertRefusal) -> ErrorCode {
    match refusal {
        CertRefusal::Malformed => ErrorCode::CertificateMalformed,
        CertRefusal::Untrusted => ErrorCode::CertificateUntrusted,
        CertRefusal::Expired => ErrorCode::CertificateExpired,
        CertRefusal::NotYetValid => ErrorCode::CertificateNotYetValid,
        CertRefusal::Revoked => ErrorCode::CertificateRevoked,
        CertRefusal::WrongType => ErrorCode::CertificateUntrusted,
    }
}

/// Verifies the certificate; a valid one whose serial does not fit in 64 bits belongs to no
/// one in the population, so it is `PersonNotFound` rather than a certificate error.
pub fn verify_certificate(
    der_bytes: &[u8],
    anchor: &TrustAnchor,
    now_unix: i64,
) -> Result<VerifiedCertificate, ErrorCode> {
    let cert = certs::verify_certificate(der_bytes, anchor, now_unix).map_err(error_code)?;
    Ok(VerifiedCertificate {
        serial: cert.serial_u64().ok_or(ErrorCode::PersonNotFound)?,
        public_key: cert.public_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_own_code() {
        let refusals = [
            CertRefusal::Malformed,
            CertRefusal::Untrusted,
            CertRefusal::Expired,
            CertRefusal::NotYetValid,
            CertRefusal::Revoked,
        ];
        let codes: std::collections::BTreeSet<String> =
            refusals.iter().map(|r| error_code(*r).as_str()).collect();
        assert_eq!(codes.len(), refusals.len());
        assert_eq!(
            error_code(CertRefusal::Revoked),
            ErrorCode::CertificateRevoked
        );
    }
}
