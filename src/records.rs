//! The parse stage: a chunk of input becomes one entry per record, each
//! classified, and each delay point's series key and values decoded.
//!
//! It keeps no state from one chunk to the next, so chunks can be parsed on
//! several threads and their results applied in order. A chunk is parsed
//! as if it started at a record boundary; the input stage
//! ([`crate::input`]) knows whether it did and completes records that span
//! chunks. It never looks at windows or the join.

use std::ops::Range;
use std::sync::Arc;

use crate::lp::{self, ErrorKind, Escaped, Outcome, ParseError, RecordKind, Value, Visitor};
use crate::schema::{Kind, SeriesKey, Values};
use crate::settings::Settings;

/// `--max-line-size`: the longest record, line ending excluded. A longer
/// record is invalid; parsing resumes after the first line feed at or past
/// the limit, as after any other error.
#[derive(Debug, Clone, Copy)]
pub struct LineLimit(pub usize);

impl LineLimit {
    /// The error of a record over the limit.
    pub fn error(self) -> ParseError {
        ParseError {
            kind: ErrorKind::TooLong,
            offset: self.0,
        }
    }

    /// Whether `read` bytes of a record, counted without a final `\r` (it
    /// may be the start of its line ending), exceed the limit.
    pub fn exceeded(self, record: &[u8], read: usize) -> bool {
        let cr = read > 0 && record.get(read - 1) == Some(&b'\r');
        read - usize::from(cr) > self.0
    }

    /// The parser's outcome for the record at the start of `rest`, with
    /// the limit applied: a record whose body is over it, or that the
    /// parser read past it before finding an error, is too long. A record
    /// still open is judged when it grows ([`Input`]).
    pub fn judge(self, rest: &[u8], outcome: Outcome) -> Outcome {
        match outcome {
            Outcome::Record(r) if r.body > self.0 => Outcome::Invalid(self.error()),
            Outcome::Invalid(e) if self.exceeded(rest, e.offset) => Outcome::Invalid(self.error()),
            other => other,
        }
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
    /// Which key tags are missing (bit i: [`Kind::key_tags`]`[i]`).
    pub missing_tags: u8,
    /// The averaged fields that carried a number.
    pub values: Values,
    /// Which averaged fields carried a bool or string (bit i:
    /// [`Kind::fields`]`[i]`).
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
        /// What it says: its index in [`Parsed::points`] (kept apart so
        /// that a record stays small: most are pass-through lines).
        point: usize,
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

impl Rec {
    /// Bytes the record covers.
    pub fn bytes(&self) -> usize {
        match self {
            Rec::Ignored { len }
            | Rec::Other { len, .. }
            | Rec::Delay { len, .. }
            | Rec::Invalid { len, .. } => *len,
        }
    }
}

/// The records of a chunk. Reused from chunk to chunk.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The records, in order.
    pub records: Vec<Rec>,
    /// The delay points, in order.
    pub points: Vec<DelayPoint>,
    /// Encoded series keys of the delay points.
    pub keys: Vec<u8>,
    /// Bytes covered by `records`; the rest is a record that may continue
    /// in the next chunk.
    pub consumed: usize,
}

impl Parsed {
    fn clear(&mut self) {
        self.records.clear();
        self.points.clear();
        self.keys.clear();
        self.consumed = 0;
    }
}

/// The parse stage: which measurements are delays (from the shared
/// [`Settings`]) and how long a record may be.
#[derive(Debug, Clone)]
pub struct Splitter {
    settings: Arc<Settings>,
    limit: LineLimit,
}

impl Splitter {
    /// The parse stage for these settings.
    pub fn new(settings: Arc<Settings>) -> Splitter {
        let limit = LineLimit(settings.max_line);
        Splitter { settings, limit }
    }

    /// Parses the records of `buf` into `out`. Without `at_eof`, a record
    /// that may continue past `buf` is left out (`out.consumed` stops
    /// before it).
    pub fn parse(&self, buf: &[u8], at_eof: bool, out: &mut Parsed) {
        out.clear();
        let mut pos = 0;
        while pos < buf.len() {
            let rest = &buf[pos..];
            let mut v = DelayVisitor::new(&self.settings);
            let outcome = lp::parse_record(rest, at_eof, &mut v);
            let rec = match self.limit.judge(rest, outcome) {
                Outcome::Record(r) => match (r.kind, v.kind) {
                    (RecordKind::Blank | RecordKind::Comment, _) => Rec::Ignored { len: r.len },
                    (RecordKind::Point, None) => Rec::Other {
                        body: r.body,
                        len: r.len,
                        lines: r.lines,
                    },
                    (RecordKind::Point, Some(kind)) => {
                        out.points.push(v.finish(kind, &mut out.keys));
                        Rec::Delay {
                            body: r.body,
                            len: r.len,
                            lines: r.lines,
                            point: out.points.len() - 1,
                        }
                    }
                },
                Outcome::Invalid(err) => invalid(rest, err),
                Outcome::NeedMore => break,
            };
            pos += rec.bytes().max(1);
            out.records.push(rec);
        }
        out.consumed = pos.min(buf.len());
    }
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

/// Which key tag or averaged field of `kind` a key is; only a key holding
/// a backslash needs unescaping first.
#[inline(always)]
fn slot(kind: Kind, is_tag: bool, key: Escaped<'_>) -> Option<usize> {
    if key.has_backslash() {
        kind.slot(is_tag, &key.unescaped())
    } else {
        kind.slot(is_tag, key.raw())
    }
}

/// Collects what a delay point needs while the parser reads it.
struct DelayVisitor<'a, 's> {
    settings: &'s Settings,
    kind: Option<Kind>,
    tags: [Option<Escaped<'a>>; 3],
    fields: [Option<Value<'a>>; 3],
    timestamp: Option<i64>,
}

impl<'a, 's> DelayVisitor<'a, 's> {
    fn new(settings: &'s Settings) -> Self {
        DelayVisitor {
            settings,
            kind: None,
            tags: [None; 3],
            fields: [None; 3],
            timestamp: None,
        }
    }

    /// Decodes the point: its key into `keys`, its numbers.
    #[inline(never)]
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
                let parts = [a, b, c];
                SeriesKey::encode_with(keys, |out, i| parts[i].unescape_into(out));
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
        self.kind = if name.is(&self.settings.network) {
            Some(Kind::Network)
        } else if name.is(&self.settings.service) {
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

/// A record is written per line and read back on the loop's thread: keep
/// it small (the delay points are in [`Parsed::points`]).
const _: () = assert!(std::mem::size_of::<Rec>() <= 40);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Options;
    use crate::lp::Number;

    fn splitter() -> Splitter {
        let o = Options::load(["e2e-aggregator"]).unwrap();
        Splitter::new(Arc::new(Settings::new(&o)))
    }

    fn points(input: &[u8]) -> (Parsed, Vec<DelayPoint>) {
        let mut parsed = Parsed::default();
        splitter().parse(input, true, &mut parsed);
        let points = parsed.points.clone();
        (parsed, points)
    }

    #[test]
    fn key_tag_values_are_unescaped_into_the_series_key() {
        let (parsed, p) = points(br"network_delays,path=a\=b,source=x\,y,target=t\ u latency=1 1");
        let key = SeriesKey::from_encoded(&parsed.keys[p[0].key.clone().unwrap()]);
        assert_eq!(key.parts(), [&b"a=b"[..], b"x,y", b"t u"]);
    }

    #[test]
    fn escaped_tag_and_field_keys_match_only_once_unescaped() {
        // `pa\th` keeps its backslash (it escapes nothing), so the point has
        // no `path` tag; `late\ncy` is not `latency` either.
        let (_, p) = points(br"network_delays,pa\th=p,source=s,target=t late\ncy=1,bandwidth=2 1");
        assert_eq!(p[0].missing_tags, 0b001);
        assert_eq!(p[0].values[0], None);
        assert_eq!(p[0].values[1], Some(Number::Float(2.0)));
        // A key that needs unescaping and then names nothing in the schema.
        let (_, p) = points(br"service_delays,sfr\=x=a,endpoint=e,sf_instance=i response_time=1 1");
        assert_eq!(p[0].missing_tags, 0b001);
    }

    #[test]
    fn non_numeric_averaged_fields_are_flagged_not_taken() {
        let (_, p) = points(
            b"service_delays,sfr=a,endpoint=e,sf_instance=i response_time=\"x\",request_size=t,response_size=3u 1",
        );
        assert_eq!(p[0].non_numeric, 0b011);
        assert_eq!(p[0].values, [None, None, Some(Number::Unsigned(3))]);
        assert_eq!(p[0].timestamp, Some(1));
    }
}
