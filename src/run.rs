//! The event loop: the reader thread and parse workers ([`crate::input`]),
//! a ticker and the stats interval feeding one loop over crossbeam
//! channels, and stdout written from that loop only.
//!
//! Records are applied in input order on this thread ([`Pipeline`]). A
//! SIGTERM or SIGINT reaches the reader through a signal-hook self-pipe, so
//! a stop reads exactly what is already there and then ends the input,
//! whichever of end of input and signal comes first. stdout is flushed
//! whenever no input is waiting and after every closed window, so nothing
//! sits in a buffer while the process waits.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crossbeam_channel::{never, select, tick, Receiver, TryRecvError};

use crate::clock::Now;
use crate::config::Options;
use crate::input::{self, Chunks, End, Work};
use crate::pipeline::Pipeline;
use crate::settings::Settings;

/// Output is written once this much has gathered (and whenever input stalls).
const WRITE_AT: usize = 128 * 1024;

/// How often the watermark is recomputed while input is idle.
const TICK: Duration = Duration::from_millis(100);

/// Why the input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// stdin closed.
    EndOfInput,
    /// SIGTERM or SIGINT.
    Signal,
    /// Reading stdin failed (logged).
    ReadFailed,
}

/// How the run ended, for the exit status.
#[derive(Debug)]
pub enum Exit {
    /// Input ended (or a stop signal came) and all output was written:
    /// exit status 0, or 1 when reading stdin failed.
    Done(Stop),
    /// stdout failed, or the threads could not start: exit status 1.
    Io(io::Error),
}

impl Exit {
    /// The process exit status.
    pub fn status(&self) -> u8 {
        match self {
            Exit::Done(Stop::EndOfInput | Stop::Signal) => 0,
            Exit::Done(Stop::ReadFailed) | Exit::Io(_) => 1,
        }
    }
}

/// Runs the processor on stdin and stdout until the input ends or a signal
/// stops it.
pub fn run(options: &Options) -> Exit {
    let replay = options.replay || input::stdin_is_file();
    let mut pipeline = Pipeline::new(Settings::new(options));
    let mut chunks = match spawn(&pipeline, replay) {
        Ok(chunks) => chunks,
        Err(e) => {
            log::error!("cannot start: {e}");
            return Exit::Io(e);
        }
    };
    let clocks = Clocks {
        ticker: if replay { never() } else { tick(TICK) },
        stats: match options.stats_interval {
            Some(d) if !replay => tick(d.to_std()),
            _ => never(),
        },
    };
    let mut out = io::stdout().lock();
    log::debug!("started ({} mode)", if replay { "replay" } else { "live" });

    let (stop, end) = match event_loop(&mut pipeline, &mut chunks, &clocks, &mut out) {
        Ok(stopped) => stopped,
        Err(e) => return broken(e),
    };
    // The reader and the workers end when their channels close.
    drop(chunks);
    finish(&mut pipeline, stop, end, replay, options, &mut out)
}

/// Registers the stop signals and starts the reader and the workers.
fn spawn(pipeline: &Pipeline, replay: bool) -> io::Result<Chunks> {
    let (stop_rx, stop_tx) = UnixStream::pair()?;
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let write_end = stop_tx.try_clone()?;
        signal_hook::low_level::pipe::register(signal, write_end)?;
    }
    input::spawn(pipeline.splitter(), stop_rx, replay)
}

/// The live clocks: the idle-advance ticker and the stats interval, both
/// `never` in a replay.
struct Clocks {
    ticker: Receiver<std::time::Instant>,
    stats: Receiver<std::time::Instant>,
}

impl Clocks {
    /// Acts on whichever clock has fired (without waiting).
    fn serve(&self, pipeline: &mut Pipeline) {
        if self.ticker.try_recv().is_ok() {
            pipeline.engine().tick(Now::read());
        }
        if self.stats.try_recv().is_ok() {
            pipeline.engine().write_stats(Now::read().wall);
        }
    }
}

/// Applies chunks as they come until the input ends; returns why, and
/// how the input stage should treat a record still open.
fn event_loop(
    pipeline: &mut Pipeline,
    chunks: &mut Chunks,
    clocks: &Clocks,
    out: &mut impl Write,
) -> io::Result<(Stop, End)> {
    // Set once a stop signal came while reading a regular file.
    let mut stopping = false;
    loop {
        let work = match chunks.next().try_recv() {
            Ok(work) => work,
            Err(TryRecvError::Disconnected) => Work::End(End::Eof, None),
            Err(TryRecvError::Empty) => {
                // Nothing waiting: flush before blocking.
                write_out(pipeline, out, true)?;
                select! {
                    recv(chunks.next()) -> work => work.unwrap_or(Work::End(End::Eof, None)),
                    recv(clocks.ticker) -> _ => {
                        pipeline.engine().tick(Now::read());
                        continue;
                    }
                    recv(clocks.stats) -> _ => {
                        pipeline.engine().write_stats(Now::read().wall);
                        continue;
                    }
                }
            }
        };
        match work {
            Work::Chunk(chunk, parsed, read_at) => {
                pipeline.feed_parsed(chunk.bytes(), &parsed, read_at);
                chunks.recycle(chunk, parsed);
                // Input that never stops must not starve the clocks.
                clocks.serve(pipeline);
                let flush = pipeline.engine().take_window_closed();
                if flush || pipeline.output().len() >= WRITE_AT {
                    write_out(pipeline, out, flush)?;
                }
                if stopping && pipeline.at_boundary() {
                    return Ok((Stop::Signal, End::Eof));
                }
            }
            Work::Stopping => {
                stopping = true;
                if pipeline.at_boundary() {
                    return Ok((Stop::Signal, End::Eof));
                }
            }
            Work::End(end, error) => {
                let stop = match (&error, end) {
                    (Some(e), _) => {
                        log::error!("reading stdin failed: {e}; stopping");
                        Stop::ReadFailed
                    }
                    (None, End::Eof) => Stop::EndOfInput,
                    (None, End::Interrupted) => Stop::Signal,
                };
                return Ok((stop, end));
            }
        }
    }
}

/// Ends the input, closes every window, writes the last output and the
/// summary.
fn finish(
    pipeline: &mut Pipeline,
    stop: Stop,
    end: End,
    replay: bool,
    options: &Options,
    out: &mut impl Write,
) -> Exit {
    pipeline.finish(end, (!replay).then(Now::read));
    if options.stats_interval.is_some() {
        let engine = pipeline.engine();
        let ts = if replay {
            engine.event_time()
        } else {
            Now::read().wall
        };
        engine.write_stats(ts);
    }
    if let Err(e) = write_out(pipeline, out, true) {
        return broken(e);
    }
    let engine = pipeline.engine();
    let suppressed = engine.suppressed_warnings();
    if suppressed > 0 {
        log::warn!("{suppressed} warnings were suppressed by rate limiting");
    }
    log::info!(
        "stopped ({}): {}",
        match stop {
            Stop::EndOfInput => "end of input",
            Stop::Signal => "signal",
            Stop::ReadFailed => "read error",
        },
        engine.counters().summary()
    );
    Exit::Done(stop)
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
fn write_out(pipeline: &mut Pipeline, out: &mut impl Write, flush: bool) -> io::Result<()> {
    let buf = pipeline.output();
    if !buf.is_empty() {
        out.write_all(buf)?;
        buf.clear();
    }
    if flush {
        out.flush()?;
    }
    Ok(())
}
