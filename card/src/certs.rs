//! Verification of a patient's JPKI user-authentication certificate against a configured trust
//! anchor (the JPKI user-authentication CA certificate in production, the test CA in tests and
//! the demo): the issuer and CA signature, validity at a given instant, revocation through the
//! CA's CRL, and the card's RSA PKCS#1 v1.5 SHA-256 signature.
//!
//! Server side only, behind the `verify` feature: the browser never verifies certificates, and
//! the browser build (`uketsuke-app` with `hydrate`) leaves the feature off so none of this, nor
//! its PEM decoding, reaches the patient's phone.
//!
//! Mapping a certificate to a person is not done here; this module only says which serial the
//! certificate carries and whether the CA still stands behind it.

use std::borrow::Cow;
use std::collections::BTreeSet;

use base64::Engine as _;
use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::name::Name;

/// sha256WithRSAEncryption, the only algorithm JPKI user-authentication certificates and the
/// CA's CRLs use. Anything else is refused rather than negotiated.
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// PEM label of a certificate (RFC 7468 section 5).
const PEM_CERTIFICATE: &str = "CERTIFICATE";
/// PEM label of a CRL (RFC 7468 section 6).
const PEM_CRL: &str = "X509 CRL";

/// Why a configured CA certificate cannot serve as trust anchor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("CA certificate PEM: {0}")]
    Pem(&'static str),
    #[error("CA certificate is not a DER X.509 certificate: {0}")]
    Malformed(String),
    #[error("CA certificate key is not RSA: {0}")]
    UnsupportedKey(String),
}

/// Why a configured CRL cannot be used. Every case stops the caller from relying on the list:
/// a server should refuse to run rather than accept revoked cards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    #[error("CRL PEM: {0}")]
    Pem(&'static str),
    #[error("CRL is not a DER X.509 CRL: {0}")]
    Malformed(String),
    #[error("CRL is not issued and signed by the trusted CA")]
    Untrusted,
    #[error("CRL is stale: its next update (unix {next_update_unix}) has passed")]
    Stale { next_update_unix: i64 },
}

/// Why a patient's certificate is refused. The cases stay apart so the patient can be told
/// whether to renew the card's certificate or to try another card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum CertRefusal {
    #[error("certificate is malformed")]
    Malformed,
    #[error("certificate is not issued by the trusted CA")]
    Untrusted,
    #[error("certificate has expired")]
    Expired,
    #[error("certificate is not yet valid")]
    NotYetValid,
    #[error("certificate has been revoked")]
    Revoked,
}

/// The CA that user certificates and CRLs must chain to: its name and RSA key. The anchor is
/// trusted because it is configured, so its own signature and validity are not checked.
#[derive(Clone, Debug)]
pub struct TrustAnchor {
    subject: Name,
    public_key: RsaPublicKey,
}

impl TrustAnchor {
    /// The anchor from the CA certificate in DER.
    pub fn from_der(ca_cert_der: &[u8]) -> Result<Self, CertError> {
        let cert =
            Certificate::from_der(ca_cert_der).map_err(|e| CertError::Malformed(e.to_string()))?;
        let tbs = cert.tbs_certificate;
        let spki = tbs
            .subject_public_key_info
            .to_der()
            .map_err(|e| CertError::Malformed(e.to_string()))?;
        let public_key = RsaPublicKey::from_public_key_der(&spki)
            .map_err(|e| CertError::UnsupportedKey(e.to_string()))?;
        Ok(Self {
            subject: tbs.subject,
            public_key,
        })
    }

    /// The anchor from a certificate file's content: PEM (`-----BEGIN CERTIFICATE-----`) or
    /// raw DER.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, CertError> {
        let der = pem_or_der(bytes, PEM_CERTIFICATE).map_err(CertError::Pem)?;
        Self::from_der(&der)
    }

    /// The CA's distinguished name: the issuer of every certificate and CRL it signs.
    pub fn subject(&self) -> &Name {
        &self.subject
    }

    /// The CA's public key.
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public_key
    }

    /// Whether `signature` is the anchor's sha256WithRSA signature over `signed`.
    fn signed(&self, signed: &[u8], signature: &[u8]) -> bool {
        self.public_key
            .verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(signed),
                signature,
            )
            .is_ok()
    }
}

/// A certificate that the anchor issued and that is valid at the instant it was checked.
#[derive(Clone, Debug)]
pub struct VerifiedCertificate {
    /// Serial number, big-endian, leading zero bytes (DER sign padding) trimmed.
    pub serial: Vec<u8>,
    /// The card's user-authentication public key.
    pub public_key: RsaPublicKey,
}

impl VerifiedCertificate {
    /// The serial as a number, or `None` when it does not fit in 64 bits.
    pub fn serial_u64(&self) -> Option<u64> {
        if self.serial.len() > 8 {
            return None;
        }
        Some(
            self.serial
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        )
    }
}

/// Issuer and signature first, then validity at `now_unix`. Expired and not-yet-valid are told
/// apart for the patient's message; revocation is the caller's, with a [`RevocationList`].
pub fn verify_certificate(
    der_bytes: &[u8],
    anchor: &TrustAnchor,
    now_unix: i64,
) -> Result<VerifiedCertificate, CertRefusal> {
    let cert = Certificate::from_der(der_bytes).map_err(|_| CertRefusal::Malformed)?;
    let tbs = &cert.tbs_certificate;
    if tbs.issuer != anchor.subject || cert.signature_algorithm.oid != SHA256_WITH_RSA {
        return Err(CertRefusal::Untrusted);
    }
    let tbs_der = tbs.to_der().map_err(|_| CertRefusal::Malformed)?;
    let signature = cert.signature.as_bytes().ok_or(CertRefusal::Malformed)?;
    if !anchor.signed(&tbs_der, signature) {
        return Err(CertRefusal::Untrusted);
    }
    let not_before = unix(tbs.validity.not_before.to_unix_duration());
    let not_after = unix(tbs.validity.not_after.to_unix_duration());
    if now_unix < not_before {
        return Err(CertRefusal::NotYetValid);
    }
    if now_unix > not_after {
        return Err(CertRefusal::Expired);
    }
    let spki = tbs
        .subject_public_key_info
        .to_der()
        .map_err(|_| CertRefusal::Malformed)?;
    let public_key =
        RsaPublicKey::from_public_key_der(&spki).map_err(|_| CertRefusal::Malformed)?;
    Ok(VerifiedCertificate {
        serial: trim_serial(tbs.serial_number.as_bytes()).to_vec(),
        public_key,
    })
}

/// The card's signature over a message (the card signs a SHA-256 DigestInfo, PKCS#1 v1.5).
pub fn verify_card_signature(key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
    key.verify(
        Pkcs1v15Sign::new::<Sha256>(),
        &Sha256::digest(message),
        signature,
    )
    .is_ok()
}

/// The serials a CA has revoked, from a CRL it signed and that was current when loaded.
#[derive(Clone, Debug)]
pub struct RevocationList {
    /// Trimmed like [`VerifiedCertificate::serial`], so the two compare byte for byte.
    revoked: BTreeSet<Vec<u8>>,
    this_update_unix: i64,
    next_update_unix: Option<i64>,
}

impl RevocationList {
    /// The list from a DER CRL: issuer equal to the anchor's subject, sha256WithRSA signature
    /// by the anchor, and `now_unix` before its next update when it announces one.
    pub fn from_der(crl_der: &[u8], anchor: &TrustAnchor, now_unix: i64) -> Result<Self, CrlError> {
        let crl =
            CertificateList::from_der(crl_der).map_err(|e| CrlError::Malformed(e.to_string()))?;
        let tbs = &crl.tbs_cert_list;
        // The inner algorithm is covered by the signature and must repeat the outer one
        // (RFC 5280 section 5.1.1.2); checking both leaves no room for a substituted algorithm.
        if tbs.issuer != anchor.subject
            || crl.signature_algorithm.oid != SHA256_WITH_RSA
            || tbs.signature.oid != SHA256_WITH_RSA
        {
            return Err(CrlError::Untrusted);
        }
        let tbs_der = tbs
            .to_der()
            .map_err(|e| CrlError::Malformed(e.to_string()))?;
        let signature = crl
            .signature
            .as_bytes()
            .ok_or_else(|| CrlError::Malformed("signature is not whole bytes".into()))?;
        if !anchor.signed(&tbs_der, signature) {
            return Err(CrlError::Untrusted);
        }
        let next_update_unix = tbs.next_update.map(|t| unix(t.to_unix_duration()));
        if let Some(next_update_unix) = next_update_unix
            && now_unix >= next_update_unix
        {
            return Err(CrlError::Stale { next_update_unix });
        }
        let revoked = tbs
            .revoked_certificates
            .iter()
            .flatten()
            .map(|entry| trim_serial(entry.serial_number.as_bytes()).to_vec())
            .collect();
        Ok(Self {
            revoked,
            this_update_unix: unix(tbs.this_update.to_unix_duration()),
            next_update_unix,
        })
    }

    /// The list from a CRL file's content: PEM (`-----BEGIN X509 CRL-----`) or raw DER.
    pub fn from_pem_or_der(
        bytes: &[u8],
        anchor: &TrustAnchor,
        now_unix: i64,
    ) -> Result<Self, CrlError> {
        let der = pem_or_der(bytes, PEM_CRL).map_err(CrlError::Pem)?;
        Self::from_der(&der, anchor, now_unix)
    }

    /// Whether the CA has revoked this certificate.
    pub fn is_revoked(&self, cert: &VerifiedCertificate) -> bool {
        self.revoked.contains(&cert.serial)
    }

    /// When the CA issued the list (seconds since the Unix epoch).
    pub fn this_update_unix(&self) -> i64 {
        self.this_update_unix
    }

    /// When the CA promises the next list, if it says; the list must be replaced before then.
    pub fn next_update_unix(&self) -> Option<i64> {
        self.next_update_unix
    }

    /// How many serials are revoked.
    pub fn len(&self) -> usize {
        self.revoked.len()
    }

    /// Whether no serial is revoked.
    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }
}

fn unix(duration: core::time::Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// DER integers carry a leading zero byte when the top bit is set; the serial's value does not.
fn trim_serial(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// The DER inside a file that is either raw DER or holds exactly one PEM block with `label`.
/// Text around the block (as `openssl x509 -text` writes) is allowed; a second block is not,
/// since silently ignoring part of a trust configuration would hide a mistake.
fn pem_or_der<'a>(bytes: &'a [u8], label: &str) -> Result<Cow<'a, [u8]>, &'static str> {
    const BEGIN_ANY: &[u8] = b"-----BEGIN ";
    // DER starts with a SEQUENCE tag (0x30), never with dashes, so this cannot misread DER
    // unless the DER is garbage anyway.
    let Some(first_begin) = find(bytes, BEGIN_ANY) else {
        return Ok(Cow::Borrowed(bytes));
    };
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = find(bytes, begin.as_bytes()).ok_or("no BEGIN line with the expected label")?;
    if start != first_begin {
        return Err("a PEM block with another label comes first");
    }
    let body_start = start + begin.len();
    let body_len = find(&bytes[body_start..], end.as_bytes()).ok_or("no END line")?;
    let body = &bytes[body_start..body_start + body_len];
    let rest = &bytes[body_start + body_len + end.len()..];
    if find(rest, BEGIN_ANY).is_some() {
        return Err("more than one PEM block");
    }
    let base64: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(&base64)
        .map(Cow::Owned)
        .map_err(|_| "body is not base64")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_with_serial(serial: &[u8]) -> VerifiedCertificate {
        VerifiedCertificate {
            serial: serial.to_vec(),
            public_key: RsaPublicKey::new_unchecked(
                rsa::BigUint::from(0xC5u32),
                rsa::BigUint::from(3u32),
            ),
        }
    }

    #[test]
    fn serials_read_big_endian_without_sign_padding() {
        assert_eq!(trim_serial(&[0, 0x27, 0x11]), &[0x27, 0x11]);
        assert_eq!(trim_serial(&[0, 0]), &[] as &[u8]);
        assert_eq!(cert_with_serial(&[0x27, 0x11]).serial_u64(), Some(10_001));
        assert_eq!(cert_with_serial(&[1; 9]).serial_u64(), None);
        assert_eq!(cert_with_serial(&[]).serial_u64(), Some(0));
    }

    #[test]
    fn pem_blocks_are_found_with_their_label_only() {
        let pem = b"subject=...\n-----BEGIN CERTIFICATE-----\r\nAAEC\r\nAw==\r\n-----END CERTIFICATE-----\n";
        assert_eq!(
            pem_or_der(pem, PEM_CERTIFICATE).as_deref(),
            Ok(&[0, 1, 2, 3][..])
        );
        assert!(pem_or_der(pem, PEM_CRL).is_err());
        assert_eq!(
            pem_or_der(b"\x30\x00", PEM_CRL).as_deref(),
            Ok(&[0x30, 0][..])
        );
        let two = [&pem[..], &pem[..]].concat();
        assert!(pem_or_der(&two, PEM_CERTIFICATE).is_err());
        assert!(pem_or_der(b"-----BEGIN CERTIFICATE-----\nAA!=\n", PEM_CERTIFICATE).is_err());
        assert!(
            pem_or_der(
                b"-----BEGIN CERTIFICATE-----\n%%%\n-----END CERTIFICATE-----",
                PEM_CERTIFICATE
            )
            .is_err()
        );
        assert!(pem_or_der(b"-----BEGIN ", PEM_CERTIFICATE).is_err());
    }
}
