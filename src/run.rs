//! The event loop: a stdin reader thread, a ticker and signals feeding one
//! loop over crossbeam channels, and stdout written from that loop only.
//!
//! Parsing, most of the work, runs on two worker threads: the reader deals
//! chunks to them in turn and the loop takes their results back in the
//! same turn, so the records are applied in input order (see
//! `Engine::feed_parsed`).
//!
//! The reader polls stdin together with a self-pipe that signal-hook writes
//! to on SIGTERM/SIGINT, so a stop reads exactly what is already in the pipe
//! (without blocking) and then ends the input, whichever of end of input
//! and signal comes first. stdout is flushed whenever no input is waiting
//! and after every closed window, so nothing sits in a buffer while the
//! process waits.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crossbeam_channel::{bounded, never, select, tick, Receiver, Sender, TryRecvError};
use rustix::event::{poll, PollFd, PollFlags, Timespec};

use crate::config::Options;
use crate::engine::{Engine, Now, Settings};
use crate::records::{Parsed, Splitter};

/// Bytes read from stdin at a time. Large reads keep syscalls off the hot
/// path; a read returns as soon as some input is there, so it adds no delay.
const CHUNK: usize = 256 * 1024;

/// Output is written once this much has gathered (and whenever input stalls).
const WRITE_AT: usize = 128 * 1024;

/// How often the watermark is recomputed while input is idle.
const TICK: Duration = Duration::from_millis(100);

/// Parse workers: one per core of the machines this runs on.
const WORKERS: usize = 2;

/// Why the input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// stdin closed.
    Eof,
    /// SIGTERM or SIGINT.
    Signal,
}

enum Event {
    /// Input ending at a line feed unless a line is longer than a chunk,
    /// with the time it was read (live only).
    Data(Vec<u8>, Option<Now>),
    /// Input ended; the error, if reading failed.
    End(End, Option<io::Error>),
}

/// A chunk and its records, from a parse worker.
enum Work {
    Chunk(Vec<u8>, Parsed, Option<Now>),
    End(End, Option<io::Error>),
}

/// How the run ended, for the exit status.
#[derive(Debug)]
pub enum Exit {
    /// Input ended (or a stop signal came) and all output was written.
    Done(End),
    /// stdout or stdin failed.
    Io(io::Error),
}

/// Runs the processor on stdin and stdout until the input ends or a signal
/// stops it.
pub fn run(options: &Options) -> Exit {
    let replay = options.replay || stdin_is_file();
    let settings = Settings::new(options);
    let mut engine = Engine::new(settings);

    let (stop_rx, stop_tx) = match UnixStream::pair() {
        Ok(pair) => pair,
        Err(e) => return Exit::Io(e),
    };
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let registered = stop_tx
            .try_clone()
            .and_then(|w| signal_hook::low_level::pipe::register(signal, w));
        if let Err(e) = registered {
            return Exit::Io(e);
        }
    }

    let (spare_tx, spare_rx) = bounded::<Vec<u8>>(8);
    let mut to_workers = Vec::new();
    let mut from_workers = Vec::new();
    let mut spare_parsed = Vec::new();
    for i in 0..WORKERS {
        let (in_tx, in_rx) = bounded::<Event>(2);
        let (out_tx, out_rx) = bounded::<Work>(2);
        let (back_tx, back_rx) = bounded::<Parsed>(4);
        let splitter = engine.splitter().clone();
        let worker = std::thread::Builder::new()
            .name(format!("parse-{i}"))
            .spawn(move || parse_worker(&splitter, &in_rx, &out_tx, &back_rx));
        if let Err(e) = worker {
            return Exit::Io(e);
        }
        to_workers.push(in_tx);
        from_workers.push(out_rx);
        spare_parsed.push(back_tx);
    }
    let reader = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || read_stdin(&stop_rx, &to_workers, &spare_rx, replay));
    if let Err(e) = reader {
        return Exit::Io(e);
    }

    let ticker = if replay { never() } else { tick(TICK) };
    let stats = match options.stats_interval {
        Some(d) if !replay => tick(d.to_std()),
        _ => never(),
    };
    let mut out = io::stdout().lock();
    log::debug!("started ({} mode)", if replay { "replay" } else { "live" });

    let mut turn = 0;
    let end = loop {
        let from = &from_workers[turn];
        let event = match from.try_recv() {
            Ok(event) => event,
            Err(TryRecvError::Disconnected) => Work::End(End::Eof, None),
            Err(TryRecvError::Empty) => {
                // Nothing waiting: flush before blocking.
                if let Err(e) = write_out(&mut engine, &mut out, true) {
                    return broken(e);
                }
                select! {
                    recv(from) -> event => event.unwrap_or(Work::End(End::Eof, None)),
                    // Both tickers are `never` in a replay.
                    recv(ticker) -> _ => {
                        engine.tick(Now::read());
                        continue;
                    }
                    recv(stats) -> _ => {
                        engine.write_stats(Now::read().wall);
                        continue;
                    }
                }
            }
        };
        match event {
            Work::Chunk(chunk, parsed, read_at) => {
                engine.feed_parsed(&chunk, &parsed, read_at);
                let _ = spare_tx.try_send(chunk);
                let _ = spare_parsed[turn].try_send(parsed);
                turn = (turn + 1) % WORKERS;
                // Input that never stops must not starve the idle advance.
                if ticker.try_recv().is_ok() {
                    engine.tick(Now::read());
                }
                if stats.try_recv().is_ok() {
                    engine.write_stats(Now::read().wall);
                }
                let flush = engine.take_window_closed();
                if flush || engine.output().len() >= WRITE_AT {
                    if let Err(e) = write_out(&mut engine, &mut out, flush) {
                        return broken(e);
                    }
                }
            }
            Work::End(end, error) => {
                if let Some(e) = error {
                    log::error!("reading stdin failed: {e}; stopping");
                }
                break end;
            }
        }
    };

    engine.finish((!replay).then(Now::read));
    if options.stats_interval.is_some() {
        let ts = if replay {
            engine.event_time()
        } else {
            Now::read().wall
        };
        engine.write_stats(ts);
    }
    if let Err(e) = write_out(&mut engine, &mut out, true) {
        return broken(e);
    }
    let suppressed = engine.suppressed_warnings();
    if suppressed > 0 {
        log::warn!("{suppressed} warnings were suppressed by rate limiting");
    }
    log::info!(
        "stopped ({}): {}",
        match end {
            End::Eof => "end of input",
            End::Signal => "signal",
        },
        engine.counters().summary()
    );
    Exit::Done(end)
}

fn broken(e: io::Error) -> Exit {
    if e.kind() == io::ErrorKind::BrokenPipe {
        log::error!("stdout was closed (broken pipe); stopping");
    } else {
        log::error!("writing stdout failed: {e}; stopping");
    }
    Exit::Io(e)
}

/// Writes what the engine produced; flushes when asked.
fn write_out(engine: &mut Engine, out: &mut impl Write, flush: bool) -> io::Result<()> {
    let buf = engine.output();
    if !buf.is_empty() {
        out.write_all(buf)?;
        buf.clear();
    }
    if flush {
        out.flush()?;
    }
    Ok(())
}

fn stdin_is_file() -> bool {
    rustix::fs::fstat(rustix::stdio::stdin())
        .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_file())
}

/// The reader thread: sends stdin in chunks that end at a line feed (the
/// partial line is moved to the next chunk), and stops at end of input or,
/// after draining what is already readable, at a stop signal. Buffers come
/// back from the loop through `spare`, so reading allocates nothing.
fn read_stdin(
    stop: &UnixStream,
    workers: &[Sender<Event>],
    spare: &Receiver<Vec<u8>>,
    replay: bool,
) {
    let mut turn = 0;
    let mut send = |event: Event| {
        let sent = workers[turn].send(event).is_ok();
        turn = (turn + 1) % workers.len();
        sent
    };
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut buf = vec![0u8; CHUNK];
    let mut filled = 0;
    let mut stopping = false;
    let end = loop {
        let (readable, signalled) = match wait(stop, stopping) {
            Ok(ready) => ready,
            Err(e) => break (End::Eof, Some(e)),
        };
        if signalled && !stopping {
            log::debug!("stop signal: reading what is already in the pipe");
            stopping = true;
            // A regular file is always readable: a stop ends it at once.
            if replay && stdin_is_file() {
                break (End::Signal, None);
            }
            continue;
        }
        if !readable {
            // Stopping, and nothing more can be read without blocking.
            break (End::Signal, None);
        }
        let n = match input.read(&mut buf[filled..]) {
            Ok(0) => break (End::Eof, None),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break (End::Eof, Some(e)),
        };
        let cut = match memchr::memrchr(b'\n', &buf[filled..filled + n]) {
            Some(k) => filled + k + 1,
            // No line end in a full buffer: hand it over anyway so memory
            // stays bounded (the engine carries the record).
            None if filled + n == buf.len() => buf.len(),
            None => {
                filled += n;
                continue;
            }
        };
        filled += n;
        let mut next = spare.try_recv().unwrap_or_default();
        // A returned buffer is already initialised up to its old length,
        // so this zero-fills only the little it lacks.
        next.resize(CHUNK, 0);
        let tail = filled - cut;
        next[..tail].copy_from_slice(&buf[cut..filled]);
        buf.truncate(cut);
        let read_at = (!replay).then(Now::read);
        if !send(Event::Data(std::mem::replace(&mut buf, next), read_at)) {
            return;
        }
        filled = tail;
    };
    buf.truncate(filled);
    if !buf.is_empty() && !send(Event::Data(buf, (!replay).then(Now::read))) {
        return;
    }
    send(Event::End(end.0, end.1));
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
                splitter.parse(&chunk, false, &mut parsed);
                Work::Chunk(chunk, parsed, read_at)
            }
            Event::End(end, error) => Work::End(end, error),
        };
        if output.send(out).is_err() {
            return;
        }
    }
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
