//! What the engine tells an observer about its own decisions: where each
//! delay point went, and what became of each forward (series, window) pair
//! at join time. `analyze` ([`crate::analyze`]) is built on it, so its
//! figures come from the code that makes a replay's rows and cannot drift
//! from them.
//!
//! The engine is generic over its observer; the processor runs with `()`,
//! whose methods are empty and inlined away, so the hook costs nothing
//! when nobody listens.

use crate::schema::{field, Kind, NetworkSeries, WindowStart};

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
}

/// Why a forward (series, window) pair has no row: the first that applies,
/// in the order SPEC.md gives ("Analyzing a recording").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRow {
    /// No service was ever cached for the target SFR.
    NoService,
    /// No reverse series `(path, target, source)` was ever cached.
    NoReverse,
    /// The service or the reverse series was cached but expired by
    /// `--cache-ttl`.
    Expired,
    /// A value of the row is null: the index in [`field::ROW`] of the first.
    Null(usize),
    /// The row cannot be written in the portable subset, and why.
    Unwritable(&'static str),
}

impl NoRow {
    /// How many kinds of reason there are ([`NoRow::index`] is below it).
    pub const KINDS: usize = 4 + field::ROW.len();

    /// A dense index per kind of reason, in precedence order.
    pub fn index(self) -> usize {
        match self {
            NoRow::NoService => 0,
            NoRow::NoReverse => 1,
            NoRow::Expired => 2,
            NoRow::Null(i) => 3 + i,
            NoRow::Unwritable(_) => 3 + field::ROW.len(),
        }
    }

    /// The name of the reason at `index`, as reports print it:
    /// `no_service`, `no_reverse`, `expired`, `null_delay_forward`, …,
    /// `unwritable`.
    pub fn name(index: usize) -> &'static str {
        const NULL: [&str; 6] = [
            "null_delay_forward",
            "null_delay_reverse",
            "null_delay_service",
            "null_avg_request_size",
            "null_avg_response_size",
            "null_avg_bandwidth",
        ];
        match index {
            0 => "no_service",
            1 => "no_reverse",
            2 => "expired",
            i if i < 3 + NULL.len() => NULL[i - 3],
            _ => "unwritable",
        }
    }
}

/// Told by the engine, in input order, of every non-skipped delay point and
/// every forward (series, window) pair it joins.
pub trait Observer {
    /// Whether anybody listens: if so, the join also remembers which cache
    /// entries `--cache-ttl` freed, to tell [`NoRow::Expired`] apart.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_have_one_index_and_name_each() {
        let all = [
            NoRow::NoService,
            NoRow::NoReverse,
            NoRow::Expired,
            NoRow::Null(0),
            NoRow::Null(1),
            NoRow::Null(2),
            NoRow::Null(3),
            NoRow::Null(4),
            NoRow::Null(5),
            NoRow::Unwritable("x"),
        ];
        assert_eq!(all.len(), NoRow::KINDS);
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        for (i, f) in field::ROW.iter().enumerate() {
            let name = NoRow::name(3 + i);
            assert_eq!(name.strip_prefix("null_").unwrap().as_bytes(), *f);
        }
        assert_eq!(NoRow::name(NoRow::KINDS - 1), "unwritable");
    }
}
