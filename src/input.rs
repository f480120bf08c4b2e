//! The input stage: bytes → complete records, on the model of ripgrep's
//! line buffer.
//!
//! - The reader thread ([`spawn`]) reads stdin into chunks that end at a
//!   line feed (the partial line is rolled to the front of the next chunk)
//!   and deals them to the parse workers in turn; chunk buffers come back
//!   for reuse, so reading allocates and zero-fills nothing after start.
//! - On the loop's thread, [`Input`] takes the parsed chunks back in order,
//!   completes a record that spans chunks (it waits, without parsing, until
//!   the bytes that can end it have arrived, then parses it once), applies
//!   `--max-line-size` to it ([`LineLimit`], the one rule the parse stage
//!   also applies within a chunk), and numbers
//!   lines and byte offsets. What it hands on is always a complete record.
//! - A stop never invents a record from a fragment (SPEC.md, "Stop"): at a
//!   signal, a regular file is read on to the end of the record under way,
//!   and a pipe's unfinished record is reported incomplete.
//!
//! It never looks at what a record means: that is the engine's job.

use std::io;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};
use rustix::event::{poll, PollFd, PollFlags, Timespec};

use crate::clock::Now;
use crate::lp::{ErrorKind, ParseError};
use crate::records::{self, DelayPoint, LineLimit, Parsed, Rec, Splitter};
use crate::settings::Settings;

/// The size of a chunk. The reader fills it while input is waiting, so a
/// burst is handed on in chunks of this size. Measured on medium.lp (pipe
/// reads of 64 KiB, 2 cores): 64 KiB chunks cost ~15 % more CPU (a
/// hand-off per pipe read), 512 KiB and 1 MiB more again (a chunk no longer
/// stays in cache between reader, worker and loop, and RSS grows to 14 and
/// 25 MiB); 128–256 KiB are equal within noise.
const CHUNK: usize = 256 * 1024;

/// Parse workers: one per core of the machines this runs on.
pub const WORKERS: usize = 2;

/// A complete record, as the engine receives it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The physical line it starts on (1-based).
    pub line: u64,
    /// The byte offset of its start in the input.
    pub offset: u64,
    /// What it is.
    pub class: Class<'a>,
}

/// What a record is.
#[derive(Debug, Clone, Copy)]
pub enum Class<'a> {
    /// A blank line or a comment.
    Ignored,
    /// A valid line of another measurement; `body` is passed through.
    Other {
        /// The line without its ending.
        body: &'a [u8],
    },
    /// Consecutive valid lines of other measurements, each ending in `\n`:
    /// passed through as one copy of `bytes` (a run of [`Class::Other`]).
    Others {
        /// The lines, each with its `\n`.
        bytes: &'a [u8],
        /// How many records.
        records: u64,
    },
    /// A valid delay point.
    Delay {
        /// The line without its ending.
        body: &'a [u8],
        /// What it says.
        point: &'a DelayPoint,
        /// Its encoded series key, when it has every key tag.
        key: Option<&'a [u8]>,
    },
    /// An invalid record.
    Invalid {
        /// What is wrong.
        err: ParseError,
        /// The bytes skipped (the whole record, or its part in hand).
        text: &'a [u8],
    },
}

/// How the input ended, for [`Input::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// stdin closed: a record still open ends here.
    Eof,
    /// Stopped before the end (a signal on a pipe, a read error): a record
    /// still open is incomplete.
    Interrupted,
}

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

/// A chunk of input: a buffer that stays `CHUNK` long (so it is never
/// zero-filled again) and how much of it holds data.
#[derive(Debug)]
pub struct Chunk {
    buf: Vec<u8>,
    len: usize,
}

impl Chunk {
    /// The data.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// What the reader sends, through a worker, to the loop.
#[derive(Debug)]
pub enum Work {
    /// Input ending at a line feed unless a line is longer than a chunk,
    /// its records as the worker parsed them, and the time it was read
    /// (live only).
    Chunk(Chunk, Parsed, Option<Now>),
    /// A stop signal came while reading a regular file: finish the record
    /// under way (the chunks that follow hold one line each), then stop.
    Stopping,
    /// Input ended: stdin closed (`Eof`) or a signal on a pipe
    /// (`Interrupted`), with the read error if reading failed.
    End(End, Option<io::Error>),
}

/// The reader thread and the parse workers, as the loop sees them: the
/// chunks come back from the workers in the order they were read.
pub struct Chunks {
    from_workers: Vec<Receiver<Work>>,
    spare_parsed: Vec<Sender<Parsed>>,
    spare_chunks: Sender<Vec<u8>>,
    turn: usize,
}

impl Chunks {
    /// Where the next piece of work comes from.
    pub fn next(&self) -> &Receiver<Work> {
        &self.from_workers[self.turn]
    }

    /// Gives a chunk's buffers back for reuse; the next chunk comes from
    /// the next worker.
    pub fn recycle(&mut self, chunk: Chunk, parsed: Parsed) {
        let _ = self.spare_chunks.try_send(chunk.buf);
        let _ = self.spare_parsed[self.turn].try_send(parsed);
        self.turn = (self.turn + 1) % self.from_workers.len();
    }
}

/// Starts the reader thread and the parse workers. `stop` becomes
/// readable when a stop signal arrives; `replay` says whether chunks are
/// stamped with the time.
pub fn spawn(splitter: &Splitter, stop: UnixStream, replay: bool) -> io::Result<Chunks> {
    let (spare_tx, spare_rx) = bounded::<Vec<u8>>(8);
    let mut to_workers = Vec::new();
    let mut chunks = Chunks {
        from_workers: Vec::new(),
        spare_parsed: Vec::new(),
        spare_chunks: spare_tx,
        turn: 0,
    };
    for i in 0..WORKERS {
        let (in_tx, in_rx) = bounded::<Event>(2);
        let (out_tx, out_rx) = bounded::<Work>(2);
        let (back_tx, back_rx) = bounded::<Parsed>(4);
        let splitter = splitter.clone();
        std::thread::Builder::new()
            .name(format!("parse-{i}"))
            .spawn(move || parse_worker(&splitter, &in_rx, &out_tx, &back_rx))?;
        to_workers.push(in_tx);
        chunks.from_workers.push(out_rx);
        chunks.spare_parsed.push(back_tx);
    }
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || Reader::new(to_workers, spare_rx, replay).run(&stop))?;
    Ok(chunks)
}

/// What the reader sends to a worker.
enum Event {
    Data(Chunk, Option<Now>),
    Stopping,
    End(End, Option<io::Error>),
}

/// A parse worker: parses each chunk it is dealt and hands it on with its
/// records. `spare` brings back record buffers for reuse.
fn parse_worker(
    splitter: &Splitter,
    input: &Receiver<Event>,
    output: &Sender<Work>,
    spare: &Receiver<Parsed>,
) {
    for event in input {
        let out = match event {
            Event::Data(chunk, read_at) => {
                let mut parsed = spare.try_recv().unwrap_or_default();
                splitter.parse(chunk.bytes(), false, &mut parsed);
                Work::Chunk(chunk, parsed, read_at)
            }
            Event::Stopping => Work::Stopping,
            Event::End(end, error) => Work::End(end, error),
        };
        if output.send(out).is_err() {
            return;
        }
    }
}

/// The reader thread's state: one buffer being filled, the partial line
/// at its front.
struct Reader {
    workers: Vec<Sender<Event>>,
    spare: Receiver<Vec<u8>>,
    replay: bool,
    turn: usize,
    buf: Vec<u8>,
    filled: usize,
}

impl Reader {
    fn new(workers: Vec<Sender<Event>>, spare: Receiver<Vec<u8>>, replay: bool) -> Reader {
        Reader {
            workers,
            spare,
            replay,
            turn: 0,
            buf: vec![0; CHUNK],
            filled: 0,
        }
    }

    /// Sends to the next worker; `false` once the loop has gone.
    fn send(&mut self, event: Event) -> bool {
        let sent = self.workers[self.turn].send(event).is_ok();
        self.turn = (self.turn + 1) % self.workers.len();
        sent
    }

    /// Sends `buf[..cut]` and rolls the rest to the front of a spare buffer.
    fn hand_over(&mut self, cut: usize) -> bool {
        let mut next = self.spare.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
        let tail = self.filled - cut;
        next[..tail].copy_from_slice(&self.buf[cut..self.filled]);
        self.filled = tail;
        let chunk = Chunk {
            buf: std::mem::replace(&mut self.buf, next),
            len: cut,
        };
        let read_at = (!self.replay).then(Now::read);
        self.send(Event::Data(chunk, read_at))
    }

    /// Reads stdin until it ends or, after a signal, until what can be
    /// read without blocking (a pipe) or the line under way (a regular
    /// file) has been read.
    ///
    /// A chunk is filled while more input is already waiting (a pipe
    /// gives at most 64 KiB a read): the lines read so far are handed over
    /// only when the buffer is full or nothing more is there, so a burst
    /// becomes few large chunks (less hand-off per byte) and a quiet input
    /// is handed over at once (no added delay).
    fn run(mut self, stop: &UnixStream) {
        // Read fd 0 itself, without std's buffer: bytes pulled into a
        // user-space buffer would wait there unseen by `poll`.
        let stdin = rustix::stdio::stdin();
        let file = stdin_is_file();
        let mut stopping = false;
        // The end of the last line feed read and not yet handed over
        // (0: none).
        let mut lines_end = 0;
        let end = loop {
            if stopping && file {
                // A regular file after a signal: one line at a time, with
                // `Stopping` after the line that completes what was read;
                // the loop stops at the end of the record under way and
                // never takes the rest.
                let cut = match memchr::memchr(b'\n', &self.buf[..self.filled]) {
                    Some(k) => Some(k + 1),
                    None if self.filled == self.buf.len() => Some(self.filled),
                    None => None,
                };
                if let Some(cut) = cut {
                    if !self.hand_over(cut) || !self.send(Event::Stopping) {
                        return;
                    }
                    continue;
                }
            } else {
                // With lines in hand, only look whether more is waiting.
                let (readable, signalled) = match wait(stop, stopping || lines_end > 0) {
                    Ok(ready) => ready,
                    Err(e) => break (End::Interrupted, Some(e)),
                };
                if signalled && !stopping {
                    log::debug!("stop signal: reading what is already in the input");
                    stopping = true;
                    // What was read before the signal goes on as it is.
                    if lines_end > 0 && !self.hand_over(std::mem::take(&mut lines_end)) {
                        return;
                    }
                    if file && self.filled == 0 && !self.send(Event::Stopping) {
                        return;
                    }
                    continue;
                }
                if !readable && !stopping && lines_end > 0 {
                    // Nothing more waiting: hand over what is complete.
                    if !self.hand_over(std::mem::take(&mut lines_end)) {
                        return;
                    }
                    continue;
                }
                if !readable {
                    break (End::Interrupted, None);
                }
            }
            let filled = self.filled;
            let n = match rustix::io::read(stdin, &mut self.buf[filled..]) {
                Ok(0) => break (End::Eof, None),
                Ok(n) => n,
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
                Err(e) => break (End::Interrupted, Some(e.into())),
            };
            self.filled += n;
            if stopping && file {
                continue;
            }
            if let Some(k) = memchr::memrchr(b'\n', &self.buf[filled..self.filled]) {
                lines_end = filled + k + 1;
            }
            if self.filled == self.buf.len() {
                // A full buffer: hand it over up to its last line feed, or
                // whole when it has none, so memory stays bounded (the
                // input stage carries the record).
                let cut = match std::mem::take(&mut lines_end) {
                    0 => self.filled,
                    k => k,
                };
                if !self.hand_over(cut) {
                    return;
                }
            }
        };
        if self.filled > 0 && !self.hand_over(self.filled) {
            return;
        }
        self.send(Event::End(end.0, end.1));
    }
}

/// Whether stdin is a regular file (a replay of a recording).
pub fn stdin_is_file() -> bool {
    rustix::fs::fstat(rustix::stdio::stdin())
        .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_file())
}

/// Waits until stdin or the stop pipe is readable; when `stopping`, only
/// looks (no waiting). Returns (stdin ready, stop signalled).
fn wait(stop: &UnixStream, stopping: bool) -> io::Result<(bool, bool)> {
    let stdin = rustix::stdio::stdin();
    let mut fds = [
        PollFd::new(&stdin, PollFlags::IN),
        PollFd::new(stop, PollFlags::IN),
    ];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        match poll(&mut fds, stopping.then_some(&zero)) {
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let ready = |f: &PollFd<'_>| {
        f.revents()
            .intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR)
    };
    Ok((ready(&fds[0]), ready(&fds[1])))
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
