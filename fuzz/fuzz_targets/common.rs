//! Shared by the fuzz targets: small engine settings (so that windows close,
//! `--max-series` and `--max-line-size` bite on short inputs) and the checks
//! every run of the engine must pass. The engine is run by the test kit
//! (`tests/support/mod.rs`), as in `cargo test`.

// Each target compiles this module and uses only part of it.
#![allow(dead_code)]

use std::sync::OnceLock;

#[path = "../../tests/support/mod.rs"]
mod support;

pub use support::Setup;

/// Flags common to every variant: short windows.
const BASE: &str = "--period 1s --grace 2s --max-series 50";

/// Extra flags of each variant.
const VARIANTS: [&str; 6] = [
    "--max-line-size 4KiB",
    "--max-line-size 4KiB --drop-original",
    "--max-line-size 4KiB --cache-ttl 3s",
    "--max-line-size 4KiB --precision s",
    // Short enough that fuzz inputs (4 KiB by default) often exceed it.
    "--max-line-size 40",
    "--max-line-size 40 --max-series 3 --precision ms",
];

/// The setup of variant `v` (any byte: taken modulo the variant count).
pub fn setup(v: u8) -> &'static Setup {
    static ALL: OnceLock<Vec<Setup>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        VARIANTS
            .iter()
            .map(|extra| Setup::new(&format!("{BASE} {extra}")))
            .collect()
    });
    &all[usize::from(v) % all.len()]
}

/// Runs `input` in one chunk and in `chunks`, and checks that both give
/// the same output and counters, that the accounting identity holds after
/// every chunk, and that the output is valid (`support::check_output`).
pub fn check_chunking(setup: &Setup, input: &[u8], chunks: &[&[u8]]) {
    debug_assert_eq!(chunks.concat(), input);
    let whole = setup.replay(&[input]).unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = support::check_output(setup, &whole) {
        panic!("{e}");
    }
    if chunks.len() > 1 {
        if let Err(e) = setup.check_split(&whole, chunks) {
            panic!("{e}");
        }
    }
}
