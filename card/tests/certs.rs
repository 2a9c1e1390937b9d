//! Certificate and CRL verification (`uketsuke_card::certs`) against test CAs: the anchor's
//! own certificates pass, another CA's, tampered, expired, not-yet-valid and revoked ones do
//! not; CRLs must be the anchor's and current; PEM and DER files both load; garbage is refused
//! without panicking.
//!
//! Bundles of CA generations as J-LIS runs them (one DN, different keys, the older generation
//! ending while its cards are in use): each generation's certificates verify, a third key with
//! the same DN does not, the authority key identifier picks the generation, each CRL counts for
//! its own CA only, an ended generation's certificates are expired; the real J-LIS 2015 and
//! 2023 CA certificates (`../shared/field/jpki/`) load, alone and as one bundle file.

use std::sync::OnceLock;

use base64::Engine as _;
use rsa::pkcs1v15::{Signature, SigningKey};
use rsa::signature::{SignatureEncoding, Signer};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use uketsuke_card::certs::{
    BundleRefusal, CertError, CertRefusal, CrlError, RevocationList, TrustAnchor, TrustBundle,
    VerifiedCertificate, verify_card_signature, verify_certificate,
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

/// RSA key generation is the slow part: four keys per test binary (three CAs, one user).
struct Keys {
    ca: TestCa,
    other_ca: TestCa,
    user: RsaPrivateKey,
    /// Two generations like J-LIS's 2015 and 2023 CAs: same DN, different keys and validity.
    gen_2015: TestCa,
    gen_2023: TestCa,
}

/// The validity of J-LIS's CA generations (`openssl x509 -dates` of the field files).
const JLIS_2015_NOT_BEFORE: u64 = 1_445_310_493; // 2015-10-20T03:08:13Z
const JLIS_2015_NOT_AFTER: u64 = 1_760_885_999; // 2025-10-19T14:59:59Z
const JLIS_2023_NOT_BEFORE: u64 = 1_689_469_264; // 2023-07-16T01:01:04Z
const JLIS_2023_NOT_AFTER: u64 = 2_005_052_399; // 2033-07-15T14:59:59Z
/// 2025-01-01T00:00:00Z: both generations current.
const BOTH_CURRENT: i64 = 1_735_689_600;
/// 2024-01-01 .. 2028-12-31: a user certificate issued in the overlap, running past the 2015
/// generation's end as the cards of that time do.
const OVERLAP_NOT_BEFORE: u64 = 1_704_067_200;
const OVERLAP_NOT_AFTER: u64 = 1_861_833_600;

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let ca_key = generate_rsa_key(101).expect("CA key");
        Keys {
            ca: TestCa::from_key(ca_key.clone()).expect("test CA"),
            // Same name as `ca` (TestCa always uses one name): only the key tells them apart.
            other_ca: TestCa::from_seed(102).expect("other test CA"),
            user: generate_rsa_key(103).expect("user key"),
            gen_2015: TestCa::generation(ca_key, JLIS_2015_NOT_BEFORE, JLIS_2015_NOT_AFTER)
                .expect("2015 generation"),
            gen_2023: TestCa::generation(
                generate_rsa_key(104).expect("2023 key"),
                JLIS_2023_NOT_BEFORE,
                JLIS_2023_NOT_AFTER,
            )
            .expect("2023 generation"),
        }
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
    assert_eq!(list.next_update_unix(), NOW + DAY);

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

// --- Bundles of CA generations ----------------------------------------------------------

/// The two generations, 2015 first (index 0), 2023 second (index 1).
fn generations() -> TrustBundle {
    TrustBundle::new(vec![
        TrustAnchor::from_der(keys().gen_2015.certificate_der()).expect("2015 anchor"),
        TrustAnchor::from_der(keys().gen_2023.certificate_der()).expect("2023 anchor"),
    ])
    .expect("bundle")
}

fn issue_in_overlap(ca: &TestCa, serial: u64) -> Vec<u8> {
    ca.issue_user_certificate(
        &UserCertificateRequest {
            serial,
            subject_common_name: format!("UKETSUKE TEST USER {serial}"),
            not_before_unix: OVERLAP_NOT_BEFORE,
            not_after_unix: OVERLAP_NOT_AFTER,
        },
        &keys().user.to_public_key(),
    )
    .expect("user certificate")
}

#[test]
fn generations_share_the_dn_and_differ_in_key() {
    let k = keys();
    assert_eq!(k.gen_2015.name(), k.gen_2023.name());
    assert_eq!(k.gen_2015.name(), k.other_ca.name());
    assert_ne!(k.gen_2015.public_key(), k.gen_2023.public_key());
    assert_ne!(k.gen_2015.key_id(), k.gen_2023.key_id());
    let bundle = generations();
    assert_eq!(bundle.anchors().len(), 2);
    assert_eq!(bundle.anchors()[0].key_id(), Some(k.gen_2015.key_id()));
    assert_eq!(
        bundle.anchors()[0].not_after_unix(),
        JLIS_2015_NOT_AFTER as i64
    );
    assert_eq!(
        bundle.anchors()[1].not_before_unix(),
        JLIS_2023_NOT_BEFORE as i64
    );
}

#[test]
fn a_certificate_of_each_generation_verifies_against_the_bundle() {
    let bundle = generations();
    for (index, ca) in [&keys().gen_2015, &keys().gen_2023].into_iter().enumerate() {
        // The same serial under both: serials are per CA.
        let verified = bundle
            .verify_certificate(&issue_in_overlap(ca, SERIAL), BOTH_CURRENT)
            .expect("verifies");
        assert_eq!(verified.anchor, index);
        assert_eq!(verified.certificate.serial_u64(), Some(SERIAL));
        assert_eq!(verified.certificate.public_key, keys().user.to_public_key());
    }
    // Order does not matter: the 2023 generation listed first.
    let reversed = TrustBundle::new(vec![
        bundle.anchors()[1].clone(),
        bundle.anchors()[0].clone(),
    ])
    .expect("bundle");
    let verified = reversed
        .verify_certificate(&issue_in_overlap(&keys().gen_2015, SERIAL), BOTH_CURRENT)
        .expect("verifies");
    assert_eq!(verified.anchor, 1);
}

#[test]
fn a_third_key_with_the_same_dn_is_refused() {
    let der = issue_in_overlap(&keys().other_ca, SERIAL);
    assert_eq!(
        generations()
            .verify_certificate(&der, BOTH_CURRENT)
            .map(|v| v.anchor),
        Err(BundleRefusal {
            refusal: CertRefusal::Untrusted,
            anchor: None
        })
    );
}

/// The 2023 generation's certificate, re-signed after `edit` changed its body.
fn resigned_by_2023(edit: impl FnOnce(&mut x509_cert::TbsCertificate)) -> Vec<u8> {
    let der = issue_in_overlap(&keys().gen_2023, SERIAL);
    let mut tbs = Certificate::from_der(&der).expect("parses").tbs_certificate;
    edit(&mut tbs);
    keys().gen_2023.sign_certificate(tbs).expect("signs")
}

const AKI_OID: &str = "2.5.29.35";

#[test]
fn the_authority_key_identifier_chooses_the_anchor() {
    let bundle = generations();
    // Without an authority key identifier every same-DN key is tried: the signature decides.
    let no_aki = resigned_by_2023(|tbs| {
        if let Some(extensions) = tbs.extensions.as_mut() {
            extensions.retain(|e| e.extn_id.to_string() != AKI_OID);
        }
    });
    let verified = bundle
        .verify_certificate(&no_aki, BOTH_CURRENT)
        .expect("verifies by key");
    assert_eq!(verified.anchor, 1);
    // Naming the 2015 key while signed by the 2023 key: neither anchor may take it.
    let wrong_aki = resigned_by_2023(|tbs| {
        let ours = keys().gen_2023.key_id().to_vec();
        let theirs = keys().gen_2015.key_id().to_vec();
        for e in tbs.extensions.iter_mut().flatten() {
            if e.extn_id.to_string() == AKI_OID {
                let mut value = e.extn_value.as_bytes().to_vec();
                let at = value
                    .windows(ours.len())
                    .position(|w| w == ours.as_slice())
                    .expect("key id inside the extension");
                value[at..at + ours.len()].copy_from_slice(&theirs);
                e.extn_value = x509_cert::der::asn1::OctetString::new(value).expect("octets");
            }
        }
    });
    assert_eq!(
        bundle
            .verify_certificate(&wrong_aki, BOTH_CURRENT)
            .map(|v| v.anchor),
        Err(BundleRefusal {
            refusal: CertRefusal::Untrusted,
            anchor: None
        })
    );
}

#[test]
fn each_crl_counts_for_its_own_ca_only() {
    let bundle = generations();
    let k = keys();
    let crl_2015 = k
        .gen_2015
        .issue_crl(&[SERIAL], BOTH_CURRENT - DAY, BOTH_CURRENT + DAY);
    let crl_2023 = k
        .gen_2023
        .issue_crl(&[7], BOTH_CURRENT - DAY, BOTH_CURRENT + DAY);
    let (index_2015, list_2015) = bundle
        .revocation_list(&crl_2015.expect("CRL"), BOTH_CURRENT)
        .expect("2015 list");
    let (index_2023, list_2023) = bundle
        .revocation_list_from_pem_or_der(&pem("X509 CRL", &crl_2023.expect("CRL")), BOTH_CURRENT)
        .expect("2023 list");
    assert_eq!((index_2015, index_2023), (0, 1));

    // Serial 42 is revoked by the 2015 CA; the 2023 CA's serial 42 is another card.
    let old = bundle
        .verify_certificate(&issue_in_overlap(&k.gen_2015, SERIAL), BOTH_CURRENT)
        .expect("verifies");
    let new = bundle
        .verify_certificate(&issue_in_overlap(&k.gen_2023, SERIAL), BOTH_CURRENT)
        .expect("verifies");
    let lists = [&list_2015, &list_2023];
    assert!(lists[old.anchor].is_revoked(&old.certificate));
    assert!(!lists[new.anchor].is_revoked(&new.certificate));

    // A CRL of a third key with the same DN belongs to no CA of the bundle.
    let foreign = k
        .other_ca
        .issue_crl(&[SERIAL], BOTH_CURRENT - DAY, BOTH_CURRENT + DAY)
        .expect("CRL");
    let hex = |id: &[u8]| {
        id.iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    assert_eq!(
        bundle.revocation_list(&foreign, BOTH_CURRENT).map(|_| ()),
        Err(CrlError::NoIssuerInBundle {
            key_id: Some(hex(k.other_ca.key_id()))
        })
    );
    // One anchor: the other generation's list is refused.
    let anchor_2015 = bundle.anchors()[0].clone();
    let crl_2023 = k
        .gen_2023
        .issue_crl(&[7], BOTH_CURRENT - DAY, BOTH_CURRENT + DAY)
        .expect("CRL");
    assert_eq!(
        RevocationList::from_der(&crl_2023, &anchor_2015, BOTH_CURRENT).map(|_| ()),
        Err(CrlError::Untrusted)
    );
    // A stale list is refused in a bundle too.
    let stale = k
        .gen_2023
        .issue_crl(&[7], BOTH_CURRENT - 2 * DAY, BOTH_CURRENT - DAY)
        .expect("CRL");
    assert!(matches!(
        bundle.revocation_list(&stale, BOTH_CURRENT),
        Err(CrlError::Stale { .. })
    ));
}

#[test]
fn an_ended_generations_certificate_is_expired_not_untrusted() {
    let bundle = generations();
    let old = issue_in_overlap(&keys().gen_2015, SERIAL);
    let new = issue_in_overlap(&keys().gen_2023, SERIAL);
    let ended = JLIS_2015_NOT_AFTER as i64;
    // The certificate's own validity runs to 2028; its CA's ends 2025-10-19T14:59:59Z.
    assert!(bundle.verify_certificate(&old, ended).is_ok());
    for now in [ended + 1, NOW, OVERLAP_NOT_AFTER as i64] {
        assert_eq!(
            bundle.verify_certificate(&old, now).map(|v| v.anchor),
            Err(BundleRefusal {
                refusal: CertRefusal::Expired,
                anchor: Some(0)
            }),
            "{now}"
        );
        assert!(bundle.anchors()[0].has_ended(now));
        assert_eq!(
            bundle.verify_certificate(&new, now).map(|v| v.anchor).ok(),
            Some(1)
        );
    }
    // The single-anchor check says the same.
    assert_eq!(
        verify_certificate(&old, &bundle.anchors()[0], NOW).map(|_| ()),
        Err(CertRefusal::Expired)
    );
    // Before a generation began, its certificates are not yet valid.
    let early = keys()
        .gen_2023
        .issue_user_certificate(
            &UserCertificateRequest {
                serial: SERIAL,
                subject_common_name: "UKETSUKE TEST USER EARLY".into(),
                not_before_unix: OVERLAP_NOT_BEFORE - 365 * 86_400,
                not_after_unix: OVERLAP_NOT_AFTER,
            },
            &keys().user.to_public_key(),
        )
        .expect("certificate");
    assert_eq!(
        bundle
            .verify_certificate(&early, JLIS_2023_NOT_BEFORE as i64 - 1)
            .map(|v| v.anchor),
        Err(BundleRefusal {
            refusal: CertRefusal::NotYetValid,
            anchor: Some(1)
        })
    );
}

#[test]
fn bundle_files_hold_several_certificates() {
    let k = keys();
    let file = [
        pem("CERTIFICATE", k.gen_2015.certificate_der()),
        b"\n# the 2023 generation\n".to_vec(),
        pem("CERTIFICATE", k.gen_2023.certificate_der()),
    ]
    .concat();
    let anchors = TrustAnchor::all_from_pem_or_der(&file).expect("bundle file");
    assert_eq!(anchors.len(), 2);
    assert_eq!(anchors[1].key_id(), Some(k.gen_2023.key_id()));
    // A DER file is one certificate.
    let anchors = TrustAnchor::all_from_pem_or_der(k.gen_2023.certificate_der()).expect("DER");
    assert_eq!(anchors.len(), 1);
    // The same CA twice (two files, or twice in one) is one anchor.
    let twice = TrustAnchor::all_from_pem_or_der(&[file.clone(), file].concat()).expect("file");
    assert_eq!(twice.len(), 4);
    assert_eq!(TrustBundle::new(twice).expect("bundle").anchors().len(), 2);
    assert_eq!(
        TrustBundle::new(Vec::new()).map(|_| ()),
        Err(CertError::Empty)
    );
}

#[test]
fn bundles_with_garbage_or_a_user_certificate_are_refused() {
    let k = keys();
    let ca = pem("CERTIFICATE", k.gen_2015.certificate_der());
    let user = pem("CERTIFICATE", &issue_in_overlap(&k.gen_2015, SERIAL));
    let error = TrustAnchor::all_from_pem_or_der(&[ca.clone(), user.clone()].concat())
        .map(|_| ())
        .expect_err("user certificate in the bundle");
    assert_eq!(
        error,
        CertError::InFile {
            number: 2,
            total: 2,
            error: Box::new(CertError::NotCa("basicConstraints says cA = FALSE")),
        }
    );
    assert_eq!(
        error.to_string(),
        "certificate 2 of 2: not a CA certificate: basicConstraints says cA = FALSE"
    );
    // Alone, a user certificate is no anchor either.
    assert!(matches!(
        TrustAnchor::from_pem_or_der(&user),
        Err(CertError::NotCa(_))
    ));
    let garbage = b"-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n";
    let error = TrustAnchor::all_from_pem_or_der(&[garbage.to_vec(), ca.clone()].concat())
        .map(|_| ())
        .expect_err("garbage block");
    assert!(
        matches!(&error, CertError::InFile { number: 1, total: 2, error } if matches!(**error, CertError::Malformed(_))),
        "{error:?}"
    );
    for (file, what) in [
        (b"".to_vec(), "empty"),
        (b" \n\r\n".to_vec(), "blank"),
        (b"not a certificate at all".to_vec(), "text"),
        (
            [ca.clone(), pem("X509 CRL", &[0x30, 0])].concat(),
            "a CRL block",
        ),
        (
            [ca.clone(), b"-----BEGIN CERTIFICATE-----\nAAAA\n".to_vec()].concat(),
            "no END",
        ),
        (
            [
                ca.clone(),
                b"-----BEGIN CERTIFICATE-----\n%%%\n-----END CERTIFICATE-----".to_vec(),
            ]
            .concat(),
            "not base64",
        ),
    ] {
        let result = TrustAnchor::all_from_pem_or_der(&file);
        assert!(result.is_err(), "{what}: {result:?}");
        assert!(
            !result.map(|_| ()).unwrap_err().to_string().contains('\n'),
            "{what}"
        );
    }
}

/// The real J-LIS CA certificates for 利用者証明用電子証明書 (../shared/field/jpki/, as J-LIS
/// publishes them).
/// The field data (real data made by others: `jpki/`, `readers/`, `codes/`): `SHARED_FIELD_DIR`
/// if set, else `shared/field` beside the checkout, where CI has it.
fn field_dir() -> std::path::PathBuf {
    std::env::var_os("SHARED_FIELD_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/field"),
        std::path::PathBuf::from,
    )
}

fn field(name: &str) -> Vec<u8> {
    let path = field_dir().join("jpki").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("field file {}: {e}", path.display()))
}

#[test]
fn the_real_jlis_ca_generations_load() {
    let a2015 = TrustAnchor::from_pem_or_der(&field("jpki_auth_ca_2015.pem")).expect("2015");
    let a2023 = TrustAnchor::from_pem_or_der(&field("jpki_auth_ca_2023.pem")).expect("2023");
    assert_eq!(a2015.subject(), a2023.subject());
    assert_eq!(
        a2015.subject().to_string(),
        "OU=Japan Agency for Local Authority Information Systems,OU=JPKI for user authentication,O=JPKI,C=JP"
    );
    assert_ne!(a2015.public_key(), a2023.public_key());
    assert_eq!(
        a2015.key_id_hex(),
        "95:67:95:1B:5C:A7:0D:84:A0:FF:F1:D8:5A:87:F1:AA:B1:34:03:85"
    );
    assert_eq!(
        a2023.key_id_hex(),
        "1A:C1:00:F5:96:A3:BC:8C:4B:3D:F1:95:E3:26:99:24:9E:9E:30:8A"
    );
    assert_eq!(a2015.not_after_unix(), JLIS_2015_NOT_AFTER as i64);
    assert_eq!(a2023.not_before_unix(), JLIS_2023_NOT_BEFORE as i64);
    assert_eq!(a2023.not_after_unix(), JLIS_2023_NOT_AFTER as i64);
    assert!(a2015.has_ended(NOW) && !a2023.has_ended(NOW));

    // One bundle file with both.
    let one_file = [
        field("jpki_auth_ca_2015.pem"),
        field("jpki_auth_ca_2023.pem"),
    ]
    .concat();
    let anchors = TrustAnchor::all_from_pem_or_der(&one_file).expect("bundle file");
    let bundle = TrustBundle::new(anchors).expect("bundle");
    let ids: Vec<String> = bundle.anchors().iter().map(|a| a.key_id_hex()).collect();
    assert_eq!(ids, [a2015.key_id_hex(), a2023.key_id_hex()]);

    // Our test certificates do not chain to J-LIS.
    let ours = issue_in_overlap(&keys().gen_2023, SERIAL);
    assert_eq!(
        bundle.verify_certificate(&ours, BOTH_CURRENT).map(|_| ()),
        Err(BundleRefusal {
            refusal: CertRefusal::Untrusted,
            anchor: None
        })
    );
}

// Issue 12, "Revocation fails closed": the user-certificate profile, critical extensions, and
// lists that go stale or back.

/// The test CA's own user certificate carries what a JPKI 利用者証明用電子証明書 carries for
/// this check (basicConstraints cA = FALSE, keyUsage with digitalSignature), and passes.
#[test]
fn the_test_cas_user_certificates_fit_the_user_authentication_profile() {
    let cert = Certificate::from_der(&issue(&keys().ca, SERIAL)).expect("DER");
    let extensions = cert.tbs_certificate.extensions.unwrap_or_default();
    assert_eq!(
        uketsuke_card::certs::check_user_certificate_profile(&extensions),
        Ok(())
    );
}

#[test]
fn other_certificate_types_under_the_anchor_are_wrong_type() {
    use uketsuke_card::test_ca::Deviation;
    let ca = &keys().ca;
    let original = issue(ca, SERIAL);
    let check = |deviation| {
        let der = ca
            .reissue_user_certificate(&original, deviation)
            .expect("re-issued");
        verify_certificate(&der, &anchor(), NOW).map(|c| c.serial_u64())
    };
    for deviation in [
        Deviation::CaCertificate,
        Deviation::SignatureCertificate,
        Deviation::SignaturePolicy,
        Deviation::KeyEnciphermentOnly,
        Deviation::NoKeyUsage,
        Deviation::EmailProtectionOnly,
    ] {
        assert_eq!(
            check(deviation),
            Err(CertRefusal::WrongType),
            "{deviation:?}"
        );
    }
    // What a user-authentication certificate may carry stays accepted.
    assert_eq!(check(Deviation::ClientAuth), Ok(Some(SERIAL)));
    assert_eq!(
        check(Deviation::UnknownNonCriticalExtension),
        Ok(Some(SERIAL))
    );
    // A critical extension nobody knows, and a second basicConstraints behind the first.
    assert_eq!(
        check(Deviation::UnknownCriticalExtension),
        Err(CertRefusal::Untrusted)
    );
    assert_eq!(
        check(Deviation::DuplicateBasicConstraints),
        Err(CertRefusal::Malformed)
    );
    // The bundle names the CA that signed the refused certificate.
    let bundle = TrustBundle::new(vec![anchor()]).expect("bundle");
    let ca_cert = ca
        .reissue_user_certificate(&original, Deviation::CaCertificate)
        .expect("re-issued");
    assert_eq!(
        bundle.verify_certificate(&ca_cert, NOW).map(|v| v.anchor),
        Err(BundleRefusal {
            refusal: CertRefusal::WrongType,
            anchor: Some(0),
        })
    );
    // The test CA's own certificate is a CA certificate, not a user's.
    assert_eq!(
        verify_certificate(ca.certificate_der(), &anchor(), NOW).map(|c| c.serial_u64()),
        Err(CertRefusal::WrongType)
    );
}

fn crl_with(
    deviation: Option<uketsuke_card::test_ca::CrlDeviation>,
    crl_number: Option<u64>,
    next_update: Option<i64>,
) -> Vec<u8> {
    keys()
        .ca
        .issue_crl_with(&uketsuke_card::test_ca::CrlRequest {
            revoked_serials: &[SERIAL],
            this_update_unix: NOW - DAY,
            next_update_unix: next_update,
            crl_number,
            deviation,
        })
        .expect("CRL")
}

#[test]
fn lists_with_critical_extensions_unknown_or_partial_are_refused() {
    use uketsuke_card::test_ca::{CrlDeviation, UNKNOWN_EXTENSION};
    let load = |der: &[u8]| RevocationList::from_der(der, &anchor(), NOW).map(|l| l.len());
    assert_eq!(load(&crl_with(None, Some(7), Some(NOW + DAY))), Ok(1));
    assert_eq!(
        load(&crl_with(
            Some(CrlDeviation::UnknownCriticalExtension),
            Some(7),
            Some(NOW + DAY)
        )),
        Err(CrlError::UnsupportedCriticalExtension {
            oid: UNKNOWN_EXTENSION.to_string(),
            in_entry: false
        })
    );
    assert_eq!(
        load(&crl_with(
            Some(CrlDeviation::UnknownCriticalEntryExtension),
            Some(7),
            Some(NOW + DAY)
        )),
        Err(CrlError::UnsupportedCriticalExtension {
            oid: UNKNOWN_EXTENSION.to_string(),
            in_entry: true
        })
    );
    assert_eq!(
        load(&crl_with(
            Some(CrlDeviation::DeltaCrl),
            Some(7),
            Some(NOW + DAY)
        )),
        Err(CrlError::UnsupportedCriticalExtension {
            oid: "2.5.29.27".to_owned(),
            in_entry: false
        })
    );
    let partial = load(&crl_with(
        Some(CrlDeviation::OnlySomeReasons),
        Some(7),
        Some(NOW + DAY),
    ));
    assert!(matches!(partial, Err(CrlError::Partial(_))), "{partial:?}");
    let partition = load(&crl_with(
        Some(CrlDeviation::Partition),
        Some(7),
        Some(NOW + DAY),
    ));
    assert!(
        matches!(partition, Err(CrlError::Partial(_))),
        "{partition:?}"
    );
    // No nextUpdate: it could never be seen to go stale.
    assert_eq!(
        load(&crl_with(None, Some(7), None)),
        Err(CrlError::NoNextUpdate)
    );
}

#[test]
fn a_list_goes_stale_at_its_next_update_and_never_goes_back() {
    let list = |number: Option<u64>, this_update: i64| {
        let der = keys()
            .ca
            .issue_crl_with(&uketsuke_card::test_ca::CrlRequest {
                revoked_serials: &[],
                this_update_unix: this_update,
                next_update_unix: Some(this_update + 3 * DAY),
                crl_number: number,
                deviation: None,
            })
            .expect("CRL");
        RevocationList::from_der(&der, &anchor(), NOW).expect("current")
    };
    let in_force = list(Some(100), NOW - DAY);
    assert_eq!(in_force.crl_number(), Some(&[100u8][..]));
    // Stale exactly at nextUpdate (grace 0), or after a grace.
    let next = in_force.next_update_unix();
    assert!(!in_force.is_stale_at(next - 1, 0));
    assert!(in_force.is_stale_at(next, 0));
    assert!(!in_force.is_stale_at(next, 60));
    assert!(in_force.is_stale_at(next + 60, 60));

    // Newer, or the same list again: fine.
    assert_eq!(
        list(Some(101), NOW - DAY + 1).may_replace(&in_force),
        Ok(())
    );
    assert_eq!(list(Some(100), NOW - DAY).may_replace(&in_force), Ok(()));
    // A lower number (even issued "later"), an earlier thisUpdate, or a lost number: older.
    for older in [
        list(Some(99), NOW - DAY + 1),
        list(Some(101), NOW - 2 * DAY),
        list(None, NOW - DAY + 1),
    ] {
        assert!(
            matches!(older.may_replace(&in_force), Err(CrlError::Older(_))),
            "{older:?}"
        );
    }
    // Numbers are compared as numbers, not as byte strings: 256 is above 255.
    assert_eq!(
        list(Some(256), NOW - DAY).may_replace(&list(Some(255), NOW - DAY)),
        Ok(())
    );
}
