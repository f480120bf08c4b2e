//! The checkpoint protocol (SPEC.md, "State across restarts" and "Crash
//! safety: the journal"): the one place that decides the order of journal
//! appends, rows, `PATH.closed`, the copy for a save and the save. The
//! event loop, stops and `flush` call it; none of them orders anything
//! itself. Without a state file it only writes the output.
//!
//! The order, which is what makes rows at-least-once with byte-identical
//! repeats and never lost:
//! 1. a chunk's changes are appended to the journal before any row it
//!    closed is written;
//! 2. rows are written and stdout flushed before `closed_until` is
//!    recorded in `PATH.closed`, and before a save's copy is taken;
//! 3. journal files are deleted only once a save that covers them is
//!    durable.

use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::clock::Now;
use crate::config::Options;
use crate::logging::RateLimit;
use crate::pipeline::Pipeline;

mod restore;
mod saver;

use super::journal_files::{self, Writer};
use super::snapshot::Identity;
use super::StateFile;
use saver::{save, Saver};

/// Output is written once this much has gathered (and whenever input
/// stalls, and after every close).
const WRITE_AT: usize = 128 * 1024;

/// Why a start failed.
#[derive(Debug)]
pub enum StartError {
    /// The state file cannot be used (exit status 2); the message names it.
    Refused(String),
    /// stdout failed while writing the rows of a replayed journal.
    Stdout(io::Error),
}

/// How a stop or `flush` went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The state was saved (or there is none), and no error came before.
    pub saved: bool,
    /// Everything reached stdout.
    pub written: bool,
}

/// See the module doc.
pub struct Checkpoint {
    held: Option<Held>,
    /// A window closed and its rows have not been flushed yet.
    rows_unflushed: bool,
}

/// Whether the journal file holds every change since the last save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behind {
    /// It does.
    No,
    /// An append failed: its entries are kept and tried again with the
    /// next chunk's, in order.
    Kept,
    /// Entries were dropped (more than `--journal-max` kept) or a partial
    /// entry could not be cut off: nothing more may follow them, so
    /// nothing is appended until a save covers every change.
    Blocked,
}

/// The state file and what goes with it.
struct Held {
    file: Arc<StateFile>,
    identity: Identity,
    /// The journal being written; created with its first entry.
    journal: Option<Writer>,
    /// The sequence number of the journal being written.
    seq: u64,
    journaling: bool,
    /// How far the journal file holds the engine's changes.
    behind: Behind,
    journal_max: u64,
    live: bool,
    /// The frontier last recorded in `PATH.closed`.
    recorded: i64,
    saver: Option<Saver>,
    /// Set by any failed write of the protocol: the exit status says so.
    failed: Arc<AtomicBool>,
    errors: Arc<Mutex<RateLimit>>,
}

impl Checkpoint {
    /// Without a state file: output only.
    pub fn none() -> Checkpoint {
        Checkpoint {
            held: None,
            rows_unflushed: false,
        }
    }

    /// Takes the state file of `options` (if any) and restores it into
    /// `pipeline`: the state file, then its journal replayed, then
    /// `PATH.closed`; the rows the replay produced are written to `out`.
    /// A state that starts empty is saved at once. `now` is `None` in a
    /// replay.
    pub fn restore(
        options: &Options,
        pipeline: &mut Pipeline,
        now: Option<Now>,
        out: &mut impl Write,
    ) -> Result<Checkpoint, StartError> {
        let Some(path) = &options.state_file else {
            return Ok(Checkpoint::none());
        };
        let file = Arc::new(StateFile::open(path).map_err(StartError::Refused)?);
        let mut held = Held {
            file,
            identity: Identity {
                id: None,
                journal: 0,
                wall: None,
            },
            journal: None,
            seq: 1,
            journaling: options.journal,
            behind: Behind::No,
            journal_max: options.journal_max.0 as u64,
            live: now.is_some(),
            recorded: i64::MIN,
            saver: None,
            failed: Arc::new(AtomicBool::new(false)),
            errors: Arc::new(Mutex::new(RateLimit::default())),
        };
        held.load(pipeline, now, out)?;
        let mut checkpoint = Checkpoint {
            held: Some(held),
            rows_unflushed: false,
        };
        if let Some(held) = &mut checkpoint.held {
            held.saver = Some(
                Saver::start(
                    held.file.clone(),
                    pipeline.engine().settings().clone(),
                    held.failed.clone(),
                    held.errors.clone(),
                )
                .map_err(|e| StartError::Refused(format!("cannot start: {e}")))?,
            );
            if held.journaling {
                pipeline.engine().keep_journal();
            }
        }
        Ok(checkpoint)
    }

    /// After work that may have changed the state (a chunk, a tick): the
    /// journal first, then the output (flushed after a close, or when
    /// `flush`), then `PATH.closed`; a save when the journal has outgrown
    /// `--journal-max`.
    pub fn settle(
        &mut self,
        pipeline: &mut Pipeline,
        out: &mut impl Write,
        flush: bool,
    ) -> io::Result<()> {
        if let Some(held) = &mut self.held {
            held.append_journal(pipeline);
        }
        let closed = pipeline.engine().take_window_closed();
        self.rows_unflushed |= closed;
        let flush = flush || closed;
        if flush || pipeline.output().len() >= WRITE_AT {
            write_out(pipeline, out, flush)?;
            if flush {
                self.rows_unflushed = false;
            }
        }
        let Some(held) = &mut self.held else {
            return Ok(());
        };
        if closed {
            held.record_closed(pipeline);
        }
        if held
            .journal
            .as_ref()
            .is_some_and(|j| j.bytes() > held.journal_max)
        {
            held.start_save(pipeline);
        }
        Ok(())
    }

    /// A self-metrics line, once every row before it is written and
    /// recorded as written: a reader that sees `lines_in=N` knows that what
    /// those N lines closed is not written again after a kill (SPEC.md, the
    /// property of the journal).
    pub fn write_stats(&mut self, pipeline: &mut Pipeline, out: &mut impl Write) -> io::Result<()> {
        self.settle(pipeline, out, true)?;
        pipeline.engine().write_stats(Now::read().wall);
        Ok(())
    }

    /// A periodic save: every row out first, then the copy (the saver
    /// writes it off this thread) and the next journal file.
    pub fn save_later(&mut self, pipeline: &mut Pipeline, out: &mut impl Write) -> io::Result<()> {
        self.settle(pipeline, out, true)?;
        if let Some(held) = &mut self.held {
            held.start_save(pipeline);
        }
        Ok(())
    }

    /// At a stop, once the input has ended: without a state file every
    /// window is closed (its rows are then written with the last output);
    /// with one, the journal and the rows go out, and the state after the
    /// last record is saved, open windows and all. `out` is `None` when
    /// stdout has failed: then the state is saved only if no closed
    /// window's rows are missing from it, or there is no journal to keep
    /// them.
    pub fn stop(&mut self, pipeline: &mut Pipeline, out: Option<&mut dyn Write>) -> Outcome {
        let Some(held) = &mut self.held else {
            pipeline.engine().close_all();
            return Outcome {
                saved: true,
                written: out.is_some(),
            };
        };
        held.append_journal(pipeline);
        self.rows_unflushed |= pipeline.engine().take_window_closed();
        let written = match out {
            Some(out) => match write_out(pipeline, out, true) {
                Ok(()) => {
                    self.rows_unflushed = false;
                    held.record_closed(pipeline);
                    true
                }
                Err(e) => {
                    broken(&e);
                    false
                }
            },
            None => false,
        };
        held.finish_saver();
        if self.rows_unflushed && held.journaling && held.behind != Behind::Blocked {
            log::error!(
                "state file {}: not saved: rows of closed windows did not reach stdout; \
                 the journal keeps them for the next start",
                held.file.path().display()
            );
            return Outcome {
                saved: false,
                written,
            };
        }
        if self.rows_unflushed {
            // Without a journal, the open windows are still worth saving.
            log::error!(
                "state file {}: rows of closed windows did not reach stdout and, \
                 without a journal to keep them, are lost",
                held.file.path().display()
            );
        }
        let saved = held.save_now(pipeline);
        Outcome {
            saved: saved && !held.failed.load(Ordering::Acquire),
            written,
        }
    }

    /// `flush`: closes every open window, writes the rows and flushes;
    /// only then saves the emptied state and records `PATH.closed`. If
    /// stdout fails the state file is left as it was.
    pub fn retire(&mut self, pipeline: &mut Pipeline, out: &mut impl Write) -> Outcome {
        pipeline.engine().close_all();
        pipeline.engine().take_window_closed();
        if let Err(e) = write_out(pipeline, out, true) {
            broken(&e);
            return Outcome {
                saved: false,
                written: false,
            };
        }
        let Some(held) = &mut self.held else {
            return Outcome {
                saved: true,
                written: true,
            };
        };
        held.finish_saver();
        let saved = held.save_now(pipeline);
        if saved {
            held.record_closed(pipeline);
        }
        Outcome {
            saved: saved && !held.failed.load(Ordering::Acquire),
            written: true,
        }
    }
}

impl Held {
    /// Appends the engine's journal entries of this chunk: one write. If
    /// that fails they are kept and tried again with the next chunk's, up
    /// to `--journal-max`; beyond that they are dropped, loudly, and
    /// nothing more is appended until a save covers every change
    /// ([`Behind`]).
    fn append_journal(&mut self, pipeline: &mut Pipeline) {
        let Some(changes) = pipeline.engine().journal() else {
            return;
        };
        if self.behind == Behind::Blocked {
            // The next save holds them.
            changes.clear();
            return;
        }
        let frames = changes.frames();
        if frames.is_empty() {
            return;
        }
        let result = match &mut self.journal {
            Some(writer) => writer.append(frames),
            None => {
                let id = self.identity.id.clone().unwrap_or_default();
                Writer::create(&self.file, &id, self.seq).and_then(|mut w| {
                    let r = w.append(frames);
                    self.journal = Some(w);
                    r
                })
            }
        };
        let pending = frames.len() as u64;
        let path = journal_files::path(&self.file, self.seq);
        let spent = self.journal.as_ref().is_some_and(Writer::spent);
        match result {
            Ok(()) => {
                changes.clear();
                self.behind = Behind::No;
            }
            Err(e) if pending <= self.journal_max && !spent => {
                self.behind = Behind::Kept;
                self.error(format_args!(
                    "cannot append to {}: {e}; {pending} bytes of entries kept to try again",
                    path.display()
                ));
            }
            Err(e) => {
                changes.clear();
                self.behind = Behind::Blocked;
                self.error(format_args!(
                    "cannot append to {}: {e}; {pending} bytes of entries dropped{}: \
                     no more entries until a save succeeds, and a crash before it \
                     loses what came since the last one",
                    path.display(),
                    if spent {
                        " (a partial entry could not be cut off)"
                    } else {
                        " (more than --journal-max)"
                    }
                ));
            }
        }
    }

    /// Records the engine's frontier in `PATH.closed` if it moved.
    fn record_closed(&mut self, pipeline: &mut Pipeline) {
        let frontier = pipeline.engine().state().0.closed_until().0;
        if frontier <= self.recorded {
            return;
        }
        let id = self.identity.id.clone().unwrap_or_default();
        let journaled = self.journaling && self.behind == Behind::No;
        match self.file.save_closed(&id, frontier, journaled) {
            Ok(()) => self.recorded = frontier,
            Err(e) => {
                let closed = self.file.neighbour(".closed");
                self.error(format_args!(
                    "cannot record closed windows in {}: {e}",
                    closed.display()
                ));
            }
        }
    }

    /// The identity a save now writes: the journal files written so far
    /// are covered (the current one only if it was begun, so that the
    /// numbers of the files stay without gaps).
    fn identity_now(&mut self) -> Identity {
        if self.live {
            let wall = Now::read().wall;
            self.identity.wall = Some(self.identity.wall.map_or(wall, |w| w.max(wall)));
        }
        let begun = u64::from(self.journal.is_some());
        Identity {
            journal: self.seq + begun - 1,
            ..self.identity.clone()
        }
    }

    /// After a save's copy: the next entries go to a new journal file.
    fn rotate(&mut self) {
        if self.journal.take().is_some() {
            self.seq += 1;
        }
    }

    /// Starts a save off this thread unless one is running: the copy is
    /// taken now, between two chunks, and the next journal file begins.
    /// While the journal is behind, the save is made on this thread
    /// instead (after any save under way): the entries not appended
    /// belong before the copy, and only a durable save may let them go.
    fn start_save(&mut self, pipeline: &mut Pipeline) {
        let Some(saver) = &self.saver else { return };
        if self.behind != Behind::No {
            saver.wait_idle();
            self.save_now(pipeline);
            return;
        }
        if saver.busy() {
            log::debug!("state save skipped: the previous one is still running");
            return;
        }
        let identity = self.identity_now();
        let (windows, join) = pipeline.engine().state();
        if let Some(saver) = &self.saver {
            saver.save(windows, join, identity);
        }
        self.rotate();
    }

    /// Saves on this thread (at start, stop, `flush`); on success the
    /// journal files it covers are deleted. `false` if it failed (logged).
    fn save_now(&mut self, pipeline: &mut Pipeline) -> bool {
        let identity = self.identity_now();
        let engine = pipeline.engine();
        let (windows, join) = engine.state();
        match save(&self.file, engine.settings(), &identity, windows, join) {
            Ok(()) => {
                self.rotate();
                // Durable, and holding the entries a failed append kept:
                // appended after it, they would be applied twice.
                if let Some(changes) = pipeline.engine().journal() {
                    changes.clear();
                }
                self.behind = Behind::No;
                true
            }
            Err(e) => {
                self.error(format_args!("save failed: {e}"));
                false
            }
        }
    }

    fn finish_saver(&mut self) {
        if let Some(saver) = self.saver.take() {
            saver.finish();
        }
    }

    fn error(&self, message: std::fmt::Arguments<'_>) {
        self.failed.store(true, Ordering::Release);
        error(&self.errors, self.file.path(), message);
    }
}

/// An `E!` line about the state file, rate-limited like every repeated
/// message.
fn error(limit: &Mutex<RateLimit>, path: &Path, message: std::fmt::Arguments<'_>) {
    let allowed = limit
        .lock()
        .map_or(Some(0), |mut l| l.allow(Instant::now()));
    match allowed {
        Some(0) => log::error!("state file {}: {message}", path.display()),
        Some(n) => log::error!(
            "state file {}: {message} ({n} similar errors suppressed)",
            path.display()
        ),
        None => {}
    }
}

/// Writes what the engine produced; flushes when asked.
fn write_out(
    pipeline: &mut Pipeline,
    out: &mut (impl Write + ?Sized),
    flush: bool,
) -> io::Result<()> {
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

/// The `E!` line for a stdout that failed.
pub fn broken(e: &io::Error) {
    if e.kind() == io::ErrorKind::BrokenPipe {
        log::error!("stdout was closed (broken pipe); stopping");
    } else {
        log::error!("writing stdout failed: {e}; stopping");
    }
}
