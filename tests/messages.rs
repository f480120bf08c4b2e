//! Messages that say what happened (issue 16): the suppressed-warning
//! count counts only levels that are shown; `analyze` refuses an option
//! of the processor by name; `flush --help` says which options matter to
//! it (`e2e-router`'s exit status is tested with it, in
//! `tools/e2e-router/tests/`). The state file's messages
//! (a file of another period, a missing directory) are checked in
//! `tests/state_files.rs`.

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_e2e-aggregator");

/// 13 invalid lines and 30 late points: 3 invalid-line warnings beyond the
/// burst of 10, and 30 late-point lines (debug level), 20 beyond it.
fn noisy_input() -> String {
    let mut input = String::new();
    for _ in 0..13 {
        input.push_str("garbage\n");
    }
    input.push_str("network_delays,path=p,source=a,target=b latency=1 1700000100000000000\n");
    for _ in 0..30 {
        input.push_str("network_delays,path=p,source=a,target=b latency=1 1700000000000000000\n");
    }
    input
}

/// Runs the processor over `input` (a pipe, as a replay) with `args`;
/// returns stderr.
fn stderr_of(args: &[&str], input: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.lp");
    std::fs::write(&path, input).unwrap();
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::from(std::fs::File::open(&path).unwrap()))
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8(out.stderr).unwrap()
}

fn suppressed_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("suppressed by rate limiting"))
        .collect()
}

/// Regression: at info level the count included the 20 late-point lines
/// held back at debug level, which would never have been shown ("23
/// warnings were suppressed"). The rate limit refills one a second, so
/// the counts hold for a run shorter than that.
#[test]
fn the_suppressed_count_counts_only_shown_levels() {
    let input = noisy_input();
    let info = stderr_of(&[], &input);
    assert_eq!(
        suppressed_lines(&info),
        ["W! 3 warnings were suppressed by rate limiting"],
        "{info}"
    );
    assert_eq!(info.lines().filter(|l| l.starts_with("D! ")).count(), 0);
    let debug = stderr_of(&["--log-level", "debug"], &input);
    assert_eq!(
        suppressed_lines(&debug),
        ["W! 23 warnings were suppressed by rate limiting"],
        "{debug}"
    );
    let warn_only = stderr_of(&["--log-level", "error"], &input);
    assert_eq!(warn_only, "", "nothing at all is shown at error level");
}

#[test]
fn analyze_refuses_an_option_of_the_processor_naming_it() {
    let out = Command::new(BIN)
        .args(["analyze", "--state-file", "x", "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("error: unexpected argument '--state-file' found"),
        "{stderr}"
    );
    assert!(!std::path::Path::new("x").exists());
    // Its help lists only its own options.
    let help = Command::new(BIN)
        .args(["analyze", "--help"])
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(0));
    let help = String::from_utf8(help.stdout).unwrap();
    for theirs in [
        "--state-file",
        "--drop-original",
        "--idle",
        "--age-fields",
        "--state-interval",
    ] {
        assert!(!help.contains(theirs), "{theirs} in\n{help}");
    }
    for ours in ["--period", "--grace", "--cache-ttl", "--format", "--config"] {
        assert!(help.contains(ours), "{ours} not in\n{help}");
    }
}

#[test]
fn flush_help_says_which_options_change_nothing_for_it() {
    let out = Command::new(BIN).args(["flush", "-h"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    let (matter, not) = help
        .split_once("\nAccepted, no effect on flush:\n")
        .unwrap_or_else(|| panic!("no second heading in\n{help}"));
    let flags = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.trim_start().strip_prefix("--"))
            .map(|l| l.split([' ', '=']).next().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        flags(not),
        [
            "drop-original",
            "replay",
            "idle",
            "max-future",
            "state-interval",
            "journal",
            "journal-max"
        ]
    );
    let matter = flags(matter);
    for flag in [
        "state-file",
        "period",
        "grace",
        "stats-interval",
        "age-fields",
        "cache-ttl",
    ] {
        assert!(matter.contains(&flag.to_string()), "{flag} in {matter:?}");
    }
}
