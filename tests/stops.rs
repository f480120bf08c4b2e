//! How the process stops, as SPEC.md's "Stop" says: a stop never invents a
//! record from a fragment, and a failed read of stdin is an error.
//!
//! - A replay of a regular file stopped by SIGTERM mid-read ends at a line
//!   end: its output is a prefix of the input, whole lines only (before the
//!   fix, the half-read tail was parsed as a line of its own).
//! - A pipe whose writer is mid-line at SIGTERM: the fragment is reported
//!   incomplete, counted invalid, not passed through.
//! - stdin that cannot be read: `E!` and exit status 1.

use std::fs::File;
use std::io::{Read, Write};
use std::time::Duration;

#[path = "support/child.rs"]
mod child;

use child::{Launch, Proc, Signal};

/// A generous bound on every wait.
const PATIENCE: Duration = Duration::from_secs(30);

#[test]
fn a_signal_during_a_file_replay_stops_at_a_line_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.lp");
    let mut input = Vec::new();
    for i in 0..2_000_000u64 {
        writeln!(input, "cpu,host=h{} v={}i 1700000000{:09}", i % 7, i, i).unwrap();
    }
    std::fs::write(&path, &input).unwrap();

    let mut p = Launch::new()
        .stdin(File::open(&path).unwrap())
        .keep_stdout()
        .spawn();
    let mut stdout = p.take_stdout();
    // Read a little, so the process is blocked on stdout mid-replay, then
    // stop it and read the rest.
    let mut out = vec![0; 1 << 20];
    stdout.read_exact(&mut out).unwrap();
    p.signal(Signal::TERM);
    stdout.read_to_end(&mut out).unwrap();
    let exit = p.wait_exit(PATIENCE);
    let (status, stderr) = (exit.status, exit.stderr);

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
    let mut p = Proc::spawn(&[]);
    p.write(b"cpu v=1 1\nnetwork_delays,path=p,source=a,target=b latency=1");
    p.wait_stdout(PATIENCE, "the first line", |out| out.bytes.len() >= 10);
    assert_eq!(&p.stdout().bytes[..10], b"cpu v=1 1\n");
    p.signal(Signal::TERM);
    let exit = p.wait_exit(PATIENCE);
    let (status, stderr, rest) = (exit.status, exit.stderr, &exit.stdout[10..]);

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
    let exit = Launch::new()
        .stdin(File::open(dir.path()).unwrap())
        .run(PATIENCE);
    let stderr = &exit.stderr;
    assert_eq!(exit.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("E! reading stdin failed: Is a directory"),
        "{stderr}"
    );
    assert!(
        stderr.contains("I! stopped (read error): lines in 0,"),
        "{stderr}"
    );
}
