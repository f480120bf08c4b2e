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
use crate::join::{Caches, Join};
use crate::journal::{self, Tail};
use crate::logging::RateLimit;
use crate::pipeline::Pipeline;
use crate::schema::WindowEnd;
use crate::settings::Settings;
use crate::window::Windows;

use super::journal_files::{self, Writer};
use super::snapshot::{self, Bound, Identity};
use super::{Closed, StateFile, StateId};

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
    /// The restore, in SPEC.md's order.
    fn load(
        &mut self,
        pipeline: &mut Pipeline,
        now: Option<Now>,
        out: &mut impl Write,
    ) -> Result<(), StartError> {
        let p = self.file.path().display().to_string();
        let settings = pipeline.engine().settings().clone();
        let wall = now.map(|n| n.wall);
        let restored = match self.file.read().map_err(StartError::Refused)? {
            None => None,
            Some(bytes) => {
                match snapshot::decode(&bytes).and_then(|s| snapshot::restore(s, &settings, wall)) {
                    Ok(r) => Some(r),
                    Err(reason) => {
                        let bad = self.file.quarantine(self.file.path()).map_err(|e| {
                            StartError::Refused(format!(
                                "state file {p}: {reason}; cannot move it aside: {e}"
                            ))
                        })?;
                        log::warn!(
                            "state file {p}: {reason}; moved to {}, starting empty",
                            bad.display()
                        );
                        None
                    }
                }
            }
        };
        let Some(restored) = restored else {
            self.start_empty(pipeline, wall);
            return Ok(());
        };
        let legacy = restored.identity.id.is_none();
        self.identity = restored.identity;
        self.seq = self.identity.journal + 1;
        let join = Join::from_caches(settings.clone(), restored.caches);
        pipeline.engine().restore(restored.windows, join, now);

        let written = self.closed_file(wall, &settings);
        let replayed = self.replay_journals(pipeline);
        // The replay finished: a crash from here on is not its doing.
        let _ = std::fs::remove_file(self.file.neighbour(".replaying"));
        // Idle advance moved the frontier by the wall clocks replayed (live,
        // none may lie beyond --max-future).
        let replayed_wall = match wall {
            Some(now) => replayed
                .wall
                .map(|w| w.min(now.saturating_add(settings.max_future))),
            None => replayed.wall,
        };
        self.identity.wall = self.identity.wall.max(replayed_wall);
        let engine = pipeline.engine();
        let (max_ts, frontier) = {
            let (windows, _) = engine.state();
            (windows.max_ts(), windows.closed_until())
        };
        // PATH.closed can only say what the state and its journal reached,
        // if they hold every change: a journal-less process, entries that
        // were not appended, or journal files set aside leave it further
        // on, and then it is taken as it is (its own checks passed).
        let bound = Bound::new(
            settings.period,
            max_ts,
            self.identity.wall,
            wall,
            settings.max_future,
        );
        let mut unchecked = false;
        let written = match written {
            Some((w, journaled)) if w > frontier.0 && journaled && replayed.whole => {
                match bound.check("frontier", w) {
                    Ok(()) => Some(w),
                    Err(why) => {
                        self.file.quarantine_closed(&format!("is refused: {why}"));
                        None
                    }
                }
            }
            Some((w, _)) if w > frontier.0 => {
                // A frontier the state's own bound cannot vouch for: the
                // saved state carries it, as it does the newest wall clock.
                unchecked = true;
                self.identity.wall = self.identity.wall.max(Some(w));
                Some(w)
            }
            w => w.map(|(w, _)| w),
        };
        let written = WindowEnd(written.unwrap_or(i64::MIN));
        let rows = engine.keep_replayed_rows(written);
        let dropped = engine.drop_written(written);
        self.recorded = written.0;
        write_out(pipeline, out, true).map_err(StartError::Stdout)?;
        if legacy {
            // Format 1: from now on the state and its neighbours carry an id.
            self.identity.id = Some(StateId::new());
            self.recorded = i64::MIN;
        }
        if legacy || !replayed.files.is_empty() || unchecked {
            // Saved at once, so that the replayed files can go and a
            // frontier taken unchecked holds in the state itself. If the
            // save fails (logged) the files stay, and the new journal takes
            // the first number free after them. PATH.closed comes after the
            // save: a new id must name a state that exists.
            if !self.save_now(pipeline) {
                self.seq = journal_files::first_free(&self.file, self.identity.journal);
            }
            self.record_closed(pipeline);
        }
        let engine = pipeline.engine();
        let (windows, join) = engine.state();
        let open = windows.open().count();
        log::info!(
            "state file {p}: restored {open} windows, {} cache entries, max_ts {}; \
             replayed {} journal entries{}{}",
            join.len(),
            windows.max_ts().map_or("none".into(), |t| t.to_string()),
            replayed.entries,
            match replayed.files.len() {
                0 => String::new(),
                n => format!(" from {n} files, {rows} rows written"),
            },
            match dropped {
                0 => String::new(),
                n => format!(
                    " ({n} windows already written, per {}, dropped)",
                    self.file.neighbour(".closed").display()
                ),
            }
        );
        let cap = settings.max_series;
        let held = windows.pairs() + join.len();
        if cap > 0 && held > cap {
            log::warn!(
                "state file {p}: restored state holds {held} (series, window) pairs and \
                 cache entries, above --max-series {cap}: new series are refused until it shrinks"
            );
        }
        Ok(())
    }

    /// No usable state: whatever lies beside PATH belongs to no state and
    /// is set aside; a new state is made and saved at once, so that what
    /// this process journals and records belongs to it.
    fn start_empty(&mut self, pipeline: &mut Pipeline, wall: Option<i64>) {
        let p = self.file.path().display().to_string();
        self.file
            .quarantine_closed("belongs to no state file (its state is gone)");
        for (_, journal) in journal_files::list(&self.file) {
            self.file
                .set_aside(&journal, "belongs to no state file (its state is gone)");
        }
        let _ = std::fs::remove_file(self.file.neighbour(".replaying"));
        self.identity = Identity {
            id: Some(StateId::new()),
            journal: 0,
            wall,
        };
        self.seq = 1;
        log::info!("state file {p}: none, starting empty");
        self.save_now(pipeline);
    }

    /// `PATH.closed`, if it belongs to this state and is plausible, and
    /// whether its writer had journaled every change up to it; set aside
    /// otherwise.
    fn closed_file(&self, wall: Option<i64>, settings: &Settings) -> Option<(i64, bool)> {
        let ours = match self.file.read_closed() {
            Closed::None => return None,
            Closed::Unreadable => Err("is not a frontier this program wrote".to_string()),
            Closed::Frontier { id, .. } if id != self.identity.id => Err(format!(
                "belongs to another state ({}, not {})",
                id.map_or("none".into(), |i| i.0),
                self.identity
                    .id
                    .as_ref()
                    .map_or("none".into(), |i| i.0.clone())
            )),
            Closed::Frontier { value: v, .. } if v.rem_euclid(settings.period) != 0 => {
                Err(format!("frontier {v} is not aligned to the period"))
            }
            Closed::Frontier {
                value: v,
                journaled,
                ..
            } => Bound::new(
                settings.period,
                None,
                Some(i64::MAX),
                wall,
                settings.max_future,
            )
            .check("frontier", v)
            .map(|()| (v, journaled))
            .map_err(|why| format!("is refused: {why}")),
        };
        match ours {
            Ok(v) => Some(v),
            Err(why) => {
                self.file.quarantine_closed(&why);
                None
            }
        }
    }

    /// Replays the journal files after the snapshot, in order; sets aside
    /// those that cannot be replayed.
    fn replay_journals(&mut self, pipeline: &mut Pipeline) -> Replayed {
        let p = self.file.path().display().to_string();
        let covered = self.identity.journal;
        let mut pending = Vec::new();
        for (seq, path) in journal_files::list(&self.file) {
            if seq <= covered {
                if let Err(e) = std::fs::remove_file(&path) {
                    log::warn!("state file {p}: cannot delete {}: {e}", path.display());
                }
            } else {
                pending.push((seq, path));
            }
        }
        let mut replayed = Replayed {
            entries: 0,
            files: Vec::new(),
            whole: true,
            wall: None,
        };
        if pending.is_empty() {
            return replayed;
        }
        let marker = self.file.neighbour(".replaying");
        let attempts: u32 = std::fs::read_to_string(&marker)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        if attempts >= 2 {
            for (_, path) in &pending {
                self.file
                    .set_aside(path, "was not replayed: two replays of it did not finish");
            }
            let _ = std::fs::remove_file(&marker);
            replayed.whole = false;
            return replayed;
        }
        if let Err(e) = std::fs::write(&marker, format!("{}\n", attempts + 1)) {
            log::warn!("state file {p}: cannot write {}: {e}", marker.display());
        }
        let mut expected = covered + 1;
        for (seq, path) in pending {
            if !replayed.whole {
                self.file
                    .set_aside(&path, "follows a journal that could not be replayed");
                continue;
            }
            let read = match journal_files::read(&path) {
                Ok(read) => read,
                Err(e) => {
                    // Set aside, so that a new journal can take its number.
                    self.file.set_aside(&path, &format!("cannot be read: {e}"));
                    replayed.whole = false;
                    continue;
                }
            };
            let why = if read.id.is_none() || read.seq != Some(seq) {
                Some("has no journal header of this program".to_string())
            } else if read.id != self.identity.id {
                Some(format!(
                    "belongs to another state ({})",
                    read.id.map_or("none".into(), |i| i.0)
                ))
            } else if seq != expected {
                Some(format!("follows a gap (journal {expected} is missing)"))
            } else {
                None
            };
            if let Some(why) = why {
                self.file.set_aside(&path, &why);
                replayed.whole = false;
                continue;
            }
            let (entries, tail) = journal::frames(&read.frames);
            replayed.wall = entries
                .iter()
                .filter_map(|e| e.wall())
                .fold(replayed.wall, |w, e| w.max(Some(e)));
            replayed.entries += pipeline.replay_journal(entries);
            // Consumed, even if damaged: a save at load covers its number.
            replayed.files.push(seq);
            expected += 1;
            match tail {
                Tail::Whole => {}
                Tail::Partial(bytes) => log::warn!(
                    "state file {p}: journal {seq} ends in a partial entry of {bytes} bytes, dropped"
                ),
                Tail::Damaged(at) => {
                    self.file.set_aside(
                        &path,
                        &format!("is damaged at byte {at} of its entries: replayed up to there"),
                    );
                    replayed.whole = false;
                }
            }
        }
        self.seq = self.seq.max(expected);
        replayed
    }

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

/// Encodes and writes a state durably, then deletes the journal files it
/// covers.
fn save(
    file: &StateFile,
    settings: &Settings,
    identity: &Identity,
    windows: &Windows,
    join: &Join,
) -> io::Result<()> {
    let bytes = snapshot::encode(&snapshot::capture(settings, identity, windows, join));
    file.save(&bytes)?;
    journal_files::delete_through(file, identity.journal)
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

/// What the replay of the journal files at a start did.
struct Replayed {
    /// Entries replayed.
    entries: u64,
    /// The files replayed (in whole or up to damage): a save covers them.
    files: Vec<u64>,
    /// Every file after the state was replayed to its end.
    whole: bool,
    /// The newest wall clock the entries carry.
    wall: Option<i64>,
}

/// A save's copy, on its way to the saver thread.
type Job = (Windows, Caches, Identity);

/// Periodic saves off the event loop: the loop hands over a copy of the
/// state (the only stall it sees, measured in the README) and this thread
/// captures, encodes and writes it, then deletes the journal files it
/// covers.
struct Saver {
    jobs: Option<crossbeam_channel::Sender<Job>>,
    busy: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Saver {
    fn start(
        file: Arc<StateFile>,
        settings: Arc<Settings>,
        failed: Arc<AtomicBool>,
        errors: Arc<Mutex<RateLimit>>,
    ) -> io::Result<Saver> {
        let (jobs, rx) = crossbeam_channel::bounded::<Job>(1);
        let busy = Arc::new(AtomicBool::new(false));
        let done = busy.clone();
        let thread = std::thread::Builder::new()
            .name("state-saver".into())
            .spawn(move || {
                for (windows, caches, identity) in rx {
                    let join = Join::from_caches(settings.clone(), caches);
                    if let Err(e) = save(&file, &settings, &identity, &windows, &join) {
                        failed.store(true, Ordering::Release);
                        error(&errors, file.path(), format_args!("save failed: {e}"));
                    }
                    done.store(false, Ordering::Release);
                }
            })?;
        Ok(Saver {
            jobs: Some(jobs),
            busy,
            thread: Some(thread),
        })
    }

    fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Waits until no save is under way (only while the journal is
    /// behind, when a save must be made on the loop's thread and must not
    /// race this one for `PATH.tmp`).
    fn wait_idle(&self) {
        while self.busy() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    fn save(&self, windows: &Windows, join: &Join, identity: Identity) {
        let Some(jobs) = &self.jobs else { return };
        self.busy.store(true, Ordering::Release);
        if jobs
            .try_send((windows.clone(), join.caches(), identity))
            .is_err()
        {
            self.busy.store(false, Ordering::Release);
        }
    }

    /// Waits for a save under way, then stops the thread, so that an
    /// older state never lands after the one at stop.
    fn finish(mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
