//! Shared by the fuzz targets: small engine settings (so that windows close,
//! `--max-series` and `--max-line-size` bite on short inputs) and the checks
//! every run of the engine must pass.

// Each target compiles this module and uses only part of it.
#![allow(dead_code)]

use std::sync::OnceLock;

use e2e_aggregator::config::Options;
use e2e_aggregator::input::End;
use e2e_aggregator::pipeline::Pipeline as Engine;
use e2e_aggregator::settings::Settings;
use e2e_aggregator::lp;
use e2e_aggregator::records::Parsed;
use e2e_aggregator::stats::Counters;

/// Flags common to every variant: a replay with short windows.
const BASE: [&str; 8] = [
    "--replay",
    "--period",
    "1s",
    "--grace",
    "2s",
    "--max-series",
    "50",
    "--log-level=error",
];

/// Extra flags of each variant.
const VARIANTS: [&[&str]; 6] = [
    &["--max-line-size", "4KiB"],
    &["--max-line-size", "4KiB", "--drop-original"],
    &["--max-line-size", "4KiB", "--cache-ttl", "3s"],
    &["--max-line-size", "4KiB", "--precision", "s"],
    // Short enough that fuzz inputs (4 KiB by default) often exceed it.
    &["--max-line-size", "40"],
    &[
        "--max-line-size",
        "40",
        "--max-series",
        "3",
        "--precision",
        "ms",
    ],
];

/// The settings of variant `v` (any byte: taken modulo the variant count).
pub fn settings(v: u8) -> &'static Settings {
    static ALL: OnceLock<Vec<Settings>> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        VARIANTS
            .iter()
            .map(|extra| {
                let args = std::iter::once("e2e-aggregator")
                    .chain(BASE)
                    .chain(extra.iter().copied());
                let options = Options::load(args).expect("fuzz settings are valid");
                Settings::new(&options)
            })
            .collect()
    });
    &all[usize::from(v) % all.len()]
}

/// How chunks reach the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `Engine::feed`.
    Feed,
    /// Parsed first with the engine's `Splitter` as if each chunk started a
    /// record (what the parse thread of `run` does), then
    /// `Engine::feed_parsed`.
    Parsed,
}

/// Runs the engine over `chunks` as a replay and returns its output and
/// counters, checking the accounting identity after every step.
pub fn run(settings: &Settings, chunks: &[&[u8]], mode: Mode) -> (Vec<u8>, Counters) {
    let mut engine = Engine::new(settings.clone());
    let splitter = engine.splitter().clone();
    let mut parsed = Parsed::default();
    let mut out = Vec::new();
    for chunk in chunks {
        match mode {
            Mode::Feed => engine.feed(chunk, None),
            Mode::Parsed => {
                splitter.parse(chunk, false, &mut parsed);
                engine.feed_parsed(chunk, &parsed, None);
            }
        }
        assert!(
            engine.counters().balanced(),
            "identity broken after feed: {:?}",
            engine.counters()
        );
        out.append(engine.output());
    }
    engine.finish(End::Eof, None);
    out.append(engine.output());
    let counters = engine.counters().clone();
    assert!(
        counters.balanced(),
        "identity broken after finish: {counters:?}"
    );
    (out, counters)
}

/// Every record written is valid line protocol, one per line passed or row
/// written, and the output ends with a line feed. Lines passed are those of
/// other measurements, and the delay lines too unless `--drop-original`.
pub fn check_output(settings: &Settings, out: &[u8], counters: &Counters) {
    let delay_lines = counters.aggregated + counters.late + counters.skipped_total();
    let passed = counters.other
        + if settings.drop_original {
            0
        } else {
            delay_lines
        };
    assert_eq!(counters.passed, passed, "lines passed: {counters:?}");
    assert!(
        out.is_empty() || out.ends_with(b"\n"),
        "output does not end with a line feed"
    );
    let parsed = lp::parse_all(out);
    for (i, p) in parsed.iter().enumerate() {
        if let Err(e) = p {
            panic!(
                "output record {i} does not parse ({e}); output: \"{}\"",
                out.escape_ascii()
            );
        }
    }
    assert_eq!(
        parsed.len() as u64,
        counters.passed + counters.rows_written,
        "records written vs counters {counters:?}; output: \"{}\"",
        out.escape_ascii()
    );
}

/// Runs `input` in one chunk and in `chunks` (fed, and parsed apart then
/// fed), and checks that all give the same output and counters, and that
/// the output is valid.
pub fn check_chunking(settings: &Settings, input: &[u8], chunks: &[&[u8]]) {
    let (whole, counters) = run(settings, &[input], Mode::Feed);
    check_output(settings, &whole, &counters);
    check_split(settings, input, chunks, (&whole, &counters));
}

/// Checks that `chunks`, fed and parsed apart then fed, give `whole`: the
/// output and counters of `input` fed in one chunk.
pub fn check_split(settings: &Settings, input: &[u8], chunks: &[&[u8]], whole: (&[u8], &Counters)) {
    debug_assert_eq!(chunks.concat(), input);
    let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
    for mode in [Mode::Feed, Mode::Parsed] {
        if mode == Mode::Feed && chunks.len() < 2 {
            continue;
        }
        let (split, split_counters) = run(settings, chunks, mode);
        assert_eq!(
            *whole.1, split_counters,
            "counters depend on chunking {sizes:?} ({mode:?})"
        );
        assert!(
            whole.0 == split,
            "output depends on chunking {sizes:?} ({mode:?}):\n whole: \"{}\"\n split: \"{}\"",
            whole.0.escape_ascii(),
            split.escape_ascii()
        );
    }
}
