//! The parse stage: a chunk of input becomes one entry per record, each
//! classified, and each delay point's series key and values decoded.
//!
//! It keeps no state from one chunk to the next, so chunks can be parsed on
//! several threads and their results applied in order by the engine. A
//! chunk is parsed as if it started at a record boundary; the engine checks
//! that it did (see `Engine::feed_parsed`).

use std::ops::Range;

use crate::lp::{
    self, ErrorKind, Escaped, Number, Outcome, ParseError, RecordKind, Value, Visitor,
};
use crate::window::{key, Kind};

/// Tag keys that key a series, in key order, and the averaged fields.
const NETWORK_TAGS: [&[u8]; 3] = [b"path", b"source", b"target"];
const NETWORK_FIELDS: [&[u8]; 2] = [b"latency", b"bandwidth"];
const SERVICE_TAGS: [&[u8]; 3] = [b"sfr", b"endpoint", b"sf_instance"];
const SERVICE_FIELDS: [&[u8]; 3] = [b"response_time", b"request_size", b"response_size"];

/// The key tags and averaged fields of a kind of series.
pub fn schema(kind: Kind) -> (&'static [&'static [u8]; 3], &'static [&'static [u8]]) {
    match kind {
        Kind::Network => (&NETWORK_TAGS, &NETWORK_FIELDS),
        Kind::Service => (&SERVICE_TAGS, &SERVICE_FIELDS),
    }
}

/// A delay point as the engine needs it.
#[derive(Debug, Clone)]
pub struct DelayPoint {
    /// Network or service.
    pub kind: Kind,
    /// The encoded series key in [`Parsed::keys`], or `None` when a key tag
    /// is missing.
    pub key: Option<Range<usize>>,
    /// Which key tags are missing (bit i: tag i of the schema).
    pub missing_tags: u8,
    /// The averaged fields that carried a number.
    pub values: [Option<Number>; 3],
    /// Which averaged fields carried a bool or string (bit i: field i).
    pub non_numeric: u8,
    /// The timestamp, in input units.
    pub timestamp: Option<i64>,
}

/// One record of a chunk.
#[derive(Debug, Clone)]
pub enum Rec {
    /// A blank line or comment of `len` bytes.
    Ignored {
        /// Bytes, line ending included.
        len: usize,
    },
    /// A valid line of another measurement.
    Other {
        /// Bytes to pass through (no line ending).
        body: usize,
        /// Bytes, line ending included.
        len: usize,
        /// Physical lines.
        lines: usize,
    },
    /// A valid delay point.
    Delay {
        /// Bytes to pass through (no line ending).
        body: usize,
        /// Bytes, line ending included.
        len: usize,
        /// Physical lines.
        lines: usize,
        /// What it says.
        point: DelayPoint,
    },
    /// An invalid record.
    Invalid {
        /// What is wrong and where.
        err: ParseError,
        /// Bytes skipped: through the next line feed at or after the error.
        len: usize,
        /// Whether the skipped bytes end with a line feed (if not, the
        /// record goes on in the next chunk unless the input ended).
        ended: bool,
    },
}

/// The records of a chunk. Reused from chunk to chunk.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The records, in order.
    pub records: Vec<Rec>,
    /// Encoded series keys of the delay points.
    pub keys: Vec<u8>,
    /// Bytes covered by `records`; the rest is a record that may continue
    /// in the next chunk.
    pub consumed: usize,
}

impl Parsed {
    fn clear(&mut self) {
        self.records.clear();
        self.keys.clear();
        self.consumed = 0;
    }
}

/// What the parse stage needs to know: which measurements are delays and
/// how long a record may be.
#[derive(Debug, Clone)]
pub struct Splitter {
    /// Measurement of network delays.
    pub network: Vec<u8>,
    /// Measurement of service delays.
    pub service: Vec<u8>,
    /// Longest record.
    pub max_line: usize,
}

impl Splitter {
    /// Parses the records of `buf` into `out`. Without `at_eof`, a record
    /// that may continue past `buf` is left out (`out.consumed` stops
    /// before it).
    pub fn parse(&self, buf: &[u8], at_eof: bool, out: &mut Parsed) {
        out.clear();
        let mut pos = 0;
        while pos < buf.len() {
            let rest = &buf[pos..];
            let mut v = DelayVisitor::new(self);
            let rec = match lp::parse_record(rest, at_eof, &mut v) {
                Outcome::Record(r) if r.body > self.max_line => invalid(rest, self.too_long()),
                Outcome::Record(r) => match (r.kind, v.kind) {
                    (RecordKind::Blank | RecordKind::Comment, _) => Rec::Ignored { len: r.len },
                    (RecordKind::Point, None) => Rec::Other {
                        body: r.body,
                        len: r.len,
                        lines: r.lines,
                    },
                    (RecordKind::Point, Some(kind)) => Rec::Delay {
                        body: r.body,
                        len: r.len,
                        lines: r.lines,
                        point: v.finish(kind, &mut out.keys),
                    },
                },
                // The parser read past the limit before it found the error:
                // the record is too long, as it is when it arrives in chunks
                // and the carried part outgrows the limit (`limit_carry`).
                Outcome::Invalid(err) if reached(rest, err.offset) > self.max_line => {
                    invalid(rest, self.too_long())
                }
                Outcome::Invalid(err) => invalid(rest, err),
                Outcome::NeedMore => break,
            };
            let len = match &rec {
                Rec::Ignored { len }
                | Rec::Other { len, .. }
                | Rec::Delay { len, .. }
                | Rec::Invalid { len, .. } => *len,
            };
            out.records.push(rec);
            pos += len.max(1);
        }
        out.consumed = pos.min(buf.len());
    }

    /// The error of a record over `--max-line-size`.
    pub fn too_long(&self) -> ParseError {
        ParseError {
            kind: ErrorKind::TooLong,
            offset: self.max_line,
        }
    }
}

/// How much of a record the parser read before an error at `offset`, as
/// `limit_carry` measures a carried record: a final `\r` may be the start
/// of a line ending, so it does not count.
fn reached(rest: &[u8], offset: usize) -> usize {
    offset - usize::from(offset > 0 && rest.get(offset - 1) == Some(&b'\r'))
}

/// An invalid record: it runs to the next line feed at or after the error.
pub fn invalid(rest: &[u8], err: ParseError) -> Rec {
    let len = lp::resume_after(rest, err.offset);
    Rec::Invalid {
        err,
        len,
        ended: len > 0 && rest[len - 1] == b'\n',
    }
}

/// Which key tag or averaged field of `kind` a key is. The names are
/// matched as literals (a length switch and a word compare, no call); only
/// a key holding a backslash needs unescaping first.
#[inline(always)]
fn slot(kind: Kind, tag: bool, key: Escaped<'_>) -> Option<usize> {
    fn lookup(kind: Kind, tag: bool, raw: &[u8]) -> Option<usize> {
        match (kind, tag, raw) {
            (Kind::Network, true, b"path") => Some(0),
            (Kind::Network, true, b"source") => Some(1),
            (Kind::Network, true, b"target") => Some(2),
            (Kind::Network, false, b"latency") => Some(0),
            (Kind::Network, false, b"bandwidth") => Some(1),
            (Kind::Service, true, b"sfr") => Some(0),
            (Kind::Service, true, b"endpoint") => Some(1),
            (Kind::Service, true, b"sf_instance") => Some(2),
            (Kind::Service, false, b"response_time") => Some(0),
            (Kind::Service, false, b"request_size") => Some(1),
            (Kind::Service, false, b"response_size") => Some(2),
            _ => None,
        }
    }
    if key.has_backslash() {
        lookup(kind, tag, &key.unescaped())
    } else {
        lookup(kind, tag, key.raw())
    }
}

/// Collects what a delay point needs while the parser reads it.
struct DelayVisitor<'a, 's> {
    splitter: &'s Splitter,
    kind: Option<Kind>,
    tags: [Option<Escaped<'a>>; 3],
    fields: [Option<Value<'a>>; 3],
    timestamp: Option<i64>,
}

impl<'a, 's> DelayVisitor<'a, 's> {
    fn new(splitter: &'s Splitter) -> Self {
        DelayVisitor {
            splitter,
            kind: None,
            tags: [None; 3],
            fields: [None; 3],
            timestamp: None,
        }
    }

    /// Decodes the point: its key into `keys`, its numbers.
    fn finish(self, kind: Kind, keys: &mut Vec<u8>) -> DelayPoint {
        let mut point = DelayPoint {
            kind,
            key: None,
            missing_tags: 0,
            values: [None; 3],
            non_numeric: 0,
            timestamp: self.timestamp,
        };
        for (i, field) in self.fields.iter().enumerate() {
            if let Some(v) = field {
                match v.number() {
                    Some(n) => point.values[i] = Some(n),
                    None => point.non_numeric |= 1 << i,
                }
            }
        }
        match self.tags {
            [Some(a), Some(b), Some(c)] => {
                let start = keys.len();
                key::encode([&a.unescaped(), &b.unescaped(), &c.unescaped()], keys);
                point.key = Some(start..keys.len());
            }
            tags => {
                for (i, t) in tags.iter().enumerate() {
                    if t.is_none() {
                        point.missing_tags |= 1 << i;
                    }
                }
            }
        }
        point
    }
}

impl<'a> Visitor<'a> for DelayVisitor<'a, '_> {
    fn measurement(&mut self, name: Escaped<'a>) -> bool {
        self.kind = if name.is(&self.splitter.network) {
            Some(Kind::Network)
        } else if name.is(&self.splitter.service) {
            Some(Kind::Service)
        } else {
            None
        };
        self.kind.is_some()
    }

    fn tag(&mut self, k: Escaped<'a>, v: Escaped<'a>) {
        let Some(kind) = self.kind else { return };
        if let Some(i) = slot(kind, true, k) {
            self.tags[i] = Some(v);
        }
    }

    fn field(&mut self, k: Escaped<'a>, v: Value<'a>) {
        let Some(kind) = self.kind else { return };
        if let Some(i) = slot(kind, false, k) {
            self.fields[i] = Some(v);
        }
    }

    fn timestamp(&mut self, ts: i64) {
        self.timestamp = Some(ts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lp::value::Element;

    #[test]
    fn slots_match_the_schema_escaped_or_not() {
        for kind in [Kind::Network, Kind::Service] {
            let (tags, fields) = schema(kind);
            for (i, name) in tags.iter().enumerate() {
                assert_eq!(slot(kind, true, Escaped::new(name, Element::Key)), Some(i));
                assert_eq!(slot(kind, false, Escaped::new(name, Element::Key)), None);
            }
            for (i, name) in fields.iter().enumerate() {
                assert_eq!(slot(kind, false, Escaped::new(name, Element::Key)), Some(i));
            }
        }
        // `\"` is kept unless the key also holds a space, comma or '='.
        let escaped = Escaped::new(br"pa\=th", Element::Key);
        assert_eq!(slot(Kind::Network, true, escaped), None);
        let plain = Escaped::new(br"s\fr", Element::Key);
        assert_eq!(slot(Kind::Service, true, plain), None);
    }
}
