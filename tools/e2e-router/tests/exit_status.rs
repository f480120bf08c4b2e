//! `e2e-router`'s exit status: 2 for arguments it cannot use, as
//! e2e-aggregator; 1 when the recording cannot be read.

use std::process::Command;

const ROUTER: &str = env!("CARGO_BIN_EXE_e2e-router");

/// The status and stderr of `e2e-router ARGS` (writing into a temp dir).
fn route(args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(ROUTER)
        .args(args)
        .arg("--out-dir")
        .arg(dir.path())
        .output()
        .expect("run e2e-router");
    let code = out.status.code().expect("exit status");
    (code, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn argument_errors_exit_2() {
    let (code, stderr) = route(&["--bogus", "-p", "2", "-i", "2", "-"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--bogus"), "{stderr}");
    // Flags that parse but do not fit together are a usage error too.
    let (code, stderr) = route(&["-p", "2", "-i", "2", "--other-instance", "2", "-"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--other-instance 2 is not below --instances 2"),
        "{stderr}"
    );
}

#[test]
fn an_unreadable_recording_exits_1() {
    let (code, stderr) = route(&["-p", "2", "-i", "2", "/nonexistent/recording.lp"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("read /nonexistent/recording.lp"),
        "{stderr}"
    );
}
