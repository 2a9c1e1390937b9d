//! Sony RC-S300 (PaSoRi 4.0) on its vendor-specific interface: CCID-style 10-byte message
//! headers with sequence numbers (PC_to_RDR_Escape / RDR_to_PC_Escape), carrying Sony's
//! pseudo-APDUs `FF 50 00 P2` with BER-TLV data objects for the transparent session
//! (start/end, RF on/off, switch protocol, transceive). The reader activates the Type B card
//! itself; ISO-DEP blocks are built here and sent raw with Transceive.
//!
//! The command bytes follow answers recorded from a real reader and public WebUSB projects
//! (`shared/field/readers/F05`, `F06`); the CCID class interface (0x0B) is blocked by WebUSB,
//! which is why the vendor interface is used.
//!
//! Every answer starts with the generic-error object `C0 03 <result> <SW1 SW2>`; the result
//! byte decides (F05): `00` accepted, `01` the reader refused the request (refused, malformed,
//! wrong length, unsupported value), `02` sent to the card and nothing answered.

use crate::framing::isodep::{IsoDep, RfExchange};
use crate::transport::{Transport, TransportError, UsbBulk, drain};

/// USB vendor id of Sony.
pub const USB_VENDOR_ID: u16 = 0x054C;
/// USB product ids of the RC-S300/S and RC-S300/P.
pub const USB_PRODUCT_IDS: [u16; 2] = [0x0DC8, 0x0DC9];
/// The vendor-specific interface (interface 0 is CCID class and blocked by WebUSB).
pub const USB_VENDOR_INTERFACE: u8 = 1;

/// CCID message type of host commands wrapped as escape messages.
pub const PC_TO_RDR_ESCAPE: u8 = 0x6B;
/// CCID message type of the reader's answers.
pub const RDR_TO_PC_ESCAPE: u8 = 0x83;
/// Bytes of the CCID-style header.
pub const HEADER_LEN: usize = 10;
/// The only slot.
pub const SLOT: u8 = 0x00;

/// Class and instruction of Sony's pseudo-APDU.
pub const PSEUDO_CLA: u8 = 0xFF;
pub const PSEUDO_INS: u8 = 0x50;
/// P2: session control (start/end transparent session, RF on/off).
pub const P2_CONTROL: u8 = 0x00;
/// P2: transmission and reception (transceive).
pub const P2_TRANSMISSION: u8 = 0x01;
/// P2: switch protocol.
pub const P2_SWITCH_PROTOCOL: u8 = 0x02;
/// Bytes after the data of a transmission command, as the public notes show (extended Le).
pub const TRANSMISSION_TRAILER: [u8; 3] = [0x00, 0x00, 0x00];

/// Data object tags.
pub mod tag {
    pub const START_TRANSPARENT: u16 = 0x81;
    pub const END_TRANSPARENT: u16 = 0x82;
    pub const RF_OFF: u16 = 0x83;
    pub const RF_ON: u16 = 0x84;
    /// Switch protocol (request: protocol and layer; the answer may carry `8F 01 <p>` too, F06).
    pub const SWITCH_PROTOCOL: u16 = 0x8F;
    /// In a transceive answer before the status (F06: `92 01 00`); PC/SC part 3 names it the
    /// number of valid bits in the last received byte. Not used by the host.
    pub const VALID_BITS: u16 = 0x92;
    pub const TRANSCEIVE: u16 = 0x95;
    pub const RESPONSE_STATUS: u16 = 0x96;
    pub const RESPONSE_DATA: u16 = 0x97;
    pub const GENERIC_ERROR: u16 = 0xC0;
    /// Timer for the following exchange, microseconds as four bytes little-endian.
    pub const TIMER: u16 = 0x5F46;
}

/// Switch protocol value: ISO 14443 Type B.
pub const PROTOCOL_TYPE_B: u8 = 0x01;
/// Switch protocol value: activate up to layer 4 (REQB and ATTRIB done by the reader).
pub const PROTOCOL_LAYER_4: u8 = 0x04;
/// Result byte of the generic-error object: accepted (F05 `C0 03 00 90 00`).
pub const READER_STATUS_OK: u8 = 0x00;
/// Result byte: the reader refused the request itself, whatever the SW (F05: `63 01` refused,
/// `64 01` malformed, `67 00` wrong object length, `6A 81` unsupported value).
pub const READER_STATUS_REFUSED: u8 = 0x01;
/// Result byte: sent to the card, nothing answered (F05 `C0 03 02 64 01`: empty field).
pub const READER_STATUS_NO_ANSWER: u8 = 0x02;
/// Answers the host discards while waiting for its own: answers to a killed session's
/// commands (other sequence numbers) that arrived after the drain.
const MAX_STALE_ANSWERS: usize = 4;
/// Status word that closes every reader answer.
pub const SW_OK: [u8; 2] = [0x90, 0x00];
/// Low five bits all set in a tag's first byte: a second tag byte follows.
const TWO_BYTE_TAG_MARK: u8 = 0x1F;

/// Why bytes are not a valid RC-S300 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rcs300Error {
    #[error("message shorter than its header")]
    Truncated,
    #[error("message length disagrees with its header")]
    LengthMismatch,
    #[error("data object truncated or malformed")]
    BadTlv,
    #[error("reader answer without its closing status word")]
    MissingStatus,
    #[error("reader answer without the generic error object")]
    MissingGenericError,
    #[error("message too long")]
    TooLong,
}

/// A CCID-style message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub message_type: u8,
    pub slot: u8,
    pub seq: u8,
    /// Bytes 7..10 (RFU for commands; status, error and RFU for answers).
    pub extra: [u8; 3],
    pub payload: Vec<u8>,
}

/// Encodes a PC_to_RDR_Escape message.
pub fn encode_message(seq: u8, payload: &[u8]) -> Result<Vec<u8>, Rcs300Error> {
    encode_with_type(PC_TO_RDR_ESCAPE, seq, [0; 3], payload)
}

/// Encodes any message (the emulator uses this for answers).
pub fn encode_with_type(
    message_type: u8,
    seq: u8,
    extra: [u8; 3],
    payload: &[u8],
) -> Result<Vec<u8>, Rcs300Error> {
    let len = u32::try_from(payload.len()).map_err(|_| Rcs300Error::TooLong)?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.push(message_type);
    out.extend_from_slice(&len.to_le_bytes());
    out.push(SLOT);
    out.push(seq);
    out.extend_from_slice(&extra);
    out.extend_from_slice(payload);
    Ok(out)
}

/// Decodes one bulk transfer.
pub fn decode_message(bytes: &[u8]) -> Result<Message, Rcs300Error> {
    let (header, payload) = bytes
        .split_at_checked(HEADER_LEN)
        .ok_or(Rcs300Error::Truncated)?;
    let [message_type, l0, l1, l2, l3, slot, seq, e0, e1, e2] =
        <[u8; HEADER_LEN]>::try_from(header).map_err(|_| Rcs300Error::Truncated)?;
    let len = usize::try_from(u32::from_le_bytes([l0, l1, l2, l3]))
        .map_err(|_| Rcs300Error::LengthMismatch)?;
    if len != payload.len() {
        return Err(Rcs300Error::LengthMismatch);
    }
    Ok(Message {
        message_type,
        slot,
        seq,
        extra: [e0, e1, e2],
        payload: payload.to_vec(),
    })
}

/// Appends a BER-TLV data object.
pub fn push_tlv(out: &mut Vec<u8>, tag: u16, value: &[u8]) {
    if tag > 0xFF {
        out.extend_from_slice(&tag.to_be_bytes());
    } else {
        out.push(tag.to_be_bytes()[1]);
    }
    match value.len() {
        n @ 0..=0x7F => out.push(n.to_le_bytes()[0]),
        n @ 0x80..=0xFF => out.extend_from_slice(&[0x81, n.to_le_bytes()[0]]),
        n => {
            let n = u16::try_from(n).unwrap_or(u16::MAX);
            out.push(0x82);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
    out.extend_from_slice(value);
}

/// Splits a run of BER-TLV data objects (one/two-byte tags, lengths up to `82 xx xx`).
pub fn parse_tlvs(mut bytes: &[u8]) -> Result<Vec<(u16, Vec<u8>)>, Rcs300Error> {
    let mut objects = Vec::new();
    while let Some((&first, rest)) = bytes.split_first() {
        let (tag, rest) = if first & TWO_BYTE_TAG_MARK == TWO_BYTE_TAG_MARK {
            let (&second, rest) = rest.split_first().ok_or(Rcs300Error::BadTlv)?;
            (u16::from_be_bytes([first, second]), rest)
        } else {
            (u16::from(first), rest)
        };
        let (&len0, rest) = rest.split_first().ok_or(Rcs300Error::BadTlv)?;
        let (len, rest) = match len0 {
            0..=0x7F => (usize::from(len0), rest),
            0x81 => {
                let (&l, rest) = rest.split_first().ok_or(Rcs300Error::BadTlv)?;
                (usize::from(l), rest)
            }
            0x82 => match rest {
                [h, l, rest @ ..] => (usize::from(u16::from_be_bytes([*h, *l])), rest),
                _ => return Err(Rcs300Error::BadTlv),
            },
            _ => return Err(Rcs300Error::BadTlv),
        };
        let (value, rest) = rest.split_at_checked(len).ok_or(Rcs300Error::BadTlv)?;
        objects.push((tag, value.to_vec()));
        bytes = rest;
    }
    Ok(objects)
}

/// A reader answer: `C0 03 <status> <SW1 SW2>`, data objects, `90 00`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderAnswer {
    pub status: u8,
    pub sw: [u8; 2],
    pub objects: Vec<(u16, Vec<u8>)>,
}

impl ReaderAnswer {
    pub fn object(&self, tag: u16) -> Option<&[u8]> {
        self.objects
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| v.as_slice())
    }

    /// Encodes the answer payload (emulator side).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        push_tlv(
            &mut out,
            tag::GENERIC_ERROR,
            &[self.status, self.sw[0], self.sw[1]],
        );
        for (t, v) in &self.objects {
            push_tlv(&mut out, *t, v);
        }
        out.extend_from_slice(&SW_OK);
        out
    }
}

/// Parses the payload of a reader answer.
pub fn parse_answer(payload: &[u8]) -> Result<ReaderAnswer, Rcs300Error> {
    let split = payload
        .len()
        .checked_sub(2)
        .ok_or(Rcs300Error::MissingStatus)?;
    let (body, sw) = payload.split_at(split);
    if sw != SW_OK {
        return Err(Rcs300Error::MissingStatus);
    }
    let mut objects = parse_tlvs(body)?;
    if objects.is_empty() {
        return Err(Rcs300Error::MissingGenericError);
    }
    let (first_tag, first_value) = objects.remove(0);
    match (first_tag, first_value.as_slice()) {
        (tag::GENERIC_ERROR, [status, sw1, sw2]) => Ok(ReaderAnswer {
            status: *status,
            sw: [*sw1, *sw2],
            objects,
        }),
        _ => Err(Rcs300Error::MissingGenericError),
    }
}

/// A short pseudo-APDU `FF 50 00 P2 Lc data 00`.
pub fn encode_pseudo_apdu(p2: u8, data: &[u8]) -> Result<Vec<u8>, Rcs300Error> {
    let lc = u8::try_from(data.len()).map_err(|_| Rcs300Error::TooLong)?;
    let mut out = vec![PSEUDO_CLA, PSEUDO_INS, 0x00, p2, lc];
    out.extend_from_slice(data);
    out.push(0x00);
    Ok(out)
}

/// The transceive pseudo-APDU in the extended form the WebUSB projects send (F06
/// `exchange_extended`): `FF 50 00 01 00 <Lc hi lo>`, the timer object `5F 46 04 <µs LE>`,
/// the transmit object with a long-form length `95 82 <len hi lo> <frame>`, then `00 00 00`.
pub fn encode_transceive(frame: &[u8], timeout_us: u32) -> Result<Vec<u8>, Rcs300Error> {
    let frame_len = u16::try_from(frame.len()).map_err(|_| Rcs300Error::TooLong)?;
    let mut data = Vec::with_capacity(frame.len() + 11);
    push_tlv(&mut data, tag::TIMER, &timeout_us.to_le_bytes());
    data.push(u8::try_from(tag::TRANSCEIVE).unwrap_or(0x95));
    data.push(0x82);
    data.extend_from_slice(&frame_len.to_be_bytes());
    data.extend_from_slice(frame);
    let lc = u16::try_from(data.len()).map_err(|_| Rcs300Error::TooLong)?;
    let mut out = vec![PSEUDO_CLA, PSEUDO_INS, 0x00, P2_TRANSMISSION, 0x00];
    out.extend_from_slice(&lc.to_be_bytes());
    out.extend_from_slice(&data);
    out.extend_from_slice(&TRANSMISSION_TRAILER);
    Ok(out)
}

/// Host choices for the RC-S300.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rcs300Config {
    /// How long to wait for the reader's answer beyond the RF timeout.
    pub usb_timeout_ms: u32,
    /// The card's frame size (FSC) assumed by the host: the reader does the activation and
    /// does not report the ATQB, so this is a setting.
    pub card_frame_size: usize,
    /// Frame waiting time assumed for the card.
    pub fwt_ms: u32,
}

impl Default for Rcs300Config {
    fn default() -> Self {
        Self {
            usb_timeout_ms: 500,
            card_frame_size: 256,
            fwt_ms: 78,
        }
    }
}

/// The reader's message channel with its sequence counter.
pub struct Rcs300Link<U: UsbBulk> {
    usb: U,
    seq: u8,
    config: Rcs300Config,
}

impl<U: UsbBulk> Rcs300Link<U> {
    /// The channel over `usb`, sequence numbers from 0; nothing is sent yet.
    pub fn new(usb: U, config: Rcs300Config) -> Self {
        Self {
            usb,
            seq: 0,
            config,
        }
    }

    /// Discards what a killed session left unread in the reader (a page reload during a read),
    /// before the first command; see [`drain`]. Returns how many transfers were discarded.
    pub async fn start(&mut self) -> Result<usize, TransportError> {
        drain(&mut self.usb).await
    }

    /// Sends one pseudo-APDU and returns the parsed answer. Answers with another sequence
    /// number belong to a killed session and are skipped (a few at most).
    pub async fn call(
        &mut self,
        payload: &[u8],
        rf_timeout_ms: u32,
    ) -> Result<ReaderAnswer, TransportError> {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.usb
            .write(&encode_message(seq, payload).map_err(message_error)?)
            .await?;
        for _ in 0..=MAX_STALE_ANSWERS {
            let message = decode_message(
                &self
                    .usb
                    .read(self.config.usb_timeout_ms.saturating_add(rf_timeout_ms))
                    .await?,
            )
            .map_err(message_error)?;
            if message.message_type == RDR_TO_PC_ESCAPE && message.seq == seq {
                return parse_answer(&message.payload).map_err(message_error);
            }
        }
        Err(TransportError::Protocol(
            "RC-S300 answers out of sequence".to_owned(),
        ))
    }

    /// Sends a session-control object (`FF 50 00 00 02 <tag> 00 00`, F06).
    pub async fn control(&mut self, object: u16) -> Result<ReaderAnswer, TransportError> {
        let mut data = Vec::new();
        push_tlv(&mut data, object, &[]);
        self.call(
            &encode_pseudo_apdu(P2_CONTROL, &data).map_err(message_error)?,
            0,
        )
        .await
    }

    async fn control_ok(&mut self, object: u16) -> Result<(), TransportError> {
        let answer = self.control(object).await?;
        match answer.status {
            READER_STATUS_OK => Ok(()),
            READER_STATUS_REFUSED => Err(refused(&answer)),
            _ => Err(unknown_result(&answer)),
        }
    }

    pub fn into_inner(self) -> U {
        self.usb
    }
}

impl<U: UsbBulk> RfExchange for Rcs300Link<U> {
    async fn exchange(
        &mut self,
        frame: &[u8],
        timeout_ms: u32,
    ) -> Result<Option<Vec<u8>>, TransportError> {
        let payload =
            encode_transceive(frame, timeout_ms.saturating_mul(1000)).map_err(message_error)?;
        let answer = self.call(&payload, timeout_ms).await?;
        match answer.status {
            READER_STATUS_OK => {}
            READER_STATUS_NO_ANSWER => return Ok(None),
            READER_STATUS_REFUSED => return Err(refused(&answer)),
            _ => return Err(unknown_result(&answer)),
        }
        // The frame is in the 97 object, among others (F06: 92 01 00, 96 02 00 00, 97 …).
        answer
            .object(tag::RESPONSE_DATA)
            .map(|data| Some(data.to_vec()))
            .ok_or_else(|| {
                TransportError::Protocol("RC-S300 answer without response data".to_owned())
            })
    }
}

/// An activated Type B card behind an RC-S300: carries APDUs.
pub struct Rcs300Session<U: UsbBulk> {
    link: Rcs300Link<U>,
    isodep: IsoDep,
}

impl<U: UsbBulk> Rcs300Session<U> {
    /// Drains a killed session's leftovers, starts a transparent session, cycles the field and
    /// has the reader activate a Type B card up to ISO 14443-4. [`TransportError::NoCard`] when
    /// no card answers (result `02`), [`TransportError::ReaderRefused`] when the reader refuses
    /// a request (result `01`).
    pub async fn open(usb: U, config: Rcs300Config) -> Result<Self, TransportError> {
        let mut link = Rcs300Link::new(usb, config);
        link.start().await?;
        // Ending first clears a session a previous page load may have left open.
        link.control(tag::END_TRANSPARENT).await?;
        link.control_ok(tag::START_TRANSPARENT).await?;
        link.control_ok(tag::RF_OFF).await?;
        link.control_ok(tag::RF_ON).await?;
        let mut data = Vec::new();
        push_tlv(
            &mut data,
            tag::SWITCH_PROTOCOL,
            &[PROTOCOL_TYPE_B, PROTOCOL_LAYER_4],
        );
        let answer = link
            .call(
                &encode_pseudo_apdu(P2_SWITCH_PROTOCOL, &data).map_err(message_error)?,
                0,
            )
            .await?;
        // Accepted answers may carry `8F 01 <p>` (the protocol the reader selected, F06); the
        // host does not need it.
        match answer.status {
            READER_STATUS_OK => {}
            READER_STATUS_NO_ANSWER => return Err(TransportError::NoCard),
            READER_STATUS_REFUSED => return Err(refused(&answer)),
            _ => return Err(unknown_result(&answer)),
        }
        let isodep = IsoDep::new(config.card_frame_size, config.fwt_ms);
        Ok(Self { link, isodep })
    }

    /// Turns the field off, ends the transparent session and gives the endpoints back.
    pub async fn close(mut self) -> U {
        // Best effort: nothing useful to do if the reader is already gone.
        let _ = self.link.control(tag::RF_OFF).await;
        let _ = self.link.control(tag::END_TRANSPARENT).await;
        self.link.into_inner()
    }
}

impl<U: UsbBulk> Transport for Rcs300Session<U> {
    async fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.isodep.exchange_apdu(&mut self.link, apdu).await
    }
}

/// Result `01`: the reader refused the request; its SW says why (F05).
fn refused(answer: &ReaderAnswer) -> TransportError {
    let why = match answer.sw {
        [0x63, 0x01] => "refused",
        [0x64, 0x01] => "malformed request",
        [0x67, 0x00] => "wrong object length",
        [0x6A, 0x81] => "unsupported value",
        _ => "refused",
    };
    TransportError::ReaderRefused(format!(
        "RC-S300 {why} ({:02X} {:02X})",
        answer.sw[0], answer.sw[1]
    ))
}

fn unknown_result(answer: &ReaderAnswer) -> TransportError {
    TransportError::Protocol(format!(
        "RC-S300 result byte {:02X} ({:02X} {:02X})",
        answer.status, answer.sw[0], answer.sw[1]
    ))
}

fn message_error(e: Rcs300Error) -> TransportError {
    TransportError::Protocol(format!("RC-S300 message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_commands_match_public_notes() {
        let mut data = Vec::new();
        push_tlv(&mut data, tag::START_TRANSPARENT, &[]);
        assert_eq!(
            encode_pseudo_apdu(P2_CONTROL, &data),
            Ok(vec![0xFF, 0x50, 0x00, 0x00, 0x02, 0x81, 0x00, 0x00])
        );
        let mut data = Vec::new();
        push_tlv(
            &mut data,
            tag::SWITCH_PROTOCOL,
            &[PROTOCOL_TYPE_B, PROTOCOL_LAYER_4],
        );
        assert_eq!(
            encode_pseudo_apdu(P2_SWITCH_PROTOCOL, &data),
            Ok(vec![
                0xFF, 0x50, 0x00, 0x02, 0x04, 0x8F, 0x02, 0x01, 0x04, 0x00
            ])
        );
        let msg = encode_message(7, &[0xAA]).unwrap_or_default();
        assert_eq!(msg, [0x6B, 1, 0, 0, 0, 0, 7, 0, 0, 0, 0xAA]);
    }

    #[test]
    fn transceive_encoding() {
        let payload = encode_transceive(&[0x02, 0x00], 100_000).unwrap_or_default();
        assert_eq!(
            payload,
            [
                0xFF, 0x50, 0x00, 0x01, 0x00, 0x00, 0x0D, 0x5F, 0x46, 0x04, 0xA0, 0x86, 0x01, 0x00,
                0x95, 0x82, 0x00, 0x02, 0x02, 0x00, 0, 0, 0
            ]
        );
    }

    #[test]
    fn tlv_round_trip_with_long_lengths() {
        for len in [0usize, 5, 0x7F, 0x80, 0xFF, 0x100, 0x1234] {
            let mut out = Vec::new();
            push_tlv(&mut out, tag::RESPONSE_DATA, &vec![0x5A; len]);
            push_tlv(&mut out, tag::TIMER, &[1, 2, 3, 4]);
            assert_eq!(
                parse_tlvs(&out),
                Ok(vec![
                    (tag::RESPONSE_DATA, vec![0x5A; len]),
                    (tag::TIMER, vec![1, 2, 3, 4])
                ])
            );
        }
        assert_eq!(parse_tlvs(&[0x97, 0x05, 1]), Err(Rcs300Error::BadTlv));
        assert_eq!(parse_tlvs(&[0x97, 0x83, 1, 1, 1]), Err(Rcs300Error::BadTlv));
    }

    #[test]
    fn answers() {
        let answer = parse_answer(&[0xC0, 0x03, 0x00, 0x90, 0x00, 0x97, 0x01, 0xAB, 0x90, 0x00]);
        assert_eq!(
            answer,
            Ok(ReaderAnswer {
                status: 0,
                sw: [0x90, 0x00],
                objects: vec![(tag::RESPONSE_DATA, vec![0xAB])]
            })
        );
        // The closing 90 00 is taken as the status word, leaving a truncated object.
        assert_eq!(
            parse_answer(&[0xC0, 0x03, 0x00, 0x90, 0x00]),
            Err(Rcs300Error::BadTlv)
        );
        assert_eq!(
            parse_answer(&[0xC0, 0x03, 0x00, 0x90, 0x00, 0x6A, 0x81]),
            Err(Rcs300Error::MissingStatus)
        );
        assert_eq!(
            parse_answer(&[0x97, 0x00, 0x90, 0x00]),
            Err(Rcs300Error::MissingGenericError)
        );
        assert!(decode_message(&[0x83, 5, 0, 0, 0, 0, 0, 0, 0, 0, 1]).is_err());
    }
}
