//! DER header parsing, which sizes certificate reads from bytes the card returns.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uketsuke_card::der_len::{MAX_HEADER_LEN, parse_header};

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = parse_header(data) {
        assert!(header.header_len >= 2 && header.header_len <= MAX_HEADER_LEN);
        assert!(header.header_len <= data.len());
    }
});
