//! `--state-file` keeps open windows and caches across restarts (SPEC.md,
//! "State across restarts"). The property: split a recording into pieces
//! fed to successive runs sharing one state file, then `flush`; the
//! outputs concatenated equal one run over the whole recording, byte for
//! byte.
//!
//! - On the realistic recording, through the binary: pieces cut inside a
//!   window, exactly at a window boundary, and into many pieces; with
//!   `--cache-ttl`, with a low `--max-series`, and with a reverse path and
//!   a service that report only in the first piece.
//! - On generated workloads with disorder, in process (the same state
//!   file code the binary runs), at random cut points.
//! - Live: SIGTERM mid-stream and a restart with the rest; SIGKILL after a
//!   periodic save and after later window closes (no window written twice,
//!   none of those still open at the save missing); a restart between two
//!   windows, with and without a state file.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use e2e_aggregator::config::Options;
use e2e_aggregator::input::End;
use e2e_aggregator::pipeline::Pipeline;
use e2e_aggregator::run;
use e2e_aggregator::settings::Settings;
use proptest::prelude::*;

mod support;

#[path = "support/child.rs"]
mod child;
#[path = "support/rng.rs"]
mod rng;

use child::{Exit, Launch, Proc, Signal};
use rng::Rng;

const REALISTIC: &str = "testdata/golden/realistic/input.lp";
const SEC: i64 = 1_000_000_000;

/// How long a run or a wait may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// Runs the binary with `args`, stdin the file `input` (a replay).
fn replay(args: &[&str], input: &Path) -> Exit {
    let out = Launch::new()
        .args(args)
        .stdin(File::open(input).unwrap())
        .run(PATIENCE);
    assert!(
        out.status.success(),
        "{args:?}: {:?}\n{}",
        out.status,
        out.stderr
    );
    out
}

/// The output of one replay over `input` with `flags`.
fn whole(input: &[u8], flags: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whole.lp");
    std::fs::write(&path, input).unwrap();
    replay(flags, &path).stdout
}

/// The outputs of replays of `pieces` in turn with one state file, then
/// `flush`, concatenated.
fn in_pieces(pieces: &[&[u8]], flags: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let state = state.to_str().unwrap();
    let mut args = vec!["--state-file", state];
    args.extend_from_slice(flags);
    let mut out = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let path = dir.path().join(format!("piece-{i}.lp"));
        std::fs::write(&path, piece).unwrap();
        out.extend(replay(&args, &path).stdout);
    }
    let mut flush = vec!["flush"];
    flush.extend_from_slice(&args);
    out.extend(replay(&flush, Path::new("/dev/null")).stdout);
    out
}

/// The timestamp of each line (its last field).
fn timestamps(input: &[u8]) -> Vec<i64> {
    input
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let ts = l.rsplit(|&b| b == b' ').next().unwrap();
            std::str::from_utf8(ts).unwrap().parse().unwrap()
        })
        .collect()
}

fn rows(out: &[u8]) -> Vec<&[u8]> {
    out.split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"e2e_delays"))
        .collect()
}

#[test]
fn pieces_of_the_realistic_recording_give_the_same_output() {
    let input = std::fs::read(REALISTIC).unwrap();
    let ts = timestamps(&input);
    // The first line whose window differs from its predecessor's, past a
    // third of the input: a cut exactly at a window boundary.
    let window = |t: i64| t.div_euclid(5 * SEC);
    let boundary = (ts.len() / 3..ts.len())
        .find(|&i| window(ts[i]) != window(ts[i - 1]))
        .unwrap();
    let n = ts.len();
    let cuts: [&[usize]; 3] = [
        &[boundary + 137],
        &[boundary],
        &[n / 7, 2 * n / 7, 3 * n / 7, 4 * n / 7, boundary + 2 * n / 7],
    ];
    // A cap of 450 bites within the first windows (and, with caches that
    // never expire, keeps refusing: about 250 rows).
    for flags in [&[][..], &["--cache-ttl", "20s"], &["--max-series", "450"]] {
        let expected = whole(&input, flags);
        assert!(rows(&expected).len() > 200, "{flags:?}");
        for lines in cuts {
            let mut lines = lines.to_vec();
            lines.sort_unstable();
            let got = in_pieces(&support::cut_at_lines(&input, &lines), flags);
            assert!(got == expected, "{flags:?} cut at lines {lines:?}");
        }
    }
}

#[test]
fn a_reverse_path_and_a_service_seen_only_in_the_first_piece_still_serve() {
    let t0 = 1_700_000_000 * SEC;
    let mut input = format!(
        "network_delays,path=p,source=A,target=B latency=10,bandwidth=100 {t0}\n\
         network_delays,path=p,source=B,target=A latency=20,bandwidth=100 {t0}\n\
         service_delays,endpoint=e,sf_instance=i,sfr=B response_time=1,request_size=2,response_size=3 {t0}\n"
    );
    let first = input.lines().count();
    for k in 1..6 {
        input.push_str(&format!(
            "network_delays,path=p,source=A,target=B latency={},bandwidth=100 {}\n",
            10 + k,
            t0 + 7 * k * SEC
        ));
    }
    let flags = ["--period", "5s", "--grace", "6s"];
    let expected = whole(input.as_bytes(), &flags);
    assert_eq!(
        rows(&expected).len(),
        6,
        "{}",
        String::from_utf8_lossy(&expected)
    );
    for cut in [first, first + 2] {
        let got = in_pieces(&support::cut_at_lines(input.as_bytes(), &[cut]), &flags);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected)
        );
    }
}

/// A small workload: `paths` paths in both directions and a service per
/// SFR, points every 400 ms over `secs` seconds, each line displaced by up
/// to `disorder` lines (by a fixed permutation from `seed`).
fn workload(paths: usize, secs: i64, disorder: usize, seed: u64) -> Vec<u8> {
    let t0 = 1_700_000_000 * SEC;
    let mut lines = Vec::new();
    let mut rng = Rng::new(seed);
    let mut next = move || rng.next_u64();
    let mut t = t0;
    while t < t0 + secs * SEC {
        for p in 0..paths {
            let (a, b) = (p % 5, (p + 1) % 5);
            let lat = (next() % 1000) as f64 / 10.0;
            lines.push(format!(
                "network_delays,path=p{p},source=s{a},target=s{b} latency={lat},bandwidth={}i {t}",
                next() % 100
            ));
            if next() % 4 != 0 {
                lines.push(format!(
                    "network_delays,path=p{p},source=s{b},target=s{a} latency={}u {t}",
                    next() % 50
                ));
            }
        }
        for s in 0..5 {
            if next() % 3 == 0 {
                lines.push(format!(
                    "service_delays,endpoint=e{},sf_instance=i{},sfr=s{s} response_time={},request_size=2,response_size=3 {t}",
                    next() % 2,
                    next() % 2,
                    next() % 9
                ));
            }
        }
        lines.push(format!("cpu,host=h usage={} {t}", next() % 100));
        t += 400_000_000;
    }
    for i in 0..lines.len() {
        let j = (i + (next() as usize) % (disorder + 1)).min(lines.len() - 1);
        lines.swap(i, j);
    }
    let mut out = lines.join("\n").into_bytes();
    out.push(b'\n');
    out
}

fn settings(flags: &[&str]) -> Settings {
    let args = ["e2e-aggregator", "--log-level", "error"]
        .into_iter()
        .chain(flags.iter().copied());
    Settings::new(&Options::load(args).unwrap())
}

/// A replay of `piece` with a state file, in process, by the binary's own
/// steps ([`run::replay`]).
fn run_in_process(piece: &[u8], flags: &[&str], path: &Path) -> Vec<u8> {
    let options = options_with_state(flags, path);
    let mut out = Vec::new();
    let exit = retry_in_use(|| {
        out.clear();
        run::replay(&options, piece, &mut out).0
    });
    assert_eq!(exit, run::Exit::Done);
    out
}

/// `flush`, in process, by the binary's own steps ([`run::flush_to`]).
fn flush_in_process(flags: &[&str], path: &Path) -> Vec<u8> {
    let options = options_with_state(flags, path);
    let mut out = Vec::new();
    let exit = retry_in_use(|| {
        out.clear();
        run::flush_to(&options, &mut out)
    });
    assert_eq!(exit, run::Exit::Done);
    out
}

fn options_with_state(flags: &[&str], path: &Path) -> Options {
    let args = ["e2e-aggregator", "--log-level", "error", "--state-file"]
        .into_iter()
        .chain([path.to_str().unwrap()])
        .chain(flags.iter().copied());
    Options::load(args).unwrap()
}

/// Runs `attempt` until it does not refuse the start. A child spawned by
/// another test of this process can hold a copy of the previous piece's
/// lock for the instant between its fork and its exec, so a refusal ("in
/// use") is tried again for a while.
fn retry_in_use(mut attempt: impl FnMut() -> run::Exit) -> run::Exit {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let exit = attempt();
        if exit != run::Exit::Refused || Instant::now() >= deadline {
            return exit;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn generated_workloads_split_anywhere_give_the_same_output(
        seed in any::<u64>(),
        disorder in 0usize..40,
        cuts in prop::collection::vec(0u16..1000, 1..5),
        ttl in prop::bool::ANY,
    ) {
        let input = workload(12, 40, disorder, seed);
        let flags: &[&str] = if ttl {
            &["--period", "2s", "--grace", "4s", "--cache-ttl", "3s"]
        } else {
            &["--period", "2s", "--grace", "4s"]
        };
        let mut expected = Pipeline::new(settings(flags));
        expected.feed(&input, None);
        expected.finish(End::Eof, None);
        let expected = std::mem::take(expected.output());
        prop_assert!(rows(&expected).len() > 20);

        let n = timestamps(&input).len();
        let mut lines: Vec<usize> = cuts.iter().map(|&c| n * usize::from(c) / 1000).collect();
        lines.sort_unstable();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut got = Vec::new();
        for piece in support::cut_at_lines(&input, &lines) {
            got.extend(run_in_process(piece, flags, &path));
        }
        got.extend(flush_in_process(flags, &path));
        prop_assert!(got == expected, "cut at lines {:?}", lines);
    }
}

/// Closes stdin (unless closed), waits for the exit, returns stdout,
/// stderr and the exit code.
fn end(mut p: Proc) -> (Vec<u8>, String, Option<i32>) {
    let exit = p.finish(PATIENCE);
    let code = exit.code();
    (exit.stdout, exit.stderr, code)
}

/// Waits until `done` holds for stdout's complete lines.
fn read_until(p: &Proc, what: &str, done: impl Fn(&[u8]) -> bool) {
    p.wait_stdout(PATIENCE, what, |out| done(out.complete()));
}

/// Line feeds in `bytes`.
fn memchr_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

fn count_lines(out: &[u8], prefix: &[u8]) -> usize {
    out.split(|&b| b == b'\n')
        .filter(|l| l.starts_with(prefix))
        .count()
}

/// A workload stamped an hour ago, so that a live run behaves as a replay
/// (no wall-clock cap, no future guard) as long as `--idle` is long.
fn recent_workload() -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let shift = (now - 3600 * SEC) - 1_700_000_000 * SEC;
    let shift = shift - shift.rem_euclid(10 * SEC);
    let input = workload(10, 60, 20, 42);
    let mut out = Vec::new();
    for line in input.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let at = line.iter().rposition(|&b| b == b' ').unwrap();
        let ts: i64 = std::str::from_utf8(&line[at + 1..])
            .unwrap()
            .parse()
            .unwrap();
        out.extend_from_slice(&line[..=at]);
        out.extend_from_slice((ts + shift).to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

#[test]
fn live_sigterm_mid_stream_then_a_restart_with_the_rest() {
    let input = recent_workload();
    let flags = ["--period", "2s", "--grace", "4s", "--idle", "1h"];
    let expected = whole(&input, &flags);
    let n = timestamps(&input).len();
    let pieces = support::cut_at_lines(&input, &[n / 2]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let state = state.to_str().unwrap();
    let mut args = flags.to_vec();
    args.extend(["--state-file", state]);

    let mut first = Proc::spawn(&args);
    first.write(pieces[0]);
    let lines = timestamps(pieces[0]).len();
    // Every line is passed through: wait for all of them, then stop.
    read_until(&first, "the first piece", |out| {
        count_lines(out, b"network_delays")
            + count_lines(out, b"service_delays")
            + count_lines(out, b"cpu")
            == lines
    });
    first.signal(Signal::TERM);
    let (out1, err1, code1) = end(first);
    assert_eq!(code1, Some(0), "{err1}");

    let mut second = Proc::spawn(&args);
    second.write(pieces[1]);
    let (out2, err2, code2) = end(second);
    assert_eq!(code2, Some(0), "{err2}");
    assert!(err2.contains("restored"), "{err2}");
    let out3 = replay(&[&["flush"][..], &args].concat(), Path::new("/dev/null")).stdout;

    let got = [out1, out2, out3].concat();
    assert!(rows(&expected).len() > 100);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected)
    );
}

/// Rows by (path, source, target, window) → how many times written.
fn row_keys(out: &[u8]) -> BTreeMap<String, usize> {
    let mut keys = BTreeMap::new();
    for row in rows(out) {
        let row = String::from_utf8_lossy(row);
        let tags = row.split(' ').next().unwrap();
        let ts = row.rsplit(' ').next().unwrap();
        let path: Vec<_> = tags
            .split(',')
            .filter(|t| {
                t.starts_with("path_ID")
                    || t.starts_with("source_SFR")
                    || t.starts_with("target_SFR")
            })
            .collect();
        *keys.entry(format!("{} {ts}", path.join(","))).or_default() += 1;
    }
    keys
}

#[test]
fn live_sigkill_after_a_periodic_save_loses_nothing_and_repeats_nothing() {
    let input = recent_workload();
    let flags = ["--period", "2s", "--grace", "4s", "--idle", "1h"];
    let ts = timestamps(&input);
    let n = ts.len();
    let pieces = support::cut_at_lines(&input, &[n / 3, 2 * n / 3]);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let state_str = state.to_str().unwrap();
    let mut args = flags.to_vec();
    // Long enough that no second periodic save comes between the one
    // awaited below and the kill.
    args.extend(["--state-file", state_str, "--state-interval", "3s"]);
    let mut first_args = args.clone();
    first_args.extend(["--stats-interval", "100ms"]);

    let mut first = Proc::spawn(&first_args);
    first.write(pieces[0]);
    // Wait for a periodic save that holds the first piece: its max_ts.
    let max_first = *timestamps(pieces[0]).iter().max().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let saved = loop {
        let text = std::fs::read_to_string(&state).unwrap_or_default();
        if text.contains(&format!("\"max_ts\":{max_first}")) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no periodic save with the first piece"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(saved.matches("\"start\":").count() >= 2, "{saved}");
    // The second piece closes more windows and changes the open ones;
    // once all of it is applied (the self-metrics say so), the process
    // dies without a word.
    first.write(pieces[1]);
    let lines = memchr_count(pieces[0]) + memchr_count(pieces[1]);
    let applied = format!("lines_in={lines}i");
    read_until(&first, "the second piece applied", |out| {
        String::from_utf8_lossy(out).contains(&applied)
    });
    first.signal(Signal::KILL);
    let (out1, _, code1) = end(first);
    assert_eq!(code1, None, "killed");
    let at_kill = std::fs::read_to_string(&state).unwrap();
    assert_eq!(at_kill, saved, "a later save came before the kill");

    let mut second = Proc::spawn(&args);
    second.write(pieces[2]);
    let (out2, err2, code2) = end(second);
    assert_eq!(code2, Some(0), "{err2}");
    assert!(
        err2.contains("replayed") && !err2.contains("replayed 0 journal entries"),
        "{err2}"
    );
    let out3 = replay(&[&["flush"][..], &args].concat(), Path::new("/dev/null")).stdout;

    // Exactly the rows of one uninterrupted run, in order, once each:
    // the kill came when every closed window's record was written.
    let got: Vec<&[u8]> = [&out1[..], &out2, &out3]
        .into_iter()
        .flat_map(|o| rows(o))
        .collect();
    let whole_run = whole(&input, &flags);
    let expected = rows(&whole_run);
    assert!(rows(&out2).len() > 10, "the restored process wrote rows");
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "rows differ from one uninterrupted run");
}

/// Input for one window at `t` of path p (forward, reverse, service) or
/// of the forward path alone.
fn window_lines(t: i64, forward_only: bool) -> String {
    let mut s = format!("network_delays,path=p,source=A,target=B latency=10,bandwidth=100 {t}\n");
    if !forward_only {
        s.push_str(&format!(
            "network_delays,path=p,source=B,target=A latency=20,bandwidth=100 {t}\n\
             service_delays,endpoint=e,sf_instance=i,sfr=B response_time=1,request_size=2,response_size=3 {t}\n"
        ));
    }
    s
}

#[test]
fn a_restart_between_two_windows_keeps_the_rows_with_a_state_file() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let w1 = (now - 600 * SEC) - (now - 600 * SEC).rem_euclid(5 * SEC);
    let w2 = w1 + 5 * SEC;
    let w3 = w2 + 20 * SEC;
    let before = window_lines(w1 + SEC, false);
    let after = format!(
        "{}{}",
        window_lines(w2 + SEC, true),
        window_lines(w3, false)
    );
    let flags = ["--period", "5s", "--grace", "15s", "--idle", "1h"];

    let run = |state: Option<&str>| {
        let mut args = flags.to_vec();
        if let Some(s) = state {
            args.extend(["--state-file", s]);
        }
        let mut first = Proc::spawn(&args);
        first.write(before.as_bytes());
        read_until(&first, "the first window's lines", |o| {
            count_lines(o, b"service_delays") == 1
        });
        // Telegraf's stop: stdin closes (here together with SIGTERM).
        first.signal(Signal::TERM);
        let (out1, err1, _) = end(first);
        let mut second = Proc::spawn(&args);
        second.write(after.as_bytes());
        let (out2, err2, _) = end(second);
        (row_keys(&[out1, out2].concat()), format!("{err1}{err2}"))
    };

    let (without, log) = run(None);
    let key = |t: i64| format!("path_ID=p,source_SFR=A,target_SFR=B {t}");
    assert_eq!(without.get(&key(w1)), Some(&1), "{log}");
    assert_eq!(
        without.get(&key(w2)),
        None,
        "no cache after the restart: {without:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let (with, log) = run(Some(state.to_str().unwrap()));
    assert_eq!(
        with.get(&key(w1)),
        Some(&1),
        "written once, by the second process: {log}"
    );
    assert_eq!(
        with.get(&key(w2)),
        Some(&1),
        "served from the restored caches: {with:?}"
    );
}
