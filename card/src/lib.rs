//! My Number card access in plain Rust: APDU, the JPKI application, reader framings, and a
//! virtual card.
//!
//! Layers, bottom up (each talks only to the one below through a narrow trait):
//! - [`transport::UsbBulk`]: raw USB bulk transfers (WebUSB in the browser, emulators in tests);
//! - [`framing`]: reader protocols (RC-S380 NFC Port-100, RC-S300) and ISO-DEP, turning a
//!   `UsbBulk` into a [`transport::Transport`] that carries APDUs;
//! - [`jpki`]: the JPKI application client ([`jpki::authenticate`]).
//!
//! With the `virtual-card` feature: [`virtual_card`], [`emulator`] and [`test_ca`].
//! With the `verify` feature (server side): [`certs`], certificate and CRL verification.

pub mod apdu;
pub mod der_len;
pub mod framing;
pub mod jpki;
pub mod pin;
pub mod status;
pub mod transport;

#[cfg(feature = "verify")]
pub mod certs;

#[cfg(feature = "virtual-card")]
pub mod emulator;
#[cfg(feature = "virtual-card")]
pub mod test_ca;
#[cfg(feature = "virtual-card")]
pub mod virtual_card;

pub use framing::rcs300::{Rcs300Config, Rcs300Session};
pub use framing::rcs380::{Rcs380Config, Rcs380Session};
pub use jpki::{
    Authentication, JpkiError, PinStatus, authenticate, pin_status, read_certificate_without_pin,
};
pub use pin::{Pin, PinError};
pub use status::StatusWord;
pub use transport::{RfFault, Transport, TransportError, UsbBulk};
#[cfg(feature = "virtual-card")]
pub use virtual_card::VirtualCard;
