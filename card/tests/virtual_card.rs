//! The JPKI client against the virtual card directly, without a reader in between.

mod common;

use common::*;
use uketsuke_card::jpki::{EF_USER_AUTH_CA_CERT, JpkiAp, ReadOptions};
use uketsuke_card::{
    JpkiError, PinStatus, Transport, authenticate, pin_status, read_certificate_without_pin,
};
use x509_cert::Certificate;
use x509_cert::der::Decode;

#[test]
fn full_authentication_signature_verifies() {
    let mut card = card();
    let auth = run(authenticate(&mut card, &pin(), CHALLENGE)).expect("authentication");
    assert_eq!(auth.certificate_der, card.certificate_der());
    assert_eq!(auth.signature.len(), 256);
    assert_signature_verifies(&auth.certificate_der, CHALLENGE, &auth.signature);
}

#[test]
fn certificate_is_issued_by_the_test_ca() {
    let cert_der = run(read_certificate_without_pin(card())).expect("read certificate");
    let cert = Certificate::from_der(&cert_der).expect("parses");
    let issuer = cert.tbs_certificate.issuer.to_string();
    assert!(
        issuer.contains("Uketsuke Test JPKI User Authentication CA"),
        "{issuer}"
    );
    assert!(
        cert.tbs_certificate
            .subject
            .to_string()
            .contains("UKETSUKE TEST CARD 2")
    );
    let ca_cert = Certificate::from_der(ca().certificate_der()).expect("CA parses");
    assert_eq!(ca_cert.tbs_certificate.subject, cert.tbs_certificate.issuer);
}

#[test]
fn reads_ca_certificate_with_short_and_extended_chunks() {
    for max_chunk in [0xFF, 0x10, 0x7FF] {
        let mut ap = JpkiAp::with_options(card(), ReadOptions { max_chunk });
        run(ap.select_ap()).expect("select");
        let der = run(ap.read_certificate(EF_USER_AUTH_CA_CERT)).expect("read CA cert");
        assert_eq!(der, ca().certificate_der(), "chunk {max_chunk}");
    }
}

#[test]
fn wrong_pin_twice_then_right_resets_counter() {
    let mut card = card();
    assert_eq!(run(pin_status(&mut card)), Ok(PinStatus::TriesLeft(3)));
    assert_eq!(
        run(authenticate(&mut card, &wrong_pin(), CHALLENGE)),
        Err(JpkiError::WrongPin { tries_left: 2 })
    );
    assert_eq!(run(pin_status(&mut card)), Ok(PinStatus::TriesLeft(2)));
    assert_eq!(
        run(authenticate(&mut card, &wrong_pin(), CHALLENGE)),
        Err(JpkiError::WrongPin { tries_left: 1 })
    );
    assert_eq!(card.tries_left(), 1);
    let auth = run(authenticate(&mut card, &pin(), CHALLENGE)).expect("right PIN");
    assert_signature_verifies(&auth.certificate_der, CHALLENGE, &auth.signature);
    assert_eq!(run(pin_status(&mut card)), Ok(PinStatus::TriesLeft(3)));
}

#[test]
fn three_wrong_pins_block_and_signing_is_refused() {
    let mut card = card();
    for tries_left in [2, 1] {
        assert_eq!(
            run(authenticate(&mut card, &wrong_pin(), CHALLENGE)),
            Err(JpkiError::WrongPin { tries_left })
        );
    }
    assert_eq!(
        run(authenticate(&mut card, &wrong_pin(), CHALLENGE)),
        Err(JpkiError::PinBlocked)
    );
    assert_eq!(run(pin_status(&mut card)), Ok(PinStatus::Blocked));
    // Even the right PIN is refused now, and signing is refused without it.
    assert_eq!(
        run(authenticate(&mut card, &pin(), CHALLENGE)),
        Err(JpkiError::PinBlocked)
    );
    let mut ap = JpkiAp::new(&mut card);
    run(ap.select_ap()).expect("select");
    assert_eq!(
        run(ap.sign_digest_info(&[1; 51])),
        Err(JpkiError::NotAuthorized)
    );
    // The certificate stays readable for the visual check.
    assert!(run(read_certificate_without_pin(&mut card)).is_ok());
}

#[test]
fn verified_pin_does_not_survive_reselect() {
    let mut card = card();
    let mut ap = JpkiAp::new(&mut card);
    run(ap.select_ap()).expect("select");
    run(ap.verify_pin(&pin())).expect("verify");
    assert_eq!(run(ap.pin_status()), Ok(PinStatus::Verified));
    run(ap.select_ap()).expect("select again");
    assert_eq!(
        run(ap.sign_digest_info(&[1; 51])),
        Err(JpkiError::NotAuthorized)
    );
}

#[test]
fn not_a_my_number_card() {
    struct OtherCard;
    impl Transport for OtherCard {
        async fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, uketsuke_card::TransportError> {
            Ok(vec![0x6A, 0x82])
        }
    }
    assert_eq!(
        run(read_certificate_without_pin(OtherCard)),
        Err(JpkiError::NotMyNumberCard)
    );
}

#[test]
fn card_status_words_for_unsupported_commands() {
    let mut card = card();
    let mut send = |apdu: &[u8]| card.process(apdu);
    assert_eq!(
        send(&[0x00, 0xB0, 0x00, 0x00, 0x04]),
        [0x69, 0x86],
        "no current EF"
    );
    assert_eq!(
        send(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A]),
        [0x6A, 0x82],
        "EF before AP"
    );
    let mut select_ap = vec![0x00, 0xA4, 0x04, 0x0C, 0x0A];
    select_ap.extend_from_slice(&uketsuke_card::jpki::JPKI_AID);
    assert_eq!(send(&select_ap), [0x90, 0x00]);
    assert_eq!(
        send(&[0x00, 0xCA, 0x00, 0x00, 0x00]),
        [0x6D, 0x00],
        "bad INS"
    );
    assert_eq!(send(&[0x90, 0xA4, 0x04, 0x0C]), [0x6E, 0x00], "bad CLA");
    assert_eq!(
        send(&[0x80, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A]),
        [0x6E, 0x00],
        "wrong CLA for INS"
    );
    assert_eq!(
        send(&[0x00, 0xA4, 0x01, 0x0C, 0x02, 0x00, 0x0A]),
        [0x6A, 0x86],
        "bad P1P2"
    );
    assert_eq!(
        send(&[0x00, 0xA4, 0x02, 0x0C, 0x01, 0x00]),
        [0x67, 0x00],
        "wrong Lc"
    );
    assert_eq!(
        send(&[0x00, 0xA4, 0x02, 0x0C, 0x05, 0x00]),
        [0x67, 0x00],
        "Lc beyond data"
    );
    assert_eq!(
        send(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x12, 0x34]),
        [0x6A, 0x82],
        "unknown EF"
    );
    assert_eq!(
        send(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x17]),
        [0x90, 0x00]
    );
    assert_eq!(
        send(&[0x00, 0xB0, 0x00, 0x00, 0x04]),
        [0x69, 0x81],
        "key EF is not readable"
    );
    assert_eq!(
        send(&[0x00, 0x20, 0x00, 0x80]),
        [0x69, 0x86],
        "VERIFY needs the PIN EF"
    );
    assert_eq!(
        send(&[0x80, 0x2A, 0x00, 0x80, 0x01, 0x00, 0x00]),
        [0x69, 0x82],
        "sign without PIN"
    );
    assert_eq!(
        send(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A]),
        [0x90, 0x00]
    );
    assert_eq!(
        send(&[0x00, 0xB0, 0x7F, 0x00, 0x04]),
        [0x6B, 0x00],
        "offset beyond EF"
    );
    assert_eq!(
        send(&[0x00, 0xB0, 0x80, 0x00, 0x04]),
        [0x6A, 0x86],
        "short EF id"
    );
    assert_eq!(
        send(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x18]),
        [0x90, 0x00]
    );
    assert_eq!(
        send(&[0x00, 0x20, 0x00, 0x81]),
        [0x6A, 0x86],
        "VERIFY bad P2"
    );
    assert_eq!(
        send(&[0x00, 0x20, 0x00, 0x80, 0x02, 0x31, 0x32]),
        [0x67, 0x00],
        "short PIN"
    );
    assert_eq!(
        send(&[0x00, 0x20, 0x00, 0x80]),
        [0x63, 0xC3],
        "wrong-length PIN spent no try"
    );
}
