//! ISO 7816-4 status words (SW1 SW2) as a typed enum, so callers match on meaning rather than
//! on magic numbers.

use core::fmt;

/// SW1 of "verification failed, `x` tries left" (`63 Cx`).
const SW1_WARNING_COUNTER: u8 = 0x63;
/// High nibble of SW2 marking a retry counter in `63 Cx`.
const SW2_COUNTER_MARK: u8 = 0xC0;
/// SW1 of "more response bytes available" (`61 xx`).
const SW1_BYTES_REMAINING: u8 = 0x61;
/// SW1 of "wrong Le, the exact length is xx" (`6C xx`).
const SW1_WRONG_LE: u8 = 0x6C;

/// A status word returned by a card, decoded to its ISO 7816-4 meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatusWord {
    /// `90 00`: normal processing.
    Success,
    /// `61 xx`: success, `xx` more bytes can be fetched with GET RESPONSE (0 means 256).
    BytesRemaining(u8),
    /// `62 82`: end of file reached before reading Le bytes.
    EndOfFileReached,
    /// `63 Cx`: verification failed (or counter query), `x` tries left.
    TriesLeft(u8),
    /// `67 00`: wrong length (Lc or Le).
    WrongLength,
    /// `69 81`: command incompatible with the file structure.
    IncompatibleFileStructure,
    /// `69 82`: security status not satisfied (e.g. PIN not verified).
    SecurityStatusNotSatisfied,
    /// `69 83`: authentication method blocked.
    AuthenticationBlocked,
    /// `69 84`: reference data not usable (e.g. PIN blocked).
    ReferenceDataNotUsable,
    /// `69 86`: command not allowed, no current EF.
    NoCurrentEf,
    /// `6A 80`: incorrect parameters in the data field.
    IncorrectData,
    /// `6A 82`: file or application not found.
    FileNotFound,
    /// `6A 86`: incorrect parameters P1-P2.
    IncorrectP1P2,
    /// `6B 00`: wrong parameters P1-P2 (offset outside the EF).
    WrongP1P2,
    /// `6C xx`: wrong Le; `xx` is the exact length available.
    WrongLe(u8),
    /// `6D 00`: instruction code not supported.
    InsNotSupported,
    /// `6E 00`: class not supported.
    ClaNotSupported,
    /// `6F 00`: no precise diagnosis.
    NoPreciseDiagnosis,
    /// Any other status word, kept verbatim.
    Unknown(u16),
}

impl StatusWord {
    /// Decodes SW1 SW2.
    pub fn from_bytes(sw1: u8, sw2: u8) -> Self {
        match (sw1, sw2) {
            (0x90, 0x00) => Self::Success,
            (SW1_BYTES_REMAINING, n) => Self::BytesRemaining(n),
            (0x62, 0x82) => Self::EndOfFileReached,
            (SW1_WARNING_COUNTER, n) if n & 0xF0 == SW2_COUNTER_MARK => Self::TriesLeft(n & 0x0F),
            (0x67, 0x00) => Self::WrongLength,
            (0x69, 0x81) => Self::IncompatibleFileStructure,
            (0x69, 0x82) => Self::SecurityStatusNotSatisfied,
            (0x69, 0x83) => Self::AuthenticationBlocked,
            (0x69, 0x84) => Self::ReferenceDataNotUsable,
            (0x69, 0x86) => Self::NoCurrentEf,
            (0x6A, 0x80) => Self::IncorrectData,
            (0x6A, 0x82) => Self::FileNotFound,
            (0x6A, 0x86) => Self::IncorrectP1P2,
            (0x6B, 0x00) => Self::WrongP1P2,
            (SW1_WRONG_LE, n) => Self::WrongLe(n),
            (0x6D, 0x00) => Self::InsNotSupported,
            (0x6E, 0x00) => Self::ClaNotSupported,
            (0x6F, 0x00) => Self::NoPreciseDiagnosis,
            _ => Self::Unknown(u16::from_be_bytes([sw1, sw2])),
        }
    }

    /// Encodes back to SW1 SW2.
    pub fn to_bytes(self) -> [u8; 2] {
        match self {
            Self::Success => [0x90, 0x00],
            Self::BytesRemaining(n) => [SW1_BYTES_REMAINING, n],
            Self::EndOfFileReached => [0x62, 0x82],
            // A counter above 15 cannot be expressed; the nibble keeps the low bits only.
            Self::TriesLeft(n) => [SW1_WARNING_COUNTER, SW2_COUNTER_MARK | (n & 0x0F)],
            Self::WrongLength => [0x67, 0x00],
            Self::IncompatibleFileStructure => [0x69, 0x81],
            Self::SecurityStatusNotSatisfied => [0x69, 0x82],
            Self::AuthenticationBlocked => [0x69, 0x83],
            Self::ReferenceDataNotUsable => [0x69, 0x84],
            Self::NoCurrentEf => [0x69, 0x86],
            Self::IncorrectData => [0x6A, 0x80],
            Self::FileNotFound => [0x6A, 0x82],
            Self::IncorrectP1P2 => [0x6A, 0x86],
            Self::WrongP1P2 => [0x6B, 0x00],
            Self::WrongLe(n) => [SW1_WRONG_LE, n],
            Self::InsNotSupported => [0x6D, 0x00],
            Self::ClaNotSupported => [0x6E, 0x00],
            Self::NoPreciseDiagnosis => [0x6F, 0x00],
            Self::Unknown(sw) => sw.to_be_bytes(),
        }
    }

    /// The status word as one 16-bit number (`0x9000`).
    pub fn as_u16(self) -> u16 {
        u16::from_be_bytes(self.to_bytes())
    }

    /// True for `90 00` only.
    pub fn is_success(self) -> bool {
        self == Self::Success
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [sw1, sw2] = self.to_bytes();
        write!(f, "{sw1:02X} {sw2:02X} ({self:?})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_named_status_words() {
        assert_eq!(StatusWord::from_bytes(0x90, 0x00), StatusWord::Success);
        assert_eq!(StatusWord::from_bytes(0x63, 0xC2), StatusWord::TriesLeft(2));
        assert_eq!(StatusWord::from_bytes(0x63, 0xC0), StatusWord::TriesLeft(0));
        assert_eq!(
            StatusWord::from_bytes(0x69, 0x84),
            StatusWord::ReferenceDataNotUsable
        );
        assert_eq!(
            StatusWord::from_bytes(0x61, 0x10),
            StatusWord::BytesRemaining(0x10)
        );
        assert_eq!(
            StatusWord::from_bytes(0x6C, 0x20),
            StatusWord::WrongLe(0x20)
        );
        assert_eq!(
            StatusWord::from_bytes(0x63, 0x00),
            StatusWord::Unknown(0x6300)
        );
        assert_eq!(
            StatusWord::from_bytes(0x12, 0x34),
            StatusWord::Unknown(0x1234)
        );
    }

    #[test]
    fn round_trips_every_pair() {
        for sw1 in 0..=255u8 {
            for sw2 in 0..=255u8 {
                assert_eq!(StatusWord::from_bytes(sw1, sw2).to_bytes(), [sw1, sw2]);
            }
        }
    }
}
