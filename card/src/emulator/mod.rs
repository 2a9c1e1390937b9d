//! Byte-level emulators of USB NFC readers with a virtual card in their field, implementing
//! [`UsbBulk`] from the device side so the real framing code runs unchanged in tests and in
//! the demo. Also a [`TraceRecorder`] that logs every transfer.

pub mod picc;
pub mod rcs300;
pub mod rcs380;

pub use picc::CardOptions;
pub use rcs300::Rcs300Emulator;
pub use rcs380::Rcs380Emulator;

use crate::transport::{TransportError, UsbBulk};
use picc::EmulatedPicc;

/// Whether the card is on the reader, and an optional removal after some frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FieldControl {
    removed: bool,
    remove_after_frames: Option<usize>,
}

impl FieldControl {
    /// Takes the card off (true) or puts it back (false).
    pub fn set_removed(&mut self, removed: bool) {
        self.removed = removed;
    }

    /// The card leaves the field once this many more RF frames have reached it.
    pub fn remove_after_frames(&mut self, frames: usize) {
        self.remove_after_frames = Some(frames);
    }

    /// Counts one frame towards a scheduled removal; false if the card is (now) gone.
    pub(crate) fn deliver(&mut self, picc: &mut EmulatedPicc) -> bool {
        if let Some(left) = self.remove_after_frames {
            if left == 0 {
                self.removed = true;
                self.remove_after_frames = None;
            } else {
                self.remove_after_frames = Some(left - 1);
            }
        }
        if self.removed {
            picc.power_off();
        }
        !self.removed
    }
}

/// Direction of a recorded transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Host to reader (bulk OUT).
    Out,
    /// Reader to host (bulk IN).
    In,
}

/// Wraps a [`UsbBulk`] and records every transfer, for fixtures and debugging.
#[derive(Debug)]
pub struct TraceRecorder<U> {
    inner: U,
    transfers: Vec<(Direction, Vec<u8>)>,
}

impl<U: UsbBulk> TraceRecorder<U> {
    pub fn new(inner: U) -> Self {
        Self {
            inner,
            transfers: Vec::new(),
        }
    }

    pub fn transfers(&self) -> &[(Direction, Vec<u8>)] {
        &self.transfers
    }

    /// One line per transfer: `> hex` for OUT, `< hex` for IN.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for (direction, bytes) in &self.transfers {
            text.push_str(match direction {
                Direction::Out => "> ",
                Direction::In => "< ",
            });
            for b in bytes {
                text.push_str(&format!("{b:02x}"));
            }
            text.push('\n');
        }
        text
    }

    pub fn into_inner(self) -> U {
        self.inner
    }
}

impl<U: UsbBulk> UsbBulk for TraceRecorder<U> {
    async fn write(&mut self, data: &[u8]) -> Result<(), TransportError> {
        self.transfers.push((Direction::Out, data.to_vec()));
        self.inner.write(data).await
    }

    async fn read(&mut self, timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        let data = self.inner.read(timeout_ms).await?;
        self.transfers.push((Direction::In, data.clone()));
        Ok(data)
    }
}
