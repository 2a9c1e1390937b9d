//! Shared fixtures for the integration tests: one test CA and one virtual card per test
//! process (RSA key generation is the slow part), cloned fresh for every test.

#![allow(dead_code)]

pub mod script;

use std::sync::OnceLock;

use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use sha2::Sha256;
use spki::DecodePublicKey;
use uketsuke_card::test_ca::TestCa;
use uketsuke_card::{Pin, VirtualCard};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

/// The test PIN of the fixture card (a virtual card's, never a real one).
pub const TEST_PIN: &str = "1234";
pub const CA_SEED: u64 = 1;
pub const CARD_SEED: u64 = 2;
/// A fixed challenge so traces are reproducible.
pub const CHALLENGE: &[u8] = b"uketsuke-test-challenge-0123456789abcdef";

struct Fixture {
    ca: TestCa,
    card: VirtualCard,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let ca = TestCa::from_seed(CA_SEED).expect("test CA");
        let card = VirtualCard::from_seed(CARD_SEED, &ca, &pin()).expect("virtual card");
        Fixture { ca, card }
    })
}

pub fn ca() -> &'static TestCa {
    &fixture().ca
}

/// A fresh card with 3 tries.
pub fn card() -> VirtualCard {
    fixture().card.clone()
}

pub fn pin() -> Pin {
    Pin::new(TEST_PIN).expect("valid test PIN")
}

pub fn wrong_pin() -> Pin {
    Pin::new("9999").expect("valid PIN format")
}

/// Parses the certificate and checks `signature` over `message` with its public key.
pub fn assert_signature_verifies(certificate_der: &[u8], message: &[u8], signature: &[u8]) {
    let cert = Certificate::from_der(certificate_der).expect("certificate parses");
    let spki_der = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .expect("spki encodes");
    let public_key = RsaPublicKey::from_public_key_der(&spki_der).expect("RSA public key");
    let verifying_key = VerifyingKey::<Sha256>::new(public_key);
    let signature = Signature::try_from(signature).expect("signature bytes");
    verifying_key
        .verify(message, &signature)
        .expect("signature verifies with the certificate key");
}

/// Runs a card flow whose I/O is an emulator or the virtual card: they answer at once, so no
/// executor is needed (see `block_on_ready`).
pub fn run<F: std::future::Future>(flow: F) -> F::Output {
    uketsuke_card::transport::block_on_ready(flow)
        .expect("emulators and the virtual card never wait")
}

/// Hex helper for traces.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
