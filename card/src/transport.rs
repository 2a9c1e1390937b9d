//! The two narrow interfaces between layers: [`Transport`] carries APDUs to a card, and
//! [`UsbBulk`] carries raw bulk transfers to a USB reader. Reader framings turn a `UsbBulk`
//! into a `Transport`; the browser (WebUSB) and the tests (emulators) supply the `UsbBulk`.
//!
//! Both traits are async because WebUSB is promise-based: the browser cannot block on a
//! transfer. No I/O runtime is needed: the framings only `.await` the trait methods, so the
//! browser drives them with its event loop (`wasm-bindgen-futures`) and native tests with
//! [`block_on_ready`], since emulators and the virtual card answer without waiting.

// The futures are deliberately not `Send`: WebUSB objects live on the browser's one thread,
// and nothing here is shared across threads. `async fn` in a public trait cannot promise
// `Send`, which is exactly what we want, so rustc's reminder about it is silenced.
#![allow(async_fn_in_trait)]

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

/// A failure below the card application: the card, the RF link, the reader or USB.
///
/// Each variant is one thing the patient can act on differently, so the UI never has to read
/// the detail strings (they are for logs).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No card answered the activation: there is none on the reader (place the card).
    /// RC-S380: InCommRF status `80 00 00 00` (receive timeout) to REQB; RC-S300: result
    /// byte `02` (sent, nothing answered) to switch protocol.
    #[error("no card answered: none is on the reader")]
    NoCard,
    /// The card stopped answering after it was activated: it was taken off the reader.
    #[error("the card was removed from the reader")]
    CardRemoved,
    /// The reader reported an RF error other than "nothing answered" (see [`RfFault`]);
    /// `status` is the reader's raw status word (RC-S380 InCommRF status, little-endian u32).
    #[error("RF error {fault:?} (status {status:08X})")]
    Rf { fault: RfFault, status: u32 },
    /// The reader refused the request itself (RC-S300 result byte `01`: refused, malformed,
    /// wrong length, unsupported value; RC-S380 setup command with a non-zero status). Not a
    /// card problem: placing the card again does not help.
    #[error("the reader refused the request: {0}")]
    ReaderRefused(String),
    /// The reader itself did not answer in time.
    #[error("the reader did not answer in time")]
    Timeout,
    /// The reader answered with bytes that break its protocol.
    #[error("reader protocol error: {0}")]
    Protocol(String),
    /// The USB layer or the platform failed.
    #[error("I/O error: {0}")]
    Io(String),
}

/// What kind of RF error a reader reported, in terms of what helps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RfFault {
    /// The card's answer arrived damaged (protocol, parity, CRC, overflow or length error): the
    /// card lies badly, in a case, or near metal.
    Garbled,
    /// Several cards answered at once.
    Collision,
    /// The reader's own RF side failed (temperature, RF off, external field, transmit timeout,
    /// or an error bit the host does not know).
    Reader,
}

/// Sends one command APDU to the card and returns the whole response APDU (data + SW1 SW2).
pub trait Transport {
    async fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    async fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu).await
    }
}

/// A pair of USB bulk endpoints of a reader, seen from the host.
pub trait UsbBulk {
    /// Writes one bulk OUT transfer.
    async fn write(&mut self, data: &[u8]) -> Result<(), TransportError>;
    /// Reads one bulk IN transfer, failing with [`TransportError::Timeout`] after `timeout_ms`.
    /// Every implementation must keep this bound (the browser races the transfer against a
    /// timer), so a silent reader can never hang the flow.
    async fn read(&mut self, timeout_ms: u32) -> Result<Vec<u8>, TransportError>;
    /// Reads one bulk IN transfer if the reader has one within `timeout_ms`: `Ok(None)` when it
    /// had nothing (the read timed out). Used to drain data a killed session left in the reader
    /// ([`drain`]); a timeout here is the expected end, not a failure.
    async fn read_if_any(&mut self, timeout_ms: u32) -> Result<Option<Vec<u8>>, TransportError> {
        match self.read(timeout_ms).await {
            Ok(data) => Ok(Some(data)),
            Err(TransportError::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl<U: UsbBulk + ?Sized> UsbBulk for &mut U {
    async fn write(&mut self, data: &[u8]) -> Result<(), TransportError> {
        (**self).write(data).await
    }
    async fn read(&mut self, timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        (**self).read(timeout_ms).await
    }
    async fn read_if_any(&mut self, timeout_ms: u32) -> Result<Option<Vec<u8>>, TransportError> {
        (**self).read_if_any(timeout_ms).await
    }
}

/// How long a drain read waits for leftover data before the reader counts as empty, in ms.
/// nfcpy waits 10 ms (RC-S380 driver start-up); browsers clamp timers and add a promise hop,
/// so a little more is allowed here.
pub const DRAIN_QUIET_MS: u32 = 30;
/// Most bulk IN transfers a drain discards before giving up: a killed session leaves at most
/// an ACK and one result per command it had in flight.
pub const DRAIN_MAX_TRANSFERS: usize = 16;

/// Discards whatever a killed session left in the reader (a page reload during a read leaves
/// the reader's answer unread): reads with a short timeout until a read finds nothing.
/// Returns how many transfers were discarded; fails with [`TransportError::Protocol`] if the
/// reader keeps sending after [`DRAIN_MAX_TRANSFERS`]. Source: nfcpy's RC-S380 `Chipset`
/// start-up (reads with a 10 ms timeout until one times out), F03 in `shared/field/readers`.
pub async fn drain<U: UsbBulk + ?Sized>(usb: &mut U) -> Result<usize, TransportError> {
    for discarded in 0..=DRAIN_MAX_TRANSFERS {
        if usb.read_if_any(DRAIN_QUIET_MS).await?.is_none() {
            return Ok(discarded);
        }
    }
    Err(TransportError::Protocol(
        "the reader keeps sending data that nobody asked for".to_owned(),
    ))
}

/// Bound on the polls [`block_on_ready`] makes before giving up.
const MAX_READY_POLLS: usize = 1_000_000;

/// Runs a future whose I/O never waits (emulators, the virtual card) to completion on the
/// current thread, without a runtime. Returns `None` if the future keeps returning `Pending`,
/// i.e. it waits on real I/O — that belongs to an executor (the browser's event loop), not here.
pub fn block_on_ready<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..MAX_READY_POLLS {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
    }
    None
}
