//! `e2e-aggregator analyze` against replays of the same input (SPEC.md,
//! "Analyzing a recording"): its row count and late count are the
//! replay's; a replay at the smallest grace it prints has no late point and
//! one a unit below has some; its late count per listed grace is what a
//! replay at that grace counts. Checked on every golden case and on
//! generated recordings with heavy, long-tailed disorder. Also: the JSON
//! keys SPEC.md names, coverage reasons on hand-made cases, a grace far
//! too small, and that a state file is never touched.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

#[path = "support/rng.rs"]
mod rng;

use rng::Rng;

const BIN: &str = env!("CARGO_BIN_EXE_e2e-aggregator");

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/golden")
}

/// The golden cases' directories, in name order.
fn golden_cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(golden())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// A golden case's arguments.
fn case_args(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("args"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// The processor's options that `analyze` refuses, and whether each takes
/// a value: none of them changes what a replay counts or writes as rows.
const NOT_FOR_ANALYZE: [(&str, bool); 11] = [
    ("--drop-original", false),
    ("--replay", false),
    ("--age-fields", false),
    ("--idle", true),
    ("--max-future", true),
    ("--stats-interval", true),
    ("--stats-measurement", true),
    ("--state-file", true),
    ("--state-interval", true),
    ("--journal", true),
    ("--journal-max", true),
];

/// `args` without the options `analyze` refuses (flag and value are
/// separate arguments, as in the golden cases).
fn for_analyze(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match NOT_FOR_ANALYZE.iter().find(|(flag, _)| a == flag) {
            Some((_, true)) => {
                it.next();
            }
            Some((_, false)) => {}
            None => out.push(a.clone()),
        }
    }
    out
}

/// What a replay counted, from its summary line on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Replayed {
    late: u64,
    rows: u64,
}

/// Replays `input` with `args` (and `extra`, which override them).
fn replay(input: &Path, args: &[String], extra: &[&str]) -> Replayed {
    let out = Command::new(BIN)
        .args(args)
        .args(extra)
        .args(["--log-level", "info"])
        .stdin(Stdio::from(fs::File::open(input).unwrap()))
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "replay {args:?} {extra:?}: {stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("I! stopped"))
        .unwrap_or_else(|| panic!("no summary in {stderr}"));
    let count = |name: &str| -> u64 {
        let at = summary
            .find(name)
            .unwrap_or_else(|| panic!("{name} in {summary}"));
        summary[at + name.len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    Replayed {
        late: count(" late "),
        rows: count("rows written "),
    }
}

/// Runs `analyze --format json` on `input`.
fn analyze(input: &Path, args: &[String], extra: &[&str]) -> Value {
    let out = Command::new(BIN)
        .arg("analyze")
        .arg(input)
        .args(["--format", "json"])
        .args(for_analyze(args))
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "analyze {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
    })
}

fn n(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} in {v}"))
}

/// Nanoseconds per unit of `--precision` in `args`.
fn unit(args: &[String]) -> u64 {
    let at = args
        .iter()
        .rposition(|a| a == "--precision" || a.starts_with("--precision="));
    let value = at.map(|i| match args[i].split_once('=') {
        Some((_, v)) => v.to_string(),
        None => args[i + 1].clone(),
    });
    match value.as_deref() {
        Some("s") => 1_000_000_000,
        Some("ms") => 1_000_000,
        Some("us") => 1_000,
        _ => 1,
    }
}

/// The grace and lateness fields of the self-metrics line a replay of
/// `input` writes at its end (`--stats-interval` longer than any replay),
/// by name.
fn final_lateness(input: &Path, args: &[String]) -> Vec<(String, i64)> {
    let out = Command::new(BIN)
        .args(args)
        .args(["--stats-interval", "24h"])
        .stdin(Stdio::from(fs::File::open(input).unwrap()))
        .output()
        .unwrap();
    assert!(out.status.success(), "replay {args:?} with self-metrics");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stats = stdout
        .lines()
        .rfind(|l| l.contains(",grace_ns=") || l.contains(" grace_ns="))
        .unwrap_or_else(|| panic!("no self-metrics line in {stdout}"));
    let fields = stats.rsplit_once(' ').unwrap().0;
    fields
        .split(',')
        .filter_map(|f| f.split_once('='))
        .filter(|(k, _)| k.starts_with("lateness_") || k.starts_with("grace_"))
        .map(|(k, v)| (k.to_string(), v.trim_end_matches('i').parse().unwrap()))
        .collect()
}

/// A replay's final self-metrics give the lateness `analyze` reports for
/// the same input (the same tracker; the quantiles shown the same way),
/// and the grace's headroom above its max.
fn self_metrics_agree(name: &str, input: &Path, args: &[String], report: &Value) {
    let got = final_lateness(input, args);
    let grace = got[0].1;
    assert_eq!(got[0].0, "grace_ns", "{name}: {got:?}");
    if n(report, "/lines/aggregated") + n(report, "/lines/late") == 0 {
        assert_eq!(got.len(), 1, "{name}: no point placed, no lateness fields");
        return;
    }
    let max = n(report, "/lateness_ns/max") as i64;
    let want = [
        ("grace_ns", grace),
        ("lateness_max_ns", max),
        ("lateness_p99_ns", n(report, "/lateness_ns/p99") as i64),
        ("lateness_p999_ns", n(report, "/lateness_ns/p999") as i64),
        ("grace_headroom_ns", grace - max),
    ]
    .map(|(k, v)| (k.to_string(), v));
    assert_eq!(got, want, "{name}: self-metrics lateness");
}

/// The agreement rules of SPEC.md, on one input. Returns the report.
fn agree(name: &str, input: &Path, args: &[String]) -> Value {
    let report = analyze(input, args, &[]);
    self_metrics_agree(name, input, args, &report);
    let base = replay(input, args, &[]);
    assert_eq!(n(&report, "/rows_written"), base.rows, "{name}: rows");
    assert_eq!(n(&report, "/late"), base.late, "{name}: late");
    assert_eq!(n(&report, "/lines/late"), base.late, "{name}: lines.late");

    let smallest = n(&report, "/smallest_grace_ns");
    let at = replay(input, args, &["--grace", &format!("{smallest}ns")]);
    assert_eq!(
        at.late, 0,
        "{name}: a replay at the smallest grace {smallest} ns"
    );
    if smallest > 0 {
        let below = format!("{}ns", smallest - unit(args));
        let under = replay(input, args, &["--grace", &below]);
        assert!(
            under.late >= 1,
            "{name}: a replay at {below} has no late point"
        );
    }
    let by_grace = report["late_by_grace"].as_object().expect("late_by_grace");
    assert!(by_grace.len() >= 8, "{name}: {by_grace:?}");
    for (grace, late) in by_grace {
        let replayed = replay(input, args, &["--grace", grace]);
        assert_eq!(
            late.as_u64(),
            Some(replayed.late),
            "{name}: late at grace {grace}"
        );
    }
    report
}

#[test]
fn every_golden_case_agrees_with_its_replays() {
    let dirs = golden_cases();
    let mut checked = 0;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let args = case_args(dir);
        // A case that expects the program to refuse its options (a golden
        // expected.exit) has no replay to agree with.
        if fs::read_to_string(dir.join("expected.exit")).is_ok_and(|s| s.trim() != "0") {
            println!("{name}: skipped, the case expects a non-zero exit");
            continue;
        }
        agree(&name, &dir.join("input.lp"), &args);
        checked += 1;
    }
    println!("analyze agrees with replays on {checked} golden cases");
    assert!(checked >= 30, "only {checked} cases checked");
}

/// A recording with heavy disorder: `paths` bidirectional paths and a
/// service per SFR report every second for `seconds`, each point arriving
/// late by a long-tailed delay (Lomax, shape 1.5, scale `tail_ms`, as
/// `examples/workload.rs --late-tail` draws it); lines are written in
/// arrival order, timestamps in `unit` ns. Some reverse directions and
/// services are left out so that pairs miss rows for several reasons.
fn disordered(seed: u64, paths: usize, seconds: i64, tail_ms: f64, unit: i64) -> String {
    let mut rng = Rng::new(seed);
    let t0: i64 = 1_700_000_000_000_000_000;
    let mut lines: Vec<(i64, String)> = Vec::new();
    for s in 0..seconds {
        for p in 0..paths {
            let (a, b) = (format!("s{p}"), format!("s{}", (p + 1) % paths));
            for (src, dst) in [(&a, &b), (&b, &a)] {
                // Every fifth path has no reverse direction.
                if p % 5 == 4 && src == &b {
                    continue;
                }
                let ts = t0 + s * 1_000_000_000 + (rng.next_u64() % 1_000_000_000) as i64;
                let u = 1.0 - rng.f64();
                let late = ((u.powf(-1.0 / 1.5) - 1.0).min(1000.0) * tail_ms * 1e6) as i64;
                // Now and then, for 5 s, a direction reports only bandwidth.
                let fields = if (s / 5 + p as i64) % 11 == 0 && src == &b {
                    "bandwidth=90".to_string()
                } else {
                    format!("latency={},bandwidth=100", rng.next_u64() % 100)
                };
                lines.push((
                    ts + late,
                    format!(
                        "network_delays,path=p{p},source={src},target={dst} {fields} {}",
                        ts / unit
                    ),
                ));
            }
            // Every seventh SFR has no service.
            if p % 7 != 6 {
                let ts = t0 + s * 1_000_000_000 + (rng.next_u64() % 1_000_000_000) as i64;
                let late = (rng.next_u64() % 2_000_000_000) as i64;
                lines.push((
                    ts + late,
                    format!(
                        "service_delays,endpoint=e{p},sf_instance=i{p},sfr=s{p} response_time=5,request_size=6,response_size=7 {}",
                        ts / unit
                    ),
                ));
            }
        }
        lines.push((
            t0 + s * 1_000_000_000,
            format!("cpu,host=h usage=1 {}", (t0 + s * 1_000_000_000) / unit),
        ));
    }
    lines.sort_by_key(|l| l.0);
    lines.into_iter().map(|l| l.1 + "\n").collect()
}

fn write_temp(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    fs::write(&path, text).unwrap();
    path
}

/// A generated recording and the options to analyze it with.
struct Workload {
    name: &'static str,
    seed: u64,
    paths: usize,
    seconds: i64,
    tail_ms: f64,
    unit: i64,
    args: &'static [&'static str],
}

#[test]
fn heavy_disorder_agrees_with_replays() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        Workload {
            name: "long tail, defaults",
            seed: 1,
            paths: 12,
            seconds: 300,
            tail_ms: 2_000.0,
            unit: 1,
            args: &[],
        },
        Workload {
            name: "long tail, 1s windows, ms timestamps",
            seed: 2,
            paths: 10,
            seconds: 240,
            tail_ms: 800.0,
            unit: 1_000_000,
            args: &["--period", "1s", "--precision", "ms", "--grace", "3s"],
        },
        Workload {
            name: "long tail, cache TTL",
            seed: 3,
            paths: 8,
            seconds: 240,
            tail_ms: 3_000.0,
            unit: 1,
            args: &["--cache-ttl", "4s", "--grace", "5s", "--period", "2s"],
        },
    ];
    for w in cases {
        let name = w.name;
        let text = disordered(w.seed, w.paths, w.seconds, w.tail_ms, w.unit);
        let input = write_temp(&dir, "in.lp", &text);
        let args: Vec<String> = w.args.iter().map(|s| s.to_string()).collect();
        let report = agree(name, &input, &args);
        // The disorder is heavy: the default grace does not cover it, and
        // every reason the recording was built with shows up.
        assert!(n(&report, "/late") > 0, "{name}: {report}");
        assert!(n(&report, "/lateness_ns/p999") > n(&report, "/lateness_ns/p50"));
        for reason in ["no_service", "no_reverse", "null_delay_reverse"] {
            assert!(
                n(&report, &format!("/coverage/{reason}")) > 0,
                "{name}: {reason}"
            );
        }
        let cov = &report["coverage"];
        let parts: u64 = cov
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "pairs")
            .map(|(_, v)| v.as_u64().unwrap())
            .sum();
        assert_eq!(
            parts,
            n(&report, "/coverage/pairs"),
            "{name}: rows + reasons = pairs"
        );
    }
}

#[test]
fn the_smallest_grace_does_not_depend_on_the_grace_given() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_temp(&dir, "in.lp", &disordered(9, 6, 120, 2_500.0, 1));
    let usual = analyze(&input, &[], &[]);
    let tiny = analyze(&input, &[], &["--grace", "1ns"]);
    let zero = analyze(&input, &[], &["--grace", "0s"]);
    assert!(n(&tiny, "/late") > n(&usual, "/late"));
    for other in [&tiny, &zero] {
        assert_eq!(other["smallest_grace_ns"], usual["smallest_grace_ns"]);
        assert_eq!(other["smallest_grace"], usual["smallest_grace"]);
        assert_eq!(other["lateness_ns"], usual["lateness_ns"]);
    }
}

#[test]
fn the_json_report_has_the_keys_spec_names() {
    let input = golden().join("realistic/input.lp");
    let report = analyze(&input, &["--drop-original".into()], &[]);
    for key in [
        "lines",
        "rows_written",
        "late",
        "late_by_grace",
        "lateness_ns",
        "smallest_grace_ns",
        "smallest_grace",
        "coverage",
    ] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    for key in [
        "lines_in",
        "ignored",
        "invalid",
        "other",
        "aggregated",
        "late",
        "skipped",
    ] {
        assert!(report["lines"][key].is_u64(), "lines.{key}");
    }
    for key in ["p50", "p90", "p99", "p999", "max"] {
        assert!(report["lateness_ns"][key].is_u64(), "lateness_ns.{key}");
    }
    // (serde_json's map sorts its keys: compared sorted.)
    let graces: Vec<&String> = report["late_by_grace"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    let mut want = [
        "0s",
        "442.480687ms",
        "442.480688ms",
        "1s",
        "2s",
        "5s",
        "6s",
        "10s",
        "15s",
        "30s",
        "1m0s",
    ];
    want.sort_unstable();
    // The listed graces (the given 15s is one of them), one unit below the
    // smallest (the one point that sets it is late there), the smallest
    // and the suggestion.
    assert_eq!(graces, want);
    assert_eq!(report["late_by_grace"]["0s"], 1_787);
    assert_eq!(report["late_by_grace"]["442.480687ms"], 1);
    assert_eq!(report["late_by_grace"]["442.480688ms"], 0);
    // 442.480688ms + the 5s period, rounded up to a whole second.
    assert_eq!(report["suggested_grace"], "6s");
    assert_eq!(report["suggested_grace_ns"], 6_000_000_000u64);
    assert_eq!(report["saturated"], serde_json::json!([]));
    for key in [
        "pairs",
        "rows",
        "no_service",
        "no_reverse",
        "expired",
        "null_delay_forward",
        "null_delay_reverse",
        "null_delay_service",
        "null_avg_request_size",
        "null_avg_response_size",
        "null_avg_bandwidth",
        "unwritable",
    ] {
        assert!(report["coverage"][key].is_u64(), "coverage.{key}");
    }
    assert!(report["smallest_grace_ns"].is_u64());
    let text = report["smallest_grace"].as_str().unwrap();
    assert!(!text.is_empty());
    assert_eq!(n(&report, "/lines/lines_in"), 100_800);
}

#[test]
fn coverage_reasons_are_counted_once_per_pair_under_the_first_reason() {
    let input = golden().join("coverage-reasons/input.lp");
    let report = analyze(&input, &[], &[]);
    let cov = &report["coverage"];
    let want = [
        ("pairs", 14),
        ("rows", 2),
        ("no_service", 4),
        ("no_reverse", 2),
        ("expired", 0),
        ("null_delay_forward", 2),
        ("null_delay_reverse", 2),
        ("null_delay_service", 0),
        ("unwritable", 2),
    ];
    for (key, count) in want {
        assert_eq!(cov[key].as_u64(), Some(count), "coverage.{key}: {cov}");
    }
    // The series with the most windows without a row come first (ties in
    // byte order of path, source, target), each with its reasons.
    let top = report["missing_rows"].as_array().unwrap();
    let names: Vec<String> = top
        .iter()
        .map(|m| {
            format!(
                "{} {} {} {}",
                m["path"].as_str().unwrap(),
                m["source"].as_str().unwrap(),
                m["target"].as_str().unwrap(),
                m["windows"]
            )
        })
        .collect();
    assert_eq!(
        names[..4],
        ["bad\\path A B 2", "norev A B 2", "nosvc X Y 2", "nul A B 2"],
        "{top:?}"
    );
    assert_eq!(top[0]["reasons"]["null_delay_forward"], 1);
    assert_eq!(top[0]["reasons"]["unwritable"], 1);
    assert_eq!(top[3]["reasons"]["null_delay_reverse"], 2);

    // Expiry by --cache-ttl 10s (see testdata/README.md, cache-ttl): p1
    // A→B finds its reverse expired in the windows starting at T+15s and
    // T+35s, its service in the one at T+30s; (p1, B, A) never has a
    // service behind A.
    let ttl = analyze(
        &golden().join("cache-ttl/input.lp"),
        &["--cache-ttl".into(), "10s".into()],
        &[],
    );
    let cov = &ttl["coverage"];
    assert_eq!(n(&ttl, "/coverage/pairs"), 8, "{cov}");
    assert_eq!(n(&ttl, "/coverage/rows"), 3, "{cov}");
    assert_eq!(n(&ttl, "/coverage/expired"), 3, "{cov}");
    assert_eq!(n(&ttl, "/coverage/no_service"), 2, "{cov}");
    assert_eq!(n(&ttl, "/coverage/no_reverse"), 0, "{cov}");
}

#[test]
fn analyze_never_touches_a_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = write_temp(
        &dir,
        "config.toml",
        &format!(
            "state_file = {:?}\ngrace = \"5s\"\n",
            state.to_str().unwrap()
        ),
    );
    let input = golden().join("late-points/input.lp");
    let config_args = vec!["--config".to_string(), config.to_str().unwrap().to_string()];
    // No file: none is created (nor its lock or .closed companions).
    analyze(&input, &config_args, &[]);
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["config.toml"], "analyze left files behind");
    // A file that is not a state file: not read (no error), not changed.
    fs::write(&state, "not a state file").unwrap();
    let report = analyze(&input, &config_args, &[]);
    assert_eq!(fs::read_to_string(&state).unwrap(), "not a state file");
    // The config file's grace was taken, its state_file ignored.
    assert_eq!(report["options"]["grace"], "5s");
    assert_eq!(
        n(&report, "/late"),
        replay(&input, &["--grace".into(), "5s".into()], &[]).late
    );
}

#[test]
fn the_text_report_is_aligned_and_counts_have_separators() {
    let input = golden().join("realistic/input.lp");
    let out = Command::new(BIN)
        .arg("analyze")
        .arg(&input)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "lines in",
        "100,800",
        "smallest grace with no late point",
        "late points by grace",
        "(given)",
        "Join coverage",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    // Counts end in one column.
    let ends: Vec<usize> = text
        .lines()
        .filter(|l| l.starts_with("  ") && l.trim_end().ends_with(|c: char| c.is_ascii_digit()))
        .filter(|l| {
            l.contains("  delay points aggregated")
                || l.contains("  lines in")
                || l.contains("  other measurements")
        })
        .map(|l| l.trim_end().len())
        .collect();
    assert_eq!(ends.len(), 3, "{text}");
    assert!(ends.windows(2).all(|w| w[0] == w[1]), "{ends:?}\n{text}");
}

#[test]
fn reading_stdin_and_a_file_give_the_same_report() {
    let input = golden().join("out-of-order-within-grace/input.lp");
    let from_file = analyze(&input, &[], &[]);
    let out = Command::new(BIN)
        .args(["analyze", "--format", "json"])
        .stdin(Stdio::from(fs::File::open(&input).unwrap()))
        .output()
        .unwrap();
    let mut from_stdin: Value = serde_json::from_slice(&out.stdout).unwrap();
    from_stdin["source"] = from_file["source"].clone();
    assert_eq!(from_stdin, from_file);
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let out = Command::new(BIN)
        .args(["analyze", "/nonexistent/recording.lp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/recording.lp"), "{stderr}");
}

/// Durations are printed as Go's `time.Duration.String()`. The Display of
/// `Duration` becomes Go's in a parallel change (issue 8); until it is
/// merged, only the round trip is checked here.
#[test]
fn durations_are_go_text() {
    let dir = tempfile::tempdir().unwrap();
    // One point 7.5 s + 1 ns behind the newest, in the window before: the
    // smallest grace is M − end + 1 ns.
    let t = 1_700_000_000_000_000_000i64;
    let text = format!(
        "network_delays,path=p,source=a,target=b latency=1 {}\n\
         network_delays,path=p,source=a,target=b latency=1 {}\n",
        t + 12_500_000_000,
        t + 4_999_999_999,
    );
    let input = write_temp(&dir, "in.lp", &text);
    let report = analyze(&input, &[], &[]);
    // M − end + 1 = 12.5 s − 5 s + 1 ns.
    assert_eq!(n(&report, "/smallest_grace_ns"), 7_500_000_001);
    let go_display =
        e2e_aggregator::duration::Duration::from_nanos(90_000_000_000).to_string() == "1m30s";
    if go_display {
        assert_eq!(report["smallest_grace"], "7.500000001s");
        let graces = report["late_by_grace"].as_object().unwrap();
        for key in ["0s", "1s", "2s", "5s", "10s", "15s", "30s", "1m0s"] {
            assert!(graces.contains_key(key), "{key} in {graces:?}");
        }
    } else {
        println!("Duration's Display is not Go's yet (issue 8): checking the round trip only");
        let text = report["smallest_grace"].as_str().unwrap();
        let parsed: e2e_aggregator::duration::Duration = text.parse().unwrap();
        assert_eq!(parsed.as_nanos(), 7_500_000_001);
    }
}

/// Regression: with points near both ends of InfluxDB's time range the
/// smallest grace exceeds the largest Go duration. The report said
/// "smallest grace with no late point 2562047h47m16.854775807s" (a replay
/// with it counts the point late) and wrote JSON integers beyond int64.
#[test]
fn beyond_the_largest_duration_the_report_says_at_least_and_saturates() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_temp(
        &dir,
        "ends.lp",
        "network_delays,path=p,source=a,target=b latency=1 9223372030000000000\n\
         network_delays,path=p,source=a,target=b latency=1 -9223372030000000000\n",
    );
    let report = analyze(&input, &[], &[]);
    let max = i64::MAX as u64;
    assert_eq!(report["smallest_grace_ns"], max);
    assert_eq!(
        report["smallest_grace"],
        "at least 2562047h47m16.854775807s"
    );
    assert_eq!(
        report["suggested_grace"],
        "at least 2562047h47m16.854775807s"
    );
    assert_eq!(report["suggested_grace_ns"], max);
    assert_eq!(report["event_time"]["span_ns"], max);
    assert_eq!(report["lateness_ns"]["max"], max);
    assert_eq!(
        report["saturated"],
        serde_json::json!([
            "event_time.span_ns",
            "worst_series.max_lateness_ns",
            "smallest_grace_ns",
            "suggested_grace_ns",
            "lateness_ns.p90",
            "lateness_ns.p99",
            "lateness_ns.p999",
            "lateness_ns.max"
        ])
    );
    // Every integer of the report fits an int64.
    fn ints(v: &Value, out: &mut Vec<u64>) {
        match v {
            Value::Number(n) => out.extend(n.as_u64()),
            Value::Array(a) => a.iter().for_each(|v| ints(v, out)),
            Value::Object(o) => o.values().for_each(|v| ints(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    ints(&report, &mut all);
    assert!(all.iter().all(|&n| n <= max), "{report}");
    // The sentence is true: even the largest grace leaves the point late.
    let at_max = replay(&input, &[], &["--grace", "2562047h47m16.854775807s"]);
    assert_eq!(at_max.late, 1);
    let text = Command::new(BIN)
        .arg("analyze")
        .arg(&input)
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("  smallest grace with no late point    at least 2562047h47m16.854775807s\n"),
        "{text}"
    );
    assert!(
        text.contains("  max                                  at least 2562047h47m16.854775807s\n"),
        "{text}"
    );
}

/// A delay point of a clean recording, as a brute-force count reads it.
struct Point {
    /// `network_delays path=.. source=.. target=..` or `service_delays
    /// sfr=.. endpoint=.. sf_instance=..`, as the report names a series.
    series: String,
    path: Option<String>,
    sfrs: Vec<String>,
    ts: i64,
}

/// Splits `text` at `sep` where it is not escaped, and unescapes the
/// parts (`\\x` is `x`).
fn split_unescaped(text: &str, sep: char, max: usize) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => parts.last_mut().unwrap().extend(chars.next()),
            c if c == sep && parts.len() < max => parts.push(String::new()),
            c => parts.last_mut().unwrap().push(c),
        }
    }
    parts
}

/// The delay points of `input` in arrival order, read the simple way:
/// `None` unless every delay line has no quoted string, its key tags and a
/// timestamp (escapes in tags are read).
fn clean_points(input: &str) -> Option<Vec<Point>> {
    let mut points = Vec::new();
    for line in input.lines() {
        let measurement = line.split(',').next().unwrap_or_default();
        let keys: &[&str] = match measurement {
            "network_delays" => &["path", "source", "target"],
            "service_delays" => &["sfr", "endpoint", "sf_instance"],
            _ => continue,
        };
        if line.contains('"') || line.ends_with('\r') {
            return None;
        }
        // The series section ends at the first unescaped space.
        let mut end = 0;
        let bytes = line.as_bytes();
        while end < bytes.len() && bytes[end] != b' ' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        let head = &line[..end.min(line.len())];
        let ts = line.rsplit(' ').next()?.parse().ok()?;
        let tags: Vec<(String, String)> = split_unescaped(head, ',', usize::MAX)
            .into_iter()
            .skip(1)
            .filter_map(|t| {
                let kv = split_unescaped(&t, '=', 2);
                (kv.len() == 2).then(|| (kv[0].clone(), kv[1].clone()))
            })
            .collect();
        let tag = |k: &str| {
            tags.iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let values: Vec<String> = keys.iter().map(|k| tag(k)).collect::<Option<_>>()?;
        let series = format!(
            "{measurement} {}",
            keys.iter()
                .zip(&values)
                .map(|(k, v)| format!("{k}={}", v.escape_default()))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let (path, sfrs) = match measurement {
            "network_delays" => (
                Some(values[0].clone()),
                vec![values[1].clone(), values[2].clone()],
            ),
            _ => (None, vec![values[0].clone()]),
        };
        points.push(Point {
            series,
            path,
            sfrs,
            ts,
        });
    }
    Some(points)
}

#[test]
fn lateness_and_counts_equal_a_brute_force_count() {
    use std::collections::{BTreeMap, BTreeSet};
    let mut checked = Vec::new();
    let dirs = golden_cases();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let input = dir.join("input.lp");
        let args = case_args(dir);
        // Timestamps are read as ns, the measurements by their defaults.
        if args
            .iter()
            .any(|a| a.starts_with("--precision") || a.ends_with("-measurement"))
        {
            continue;
        }
        let Ok(text) = fs::read_to_string(&input) else {
            continue;
        };
        let Some(points) = clean_points(&text) else {
            continue;
        };
        let report = analyze(&input, &args, &[]);
        if points.is_empty() || n(&report, "/lines/skipped") + n(&report, "/lines/invalid") > 0 {
            continue;
        }
        // Lateness: the newest timestamp before the point, less its own.
        let mut newest: Option<i64> = None;
        let mut lateness = Vec::new();
        let mut worst: BTreeMap<&str, u64> = BTreeMap::new();
        for p in &points {
            let behind = newest.map_or(0, |m| (m - p.ts).max(0) as u64);
            lateness.push(behind);
            if behind > 0 {
                let w = worst.entry(&p.series).or_default();
                *w = (*w).max(behind);
            }
            newest = Some(newest.map_or(p.ts, |m| m.max(p.ts)));
        }
        let mut sorted = lateness.clone();
        sorted.sort_unstable();
        let total = sorted.len() as f64;
        let exact = |q: f64| sorted[((q * total).ceil() as usize).clamp(1, sorted.len()) - 1];
        assert_eq!(
            n(&report, "/lateness_ns/max"),
            *sorted.last().unwrap(),
            "{name}: max"
        );
        for (key, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)] {
            let got = n(&report, &format!("/lateness_ns/{key}"));
            let want = exact(q);
            // The stated bound (docs/analyze.md): at or above the exact
            // quantile, by at most 1.2 % (the histogram's 1/512, then
            // three significant digits, rounded up), never above the max.
            let max = *sorted.last().unwrap();
            assert!(
                got >= want && got <= max && (got - want) as f64 <= want as f64 * 0.012,
                "{name}: {key} {got}, exact {want}"
            );
        }
        // The worst series: each named one with its exact max, the top
        // maxima in order.
        let mut maxima: Vec<u64> = worst.values().copied().collect();
        maxima.sort_unstable_by(|a, b| b.cmp(a));
        let listed = report["worst_series"].as_array().unwrap();
        assert_eq!(listed.len(), maxima.len().min(5), "{name}: worst_series");
        for (i, w) in listed.iter().enumerate() {
            let series = w["series"].as_str().unwrap();
            assert_eq!(
                w["max_lateness_ns"].as_u64(),
                worst.get(series).copied(),
                "{name}: {series}"
            );
            assert_eq!(
                w["max_lateness_ns"].as_u64(),
                Some(maxima[i]),
                "{name}: worst #{i}"
            );
        }
        // Distinct counts, span and rate.
        let count = |f: &dyn Fn(&Point) -> Vec<String>| {
            points.iter().flat_map(f).collect::<BTreeSet<_>>().len() as u64
        };
        let network = count(&|p| p.path.iter().map(|_| p.series.clone()).collect());
        let service = count(&|p| {
            p.path
                .is_none()
                .then(|| p.series.clone())
                .into_iter()
                .collect()
        });
        assert_eq!(n(&report, "/series/network"), network, "{name}: network");
        assert_eq!(n(&report, "/series/service"), service, "{name}: service");
        assert_eq!(
            n(&report, "/series/sfrs"),
            count(&|p| p.sfrs.clone()),
            "{name}: sfrs"
        );
        assert_eq!(
            n(&report, "/series/paths"),
            count(&|p| p.path.iter().cloned().collect()),
            "{name}: paths"
        );
        let first = points.iter().map(|p| p.ts).min().unwrap();
        let last = points.iter().map(|p| p.ts).max().unwrap();
        assert_eq!(
            n(&report, "/event_time/delay_points"),
            points.len() as u64,
            "{name}"
        );
        assert_eq!(
            report["event_time"]["first_ns"].as_i64(),
            Some(first),
            "{name}"
        );
        assert_eq!(
            report["event_time"]["last_ns"].as_i64(),
            Some(last),
            "{name}"
        );
        assert_eq!(
            n(&report, "/event_time/span_ns"),
            (last - first) as u64,
            "{name}"
        );
        if last > first {
            let rate = points.len() as f64 / ((last - first) as f64 / 1e9);
            let got = report["event_time"]["points_per_second"].as_f64().unwrap();
            assert!(
                (got - rate).abs() <= rate * 1e-12,
                "{name}: rate {got}, not {rate}"
            );
        }
        checked.push(name);
    }
    println!("brute-force figures agree on {checked:?}");
    assert!(checked.len() >= 5, "only {checked:?}");
    assert!(checked.iter().any(|c| c == "realistic"), "{checked:?}");
}

/// Runs `analyze --plot` on `input` and returns the SVG and the JSON
/// report of the same run.
fn plot(dir: &tempfile::TempDir, input: &Path, extra: &[&str]) -> (String, Value) {
    let svg = dir.path().join("plot.svg");
    let report = analyze(
        input,
        &[],
        &[&["--plot", svg.to_str().unwrap()], extra].concat(),
    );
    (fs::read_to_string(&svg).unwrap(), report)
}

/// The texts of an SVG, after checking it is well-formed XML.
fn svg_texts(name: &str, svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg", "{name}");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect()
}

/// The plot holds both charts, the given and the suggested grace with
/// their values, and one stacked series per reason that occurred.
fn check_plot(name: &str, svg: &str, report: &Value) {
    let texts = svg_texts(name, svg);
    let has = |t: &str| texts.iter().any(|x| x.contains(t));
    for title in [
        "Lateness: fraction of delay points later than x",
        "Forward pairs per window: rows written and missing rows by reason",
    ] {
        assert!(has(title), "{name}: no title {title:?} in {texts:?}");
    }
    let given = report["options"]["grace"].as_str().unwrap();
    let suggested = report["suggested_grace"].as_str().unwrap();
    assert!(has(&format!("given grace {given}")), "{name}: {texts:?}");
    assert!(
        has(&format!("suggested grace {suggested}")),
        "{name}: {texts:?}"
    );
    assert!(
        has(&format!("rows written ({})", n(report, "/coverage/rows"))),
        "{name}: {texts:?}"
    );
    let reasons = [
        ("no_service", "no service for the target SFR"),
        ("no_reverse", "no reverse series"),
        ("null_delay_reverse", "delay_reverse is null"),
    ];
    for (key, text) in reasons {
        let count = n(report, &format!("/coverage/{key}"));
        let label = format!("no row: {text} ({count})");
        assert_eq!(has(&label), count > 0, "{name}: {label:?} in {texts:?}");
    }
    // Bars were drawn: one rectangle per window and layer at least.
    assert!(svg.matches("<rect").count() > 10, "{name}");
}

#[test]
fn the_plot_holds_both_charts_the_graces_and_the_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = golden().join("realistic/input.lp");
    let (svg, report) = plot(&dir, &shipped, &[]);
    check_plot("shipped", &svg, &report);
    // docs/analyze.md shows this picture: it must be what the program
    // draws now (UPDATE_GOLDEN=1 regenerates it).
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/img/analyze-plot.svg");
    let shown = svg.replace(
        &*shipped.to_string_lossy(),
        "testdata/golden/realistic/input.lp",
    );
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(&committed, &shown).unwrap();
    }
    assert!(
        fs::read_to_string(&committed).ok().as_deref() == Some(&*shown),
        "docs/img/analyze-plot.svg is not what `analyze --plot` draws now: \
         UPDATE_GOLDEN=1 cargo test --test analyze the_plot, then read the diff"
    );
    let heavy = write_temp(&dir, "heavy.lp", &disordered(1, 12, 300, 2_000.0, 1));
    let (svg, report) = plot(&dir, &heavy, &["--grace", "5s"]);
    assert!(n(&report, "/late") > 0);
    check_plot("heavy", &svg, &report);
    fs::copy(
        dir.path().join("plot.svg"),
        std::env::temp_dir().join("plot-heavy.svg"),
    )
    .unwrap();
}

#[test]
fn an_unwritable_plot_path_is_an_error_naming_it() {
    let input = golden().join("realistic/input.lp");
    let out = Command::new(BIN)
        .args(["analyze", "--plot", "/nonexistent/dir/plot.svg"])
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/dir/plot.svg"), "{stderr}");
}
