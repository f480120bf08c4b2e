//! The Kafka scale-out (`telegraf/scale-out/`) gives the same rows as one
//! process.
//!
//! `e2e-router` splits a recording as the deployment routes it (network
//! delays by sarama's hash of the `path` tag over P partitions, partitions
//! to instances by the consumer group's strategy, service delays to every
//! instance, other lines to one), with the services and network streams
//! merged up to `DISORDER` apart, as two topics arrive. Each shard is
//! replayed by its own `e2e-aggregator` (in process: the library's
//! `run::replay`, the steps the binary takes on a file), and compared with
//! one process replaying the whole recording, with a grace that covers the
//! disorder:
//!
//! - the union of the instances' `e2e_delays` rows is the single process's
//!   rows exactly (sorted lines; ryu's shortest text is a function of the
//!   f64's bits, so equal text is bit-equal values);
//! - every passed-through line other than a service delay appears exactly
//!   once across the instances; each instance passes every service delay;
//! - the counters add up: for each class, the instances' sum is the single
//!   process's count plus (instances − 1) × the count of the services
//!   stream alone, which every instance reads; nobody counts a point late.
//!
//! And keyed by `source` instead of `path`, the two directions of a path
//! land on different instances and rows are lost: the test pins how many,
//! the number `telegraf/scale-out/README.md` quotes.
//!
//! The router's partitioner is checked against the engine: a table of the
//! partitions a real broker gave `path-NNN` keys (`reference-partitions.tsv`,
//! made by `tests/kafka/harness.py partitions`). `tests/kafka/` runs the
//! whole recipe through that broker.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use e2e_aggregator::config::Options;
use e2e_aggregator::run::{self, Exit};

#[path = "../../../tests/support/rng.rs"]
mod rng;

use rng::Rng;

// The router is this package's binary; the aggregator is the library it
// depends on, so neither needs a binary of another package.
const ROUTER: &str = env!("CARGO_BIN_EXE_e2e-router");
const REALISTIC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/golden/realistic/input.lp"
);

/// Partition counts of the network topic, each over 1 to `MAX_INSTANCES`.
const PARTITIONS: [u32; 5] = [1, 2, 3, 7, 16];
const MAX_INSTANCES: u32 = 4;
/// Event-time lag between an instance's streams (router `--disorder`).
const DISORDER: &str = "5s";
/// Covers the recordings' own disorder (under 1 s) plus `DISORDER`.
const GRACE: &str = "15s";

/// Counters whose sum over instances is predictable (gauges such as
/// `open_series` and the per-process `windows_closed` are not).
const ADDITIVE: [&str; 17] = [
    "lines_in",
    "ignored",
    "invalid",
    "other",
    "aggregated",
    "late",
    "skipped",
    "skipped_missing_tag",
    "skipped_no_numeric_field",
    "skipped_max_series",
    "skipped_future",
    "skipped_out_of_range",
    "skipped_no_timestamp",
    "passed",
    "non_numeric_fields",
    "rows_written",
    "rows_unwritable",
];

#[test]
fn realistic_recording_shards_to_the_same_rows() {
    let single = check_all_splits(Path::new(REALISTIC), "realistic");
    // The recording: 40 paths, both directions, 20 SFRs (testdata/README.md).
    assert_eq!(single.stats["lines_in"], 100_800);
    assert_eq!(single.rows.len(), 5_770);
}

#[test]
fn generated_workload_with_220_paths_shards_to_the_same_rows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("workload.lp");
    let generated = generate_workload();
    std::fs::write(&input, generated.as_bytes()).expect("write workload");
    let single = check_all_splits(&input, "generated");
    let paths: std::collections::BTreeSet<&str> = single
        .rows
        .iter()
        .filter_map(|r| r.split(',').find_map(|t| t.strip_prefix("path_ID=")))
        .collect();
    assert_eq!(paths.len(), 221, "paths with rows");
    assert_eq!(single.stats["lines_in"], WORKLOAD_LINES);
    assert_eq!(single.stats["invalid"], 1);
    assert_eq!(single.stats["ignored"], 3);
    assert_eq!(single.stats["skipped_missing_tag"], 2);
}

/// Keyed by `source`, a path's forward series `(p, A, B)` goes where `A`
/// hashes and its reverse `(p, B, A)` where `B` hashes; on different
/// instances neither finds its reverse, and those rows are never written.
#[test]
fn keyed_by_source_rows_are_lost() {
    let dir = tempfile::tempdir().expect("temp dir");
    let single = replay(Path::new(REALISTIC), &[]);
    let split = Split {
        partitions: 16,
        instances: 4,
        strategy: "range",
        other_instance: 0,
        key: "source",
        disorder: "0s",
        seed: 1,
    };
    let shards = split.route(Path::new(REALISTIC), dir.path());
    let outputs: Vec<Output> = shards.iter().map(|s| replay(s, &[])).collect();
    let mut union: Vec<&String> = outputs.iter().flat_map(|o| &o.rows).collect();
    union.sort();
    // Nothing wrong is written: every row that survives is one of the
    // single process's rows, value for value.
    let mut extra = Vec::new();
    for row in &union {
        if single.rows.binary_search(row).is_err() {
            extra.push(row.as_str());
        }
    }
    assert!(extra.is_empty(), "rows not in the single run: {extra:?}");
    let lost = single.rows.len() - union.len();
    eprintln!(
        "keyed by source, 16 partitions over 4 instances: {} of {} rows written, {lost} lost",
        union.len(),
        single.rows.len()
    );
    assert_eq!(single.rows.len(), 5_770);
    assert_eq!(lost, 4_472, "rows lost with the wrong key");
    // The lines themselves are all counted: only the join is broken.
    let lines: Vec<&str> = ADDITIVE
        .into_iter()
        .filter(|k| *k != "rows_written")
        .collect();
    assert_counters_add_up(
        &lines,
        &single,
        &outputs,
        &services_alone(Path::new(REALISTIC)),
    );
    let written: i64 = outputs.iter().map(|o| o.stats["rows_written"]).sum();
    assert_eq!(written, 1_298);
}

/// Where the real broker put `path-NNN` keys produced with librdkafka's
/// `fnv1a_random` (sarama's hash partitioner); made by
/// `tests/kafka/harness.py partitions` (the command is in the file).
const REFERENCE_PARTITIONS: &str = include_str!("reference-partitions.tsv");

/// The model's partitioner is the engine's: `e2e-router` with as many
/// instances as partitions (range: instance i owns partition i) puts every
/// key of the reference table where the real broker put it.
#[test]
fn router_places_keys_where_the_real_broker_did() {
    let mut lines = REFERENCE_PARTITIONS
        .lines()
        .filter(|l| !l.starts_with("# ") || l.starts_with("# key"));
    let header = lines.next().expect("header");
    let counts: Vec<u32> = header
        .split('\t')
        .skip(1)
        .map(|c| c.trim_start_matches('p').parse().expect("partition count"))
        .collect();
    let table: Vec<(String, Vec<usize>)> = lines
        .map(|l| {
            let mut cols = l.split('\t');
            let key = cols.next().expect("key").to_owned();
            (key, cols.map(|c| c.parse().expect("partition")).collect())
        })
        .collect();
    assert_eq!(counts, [7, 12, 16]);
    assert_eq!(table.len(), 200, "keys in the table");
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("keys.lp");
    let mut text = String::new();
    for (j, (key, _)) in table.iter().enumerate() {
        let _ = writeln!(
            text,
            "network_delays,path={key},source=a,target=b latency=1 {}",
            1_700_000_000_000_000_000i64 + j as i64
        );
    }
    std::fs::write(&input, &text).expect("write keys");
    for (c, &partitions) in counts.iter().enumerate() {
        let split = Split {
            partitions,
            instances: partitions,
            strategy: "range",
            other_instance: 0,
            key: "path",
            disorder: "0s",
            seed: 1,
        };
        let out_dir = dir.path().join(format!("p{partitions}"));
        let shards = split.route(&input, &out_dir);
        let mut placed = BTreeMap::new();
        for (i, shard) in shards.iter().enumerate() {
            let text = std::fs::read_to_string(shard).expect("read shard");
            for line in text.lines() {
                let key = line
                    .split(',')
                    .find_map(|t| t.strip_prefix("path="))
                    .expect("path tag");
                placed.insert(key.to_owned(), i);
            }
        }
        let wrong: Vec<String> = table
            .iter()
            .filter(|(key, want)| placed.get(key) != Some(&want[c]))
            .map(|(key, want)| format!("{key}: router {:?}, broker {}", placed.get(key), want[c]))
            .collect();
        assert!(
            wrong.is_empty(),
            "{partitions} partitions: {} of {} keys placed elsewhere than the broker placed them: {wrong:?}",
            wrong.len(),
            table.len()
        );
    }
}

/// One split of a recording by `e2e-router`.
#[derive(Debug, Clone, Copy)]
struct Split {
    partitions: u32,
    instances: u32,
    strategy: &'static str,
    other_instance: u32,
    key: &'static str,
    disorder: &'static str,
    seed: u64,
}

impl Split {
    /// Runs the router; returns the shard files.
    fn route(&self, input: &Path, out_dir: &Path) -> Vec<PathBuf> {
        let out = Command::new(ROUTER)
            .args(["--partitions", &self.partitions.to_string()])
            .args(["--instances", &self.instances.to_string()])
            .args(["--strategy", self.strategy])
            .args(["--other-instance", &self.other_instance.to_string()])
            .args(["--key", self.key])
            .args(["--disorder", self.disorder])
            .args(["--seed", &self.seed.to_string()])
            .arg("--out-dir")
            .arg(out_dir)
            .arg(input)
            .output()
            .expect("run e2e-router");
        assert!(
            out.status.success(),
            "{self:?}: e2e-router exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        (0..self.instances)
            .map(|i| out_dir.join(format!("instance-{i}.lp")))
            .collect()
    }
}

/// Every split of `input` for `PARTITIONS` × 1..=`MAX_INSTANCES`; returns
/// the single process's output.
fn check_all_splits(input: &Path, name: &str) -> Output {
    let grace = ["--grace", GRACE];
    let single = replay(input, &grace);
    assert_eq!(
        single.stats["late"], 0,
        "{name}: the single process counts points late"
    );
    assert!(
        single.rows.len() > 1000,
        "{name}: only {} rows",
        single.rows.len()
    );
    let services = services_alone(input);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut report = String::new();
    for (k, &partitions) in PARTITIONS.iter().enumerate() {
        for instances in 1..=MAX_INSTANCES {
            let split = Split {
                partitions,
                instances,
                // Both of sarama's simple strategies, alternately.
                strategy: if (k as u32 + instances).is_multiple_of(2) {
                    "range"
                } else {
                    "roundrobin"
                },
                other_instance: partitions % instances,
                key: "path",
                disorder: DISORDER,
                seed: u64::from(partitions * 10 + instances),
            };
            let out_dir = dir.path().join(format!("p{partitions}-i{instances}"));
            let shards = split.route(input, &out_dir);
            let outputs: Vec<Output> = shards.iter().map(|s| replay(s, &grace)).collect();
            let what = format!("{name}, {split:?}");
            assert_same_rows(&what, &single, &outputs);
            assert_lines_once(&what, &single, &outputs);
            assert_counters_add_up(&ADDITIVE, &single, &outputs, &services);
            let rows: Vec<String> = outputs.iter().map(|o| o.rows.len().to_string()).collect();
            let _ = writeln!(
                report,
                "{name}: {partitions:>2} partitions, {instances} instances ({}): rows {}",
                split.strategy,
                rows.join(" + ")
            );
        }
    }
    eprint!("{report}");
    single
}

/// The services stream alone, replayed: what each extra instance counts on
/// top of the single process. It is instance 1 of a one-partition split
/// over two instances (`range` gives the partition to instance 0).
fn services_alone(input: &Path) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let split = Split {
        partitions: 1,
        instances: 2,
        strategy: "range",
        other_instance: 0,
        key: "path",
        disorder: "0s",
        seed: 1,
    };
    let shards = split.route(input, dir.path());
    let services = replay(&shards[1], &["--grace", GRACE]);
    assert_eq!(
        services.stats["other"], 0,
        "services stream holds other lines"
    );
    assert_eq!(
        services.stats["invalid"], 0,
        "services stream holds invalid lines"
    );
    assert_eq!(services.rows.len(), 0, "services alone cannot make rows");
    assert!(
        services
            .passed
            .iter()
            .all(|l| l.starts_with("service_delays,")),
        "services stream holds other measurements"
    );
    services
}

/// What one replay wrote.
struct Output {
    /// `e2e_delays` lines, sorted.
    rows: Vec<String>,
    /// Every other line except the self-metrics, sorted.
    passed: Vec<String>,
    /// The self-metrics line's fields.
    stats: BTreeMap<String, i64>,
}

/// `e2e-aggregator --stats-interval 1m ARGS < input` (a replay), in process.
fn replay(input: &Path, args: &[&str]) -> Output {
    let bytes = std::fs::read(input).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
    let flags = ["e2e-aggregator", "--replay", "--stats-interval", "1m"];
    let options = Options::load(flags.iter().chain(args))
        .unwrap_or_else(|e| panic!("e2e-aggregator {args:?}: {e:?}"));
    let mut out = Vec::new();
    let (exit, _) = run::replay(&options, &bytes, &mut out);
    assert_eq!(exit, Exit::Done, "e2e-aggregator < {}", input.display());
    let text = String::from_utf8(out).expect("output is UTF-8");
    let mut rows = Vec::new();
    let mut passed = Vec::new();
    let mut stats = None;
    for line in text.lines() {
        if line.starts_with("e2e_delays,") {
            rows.push(line.to_owned());
        } else if let Some(rest) = line.strip_prefix("e2e_aggregator ") {
            assert!(stats.is_none(), "two self-metrics lines in a replay");
            stats = Some(parse_stats(rest));
        } else {
            passed.push(line.to_owned());
        }
    }
    rows.sort();
    passed.sort();
    Output {
        rows,
        passed,
        stats: stats.expect("no self-metrics line"),
    }
}

/// `lines_in=100i,ignored=0i,... 1700000000000000000` → the fields.
fn parse_stats(rest: &str) -> BTreeMap<String, i64> {
    let (fields, _ts) = rest.split_once(' ').expect("self-metrics timestamp");
    fields
        .split(',')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("field");
            let v = v.strip_suffix('i').expect("integer field");
            (k.to_owned(), v.parse().expect("integer"))
        })
        .collect()
}

fn assert_same_rows(what: &str, single: &Output, outputs: &[Output]) {
    let mut union: Vec<&String> = outputs.iter().flat_map(|o| &o.rows).collect();
    union.sort();
    let want: Vec<&String> = single.rows.iter().collect();
    if union != want {
        let missing: Vec<_> = want.iter().filter(|r| !union.contains(r)).take(3).collect();
        let extra: Vec<_> = union.iter().filter(|r| !want.contains(r)).take(3).collect();
        panic!(
            "{what}: {} rows from the instances, {} from one process\nmissing: {missing:?}\nextra: {extra:?}",
            union.len(),
            want.len()
        );
    }
}

fn assert_lines_once(what: &str, single: &Output, outputs: &[Output]) {
    let is_service = |l: &&String| l.starts_with("service_delays,");
    let mut union: Vec<&String> = outputs
        .iter()
        .flat_map(|o| o.passed.iter().filter(|l| !is_service(l)))
        .collect();
    union.sort();
    let want: Vec<&String> = single.passed.iter().filter(|l| !is_service(l)).collect();
    assert!(
        union == want,
        "{what}: {} non-service lines passed by the instances, {} by one process",
        union.len(),
        want.len()
    );
    let services: Vec<&String> = single.passed.iter().filter(is_service).collect();
    for (i, o) in outputs.iter().enumerate() {
        let mine: Vec<&String> = o.passed.iter().filter(is_service).collect();
        assert!(
            mine == services,
            "{what}: instance {i} passed {} service lines, one process {}",
            mine.len(),
            services.len()
        );
    }
}

fn assert_counters_add_up(keys: &[&str], single: &Output, outputs: &[Output], services: &Output) {
    let extra = outputs.len() as i64 - 1;
    for &key in keys {
        let sum: i64 = outputs.iter().map(|o| o.stats[key]).sum();
        let want = single.stats[key] + extra * services.stats[key];
        assert_eq!(
            sum, want,
            "{key}: instances sum to {sum}; one process counts {} and the services stream {} (× {extra})",
            single.stats[key], services.stats[key]
        );
    }
    for (i, o) in outputs.iter().enumerate() {
        assert_eq!(o.stats["late"], 0, "instance {i} counts points late");
    }
}

/// Lines `generate_workload` writes.
const WORKLOAD_LINES: i64 = 45_276;

/// A deterministic workload with 221 paths: 220 SFR pairs reporting in
/// both directions plus one path whose source is its target, 30 SFRs with
/// two service instances each, over 90 s at 1 Hz with up to 0.8 s of
/// arrival jitter; plus other measurements, comments, a blank line, an
/// invalid line, and a network and a service point each missing a key tag
/// (the network one has no `path`, so it goes to a random partition).
fn generate_workload() -> String {
    const SFRS: u64 = 30;
    const PAIRS: u64 = 220;
    const SECONDS: i64 = 90;
    const T0: i64 = 1_700_000_000_000_000_000;
    const S: i64 = 1_000_000_000;
    let mut rng = Rng::new(0x5eed);
    let mut next = move || rng.next_u64();
    let sfr = |k: u64| format!("sfr-{k:02}");

    // (series key text, field-set maker) per series.
    let mut series: Vec<String> = Vec::new();
    for j in 0..PAIRS {
        let a = j % SFRS;
        let b = (a + 1 + j / SFRS) % SFRS;
        let path = if j == PAIRS - 1 {
            "p\\ last".to_owned()
        } else {
            format!("p{j:03}")
        };
        series.push(format!(
            "network_delays,path={path},source={},target={}",
            sfr(a),
            sfr(b)
        ));
        series.push(format!(
            "network_delays,path={path},source={},target={}",
            sfr(b),
            sfr(a)
        ));
    }
    series.push(format!(
        "network_delays,path=loop,source={0},target={0}",
        sfr(0)
    ));
    let network = series.len();
    for k in 0..SFRS {
        for inst in 0..2 {
            let endpoint = if k == 7 {
                format!("ep\\ {k}")
            } else {
                format!("ep{k}")
            };
            series.push(format!(
                "service_delays,endpoint={endpoint},sf_instance=i{inst},sfr={}",
                sfr(k)
            ));
        }
    }

    let mut lines: Vec<(i64, String)> = Vec::new();
    for t in 0..SECONDS {
        for (s, key) in series.iter().enumerate() {
            let phase = (s as i64 * 7_919_993) % S;
            let ts = T0 + t * S + phase;
            let arrival = ts + (next() % 800_000_000) as i64;
            let r = next();
            let fields = if s < network {
                format!(
                    "latency={}.{},bandwidth={}",
                    1 + r % 40,
                    r % 1000,
                    50 + (r >> 20) % 900
                )
            } else {
                format!(
                    "response_time={}.{},request_size={}i,response_size={}",
                    10 + r % 400,
                    r % 97,
                    500 + (r >> 16) % 2000,
                    (r >> 32) % 50_000
                )
            };
            lines.push((arrival, format!("{key} {fields} {ts}")));
        }
        let host = t % 5;
        lines.push((
            T0 + t * S + 500,
            format!("cpu,host=h{host} usage_idle=9{t}.5 {}", T0 + t * S),
        ));
        lines.push((
            T0 + t * S + 600,
            format!("mem,host=h{host} used={t}i {}", T0 + t * S),
        ));
    }
    let at = |t: i64| T0 + t * S + 1;
    lines.push((at(3), "# a comment".to_owned()));
    lines.push((at(4), String::new()));
    lines.push((at(5), "  # an indented comment".to_owned()));
    lines.push((at(6), "this is not line protocol".to_owned()));
    lines.push((
        at(7),
        format!(
            "network_delays,source=sfr-01,target=sfr-02 latency=1 {}",
            at(7)
        ),
    ));
    lines.push((
        at(8),
        format!(
            "service_delays,endpoint=e,sf_instance=i response_time=1 {}",
            at(8)
        ),
    ));
    lines.sort_by_key(|(arrival, _)| *arrival);
    let mut text = String::new();
    for (_, line) in lines {
        text.push_str(&line);
        text.push('\n');
    }
    text
}
