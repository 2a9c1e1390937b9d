//! The card (PICC) side of ISO 14443 Type B activation and ISO-DEP, wrapped around a
//! [`VirtualCard`]. Shared by the reader emulators; it sees RF frames without CRC.

use std::collections::VecDeque;

use crate::framing::isodep::{
    self, Block, FRAME_OVERHEAD, PCB_BLOCK_NUMBER_BIT, PCB_S_DESELECT, frame_size_from_code,
    i_block, r_ack, s_wtx,
};
use crate::virtual_card::VirtualCard;

/// REQB/WUPB command byte (APf).
pub const REQB_APF: u8 = 0x05;
/// ATQB first byte.
pub const ATQB_MARK: u8 = 0x50;
/// ATTRIB command byte.
pub const ATTRIB_CMD: u8 = 0x1D;
/// ATQB: 4-byte PUPI + 4-byte application data + 3-byte protocol info after the mark.
pub const ATQB_LEN: usize = 12;
/// ATTRIB: command byte, PUPI, four parameter bytes.
pub const ATTRIB_MIN_LEN: usize = 9;
/// Protocol-info low nibble of byte 2: the card is ISO 14443-4 compliant.
pub const PROTOCOL_TYPE_ISO14443_4: u8 = 0x01;
/// The PUPI the emulated card answers with (fixed for reproducible traces).
pub const EMULATED_PUPI: [u8; 4] = [0x7E, 0x57, 0xCA, 0x8D];
/// Application data of the ATQB (not used by the JPKI flow).
const APPLICATION_DATA: [u8; 4] = [0x00; 4];
/// Frame waiting time integer the card announces (FWI 8 ≈ 77 ms).
pub const EMULATED_FWI: u8 = 8;
/// The WTXM the card asks for when the WTX switch is on.
pub const EMULATED_WTXM: u8 = 3;

/// Behaviour switches of the emulated card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CardOptions {
    /// FSCI the card announces (8 = 256 bytes); small values force command chaining.
    pub fsci: u8,
    /// S(WTX) requests the card sends before each response.
    pub wtx_rounds: u8,
}

impl Default for CardOptions {
    fn default() -> Self {
        Self {
            fsci: 8,
            wtx_rounds: 0,
        }
    }
}

/// An ISO-DEP card in the field.
#[derive(Debug, Clone)]
pub struct EmulatedPicc {
    card: VirtualCard,
    options: CardOptions,
    activated: bool,
    block_number: u8,
    /// Largest frame the reader accepts (FSD), learned from ATTRIB or set by the reader model.
    reader_frame_size: usize,
    incoming: Vec<u8>,
    outgoing: VecDeque<Vec<u8>>,
    wtx_left: u8,
    last_sent: Vec<u8>,
}

impl EmulatedPicc {
    pub fn new(card: VirtualCard, options: CardOptions) -> Self {
        Self {
            card,
            options,
            activated: false,
            block_number: PCB_BLOCK_NUMBER_BIT,
            reader_frame_size: 256,
            incoming: Vec::new(),
            outgoing: VecDeque::new(),
            wtx_left: 0,
            last_sent: Vec::new(),
        }
    }

    pub fn card(&self) -> &VirtualCard {
        &self.card
    }

    pub fn card_mut(&mut self) -> &mut VirtualCard {
        &mut self.card
    }

    pub fn into_card(self) -> VirtualCard {
        self.card
    }

    /// The card leaves the field: power is lost, so the session ends.
    pub fn power_off(&mut self) {
        self.card.reset();
        self.activated = false;
        self.block_number = PCB_BLOCK_NUMBER_BIT;
        self.incoming.clear();
        self.outgoing.clear();
    }

    /// Activation done by the reader itself (RC-S300 switch protocol); `reader_frame_size` is FSD.
    pub fn activate_directly(&mut self, reader_frame_size: usize) {
        self.power_off();
        self.reader_frame_size = reader_frame_size;
        self.activated = true;
    }

    /// The card's ATQB.
    pub fn atqb(&self) -> Vec<u8> {
        let mut atqb = vec![ATQB_MARK];
        atqb.extend_from_slice(&EMULATED_PUPI);
        atqb.extend_from_slice(&APPLICATION_DATA);
        // Protocol info: 106 kbps only; FSCI | ISO 14443-4; FWI | no ADC/FO.
        atqb.extend_from_slice(&[
            0x00,
            (self.options.fsci << 4) | PROTOCOL_TYPE_ISO14443_4,
            EMULATED_FWI << 4,
        ]);
        atqb
    }

    /// Handles one frame from the reader; `None` means the card stays silent.
    pub fn handle_frame(&mut self, frame: &[u8]) -> Option<Vec<u8>> {
        if !self.activated {
            return self.handle_activation(frame);
        }
        // A frame longer than the card's buffer (FSC) is not received at all.
        if frame.len() + FRAME_OVERHEAD - 1 > frame_size_from_code(self.options.fsci) {
            return None;
        }
        let answer = match isodep::parse_block(frame).ok()? {
            Block::I { chaining, inf, .. } => {
                self.toggle();
                self.incoming.extend_from_slice(inf);
                if chaining {
                    r_ack(self.block_number)
                } else {
                    let apdu = std::mem::take(&mut self.incoming);
                    let response = self.card.process(&apdu);
                    self.queue_response(&response);
                    self.wtx_left = self.options.wtx_rounds;
                    self.next_block()
                }
            }
            Block::Wtx { .. } => self.next_block(),
            Block::RAck { block_number } if block_number != self.block_number => {
                self.toggle();
                self.next_block()
            }
            Block::RAck { .. } | Block::RNak { .. } => self.last_sent.clone(),
            Block::Deselect => {
                self.power_off();
                vec![PCB_S_DESELECT]
            }
        };
        self.last_sent = answer.clone();
        Some(answer)
    }

    fn handle_activation(&mut self, frame: &[u8]) -> Option<Vec<u8>> {
        match frame {
            [REQB_APF, _afi, _param] => Some(self.atqb()),
            [ATTRIB_CMD, rest @ ..] if frame.len() >= ATTRIB_MIN_LEN => {
                let (pupi, params) = rest.split_at_checked(4)?;
                if pupi != EMULATED_PUPI {
                    return None;
                }
                let fsdi = params.get(1)? & 0x0F;
                self.reader_frame_size = frame_size_from_code(fsdi);
                self.activated = true;
                self.block_number = PCB_BLOCK_NUMBER_BIT;
                // MBLI 0, CID 0.
                Some(vec![0x00])
            }
            _ => None,
        }
    }

    fn queue_response(&mut self, response: &[u8]) {
        let inf = self.reader_frame_size.saturating_sub(FRAME_OVERHEAD).max(1);
        self.outgoing = response.chunks(inf).map(<[u8]>::to_vec).collect();
    }

    /// The next block of the pending response, or a WTX request first if asked to.
    fn next_block(&mut self) -> Vec<u8> {
        if self.wtx_left > 0 {
            self.wtx_left -= 1;
            return s_wtx(EMULATED_WTXM);
        }
        let chunk = self.outgoing.pop_front().unwrap_or_default();
        i_block(self.block_number, !self.outgoing.is_empty(), &chunk)
    }

    fn toggle(&mut self) {
        self.block_number ^= PCB_BLOCK_NUMBER_BIT;
    }
}
