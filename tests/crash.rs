//! The crash property (SPEC.md, the end of "Crash safety: the journal"):
//! a recording fed through a pipe to successive processes sharing one
//! state file, each killed with SIGKILL, the rest fed to the next, then
//! `flush`.
//!
//! - Quiescent kills (once everything written to a process is applied,
//!   per its self-metrics): the `e2e_delays` lines of all of them equal
//!   one uninterrupted run's, in order, byte for byte, no repeat. On the
//!   realistic recording with the default save interval; on a generated
//!   workload with `--state-interval 1s` and a small `--journal-max`, so
//!   that saves and journal rotations come between kills; and with
//!   `--idle` and pauses in the feed, so that idle advances are journaled
//!   and replayed (the uninterrupted run is then a live run with the same
//!   pauses).
//! - Kills at random instants (seeded), saves under way among them: after
//!   removing byte-identical repeats, a row differs from the uninterrupted
//!   run's only in a window that had points in flight at a kill; the test
//!   prints how many.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

mod support;

#[path = "support/child.rs"]
mod child;
#[path = "support/rng.rs"]
mod rng;

use child::{Launch, Proc, Signal};
use rng::Rng;

const REALISTIC: &str = "testdata/golden/realistic/input.lp";
const SEC: i64 = 1_000_000_000;
const PATIENCE: Duration = Duration::from_secs(30);

/// The `e2e_delays` lines of `out`.
fn rows(out: &[u8]) -> Vec<&[u8]> {
    out.split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"e2e_delays,"))
        .collect()
}

/// Splits `input` into whole lines: `pieces` pieces cut at seeded lines.
fn cut<'a>(input: &'a [u8], pieces: usize, rng: &mut Rng) -> Vec<&'a [u8]> {
    let lines = input.iter().filter(|&&b| b == b'\n').count() as u64;
    let mut at: BTreeSet<usize> = BTreeSet::new();
    while at.len() < pieces - 1 {
        at.insert(1 + rng.below(lines - 1) as usize);
    }
    support::cut_at_lines(input, &at.into_iter().collect::<Vec<_>>())
}

fn lines_in(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// How many self-metrics lines of `out` say that `lines` were read.
fn stats_at(out: &[u8], lines: usize) -> usize {
    let field = format!("lines_in={lines}i");
    out.split(|&b| b == b'\n')
        .filter(|l| {
            l.starts_with(b"e2e_aggregator ") && String::from_utf8_lossy(l).contains(&field)
        })
        .count()
}

fn spawn(args: &[&str]) -> Proc {
    Launch::new()
        .args(args)
        .arg("--stats-interval=50ms")
        .spawn()
}

/// Waits until a process has applied all `lines` written to it and gone
/// back to waiting: two self-metrics lines say so (the second is written
/// in a later turn of its loop, after the first turn's records).
fn wait_applied(p: &Proc, lines: usize) {
    p.wait_stdout(PATIENCE, &format!("{lines} lines applied"), |out| {
        stats_at(out.complete(), lines) >= 2
    });
}

/// `flush` of the state file, its stdout.
fn flush(args: &[&str]) -> Vec<u8> {
    let exit = Launch::new()
        .arg("flush")
        .args(args)
        .stdin(std::fs::File::open("/dev/null").unwrap())
        .run(PATIENCE);
    assert_eq!(exit.code(), Some(0), "{}", exit.stderr);
    exit.stdout
}

/// One live process over all of `pieces` (each followed by `pause`), then
/// end of input: the uninterrupted run, with the same flags but no state
/// file.
fn uninterrupted(args: &[&str], pieces: &[&[u8]], pause: Duration) -> Vec<u8> {
    let mut p = spawn(args);
    for piece in pieces {
        p.write(piece);
        std::thread::sleep(pause);
    }
    let exit = p.finish(PATIENCE);
    assert_eq!(exit.code(), Some(0), "{}", exit.stderr);
    exit.stdout
}

/// Feeds each piece but the last to a process of its own, killed with
/// SIGKILL once it has applied its piece (after `pause`, and `linger` more
/// when given, so that periodic saves come); the last piece ends
/// normally; then `flush`. Returns stdout of all of them and the stderr.
fn killed_quiescent(
    args: &[&str],
    pieces: &[&[u8]],
    pause: Duration,
    mut linger: impl FnMut() -> Duration,
) -> (Vec<u8>, String) {
    let mut out = Vec::new();
    let mut err = String::new();
    let (last, killed) = pieces.split_last().unwrap();
    for piece in killed {
        let mut p = spawn(args);
        p.write(piece);
        std::thread::sleep(pause);
        wait_applied(&p, lines_in(piece));
        std::thread::sleep(linger());
        p.signal(Signal::KILL);
        let exit = p.wait_exit(PATIENCE);
        assert_eq!(exit.code(), None, "killed: {}", exit.stderr);
        out.extend(exit.stdout);
        err.push_str(&exit.stderr);
    }
    let mut p = spawn(args);
    p.write(last);
    std::thread::sleep(pause);
    let exit = p.finish(PATIENCE);
    assert_eq!(exit.code(), Some(0), "{}", exit.stderr);
    out.extend(exit.stdout);
    err.push_str(&exit.stderr);
    out.extend(flush(args));
    (out, err)
}

fn state_args(dir: &Path, flags: &[&str]) -> Vec<String> {
    let state = dir.join("state.json");
    let mut args: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    args.push(format!("--state-file={}", state.display()));
    args
}

/// Compares rows, printing the first difference.
fn assert_same_rows(got: &[u8], expected: &[u8]) {
    let (got, expected) = (rows(got), rows(expected));
    assert!(expected.len() > 100, "{} rows", expected.len());
    if let Some(i) = (0..got.len().min(expected.len())).find(|&i| got[i] != expected[i]) {
        panic!(
            "row {i} differs:\n got {}\nwant {}",
            got[i].escape_ascii(),
            expected[i].escape_ascii()
        );
    }
    assert_eq!(got.len(), expected.len(), "row count");
}

/// A generated workload: `paths` paths with both directions and a service
/// per target, one point each per series every 200 ms, up to 400 ms out
/// of order, from `t0` for `seconds`.
fn workload(seed: u64, t0: i64, seconds: i64, paths: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut lines: Vec<(i64, String)> = Vec::new();
    let step = SEC / 5;
    for k in 0..seconds * 5 {
        let base = t0 + k * step;
        for p in 0..paths {
            let (a, b) = (format!("n{p}"), format!("n{}", (p + 1) % paths));
            for (s, t) in [(&a, &b), (&b, &a)] {
                let ts = base + rng.below_i(step);
                let lat = rng.below(1000) as f64 / 8.0;
                lines.push((
                    ts,
                    format!("network_delays,path=p{p},source={s},target={t} latency={lat},bandwidth=100i {ts}"),
                ));
            }
            let ts = base + rng.below_i(step);
            lines.push((
                ts,
                format!(
                    "service_delays,endpoint=e{p},sf_instance=i{p},sfr={b} response_time={},request_size=2i,response_size=3i {ts}",
                    rng.below(100)
                ),
            ));
            if rng.below(10) == 0 {
                lines.push((ts, format!("cpu,host=h{p} usage={} {ts}", rng.below(100))));
            }
        }
    }
    // Arrival order: stamped order, each line moved by up to 400 ms.
    let mut keyed: Vec<(i64, usize, String)> = lines
        .into_iter()
        .enumerate()
        .map(|(i, (ts, l))| (ts + rng.below_i(2 * step), i, l))
        .collect();
    keyed.sort();
    let mut out = String::new();
    for (_, _, l) in keyed {
        out.push_str(&l);
        out.push('\n');
    }
    out.into_bytes()
}

#[test]
fn quiescent_kills_on_the_realistic_recording_give_one_runs_rows() {
    let input = std::fs::read(REALISTIC).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // --idle long: the live runs decide as a replay of the file would.
    let flags = ["--idle=1h"];
    let args = state_args(dir.path(), &flags);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let pieces = cut(&input, 12, &mut Rng::new(15));
    let expected = uninterrupted(&flags, &pieces, Duration::ZERO);
    let (got, err) = killed_quiescent(&args, &pieces, Duration::ZERO, || Duration::ZERO);
    assert!(err.matches("replayed").count() >= 11, "{err}");
    assert_same_rows(&got, &expected);
}

#[test]
fn quiescent_kills_with_saves_and_rotations_between_them() {
    let t0 = 1_700_000_000 * SEC;
    let input = workload(7, t0, 120, 6);
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--idle=1h",
        "--period=1s",
        "--grace=1s",
        "--state-interval=1s",
        "--journal-max=16KiB",
    ];
    let args = state_args(dir.path(), &flags);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut rng = Rng::new(16);
    let pieces = cut(&input, 11, &mut rng);
    let expected = uninterrupted(&flags, &pieces, Duration::ZERO);
    let (got, err) = killed_quiescent(&args, &pieces, Duration::ZERO, || {
        Duration::from_millis(rng.below(1500))
    });
    assert!(err.matches("replayed").count() >= 10, "{err}");
    assert_same_rows(&got, &expected);
}

#[test]
fn quiescent_kills_after_idle_advances_replay_them() {
    // Sessions of 4 s of event time, 60 s apart, each followed by a pause
    // of 2 s of wall time: the idle advance closes every window of the
    // session during the pause, in either run, and the next session lies
    // beyond where it got to. Odd sessions report no service: their rows
    // take it from the cache, which the kill after the session before
    // leaves only in the journal.
    let t0 = 1_700_000_000 * SEC;
    let mut sessions = Vec::new();
    for s in 0..11 {
        let mut session = workload(100 + s, t0 + s as i64 * 60 * SEC, 4, 3);
        if s % 2 == 1 {
            session = session
                .split_inclusive(|&b| b == b'\n')
                .filter(|l| !l.starts_with(b"service_delays"))
                .flatten()
                .copied()
                .collect();
        }
        sessions.push(session);
    }
    let pieces: Vec<&[u8]> = sessions.iter().map(Vec::as_slice).collect();
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--idle=200ms", "--period=1s", "--grace=500ms"];
    let args = state_args(dir.path(), &flags);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let pause = Duration::from_secs(2);
    let expected = uninterrupted(&flags, &pieces, pause);
    let (got, err) = killed_quiescent(&args, &pieces, pause, || Duration::ZERO);
    assert!(err.matches("replayed").count() >= 10, "{err}");
    assert_same_rows(&got, &expected);
}

/// A row's series and window: its tags and its timestamp.
type RowKey = (Vec<u8>, Vec<u8>);

/// The key of a row.
fn row_key(row: &[u8]) -> RowKey {
    // The first space not escaped by a backslash ends the tags.
    let mut i = 0;
    while i < row.len() && row[i] != b' ' {
        i += if row[i] == b'\\' { 2 } else { 1 };
    }
    let at = row.iter().rposition(|&b| b == b' ').unwrap();
    (row[..i].to_vec(), row[at + 1..].to_vec())
}

#[test]
fn kills_at_random_instants_change_only_windows_with_points_in_flight() {
    let period = 5 * SEC;
    let input = std::fs::read(REALISTIC).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Saves every 100 ms and journal rotations at 256 KiB: kills land
    // during saves and restores too.
    let flags = [
        "--idle=1h",
        "--state-interval=100ms",
        "--journal-max=256KiB",
    ];
    let args = state_args(dir.path(), &flags);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut rng = Rng::new(17);
    let pieces = cut(&input, 12, &mut rng);
    let expected_out = uninterrupted(&flags, &pieces, Duration::ZERO);

    let mut got = Vec::new();
    // Windows (start, ns) that had a point written to a process after its
    // last self-metrics line: possibly lost in flight.
    let mut in_flight: BTreeSet<i64> = BTreeSet::new();
    let (last, killed) = pieces.split_last().unwrap();
    for piece in killed {
        let mut p = spawn(&args);
        p.write(piece);
        std::thread::sleep(Duration::from_millis(rng.below(120)));
        p.signal(Signal::KILL);
        let exit = p.wait_exit(PATIENCE);
        let applied = exit
            .stdout
            .split(|&b| b == b'\n')
            .filter_map(|l| {
                let l = String::from_utf8_lossy(l);
                let v = l.split("lines_in=").nth(1)?.split('i').next()?.parse().ok();
                v
            })
            .max()
            .unwrap_or(0usize);
        for line in piece.split(|&b| b == b'\n').skip(applied) {
            if let Some(ts) = std::str::from_utf8(line)
                .ok()
                .and_then(|l| l.rsplit(' ').next()?.parse::<i64>().ok())
            {
                in_flight.insert(ts.div_euclid(period) * period);
            }
        }
        got.extend(exit.stdout);
    }
    let mut p = spawn(&args);
    p.write(last);
    let exit = p.finish(PATIENCE);
    assert_eq!(exit.code(), Some(0), "{}", exit.stderr);
    got.extend(exit.stdout);
    got.extend(flush(&args));

    let expected: BTreeMap<_, _> = rows(&expected_out)
        .into_iter()
        .map(|r| (row_key(r), r))
        .collect();
    let mut seen: BTreeMap<RowKey, BTreeSet<&[u8]>> = BTreeMap::new();
    for r in rows(&got) {
        seen.entry(row_key(r)).or_default().insert(r);
    }
    let mut changed = 0;
    for (key, want) in &expected {
        let ok = seen
            .get(key)
            .is_some_and(|s| s.len() == 1 && s.contains(want));
        if ok {
            continue;
        }
        let start: i64 = std::str::from_utf8(&key.1).unwrap().parse().unwrap();
        assert!(
            in_flight.contains(&start),
            "row {} changed although no point of its window was in flight: got {:?}",
            want.escape_ascii(),
            seen.get(key).map(|s| s
                .iter()
                .map(|r| r.escape_ascii().to_string())
                .collect::<Vec<_>>())
        );
        changed += 1;
    }
    println!(
        "{changed} of {} rows changed, all in windows with points in flight at a kill ({} windows)",
        expected.len(),
        in_flight.len()
    );
    assert!(changed < expected.len() / 4, "{changed} rows changed");
}
