//! `e2e-aggregator analyze [FILE]`: reads a recording exactly as a replay
//! with the same options would, writes no rows, and reports what the data
//! looks like (SPEC.md, "Analyzing a recording"): lines by class, the
//! disorder of event time and the smallest grace that makes no point late,
//! the late counts of other graces, and why forward pairs have no row.
//!
//! One code path: the report is drawn from the engine's own decisions,
//! told to an [`Analysis`] through the [`Observer`] hook, not from a second
//! implementation of windows or the join. One pass, memory bounded by
//! constants (each bound below is named where it is kept):
//!
//! - lateness percentiles from a [`Histogram`] with bounded relative error;
//! - the worst series by max lateness from a top list of
//!   [`WORST_TRACKED`] series, exact for the five printed (see [`Worst`]);
//! - distinct series, SFRs and paths counted as 64-bit hashes, exactly up to
//!   [`DISTINCT_CAP`] each, reported as "at least" past it;
//! - windows without a row per forward series for up to
//!   [`MISSING_TRACKED`] series; pairs of later ones still count in the
//!   totals;
//! - pairs and their outcomes per window for the plot, in at most
//!   [`MAX_BUCKETS`] buckets of whole windows (see [`Windows`]).
//!
//! Late counts for other graces are simulated per grace from the points
//! the engine did not skip, with the engine's closing rule
//! ([`crate::window::boundary`]): a replay's `max_ts` is the largest
//! non-skipped timestamp whatever its grace, since a late point is always
//! behind it.

mod plot;
mod report;

use std::hash::BuildHasher;
use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;

use foldhash::fast::FixedState;
use foldhash::{HashMap, HashSet};

pub use crate::lateness::{suggested_grace, Histogram};
pub use report::Report;

use crate::config::{Options, ReportFormat};
use crate::input::{self, End, Work};
use crate::join::NoRow;
use crate::observe::{Observer, Placed};
use crate::pipeline::Pipeline;
use crate::schema::{self, Kind, NetworkSeries, SeriesKey, WindowEnd, WindowStart};
use crate::settings::Settings;
use crate::window::boundary;

/// The graces whose late counts are always reported (SPEC.md), in ns.
pub const GRACES: [i64; 8] = [
    0,
    1_000_000_000,
    2_000_000_000,
    5_000_000_000,
    10_000_000_000,
    15_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

/// Series held in the running top list of max lateness.
pub const WORST_TRACKED: usize = 64;
/// Worst series printed.
pub const WORST_SHOWN: usize = 5;
/// Distinct values remembered per kind (network series, service series,
/// SFRs, paths) before the count becomes a lower bound.
pub const DISTINCT_CAP: usize = 100_000;
/// Forward series whose windows without a row are counted one by one.
pub const MISSING_TRACKED: usize = 10_000;
/// Forward series printed with their windows without a row.
pub const MISSING_SHOWN: usize = 10;

/// Buckets of windows kept for the plot's rows per window (see [`Windows`]).
pub const MAX_BUCKETS: usize = 512;

/// Runs `analyze`: reads FILE (stdin when `None`), prints the report on
/// stdout and, with `plot`, draws it as SVG there. Returns the exit status:
/// 1 when the report or the plot cannot be written.
pub fn run(
    options: &Options,
    file: Option<&Path>,
    format: ReportFormat,
    plot: Option<&Path>,
) -> u8 {
    if let Some(path) = file {
        // The reader thread reads stdin: make the file stdin, so the
        // recording is read exactly as a replay reads it.
        let opened = std::fs::File::open(path).and_then(|f| Ok(rustix::stdio::dup2_stdin(&f)?));
        if let Err(e) = opened {
            log::error!("cannot read {}: {e}", path.display());
            return 2;
        }
    }
    let mut settings = Settings::new(options);
    // Nothing is written: do not copy delay lines into the output only to
    // discard them (this changes only the `passed` counter, not reported).
    settings.drop_original = true;
    let analysis = Analysis::new(&settings);
    let mut pipeline = Pipeline::observed(settings, analysis);
    let end = match replay(&mut pipeline) {
        Ok(end) => end,
        Err(e) => {
            log::error!("reading the recording failed: {e}");
            return 1;
        }
    };
    pipeline.finish(end, None);
    pipeline.output().clear();
    let source = file.map_or("stdin".into(), |p| p.display().to_string());
    let report = Report::new(&source, options, pipeline.engine());
    let text = match format {
        ReportFormat::Text => report.text(),
        ReportFormat::Json => report.json() + "\n",
    };
    if let Some(path) = plot {
        let svg = plot::svg(&report);
        if let Err(e) = std::fs::write(path, svg) {
            log::error!("cannot write the plot {}: {e}", path.display());
            return 1;
        }
    }
    use std::io::Write;
    match io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => 0,
        Err(e) => {
            log::error!("writing the report failed: {e}");
            1
        }
    }
}

/// Feeds stdin through the pipeline as a replay does (the same reader and
/// parse workers), discarding the output.
fn replay(pipeline: &mut Pipeline<Analysis>) -> io::Result<End> {
    // No signal handling: nothing is saved, so ^C may simply end it. The
    // reader still wants a stop pipe; this one never becomes readable.
    let (stop_rx, _stop_tx) = UnixStream::pair()?;
    let mut chunks = input::spawn(pipeline.splitter(), stop_rx, true)?;
    loop {
        match chunks.next().recv() {
            Ok(Work::Chunk(chunk, parsed, _)) => {
                pipeline.feed_parsed(chunk.bytes(), &parsed, None);
                chunks.recycle(chunk, parsed);
                pipeline.output().clear();
            }
            Ok(Work::Stopping) => {}
            Ok(Work::End(end, None)) => return Ok(end),
            Ok(Work::End(_, Some(e))) => return Err(e),
            Err(_) => return Ok(End::Eof),
        }
    }
}

/// The figures gathered while the engine runs. See the module doc.
#[derive(Debug)]
pub struct Analysis {
    period: i64,
    /// `M`: the largest timestamp of the non-skipped points so far.
    newest: Option<i64>,
    /// The oldest such timestamp (for the event-time span).
    oldest: Option<i64>,
    worst: Worst,
    /// One simulated replay per grace.
    sims: Vec<Sim>,
    distinct: Distinct,
    coverage: Coverage,
    windows: Windows,
}

impl Analysis {
    /// Nothing seen yet.
    pub fn new(settings: &Settings) -> Analysis {
        let mut graces = GRACES.to_vec();
        graces.push(settings.grace);
        graces.sort_unstable();
        graces.dedup();
        Analysis {
            period: settings.period,
            newest: None,
            oldest: None,
            worst: Worst::default(),
            sims: graces.into_iter().map(Sim::new).collect(),
            distinct: Distinct::default(),
            coverage: Coverage::default(),
            windows: Windows::default(),
        }
    }
}

impl Observer for Analysis {
    fn placed(&mut self, p: &Placed<'_>) {
        let end = p.window.end(self.period);
        let behind = p.lateness;
        let hash = series_hash(p.kind, p.key);
        if behind > 0 {
            self.worst.note(hash, p.kind, p.key, behind);
        }
        self.distinct.note(hash, p.kind, p.key);
        let raised = self.newest.is_none_or(|m| p.ts > m);
        let newest = if raised {
            self.newest = Some(p.ts);
            p.ts
        } else {
            self.newest.unwrap_or(p.ts)
        };
        self.oldest = Some(self.oldest.map_or(p.ts, |o| o.min(p.ts)));
        for sim in &mut self.sims {
            sim.place(end, newest, raised, self.period);
        }
    }

    fn joined(&mut self, w: WindowStart, series: &NetworkSeries<'_>, verdict: Result<(), NoRow>) {
        self.coverage.note(series, verdict);
        self.windows.note(w, verdict, self.period);
    }
}

/// A replay with one grace, reduced to what decides lateness: its
/// closing frontier. Its `max_ts` is `M` (see the module doc).
#[derive(Debug, Clone)]
struct Sim {
    grace: i64,
    closed_until: WindowEnd,
    late: u64,
}

impl Sim {
    fn new(grace: i64) -> Sim {
        Sim {
            grace,
            closed_until: WindowEnd(i64::MIN),
            late: 0,
        }
    }

    /// A point of the window ending at `end`; `newest` is `M` with it,
    /// `raised` whether this point raised it.
    #[inline]
    fn place(&mut self, end: WindowEnd, newest: i64, raised: bool, period: i64) {
        if end <= self.closed_until {
            self.late += 1;
            return;
        }
        // Aggregated: the watermark rises as the engine raises it (when
        // `M` did not move, neither does the frontier).
        if raised {
            let frontier = boundary(newest.saturating_sub(self.grace), period);
            self.closed_until = self.closed_until.max(frontier);
        }
    }
}

/// One hash per series, the same for every run (fixed seed).
fn series_hash(kind: Kind, key: &[u8]) -> u64 {
    FixedState::with_seed(kind as u64).hash_one(key)
}

fn value_hash(value: &[u8]) -> u64 {
    FixedState::with_seed(7).hash_one(value)
}

/// The series with the largest max lateness. A bounded top list: a series
/// enters while there is room or when its lateness beats the smallest max
/// held (which it then evicts). A series among the true top
/// [`WORST_SHOWN`] is held from its worst point on: it could only be
/// evicted by [`WORST_TRACKED`] others with a larger max, so the five
/// printed are exact (up to ties).
#[derive(Debug, Default)]
struct Worst {
    held: HashMap<u64, (u64, Kind, Box<[u8]>)>,
    /// The smallest max held once full (0 before): only a point later than
    /// this can change the list.
    floor: u64,
}

impl Worst {
    #[inline]
    fn note(&mut self, hash: u64, kind: Kind, key: &[u8], behind: u64) {
        if behind <= self.floor {
            return;
        }
        if let Some(held) = self.held.get_mut(&hash) {
            held.0 = held.0.max(behind);
            return;
        }
        if self.held.len() >= WORST_TRACKED {
            let Some((&least, _)) = self.held.iter().min_by_key(|(_, h)| h.0) else {
                return;
            };
            self.held.remove(&least);
        }
        self.held.insert(hash, (behind, kind, key.into()));
        if self.held.len() >= WORST_TRACKED {
            self.floor = self.held.values().map(|h| h.0).min().unwrap_or(0);
        }
    }

    /// The worst series, largest max first (ties by kind and key).
    fn top(&self) -> Vec<(u64, Kind, &[u8])> {
        let mut all: Vec<_> = self
            .held
            .values()
            .map(|(max, kind, key)| (*max, *kind, &key[..]))
            .collect();
        all.sort_unstable_by(|a, b| {
            (b.0, a.1 == Kind::Service, a.2).cmp(&(a.0, b.1 == Kind::Service, b.2))
        });
        all.truncate(WORST_SHOWN);
        all
    }
}

/// A set of 64-bit hashes that stops growing at [`DISTINCT_CAP`].
#[derive(Debug, Default)]
struct Capped {
    seen: HashSet<u64>,
    full: bool,
}

impl Capped {
    /// Adds `hash`; whether it is new.
    #[inline]
    fn insert(&mut self, hash: u64) -> bool {
        if self.seen.len() >= DISTINCT_CAP && !self.seen.contains(&hash) {
            self.full = true;
            return false;
        }
        self.seen.insert(hash)
    }
}

/// Distinct network series, service series, SFRs and paths of the
/// non-skipped points.
#[derive(Debug, Default)]
struct Distinct {
    network: Capped,
    service: Capped,
    sfrs: Capped,
    paths: Capped,
}

impl Distinct {
    #[inline]
    fn note(&mut self, hash: u64, kind: Kind, key: &[u8]) {
        let [a, b, c] = schema::decode(key);
        match kind {
            Kind::Network => {
                if self.network.insert(hash) {
                    self.paths.insert(value_hash(a));
                    self.sfrs.insert(value_hash(b));
                    self.sfrs.insert(value_hash(c));
                }
            }
            Kind::Service => {
                if self.service.insert(hash) {
                    self.sfrs.insert(value_hash(a));
                }
            }
        }
    }

    fn exact(&self) -> bool {
        ![&self.network, &self.service, &self.sfrs, &self.paths]
            .iter()
            .any(|c| c.full)
    }
}

/// Forward pairs by verdict, and per forward series its windows without a
/// row by reason.
#[derive(Debug, Default)]
struct Coverage {
    pairs: u64,
    rows: u64,
    reasons: [u64; NoRow::KINDS],
    by_series: HashMap<SeriesKey, [u64; NoRow::KINDS]>,
    /// Pairs without a row of series past [`MISSING_TRACKED`].
    untracked: u64,
}

impl Coverage {
    fn note(&mut self, series: &NetworkSeries<'_>, verdict: Result<(), NoRow>) {
        self.pairs += 1;
        let reason = match verdict {
            Ok(()) => {
                self.rows += 1;
                return;
            }
            Err(reason) => reason.index(),
        };
        self.reasons[reason] += 1;
        let key = SeriesKey::new([series.path, series.source, series.target]);
        let room = self.by_series.len() < MISSING_TRACKED;
        match self.by_series.get_mut(&key) {
            Some(counts) => counts[reason] += 1,
            None if room => {
                let mut counts = [0; NoRow::KINDS];
                counts[reason] = 1;
                self.by_series.insert(key, counts);
            }
            None => self.untracked += 1,
        }
    }

    /// The forward series with the most windows without a row, most first
    /// (ties in key order).
    fn top(&self) -> Vec<(&SeriesKey, u64, &[u64; NoRow::KINDS])> {
        let mut all: Vec<_> = self
            .by_series
            .iter()
            .map(|(k, c)| (k, c.iter().sum::<u64>(), c))
            .collect();
        all.sort_unstable_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| a.0.network().cmp(&b.0.network()))
        });
        all.truncate(MISSING_SHOWN);
        all
    }
}

/// Forward pairs per window, with a row or by reason, for the plot. Bounded
/// by bucketing, not by truncation: a bucket holds `width` consecutive
/// windows (aligned on the epoch), `width` a power of two that starts at
/// one; when more than [`MAX_BUCKETS`] buckets hold pairs, `width` doubles
/// and neighbours merge. So a recording of any length gives at most
/// [`MAX_BUCKETS`] buckets, and one of up to [`MAX_BUCKETS`] windows one
/// bucket per window; every pair is counted, the sums equal the coverage.
#[derive(Debug, Default)]
struct Windows {
    /// Windows per bucket, a power of two (0 before the first pair).
    width: i64,
    /// Bucket index (window start / (period × width)) → rows, then the
    /// pairs without a row by [`NoRow::index`].
    buckets: std::collections::BTreeMap<i64, [u64; 1 + NoRow::KINDS]>,
}

impl Windows {
    fn note(&mut self, w: WindowStart, verdict: Result<(), NoRow>, period: i64) {
        self.width = self.width.max(1);
        let slot = match verdict {
            Ok(()) => 0,
            Err(reason) => 1 + reason.index(),
        };
        let key = w.0.div_euclid(period.saturating_mul(self.width));
        self.buckets.entry(key).or_default()[slot] += 1;
        while self.buckets.len() > MAX_BUCKETS {
            self.width *= 2;
            let old = std::mem::take(&mut self.buckets);
            for (k, counts) in old {
                let merged = self.buckets.entry(k.div_euclid(2)).or_default();
                for (m, c) in merged.iter_mut().zip(counts) {
                    *m += c;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_merge_into_a_bounded_series_that_keeps_every_pair() {
        const P: i64 = 5;
        let mut w = Windows::default();
        let n = 3 * MAX_BUCKETS as i64 + 7;
        for i in 0..n {
            w.note(WindowStart(i * P), Ok(()), P);
            w.note(WindowStart(i * P), Err(NoRow::NoReverse), P);
        }
        assert!(w.buckets.len() <= MAX_BUCKETS);
        // 1,543 windows: 4 per bucket gives 386 buckets.
        assert_eq!(w.width, 4);
        let rows: u64 = w.buckets.values().map(|c| c[0]).sum();
        let no_reverse: u64 = w.buckets.values().map(|c| c[1 + 1]).sum();
        assert_eq!((rows, no_reverse), (n as u64, n as u64));
        // A short recording keeps one bucket per window.
        let mut short = Windows::default();
        for i in 0..10 {
            short.note(WindowStart(i * P), Ok(()), P);
        }
        assert_eq!((short.width, short.buckets.len()), (1, 10));
    }

    #[test]
    fn a_sim_closes_as_the_engine_does() {
        const P: i64 = 5;
        let mut sim = Sim::new(3);
        // Window [0, 5): M = 9 puts the watermark at 6, the frontier at 5.
        sim.place(WindowEnd(5), 1, true, P);
        sim.place(WindowEnd(10), 9, true, P);
        assert_eq!(sim.closed_until, WindowEnd(5));
        sim.place(WindowEnd(5), 9, false, P);
        assert_eq!(sim.late, 1);
        // The frontier never moves back.
        sim.place(WindowEnd(10), 9, false, P);
        assert_eq!(sim.closed_until, WindowEnd(5));
    }

    #[test]
    fn the_worst_list_keeps_the_true_top_five() {
        let mut w = Worst::default();
        // Many series with small lateness, then five with a large max,
        // then many more small ones: the five must survive.
        let key = |i: u64| SeriesKey::new([b"p", &i.to_le_bytes(), b"t"]);
        for round in 0..3u64 {
            for i in 0..1_000u64 {
                let behind = if round == 1 && i % 200 == 0 {
                    1_000_000 + i
                } else {
                    1 + (i * 7919 + round) % 500
                };
                let k = key(i);
                w.note(
                    series_hash(Kind::Network, k.as_bytes()),
                    Kind::Network,
                    k.as_bytes(),
                    behind,
                );
            }
        }
        let top: Vec<u64> = w.top().iter().map(|t| t.0).collect();
        assert_eq!(top, [1_000_800, 1_000_600, 1_000_400, 1_000_200, 1_000_000]);
        assert!(w.held.len() <= WORST_TRACKED);
    }
}
