//! The parser reads every case of the shared line-protocol corpus exactly as
//! Telegraf's `StreamParser` (the one `processors.execd` uses) reads it.
//!
//! The table `testdata/lp-conformance.jsonl` is derived from
//! `../shared/lp-conformance/corpus.jsonl` by `scripts/conformance-table.py`
//! (its header documents the format). For every case, `parse_all` runs on the
//! input bytes, once through the fast paths (what production uses) and once
//! with the general nom grammar alone (`Path::General`), and each time:
//! - the `Ok` points must equal Telegraf's points, in order: measurement
//!   bytes, tags map, fields (type and value, in Telegraf's field order;
//!   floats by bits, any NaN equal to any NaN; strings by bytes, or by length
//!   and SHA-256 where the table holds only those) and timestamp;
//! - Telegraf rejected the input (any record failed, or its parser hung at
//!   end of input: error text starting with `HANG`) if and only if we return
//!   at least one `Err`.
//!
//! The only exceptions are the cases listed in [`STRICTER`], where we reject
//! on purpose what Telegraf accepts, for a reason `../shared/SPEC.md` allows.
//! Each must really be accepted by Telegraf and rejected by us for that
//! reason, so the list cannot go stale. No case is skipped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use e2e_aggregator::lp::{parse_all_with, ErrorKind, OwnedValue, ParseError, Path, Point};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The table, one case per line.
const TABLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/lp-conformance.jsonl");
/// Cases in the corpus; a table with fewer or more is out of date.
const CASES: usize = 360;

/// A bare CR not followed by LF, outside strings and comments (SPEC.md:
/// Telegraf's parser hangs on it at end of input).
const BARE_CR: &str = "bare CR not followed by LF outside strings/comments";
/// A record longer than `--max-line-size` (SPEC.md).
const TOO_LONG: &str = "record longer than --max-line-size";

/// Cases where we deliberately reject what Telegraf accepts: (case id,
/// reason). The reason must be [`BARE_CR`] or [`TOO_LONG`].
const STRICTER: &[(&str, &str)] = &[];

/// The error kind that proves a stricter rejection is for its stated reason.
fn reason_kind(reason: &str) -> Option<ErrorKind> {
    match reason {
        BARE_CR => Some(ErrorKind::BareCarriageReturn),
        TOO_LONG => Some(ErrorKind::TooLong),
        _ => None,
    }
}

/// Bytes as the table gives them: text, base64, or only length and hash.
#[derive(Debug)]
enum Bytes {
    Exact(Vec<u8>),
    Digest { len: usize, sha256: String },
}

impl Bytes {
    fn from_json(v: &Value, what: &str) -> Bytes {
        match v {
            Value::String(s) => Bytes::Exact(s.as_bytes().to_vec()),
            Value::Object(o) if o.contains_key("b64") => Bytes::Exact(
                B64.decode(o["b64"].as_str().expect("b64 is a string"))
                    .unwrap_or_else(|e| panic!("{what}: bad base64: {e}")),
            ),
            Value::Object(o) if o.contains_key("sha256") => Bytes::Digest {
                len: usize::try_from(o["len"].as_u64().expect("len is an integer"))
                    .expect("len fits usize"),
                sha256: o["sha256"].as_str().expect("sha256 is a string").to_owned(),
            },
            other => panic!("{what}: unknown bytes form {other}"),
        }
    }

    fn matches(&self, ours: &[u8]) -> bool {
        match self {
            Bytes::Exact(b) => b == ours,
            Bytes::Digest { len, sha256 } => {
                *len == ours.len() && *sha256 == hex(&Sha256::digest(ours))
            }
        }
    }

    fn show(&self) -> String {
        match self {
            Bytes::Exact(b) => show_bytes(b),
            Bytes::Digest { len, sha256 } => format!("<{len} bytes, sha256 {sha256}>"),
        }
    }
}

/// A typed field value as Telegraf produced it.
#[derive(Debug)]
enum Expected {
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    Boolean(bool),
    String(Bytes),
}

impl Expected {
    fn from_json(typ: &str, v: &Value, what: &str) -> Expected {
        match typ {
            "float" => {
                let text = v
                    .as_str()
                    .unwrap_or_else(|| panic!("{what}: float as text"));
                Expected::Float(match text {
                    "NaN" => f64::NAN,
                    "+Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    _ => text
                        .parse()
                        .unwrap_or_else(|e| panic!("{what}: float {text:?}: {e}")),
                })
            }
            "integer" => Expected::Integer(v.as_i64().unwrap_or_else(|| panic!("{what}: i64"))),
            "unsigned" => Expected::Unsigned(v.as_u64().unwrap_or_else(|| panic!("{what}: u64"))),
            "boolean" => Expected::Boolean(v.as_bool().unwrap_or_else(|| panic!("{what}: bool"))),
            "string" => Expected::String(Bytes::from_json(v, what)),
            other => panic!("{what}: unknown field type {other:?}"),
        }
    }

    fn matches(&self, ours: &OwnedValue) -> bool {
        match (self, ours) {
            (Expected::Float(a), OwnedValue::Float(b)) => {
                (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
            }
            (Expected::Integer(a), OwnedValue::Integer(b)) => a == b,
            (Expected::Unsigned(a), OwnedValue::Unsigned(b)) => a == b,
            (Expected::Boolean(a), OwnedValue::Boolean(b)) => a == b,
            (Expected::String(a), OwnedValue::String(b)) => a.matches(b),
            _ => false,
        }
    }

    fn show(&self) -> String {
        match self {
            Expected::Float(f) => format!("float {f:?}"),
            Expected::Integer(i) => format!("integer {i}"),
            Expected::Unsigned(u) => format!("unsigned {u}"),
            Expected::Boolean(b) => format!("boolean {b}"),
            Expected::String(s) => format!("string {}", s.show()),
        }
    }
}

/// A point as Telegraf produced it.
#[derive(Debug)]
struct ExpectedPoint {
    measurement: Bytes,
    tags: Vec<(Bytes, Bytes)>,
    fields: Vec<(Bytes, Expected)>,
    timestamp: Option<i64>,
}

impl ExpectedPoint {
    fn from_json(p: &Value, what: &str) -> ExpectedPoint {
        let list = |key: &str| {
            p[key]
                .as_array()
                .unwrap_or_else(|| panic!("{what}: {key} is a list"))
                .clone()
        };
        let tags = list("tags")
            .iter()
            .map(|t| (Bytes::from_json(&t[0], what), Bytes::from_json(&t[1], what)))
            .collect();
        let fields = list("fields")
            .iter()
            .map(|f| {
                let typ = f[1].as_str().expect("field type is a string");
                (
                    Bytes::from_json(&f[0], what),
                    Expected::from_json(typ, &f[2], what),
                )
            })
            .collect();
        ExpectedPoint {
            measurement: Bytes::from_json(&p["measurement"], what),
            tags,
            fields,
            timestamp: match &p["timestamp"] {
                Value::Null => None,
                t => Some(t.as_i64().expect("timestamp is an i64")),
            },
        }
    }

    /// What differs between this point and ours; empty when they are equal.
    fn differences(&self, ours: &Point) -> Vec<String> {
        let mut out = Vec::new();
        if !self.measurement.matches(&ours.measurement) {
            out.push(format!(
                "measurement: Telegraf {}, ours {}",
                self.measurement.show(),
                show_bytes(&ours.measurement)
            ));
        }
        // Tags are a map on both sides: every expected tag must be ours with
        // the same value, and we may have no other.
        let mut our_tags: BTreeMap<&[u8], &[u8]> = ours
            .tags
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
            .collect();
        for (key, value) in &self.tags {
            let found = our_tags.keys().copied().find(|k| key.matches(k));
            match found.map(|k| (k, our_tags.remove(k).unwrap_or_default())) {
                Some((_, v)) if value.matches(v) => {}
                Some((k, v)) => out.push(format!(
                    "tag {}: Telegraf {}, ours {}",
                    show_bytes(k),
                    value.show(),
                    show_bytes(v)
                )),
                None => out.push(format!(
                    "tag {}={} missing from ours",
                    key.show(),
                    value.show()
                )),
            }
        }
        for (k, v) in our_tags {
            out.push(format!(
                "tag {}={} only in ours",
                show_bytes(k),
                show_bytes(v)
            ));
        }
        // Fields: the same keys, types and values, in the same order.
        let theirs: Vec<String> = self.fields.iter().map(|(k, _)| k.show()).collect();
        let mine: Vec<String> = ours.fields.iter().map(|(k, _)| show_bytes(k)).collect();
        let same_keys = self.fields.len() == ours.fields.len()
            && self
                .fields
                .iter()
                .zip(&ours.fields)
                .all(|((a, _), (b, _))| a.matches(b));
        if same_keys {
            for ((key, want), (_, got)) in self.fields.iter().zip(&ours.fields) {
                if !want.matches(got) {
                    out.push(format!(
                        "field {}: Telegraf {}, ours {}",
                        key.show(),
                        want.show(),
                        show_value(got)
                    ));
                }
            }
        } else {
            out.push(format!(
                "field keys: Telegraf [{}], ours [{}]",
                theirs.join(", "),
                mine.join(", ")
            ));
        }
        if self.timestamp != ours.timestamp {
            out.push(format!(
                "timestamp: Telegraf {:?}, ours {:?}",
                self.timestamp, ours.timestamp
            ));
        }
        out
    }

    fn show(&self) -> String {
        let tags: Vec<String> = self
            .tags
            .iter()
            .map(|(k, v)| format!("{}={}", k.show(), v.show()))
            .collect();
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{}={}", k.show(), v.show()))
            .collect();
        format!(
            "{} {{{}}} [{}] {:?}",
            self.measurement.show(),
            tags.join(", "),
            fields.join(", "),
            self.timestamp
        )
    }
}

/// One case of the table.
struct Case {
    id: String,
    input: Vec<u8>,
    accepted: bool,
    errors: Vec<String>,
    points: Vec<ExpectedPoint>,
}

fn load() -> Vec<Case> {
    let text = std::fs::read_to_string(TABLE).unwrap_or_else(|e| {
        panic!("{TABLE}: {e} (make it with scripts/conformance-table.py, see its header)")
    });
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, line)| {
            let c: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{TABLE}:{}: {e}", n + 1));
            let id = c["id"].as_str().expect("id is a string").to_owned();
            let errors = match (&c["errors"], &c["error"]) {
                (Value::Array(list), _) => list
                    .iter()
                    .map(|e| e.as_str().expect("error text").to_owned())
                    .collect(),
                (_, Value::String(e)) => vec![e.clone()],
                _ => Vec::new(),
            };
            Case {
                input: B64
                    .decode(c["input_b64"].as_str().expect("input_b64 is a string"))
                    .unwrap_or_else(|e| panic!("{id}: input_b64: {e}")),
                accepted: c["accepted"].as_bool().expect("accepted is a boolean"),
                errors,
                points: c["points"]
                    .as_array()
                    .expect("points is a list")
                    .iter()
                    .enumerate()
                    .map(|(i, p)| ExpectedPoint::from_json(p, &format!("{id}: point {i}")))
                    .collect(),
                id,
            }
        })
        .collect()
}

/// What differs between Telegraf's points and our `Ok` points, in order.
fn point_differences(theirs: &[ExpectedPoint], ours: &[&Point]) -> Vec<String> {
    let mut out = Vec::new();
    if theirs.len() != ours.len() {
        out.push(format!(
            "point count: Telegraf {}, ours {}",
            theirs.len(),
            ours.len()
        ));
    }
    for (i, (t, o)) in theirs.iter().zip(ours).enumerate() {
        for d in t.differences(o) {
            out.push(format!("point {i}: {d}"));
        }
    }
    // Show the surplus points of either side, a few at most.
    for (i, t) in theirs.iter().enumerate().skip(ours.len()).take(3) {
        out.push(format!("point {i} only in Telegraf: {}", t.show()));
    }
    for (i, o) in ours.iter().enumerate().skip(theirs.len()).take(3) {
        out.push(format!("point {i} only in ours: {}", show_point(o)));
    }
    out
}

/// Whether `ours` is `theirs` with some points left out (a stricter case
/// drops the records it rejects and nothing else).
fn is_subsequence(theirs: &[ExpectedPoint], ours: &[&Point]) -> bool {
    let mut rest = theirs.iter();
    ours.iter()
        .all(|o| rest.any(|t| t.differences(o).is_empty()))
}

enum Verdict {
    Agree,
    Stricter,
    Differ(Vec<String>),
}

fn judge(case: &Case, stricter: Option<&str>, path: Path) -> Verdict {
    let result = catch_unwind(AssertUnwindSafe(|| parse_all_with(path, &case.input)));
    let results = match result {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            return Verdict::Differ(vec![format!("parse_all panicked: {msg}")]);
        }
    };
    let ours: Vec<&Point> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    let errs: Vec<&ParseError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let we_accept = errs.is_empty();
    let telegraf = telegraf_verdict(case);
    let our_verdict = our_verdict(&results);

    if let Some(reason) = stricter {
        let mut why = Vec::new();
        if !case.accepted {
            why.push(format!(
                "listed in STRICTER, but Telegraf rejects it too ({telegraf})"
            ));
        }
        match reason_kind(reason) {
            None => why.push(format!("listed in STRICTER with a reason SPEC.md does not allow: {reason:?}")),
            Some(kind) if !errs.iter().any(|e| e.kind == kind) => why.push(format!(
                "listed in STRICTER ({reason}), but we do not reject it for that reason (ours: {our_verdict})"
            )),
            Some(_) => {}
        }
        if !is_subsequence(&case.points, &ours) {
            why.push(format!(
                "listed in STRICTER, but our points are not Telegraf's minus the rejected records: Telegraf {telegraf}; ours {our_verdict}"
            ));
        }
        return if why.is_empty() {
            Verdict::Stricter
        } else {
            Verdict::Differ(why)
        };
    }

    let mut why = Vec::new();
    if case.accepted != we_accept {
        why.push(format!(
            "Telegraf {}, we {}",
            if case.accepted { "accept" } else { "reject" },
            if we_accept { "accept" } else { "reject" },
        ));
    }
    why.extend(point_differences(&case.points, &ours));
    if why.is_empty() {
        Verdict::Agree
    } else {
        why.push(format!("Telegraf: {telegraf}"));
        why.push(format!("ours: {our_verdict}"));
        Verdict::Differ(why)
    }
}

fn telegraf_verdict(case: &Case) -> String {
    let points: Vec<String> = case
        .points
        .iter()
        .take(5)
        .map(ExpectedPoint::show)
        .collect();
    let more = case.points.len().saturating_sub(5);
    format!(
        "{}{}; {} point(s): [{}{}]",
        if case.accepted {
            "accepted"
        } else {
            "rejected"
        },
        if case.errors.is_empty() {
            String::new()
        } else {
            format!(" ({})", case.errors.join(" | "))
        },
        case.points.len(),
        points.join("; "),
        if more > 0 {
            format!("; … {more} more")
        } else {
            String::new()
        },
    )
}

fn our_verdict(results: &[Result<Point, ParseError>]) -> String {
    let items: Vec<String> = results
        .iter()
        .take(6)
        .map(|r| match r {
            Ok(p) => format!("Ok {}", show_point(p)),
            Err(e) => format!("Err {e} ({:?})", e.kind),
        })
        .collect();
    let more = results.len().saturating_sub(6);
    format!(
        "{} result(s): [{}{}]",
        results.len(),
        items.join("; "),
        if more > 0 {
            format!("; … {more} more")
        } else {
            String::new()
        },
    )
}

fn show_point(p: &Point) -> String {
    let tags: Vec<String> = p
        .tags
        .iter()
        .map(|(k, v)| format!("{}={}", show_bytes(k), show_bytes(v)))
        .collect();
    let fields: Vec<String> = p
        .fields
        .iter()
        .map(|(k, v)| format!("{}={}", show_bytes(k), show_value(v)))
        .collect();
    format!(
        "{} {{{}}} [{}] {:?}",
        show_bytes(&p.measurement),
        tags.join(", "),
        fields.join(", "),
        p.timestamp
    )
}

fn show_value(v: &OwnedValue) -> String {
    match v {
        OwnedValue::Float(f) => format!("float {f:?}"),
        OwnedValue::Integer(i) => format!("integer {i}"),
        OwnedValue::Unsigned(u) => format!("unsigned {u}"),
        OwnedValue::Boolean(b) => format!("boolean {b}"),
        OwnedValue::String(s) => format!("string {}", show_bytes(s)),
    }
}

/// Bytes quoted and escaped, cut in the middle when long.
fn show_bytes(b: &[u8]) -> String {
    const KEEP: usize = 120;
    if b.len() <= 2 * KEEP {
        format!("\"{}\"", b.escape_ascii())
    } else {
        format!(
            "\"{}\"…({} bytes)…\"{}\"",
            b[..KEEP].escape_ascii(),
            b.len(),
            b[b.len() - KEEP..].escape_ascii()
        )
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[test]
fn parser_reads_every_case_as_telegraf_stream_does() {
    let cases = load();
    let mut ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), cases.len(), "duplicate case ids in {TABLE}");

    // Every listed case must exist, once.
    let mut listed: BTreeMap<&str, &str> = BTreeMap::new();
    for &(id, reason) in STRICTER {
        assert!(
            listed.insert(id, reason).is_none(),
            "{id} is listed twice in STRICTER"
        );
        assert!(
            ids.binary_search(&id).is_ok(),
            "{id} is listed in STRICTER but is not a case of {TABLE}"
        );
    }

    let mut all_differ = 0;
    for (path, name) in [
        (Path::Fast, "fast path"),
        (Path::General, "general grammar"),
    ] {
        let (mut agree, mut stricter) = (0, 0);
        let mut differ: Vec<String> = Vec::new();
        for case in &cases {
            match judge(case, listed.get(case.id.as_str()).copied(), path) {
                Verdict::Agree => agree += 1,
                Verdict::Stricter => stricter += 1,
                Verdict::Differ(why) => {
                    let mut s = format!("{}: input {}", case.id, show_bytes(&case.input));
                    for w in why {
                        let _ = write!(s, "\n    {w}");
                    }
                    differ.push(s);
                }
            }
        }

        println!(
            "conformance: {agree} agree, {stricter} stricter (listed), {} differ ({name})",
            differ.len()
        );
        for d in &differ {
            println!("{d}");
        }
        assert_eq!(agree + stricter + differ.len(), cases.len());
        all_differ += differ.len();
    }
    assert_eq!(
        cases.len(),
        CASES,
        "the table should hold every case of the corpus"
    );
    assert!(
        all_differ == 0,
        "{all_differ} case(s) differ from Telegraf's stream verdict"
    );
}
