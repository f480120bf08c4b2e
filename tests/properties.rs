//! Properties, checked with proptest on generated input:
//! - the writer round-trips: a line written with `lp::write::Line` from any
//!   measurement `is_portable_measurement` accepts, tag keys, tag values
//!   and field keys `is_portable` accepts, and finite floats, integers,
//!   unsigned integers, booleans and strings reads back as exactly those
//!   values (floats bit for bit), both with our `parse_all` and with the
//!   `influxdb-line-protocol` crate (InfluxData's parser, the shared
//!   yardstick's baseline), so that a bug shared by our writer and our
//!   parser cannot pass;
//! - pass-through is exact: valid lines of other measurements, generated
//!   from the grammar Telegraf accepts (escapes, strings with raw line
//!   feeds, every number and boolean form, odd whitespace, `\r\n`), come
//!   out of the engine byte for byte, each ending in `\n`, however the input
//!   is split into chunks;
//! - order within grace changes no row but for the last bits of float
//!   means (an f64 sum depends on the order of its terms): delay points fed
//!   in time order and in an order where each point is within grace of the
//!   newest seen give the same `e2e_delays` rows (tags and timestamps
//!   equal, values equal to 1e-12 relative). Every case holds one complete join (forward
//!   path, reverse path, service), so there is always a row to compare.
//!
//! Case counts are kept moderate so that `cargo test` stays fast.

mod support;

use std::collections::BTreeMap;

use e2e_aggregator::lp::write::{is_portable, is_portable_measurement, Line};
use e2e_aggregator::lp::{parse_all, OwnedValue, Point};
use influxdb_line_protocol as influx;
use proptest::prelude::*;
use proptest::sample::select;
use support::{Replay, Setup};

/// Splits `input` at the given fractions (in 1/1000) of its length.
fn split<'a>(input: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|&c| input.len() * usize::from(c) / 1000)
        .collect();
    at.sort_unstable();
    let mut chunks = Vec::new();
    let mut from = 0;
    for k in at {
        chunks.push(&input[from..k]);
        from = k;
    }
    chunks.push(&input[from..]);
    chunks
}

// ---------------------------------------------------------------------
// Writer round trip

/// A character for names: mostly the ones that need escaping or look like
/// syntax, some ASCII, some of anything (a control character or backslash,
/// which `is_portable` refuses, becomes `?`).
fn name_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => select(vec![
            ' ', ',', '=', '"', '#', '\'', '-', '.', '_', 'a', 'Z', '0', '9', 't', 'i', 'u',
            'é', '€', '\u{1F600}', '\u{FEFF}', '\u{A0}', '\u{2028}',
        ]),
        2 => proptest::char::range('!', '~'),
        1 => any::<char>(),
    ]
    .prop_map(|c| if c == '\\' || c.is_control() { '?' } else { c })
}

/// Text `is_portable` accepts.
fn portable() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(name_char(), 1..12)
        .prop_map(|cs| String::from_iter(cs).into_bytes())
        .prop_filter("portable", |t| is_portable(t))
}

/// A measurement `is_portable_measurement` accepts (not starting with `#`,
/// which would make the line a comment: found by this property).
fn portable_measurement() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(name_char(), 1..12)
        .prop_map(|cs| String::from_iter(cs).into_bytes())
        .prop_filter("portable measurement", |t| is_portable_measurement(t))
}

#[derive(Debug, Clone)]
enum FieldValue {
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    Boolean(bool),
    String(Vec<u8>),
}

fn finite_float() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        any::<f64>(),
        select(vec![
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            0.1,
            1e-7,
            1e21,
            1e22,
            9007199254740993.0,
            123456789012345680000.0,
        ]),
    ]
    .prop_filter("finite", |f| f.is_finite())
}

fn field_value() -> impl Strategy<Value = FieldValue> {
    prop_oneof![
        finite_float().prop_map(FieldValue::Float),
        prop_oneof![any::<i64>(), select(vec![i64::MIN, i64::MAX, 0, -1])]
            .prop_map(FieldValue::Integer),
        prop_oneof![any::<u64>(), select(vec![u64::MAX, 0])].prop_map(FieldValue::Unsigned),
        any::<bool>().prop_map(FieldValue::Boolean),
        prop::collection::vec(
            prop_oneof![
                2 => select(b"\"\\\n\r\t ,=#".to_vec()),
                1 => any::<u8>(),
            ],
            0..24
        )
        .prop_map(FieldValue::String),
    ]
}

#[derive(Debug, Clone)]
struct WrittenLine {
    measurement: Vec<u8>,
    tags: BTreeMap<Vec<u8>, Vec<u8>>,
    fields: Vec<(Vec<u8>, FieldValue)>,
    timestamp: i64,
}

fn written_line() -> impl Strategy<Value = WrittenLine> {
    (
        portable_measurement(),
        prop::collection::btree_map(portable(), portable(), 0..5),
        prop::collection::vec((portable(), field_value()), 1..6),
        prop_oneof![any::<i64>(), select(vec![i64::MIN, i64::MAX, 0, -1])],
    )
        .prop_map(|(measurement, tags, mut fields, timestamp)| {
            // Keys must be unique (RULES.md 5): keep the first of each.
            let mut seen = std::collections::HashSet::new();
            fields.retain(|(k, _)| seen.insert(k.clone()));
            WrittenLine {
                measurement,
                tags,
                fields,
                timestamp,
            }
        })
}

/// A field value compared exactly: floats by their bits.
#[derive(Debug, PartialEq)]
enum Exact {
    Float(u64),
    Integer(i64),
    Unsigned(u64),
    Boolean(bool),
    String(Vec<u8>),
}

impl From<&FieldValue> for Exact {
    fn from(v: &FieldValue) -> Exact {
        match v {
            FieldValue::Float(f) => Exact::Float(f.to_bits()),
            FieldValue::Integer(i) => Exact::Integer(*i),
            FieldValue::Unsigned(u) => Exact::Unsigned(*u),
            FieldValue::Boolean(b) => Exact::Boolean(*b),
            FieldValue::String(s) => Exact::String(s.clone()),
        }
    }
}

impl From<&OwnedValue> for Exact {
    fn from(v: &OwnedValue) -> Exact {
        match v {
            OwnedValue::Float(f) => Exact::Float(f.to_bits()),
            OwnedValue::Integer(i) => Exact::Integer(*i),
            OwnedValue::Unsigned(u) => Exact::Unsigned(*u),
            OwnedValue::Boolean(b) => Exact::Boolean(*b),
            OwnedValue::String(s) => Exact::String(s.clone()),
        }
    }
}

impl From<&influx::FieldValue<'_>> for Exact {
    fn from(v: &influx::FieldValue<'_>) -> Exact {
        match v {
            influx::FieldValue::F64(f) => Exact::Float(f.to_bits()),
            influx::FieldValue::I64(i) => Exact::Integer(*i),
            influx::FieldValue::U64(u) => Exact::Unsigned(*u),
            influx::FieldValue::Boolean(b) => Exact::Boolean(*b),
            influx::FieldValue::String(s) => Exact::String(s.as_bytes().to_vec()),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn written_lines_read_back_exactly(line in written_line()) {
        let mut out = Vec::new();
        let mut w = Line::new(&mut out, &line.measurement);
        for (k, v) in &line.tags {
            w = w.tag(k, v);
        }
        for (k, v) in &line.fields {
            w = match v {
                FieldValue::Float(f) => w.float(k, *f),
                FieldValue::Integer(i) => w.integer(k, *i),
                FieldValue::Unsigned(u) => w.unsigned(k, *u),
                FieldValue::Boolean(b) => w.boolean(k, *b),
                FieldValue::String(s) => w.string(k, s),
            };
        }
        w.finish(line.timestamp);
        let text = out.escape_ascii().to_string();

        let parsed = parse_all(&out);
        prop_assert_eq!(parsed.len(), 1, "{}", text);
        let point: &Point = match &parsed[0] {
            Ok(p) => p,
            Err(e) => return Err(TestCaseError::fail(format!("{e}: {text}"))),
        };
        prop_assert_eq!(&point.measurement, &line.measurement, "{}", text);
        prop_assert_eq!(&point.tags, &line.tags, "{}", text);
        prop_assert_eq!(point.timestamp, Some(line.timestamp), "{}", text);
        let got: Vec<(&[u8], Exact)> =
            point.fields.iter().map(|(k, v)| (&k[..], Exact::from(v))).collect();
        let want: Vec<(&[u8], Exact)> =
            line.fields.iter().map(|(k, v)| (&k[..], Exact::from(v))).collect();
        prop_assert_eq!(&got, &want, "{}", text);

        // The same, read by InfluxData's parser. It reads text only; a
        // string field of arbitrary bytes is outside the portable subset
        // (RULES.md 12: valid UTF-8 only), so such a line stops here.
        let Ok(utf8) = std::str::from_utf8(&out) else {
            return Ok(());
        };
        let theirs: Vec<_> = influx::parse_lines(utf8).collect();
        prop_assert_eq!(theirs.len(), 1, "{}", text);
        let theirs = match &theirs[0] {
            Ok(l) => l,
            Err(e) => return Err(TestCaseError::fail(format!("influxdb-line-protocol: {e}: {text}"))),
        };
        prop_assert_eq!(theirs.series.measurement.as_bytes(), &line.measurement[..], "{}", text);
        let tags: BTreeMap<Vec<u8>, Vec<u8>> = theirs
            .series
            .tag_set
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        prop_assert_eq!(&tags, &line.tags, "{}", text);
        prop_assert_eq!(theirs.timestamp, Some(line.timestamp), "{}", text);
        let got: Vec<(&[u8], Exact)> =
            theirs.field_set.iter().map(|(k, v)| (k.as_bytes(), Exact::from(v))).collect();
        prop_assert_eq!(got, want, "{}", text);
    }
}

// ---------------------------------------------------------------------
// Pass-through

/// Concatenates the pieces a strategy yields.
fn joined(parts: impl Strategy<Value = Vec<String>>) -> impl Strategy<Value = String> {
    parts.prop_map(|p| p.concat())
}

/// Pieces of a measurement after its first letter (Telegraf's measurement
/// rule: a backslash escapes any byte but a control byte).
fn measurement() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[A-Za-z0-9_.:=\"'#-]{1,4}",
        1 => select(vec!["\\ ", "\\,", "\\\\", "\\a", "\\=", "\\\"", "é", "€", "😀"])
            .prop_map(String::from),
    ];
    ("[A-Za-z]", prop::collection::vec(piece, 0..5))
        .prop_map(|(first, rest)| first + &rest.concat())
}

/// A tag key or value (Telegraf's tag rule: a doubled backslash is one
/// literal backslash and the byte after it is read afresh).
fn tag_element() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[A-Za-z0-9_.:\"'#-]{1,4}",
        1 => select(vec!["\\ ", "\\,", "\\=", "\\\"", "\\\\a", "\\a", "é", "😀"])
            .prop_map(String::from),
    ];
    joined(prop::collection::vec(piece, 1..4))
}

/// A field key.
fn field_key() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[A-Za-z0-9_.:\"'#-]{1,4}",
        1 => select(vec!["\\ ", "\\,", "\\=", "\\\"", "\\\\", "\\a", "é"]).prop_map(String::from),
    ];
    joined(prop::collection::vec(piece, 1..4))
}

/// A field value in every form Telegraf accepts.
fn raw_value() -> impl Strategy<Value = String> {
    let string_piece = prop_oneof![
        4 => "[^\"\\\\]{1,6}",
        1 => select(vec!["\\\"", "\\\\", "\n", "\r\n", "\r", "\t", " ", ",", "="])
            .prop_map(String::from),
    ];
    prop_oneof![
        "-?[0-9]{1,5}",
        "-?[0-9]{1,5}\\.[0-9]{0,5}",
        "-?\\.[0-9]{1,5}",
        "-?[0-9]{1,3}(\\.[0-9]{1,3})?[eE][+-]?[12]?[0-9]{1,2}",
        select(vec!["-0", "0.0", "007", "1.7976931348623157e308", "5e-324"]).prop_map(String::from),
        "-?(0|[1-9][0-9]{0,17})i",
        select(vec!["9223372036854775807i", "-9223372036854775808i"]).prop_map(String::from),
        "(0|[1-9][0-9]{0,18})u",
        Just("18446744073709551615u".to_string()),
        select(vec![
            "t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE"
        ])
        .prop_map(String::from),
        joined(prop::collection::vec(string_piece, 0..5)).prop_map(|s| format!("\"{s}\"")),
    ]
}

/// Separator whitespace: Telegraf takes space, TAB, VT and FF.
fn ws() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just(" ".to_string()),
        1 => select(vec!["  ", "\t", " \t ", "\x0b", "\x0c"]).prop_map(String::from),
    ]
}

/// A valid point of another measurement, without its line ending.
fn other_line() -> impl Strategy<Value = String> {
    (
        prop_oneof![4 => Just(String::new()), 1 => ws()],
        measurement(),
        prop::collection::vec((tag_element(), tag_element()), 0..4),
        ws(),
        prop::collection::vec((field_key(), raw_value()), 1..5),
        prop::option::of((ws(), "-?[0-9]{1,18}")),
        prop_oneof![4 => Just(String::new()), 1 => ws()],
    )
        .prop_map(|(lead, m, tags, sep, fields, ts, trail)| {
            let mut s = lead + &m;
            for (k, v) in tags {
                s += &format!(",{k}={v}");
            }
            s += &sep;
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s += &fields.join(",");
            if let Some((sep, ts)) = ts {
                s += &sep;
                s += &ts;
            }
            s + &trail
        })
}

/// A record of an input: a point (passed through) or a blank line or
/// comment (not written).
#[derive(Debug, Clone)]
enum Record {
    Point(String),
    Ignored(String),
}

fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        8 => other_line().prop_map(Record::Point),
        1 => select(vec!["", "  ", "\t"]).prop_map(|s| Record::Ignored(s.into())),
        1 => "[ \t]?#[^\n]{0,10}".prop_map(Record::Ignored),
    ]
}

/// An input: records with `\n` or `\r\n` endings (the last may have none),
/// and what the engine must write for it.
fn other_input() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, usize)> {
    (
        prop::collection::vec((record(), prop::bool::weighted(0.2)), 1..12),
        any::<bool>(),
    )
        .prop_map(|(records, last_ending)| {
            let mut input = String::new();
            let mut expected = String::new();
            let mut points = 0;
            let n = records.len();
            for (i, (rec, crlf)) in records.into_iter().enumerate() {
                let ending = if i + 1 == n && !last_ending {
                    ""
                } else if crlf {
                    "\r\n"
                } else {
                    "\n"
                };
                match rec {
                    Record::Point(p) => {
                        expected += &p;
                        expected += "\n";
                        input += &p;
                        points += 1;
                    }
                    Record::Ignored(s) => input += &s,
                }
                input += ending;
            }
            (input.into_bytes(), expected.into_bytes(), points)
        })
        .prop_filter("a delay measurement by chance", |(input, _, _)| {
            parse_all(input).iter().all(|p| {
                p.as_ref().map_or(true, |p| {
                    p.measurement != b"network_delays" && p.measurement != b"service_delays"
                })
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn other_lines_pass_through_byte_for_byte(
        (input, expected, points) in other_input(),
        cuts in prop::collection::vec(0u16..=1000, 0..3),
    ) {
        let text = input.escape_ascii().to_string();
        // The generator writes only valid line protocol.
        let parsed = parse_all(&input);
        prop_assert!(parsed.iter().all(Result::is_ok), "generated invalid input: {}", text);
        prop_assert_eq!(parsed.len(), points, "{}", text);

        let setup = Setup::new("");
        for chunks in [vec![&input[..]], split(&input, &cuts)] {
            let Replay { out, counters: c } = setup.replay(&chunks).map_err(TestCaseError::fail)?;
            prop_assert!(
                out == expected,
                "input: \"{}\"\n  got: \"{}\"\n want: \"{}\"",
                text,
                out.escape_ascii(),
                expected.escape_ascii()
            );
            prop_assert_eq!(c.other, points as u64);
            prop_assert_eq!(c.passed, points as u64);
            prop_assert_eq!(c.invalid, 0);
        }
    }
}

// ---------------------------------------------------------------------
// Order within grace

const PERIOD: i64 = 1_000_000_000;
const GRACE: i64 = 3_000_000_000;
const T0: i64 = 1_700_000_000 * PERIOD;

/// A delay point: its line and timestamp.
#[derive(Debug, Clone)]
struct Delay {
    line: String,
    ts: i64,
}

/// A value for an averaged field: absent, a float or an integer.
fn delay_value() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        3 => (0.0f64..1e6).prop_map(|f| Some(format!("{f}"))),
        1 => (-1000i64..1_000_000).prop_map(|i| Some(format!("{i}i"))),
    ]
}

fn fields(names: &[&str], values: Vec<Option<String>>) -> String {
    let mut present: Vec<String> = names
        .iter()
        .zip(values)
        .filter_map(|(n, v)| v.map(|v| format!("{n}={v}")))
        .collect();
    if present.is_empty() {
        // At least one numeric field, so the point is aggregated.
        present.push(format!("{}=1", names[0]));
    }
    present.join(",")
}

fn delay() -> impl Strategy<Value = Delay> {
    let node = || select(vec!["a", "b", "c"]);
    let ts = (0i64..8, 0..PERIOD).prop_map(|(w, off)| T0 + w * PERIOD + off);
    let network = (
        select(vec!["p1", "p2"]),
        node(),
        node(),
        prop::collection::vec(delay_value(), 2),
        ts.clone(),
    )
        .prop_map(|(path, s, t, v, ts)| Delay {
            line: format!(
                "network_delays,path={path},source={s},target={t} {} {ts}",
                fields(&["latency", "bandwidth"], v)
            ),
            ts,
        });
    let service = (
        node(),
        select(vec!["e1", "e2"]),
        select(vec!["i1", "i2"]),
        prop::collection::vec(delay_value(), 3),
        ts,
    )
        .prop_map(|(sfr, e, i, v, ts)| Delay {
            line: format!(
                "service_delays,endpoint={e},sf_instance={i},sfr={sfr} {} {ts}",
                fields(&["response_time", "request_size", "response_size"], v)
            ),
            ts,
        });
    prop_oneof![3 => network, 2 => service]
}

/// One complete join in a window: forward path `p1` from `s` to `t`, its
/// reverse, and the service of `t` under the greatest `(endpoint,
/// sf_instance)` pair `delay` generates, every field present, so that
/// whatever else the window holds, it writes a row for `p1` `s`→`t`.
fn complete_join() -> impl Strategy<Value = Vec<Delay>> {
    let value = || (0.0f64..1e6).prop_map(|f| Some(format!("{f}")));
    (
        select(vec![("a", "b"), ("b", "c"), ("c", "a"), ("a", "a")]),
        (0i64..8, prop::collection::vec(0..PERIOD, 3)),
        prop::collection::vec(value(), 7),
    )
        .prop_map(|((s, t), (w, offsets), mut v)| {
            let ts: Vec<i64> = offsets.iter().map(|o| T0 + w * PERIOD + o).collect();
            let service = fields(
                &["response_time", "request_size", "response_size"],
                v.split_off(4),
            );
            let reverse = fields(&["latency", "bandwidth"], v.split_off(2));
            let forward = fields(&["latency", "bandwidth"], v);
            vec![
                Delay {
                    line: format!(
                        "network_delays,path=p1,source={s},target={t} {forward} {}",
                        ts[0]
                    ),
                    ts: ts[0],
                },
                Delay {
                    line: format!(
                        "network_delays,path=p1,source={t},target={s} {reverse} {}",
                        ts[1]
                    ),
                    ts: ts[1],
                },
                Delay {
                    line: format!(
                        "service_delays,endpoint=e2,sf_instance=i2,sfr={t} {service} {}",
                        ts[2]
                    ),
                    ts: ts[2],
                },
            ]
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn order_within_grace_does_not_change_the_rows(
        join in complete_join(),
        more in prop::collection::vec(delay(), 0..60),
        jitter in prop::collection::vec(0..GRACE, 63),
    ) {
        let setup = Setup::new("--period 1s --grace 3s");
        let points: Vec<Delay> = join.into_iter().chain(more).collect();
        let feed = |order: &[&Delay]| {
            let input: String = order.iter().map(|d| format!("{}\n", d.line)).collect();
            setup.replay(&[input.as_bytes()]).map_err(TestCaseError::fail)
        };

        let mut in_order: Vec<&Delay> = points.iter().collect();
        in_order.sort_by_key(|d| d.ts);
        // Arrival at ts + jitter, jitter < grace: every point arrives within
        // grace of the newest one before it, so none is late.
        let mut shuffled: Vec<(i64, &Delay)> =
            points.iter().zip(&jitter).map(|(d, j)| (d.ts + j, d)).collect();
        shuffled.sort_by_key(|(arrival, _)| *arrival);
        let shuffled: Vec<&Delay> = shuffled.into_iter().map(|(_, d)| d).collect();

        let (a, b) = (feed(&in_order)?, feed(&shuffled)?);
        let (ca, cb) = (&a.counters, &b.counters);
        prop_assert_eq!(ca.late, 0);
        prop_assert_eq!(cb.late, 0);
        prop_assert_eq!(ca.aggregated, points.len() as u64);
        prop_assert_eq!(cb.aggregated, points.len() as u64);
        prop_assert_eq!(ca.windows_closed, cb.windows_closed);

        let rows = |r: &Replay| support::rows(&r.out, "e2e_delays").map_err(TestCaseError::fail);
        let (ra, rb) = (rows(&a)?, rows(&b)?);
        prop_assert!(!ra.is_empty(), "the complete join wrote no row");
        if let Err(e) = support::same_rows(&ra, &rb) {
            return Err(TestCaseError::fail(e));
        }
    }
}
