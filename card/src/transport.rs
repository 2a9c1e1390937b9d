//! The two narrow interfaces between layers: [`Transport`] carries APDUs to a card, and
//! [`UsbBulk`] carries raw bulk transfers to a USB reader. Reader framings turn a `UsbBulk`
//! into a `Transport`; the browser (WebUSB) and the tests (emulators) supply the `UsbBulk`.

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
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(apdu)
    }
}

/// A pair of USB bulk endpoints of a reader, seen from the host.
pub trait UsbBulk {
    /// Writes one bulk OUT transfer.
    fn write(&mut self, data: &[u8]) -> Result<(), TransportError>;
    /// Reads one bulk IN transfer, failing with [`TransportError::Timeout`] after `timeout_ms`.
    fn read(&mut self, timeout_ms: u32) -> Result<Vec<u8>, TransportError>;
}

impl<U: UsbBulk + ?Sized> UsbBulk for &mut U {
    fn write(&mut self, data: &[u8]) -> Result<(), TransportError> {
        (**self).write(data)
    }
    fn read(&mut self, timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        (**self).read(timeout_ms)
    }
}
