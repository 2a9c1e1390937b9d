//! The browser side of card access: which ways of reaching the My Number card work on this
//! device ([`Capabilities`]), and one [`CardReader`] interface over them for the pages — WebUSB
//! readers (RC-S380, RC-S300) through the `uketsuke-card` framings, and the virtual practice
//! card. Web NFC is detected only: browsers expose NDEF, not the card's ISO-DEP.
//!
//! The pure parts (capabilities, error texts, reader identification, the flows) compile for
//! both builds; everything touching `web-sys` needs feature `hydrate`. Nothing here is exported
//! to JavaScript, so pages that do not call it keep it out of the WASM (the linker drops it).

pub mod people;
#[cfg(feature = "hydrate")]
pub mod practice;
#[cfg(feature = "hydrate")]
pub mod reader;
pub mod webnfc;
#[cfg(feature = "hydrate")]
pub mod webusb;

#[cfg(feature = "hydrate")]
pub use reader::{CardReader, detect_capabilities};

use uketsuke_card::framing::{rcs300, rcs380};
use uketsuke_card::{Authentication, JpkiError, Pin, PinStatus, Transport};

use crate::i18n::Lang;
pub use webnfc::WebNfcSupport;

/// What this browser offers for reaching the card, so the UI shows only ways that work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `navigator.usb` exists (Chrome/Edge desktop, Chrome on Android with OTG).
    pub webusb: bool,
    /// WebUSB and Web NFC only work on https (or localhost).
    pub secure_context: bool,
    /// Web NFC (`NDEFReader`) exists; it cannot reach the card's ISO-DEP (see [`webnfc`]).
    pub web_nfc: WebNfcSupport,
}

impl Capabilities {
    /// A USB reader can be used: the API is there and the page is a secure context.
    pub fn usb_reader_usable(&self) -> bool {
        self.webusb && self.secure_context
    }

    /// The ways to offer, most direct first. The eID-app hand-off and the institution's device
    /// work everywhere; the practice card is offered by the page only in demo mode.
    pub fn ways(&self, demo: bool) -> Vec<CardWay> {
        let mut ways = Vec::new();
        if self.usb_reader_usable() {
            ways.push(CardWay::UsbReader);
        }
        ways.push(CardWay::EidApp);
        ways.push(CardWay::InstitutionDevice);
        if demo {
            ways.push(CardWay::PracticeCard);
        }
        ways
    }
}

/// A way of reaching the card (SPEC §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardWay {
    /// A Sony RC-S380 or RC-S300 over WebUSB.
    UsbReader,
    /// Hand-off to an eID app by deep link (the app signs the challenge).
    EidApp,
    /// Finish on the institution's device (QR-linked flow).
    InstitutionDevice,
    /// The virtual practice card (デモ・練習用), demo mode only.
    PracticeCard,
}

/// The supported USB readers, told apart by USB vendor and product id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReaderKind {
    Rcs380,
    Rcs300,
}

impl ReaderKind {
    /// The reader with these ids, if it is one we speak to.
    pub fn from_ids(vendor_id: u16, product_id: u16) -> Option<Self> {
        if vendor_id == rcs380::USB_VENDOR_ID && rcs380::USB_PRODUCT_IDS.contains(&product_id) {
            Some(Self::Rcs380)
        } else if vendor_id == rcs300::USB_VENDOR_ID
            && rcs300::USB_PRODUCT_IDS.contains(&product_id)
        {
            Some(Self::Rcs300)
        } else {
            None
        }
    }

    /// Every (vendor, product) pair the device chooser should list.
    pub fn usb_filters() -> Vec<(u16, u16)> {
        let s380 = rcs380::USB_PRODUCT_IDS.map(|p| (rcs380::USB_VENDOR_ID, p));
        let s300 = rcs300::USB_PRODUCT_IDS.map(|p| (rcs300::USB_VENDOR_ID, p));
        s380.into_iter().chain(s300).collect()
    }
}

/// Everything that can go wrong reaching the card, in the terms a patient can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("this browser has no WebUSB")]
    WebUsbUnavailable,
    #[error("no reader was chosen")]
    NoReaderChosen,
    #[error("the browser did not allow access to the reader")]
    AccessDenied,
    #[error("the reader is not one Uketsuke supports")]
    ReaderNotSupported,
    #[error("the reader is in use by another program or tab")]
    ReaderBusy,
    #[error("Web NFC cannot reach the card's chip")]
    WebNfcCannotReachCard,
    #[error("no card on the reader, or it was taken away")]
    CardRemoved,
    #[error("wrong PIN; {tries_left} tries left")]
    WrongPin { tries_left: u8 },
    #[error("the PIN is blocked")]
    PinBlocked,
    #[error("not a My Number card")]
    NotMyNumberCard,
    #[error("the reader did not answer in time")]
    Timeout,
    /// Anything else from the reader or card; the detail is for logs, not for the patient.
    #[error("reader or card failure: {0}")]
    Reader(String),
}

impl From<JpkiError> for CardError {
    fn from(e: JpkiError) -> Self {
        match e {
            JpkiError::WrongPin { tries_left } => Self::WrongPin { tries_left },
            JpkiError::PinBlocked => Self::PinBlocked,
            JpkiError::NotMyNumberCard => Self::NotMyNumberCard,
            JpkiError::CardRemoved => Self::CardRemoved,
            JpkiError::Timeout => Self::Timeout,
            other => Self::Reader(other.to_string()),
        }
    }
}

impl CardError {
    /// What to tell the patient, and what to do next.
    pub fn message(&self, lang: Lang) -> String {
        match (self, lang) {
            (Self::WebUsbUnavailable, Lang::Ja) => "このブラウザはカードリーダーに接続できません。Chrome または Edge で開くか、ほかの方法を選んでください。".into(),
            (Self::WebUsbUnavailable, Lang::En) => "This browser cannot connect to a card reader. Open the page in Chrome or Edge, or choose another way.".into(),
            (Self::NoReaderChosen, Lang::Ja) => "リーダーが選ばれませんでした。リーダーを接続して、もう一度お試しください。".into(),
            (Self::NoReaderChosen, Lang::En) => "No reader was chosen. Connect the reader and try again.".into(),
            (Self::AccessDenied, Lang::Ja) => "ブラウザがリーダーへのアクセスを許可しませんでした。https のページで開き、許可してください。".into(),
            (Self::AccessDenied, Lang::En) => "The browser did not allow access to the reader. Open the page over https and allow access.".into(),
            (Self::ReaderNotSupported, Lang::Ja) => "このリーダーには対応していません。ソニー RC-S380 または RC-S300 をお使いください。".into(),
            (Self::ReaderNotSupported, Lang::En) => "This reader is not supported. Use a Sony RC-S380 or RC-S300.".into(),
            (Self::ReaderBusy, Lang::Ja) => "リーダーをほかのアプリやタブが使っています。それを閉じて、もう一度お試しください。".into(),
            (Self::ReaderBusy, Lang::En) => "Another app or tab is using the reader. Close it and try again.".into(),
            (Self::WebNfcCannotReachCard, Lang::Ja) => "このブラウザの NFC ではマイナンバーカードを読めません。ほかの方法を選んでください。".into(),
            (Self::WebNfcCannotReachCard, Lang::En) => "This browser's NFC cannot read the My Number card. Please choose another way.".into(),
            (Self::CardRemoved, Lang::Ja) => "カードが読み取れませんでした。カードをリーダーに置いたまま、もう一度お試しください。".into(),
            (Self::CardRemoved, Lang::En) => "The card could not be read. Keep the card on the reader and try again.".into(),
            (Self::WrongPin { tries_left }, Lang::Ja) => format!("暗証番号が違います。あと {tries_left} 回まちがえるとロックされます。"),
            (Self::WrongPin { tries_left }, Lang::En) => format!("Wrong PIN. {tries_left} more wrong tries will lock it."),
            (Self::PinBlocked, Lang::Ja) => "暗証番号がロックされています。市区町村の窓口で解除してください。受付はほかの方法（窓口での確認など）で続けられます。".into(),
            (Self::PinBlocked, Lang::En) => "The PIN is locked. It can be reset at your municipal office. You can continue reception another way, e.g. at the desk.".into(),
            (Self::NotMyNumberCard, Lang::Ja) => "マイナンバーカードではないようです。マイナンバーカードを置いてください。".into(),
            (Self::NotMyNumberCard, Lang::En) => "This does not seem to be a My Number card. Place your My Number card on the reader.".into(),
            (Self::Timeout, Lang::Ja) => "リーダーが応答しません。リーダーを接続し直して、もう一度お試しください。".into(),
            (Self::Timeout, Lang::En) => "The reader does not answer. Reconnect it and try again.".into(),
            (Self::Reader(_), Lang::Ja) => "カードの読み取りに失敗しました。カードを置き直して、もう一度お試しください。".into(),
            (Self::Reader(_), Lang::En) => "Reading the card failed. Place the card again and try again.".into(),
        }
    }
}

/// One card operation the UI asks for.
#[derive(Clone, Copy, Debug)]
pub enum Flow<'a> {
    /// Read the certificate, verify the PIN and sign SHA-256(challenge).
    Authenticate { pin: &'a Pin, challenge: &'a [u8] },
    /// Tries left on the PIN, without spending one.
    PinStatus,
    /// The certificate only (visual-check flow, no PIN).
    Certificate,
}

/// What a [`Flow`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowOutput {
    Authenticated(Authentication),
    PinStatus(PinStatus),
    Certificate(Vec<u8>),
}

/// Runs a flow over any transport (a reader session or the practice card).
pub async fn run_flow(transport: impl Transport, flow: Flow<'_>) -> Result<FlowOutput, CardError> {
    Ok(match flow {
        Flow::Authenticate { pin, challenge } => {
            FlowOutput::Authenticated(uketsuke_card::authenticate(transport, pin, challenge).await?)
        }
        Flow::PinStatus => FlowOutput::PinStatus(uketsuke_card::pin_status(transport).await?),
        Flow::Certificate => {
            FlowOutput::Certificate(uketsuke_card::read_certificate_without_pin(transport).await?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifies_readers_by_usb_ids() {
        assert_eq!(
            ReaderKind::from_ids(0x054C, 0x06C1),
            Some(ReaderKind::Rcs380)
        );
        assert_eq!(
            ReaderKind::from_ids(0x054C, 0x06C3),
            Some(ReaderKind::Rcs380)
        );
        assert_eq!(
            ReaderKind::from_ids(0x054C, 0x0DC8),
            Some(ReaderKind::Rcs300)
        );
        assert_eq!(
            ReaderKind::from_ids(0x054C, 0x0DC9),
            Some(ReaderKind::Rcs300)
        );
        assert_eq!(ReaderKind::from_ids(0x054C, 0x02E1), None);
        assert_eq!(ReaderKind::from_ids(0x1234, 0x06C1), None);
        assert_eq!(ReaderKind::usb_filters().len(), 4);
    }

    #[test]
    fn ways_follow_capabilities() {
        let none = Capabilities::default();
        assert_eq!(
            none.ways(false),
            [CardWay::EidApp, CardWay::InstitutionDevice]
        );
        let usb_http = Capabilities {
            webusb: true,
            ..Capabilities::default()
        };
        assert!(
            !usb_http.usb_reader_usable(),
            "WebUSB needs a secure context"
        );
        let usb = Capabilities {
            webusb: true,
            secure_context: true,
            web_nfc: WebNfcSupport::NdefOnly,
        };
        assert_eq!(usb.ways(true).first(), Some(&CardWay::UsbReader));
        assert_eq!(usb.ways(true).last(), Some(&CardWay::PracticeCard));
    }

    #[test]
    fn every_error_has_both_languages() {
        let errors = [
            CardError::WebUsbUnavailable,
            CardError::WrongPin { tries_left: 2 },
            CardError::PinBlocked,
            CardError::Reader("x".into()),
        ];
        for e in errors {
            assert_ne!(e.message(Lang::Ja), e.message(Lang::En));
        }
        assert!(
            CardError::WrongPin { tries_left: 2 }
                .message(Lang::Ja)
                .contains('2')
        );
    }
}
