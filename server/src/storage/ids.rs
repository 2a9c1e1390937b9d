//! Random identifiers that are safe to print on paper and to put in URLs: 128 bits from the
//! operating system's generator, in lower-case Crockford base32 (no i, l, o, u: nothing to
//! misread when typed from a printed sheet).

use rand::RngCore;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// 128 bits in 5-bit symbols.
pub const ID_LEN: usize = 26;

pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    encode(u128::from_be_bytes(bytes))
}

fn encode(mut value: u128) -> String {
    let mut out = [0u8; ID_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value & 31) as usize];
        value >>= 5;
    }
    out.iter().map(|b| char::from(*b)).collect()
}

/// Cheap shape check before any database look-up: junk never reaches SQL.
pub fn looks_like_id(candidate: &str) -> bool {
    candidate.len() == ID_LEN && candidate.bytes().all(|b| ALPHABET.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_well_formed_and_distinct() {
        let a = new_id();
        let b = new_id();
        assert!(looks_like_id(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(encode(0), "0".repeat(ID_LEN));
        assert_eq!(encode(u128::MAX).len(), ID_LEN);
    }

    #[test]
    fn junk_is_rejected() {
        for bad in [
            "",
            "abc",
            &"I".repeat(ID_LEN),
            &"0".repeat(ID_LEN + 1),
            "../../etc/passwd",
        ] {
            assert!(!looks_like_id(bad), "{bad}");
        }
        assert!(!looks_like_id(&format!("{}u", "0".repeat(ID_LEN - 1))));
    }
}
