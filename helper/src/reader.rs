//! The card through PC/SC (the `pcsc` crate: WinSCard on Windows, pcsc-lite on Linux,
//! PCSC.framework on macOS): find a reader with a card, and run the JPKI application
//! (`uketsuke_card::jpki`) over it in one exclusive card session (a PC/SC transaction), so no
//! other program selects another application between the PIN and the signature.
//!
//! Readers are standard CCID readers (contact or contactless, e.g. Sony RC-S300 with its PC/SC
//! driver, ACS, Identiv, NTT-ME): PC/SC turns the card into APDUs, so no reader framing is
//! needed here.

use std::ffi::{CStr, CString};
use std::time::Duration;

use pcsc::{Context, Protocols, ReaderState, Scope, ShareMode, State};
use uketsuke_card::jpki::JpkiAp;
use uketsuke_card::transport::block_on_ready;
use uketsuke_card::{Authentication, JpkiError, Pin, PinStatus, Transport, TransportError};

use crate::protocol::ErrorCode;

/// Why the card could not be used, in terms of what the patient does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardFailure {
    /// No reader is connected, or the smart-card service is not running (pcscd, or Windows'
    /// Smart Card service: `SCARD_E_NO_SERVICE`, `SCARD_E_NO_READERS_AVAILABLE`).
    #[error("no card reader is connected")]
    NoReader,
    /// A reader, but no card on it.
    #[error("no card on the reader")]
    NoCard,
    /// The card left the reader during the session.
    #[error("the card was removed")]
    CardRemoved,
    /// The card has no JPKI application.
    #[error("not a My Number card")]
    NotMyNumberCard,
    /// No PIN tries are left.
    #[error("the PIN is blocked")]
    PinBlocked,
    /// The PIN was wrong; the card says how many tries remain.
    #[error("wrong PIN; {tries_left} tries left")]
    WrongPin { tries_left: u8 },
    /// Anything else; the detail is for the log, never shown as words to the patient.
    #[error("reader or card failure: {0}")]
    Failed(String),
}

impl CardFailure {
    /// The protocol's `#error=<code>` for a failure that ends the hand-off (a wrong PIN does
    /// not: the patient tries again in the PIN window).
    pub fn error_code(&self) -> ErrorCode {
        match self {
            CardFailure::NoReader => ErrorCode::NoReader,
            CardFailure::NoCard => ErrorCode::NoCard,
            CardFailure::CardRemoved => ErrorCode::CardRemoved,
            CardFailure::NotMyNumberCard => ErrorCode::NotMyNumberCard,
            CardFailure::PinBlocked => ErrorCode::PinBlocked,
            CardFailure::WrongPin { .. } | CardFailure::Failed(_) => ErrorCode::AppFailed,
        }
    }
}

impl From<JpkiError> for CardFailure {
    fn from(e: JpkiError) -> Self {
        match e {
            JpkiError::WrongPin { tries_left } => CardFailure::WrongPin { tries_left },
            JpkiError::PinBlocked => CardFailure::PinBlocked,
            JpkiError::NotMyNumberCard => CardFailure::NotMyNumberCard,
            JpkiError::CardRemoved => CardFailure::CardRemoved,
            JpkiError::NoCard => CardFailure::NoCard,
            other => CardFailure::Failed(other.to_string()),
        }
    }
}

fn failure_of(e: pcsc::Error) -> CardFailure {
    match e {
        pcsc::Error::NoService
        | pcsc::Error::ServiceStopped
        | pcsc::Error::NoReadersAvailable
        | pcsc::Error::UnknownReader
        | pcsc::Error::ReaderUnavailable => CardFailure::NoReader,
        pcsc::Error::NoSmartcard => CardFailure::NoCard,
        pcsc::Error::RemovedCard | pcsc::Error::ResetCard => CardFailure::CardRemoved,
        other => CardFailure::Failed(other.to_string()),
    }
}

/// How long a failed exchange waits for the service to notice a removed card.
pub const REMOVAL_SETTLE: Duration = Duration::from_millis(1500);

/// The PC/SC service of this machine.
pub struct Readers {
    context: Context,
}

impl Readers {
    /// Connects to the smart-card service (user scope). Fails with [`CardFailure::NoReader`]
    /// when the service is not running (pcscd starts on demand on most Linux desktops).
    pub fn open() -> Result<Self, CardFailure> {
        Context::establish(Scope::User)
            .map(|context| Readers { context })
            .map_err(failure_of)
    }

    /// The readers' names, in the service's order.
    pub fn names(&self) -> Result<Vec<CString>, CardFailure> {
        let names = self.context.list_readers_owned().map_err(failure_of)?;
        if names.is_empty() {
            return Err(CardFailure::NoReader);
        }
        Ok(names)
    }

    /// The first reader with a card on it, waiting up to `wait` for one to be placed.
    /// [`CardFailure::NoReader`] without readers, [`CardFailure::NoCard`] when none had a card
    /// in time.
    pub fn reader_with_card(&self, wait: Duration) -> Result<CString, CardFailure> {
        let names = self.names()?;
        let mut states: Vec<ReaderState> = names
            .iter()
            .map(|name| ReaderState::new(name.clone(), State::UNAWARE))
            .collect();
        let deadline = std::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.context.get_status_change(Some(left), &mut states) {
                Ok(()) | Err(pcsc::Error::Timeout) => {}
                Err(e) => return Err(failure_of(e)),
            }
            if let Some(state) = states.iter().find(|s| {
                s.event_state().contains(State::PRESENT) && !s.event_state().contains(State::MUTE)
            }) {
                return Ok(state.name().to_owned());
            }
            if left.is_zero() {
                return Err(CardFailure::NoCard);
            }
            for state in &mut states {
                state.sync_current_state();
            }
        }
    }

    /// True when the card on `reader` is gone, or goes within [`REMOVAL_SETTLE`]: after a
    /// failed exchange the service may not have noticed the removal yet (pcscd polls).
    fn card_gone(&self, reader: &CStr) -> bool {
        let mut states = [ReaderState::new(reader.to_owned(), State::UNAWARE)];
        let deadline = std::time::Instant::now() + REMOVAL_SETTLE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.context.get_status_change(Some(left), &mut states) {
                Ok(()) | Err(pcsc::Error::Timeout) => {}
                Err(_) => return true,
            }
            if !states[0].event_state().contains(State::PRESENT) {
                return true;
            }
            if left.is_zero() {
                return false;
            }
            states[0].sync_current_state();
        }
    }

    /// Runs `session` on the card in `reader`, inside one PC/SC transaction.
    fn with_card<R>(
        &self,
        reader: &CStr,
        session: impl FnOnce(&mut PcscTransport<'_>) -> Result<R, CardFailure>,
    ) -> Result<R, CardFailure> {
        let mut card = self
            .context
            .connect(reader, ShareMode::Shared, Protocols::ANY)
            .map_err(failure_of)?;
        let transaction = card.transaction().map_err(failure_of)?;
        let mut transport = PcscTransport {
            card: &transaction,
            readers: self,
            reader,
        };
        let result = session(&mut transport);
        // Ending the transaction resets the card, so the verified PIN does not outlive this
        // session; a removed card cannot be reset and is simply released.
        let _ = transaction.end(pcsc::Disposition::ResetCard);
        result
    }

    /// Tries left on the user-authentication PIN, without spending one.
    pub fn pin_status(&self, reader: &CStr) -> Result<PinStatus, CardFailure> {
        self.with_card(reader, |transport| {
            let mut ap = JpkiAp::new(transport);
            run(async {
                ap.select_ap().await?;
                ap.pin_status().await
            })
        })
    }

    /// Reads the user-authentication certificate, verifies `pin` and signs SHA-256 of
    /// `message` (PKCS#1 v1.5), in one card session.
    pub fn sign(
        &self,
        reader: &CStr,
        pin: &Pin,
        message: &[u8],
    ) -> Result<Authentication, CardFailure> {
        self.with_card(reader, |transport| {
            run(uketsuke_card::authenticate(transport, pin, message))
        })
    }
}

/// Runs a card future: PC/SC calls block, so the future is ready at its first poll.
fn run<T>(future: impl Future<Output = Result<T, JpkiError>>) -> Result<T, CardFailure> {
    match block_on_ready(future) {
        Some(result) => result.map_err(CardFailure::from),
        None => Err(CardFailure::Failed(
            "the card session did not finish".to_owned(),
        )),
    }
}

/// APDUs through a PC/SC card handle.
struct PcscTransport<'a> {
    card: &'a pcsc::Card,
    readers: &'a Readers,
    reader: &'a CStr,
}

impl Transport for PcscTransport<'_> {
    async fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut buffer = vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
        match self.card.transmit(apdu, &mut buffer) {
            // Every response APDU has its status word.
            Ok(response) if response.len() >= 2 => Ok(response.to_vec()),
            Err(pcsc::Error::RemovedCard | pcsc::Error::ResetCard | pcsc::Error::NoSmartcard) => {
                Err(TransportError::CardRemoved)
            }
            // A reader that lost the card mid-exchange reports a failed (or empty) exchange
            // first; the card's absence decides.
            _ if self.readers.card_gone(self.reader) => Err(TransportError::CardRemoved),
            Ok(_) => Err(TransportError::Io(
                "response without status word".to_owned(),
            )),
            Err(e) => Err(TransportError::Io(e.to_string())),
        }
    }
}
