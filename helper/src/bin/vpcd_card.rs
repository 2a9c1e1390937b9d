//! `uketsuke-vpcd-card` (feature `test-mode`): a virtual My Number card on vpcd's virtual
//! reader, for the end-to-end test and for trying the helper by hand with pcscd.
//!
//! ```text
//! uketsuke-vpcd-card [--port 35963 | --pcscd DIR] [--seed 10001] [--pin 1234] [--ca-seed 1]
//!                    [--other-card]
//! ```
//! The defaults are the demo's person 1 (the card the demo server's simulator knows, PIN
//! 1234, certificate from the demo test CA). With `--port` it serves the machine's vpcd (as
//! configured in `/etc/reader.conf.d/vpcd`) until killed, connecting again when pcscd
//! restarts. With `--pcscd DIR` it starts its own private pcscd in DIR first
//! ([`uketsuke_card_helper::pcscd`]), prints `PCSCLITE_CSOCK_NAME=<socket>` once the card is
//! on the reader, and stops pcscd and itself when its standard input ends.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use uketsuke_card::test_ca::TestCa;
use uketsuke_card::{Pin, VirtualCard};
use uketsuke_card_helper::vpcd::{self, Behaviour, VirtualIcc};

fn main() -> ExitCode {
    let mut port: u16 = 35963;
    let mut seed: u64 = 10_001;
    let mut ca_seed: u64 = 1;
    let mut pin = "1234".to_owned();
    let mut other = false;
    let mut private: Option<std::path::PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_default();
        let ok = match arg.as_str() {
            "--port" => value().parse().map(|v| port = v).is_ok(),
            "--seed" => value().parse().map(|v| seed = v).is_ok(),
            "--ca-seed" => value().parse().map(|v| ca_seed = v).is_ok(),
            "--pin" => {
                pin = value();
                true
            }
            "--pcscd" => {
                private = Some(value().into());
                true
            }
            "--other-card" => {
                other = true;
                true
            }
            _ => false,
        };
        if !ok {
            eprintln!(
                "usage: uketsuke-vpcd-card [--port N] [--seed N] [--pin NNNN] [--ca-seed N] [--other-card]"
            );
            return ExitCode::from(2);
        }
    }
    let mut icc = if other {
        VirtualIcc::Other
    } else {
        let card = Pin::new(&pin).map_err(|e| e.to_string()).and_then(|pin| {
            let ca = TestCa::from_seed(ca_seed).map_err(|e| e.to_string())?;
            VirtualCard::from_seed(seed, &ca, &pin).map_err(|e| e.to_string())
        });
        match card {
            Ok(card) => VirtualIcc::MyNumber(Box::new(card)),
            Err(e) => {
                eprintln!("uketsuke-vpcd-card: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    if let Some(dir) = private {
        return private_reader(&dir, icc);
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        match vpcd::connect(addr, Duration::from_secs(30)) {
            Ok(mut stream) => {
                println!("connected to vpcd on port {port}");
                if let Err(e) = vpcd::serve(&mut stream, &mut icc, Behaviour::default()) {
                    eprintln!("uketsuke-vpcd-card: {e}");
                }
            }
            Err(e) => {
                eprintln!("uketsuke-vpcd-card: cannot reach vpcd on port {port}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
}

/// The card on a private pcscd's reader until standard input ends.
fn private_reader(dir: &std::path::Path, mut icc: VirtualIcc) -> ExitCode {
    let pcscd = match uketsuke_card_helper::pcscd::PrivatePcscd::start(dir) {
        Ok(pcscd) => pcscd,
        Err(e) => {
            eprintln!("uketsuke-vpcd-card: pcscd did not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stream = match vpcd::connect(pcscd.vpcd(), Duration::from_secs(10)) {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!("uketsuke-vpcd-card: cannot reach vpcd: {e}");
            return ExitCode::FAILURE;
        }
    };
    std::thread::spawn(move || vpcd::serve(&mut stream, &mut icc, Behaviour::default()));
    println!(
        "{}={}",
        uketsuke_card_helper::pcscd::SOCKET_ENV,
        pcscd.socket().display()
    );
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    drop(pcscd);
    ExitCode::SUCCESS
}
