//! splitmix64, the router's one source of random choices (the lags of
//! `--disorder`, the partitions of keyless records): small, fast and the
//! same on every platform, so a `--seed` names one split for good.

/// A splitmix64 generator.
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// The sequence of `seed` (any value).
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `[0, n)` (multiply-shift).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// splitmix64's finaliser: spreads the bits of `z` (also used to derive
/// one seed per stream from the `--seed`).
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
