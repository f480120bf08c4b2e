//! How late delay points arrive: the lateness of a point is `M − ts`, the
//! newest timestamp accepted before it (`M`) minus its own (SPEC.md,
//! "Analyzing a recording"). The engine tracks it for every point it places
//! (aggregated or late), live and in a replay, so that
//!
//! - the self-metrics report, over each `--stats-interval`, the max and
//!   high quantiles of lateness and the grace's headroom above that max;
//! - a `W!` says, once per process, that points came within 10 % of
//!   `--grace`, with the grace `analyze` would suggest for what was seen;
//! - `analyze` reports the same figures for a whole recording, from the
//!   same tracker (a replay never takes an interval, so its interval is
//!   the whole input).
//!
//! The cost is one histogram count per placed point (see
//! docs/performance.md); memory is the histogram's fixed array.

mod histogram;

pub use histogram::Histogram;

use crate::schema::WindowEnd;

/// The grace `analyze` suggests for a smallest grace of `need` ns: 1.25 ×
/// `need`, at least `need` plus one `period`, rounded up to a whole second
/// (see docs/analyze.md, "Suggested grace", for why). Exact, in i128.
pub fn suggested_grace(need: i128, period: i64) -> i128 {
    const SECOND: i128 = 1_000_000_000;
    let need = need.max(0);
    let margin = ((need * 5 + 3) / 4).max(need + i128::from(period));
    (margin + SECOND - 1) / SECOND * SECOND
}

/// A quantile as reported: the histogram's bucket bound rounded up to
/// three significant digits (`450.4ms` reads `451ms`), never above the
/// max: an upper bound at most 1.2 % above the true value.
pub fn shown_quantile(h: &Histogram, q: f64) -> u64 {
    let v = h.quantile(q);
    let digits = v.checked_ilog10().unwrap_or(0);
    if digits < 3 {
        return v;
    }
    let scale = 10u128.pow(digits - 2);
    let up = u128::from(v).div_ceil(scale) * scale;
    u64::try_from(up).unwrap_or(u64::MAX).min(h.max())
}

/// See the module doc.
#[derive(Debug)]
pub struct Lateness {
    grace: i64,
    period: i64,
    unit: i64,
    /// The lateness of the points placed since the last
    /// [`Lateness::take_interval`] (since start if never taken).
    interval: Histogram,
    /// `max(M − end + unit)` over every point since start; the smallest
    /// grace is this, at least 0, since a point is late iff
    /// `grace ≤ M − end`.
    need: i128,
    /// The points whose `M − end + unit` is `need` (when above 0): exactly
    /// those a replay with grace `need − unit` counts late.
    at_need: u64,
    /// The lateness above which a point leaves less than 10 % of the grace
    /// as headroom (`u64::MAX` once warned).
    warn_above: u64,
}

/// One point's lateness, as [`Lateness::note`] saw it.
#[derive(Debug, Clone, Copy)]
pub struct Noted {
    /// `M − ts` in ns, 0 for the first point or one ahead of `M`.
    pub lateness: u64,
    /// `Some(suggested grace)` the first time in the process that a point
    /// leaves less than 10 % of the grace as headroom.
    pub warn: Option<i128>,
}

/// Lateness over one interval, for the self-metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// The largest lateness, exactly.
    pub max: u64,
    /// The 99th percentile (see [`shown_quantile`]).
    pub p99: u64,
    /// The 99.9th percentile.
    pub p999: u64,
    /// `grace − max`; negative when points were late.
    pub headroom: i128,
}

impl Lateness {
    /// Nothing seen yet, for `--grace`, `--period` and the precision's
    /// `unit` (all in ns).
    pub fn new(grace: i64, period: i64, unit: i64) -> Lateness {
        Lateness {
            grace,
            period,
            unit,
            interval: Histogram::default(),
            need: 0,
            at_need: 0,
            // lateness · 10 > grace · 9
            warn_above: (i128::from(grace.max(0)) * 9 / 10) as u64,
        }
    }

    /// Counts a placed point stamped `ts` of the window ending at `end`;
    /// `newest` is `M` before it (`None` for the first point).
    #[inline]
    pub fn note(&mut self, newest: Option<i64>, ts: i64, end: WindowEnd) -> Noted {
        // In i128: a point near one end of InfluxDB's range against an `M`
        // near the other is later than i64 holds, and the report says so.
        let m = newest.unwrap_or(ts);
        if newest.is_some() {
            let need = i128::from(m) - i128::from(end.0) + i128::from(self.unit);
            if need > self.need {
                (self.need, self.at_need) = (need, 1);
            } else if need == self.need && need > 0 {
                self.at_need += 1;
            }
        }
        let lateness = (i128::from(m) - i128::from(ts)).clamp(0, i128::from(u64::MAX)) as u64;
        self.interval.record(lateness);
        let warn = (lateness > self.warn_above).then(|| {
            self.warn_above = u64::MAX;
            self.suggested_grace()
        });
        Noted { lateness, warn }
    }

    /// The lateness of the points since the last call (or start), `None`
    /// if there were none; starts the next interval.
    pub fn take_interval(&mut self) -> Option<Interval> {
        let h = &self.interval;
        if h.is_empty() {
            return None;
        }
        let figures = Interval {
            max: h.max(),
            p99: shown_quantile(h, 0.99),
            p999: shown_quantile(h, 0.999),
            headroom: i128::from(self.grace) - i128::from(h.max()),
        };
        self.interval = Histogram::default();
        Some(figures)
    }

    /// The histogram of the current interval (a whole replay's, unless an
    /// interval was taken).
    pub fn histogram(&self) -> &Histogram {
        &self.interval
    }

    /// The smallest grace that would have made no point since start late.
    pub fn smallest_grace(&self) -> i128 {
        self.need.max(0)
    }

    /// The points that a grace one unit below [`Lateness::smallest_grace`]
    /// would have made late (0 when it is 0).
    pub fn at_smallest_grace(&self) -> u64 {
        self.at_need
    }

    /// The grace `analyze` would suggest for what was seen since start.
    pub fn suggested_grace(&self) -> i128 {
        suggested_grace(self.need, self.period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    /// The margin rule of docs/analyze.md, on the cases it names.
    #[test]
    fn the_suggested_grace_follows_the_margin_rule() {
        const S: i128 = 1_000_000_000;
        for (need, period, want) in [
            // In order: one period.
            (0, 5 * S, 5 * S),
            // The shipped recording: 442.480688ms + 5s → 6s.
            (442_480_688, 5 * S, 6 * S),
            // Telegraf's default 10s flush under the default 5s period:
            // the default grace.
            (10 * S, 5 * S, 15 * S),
            // 1.25 × once it exceeds a period.
            (40 * S, 5 * S, 50 * S),
            (40 * S + 1, 5 * S, 51 * S),
            (S / 2, S / 2, S),
            // Negative needs (every point ahead of its window) are 0.
            (-7, 5 * S, 5 * S),
        ] {
            assert_eq!(
                suggested_grace(need, period as i64),
                want,
                "{need} {period}"
            );
        }
    }

    #[test]
    fn quantiles_round_up_to_three_digits() {
        let mut h = Histogram::default();
        h.record(450_363_391);
        h.record(999);
        h.record(500_000_000);
        assert_eq!(shown_quantile(&h, 0.01), 999);
        let mid = shown_quantile(&h, 0.5);
        assert!((450_363_391..=451_000_000).contains(&mid), "{mid}");
        assert_eq!(mid % 1_000_000, 0);
        assert_eq!(shown_quantile(&h, 1.0), 500_000_000);
    }

    #[test]
    fn lateness_is_behind_the_newest_before_the_point() {
        let mut l = Lateness::new(10 * S, 5 * S, 1);
        assert_eq!(l.note(None, 100 * S, WindowEnd(105 * S)).lateness, 0);
        assert_eq!(
            l.note(Some(100 * S), 97 * S, WindowEnd(100 * S)).lateness,
            3 * S as u64
        );
        // A point ahead of M is 0 late.
        assert_eq!(
            l.note(Some(100 * S), 101 * S, WindowEnd(105 * S)).lateness,
            0
        );
        // need = M − end + unit of the second point.
        assert_eq!(l.smallest_grace(), 1);
        assert_eq!(l.at_smallest_grace(), 1);
        let i = l.take_interval().unwrap();
        assert_eq!((i.max, i.headroom), (3 * S as u64, i128::from(7 * S)));
        assert_eq!(l.take_interval(), None);
    }

    #[test]
    fn the_warning_comes_once_past_ninety_percent_of_the_grace() {
        let mut l = Lateness::new(10 * S, 5 * S, 1);
        l.note(None, 100 * S, WindowEnd(105 * S));
        // 9 s behind: headroom exactly 10 %, not below.
        let n = l.note(Some(100 * S), 91 * S, WindowEnd(95 * S));
        assert_eq!(n.warn, None);
        let n = l.note(Some(100 * S), 91 * S - 1, WindowEnd(95 * S));
        // need = 100 − 95 s + 1 ns → max(1.25 × that, that + 5 s) → 11 s.
        assert_eq!(n.warn, Some(i128::from(11 * S)));
        assert_eq!(l.note(Some(100 * S), 80 * S, WindowEnd(85 * S)).warn, None);
    }
}
