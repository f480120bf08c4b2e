//! Record completion: the parsed chunks, taken back in order on the
//! loop's thread, become complete, limited and numbered records. A record
//! that spans chunks waits, without being parsed, until the bytes that can
//! end it have arrived, then is parsed once; `--max-line-size`
//! ([`LineLimit`], the one rule the parse stage also applies within a
//! chunk) applies to it whole.

use std::sync::Arc;

use crate::lp::{ErrorKind, ParseError};
use crate::records::{self, LineLimit, Parsed, Rec, Splitter};
use crate::settings::Settings;

use super::{Class, End, Record};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The next byte starts a record.
    Boundary,
    /// `pending` holds the start of a record that has not ended yet.
    Carrying,
    /// Dropping the rest of an invalid record up to its next line feed.
    Skipping,
}

/// Completes, limits and numbers the records of chunks fed in order. See
/// the module doc.
#[derive(Debug)]
pub struct Input {
    splitter: Splitter,
    limit: LineLimit,
    state: State,
    /// The start of a record that continues in a later chunk.
    pending: Vec<u8>,
    /// Records parsed on this thread (pending records, unparsed chunks).
    scratch: Parsed,
    /// The line the next record starts on.
    line: u64,
    /// The offset of the next byte not yet handed on (or of `pending`).
    offset: u64,
}

impl Input {
    /// Nothing read yet.
    pub fn new(settings: Arc<Settings>) -> Input {
        Input {
            limit: LineLimit(settings.max_line),
            splitter: Splitter::new(settings),
            state: State::Boundary,
            pending: Vec::new(),
            scratch: Parsed::default(),
            line: 1,
            offset: 0,
        }
    }

    /// The parse stage, for the workers.
    pub fn splitter(&self) -> &Splitter {
        &self.splitter
    }

    /// Whether no record is under way (the last byte fed ended one).
    pub fn at_boundary(&self) -> bool {
        self.state == State::Boundary
    }

    /// Feeds the next chunk and hands every record it completes to
    /// `apply`, in order. `parsed` is the chunk as a worker parsed it,
    /// assuming it starts at a record boundary; it is used when it does.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        parsed: Option<&Parsed>,
        apply: &mut impl FnMut(Record<'_>),
    ) {
        let mut chunk = chunk;
        let mut parsed = parsed;
        if self.state == State::Skipping {
            let Some(k) = memchr::memchr(b'\n', chunk) else {
                self.offset += chunk.len() as u64;
                return;
            };
            self.state = State::Boundary;
            self.line += 1;
            self.offset += k as u64 + 1;
            chunk = &chunk[k + 1..];
            parsed = None;
        }
        match self.state {
            State::Carrying if !may_end(&self.pending, chunk) => {
                self.pending.extend_from_slice(chunk);
            }
            State::Carrying => {
                let mut buf = std::mem::take(&mut self.pending);
                buf.extend_from_slice(chunk);
                self.state = State::Boundary;
                self.parse_here(&buf, false, apply);
            }
            _ => match parsed {
                Some(parsed) => self.hand_on(chunk, parsed, false, apply),
                None => self.parse_here(chunk, false, apply),
            },
        }
        self.limit_pending(apply);
    }

    /// Ends the input: a record still open is parsed as it stands at end
    /// of input (an unterminated string is invalid), or reported
    /// incomplete when the input was interrupted.
    pub fn finish(&mut self, end: End, apply: &mut impl FnMut(Record<'_>)) {
        if self.state != State::Carrying {
            self.state = State::Boundary;
            return;
        }
        let buf = std::mem::take(&mut self.pending);
        self.state = State::Boundary;
        match end {
            End::Eof => self.parse_here(&buf, true, apply),
            End::Interrupted => {
                let err = ParseError {
                    kind: ErrorKind::Incomplete,
                    offset: buf.len(),
                };
                self.emit_invalid(err, &buf, apply);
            }
        }
    }

    /// Parses `buf` on this thread and hands on its records.
    fn parse_here(&mut self, buf: &[u8], at_eof: bool, apply: &mut impl FnMut(Record<'_>)) {
        let mut parsed = std::mem::take(&mut self.scratch);
        self.splitter.parse(buf, at_eof, &mut parsed);
        self.hand_on(buf, &parsed, at_eof, apply);
        self.scratch = parsed;
    }

    /// Hands on the records of `buf` and keeps what may continue.
    fn hand_on(
        &mut self,
        buf: &[u8],
        parsed: &Parsed,
        at_eof: bool,
        apply: &mut impl FnMut(Record<'_>),
    ) {
        let mut pos = 0;
        let mut run = Run::default();
        for rec in &parsed.records {
            let rest = &buf[pos..];
            if let Rec::Other { body, len, lines } = rec {
                // The common case: a line that ends in `\n` is written as
                // it stands, together with its neighbours.
                if *len == body + 1 && rest[*body] == b'\n' {
                    run.push(pos, *len, *lines);
                    pos += len;
                    continue;
                }
            }
            self.hand_on_run(buf, &mut run, apply);
            let (class, lines) = match rec {
                Rec::Ignored { .. } => (Class::Ignored, 1),
                Rec::Other { body, lines, .. } => (
                    Class::Other {
                        body: &rest[..*body],
                    },
                    *lines,
                ),
                Rec::Delay {
                    body, lines, point, ..
                } => {
                    let point = &parsed.points[*point];
                    let key = point.key.clone().map(|k| &parsed.keys[k]);
                    let body = &rest[..*body];
                    (Class::Delay { body, point, key }, *lines)
                }
                Rec::Invalid { err, len, ended } => {
                    self.emit_invalid(*err, &rest[..*len], apply);
                    if !ended && !at_eof {
                        self.state = State::Skipping;
                    }
                    pos += (*len).max(1);
                    continue;
                }
            };
            apply(Record {
                line: self.line,
                offset: self.offset,
                class,
            });
            self.line += lines as u64;
            self.offset += rec.bytes() as u64;
            pos += rec.bytes();
        }
        self.hand_on_run(buf, &mut run, apply);
        let rest = &buf[parsed.consumed..];
        if !rest.is_empty() && self.state == State::Boundary {
            self.pending.clear();
            self.pending.extend_from_slice(rest);
            self.state = State::Carrying;
        }
    }

    /// Hands on the run of pass-through lines gathered, if any.
    fn hand_on_run(&mut self, buf: &[u8], run: &mut Run, apply: &mut impl FnMut(Record<'_>)) {
        if run.records == 0 {
            return;
        }
        let bytes = &buf[run.start..run.end];
        apply(Record {
            line: self.line,
            offset: self.offset,
            class: Class::Others {
                bytes,
                records: run.records,
            },
        });
        self.line += run.lines;
        self.offset += bytes.len() as u64;
        *run = Run::default();
    }

    fn emit_invalid(&mut self, err: ParseError, text: &[u8], apply: &mut impl FnMut(Record<'_>)) {
        apply(Record {
            line: self.line,
            offset: self.offset,
            class: Class::Invalid { err, text },
        });
        self.line += memchr::memchr_iter(b'\n', text).count() as u64;
        self.offset += text.len() as u64;
    }

    /// A pending record that outgrew the limit is invalid: it is reported
    /// and dropped without holding more of it, and what follows its first
    /// line feed past the limit is parsed again.
    fn limit_pending(&mut self, apply: &mut impl FnMut(Record<'_>)) {
        while self.state == State::Carrying
            && self.limit.exceeded(&self.pending, self.pending.len())
        {
            let buf = std::mem::take(&mut self.pending);
            let Rec::Invalid { err, len, ended } = records::invalid(&buf, self.limit.error())
            else {
                unreachable!("records::invalid makes an invalid record");
            };
            self.emit_invalid(err, &buf[..len], apply);
            if !ended {
                self.state = State::Skipping;
                return;
            }
            self.state = State::Boundary;
            self.parse_here(&buf[len..], false, apply);
        }
    }
}

/// Consecutive pass-through lines of a chunk, gathered to be handed on as
/// one [`Class::Others`].
#[derive(Debug, Default)]
struct Run {
    start: usize,
    end: usize,
    records: u64,
    lines: u64,
}

impl Run {
    fn push(&mut self, pos: usize, len: usize, lines: usize) {
        if self.records == 0 {
            self.start = pos;
        }
        self.end = pos + len;
        self.records += 1;
        self.lines += lines as u64;
    }
}

/// Whether `more` can end the record that `pending` starts. A record ends
/// only at a line feed; a pending record that already ends with one is
/// inside a quoted string (nothing else continues past a line feed), which
/// needs a `"` before it can end.
fn may_end(pending: &[u8], more: &[u8]) -> bool {
    if pending.ends_with(b"\n") {
        memchr::memchr(b'"', more).is_some()
    } else {
        memchr::memchr(b'\n', more).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Options;
    use crate::lp::{parse_record, Outcome, Validate};

    /// Feeds `input` in pieces of `size` and lists what is handed on.
    fn records(input: &[u8], size: usize, end: End, flags: &[&str]) -> Vec<String> {
        let args = std::iter::once("e2e-aggregator").chain(flags.iter().copied());
        let settings = Arc::new(Settings::new(&Options::load(args).unwrap()));
        let mut stage = Input::new(settings);
        let mut seen = Vec::new();
        let mut apply = |r: Record<'_>| {
            let what = match r.class {
                Class::Ignored => "ignored".to_string(),
                Class::Other { body } => format!("other {}", body.escape_ascii()),
                Class::Others { bytes, records } => {
                    // Listed as the records it runs over, so that the list
                    // does not depend on chunking.
                    let (mut line, mut offset, mut rest) = (r.line, r.offset, bytes);
                    for _ in 1..records {
                        let Outcome::Record(rec) = parse_record(rest, false, &mut Validate) else {
                            panic!("a run holds whole records");
                        };
                        let body = rest[..rec.body].escape_ascii();
                        seen.push(format!("{line}@{offset}: other {body}"));
                        (line, offset) = (line + rec.lines as u64, offset + rec.len as u64);
                        rest = &rest[rec.len..];
                    }
                    let body = rest[..rest.len() - 1].escape_ascii();
                    seen.push(format!("{line}@{offset}: other {body}"));
                    return;
                }
                Class::Delay { body, .. } => format!("delay {}", body.escape_ascii()),
                // The text is what was in hand: it depends on chunking.
                Class::Invalid { err, .. } => format!("invalid {:?}", err.kind),
            };
            seen.push(format!("{}@{}: {what}", r.line, r.offset));
        };
        for piece in input.chunks(size) {
            stage.feed(piece, None, &mut apply);
        }
        stage.finish(end, &mut apply);
        seen
    }

    #[test]
    fn records_spanning_chunks_come_out_whole_and_numbered() {
        let input = b"a x=1\nb s=\"1\n2\n3\" 5\n\nc x=2";
        let whole = records(input, input.len(), End::Eof, &[]);
        assert_eq!(
            whole,
            [
                "1@0: other a x=1",
                "2@6: other b s=\\\"1\\n2\\n3\\\" 5",
                "5@20: ignored",
                "6@21: other c x=2",
            ]
        );
        for size in 1..input.len() {
            assert_eq!(
                records(input, size, End::Eof, &[]),
                whole,
                "pieces of {size}"
            );
        }
    }

    #[test]
    fn an_interrupted_record_is_incomplete_not_a_line() {
        let input = b"cpu v=1 1\ncpu,host=h v=78914i 1700";
        let seen = records(input, 7, End::Interrupted, &[]);
        assert_eq!(seen, ["1@0: other cpu v=1 1", "2@10: invalid Incomplete",]);
        // At end of input the same bytes are a whole last line.
        let seen = records(input, 7, End::Eof, &[]);
        assert_eq!(seen[1], "2@10: other cpu,host=h v=78914i 1700");
    }

    #[test]
    fn the_line_limit_is_one_rule_however_the_input_is_chunked() {
        let input = b"a x=1\nlong x=\"0123456789\nabc\" 1\nb x=2\n";
        let expected = [
            "1@0: other a x=1",
            "2@6: invalid TooLong",
            "3@25: invalid MissingFieldEquals",
            "4@32: other b x=2",
        ];
        for size in 1..input.len() {
            let seen = records(input, size, End::Eof, &["--max-line-size", "12"]);
            assert_eq!(seen, expected, "pieces of {size}");
        }
    }

    #[test]
    fn a_pending_record_waits_without_being_parsed_again() {
        // The quoted string spans lines: until a '"' arrives, a piece that
        // ends at a line feed cannot end the record.
        assert!(!may_end(b"m s=\"a\n", b"b\nc\n"));
        assert!(may_end(b"m s=\"a\n", b"b\" 1\n"));
        // A line longer than a chunk needs its line feed.
        assert!(!may_end(b"m x=11", b"11"));
        assert!(may_end(b"m x=11", b"1\n"));
    }
}
