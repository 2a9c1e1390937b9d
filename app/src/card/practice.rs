//! The virtual practice card (デモ・練習用): a [`VirtualCard`] from fixed public seeds, for demos
//! and for patients to try the flow. Never real JPKI; the server trusts its CA only in demo
//! mode. The demo server's simulator knows the demo people by their cards, so the practice card
//! can stand for any of them (listed on the card screen with their PINs). Its RSA key is
//! generated in the browser on first use (about a second on a phone in release).

use uketsuke_card::test_ca::{TestCa, UserCertificateRequest, generate_rsa_key};
use uketsuke_card::virtual_card::{DEMO_NOT_AFTER_UNIX, DEMO_NOT_BEFORE_UNIX};
use uketsuke_card::{Pin, VirtualCard};

use crate::card::people::{DemoCertificate, DemoPerson, demo_pin};
use crate::card::{CardError, Flow, FlowOutput, run_flow};

/// Seed of the test CA that issues the demo cards' certificates (the demo server trusts it).
pub const PRACTICE_CA_SEED: u64 = 1;
/// Card seeds of the demo population are this times (1 + renewals) plus the person's number (as
/// in the simulator's `card_seed_of`).
const CARD_SEED_BASE: u64 = 10_000;
/// Validity of the demo population's expired certificates (2024-01-01 .. 2025-01-01).
const EXPIRED: (u64, u64) = (1_704_067_200, 1_735_689_600);

/// The practice card; its PIN counter lives as long as this value.
pub struct PracticeCard {
    card: VirtualCard,
}

impl PracticeCard {
    /// The card of demo person `person`.
    pub fn new(person: &DemoPerson) -> Result<Self, CardError> {
        let failed = |e: &dyn core::fmt::Display| CardError::Reader(e.to_string());
        let ca = TestCa::from_seed(PRACTICE_CA_SEED).map_err(|e| failed(&e))?;
        let pin = Pin::new(&demo_pin(person.no)).map_err(|e| failed(&e))?;
        let seed = CARD_SEED_BASE * (1 + u64::from(person.renewals)) + u64::from(person.no);
        let key = generate_rsa_key(seed).map_err(|e| failed(&e))?;
        let (not_before_unix, not_after_unix) = match person.certificate {
            DemoCertificate::Valid | DemoCertificate::Revoked => {
                (DEMO_NOT_BEFORE_UNIX, DEMO_NOT_AFTER_UNIX)
            }
            DemoCertificate::Expired => EXPIRED,
        };
        let certificate = ca
            .issue_user_certificate(
                &UserCertificateRequest {
                    serial: seed,
                    subject_common_name: format!("UKETSUKE TEST CARD {seed}"),
                    not_before_unix,
                    not_after_unix,
                },
                &key.to_public_key(),
            )
            .map_err(|e| failed(&e))?;
        let card = VirtualCard::new(key, certificate, ca.certificate_der(), &pin);
        Ok(Self { card })
    }

    pub async fn run(&mut self, flow: Flow<'_>) -> Result<FlowOutput, CardError> {
        run_flow(&mut self.card, flow).await
    }
}
