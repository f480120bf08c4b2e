//! How the process stops, as SPEC.md's "Stop" says: a stop never invents a
//! record from a fragment, and a failed read of stdin is an error.
//!
//! - A replay of a regular file stopped by SIGTERM mid-read ends at a line
//!   end: its output is a prefix of the input, whole lines only (before the
//!   fix, the half-read tail was parsed as a line of its own).
//! - A pipe whose writer is mid-line at SIGTERM: the fragment is reported
//!   incomplete, counted invalid, not passed through.
//! - stdin that cannot be read: `E!` and exit status 1.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_e2e-aggregator");

fn term(child: &Child) {
    let status = Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .expect("cannot run kill");
    assert!(status.success());
}

/// Waits for the child, killing it after a generous bound.
fn wait(mut child: Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not stop");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends SIGTERM, then reads the rest of stdout and all of stderr and
/// waits for the exit.
fn stop(
    mut child: Child,
    mut stdout: std::process::ChildStdout,
) -> (Vec<u8>, String, std::process::ExitStatus) {
    term(&child);
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let mut stderr = String::new();
    let mut pipe = child.stderr.take().unwrap();
    pipe.read_to_string(&mut stderr).unwrap();
    (rest, stderr, wait(child))
}

#[test]
fn a_signal_during_a_file_replay_stops_at_a_line_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.lp");
    let mut input = Vec::new();
    for i in 0..2_000_000u64 {
        writeln!(input, "cpu,host=h{} v={}i 1700000000{:09}", i % 7, i, i).unwrap();
    }
    std::fs::write(&path, &input).unwrap();

    let mut child = Command::new(BIN)
        .stdin(std::fs::File::open(&path).unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Read a little, so the process is blocked on stdout mid-replay, then
    // stop it and read the rest.
    let mut out = vec![0; 1 << 20];
    stdout.read_exact(&mut out).unwrap();
    let (rest, stderr, status) = stop(child, stdout);
    out.extend(rest);

    assert!(status.success(), "{status:?} {stderr}");
    assert!(
        out.len() < input.len(),
        "the stop came after the whole file was read"
    );
    assert!(out.ends_with(b"\n"));
    assert_eq!(
        out,
        input[..out.len()],
        "the output is a prefix of the input"
    );
    let lines = out.iter().filter(|&&b| b == b'\n').count();
    assert!(
        stderr.contains(&format!(
            "I! stopped (signal): lines in {lines}, passed through {lines},"
        )),
        "{stderr}"
    );
}

#[test]
fn a_signal_while_a_pipe_writer_is_mid_line_drops_the_fragment() {
    let mut child = Command::new(BIN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"cpu v=1 1\nnetwork_delays,path=p,source=a,target=b latency=1")
        .unwrap();
    stdin.flush().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0; 10];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"cpu v=1 1\n");
    let (rest, stderr, status) = stop(child, stdout);
    drop(stdin);

    assert!(status.success(), "{status:?} {stderr}");
    assert_eq!(rest, b"", "the fragment is not passed through");
    assert!(
        stderr.contains(
            "W! invalid line 2: incomplete record: the input stopped before its end at byte 50: \
             \"network_delays,path=p,source=a,target=b latency=1\""
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("I! stopped (signal): lines in 2, passed through 1, aggregated 0, late 0, skipped 0, invalid 1,"),
        "{stderr}"
    );
}

#[test]
fn a_stdin_that_cannot_be_read_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .stdin(std::fs::File::open(dir.path()).unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("E! reading stdin failed: Is a directory"),
        "{stderr}"
    );
    assert!(
        stderr.contains("I! stopped (read error): lines in 0,"),
        "{stderr}"
    );
}
