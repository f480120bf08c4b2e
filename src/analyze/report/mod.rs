//! The report of `analyze`: figures drawn from the engine's counters and
//! the [`Analysis`], printed aligned for a terminal or as one JSON object
//! whose keys are documented in docs/analyze.md and kept stable for
//! scripts. Integers in the JSON never exceed int64 (what JSON readers
//! such as Go's and jq's hold exactly): a larger figure is saturated to
//! `i64::MAX` and its key listed in `saturated`.

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

mod text;

pub(crate) use text::reason_text;

use super::Analysis;
use crate::config::Options;
use crate::duration::Duration;
use crate::engine::Engine;
use crate::join::NoRow;
use crate::lateness::shown_quantile;
use crate::schema::Kind;
use crate::stats::{Counters, SkipReason};

/// Everything `analyze` prints. See the module doc.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The recording read (`stdin` for standard input).
    pub source: String,
    /// The options that shape the figures.
    pub options: Given,
    /// The counters of "What happens to each line".
    pub lines: Lines,
    /// Event time of the non-skipped delay points.
    pub event_time: EventTime,
    /// Distinct series, SFRs and paths of the non-skipped delay points.
    pub series: SeriesCounts,
    /// Rows a replay writes.
    pub rows_written: u64,
    /// Late points with the given grace.
    pub late: u64,
    /// Late points per grace (Go duration text → count), in grace order.
    #[serde(serialize_with = "ordered")]
    pub late_by_grace: Vec<(String, u64)>,
    /// `M − ts` of each non-skipped delay point, in ns.
    pub lateness_ns: Lateness,
    /// The series with the largest max lateness.
    pub worst_series: Vec<Worst>,
    /// The smallest grace with which no point is late, in ns.
    pub smallest_grace_ns: u64,
    /// The same as Go duration text.
    pub smallest_grace: String,
    /// The grace to use: the smallest with a margin, in ns.
    pub suggested_grace_ns: u64,
    /// The same as Go duration text, ready for `--grace`.
    pub suggested_grace: String,
    /// Forward (series, window) pairs by outcome.
    pub coverage: Coverage,
    /// The forward series with the most windows without a row.
    pub missing_rows: Vec<Missing>,
    /// Figures that reached a memory bound and are approximate.
    pub bounds_reached: Vec<&'static str>,
    /// Keys whose true value exceeds int64 and that hold `i64::MAX`.
    pub saturated: Vec<String>,
    /// What `--plot` draws (not in the JSON).
    #[serde(skip)]
    pub curves: Curves,
}

/// The figures `--plot` draws, from the same [`Analysis`] as the rest of
/// the report.
#[derive(Debug, Default)]
pub struct Curves {
    /// `--period` in ns.
    pub period_ns: i64,
    /// `--grace` in ns.
    pub grace_ns: i64,
    /// The lateness histogram's complementary CDF: for each bucket bound
    /// (ns), the delay points later than it ([`super::Histogram::above`]).
    pub later_than: Vec<(u64, u64)>,
    /// Length of one bucket of [`Curves::windows`], ns: a whole number of
    /// periods (see `Windows` in the analysis).
    pub bucket_ns: i64,
    /// Forward pairs per bucket of windows, in time order.
    pub windows: Vec<WindowCounts>,
}

/// The forward pairs of one bucket of windows.
#[derive(Debug)]
pub struct WindowCounts {
    /// Start of the bucket's first window, ns.
    pub start_ns: i64,
    /// Pairs with a row.
    pub rows: u64,
    /// Pairs without, by reason.
    pub without: ByReason,
}

/// Integers for the JSON: a value above int64 becomes `i64::MAX`, and its
/// key is noted.
#[derive(Default)]
struct Saturate(Vec<String>);

impl Saturate {
    fn ns(&mut self, key: &str, value: impl Into<i128>) -> u64 {
        let value = value.into();
        if value > i128::from(i64::MAX) {
            if !self.0.iter().any(|k| k == key) {
                self.0.push(key.to_string());
            }
            i64::MAX as u64
        } else {
            value.max(0) as u64
        }
    }
}

/// The options that shape the figures, as given.
#[derive(Debug, Serialize)]
pub struct Given {
    /// `--period`.
    pub period: String,
    /// `--grace`.
    pub grace: String,
    /// `--precision`.
    pub precision: String,
    /// `--cache-ttl`, if any.
    pub cache_ttl: Option<String>,
    /// `--max-series`.
    pub max_series: usize,
}

/// The class counters.
#[derive(Debug, Serialize)]
pub struct Lines {
    /// Records read.
    pub lines_in: u64,
    /// Blank lines and comments.
    pub ignored: u64,
    /// Invalid records.
    pub invalid: u64,
    /// Other measurements.
    pub other: u64,
    /// Delay points aggregated.
    pub aggregated: u64,
    /// Delay points late with the given grace.
    pub late: u64,
    /// Delay points skipped.
    pub skipped: u64,
    /// Skipped, by reason (`missing_tag`, …).
    pub skipped_by_reason: Skipped,
}

/// Span and rate of event time.
#[derive(Debug, Serialize)]
pub struct EventTime {
    /// Non-skipped delay points.
    pub delay_points: u64,
    /// The oldest timestamp, ns.
    pub first_ns: Option<i64>,
    /// The newest timestamp, ns.
    pub last_ns: Option<i64>,
    /// `last − first`, ns.
    pub span_ns: u64,
    /// Delay points per second of event time (0 when the span is 0).
    pub points_per_second: f64,
}

/// Distinct counts.
#[derive(Debug, Serialize)]
pub struct SeriesCounts {
    /// `(path, source, target)` series.
    pub network: u64,
    /// `(sfr, endpoint, sf_instance)` series.
    pub service: u64,
    /// SFRs: sources, targets and the SFRs of services.
    pub sfrs: u64,
    /// Path ids.
    pub paths: u64,
    /// Whether the counts are exact (false: lower bounds).
    pub exact: bool,
}

/// Lateness quantiles and max, ns.
#[derive(Debug, Serialize)]
pub struct Lateness {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest, exact.
    pub max: u64,
}

/// A series by max lateness.
#[derive(Debug, Serialize)]
pub struct Worst {
    /// Measurement and key tags, as `network_delays path=… source=… target=…`.
    pub series: String,
    /// Its largest lateness, ns.
    pub max_lateness_ns: u64,
    /// The same as Go duration text.
    pub max_lateness: String,
}

/// A forward series with windows without a row.
#[derive(Debug, Serialize)]
pub struct Missing {
    /// Path id.
    pub path: String,
    /// Source SFR.
    pub source: String,
    /// Target SFR.
    pub target: String,
    /// Windows in which it had points and no row.
    pub windows: u64,
    /// Those windows by reason (only reasons that occurred).
    #[serde(serialize_with = "occurred")]
    pub reasons: ByReason,
}

/// The join's coverage: forward (series, window) pairs, those with a row,
/// and those without by reason.
#[derive(Debug, Serialize)]
pub struct Coverage {
    /// Forward (series, window) pairs.
    pub pairs: u64,
    /// Those with a row.
    pub rows: u64,
    /// Those without, by reason (every reason, in precedence order).
    #[serde(flatten)]
    pub without: ByReason,
}

/// Counts per reason a pair has no row, in [`NoRow::index`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByReason(pub [u64; NoRow::KINDS]);

impl ByReason {
    /// Every reason's name (`no_service`, …) and count, in order.
    pub fn all(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0.iter().enumerate().map(|(i, n)| (NoRow::name(i), *n))
    }

    /// The reasons that occurred.
    pub fn occurred(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.all().filter(|(_, n)| *n > 0)
    }
}

impl Serialize for ByReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.all())
    }
}

/// `Missing::reasons`: only the reasons that occurred.
fn occurred<S: Serializer>(r: &ByReason, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(r.occurred())
}

/// Skipped delay points per reason, in [`SkipReason::ALL`] order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skipped(pub [u64; SkipReason::ALL.len()]);

impl Skipped {
    /// Every reason's name (`missing_tag`, …) and count, in order.
    pub fn all(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        SkipReason::ALL
            .iter()
            .map(|r| (r.name(), self.0[*r as usize]))
    }
}

impl Serialize for Skipped {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.all())
    }
}

impl Report {
    /// The report of a finished run.
    pub fn new(source: &str, options: &Options, engine: &Engine<Analysis>) -> Report {
        let a = engine.observer();
        let seen = engine.lateness();
        let c = engine.counters();
        let mut sat = Saturate::default();
        let need = seen.smallest_grace();
        let suggested = super::suggested_grace(need, options.period.as_nanos_i64());
        let unit = options.precision.nanos();
        let late_by_grace = late_by_grace(a, seen.at_smallest_grace(), need, suggested, unit);
        let event_time = EventTime::new(a, seen.histogram().len(), &mut sat);
        let worst_series = Worst::top(a, options, &mut sat);
        let smallest_grace_ns = sat.ns("smallest_grace_ns", need);
        let suggested_grace_ns = sat.ns("suggested_grace_ns", suggested);
        let lateness_ns = Lateness::new(seen.histogram(), &mut sat);
        Report {
            source: source.into(),
            options: Given::new(options),
            lines: lines(c),
            event_time,
            series: SeriesCounts::new(a),
            rows_written: c.rows_written,
            late: c.late,
            late_by_grace,
            lateness_ns,
            worst_series,
            smallest_grace_ns,
            smallest_grace: at_least(need),
            suggested_grace_ns,
            // Past the largest Go duration the suggestion is that duration
            // (less margin than the rule, still a grace to use), unless
            // even the smallest lies beyond it.
            suggested_grace: if need > i128::from(i64::MAX) {
                at_least(need)
            } else {
                go(suggested_grace_ns)
            },
            coverage: Coverage {
                pairs: a.coverage.pairs,
                rows: a.coverage.rows,
                without: ByReason(a.coverage.reasons),
            },
            missing_rows: Missing::top(a),
            bounds_reached: bounds_reached(a),
            saturated: sat.0,
            curves: curves(a, seen.histogram(), options),
        }
    }

    /// One JSON object.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }
}

impl Given {
    fn new(options: &Options) -> Given {
        Given {
            period: options.period.to_string(),
            grace: options.grace.to_string(),
            precision: format!("{:?}", options.precision).to_lowercase(),
            cache_ttl: options.cache_ttl.map(|d| d.to_string()),
            max_series: options.max_series,
        }
    }
}

impl EventTime {
    /// The span of the `points` delay points' event times.
    fn new(a: &Analysis, points: u64, sat: &mut Saturate) -> EventTime {
        let span_ns = match (a.oldest, a.newest) {
            (Some(o), Some(n)) => sat.ns("event_time.span_ns", i128::from(n) - i128::from(o)),
            _ => 0,
        };
        EventTime {
            delay_points: points,
            first_ns: a.oldest,
            last_ns: a.newest,
            span_ns,
            points_per_second: if span_ns > 0 {
                points as f64 / (span_ns as f64 / 1e9)
            } else {
                0.0
            },
        }
    }
}

impl SeriesCounts {
    fn new(a: &Analysis) -> SeriesCounts {
        SeriesCounts {
            network: a.distinct.network.seen.len() as u64,
            service: a.distinct.service.seen.len() as u64,
            sfrs: a.distinct.sfrs.seen.len() as u64,
            paths: a.distinct.paths.seen.len() as u64,
            exact: a.distinct.exact(),
        }
    }
}

impl Lateness {
    /// The quantiles shown of the lateness histogram.
    fn new(h: &crate::lateness::Histogram, sat: &mut Saturate) -> Lateness {
        let mut ns = |key: &str, v: u64| sat.ns(&format!("lateness_ns.{key}"), v);
        Lateness {
            p50: ns("p50", shown_quantile(h, 0.5)),
            p90: ns("p90", shown_quantile(h, 0.9)),
            p99: ns("p99", shown_quantile(h, 0.99)),
            p999: ns("p999", shown_quantile(h, 0.999)),
            max: ns("max", h.max()),
        }
    }
}

impl Worst {
    /// The latest series, latest first.
    fn top(a: &Analysis, options: &Options, sat: &mut Saturate) -> Vec<Worst> {
        a.worst
            .top()
            .into_iter()
            .map(|(max, kind, key)| Worst {
                series: describe(options, kind, key),
                max_lateness_ns: sat.ns("worst_series.max_lateness_ns", max),
                max_lateness: at_least(max.into()),
            })
            .collect()
    }
}

impl Missing {
    /// The paths missing the most rows.
    fn top(a: &Analysis) -> Vec<Missing> {
        a.coverage
            .top()
            .into_iter()
            .map(|(key, windows, counts)| {
                let s = key.network();
                Missing {
                    path: lossy(s.path),
                    source: lossy(s.source),
                    target: lossy(s.target),
                    windows,
                    reasons: ByReason(*counts),
                }
            })
            .collect()
    }
}

/// Which of the analysis's bounded tallies stopped being exact.
fn bounds_reached(a: &Analysis) -> Vec<&'static str> {
    let mut reached = Vec::new();
    if !a.distinct.exact() {
        reached.push("series");
    }
    if a.coverage.untracked > 0 {
        reached.push("missing_rows");
    }
    reached
}

/// What `--plot` draws.
fn curves(a: &Analysis, lateness: &crate::lateness::Histogram, options: &Options) -> Curves {
    let bucket_ns = options
        .period
        .as_nanos_i64()
        .saturating_mul(a.windows.width.max(1));
    Curves {
        period_ns: options.period.as_nanos_i64(),
        grace_ns: options.grace.as_nanos_i64(),
        later_than: lateness.above(),
        bucket_ns,
        windows: a
            .windows
            .buckets
            .iter()
            .map(|(k, c)| {
                let mut without = [0; NoRow::KINDS];
                without.copy_from_slice(&c[1..]);
                WindowCounts {
                    start_ns: k.saturating_mul(bucket_ns),
                    rows: c[0],
                    without: ByReason(without),
                }
            })
            .collect(),
    }
}

/// The class counters.
fn lines(c: &Counters) -> Lines {
    Lines {
        lines_in: c.lines_in,
        ignored: c.ignored,
        invalid: c.invalid,
        other: c.other,
        aggregated: c.aggregated,
        late: c.late,
        skipped: c.skipped_total(),
        skipped_by_reason: Skipped(c.skipped),
    }
}

/// Late points per grace: the listed graces, then the rows around the
/// smallest and the suggestion (one unit below the smallest counts exactly
/// the points that set it; the smallest and above count none). Every
/// count, the given grace's too, is the simulation's: the tests check each
/// against a replay.
fn late_by_grace(
    a: &Analysis,
    at_need: u64,
    need: i128,
    suggested: i128,
    unit: i64,
) -> Vec<(String, u64)> {
    let mut late: Vec<(i128, u64)> = a
        .sims
        .iter()
        .map(|s| (i128::from(s.grace), s.late))
        .collect();
    if need > 0 {
        late.push((need - i128::from(unit), at_need));
    }
    late.extend([(need, 0), (suggested, 0)]);
    late.retain(|(g, _)| *g <= i128::from(i64::MAX));
    late.sort_by_key(|(g, _)| *g);
    late.dedup_by_key(|(g, _)| *g);
    late.into_iter().map(|(g, n)| (go(g as u64), n)).collect()
}

/// A series as `network_delays path=… source=… target=…`.
fn describe(options: &Options, kind: Kind, key: &[u8]) -> String {
    let [a, b, c] = crate::schema::decode(key);
    let (measurement, names): (&str, [&str; 3]) = match kind {
        Kind::Network => (&options.network_measurement, ["path", "source", "target"]),
        Kind::Service => (
            &options.service_measurement,
            ["sfr", "endpoint", "sf_instance"],
        ),
    };
    format!(
        "{measurement} {}={} {}={} {}={}",
        names[0],
        a.escape_ascii(),
        names[1],
        b.escape_ascii(),
        names[2],
        c.escape_ascii()
    )
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Go's `time.Duration.String()` of `ns`.
fn go(ns: u64) -> String {
    Duration::from_nanos(ns.min(i64::MAX as u64)).to_string()
}

/// Go text of a figure that may exceed the largest Go duration: then
/// `at least` that duration, which is true.
fn at_least(ns: i128) -> String {
    if ns > i128::from(i64::MAX) {
        format!("at least {}", go(i64::MAX as u64))
    } else {
        go(ns.max(0) as u64)
    }
}

/// Serializes pairs as a JSON object in their order.
fn ordered<S: Serializer>(pairs: &[(String, u64)], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        map.serialize_entry(k, v)?;
    }
    map.end()
}
