//! DER tag-and-length header parsing, just enough to know how many bytes a certificate file
//! holds before reading it: the card files are padded, so their size says nothing.

/// Low five bits of an identifier octet equal to this mark a multi-byte (high) tag number.
const HIGH_TAG_NUMBER_MARK: u8 = 0x1F;
/// Bit that marks the long form of a length octet.
const LONG_FORM_BIT: u8 = 0x80;
/// Largest number of length octets we accept after the long-form octet; four bytes already
/// describe 4 GiB, far beyond any file on a card.
const MAX_LENGTH_OCTETS: usize = 4;
/// Bytes to read first to be sure the whole header is present for any length we accept.
pub const MAX_HEADER_LEN: usize = 2 + MAX_LENGTH_OCTETS;

/// A parsed DER header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DerHeader {
    /// The identifier octet.
    pub tag: u8,
    /// Bytes taken by the identifier and length octets.
    pub header_len: usize,
    /// Bytes of content after the header.
    pub content_len: usize,
}

impl DerHeader {
    /// Header plus content, or `None` if that overflows `usize`.
    pub fn total_len(&self) -> Option<usize> {
        self.header_len.checked_add(self.content_len)
    }
}

/// Why a DER header could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DerLenError {
    #[error("DER header incomplete: need at least {0} bytes")]
    NeedMoreBytes(usize),
    #[error("DER forbids the indefinite length form")]
    IndefiniteLength,
    #[error("DER length uses more than 4 length octets")]
    LengthTooLarge,
    #[error("DER length is not minimally encoded")]
    NonMinimalLength,
    #[error("multi-byte DER tags are not supported here")]
    HighTagNumber,
}

/// Parses the identifier and length octets at the start of `bytes`.
pub fn parse_header(bytes: &[u8]) -> Result<DerHeader, DerLenError> {
    let (&tag, rest) = bytes.split_first().ok_or(DerLenError::NeedMoreBytes(2))?;
    if tag & HIGH_TAG_NUMBER_MARK == HIGH_TAG_NUMBER_MARK {
        return Err(DerLenError::HighTagNumber);
    }
    let (&first, rest) = rest.split_first().ok_or(DerLenError::NeedMoreBytes(2))?;
    if first & LONG_FORM_BIT == 0 {
        return Ok(DerHeader {
            tag,
            header_len: 2,
            content_len: usize::from(first),
        });
    }
    let octets = usize::from(first & !LONG_FORM_BIT);
    if octets == 0 {
        return Err(DerLenError::IndefiniteLength);
    }
    if octets > MAX_LENGTH_OCTETS {
        return Err(DerLenError::LengthTooLarge);
    }
    let length_bytes = rest
        .get(..octets)
        .ok_or(DerLenError::NeedMoreBytes(2 + octets))?;
    if length_bytes.first() == Some(&0) {
        return Err(DerLenError::NonMinimalLength);
    }
    let content_len = length_bytes
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    if content_len < u64::from(LONG_FORM_BIT) {
        return Err(DerLenError::NonMinimalLength);
    }
    let content_len = usize::try_from(content_len).map_err(|_| DerLenError::LengthTooLarge)?;
    Ok(DerHeader {
        tag,
        header_len: 2 + octets,
        content_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_forms() {
        assert_eq!(
            parse_header(&[0x30, 0x05]),
            Ok(DerHeader {
                tag: 0x30,
                header_len: 2,
                content_len: 5
            })
        );
        assert_eq!(
            parse_header(&[0x30, 0x82, 0x04, 0xD2, 0xAA]),
            Ok(DerHeader {
                tag: 0x30,
                header_len: 4,
                content_len: 0x04D2
            })
        );
        assert_eq!(
            parse_header(&[0x30, 0x81, 0x80]).map(|h| h.total_len()),
            Ok(Some(0x83))
        );
    }

    #[test]
    fn rejects_bad_headers() {
        assert_eq!(parse_header(&[]), Err(DerLenError::NeedMoreBytes(2)));
        assert_eq!(parse_header(&[0x30]), Err(DerLenError::NeedMoreBytes(2)));
        assert_eq!(
            parse_header(&[0x30, 0x82, 0x01]),
            Err(DerLenError::NeedMoreBytes(4))
        );
        assert_eq!(
            parse_header(&[0x30, 0x80]),
            Err(DerLenError::IndefiniteLength)
        );
        assert_eq!(
            parse_header(&[0x30, 0x85, 1, 1, 1, 1, 1]),
            Err(DerLenError::LengthTooLarge)
        );
        assert_eq!(
            parse_header(&[0x30, 0x81, 0x7F]),
            Err(DerLenError::NonMinimalLength)
        );
        assert_eq!(
            parse_header(&[0x30, 0x82, 0x00, 0xFF]),
            Err(DerLenError::NonMinimalLength)
        );
        assert_eq!(parse_header(&[0x1F, 0x01]), Err(DerLenError::HighTagNumber));
        // An erased (0xFF-filled) file is not a certificate.
        assert_eq!(parse_header(&[0xFF, 0xFF]), Err(DerLenError::HighTagNumber));
    }
}
