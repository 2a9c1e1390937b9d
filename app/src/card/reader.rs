//! The one interface the pages use to reach a card, whichever way was chosen, and the detection
//! of which ways this browser offers.

use js_sys::Reflect;
use uketsuke_card::framing::rcs300::{Rcs300Config, Rcs300Session};
use uketsuke_card::framing::rcs380::{Rcs380Config, Rcs380Session};
use uketsuke_card::{Authentication, Pin, PinStatus};

use crate::card::people::DemoPerson;
use crate::card::practice::PracticeCard;
use crate::card::webusb::{self, WebUsbReader};
use crate::card::{Capabilities, CardError, Flow, FlowOutput, ReaderKind, run_flow, webnfc};

/// Which ways to the card work here: WebUSB present, secure context, Web NFC present.
pub fn detect_capabilities() -> Capabilities {
    let Some(window) = web_sys::window() else {
        return Capabilities::default();
    };
    Capabilities {
        webusb: Reflect::has(&window.navigator(), &"usb".into()).unwrap_or(false),
        secure_context: window.is_secure_context(),
        web_nfc: webnfc::detect(),
    }
}

/// A connected card source.
pub enum CardReader {
    /// A Sony reader over WebUSB.
    WebUsb(WebUsbReader),
    /// The virtual practice card (demo only); boxed, as it holds a whole RSA key.
    Practice(Box<PracticeCard>),
}

impl CardReader {
    /// Asks the browser for a USB reader (must run in a click handler: user activation).
    pub async fn request_usb() -> Result<Self, CardError> {
        Ok(Self::WebUsb(webusb::request_reader().await?))
    }

    /// The practice card of a demo person; fetches its code the first time (see
    /// [`PracticeCard`]).
    pub async fn practice(person: &DemoPerson) -> Result<Self, CardError> {
        Ok(Self::Practice(Box::new(PracticeCard::new(person).await?)))
    }

    /// Reads the certificate, verifies the PIN and signs SHA-256(`challenge`).
    pub async fn authenticate(
        &mut self,
        pin: &Pin,
        challenge: &[u8],
    ) -> Result<Authentication, CardError> {
        match self.run(Flow::Authenticate { pin, challenge }).await? {
            FlowOutput::Authenticated(auth) => Ok(auth),
            _ => Err(CardError::Reader("unexpected flow output".to_owned())),
        }
    }

    /// Tries left on the PIN, without spending one.
    pub async fn pin_status(&mut self) -> Result<PinStatus, CardError> {
        match self.run(Flow::PinStatus).await? {
            FlowOutput::PinStatus(status) => Ok(status),
            _ => Err(CardError::Reader("unexpected flow output".to_owned())),
        }
    }

    /// The user-authentication certificate, without PIN.
    pub async fn read_certificate(&mut self) -> Result<Vec<u8>, CardError> {
        match self.run(Flow::Certificate).await? {
            FlowOutput::Certificate(der) => Ok(der),
            _ => Err(CardError::Reader("unexpected flow output".to_owned())),
        }
    }

    /// One flow in a fresh card session: activate, run, switch the field off.
    pub async fn run(&mut self, flow: Flow<'_>) -> Result<FlowOutput, CardError> {
        match self {
            Self::Practice(card) => card.run(flow).await,
            Self::WebUsb(reader) => run_on_usb(reader, flow).await,
        }
    }
}

/// Opens the reader's framing session over the WebUSB endpoints and runs the flow.
pub async fn run_on_usb(
    reader: &mut WebUsbReader,
    flow: Flow<'_>,
) -> Result<FlowOutput, CardError> {
    let bulk = &mut reader.bulk;
    match reader.kind {
        ReaderKind::Rcs380 => {
            let mut session = Rcs380Session::open(bulk, Rcs380Config::default())
                .await
                .map_err(|e| CardError::from(uketsuke_card::JpkiError::from(e)))?;
            let output = run_flow(&mut session, flow).await;
            session.close().await;
            output
        }
        ReaderKind::Rcs300 => {
            let mut session = Rcs300Session::open(bulk, Rcs300Config::default())
                .await
                .map_err(|e| CardError::from(uketsuke_card::JpkiError::from(e)))?;
            let output = run_flow(&mut session, flow).await;
            session.close().await;
            output
        }
    }
}
