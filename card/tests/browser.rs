//! The JPKI flow compiled to WebAssembly and run in headless Chromium: full authentication,
//! the PIN counter, blocking and card removal through each reader framing and its emulator.
//! Every USB transfer first yields to the browser's event loop, so the async framings are
//! driven by real promise resolution, as they are with WebUSB.
//!
//! Run: `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p uketsuke-card --target wasm32-unknown-unknown --test browser`

#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use uketsuke_card::emulator::{CardOptions, Rcs300Emulator, Rcs380Emulator};
use uketsuke_card::framing::rcs300::{Rcs300Config, Rcs300Session};
use uketsuke_card::framing::rcs380::{Rcs380Config, Rcs380Session};
use uketsuke_card::jpki::{JpkiAp, sha256_digest_info};
use uketsuke_card::{
    Authentication, JpkiError, Pin, PinStatus, TransportError, UsbBulk, authenticate, pin_status,
};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// Wraps an emulator so every transfer waits for a resolved promise first: the futures return
/// `Pending` and are woken by the browser, as WebUSB transfers are.
struct Yielding<U>(U);

async fn next_tick() {
    let promise = js_sys::Promise::resolve(&wasm_bindgen::JsValue::NULL);
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

impl<U: UsbBulk> UsbBulk for Yielding<U> {
    async fn write(&mut self, data: &[u8]) -> Result<(), TransportError> {
        next_tick().await;
        self.0.write(data).await
    }
    async fn read(&mut self, timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        next_tick().await;
        self.0.read(timeout_ms).await
    }
}

/// One emulated reader of either kind, with the card in its field.
enum Reader {
    Rcs380(Rcs380Emulator),
    Rcs300(Rcs300Emulator),
}

impl Reader {
    /// Both readers with a fresh card; small frames and one WTX when `stressed`.
    fn both(stressed: bool) -> [Reader; 2] {
        let options = if stressed {
            CardOptions {
                fsci: 2,
                wtx_rounds: 1,
            }
        } else {
            CardOptions::default()
        };
        let fsdi = if stressed { 2 } else { 8 };
        [
            Reader::Rcs380(Rcs380Emulator::new(card(), options)),
            Reader::Rcs300(Rcs300Emulator::new(card(), options).with_reader_fsdi(fsdi)),
        ]
    }

    fn name(&self) -> &'static str {
        match self {
            Reader::Rcs380(_) => "RC-S380",
            Reader::Rcs300(_) => "RC-S300",
        }
    }

    fn remove_after_frames(&mut self, frames: usize) {
        match self {
            Reader::Rcs380(e) => e.field().remove_after_frames(frames),
            Reader::Rcs300(e) => e.field().remove_after_frames(frames),
        }
    }

    /// Opens a session and runs `authenticate`, as the app does for one login; `small_frames`
    /// must match how the reader was built by [`Reader::both`].
    async fn authenticate(
        &mut self,
        pin: &Pin,
        small_frames: bool,
    ) -> Result<Authentication, JpkiError> {
        match self {
            Reader::Rcs380(e) => {
                let config = Rcs380Config {
                    fsdi: if small_frames { 2 } else { 8 },
                    ..Rcs380Config::default()
                };
                let session = Rcs380Session::open(Yielding(e), config).await?;
                authenticate(session, pin, CHALLENGE).await
            }
            Reader::Rcs300(e) => {
                let config = Rcs300Config {
                    card_frame_size: if small_frames { 32 } else { 256 },
                    ..Rcs300Config::default()
                };
                let session = Rcs300Session::open(Yielding(e), config).await?;
                authenticate(session, pin, CHALLENGE).await
            }
        }
    }

    async fn pin_status(&mut self) -> Result<PinStatus, JpkiError> {
        match self {
            Reader::Rcs380(e) => {
                pin_status(Rcs380Session::open(Yielding(e), Rcs380Config::default()).await?).await
            }
            Reader::Rcs300(e) => {
                pin_status(Rcs300Session::open(Yielding(e), Rcs300Config::default()).await?).await
            }
        }
    }

    /// Selects the AP in a new session and asks for a signature without VERIFY.
    async fn sign_without_pin(&mut self) -> Result<Vec<u8>, JpkiError> {
        let digest_info = sha256_digest_info(CHALLENGE);
        match self {
            Reader::Rcs380(e) => {
                let session = Rcs380Session::open(Yielding(e), Rcs380Config::default()).await?;
                let mut ap = JpkiAp::new(session);
                ap.select_ap().await?;
                ap.sign_digest_info(&digest_info).await
            }
            Reader::Rcs300(e) => {
                let session = Rcs300Session::open(Yielding(e), Rcs300Config::default()).await?;
                let mut ap = JpkiAp::new(session);
                ap.select_ap().await?;
                ap.sign_digest_info(&digest_info).await
            }
        }
    }
}

#[wasm_bindgen_test]
async fn full_authentication_through_each_framing() {
    for mut reader in Reader::both(false) {
        let auth = reader.authenticate(&pin(), false).await;
        let auth = auth.unwrap_or_else(|e| panic!("{}: {e}", reader.name()));
        assert_signature_verifies(&auth.certificate_der, CHALLENGE, &auth.signature);
    }
}

#[wasm_bindgen_test]
async fn chaining_and_wtx_through_each_framing() {
    for mut reader in Reader::both(true) {
        let auth = reader.authenticate(&pin(), true).await;
        let auth = auth.unwrap_or_else(|e| panic!("{}: {e}", reader.name()));
        assert_signature_verifies(&auth.certificate_der, CHALLENGE, &auth.signature);
    }
}

#[wasm_bindgen_test]
async fn wrong_pin_twice_then_right() {
    for mut reader in Reader::both(false) {
        for tries_left in [2, 1] {
            assert_eq!(
                reader.authenticate(&wrong_pin(), false).await,
                Err(JpkiError::WrongPin { tries_left }),
                "{}",
                reader.name()
            );
        }
        let auth = reader.authenticate(&pin(), false).await;
        let auth = auth.unwrap_or_else(|e| panic!("{}: {e}", reader.name()));
        assert_signature_verifies(&auth.certificate_der, CHALLENGE, &auth.signature);
        assert_eq!(reader.pin_status().await, Ok(PinStatus::TriesLeft(3)));
    }
}

#[wasm_bindgen_test]
async fn three_wrong_pins_block_and_signing_is_refused() {
    for mut reader in Reader::both(false) {
        for tries_left in [2, 1] {
            assert_eq!(
                reader.authenticate(&wrong_pin(), false).await,
                Err(JpkiError::WrongPin { tries_left })
            );
        }
        assert_eq!(
            reader.authenticate(&wrong_pin(), false).await,
            Err(JpkiError::PinBlocked)
        );
        assert_eq!(reader.pin_status().await, Ok(PinStatus::Blocked));
        assert_eq!(
            reader.authenticate(&pin(), false).await,
            Err(JpkiError::PinBlocked),
            "{}: the right PIN no longer helps",
            reader.name()
        );
        assert_eq!(
            reader.sign_without_pin().await,
            Err(JpkiError::NotAuthorized),
            "{}: signing refused",
            reader.name()
        );
    }
}

#[wasm_bindgen_test]
async fn card_removed_mid_exchange_is_a_typed_error() {
    for after in [3, 6, 12, 40] {
        for mut reader in Reader::both(true) {
            reader.remove_after_frames(after);
            assert_eq!(
                reader.authenticate(&pin(), true).await,
                Err(JpkiError::CardRemoved),
                "{}: removed after {after} frames",
                reader.name()
            );
        }
    }
}

#[wasm_bindgen_test]
async fn virtual_card_directly() {
    let mut card = card();
    let auth = authenticate(&mut card, &pin(), CHALLENGE).await;
    let auth = auth.unwrap_or_else(|e| panic!("{e}"));
    assert_signature_verifies(&auth.certificate_der, CHALLENGE, &auth.signature);
}
