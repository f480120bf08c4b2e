//! The event loop: the reader thread and parse workers ([`crate::input`]),
//! the idle ticker, the stats interval and the state interval feeding one
//! loop over crossbeam channels, and stdout written from that loop only.
//!
//! Records are applied in input order on this thread ([`Pipeline`]). A
//! SIGTERM or SIGINT reaches the reader through a signal-hook self-pipe, so
//! a stop reads exactly what is already there and then ends the input,
//! whichever of end of input and signal comes first. stdout is flushed
//! whenever no input is waiting and after every closed window, so nothing
//! sits in a buffer while the process waits. With `--state-file` the open
//! windows are saved at stop instead of closed ([`crate::state`]).

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crossbeam_channel::{never, select, tick, Receiver, TryRecvError};

use crate::clock::Now;
use crate::config::Options;
use crate::input::{self, Chunks, End, Work};
use crate::pipeline::Pipeline;
use crate::settings::Settings;
use std::sync::Arc;

use crate::state::{self, Loaded, Saver, StateFile};

/// Output is written once this much has gathered (and whenever input stalls).
const WRITE_AT: usize = 128 * 1024;

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
    let state = match restore(options, &mut pipeline, now()) {
        Ok(state) => state,
        Err(message) => {
            log::error!("{message}");
            return Exit::Refused;
        }
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
    let state = state.map(Arc::new);
    let saver = match &state {
        Some(file) if !replay && !options.state_interval.is_zero() => {
            match Saver::start(file.clone(), pipeline.engine().settings().clone()) {
                Ok(saver) => Some(saver),
                Err(e) => {
                    log::error!("cannot start: {e}");
                    return Exit::Failed;
                }
            }
        }
        _ => None,
    };
    let mut clocks = Clocks {
        ticker: every(Some(TICK)),
        stats: every(options.stats_interval.map(|d| d.to_std())),
        save: every(saver.as_ref().map(|_| options.state_interval.to_std())),
        state,
        saver,
    };
    let mut out = io::stdout().lock();
    log::debug!("started ({} mode)", if replay { "replay" } else { "live" });

    let stopped = event_loop(&mut pipeline, &mut chunks, &mut clocks, &mut out);
    // The reader and the workers end when their channels close.
    drop(chunks);
    // A periodic save still running lands before the one at stop.
    if let Some(saver) = clocks.saver.take() {
        saver.finish();
    }
    let (stop, end) = match stopped {
        Ok(stopped) => stopped,
        Err(e) => {
            broken(&e);
            // Nothing more can be written; the state can still be kept.
            pipeline.end_input(End::Interrupted, now());
            save_state(clocks.state.as_deref(), &mut pipeline);
            return Exit::Failed;
        }
    };
    pipeline.end_input(end, now());
    let saved = match &clocks.state {
        Some(_) => save_state(clocks.state.as_deref(), &mut pipeline),
        None => {
            pipeline.engine().close_all();
            true
        }
    };
    let written = write_last(&mut pipeline, options, replay, &mut out);
    log::info!(
        "stopped ({}): {}",
        match stop {
            Stop::EndOfInput => "end of input",
            Stop::Signal => "signal",
            Stop::ReadFailed => "read error",
        },
        pipeline.counters().summary()
    );
    if saved && written && stop != Stop::ReadFailed {
        Exit::Done
    } else {
        Exit::Failed
    }
}

/// `e2e-aggregator flush`: restores the state file, closes every open
/// window, writes the rows and saves the emptied state.
pub fn flush(options: &Options) -> Exit {
    let Some(path) = &options.state_file else {
        log::error!("flush needs --state-file");
        return Exit::Refused;
    };
    let mut pipeline = Pipeline::new(Settings::new(options));
    let state = match restore(options, &mut pipeline, None) {
        Ok(state) => state,
        Err(message) => {
            log::error!("{message}");
            return Exit::Refused;
        }
    };
    pipeline.engine().close_all();
    let saved = save_state(state.as_ref(), &mut pipeline);
    if saved {
        if let Some(state) = &state {
            let closed_until = pipeline.engine().state().0.closed_until().0;
            let _ = state.save_closed(closed_until);
        }
    }
    let written = write_last(&mut pipeline, options, true, &mut io::stdout().lock());
    log::info!(
        "flushed {}: {}",
        path.display(),
        pipeline.counters().summary()
    );
    if saved && written {
        Exit::Done
    } else {
        Exit::Failed
    }
}

/// Takes and restores the state file, if there is one.
fn restore(
    options: &Options,
    pipeline: &mut Pipeline,
    now: Option<Now>,
) -> Result<Option<StateFile>, String> {
    let Some(path) = &options.state_file else {
        return Ok(None);
    };
    let file = StateFile::open(path)?;
    let engine = pipeline.engine();
    if let Loaded::State { windows, join } = file.load(engine.settings())? {
        engine.restore(windows, join, now);
    }
    Ok(Some(file))
}

/// Saves the engine's state if there is a state file; `false` if that
/// failed (logged).
fn save_state(state: Option<&StateFile>, pipeline: &mut Pipeline) -> bool {
    let Some(file) = state else { return true };
    let engine = pipeline.engine();
    let (windows, join) = engine.state();
    match state::save(file, engine.settings(), windows, join) {
        Ok(()) => true,
        Err(e) => {
            log::error!("state file {}: save failed: {e}", file.path().display());
            false
        }
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
    match write_out(pipeline, out, true) {
        Ok(()) => true,
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

/// The live clocks (all `never` in a replay) and the state file they save to.
struct Clocks {
    /// The idle advance.
    ticker: Receiver<std::time::Instant>,
    /// `--stats-interval`.
    stats: Receiver<std::time::Instant>,
    /// `--state-interval`, with a state file, live.
    save: Receiver<std::time::Instant>,
    state: Option<Arc<StateFile>>,
    /// Periodic saves, off this thread.
    saver: Option<Saver>,
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
        if self.save.try_recv().is_ok() {
            self.save_later(pipeline);
        }
    }

    /// A periodic save: a copy of the state goes to the saver thread.
    fn save_later(&self, pipeline: &mut Pipeline) {
        if let Some(saver) = &self.saver {
            let (windows, join) = pipeline.engine().state();
            saver.save(windows, join);
        }
    }

    /// After work that may have closed windows: the frontier goes to
    /// `PATH.closed`, and stdout is written (and flushed when a window
    /// closed).
    fn settle(&self, pipeline: &mut Pipeline, out: &mut impl Write) -> io::Result<()> {
        let closed = pipeline.engine().take_window_closed();
        if closed {
            if let Some(file) = &self.state {
                let frontier = pipeline.engine().state().0.closed_until().0;
                if let Err(e) = file.save_closed(frontier) {
                    log::error!(
                        "state file {}: cannot record closed windows: {e}",
                        file.path().display()
                    );
                }
            }
        }
        if closed || pipeline.output().len() >= WRITE_AT {
            write_out(pipeline, out, closed)?;
        }
        Ok(())
    }
}

/// Applies chunks as they come until the input ends; returns why, and
/// how the input stage should treat a record still open.
fn event_loop(
    pipeline: &mut Pipeline,
    chunks: &mut Chunks,
    clocks: &mut Clocks,
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
                        clocks.settle(pipeline, out)?;
                        continue;
                    }
                    recv(clocks.stats) -> _ => {
                        pipeline.engine().write_stats(Now::read().wall);
                        continue;
                    }
                    recv(clocks.save) -> _ => {
                        clocks.save_later(pipeline);
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
                clocks.settle(pipeline, out)?;
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

fn broken(e: &io::Error) {
    if e.kind() == io::ErrorKind::BrokenPipe {
        log::error!("stdout was closed (broken pipe); stopping");
    } else {
        log::error!("writing stdout failed: {e}; stopping");
    }
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
