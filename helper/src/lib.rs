//! The desktop card helper (`uketsuke-card-helper`): the app half of the hand-off protocol of
//! the card step (`uketsuke-eid://sign#<request>`, `app/src/pages/card_step/hand_off.rs`) for
//! desktops with a PC/SC card reader.
//!
//! - [`protocol`]: the request, the signer's rule (the origin rule, shared with the server in
//!   `uketsuke_backend::contract::binding`), the result and the `#error=<code>` answers;
//! - [`reader`]: the card through PC/SC (the `pcsc` crate) and the JPKI AP of `uketsuke-card`;
//! - [`i18n`]: the window's words in Japanese and English;
//! - [`install`]: registering the URL scheme for the current user (Linux, Windows);
//! - `gui` (feature `gui`): the window (eframe/egui, AccessKit);
//! - `stdin_mode`, `vpcd` (feature `test-mode`, never in a release build): the PIN from
//!   standard input instead of the window, and a virtual card on vpcd for the tests.

pub mod browser;
pub mod i18n;
pub mod install;
pub mod protocol;
pub mod reader;

#[cfg(feature = "gui")]
pub mod gui;
#[cfg(all(feature = "test-mode", unix))]
pub mod pcscd;
#[cfg(feature = "test-mode")]
pub mod stdin_mode;
#[cfg(feature = "test-mode")]
pub mod vpcd;
