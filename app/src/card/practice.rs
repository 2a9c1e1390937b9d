//! The virtual practice card (デモ・練習用): a [`VirtualCard`] from fixed public seeds, for demos
//! and for patients to try the flow. Never real JPKI; the server refuses it in production mode.
//! Its key is generated in the browser on first use (about a second on a phone in release).

use uketsuke_card::test_ca::TestCa;
use uketsuke_card::{Pin, VirtualCard};

use crate::card::{CardError, Flow, FlowOutput, run_flow};

/// Seed of the test CA that issues the practice card's certificate (the demo server trusts it).
pub const PRACTICE_CA_SEED: u64 = 1;
/// Seed of the practice card's key and certificate serial.
pub const PRACTICE_CARD_SEED: u64 = 2;
/// The PIN the demo shows next to the practice card.
pub const PRACTICE_PIN: &str = "1234";

/// The practice card; its PIN counter lives as long as this value.
pub struct PracticeCard {
    card: VirtualCard,
}

impl PracticeCard {
    pub fn new() -> Result<Self, CardError> {
        let failed = |e: &dyn core::fmt::Display| CardError::Reader(e.to_string());
        let ca = TestCa::from_seed(PRACTICE_CA_SEED).map_err(|e| failed(&e))?;
        let pin = Pin::new(PRACTICE_PIN).map_err(|e| failed(&e))?;
        let card = VirtualCard::from_seed(PRACTICE_CARD_SEED, &ca, &pin).map_err(|e| failed(&e))?;
        Ok(Self { card })
    }

    pub async fn run(&mut self, flow: Flow<'_>) -> Result<FlowOutput, CardError> {
        run_flow(&mut self.card, flow).await
    }
}
