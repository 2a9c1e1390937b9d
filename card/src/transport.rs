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
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The card stopped answering: it was taken off the reader (or never placed).
    #[error("the card was removed from the reader")]
    CardRemoved,
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
}

impl<U: UsbBulk + ?Sized> UsbBulk for &mut U {
    async fn write(&mut self, data: &[u8]) -> Result<(), TransportError> {
        (**self).write(data).await
    }
    async fn read(&mut self, timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        (**self).read(timeout_ms).await
    }
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
