//! Byte traces of one full authentication per reader framing, compared with the checked-in
//! fixtures so any change on the wire shows up as a diff. Regenerate deliberately with
//! `UPDATE_FIXTURES=1 cargo test -p uketsuke-card --test fixtures`.

mod common;

use std::path::PathBuf;

use common::*;
use uketsuke_card::authenticate;
use uketsuke_card::emulator::{CardOptions, Rcs300Emulator, Rcs380Emulator, TraceRecorder};
use uketsuke_card::framing::rcs300::{Rcs300Config, Rcs300Session};
use uketsuke_card::framing::rcs380::{Rcs380Config, Rcs380Session};
use uketsuke_card::transport::UsbBulk;

/// 64-byte frames and one WTX per response, so the trace shows chaining and WTX too.
const OPTIONS: CardOptions = CardOptions {
    fsci: 5,
    wtx_rounds: 1,
};

fn header(framing: &str) -> String {
    format!(
        "# {framing}: authenticate() against the virtual card (CA seed {CA_SEED}, card seed {CARD_SEED}, \
         test PIN {TEST_PIN}, challenge {:?}).\n# Card FSCI 5 (64-byte frames), one S(WTX) per response. \
         '>' = bulk OUT (host to reader), '<' = bulk IN.\n",
        String::from_utf8_lossy(CHALLENGE)
    )
}

fn check(name: &str, framing: &str, trace: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let expected_text = format!("{}{trace}", header(framing));
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        std::fs::write(&path, &expected_text).expect("write fixture");
        return;
    }
    let stored =
        std::fs::read_to_string(&path).expect("fixture exists (UPDATE_FIXTURES=1 creates it)");
    let strip = |text: &str| {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (stored, actual) = (strip(&stored), strip(&expected_text));
    if let Some(i) = (0..stored.len().max(actual.len())).find(|&i| stored.get(i) != actual.get(i)) {
        panic!(
            "{name}: transfer {} differs\n stored: {:?}\n actual: {:?}\n({} stored, {} actual transfers)",
            i + 1,
            stored.get(i),
            actual.get(i),
            stored.len(),
            actual.len()
        );
    }
}

fn record<U: UsbBulk>(usb: U, run: impl FnOnce(&mut TraceRecorder<U>)) -> String {
    let mut recorder = TraceRecorder::new(usb);
    run(&mut recorder);
    recorder.to_text()
}

#[test]
fn rcs380_trace_matches_fixture() {
    let trace = record(Rcs380Emulator::new(card(), OPTIONS), |usb| {
        let session = run(Rcs380Session::open(usb, Rcs380Config::default())).expect("open");
        let auth = run(authenticate(session, &pin(), CHALLENGE)).expect("auth");
        assert_signature_verifies(&auth.certificate_der, CHALLENGE, &auth.signature);
    });
    assert!(
        trace.contains("f203"),
        "the trace shows an S(WTX) with WTXM 3"
    );
    check("rcs380_authenticate.trace", "RC-S380", &trace);
}

#[test]
fn rcs300_trace_matches_fixture() {
    let trace = record(
        Rcs300Emulator::new(card(), OPTIONS).with_reader_fsdi(5),
        |usb| {
            let config = Rcs300Config {
                card_frame_size: 64,
                ..Rcs300Config::default()
            };
            let session = run(Rcs300Session::open(usb, config)).expect("open");
            let auth = run(authenticate(session, &pin(), CHALLENGE)).expect("auth");
            assert_signature_verifies(&auth.certificate_der, CHALLENGE, &auth.signature);
        },
    );
    check("rcs300_authenticate.trace", "RC-S300", &trace);
}
