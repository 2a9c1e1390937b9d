//! READ BINARY of the certificate when the card fails transiently part-way (`6B 00`, `69 86`,
//! or `90 00` without data): read again at the same offset, twice at most; a truncated
//! certificate is never accepted.

#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::collections::HashMap;

use common::*;
use proptest::prelude::*;
use uketsuke_card::jpki::{JpkiAp, ReadOptions};
use uketsuke_card::{
    JpkiError, Transport, TransportError, VirtualCard, read_certificate_without_pin,
};

const INS_READ_BINARY: u8 = 0xB0;

/// How a READ BINARY attempt fails instead of reaching the card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    WrongP1P2,
    NoCurrentEf,
    SuccessWithoutData,
    /// Not transient: file not found.
    FileNotFound,
    /// End of file reached early: the data is cut to `n` bytes with `62 82`.
    EndOfFileAfter(usize),
}

impl Failure {
    const TRANSIENT: [Failure; 3] = [
        Failure::WrongP1P2,
        Failure::NoCurrentEf,
        Failure::SuccessWithoutData,
    ];

    fn answer(self, card_answer: &[u8]) -> Vec<u8> {
        match self {
            Failure::WrongP1P2 => vec![0x6B, 0x00],
            Failure::NoCurrentEf => vec![0x69, 0x86],
            Failure::SuccessWithoutData => vec![0x90, 0x00],
            Failure::FileNotFound => vec![0x6A, 0x82],
            Failure::EndOfFileAfter(n) => {
                let data = &card_answer[..card_answer.len().saturating_sub(2)];
                let mut out = data[..n.min(data.len())].to_vec();
                out.extend_from_slice(&[0x62, 0x82]);
                out
            }
        }
    }
}

/// The virtual card behind a plan of failures per READ BINARY offset: the first attempts at
/// an offset fail as listed, later ones reach the card. Records every READ BINARY offset.
struct FlakyCard {
    card: VirtualCard,
    plan: HashMap<usize, Vec<Failure>>,
    attempts: HashMap<usize, usize>,
    read_offsets: Vec<usize>,
}

impl FlakyCard {
    fn new(plan: impl IntoIterator<Item = (usize, Vec<Failure>)>) -> Self {
        Self {
            card: card(),
            plan: plan.into_iter().collect(),
            attempts: HashMap::new(),
            read_offsets: Vec::new(),
        }
    }
}

impl Transport for FlakyCard {
    async fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let answer = self.card.transmit(apdu).await?;
        let [_, INS_READ_BINARY, p1, p2, ..] = apdu[..] else {
            return Ok(answer);
        };
        let offset = usize::from(u16::from_be_bytes([p1, p2]));
        self.read_offsets.push(offset);
        let attempt = self.attempts.entry(offset).or_default();
        let failure = self
            .plan
            .get(&offset)
            .and_then(|f| f.get(*attempt))
            .copied();
        *attempt += 1;
        Ok(failure.map_or(answer.clone(), |f| f.answer(&answer)))
    }
}

fn clean_certificate() -> Vec<u8> {
    card().certificate_der().to_vec()
}

/// Reads the certificate through the flaky card with 256-byte chunks; returns the result and
/// the READ BINARY offsets asked.
fn read(plan: Vec<(usize, Vec<Failure>)>) -> (Result<Vec<u8>, JpkiError>, Vec<usize>) {
    let mut flaky = FlakyCard::new(plan);
    let result = run(read_certificate_without_pin(&mut flaky));
    (result, flaky.read_offsets)
}

#[test]
fn the_certificate_spans_several_reads() {
    let (result, offsets) = read(vec![]);
    assert_eq!(result, Ok(clean_certificate()));
    assert!(
        offsets.len() >= 4,
        "header and at least three chunks: {offsets:?}"
    );
}

/// The offset of the second data chunk: part-way through the certificate.
fn middle_offset() -> usize {
    let (_, offsets) = read(vec![]);
    offsets[2]
}

#[test]
fn transient_failures_are_retried_at_the_same_offset() {
    let middle = middle_offset();
    for failure in Failure::TRANSIENT {
        for times in 1..=2 {
            let (result, offsets) = read(vec![(middle, vec![failure; times])]);
            assert_eq!(result, Ok(clean_certificate()), "{failure:?} × {times}");
            assert_eq!(
                offsets.iter().filter(|&&o| o == middle).count(),
                times + 1,
                "{failure:?} × {times}: {offsets:?}"
            );
        }
    }
    // At the very start (the header read) too.
    let (result, _) = read(vec![(0, vec![Failure::WrongP1P2, Failure::NoCurrentEf])]);
    assert_eq!(result, Ok(clean_certificate()));
}

#[test]
fn a_card_that_keeps_failing_is_refused_after_two_retries() {
    let middle = middle_offset();
    let total = clean_certificate().len();
    for failure in Failure::TRANSIENT {
        let (result, offsets) = read(vec![(middle, vec![failure; 100])]);
        assert_eq!(
            result,
            Err(JpkiError::IncompleteRead {
                offset: middle,
                total
            }),
            "{failure:?}"
        );
        assert_eq!(offsets.iter().filter(|&&o| o == middle).count(), 3);
        assert_eq!(
            offsets.last(),
            Some(&middle),
            "nothing read after giving up"
        );
    }
}

#[test]
fn other_failures_are_not_retried() {
    let middle = middle_offset();
    let (result, offsets) = read(vec![(middle, vec![Failure::FileNotFound])]);
    assert!(
        matches!(result, Err(JpkiError::UnexpectedResponse(_))),
        "{result:?}"
    );
    assert_eq!(offsets.iter().filter(|&&o| o == middle).count(), 1);
}

#[test]
fn a_truncated_certificate_is_never_accepted() {
    // The card claims the end of file half-way through a chunk, then refuses the offsets
    // beyond it: the read fails rather than returning fewer bytes than the DER header says.
    let middle = middle_offset();
    let total = clean_certificate().len();
    let (result, _) = read(vec![(middle, vec![Failure::EndOfFileAfter(10)])]);
    // The next chunk starts at middle + 10 and reads the rest cleanly: still whole.
    assert_eq!(result, Ok(clean_certificate()));
    let cut = middle + 10;
    let (result, _) = read(vec![
        (middle, vec![Failure::EndOfFileAfter(10)]),
        (cut, vec![Failure::WrongP1P2; 3]),
    ]);
    assert_eq!(
        result,
        Err(JpkiError::IncompleteRead { offset: cut, total })
    );
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Any schedule of transient failures at any offsets and any chunk size: the result is the
    /// whole certificate exactly when no offset failed three times in a row, otherwise an
    /// incomplete read — never a partial certificate.
    #[test]
    fn any_schedule_gives_the_whole_certificate_or_an_error(
        chunk in 16usize..=256,
        schedule in proptest::collection::vec((0usize..8, 0usize..=3, 0usize..3), 0..6),
    ) {
        let clean = clean_certificate();
        // Offsets the reader asks with this chunk size: 0 (the header read), then after it
        // one chunk at a time.
        let header = uketsuke_card::der_len::MAX_HEADER_LEN;
        let offsets: Vec<usize> = std::iter::once(0)
            .chain((header..clean.len()).step_by(chunk))
            .collect();
        let mut plan: HashMap<usize, Vec<Failure>> = HashMap::new();
        for (index, times, kind) in schedule {
            let offset = offsets[index % offsets.len()];
            plan.insert(offset, vec![Failure::TRANSIENT[kind]; times]);
        }
        let failing: Vec<usize> =
            plan.iter().filter(|(_, f)| f.len() > 2).map(|(o, _)| *o).collect();
        let gives_up = !failing.is_empty();
        let mut flaky = FlakyCard::new(plan);
        let mut ap = JpkiAp::with_options(&mut flaky, ReadOptions { max_chunk: chunk });
        let result = run(async {
            ap.select_ap().await?;
            ap.read_certificate(uketsuke_card::jpki::EF_USER_AUTH_CERT).await
        });
        match result {
            Ok(der) => {
                prop_assert!(!gives_up);
                prop_assert_eq!(der, clean);
            }
            Err(JpkiError::IncompleteRead { offset, total }) => {
                prop_assert!(gives_up);
                prop_assert!(failing.contains(&offset), "gave up at {offset}");
                // The header read does not know the length yet: it reports what it asked for.
                let expected = if offset == 0 { header } else { clean.len() };
                prop_assert_eq!(total, expected);
            }
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }
}
