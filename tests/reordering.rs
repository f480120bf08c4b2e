//! What arrival order within grace changes, measured on the realistic
//! recording (`testdata/golden/realistic/input.lp`, 6 minutes, 40
//! bidirectional paths; every value a float).
//!
//! The recording is replayed as it is, and again after a heavy-tailed
//! reordering that stays within grace: every delay point arrives `d` after
//! its own timestamp, `d` drawn from a Lomax (Pareto II) distribution of
//! shape 1 and scale `SCALE_MS`, `P(d > x) = 1 / (1 + x / SCALE_MS)` (half
//! the points within 100 ms, 1 in 11 over a second, 1 in 51 over 5 s: a
//! tail so heavy that its mean is infinite), capped 1 ms below `--grace`;
//! lines are sorted by arrival. The draw is a division of the seeded
//! generator's output, so the same on every platform.
//! A point then arrives before any point more than `d` newer than it, so
//! its window is still open: no point is late, and the same points reach
//! the same windows in another order.
//!
//! The rows must be the same rows (tags, timestamps, field keys); their
//! values may differ only in the last bits, because an f64 sum depends on
//! the order of its terms. The test asserts the exact count of rows that
//! differ and the largest relative difference, the figures that
//! `docs/behaviour.md` gives ("What arrival order changes"):
//!
//! ```sh
//! cargo test --test reordering -- --nocapture
//! ```

#[path = "support/rng.rs"]
mod rng;
mod support;

use std::collections::BTreeMap;

use support::{rows, Row, Setup};

const INPUT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/golden/realistic/input.lp"
);
/// The program's default grace, given explicitly so the cap below follows it.
const GRACE_MS: i64 = 15_000;
/// Lomax scale (shape 1): the median delay.
const SCALE_MS: f64 = 100.0;
/// The largest delay drawn: 1 ms short of the grace.
const CAP_MS: i64 = GRACE_MS - 1;
const SEED: u64 = 16;

/// What the reordered replay changed.
#[derive(Debug, PartialEq)]
struct Change {
    rows: usize,
    differ: usize,
    values_differ: usize,
    max_relative: f64,
    max_ulps: u64,
    delays_capped: usize,
    delays_over_5s: usize,
}

#[test]
fn reordering_within_grace_changes_only_last_bits() {
    let input = std::fs::read(INPUT).unwrap_or_else(|e| panic!("{INPUT}: {e}"));
    let (reordered, delays) = reorder(&input, SEED);
    assert_ne!(reordered, input, "the reordering changed nothing");

    let setup = Setup::new(&format!("--grace {GRACE_MS}ms"));
    let plain = setup.replay_whole(&input);
    let moved = setup.replay_whole(&reordered);
    assert_eq!(plain.counters.late, 0, "late points in the plain replay");
    assert_eq!(moved.counters.late, 0, "late points after reordering");
    assert_eq!(moved.counters.aggregated, plain.counters.aggregated);

    let a = by_key(rows(&plain.out, "e2e_delays").expect("rows"));
    let b = by_key(rows(&moved.out, "e2e_delays").expect("rows"));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "other rows after reordering"
    );

    let mut change = Change {
        rows: a.len(),
        differ: 0,
        values_differ: 0,
        max_relative: 0.0,
        max_ulps: 0,
        delays_capped: delays.iter().filter(|d| **d == CAP_MS * 1_000_000).count(),
        delays_over_5s: delays.iter().filter(|d| **d > 5_000_000_000).count(),
    };
    for (key, x) in &a {
        let y = &b[key];
        let names = |r: &Row| r.values.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(names(x), names(y), "field keys of {key:?}");
        let mut differs = false;
        for ((_, u), (_, v)) in x.values.iter().zip(&y.values) {
            if u.to_bits() == v.to_bits() {
                continue;
            }
            differs = true;
            change.values_differ += 1;
            let relative = (u - v).abs() / u.abs().max(v.abs());
            change.max_relative = change.max_relative.max(relative);
            change.max_ulps = change.max_ulps.max(u.to_bits().abs_diff(v.to_bits()));
        }
        change.differ += usize::from(differs);
    }
    eprintln!(
        "{} delay points, {} delayed more than 5 s, {} by the cap ({CAP_MS} ms); \
         {} of {} rows differ ({} values), largest relative difference {:e} ({} ulp)",
        delays.len(),
        change.delays_over_5s,
        change.delays_capped,
        change.differ,
        change.rows,
        change.values_differ,
        change.max_relative,
        change.max_ulps
    );
    assert_eq!(
        change,
        Change {
            rows: 5770,
            differ: 1063,
            values_differ: 1214,
            max_relative: 4.2763958458475334e-16,
            max_ulps: 3,
            delays_capped: 357,
            delays_over_5s: 1009,
        }
    );
}

/// A row's identity: its tags and timestamp.
type Key = (BTreeMap<Vec<u8>, Vec<u8>>, Option<i64>);

/// The rows by (tags, timestamp); each key once.
fn by_key(rows: Vec<Row>) -> BTreeMap<Key, Row> {
    let mut map = BTreeMap::new();
    for row in rows {
        let key = (row.tags.clone(), row.timestamp);
        assert!(map.insert(key, row).is_none(), "a row twice");
    }
    map
}

/// The lines of `input` sorted by a new arrival time: a delay point's
/// timestamp plus a heavy-tailed delay (capped at `CAP_MS`), any other
/// line's timestamp. Returns the reordered input and the delays drawn (ns).
fn reorder(input: &[u8], seed: u64) -> (Vec<u8>, Vec<i64>) {
    let mut rng = rng::Rng::new(seed);
    let mut delays = Vec::new();
    let mut keyed: Vec<(i64, &[u8])> = Vec::new();
    for line in input.split_inclusive(|&b| b == b'\n') {
        let text = std::str::from_utf8(line).expect("UTF-8");
        let ts: i64 = text
            .trim_end()
            .rsplit_once(' ')
            .and_then(|(_, ts)| ts.parse().ok())
            .unwrap_or_else(|| panic!("no timestamp: {text:?}"));
        let delay = if text.starts_with("network_delays,") || text.starts_with("service_delays,") {
            // Lomax of shape 1: SCALE · (1/U − 1), U uniform in (0, 1].
            let u = 1.0 - rng.f64();
            let ms = SCALE_MS * (1.0 / u - 1.0);
            let ns = if ms >= CAP_MS as f64 {
                CAP_MS * 1_000_000
            } else {
                (ms * 1e6) as i64
            };
            delays.push(ns);
            ns
        } else {
            0
        };
        keyed.push((ts + delay, line));
    }
    // Stable: lines with one arrival time keep their order.
    keyed.sort_by_key(|(arrival, _)| *arrival);
    (
        keyed
            .into_iter()
            .flat_map(|(_, l)| l.iter().copied())
            .collect(),
        delays,
    )
}
