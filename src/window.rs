//! Event-time windows: `[k·P, (k+1)·P)` on the Unix epoch, a running mean
//! per series and field in each open window, and monotone closing as the
//! watermark rises.
//!
//! State is proportional to the open (series, window) pairs: each point is
//! folded into running sums and forgotten.

use std::collections::BTreeMap;

use foldhash::HashMap;

use crate::lp::Number;

/// The earliest and latest instants InfluxDB can store, in ns.
pub const TIME_MIN: i64 = -9_223_372_036_854_775_806;
/// See [`TIME_MIN`].
pub const TIME_MAX: i64 = 9_223_372_036_854_775_806;

/// The start of a window, in ns since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WindowStart(pub i64);

/// The running mean of one field over the points that carried it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mean {
    count: u64,
    /// Integers and unsigned values, summed exactly.
    ints: i128,
    /// Floats, summed from `0.0` so that a mean of `-0.0` values is `0.0`.
    floats: f64,
}

impl Mean {
    /// Adds one value.
    pub fn add(&mut self, n: Number) {
        self.count += 1;
        match n {
            Number::Float(f) => self.floats += f,
            Number::Integer(i) => self.ints += i128::from(i),
            Number::Unsigned(u) => self.ints += i128::from(u),
        }
    }

    /// The mean, or `None` when no point carried the field.
    pub fn value(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.ints as f64 + self.floats) / self.count as f64)
    }
}

/// The two kinds of series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `network_delays`: keyed by path, source, target.
    Network,
    /// `service_delays`: keyed by sfr, endpoint, sf_instance.
    Service,
}

/// A series key: its three tag values, length-prefixed into one byte
/// string so that any bytes may occur in them and lookups need no tuple of
/// owned strings.
pub mod key {
    /// Appends the encoding of `parts` to `out`.
    pub fn encode(parts: [&[u8]; 3], out: &mut Vec<u8>) {
        for p in parts {
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(p);
        }
    }

    /// The three parts of an encoded key.
    pub fn decode(key: &[u8]) -> [&[u8]; 3] {
        let mut rest = key;
        let mut part = || {
            let (len, tail) = rest.split_at(4.min(rest.len()));
            let n = u32::from_le_bytes(len.try_into().unwrap_or([0; 4])) as usize;
            let (p, tail) = tail.split_at(n.min(tail.len()));
            rest = tail;
            p
        };
        [part(), part(), part()]
    }
}

/// Per-series means of one open window.
#[derive(Debug, Default)]
pub struct Window {
    /// Network series: (path, source, target) → [latency, bandwidth].
    pub network: HashMap<Box<[u8]>, [Mean; 2]>,
    /// Service series: (sfr, endpoint, sf_instance) →
    /// [response_time, request_size, response_size].
    pub service: HashMap<Box<[u8]>, [Mean; 3]>,
}

impl Window {
    fn pairs(&self) -> usize {
        self.network.len() + self.service.len()
    }
}

/// Why a point was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its window has closed.
    Late,
    /// It needs a new (series, window) pair and the cap is reached.
    Full,
}

/// The open windows, the newest event time and the closing frontier.
#[derive(Debug)]
pub struct Windows {
    period: i64,
    open: BTreeMap<WindowStart, Window>,
    /// Every window ending at or before this is closed; only grows.
    closed_until: i64,
    /// The largest timestamp accepted into a window.
    max_ts: Option<i64>,
    pairs: usize,
}

impl Windows {
    /// No window open yet. `period` is in ns.
    pub fn new(period: i64) -> Self {
        Windows {
            period,
            open: BTreeMap::new(),
            closed_until: i64::MIN,
            max_ts: None,
            pairs: 0,
        }
    }

    /// The window `ts` falls in, or `None` when its start or end lies
    /// outside InfluxDB's time range.
    pub fn window_of(&self, ts: i64) -> Option<WindowStart> {
        // In i64: overflow can only mean "below TIME_MIN" or "above TIME_MAX".
        let start = ts.div_euclid(self.period).checked_mul(self.period)?;
        let end = start.checked_add(self.period)?;
        (start >= TIME_MIN && end <= TIME_MAX).then_some(WindowStart(start))
    }

    /// The window length in ns.
    pub fn period(&self) -> i64 {
        self.period
    }

    /// The largest timestamp accepted so far.
    pub fn max_ts(&self) -> Option<i64> {
        self.max_ts
    }

    /// Open (series, window) pairs.
    pub fn pairs(&self) -> usize {
        self.pairs
    }

    /// Whether the window starting at `start` has closed.
    pub fn is_closed(&self, start: WindowStart) -> bool {
        start.0 + self.period <= self.closed_until
    }

    /// Adds a point's values to its series in its window. `room` says
    /// whether a new (series, window) pair may be created.
    pub fn add(
        &mut self,
        kind: Kind,
        key: &[u8],
        ts: i64,
        start: WindowStart,
        values: &[Option<Number>],
        room: bool,
    ) -> Result<(), Refused> {
        if self.is_closed(start) {
            return Err(Refused::Late);
        }
        let window = match self.open.get_mut(&start) {
            Some(w) => w,
            None if !room => return Err(Refused::Full),
            None => self.open.entry(start).or_default(),
        };
        let before = window.pairs();
        let added = match kind {
            Kind::Network => fold(&mut window.network, key, values, room),
            Kind::Service => fold(&mut window.service, key, values, room),
        };
        if !added {
            if window.pairs() == 0 {
                self.open.remove(&start);
            }
            return Err(Refused::Full);
        }
        self.pairs += window.pairs() - before;
        self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
        Ok(())
    }

    /// Raises the frontier to the window boundary at or below `watermark`
    /// and returns the windows that closed, oldest first.
    pub fn advance(&mut self, watermark: i64) -> Vec<(WindowStart, Window)> {
        // Most calls do not reach the next boundary: no division for them.
        if watermark < self.closed_until.saturating_add(self.period) {
            return Vec::new();
        }
        let frontier = watermark
            .div_euclid(self.period)
            .checked_mul(self.period)
            .unwrap_or(i64::MIN);
        if frontier <= self.closed_until {
            return Vec::new();
        }
        self.closed_until = frontier;
        let mut closed = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            if entry.key().0 + self.period > frontier {
                break;
            }
            let (start, window) = entry.remove_entry();
            self.pairs -= window.pairs();
            closed.push((start, window));
        }
        closed
    }

    /// Closes every open window (at stop), oldest first.
    pub fn close_all(&mut self) -> Vec<(WindowStart, Window)> {
        self.pairs = 0;
        if let Some((last, _)) = self.open.last_key_value() {
            self.closed_until = self.closed_until.max(last.0 + self.period);
        }
        std::mem::take(&mut self.open).into_iter().collect()
    }
}

/// Folds values into a series' means; `false` if the series is new and
/// there is no room for it.
fn fold<const M: usize>(
    series: &mut HashMap<Box<[u8]>, [Mean; M]>,
    key: &[u8],
    values: &[Option<Number>],
    room: bool,
) -> bool {
    let means = match series.get_mut(key) {
        Some(m) => m,
        None if room => series.entry(key.into()).or_insert([Mean::default(); M]),
        None => return false,
    };
    for (mean, value) in means.iter_mut().zip(values) {
        if let Some(v) = value {
            mean.add(*v);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: i64 = 5_000_000_000;

    #[test]
    fn windows_floor_also_below_zero() {
        let w = Windows::new(P);
        assert_eq!(w.window_of(0), Some(WindowStart(0)));
        assert_eq!(w.window_of(P - 1), Some(WindowStart(0)));
        assert_eq!(w.window_of(P), Some(WindowStart(P)));
        assert_eq!(w.window_of(-1), Some(WindowStart(-P)));
        assert_eq!(w.window_of(i64::MAX), None);
        assert_eq!(w.window_of(i64::MIN), None);
    }

    #[test]
    fn means_sum_integers_exactly_and_start_from_zero() {
        let mut m = Mean::default();
        assert_eq!(m.value(), None);
        m.add(Number::Integer(i64::MAX));
        m.add(Number::Integer(i64::MAX));
        m.add(Number::Unsigned(u64::MAX));
        let exact = (2.0 * i64::MAX as f64 + u64::MAX as f64) / 3.0;
        assert_eq!(m.value(), Some(exact));
        let mut z = Mean::default();
        z.add(Number::Float(-0.0));
        assert!(z.value().unwrap().is_sign_positive());
    }

    #[test]
    fn closing_is_monotone_and_late_points_are_refused() {
        let mut w = Windows::new(P);
        let one = [Some(Number::Float(1.0)), None];
        let s0 = w.window_of(1).unwrap();
        w.add(Kind::Network, b"k", 1, s0, &one, true).unwrap();
        assert!(w.advance(P - 1).is_empty());
        let closed = w.advance(P);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].0, WindowStart(0));
        assert_eq!(
            w.add(Kind::Network, b"k", 2, s0, &one, true),
            Err(Refused::Late)
        );
        assert!(w.advance(0).is_empty(), "the frontier never moves back");
        assert_eq!(w.pairs(), 0);
    }

    #[test]
    fn keys_round_trip_any_bytes() {
        let mut k = Vec::new();
        key::encode([b"a\0b", b"", b"\xff,="], &mut k);
        assert_eq!(key::decode(&k), [&b"a\0b"[..], b"", b"\xff,="]);
    }
}
