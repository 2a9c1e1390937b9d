//! A byte-level RC-S300 emulator: answers escape messages on the vendor interface like the
//! reader, runs the Type B activation itself on switch protocol, and relays transceive frames
//! to a virtual card.
//!
//! Each behaviour follows a recorded source (files in `shared/field/readers/`):
//! - the result byte of `C0 03 <result> <SW>`: `00 90 00` accepted, `02 64 01` sent and
//!   nothing answered (empty field), `01 63 01` refused (RF on outside a transparent session),
//!   `01 64 01` malformed, `01 67 00` wrong object length (switch protocol with one value
//!   byte), `01 6A 81` unsupported value: F05 (answers of a real RC-S300 recorded by the
//!   EspUsbHost probe);
//! - the switch-protocol answer carries `8F 01 08` after the status, and a transceive answer
//!   carries `92 01 00`, `96 02 00 00` and the card's frame in `97`: F06;
//! - a transceive without the timer object `5F 46` is refused (the probe: "the timeout object
//!   is mandatory"); its SW is not recorded, so the malformed-request answer is used;
//! - answers stay queued for bulk IN until the host reads them, across sessions (F03's
//!   mechanism; a reload during a read leaves them there).

use std::collections::VecDeque;

use crate::emulator::FieldControl;
use crate::emulator::picc::{ATTRIB_CMD, CardOptions, EmulatedPicc};
use crate::framing::rcs300::{
    P2_CONTROL, P2_SWITCH_PROTOCOL, P2_TRANSMISSION, PC_TO_RDR_ESCAPE, PROTOCOL_LAYER_4,
    PROTOCOL_TYPE_B, PSEUDO_CLA, PSEUDO_INS, RDR_TO_PC_ESCAPE, READER_STATUS_NO_ANSWER,
    READER_STATUS_OK, READER_STATUS_REFUSED, ReaderAnswer, TRANSMISSION_TRAILER, decode_message,
    encode_with_type, parse_tlvs, tag,
};
use crate::transport::{TransportError, UsbBulk};
use crate::virtual_card::VirtualCard;

/// SW with result `02`: sent to the card, nothing answered (F05 `no_answer`).
const SW_NO_ANSWER: [u8; 2] = [0x64, 0x01];
/// SWs with result `01` (F05): refused, malformed, wrong object length, unsupported value.
const SW_REFUSED: [u8; 2] = [0x63, 0x01];
const SW_MALFORMED: [u8; 2] = [0x64, 0x01];
const SW_WRONG_LENGTH: [u8; 2] = [0x67, 0x00];
const SW_UNSUPPORTED_VALUE: [u8; 2] = [0x6A, 0x81];
/// Switch-protocol value the reader reports back in `8F 01 <p>` (F06 `switch_answer`; the
/// recorded value is for a FeliCa switch, the Type B value is not recorded, the host ignores it).
const SELECTED_PROTOCOL_ECHO: u8 = 0x08;
/// Switch-protocol protocol byte for FeliCa (F06 `switch_felica` `8F 02 03 00`): accepted,
/// but no FeliCa target is emulated.
const PROTOCOL_FELICA: u8 = 0x03;
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

    /// Result `01`: the reader refused the request (F05).
    fn refused(sw: [u8; 2]) -> ReaderAnswer {
        Self::answer(READER_STATUS_REFUSED, sw, Vec::new())
    }

    /// Result `02`: sent to the card, nothing answered (F05).
    fn no_answer() -> ReaderAnswer {
        Self::answer(READER_STATUS_NO_ANSWER, SW_NO_ANSWER, Vec::new())
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
            return Self::refused(SW_MALFORMED);
        };
        let Ok(objects) = parse_tlvs(data) else {
            return Self::refused(SW_MALFORMED);
        };
        match p2 {
            P2_CONTROL => self.control(&objects),
            P2_SWITCH_PROTOCOL => self.switch_protocol(&objects),
            P2_TRANSMISSION => self.transceive(&objects),
            _ => Self::refused(SW_UNSUPPORTED_VALUE),
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
                // F05 `refused`: RF on outside a transparent session.
                tag::RF_ON if !self.transparent => return Self::refused(SW_REFUSED),
                tag::RF_ON => self.rf_on = true,
                _ => return Self::refused(SW_UNSUPPORTED_VALUE),
            }
        }
        Self::ok(Vec::new())
    }

    /// Activation as the reader does it: REQB, then ATTRIB with the card's PUPI. The value
    /// is two bytes, protocol and layer (F05/F06: one byte is refused with `01 67 00`, an
    /// unknown protocol with `01 6A 81`).
    fn switch_protocol(&mut self, objects: &[(u16, Vec<u8>)]) -> ReaderAnswer {
        let [(tag::SWITCH_PROTOCOL, value)] = objects else {
            return Self::refused(SW_MALFORMED);
        };
        let [protocol, layer] = value[..] else {
            return Self::refused(SW_WRONG_LENGTH);
        };
        let selected = Self::ok(vec![(tag::SWITCH_PROTOCOL, vec![SELECTED_PROTOCOL_ECHO])]);
        match (protocol, layer) {
            (PROTOCOL_TYPE_B, PROTOCOL_LAYER_4) => {}
            // A FeliCa switch is accepted (F06) but no FeliCa target is emulated.
            (PROTOCOL_FELICA, _) => return selected,
            _ => return Self::refused(SW_UNSUPPORTED_VALUE),
        }
        if !self.transparent {
            return Self::refused(SW_REFUSED);
        }
        if !self.rf_on || !self.field.deliver(&mut self.picc) {
            return Self::no_answer();
        }
        self.picc.power_off();
        let Some(atqb) = self.picc.handle_frame(&REQB) else {
            return Self::no_answer();
        };
        let mut attrib = vec![ATTRIB_CMD];
        attrib.extend_from_slice(atqb.get(1..5).unwrap_or_default());
        attrib.extend_from_slice(&[0x00, self.reader_fsdi & 0x0F, 0x01, 0x00]);
        match self.picc.handle_frame(&attrib) {
            Some(_) => selected,
            None => Self::no_answer(),
        }
    }

    /// One frame to the card. The answer's objects are those of F06 `exchange_answer`.
    fn transceive(&mut self, objects: &[(u16, Vec<u8>)]) -> ReaderAnswer {
        let Some((_, frame)) = objects.iter().find(|(t, _)| *t == tag::TRANSCEIVE) else {
            return Self::refused(SW_MALFORMED);
        };
        if !objects.iter().any(|(t, _)| *t == tag::TIMER) {
            return Self::refused(SW_MALFORMED);
        }
        if !self.transparent {
            return Self::refused(SW_REFUSED);
        }
        if !self.rf_on || !self.field.deliver(&mut self.picc) {
            return Self::no_answer();
        }
        match self.picc.handle_frame(frame) {
            Some(answer) => Self::ok(vec![
                (tag::VALID_BITS, vec![0x00]),
                (tag::RESPONSE_STATUS, vec![0x00, 0x00]),
                (tag::RESPONSE_DATA, answer),
            ]),
            None => Self::no_answer(),
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
