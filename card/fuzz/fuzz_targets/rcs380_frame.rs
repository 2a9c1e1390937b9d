//! RC-S380 frame decoding (bytes from the reader over USB), plus the ATQB parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uketsuke_card::framing::rcs380::{Frame, decode_frame, encode_frame, parse_atqb};

fuzz_target!(|data: &[u8]| {
    if let Ok(Frame::Data(payload)) = decode_frame(data) {
        assert_eq!(encode_frame(&payload).as_deref(), Ok(data));
    }
    let _ = parse_atqb(data);
});
