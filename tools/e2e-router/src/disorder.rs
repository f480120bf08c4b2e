//! `--disorder`: one instance's records in the order its consumers would
//! receive them. The streams an instance reads (each of its partitions, the
//! services topic, the other records) are merged as independent Kafka
//! fetches would merge them: each stream lags behind the recording's event
//! time by a random amount in `[0, D]`, drawn again every `D` of event time,
//! and a stream never reorders itself. A record is then delivered at most
//! `D` (event time) after the records of the recording that precede it; an
//! aggregator whose `--grace` covers the recording's own disorder plus `D`
//! counts no point late.

use crate::route::{Record, Route};
use crate::splitmix::{mix, SplitMix64};

/// Reorders one instance's records as its consumers would receive them: the
/// records of each stream stay in order; each stream runs behind the
/// recording's clock by a lag in `[0, lag_max]` that is drawn again every
/// `lag_max` of clock. The lags are drawn from `seed`, `instance` and the
/// stream, so each instance's shard is reproducible on its own.
pub fn interleave(
    shard: &mut Vec<&Record>,
    lag_max: i64,
    seed: u64,
    instance: u64,
    partitions: u32,
) {
    struct Stream {
        rng: SplitMix64,
        lag: i64,
        next_draw: Option<i64>,
        last: i64,
    }
    let stream_of = |route: Route| match route {
        Route::Partition(p) => p as usize,
        Route::Services => partitions as usize,
        Route::Other => partitions as usize + 1,
    };
    let mut streams: Vec<Stream> = (0..partitions as u64 + 2)
        .map(|s| Stream {
            rng: SplitMix64::new(seed ^ mix(instance << 32 | s)),
            lag: 0,
            next_draw: None,
            last: i64::MIN,
        })
        .collect();
    let mut keyed: Vec<(i64, usize, &Record)> = Vec::with_capacity(shard.len());
    for (index, rec) in shard.iter().enumerate() {
        let s = &mut streams[stream_of(rec.route)];
        let arrival = match rec.clock {
            None => i64::MIN,
            Some(clock) => {
                if s.next_draw.is_none_or(|at| clock >= at) {
                    s.lag = s.rng.below(lag_max as u64 + 1) as i64;
                    s.next_draw = Some((clock.div_euclid(lag_max) + 1).saturating_mul(lag_max));
                }
                clock.saturating_add(s.lag)
            }
        };
        s.last = s.last.max(arrival);
        keyed.push((s.last, index, rec));
    }
    keyed.sort_unstable_by_key(|&(arrival, index, _)| (arrival, index));
    *shard = keyed.into_iter().map(|(_, _, rec)| rec).collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(route: Route, clock: i64) -> Record {
        Record {
            start: 0,
            end: 0,
            route,
            clock: Some(clock),
        }
    }

    #[test]
    fn interleave_keeps_each_stream_in_order_and_bounds_the_lag() {
        let lag = 50;
        let records: Vec<Record> = (0..3000)
            .map(|k| {
                let route = match k % 3 {
                    0 => Route::Partition(0),
                    1 => Route::Partition(1),
                    _ => Route::Services,
                };
                rec(route, k)
            })
            .collect();
        let mut shard: Vec<&Record> = records.iter().collect();
        interleave(&mut shard, lag, 7, 0, 2);
        assert_eq!(shard.len(), records.len());
        let mut moved = 0;
        for route in [Route::Partition(0), Route::Partition(1), Route::Services] {
            let clocks: Vec<i64> = shard
                .iter()
                .filter(|r| r.route == route)
                .map(|r| r.clock.unwrap())
                .collect();
            assert!(
                clocks.windows(2).all(|w| w[0] < w[1]),
                "{route:?} reordered"
            );
        }
        let mut newest = 0;
        for (at, r) in shard.iter().enumerate() {
            let clock = r.clock.unwrap();
            assert!(newest - clock <= lag, "a record {} behind", newest - clock);
            newest = newest.max(clock);
            moved += usize::from(clock != at as i64);
        }
        assert!(moved > 100, "only {moved} records moved: no disorder");
    }
}
