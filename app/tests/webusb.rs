//! The WebUSB transport in headless Chromium against a fake USB device: a JavaScript object
//! with the WebUSB calls the transport uses (open, selectConfiguration, claimInterface,
//! transferOut, transferIn, configuration.interfaces with endpoints), whose transfers are
//! answered by the byte-level reader emulators of `uketsuke-card` through wasm-bindgen closures.
//!
//! Run: `CHROMEDRIVER=/usr/bin/chromedriver cargo test -p uketsuke-app --features hydrate \
//!       --target wasm32-unknown-unknown --test webusb`

#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::OnceLock;

use js_sys::{Function, Uint8Array};
use rsa::RsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use sha2::Sha256;
use spki::DecodePublicKey;
use uketsuke_app::card::webusb::open_reader;
use uketsuke_app::card::{CardError, CardReader, ReaderKind, detect_capabilities};
use uketsuke_card::emulator::{CardOptions, Rcs300Emulator, Rcs380Emulator};
use uketsuke_card::test_ca::TestCa;
use uketsuke_card::transport::block_on_ready;
use uketsuke_card::{Pin, PinStatus, UsbBulk, VirtualCard};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

wasm_bindgen_test_configure!(run_in_browser);

const CHALLENGE: &[u8] = b"uketsuke-webusb-test-challenge";
const RCS380_PRODUCT: u16 = 0x06C1;
const RCS300_PRODUCT: u16 = 0x0DC9;

#[wasm_bindgen(inline_js = r#"
export function fakeReader(productId, vendorInterface, onOut, onIn) {
  const bulk = [
    { endpointNumber: 2, direction: 'out', type: 'bulk', packetSize: 64 },
    { endpointNumber: 1, direction: 'in', type: 'bulk', packetSize: 64 },
  ];
  const vendor = { interfaceNumber: vendorInterface, claimed: false,
                   alternate: { alternateSetting: 0, interfaceClass: 0xff, endpoints: bulk } };
  // The RC-S300 also has a CCID interface (class 0x0B) first; it must not be chosen.
  const ccid = { interfaceNumber: 0, claimed: false,
                 alternate: { alternateSetting: 0, interfaceClass: 0x0b, endpoints: [
                   { endpointNumber: 3, direction: 'in', type: 'bulk', packetSize: 64 } ] } };
  const config = { configurationValue: 1,
                   interfaces: vendorInterface === 0 ? [vendor] : [ccid, vendor] };
  const fail = (name) => Promise.reject(new DOMException(name, name));
  return {
    vendorId: 0x054c, productId, opened: false, configuration: null, configurations: [config],
    async open() { this.opened = true; },
    async close() { this.opened = false; },
    async selectConfiguration(value) {
      if (!this.opened || value !== 1) return fail('InvalidStateError');
      this.configuration = config;
    },
    async claimInterface(n) {
      if (!this.configuration || n !== vendorInterface) return fail('InvalidStateError');
      vendor.claimed = true;
    },
    async releaseInterface(n) { vendor.claimed = false; },
    async transferOut(endpoint, data) {
      if (!vendor.claimed || endpoint !== 2) return fail('InvalidAccessError');
      const bytes = new Uint8Array(data);
      onOut(bytes);
      return { status: 'ok', bytesWritten: bytes.length };
    },
    transferIn(endpoint, length) {
      if (!vendor.claimed || endpoint !== 1) return fail('InvalidAccessError');
      // Nothing to send: like a real reader, the transfer stays pending until the device has
      // data (polled here), so a transfer that outlived its timer gets the next answer.
      return new Promise((resolve) => {
        let polls = 0;
        const poll = () => {
          const bytes = onIn(length);
          if (bytes !== undefined) {
            resolve({ status: 'ok', data: new DataView(bytes.buffer) });
          } else if (++polls < 4000) {
            setTimeout(poll, 5);
          }
        };
        poll();
      });
    },
  };
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = fakeReader)]
    fn fake_reader(
        product_id: u16,
        vendor_interface: u8,
        on_out: &Function,
        on_in: &Function,
    ) -> web_sys::UsbDevice;
}

/// A fake WebUSB device whose bulk transfers go to `emulator`.
fn fake_device<U: UsbBulk + 'static>(
    emulator: Rc<RefCell<U>>,
    product_id: u16,
    vendor_interface: u8,
) -> web_sys::UsbDevice {
    let out_side = emulator.clone();
    let on_out = Closure::<dyn FnMut(Uint8Array)>::new(move |bytes: Uint8Array| {
        // The emulators answer at once, so their futures complete on the first poll.
        let _ = block_on_ready(out_side.borrow_mut().write(&bytes.to_vec()));
    });
    let on_in =
        Closure::<dyn FnMut(u32) -> JsValue>::new(move |_length: u32| {
            match block_on_ready(emulator.borrow_mut().read(0)) {
                Some(Ok(bytes)) => Uint8Array::from(bytes.as_slice()).into(),
                _ => JsValue::UNDEFINED,
            }
        });
    // The closures live as long as the page: fine for a test.
    let on_out: JsValue = on_out.into_js_value();
    let on_in: JsValue = on_in.into_js_value();
    fake_reader(
        product_id,
        vendor_interface,
        on_out.unchecked_ref(),
        on_in.unchecked_ref(),
    )
}

fn fixture_card() -> VirtualCard {
    static CARD: OnceLock<Option<VirtualCard>> = OnceLock::new();
    let card = CARD.get_or_init(|| {
        let ca = TestCa::from_seed(1).ok()?;
        VirtualCard::from_seed(2, &ca, &pin()).ok()
    });
    card.clone().expect("test card from seeds")
}

fn pin() -> Pin {
    Pin::new("1234").expect("valid PIN")
}

fn wrong_pin() -> Pin {
    Pin::new("9999").expect("valid PIN format")
}

fn assert_signature_verifies(certificate_der: &[u8], signature: &[u8]) {
    let cert = Certificate::from_der(certificate_der).expect("certificate parses");
    let spki_der = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .expect("spki encodes");
    let key = RsaPublicKey::from_public_key_der(&spki_der).expect("RSA key");
    let signature = Signature::try_from(signature).expect("signature bytes");
    VerifyingKey::<Sha256>::new(key)
        .verify(CHALLENGE, &signature)
        .expect("signature verifies with the certificate's key");
}

async fn rcs380_reader(options: CardOptions) -> (CardReader, Rcs380Handle) {
    let emulator = Rc::new(RefCell::new(Rcs380Emulator::new(fixture_card(), options)));
    let device = fake_device(emulator.clone(), RCS380_PRODUCT, 0);
    let reader = open_reader(device).await.expect("reader opens");
    assert_eq!(reader.kind, ReaderKind::Rcs380);
    (CardReader::WebUsb(reader), emulator)
}

async fn rcs300_reader(options: CardOptions) -> (CardReader, Rcs300Handle) {
    let emulator = Rc::new(RefCell::new(Rcs300Emulator::new(fixture_card(), options)));
    let device = fake_device(emulator.clone(), RCS300_PRODUCT, 1);
    let reader = open_reader(device).await.expect("reader opens");
    assert_eq!(reader.kind, ReaderKind::Rcs300);
    (CardReader::WebUsb(reader), emulator)
}

type Rcs380Handle = Rc<RefCell<Rcs380Emulator>>;
type Rcs300Handle = Rc<RefCell<Rcs300Emulator>>;

#[wasm_bindgen_test]
async fn rcs380_full_authentication_over_webusb() {
    let (mut reader, _emulator) = rcs380_reader(CardOptions::default()).await;
    let auth = reader.authenticate(&pin(), CHALLENGE).await.expect("auth");
    assert_signature_verifies(&auth.certificate_der, &auth.signature);
    // The session closes after each flow; the next one starts cleanly on the same device.
    let again = reader.authenticate(&pin(), CHALLENGE).await.expect("again");
    assert_signature_verifies(&again.certificate_der, &again.signature);
}

#[wasm_bindgen_test]
async fn rcs300_full_authentication_over_webusb() {
    let (mut reader, _emulator) = rcs300_reader(CardOptions::default()).await;
    let auth = reader.authenticate(&pin(), CHALLENGE).await.expect("auth");
    assert_signature_verifies(&auth.certificate_der, &auth.signature);
    assert!(!reader.read_certificate().await.expect("cert").is_empty());
}

#[wasm_bindgen_test]
async fn wrong_pin_twice_then_right_then_three_wrong_block() {
    let (mut reader, emulator) = rcs300_reader(CardOptions::default()).await;
    for tries_left in [2, 1] {
        assert_eq!(
            reader.authenticate(&wrong_pin(), CHALLENGE).await,
            Err(CardError::WrongPin { tries_left })
        );
    }
    let auth = reader
        .authenticate(&pin(), CHALLENGE)
        .await
        .expect("right PIN");
    assert_signature_verifies(&auth.certificate_der, &auth.signature);
    assert_eq!(reader.pin_status().await, Ok(PinStatus::TriesLeft(3)));
    for expected in [
        CardError::WrongPin { tries_left: 2 },
        CardError::WrongPin { tries_left: 1 },
        CardError::PinBlocked,
    ] {
        assert_eq!(
            reader.authenticate(&wrong_pin(), CHALLENGE).await,
            Err(expected)
        );
    }
    assert_eq!(
        reader.authenticate(&pin(), CHALLENGE).await,
        Err(CardError::PinBlocked),
        "blocked: the right PIN is refused and nothing is signed"
    );
    assert_eq!(emulator.borrow().card().tries_left(), 0);
}

#[wasm_bindgen_test]
async fn card_removed_mid_exchange_is_a_typed_error() {
    // Activation takes two frames; removal then hits SELECT, a chained read or a WTX wait.
    for after in [3, 6, 12, 20] {
        let options = CardOptions {
            fsci: 2,
            wtx_rounds: 1,
        };
        let (mut reader, emulator) = rcs380_reader(options).await;
        emulator.borrow_mut().field().remove_after_frames(after);
        assert_eq!(
            reader.authenticate(&pin(), CHALLENGE).await,
            Err(CardError::CardRemoved),
            "removed after {after} frames"
        );
    }
}

#[wasm_bindgen_test]
async fn leftovers_of_a_killed_session_are_drained_over_webusb() {
    // A reload during a read: the killed page wrote an InCommRF (RC-S380) or a transceive
    // (RC-S300) and never read the answers, which wait in the reader for the next page.
    let (mut reader, emulator) = rcs380_reader(CardOptions::default()).await;
    let frame =
        uketsuke_card::framing::rcs380::encode_command(0x04, &[0x36, 0x01, 0x05, 0x00, 0x00])
            .expect("frame");
    let _ = block_on_ready(emulator.borrow_mut().write(&frame));
    let auth = reader
        .authenticate(&pin(), CHALLENGE)
        .await
        .expect("auth after leftovers");
    assert_signature_verifies(&auth.certificate_der, &auth.signature);

    let (mut reader, emulator) = rcs300_reader(CardOptions::default()).await;
    // An RF-off escape message with sequence number 9, never read.
    let message = [
        0x6B, 8, 0, 0, 0, 0, 9, 0, 0, 0, 0xFF, 0x50, 0x00, 0x00, 0x02, 0x83, 0x00, 0x00,
    ];
    let _ = block_on_ready(emulator.borrow_mut().write(&message));
    let auth = reader
        .authenticate(&pin(), CHALLENGE)
        .await
        .expect("auth after leftovers");
    assert_signature_verifies(&auth.certificate_der, &auth.signature);
}

#[wasm_bindgen_test]
async fn silent_reader_times_out_instead_of_hanging() {
    /// A reader that takes every transfer and never answers.
    struct Silent;
    impl UsbBulk for Silent {
        async fn write(&mut self, _: &[u8]) -> Result<(), uketsuke_card::TransportError> {
            Ok(())
        }
        async fn read(&mut self, _: u32) -> Result<Vec<u8>, uketsuke_card::TransportError> {
            Err(uketsuke_card::TransportError::Timeout)
        }
    }
    let device = fake_device(Rc::new(RefCell::new(Silent)), RCS300_PRODUCT, 1);
    let mut reader = CardReader::WebUsb(open_reader(device).await.expect("opens"));
    let started = js_sys::Date::now();
    assert_eq!(reader.pin_status().await, Err(CardError::Timeout));
    let waited = js_sys::Date::now() - started;
    assert!(
        (400.0..5_000.0).contains(&waited),
        "the transfer timer decided, after {waited} ms"
    );
}

#[wasm_bindgen_test]
async fn other_devices_are_refused() {
    let emulator = Rc::new(RefCell::new(Rcs380Emulator::new(
        fixture_card(),
        CardOptions::default(),
    )));
    let device = fake_device(emulator, 0x02E1, 0);
    assert_eq!(
        open_reader(device).await.err(),
        Some(CardError::ReaderNotSupported)
    );
}

#[wasm_bindgen(inline_js = r#"
export function deniedReader(productId, step) {
  // What Chromium answers when the operating system holds the device: the promise of open()
  // (or claimInterface()) is rejected with a SecurityError "Access denied."
  const denied = () => Promise.reject(new DOMException('Access denied.', 'SecurityError'));
  const config = { configurationValue: 1, interfaces: [
    { interfaceNumber: 0, claimed: false, alternate: { alternateSetting: 0, interfaceClass: 0xff,
      endpoints: [ { endpointNumber: 2, direction: 'out', type: 'bulk', packetSize: 64 },
                   { endpointNumber: 1, direction: 'in', type: 'bulk', packetSize: 64 } ] } } ] };
  return {
    vendorId: 0x054c, productId, opened: false, configuration: null, configurations: [config],
    async open() { if (step === 'open') return denied(); this.opened = true; },
    async close() { this.opened = false; },
    async selectConfiguration(value) { this.configuration = config; },
    async claimInterface(n) { if (step === 'claim') return denied(); },
    async releaseInterface(n) {},
  };
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = deniedReader)]
    fn denied_reader(product_id: u16, step: &str) -> web_sys::UsbDevice;
}

#[wasm_bindgen_test]
async fn access_denied_on_open_or_claim_is_the_system_holding_the_reader() {
    use uketsuke_app::i18n::Lang;
    for step in ["open", "claim"] {
        for product in [RCS380_PRODUCT, RCS300_PRODUCT] {
            let error = open_reader(denied_reader(product, step)).await.err();
            assert_eq!(
                error,
                Some(CardError::ReaderHeldBySystem),
                "{step} {product:04x}"
            );
        }
    }
    // What the patient reads: the operating system, per platform, never "use https".
    for lang in [Lang::Ja, Lang::En] {
        let text = CardError::ReaderHeldBySystem.message(lang);
        assert!(!text.contains("https"), "{text}");
        assert!(text.contains("Windows"), "{text}");
    }
}

#[wasm_bindgen_test]
fn capabilities_in_headless_chromium() {
    let capabilities = detect_capabilities();
    assert!(capabilities.webusb, "Chromium has navigator.usb");
    assert!(capabilities.secure_context, "the test page is on localhost");
    assert!(capabilities.web_nfc.iso_dep().is_err());
}
