//! The one seeded generator of the tests, benches and examples: random
//! inputs that are the same on every run and every platform.
//!
//! It is xoshiro256++ from `rand_xoshiro` (a dev-dependency), seeded with
//! `seed_from_u64` (the seed expanded by SplitMix64): a published algorithm
//! whose output the crate keeps stable, so a seed names one sequence for
//! good. The helpers below are integer arithmetic on its output, so they
//! are as stable.
//!
//! Included with `#[path = "<relative path>/tests/support/rng.rs"] mod rng;`.
//! Not part of `support/mod.rs`, which the fuzz crate includes and which
//! must need nothing but the crate and std.

// Each user compiles this module and uses only part of it.
#![allow(dead_code)]

use rand_xoshiro::rand_core::{Rng as _, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A seeded xoshiro256++ and the draws the tests make from it.
#[derive(Debug, Clone)]
pub struct Rng(Xoshiro256PlusPlus);

impl Rng {
    /// The sequence of `seed` (any value, 0 too).
    pub fn new(seed: u64) -> Rng {
        Rng(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1), from the top 53 bits.
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [0, n) (multiply-shift: no division, and a bias far
    /// below 2^-32 for any n a test uses); 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// [`Rng::below`] for an `i64` bound (a negative one counts as 0).
    pub fn below_i(&mut self, n: i64) -> i64 {
        self.below(n.max(0) as u64) as i64
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f64()
    }

    /// One of `xs`, uniformly; panics if `xs` is empty.
    pub fn choice<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    /// Shuffles `xs` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            xs.swap(i, j);
        }
    }
}
