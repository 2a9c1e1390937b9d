//! The reader framings against frames recorded from real readers (`shared/field/readers/`,
//! parsed at test time), through a scripted USB transport that expects each host frame and
//! gives each reader frame — no emulator involved. Plus generated cases of the same kinds.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use common::run;
use common::script::{Scripted, Step, host, named, named_bytes, reader, trace_steps};
use proptest::prelude::*;
use uketsuke_card::framing::isodep::RfExchange;
use uketsuke_card::framing::rcs300::{
    Rcs300Config, Rcs300Error, Rcs300Link, Rcs300Session, encode_message, encode_transceive,
    parse_answer, tag,
};
use uketsuke_card::framing::rcs380::{
    ACK_FRAME, FrameError, IN_SET_PROTOCOL_DEFAULTS, Rcs380Config, Rcs380Link, cmd, decode_frame,
    encode_frame, parse_atqb, parse_in_comm_rf_result,
};
use uketsuke_card::{RfFault, TransportError};

fn link380(steps: Vec<Step>) -> Rcs380Link<Scripted> {
    Rcs380Link::new(Scripted::new(steps), Rcs380Config::default())
}

/// F01 without its final negative line (a reader frame with a blanked, wrong checksum).
fn f01() -> (Vec<Step>, Vec<u8>) {
    let mut steps = trace_steps("F01_rcs380_real_frames.trace");
    let Some(Step::In(negative)) = steps.pop() else {
        panic!("F01 ends with its negative reader frame");
    };
    (steps, negative)
}

#[test]
fn f01_real_rcs380_bring_up_and_incommrf_success() {
    let (steps, _) = f01();
    let mut link = link380(steps);
    // ACK, then the drain finds nothing (the next step is the host's), then the bring-up.
    assert_eq!(run(link.start()), Ok(0));
    assert_eq!(run(link.bring_up()), Ok((1, 0x11)), "firmware 1.11");
    assert_eq!(
        run(link.command_ok(cmd::IN_SET_PROTOCOL, &IN_SET_PROTOCOL_DEFAULTS)),
        Ok(())
    );
    // Type A SENS_REQ 26 with 30 ms (0x0136 units): SENS_RES 04 00 after the five header bytes.
    assert_eq!(run(link.exchange(&[0x26], 30)), Ok(Some(vec![0x04, 0x00])));
    link.into_inner().assert_done();
}

#[test]
fn f01_negative_bad_data_checksum_is_refused() {
    let (steps, negative) = f01();
    assert_eq!(decode_frame(&negative), Err(FrameError::DataChecksum));
    // The same frame as the answer to an InCommRF: a protocol error, never a card answer.
    let in_comm_rf = steps
        .iter()
        .find_map(|s| match s {
            Step::Out(bytes) if bytes.get(8..10) == Some(&[0xD6, 0x04]) => Some(bytes.clone()),
            _ => None,
        })
        .expect("F01 has an InCommRF");
    let mut link = link380(vec![
        Step::Out(in_comm_rf),
        Step::In(ACK_FRAME.to_vec()),
        Step::In(negative),
    ]);
    match run(link.exchange(&[0x26], 30)) {
        Err(TransportError::Protocol(m)) => assert!(m.contains("checksum"), "{m}"),
        other => panic!("expected a checksum error, got {other:?}"),
    }
}

/// F02: the host's REQB frame, then ACK and the four result frames, in file order.
fn f02() -> (Vec<u8>, Vec<Vec<u8>>) {
    let steps = trace_steps("F02_rcs380_incommrf_errors.trace");
    let mut host_frame = None;
    let mut results = Vec::new();
    for step in steps {
        match step {
            Step::Out(bytes) => host_frame = Some(bytes),
            Step::In(bytes) if bytes == ACK_FRAME => {}
            Step::In(bytes) => results.push(bytes),
        }
    }
    (host_frame.expect("F02 host frame"), results)
}

fn f02_exchange(result_frame: Vec<u8>) -> Result<Option<Vec<u8>>, TransportError> {
    let (host_frame, _) = f02();
    let mut link = link380(vec![
        Step::Out(host_frame),
        Step::In(ACK_FRAME.to_vec()),
        Step::In(result_frame),
    ]);
    // nfcpy's sense_ttb REQB (05 00 10), 30 ms.
    let result = run(link.exchange(&[0x05, 0x00, 0x10], 30));
    link.into_inner().assert_done();
    result
}

#[test]
fn f02_incommrf_error_results_carry_only_the_status() {
    let (_, results) = f02();
    assert_eq!(
        results.len(),
        4,
        "F02 has three error results and one success"
    );
    // Receive timeout: nothing answered. The session maps this to "no card" (place the card).
    assert_eq!(f02_exchange(results[0].clone()), Ok(None));
    assert_eq!(
        f02_exchange(results[1].clone()),
        Err(TransportError::Rf {
            fault: RfFault::Reader,
            status: 0x40
        })
    );
    assert_eq!(
        f02_exchange(results[2].clone()),
        Err(TransportError::Rf {
            fault: RfFault::Garbled,
            status: 0x01
        })
    );
    let atqb = f02_exchange(results[3].clone())
        .expect("success")
        .expect("an ATQB");
    assert_eq!(atqb.first(), Some(&0x50));
    assert!(parse_atqb(&atqb).is_ok_and(|info| info.iso_dep));
}

/// F03: ACK, leftover, SetCommandType and its ACK and result; the variant leftover last.
fn f03() -> (Vec<Step>, Step) {
    let mut steps = trace_steps("F03_rcs380_stale_data.trace");
    let variant = steps.pop().expect("F03 variant");
    (steps, variant)
}

#[test]
fn f03_leftover_garbage_is_drained_after_the_ack() {
    let (steps, _) = f03();
    assert!(matches!(&steps[1], Step::In(b) if b == &[1, 2, 3, 4]));
    let mut link = link380(steps);
    assert_eq!(run(link.start()), Ok(1), "one leftover transfer discarded");
    assert_eq!(run(link.command_ok(cmd::SET_COMMAND_TYPE, &[1])), Ok(()));
    link.into_inner().assert_done();
}

#[test]
fn f03_stale_incommrf_result_is_not_the_answer_to_set_command_type() {
    let (mut steps, variant) = f03();
    steps[1] = variant;
    let mut link = link380(steps);
    assert_eq!(run(link.start()), Ok(1));
    assert_eq!(run(link.command_ok(cmd::SET_COMMAND_TYPE, &[1])), Ok(()));
    link.into_inner().assert_done();
}

#[test]
fn f03_stale_result_arriving_after_the_drain_is_skipped() {
    // WebUSB caveat: a drain read that lost its race stays pending and delivers late data to
    // the next read; the frame before the ACK is skipped.
    let (steps, variant) = f03();
    let Step::In(stale) = variant else {
        panic!("variant is a reader frame")
    };
    let mut late = vec![steps[0].clone(), steps[2].clone(), Step::In(stale)];
    late.extend_from_slice(&steps[3..]);
    let mut link = link380(late);
    assert_eq!(run(link.start()), Ok(0));
    assert_eq!(run(link.command_ok(cmd::SET_COMMAND_TYPE, &[1])), Ok(()));
    link.into_inner().assert_done();
}

// ---- RC-S300 (F05 answers, F06 request and answer shapes) ----

const F05: &str = "F05_rcs300_real_answers.txt";
const F06: &str = "F06_rcs300_success_shapes.txt";

#[test]
fn f06_message_header_and_session_commands_match() {
    let message = named(F06, "message_start");
    assert_eq!(
        encode_message(1, &named(F06, "start_transparent")),
        Ok(message)
    );
    // The extended transceive the WebUSB projects send: timer 100 ms, long-form length.
    let exchange = named(F06, "exchange_extended");
    let frame = [0x06, 0x00, 0xFF, 0xFF, 0x01, 0x00];
    assert_eq!(encode_transceive(&frame, 100_000), Ok(exchange));
}

/// The Type B switch, in the shape of F06 `switch_felica` with protocol 01 (Type B) and
/// layer 04 (ISO 14443-4) as value.
fn switch_type_b() -> Vec<u8> {
    let mut switch = named(F06, "switch_felica");
    assert_eq!(switch[5..9], [0x8F, 0x02, 0x03, 0x00]);
    switch[7] = 0x01;
    switch[8] = 0x04;
    switch
}

/// Host and reader steps of `Rcs300Session::open` up to the switch protocol, answered by
/// `switch_answer`, starting at sequence number 0.
fn rcs300_open_steps(switch_answer: &[u8]) -> Vec<Step> {
    let accepted = named(F05, "accepted");
    let mut steps = Vec::new();
    for (seq, command) in ["end_transparent", "start_transparent", "rf_off", "rf_on"]
        .into_iter()
        .enumerate()
    {
        let seq = u8::try_from(seq).expect("small");
        steps.push(host(seq, &named(F06, command)));
        steps.push(reader(seq, &accepted));
    }
    steps.push(host(4, &switch_type_b()));
    steps.push(reader(4, switch_answer));
    steps
}

#[test]
fn f06_switch_answer_with_8f_object_opens_and_97_among_others_is_the_frame() {
    let steps = rcs300_open_steps(&named(F06, "switch_answer"));
    let session = run(Rcs300Session::open(
        Scripted::new(steps),
        Rcs300Config::default(),
    ));
    assert!(
        session.is_ok(),
        "opens on the recorded switch answer: {:?}",
        session.err()
    );
    // The answer to a transceive: the frame is the 97 object among 92 and 96.
    let frame = [0x02, 0x00, 0xA4, 0x04, 0x0C];
    let answer = parse_answer(&named(F06, "exchange_answer")).expect("parses");
    let data = answer.object(tag::RESPONSE_DATA).expect("97").to_vec();
    assert_eq!(data.len(), 20);
    assert_eq!(data[..2], [0x14, 0x01]);
    // Same answer through the link's exchange.
    let mut link = Rcs300Link::new(
        Scripted::new(vec![
            host(0, &encode_transceive(&frame, 78_000).expect("encodes")),
            reader(0, &named(F06, "exchange_answer")),
        ]),
        Rcs300Config::default(),
    );
    assert_eq!(run(link.exchange(&frame, 78)), Ok(Some(data)));
    link.into_inner().assert_done();
}

#[test]
fn f05_switch_protocol_result_02_is_no_card_and_01_is_the_reader_refusing() {
    let result = run(Rcs300Session::open(
        Scripted::new(rcs300_open_steps(&named(F05, "no_answer"))),
        Rcs300Config::default(),
    ));
    assert_eq!(result.err(), Some(TransportError::NoCard));
    for key in ["refused", "malformed", "wrong_length", "unsupported_value"] {
        let result = run(Rcs300Session::open(
            Scripted::new(rcs300_open_steps(&named(F05, key))),
            Rcs300Config::default(),
        ));
        assert!(
            matches!(result, Err(TransportError::ReaderRefused(_))),
            "{key}: {:?}",
            result.err()
        );
    }
}

#[test]
fn f05_transceive_answers_decide_by_the_result_byte() {
    let request = named(F06, "exchange_extended");
    let frame = [0x06, 0x00, 0xFF, 0xFF, 0x01, 0x00];
    for (key, answer) in named_bytes(F05) {
        let mut link = Rcs300Link::new(
            Scripted::new(vec![host(0, &request), reader(0, &answer)]),
            Rcs300Config::default(),
        );
        let result = run(link.exchange(&frame, 100));
        match key.as_str() {
            "no_answer" => assert_eq!(result, Ok(None), "{key}"),
            // Accepted but no 97 object: nothing to hand to ISO-DEP.
            "accepted" => assert!(matches!(result, Err(TransportError::Protocol(_))), "{key}"),
            _ => assert!(
                matches!(result, Err(TransportError::ReaderRefused(_))),
                "{key}: {result:?}"
            ),
        }
        link.into_inner().assert_done();
    }
}

#[test]
fn rcs300_leftover_answers_of_a_killed_session_are_drained() {
    // A killed session's transceive answer (F06 exchange_answer, sequence 9) waits in the
    // reader; the new session drains it before its first command.
    let mut steps = vec![reader(9, &named(F06, "exchange_answer"))];
    steps.extend(rcs300_open_steps(&named(F06, "switch_answer")));
    let result = run(Rcs300Session::open(
        Scripted::new(steps),
        Rcs300Config::default(),
    ));
    assert!(result.is_ok(), "{:?}", result.err());
    // Arriving late, after the drain: skipped for its sequence number.
    let mut steps = rcs300_open_steps(&named(F06, "switch_answer"));
    steps.insert(1, reader(9, &named(F06, "exchange_answer")));
    let result = run(Rcs300Session::open(
        Scripted::new(steps),
        Rcs300Config::default(),
    ));
    assert!(result.is_ok(), "{:?}", result.err());
}

// ---- generated cases of the same kinds ----

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Any non-zero InCommRF status with only its four bytes is decoded, never a protocol
    /// error: receive timeout alone is "nothing answered", anything else an RF fault.
    #[test]
    fn any_incommrf_error_status_is_decoded(status in 1u32.., extra in proptest::collection::vec(any::<u8>(), 0..3)) {
        let mut result = status.to_le_bytes().to_vec();
        result.extend_from_slice(&extra);
        match parse_in_comm_rf_result(&result) {
            Ok(None) => prop_assert_eq!(status, 0x80),
            Err(TransportError::Rf { status: s, .. }) => {
                prop_assert_eq!(s, status);
                prop_assert_ne!(status, 0x80);
            }
            other => prop_assert!(false, "{other:?}"),
        }
    }

    /// The same through whole frames: `D7 05 <status>` with correct checksums.
    #[test]
    fn incommrf_error_frames_through_the_link(status in 1u32..) {
        let (host_frame, _) = f02();
        let mut data = vec![0xD7, 0x05];
        data.extend_from_slice(&status.to_le_bytes());
        let frame = encode_frame(&data).expect("short");
        let result = f02_exchange_with(host_frame, frame);
        prop_assert!(!matches!(result, Err(TransportError::Protocol(_))), "{result:?}");
    }

    /// RC-S300: result 01 with any SW is the reader refusing, 02 is nothing answered.
    #[test]
    fn rcs300_result_byte_decides(result in 0u8..=4, sw1 in any::<u8>(), sw2 in any::<u8>()) {
        let answer = [0xC0, 0x03, result, sw1, sw2, 0x90, 0x00];
        let request = named(F06, "exchange_extended");
        let mut link = Rcs300Link::new(
            Scripted::new(vec![host(0, &request), reader(0, &answer)]),
            Rcs300Config::default(),
        );
        let outcome = run(link.exchange(&[0x06, 0x00, 0xFF, 0xFF, 0x01, 0x00], 100));
        match result {
            1 => prop_assert!(matches!(outcome, Err(TransportError::ReaderRefused(_))), "{outcome:?}"),
            2 => prop_assert_eq!(outcome, Ok(None)),
            _ => prop_assert!(matches!(outcome, Err(TransportError::Protocol(_))), "{outcome:?}"),
        }
    }

    /// Any number of leftover transfers of any length (up to the drain's bound) is drained
    /// before SetCommandType, which then gets its own answer.
    #[test]
    fn leftovers_of_any_length_are_drained(leftovers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..16)) {
        let (steps, _) = f03();
        let mut script = vec![steps[0].clone()];
        script.extend(leftovers.iter().cloned().map(Step::In));
        script.extend_from_slice(&steps[2..]);
        let mut link = link380(script);
        prop_assert_eq!(run(link.start()), Ok(leftovers.len()));
        prop_assert_eq!(run(link.command_ok(cmd::SET_COMMAND_TYPE, &[1])), Ok(()));
        link.into_inner().assert_done();
    }

    /// RC-S300 answers with extra objects of any kind before and after the 97 object: the
    /// frame is found.
    #[test]
    fn rcs300_97_among_any_objects(frame in proptest::collection::vec(any::<u8>(), 1..300), before in proptest::collection::vec((0x90u8..=0x96, proptest::collection::vec(any::<u8>(), 0..4)), 0..3)) {
        let mut payload = vec![0xC0, 0x03, 0x00, 0x90, 0x00];
        for (t, v) in &before {
            uketsuke_card::framing::rcs300::push_tlv(&mut payload, u16::from(*t), v);
        }
        uketsuke_card::framing::rcs300::push_tlv(&mut payload, tag::RESPONSE_DATA, &frame);
        uketsuke_card::framing::rcs300::push_tlv(&mut payload, tag::SWITCH_PROTOCOL, &[0x08]);
        payload.extend_from_slice(&[0x90, 0x00]);
        let answer = parse_answer(&payload);
        prop_assert!(answer.is_ok(), "{:?}", answer.as_ref().err());
        let answer = answer.map_err(|e: Rcs300Error| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(answer.object(tag::RESPONSE_DATA), Some(frame.as_slice()));
    }
}

fn f02_exchange_with(
    host_frame: Vec<u8>,
    result_frame: Vec<u8>,
) -> Result<Option<Vec<u8>>, TransportError> {
    let mut link = link380(vec![
        Step::Out(host_frame),
        Step::In(ACK_FRAME.to_vec()),
        Step::In(result_frame),
    ]);
    run(link.exchange(&[0x05, 0x00, 0x10], 30))
}
