//! The fast path and the general nom grammar read every input alike.
//!
//! The input is walked record by record, as `parse_all` walks it, and
//! each record is read by both paths, with the input complete and with
//! more to come, reporting tags and fields or only validating: the
//! outcome (record kind, body, length, lines; or error kind and offset)
//! and every call on the visitor (measurement, tags, fields with their
//! values, timestamp, in order) must be the same.

#![no_main]

use e2e_aggregator::lp::{parse_record_with, resume_after, Outcome, Path, Trace};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        let mut step = 0;
        for at_eof in [true, false] {
            for want in [true, false] {
                let mut fast = Trace { want, calls: Vec::new() };
                let mut general = Trace { want, calls: Vec::new() };
                let f = parse_record_with(Path::Fast, rest, at_eof, &mut fast);
                let g = parse_record_with(Path::General, rest, at_eof, &mut general);
                assert_eq!(f, g, "outcome at byte {pos} (at_eof {at_eof})");
                assert_eq!(fast, general, "visitor calls at byte {pos} (at_eof {at_eof})");
                if at_eof {
                    step = match f {
                        Outcome::Record(rec) => rec.len.max(1),
                        Outcome::Invalid(err) => resume_after(rest, err.offset),
                        Outcome::NeedMore => panic!("NeedMore at end of input"),
                    };
                }
            }
        }
        pos += step;
    }
});
