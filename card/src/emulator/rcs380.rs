//! A byte-level RC-S380 (NFC Port-100) emulator: answers the host's frames from the device side
//! of [`UsbBulk`], ACK first and result second, with a virtual Type B card in its field.

use std::collections::VecDeque;

use crate::emulator::FieldControl;
use crate::emulator::picc::{CardOptions, EmulatedPicc};
use crate::framing::rcs380::{
    ACK_FRAME, DEVICE_TO_HOST, Frame, HOST_TO_DEVICE, IN_SET_RF_106B, RF_STATUS_RECEIVE_TIMEOUT,
    cmd, decode_frame, encode_frame,
};
use crate::transport::{TransportError, UsbBulk};
use crate::virtual_card::VirtualCard;

/// Firmware version the emulator reports (minor, major): "1.11".
const FIRMWARE_VERSION: [u8; 2] = [0x11, 0x01];
/// Package data version reported (minor, major).
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
}

impl Rcs380Emulator {
    pub fn new(card: VirtualCard, options: CardOptions) -> Self {
        Self {
            picc: EmulatedPicc::new(card, options),
            field: FieldControl::default(),
            type_b_configured: false,
            pending: VecDeque::new(),
        }
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

    /// Result of InCommRF: status (4 bytes LE), one reserved byte, the card's frame.
    fn in_comm_rf(&mut self, params: &[u8]) -> Vec<u8> {
        let frame = params.get(2..).unwrap_or_default();
        let answer = if self.type_b_configured && self.field.deliver(&mut self.picc) {
            self.picc.handle_frame(frame)
        } else {
            None
        };
        match answer {
            Some(card_frame) => [&[0u8; 5][..], &card_frame].concat(),
            None => {
                let mut result = RF_STATUS_RECEIVE_TIMEOUT.to_le_bytes().to_vec();
                result.push(0);
                result
            }
        }
    }
}

impl UsbBulk for Rcs380Emulator {
    async fn write(&mut self, data: &[u8]) -> Result<(), TransportError> {
        match decode_frame(data) {
            // The host's ACK cancels anything pending.
            Ok(Frame::Ack) => self.pending.clear(),
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
