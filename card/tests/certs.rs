//! Certificate and CRL verification (`uketsuke_card::certs`) against test CAs: the anchor's
//! own certificates pass, another CA's, tampered, expired, not-yet-valid and revoked ones do
//! not; CRLs must be the anchor's and current; PEM and DER files both load; garbage is refused
//! without panicking.

use std::sync::OnceLock;

use base64::Engine as _;
use rsa::pkcs1v15::{Signature, SigningKey};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use uketsuke_card::certs::{
    CertError, CertRefusal, CrlError, RevocationList, TrustAnchor, VerifiedCertificate,
    verify_card_signature, verify_certificate,
};
use uketsuke_card::test_ca::{TestCa, UserCertificateRequest, generate_rsa_key};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

/// 2025-01-01T00:00:00Z .. 2030-01-01T00:00:00Z: the user certificates' validity.
const NOT_BEFORE: u64 = 1_735_689_600;
const NOT_AFTER: u64 = 1_893_456_000;
/// 2026-01-01T00:00:00Z: "now" for most checks.
const NOW: i64 = 1_767_225_600;
const DAY: i64 = 86_400;
const SERIAL: u64 = 42;
/// Top bit set: DER pads it with a zero byte, which neither side may count.
const HIGH_SERIAL: u64 = 0x8000_0000_0000_0001;

/// RSA key generation is the slow part: two CAs and one user key per test binary.
struct Keys {
    ca: TestCa,
    other_ca: TestCa,
    user: RsaPrivateKey,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        ca: TestCa::from_seed(101).expect("test CA"),
        // Same name as `ca` (TestCa always uses one name): only the signature tells them apart.
        other_ca: TestCa::from_seed(102).expect("other test CA"),
        user: generate_rsa_key(103).expect("user key"),
    })
}

fn anchor() -> TrustAnchor {
    TrustAnchor::from_der(keys().ca.certificate_der()).expect("anchor")
}

fn issue(ca: &TestCa, serial: u64) -> Vec<u8> {
    ca.issue_user_certificate(
        &UserCertificateRequest {
            serial,
            subject_common_name: format!("UKETSUKE TEST USER {serial}"),
            not_before_unix: NOT_BEFORE,
            not_after_unix: NOT_AFTER,
        },
        &keys().user.to_public_key(),
    )
    .expect("user certificate")
}

fn verified(serial: u64) -> VerifiedCertificate {
    verify_certificate(&issue(&keys().ca, serial), &anchor(), NOW).expect("verifies")
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out =
        format!("Comment before the block, as openssl writes it\r\n-----BEGIN {label}-----\r\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push_str("\r\n");
    }
    out.push_str(&format!("-----END {label}-----\r\n"));
    out.into_bytes()
}

#[test]
fn the_anchors_certificate_verifies() {
    let cert = verified(SERIAL);
    assert_eq!(cert.serial, vec![SERIAL as u8]);
    assert_eq!(cert.serial_u64(), Some(SERIAL));
    assert_eq!(cert.public_key, keys().user.to_public_key());
    assert_eq!(anchor().subject(), keys().ca.name());
    assert_eq!(anchor().public_key(), keys().ca.public_key());

    let high = verified(HIGH_SERIAL);
    assert_eq!(high.serial, HIGH_SERIAL.to_be_bytes().to_vec());
    assert_eq!(high.serial_u64(), Some(HIGH_SERIAL));
}

#[test]
fn card_signatures_verify_over_the_message_only() {
    let message = b"uketsuke binding message";
    let signer = SigningKey::<Sha256>::new(keys().user.clone());
    let signature: Signature = signer.sign(message);
    let signature = signature.to_bytes();
    let key: RsaPublicKey = verified(SERIAL).public_key;
    assert!(verify_card_signature(&key, message, &signature));
    assert!(!verify_card_signature(&key, b"another message", &signature));
    let mut bad = signature.to_vec();
    bad[10] ^= 1;
    assert!(!verify_card_signature(&key, message, &bad));
    assert!(!verify_card_signature(&key, message, &[]));
    assert!(!verify_card_signature(&key, message, &[0xFF; 1024]));
}

#[test]
fn another_cas_certificate_is_untrusted() {
    let der = issue(&keys().other_ca, SERIAL);
    assert_eq!(
        verify_certificate(&der, &anchor(), NOW).map(|_| ()),
        Err(CertRefusal::Untrusted)
    );
}

#[test]
fn a_tampered_signed_byte_is_refused() {
    let der = issue(&keys().ca, SERIAL);
    let tbs = Certificate::from_der(&der)
        .expect("parses")
        .tbs_certificate
        .to_der()
        .expect("encodes");
    // Outer SEQUENCE header with a two-byte length, then the signed part.
    let start = 4;
    assert_eq!(&der[start..start + tbs.len()], &tbs[..]);
    let signature_last = der.len() - 1;
    let anchor = anchor();
    for i in (start..start + tbs.len()).chain([signature_last]) {
        let mut tampered = der.clone();
        tampered[i] ^= 0x01;
        let result = verify_certificate(&tampered, &anchor, NOW).map(|_| ());
        assert!(
            matches!(result, Err(CertRefusal::Malformed | CertRefusal::Untrusted)),
            "byte {i}: {result:?}"
        );
    }
}

#[test]
fn validity_bounds_are_inclusive() {
    let der = issue(&keys().ca, SERIAL);
    let anchor = anchor();
    let at = |now: i64| verify_certificate(&der, &anchor, now).map(|_| ());
    let (not_before, not_after) = (NOT_BEFORE as i64, NOT_AFTER as i64);
    assert_eq!(at(not_before - 1), Err(CertRefusal::NotYetValid));
    assert_eq!(at(not_before), Ok(()));
    assert_eq!(at(not_after), Ok(()));
    assert_eq!(at(not_after + 1), Err(CertRefusal::Expired));
    assert_eq!(at(i64::MIN), Err(CertRefusal::NotYetValid));
    assert_eq!(at(i64::MAX), Err(CertRefusal::Expired));
}

#[test]
fn a_crl_lists_exactly_its_serials() {
    let crl = keys()
        .ca
        .issue_crl(&[SERIAL, HIGH_SERIAL], NOW - DAY, NOW + DAY)
        .expect("CRL");
    let list = RevocationList::from_der(&crl, &anchor(), NOW).expect("CRL verifies");
    assert!(list.is_revoked(&verified(SERIAL)));
    assert!(list.is_revoked(&verified(HIGH_SERIAL)));
    assert!(!list.is_revoked(&verified(SERIAL + 1)));
    assert_eq!(list.len(), 2);
    assert_eq!(list.this_update_unix(), NOW - DAY);
    assert_eq!(list.next_update_unix(), Some(NOW + DAY));

    let empty = keys().ca.issue_crl(&[], NOW - DAY, NOW + DAY).expect("CRL");
    let empty = RevocationList::from_der(&empty, &anchor(), NOW).expect("empty CRL verifies");
    assert!(empty.is_empty());
    assert!(!empty.is_revoked(&verified(SERIAL)));
}

#[test]
fn another_cas_crl_is_refused() {
    let crl = keys()
        .other_ca
        .issue_crl(&[SERIAL], NOW - DAY, NOW + DAY)
        .expect("CRL");
    assert_eq!(
        RevocationList::from_der(&crl, &anchor(), NOW).map(|_| ()),
        Err(CrlError::Untrusted)
    );
}

#[test]
fn a_tampered_crl_is_refused() {
    let crl = keys()
        .ca
        .issue_crl(&[SERIAL], NOW - DAY, NOW + DAY)
        .expect("CRL");
    let anchor = anchor();
    for i in 0..crl.len() {
        let mut tampered = crl.clone();
        tampered[i] ^= 0x01;
        if let Ok(list) = RevocationList::from_der(&tampered, &anchor, NOW) {
            // Only bytes outside the signed part may change without notice (the outer
            // algorithm's NULL parameters); the revoked serials must still be the same.
            assert!(list.is_revoked(&verified(SERIAL)), "byte {i}");
            assert_eq!(list.len(), 1, "byte {i}");
        }
    }
}

#[test]
fn a_stale_crl_is_refused() {
    let crl = keys()
        .ca
        .issue_crl(&[SERIAL], NOW - 2 * DAY, NOW - DAY)
        .expect("CRL");
    assert_eq!(
        RevocationList::from_der(&crl, &anchor(), NOW).map(|_| ()),
        Err(CrlError::Stale {
            next_update_unix: NOW - DAY
        })
    );
    // Stale from the very second of its next update.
    assert!(matches!(
        RevocationList::from_der(&crl, &anchor(), NOW - DAY),
        Err(CrlError::Stale { .. })
    ));
    assert!(RevocationList::from_der(&crl, &anchor(), NOW - DAY - 1).is_ok());
}

#[test]
fn crl_requests_that_make_no_sense_are_refused() {
    let ca = &keys().ca;
    assert!(ca.issue_crl(&[SERIAL], NOW, NOW).is_err());
    assert!(ca.issue_crl(&[SERIAL], -1, NOW).is_err());
    assert!(ca.issue_crl(&[0], NOW - DAY, NOW + DAY).is_err());
}

#[test]
fn pem_and_der_files_both_load() {
    let ca_der = keys().ca.certificate_der();
    let from_der = TrustAnchor::from_pem_or_der(ca_der).expect("DER anchor");
    let from_pem = TrustAnchor::from_pem_or_der(&pem("CERTIFICATE", ca_der)).expect("PEM anchor");
    assert_eq!(from_der.subject(), from_pem.subject());
    assert_eq!(from_der.public_key(), from_pem.public_key());
    verify_certificate(&issue(&keys().ca, SERIAL), &from_pem, NOW).expect("PEM anchor verifies");

    let crl = keys()
        .ca
        .issue_crl(&[SERIAL], NOW - DAY, NOW + DAY)
        .expect("CRL");
    for file in [crl.clone(), pem("X509 CRL", &crl)] {
        let list = RevocationList::from_pem_or_der(&file, &from_pem, NOW).expect("CRL loads");
        assert!(list.is_revoked(&verified(SERIAL)));
    }
    // A PEM file with the wrong label is refused, not guessed at.
    assert!(matches!(
        TrustAnchor::from_pem_or_der(&pem("X509 CRL", ca_der)),
        Err(CertError::Pem(_))
    ));
    assert!(matches!(
        RevocationList::from_pem_or_der(&pem("CERTIFICATE", &crl), &from_pem, NOW),
        Err(CrlError::Pem(_))
    ));
    // Two certificates in one anchor file: refused rather than half read.
    let two = [pem("CERTIFICATE", ca_der), pem("CERTIFICATE", ca_der)].concat();
    assert!(TrustAnchor::from_pem_or_der(&two).is_err());
}

/// A small deterministic generator for garbage (xorshift64*).
struct Garbage(u64);

impl Garbage {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn garbage_gives_errors_not_panics() {
    let anchor = anchor();
    let cert = issue(&keys().ca, SERIAL);
    let crl = keys()
        .ca
        .issue_crl(&[SERIAL], NOW - DAY, NOW + DAY)
        .expect("CRL");
    let ca_der = keys().ca.certificate_der().to_vec();

    let mut inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0x30],
        vec![0x30, 0x80],
        vec![0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF],
        b"-----BEGIN CERTIFICATE-----".to_vec(),
        b"-----BEGIN X509 CRL-----\n-----END X509 CRL-----".to_vec(),
        b"-----BEGIN CERTIFICATE-----\n\xFF\xFE\n-----END CERTIFICATE-----".to_vec(),
        b"-----BEGIN ".to_vec(),
        "-----BEGIN CERTIFICATE-----\nあいう\n-----END CERTIFICATE-----"
            .as_bytes()
            .to_vec(),
    ];
    // Every prefix of the real files.
    for source in [&cert, &crl, &ca_der] {
        inputs.extend((0..source.len()).map(|n| source[..n].to_vec()));
    }
    // Random bytes, and the real files with random bytes overwritten.
    let mut garbage = Garbage(0x5EED_0000_0000_0001);
    for round in 0..300 {
        inputs.push(garbage.bytes(round * 4));
        for source in [&cert, &crl, &ca_der] {
            let mut mutated = source.clone();
            for _ in 0..1 + round % 4 {
                let at = garbage.next() as usize % mutated.len();
                mutated[at] = garbage.next() as u8;
            }
            inputs.push(mutated);
        }
    }

    for input in &inputs {
        // Any answer is fine as long as it is an answer; the prefixes must all be refused.
        let _ = verify_certificate(input, &anchor, NOW);
        let _ = TrustAnchor::from_der(input);
        let _ = TrustAnchor::from_pem_or_der(input);
        let _ = RevocationList::from_der(input, &anchor, NOW);
        let _ = RevocationList::from_pem_or_der(input, &anchor, NOW);
    }
    for source in [&cert, &crl, &ca_der] {
        for n in 0..source.len() {
            assert_eq!(
                verify_certificate(&source[..n], &anchor, NOW).map(|_| ()),
                Err(CertRefusal::Malformed)
            );
            assert!(TrustAnchor::from_pem_or_der(&source[..n]).is_err());
            assert!(RevocationList::from_pem_or_der(&source[..n], &anchor, NOW).is_err());
        }
    }
    // The wrong kind of file in each place.
    assert_eq!(
        verify_certificate(&crl, &anchor, NOW).map(|_| ()),
        Err(CertRefusal::Malformed)
    );
    assert!(TrustAnchor::from_der(&crl).is_err());
    assert!(RevocationList::from_der(&cert, &anchor, NOW).is_err());
}

#[test]
fn refusals_read_in_english() {
    assert_eq!(CertRefusal::Expired.to_string(), "certificate has expired");
    assert_eq!(
        CertRefusal::Revoked.to_string(),
        "certificate has been revoked"
    );
    assert!(
        CrlError::Stale {
            next_update_unix: 1
        }
        .to_string()
        .contains("stale")
    );
}
