//! InfluxDB line protocol: a parser that reads it exactly as Telegraf's
//! influx parser does (the one `processors.execd` reads a processor's output
//! with), and a writer that emits only the portable subset every reader
//! agrees on (`RULES.md` of the conformance corpus, summed up in
//! `docs/behaviour.md`).
//!
//! Which parser runs where:
//! - **in production**, [`parse_record`] reads through the hand-written
//!   fast paths: `scan_record` in [`grammar`], a plain loop over the
//!   record's sections, the table-driven leaf scans of `scan.rs`, and
//!   before them all `plain.rs`, one bit-mask pass over a line passed
//!   through that holds no quote and no backslash outside its tags;
//! - **the reference** is the nom grammar in [`grammar`], whose productions
//!   the fast paths stand beside and fall back to on anything unusual.
//!   [`parse_record_with`]`(`[`Path::General`]`, ..)` runs it alone; the
//!   differential test and fuzz target check that both read every input
//!   alike.
//!
//! The parser is zero-copy: every element borrows from the input and is
//! unescaped only on request, and a caller that just validates a line gets
//! no values at all. [`record`] holds what the grammar yields (the
//! [`Record`], the [`Visitor`]); [`parse`] is the interface; [`write`] is
//! the output.

pub mod error;
pub mod grammar;
pub mod parse;
mod plain;
pub mod record;
mod scan;
pub mod value;
pub mod write;

pub use error::{ErrorKind, ParseError};
pub use parse::{parse_record, parse_record_with, Outcome, Path};
pub use record::{Record, RecordKind, Validate, Visitor};
pub use value::{Escaped, Number, Value};

/// A field value owned, as a test or a tool compares it.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedValue {
    /// A float.
    Float(f64),
    /// A signed integer.
    Integer(i64),
    /// An unsigned integer.
    Unsigned(u64),
    /// A boolean.
    Boolean(bool),
    /// A string, unescaped.
    String(Vec<u8>),
}

/// A point with everything unescaped and owned: what Telegraf's parser
/// yields for a record. Duplicate tag or field keys: the last one wins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Point {
    /// The measurement.
    pub measurement: Vec<u8>,
    /// Tags by key.
    pub tags: std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    /// Fields in order of first appearance.
    pub fields: Vec<(Vec<u8>, OwnedValue)>,
    /// The timestamp, if the record had one.
    pub timestamp: Option<i64>,
}

impl<'a> Visitor<'a> for Point {
    fn measurement(&mut self, name: Escaped<'a>) -> bool {
        self.measurement = name.unescaped().into_owned();
        true
    }

    fn tag(&mut self, key: Escaped<'a>, value: Escaped<'a>) {
        self.tags
            .insert(key.unescaped().into_owned(), value.unescaped().into_owned());
    }

    fn field(&mut self, key: Escaped<'a>, value: Value<'a>) {
        let value = match (value.number(), value) {
            (Some(Number::Float(f)), _) => OwnedValue::Float(f),
            (Some(Number::Integer(i)), _) => OwnedValue::Integer(i),
            (Some(Number::Unsigned(u)), _) => OwnedValue::Unsigned(u),
            (None, Value::Boolean(b)) => OwnedValue::Boolean(b),
            (None, v) => OwnedValue::String(v.string().unwrap_or_default().into_owned()),
        };
        let key = key.unescaped().into_owned();
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key, value)),
        }
    }

    fn timestamp(&mut self, ts: i64) {
        self.timestamp = Some(ts);
    }
}

/// Every call a parser makes on its visitor, in order, as written: what
/// the differential tests compare between [`Path::Fast`] and
/// [`Path::General`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace<'a> {
    /// What `measurement` answers: whether tags and fields are reported.
    pub want: bool,
    /// The calls.
    pub calls: Vec<Call<'a>>,
}

/// One call on a [`Visitor`].
#[derive(Debug, Clone, PartialEq)]
pub enum Call<'a> {
    /// `measurement`.
    Measurement(Escaped<'a>),
    /// `tag`.
    Tag(Escaped<'a>, Escaped<'a>),
    /// `field`.
    Field(Escaped<'a>, Value<'a>),
    /// `timestamp`.
    Timestamp(i64),
}

impl<'a> Visitor<'a> for Trace<'a> {
    fn measurement(&mut self, name: Escaped<'a>) -> bool {
        self.calls.push(Call::Measurement(name));
        self.want
    }

    fn tag(&mut self, key: Escaped<'a>, value: Escaped<'a>) {
        self.calls.push(Call::Tag(key, value));
    }

    fn field(&mut self, key: Escaped<'a>, value: Value<'a>) {
        self.calls.push(Call::Field(key, value));
    }

    fn timestamp(&mut self, ts: i64) {
        self.calls.push(Call::Timestamp(ts));
    }
}

/// Parses a whole input the way Telegraf's `StreamParser` does: every
/// record in order, a point or an error for each one that is not blank or a
/// comment, resuming after the next line feed after an error.
pub fn parse_all(input: &[u8]) -> Vec<Result<Point, ParseError>> {
    parse_all_with(Path::Fast, input)
}

/// [`parse_all`] by the given [`Path`].
pub fn parse_all_with(path: Path, input: &[u8]) -> Vec<Result<Point, ParseError>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < input.len() {
        let mut point = Point::default();
        match parse_record_with(path, &input[pos..], true, &mut point) {
            Outcome::Record(rec) => {
                if rec.kind == RecordKind::Point {
                    out.push(Ok(point));
                }
                pos += rec.len.max(1);
            }
            Outcome::Invalid(err) => {
                out.push(Err(err));
                pos += resume_after(&input[pos..], err.offset);
            }
            Outcome::NeedMore => break, // not returned when at_eof is set
        }
    }
    out
}

/// Where parsing resumes after an error at `offset`: past the next line
/// feed at or after it, or at the end of the input.
pub fn resume_after(record: &[u8], offset: usize) -> usize {
    let from = offset.min(record.len());
    memchr::memchr(b'\n', &record[from..]).map_or(record.len(), |k| from + k + 1)
}
