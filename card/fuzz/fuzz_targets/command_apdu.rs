//! Command APDU parsing as the virtual card does it: whatever parses must re-encode to bytes
//! that parse to the same command.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uketsuke_card::apdu::Command;

fuzz_target!(|data: &[u8]| {
    if let Ok(command) = Command::parse(data) {
        let encoded = command.encode().expect("a parsed command encodes");
        assert_eq!(Command::parse(&encoded).as_ref(), Ok(&command));
    }
});
