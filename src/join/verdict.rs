//! The join's verdict on a forward (series, window) pair that got no row:
//! why, as `analyze` counts and names it.

use crate::schema::field;

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
