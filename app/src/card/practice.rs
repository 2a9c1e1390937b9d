//! The virtual practice card (デモ・練習用): a [`VirtualCard`] from fixed public seeds, for demos
//! and for patients to try the flow. Never real JPKI; the server trusts its CA only in demo
//! mode. The demo server's simulator knows the demo people by their cards, so the practice card
//! can stand for any of them (listed on the card screen with their PINs). Its RSA key is
//! generated in the browser on first use (about a second on a phone in release).
//!
//! A real patient never uses it, so its code is not in the page's WASM: everything behind
//! [`PracticeCard::new`] — the RSA key generation, the test CA and its X.509 certificate, the
//! card's answers and signatures — is split off into its own chunk (`split_practice_card.wasm`,
//! made by `cargo leptos build --split`; see `scripts/build-site.sh`) and fetched only when the
//! practice card is chosen. The main bundle reaches the card through one trait object whose
//! code lives in that chunk. A chunk that cannot be fetched is
//! [`CardError::PracticeUnavailable`]; the browser's loader keeps a failed fetch for the life of
//! the page, so the cure offered is loading the page again.

use uketsuke_card::test_ca::{TestCa, UserCertificateRequest, generate_rsa_key};
use uketsuke_card::transport::block_on_ready;
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
    chip: Box<dyn PracticeChip>,
}

/// The card as the main bundle sees it: one flow at a time. Its only implementation is in the
/// split-off chunk, so calling it never pulls the card's code into the main bundle.
trait PracticeChip {
    fn run(&mut self, flow: Flow<'_>) -> Result<FlowOutput, CardError>;
}

impl PracticeCard {
    /// The card of demo person `person`: fetches the practice card's chunk the first time
    /// (`PracticeUnavailable` when it cannot be fetched), then makes the key and certificate.
    pub async fn new(person: &DemoPerson) -> Result<Self, CardError> {
        Ok(Self {
            chip: practice_chip(*person).await?,
        })
    }

    pub async fn run(&mut self, flow: Flow<'_>) -> Result<FlowOutput, CardError> {
        self.chip.run(flow)
    }
}

#[cfg(feature = "split")]
impl From<wasm_split_helpers::SplitLoaderError> for CardError {
    fn from(_: wasm_split_helpers::SplitLoaderError) -> Self {
        CardError::PracticeUnavailable
    }
}

/// The split point: this function and everything only it reaches live in the chunk.
#[cfg(feature = "split")]
#[wasm_split_helpers::wasm_split(practice_card, fallible)]
fn practice_chip(person: DemoPerson) -> Result<Box<dyn PracticeChip>, CardError> {
    make_chip(person)
}

/// Without feature `split` (builds not cut by cargo-leptos, such as the WASM tests) the card is
/// part of the one module.
#[cfg(not(feature = "split"))]
async fn practice_chip(person: DemoPerson) -> Result<Box<dyn PracticeChip>, CardError> {
    make_chip(person)
}

fn make_chip(person: DemoPerson) -> Result<Box<dyn PracticeChip>, CardError> {
    Ok(Box::new(Chip::new(&person)?))
}

/// The virtual card behind [`PracticeChip`] (chunk side).
struct Chip {
    card: VirtualCard,
}

impl Chip {
    fn new(person: &DemoPerson) -> Result<Self, CardError> {
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
}

impl PracticeChip for Chip {
    /// The virtual card answers without waiting, so its flow runs to the end here.
    fn run(&mut self, flow: Flow<'_>) -> Result<FlowOutput, CardError> {
        block_on_ready(run_flow(&mut self.card, flow)).unwrap_or_else(|| {
            Err(CardError::Reader(
                "the practice card did not finish".to_owned(),
            ))
        })
    }
}
