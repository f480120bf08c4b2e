//! The checkpoint protocol's defects, one test each, through the binary
//! (SPEC.md, "State across restarts" and "Crash safety: the journal"):
//!
//! - lines never wait unseen between the pipe and the program (stdin is
//!   read without a user-space buffer);
//! - a `PATH.closed` or journal left beside no state file of its id (the
//!   operator deleted the state to start afresh) is never applied: set
//!   aside with a `W!`, nothing late, no row suppressed;
//! - `flush` with a closed stdout leaves the state file as it was, and a
//!   second `flush` writes the rows;
//! - saves that fail for a while, then a SIGKILL: no row lost, none
//!   written twice;
//! - crafted values (`max_ts` at the integer limit, a frontier far in the
//!   future) are refused with a reason, not obeyed;
//! - a symlink at PATH is refused at start; one planted at `PATH.tmp` is
//!   never followed.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "support/child.rs"]
mod child;

use child::{Exit, Launch, Signal};

const SEC: i64 = 1_000_000_000;
const T0: i64 = 1_700_000_000 * SEC;
const PATIENCE: Duration = Duration::from_secs(30);

/// One window's worth for path p at `t`: forward, reverse and service.
fn window(p: &str, t: i64) -> String {
    format!(
        "network_delays,path={p},source=A,target=B latency=10,bandwidth=100 {t}\n\
         network_delays,path={p},source=B,target=A latency=20,bandwidth=100 {t}\n\
         service_delays,endpoint=e,sf_instance=i,sfr=B response_time=1,request_size=2,response_size=3 {t}\n"
    )
}

fn rows(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| l.starts_with("e2e_delays,"))
        .map(str::to_string)
        .collect()
}

/// A replay of `input` (a regular file) with `args`.
fn replay(dir: &Path, args: &[&str], input: &str) -> Exit {
    let file = dir.join("input.lp");
    fs::write(&file, input).unwrap();
    Launch::new()
        .args(args)
        .stdin(fs::File::open(&file).unwrap())
        .run(PATIENCE)
}

/// `e2e-aggregator flush ARG`, stdin empty.
fn flush(arg: &str) -> Launch {
    Launch::new()
        .args(["flush", arg])
        .stdin(fs::File::open("/dev/null").unwrap())
}

fn state_arg(dir: &Path) -> (PathBuf, String) {
    let state = dir.join("state.json");
    let arg = format!("--state-file={}", state.display());
    (state, arg)
}

#[test]
fn lines_behind_a_chunk_sized_record_are_applied_at_once_and_survive_sigterm() {
    // A record just under the 256 KiB chunk, then 60 short lines, then a
    // pause. The record's start comes first, so that the chunk has less
    // than 8 KiB of room when its end and the lines arrive together: a
    // reader behind std's 8 KiB buffer then pulled the lines into that
    // buffer, handed on the full chunk and waited in poll on an empty pipe
    // while they sat there.
    let mut record = String::from("other,host=h s=\"");
    record.push_str(&"x".repeat(256 * 1024 - 2048));
    record.push_str("\" 1\n");
    let mut lines = String::new();
    for i in 0..60 {
        lines.push_str(&format!("cpu,host=h{i} v={i} {}\n", T0 + i * SEC));
    }
    let cut = 256 * 1024 - 6 * 1024;
    let mut p = Launch::new()
        .args(["--stats-interval=100ms", "--idle=1h"])
        .spawn();
    p.write(&record[..cut]);
    std::thread::sleep(Duration::from_millis(300));
    p.write(format!("{}{lines}", &record[cut..]));
    let started = Instant::now();
    p.wait_stdout(Duration::from_secs(5), "all 61 lines applied", |out| {
        String::from_utf8_lossy(out.complete()).contains("lines_in=61i")
    });
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the lines waited {:?}",
        started.elapsed()
    );
    p.signal(Signal::TERM);
    let exit = p.wait_exit(PATIENCE);
    assert_eq!(exit.code(), Some(0), "{}", exit.stderr);
    assert!(
        exit.stderr.contains("lines in 61, passed through 61"),
        "{}",
        exit.stderr
    );
    assert!(!exit.stderr.contains("incomplete"), "{}", exit.stderr);
    let passed = String::from_utf8_lossy(&exit.stdout)
        .lines()
        .filter(|l| !l.starts_with("e2e_aggregator "))
        .count();
    assert_eq!(passed, 61, "every line passed through");
}

#[test]
fn neighbours_without_their_state_file_are_set_aside_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    let (state, arg) = state_arg(dir.path());
    let first = format!("{}{}", window("p", T0 + SEC), window("p", T0 + 30 * SEC));
    // A live process leaves a journal and PATH.closed, and is killed.
    let mut p = Launch::new()
        .args([arg.as_str(), "--idle=1h", "--stats-interval=50ms"])
        .spawn();
    p.write(&first);
    p.wait_stdout(PATIENCE, "applied", |out| {
        String::from_utf8_lossy(out.complete()).contains("lines_in=6i")
    });
    std::thread::sleep(Duration::from_millis(150));
    p.signal(Signal::KILL);
    p.wait_exit(PATIENCE);
    let closed = state.with_extension("json.closed");
    let journal = state.with_extension("json.journal.1");
    assert!(
        closed.exists() && journal.exists(),
        "closed and journal left"
    );
    // The operator starts afresh: the state file goes, its neighbours stay.
    fs::remove_file(&state).unwrap();
    let second = window("p", T0 + 2 * SEC);
    let exit = replay(dir.path(), &[&arg], &second);
    assert_eq!(exit.code(), Some(0), "{}", exit.stderr);
    let p = state.display();
    for file in [&closed, &journal] {
        let line = format!(
            "W! state file {p}: {} belongs to no state file (its state is gone); moved to {}.bad",
            file.display(),
            file.display()
        );
        assert!(
            exit.stderr.contains(&line),
            "no {line:?} in\n{}",
            exit.stderr
        );
        assert!(Path::new(&format!("{}.bad", file.display())).exists());
    }
    // Nothing of the old life counts: the point of the earlier window is
    // not late, and flush writes its row.
    assert!(exit.stderr.contains("late 0"), "{}", exit.stderr);
    let flushed = flush(&arg).run(PATIENCE);
    assert_eq!(rows(&flushed.stdout).len(), 1, "{}", flushed.stderr);
    assert!(rows(&flushed.stdout)[0].ends_with(&T0.to_string()));
}

#[test]
fn flush_with_a_closed_stdout_leaves_the_state_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (state, arg) = state_arg(dir.path());
    let exit = replay(dir.path(), &[&arg], &window("p", T0 + SEC));
    assert_eq!(exit.code(), Some(0), "{}", exit.stderr);
    let before = fs::read(&state).unwrap();

    let exit = flush(&arg).closed_stdout().run(PATIENCE);
    assert_eq!(exit.code(), Some(1), "{}", exit.stderr);
    assert!(exit.stderr.contains("broken pipe"), "{}", exit.stderr);
    assert_eq!(fs::read(&state).unwrap(), before, "the state file changed");

    let exit = flush(&arg).run(PATIENCE);
    assert_eq!(exit.code(), Some(0), "{}", exit.stderr);
    assert_eq!(
        rows(&exit.stdout).len(),
        1,
        "the rows come with the next flush"
    );
}

#[test]
fn failed_saves_then_a_kill_lose_no_row_and_repeat_none() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    fs::create_dir(&sub).unwrap();
    let (_, arg) = state_arg(&sub);
    let args = [
        arg.as_str(),
        "--idle=1h",
        "--state-interval=100ms",
        "--stats-interval=50ms",
    ];
    let mut input = String::new();
    for k in 0..40 {
        input.push_str(&window("p", T0 + k * SEC));
    }
    let whole = replay(dir.path(), &[], &input);
    let (a, b) = input.split_at(input.len() / 2);
    let (a1, a2) = a.split_at(a.len() / 2);

    let mut p = Launch::new().args(args).spawn();
    p.write(a1);
    std::thread::sleep(Duration::from_millis(300));
    // Journal appends, saves and PATH.closed now fail: the directory is
    // a file. (Saves wait while appends fail.)
    let away = dir.path().join("away");
    fs::rename(&sub, &away).unwrap();
    fs::write(&sub, "").unwrap();
    p.write(a2);
    p.wait_stderr(PATIENCE, "a failed append", |err| {
        err.text().contains("kept to try again")
    });
    fs::remove_file(&sub).unwrap();
    fs::rename(&away, &sub).unwrap();
    let lines = a.matches('\n').count();
    p.wait_stdout(PATIENCE, "applied", |out| {
        String::from_utf8_lossy(out.complete())
            .matches(&format!("lines_in={lines}i"))
            .count()
            >= 2
    });
    p.signal(Signal::KILL);
    let first = p.wait_exit(PATIENCE);

    let second = Launch::new()
        .args(&args[..2])
        .stdin(
            fs::File::open({
                let f = dir.path().join("b.lp");
                fs::write(&f, b).unwrap();
                f
            })
            .unwrap(),
        )
        .run(PATIENCE);
    assert_eq!(second.code(), Some(0), "{}", second.stderr);
    let flushed = flush(&arg).run(PATIENCE);
    let got: Vec<String> = [&first.stdout, &second.stdout, &flushed.stdout]
        .into_iter()
        .flat_map(|o| rows(o))
        .collect();
    assert_eq!(got, rows(&whole.stdout), "{}", second.stderr);
}

#[test]
fn crafted_values_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (state, arg) = state_arg(dir.path());
    let input = window("p", T0 + SEC);
    assert_eq!(replay(dir.path(), &[&arg], &input).code(), Some(0));
    let saved = fs::read_to_string(&state).unwrap();
    let p = state.display();

    // max_ts at the integer limit.
    let max_ts = format!("\"max_ts\":{}", T0 + SEC);
    fs::write(
        &state,
        saved.replace(&max_ts, &format!("\"max_ts\":{}", i64::MAX)),
    )
    .unwrap();
    let exit = replay(dir.path(), &[&arg], &window("p", T0 + 2 * SEC));
    let line = format!(
        "W! state file {p}: max_ts {} is outside the time range; moved to {p}.bad, starting empty",
        i64::MAX
    );
    assert!(
        exit.stderr.contains(&line),
        "no {line:?} in\n{}",
        exit.stderr
    );
    assert!(exit.stderr.contains("late 0"), "{}", exit.stderr);

    // max_ts older than a window it holds.
    assert_eq!(replay(dir.path(), &[&arg], &input).code(), Some(0));
    let mut doc: serde_json::Value = serde_json::from_slice(&fs::read(&state).unwrap()).unwrap();
    doc["max_ts"] = (T0 - 60 * SEC).into();
    doc["closed_until"] = serde_json::Value::Null;
    fs::write(&state, doc.to_string()).unwrap();
    let exit = replay(dir.path(), &[&arg], "");
    assert!(
        exit.stderr.contains("starts after max_ts"),
        "{}",
        exit.stderr
    );

    // A frontier of this state far in the future, in PATH.closed.
    fs::remove_file(&state).unwrap();
    assert_eq!(replay(dir.path(), &[&arg], &input).code(), Some(0));
    let saved = fs::read_to_string(&state).unwrap();
    let id = saved
        .split("\"state_id\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let closed = format!("{p}.closed");
    fs::write(&closed, format!("{id} 9223372030000000000\n")).unwrap();
    let exit = replay(dir.path(), &[&arg], &window("p", T0 + 2 * SEC));
    assert!(
        exit.stderr.contains(&format!(
            "W! state file {p}: {closed} is refused: frontier 9223372030000000000 is beyond \
             what the state's timestamps and wall clock allow"
        )),
        "{}",
        exit.stderr
    );
    assert!(exit.stderr.contains("late 0"), "{}", exit.stderr);
    assert!(Path::new(&format!("{closed}.bad")).exists());
}

#[test]
fn a_symlink_at_the_state_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (state, arg) = state_arg(dir.path());
    let target = dir.path().join("elsewhere.json");
    fs::write(&target, "").unwrap();
    std::os::unix::fs::symlink(&target, &state).unwrap();
    let exit = replay(dir.path(), &[&arg], &window("p", T0));
    assert_eq!(exit.code(), Some(2), "{}", exit.stderr);
    let line = format!(
        "E! state file {}: is a symbolic link; give the path it points to",
        state.display()
    );
    assert!(exit.stderr.contains(&line), "{}", exit.stderr);
    assert_eq!(fs::read(&target).unwrap(), b"");
}

#[test]
fn a_symlink_planted_at_the_temporary_file_is_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let (state, arg) = state_arg(dir.path());
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    let mut p = Launch::new()
        .args([arg.as_str(), "--idle=1h", "--state-interval=100ms"])
        .spawn();
    p.write(window("p", T0));
    // Planted while the process runs, so that start's clean-up is past.
    std::thread::sleep(Duration::from_millis(100));
    for tmp in [".tmp", ".closed.tmp"] {
        let _ = fs::remove_file(format!("{}{tmp}", state.display()));
        std::os::unix::fs::symlink(&victim, format!("{}{tmp}", state.display())).unwrap();
    }
    p.write(window("p", T0 + 30 * SEC));
    std::thread::sleep(Duration::from_millis(400));
    let exit = p.finish(PATIENCE);
    assert_eq!(exit.code(), Some(0), "{}", exit.stderr);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert!(fs::read_to_string(&state).unwrap().contains("\"format\":2"));
    assert!(!fs::symlink_metadata(&state)
        .unwrap()
        .file_type()
        .is_symlink());
}

// ---------------------------------------------------------------------------
// What a review of the protocol found: restores that left a state or its
// neighbours in a shape the next start refused.

/// A live process on `arg` that is sent `input`, waits until all of its
/// `lines` have been applied (`--stats-interval` counts them), then is
/// SIGKILLed. Its stdout.
fn killed_after(args: &[&str], input: &str, lines: usize) -> Vec<u8> {
    let mut p = Launch::new()
        .args(args)
        .args(["--stats-interval=50ms"])
        .spawn();
    p.write(input);
    p.wait_stdout(PATIENCE, "applied", |out| {
        String::from_utf8_lossy(out.complete()).contains(&format!("lines_in={lines}i"))
    });
    // The chunk's journal append comes before the counters are written.
    std::thread::sleep(Duration::from_millis(100));
    p.signal(Signal::KILL);
    p.wait_exit(PATIENCE).stdout
}

/// The journal files beside `state`.
fn journals(state: &Path) -> Vec<PathBuf> {
    let prefix = format!("{}.journal.", state.file_name().unwrap().to_string_lossy());
    let mut found: Vec<PathBuf> = fs::read_dir(state.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.strip_prefix(&prefix)
                .is_some_and(|n| n.parse::<u64>().is_ok())
        })
        .collect();
    found.sort();
    found
}

/// The wall clock, ns.
fn wall_clock() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_nanos()).unwrap()
}

#[test]
fn a_replay_of_an_idle_advance_saves_a_state_the_next_start_takes() {
    // Idle advance moves the frontier by wall time, past the end of
    // max_ts's window in the last save and past that save's wall clock. A
    // replay of the journal, or a start that takes PATH.closed without one,
    // must save a state whose wall clock allows it.
    for journal in ["--journal=true", "--journal=false"] {
        let dir = tempfile::tempdir().unwrap();
        let (state, arg) = state_arg(dir.path());
        let mut p = Launch::new()
            .args([
                arg.as_str(),
                journal,
                "--period=1s",
                "--grace=1s",
                "--idle=100ms",
                "--state-interval=1h",
            ])
            .spawn();
        // Stamped after the start: its frontier lies beyond the start's
        // save (its wall clock) and beyond that save's max_ts (none).
        let t = wall_clock() / SEC * SEC + 2 * SEC;
        p.write(window("p", t));
        p.wait_stdout(PATIENCE, "the window's row", |out| {
            !rows(out.complete()).is_empty()
        });
        // Two periods more of idle advance, with no save.
        std::thread::sleep(Duration::from_millis(2500));
        p.signal(Signal::KILL);
        p.wait_exit(PATIENCE);
        assert_eq!(
            journals(&state).is_empty(),
            journal == "--journal=false",
            "{journal}: journal files"
        );

        let piece = replay(dir.path(), &[&arg, "--period=1s", "--grace=1s"], "");
        assert_eq!(piece.code(), Some(0), "{journal}: {}", piece.stderr);
        assert!(!piece.stderr.contains("W!"), "{journal}: {}", piece.stderr);
        let next = replay(dir.path(), &[&arg, "--period=1s", "--grace=1s"], "");
        assert_eq!(next.code(), Some(0), "{journal}: {}", next.stderr);
        let p = state.display();
        assert!(
            next.stderr
                .contains(&format!("I! state file {p}: restored 0 windows")),
            "{journal}: {}",
            next.stderr
        );
        assert!(!next.stderr.contains("W!"), "{journal}: {}", next.stderr);
    }
}

#[test]
fn a_damaged_first_journal_leaves_no_gap_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (state, arg) = state_arg(dir.path());
    let live = [arg.as_str(), "--idle=1h", "--state-interval=1h"];
    assert_eq!(
        replay(dir.path(), &[&arg], &window("p", T0)).code(),
        Some(0)
    );
    killed_after(&live, &window("p", T0 + SEC), 3);
    let found = journals(&state);
    let [journal] = &found[..] else {
        panic!("one journal: {found:?}");
    };
    // Its only entry damaged: a byte of the payload flipped.
    let mut bytes = fs::read(journal).unwrap();
    *bytes.last_mut().unwrap() ^= 0x20;
    fs::write(journal, bytes).unwrap();
    killed_after(&live, &window("q", T0 + 2 * SEC), 3);

    let flushed = flush(&arg).run(PATIENCE);
    assert_eq!(flushed.code(), Some(0), "{}", flushed.stderr);
    assert!(!flushed.stderr.contains("W!"), "{}", flushed.stderr);
    assert!(
        flushed
            .stderr
            .contains("replayed 1 journal entries from 1 files"),
        "{}",
        flushed.stderr
    );
    let got = rows(&flushed.stdout);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[1].contains("path_ID=q"),
        "the second crash's window: {got:?}"
    );
}

#[test]
fn without_a_journal_the_frontier_of_a_crashed_run_still_holds() {
    // A live process without a journal closes windows past what its last
    // save knew, records PATH.closed and is killed. Those windows must not
    // be written again from the older state, with other values.
    let dir = tempfile::tempdir().unwrap();
    let (_, arg) = state_arg(dir.path());
    let forward =
        format!("network_delays,path=p,source=A,target=B latency=10,bandwidth=100 {T0}\n");
    // Saved by a run that journals; then one that does not.
    assert_eq!(replay(dir.path(), &[&arg], &forward).code(), Some(0));
    let mut input = format!(
        "network_delays,path=p,source=B,target=A latency=20,bandwidth=100 {t}\n\
         service_delays,endpoint=e,sf_instance=i,sfr=B response_time=1,request_size=2,response_size=3 {t}\n",
        t = T0 + SEC
    );
    for k in [10, 20, 30] {
        input.push_str(&window("p", T0 + k * SEC));
    }
    let live = [
        arg.as_str(),
        "--journal=false",
        "--idle=1h",
        "--state-interval=1h",
        "--grace=5s",
    ];
    let before = rows(&killed_after(&live, &input, 11));
    assert_eq!(before.len(), 3, "windows at 0, 10 and 20 s: {before:?}");

    // The next start journals again (an operator's fix after a crash),
    // and is killed before any save of its own.
    let p = Launch::new()
        .args([arg.as_str(), "--idle=1h", "--grace=5s"])
        .spawn();
    p.wait_stderr(PATIENCE, "the restore", |err| {
        err.text().contains("restored")
    });
    p.signal(Signal::KILL);
    let restarted = p.wait_exit(PATIENCE);
    assert!(!restarted.stderr.contains("W!"), "{}", restarted.stderr);
    let after = replay(
        dir.path(),
        &[&arg, "--grace=5s"],
        &window("p", T0 + 60 * SEC),
    );
    assert_eq!(after.code(), Some(0), "{}", after.stderr);
    assert!(!after.stderr.contains("W!"), "{}", after.stderr);
    let time = |row: &String| row.rsplit(' ').next().unwrap().to_string();
    let written: Vec<String> = before.iter().map(time).collect();
    let again: Vec<String> = rows(&after.stdout)
        .into_iter()
        .filter(|r| written.contains(&time(r)))
        .collect();
    assert!(again.is_empty(), "written again: {again:?}");
}

#[test]
fn a_journal_that_cannot_be_read_is_set_aside_not_left_in_the_way() {
    let dir = tempfile::tempdir().unwrap();
    let (state, arg) = state_arg(dir.path());
    assert_eq!(
        replay(dir.path(), &[&arg], &window("p", T0)).code(),
        Some(0)
    );
    // A directory where the next journal goes: reading it fails.
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(&state).unwrap()).unwrap();
    let next = doc["journal"].as_u64().unwrap() + 1;
    let journal = PathBuf::from(format!("{}.journal.{next}", state.display()));
    fs::create_dir(&journal).unwrap();
    let exit = replay(dir.path(), &[&arg], &window("p", T0 + SEC));
    assert_eq!(exit.code(), Some(0), "{}", exit.stderr);
    assert!(!exit.stderr.contains("cannot append"), "{}", exit.stderr);
    assert!(
        PathBuf::from(format!("{}.bad", journal.display())).is_dir(),
        "moved aside: {}",
        exit.stderr
    );
}

#[test]
fn a_replay_whose_rows_meet_a_closed_stdout_is_tried_again() {
    // Two starts whose stdout is closed while the replay's rows go out:
    // neither was the replay's fault, so the third still replays.
    let dir = tempfile::tempdir().unwrap();
    let (state, arg) = state_arg(dir.path());
    let live = [arg.as_str(), "--idle=1h", "--state-interval=1h"];
    let mut input = String::new();
    for k in [0, 10, 20, 30] {
        input.push_str(&window("p", T0 + k * SEC));
    }
    // A live run whose stdout is closed: the journal keeps the rows.
    let mut p = Launch::new().args(live).closed_stdout().spawn();
    p.write(&input);
    let exit = p.wait_exit(PATIENCE);
    assert_eq!(exit.code(), Some(1), "{}", exit.stderr);
    assert!(
        exit.stderr.contains("the journal keeps them"),
        "{}",
        exit.stderr
    );
    for _ in 0..2 {
        let exit = flush(&arg).closed_stdout().run(PATIENCE);
        assert_eq!(exit.code(), Some(1), "{}", exit.stderr);
        assert!(
            !state.with_extension("json.replaying").exists(),
            "the replay marker stayed: {}",
            exit.stderr
        );
    }
    let flushed = flush(&arg).run(PATIENCE);
    assert_eq!(flushed.code(), Some(0), "{}", flushed.stderr);
    let got = rows(&flushed.stdout);
    assert_eq!(got.len(), 4, "{got:?}\n{}", flushed.stderr);
}

#[test]
fn without_a_journal_rows_that_miss_stdout_are_reported_lost_and_open_windows_saved() {
    let dir = tempfile::tempdir().unwrap();
    let (state, arg) = state_arg(dir.path());
    let mut input = String::new();
    for k in [0, 10, 20, 30] {
        input.push_str(&window("p", T0 + k * SEC));
    }
    let mut p = Launch::new()
        .args([arg.as_str(), "--journal=false", "--idle=1h"])
        .closed_stdout()
        .spawn();
    p.write(&input);
    let exit = p.wait_exit(PATIENCE);
    assert_eq!(exit.code(), Some(1), "{}", exit.stderr);
    let p = state.display();
    let line = format!(
        "E! state file {p}: rows of closed windows did not reach stdout and, \
         without a journal to keep them, are lost"
    );
    assert!(exit.stderr.contains(&line), "{}", exit.stderr);
    // The windows at 20 s and 30 s were open: saved, and flushed next.
    let flushed = flush(&arg).run(PATIENCE);
    assert_eq!(flushed.code(), Some(0), "{}", flushed.stderr);
    let times: Vec<String> = rows(&flushed.stdout)
        .iter()
        .map(|r| r.rsplit(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(
        times,
        [(T0 + 20 * SEC).to_string(), (T0 + 30 * SEC).to_string()]
    );
}
