//! Golden files: every folder in `testdata/golden/` holds `input.lp`, `args`
//! (one argument per line; `#` lines are comments) and `expected.lp`, the
//! exact stdout of `e2e-aggregator ARGS < input.lp`. stdin is the file
//! itself, so every case is a replay.
//!
//! Regenerate after a deliberate change with
//! `UPDATE_GOLDEN=1 cargo test --test golden`, then read the diff.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

fn run_case(dir: &Path) -> Result<(), String> {
    let args: Vec<String> = fs::read_to_string(dir.join("args"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let input = fs::File::open(dir.join("input.lp")).map_err(|e| format!("input.lp: {e}"))?;
    let out = Command::new(env!("CARGO_BIN_EXE_e2e-aggregator"))
        .args(&args)
        .stdin(Stdio::from(input))
        .output()
        .map_err(|e| format!("cannot run: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("exit {:?}; stderr:\n{stderr}", out.status));
    }
    let expected_path = dir.join("expected.lp");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(&expected_path, &out.stdout).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let expected = fs::read(&expected_path).map_err(|e| format!("expected.lp: {e}"))?;
    if out.stdout == expected {
        return Ok(());
    }
    let got = String::from_utf8_lossy(&out.stdout);
    let want = String::from_utf8_lossy(&expected);
    let first = got
        .lines()
        .zip(want.lines())
        .position(|(g, w)| g != w)
        .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
    Err(format!(
        "stdout differs from expected.lp at line {} (got {} lines, want {}):\n  got:  {:?}\n  want: {:?}\nstderr:\n{}",
        first + 1,
        got.lines().count(),
        want.lines().count(),
        got.lines().nth(first).unwrap_or("<end>"),
        want.lines().nth(first).unwrap_or("<end>"),
        stderr.chars().take(2000).collect::<String>()
    ))
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
            run_case(d).err().map(|e| {
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
