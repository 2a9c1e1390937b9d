//! Web NFC, detection only. Browsers that have it (Chrome on Android) expose NDEF records, not
//! ISO-DEP (ISO 14443-4) transceive, and the JPKI application is reached only through ISO-DEP
//! APDUs. So Web NFC can never carry the My Number card flow; detecting it lets the UI say so
//! ("your phone has NFC, but the browser cannot use it for this card") and offer the eID-app
//! hand-off instead.

use crate::card::CardError;

/// What Web NFC offers in this browser.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WebNfcSupport {
    /// No `NDEFReader` (or not in a browser at all).
    #[default]
    Absent,
    /// `NDEFReader` exists: NDEF tags only, the card's chip is out of reach.
    NdefOnly,
}

impl WebNfcSupport {
    /// Whether the card's ISO-DEP can be reached this way: never, with a typed reason.
    pub fn iso_dep(self) -> Result<(), CardError> {
        Err(CardError::WebNfcCannotReachCard)
    }
}

/// `'NDEFReader' in window`.
#[cfg(feature = "hydrate")]
pub fn detect() -> WebNfcSupport {
    let present = web_sys::window()
        .map(|window| js_sys::Reflect::has(&window, &"NDEFReader".into()).unwrap_or(false))
        .unwrap_or(false);
    if present {
        WebNfcSupport::NdefOnly
    } else {
        WebNfcSupport::Absent
    }
}
