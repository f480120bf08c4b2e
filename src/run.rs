//! The event loop: the reader thread and parse workers ([`crate::input`]),
//! the idle ticker, the stats interval and the state interval feeding one
//! loop over crossbeam channels, and stdout written from that loop only.
//!
//! Records are applied in input order on this thread ([`Pipeline`]). A
//! SIGTERM or SIGINT reaches the reader through a signal-hook self-pipe, so
//! a stop reads exactly what is already there and then ends the input,
//! whichever of end of input and signal comes first. stdout is flushed
//! whenever no input is waiting and after every closed window, so nothing
//! sits in a buffer while the process waits. What reaches stdout, the
//! journal and the state file, and in which order, is the
//! [`Checkpoint`]'s to decide: this loop only tells it when.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crossbeam_channel::{never, select, tick, Receiver, TryRecvError};

use crate::clock::Now;
use crate::config::Options;
use crate::input::{self, Chunks, End, Work};
use crate::pipeline::Pipeline;
use crate::settings::Settings;

use crate::state::checkpoint::{broken, StartError};
use crate::state::Checkpoint;

/// How often the watermark is recomputed while input is idle.
const TICK: Duration = Duration::from_millis(100);

/// Why the input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// stdin closed.
    EndOfInput,
    /// SIGTERM or SIGINT.
    Signal,
    /// Reading stdin failed (logged).
    ReadFailed,
}

/// How a run ended, for the exit status. What went wrong is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Input ended or a stop signal came, and everything was written (and
    /// saved): status 0.
    Done,
    /// It ended, but stdout, stdin or a save of the state failed: status 1.
    Failed,
    /// It could not start (state file unusable or locked): status 2.
    Refused,
}

impl Exit {
    /// The process exit status.
    pub fn status(self) -> u8 {
        match self {
            Exit::Done => 0,
            Exit::Failed => 1,
            Exit::Refused => 2,
        }
    }
}

/// Runs the processor on stdin and stdout until the input ends or a signal
/// stops it.
pub fn run(options: &Options) -> Exit {
    let replay = options.replay || input::stdin_is_file();
    let now = || (!replay).then(Now::read);
    let mut pipeline = Pipeline::new(Settings::new(options));
    let mut out = io::stdout().lock();
    let mut checkpoint = match resume(options, &mut pipeline, now(), &mut out) {
        Ok(checkpoint) => checkpoint,
        Err(exit) => return exit,
    };
    let mut chunks = match spawn(&pipeline, replay) {
        Ok(chunks) => chunks,
        Err(e) => {
            log::error!("cannot start: {e}");
            return Exit::Failed;
        }
    };
    let every = |d: Option<Duration>| match d {
        Some(d) if !replay && !d.is_zero() => tick(d),
        _ => never(),
    };
    let clocks = Clocks {
        ticker: every(Some(TICK)),
        stats: every(options.stats_interval.map(|d| d.to_std())),
        save: every(
            options
                .state_file
                .as_ref()
                .map(|_| options.state_interval.to_std()),
        ),
    };
    log::debug!("started ({} mode)", if replay { "replay" } else { "live" });

    let stopped = event_loop(
        &mut pipeline,
        &mut chunks,
        &clocks,
        &mut checkpoint,
        &mut out,
    );
    // The reader and the workers end when their channels close.
    drop(chunks);
    let (stop, end) = match stopped {
        Ok(stopped) => stopped,
        Err(e) => {
            broken(&e);
            // Nothing more can be written; the state may still be kept.
            pipeline.end_input(End::Interrupted, now());
            checkpoint.stop(&mut pipeline, None);
            return Exit::Failed;
        }
    };
    let done = finish(
        &mut pipeline,
        &mut checkpoint,
        options,
        end,
        now(),
        &mut out,
    );
    log::info!(
        "stopped ({}): {}",
        match stop {
            Stop::EndOfInput => "end of input",
            Stop::Signal => "signal",
            Stop::ReadFailed => "read error",
        },
        pipeline.counters().summary()
    );
    if done && stop != Stop::ReadFailed {
        Exit::Done
    } else {
        Exit::Failed
    }
}

/// A replay of `input`, in process, by the steps [`run`] takes (without
/// its reader thread and workers): what the tests of the state file run.
/// Returns how it ended and its pipeline (for its counters).
pub fn replay(options: &Options, input: &[u8], out: &mut impl Write) -> (Exit, Pipeline) {
    let mut pipeline = Pipeline::new(Settings::new(options));
    let mut checkpoint = match resume(options, &mut pipeline, None, out) {
        Ok(checkpoint) => checkpoint,
        Err(exit) => return (exit, pipeline),
    };
    pipeline.feed(input, None);
    if let Err(e) = checkpoint.settle(&mut pipeline, out, false) {
        broken(&e);
        pipeline.end_input(End::Interrupted, None);
        checkpoint.stop(&mut pipeline, None);
        return (Exit::Failed, pipeline);
    }
    let done = finish(&mut pipeline, &mut checkpoint, options, End::Eof, None, out);
    (if done { Exit::Done } else { Exit::Failed }, pipeline)
}

/// The start of the processor and of `flush`: the state file taken and
/// restored (its journal replayed, the replay's rows written to `out`).
/// The error is the exit, its reason logged.
fn resume(
    options: &Options,
    pipeline: &mut Pipeline,
    now: Option<Now>,
    out: &mut impl Write,
) -> Result<Checkpoint, Exit> {
    Checkpoint::restore(options, pipeline, now, out).map_err(|e| match e {
        StartError::Refused(message) => {
            log::error!("{message}");
            Exit::Refused
        }
        StartError::Stdout(e) => {
            broken(&e);
            Exit::Failed
        }
    })
}

/// The stop once the input ended (`end` says how): the checkpoint's stop
/// (the state saved, or the windows closed), then the last output.
/// `true` if everything was written and saved.
fn finish(
    pipeline: &mut Pipeline,
    checkpoint: &mut Checkpoint,
    options: &Options,
    end: End,
    now: Option<Now>,
    out: &mut impl Write,
) -> bool {
    pipeline.end_input(end, now);
    let stopped = checkpoint.stop(pipeline, Some(out));
    let written = stopped.written && write_last(pipeline, options, now.is_none(), out);
    stopped.saved && written
}

/// `e2e-aggregator flush`: restores the state file, closes every open
/// window, writes the rows to stdout and saves the emptied state.
pub fn flush(options: &Options) -> Exit {
    flush_to(options, &mut io::stdout().lock())
}

/// [`flush`] to `out`.
pub fn flush_to(options: &Options, out: &mut impl Write) -> Exit {
    let Some(path) = &options.state_file else {
        log::error!("flush needs --state-file");
        return Exit::Refused;
    };
    if std::fs::symlink_metadata(path).is_err() {
        log::error!(
            "state file {}: no such file; nothing to flush",
            path.display()
        );
        return Exit::Refused;
    }
    let mut pipeline = Pipeline::new(Settings::new(options));
    let mut checkpoint = match resume(options, &mut pipeline, None, out) {
        Ok(checkpoint) => checkpoint,
        Err(exit) => return exit,
    };
    let retired = checkpoint.retire(&mut pipeline, out);
    let written = retired.written && write_last(&mut pipeline, options, true, out);
    log::info!(
        "flushed {}: {}",
        path.display(),
        pipeline.counters().summary()
    );
    if retired.saved && written {
        Exit::Done
    } else {
        Exit::Failed
    }
}

/// At the end: the self-metrics (if asked for), the last output, the
/// suppressed-warnings note. `false` if stdout failed (logged).
fn write_last(
    pipeline: &mut Pipeline,
    options: &Options,
    replay: bool,
    out: &mut impl Write,
) -> bool {
    let engine = pipeline.engine();
    if options.stats_interval.is_some() {
        let ts = if replay {
            engine.event_time()
        } else {
            Now::read().wall
        };
        engine.write_stats(ts);
    }
    let suppressed = engine.suppressed_warnings();
    if suppressed > 0 {
        log::warn!("{suppressed} warnings were suppressed by rate limiting");
    }
    let buf = pipeline.output();
    match out.write_all(buf).and_then(|()| out.flush()) {
        Ok(()) => {
            buf.clear();
            true
        }
        Err(e) => {
            broken(&e);
            false
        }
    }
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

/// The live clocks (all `never` in a replay).
struct Clocks {
    /// The idle advance.
    ticker: Receiver<std::time::Instant>,
    /// `--stats-interval`.
    stats: Receiver<std::time::Instant>,
    /// `--state-interval`, with a state file.
    save: Receiver<std::time::Instant>,
}

impl Clocks {
    /// Acts on whichever clock has fired (without waiting).
    fn serve(
        &self,
        pipeline: &mut Pipeline,
        checkpoint: &mut Checkpoint,
        out: &mut impl Write,
    ) -> io::Result<()> {
        if self.ticker.try_recv().is_ok() {
            pipeline.engine().tick(Now::read());
        }
        if self.stats.try_recv().is_ok() {
            checkpoint.write_stats(pipeline, out)?;
        }
        if self.save.try_recv().is_ok() {
            checkpoint.save_later(pipeline, out)?;
        }
        Ok(())
    }
}

/// Applies chunks as they come until the input ends; returns why, and
/// how the input stage should treat a record still open.
fn event_loop(
    pipeline: &mut Pipeline,
    chunks: &mut Chunks,
    clocks: &Clocks,
    checkpoint: &mut Checkpoint,
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
                checkpoint.settle(pipeline, out, true)?;
                select! {
                    recv(chunks.next()) -> work => work.unwrap_or(Work::End(End::Eof, None)),
                    recv(clocks.ticker) -> _ => {
                        pipeline.engine().tick(Now::read());
                        checkpoint.settle(pipeline, out, false)?;
                        continue;
                    }
                    recv(clocks.stats) -> _ => {
                        checkpoint.write_stats(pipeline, out)?;
                        continue;
                    }
                    recv(clocks.save) -> _ => {
                        checkpoint.save_later(pipeline, out)?;
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
                clocks.serve(pipeline, checkpoint, out)?;
                checkpoint.settle(pipeline, out, false)?;
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
