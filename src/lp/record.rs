//! What the grammar yields: a well-formed record's extent and kind, and
//! the [`Visitor`] it reports the parts to. Its own room, so that the
//! grammar (`grammar.rs`) and its interface (`parse.rs`) both depend on it
//! and not on each other's file.

use super::value::{Escaped, Value};

/// Receives the parts of a record as they are parsed.
pub trait Visitor<'a> {
    /// The measurement. Return `false` to have tags and fields validated
    /// only, not reported.
    fn measurement(&mut self, name: Escaped<'a>) -> bool;
    /// A tag, in input order (a later duplicate key wins, as in Telegraf).
    fn tag(&mut self, key: Escaped<'a>, value: Escaped<'a>);
    /// A field, in input order (a later duplicate key wins, as in Telegraf).
    fn field(&mut self, key: Escaped<'a>, value: Value<'a>);
    /// The timestamp, when the record has one.
    fn timestamp(&mut self, ts: i64);
}

/// A visitor that keeps nothing: for validation only.
pub struct Validate;

impl<'a> Visitor<'a> for Validate {
    fn measurement(&mut self, _: Escaped<'a>) -> bool {
        false
    }
    fn tag(&mut self, _: Escaped<'a>, _: Escaped<'a>) {}
    fn field(&mut self, _: Escaped<'a>, _: Value<'a>) {}
    fn timestamp(&mut self, _: i64) {}
}

/// What a well-formed record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// An empty or whitespace-only line.
    Blank,
    /// A line whose first non-blank byte is `#`.
    Comment,
    /// A point.
    Point,
}

/// A well-formed record at the start of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Blank, comment or point.
    pub kind: RecordKind,
    /// Bytes of the record without its line ending: what is passed through.
    pub body: usize,
    /// Bytes consumed, line ending included.
    pub len: usize,
    /// Physical lines the record spans (more than one when a quoted string
    /// holds a line feed).
    pub lines: usize,
}
