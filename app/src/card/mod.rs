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
use uketsuke_card::{Authentication, JpkiError, Pin, PinStatus, RfFault, Transport};

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
    /// `requestDevice` refused (not a secure context, or a permissions policy): the cure is
    /// the https page.
    #[error("the browser did not allow access to the reader")]
    AccessDenied,
    /// `open()` / `claimInterface()` rejected with `SecurityError` ("Access denied"): the
    /// operating system holds the reader (Windows: Sony's NFC Port driver; Linux: no udev rule
    /// for the user; Android: USB permission not given).
    #[error("the operating system holds the reader")]
    ReaderHeldBySystem,
    #[error("the reader is not one Uketsuke supports")]
    ReaderNotSupported,
    #[error("the reader is in use by another program or tab")]
    ReaderBusy,
    #[error("Web NFC cannot reach the card's chip")]
    WebNfcCannotReachCard,
    #[error("no card on the reader")]
    NoCard,
    #[error("the card was taken away during the read")]
    CardRemoved,
    /// The card's answer arrived damaged (placement, case, metal).
    #[error("the card's answer was garbled")]
    CardSignalGarbled,
    /// Several cards answered at once.
    #[error("several cards answered")]
    SeveralCards,
    /// The reader reported a fault of its own RF side (temperature, field, transmitter).
    #[error("the reader reported a fault")]
    ReaderFault,
    /// The reader refused a request (RC-S300 result `01`, RC-S380 setup status): not a card
    /// problem, so the patient is never asked to place the card again.
    #[error("the reader refused the request")]
    ReaderRefused,
    /// Reading the certificate kept failing part-way, even after reading again.
    #[error("reading the card stopped part-way")]
    ReadIncomplete,
    #[error("wrong PIN; {tries_left} tries left")]
    WrongPin { tries_left: u8 },
    #[error("the PIN is blocked")]
    PinBlocked,
    #[error("not a My Number card")]
    NotMyNumberCard,
    #[error("the reader did not answer in time")]
    Timeout,
    /// The practice card's code, a separately loaded part of the page (`practice`), could not
    /// be fetched (connection lost, server updated or unreachable). Cured by loading the page
    /// again.
    #[error("the practice card's code could not be loaded")]
    PracticeUnavailable,
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
            JpkiError::NoCard => Self::NoCard,
            JpkiError::Rf { fault, .. } => match fault {
                RfFault::Garbled => Self::CardSignalGarbled,
                RfFault::Collision => Self::SeveralCards,
                RfFault::Reader => Self::ReaderFault,
            },
            JpkiError::ReaderRefused(_) => Self::ReaderRefused,
            JpkiError::IncompleteRead { .. } => Self::ReadIncomplete,
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
            (Self::ReaderHeldBySystem, Lang::Ja) => "リーダーをこの端末のシステム（ドライバ）が使っているため、ブラウザから接続できません。Windows ではソニーの NFC ポートソフトウェアのドライバがリーダーを使っています。Linux では、リーダーを使う許可（udev ルール）が必要です。Android では、USB へのアクセスを「許可」してください。設定を変えられない場合は、カード読み取りアプリか医療機関の窓口など、ほかの方法を選んでください。".into(),
            (Self::ReaderHeldBySystem, Lang::En) => "The device's operating system holds the reader, so the browser cannot connect to it. On Windows, Sony's NFC Port software driver holds it; on Linux, a udev rule must allow you to use the reader; on Android, allow USB access when asked. If you cannot change this, choose another way, such as a card-reading app or the institution's desk.".into(),
            (Self::ReaderNotSupported, Lang::Ja) => "このリーダーには対応していません。ソニー RC-S380 または RC-S300 をお使いください。".into(),
            (Self::ReaderNotSupported, Lang::En) => "This reader is not supported. Use a Sony RC-S380 or RC-S300.".into(),
            (Self::ReaderBusy, Lang::Ja) => "リーダーをほかのアプリやタブが使っています。それを閉じて、もう一度お試しください。".into(),
            (Self::ReaderBusy, Lang::En) => "Another app or tab is using the reader. Close it and try again.".into(),
            (Self::WebNfcCannotReachCard, Lang::Ja) => "このブラウザの NFC ではマイナンバーカードを読めません。ほかの方法を選んでください。".into(),
            (Self::WebNfcCannotReachCard, Lang::En) => "This browser's NFC cannot read the My Number card. Please choose another way.".into(),
            (Self::NoCard, Lang::Ja) => "リーダーにカードが見つかりません。マイナンバーカードをリーダーの上に置いてから、もう一度お試しください。".into(),
            (Self::NoCard, Lang::En) => "No card was found on the reader. Place your My Number card on the reader, then try again.".into(),
            (Self::CardRemoved, Lang::Ja) => "読み取りの途中でカードが離れました。カードをリーダーに置いたまま動かさずに、もう一度お試しください。".into(),
            (Self::CardRemoved, Lang::En) => "The card left the reader during the read. Keep the card on the reader without moving it and try again.".into(),
            (Self::CardSignalGarbled, Lang::Ja) => "カードとの通信が乱れました。カードをケースから出し、金属や他のカードから離して、リーダーの中央に平らに置いてから、もう一度お試しください。".into(),
            (Self::CardSignalGarbled, Lang::En) => "The card's signal was disturbed. Take the card out of its case, keep it away from metal and other cards, lay it flat in the middle of the reader and try again.".into(),
            (Self::SeveralCards, Lang::Ja) => "複数のカードが反応しました。リーダーの上にはマイナンバーカード1枚だけを置いて、もう一度お試しください。".into(),
            (Self::SeveralCards, Lang::En) => "More than one card answered. Leave only your My Number card on the reader and try again.".into(),
            (Self::ReaderFault, Lang::Ja) => "リーダーが一時的に動作できませんでした。リーダーを USB から抜き、少し待ってから差し直して、もう一度お試しください。".into(),
            (Self::ReaderFault, Lang::En) => "The reader could not work for a moment. Unplug it from USB, wait a little, plug it in again and try again.".into(),
            (Self::ReaderRefused, Lang::Ja) => "リーダーが要求を受け付けませんでした（カードの置き方の問題ではありません）。リーダーを USB から抜いて差し直し、ページを開き直してからお試しください。続く場合は、ほかの方法を選んでください。".into(),
            (Self::ReaderRefused, Lang::En) => "The reader refused the request (this is not about how the card lies). Unplug the reader, plug it in again, reload the page and try again. If it keeps happening, choose another way.".into(),
            (Self::ReadIncomplete, Lang::Ja) => "カードの読み取りが途中で止まりました。カードをリーダーの中央に置いたまま動かさずに、もう一度お試しください。".into(),
            (Self::ReadIncomplete, Lang::En) => "Reading the card stopped part-way. Keep the card still in the middle of the reader and try again.".into(),
            (Self::WrongPin { tries_left }, Lang::Ja) => format!("暗証番号が違います。あと {tries_left} 回まちがえるとロックされます。"),
            (Self::WrongPin { tries_left }, Lang::En) => format!("Wrong PIN. {tries_left} more wrong tries will lock it."),
            (Self::PinBlocked, Lang::Ja) => "暗証番号がロックされています。市区町村の窓口で解除してください。受付はほかの方法（窓口での確認など）で続けられます。".into(),
            (Self::PinBlocked, Lang::En) => "The PIN is locked. It can be reset at your municipal office. You can continue reception another way, e.g. at the desk.".into(),
            (Self::NotMyNumberCard, Lang::Ja) => "マイナンバーカードではないようです。マイナンバーカードを置いてください。".into(),
            (Self::NotMyNumberCard, Lang::En) => "This does not seem to be a My Number card. Place your My Number card on the reader.".into(),
            (Self::Timeout, Lang::Ja) => "リーダーが応答しません。リーダーを接続し直して、もう一度お試しください。".into(),
            (Self::Timeout, Lang::En) => "The reader does not answer. Reconnect it and try again.".into(),
            (Self::PracticeUnavailable, Lang::Ja) => "練習用カードのプログラムを読み込めませんでした。通信できる状態か確かめてから、「ページを読み込み直す」を押してください。".into(),
            (Self::PracticeUnavailable, Lang::En) => "The practice card could not be loaded. Check that you are online, then press \"Reload the page\".".into(),
            (Self::Reader(_), Lang::Ja) => "カードの読み取りに失敗しました。カードを置き直して、もう一度お試しください。".into(),
            (Self::Reader(_), Lang::En) => "Reading the card failed. Place the card again and try again.".into(),
        }
    }
}

impl CardError {
    /// The error for a rejected WebUSB `open()`, `selectConfiguration()` or
    /// `claimInterface()`, from the DOMException's `name` (and `message`, kept for logs):
    /// `SecurityError` ("Access denied") means the operating system holds the device;
    /// `NetworkError` / `InvalidStateError` mean another program or tab has claimed it.
    pub fn from_open_rejection(name: &str, detail: &str) -> Self {
        match name {
            "SecurityError" => Self::ReaderHeldBySystem,
            "NetworkError" | "InvalidStateError" => Self::ReaderBusy,
            _ => Self::Reader(format!("{name}: {detail}")),
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

    /// Every variant, so a new one without texts fails here.
    fn all_errors() -> Vec<CardError> {
        vec![
            CardError::WebUsbUnavailable,
            CardError::NoReaderChosen,
            CardError::AccessDenied,
            CardError::ReaderHeldBySystem,
            CardError::ReaderNotSupported,
            CardError::ReaderBusy,
            CardError::WebNfcCannotReachCard,
            CardError::NoCard,
            CardError::CardRemoved,
            CardError::CardSignalGarbled,
            CardError::SeveralCards,
            CardError::ReaderFault,
            CardError::ReaderRefused,
            CardError::ReadIncomplete,
            CardError::WrongPin { tries_left: 2 },
            CardError::PinBlocked,
            CardError::NotMyNumberCard,
            CardError::Timeout,
            CardError::PracticeUnavailable,
            CardError::Reader("x".into()),
        ]
    }

    #[test]
    fn every_error_has_both_languages() {
        let errors = all_errors();
        for e in &errors {
            assert_ne!(e.message(Lang::Ja), e.message(Lang::En));
        }
        // Each kind has its own words: no two variants share a message.
        for (i, a) in errors.iter().enumerate() {
            for b in &errors[i + 1..] {
                assert_ne!(a.message(Lang::En), b.message(Lang::En), "{a:?} / {b:?}");
                assert_ne!(a.message(Lang::Ja), b.message(Lang::Ja), "{a:?} / {b:?}");
            }
        }
        assert!(
            CardError::WrongPin { tries_left: 2 }
                .message(Lang::Ja)
                .contains('2')
        );
    }

    #[test]
    fn reader_faults_reach_the_patient_as_their_own_kind() {
        use uketsuke_card::TransportError;
        let cases = [
            (TransportError::NoCard, CardError::NoCard),
            (TransportError::CardRemoved, CardError::CardRemoved),
            (
                TransportError::Rf {
                    fault: RfFault::Garbled,
                    status: 1,
                },
                CardError::CardSignalGarbled,
            ),
            (
                TransportError::Rf {
                    fault: RfFault::Collision,
                    status: 8,
                },
                CardError::SeveralCards,
            ),
            (
                TransportError::Rf {
                    fault: RfFault::Reader,
                    status: 0x40,
                },
                CardError::ReaderFault,
            ),
            (
                TransportError::ReaderRefused("RC-S300 refused (63 01)".into()),
                CardError::ReaderRefused,
            ),
        ];
        for (transport, expected) in cases {
            assert_eq!(CardError::from(JpkiError::from(transport)), expected);
        }
        // "Place the card" is for a missing card only; a refusing reader never asks for it.
        assert!(
            CardError::NoCard
                .message(Lang::En)
                .contains("Place your My Number card")
        );
        for lang in [Lang::Ja, Lang::En] {
            let refused = CardError::ReaderRefused.message(lang);
            assert!(
                !refused.contains("Place") && !refused.contains("置いて"),
                "{refused}"
            );
        }
    }

    #[test]
    fn os_held_reader_is_not_told_to_use_https() {
        assert_eq!(
            CardError::from_open_rejection("SecurityError", ""),
            CardError::ReaderHeldBySystem
        );
        for lang in [Lang::Ja, Lang::En] {
            let text = CardError::ReaderHeldBySystem.message(lang);
            assert!(!text.contains("https"), "{text}");
            assert!(text.contains("Windows") && text.contains("Linux") && text.contains("Android"));
        }
        assert!(CardError::AccessDenied.message(Lang::En).contains("https"));
        assert_eq!(
            CardError::from_open_rejection("NetworkError", ""),
            CardError::ReaderBusy
        );
        assert_eq!(
            CardError::from_open_rejection("InvalidStateError", ""),
            CardError::ReaderBusy
        );
        assert_eq!(
            CardError::from_open_rejection("AbortError", "x"),
            CardError::Reader("AbortError: x".into())
        );
    }
}
