//! Test mode (feature `test-mode`, never in a release build): the helper without its window.
//! It checks the link, reads the card through PC/SC exactly as the window does, takes the PIN
//! from standard input instead of the PIN window, and opens the return address in the
//! browser (`$BROWSER` on Linux, so a test catches it).
//!
//! Standard output, one line each: `tries_left=<n>` before asking for a PIN, `wrong_pin
//! tries_left=<n>` after a wrong one, `pin_invalid` for input that is not four digits,
//! `refused=<code>` for a refused link (nothing is opened), `returned=<code>` (`ok` or the
//! error code) after opening the return address. Standard input: one PIN per line; `cancel` or
//! the end of input cancels.

use std::io::BufRead;
use std::time::Duration;

use uketsuke_card::{Pin, PinStatus};

use crate::protocol::{Checked, ErrorCode, check_link};
use crate::reader::{CardFailure, Readers};

/// How long the test mode waits for a card on a reader.
pub const CARD_WAIT: Duration = Duration::from_secs(5);

/// Runs the hand-off of `link` with the PIN from `input`; returns the process exit code (0
/// when the return address was opened, 2 for a refused link, 1 when the browser failed).
pub fn run(link: &str, input: impl BufRead) -> i32 {
    let checked = match check_link(link) {
        Ok(checked) => checked,
        Err(refusal) => {
            println!("refused={}", refusal.code());
            return 2;
        }
    };
    let outcome = read_and_sign(&checked, input);
    let (url, code) = match outcome {
        Ok(url) => (url, "ok"),
        Err(code) => (checked.error_url(code), code.code()),
    };
    match crate::browser::open(&url) {
        Ok(()) => {
            println!("returned={code}");
            0
        }
        Err(e) => {
            eprintln!("the browser could not be opened: {e}");
            1
        }
    }
}

fn read_and_sign(checked: &Checked, input: impl BufRead) -> Result<String, ErrorCode> {
    let fail = |f: CardFailure| {
        eprintln!("card: {f}");
        f.error_code()
    };
    let readers = Readers::open().map_err(fail)?;
    let reader = readers.reader_with_card(CARD_WAIT).map_err(fail)?;
    match readers.pin_status(&reader).map_err(fail)? {
        PinStatus::Blocked => return Err(ErrorCode::PinBlocked),
        PinStatus::TriesLeft(n) => println!("tries_left={n}"),
        PinStatus::Verified => println!("tries_left=verified"),
    }
    let message = checked.message();
    let mut lines = input.lines();
    loop {
        let line = match lines.next() {
            Some(Ok(line)) => line,
            _ => return Err(ErrorCode::Cancelled),
        };
        if line.trim() == "cancel" {
            return Err(ErrorCode::Cancelled);
        }
        let Ok(pin) = Pin::new(line.trim()) else {
            println!("pin_invalid");
            continue;
        };
        drop(line);
        match readers.sign(&reader, &pin, &message) {
            Ok(auth) => return Ok(checked.result_url(&auth)),
            Err(CardFailure::WrongPin { tries_left }) => {
                println!("wrong_pin tries_left={tries_left}")
            }
            Err(f) => return Err(fail(f)),
        }
    }
}
