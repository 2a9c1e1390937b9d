//! A byte-level RC-S380 (NFC Port-100) emulator: answers the host's frames from the device side
//! of [`UsbBulk`], ACK first and result second, with a virtual Type B card in its field.
//!
//! Each behaviour follows a recorded source (files in `shared/field/readers/`):
//! - frames, ACK then result, firmware 1.11 and PD data version 1.00: F01 (real RC-S380
//!   frames from nfcpy issue #11 and the webusb-felica demo);
//! - an InCommRF error result is `D7 05` and the four status bytes only, no fifth byte: F02
//!   (nfcpy `tests/test_clf_rcs380.py`, e.g. `RSP('05 80000000')` when no card answers);
//! - what a killed session left in the IN queue stays there until the host reads it; the
//!   host's ACK aborts a pending command but does not empty the queue: F03 (nfcpy's driver
//!   drains after the ACK, and its test fixture feeds one leftover transfer).

use std::collections::VecDeque;

use crate::emulator::FieldControl;
use crate::emulator::picc::{CardOptions, EmulatedPicc};
use crate::framing::rcs380::{
    ACK_FRAME, DEVICE_TO_HOST, Frame, HOST_TO_DEVICE, IN_SET_RF_106B, RF_STATUS_RECEIVE_TIMEOUT,
    cmd, decode_frame, encode_frame,
};
use crate::transport::{TransportError, UsbBulk};
use crate::virtual_card::VirtualCard;

/// Firmware version the emulator reports (minor, major): "1.11" (F01 `D7 21 11 01`).
const FIRMWARE_VERSION: [u8; 2] = [0x11, 0x01];
/// Package data version reported (minor, major): "1.00" (F01 `D7 23 00 01`).
const PD_DATA_VERSION: [u8; 2] = [0x00, 0x01];
/// Status byte of a successful setup command.
const STATUS_OK: u8 = 0x00;
/// Status byte for a parameter the emulator does not support.
const STATUS_PARAMETER_ERROR: u8 = 0x01;

/// The emulated reader.
#[derive(Debug)]
pub struct Rcs380Emulator {
    picc: EmulatedPicc,
    field: FieldControl,
    type_b_configured: bool,
    pending: VecDeque<Vec<u8>>,
    /// InCommRF statuses to report instead of delivering a frame (F02 shapes): each after
    /// this many more InCommRF commands.
    rf_faults: VecDeque<(usize, u32)>,
}

impl Rcs380Emulator {
    pub fn new(card: VirtualCard, options: CardOptions) -> Self {
        Self {
            picc: EmulatedPicc::new(card, options),
            field: FieldControl::default(),
            type_b_configured: false,
            pending: VecDeque::new(),
            rf_faults: VecDeque::new(),
        }
    }

    /// The next InCommRF answers report this status (e.g. `rf_status::CRC_ERROR`) instead of
    /// reaching the card, one per call, as the chip does for a damaged or colliding answer:
    /// four status bytes and nothing else (F02).
    pub fn inject_rf_status(&mut self, status: u32) {
        self.rf_faults.push_back((0, status));
    }

    /// Like [`Self::inject_rf_status`], after `frames` more InCommRF commands went through.
    pub fn inject_rf_status_after(&mut self, frames: usize, status: u32) {
        self.rf_faults.push_back((frames, status));
    }

    /// Bulk IN transfers the host has not read yet (what a killed session leaves behind).
    pub fn unread_transfers(&self) -> usize {
        self.pending.len()
    }

    /// Switches for card presence and removal.
    pub fn field(&mut self) -> &mut FieldControl {
        &mut self.field
    }

    pub fn card(&self) -> &VirtualCard {
        self.picc.card()
    }

    /// Takes the card out (keeping its retry counter for the next test step).
    pub fn into_card(self) -> VirtualCard {
        self.picc.into_card()
    }

    fn respond(&mut self, code: u8, result: &[u8]) {
        let mut data = vec![DEVICE_TO_HOST, code.wrapping_add(1)];
        data.extend_from_slice(result);
        self.pending.push_back(ACK_FRAME.to_vec());
        if let Ok(frame) = encode_frame(&data) {
            self.pending.push_back(frame);
        }
    }

    fn handle_command(&mut self, code: u8, params: &[u8]) {
        let result = match code {
            cmd::SET_COMMAND_TYPE | cmd::IN_SET_PROTOCOL => vec![STATUS_OK],
            cmd::GET_FIRMWARE_VERSION => FIRMWARE_VERSION.to_vec(),
            cmd::GET_PD_DATA_VERSION => PD_DATA_VERSION.to_vec(),
            cmd::SWITCH_RF => {
                if params.first() == Some(&0) {
                    self.picc.power_off();
                }
                vec![STATUS_OK]
            }
            cmd::IN_SET_RF => {
                self.type_b_configured = params == IN_SET_RF_106B;
                vec![if self.type_b_configured {
                    STATUS_OK
                } else {
                    STATUS_PARAMETER_ERROR
                }]
            }
            cmd::IN_COMM_RF => self.in_comm_rf(params),
            _ => vec![STATUS_PARAMETER_ERROR],
        };
        self.respond(code, &result);
    }

    /// Result of InCommRF. Success: status `00 00 00 00`, one more byte, the card's frame
    /// (F01 `D7 05 00 00 00 00 08 04 00`; the byte is 08 there for Type A, 00 in nfcpy's
    /// Type B test). Error: the four status bytes only (F02 `D7 05 80 00 00 00`).
    fn in_comm_rf(&mut self, params: &[u8]) -> Vec<u8> {
        match self.rf_faults.front_mut() {
            Some((0, status)) => {
                let status = *status;
                self.rf_faults.pop_front();
                return status.to_le_bytes().to_vec();
            }
            Some((left, _)) => *left -= 1,
            None => {}
        }
        let frame = params.get(2..).unwrap_or_default();
        let answer = if self.type_b_configured && self.field.deliver(&mut self.picc) {
            self.picc.handle_frame(frame)
        } else {
            None
        };
        match answer {
            Some(card_frame) => [&[0u8; 5][..], &card_frame].concat(),
            None => RF_STATUS_RECEIVE_TIMEOUT.to_le_bytes().to_vec(),
        }
    }
}

impl UsbBulk for Rcs380Emulator {
    async fn write(&mut self, data: &[u8]) -> Result<(), TransportError> {
        match decode_frame(data) {
            // The host's ACK aborts a command in progress; commands complete at once here, so
            // there is nothing to abort, and what is already queued for bulk IN stays (F03).
            Ok(Frame::Ack) => {}
            Ok(Frame::Data(frame)) => match frame.as_slice() {
                [HOST_TO_DEVICE, code, params @ ..] => self.handle_command(*code, params),
                _ => self
                    .pending
                    .push_back(crate::framing::rcs380::ERROR_FRAME.to_vec()),
            },
            Ok(Frame::Error) | Err(_) => self
                .pending
                .push_back(crate::framing::rcs380::ERROR_FRAME.to_vec()),
        }
        Ok(())
    }

    async fn read(&mut self, _timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        self.pending.pop_front().ok_or(TransportError::Timeout)
    }
}
