//! The emulators answer as the recorded devices do: the host frames of `shared/field/readers/`
//! are written to each emulator and its answers compared with the recorded reader frames. Also
//! the reader faults end to end through the emulators (no card, RF errors, a killed session's
//! leftovers, a refusing reader).

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::script::{Step, named, rcs300_message, trace_steps};
use common::*;
use uketsuke_card::emulator::{CardOptions, Rcs300Emulator, Rcs380Emulator};
use uketsuke_card::framing::rcs300::{Rcs300Config, Rcs300Session};
use uketsuke_card::framing::rcs380::{Rcs380Config, Rcs380Session, encode_command, rf_status};
use uketsuke_card::{JpkiError, RfFault, TransportError, UsbBulk, authenticate};

const F05: &str = "F05_rcs300_real_answers.txt";
const F06: &str = "F06_rcs300_success_shapes.txt";

/// Writes `frame` and collects every transfer the emulator has queued for bulk IN.
fn answers<U: UsbBulk>(usb: &mut U, frame: &[u8]) -> Vec<Vec<u8>> {
    run(usb.write(frame)).expect("write");
    let mut out = Vec::new();
    while let Ok(bytes) = run(usb.read(0)) {
        out.push(bytes);
    }
    out
}

#[test]
fn rcs380_emulator_answers_the_f01_bring_up_like_the_real_reader() {
    let steps = trace_steps("F01_rcs380_real_frames.trace");
    let mut emulator = Rcs380Emulator::new(card(), CardOptions::default());
    // Host frames up to (not including) the Type A InCommRF: the emulator holds a Type B card.
    let mut compared = 0;
    let mut i = 0;
    while i < steps.len() {
        let Step::Out(host) = &steps[i] else {
            i += 1;
            continue;
        };
        if host.get(8..10) == Some(&[0xD6, 0x04]) {
            break;
        }
        let expected: Vec<Vec<u8>> = steps[i + 1..]
            .iter()
            .map_while(|s| match s {
                Step::In(bytes) => Some(bytes.clone()),
                Step::Out(_) => None,
            })
            .collect();
        assert_eq!(
            answers(&mut emulator, host),
            expected,
            "answer to {host:02x?}"
        );
        compared += 1;
        i += 1 + expected.len();
    }
    assert_eq!(compared, 6, "ACK and five commands compared");
}

#[test]
fn rcs380_emulator_no_card_result_is_the_f02_frame() {
    let steps = trace_steps("F02_rcs380_incommrf_errors.trace");
    let (Step::Out(host), Step::In(ack), Step::In(no_card)) = (&steps[0], &steps[1], &steps[2])
    else {
        panic!("F02 starts with the host frame, the ACK and the no-card result");
    };
    let mut emulator = Rcs380Emulator::new(card(), CardOptions::default());
    emulator.field().set_removed(true);
    assert_eq!(
        answers(&mut emulator, host),
        vec![ack.clone(), no_card.clone()]
    );
    // An injected status is answered in the same four-byte shape (F02's other lines).
    for (status, line) in [(0x40u32, 3), (0x01, 4)] {
        let Step::In(expected) = &steps[line] else {
            panic!("F02 line {line} is a reader frame");
        };
        emulator.inject_rf_status(status);
        assert_eq!(
            answers(&mut emulator, host),
            vec![ack.clone(), expected.clone()]
        );
    }
}

fn rcs300_answer(emulator: &mut Rcs300Emulator, seq: u8, payload: &[u8]) -> Vec<u8> {
    let answers = answers(emulator, &rcs300_message(0x6B, seq, payload));
    assert_eq!(answers.len(), 1);
    let answer = &answers[0];
    assert_eq!(
        (answer[0], answer[5], answer[6]),
        (0x83, 0x00, seq),
        "RDR_to_PC_Escape header"
    );
    answer[10..].to_vec()
}

#[test]
fn rcs300_emulator_answers_like_f05_and_f06() {
    let mut emulator = Rcs300Emulator::new(card(), CardOptions::default());
    emulator.field().set_removed(true);
    // RF on outside a transparent session: refused.
    assert_eq!(
        rcs300_answer(&mut emulator, 1, &named(F06, "rf_on")),
        named(F05, "refused")
    );
    assert_eq!(
        rcs300_answer(&mut emulator, 2, &named(F06, "start_transparent")),
        named(F05, "accepted")
    );
    assert_eq!(
        rcs300_answer(&mut emulator, 3, &named(F06, "rf_on")),
        named(F05, "accepted")
    );
    // The FeliCa switch answer carries 8F 01 08.
    assert_eq!(
        rcs300_answer(&mut emulator, 4, &named(F06, "switch_felica")),
        named(F06, "switch_answer")
    );
    // One value byte: wrong length. An unknown protocol: unsupported value.
    let one_byte = [0xFF, 0x50, 0x00, 0x02, 0x03, 0x8F, 0x01, 0x01, 0x00];
    assert_eq!(
        rcs300_answer(&mut emulator, 5, &one_byte),
        named(F05, "wrong_length")
    );
    let unknown = [0xFF, 0x50, 0x00, 0x02, 0x04, 0x8F, 0x02, 0x7E, 0x04, 0x00];
    assert_eq!(
        rcs300_answer(&mut emulator, 6, &unknown),
        named(F05, "unsupported_value")
    );
    // Garbage after FF 50: malformed.
    assert_eq!(
        rcs300_answer(&mut emulator, 7, &[0xFF, 0x50, 0x00, 0x00, 0x09, 0x81]),
        named(F05, "malformed")
    );
    // Both transceive shapes reach the (empty) field: nothing answered.
    for key in ["exchange_short", "exchange_extended"] {
        assert_eq!(
            rcs300_answer(&mut emulator, 8, &named(F06, key)),
            named(F05, "no_answer"),
            "{key}"
        );
    }
}

#[test]
fn no_card_on_either_reader_is_no_card() {
    let mut s380 = Rcs380Emulator::new(card(), CardOptions::default());
    s380.field().set_removed(true);
    assert_eq!(
        run(Rcs380Session::open(&mut s380, Rcs380Config::default())).err(),
        Some(TransportError::NoCard)
    );
    let mut s300 = Rcs300Emulator::new(card(), CardOptions::default());
    s300.field().set_removed(true);
    assert_eq!(
        run(Rcs300Session::open(&mut s300, Rcs300Config::default())).err(),
        Some(TransportError::NoCard)
    );
}

#[test]
fn rcs380_rf_errors_are_their_own_kind() {
    for (status, fault) in [
        (rf_status::CRC_ERROR, RfFault::Garbled),
        (rf_status::PARITY_ERROR, RfFault::Garbled),
        (rf_status::COLLISION_ERROR, RfFault::Collision),
        (rf_status::TEMPERATURE_ERROR, RfFault::Reader),
        (rf_status::RF_OFF_ERROR, RfFault::Reader),
    ] {
        let mut emulator = Rcs380Emulator::new(card(), CardOptions::default());
        emulator.inject_rf_status(status);
        assert_eq!(
            run(Rcs380Session::open(&mut emulator, Rcs380Config::default())).err(),
            Some(TransportError::Rf { fault, status }),
            "{status:08X}"
        );
    }
}

#[test]
fn a_killed_rcs380_session_does_not_break_the_next_open() {
    let mut emulator = Rcs380Emulator::new(card(), CardOptions::default());
    // The killed page: a session opened, then an InCommRF written and never read (reload).
    let session = run(Rcs380Session::open(&mut emulator, Rcs380Config::default()));
    assert!(session.is_ok());
    drop(session);
    let frame = encode_command(0x04, &[0x36, 0x01, 0x05, 0x00, 0x00]).expect("frame");
    run(emulator.write(&frame)).expect("write");
    assert_eq!(emulator.unread_transfers(), 2, "ACK and result left unread");
    let session = run(Rcs380Session::open(&mut emulator, Rcs380Config::default()))
        .expect("the next open succeeds");
    let auth = run(authenticate(session, &pin(), CHALLENGE)).expect("auth");
    assert_signature_verifies(&auth.certificate_der, CHALLENGE, &auth.signature);
}

#[test]
fn a_killed_rcs300_session_does_not_break_the_next_open() {
    let mut emulator = Rcs300Emulator::new(card(), CardOptions::default());
    let session = run(Rcs300Session::open(&mut emulator, Rcs300Config::default()));
    assert!(session.is_ok());
    drop(session);
    // A transceive written and never read, then an RF-off too.
    run(emulator.write(&rcs300_message(0x6B, 5, &named(F06, "exchange_extended")))).expect("write");
    run(emulator.write(&rcs300_message(0x6B, 6, &named(F06, "rf_off")))).expect("write");
    let session = run(Rcs300Session::open(&mut emulator, Rcs300Config::default()))
        .expect("the next open succeeds");
    let auth = run(authenticate(session, &pin(), CHALLENGE)).expect("auth");
    assert_signature_verifies(&auth.certificate_der, CHALLENGE, &auth.signature);
}

#[test]
fn rf_error_mid_read_reaches_the_flow_as_its_kind() {
    // Activation takes two InCommRF (REQB, ATTRIB); the fault then hits SELECT or a read.
    for after in [2, 3, 6] {
        let mut emulator = Rcs380Emulator::new(card(), CardOptions::default());
        emulator.inject_rf_status_after(after, rf_status::CRC_ERROR);
        let result = run(Rcs380Session::open(&mut emulator, Rcs380Config::default()))
            .map_err(JpkiError::from)
            .and_then(|s| run(authenticate(s, &pin(), CHALLENGE)));
        assert_eq!(
            result,
            Err(JpkiError::Rf {
                fault: RfFault::Garbled,
                status: rf_status::CRC_ERROR
            }),
            "after {after}"
        );
    }
}
