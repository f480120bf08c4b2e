//! The record parser: InfluxDB line protocol exactly as Telegraf's influx
//! parser (the `StreamParser` that `processors.execd` uses) reads it.
//!
//! Written with nom over byte slices. Each element is scanned with a lookup
//! table, so an escape-free line costs one pass over its bytes and no
//! allocation. Errors carry the offset of the byte at which Telegraf's state
//! machine stops as well, because that offset decides where parsing resumes
//! (after the next line feed at or behind it).
//!
//! The parser reports what it finds to a [`Visitor`], so a caller that only
//! needs to validate a line (to pass it through) pays for no values.

use nom::IResult;

use super::error::{ErrorKind, NomError, ParseError};
use super::value::{parse_float, parse_signed, parse_unsigned, Element, Escaped, Value};

/// Receives the parts of a record as they are parsed.
pub trait Visitor<'a> {
    /// The measurement. Return `false` to have tags and fields validated
    /// only, not reported.
    fn measurement(&mut self, name: Escaped<'a>) -> bool;
    /// A tag, in input order (a later duplicate key wins, as in Telegraf).
    fn tag(&mut self, key: Escaped<'a>, value: Escaped<'a>);
    /// A field, in input order (a later duplicate key wins, as in Telegraf).
    fn field(&mut self, key: Escaped<'a>, value: Value<'a>);
    /// The timestamp, when the record has one.
    fn timestamp(&mut self, ts: i64);
}

/// A visitor that keeps nothing: for validation only.
pub struct Validate;

impl<'a> Visitor<'a> for Validate {
    fn measurement(&mut self, _: Escaped<'a>) -> bool {
        false
    }
    fn tag(&mut self, _: Escaped<'a>, _: Escaped<'a>) {}
    fn field(&mut self, _: Escaped<'a>, _: Value<'a>) {}
    fn timestamp(&mut self, _: i64) {}
}

/// What a well-formed record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// An empty or whitespace-only line.
    Blank,
    /// A line whose first non-blank byte is `#`.
    Comment,
    /// A point.
    Point,
}

/// A well-formed record at the start of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Blank, comment or point.
    pub kind: RecordKind,
    /// Bytes of the record without its line ending: what is passed through.
    pub body: usize,
    /// Bytes consumed, line ending included.
    pub len: usize,
    /// Physical lines the record spans (more than one when a quoted string
    /// holds a line feed).
    pub lines: usize,
}

/// The result of parsing at the start of some input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A complete record.
    Record(Record),
    /// The record is invalid; resume after the next line feed at or after
    /// the error's offset.
    Invalid(ParseError),
    /// The record may continue past the end of the input: call again with
    /// more. Only returned when `at_eof` is false.
    NeedMore,
}

/// Parses the record at the start of `input`. `at_eof` says whether more
/// input may follow; without it, a record that runs to the end of `input`
/// is not complete yet.
pub fn parse_record<'a, V: Visitor<'a>>(input: &'a [u8], at_eof: bool, v: &mut V) -> Outcome {
    match record(input, v) {
        Ok(rec) if rec.len > rec.body || at_eof => Outcome::Record(rec),
        Ok(_) => Outcome::NeedMore,
        Err(err) if err.offset >= input.len() && !at_eof => Outcome::NeedMore,
        Err(err) => Outcome::Invalid(err),
    }
}

type Res<'a, T> = IResult<&'a [u8], T, NomError<'a>>;

fn fail<T>(rest: &[u8], kind: ErrorKind) -> Res<'_, T> {
    Err(nom::Err::Error(NomError { kind, rest }))
}

/// Byte classes, one table lookup per byte on the hot path.
const WS: u8 = 1; // separator whitespace: space, TAB, VT, FF
const MEAS_STOP: u8 = 2; // ends a run of plain measurement bytes
const KEY_STOP: u8 = 4; // ends a run of plain tag/field-key bytes
const CTL_NL: u8 = 8; // may not follow a backslash: TAB, LF, VT, FF, CR

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if matches!(b, b' ' | b'\t' | 0x0b | 0x0c) {
            c |= WS;
        }
        if matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
            c |= CTL_NL;
        }
        if c & CTL_NL != 0 || matches!(b, b' ' | b',' | b'\\') {
            c |= MEAS_STOP | KEY_STOP;
        }
        if b == b'=' {
            c |= KEY_STOP;
        }
        t[i] = c;
        i += 1;
    }
    t
};

#[inline]
fn is(b: u8, class: u8) -> bool {
    CLASS[b as usize] & class != 0
}

/// Eight bytes at `p`, first byte lowest.
#[inline(always)]
fn word(i: &[u8], p: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&i[p..p + 8]);
    u64::from_le_bytes(w)
}

const LO: u64 = u64::from_le_bytes([0x01; 8]);
const HI: u64 = u64::from_le_bytes([0x80; 8]);

/// High bit set in each byte of `w` equal to `b`; exact for the lowest
/// such byte (a borrow may flag bytes above it), which is all we use.
#[inline(always)]
fn eq_bytes(w: u64, b: u8) -> u64 {
    let x = w ^ (LO * u64::from(b));
    x.wrapping_sub(LO) & !x & HI
}

/// The first byte at or after `p` of the given class, or `i.len()`.
///
/// Eight bytes at a time: a word is skipped when none of its bytes is a
/// separator (space, comma, `=`, backslash) or below 0x0e; the TAB..CR
/// control bytes fall in that range, and the few other bytes below 0x0e
/// that land there are checked one by one against the table.
#[inline(always)]
fn find_class<const CLASS: u8>(i: &[u8], mut p: usize) -> usize {
    let class = CLASS;
    while p + 8 <= i.len() {
        let w = word(i, p);
        let mut m = w.wrapping_sub(LO * 0x0e) & !w & HI
            | eq_bytes(w, b' ')
            | eq_bytes(w, b',')
            | eq_bytes(w, b'\\');
        if CLASS & KEY_STOP != 0 {
            m |= eq_bytes(w, b'=');
        }
        if m == 0 {
            p += 8;
            continue;
        }
        let k = p + (m.trailing_zeros() / 8) as usize;
        if is(i[k], class) {
            return k;
        }
        p = k + 1;
    }
    p + i[p..]
        .iter()
        .position(|&b| is(b, class))
        .unwrap_or(i.len() - p)
}

/// The end of the run of ASCII digits starting at `p`.
#[inline(always)]
fn digits_end(i: &[u8], mut p: usize) -> usize {
    const F0: u64 = u64::from_le_bytes([0xf0; 8]);
    const D0: u64 = u64::from_le_bytes([0x30; 8]);
    const SIX: u64 = u64::from_le_bytes([0x06; 8]);
    while p + 8 <= i.len() {
        let w = word(i, p);
        // A digit is 0x30..=0x39: high nibble 3, and still 3 after adding 6.
        let bad = ((w & F0) ^ D0) | ((w.wrapping_add(SIX) & F0) ^ D0);
        if bad != 0 {
            return p + (bad.trailing_zeros() / 8) as usize;
        }
        p += 8;
    }
    p + i[p..].iter().take_while(|b| b.is_ascii_digit()).count()
}

/// The value of eight ASCII digits, the first in the lowest byte: pairs,
/// then quads, then the whole, each step one multiply.
#[inline(always)]
fn eight_digits(w: u64) -> u64 {
    let w = w.wrapping_sub(u64::from_le_bytes([b'0'; 8]));
    let w = (w.wrapping_mul(10) + (w >> 8)) & 0x00ff_00ff_00ff_00ff;
    let w = (w.wrapping_mul(100) + (w >> 16)) & 0x0000_ffff_0000_ffff;
    (w.wrapping_mul(10_000) + (w >> 32)) & 0xffff_ffff
}

/// Skips separator whitespace.
#[inline]
fn ws0(i: &[u8]) -> &[u8] {
    let n = i.iter().take_while(|&&b| is(b, WS)).count();
    &i[n..]
}

/// The three kinds of escaped element, which differ in what ends them and
/// in how a doubled backslash reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rule {
    Measurement,
    Tag,
    FieldKey,
}

/// Scans a non-empty escaped element. A backslash escapes any byte but the
/// control bytes; in tags a doubled backslash is one literal backslash whose
/// successor is read afresh (Telegraf's `'\\\\' %to{ fhold; }`).
/// Returns the element and whether it holds a backslash.
#[inline(always)]
fn element(i: &[u8], rule: Rule, empty: ErrorKind) -> Res<'_, (&[u8], bool)> {
    let mut p = 0;
    let mut backslash = false;
    loop {
        p = if rule == Rule::Measurement {
            find_class::<MEAS_STOP>(i, p)
        } else {
            find_class::<KEY_STOP>(i, p)
        };
        if p == i.len() || i[p] != b'\\' {
            break;
        }
        backslash = true;
        match i.get(p + 1) {
            None => return fail(&i[p + 1..], ErrorKind::BadEscape),
            Some(&c) if is(c, CTL_NL) => return fail(&i[p + 1..], ErrorKind::BadEscape),
            Some(b'\\') if rule == Rule::Tag => p += 1,
            Some(_) => p += 2,
        }
    }
    if p == 0 {
        return fail(i, empty);
    }
    Ok((&i[p..], (&i[..p], backslash)))
}

/// Whether `b` may follow a field value.
#[inline]
fn ends_value(b: Option<&u8>) -> bool {
    match b {
        None => true,
        Some(&b) => b == b',' || b == b'\n' || b == b'\r' || is(b, WS),
    }
}

/// A number: float, `i` integer or `u` unsigned, per Telegraf's grammar.
#[inline(always)]
fn number(i: &[u8]) -> Res<'_, Value<'_>> {
    let digits = |from: usize| digits_end(i, from) - from;
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
        return fail(&i[p..], ErrorKind::BadFieldValue);
    }
    // A leading zero is allowed in floats but not in integers.
    let int_ok = !dot && (int_len == 1 || i[int_start] != b'0');
    match i.get(p) {
        Some(b'e' | b'E') => {
            p += 1;
            if matches!(i.get(p), Some(b'+' | b'-')) {
                p += 1;
            }
            let exp_len = digits(p);
            if exp_len == 0 {
                return fail(&i[p..], ErrorKind::BadFieldValue);
            }
            p += exp_len;
            float_checked(i, p)
        }
        Some(b'i') if int_ok => {
            let text = &i[..p];
            // Up to 18 digits always fit: check the range only beyond.
            if int_len > 18 && parse_signed(text).is_none() {
                return fail(&i[p + 1..], ErrorKind::IntegerOutOfRange);
            }
            Ok((&i[p + 1..], Value::Integer(text)))
        }
        Some(b'u') if int_ok && !neg => {
            let text = &i[..p];
            if int_len > 19 && parse_unsigned(text).is_none() {
                return fail(&i[p + 1..], ErrorKind::UnsignedOutOfRange);
            }
            Ok((&i[p + 1..], Value::Unsigned(text)))
        }
        Some(b'i' | b'u') => fail(&i[p..], ErrorKind::BadFieldValue),
        // Fewer than 309 integer digits and no exponent cannot overflow.
        _ if int_len < 309 => Ok((&i[p..], Value::Float(&i[..p]))),
        _ => float_checked(i, p),
    }
}

/// A float that might overflow: parsed here to check its range.
fn float_checked(i: &[u8], end: usize) -> Res<'_, Value<'_>> {
    if parse_float(&i[..end]).is_infinite() {
        return fail(&i[end..], ErrorKind::FloatOutOfRange);
    }
    Ok((&i[end..], Value::Float(&i[..end])))
}

/// `t T true True TRUE f F false False FALSE`, nothing else.
fn boolean(i: &[u8]) -> Res<'_, Value<'_>> {
    let value = matches!(i[0], b't' | b'T');
    let tails: &[&[u8]] = match i[0] {
        b't' => &[b"rue"],
        b'T' => &[b"rue", b"RUE"],
        b'f' => &[b"alse"],
        _ => &[b"alse", b"ALSE"],
    };
    let rest = &i[1..];
    let Some(tail) = tails.iter().find(|t| rest.first() == Some(&t[0])) else {
        // The one-letter form; what follows is checked by the caller.
        return Ok((rest, Value::Boolean(value)));
    };
    for (k, &want) in tail.iter().enumerate() {
        if rest.get(k) != Some(&want) {
            return fail(&rest[k.min(rest.len())..], ErrorKind::BadFieldValue);
        }
    }
    Ok((&rest[tail.len()..], Value::Boolean(value)))
}

/// A quoted string: any bytes, raw line feeds included; a backslash must
/// escape `\` or `"`.
fn string(i: &[u8]) -> Res<'_, Value<'_>> {
    let body = &i[1..];
    let mut p = 0;
    loop {
        let Some(k) = memchr::memchr2(b'"', b'\\', &body[p..]) else {
            return fail(&body[body.len()..], ErrorKind::UnterminatedString);
        };
        p += k;
        if body[p] == b'"' {
            return Ok((&body[p + 1..], Value::String(&body[..p])));
        }
        match body.get(p + 1) {
            Some(b'\\' | b'"') => p += 2,
            None => return fail(&body[p + 1..], ErrorKind::UnterminatedString),
            Some(_) => return fail(&body[p + 1..], ErrorKind::BadStringEscape),
        }
    }
}

#[inline(always)]
fn field_value(i: &[u8]) -> Res<'_, Value<'_>> {
    match i.first() {
        Some(b'"') => string(i),
        Some(b'-' | b'.' | b'0'..=b'9') => number(i),
        Some(b't' | b'T' | b'f' | b'F') => boolean(i),
        _ => fail(i, ErrorKind::BadFieldValue),
    }
}

/// `-?[0-9]{1,19}` within the signed 64-bit range.
fn timestamp(i: &[u8]) -> Res<'_, i64> {
    let neg = i.first() == Some(&b'-');
    let start = usize::from(neg);
    let end = digits_end(i, start);
    let n = end - start;
    if n == 0 || n > 19 {
        return fail(&i[start + n.min(19)..], ErrorKind::BadTimestamp);
    }
    // 19 digits fit in a u64; the sign decides the limit. Whole groups of
    // eight digits are converted a word at a time.
    let head = start + n % 8;
    let mut v = i[start..head]
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    let mut p = head;
    while p < end {
        v = v * 100_000_000 + eight_digits(word(i, p));
        p += 8;
    }
    let ts = if neg {
        0i64.checked_sub_unsigned(v)
    } else {
        i64::try_from(v).ok()
    };
    match ts {
        Some(ts) => Ok((&i[end..], ts)),
        None => fail(&i[end..], ErrorKind::TimestampOutOfRange),
    }
}

/// Ends a line: `\n`, `\r\n` or the end of the input. Returns the bytes the
/// ending takes.
fn line_end(i: &[u8], otherwise: ErrorKind) -> Result<usize, NomError<'_>> {
    match i {
        [] => Ok(0),
        [b'\n', ..] => Ok(1),
        [b'\r', b'\n', ..] => Ok(2),
        [b'\r', rest @ ..] if rest.is_empty() => Err(NomError {
            kind: ErrorKind::BareCarriageReturn,
            rest,
        }),
        [b'\r', ..] => Err(NomError {
            kind: ErrorKind::BareCarriageReturn,
            rest: i,
        }),
        _ => Err(NomError {
            kind: otherwise,
            rest: i,
        }),
    }
}

fn record<'a, V: Visitor<'a>>(input: &'a [u8], v: &mut V) -> Result<Record, ParseError> {
    let at = |rest: &[u8]| input.len() - rest.len();
    let to_error = |e: NomError<'_>| ParseError {
        kind: e.kind,
        offset: input.len() - e.rest.len(),
    };
    let lift = |e: nom::Err<NomError<'a>>| match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => ParseError {
            kind: e.kind,
            offset: input.len() - e.rest.len(),
        },
        nom::Err::Incomplete(_) => ParseError {
            kind: ErrorKind::UnterminatedString,
            offset: input.len(),
        },
    };
    let done = |kind, body: usize, ending: usize, lines| Record {
        kind,
        body,
        len: body + ending,
        lines,
    };

    let rest = ws0(input);
    match rest.first() {
        None => return Ok(done(RecordKind::Blank, input.len(), 0, 1)),
        Some(b'#') => {
            return Ok(match memchr::memchr(b'\n', rest) {
                Some(k) => done(RecordKind::Comment, at(rest) + k, 1, 1),
                None => done(RecordKind::Comment, input.len(), 0, 1),
            })
        }
        Some(b'\n' | b'\r') => {
            let ending = line_end(rest, ErrorKind::MissingMeasurement).map_err(to_error)?;
            return Ok(done(RecordKind::Blank, at(rest), ending, 1));
        }
        Some(_) => {}
    }

    let (mut rest, name) =
        element(rest, Rule::Measurement, ErrorKind::MissingMeasurement).map_err(lift)?;
    let wanted = v.measurement(Escaped::scanned(name.0, Element::Measurement, name.1));

    while let Some((b',', after)) = rest.split_first() {
        let (r, key) = element(after, Rule::Tag, ErrorKind::MissingTagKey).map_err(lift)?;
        let Some((b'=', after)) = r.split_first() else {
            return Err(to_error(NomError {
                kind: ErrorKind::MissingTagEquals,
                rest: r,
            }));
        };
        let (r, value) = element(after, Rule::Tag, ErrorKind::MissingTagValue).map_err(lift)?;
        if wanted {
            v.tag(
                Escaped::scanned(key.0, Element::Key, key.1),
                Escaped::scanned(value.0, Element::Key, value.1),
            );
        }
        rest = r;
    }

    let fields = ws0(rest);
    if fields.len() == rest.len() {
        let kind = match rest {
            [b'=', ..] => ErrorKind::BadTagEnd,
            [b'\r', next, ..] if *next != b'\n' => ErrorKind::BareCarriageReturn,
            _ => ErrorKind::MissingFields,
        };
        return Err(to_error(NomError { kind, rest }));
    }

    let mut lines = 1;
    let mut rest = fields;
    loop {
        let (r, key) = element(rest, Rule::FieldKey, ErrorKind::MissingFieldKey).map_err(lift)?;
        let Some((b'=', after)) = r.split_first() else {
            return Err(to_error(NomError {
                kind: ErrorKind::MissingFieldEquals,
                rest: r,
            }));
        };
        let (r, value) = field_value(after).map_err(lift)?;
        if let Value::String(s) = value {
            lines += memchr::memchr_iter(b'\n', s).count();
        }
        if wanted {
            v.field(Escaped::scanned(key.0, Element::Key, key.1), value);
        }
        match r.split_first() {
            Some((b',', after)) => rest = after,
            _ if ends_value(r.first()) => {
                rest = r;
                break;
            }
            _ => {
                return Err(to_error(NomError {
                    kind: ErrorKind::BadFieldEnd,
                    rest: r,
                }))
            }
        }
    }

    let after_ws = ws0(rest);
    let mut otherwise = ErrorKind::BadTimestamp;
    if after_ws.len() < rest.len() && matches!(after_ws.first(), Some(b'-' | b'0'..=b'9')) {
        let (r, ts) = timestamp(after_ws).map_err(lift)?;
        v.timestamp(ts);
        rest = ws0(r);
        otherwise = ErrorKind::TrailingCharacters;
    } else {
        rest = after_ws;
    }
    let ending = line_end(rest, otherwise).map_err(to_error)?;
    Ok(done(RecordKind::Point, at(rest), ending, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(input: &str) -> Outcome {
        parse_record(input.as_bytes(), true, &mut Validate)
    }

    fn error(input: &str) -> (ErrorKind, usize) {
        match outcome(input) {
            Outcome::Invalid(e) => (e.kind, e.offset),
            other => panic!("{input:?} gave {other:?}"),
        }
    }

    #[test]
    fn errors_stop_where_telegraf_stops() {
        // Offsets are 0-based; Telegraf prints them 1-based as columns.
        assert_eq!(error("m f=1.2.3"), (ErrorKind::BadFieldEnd, 7));
        assert_eq!(error("m f=007i"), (ErrorKind::BadFieldValue, 7));
        assert_eq!(error("m f=tRUE"), (ErrorKind::BadFieldEnd, 5));
        assert_eq!(error("m f=TrUe"), (ErrorKind::BadFieldValue, 6));
        assert_eq!(error("m f=tru"), (ErrorKind::BadFieldValue, 7));
        assert_eq!(
            error("cpu value=9223372036854775808i"),
            (ErrorKind::IntegerOutOfRange, 30)
        );
        assert_eq!(
            error("cpu value=42 12345678901234567890"),
            (ErrorKind::BadTimestamp, 32)
        );
        assert_eq!(error(r#"m f="a\b""#), (ErrorKind::BadStringEscape, 7));
        assert_eq!(error("m,t=v\\\\ f=1"), (ErrorKind::BadTagEnd, 9));
        assert_eq!(
            error("cpu value=42\rcpu value=43"),
            (ErrorKind::BareCarriageReturn, 12)
        );
        assert_eq!(error("m f=1e309"), (ErrorKind::FloatOutOfRange, 9));
    }

    #[test]
    fn word_at_a_time_helpers_agree_with_bytes() {
        assert_eq!(eight_digits(word(b"12345678", 0)), 12_345_678);
        assert_eq!(eight_digits(word(b"00000009", 0)), 9);
        assert_eq!(digits_end(b"123456789012x", 0), 12);
        assert_eq!(digits_end(b"1234567\xfa9", 0), 7);
        assert_eq!(find_class::<KEY_STOP>(b"abcdefgh\x01ij=k", 0), 11);
        assert_eq!(find_class::<MEAS_STOP>(b"abcdefgh\x01ij=k l", 0), 13);
        let ts = |s: &str| match timestamp(s.as_bytes()) {
            Ok((_, v)) => Some(v),
            Err(_) => None,
        };
        assert_eq!(ts("1700000000063184460"), Some(1_700_000_000_063_184_460));
        assert_eq!(ts("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(ts("9223372036854775807"), Some(i64::MAX));
        assert_eq!(ts("9223372036854775808"), None);
        assert_eq!(ts("-1"), Some(-1));
        assert_eq!(ts("12345678"), Some(12_345_678));
    }

    #[test]
    fn records_report_their_extent() {
        let rec = |s: &str| match outcome(s) {
            Outcome::Record(r) => (r.kind, r.body, r.len, r.lines),
            other => panic!("{s:?} gave {other:?}"),
        };
        assert_eq!(rec("m f=1 1\r\nnext"), (RecordKind::Point, 7, 9, 1));
        assert_eq!(rec("m f=\"a\nb\" 1\n"), (RecordKind::Point, 11, 12, 2));
        assert_eq!(rec("  # c\rx\n"), (RecordKind::Comment, 7, 8, 1));
        assert_eq!(rec("  \r\n"), (RecordKind::Blank, 2, 4, 1));
        assert_eq!(rec("m f=1 "), (RecordKind::Point, 6, 6, 1));
    }

    #[test]
    fn a_record_at_the_end_of_a_chunk_waits_for_more() {
        let more = |s: &str| parse_record(s.as_bytes(), false, &mut Validate);
        assert_eq!(more("m f=1"), Outcome::NeedMore);
        assert_eq!(more("m f=\"a\n"), Outcome::NeedMore);
        assert_eq!(more("m f=1\r"), Outcome::NeedMore);
        assert!(matches!(more("m f=x\n"), Outcome::Invalid(_)));
    }
}
