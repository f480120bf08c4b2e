//! The report of `analyze`: figures drawn from the engine's counters and
//! the [`Analysis`], printed aligned for a terminal or as one JSON object
//! whose keys are documented in docs/analyze.md and kept stable for
//! scripts. Integers in the JSON never exceed int64 (what JSON readers
//! such as Go's and jq's hold exactly): a larger figure is saturated to
//! `i64::MAX` and its key listed in `saturated`.

use std::fmt::Write as _;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::Analysis;
use crate::config::Options;
use crate::duration::Duration;
use crate::engine::Engine;
use crate::join::NoRow;
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
        let c = engine.counters();
        let mut sat = Saturate::default();
        let need = a.need.max(0);
        let suggested = super::suggested_grace(need, options.period.as_nanos_i64());
        let unit = options.precision.nanos();
        let late_by_grace = late_by_grace(a, need, suggested, unit);
        let span = match (a.oldest, a.newest) {
            (Some(o), Some(n)) => sat.ns("event_time.span_ns", i128::from(n) - i128::from(o)),
            _ => 0,
        };
        let points = a.lateness.len();
        let worst = a
            .worst
            .top()
            .into_iter()
            .map(|(max, kind, key)| Worst {
                series: describe(options, kind, key),
                max_lateness_ns: sat.ns("worst_series.max_lateness_ns", max),
                max_lateness: at_least(max.into()),
            })
            .collect();
        let smallest = sat.ns("smallest_grace_ns", need);
        let suggested_ns = sat.ns("suggested_grace_ns", suggested);
        let mut lateness = |key: &str, v: u64| sat.ns(&format!("lateness_ns.{key}"), v);
        let lateness_ns = Lateness {
            p50: lateness("p50", quantile(&a.lateness, 0.5)),
            p90: lateness("p90", quantile(&a.lateness, 0.9)),
            p99: lateness("p99", quantile(&a.lateness, 0.99)),
            p999: lateness("p999", quantile(&a.lateness, 0.999)),
            max: lateness("max", a.lateness.max()),
        };
        let coverage = Coverage {
            pairs: a.coverage.pairs,
            rows: a.coverage.rows,
            without: ByReason(a.coverage.reasons),
        };
        let missing_rows = a
            .coverage
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
            .collect();
        let mut bounds_reached = Vec::new();
        if !a.distinct.exact() {
            bounds_reached.push("series");
        }
        if a.coverage.untracked > 0 {
            bounds_reached.push("missing_rows");
        }
        Report {
            source: source.into(),
            options: Given {
                period: options.period.to_string(),
                grace: options.grace.to_string(),
                precision: format!("{:?}", options.precision).to_lowercase(),
                cache_ttl: options.cache_ttl.map(|d| d.to_string()),
                max_series: options.max_series,
            },
            lines: lines(c),
            event_time: EventTime {
                delay_points: points,
                first_ns: a.oldest,
                last_ns: a.newest,
                span_ns: span,
                points_per_second: if span > 0 {
                    points as f64 / (span as f64 / 1e9)
                } else {
                    0.0
                },
            },
            series: SeriesCounts {
                network: a.distinct.network.seen.len() as u64,
                service: a.distinct.service.seen.len() as u64,
                sfrs: a.distinct.sfrs.seen.len() as u64,
                paths: a.distinct.paths.seen.len() as u64,
                exact: a.distinct.exact(),
            },
            rows_written: c.rows_written,
            late: c.late,
            late_by_grace,
            lateness_ns,
            worst_series: worst,
            smallest_grace_ns: smallest,
            smallest_grace: at_least(need),
            suggested_grace_ns: suggested_ns,
            // Past the largest Go duration the suggestion is that duration
            // (less margin than the rule, still a grace to use), unless
            // even the smallest lies beyond it.
            suggested_grace: if need > i128::from(i64::MAX) {
                at_least(need)
            } else {
                go(suggested_ns)
            },
            coverage,
            missing_rows,
            bounds_reached,
            saturated: sat.0,
        }
    }

    /// Go text of the figure under `key`, `at least` when it was saturated.
    fn duration(&self, key: &str, ns: u64) -> String {
        if self.saturated.iter().any(|k| k == key) {
            at_least(i128::MAX)
        } else {
            go(ns)
        }
    }

    /// One JSON object.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// The report aligned for a terminal.
    pub fn text(&self) -> String {
        let mut t = Text::default();
        self.text_heading(&mut t);
        self.text_lines(&mut t);
        self.text_event_time(&mut t);
        self.text_disorder(&mut t);
        self.text_grace(&mut t);
        self.text_coverage(&mut t);
        t.0
    }

    /// The recording and the options it was replayed with.
    fn text_heading(&self, t: &mut Text) {
        let o = &self.options;
        t.line(format!("Recording {}", self.source));
        let ttl = o
            .cache_ttl
            .as_deref()
            .map(|d| format!(", cache TTL {d}"))
            .unwrap_or_default();
        t.line(format!(
            "  replayed with period {}, grace {}, precision {}{ttl}",
            o.period, o.grace, o.precision
        ));
    }

    /// What happened to each line.
    fn text_lines(&self, t: &mut Text) {
        let o = &self.options;
        t.head("Lines");
        let l = &self.lines;
        t.count("lines in", l.lines_in);
        t.count("ignored (blank, comment)", l.ignored);
        t.count("invalid", l.invalid);
        t.count("other measurements", l.other);
        t.count("delay points aggregated", l.aggregated);
        t.count(&format!("delay points late (grace {})", o.grace), l.late);
        t.count("delay points skipped", l.skipped);
        for (reason, n) in l.skipped_by_reason.all().filter(|(_, n)| *n > 0) {
            t.count(&format!("  {}", reason.replace('_', " ")), n);
        }
    }

    /// The span and rate of event time.
    fn text_event_time(&self, t: &mut Text) {
        t.head("Event time");
        let e = &self.event_time;
        match (e.first_ns, e.last_ns) {
            (Some(first), Some(last)) => {
                t.pair("first", &time(first));
                t.pair("last", &time(last));
                t.pair("span", &self.duration("event_time.span_ns", e.span_ns));
            }
            _ => t.pair("span", "no delay point"),
        }
        t.count("delay points (not skipped)", e.delay_points);
        t.pair(
            "delay points per second",
            &format!("{:.1}", e.points_per_second),
        );
        let s = &self.series;
        let at_least = if s.exact { "" } else { "at least " };
        t.pair(
            "series",
            &format!(
                "{at_least}{} network, {} service; {} SFRs, {} paths",
                thousands(s.network),
                thousands(s.service),
                thousands(s.sfrs),
                thousands(s.paths)
            ),
        );
    }

    /// How far points came behind the newest before them.
    fn text_disorder(&self, t: &mut Text) {
        t.head("Disorder: lateness of a point behind the newest before it");
        let q = &self.lateness_ns;
        for (name, v) in [
            ("p50", q.p50),
            ("p90", q.p90),
            ("p99", q.p99),
            ("p99.9", q.p999),
            ("max", q.max),
        ] {
            let key = format!("lateness_ns.{}", name.replace('.', ""));
            t.pair(name, &self.duration(&key, v));
        }
        if !self.worst_series.is_empty() {
            t.line("  worst series (max lateness):".into());
            let width = self
                .worst_series
                .iter()
                .map(|w| w.max_lateness.chars().count())
                .max()
                .unwrap_or(0);
            for w in &self.worst_series {
                t.line(format!("    {:>width$}  {}", w.max_lateness, w.series));
            }
        }
    }

    /// The smallest grace, the suggestion and the late points per grace.
    fn text_grace(&self, t: &mut Text) {
        let o = &self.options;
        t.head("Grace");
        t.pair("smallest grace with no late point", &self.smallest_grace);
        t.pair("suggested grace", &self.suggested_grace);
        t.line("  late points by grace:".into());
        let width = self
            .late_by_grace
            .iter()
            .map(|(g, _)| g.chars().count())
            .max()
            .unwrap_or(0);
        let counts: Vec<String> = self
            .late_by_grace
            .iter()
            .map(|(_, n)| thousands(*n))
            .collect();
        let cw = counts.iter().map(String::len).max().unwrap_or(0);
        for ((g, _), n) in self.late_by_grace.iter().zip(&counts) {
            let marks: Vec<&str> = [
                (&self.smallest_grace, "smallest"),
                (&self.suggested_grace, "suggested"),
                (&o.grace, "given"),
            ]
            .into_iter()
            .filter(|(v, _)| *v == g)
            .map(|(_, mark)| mark)
            .collect();
            let marks = if marks.is_empty() {
                String::new()
            } else {
                format!("  ({})", marks.join(", "))
            };
            t.line(
                format!("    {g:>width$}  {n:>cw$}{marks}")
                    .trim_end()
                    .into(),
            );
        }
    }

    /// The join's coverage, the series with most windows without a row, and the bounds reached.
    fn text_coverage(&self, t: &mut Text) {
        t.head("Join coverage: forward (series, window) pairs");
        let cov = &self.coverage;
        t.count("pairs", cov.pairs);
        t.count("rows written", cov.rows);
        t.count("without a row", cov.pairs - cov.rows);
        for (name, n) in cov.without.occurred() {
            t.count(&format!("  {}", reason_text(name)), n);
        }
        if !self.missing_rows.is_empty() {
            t.line("  forward series with the most windows without a row:".into());
            for m in &self.missing_rows {
                let why: Vec<String> = m
                    .reasons
                    .occurred()
                    .map(|(r, n)| format!("{} {}", reason_text(r), thousands(n)))
                    .collect();
                let windows = match m.windows {
                    1 => "1 window".to_string(),
                    n => format!("{} windows", thousands(n)),
                };
                t.line(format!(
                    "    path={} source={} target={}: {windows} ({})",
                    m.path,
                    m.source,
                    m.target,
                    why.join(", ")
                ));
            }
        }
        for bound in &self.bounds_reached {
            t.line(format!(
                "note: {bound} reached its memory bound (see docs/analyze.md, \"Memory\"); \
                 those figures are lower bounds"
            ));
        }
    }
}

/// The text report being built: labels and values in two columns.
#[derive(Default)]
struct Text(String);

impl Text {
    const LABEL: usize = 36;

    fn line(&mut self, s: String) {
        self.0.push_str(&s);
        self.0.push('\n');
    }

    fn head(&mut self, s: &str) {
        self.0.push('\n');
        self.line(s.into());
    }

    fn pair(&mut self, label: &str, value: &str) {
        let _ = writeln!(self.0, "  {label:<w$} {value}", w = Self::LABEL);
    }

    fn count(&mut self, label: &str, n: u64) {
        let _ = writeln!(
            self.0,
            "  {label:<w$} {:>13}",
            thousands(n),
            w = Self::LABEL
        );
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
fn late_by_grace(a: &Analysis, need: i128, suggested: i128, unit: i64) -> Vec<(String, u64)> {
    let mut late: Vec<(i128, u64)> = a
        .sims
        .iter()
        .map(|s| (i128::from(s.grace), s.late))
        .collect();
    if need > 0 {
        late.push((need - i128::from(unit), a.at_need));
    }
    late.extend([(need, 0), (suggested, 0)]);
    late.retain(|(g, _)| *g <= i128::from(i64::MAX));
    late.sort_by_key(|(g, _)| *g);
    late.dedup_by_key(|(g, _)| *g);
    late.into_iter().map(|(g, n)| (go(g as u64), n)).collect()
}

/// A quantile as reported: the histogram's bucket bound rounded up to
/// three significant digits (`450.4ms` reads `451ms`), never above the
/// max: an upper bound at most 1.2 % above the true value.
fn quantile(h: &super::Histogram, q: f64) -> u64 {
    let v = h.quantile(q);
    let digits = v.checked_ilog10().unwrap_or(0);
    if digits < 3 {
        return v;
    }
    let scale = 10u128.pow(digits - 2);
    let up = u128::from(v).div_ceil(scale) * scale;
    u64::try_from(up).unwrap_or(u64::MAX).min(h.max())
}

/// A reason as the text report says it.
fn reason_text(name: &str) -> String {
    match name {
        "no_service" => "no service for the target SFR".into(),
        "no_reverse" => "no reverse series".into(),
        "expired" => "expired by --cache-ttl".into(),
        "unwritable" => "unwritable".into(),
        null => format!("{} is null", null.trim_start_matches("null_")),
    }
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

/// An instant as RFC 3339 in UTC.
fn time(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// Serializes pairs as a JSON object in their order.
fn ordered<S: Serializer>(pairs: &[(String, u64)], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(100_800), "100,800");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn quantiles_round_up_to_three_digits() {
        let mut h = super::super::Histogram::default();
        h.record(450_363_391);
        h.record(999);
        h.record(500_000_000);
        assert_eq!(quantile(&h, 0.01), 999);
        let mid = quantile(&h, 0.5);
        assert!((450_363_391..=451_000_000).contains(&mid), "{mid}");
        assert_eq!(mid % 1_000_000, 0);
        assert_eq!(quantile(&h, 1.0), 500_000_000);
    }

    #[test]
    fn reasons_read_as_sentences() {
        assert_eq!(reason_text("null_delay_reverse"), "delay_reverse is null");
        assert_eq!(reason_text("no_service"), "no service for the target SFR");
    }
}
