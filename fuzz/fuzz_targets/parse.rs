//! Arbitrary bytes through the line-protocol parser.
//!
//! - `parse_all` never panics;
//! - `parse_record` with `at_eof = false` on every prefix of the input
//!   either waits for more (`NeedMore`) or gives exactly what the complete
//!   input gives: a record that a prefix already ends, or an error at the
//!   same byte (more input can neither change a finished record nor undo
//!   an error);
//! - the engine's result does not depend on where its input is split into
//!   two chunks (the `pipeline` target tries three, at any points).

#![no_main]

use e2e_aggregator::lp::{self, parse_record, Outcome, Point, Validate};
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let all = lp::parse_all(data);

    let full = parse_record(data, true, &mut Validate);
    // Validating and collecting values read a record the same way.
    let mut point = Point::default();
    assert_eq!(full, parse_record(data, true, &mut point));
    let (end, first) = match full {
        Outcome::Record(rec) => (rec.len, (rec.kind == lp::RecordKind::Point).then_some(true)),
        Outcome::Invalid(err) => (err.offset, Some(false)),
        Outcome::NeedMore => panic!("NeedMore at end of input"),
    };
    // parse_all's first result is the first record's.
    if let Some(ok) = first {
        assert_eq!(all.first().map(Result::is_ok), Some(ok));
        if ok {
            assert_eq!(all[0].as_ref().ok(), Some(&point));
        }
    }

    // Prefixes beyond the end of the first record (or its error) read the
    // same as that end, so stop just after it. Parsing every prefix costs
    // quadratic time: for a long first record take about a hundred, those
    // that end near its start, near its end, or near a byte that changes the
    // parser's state (line feed, CR, quote, backslash), and a sample of the
    // others.
    let last = data.len().min(end + 1);
    let stride = (last / 32).max(1);
    let mut specials = 0;
    let mut special = |k: usize| {
        let near = data[k.saturating_sub(1)..(k + 1).min(data.len())]
            .iter()
            .any(|b| matches!(b, b'\n' | b'\r' | b'"' | b'\\'));
        specials += usize::from(near);
        near && specials <= 32
    };
    for k in 0..=last {
        if k > 48 && k + 4 < last && k % stride != 0 && !special(k) {
            continue;
        }
        let prefix = &data[..k];
        match parse_record(prefix, false, &mut Validate) {
            Outcome::NeedMore => {}
            Outcome::Record(rec) => {
                assert!(rec.len > rec.body, "record at prefix {k} has no line end");
                assert_eq!(
                    full,
                    Outcome::Record(rec),
                    "prefix {k} ends a record the whole input does not"
                );
            }
            Outcome::Invalid(err) => {
                let Outcome::Invalid(whole) = full else {
                    panic!("prefix {k} is invalid ({err:?}) but the whole input gives {full:?}");
                };
                assert_eq!(
                    err.offset, whole.offset,
                    "prefix {k}: error {err:?}, whole input: {whole:?}"
                );
            }
        }
    }

    // The engine: one chunk against two, split where the first record ends
    // (or just after it) or in the middle, under normal or tiny
    // `--max-line-size` (chosen by the input's length, so that mutations
    // explore all of them).
    let setup = common::setup(4 * (data.len() % 2) as u8);
    let k = match data.len() % 6 {
        0 | 1 => end,
        2 | 3 => end + 1,
        _ => data.len() / 2,
    }
    .min(data.len());
    common::check_chunking(setup, data, &[&data[..k], &data[k..]]);
});
