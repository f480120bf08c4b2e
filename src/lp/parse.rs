//! The record parser's interface: InfluxDB line protocol exactly as
//! Telegraf's influx parser (the `StreamParser` that `processors.execd`
//! uses) reads it.
//!
//! The grammar itself, in nom combinators, is in [`super::grammar`]; the
//! table-driven scans that shortcut its leaves are in `scan.rs`.
//! [`parse_record`] reads through those fast paths; [`parse_record_with`]
//! can force the general grammar alone, which reads every input the same
//! way (`tests/lp_differential.rs`).
//!
//! Errors carry the offset of the byte at which Telegraf's state machine
//! stops as well, because that offset decides where parsing resumes (after
//! the next line feed at or behind it). The parser reports what it finds to
//! a [`Visitor`], so a caller that only needs to validate a line (to pass it
//! through) pays for no values.

use super::error::ParseError;
use super::grammar;
use super::record::{Record, Visitor};

/// The result of parsing at the start of some input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A complete record.
    Record(Record),
    /// The record is invalid; resume after the next line feed at or after
    /// the error's offset.
    Invalid(ParseError),
    /// The record may continue past the end of the input: call again with
    /// more. Only returned when `at_eof` is false.
    NeedMore,
}

/// Which implementation reads a record. Both read every input alike;
/// only their speed differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The grammar with its table-driven fast paths: what [`parse_record`] uses.
    Fast,
    /// The nom grammar alone, every fast path off: for differential tests.
    General,
}

/// Parses the record at the start of `input`. `at_eof` says whether more
/// input may follow; without it, a record that runs to the end of `input`
/// is not complete yet.
#[inline]
pub fn parse_record<'a, V: Visitor<'a>>(input: &'a [u8], at_eof: bool, v: &mut V) -> Outcome {
    outcome(grammar::record::<V, true>(input, v), input.len(), at_eof)
}

/// [`parse_record`] by the given [`Path`].
pub fn parse_record_with<'a, V: Visitor<'a>>(
    path: Path,
    input: &'a [u8],
    at_eof: bool,
    v: &mut V,
) -> Outcome {
    match path {
        Path::Fast => parse_record(input, at_eof, v),
        Path::General => outcome(grammar::record::<V, false>(input, v), input.len(), at_eof),
    }
}

/// What a record or error at the start of `len` bytes means when more
/// input may follow (`at_eof` false): a record not yet ended by a line
/// feed, or an error at the end of the input, may change with more.
#[inline(always)]
fn outcome(read: Result<Record, ParseError>, len: usize, at_eof: bool) -> Outcome {
    match read {
        Ok(rec) if rec.len > rec.body || at_eof => Outcome::Record(rec),
        Ok(_) => Outcome::NeedMore,
        Err(err) if err.offset >= len && !at_eof => Outcome::NeedMore,
        Err(err) => Outcome::Invalid(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lp::error::ErrorKind;
    use crate::lp::record::{RecordKind, Validate};

    /// The outcome, the same by both paths.
    fn outcome(input: &str) -> Outcome {
        let fast = parse_record(input.as_bytes(), true, &mut Validate);
        let general = parse_record_with(Path::General, input.as_bytes(), true, &mut Validate);
        assert_eq!(fast, general, "{input:?}");
        fast
    }

    fn error(input: &str) -> (ErrorKind, usize) {
        match outcome(input) {
            Outcome::Invalid(e) => (e.kind, e.offset),
            other => panic!("{input:?} gave {other:?}"),
        }
    }

    #[test]
    fn errors_stop_where_telegraf_stops() {
        // Offsets are 0-based; Telegraf prints them 1-based as columns.
        assert_eq!(error("m f=1.2.3"), (ErrorKind::BadFieldEnd, 7));
        assert_eq!(error("m f=007i"), (ErrorKind::BadFieldValue, 7));
        assert_eq!(error("m f=tRUE"), (ErrorKind::BadFieldEnd, 5));
        assert_eq!(error("m f=TrUe"), (ErrorKind::BadFieldValue, 6));
        assert_eq!(error("m f=tru"), (ErrorKind::BadFieldValue, 7));
        assert_eq!(
            error("cpu value=9223372036854775808i"),
            (ErrorKind::IntegerOutOfRange, 30)
        );
        assert_eq!(
            error("cpu value=42 12345678901234567890"),
            (ErrorKind::BadTimestamp, 32)
        );
        assert_eq!(error(r#"m f="a\b""#), (ErrorKind::BadStringEscape, 7));
        assert_eq!(error("m,t=v\\\\ f=1"), (ErrorKind::BadTagEnd, 9));
        assert_eq!(
            error("cpu value=42\rcpu value=43"),
            (ErrorKind::BareCarriageReturn, 12)
        );
        assert_eq!(error("m f=1e309"), (ErrorKind::FloatOutOfRange, 9));
    }

    #[test]
    fn records_report_their_extent() {
        let rec = |s: &str| match outcome(s) {
            Outcome::Record(r) => (r.kind, r.body, r.len, r.lines),
            other => panic!("{s:?} gave {other:?}"),
        };
        assert_eq!(rec("m f=1 1\r\nnext"), (RecordKind::Point, 7, 9, 1));
        assert_eq!(rec("m f=\"a\nb\" 1\n"), (RecordKind::Point, 11, 12, 2));
        assert_eq!(rec("  # c\rx\n"), (RecordKind::Comment, 7, 8, 1));
        assert_eq!(rec("  \r\n"), (RecordKind::Blank, 2, 4, 1));
        assert_eq!(rec("m f=1 "), (RecordKind::Point, 6, 6, 1));
    }

    #[test]
    fn a_record_at_the_end_of_a_chunk_waits_for_more() {
        let more = |s: &str| parse_record(s.as_bytes(), false, &mut Validate);
        assert_eq!(more("m f=1"), Outcome::NeedMore);
        assert_eq!(more("m f=\"a\n"), Outcome::NeedMore);
        assert_eq!(more("m f=1\r"), Outcome::NeedMore);
        assert!(matches!(more("m f=x\n"), Outcome::Invalid(_)));
    }
}
