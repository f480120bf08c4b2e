//! The engine: complete records in, line protocol out. It accounts for
//! every record (SPEC.md, "What happens to each line"), passes lines
//! through byte for byte, decides where each delay point goes (its
//! window, late or skipped), moves the watermark, and has the join write
//! the rows of every window that closes.
//!
//! It reads no input and writes nothing but its output buffer; the only
//! clock it sees is the [`Now`] its caller passes (none in a replay), so a
//! replay depends on the input bytes alone. (Warnings go to the logger,
//! rate-limited by wall time.) An [`Observer`] may be told its decisions
//! (`analyze` is); the processor's engine has none (`()`).

use std::sync::Arc;
use std::time::Instant;

use crate::clock::Now;
use crate::input::{Class, Record};
use crate::join::Join;
use crate::journal::{Changes, Entry, NO_WALL};
use crate::lateness::Lateness;
use crate::logging::Warnings;
use crate::observe::{Observer, Placed};
use crate::records::DelayPoint;
use crate::schema::{WindowEnd, WindowStart};
use crate::settings::Settings;
use crate::stats::{Counters, Gauges, SkipReason};
use crate::window::{Refused, Window, Windows};

/// What became of a delay point; where it was placed unless skipped.
enum Fate {
    Aggregated(Spot),
    Late(Spot),
    Skipped(SkipReason),
}

/// Where a placed point went, and how late it came.
struct Spot {
    ts: i64,
    window: WindowStart,
    lateness: u64,
}

/// The engine. See the module doc.
pub struct Engine<O: Observer = ()> {
    settings: Arc<Settings>,
    windows: Windows,
    join: Join,
    counters: Counters,
    lateness: Lateness,
    out: Vec<u8>,
    /// When the last point was accepted into a window (live).
    last_accept: Option<Instant>,
    /// Whether a window closed since [`Engine::take_window_closed`].
    window_closed: bool,
    warnings: Warnings,
    observer: O,
    /// The journal's changes not yet written, with a state file.
    journal: Option<Changes>,
    /// While a journal is replayed ([`Engine::replay`]): nothing passes
    /// through and nothing is journaled again.
    replaying: bool,
    /// The windows a replay closed: their end, their rows' bytes in `out`
    /// and how many rows.
    replayed: Vec<(WindowEnd, std::ops::Range<usize>, u64)>,
}

impl Engine {
    /// A new engine with nothing open.
    pub fn new(settings: Arc<Settings>) -> Engine {
        Engine::observed(settings, ())
    }
}

impl<O: Observer> Engine<O> {
    /// A new engine that tells `observer` what it decides. The join then
    /// also remembers which cache entries expired.
    pub fn observed(settings: Arc<Settings>, observer: O) -> Engine<O> {
        let mut join = Join::new(settings.clone());
        if O::LISTENS {
            join.remember_expired();
        }
        Engine {
            lateness: Lateness::new(settings.grace, settings.period, settings.unit),
            windows: Windows::new(settings.period),
            join,
            settings,
            counters: Counters::default(),
            out: Vec::with_capacity(1 << 17),
            last_accept: None,
            window_closed: false,
            warnings: Warnings::default(),
            observer,
            journal: None,
            replaying: false,
            replayed: Vec::new(),
        }
    }

    /// The observer.
    pub fn observer(&self) -> &O {
        &self.observer
    }

    /// Accounts for one record and acts on it. `now` is `None` in a replay.
    pub fn apply(&mut self, record: Record<'_>, now: Option<Now>) {
        self.counters.lines_in += 1;
        match record.class {
            Class::Ignored => self.counters.ignored += 1,
            Class::Other { body } => {
                self.counters.other += 1;
                self.pass(body);
            }
            Class::Others { bytes, records } => {
                // A run of pass-through lines, written with one copy
                // (`lines_in` has counted the first of them above).
                self.counters.lines_in += records - 1;
                self.counters.other += records;
                self.counters.passed += records;
                self.out.extend_from_slice(bytes);
            }
            Class::Delay { body, point, key } => self.delay(point, key, record.line, body, now),
            Class::Invalid { err, text } => {
                self.counters.invalid += 1;
                self.warnings
                    .invalid(record.line, err, text, self.settings.max_line);
            }
        }
    }

    /// The window state and the caches, for a state file.
    pub fn state(&self) -> (&Windows, &Join) {
        (&self.windows, &self.join)
    }

    /// Takes over the window state and caches a state file restored. Live,
    /// `now` starts the idle advance from this moment.
    pub fn restore(&mut self, windows: Windows, join: Join, now: Option<Now>) {
        self.windows = windows;
        self.join = join;
        if self.windows.max_ts().is_some() {
            self.last_accept = now.map(|n| n.mono);
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    /// Closes every open window and writes its rows (at stop).
    pub fn close_all(&mut self) {
        let closed = self.windows.close_all();
        self.close(closed);
    }

    /// Advances the watermark by wall time when no point has been accepted
    /// for `--idle` (live only).
    pub fn tick(&mut self, now: Now) {
        let (Some(max_ts), Some(last)) = (self.windows.max_ts(), self.last_accept) else {
            return;
        };
        let quiet = now.mono.saturating_duration_since(last);
        let quiet = i64::try_from(quiet.as_nanos()).unwrap_or(i64::MAX);
        if quiet < self.settings.idle {
            return;
        }
        let watermark = max_ts
            .saturating_add(quiet)
            .saturating_sub(self.settings.grace);
        let before = self.windows.closed_until();
        let capped = self.raise_watermark(watermark, Some(now));
        if self.windows.closed_until() != before {
            if let Some(journal) = &mut self.journal {
                journal.advance(capped);
            }
        }
    }

    /// Keeps a journal of every change of state from now on
    /// ([`Engine::journal`] gives it out).
    pub fn keep_journal(&mut self) {
        self.journal = Some(Changes::default());
    }

    /// The changes not yet written to the journal file, if one is kept.
    pub fn journal(&mut self) -> Option<&mut Changes> {
        self.journal.as_mut()
    }

    /// Replays journal entries that an earlier process applied, as a
    /// replay: the entries carry every wall clock and advance. Nothing is
    /// passed through, nothing is journaled again, nothing is counted (the
    /// earlier process counted it); the rows of the windows it closes are
    /// held until [`Engine::keep_replayed_rows`]. `apply` parses a chunk's
    /// records and hands them to the engine (the input stage's job).
    /// Returns the entries replayed.
    pub fn replay<'a>(
        &mut self,
        entries: impl IntoIterator<Item = Entry<'a>>,
        mut apply: impl FnMut(&mut Self, &'a [u8], Option<Now>),
    ) -> u64 {
        let counted = self.counters.clone();
        let journal = self.journal.take();
        self.replaying = true;
        let mut replayed = 0;
        for entry in entries {
            replayed += 1;
            match entry {
                Entry::Chunk { wall, records } => {
                    let now = wall.map(|wall| Now {
                        wall,
                        mono: Instant::now(),
                    });
                    apply(self, records, now);
                }
                Entry::Advance(watermark) => {
                    self.raise_watermark(watermark, None);
                }
            }
        }
        self.replaying = false;
        self.journal = journal;
        self.counters = counted;
        self.window_closed = false;
        replayed
    }

    /// Keeps the rows of the windows replayed that end after `written`
    /// (those up to it were written by an earlier process, per
    /// `PATH.closed`) and counts them; returns the rows kept.
    pub fn keep_replayed_rows(&mut self, written: WindowEnd) -> u64 {
        let mut kept = Vec::with_capacity(self.out.len());
        let mut rows = 0;
        for (end, range, n) in std::mem::take(&mut self.replayed) {
            if end > written {
                kept.extend_from_slice(&self.out[range]);
                rows += n;
                self.counters.windows_closed += 1;
                self.counters.rows_written += n;
                self.window_closed = true;
            }
        }
        self.out = kept;
        rows
    }

    /// Drops the open windows ending at or before `written` (their rows
    /// were written, per `PATH.closed`) and raises the frontier to it.
    /// Returns how many were dropped.
    pub fn drop_written(&mut self, written: WindowEnd) -> usize {
        self.windows.drop_until(written)
    }

    /// Appends the self-metrics line, stamped `timestamp_ns` (written in
    /// the input precision), with the state sizes now and the lateness of
    /// the points since the last line, which then starts over.
    pub fn write_stats(&mut self, timestamp_ns: i64) {
        let ts = timestamp_ns.div_euclid(self.settings.unit);
        let gauges = Gauges {
            open_series: self.windows.pairs(),
            cache_entries: self.join.len(),
            grace: self.settings.grace,
            lateness: self.lateness.take_interval(),
        };
        self.counters
            .write(&mut self.out, &self.settings.stats_measurement, gauges, ts);
    }

    /// How late the points came (see [`crate::lateness`]).
    pub fn lateness(&self) -> &Lateness {
        &self.lateness
    }

    /// The newest event time seen, the timestamp of self-metrics in a replay.
    pub fn event_time(&self) -> i64 {
        self.windows.max_ts().unwrap_or(0)
    }

    /// The output produced so far; the caller writes and clears it.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Whether a window closed since the last call (the caller flushes).
    pub fn take_window_closed(&mut self) -> bool {
        std::mem::take(&mut self.window_closed)
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Warnings held back by rate limits and not yet announced.
    pub fn suppressed_warnings(&self) -> u64 {
        self.warnings.suppressed()
    }

    /// Writes a line through: its bytes and one `\n`.
    fn pass(&mut self, body: &[u8]) {
        if self.replaying {
            // The process that read it passed it through.
            return;
        }
        self.counters.passed += 1;
        self.out.extend_from_slice(body);
        self.out.push(b'\n');
    }

    fn delay(
        &mut self,
        point: &DelayPoint,
        key: Option<&[u8]>,
        line: u64,
        body: &[u8],
        now: Option<Now>,
    ) {
        let fate = self.place(point, key, line, now);
        match fate {
            Fate::Aggregated(..) => self.counters.aggregated += 1,
            Fate::Late(..) => {
                self.counters.late += 1;
                self.warnings.late(line);
            }
            Fate::Skipped(reason) => {
                self.counters.skip(reason);
                if !matches!(reason, SkipReason::MissingTag | SkipReason::NoNumericField) {
                    self.warnings.skipped(line, reason);
                }
            }
        }
        if let (Fate::Aggregated(spot) | Fate::Late(spot), Some(key)) = (&fate, key) {
            self.observer.placed(&Placed {
                kind: point.kind,
                key,
                ts: spot.ts,
                window: spot.window,
                late: matches!(fate, Fate::Late(..)),
                lateness: spot.lateness,
            });
        }
        if !self.settings.drop_original {
            self.pass(body);
        }
        if let Fate::Aggregated(..) = fate {
            if let Some(journal) = &mut self.journal {
                journal.record(now.map_or(NO_WALL, |n| n.wall), body);
            }
            self.last_accept = now.map(|n| n.mono);
            if let Some(max_ts) = self.windows.max_ts() {
                self.raise_watermark(max_ts.saturating_sub(self.settings.grace), now);
            }
        }
    }

    /// Decides where a delay point goes and adds it to its window: the
    /// ladder of SPEC.md's skip reasons, in the order they are checked.
    fn place(&mut self, p: &DelayPoint, key: Option<&[u8]>, line: u64, now: Option<Now>) -> Fate {
        self.note_non_numeric(p, key, line);
        let Some(key) = key else {
            let measurement = self.settings.measurement(p.kind);
            self.warnings
                .missing_tag(line, p.kind, measurement, p.missing_tags);
            return Fate::Skipped(SkipReason::MissingTag);
        };
        if p.values.iter().all(Option::is_none) {
            return Fate::Skipped(SkipReason::NoNumericField);
        }
        let Some(ts) = self.event_time_of(p, now) else {
            return Fate::Skipped(SkipReason::NoTimestamp);
        };
        let Some((ts, start)) = i64::try_from(ts)
            .ok()
            .and_then(|ts| Some((ts, self.windows.window_of(ts)?)))
        else {
            return Fate::Skipped(SkipReason::OutOfRange);
        };
        if let Some(now) = now {
            if i128::from(ts) > i128::from(now.wall) + i128::from(self.settings.max_future) {
                return Fate::Skipped(SkipReason::Future);
            }
        }
        let cap = self.settings.max_series;
        let room = cap == 0 || self.windows.pairs() + self.join.len() < cap;
        let newest = self.windows.max_ts();
        let late = match self.windows.add(p.kind, key, ts, start, &p.values, room) {
            Ok(()) => false,
            Err(Refused::Late) => true,
            Err(Refused::Full) => return Fate::Skipped(SkipReason::MaxSeries),
        };
        let noted = self
            .lateness
            .note(newest, ts, start.end(self.settings.period));
        if let (Some(suggested), false) = (noted.warn, O::LISTENS) {
            self.warnings
                .grace_headroom(line, noted.lateness, self.settings.grace, suggested);
        }
        let spot = Spot {
            ts,
            window: start,
            lateness: noted.lateness,
        };
        if late {
            Fate::Late(spot)
        } else {
            Fate::Aggregated(spot)
        }
    }

    /// Counts the averaged fields that held a bool or string.
    fn note_non_numeric(&mut self, p: &DelayPoint, key: Option<&[u8]>, line: u64) {
        for slot in 0..p.kind.fields().len() {
            if p.non_numeric & (1 << slot) != 0 {
                self.counters.non_numeric_fields += 1;
                self.warnings
                    .non_numeric(line, p.kind, slot, key.unwrap_or_default());
            }
        }
    }

    /// The point's time in ns (wide: a timestamp in seconds may not fit):
    /// its own, or live, the time its chunk was read.
    fn event_time_of(&self, p: &DelayPoint, now: Option<Now>) -> Option<i128> {
        let unit = self.settings.unit;
        match (p.timestamp, now) {
            (Some(ts), _) => Some(i128::from(ts) * i128::from(unit)),
            (None, Some(now)) => Some(i128::from(now.wall.div_euclid(unit) * unit)),
            (None, None) => None,
        }
    }

    /// Raises the watermark (capped by the wall clock when live) and closes
    /// the windows behind it.
    /// Returns the watermark as capped.
    fn raise_watermark(&mut self, watermark: i64, now: Option<Now>) -> i64 {
        let capped = match now {
            Some(now) => watermark.min(now.wall.saturating_sub(self.settings.grace)),
            None => watermark,
        };
        let closed = self.windows.advance(capped);
        self.close(closed);
        capped
    }

    fn close(&mut self, closed: Vec<(WindowStart, Window)>) {
        for (start, window) in closed {
            let from = self.out.len();
            let observer = &mut self.observer;
            let result = self
                .join
                .close(start, &window, &mut self.out, |series, verdict| {
                    observer.joined(start, series, verdict);
                });
            self.windows.recycle(window);
            if self.replaying {
                let end = start.end(self.settings.period);
                self.replayed.push((end, from..self.out.len(), result.rows));
            }
            self.counters.windows_closed += 1;
            self.window_closed = true;
            self.counters.rows_written += result.rows;
            self.counters.rows_reverse_cached += result.reverse_cached;
            self.counters.rows_service_cached += result.service_cached;
            for u in result.unwritable {
                self.counters.rows_unwritable += 1;
                self.warnings.unwritable(&u.series, start.0, u.reason);
            }
        }
    }
}
