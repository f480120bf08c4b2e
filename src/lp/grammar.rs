//! The line-protocol grammar in nom combinators: a record as Telegraf's
//! influx parser (the `StreamParser` that `processors.execd` reads a
//! processor's output with) reads it, down to the kind of each error and
//! the byte at which Telegraf's state machine stops.
//!
//! ```text
//! record      = ws* ( comment | blank | point )
//! comment     = "#" *(any byte but LF) [LF]           ; a CR in it is just a byte
//! blank       = line_end
//! point       = measurement *("," tag) ws+ field *("," field) [ws+ timestamp] ws* line_end
//! tag         = tag_key "=" tag_value
//! field       = field_key "=" field_value &("," | ws | LF | CR | end)
//! field_value = string | number | boolean
//! string      = DQUOTE *( 1*(any byte but "\" or DQUOTE) | "\\" | "\" DQUOTE ) DQUOTE
//! number      = ["-"] *DIGIT ["." *DIGIT] ( ("e" | "E") ["+" | "-"] 1*DIGIT | "i" | "u" | )
//! boolean     = "t" ["rue"] | "T" ["rue" | "RUE"] | "f" ["alse"] | "F" ["alse" | "ALSE"]
//! timestamp   = ["-"] 1*19DIGIT
//! line_end    = LF | CR LF | end of input
//! ws          = SP | TAB | VT | FF
//! element     = 1*( plain | "\" escaped )             ; measurement, tag key/value, field key
//! ```
//!
//! An element's plain bytes are all but space, comma, backslash and the
//! control bytes TAB, LF, VT, FF and CR, and but `=` outside the
//! measurement; a backslash escapes any byte but those control bytes, and in
//! a tag key or value `\\` is one backslash whose successor is read afresh
//! (Telegraf's quirk: `two\\ words` is `two\` and an escaped space). A
//! number has a digit before its suffix; `i` and `u` forbid a dot and a
//! leading zero, `u` a sign; every number is range-checked. A quoted
//! string may hold raw line feeds, and the record then spans several
//! physical lines. A CR not followed by LF outside strings and comments is
//! an error (stricter than Telegraf, whose parser hangs on one at the end
//! of its input).
//!
//! The default entry point ([`super::parse_record`]) reads through **fast
//! paths**, each beside the production it shortcuts. [`scan_record`] is the
//! record's sequence as a plain loop, without nom's combinators between the
//! elements, dispatching on a byte where the grammar tries alternatives.
//! It reads each leaf (an element, a number, a string, a timestamp)
//! through that leaf's fast path: a table-driven scan from [`super::scan`],
//! eight bytes at a time where it can. A leaf's fast path accepts (and a
//! string's also reports the input ending inside it): on anything else,
//! an error included, it gives up and the leaf's combinators read the same
//! bytes again. With
//! [`super::Path::General`] the grammar runs alone; `tests/lp_differential.rs`
//! and the `differential` fuzz target check that both read every input
//! alike, error kind and offset included.

use nom::branch::alt;
use nom::bytes::complete::{take_till, take_while, take_while1, take_while_m_n};
use nom::character::complete::{digit0, digit1};
use nom::combinator::{cut, eof, opt, peek, recognize, value};
use nom::error::ParseError as _;
use nom::multi::{fold_many0, fold_many1};
use nom::sequence::{preceded, separated_pair, terminated};
use nom::{IResult, Parser};

use super::error::{ErrorKind, NomError, ParseError};
use super::plain;
use super::record::{Record, RecordKind, Visitor};
use super::scan::{self, CTL_NL, KEY_STOP, MEAS_STOP};
use super::value::{parse_float, parse_signed, parse_unsigned, Element, Escaped, Value};

type Res<'a, T> = IResult<&'a [u8], T, NomError<'a>>;

/// What a record is, how many physical lines it spans and how many bytes
/// its line ending takes.
type Shape = (RecordKind, usize, usize);

/// Reads the record at the start of `input`, reporting its parts to `v`;
/// with `FAST`, through the fast paths.
#[inline(always)]
pub(crate) fn record<'a, V: Visitor<'a>, const FAST: bool>(
    input: &'a [u8],
    v: &mut V,
) -> Result<Record, ParseError> {
    let parsed = if FAST {
        scan_record(input, v)
    } else {
        preceded(ws0, alt((comment, blank, |i| point(i, v)))).parse(input)
    };
    match parsed {
        Ok((rest, (kind, lines, ending))) => {
            let len = input.len() - rest.len();
            Ok(Record {
                kind,
                body: len - ending,
                len,
                lines,
            })
        }
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(ParseError {
            kind: e.kind,
            offset: input.len() - e.rest.len(),
        }),
        // Only streaming parsers ask for more, and these are all complete.
        Err(nom::Err::Incomplete(_)) => Err(ParseError {
            kind: ErrorKind::UnterminatedString,
            offset: input.len(),
        }),
    }
}

// ---- small combinators -------------------------------------------------

/// Fails with `kind` at `rest`.
#[inline(always)]
fn fail<T>(rest: &[u8], kind: ErrorKind) -> Res<'_, T> {
    Err(nom::Err::Error(NomError { kind, rest }))
}

/// `p`, whose own (uncommitted) failure is reported as `kind`, at the byte
/// where `p` failed.
#[inline(always)]
fn expect<'a, O>(
    kind: ErrorKind,
    mut p: impl Parser<&'a [u8], Output = O, Error = NomError<'a>>,
) -> impl Parser<&'a [u8], Output = O, Error = NomError<'a>> {
    move |i: &'a [u8]| match p.parse(i) {
        Err(nom::Err::Error(e)) => fail(e.rest, kind),
        other => other,
    }
}

/// The bytes `lit`: nom's `tag`, for a byte literal, so that matching one
/// or two bytes is as many compares.
#[inline(always)]
fn lit<'a>(lit: &'static [u8]) -> impl Parser<&'a [u8], Output = &'a [u8], Error = NomError<'a>> {
    move |i: &'a [u8]| match i.strip_prefix(lit) {
        Some(rest) => Ok((rest, &i[..lit.len()])),
        None => Err(nom::Err::Error(NomError::from_error_kind(
            i,
            nom::error::ErrorKind::Tag,
        ))),
    }
}

/// One byte for which `pred` holds.
#[inline(always)]
fn byte_where<'a>(
    pred: impl Fn(u8) -> bool,
) -> impl Parser<&'a [u8], Output = &'a [u8], Error = NomError<'a>> {
    take_while_m_n(1, 1, pred)
}

/// Separator whitespace: space, TAB, VT, FF.
#[inline(always)]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 0x0b | 0x0c)
}

/// The control bytes that end every element and that no backslash escapes:
/// TAB, LF, VT, FF, CR.
#[inline(always)]
fn is_control(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[inline(always)]
fn ws0(i: &[u8]) -> Res<'_, &[u8]> {
    take_while(is_ws).parse(i)
}

#[inline(always)]
fn ws1(i: &[u8]) -> Res<'_, &[u8]> {
    take_while1(is_ws).parse(i)
}

// ---- records -----------------------------------------------------------

/// `comment = "#" *(any byte but LF) [LF]`
fn comment(i: &[u8]) -> Res<'_, Shape> {
    let (i, _) = preceded(lit(b"#"), take_till(|b| b == b'\n')).parse(i)?;
    let (i, lf) = opt(lit(b"\n")).parse(i)?;
    Ok((i, (RecordKind::Comment, 1, usize::from(lf.is_some()))))
}

/// `blank = line_end`, after the whitespace `record` skipped.
fn blank(i: &[u8]) -> Res<'_, Shape> {
    line_end(ErrorKind::MissingMeasurement)
        .map(|ending| (RecordKind::Blank, 1, ending))
        .parse(i)
}

/// `line_end = LF | CR LF | end of input`; anything else is `otherwise`,
/// but a CR alone is always [`ErrorKind::BareCarriageReturn`].
#[inline(always)]
fn line_end<'a>(
    otherwise: ErrorKind,
) -> impl Parser<&'a [u8], Output = usize, Error = NomError<'a>> {
    alt((
        value(1, lit(b"\n")),
        value(2, lit(b"\r\n")),
        value(0, eof),
        move |i: &'a [u8]| match i {
            // It may yet become CR LF: the error lies past the end of input,
            // so that a caller with more to come waits for it.
            [b'\r'] => Err(nom::Err::Failure(NomError {
                kind: ErrorKind::BareCarriageReturn,
                rest: &i[1..],
            })),
            [b'\r', ..] => Err(nom::Err::Failure(NomError {
                kind: ErrorKind::BareCarriageReturn,
                rest: i,
            })),
            _ => fail(i, otherwise),
        },
    ))
}

/// `point = measurement *("," tag) ws+ field *("," field) [ws+ timestamp] ws* line_end`
fn point<'a, V: Visitor<'a>>(i: &'a [u8], v: &mut V) -> Res<'a, Shape> {
    let (i, name) = measurement::<false>(i)?;
    let wanted = v.measurement(name);

    let (i, ()) = fold_many0(
        preceded(lit(b","), cut(tag_pair)),
        || (),
        |(), (key, value)| {
            if wanted {
                v.tag(key, value);
            }
        },
    )
    .parse(i)?;

    let (i, _) = fields_start(i)?;
    // Reports a field and says how many line feeds its value holds.
    let mut visit = |(key, value): (Escaped<'a>, Value<'a>)| {
        if wanted {
            v.field(key, value);
        }
        match value {
            Value::String(s) => memchr::memchr_iter(b'\n', s).count(),
            _ => 0,
        }
    };
    let (i, first) = field(i)?;
    let lines = 1 + visit(first);
    let (i, lines) = fold_many0(
        preceded(lit(b","), cut(field)),
        move || lines,
        |lines, f| lines + visit(f),
    )
    .parse(i)?;

    let (i, ts) = opt(preceded(ws1, timestamp)).parse(i)?;
    if let Some(ts) = ts {
        v.timestamp(ts);
    }
    let (i, _) = ws0(i)?;
    let (i, ending) = line_end(if ts.is_some() {
        ErrorKind::TrailingCharacters
    } else {
        ErrorKind::BadTimestamp
    })
    .parse(i)?;
    Ok((i, (RecordKind::Point, lines, ending)))
}

/// Fast path for [`record`] and [`point`]: the same grammar as a plain
/// loop. It skips nom's combinators between the elements (`alt` over the
/// kinds of record and of field value, `fold_many0`, `separated_pair`,
/// `terminated`, `opt`), which cost about 15% more instructions for the
/// whole program (cachegrind, 100k lines of `medium.lp`): it dispatches on
/// the first byte where the grammar tries alternatives, finds a comment's
/// end with `memchr`, and reads each leaf through that leaf's own fast
/// path, which falls back to the leaf's combinators on anything unusual.
/// Every error it reports itself is the one `point` reports at the same
/// byte, and it reports a field to the visitor only once the field's end
/// is checked, as `field` does. Proven equivalent by
/// `tests/lp_differential.rs` and the `differential` fuzz target (visitor
/// calls, record extent, error kind and offset).
#[inline(always)]
fn scan_record<'a, V: Visitor<'a>>(input: &'a [u8], v: &mut V) -> Res<'a, Shape> {
    let (i, _) = ws0(input)?;
    match i.first() {
        Some(b'#') => Ok(match memchr::memchr(b'\n', i) {
            Some(k) => (&i[k + 1..], (RecordKind::Comment, 1, 1)),
            None => (&i[i.len()..], (RecordKind::Comment, 1, 0)),
        }),
        None | Some(b'\n' | b'\r') => blank(i),
        Some(_) => scan_point(i, v),
    }
}

#[inline(always)]
fn scan_point<'a, V: Visitor<'a>>(i: &'a [u8], v: &mut V) -> Res<'a, Shape> {
    let (rest, name) = measurement::<true>(i)?;
    let wanted = v.measurement(name);
    // A line only validated, not reported, goes the plain way if it can.
    if !wanted {
        if let Some((after, ending, ts)) = plain::rest(i, i.len() - rest.len()) {
            if let Some(ts) = ts {
                v.timestamp(ts);
            }
            return Ok((after, (RecordKind::Point, 1, ending)));
        }
    }
    scan_point_after(rest, wanted, v)
}

/// [`scan_point`] after the measurement, which the visitor has been told
/// (and has answered `wanted`).
#[inline(always)]
fn scan_point_after<'a, V: Visitor<'a>>(
    mut i: &'a [u8],
    wanted: bool,
    v: &mut V,
) -> Res<'a, Shape> {
    while let Some((b',', after)) = i.split_first() {
        let (r, key) = tag_key::<true>(after)?;
        let Some((b'=', after)) = r.split_first() else {
            return fail(r, ErrorKind::MissingTagEquals);
        };
        let (r, value) = tag_value::<true>(after)?;
        if wanted {
            v.tag(key, value);
        }
        i = r;
    }

    let (mut i, _) = fields_start(i)?;
    let mut lines = 1;
    loop {
        let (r, key) = field_key::<true>(i)?;
        let Some((b'=', after)) = r.split_first() else {
            return fail(r, ErrorKind::MissingFieldEquals);
        };
        let (r, value) = match after.first() {
            Some(b'"') => string_body::<true>(&after[1..]).map(|(r, s)| (r, Value::String(s)))?,
            Some(b'-' | b'.' | b'0'..=b'9') => number_body::<true>(after)?,
            Some(b't' | b'T' | b'f' | b'F') => boolean(after)?,
            _ => return fail(after, ErrorKind::BadFieldValue),
        };
        let next = match r.split_first() {
            Some((b',', after)) => Some(after),
            Some((&b, _)) if !(b == b'\n' || b == b'\r' || is_ws(b)) => {
                return fail(r, ErrorKind::BadFieldEnd)
            }
            _ => None,
        };
        if let Value::String(s) = value {
            lines += memchr::memchr_iter(b'\n', s).count();
        }
        if wanted {
            v.field(key, value);
        }
        match next {
            Some(after) => i = after,
            None => {
                i = r;
                break;
            }
        }
    }

    let (after_ws, _) = ws0(i)?;
    let mut otherwise = ErrorKind::BadTimestamp;
    if after_ws.len() < i.len() && matches!(after_ws.first(), Some(b'-' | b'0'..=b'9')) {
        let (r, ts) = timestamp_value::<true>(after_ws)?;
        v.timestamp(ts);
        (i, _) = ws0(r)?;
        otherwise = ErrorKind::TrailingCharacters;
    } else {
        i = after_ws;
    }
    let (i, ending) = line_end(otherwise).parse(i)?;
    Ok((i, (RecordKind::Point, lines, ending)))
}

/// The `ws+` between the tags and the fields. Where it is missing, what is
/// there instead decides Telegraf's error.
#[inline(always)]
fn fields_start(i: &[u8]) -> Res<'_, &[u8]> {
    let missing = match i {
        // An unescaped `=` in a tag value.
        [b'=', ..] => ErrorKind::BadTagEnd,
        [b'\r', next, ..] if *next != b'\n' => ErrorKind::BareCarriageReturn,
        _ => ErrorKind::MissingFields,
    };
    expect(missing, ws1).parse(i)
}

/// `tag = tag_key "=" tag_value`
fn tag_pair(i: &[u8]) -> Res<'_, (Escaped<'_>, Escaped<'_>)> {
    separated_pair(
        tag_key::<false>,
        expect(ErrorKind::MissingTagEquals, lit(b"=")),
        tag_value::<false>,
    )
    .parse(i)
}

/// `field = field_key "=" field_value`, followed by a comma, whitespace or
/// a line end.
fn field(i: &[u8]) -> Res<'_, (Escaped<'_>, Value<'_>)> {
    let value_end = peek(alt((
        eof,
        byte_where(|b| b == b',' || b == b'\n' || b == b'\r' || is_ws(b)),
    )));
    terminated(
        separated_pair(
            field_key::<false>,
            expect(ErrorKind::MissingFieldEquals, lit(b"=")),
            field_value,
        ),
        expect(ErrorKind::BadFieldEnd, value_end),
    )
    .parse(i)
}

// ---- elements ----------------------------------------------------------

/// An element as written, and whether it holds a backslash.
type Raw<'a> = (&'a [u8], bool);

/// Which element, for what ends a plain run and how `\\` reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rule {
    Measurement,
    Tag,
    FieldKey,
}

#[inline(always)]
fn measurement<const FAST: bool>(i: &[u8]) -> Res<'_, Escaped<'_>> {
    let (i, (raw, bs)) = element::<FAST>(i, Rule::Measurement, ErrorKind::MissingMeasurement)?;
    Ok((i, Escaped::scanned(raw, Element::Measurement, bs)))
}

#[inline(always)]
fn tag_key<const FAST: bool>(i: &[u8]) -> Res<'_, Escaped<'_>> {
    let (i, (raw, bs)) = element::<FAST>(i, Rule::Tag, ErrorKind::MissingTagKey)?;
    Ok((i, Escaped::scanned(raw, Element::Key, bs)))
}

#[inline(always)]
fn tag_value<const FAST: bool>(i: &[u8]) -> Res<'_, Escaped<'_>> {
    let (i, (raw, bs)) = element::<FAST>(i, Rule::Tag, ErrorKind::MissingTagValue)?;
    Ok((i, Escaped::scanned(raw, Element::Key, bs)))
}

#[inline(always)]
fn field_key<const FAST: bool>(i: &[u8]) -> Res<'_, Escaped<'_>> {
    let (i, (raw, bs)) = element::<FAST>(i, Rule::FieldKey, ErrorKind::MissingFieldKey)?;
    Ok((i, Escaped::scanned(raw, Element::Key, bs)))
}

/// `element = 1*( plain | "\" escaped )`: the element's bytes as written
/// and whether they hold a backslash. Empty: `empty`.
#[inline(always)]
fn element<const FAST: bool>(i: &[u8], rule: Rule, empty: ErrorKind) -> Res<'_, Raw<'_>> {
    if FAST {
        if let Some(found) = scan_element(i, rule) {
            return Ok(found);
        }
    }
    let plain = take_while1(move |b| !ends_plain(rule, b));
    let (rest, raw) = expect(
        empty,
        recognize(fold_many1(alt((plain, escape(rule))), || (), |(), _| ())),
    )
    .parse(i)?;
    Ok((rest, (raw, raw.contains(&b'\\'))))
}

/// Whether `b` ends a run of plain bytes of an element.
fn ends_plain(rule: Rule, b: u8) -> bool {
    matches!(b, b' ' | b',' | b'\\') || is_control(b) || (b == b'=' && rule != Rule::Measurement)
}

/// `"\" escaped`: a backslash and the byte it escapes, any but a control
/// byte. In a tag, `\\` is one backslash: only the first is taken, and the
/// second starts the next escape.
fn escape<'a>(rule: Rule) -> impl Parser<&'a [u8], Output = &'a [u8], Error = NomError<'a>> {
    let escaped = move |i: &'a [u8]| {
        let mut byte = byte_where(|b| !is_control(b));
        if rule == Rule::Tag {
            alt((peek(lit(b"\\")), byte)).parse(i)
        } else {
            byte.parse(i)
        }
    };
    recognize(preceded(
        lit(b"\\"),
        cut(expect(ErrorKind::BadEscape, escaped)),
    ))
}

/// Fast path for [`element`]. Skips the combinators: plain runs are found
/// eight bytes at a time with the byte-class table
/// ([`scan::find_class`]) and escapes are stepped over in place. Gives up
/// on an empty element and on a bad escape, which the grammar then
/// reports. Proven equivalent by `tests/lp_differential.rs`
/// (`fast_and_general_agree_*`) and the `differential` fuzz target.
#[inline(always)]
fn scan_element(i: &[u8], rule: Rule) -> Option<(&[u8], Raw<'_>)> {
    let mut p = 0;
    let mut backslash = false;
    loop {
        p = if rule == Rule::Measurement {
            scan::find_class::<MEAS_STOP>(i, p)
        } else {
            scan::find_class::<KEY_STOP>(i, p)
        };
        if p == i.len() || i[p] != b'\\' {
            break;
        }
        backslash = true;
        match i.get(p + 1) {
            None => return None,
            Some(&c) if scan::is(c, CTL_NL) => return None,
            Some(b'\\') if rule == Rule::Tag => p += 1,
            Some(_) => p += 2,
        }
    }
    (p > 0).then(|| (&i[p..], (&i[..p], backslash)))
}

// ---- field values ------------------------------------------------------

/// `field_value = string | number | boolean`
#[inline(always)]
fn field_value(i: &[u8]) -> Res<'_, Value<'_>> {
    alt((string, number, boolean, |i| {
        fail(i, ErrorKind::BadFieldValue)
    }))
    .parse(i)
}

/// `string = DQUOTE *( 1*(any byte but "\" or DQUOTE) | "\\" | "\" DQUOTE ) DQUOTE`:
/// the raw content between the quotes.
fn string(i: &[u8]) -> Res<'_, Value<'_>> {
    preceded(lit(b"\""), cut(string_body::<false>))
        .map(Value::String)
        .parse(i)
}

#[inline(always)]
fn string_body<const FAST: bool>(i: &[u8]) -> Res<'_, &[u8]> {
    if FAST {
        if let Some(read) = scan_string(i) {
            return read;
        }
    }
    terminated(
        recognize(fold_many0(
            alt((string_run, string_escape)),
            || (),
            |(), _| (),
        )),
        // Runs and escapes stop only at a quote or at the end of input.
        expect(ErrorKind::UnterminatedString, lit(b"\"")),
    )
    .parse(i)
}

/// `1*(any byte but "\" or DQUOTE)`: nom's `take_till1`, with `memchr2`,
/// because a stream delivers a long string in pieces and the grammar reads
/// each unterminated piece to its end.
fn string_run(i: &[u8]) -> Res<'_, &[u8]> {
    match memchr::memchr2(b'"', b'\\', i).unwrap_or(i.len()) {
        0 => Err(nom::Err::Error(NomError::from_error_kind(
            i,
            nom::error::ErrorKind::TakeTill1,
        ))),
        n => Ok((&i[n..], &i[..n])),
    }
}

/// `"\\" | "\" DQUOTE`; a backslash that ends the input leaves the string
/// unterminated.
fn string_escape(i: &[u8]) -> Res<'_, &[u8]> {
    fn bad(r: &[u8]) -> Res<'_, &[u8]> {
        let kind = if r.is_empty() {
            ErrorKind::UnterminatedString
        } else {
            ErrorKind::BadStringEscape
        };
        fail(r, kind)
    }
    let escaped = alt((lit(b"\\"), lit(b"\""), bad));
    recognize(preceded(lit(b"\\"), cut(escaped))).parse(i)
}

/// Fast path for [`string_body`]. Skips the combinators: `memchr2` jumps
/// to the next quote or backslash. Gives up on a bad escape, which the
/// grammar then reports. The one error it reports itself is the input
/// ending inside the string: a stream delivers a long string in pieces and
/// every piece but the last ends so, and the grammar would find that only
/// by reading the piece again. Proven equivalent by
/// `tests/lp_differential.rs` and the `differential` fuzz target.
#[inline(always)]
fn scan_string(body: &[u8]) -> Option<Res<'_, &[u8]>> {
    let unterminated = || fail(&body[body.len()..], ErrorKind::UnterminatedString);
    let mut p = 0;
    loop {
        let Some(k) = memchr::memchr2(b'"', b'\\', &body[p..]) else {
            return Some(unterminated());
        };
        p += k;
        if body[p] == b'"' {
            return Some(Ok((&body[p + 1..], &body[..p])));
        }
        match body.get(p + 1) {
            Some(b'\\' | b'"') => p += 2,
            None => return Some(unterminated()),
            Some(_) => return None,
        }
    }
}

/// `number = ["-"] *DIGIT ["." *DIGIT] ( exponent | "i" | "u" | )`, with a
/// digit before the suffix. Committed once its first byte matches.
#[inline(always)]
fn number(i: &[u8]) -> Res<'_, Value<'_>> {
    preceded(
        peek(byte_where(|b| b == b'-' || b == b'.' || b.is_ascii_digit())),
        cut(number_body::<false>),
    )
    .parse(i)
}

#[inline(always)]
fn number_body<const FAST: bool>(i: &[u8]) -> Res<'_, Value<'_>> {
    if FAST {
        if let Some(found) = scan_number(i) {
            return Ok(found);
        }
    }
    let (r, (sign, int, frac)) =
        (opt(lit(b"-")), digit0, opt(preceded(lit(b"."), digit0))).parse(i)?;
    if int.is_empty() && frac.is_none_or(<[u8]>::is_empty) {
        return fail(r, ErrorKind::BadFieldValue);
    }
    let mantissa = &i[..i.len() - r.len()];
    // A leading zero is allowed in floats but not in integers.
    let integral = frac.is_none() && (int.len() == 1 || int[0] != b'0');
    match r.first() {
        // exponent = ("e" | "E") ["+" | "-"] 1*DIGIT
        Some(b'e' | b'E') => {
            let (end, _) = (
                opt(byte_where(|b| b == b'+' || b == b'-')),
                expect(ErrorKind::BadFieldValue, digit1),
            )
                .parse(&r[1..])?;
            float(i, end)
        }
        Some(b'i') if integral => match parse_signed(mantissa) {
            Some(_) => Ok((&r[1..], Value::Integer(mantissa))),
            None => fail(&r[1..], ErrorKind::IntegerOutOfRange),
        },
        Some(b'u') if integral && sign.is_none() => match parse_unsigned(mantissa) {
            Some(_) => Ok((&r[1..], Value::Unsigned(mantissa))),
            None => fail(&r[1..], ErrorKind::UnsignedOutOfRange),
        },
        Some(b'i' | b'u') => fail(r, ErrorKind::BadFieldValue),
        _ => float(i, r),
    }
}

/// The float from the start of `i` to `end`, if a 64-bit float holds it.
fn float<'a>(i: &'a [u8], end: &'a [u8]) -> Res<'a, Value<'a>> {
    let text = &i[..i.len() - end.len()];
    if parse_float(text).is_infinite() {
        return fail(end, ErrorKind::FloatOutOfRange);
    }
    Ok((end, Value::Float(text)))
}

/// Fast path for [`number_body`]. Skips the combinators and most range
/// checks: digits are found eight at a time ([`scan::digits_end`]), and a
/// value is parsed only where it can be out of range (an `i` with more
/// than 18 digits, a `u` with more than 19, a float with an exponent).
/// Gives up on a malformed number, on one out of range and on a float of
/// 309 or more integer digits, which the grammar then reads. Proven
/// equivalent by `tests/lp_differential.rs` (numbers at the limits) and the
/// `differential` fuzz target.
#[inline(always)]
pub(super) fn scan_number(i: &[u8]) -> Option<(&[u8], Value<'_>)> {
    let digits = |from: usize| scan::digits_end(i, from) - from;
    let neg = i.first() == Some(&b'-');
    let int_start = usize::from(neg);
    let int_len = digits(int_start);
    let mut p = int_start + int_len;
    let mut frac_len = 0;
    let mut dot = false;
    if i.get(p) == Some(&b'.') {
        dot = true;
        frac_len = digits(p + 1);
        p += 1 + frac_len;
    }
    if int_len == 0 && frac_len == 0 {
        return None;
    }
    let integral = !dot && (int_len == 1 || i[int_start] != b'0');
    match i.get(p) {
        Some(b'e' | b'E') => {
            p += 1;
            if matches!(i.get(p), Some(b'+' | b'-')) {
                p += 1;
            }
            let exp_len = digits(p);
            if exp_len == 0 {
                return None;
            }
            p += exp_len;
            let text = &i[..p];
            (!parse_float(text).is_infinite()).then_some((&i[p..], Value::Float(text)))
        }
        // Up to 18 digits always fit in an i64, up to 19 in a u64.
        Some(b'i') if integral && (int_len <= 18 || parse_signed(&i[..p]).is_some()) => {
            Some((&i[p + 1..], Value::Integer(&i[..p])))
        }
        Some(b'u') if integral && !neg && (int_len <= 19 || parse_unsigned(&i[..p]).is_some()) => {
            Some((&i[p + 1..], Value::Unsigned(&i[..p])))
        }
        Some(b'i' | b'u') => None,
        // Fewer than 309 integer digits and no exponent cannot overflow.
        _ if int_len < 309 => Some((&i[p..], Value::Float(&i[..p]))),
        _ => None,
    }
}

/// `boolean = "t" ["rue"] | "T" ["rue" | "RUE"] | "f" ["alse"] | "F" ["alse" | "ALSE"]`
fn boolean(i: &[u8]) -> Res<'_, Value<'_>> {
    alt((
        value(true, preceded(lit(b"t"), opt(rest_of("rue")))),
        value(
            true,
            preceded(lit(b"T"), opt(alt((rest_of("rue"), rest_of("RUE"))))),
        ),
        value(false, preceded(lit(b"f"), opt(rest_of("alse")))),
        value(
            false,
            preceded(lit(b"F"), opt(alt((rest_of("alse"), rest_of("ALSE"))))),
        ),
    ))
    .map(Value::Boolean)
    .parse(i)
}

/// The rest of a boolean's long form: once its first letter is there, every
/// letter must be, and the first that is not is the error.
fn rest_of<'a>(word: &'static str) -> impl Parser<&'a [u8], Output = (), Error = NomError<'a>> {
    let word = word.as_bytes();
    preceded(
        peek(lit(&word[..1])),
        cut(
            move |i: &'a [u8]| match word.iter().zip(i).position(|(w, b)| w != b) {
                None if i.len() >= word.len() => Ok((&i[word.len()..], ())),
                mismatch => fail(&i[mismatch.unwrap_or(i.len())..], ErrorKind::BadFieldValue),
            },
        ),
    )
}

// ---- timestamps --------------------------------------------------------

/// `timestamp = ["-"] 1*19DIGIT` within the signed 64-bit range.
/// Committed once its first byte matches.
fn timestamp(i: &[u8]) -> Res<'_, i64> {
    preceded(
        peek(byte_where(|b| b == b'-' || b.is_ascii_digit())),
        cut(timestamp_value::<false>),
    )
    .parse(i)
}

#[inline(always)]
fn timestamp_value<const FAST: bool>(i: &[u8]) -> Res<'_, i64> {
    if FAST {
        if let Some(found) = scan_timestamp(i) {
            return Ok(found);
        }
    }
    let (r, (sign, digits)) = (opt(lit(b"-")), digit0).parse(i)?;
    if digits.is_empty() || digits.len() > 19 {
        // Telegraf's machine stops at the first byte that cannot extend
        // the timestamp: a non-digit, or a 20th digit.
        let at = sign.map_or(0, <[u8]>::len) + digits.len().min(19);
        return fail(&i[at..], ErrorKind::BadTimestamp);
    }
    match parse_signed(&i[..i.len() - r.len()]) {
        Some(ts) => Ok((r, ts)),
        None => fail(r, ErrorKind::TimestampOutOfRange),
    }
}

/// Fast path for [`timestamp_value`]. Skips the combinators and the digit
/// by digit conversion: digits are found and converted eight at a time
/// ([`scan::digits_end`], [`scan::eight_digits`]). Gives up on no digits,
/// more than 19, or a value out of range, which the grammar then reports.
/// Proven equivalent by `tests/lp_differential.rs` (timestamps at the
/// limits) and the `differential` fuzz target.
#[inline(always)]
pub(super) fn scan_timestamp(i: &[u8]) -> Option<(&[u8], i64)> {
    let neg = i.first() == Some(&b'-');
    let start = usize::from(neg);
    let end = scan::digits_end(i, start);
    let n = end - start;
    if n == 0 || n > 19 {
        return None;
    }
    // 19 digits fit in a u64; the sign decides the limit.
    let head = start + n % 8;
    let mut v = i[start..head]
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    let mut p = head;
    while p < end {
        v = v * 100_000_000 + scan::eight_digits(scan::word(i, p));
        p += 8;
    }
    let ts = if neg {
        0i64.checked_sub_unsigned(v)
    } else {
        i64::try_from(v).ok()
    }?;
    Some((&i[end..], ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A production read with and without its fast path.
    fn both<'a, T: PartialEq + std::fmt::Debug>(
        fast: fn(&'a [u8]) -> Res<'a, T>,
        general: fn(&'a [u8]) -> Res<'a, T>,
        input: &'a [u8],
    ) {
        assert_eq!(fast(input), general(input), "{}", input.escape_ascii());
    }

    #[test]
    fn timestamps_at_the_limits() {
        let ts = |s: &str| match timestamp_value::<false>(s.as_bytes()) {
            Ok((_, v)) => Some(v),
            Err(_) => None,
        };
        assert_eq!(ts("1700000000063184460"), Some(1_700_000_000_063_184_460));
        assert_eq!(ts("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(ts("9223372036854775807"), Some(i64::MAX));
        assert_eq!(ts("9223372036854775808"), None);
        assert_eq!(ts("-1"), Some(-1));
        assert_eq!(ts("12345678"), Some(12_345_678));
        for s in [
            "1700000000063184460",
            "-9223372036854775808",
            "-9223372036854775809",
            "9223372036854775807",
            "9223372036854775808",
            "99999999999999999999",
            "0000000000000000001",
            "00000000000000000001",
            "-",
            "-x",
            "1",
            "12345678 ",
        ] {
            both(
                timestamp_value::<true>,
                timestamp_value::<false>,
                s.as_bytes(),
            );
        }
    }

    #[test]
    fn numbers_at_the_limits() {
        for s in [
            "9223372036854775807i",
            "9223372036854775808i",
            "-9223372036854775808i",
            "-9223372036854775809i",
            "922337203685477580i",
            "18446744073709551615u",
            "18446744073709551616u",
            "1844674407370955161u",
            "-1u",
            "0i",
            "00i",
            "-0i",
            "01u",
            "1.5i",
            "1e308",
            "1e309",
            "1.7976931348623157e308",
            "1.7976931348623159e308",
            "1e-400",
            "1e",
            "1e+",
            "-",
            "-.",
            ".",
            ".5",
            "5.",
            "1.e3",
            "1E+3",
        ] {
            both(number_body::<true>, number_body::<false>, s.as_bytes());
        }
        let long = "9".repeat(309);
        both(number_body::<true>, number_body::<false>, long.as_bytes());
        let long = format!("{}.5", "1".repeat(400));
        both(number_body::<true>, number_body::<false>, long.as_bytes());
    }
}
