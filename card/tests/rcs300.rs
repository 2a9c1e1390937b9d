//! The JPKI flow through the RC-S300 framing and its byte-level emulator.

mod common;

use common::*;
use uketsuke_card::emulator::{CardOptions, Rcs300Emulator};
use uketsuke_card::framing::rcs300::{Rcs300Config, Rcs300Session};
use uketsuke_card::{JpkiError, PinStatus, TransportError, authenticate, pin_status};

fn open(emulator: &mut Rcs300Emulator, config: Rcs300Config) -> Rcs300Session<&mut Rcs300Emulator> {
    run(Rcs300Session::open(emulator, config)).expect("session opens")
}

#[test]
fn full_authentication() {
    let mut emulator = Rcs300Emulator::new(card(), CardOptions::default());
    let auth = run(authenticate(
        open(&mut emulator, Rcs300Config::default()),
        &pin(),
        CHALLENGE,
    ))
    .expect("auth");
    assert_signature_verifies(&auth.certificate_der, CHALLENGE, &auth.signature);
}

#[test]
fn chaining_both_ways_and_wtx() {
    // 32-byte frames on both sides: every READ BINARY answer and the 256-byte signature chain.
    let options = CardOptions {
        fsci: 2,
        wtx_rounds: 2,
    };
    let mut emulator = Rcs300Emulator::new(card(), options).with_reader_fsdi(2);
    let config = Rcs300Config {
        card_frame_size: 32,
        ..Rcs300Config::default()
    };
    let auth = run(authenticate(open(&mut emulator, config), &pin(), CHALLENGE)).expect("auth");
    assert_signature_verifies(&auth.certificate_der, CHALLENGE, &auth.signature);
}

#[test]
fn pin_counter_persists_across_sessions() {
    let mut emulator = Rcs300Emulator::new(card(), CardOptions::default());
    let config = Rcs300Config::default();
    assert_eq!(
        run(pin_status(open(&mut emulator, config))),
        Ok(PinStatus::TriesLeft(3))
    );
    for tries_left in [2, 1] {
        let result = run(authenticate(
            open(&mut emulator, config),
            &wrong_pin(),
            CHALLENGE,
        ));
        assert_eq!(result, Err(JpkiError::WrongPin { tries_left }));
    }
    assert!(run(authenticate(open(&mut emulator, config), &pin(), CHALLENGE)).is_ok());
    assert_eq!(
        run(pin_status(open(&mut emulator, config))),
        Ok(PinStatus::TriesLeft(3))
    );
    for _ in 0..3 {
        let _ = run(authenticate(
            open(&mut emulator, config),
            &wrong_pin(),
            CHALLENGE,
        ));
    }
    assert_eq!(
        run(authenticate(open(&mut emulator, config), &pin(), CHALLENGE)),
        Err(JpkiError::PinBlocked)
    );
    assert_eq!(emulator.into_card().tries_left(), 0);
}

#[test]
fn no_card_on_reader() {
    let mut emulator = Rcs300Emulator::new(card(), CardOptions::default());
    emulator.field().set_removed(true);
    assert_eq!(
        run(Rcs300Session::open(&mut emulator, Rcs300Config::default())).err(),
        Some(TransportError::NoCard)
    );
}

#[test]
fn card_removed_mid_exchange() {
    // Activation takes the first frames; removal then hits select, a chained read, or the
    // middle of a WTX-extended signature.
    for after in [3, 6, 12, 40] {
        let mut emulator = Rcs300Emulator::new(
            card(),
            CardOptions {
                fsci: 2,
                wtx_rounds: 1,
            },
        )
        .with_reader_fsdi(2);
        emulator.field().remove_after_frames(after);
        let result = run(Rcs300Session::open(
            &mut emulator,
            Rcs300Config {
                card_frame_size: 32,
                ..Rcs300Config::default()
            },
        ))
        .map_err(JpkiError::from)
        .and_then(|session| run(authenticate(session, &pin(), CHALLENGE)));
        assert_eq!(
            result,
            Err(JpkiError::CardRemoved),
            "removed after {after} frames"
        );
    }
}
