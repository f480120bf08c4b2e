//! The fast path and the general nom grammar read every input alike.
//!
//! `lp::parse_record` reads through table-driven fast paths
//! (`src/lp/grammar.rs`: `scan_record` and the leaves' `scan_*`);
//! `Path::General` runs the nom grammar alone. For every generated input,
//! walked record by record as `parse_all` walks it, both must give the same
//! outcome (record kind, body, length and lines, or error kind and offset)
//! and make the same calls on the visitor (measurement, tags, fields with
//! their values as written, timestamp, in order), with the input complete
//! and with more to come, reporting values or only validating. The first
//! record is also read at every prefix of a short input, as a stream
//! delivers it.
//!
//! Four generators: arbitrary bytes; bytes from the line protocol's own
//! alphabet (separators, quotes, backslashes, CR, digits, the letters of
//! numbers and booleans); and near-valid records, built from valid parts
//! (escapes of every kind, duplicate keys, values at their limits, every
//! line ending) and then mutated (bytes inserted, removed, replaced,
//! spans doubled, cut short); and plain lines (no backslash, no quote, as
//! Telegraf writes them: the plain fast path's input), mutated alike. `fuzz/fuzz_targets/differential.rs` runs the
//! same check under libFuzzer.
//!
//! `LP_DIFF_CASES` sets the number of cases per generator (default 3000).

use e2e_aggregator::lp::{parse_record_with, resume_after, Outcome, Path, Trace};
use proptest::prelude::*;
use proptest::sample::{select, Index};

/// Both paths on every record of `input`; the first record also at every
/// prefix when the input is short.
fn agree(input: &[u8]) -> Result<(), TestCaseError> {
    let mut pos = 0;
    while pos < input.len() {
        pos += agree_on_record(input, pos)?;
    }
    if input.len() <= 200 {
        for k in 0..input.len() {
            agree_on_record(&input[..k], 0)?;
        }
    }
    Ok(())
}

/// Both paths on the record at `pos`; returns where the next one starts.
fn agree_on_record(input: &[u8], pos: usize) -> Result<usize, TestCaseError> {
    let rest = &input[pos..];
    let mut step = rest.len().max(1);
    for at_eof in [true, false] {
        for want in [true, false] {
            let mut fast = Trace {
                want,
                calls: Vec::new(),
            };
            let mut general = Trace {
                want,
                calls: Vec::new(),
            };
            let f = parse_record_with(Path::Fast, rest, at_eof, &mut fast);
            let g = parse_record_with(Path::General, rest, at_eof, &mut general);
            let show = || {
                format!(
                    "{:?} at byte {pos}, at_eof {at_eof}",
                    input.escape_ascii().to_string()
                )
            };
            prop_assert_eq!(f, g, "outcome of {}", show());
            prop_assert_eq!(fast, general, "visitor calls of {}", show());
            if at_eof {
                step = match f {
                    Outcome::Record(rec) => rec.len.max(1),
                    Outcome::Invalid(err) => resume_after(rest, err.offset),
                    Outcome::NeedMore => {
                        return Err(TestCaseError::fail("NeedMore at end of input"))
                    }
                };
            }
        }
    }
    Ok(step)
}

/// Bytes that matter to the grammar, and a few that do not.
const ALPHABET: &[u8] = b" \t\x0b\x0c\r\n,=\\\"#-+.0123456789eEiutTrRfFaAlLsSmx\x00\xc3\xa9\x7f";

fn lp_byte() -> impl Strategy<Value = u8> {
    select(ALPHABET)
}

/// Parts of an element: plain text and every kind of escape, good or bad.
fn element() -> impl Strategy<Value = String> {
    let part = select(vec![
        "cpu", "m", "host", "path", "a", "é", "#m", "\"q\"", "v=1", "t=", "\\ ", "\\,", "\\=",
        "\\\\", "\\\"", "\\x", "\\\\ ", "\\\\\\ ", "\\\t", "\\", "=", ",",
    ]);
    prop::collection::vec(part, 1..4).prop_map(|p| p.concat())
}

/// Field values: every type, at and past its limits, and near misses.
fn field_value() -> impl Strategy<Value = String> {
    let fixed = select(vec![
        "1",
        "-1.5",
        ".5",
        "5.",
        "-.5",
        "1e3",
        "1.e-3",
        "1E+308",
        "1.7976931348623157e308",
        "1.7976931348623159e308",
        "1e309",
        "1e-400",
        "-0",
        "00.42",
        "1.2.3",
        "+1",
        "-",
        ".",
        "1e",
        "1e+",
        "NaN",
        "0i",
        "-0i",
        "007i",
        "1.0i",
        "12I",
        "9223372036854775807i",
        "9223372036854775808i",
        "-9223372036854775808i",
        "-9223372036854775809i",
        "922337203685477580i",
        "0u",
        "01u",
        "-1u",
        "18446744073709551615u",
        "18446744073709551616u",
        "1844674407370955161u",
        "t",
        "T",
        "true",
        "True",
        "TRUE",
        "f",
        "F",
        "false",
        "False",
        "FALSE",
        "tRUE",
        "TrUe",
        "tru",
        "fals",
        "yes",
        "\"\"",
        "\"a b\"",
        "\"a\\\"b\"",
        "\"a\\\\\"",
        "\"a\nb\"",
        "\"a\r\nb\\\"\n\"",
        "\"a\\b\"",
        "\"a\\\"",
        "\"unterminated",
        "\"a,b=c d\"",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        4 => fixed,
        1 => (1usize..420, any::<bool>()).prop_map(|(n, dot)| {
            let digits = "9".repeat(n);
            if dot { format!("{digits}.5") } else { digits }
        }),
        1 => any::<i64>().prop_map(|v| format!("{v}i")),
        1 => any::<u64>().prop_map(|v| format!("{v}u")),
        1 => any::<f64>().prop_map(|v| format!("{v:?}")),
    ]
}

fn timestamp() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "0",
            "1",
            "-1",
            "0001",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "-9223372036854775809",
            "12345678901234567890",
            "1234567890123456789",
            "1.5",
            "123i",
            "+1",
            "-",
            "1 2",
            "1x",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|v| v.to_string()),
    ]
}

fn ws() -> impl Strategy<Value = &'static str> {
    select(vec![" ", " ", " ", "\t", "  ", "\x0b", "\x0c", ""])
}

fn line_end() -> impl Strategy<Value = &'static str> {
    select(vec!["\n", "\n", "\r\n", "", "\r", "\rx", " \n", "\\\n"])
}

/// A point's text from its parts, without its line ending.
fn line(
    measurement: String,
    tags: &[(String, String)],
    sep: &str,
    fields: &[(String, String)],
    ts: Option<(&str, String)>,
) -> String {
    let mut s = measurement;
    for (k, v) in tags {
        s += &format!(",{k}={v}");
    }
    s += sep;
    let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    s += &fields.join(",");
    if let Some((sep, ts)) = ts {
        s += sep;
        s += &ts;
    }
    s
}

/// A point, valid but for what its parts choose.
fn point() -> impl Strategy<Value = String> {
    let tags = prop::collection::vec((element(), element()), 0..4);
    let fields = prop::collection::vec((element(), field_value()), 1..4);
    (
        element(),
        tags,
        ws(),
        fields,
        prop::option::of((ws(), timestamp())),
        line_end(),
    )
        .prop_map(|(m, tags, sep, fields, ts, end)| line(m, &tags, sep, &fields, ts) + end)
}

/// A few records: points, comments and blank lines.
fn records() -> impl Strategy<Value = Vec<u8>> {
    let record = prop_oneof![
        8 => point(),
        1 => select(vec!["# comment\n", "  # c\r\n", "\n", "  \r\n", "\t\n", "#\rx\n"]).prop_map(str::to_owned),
    ];
    prop::collection::vec(record, 1..4).prop_map(|r| r.concat().into_bytes())
}

/// Plain elements (no backslash, no quote) for `src/lp/plain.rs`, long
/// enough together to cross its 64-byte blocks.
fn plain_element() -> impl Strategy<Value = String> {
    let part = select(vec![
        "cpu",
        "m",
        "host",
        "node-03.dc1.example.org",
        "a",
        "é",
        "#m",
        "v=1",
        "=",
        "x\x01",
        "0",
        "-",
    ]);
    prop::collection::vec(part, 1..5).prop_map(|p| p.concat())
}

/// Tag keys and values as `src/lp/plain.rs` reads them: plain parts and
/// escapes, good and bad (of a structural byte, of a backslash, of a
/// control byte, at the end), and a bare quote, which it leaves to the
/// grammar.
fn tag_element() -> impl Strategy<Value = String> {
    let escape = select(vec![
        "\\ ", "\\,", "\\=", "\\\"", "\\\\", "\\\\ ", "\\x", "\\\t", "\\", "\"",
    ]);
    let part = prop_oneof![3 => plain_element(), 1 => escape.prop_map(str::to_owned)];
    prop::collection::vec(part, 1..4).prop_map(|p| p.concat())
}

/// Plain field values: numbers and booleans, good and bad.
fn plain_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => field_value().prop_filter("plain", |v| !v.contains(['"', '\\'])),
        1 => select(vec!["54.301", "23583.237814799537", "580i", "0", "1=2", "1,", "t=", "tr"])
            .prop_map(str::to_owned),
    ]
}

/// A plain line: what Telegraf writes, but for what its parts choose.
fn plain_line() -> impl Strategy<Value = String> {
    let tags = prop::collection::vec((tag_element(), tag_element()), 0..5);
    let fields = prop::collection::vec((plain_element(), plain_value()), 1..8);
    let spaces = select(vec![" ", " ", " ", "  ", ""]);
    (
        plain_element(),
        tags,
        spaces.clone(),
        fields,
        prop::option::of((spaces.clone(), timestamp())),
        spaces,
        select(vec!["\n", "\n", "\r\n", "", "\r\n\n"]),
    )
        .prop_map(|(m, tags, sep, fields, ts, trail, end)| {
            line(m, &tags, sep, &fields, ts) + trail + end
        })
}

/// An edit of a record: insert, remove or replace a byte, double a span,
/// or cut the input short.
#[derive(Debug, Clone)]
enum Edit {
    Insert(Index, u8),
    Remove(Index),
    Replace(Index, u8),
    Double(Index, usize),
    Cut(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), lp_byte()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<Index>().prop_map(Edit::Remove),
        (any::<Index>(), lp_byte()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (any::<Index>(), 1usize..12).prop_map(|(i, n)| Edit::Double(i, n)),
        any::<Index>().prop_map(Edit::Cut),
    ]
}

fn apply(input: &mut Vec<u8>, edit: &Edit) {
    if input.is_empty() {
        return;
    }
    match *edit {
        Edit::Insert(at, b) => input.insert(at.index(input.len() + 1), b),
        Edit::Remove(at) => {
            input.remove(at.index(input.len()));
        }
        Edit::Replace(at, b) => {
            let k = at.index(input.len());
            input[k] = b;
        }
        Edit::Double(at, n) => {
            let k = at.index(input.len());
            let span: Vec<u8> = input[k..(k + n).min(input.len())].to_vec();
            input.splice(k..k, span);
        }
        Edit::Cut(at) => input.truncate(at.index(input.len() + 1)),
    }
}

fn config() -> ProptestConfig {
    let cases = std::env::var("LP_DIFF_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    ProptestConfig::with_cases(cases)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fast_and_general_agree_on_arbitrary_bytes(input in prop::collection::vec(any::<u8>(), 0..160)) {
        agree(&input)?;
    }

    #[test]
    fn fast_and_general_agree_on_line_protocol_bytes(input in prop::collection::vec(lp_byte(), 0..160)) {
        agree(&input)?;
    }

    #[test]
    fn fast_and_general_agree_on_near_valid_records(
        input in records(),
        edits in prop::collection::vec(edit(), 0..4),
    ) {
        let mut input = input;
        for e in &edits {
            apply(&mut input, e);
        }
        agree(&input)?;
    }

    #[test]
    fn fast_and_general_agree_on_plain_lines(
        lines in prop::collection::vec(plain_line(), 1..4),
        edits in prop::collection::vec(edit(), 0..3),
    ) {
        let mut input = lines.concat().into_bytes();
        for e in &edits {
            apply(&mut input, e);
        }
        agree(&input)?;
    }
}

/// Inputs that once told the paths apart, or that reach each fallback.
#[test]
fn fast_and_general_agree_on_known_cases() {
    for input in [
        // The field is reported only once its end is known to be good.
        &b"m f=1\x00"[..],
        b"m,t=a\\ b f=\"x\\\"y\",g=1e309",
        b"m f=99999999999999999999i",
        b"m f=\"a\\",
        b"m\\",
        b"m f=1 -",
        b"m f=1 12345678901234567890",
        b"m,t=v\\\\ f=1",
        b"m f=1\r",
        b"m f=tru",
    ] {
        agree(input).unwrap();
    }
}
