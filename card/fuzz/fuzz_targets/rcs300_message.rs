//! RC-S300 message decoding: the CCID-style header, then the reader answer and its BER-TLVs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uketsuke_card::framing::rcs300::{decode_message, parse_answer, parse_tlvs};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = decode_message(data) {
        let _ = parse_answer(&message.payload);
    }
    let _ = parse_answer(data);
    let _ = parse_tlvs(data);
});
