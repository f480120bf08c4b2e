//! Golden files: every folder in `testdata/golden/` is a case, run as
//! `e2e-aggregator ARGS < input.lp` (stdin the file itself, so a replay):
//!
//! - `args` (required; empty means no arguments): one argument per line,
//!   `#` lines are comments;
//! - `input.lp`: stdin;
//! - `expected.lp`: the exact stdout;
//! - `expected.stderr` (optional): stderr, compared line by line after
//!   [`normalise`] (see there for what it removes);
//! - `expected.exit` (optional, default `0`): the exit status.
//!
//! Regenerate after a deliberate change with
//! `UPDATE_GOLDEN=1 cargo test --test golden`, then read the diff. It
//! rewrites `expected.lp` always, `expected.stderr` where it exists, and
//! `expected.exit` where it exists or the status is not 0. To start
//! checking a case's stderr, create an empty `expected.stderr` and
//! regenerate.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

/// What a run printed and returned.
struct Outcome {
    stdout: Vec<u8>,
    stderr: String,
    exit: i32,
}

fn run_case(dir: &Path) -> Result<Outcome, String> {
    let args_path = dir.join("args");
    let args: Vec<String> = fs::read_to_string(&args_path)
        .map_err(|e| format!("args: {e} (every case needs one; an empty file means no arguments)"))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let input = fs::File::open(dir.join("input.lp")).map_err(|e| format!("input.lp: {e}"))?;
    let out = Command::new(env!("CARGO_BIN_EXE_e2e-aggregator"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::from(input))
        .output()
        .map_err(|e| format!("cannot run: {e}"))?;
    Ok(Outcome {
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        exit: out
            .status
            .code()
            .ok_or(format!("killed by a signal: {:?}", out.status))?,
    })
}

/// stderr with what may differ between two runs of the same case removed,
/// one string per line. A replay's stderr depends on its input alone except
/// for the rate limits on warnings, which refill with wall time: a slower
/// run may let through a warning that a faster one held back. So:
///
/// - the note ` (N similar messages suppressed)` at the end of a warning is
///   removed (N counts what was held back since the last one let through);
/// - the line `W! N warnings were suppressed by rate limiting` is removed.
///
/// Nothing else is volatile (no timings, paths or process ids are
/// printed), and a case whose warnings of one kind exceed the burst of 10
/// would still differ in which lines pass: such cases carry no
/// `expected.stderr`.
fn normalise(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| {
            !(l.starts_with("W! ") && l.ends_with(" warnings were suppressed by rate limiting"))
        })
        .map(|l| strip_suppressed_note(l).to_string())
        .collect()
}

fn strip_suppressed_note(line: &str) -> &str {
    let Some(rest) = line.strip_suffix(" similar messages suppressed)") else {
        return line;
    };
    match rest.rsplit_once(" (") {
        Some((head, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => line,
    }
}

/// The first difference between two texts, line by line.
fn first_difference(got: &[String], want: &[String]) -> String {
    let k = got
        .iter()
        .zip(want)
        .position(|(g, w)| g != w)
        .unwrap_or(got.len().min(want.len()));
    format!(
        "at line {} (got {} lines, want {}):\n  got:  {:?}\n  want: {:?}",
        k + 1,
        got.len(),
        want.len(),
        got.get(k).map_or("<end>", String::as_str),
        want.get(k).map_or("<end>", String::as_str),
    )
}

fn text_lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(String::from)
        .collect()
}

fn check_case(dir: &Path) -> Result<(), String> {
    let got = run_case(dir)?;
    let (lp, stderr, exit) = (
        dir.join("expected.lp"),
        dir.join("expected.stderr"),
        dir.join("expected.exit"),
    );
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let write = |path: &Path, bytes: &[u8]| {
            fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
        };
        write(&lp, &got.stdout)?;
        if stderr.exists() {
            write(&stderr, got.stderr.as_bytes())?;
        }
        if exit.exists() || got.exit != 0 {
            write(&exit, format!("{}\n", got.exit).as_bytes())?;
        }
        return Ok(());
    }
    let mut problems = Vec::new();
    let want_exit = match fs::read_to_string(&exit) {
        Ok(text) => text
            .trim()
            .parse::<i32>()
            .map_err(|e| format!("expected.exit: {e}"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(format!("expected.exit: {e}")),
    };
    if got.exit != want_exit {
        problems.push(format!("exit status {}, want {want_exit}", got.exit));
    }
    let want_lp = fs::read(&lp).map_err(|e| format!("expected.lp: {e}"))?;
    if got.stdout != want_lp {
        problems.push(format!(
            "stdout differs from expected.lp {}",
            first_difference(&text_lines(&got.stdout), &text_lines(&want_lp))
        ));
    }
    match fs::read_to_string(&stderr) {
        Ok(want) => {
            let (g, w) = (normalise(&got.stderr), normalise(&want));
            if g != w {
                problems.push(format!(
                    "stderr differs from expected.stderr {}",
                    first_difference(&g, &w)
                ));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("expected.stderr: {e}")),
    }
    if problems.is_empty() {
        return Ok(());
    }
    let shown: String = got.stderr.chars().take(2000).collect();
    Err(format!("{}\nstderr:\n{shown}", problems.join("\n")))
}

#[test]
fn golden_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/golden");
    let mut dirs: Vec<_> = fs::read_dir(&root)
        .expect("testdata/golden")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|d| {
            check_case(d).err().map(|e| {
                format!(
                    "{}: {e}",
                    d.file_name().unwrap_or_default().to_string_lossy()
                )
            })
        })
        .collect();
    println!("golden: {} cases, {} failed", dirs.len(), failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        dirs.len() >= 20,
        "expected at least 20 golden cases, found {}",
        dirs.len()
    );
}

#[test]
fn normalise_removes_only_the_rate_limit_notes() {
    let stderr = "W! invalid line 12: bad: \"x\" (3 similar messages suppressed)\n\
                  W! 5 warnings were suppressed by rate limiting\n\
                  W! invalid line 13: bad: \"(2 similar messages suppressed)\"\n\
                  I! stopped (end of input): lines in 4\n";
    assert_eq!(
        normalise(stderr),
        [
            "W! invalid line 12: bad: \"x\"",
            "W! invalid line 13: bad: \"(2 similar messages suppressed)\"",
            "I! stopped (end of input): lines in 4",
        ]
    );
}
