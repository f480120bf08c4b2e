//! The reader thread: stdin into chunks that end at a line feed, dealt to
//! the parse workers in turn. It reads fd 0 itself, without std's buffer:
//! bytes pulled into a user-space buffer would wait there unseen by
//! `poll`.

use std::io;
use std::os::unix::net::UnixStream;

use crossbeam_channel::{Receiver, Sender};
use rustix::event::{poll, PollFd, PollFlags, Timespec};

use crate::clock::Now;

use super::workers::{Chunk, Event};
use super::End;

/// The size of a chunk. The reader fills it while input is waiting, so a
/// burst is handed on in chunks of this size. Measured on medium.lp (pipe
/// reads of 64 KiB, 2 cores): 64 KiB chunks cost ~15 % more CPU (a
/// hand-off per pipe read), 512 KiB and 1 MiB more again (a chunk no longer
/// stays in cache between reader, worker and loop, and RSS grows to 14 and
/// 25 MiB); 128–256 KiB are equal within noise.
const CHUNK: usize = 256 * 1024;

/// The reader thread's state: one buffer being filled, the partial line
/// at its front.
pub(super) struct Reader {
    workers: Vec<Sender<Event>>,
    spare: Receiver<Vec<u8>>,
    replay: bool,
    turn: usize,
    buf: Vec<u8>,
    filled: usize,
    /// stdin is a regular file (read on to the end of a record at a stop).
    file: bool,
    /// A stop signal came.
    stopping: bool,
    /// The end of the last line feed read and not yet handed over (0:
    /// none).
    lines_end: usize,
}

/// What one step of the reader leads to.
enum Step {
    /// Go on reading.
    Go,
    /// Input ended, with the read error if reading failed.
    End(End, Option<io::Error>),
    /// The loop has gone: nothing more to do.
    Gone,
}

impl Reader {
    pub(super) fn new(
        workers: Vec<Sender<Event>>,
        spare: Receiver<Vec<u8>>,
        replay: bool,
    ) -> Reader {
        Reader {
            workers,
            spare,
            replay,
            turn: 0,
            buf: vec![0; CHUNK],
            filled: 0,
            file: stdin_is_file(),
            stopping: false,
            lines_end: 0,
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

    /// Hands over the lines in hand, if any.
    fn hand_over_lines(&mut self) -> bool {
        match std::mem::take(&mut self.lines_end) {
            0 => true,
            end => self.hand_over(end),
        }
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
    pub(super) fn run(mut self, stop: &UnixStream) {
        let (end, error) = loop {
            let step = if self.stopping && self.file {
                self.line_after_stop()
            } else {
                self.look(stop)
            };
            match step.unwrap_or_else(|| self.read()) {
                Step::Go => {}
                Step::Gone => return,
                Step::End(end, error) => break (end, error),
            }
        };
        if self.filled > 0 && !self.hand_over(self.filled) {
            return;
        }
        self.send(Event::End(end, error));
    }

    /// A regular file after a signal: one line at a time, with `Stopping`
    /// after the line that completes what was read, so that the loop stops
    /// at the end of the record under way and never takes the rest.
    /// `None`: no whole line in hand, read on.
    fn line_after_stop(&mut self) -> Option<Step> {
        let cut = match memchr::memchr(b'\n', &self.buf[..self.filled]) {
            Some(k) => k + 1,
            None if self.filled == self.buf.len() => self.filled,
            None => return None,
        };
        let sent = self.hand_over(cut) && self.send(Event::Stopping);
        Some(if sent { Step::Go } else { Step::Gone })
    }

    /// Waits for input or a signal (with lines in hand, or stopping, only
    /// looks). `None`: input is waiting, read it.
    fn look(&mut self, stop: &UnixStream) -> Option<Step> {
        let (readable, signalled) = match wait(stop, self.stopping || self.lines_end > 0) {
            Ok(ready) => ready,
            Err(e) => return Some(Step::End(End::Interrupted, Some(e))),
        };
        if signalled && !self.stopping {
            log::debug!("stop signal: reading what is already in the input");
            self.stopping = true;
            // What was read before the signal goes on as it is.
            let sent = self.hand_over_lines()
                && !(self.file && self.filled == 0 && !self.send(Event::Stopping));
            return Some(if sent { Step::Go } else { Step::Gone });
        }
        match (readable, self.stopping) {
            (true, _) => None,
            // Nothing more waiting: hand over what is complete.
            (false, false) if self.lines_end > 0 => Some(if self.hand_over_lines() {
                Step::Go
            } else {
                Step::Gone
            }),
            (false, _) => Some(Step::End(End::Interrupted, None)),
        }
    }

    /// One read of stdin into the buffer; a full buffer is handed over.
    fn read(&mut self) -> Step {
        let filled = self.filled;
        let n = match rustix::io::read(rustix::stdio::stdin(), &mut self.buf[filled..]) {
            Ok(0) => return Step::End(End::Eof, None),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => return Step::Go,
            Err(e) => return Step::End(End::Interrupted, Some(e.into())),
        };
        self.filled += n;
        if self.stopping && self.file {
            return Step::Go;
        }
        if let Some(k) = memchr::memrchr(b'\n', &self.buf[filled..self.filled]) {
            self.lines_end = filled + k + 1;
        }
        if self.filled < self.buf.len() {
            return Step::Go;
        }
        // A full buffer: hand it over up to its last line feed, or whole
        // when it has none, so memory stays bounded (the input stage
        // carries the record).
        let cut = match std::mem::take(&mut self.lines_end) {
            0 => self.filled,
            k => k,
        };
        if self.hand_over(cut) {
            Step::Go
        } else {
            Step::Gone
        }
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
