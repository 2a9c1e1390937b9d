//! The user-authentication PIN (利用者証明用電子証明書の暗証番号): exactly four ASCII digits.
//! The value is wiped from memory on drop and never printed.

use core::fmt;
use zeroize::Zeroize;

/// Number of digits in a JPKI user-authentication PIN.
pub const PIN_LEN: usize = 4;

/// Why a string is not a valid PIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    #[error("the PIN must be exactly 4 digits")]
    WrongLength,
    #[error("the PIN may contain only the digits 0-9")]
    NotADigit,
}

/// A four-digit PIN. Deliberately neither `Clone` nor `Display`; `Debug` prints `Pin(****)`.
pub struct Pin {
    ascii: [u8; PIN_LEN],
}

impl Pin {
    /// Validates and takes a PIN typed by the user. Full-width digits are rejected on purpose:
    /// the card compares ASCII bytes, so the UI must normalise input before calling this.
    pub fn new(input: &str) -> Result<Self, PinError> {
        let bytes = input.as_bytes();
        if bytes.len() != PIN_LEN {
            // A multi-byte character makes the byte count differ even if the char count is 4.
            return Err(if input.chars().count() == PIN_LEN && !input.is_ascii() {
                PinError::NotADigit
            } else {
                PinError::WrongLength
            });
        }
        let mut ascii = [0u8; PIN_LEN];
        for (slot, &b) in ascii.iter_mut().zip(bytes) {
            if !b.is_ascii_digit() {
                ascii.zeroize();
                return Err(PinError::NotADigit);
            }
            *slot = b;
        }
        Ok(Self { ascii })
    }

    /// The ASCII bytes as VERIFY sends them. Crate-private so the digits cannot leak further.
    pub(crate) fn ascii(&self) -> &[u8; PIN_LEN] {
        &self.ascii
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        self.ascii.zeroize();
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(****)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_four_digits() {
        let pin = Pin::new("0123");
        assert!(pin.as_ref().is_ok_and(|p| p.ascii() == b"0123"));
    }

    #[test]
    fn rejects_everything_else() {
        assert_eq!(Pin::new("123").err(), Some(PinError::WrongLength));
        assert_eq!(Pin::new("12345").err(), Some(PinError::WrongLength));
        assert_eq!(Pin::new("").err(), Some(PinError::WrongLength));
        assert_eq!(Pin::new("12a4").err(), Some(PinError::NotADigit));
        assert_eq!(Pin::new("12 4").err(), Some(PinError::NotADigit));
        assert_eq!(Pin::new("１２３４").err(), Some(PinError::NotADigit));
    }

    #[test]
    fn debug_hides_digits() {
        let pin = Pin::new("9876");
        assert_eq!(
            pin.map(|p| format!("{p:?}")).ok().as_deref(),
            Some("Pin(****)")
        );
    }
}
