//! What happened to every line, counted: the self-metrics measurement and
//! the summary at exit. Every line that enters is in exactly one class, so
//! `lines_in = ignored + invalid + other + aggregated + late + skipped`.

use crate::lateness::Interval;
use crate::lp::write::Line;

/// Why a valid delay point was not aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A key tag is missing.
    MissingTag,
    /// No averaged field carries a number.
    NoNumericField,
    /// `--max-series` is reached.
    MaxSeries,
    /// More than `--max-future` ahead of the wall clock (live only).
    Future,
    /// Its window lies outside InfluxDB's time range.
    OutOfRange,
    /// No timestamp, in a replay.
    NoTimestamp,
}

impl SkipReason {
    /// Every reason, in the order they are reported.
    pub const ALL: [SkipReason; 6] = [
        SkipReason::MissingTag,
        SkipReason::NoNumericField,
        SkipReason::MaxSeries,
        SkipReason::Future,
        SkipReason::OutOfRange,
        SkipReason::NoTimestamp,
    ];

    /// The sub-counter's name.
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::MissingTag => "missing_tag",
            SkipReason::NoNumericField => "no_numeric_field",
            SkipReason::MaxSeries => "max_series",
            SkipReason::Future => "future",
            SkipReason::OutOfRange => "out_of_range",
            SkipReason::NoTimestamp => "no_timestamp",
        }
    }
}

/// The counters. All are totals since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records read (a record is one line, or several when a quoted string
    /// holds a line feed).
    pub lines_in: u64,
    /// Blank lines and comments.
    pub ignored: u64,
    /// Records that are not valid line protocol.
    pub invalid: u64,
    /// Valid lines of other measurements, passed through.
    pub other: u64,
    /// Delay points added to an open window.
    pub aggregated: u64,
    /// Delay points whose window had closed.
    pub late: u64,
    /// Delay points skipped, by reason (indexed as [`SkipReason::ALL`]).
    pub skipped: [u64; 6],
    /// Lines written through unchanged (other lines, and delay lines
    /// unless `--drop-original`); not a class of its own.
    pub passed: u64,
    /// Averaged fields ignored because their value was a bool or string.
    pub non_numeric_fields: u64,
    /// Windows closed.
    pub windows_closed: u64,
    /// Rows written.
    pub rows_written: u64,
    /// Rows not written because they cannot be written portably.
    pub rows_unwritable: u64,
    /// Rows written whose reverse latency came from the cache.
    pub rows_reverse_cached: u64,
    /// Rows written whose service came from the cache.
    pub rows_service_cached: u64,
}

impl Counters {
    /// Counts a skipped point.
    pub fn skip(&mut self, reason: SkipReason) {
        self.skipped[reason as usize] += 1;
    }

    /// All skipped points.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.iter().sum()
    }

    /// Whether every line is in exactly one class.
    pub fn balanced(&self) -> bool {
        self.lines_in
            == self.ignored
                + self.invalid
                + self.other
                + self.aggregated
                + self.late
                + self.skipped_total()
    }

    /// Writes the self-metrics line. Integers use `i`, which every reader
    /// (InfluxDB 1.x too) accepts. The lateness fields are left out of an
    /// interval in which no point was placed: none is not 0 ns late.
    pub fn write(&self, out: &mut Vec<u8>, measurement: &[u8], gauges: Gauges, timestamp: i64) {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut line = Line::new(out, measurement)
            .integer(b"lines_in", n(self.lines_in))
            .integer(b"ignored", n(self.ignored))
            .integer(b"invalid", n(self.invalid))
            .integer(b"other", n(self.other))
            .integer(b"aggregated", n(self.aggregated))
            .integer(b"late", n(self.late))
            .integer(b"skipped", n(self.skipped_total()));
        for reason in SkipReason::ALL {
            let key = format!("skipped_{}", reason.name());
            line = line.integer(key.as_bytes(), n(self.skipped[reason as usize]));
        }
        line = line
            .integer(b"passed", n(self.passed))
            .integer(b"non_numeric_fields", n(self.non_numeric_fields))
            .integer(b"windows_closed", n(self.windows_closed))
            .integer(b"rows_written", n(self.rows_written))
            .integer(b"rows_unwritable", n(self.rows_unwritable))
            .integer(b"rows_reverse_cached", n(self.rows_reverse_cached))
            .integer(b"rows_service_cached", n(self.rows_service_cached))
            .integer(b"open_series", n(gauges.open_series as u64))
            .integer(b"cache_entries", n(gauges.cache_entries as u64))
            .integer(b"grace_ns", gauges.grace);
        if let Some(l) = gauges.lateness {
            line = line
                .integer(b"lateness_max_ns", n(l.max))
                .integer(b"lateness_p99_ns", n(l.p99))
                .integer(b"lateness_p999_ns", n(l.p999))
                .integer(
                    b"grace_headroom_ns",
                    l.headroom.clamp(i64::MIN.into(), i64::MAX.into()) as i64,
                );
        }
        line.finish(timestamp);
    }

    /// The one-line summary logged at exit.
    pub fn summary(&self) -> String {
        format!(
            "lines in {}, passed through {}, aggregated {}, late {}, skipped {}, invalid {}, ignored {}; windows closed {}, rows written {}, rows unwritable {}",
            self.lines_in,
            self.passed,
            self.aggregated,
            self.late,
            self.skipped_total(),
            self.invalid,
            self.ignored,
            self.windows_closed,
            self.rows_written,
            self.rows_unwritable
        )
    }
}

/// State sizes and lateness reported with the counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Open (series, window) pairs.
    pub open_series: usize,
    /// Entries in the join's caches.
    pub cache_entries: usize,
    /// `--grace`, ns.
    pub grace: i64,
    /// The lateness of the interval's points; `None` if none was placed.
    pub lateness: Option<Interval>,
}
