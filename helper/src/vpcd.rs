//! Test material (feature `test-mode`): a virtual card connected to vpcd, the virtual reader
//! driver of vsmartcard (Debian `vsmartcard-vpcd`), so pcsc-lite sees it as a card on a reader
//! and the helper reads it exactly as a hardware card.
//!
//! The vpcd protocol, from vsmartcard's `virtualsmartcard/src/vpcd/vpcd.c` and `vpcd.h`
//! (frankmorgner/vsmartcard): vpcd listens on TCP (port 35963 unless the reader.conf
//! `DEVICENAME /dev/null:<port>` names another) and the virtual card connects to it. Every
//! message either way is a 2-byte big-endian length and that many bytes. From vpcd, a message
//! of length 1 is a control: `00` power off, `01` power on, `02` reset (no answer to these
//! three), `04` get ATR (answered with the ATR); any other message is a command APDU, answered
//! with the response APDU. vpcd asks for the ATR to poll for the card's presence; a closed
//! connection is a card taken off the reader.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use uketsuke_card::VirtualCard;

/// vpcd's control messages (`VPCD_CTRL_*` in `vpcd.h`).
pub const CTRL_OFF: u8 = 0;
pub const CTRL_ON: u8 = 1;
pub const CTRL_RESET: u8 = 2;
pub const CTRL_ATR: u8 = 4;

/// The ATR PC/SC readers make for a contactless ISO 14443-4 Type B card such as the My Number
/// card (PC/SC Part 3, 3.1.3.2.3.2: `3B 88 80 01`, 4 bytes of application data and 3 of
/// protocol info from ATQB, then TCK, the XOR of every byte after `3B`). The ATQB bytes are
/// zero here: nothing reads them.
pub fn contactless_type_b_atr() -> Vec<u8> {
    let mut atr = vec![0x3B, 0x88, 0x80, 0x01, 0, 0, 0, 0, 0, 0, 0];
    let tck = atr.iter().skip(1).fold(0u8, |acc, b| acc ^ b);
    atr.push(tck);
    atr
}

/// What sits on the virtual reader.
pub enum VirtualIcc {
    /// A virtual My Number card (JPKI AP).
    MyNumber(Box<VirtualCard>),
    /// A card without the JPKI application (a transit or bank card): `6A 82` to every SELECT
    /// by name, `6D 00` to anything else.
    Other,
}

impl VirtualIcc {
    fn power_cycle(&mut self) {
        if let VirtualIcc::MyNumber(card) = self {
            card.reset();
        }
    }

    fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        match self {
            VirtualIcc::MyNumber(card) => card.process(apdu),
            VirtualIcc::Other => match apdu.get(1) {
                Some(0xA4) => vec![0x6A, 0x82],
                _ => vec![0x6D, 0x00],
            },
        }
    }
}

/// How the card behaves on the reader.
#[derive(Clone, Copy, Debug, Default)]
pub struct Behaviour {
    /// Leave the reader (close the connection) instead of answering the first command APDU
    /// with this INS: a card taken away during the read.
    pub remove_on_ins: Option<u8>,
}

/// Why serving ended.
#[derive(Debug)]
pub enum Ended {
    /// vpcd closed the connection (pcscd stopped).
    ByReader,
    /// The card left as [`Behaviour::remove_on_ins`] asked.
    Removed,
}

/// Connects to vpcd at `addr`, retrying for up to `wait` while pcscd loads the driver.
pub fn connect(addr: SocketAddr, wait: Duration) -> io::Result<TcpStream> {
    let deadline = Instant::now() + wait;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn read_message(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message)?;
    Ok(Some(message))
}

fn write_message(stream: &mut TcpStream, message: &[u8]) -> io::Result<()> {
    let len = u16::try_from(message.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message over 65535 bytes"))?;
    stream.write_all(&len.to_be_bytes())?;
    stream.write_all(message)?;
    stream.flush()
}

/// Serves `icc` on a connected vpcd stream until vpcd hangs up or the card leaves.
pub fn serve(
    stream: &mut TcpStream,
    icc: &mut VirtualIcc,
    behaviour: Behaviour,
) -> io::Result<Ended> {
    let atr = contactless_type_b_atr();
    while let Some(message) = read_message(stream)? {
        match message.as_slice() {
            [CTRL_OFF] | [CTRL_ON] | [CTRL_RESET] => icc.power_cycle(),
            [CTRL_ATR] => write_message(stream, &atr)?,
            [_] => {}
            apdu => {
                if behaviour.remove_on_ins.is_some()
                    && apdu.get(1) == behaviour.remove_on_ins.as_ref()
                {
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    return Ok(Ended::Removed);
                }
                let response = icc.process(apdu);
                write_message(stream, &response)?;
            }
        }
    }
    Ok(Ended::ByReader)
}
