//! The parse workers and the hand-off: the reader deals chunks to the
//! workers in turn, each parses its chunk and hands it on with its
//! records, and the loop takes them back in the order they were read
//! ([`Chunks`]). Buffers travel back the same way for reuse.

use std::io;
use std::os::unix::net::UnixStream;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::clock::Now;
use crate::records::{Parsed, Splitter};

use super::reader::Reader;
use super::End;

/// Parse workers: one per core of the machines this runs on.
pub const WORKERS: usize = 2;

/// A chunk of input: a buffer that stays `CHUNK` long (so it is never
/// zero-filled again) and how much of it holds data.
#[derive(Debug)]
pub struct Chunk {
    pub(super) buf: Vec<u8>,
    pub(super) len: usize,
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
pub(super) enum Event {
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
