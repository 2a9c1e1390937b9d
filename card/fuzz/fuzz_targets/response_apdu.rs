//! Response APDU parsing, status word decoding, and ISO-DEP block classification: bytes that
//! come straight from the card.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uketsuke_card::apdu::Response;
use uketsuke_card::framing::isodep::parse_block;

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = Response::parse(data) {
        // Re-encoding must give the same bytes back.
        assert_eq!(response.encode(), data);
    }
    let _ = parse_block(data);
});
