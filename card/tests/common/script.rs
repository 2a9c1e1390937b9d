//! A scripted USB reader for tests, independent of the emulators: it expects the host's bulk
//! OUT transfers byte for byte and gives the reader's bulk IN transfers, in the order of a
//! recorded trace. A read while the next step is a host transfer (or after the end) times out,
//! as a real reader does when it has nothing to send.
//!
//! Also the parsers of the recorded files in `shared/field/readers/` (read at test time).

#![allow(dead_code)]

use std::collections::VecDeque;

use uketsuke_card::{TransportError, UsbBulk};

/// The field data (real data made by others: `jpki/`, `readers/`, `codes/`): `SHARED_FIELD_DIR`
/// if set, else `shared/field` beside the checkout, where CI has it.
pub fn field_dir() -> std::path::PathBuf {
    std::env::var_os("SHARED_FIELD_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/field"),
        std::path::PathBuf::from,
    )
}

/// One transfer of a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Host to reader (bulk OUT): what the host must write.
    Out(Vec<u8>),
    /// Reader to host (bulk IN): what the reader gives.
    In(Vec<u8>),
}

/// Reads a recorded file as text.
pub fn field_file(name: &str) -> String {
    let path = field_dir().join("readers").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Hex digits (spaces allowed) to bytes.
pub fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex: {text}");
    digits
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("ascii");
            u8::from_str_radix(pair, 16).unwrap_or_else(|_| panic!("bad hex {pair} in {text}"))
        })
        .collect()
}

/// The transfers of a `.trace` file (`> hex` / `< hex`, `#` comments), in order.
pub fn trace_steps(name: &str) -> Vec<Step> {
    field_file(name)
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            if let Some(hex) = line.strip_prefix('>') {
                Some(Step::Out(unhex(hex)))
            } else {
                line.strip_prefix('<').map(|hex| Step::In(unhex(hex)))
            }
        })
        .collect()
}

/// The named byte strings of a `.txt` file (`name  hex hex …`, `#` comments).
pub fn named_bytes(name: &str) -> Vec<(String, Vec<u8>)> {
    field_file(name)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let (key, hex) = line.split_once(char::is_whitespace)?;
            Some((key.to_owned(), unhex(hex)))
        })
        .collect()
}

/// One named entry of a `.txt` file.
pub fn named(name: &str, key: &str) -> Vec<u8> {
    named_bytes(name)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{key} not in {name}"))
}

/// The scripted reader.
#[derive(Debug)]
pub struct Scripted {
    steps: VecDeque<Step>,
    /// The first disagreement between the host and the script, if any.
    pub mismatch: Option<String>,
    /// Reads that timed out because the reader had nothing to give.
    pub empty_reads: usize,
}

impl Scripted {
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            steps: steps.into_iter().collect(),
            mismatch: None,
            empty_reads: 0,
        }
    }

    /// Panics unless the host wrote exactly the scripted frames and read every reader frame.
    pub fn assert_done(&self) {
        assert_eq!(self.mismatch, None);
        assert!(
            self.steps.is_empty(),
            "script not finished: {:?}",
            self.steps.front()
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl UsbBulk for Scripted {
    async fn write(&mut self, data: &[u8]) -> Result<(), TransportError> {
        match self.steps.pop_front() {
            Some(Step::Out(expected)) if expected == data => Ok(()),
            other => {
                let message = format!("host wrote {}, script has {other:?}", hex(data));
                self.mismatch.get_or_insert(message.clone());
                Err(TransportError::Io(message))
            }
        }
    }

    async fn read(&mut self, _timeout_ms: u32) -> Result<Vec<u8>, TransportError> {
        match self.steps.front() {
            Some(Step::In(_)) => match self.steps.pop_front() {
                Some(Step::In(bytes)) => Ok(bytes),
                _ => Err(TransportError::Timeout),
            },
            _ => {
                self.empty_reads += 1;
                Err(TransportError::Timeout)
            }
        }
    }
}

/// An RC-S300 message as F06 `message_start` shows it: type, length (4 bytes LE), slot 0,
/// sequence number, three zero bytes, payload.
pub fn rcs300_message(message_type: u8, seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![message_type];
    out.extend_from_slice(&u32::try_from(payload.len()).expect("short").to_le_bytes());
    out.extend_from_slice(&[0x00, seq, 0x00, 0x00, 0x00]);
    out.extend_from_slice(payload);
    out
}

/// Host escape message (PC_to_RDR_Escape 0x6B).
pub fn host(seq: u8, payload: &[u8]) -> Step {
    Step::Out(rcs300_message(0x6B, seq, payload))
}

/// Reader answer (RDR_to_PC_Escape 0x83).
pub fn reader(seq: u8, payload: &[u8]) -> Step {
    Step::In(rcs300_message(0x83, seq, payload))
}
