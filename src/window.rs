//! Event-time windows: `[k·P, (k+1)·P)` on the Unix epoch, a running mean
//! per series and field in each open window, and monotone closing as the
//! watermark rises.
//!
//! State is proportional to the open (series, window) pairs: each point is
//! folded into running sums and forgotten.

use std::collections::BTreeMap;

use foldhash::HashMap;

use crate::schema::{
    Kind, NetworkMeans, SeriesKey, ServiceMeans, Values, WindowEnd, WindowStart, TIME_MAX, TIME_MIN,
};

/// Per-series means of one open window.
#[derive(Debug, Default, Clone)]
pub struct Window {
    /// Network series and their means.
    pub network: HashMap<SeriesKey, NetworkMeans>,
    /// Service series and their means.
    pub service: HashMap<SeriesKey, ServiceMeans>,
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
#[derive(Debug, Clone)]
pub struct Windows {
    period: i64,
    open: BTreeMap<WindowStart, Window>,
    /// Every window ending at or before this is closed; only grows.
    closed_until: WindowEnd,
    /// The largest timestamp accepted into a window.
    max_ts: Option<i64>,
    pairs: usize,
    /// Closed windows given back ([`Windows::recycle`]), emptied: their
    /// maps keep their capacity, so a new window does not rehash as it
    /// fills.
    spare: Vec<Window>,
}

/// Closed windows kept for reuse: one is opened about as often as one
/// closes.
const SPARE: usize = 2;

impl Windows {
    /// No window open yet. `period` is in ns.
    pub fn new(period: i64) -> Self {
        Windows {
            period,
            open: BTreeMap::new(),
            closed_until: WindowEnd(i64::MIN),
            max_ts: None,
            pairs: 0,
            spare: Vec::new(),
        }
    }

    /// Windows as a state file restores them: the frontier, the newest
    /// event time and the open windows (checked by the caller).
    pub fn from_parts(
        period: i64,
        closed_until: WindowEnd,
        max_ts: Option<i64>,
        open: BTreeMap<WindowStart, Window>,
    ) -> Self {
        let pairs = open.values().map(Window::pairs).sum();
        Windows {
            period,
            open,
            closed_until,
            max_ts,
            pairs,
            spare: Vec::new(),
        }
    }

    /// The open windows, oldest first.
    pub fn open(&self) -> impl Iterator<Item = (&WindowStart, &Window)> {
        self.open.iter()
    }

    /// The window `ts` falls in, or `None` when its start or end lies
    /// outside InfluxDB's time range.
    pub fn window_of(&self, ts: i64) -> Option<WindowStart> {
        // In i64: overflow can only mean "below TIME_MIN" or "above TIME_MAX".
        let start = ts.div_euclid(self.period).checked_mul(self.period)?;
        let end = start.checked_add(self.period)?;
        (start >= TIME_MIN && end <= TIME_MAX).then_some(WindowStart(start))
    }

    /// The largest timestamp accepted so far.
    pub fn max_ts(&self) -> Option<i64> {
        self.max_ts
    }

    /// The closing frontier: every window ending at or before it is closed.
    pub fn closed_until(&self) -> WindowEnd {
        self.closed_until
    }

    /// Open (series, window) pairs.
    pub fn pairs(&self) -> usize {
        self.pairs
    }

    /// Whether the window starting at `start` has closed.
    pub fn is_closed(&self, start: WindowStart) -> bool {
        start.end(self.period) <= self.closed_until
    }

    /// Adds a point's values to its series in its window. `room` says
    /// whether a new (series, window) pair may be created.
    pub fn add(
        &mut self,
        kind: Kind,
        key: &[u8],
        ts: i64,
        start: WindowStart,
        values: &Values,
        room: bool,
    ) -> Result<(), Refused> {
        if self.is_closed(start) {
            return Err(Refused::Late);
        }
        let window = match self.open.get_mut(&start) {
            Some(w) => w,
            None if !room => return Err(Refused::Full),
            None => self
                .open
                .entry(start)
                .or_insert_with(|| self.spare.pop().unwrap_or_default()),
        };
        let before = window.pairs();
        let added = match kind {
            Kind::Network => fold(&mut window.network, key, room, |m| m.add(values)),
            Kind::Service => fold(&mut window.service, key, room, |m| m.add(values)),
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
        if watermark < self.closed_until.0.saturating_add(self.period) {
            return Vec::new();
        }
        let frontier = boundary(watermark, self.period).0;
        if frontier <= self.closed_until.0 {
            return Vec::new();
        }
        self.closed_until = WindowEnd(frontier);
        let mut closed = Vec::new();
        while let Some(entry) = self.open.first_entry() {
            if entry.key().end(self.period).0 > frontier {
                break;
            }
            let (start, window) = entry.remove_entry();
            self.pairs -= window.pairs();
            closed.push((start, window));
        }
        closed
    }

    /// Takes back a closed window once its rows are written, to reuse its
    /// maps.
    pub fn recycle(&mut self, mut window: Window) {
        if self.spare.len() < SPARE {
            window.network.clear();
            window.service.clear();
            self.spare.push(window);
        }
    }

    /// Raises the frontier to `written` without closing anything: the open
    /// windows ending at or before it are dropped (their rows were written
    /// by an earlier process). Returns how many.
    pub fn drop_until(&mut self, written: WindowEnd) -> usize {
        if written <= self.closed_until {
            return 0;
        }
        self.closed_until = written;
        let mut dropped = 0;
        while let Some(entry) = self.open.first_entry() {
            if entry.key().end(self.period) > written {
                break;
            }
            self.pairs -= entry.remove().pairs();
            dropped += 1;
        }
        dropped
    }

    /// Closes every open window (at stop), oldest first.
    pub fn close_all(&mut self) -> Vec<(WindowStart, Window)> {
        self.pairs = 0;
        if let Some((last, _)) = self.open.last_key_value() {
            self.closed_until = self.closed_until.max(last.end(self.period));
        }
        std::mem::take(&mut self.open).into_iter().collect()
    }
}

/// The window boundary at or below `watermark`: where the closing
/// frontier goes when the watermark reaches it (`i64::MIN` when that lies
/// below the range of `i64`). `analyze` simulates other graces with it.
pub fn boundary(watermark: i64, period: i64) -> WindowEnd {
    WindowEnd(
        watermark
            .div_euclid(period)
            .checked_mul(period)
            .unwrap_or(i64::MIN),
    )
}

/// Folds a point into a series' means; `false` if the series is new and
/// there is no room for it.
fn fold<M: Default>(
    series: &mut HashMap<SeriesKey, M>,
    key: &[u8],
    room: bool,
    add: impl FnOnce(&mut M),
) -> bool {
    let means = match series.get_mut(key) {
        Some(m) => m,
        None if room => series.entry(SeriesKey::from_encoded(key)).or_default(),
        None => return false,
    };
    add(means);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lp::Number;

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
    fn closing_is_monotone_and_late_points_are_refused() {
        let mut w = Windows::new(P);
        let one = [Some(Number::Float(1.0)), None, None];
        let key = SeriesKey::new([b"p", b"a", b"b"]);
        let s0 = w.window_of(1).unwrap();
        w.add(Kind::Network, key.as_bytes(), 1, s0, &one, true)
            .unwrap();
        assert!(w.advance(P - 1).is_empty());
        let closed = w.advance(P);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].0, WindowStart(0));
        assert_eq!(closed[0].1.network[&key].latency.value(), Some(1.0));
        assert_eq!(
            w.add(Kind::Network, key.as_bytes(), 2, s0, &one, true),
            Err(Refused::Late)
        );
        assert!(w.advance(0).is_empty(), "the frontier never moves back");
        assert_eq!(w.closed_until(), WindowEnd(P));
        assert_eq!(w.pairs(), 0);
    }

    #[test]
    fn a_full_cap_refuses_new_pairs_only() {
        let mut w = Windows::new(P);
        let one = [Some(Number::Float(1.0)), None, None];
        let a = SeriesKey::new([b"p", b"a", b"b"]);
        let b = SeriesKey::new([b"p", b"b", b"a"]);
        w.add(Kind::Network, a.as_bytes(), 1, WindowStart(0), &one, true)
            .unwrap();
        assert_eq!(
            w.add(Kind::Network, b.as_bytes(), 1, WindowStart(0), &one, false),
            Err(Refused::Full)
        );
        assert_eq!(
            w.add(Kind::Network, a.as_bytes(), 2, WindowStart(0), &one, false),
            Ok(())
        );
        assert_eq!(w.pairs(), 1);
    }
}
