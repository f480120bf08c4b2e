//! Hostile inputs worth keeping, and every input that ever crashed a fuzz
//! target (`fuzz/`): each file in `tests/regressions/` (plus a few inputs
//! too large to keep as files, generated here) runs through the engine as a
//! replay under several settings, in one chunk and split into chunks in
//! many ways (`tests/support`, the test kit). Each run must:
//! - not panic;
//! - keep `lines_in = ignored + invalid + other + aggregated + late +
//!   skipped` after every chunk;
//! - write only valid line protocol, one record per line passed or row
//!   written, ending with a line feed; pass the lines of other measurements,
//!   and the delay lines unless `--drop-original`; with `--stats-interval`,
//!   end with a self-metrics line that says what the counters say;
//! - give the same output and counters however the input was split.
//!
//! Files named `fuzz-*` are minimised fuzz findings; their header comment
//! lives here, since the bytes must stay exactly as found:
//! - `fuzz-too-long-string-split.lp` (target `parse`, `--max-line-size 40`):
//!   a quoted string that opens on a line and is invalid (bad escape) 42
//!   bytes in, past the limit. In one chunk it was one invalid record (its
//!   own error, resuming after the line feed behind it); fed in chunks
//!   that end inside it (after byte 41 or 42, or byte by byte), the carried
//!   record outgrew the limit and was cut at the first line feed past byte
//!   40 instead, so the rest read as a second invalid record.

mod support;

use std::path::Path;

use support::{Replay, Setup};

/// The flags every input runs under: the defaults, and small ones under
/// which windows close, caps bite and short records are too long.
const VARIANTS: &[&str] = &[
    "",
    "--period 1s --grace 2s --max-series 50 --max-line-size 4KiB --stats-interval 1s",
    "--period 1s --grace 2s --max-line-size 40 --max-series 3",
    "--period 1s --grace 2s --precision s --cache-ttl 3s",
    "--period 10ms --grace 0s --precision ms --drop-original",
];

/// The ways to split `input`: every point for a short input, a sample
/// otherwise (smaller for large inputs, to keep the test fast), and one
/// byte at a time up to 4 KiB.
fn splits(input: &[u8]) -> Vec<Vec<&[u8]>> {
    let n = input.len();
    let points: Vec<usize> = match n {
        0..=600 => (0..=n).collect(),
        601..=65536 => (0..=32).map(|k| n * k / 32).collect(),
        // A carry of a long line, near its start, middle and end.
        _ => vec![1, n / 2 - 1, n / 2 + 1, n - 1],
    };
    let mut out: Vec<Vec<&[u8]>> = points
        .iter()
        .map(|&k| vec![&input[..k], &input[k..]])
        .collect();
    out.push(vec![
        &input[..n / 3],
        &input[n / 3..2 * n / 3],
        &input[2 * n / 3..],
    ]);
    if n <= 4096 {
        out.push(input.chunks(1).collect());
    }
    out
}

/// Runs one input under every variant and split; returns the failures.
fn check(name: &str, input: &[u8]) -> Vec<String> {
    let mut failures = Vec::new();
    for flags in VARIANTS {
        let setup = Setup::new(flags);
        let fail = |what: String| format!("{name} [{flags}]: {what}");
        let whole = match setup.replay(&[input]) {
            Ok(r) => r,
            Err(e) => {
                failures.push(fail(e));
                continue;
            }
        };
        if let Err(e) = support::check_output(&setup, &whole) {
            failures.push(fail(e));
        }
        for chunks in splits(input) {
            if let Err(e) = setup.check_split(&whole, &chunks) {
                failures.push(fail(e));
            }
            if failures.len() > 20 {
                return failures;
            }
        }
    }
    failures
}

fn report(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures
            .iter()
            .map(|f| f.chars().take(1500).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_kept_input_survives_every_chunking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/regressions exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "lp"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "inputs missing from {}", dir.display());
    let mut failures = Vec::new();
    for path in files {
        let input = std::fs::read(&path).expect("readable input");
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        failures.extend(check(&name, &input));
    }
    report(failures);
}

/// A valid delay point 1 MiB long (a long string field), between short
/// lines that join; then the same without its final line feed.
fn long_lines() -> Vec<(&'static str, Vec<u8>)> {
    let pad = "x".repeat(1 << 20);
    let nl_pad = "y\n".repeat(1 << 19);
    let long = format!(
        "network_delays,path=p,source=a,target=b latency=1,bandwidth=2,note=\"{pad}\" 1700000000000000000\n"
    );
    let short = "network_delays,path=p,source=b,target=a latency=3,bandwidth=4 1700000000000000001\n\
                 service_delays,sfr=b,endpoint=e,sf_instance=i response_time=5,request_size=6,response_size=7 1700000000000000002\n";
    vec![
        ("1MiB-line", format!("{short}{long}{short}").into_bytes()),
        (
            "1MiB-line-at-eof",
            format!("{short}{}", long.trim_end()).into_bytes(),
        ),
        (
            "1MiB-string-of-line-feeds",
            format!("{short}m s=\"{nl_pad}\" 1\n{short}").into_bytes(),
        ),
        (
            "1MiB-unterminated-string",
            format!("{short}m s=\"{nl_pad}").into_bytes(),
        ),
        ("1MiB-no-line-feed", pad.into_bytes()),
    ]
}

#[test]
fn one_mebibyte_lines_survive_every_chunking() {
    let mut failures = Vec::new();
    for (name, input) in long_lines() {
        failures.extend(check(name, &input));
    }
    report(failures);
}

#[test]
fn a_long_line_under_the_limit_passes_through_and_one_over_it_is_invalid() {
    let (_, input) = &long_lines()[0];
    let Replay { out, counters: c } = Setup::new(VARIANTS[0]).replay_whole(input);
    assert!(out.starts_with(input), "not passed through byte for byte");
    assert_eq!(
        (c.aggregated, c.invalid, c.rows_written),
        (5, 0, 1),
        "{c:?}"
    );
    let Replay { out, counters: c } = Setup::new(VARIANTS[1]).replay_whole(input);
    // b→a is the only forward series left, and its reverse never reported.
    assert_eq!(
        (c.aggregated, c.invalid, c.rows_written),
        (4, 1, 0),
        "{c:?}"
    );
    assert!(!out.windows(4).any(|w| w == b"xxxx"));
}
