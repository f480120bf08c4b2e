//! What the engine tells an observer about its own decisions: where each
//! delay point went, and what became of each forward (series, window) pair
//! at join time. `analyze` ([`crate::analyze`]) is built on it, so its
//! figures come from the code that makes a replay's rows and cannot drift
//! from them.
//!
//! The engine is generic over its observer; the processor runs with `()`,
//! whose methods are empty and inlined away, so the hook costs nothing
//! when nobody listens.

use crate::join::NoRow;
use crate::schema::{Kind, NetworkSeries, WindowStart};

/// A delay point the engine did not skip: aggregated into its window, or
/// late.
#[derive(Debug, Clone, Copy)]
pub struct Placed<'a> {
    /// Network or service.
    pub kind: Kind,
    /// Its encoded series key ([`crate::schema::SeriesKey`]).
    pub key: &'a [u8],
    /// Its event time, in ns.
    pub ts: i64,
    /// The window it belongs to.
    pub window: WindowStart,
    /// Whether that window had already closed.
    pub late: bool,
    /// Its lateness ([`crate::lateness`]): the newest timestamp accepted
    /// before it minus its own, at least 0.
    pub lateness: u64,
}

/// Told by the engine, in input order, of every non-skipped delay point and
/// every forward (series, window) pair it joins.
pub trait Observer {
    /// Whether anybody listens: if so, the join also remembers which cache
    /// entries `--cache-ttl` freed, to tell [`NoRow::Expired`] apart, and
    /// the engine leaves the grace headroom warning to the listener's
    /// report (`analyze` suggests a grace of its own).
    const LISTENS: bool = true;

    /// A delay point was aggregated or found late.
    fn placed(&mut self, point: &Placed<'_>);

    /// A forward series that has points in the closed window `window` got
    /// a row (`Ok`) or did not, and why.
    fn joined(
        &mut self,
        window: WindowStart,
        series: &NetworkSeries<'_>,
        verdict: Result<(), NoRow>,
    );
}

/// Nobody listens: the processor's engine.
impl Observer for () {
    const LISTENS: bool = false;

    #[inline(always)]
    fn placed(&mut self, _: &Placed<'_>) {}

    #[inline(always)]
    fn joined(&mut self, _: WindowStart, _: &NetworkSeries<'_>, _: Result<(), NoRow>) {}
}
