//! ISO-DEP (ISO/IEC 14443-4) half-duplex block protocol, reader (PCD) side: wraps APDUs in
//! I-blocks, chains them in both directions to fit frame sizes, toggles block numbers, and
//! answers waiting-time extensions. Readers plug in through [`RfExchange`].

use crate::transport::TransportError;

/// PCB of an I-block with block number 0 and no chaining / CID / NAD.
pub const PCB_I_BLOCK: u8 = 0x02;
/// PCB of an R(ACK) block with block number 0.
pub const PCB_R_ACK: u8 = 0xA2;
/// PCB bit that turns an R(ACK) into an R(NAK).
pub const PCB_R_NAK_BIT: u8 = 0x10;
/// PCB of an S(WTX) block (waiting time extension), followed by one INF byte (WTXM).
pub const PCB_S_WTX: u8 = 0xF2;
/// PCB of an S(DESELECT) block.
pub const PCB_S_DESELECT: u8 = 0xC2;
/// PCB bit: more I-blocks follow (chaining).
pub const PCB_CHAINING_BIT: u8 = 0x10;
/// PCB bit: block number.
pub const PCB_BLOCK_NUMBER_BIT: u8 = 0x01;
/// PCB bit: a CID byte follows the PCB.
pub const PCB_CID_BIT: u8 = 0x08;
/// PCB bit: a NAD byte follows the PCB (I-blocks only).
pub const PCB_NAD_BIT: u8 = 0x04;
/// Mask that keeps the bits identifying an I-block (`00x0 xx1x`).
const I_BLOCK_MASK: u8 = 0xE2;
/// Mask that keeps the bits identifying an R-block (`101x x01x`).
const R_BLOCK_MASK: u8 = 0xE6;
/// Mask that keeps the bits identifying an S-block (`11xx x01x`), with the CID bit ignored.
const S_BLOCK_MASK: u8 = 0xF7;
/// WTXM occupies the low six bits of the S(WTX) INF byte; 1..=59 are valid.
const WTXM_MASK: u8 = 0x3F;
const WTXM_MAX: u8 = 59;
/// Frame overhead besides INF: PCB and the two CRC bytes (the reader adds the CRC).
pub const FRAME_OVERHEAD: usize = 3;
/// FSCI/FSDI code to frame size in bytes (ISO/IEC 14443-3 and -4 amendment values).
const FRAME_SIZES: [usize; 13] = [16, 24, 32, 40, 48, 64, 96, 128, 256, 512, 1024, 2048, 4096];
/// Bounds per APDU so no card behaviour can keep the host looping forever.
const MAX_WTX_PER_APDU: usize = 64;
const MAX_RESPONSE_LEN: usize = 0x1_0002;
/// Longest timeout the host will wait for one frame, however large the extension.
const MAX_FRAME_TIMEOUT_MS: u32 = 6_000;

/// The frame size a FSCI/FSDI code announces; codes above the table mean the largest size.
pub fn frame_size_from_code(code: u8) -> usize {
    let last = FRAME_SIZES.len() - 1;
    FRAME_SIZES
        .get(usize::from(code))
        .copied()
        .unwrap_or(FRAME_SIZES[last])
}

/// Frame waiting time in milliseconds for an FWI (`302 µs × 2^FWI`), rounded up, at least 1.
pub fn fwt_ms_from_fwi(fwi: u8) -> u32 {
    let fwi = u32::from(fwi.min(14));
    let micros = 302u64 << fwi;
    u32::try_from(micros.div_ceil(1000))
        .unwrap_or(u32::MAX)
        .max(1)
}

/// One RF frame round trip as a reader offers it (the reader adds and checks the CRC).
/// Async like [`crate::transport::UsbBulk`] under it; the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait RfExchange {
    /// Sends `frame` to the card and returns its answer, or `Ok(None)` if the card stayed silent
    /// for `timeout_ms` (taken away, or never there).
    async fn exchange(
        &mut self,
        frame: &[u8],
        timeout_ms: u32,
    ) -> Result<Option<Vec<u8>>, TransportError>;
}

/// What kind of block a received frame is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block<'a> {
    I {
        block_number: u8,
        chaining: bool,
        inf: &'a [u8],
    },
    RAck {
        block_number: u8,
    },
    RNak {
        block_number: u8,
    },
    Wtx {
        wtxm: u8,
    },
    Deselect,
}

/// Classifies a frame. CID and NAD are not used by this host, so frames carrying them are
/// rejected rather than misread.
pub fn parse_block(frame: &[u8]) -> Result<Block<'_>, TransportError> {
    let (&pcb, rest) = frame
        .split_first()
        .ok_or_else(|| protocol("empty ISO-DEP frame"))?;
    let block_number = pcb & PCB_BLOCK_NUMBER_BIT;
    if pcb & PCB_CID_BIT != 0 {
        return Err(protocol("unexpected CID in ISO-DEP frame"));
    }
    if pcb & I_BLOCK_MASK == PCB_I_BLOCK {
        if pcb & PCB_NAD_BIT != 0 {
            return Err(protocol("unexpected NAD in I-block"));
        }
        return Ok(Block::I {
            block_number,
            chaining: pcb & PCB_CHAINING_BIT != 0,
            inf: rest,
        });
    }
    if pcb & R_BLOCK_MASK == PCB_R_ACK & R_BLOCK_MASK && rest.is_empty() {
        return Ok(if pcb & PCB_R_NAK_BIT == 0 {
            Block::RAck { block_number }
        } else {
            Block::RNak { block_number }
        });
    }
    match (pcb & S_BLOCK_MASK, rest) {
        (PCB_S_WTX, [inf]) => Ok(Block::Wtx {
            wtxm: inf & WTXM_MASK,
        }),
        (PCB_S_DESELECT, []) => Ok(Block::Deselect),
        _ => Err(protocol("unknown ISO-DEP block")),
    }
}

/// Builds an I-block.
pub fn i_block(block_number: u8, chaining: bool, inf: &[u8]) -> Vec<u8> {
    let mut pcb = PCB_I_BLOCK | (block_number & PCB_BLOCK_NUMBER_BIT);
    if chaining {
        pcb |= PCB_CHAINING_BIT;
    }
    let mut frame = Vec::with_capacity(1 + inf.len());
    frame.push(pcb);
    frame.extend_from_slice(inf);
    frame
}

/// Builds an R(ACK) block.
pub fn r_ack(block_number: u8) -> Vec<u8> {
    vec![PCB_R_ACK | (block_number & PCB_BLOCK_NUMBER_BIT)]
}

/// Builds an S(WTX) block.
pub fn s_wtx(wtxm: u8) -> Vec<u8> {
    vec![PCB_S_WTX, wtxm & WTXM_MASK]
}

fn protocol(message: &str) -> TransportError {
    TransportError::Protocol(message.to_owned())
}

/// PCD-side ISO-DEP state for one activated card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsoDep {
    block_number: u8,
    /// Largest frame the card accepts (FSC), CRC included.
    card_frame_size: usize,
    /// Frame waiting time announced by the card.
    fwt_ms: u32,
}

impl IsoDep {
    /// State right after activation: block number 0.
    pub fn new(card_frame_size: usize, fwt_ms: u32) -> Self {
        Self {
            block_number: 0,
            card_frame_size,
            fwt_ms: fwt_ms.clamp(1, MAX_FRAME_TIMEOUT_MS),
        }
    }

    /// INF bytes per I-block that fit the card's frame size.
    pub fn max_inf(&self) -> usize {
        self.card_frame_size.saturating_sub(FRAME_OVERHEAD).max(1)
    }

    /// Sends one APDU and returns the card's whole response APDU.
    pub async fn exchange_apdu(
        &mut self,
        rf: &mut impl RfExchange,
        apdu: &[u8],
    ) -> Result<Vec<u8>, TransportError> {
        let chunk_size = self.max_inf();
        let chunk_count = apdu.len().div_ceil(chunk_size).max(1);
        let mut chunks = apdu.chunks(chunk_size);
        for _ in 1..chunk_count {
            let chunk = chunks.next().unwrap_or_default();
            let answer = self
                .send(rf, &i_block(self.block_number, true, chunk), self.fwt_ms)
                .await?;
            match parse_block(&answer)? {
                Block::RAck { block_number } if block_number == self.block_number => self.toggle(),
                _ => return Err(protocol("card did not acknowledge a chained I-block")),
            }
        }
        let last = chunks.next().unwrap_or_default();
        self.receive_response(rf, i_block(self.block_number, false, last))
            .await
    }

    /// Sends the final command block and gathers the response, answering S(WTX) and chaining.
    async fn receive_response(
        &mut self,
        rf: &mut impl RfExchange,
        first: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        let mut outgoing = first;
        let mut timeout = self.fwt_ms;
        let mut response = Vec::new();
        let mut wtx_count = 0;
        loop {
            let answer = self.send(rf, &outgoing, timeout).await?;
            timeout = self.fwt_ms;
            match parse_block(&answer)? {
                Block::Wtx { wtxm } => {
                    wtx_count += 1;
                    if wtx_count > MAX_WTX_PER_APDU || wtxm == 0 || wtxm > WTXM_MAX {
                        return Err(protocol("invalid or endless waiting time extension"));
                    }
                    // The extension applies to the next wait only; echo the same WTXM.
                    timeout = self
                        .fwt_ms
                        .saturating_mul(u32::from(wtxm))
                        .min(MAX_FRAME_TIMEOUT_MS);
                    outgoing = s_wtx(wtxm);
                }
                Block::I {
                    block_number,
                    chaining,
                    inf,
                } if block_number == self.block_number => {
                    self.toggle();
                    if response.len() + inf.len() > MAX_RESPONSE_LEN {
                        return Err(protocol("response longer than any APDU"));
                    }
                    response.extend_from_slice(inf);
                    if !chaining {
                        return Ok(response);
                    }
                    outgoing = r_ack(self.block_number);
                }
                _ => return Err(protocol("unexpected ISO-DEP block from card")),
            }
        }
    }

    /// One frame round trip; silence means the card has gone.
    async fn send(
        &mut self,
        rf: &mut impl RfExchange,
        frame: &[u8],
        timeout_ms: u32,
    ) -> Result<Vec<u8>, TransportError> {
        rf.exchange(frame, timeout_ms)
            .await?
            .ok_or(TransportError::CardRemoved)
    }

    fn toggle(&mut self) {
        self.block_number ^= PCB_BLOCK_NUMBER_BIT;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::block_on_ready;
    use std::collections::VecDeque;

    /// Runs one APDU exchange against the script (which never waits).
    fn run(dep: &mut IsoDep, rf: &mut Script, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        block_on_ready(dep.exchange_apdu(rf, apdu))
            .unwrap_or(Err(TransportError::Io("script waited".to_owned())))
    }

    /// Plays back canned card frames and records what the host sent.
    struct Script {
        answers: VecDeque<Option<Vec<u8>>>,
        sent: Vec<(Vec<u8>, u32)>,
    }

    impl RfExchange for Script {
        async fn exchange(
            &mut self,
            frame: &[u8],
            timeout_ms: u32,
        ) -> Result<Option<Vec<u8>>, TransportError> {
            self.sent.push((frame.to_vec(), timeout_ms));
            Ok(self.answers.pop_front().flatten())
        }
    }

    fn script(answers: &[Option<&[u8]>]) -> Script {
        Script {
            answers: answers.iter().map(|a| a.map(<[u8]>::to_vec)).collect(),
            sent: Vec::new(),
        }
    }

    #[test]
    fn single_block_toggles_block_number() {
        let mut rf = script(&[Some(&[0x02, 0x90, 0x00]), Some(&[0x03, 0x6A, 0x82])]);
        let mut dep = IsoDep::new(256, 10);
        assert_eq!(run(&mut dep, &mut rf, &[0, 1, 2, 3]), Ok(vec![0x90, 0x00]));
        assert_eq!(run(&mut dep, &mut rf, &[4]), Ok(vec![0x6A, 0x82]));
        assert_eq!(rf.sent[0].0, [0x02, 0, 1, 2, 3]);
        assert_eq!(rf.sent[1].0, [0x03, 4]);
    }

    #[test]
    fn chains_command_and_response() {
        // Frame size 16 → 13 INF bytes per block: a 20-byte APDU takes two blocks.
        let apdu: Vec<u8> = (0..20).collect();
        let mut rf = script(&[
            Some(&[0xA2]),
            Some(&[0x13, 0xAA]),
            Some(&[0x02, 0xBB, 0x90, 0x00]),
        ]);
        let mut dep = IsoDep::new(16, 10);
        assert_eq!(
            run(&mut dep, &mut rf, &apdu),
            Ok(vec![0xAA, 0xBB, 0x90, 0x00])
        );
        assert_eq!(rf.sent[0].0[0], 0x12);
        assert_eq!(rf.sent[0].0.len(), 14);
        assert_eq!(rf.sent[1].0, [&[0x03u8][..], &apdu[13..]].concat());
        assert_eq!(rf.sent[2].0, [0xA2]);
    }

    #[test]
    fn answers_wtx_with_same_multiplier_and_longer_wait() {
        let mut rf = script(&[Some(&[0xF2, 0x05]), Some(&[0x02, 0x90, 0x00])]);
        let mut dep = IsoDep::new(256, 10);
        assert_eq!(run(&mut dep, &mut rf, &[1]), Ok(vec![0x90, 0x00]));
        assert_eq!(rf.sent[1], (vec![0xF2, 0x05], 50));
    }

    #[test]
    fn silence_is_card_removed() {
        let mut rf = script(&[None]);
        assert_eq!(
            run(&mut IsoDep::new(256, 10), &mut rf, &[1]),
            Err(TransportError::CardRemoved)
        );
    }

    #[test]
    fn wrong_block_number_is_a_protocol_error() {
        let mut rf = script(&[Some(&[0x03, 0x90, 0x00])]);
        assert!(matches!(
            run(&mut IsoDep::new(256, 10), &mut rf, &[1]),
            Err(TransportError::Protocol(_))
        ));
    }

    #[test]
    fn endless_wtx_stops() {
        let answers: Vec<Option<&[u8]>> = vec![Some(&[0xF2, 0x01]); 100];
        let mut rf = script(&answers);
        assert!(matches!(
            run(&mut IsoDep::new(256, 10), &mut rf, &[1]),
            Err(TransportError::Protocol(_))
        ));
    }

    #[test]
    fn parses_blocks() {
        assert_eq!(parse_block(&[0xA3]), Ok(Block::RAck { block_number: 1 }));
        assert_eq!(parse_block(&[0xB2]), Ok(Block::RNak { block_number: 0 }));
        assert_eq!(parse_block(&[0xC2]), Ok(Block::Deselect));
        assert!(parse_block(&[]).is_err());
        assert!(parse_block(&[0x0A, 0x00]).is_err());
        assert!(parse_block(&[0xF2]).is_err());
        assert_eq!(frame_size_from_code(8), 256);
        assert_eq!(frame_size_from_code(15), 4096);
        assert_eq!(fwt_ms_from_fwi(8), 78);
    }
}
