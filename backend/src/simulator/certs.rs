//! Verification of a patient's user-authentication certificate and card signature: the chain
//! to the JPKI CA (here the test CA), validity at the simulator's time, and the RSA PKCS#1 v1.5
//! SHA-256 signature over the challenge binding. Revocation and the mapping to a person are
//! the store's; this module only says which serial the certificate carries.

use der::{Decode, Encode};
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use uketsuke_card::test_ca::TestCa;
use x509_cert::Certificate;

use crate::contract::ErrorCode;

/// sha256WithRSAEncryption, the only algorithm JPKI user-authentication certificates use.
const SHA256_WITH_RSA: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// A certificate that chains to the CA and is valid now.
#[derive(Debug, Clone)]
pub struct VerifiedCertificate {
    pub serial: u64,
    pub public_key: RsaPublicKey,
}

/// Chain, then validity. Expired and not-yet-valid are told apart for the patient's message.
pub fn verify_certificate(
    der_bytes: &[u8],
    ca: &TestCa,
    now_unix: i64,
) -> Result<VerifiedCertificate, ErrorCode> {
    let cert = Certificate::from_der(der_bytes).map_err(|_| ErrorCode::CertificateMalformed)?;
    let tbs = &cert.tbs_certificate;
    if tbs.issuer != *ca.name() || cert.signature_algorithm.oid != SHA256_WITH_RSA {
        return Err(ErrorCode::CertificateUntrusted);
    }
    let tbs_der = tbs.to_der().map_err(|_| ErrorCode::CertificateMalformed)?;
    let signature = cert
        .signature
        .as_bytes()
        .ok_or(ErrorCode::CertificateMalformed)?;
    ca.public_key()
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(&tbs_der),
            signature,
        )
        .map_err(|_| ErrorCode::CertificateUntrusted)?;
    let not_before = unix(tbs.validity.not_before.to_unix_duration());
    let not_after = unix(tbs.validity.not_after.to_unix_duration());
    if now_unix < not_before {
        return Err(ErrorCode::CertificateNotYetValid);
    }
    if now_unix > not_after {
        return Err(ErrorCode::CertificateExpired);
    }
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|_| ErrorCode::CertificateMalformed)?;
    let public_key =
        RsaPublicKey::from_public_key_der(&spki).map_err(|_| ErrorCode::CertificateMalformed)?;
    Ok(VerifiedCertificate {
        serial: serial_u64(tbs.serial_number.as_bytes()).ok_or(ErrorCode::PersonNotFound)?,
        public_key,
    })
}

fn unix(duration: core::time::Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// Serials of the population fit in 64 bits; longer ones are nobody we know.
fn serial_u64(bytes: &[u8]) -> Option<u64> {
    let trimmed: &[u8] = {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        &bytes[start..]
    };
    if trimmed.len() > 8 {
        return None;
    }
    Some(
        trimmed
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
    )
}

/// The card's signature over the binding message (the card signs a SHA-256 DigestInfo).
pub fn verify_card_signature(key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
    key.verify(
        Pkcs1v15Sign::new::<Sha256>(),
        &Sha256::digest(message),
        signature,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_read_big_endian_without_sign_padding() {
        assert_eq!(serial_u64(&[0, 0x27, 0x11]), Some(10_001));
        assert_eq!(serial_u64(&[1; 9]), None);
        assert_eq!(serial_u64(&[]), Some(0));
    }
}
