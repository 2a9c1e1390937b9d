//! A byte-level RC-S300 emulator: answers escape messages on the vendor interface like the
//! reader, runs the Type B activation itself on switch protocol, and relays transceive frames
//! to a virtual card.

use std::collections::VecDeque;

use crate::emulator::FieldControl;
use crate::emulator::picc::{ATTRIB_CMD, CardOptions, EmulatedPicc};
use crate::framing::rcs300::{
    P2_CONTROL, P2_SWITCH_PROTOCOL, P2_TRANSMISSION, PC_TO_RDR_ESCAPE, PROTOCOL_LAYER_4,
    PROTOCOL_TYPE_B, PSEUDO_CLA, PSEUDO_INS, RDR_TO_PC_ESCAPE, READER_STATUS_OK, ReaderAnswer,
    TRANSMISSION_TRAILER, decode_message, encode_with_type, parse_tlvs, tag,
};
use crate::transport::{TransportError, UsbBulk};
use crate::virtual_card::VirtualCard;

/// Generic-error status byte of a failed operation.
const READER_STATUS_FAILED: u8 = 0x01;
/// SW the reader reports when no card answers activation.
const SW_NO_CARD: [u8; 2] = [0x6A, 0x81];
/// SW the reader reports when the card does not answer a transceive in time.
const SW_RF_TIMEOUT: [u8; 2] = [0x63, 0x01];
/// SW for a command the emulator does not know.
const SW_UNSUPPORTED: [u8; 2] = [0x6A, 0x80];
/// REQB the reader sends during activation.
const REQB: [u8; 3] = [0x05, 0x00, 0x00];
/// FSDI the emulated reader announces in its own ATTRIB by default (256 bytes).
pub const DEFAULT_READER_FSDI: u8 = 8;

/// The emulated reader.
#[derive(Debug)]
pub struct Rcs300Emulator {
    picc: EmulatedPicc,
    field: FieldControl,
    transparent: bool,
    rf_on: bool,
    reader_fsdi: u8,
    pending: VecDeque<Vec<u8>>,
}

impl Rcs300Emulator {
    pub fn new(card: VirtualCard, options: CardOptions) -> Self {
        Self {
            picc: EmulatedPicc::new(card, options),
            field: FieldControl::default(),
            transparent: false,
            rf_on: false,
            reader_fsdi: DEFAULT_READER_FSDI,
            pending: VecDeque::new(),
        }
    }

    /// Sets the frame size the reader accepts from the card (forces response chaining).
    pub fn with_reader_fsdi(mut self, fsdi: u8) -> Self {
        self.reader_fsdi = fsdi;
        self
    }

    pub fn field(&mut self) -> &mut FieldControl {
        &mut self.field
    }

    pub fn card(&self) -> &VirtualCard {
        self.picc.card()
    }

    pub fn into_card(self) -> VirtualCard {
        self.picc.into_card()
    }

    fn answer(status: u8, sw: [u8; 2], objects: Vec<(u16, Vec<u8>)>) -> ReaderAnswer {
        ReaderAnswer {
            status,
            sw,
            objects,
        }
    }

    fn ok(objects: Vec<(u16, Vec<u8>)>) -> ReaderAnswer {
        Self::answer(READER_STATUS_OK, [0x90, 0x00], objects)
    }

    fn failed(sw: [u8; 2]) -> ReaderAnswer {
        Self::answer(READER_STATUS_FAILED, sw, Vec::new())
    }

    /// Splits `FF 50 00 P2 ...` into P2 and its data objects.
    fn parse_pseudo_apdu(payload: &[u8]) -> Option<(u8, &[u8])> {
        match payload {
            [
                PSEUDO_CLA,
                PSEUDO_INS,
                0x00,
                P2_TRANSMISSION,
                0x00,
                h,
                l,
                rest @ ..,
            ] => {
                let len = usize::from(u16::from_be_bytes([*h, *l]));
                let (data, trailer) = rest.split_at_checked(len)?;
                (trailer == TRANSMISSION_TRAILER).then_some((P2_TRANSMISSION, data))
            }
            [PSEUDO_CLA, PSEUDO_INS, 0x00, p2, lc, rest @ ..] => {
                let (data, le) = rest.split_at_checked(usize::from(*lc))?;
                (le == [0x00]).then_some((*p2, data))
            }
            _ => None,
        }
    }

    fn handle(&mut self, payload: &[u8]) -> ReaderAnswer {
        let Some((p2, data)) = Self::parse_pseudo_apdu(payload) else {
            return Self::failed(SW_UNSUPPORTED);
        };
        let Ok(objects) = parse_tlvs(data) else {
            return Self::failed(SW_UNSUPPORTED);
        };
        match p2 {
            P2_CONTROL => self.control(&objects),
            P2_SWITCH_PROTOCOL => self.switch_protocol(&objects),
            P2_TRANSMISSION => self.transceive(&objects),
            _ => Self::failed(SW_UNSUPPORTED),
        }
    }

    fn control(&mut self, objects: &[(u16, Vec<u8>)]) -> ReaderAnswer {
        for (t, _) in objects {
            match *t {
                tag::START_TRANSPARENT => self.transparent = true,
                tag::END_TRANSPARENT => {
                    self.transparent = false;
                    self.picc.power_off();
                }
                tag::RF_OFF => {
                    self.rf_on = false;
                    self.picc.power_off();
                }
                tag::RF_ON => self.rf_on = true,
                _ => return Self::failed(SW_UNSUPPORTED),
            }
        }
        Self::ok(Vec::new())
    }

    /// Activation as the reader does it: REQB, then ATTRIB with the card's PUPI.
    fn switch_protocol(&mut self, objects: &[(u16, Vec<u8>)]) -> ReaderAnswer {
        match objects {
            [(tag::SWITCH_PROTOCOL, value)] if value == &[PROTOCOL_TYPE_B, PROTOCOL_LAYER_4] => {}
            _ => return Self::failed(SW_UNSUPPORTED),
        }
        if !self.transparent || !self.rf_on || !self.field.deliver(&mut self.picc) {
            return Self::failed(SW_NO_CARD);
        }
        self.picc.power_off();
        let Some(atqb) = self.picc.handle_frame(&REQB) else {
            return Self::failed(SW_NO_CARD);
        };
        let mut attrib = vec![ATTRIB_CMD];
        attrib.extend_from_slice(atqb.get(1..5).unwrap_or_default());
        attrib.extend_from_slice(&[0x00, self.reader_fsdi & 0x0F, 0x01, 0x00]);
        match self.picc.handle_frame(&attrib) {
            Some(_) => Self::ok(Vec::new()),
            None => Self::failed(SW_NO_CARD),
        }
    }

    fn transceive(&mut self, objects: &[(u16, Vec<u8>)]) -> ReaderAnswer {
        let Some((_, frame)) = objects.iter().find(|(t, _)| *t == tag::TRANSCEIVE) else {
            return Self::failed(SW_UNSUPPORTED);
        };
        if !self.transparent || !self.rf_on || !self.field.deliver(&mut self.picc) {
            return Self::failed(SW_RF_TIMEOUT);
        }
        match self.picc.handle_frame(frame) {
            Some(answer) => Self::ok(vec![
                (tag::RESPONSE_STATUS, vec![0x00, 0x00]),
                (tag::RESPONSE_DATA, answer),
            ]),
            None => Self::failed(SW_RF_TIMEOUT),
        }
    }
}

impl UsbBulk for Rcs300Emulator {
    async fn write(&mut self, data: &[u8]) -> Result<(), TransportError> {
        // A malformed message gets no answer at all, so the host times out as with hardware.
        let Ok(message) = decode_message(data) else {
            return Ok(());
        };
        if message.message_type != PC_TO_RDR_ESCAPE {
            return Ok(());
        }
        let answer = self.handle(&message.payload).encode();
        if let Ok(bytes) = encode_with_type(RDR_TO_PC_ESCAPE, message.seq, [0; 3], &answer) {
            self.pending.push_back(bytes);
        }
        Ok(())
    }

    async fn read(&mut self, _timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        self.pending.pop_front().ok_or(TransportError::Timeout)
    }
}
