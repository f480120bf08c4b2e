//! The restore at a start, in SPEC.md's order: the state file, then its
//! journal replayed, then `PATH.closed` checked against what they reached.

use std::io::Write;
use std::sync::Arc;

use crate::clock::Now;
use crate::join::Join;
use crate::journal::{self, Tail};
use crate::pipeline::Pipeline;
use crate::schema::WindowEnd;
use crate::settings::Settings;

use super::super::journal_files;
use super::super::snapshot::{self, Bound, Identity};
use super::super::{Closed, StateId};
use super::{write_out, Held, StartError};

impl Held {
    /// The restore, in SPEC.md's order.
    pub(super) fn load(
        &mut self,
        pipeline: &mut Pipeline,
        now: Option<Now>,
        out: &mut impl Write,
    ) -> Result<(), StartError> {
        let settings = pipeline.engine().settings().clone();
        let wall = now.map(|n| n.wall);
        let Some(restored) = self.read_state(&settings, wall)? else {
            self.start_empty(pipeline, wall);
            return Ok(());
        };
        let legacy = restored.identity.id.is_none();
        self.identity = restored.identity;
        self.seq = self.identity.journal + 1;
        let join = Join::from_caches(settings.clone(), restored.caches);
        pipeline.engine().restore(restored.windows, join, now);

        let closed = self.closed_file(wall, &settings);
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
        let (written, unchecked) = self.accept_closed(pipeline, closed, &replayed, wall);
        let engine = pipeline.engine();
        let rows = engine.keep_replayed_rows(written);
        let dropped = engine.drop_written(written);
        self.recorded = written.0;
        write_out(pipeline, out, true).map_err(StartError::Stdout)?;
        if legacy {
            // Format 1: from now on the state and its neighbours carry an id.
            self.identity.id = Some(StateId::new());
            self.recorded = i64::MIN;
        }
        if legacy || replayed.files > 0 || unchecked {
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
        self.log_restore(pipeline, &replayed, rows, dropped);
        Ok(())
    }

    /// The state file, decoded and checked; one that cannot be used is
    /// moved to `.bad` (`None`: start empty). Refused if it cannot be read
    /// or moved.
    fn read_state(
        &self,
        settings: &Arc<Settings>,
        wall: Option<i64>,
    ) -> Result<Option<snapshot::Restored>, StartError> {
        let Some(bytes) = self.file.read().map_err(StartError::Refused)? else {
            return Ok(None);
        };
        match snapshot::decode(&bytes).and_then(|s| snapshot::restore(s, settings, wall)) {
            Ok(r) => Ok(Some(r)),
            Err(reason) => {
                let p = self.file.path().display();
                let bad = self.file.quarantine(self.file.path()).map_err(|e| {
                    StartError::Refused(format!(
                        "state file {p}: {reason}; cannot move it aside: {e}"
                    ))
                })?;
                log::warn!(
                    "state file {p}: {reason}; moved to {}, starting empty",
                    bad.display()
                );
                Ok(None)
            }
        }
    }

    /// The frontier up to which rows were written, per `PATH.closed`, and
    /// whether it was taken without the state's bound. PATH.closed can
    /// only say what the state and its journal reached if they hold every
    /// change: then a frontier beyond that is refused. A journal-less
    /// writer, entries it did not append, or journal files set aside leave
    /// it further on, and then it is taken as it is (its own checks
    /// passed), and the state carries it like a wall clock.
    fn accept_closed(
        &mut self,
        pipeline: &mut Pipeline,
        closed: Option<(i64, bool)>,
        replayed: &Replayed,
        wall: Option<i64>,
    ) -> (WindowEnd, bool) {
        let engine = pipeline.engine();
        let settings = engine.settings();
        let (windows, _) = engine.state();
        let frontier = windows.closed_until().0;
        let bound = Bound::new(
            settings.period,
            windows.max_ts(),
            self.identity.wall,
            wall,
            settings.max_future,
        );
        let (written, unchecked) = match closed {
            Some((w, journaled)) if w > frontier && journaled && replayed.whole => {
                match bound.check("frontier", w) {
                    Ok(()) => (Some(w), false),
                    Err(why) => {
                        self.file.quarantine_closed(&format!("is refused: {why}"));
                        (None, false)
                    }
                }
            }
            Some((w, _)) if w > frontier => {
                self.identity.wall = self.identity.wall.max(Some(w));
                (Some(w), true)
            }
            w => (w.map(|(w, _)| w), false),
        };
        (WindowEnd(written.unwrap_or(i64::MIN)), unchecked)
    }

    /// The restore's `I!` line, and a `W!` if the state is above
    /// `--max-series`.
    fn log_restore(&self, pipeline: &mut Pipeline, replayed: &Replayed, rows: u64, dropped: usize) {
        let p = self.file.path().display();
        let engine = pipeline.engine();
        let (windows, join) = engine.state();
        let open = windows.open().count();
        log::info!(
            "state file {p}: restored {open} windows, {} cache entries, max_ts {}; \
             replayed {} journal entries{}{}",
            join.len(),
            windows.max_ts().map_or("none".into(), |t| t.to_string()),
            replayed.entries,
            match replayed.files {
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
        let cap = engine.settings().max_series;
        let held = windows.pairs() + join.len();
        if cap > 0 && held > cap {
            log::warn!(
                "state file {p}: restored state holds {held} (series, window) pairs and \
                 cache entries, above --max-series {cap}: new series are refused until it shrinks"
            );
        }
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

    /// The journal files after the ones the state covers, in order (the
    /// covered ones, left by a save whose deletes did not finish, go).
    fn pending_journals(&self) -> Vec<(u64, std::path::PathBuf)> {
        let covered = self.identity.journal;
        let mut pending = Vec::new();
        for (seq, path) in journal_files::list(&self.file) {
            if seq > covered {
                pending.push((seq, path));
            } else if let Err(e) = std::fs::remove_file(&path) {
                log::warn!(
                    "state file {}: cannot delete {}: {e}",
                    self.file.path().display(),
                    path.display()
                );
            }
        }
        pending
    }

    /// Counts this attempt in `PATH.replaying`; `false` (and the files set
    /// aside) if two replays of them already began and never finished: one
    /// bad entry must not make a crash loop.
    fn claim_replay(&self, pending: &[(u64, std::path::PathBuf)]) -> bool {
        let marker = self.file.neighbour(".replaying");
        let attempts: u32 = std::fs::read_to_string(&marker)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        if attempts >= 2 {
            for (_, path) in pending {
                self.file
                    .set_aside(path, "was not replayed: two replays of it did not finish");
            }
            let _ = std::fs::remove_file(&marker);
            return false;
        }
        if let Err(e) = std::fs::write(&marker, format!("{}\n", attempts + 1)) {
            log::warn!(
                "state file {}: cannot write {}: {e}",
                self.file.path().display(),
                marker.display()
            );
        }
        true
    }

    /// Replays the journal files after the snapshot, in order; sets aside
    /// those that cannot be replayed.
    fn replay_journals(&mut self, pipeline: &mut Pipeline) -> Replayed {
        let p = self.file.path().display().to_string();
        let covered = self.identity.journal;
        let pending = self.pending_journals();
        let mut replayed = Replayed {
            entries: 0,
            files: 0,
            whole: true,
            wall: None,
        };
        if pending.is_empty() {
            return replayed;
        }
        if !self.claim_replay(&pending) {
            replayed.whole = false;
            return replayed;
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
            replayed.files += 1;
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
}

/// What the replay of the journal files at a start did.
struct Replayed {
    /// Entries replayed.
    entries: u64,
    /// How many files were replayed (in whole or up to damage): a save
    /// covers them.
    files: u64,
    /// Every file after the state was replayed to its end.
    whole: bool,
    /// The newest wall clock the entries carry.
    wall: Option<i64>,
}
