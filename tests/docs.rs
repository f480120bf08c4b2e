//! The documentation holds: every relative link in every Markdown file of
//! the repository resolves to a file inside it (and a `#anchor` to a
//! heading of that file), and every shell block of the README and of
//! `docs/` marked `<!-- runnable -->` runs as written, printing exactly
//! the `text` block after it when that one is marked `<!-- output -->`.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_e2e-aggregator");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .canonicalize()
        .unwrap()
}

/// The Markdown files of the repository (not build output).
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            markdown_files(&path, out);
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// The text outside fenced code blocks and inline code spans.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut in_code = false;
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
            } else if !in_code {
                out.push(c);
            }
        }
        out.push('\n');
    }
    out
}

/// Link targets: `[text](target)` and reference definitions `[x]: target`.
fn links(text: &str) -> Vec<String> {
    let prose = prose(text);
    let mut out = Vec::new();
    let mut rest = prose.as_str();
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let end = rest.find(')').unwrap_or(rest.len());
        out.push(rest[..end].trim().to_string());
    }
    for line in prose.lines() {
        let line = line.trim_start();
        if let Some(close) = line.strip_prefix('[').and_then(|l| l.find("]: ")) {
            out.push(line[close + 4..].trim().to_string());
        }
    }
    out
}

/// GitHub's anchors of a file's headings: lower case, punctuation but `-`
/// and `_` dropped, spaces as `-`, `-1`, `-2` on repeats.
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        let Some(heading) = line.strip_prefix('#').filter(|_| !fenced) else {
            continue;
        };
        let heading = heading.trim_start_matches('#').trim();
        let slug: String = heading
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let mut unique = slug.clone();
        let mut n = 0;
        while !seen.insert(unique.clone()) {
            n += 1;
            unique = format!("{slug}-{n}");
        }
    }
    seen
}

#[test]
fn every_relative_link_resolves_inside_the_repository() {
    let root = root();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    assert!(files.len() >= 12, "{files:?}");
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            let name = format!("{}: {link}", file.strip_prefix(&root).unwrap().display());
            let Ok(target) = target.canonicalize() else {
                broken.push(format!("{name}: no such file"));
                continue;
            };
            if !target.starts_with(&root) {
                broken.push(format!("{name}: outside the repository"));
                continue;
            }
            if !anchor.is_empty() {
                let text = fs::read_to_string(&target).unwrap_or_default();
                if !anchors(&text).contains(anchor) {
                    broken.push(format!("{name}: no heading #{anchor}"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked >= 50, "only {checked} links checked");
}

/// A block marked runnable: its script, and the output it must print.
struct Example {
    file: String,
    script: String,
    output: Option<String>,
}

/// The fenced block that starts at `lines[at]` (its body) and the line after it.
fn block(lines: &[&str], at: usize) -> (String, usize) {
    assert!(lines[at].starts_with("```"), "{}", lines[at]);
    let mut body = String::new();
    let mut i = at + 1;
    while !lines[i].starts_with("```") {
        body.push_str(lines[i]);
        body.push('\n');
        i += 1;
    }
    (body, i + 1)
}

fn examples(file: &Path) -> Vec<Example> {
    let text = fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let next = |mut i: usize| {
        while lines[i].trim().is_empty() {
            i += 1;
        }
        i
    };
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != "<!-- runnable -->" {
            continue;
        }
        let (script, after) = block(&lines, next(i + 1));
        let output = (after < lines.len() && lines[next(after)].trim() == "<!-- output -->")
            .then(|| block(&lines, next(next(after) + 1)).0);
        out.push(Example {
            file: file.strip_prefix(root()).unwrap().display().to_string(),
            script,
            output,
        });
    }
    out
}

#[test]
fn the_runnable_examples_run_as_written() {
    let root = root();
    let mut files = vec![root.join("README.md")];
    markdown_files(&root.join("docs"), &mut files);
    let examples: Vec<Example> = files.iter().flat_map(|f| examples(f)).collect();
    assert!(examples.len() >= 3, "{} examples", examples.len());
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for example in &examples {
        // In a scratch directory that sees the repository's testdata.
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(root.join("testdata"), dir.path().join("testdata")).unwrap();
        let out = Command::new("bash")
            .args(["-e", "-o", "pipefail", "-c", &example.script])
            .current_dir(dir.path())
            .env("PATH", &path)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {}\nexit {:?}\n{stdout}\n{}",
            example.file,
            example.script,
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(want) = &example.output {
            assert_eq!(&*stdout, want, "{}: {}", example.file, example.script);
        }
    }
}
