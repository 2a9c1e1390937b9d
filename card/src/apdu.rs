//! Command and response APDUs (ISO 7816-4): encoding with short or extended length fields, and
//! the strict parsing a card (or the virtual card) applies to bytes it receives.

use crate::status::StatusWord;

/// Largest Nc a short APDU can carry in its one-byte Lc.
pub const SHORT_MAX_DATA: usize = 0xFF;
/// Largest Ne a short APDU can ask for (`Le = 00` means 256).
pub const SHORT_MAX_LE: usize = 0x100;
/// Largest Nc an extended APDU can carry in its two-byte Lc.
pub const EXTENDED_MAX_DATA: usize = 0xFFFF;
/// Largest Ne an extended APDU can ask for (`Le = 00 00` means 65536).
pub const EXTENDED_MAX_LE: usize = 0x1_0000;
/// Length of CLA INS P1 P2.
const HEADER_LEN: usize = 4;
/// The byte that opens an extended length field.
const EXTENDED_MARKER: u8 = 0x00;

/// Errors building or parsing an APDU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApduError {
    #[error("APDU data field of {0} bytes exceeds 65535")]
    DataTooLong(usize),
    #[error("APDU expected length {0} is outside 1..=65536")]
    LeOutOfRange(usize),
    #[error("command APDU shorter than its 4-byte header")]
    TooShort,
    #[error("command APDU length fields do not match its size")]
    MalformedLength,
    #[error("response APDU shorter than its 2-byte status word")]
    ResponseTooShort,
}

/// A command APDU as the host builds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    /// Ne, the number of response bytes expected; `None` when no response data is expected.
    pub le: Option<usize>,
}

impl Command {
    /// A command without data and without expected response data (case 1).
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Self {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
        }
    }

    /// Adds a data field (case 3, or case 4 with [`Command::with_le`]).
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = data.into();
        self
    }

    /// Sets Ne, the expected response length (1..=65536).
    pub fn with_le(mut self, le: usize) -> Self {
        self.le = Some(le);
        self
    }

    /// True when Lc or Le does not fit a short APDU, so both fields must be extended.
    pub fn needs_extended(&self) -> bool {
        self.data.len() > SHORT_MAX_DATA || self.le.is_some_and(|le| le > SHORT_MAX_LE)
    }

    /// Encodes the APDU, using short length fields when both fit and extended ones otherwise.
    pub fn encode(&self) -> Result<Vec<u8>, ApduError> {
        if self.data.len() > EXTENDED_MAX_DATA {
            return Err(ApduError::DataTooLong(self.data.len()));
        }
        if let Some(le) = self.le.filter(|&le| le == 0 || le > EXTENDED_MAX_LE) {
            return Err(ApduError::LeOutOfRange(le));
        }
        let mut out = Vec::with_capacity(HEADER_LEN + 3 + self.data.len() + 3);
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        let extended = self.needs_extended();
        if !self.data.is_empty() {
            if extended {
                out.push(EXTENDED_MARKER);
                out.extend_from_slice(&len_u16(self.data.len()).to_be_bytes());
            } else {
                out.push(len_u8(self.data.len()));
            }
            out.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            if extended {
                // In case 2E the Le field carries its own marker byte; in case 4E the Lc
                // field already opened the extended form.
                if self.data.is_empty() {
                    out.push(EXTENDED_MARKER);
                }
                out.extend_from_slice(&len_u16(le % EXTENDED_MAX_LE).to_be_bytes());
            } else {
                out.push(len_u8(le % SHORT_MAX_LE));
            }
        }
        Ok(out)
    }

    /// Parses a command APDU received by a card. Rejects any length field that disagrees with
    /// the byte count, the way a card answers `67 00`.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApduError> {
        let (header, body) = bytes
            .split_at_checked(HEADER_LEN)
            .ok_or(ApduError::TooShort)?;
        let [cla, ins, p1, p2] =
            <[u8; HEADER_LEN]>::try_from(header).map_err(|_| ApduError::TooShort)?;
        let (data, le) = parse_body(body)?;
        Ok(Self {
            cla,
            ins,
            p1,
            p2,
            data: data.to_vec(),
            le,
        })
    }
}

/// Splits the part after the header into data field and Ne.
fn parse_body(body: &[u8]) -> Result<(&[u8], Option<usize>), ApduError> {
    match body {
        [] => Ok((&[], None)),
        [le] => Ok((&[], Some(short_le(*le)))),
        [EXTENDED_MARKER, rest @ ..] if rest.len() >= 2 => parse_extended_body(rest),
        [lc, rest @ ..] if *lc != EXTENDED_MARKER => {
            let lc = usize::from(*lc);
            match rest.len().checked_sub(lc) {
                Some(0) => Ok((rest, None)),
                Some(1) => {
                    let (data, le) = rest.split_at(lc);
                    let le = le.first().copied().ok_or(ApduError::MalformedLength)?;
                    Ok((data, Some(short_le(le))))
                }
                _ => Err(ApduError::MalformedLength),
            }
        }
        _ => Err(ApduError::MalformedLength),
    }
}

/// Parses the body after the extended marker byte: `Le1 Le2` or `Lc1 Lc2 data [Le1 Le2]`.
fn parse_extended_body(rest: &[u8]) -> Result<(&[u8], Option<usize>), ApduError> {
    let (len_field, tail) = rest.split_at_checked(2).ok_or(ApduError::MalformedLength)?;
    let n = usize::from(u16::from_be_bytes([len_field[0], len_field[1]]));
    if tail.is_empty() {
        return Ok((&[], Some(extended_le(n))));
    }
    if n == 0 {
        return Err(ApduError::MalformedLength);
    }
    match tail.len().checked_sub(n) {
        Some(0) => Ok((tail, None)),
        Some(2) => {
            let (data, le) = tail.split_at(n);
            let le = usize::from(u16::from_be_bytes([le[0], le[1]]));
            Ok((data, Some(extended_le(le))))
        }
        _ => Err(ApduError::MalformedLength),
    }
}

fn short_le(byte: u8) -> usize {
    if byte == 0 {
        SHORT_MAX_LE
    } else {
        usize::from(byte)
    }
}

fn extended_le(value: usize) -> usize {
    if value == 0 { EXTENDED_MAX_LE } else { value }
}

/// Narrowing that the callers have already bounded; saturates rather than panics.
fn len_u8(n: usize) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

fn len_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// A response APDU: response data followed by the status word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub status: StatusWord,
}

impl Response {
    /// Builds a response (card side).
    pub fn new(data: impl Into<Vec<u8>>, status: StatusWord) -> Self {
        Self {
            data: data.into(),
            status,
        }
    }

    /// A response with only a status word.
    pub fn status(status: StatusWord) -> Self {
        Self {
            data: Vec::new(),
            status,
        }
    }

    /// Parses bytes received from a card.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApduError> {
        let split = bytes
            .len()
            .checked_sub(2)
            .ok_or(ApduError::ResponseTooShort)?;
        let (data, sw) = bytes.split_at(split);
        match sw {
            [sw1, sw2] => Ok(Self {
                data: data.to_vec(),
                status: StatusWord::from_bytes(*sw1, *sw2),
            }),
            _ => Err(ApduError::ResponseTooShort),
        }
    }

    /// Encodes data followed by SW1 SW2.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.status.to_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(c: &Command) -> Vec<u8> {
        c.encode().unwrap_or_default()
    }

    #[test]
    fn case_1() {
        assert_eq!(
            enc(&Command::new(0x00, 0x20, 0x00, 0x80)),
            [0x00, 0x20, 0x00, 0x80]
        );
    }

    #[test]
    fn case_2_short_and_256() {
        assert_eq!(
            enc(&Command::new(0, 0xB0, 0, 0).with_le(5)),
            [0, 0xB0, 0, 0, 5]
        );
        assert_eq!(
            enc(&Command::new(0, 0xB0, 0, 0).with_le(256)),
            [0, 0xB0, 0, 0, 0]
        );
    }

    #[test]
    fn case_2_extended() {
        assert_eq!(
            enc(&Command::new(0, 0xB0, 0, 0).with_le(0x0400)),
            [0, 0xB0, 0, 0, 0, 0x04, 0x00]
        );
        assert_eq!(
            enc(&Command::new(0, 0xB0, 0, 0).with_le(65536)),
            [0, 0xB0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn case_3_short_and_extended() {
        assert_eq!(
            enc(&Command::new(0, 0xA4, 2, 0x0C).with_data([0, 0x0A])),
            [0, 0xA4, 2, 0x0C, 2, 0, 0x0A]
        );
        let long = Command::new(0, 0xD6, 0, 0).with_data(vec![0xAB; 300]);
        let bytes = enc(&long);
        assert_eq!(&bytes[..7], &[0, 0xD6, 0, 0, 0, 0x01, 0x2C]);
        assert_eq!(bytes.len(), 7 + 300);
    }

    #[test]
    fn case_4_short_and_extended() {
        let c = Command::new(0x80, 0x2A, 0, 0x80)
            .with_data([1, 2, 3])
            .with_le(256);
        assert_eq!(enc(&c), [0x80, 0x2A, 0, 0x80, 3, 1, 2, 3, 0]);
        let c = Command::new(0x80, 0x2A, 0, 0x80)
            .with_data([1, 2, 3])
            .with_le(512);
        assert_eq!(enc(&c), [0x80, 0x2A, 0, 0x80, 0, 0, 3, 1, 2, 3, 2, 0]);
    }

    #[test]
    fn rejects_out_of_range() {
        assert_eq!(
            Command::new(0, 0, 0, 0).with_le(0).encode(),
            Err(ApduError::LeOutOfRange(0))
        );
        assert_eq!(
            Command::new(0, 0, 0, 0).with_le(65537).encode(),
            Err(ApduError::LeOutOfRange(65537))
        );
        assert_eq!(
            Command::new(0, 0, 0, 0).with_data(vec![0; 65536]).encode(),
            Err(ApduError::DataTooLong(65536))
        );
    }

    #[test]
    fn parse_round_trips_all_cases() {
        let cases = [
            Command::new(0, 0x20, 0, 0x80),
            Command::new(0, 0xB0, 0, 0).with_le(1),
            Command::new(0, 0xB0, 0, 0).with_le(256),
            Command::new(0, 0xB0, 0, 0).with_le(257),
            Command::new(0, 0xB0, 0, 0).with_le(65536),
            Command::new(0, 0xA4, 4, 0x0C).with_data([1; 10]),
            Command::new(0, 0xA4, 4, 0x0C).with_data(vec![1; 256]),
            Command::new(0x80, 0x2A, 0, 0x80)
                .with_data([7; 51])
                .with_le(256),
            Command::new(0x80, 0x2A, 0, 0x80)
                .with_data(vec![7; 300])
                .with_le(65536),
        ];
        for c in cases {
            assert_eq!(Command::parse(&enc(&c)), Ok(c));
        }
    }

    #[test]
    fn parse_rejects_inconsistent_lengths() {
        assert_eq!(Command::parse(&[0, 1, 2]), Err(ApduError::TooShort));
        assert_eq!(
            Command::parse(&[0, 1, 2, 3, 2, 9]),
            Err(ApduError::MalformedLength)
        );
        assert_eq!(
            Command::parse(&[0, 1, 2, 3, 1, 9, 9, 9]),
            Err(ApduError::MalformedLength)
        );
        assert_eq!(
            Command::parse(&[0, 1, 2, 3, 0, 0]),
            Err(ApduError::MalformedLength)
        );
        assert_eq!(
            Command::parse(&[0, 1, 2, 3, 0, 0, 0, 1]),
            Err(ApduError::MalformedLength)
        );
    }

    #[test]
    fn response_parse() {
        let r = Response::parse(&[1, 2, 0x90, 0x00]);
        assert_eq!(r, Ok(Response::new([1, 2], StatusWord::Success)));
        assert_eq!(
            Response::parse(&[0x63, 0xC1]).map(|r| r.status),
            Ok(StatusWord::TriesLeft(1))
        );
        assert_eq!(Response::parse(&[0x90]), Err(ApduError::ResponseTooShort));
        assert_eq!(
            Response::new([5], StatusWord::WrongLength).encode(),
            [5, 0x67, 0x00]
        );
    }
}
