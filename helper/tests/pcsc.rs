//! The helper against a real pcsc-lite: a private pcscd (Debian `pcscd`) with vsmartcard's
//! virtual reader driver (Debian `vsmartcard-vpcd`), and the virtual My Number card connected
//! to it as vpcd's card. The helper binary (built with `test-mode`, PIN from standard input)
//! reads and signs through pcsc-lite exactly as with a hardware reader, and "opens" the return
//! address through `$BROWSER`, which these tests point at a script that writes it to a file.
//!
//! Each test runs its own pcscd; they take turns (one lock), as pcscd also writes the shared
//! `/run/pcscd/pcscd.pid`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};
use uketsuke_backend::contract::binding::ChallengeBinding;
use uketsuke_backend::contract::{ConsentChoices, PrescriptionMethod, b64_decode, b64_encode};
use uketsuke_card::test_ca::TestCa;
use uketsuke_card::{Pin, VirtualCard};
use uketsuke_card_helper::pcscd::{PrivatePcscd, SOCKET_ENV};
use uketsuke_card_helper::protocol::{AppRequest, PROTOCOL_VERSION, link_for, read_result_url};
use uketsuke_card_helper::vpcd::{self, Behaviour, Ended, VirtualIcc};
use uketsuke_domain::{InstitutionCode, ReceptionKind};

const ORIGIN: &str = "http://127.0.0.1:3000";
const RETURN: &str = "http://127.0.0.1:3000/r/abc/eid-return";

fn turn() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The demo's person 1: the card the demo simulator knows (test CA seed 1, card seed 10001).
fn card() -> VirtualCard {
    static CARD: OnceLock<VirtualCard> = OnceLock::new();
    CARD.get_or_init(|| {
        let ca = TestCa::from_seed(1).expect("test CA");
        VirtualCard::from_seed(10_001, &ca, &Pin::new("1234").expect("pin")).expect("card")
    })
    .clone()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("uketsuke-helper-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn challenge() -> String {
    b64_encode(&[0x5a; 32])
}

fn message(origin: &str) -> String {
    let institution = InstitutionCode::with_check_digit("131234567").expect("code");
    let binding = ChallengeBinding {
        origin,
        challenge: &challenge(),
        institution: &institution,
        kind: ReceptionKind::OnlineCare,
        visit_date: NaiveDate::from_ymd_opt(2026, 12, 1).expect("date"),
        consent: ConsentChoices {
            clinical_medication: true,
            checkups: false,
        },
        prescription_method: Some(PrescriptionMethod::Electronic),
    };
    String::from_utf8(binding.message()).expect("utf-8")
}

fn link(origin: &str, text_origin: &str, return_uri: &str) -> String {
    link_for(&AppRequest {
        v: PROTOCOL_VERSION,
        origin: origin.to_owned(),
        challenge: challenge(),
        message: message(text_origin),
        return_uri: return_uri.to_owned(),
    })
}

/// The card on vpcd's reader, served from a thread until the reader hangs up or it leaves.
fn place(
    pcscd: &PrivatePcscd,
    mut icc: VirtualIcc,
    behaviour: Behaviour,
) -> JoinHandle<(VirtualIcc, Ended)> {
    let mut stream = vpcd::connect(pcscd.vpcd(), Duration::from_secs(10)).expect("vpcd");
    std::thread::spawn(move || {
        let ended = vpcd::serve(&mut stream, &mut icc, behaviour).expect("vpcd stream");
        (icc, ended)
    })
}

struct Run {
    stdout: String,
    status: i32,
    /// The URL the helper opened, if any.
    opened: Option<String>,
}

/// Runs the helper binary on `link` with `stdin`, against the pcscd at `socket`.
fn helper(dir: &Path, socket: &Path, link: &str, stdin: &str) -> Run {
    let browser = dir.join("browser.sh");
    let opened = dir.join("opened");
    let _ = std::fs::remove_file(&opened);
    std::fs::write(
        &browser,
        format!(
            "#!/bin/sh\nprintf '%s' \"$1\" > '{0}.tmp' && mv '{0}.tmp' '{0}'\n",
            opened.display()
        ),
    )
    .expect("browser script");
    Command::new("chmod")
        .arg("+x")
        .arg(&browser)
        .status()
        .expect("chmod");
    let mut child = Command::new(env!("CARGO_BIN_EXE_uketsuke-card-helper"))
        .args(["--pin-from-stdin", link])
        .env(SOCKET_ENV, socket)
        .env("BROWSER", &browser)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("helper");
    // A refused link ends the helper before it reads: a broken pipe is fine.
    let _ = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    let output = child.wait_with_output().expect("helper output");
    let status = output.status.code().unwrap_or(-1);
    // The browser is started in the background: wait for its file.
    let deadline = Instant::now() + Duration::from_secs(if status == 0 { 10 } else { 1 });
    let opened = loop {
        if let Ok(url) = std::fs::read_to_string(&opened) {
            break Some(url);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        status,
        opened,
    }
}

fn verify(public_key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
    public_key
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(message),
            signature,
        )
        .is_ok()
}

fn error_of(run: &Run) -> String {
    let url = run
        .opened
        .as_deref()
        .expect("the return address was opened");
    assert!(url.starts_with(&format!("{RETURN}#")), "{url}");
    read_result_url(url).expect_err("an error code")
}

#[test]
fn signs_through_pcsc_lite_after_a_wrong_pin() {
    let _turn = turn();
    let dir = temp_dir("sign");
    let pcscd = PrivatePcscd::start(&dir).expect("pcscd");
    let card = card();
    let public_key = card.public_key();
    let certificate = card.certificate_der().to_vec();
    let served = place(
        &pcscd,
        VirtualIcc::MyNumber(Box::new(card)),
        Behaviour::default(),
    );
    let run = helper(
        &dir,
        pcscd.socket(),
        &link(ORIGIN, ORIGIN, RETURN),
        "9999\n1234\n",
    );
    assert_eq!(
        run.stdout,
        "tries_left=3\nwrong_pin tries_left=2\nreturned=ok\n",
        "pcscd log:\n{}",
        pcscd.log()
    );
    assert_eq!(run.status, 0);
    let url = run.opened.expect("opened");
    assert!(url.starts_with(&format!("{RETURN}#")), "{url}");
    let result = read_result_url(&url).expect("a result");
    assert_eq!(result.v, PROTOCOL_VERSION);
    assert_eq!(result.challenge, challenge());
    assert_eq!(b64_decode(&result.certificate), Some(certificate));
    let signature = b64_decode(&result.signature).expect("base64url");
    assert!(verify(&public_key, message(ORIGIN).as_bytes(), &signature));
    assert!(!verify(
        &public_key,
        message("http://localhost:3000").as_bytes(),
        &signature
    ));
    drop(pcscd);
    let (icc, _) = served.join().expect("card thread");
    match icc {
        // The right PIN gave the tries back.
        VirtualIcc::MyNumber(card) => assert_eq!(card.tries_left(), 3),
        VirtualIcc::Other => unreachable!(),
    }
}

#[test]
fn a_blocked_pin_returns_pin_blocked() {
    let _turn = turn();
    let dir = temp_dir("blocked");
    let pcscd = PrivatePcscd::start(&dir).expect("pcscd");
    // Two wrong tries already spent elsewhere: the helper shows 1 left, the third wrong one
    // blocks the PIN.
    let mut card = card();
    for apdu in [
        &[
            0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00,
            0x01,
        ][..],
        &[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x18],
        &[0x00, 0x20, 0x00, 0x80, 0x04, b'0', b'0', b'0', b'0'],
        &[0x00, 0x20, 0x00, 0x80, 0x04, b'0', b'0', b'0', b'0'],
    ] {
        card.process(apdu);
    }
    assert_eq!(card.tries_left(), 1);
    let served = place(
        &pcscd,
        VirtualIcc::MyNumber(Box::new(card)),
        Behaviour::default(),
    );
    let run = helper(
        &dir,
        pcscd.socket(),
        &link(ORIGIN, ORIGIN, RETURN),
        "0000\n1234\n",
    );
    assert_eq!(run.stdout, "tries_left=1\nreturned=pin_blocked\n");
    assert_eq!(error_of(&run), "pin_blocked");
    // Blocked from the start: answered before any PIN is asked for.
    let run = helper(
        &dir,
        pcscd.socket(),
        &link(ORIGIN, ORIGIN, RETURN),
        "1234\n",
    );
    assert_eq!(run.stdout, "returned=pin_blocked\n");
    assert_eq!(error_of(&run), "pin_blocked");
    drop(pcscd);
    let _ = served.join();
}

#[test]
fn cancelling_returns_cancelled() {
    let _turn = turn();
    let dir = temp_dir("cancel");
    let pcscd = PrivatePcscd::start(&dir).expect("pcscd");
    let served = place(
        &pcscd,
        VirtualIcc::MyNumber(Box::new(card())),
        Behaviour::default(),
    );
    let run = helper(
        &dir,
        pcscd.socket(),
        &link(ORIGIN, ORIGIN, RETURN),
        "cancel\n",
    );
    assert_eq!(run.stdout, "tries_left=3\nreturned=cancelled\n");
    assert_eq!(error_of(&run), "cancelled");
    // The end of input (the window closed) is a cancel too.
    let run = helper(&dir, pcscd.socket(), &link(ORIGIN, ORIGIN, RETURN), "12\n");
    assert_eq!(
        run.stdout,
        "tries_left=3\npin_invalid\nreturned=cancelled\n"
    );
    drop(pcscd);
    let _ = served.join();
}

#[test]
fn a_card_taken_away_during_the_signature_returns_card_removed() {
    let _turn = turn();
    let dir = temp_dir("removed");
    let pcscd = PrivatePcscd::start(&dir).expect("pcscd");
    let served = place(
        &pcscd,
        VirtualIcc::MyNumber(Box::new(card())),
        Behaviour {
            remove_on_ins: Some(0x2A),
        },
    );
    let run = helper(
        &dir,
        pcscd.socket(),
        &link(ORIGIN, ORIGIN, RETURN),
        "1234\n",
    );
    assert_eq!(
        run.stdout,
        "tries_left=3\nreturned=card_removed\n",
        "pcscd log:\n{}",
        pcscd.log()
    );
    assert_eq!(error_of(&run), "card_removed");
    let (_, ended) = served.join().expect("card thread");
    assert!(matches!(ended, Ended::Removed));
}

#[test]
fn another_card_returns_not_my_number_card() {
    let _turn = turn();
    let dir = temp_dir("other");
    let pcscd = PrivatePcscd::start(&dir).expect("pcscd");
    let served = place(&pcscd, VirtualIcc::Other, Behaviour::default());
    let run = helper(
        &dir,
        pcscd.socket(),
        &link(ORIGIN, ORIGIN, RETURN),
        "1234\n",
    );
    assert_eq!(run.stdout, "returned=not_my_number_card\n");
    assert_eq!(error_of(&run), "not_my_number_card");
    drop(pcscd);
    let _ = served.join();
}

#[test]
fn no_reader_returns_no_reader_and_an_empty_reader_no_card() {
    let _turn = turn();
    let dir = temp_dir("noreader");
    // No smart-card service at all (pcscd not running).
    let run = helper(
        &dir,
        &dir.join("no-such-socket"),
        &link(ORIGIN, ORIGIN, RETURN),
        "1234\n",
    );
    assert_eq!(run.stdout, "returned=no_reader\n");
    assert_eq!(error_of(&run), "no_reader");
    // The reader without a card, for the test mode's wait.
    let pcscd = PrivatePcscd::start(&dir).expect("pcscd");
    let run = helper(
        &dir,
        pcscd.socket(),
        &link(ORIGIN, ORIGIN, RETURN),
        "1234\n",
    );
    assert_eq!(run.stdout, "returned=no_card\n");
    assert_eq!(error_of(&run), "no_card");
}

/// The look-alike-origin attack: a relaying site sends the real text with its own origin and
/// return address, or the real origin with its return address. The helper refuses before it
/// touches the card, and opens nothing.
#[test]
fn look_alike_origins_are_refused_and_nothing_is_opened() {
    let _turn = turn();
    let dir = temp_dir("lookalike");
    let pcscd = PrivatePcscd::start(&dir).expect("pcscd");
    let served = place(
        &pcscd,
        VirtualIcc::MyNumber(Box::new(card())),
        Behaviour::default(),
    );
    let real = "https://uketsuke.example.jp";
    let real_back = "https://uketsuke.example.jp/r/abc/eid-return";
    for (origin, return_uri, code) in [
        (
            "https://uketsuke.example.jp.evil.example",
            "https://uketsuke.example.jp.evil.example/r/abc/eid-return",
            "origin_mismatch",
        ),
        (
            "https://uketsukе.example.jp",
            "https://uketsukе.example.jp/r/abc/eid-return",
            "origin_mismatch",
        ),
        (
            "https://xn--uketsuke-p63c.example.jp",
            "https://xn--uketsuke-p63c.example.jp/r/abc/eid-return",
            "origin_mismatch",
        ),
        (
            real,
            "https://uketsuke.example.jp.evil.example/r/abc/eid-return",
            "return_mismatch",
        ),
        (
            real,
            "https://uketsuke.example.jp@evil.example/r/abc/eid-return",
            "return_mismatch",
        ),
    ] {
        let run = helper(
            &dir,
            pcscd.socket(),
            &link(origin, real, return_uri),
            "1234\n",
        );
        assert_eq!(
            run.stdout,
            format!("refused={code}\n"),
            "{origin} {return_uri}"
        );
        assert_eq!(run.status, 2);
        assert_eq!(run.opened, None, "{origin}");
    }
    // The same text on its own origin is signed.
    let run = helper(&dir, pcscd.socket(), &link(real, real, real_back), "1234\n");
    assert_eq!(run.stdout, "tries_left=3\nreturned=ok\n");
    drop(pcscd);
    let (icc, _) = served.join().expect("card thread");
    if let VirtualIcc::MyNumber(card) = icc {
        assert_eq!(card.tries_left(), 3);
    }
}
