//! A histogram of non-negative integers with bounded relative error, in a
//! fixed array: the lateness distribution of a recording of any length.
//!
//! Log-linear buckets as in HdrHistogram: values below 2^[`BITS`] each
//! have their own bucket; above, every power of two is cut into
//! 2^([`BITS`]−1) equal buckets, so a bucket's width is at most 1/512 of
//! its lower bound. 28,672 counters cover all of `u64` (224 KiB). Written
//! here rather than taken from the `hdrhistogram` crate, whose current
//! release needs a newer Rust than this crate's `rust-version`.

/// Significant bits kept.
const BITS: u32 = 10;
/// Values below this have a bucket of their own.
const EXACT: u64 = 1 << BITS;
/// Buckets per power of two above `EXACT`.
const HALF: u64 = EXACT / 2;
/// Buckets in all.
const BUCKETS: usize = ((64 - BITS as usize) + 1) * HALF as usize + HALF as usize;

/// See the module doc.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    /// Counts one value.
    #[inline]
    pub fn record(&mut self, value: u64) {
        self.counts[index(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    /// Values counted.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether no value was counted.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The largest value, exactly (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The complementary CDF at the bucket bounds: for each bucket that
    /// holds values, in order, its upper bound (never above the maximum)
    /// and how many values lie above it. Exact at those bounds: every value
    /// of a bucket is at most its bound, every value of a later one above.
    pub fn above(&self) -> Vec<(u64, u64)> {
        let mut seen = 0;
        let mut out = Vec::new();
        for (i, &c) in self.counts.iter().enumerate() {
            if c > 0 {
                seen += c;
                out.push((upper(i).min(self.max), self.total - seen));
            }
        }
        out
    }

    /// The value at quantile `q` (0 < q ≤ 1): the smallest bucket that holds
    /// the ⌈q·n⌉-th smallest value, given as its upper bound (never above
    /// the maximum), so that the true quantile is at most 0.2 % lower.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i).min(self.max);
            }
        }
        self.max
    }
}

/// The bucket of `v`.
#[inline]
fn index(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let shift = (63 - v.leading_zeros()) - (BITS - 1);
    ((u64::from(shift) << (BITS - 1)) + (v >> shift)) as usize
}

/// The largest value in bucket `i`.
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < EXACT {
        return i;
    }
    let shift = (i >> (BITS - 1)) - 1;
    let mantissa = i - (shift << (BITS - 1));
    // The last bucket's bound is u64::MAX: (mantissa + 1) << shift overflows.
    ((u128::from(mantissa + 1) << shift) - 1).min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        assert_eq!(index(0), 0);
        assert_eq!(index(EXACT - 1), EXACT as usize - 1);
        assert_eq!(index(EXACT), EXACT as usize);
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        for v in [
            EXACT,
            1_500,
            1_000_000_007,
            15_000_000_000,
            u64::MAX / 3,
            u64::MAX,
        ] {
            let i = index(v);
            assert!(upper(i) >= v, "{v}");
            assert!(i == 0 || upper(i - 1) < v, "{v}");
            let width = upper(i) - upper(i - 1);
            assert!(width <= v / 512 + 1, "{v}: width {width}");
        }
    }

    #[test]
    fn quantiles_within_the_relative_error() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v * 1_000);
        }
        assert_eq!(h.len(), 100_000);
        assert_eq!(h.max(), 100_000_000);
        assert_eq!(h.quantile(1.0), 100_000_000);
        for (q, exact) in [(0.5, 50_000_000u64), (0.9, 90_000_000), (0.999, 99_900_000)] {
            let got = h.quantile(q);
            assert!(got >= exact && got - exact <= exact / 512, "q {q}: {got}");
        }
        let mut small = Histogram::default();
        for v in [0, 0, 0, 7] {
            small.record(v);
        }
        assert_eq!(small.quantile(0.5), 0);
        assert_eq!(small.quantile(0.99), 7);
        assert_eq!(Histogram::default().quantile(0.5), 0);
    }
}
