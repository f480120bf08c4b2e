//! The pieces of a parsed record, borrowed from the input.
//!
//! Nothing here copies unless it must: an element is kept as its raw bytes
//! and unescaped on demand, and only when it holds an escape does that
//! allocate. Numbers are kept as their validated text and converted when a
//! caller asks, so a line that is only passed through never pays for it.

use std::borrow::Cow;

/// Which of Telegraf's unescaping rules applies to an element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    /// The measurement: `\,` and `\ ` are unescaped.
    Measurement,
    /// A tag key, tag value or field key: `\,`, `\ `, `\=` and `\"` are
    /// unescaped, but only when the raw text holds a space, comma or `=`
    /// (Telegraf's `unescape` does exactly this, quirk included).
    Key,
}

/// A measurement, tag key, tag value or field key as it stands in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escaped<'a> {
    raw: &'a [u8],
    element: Element,
    /// Whether `raw` holds a backslash (the parser knows without a scan).
    backslash: bool,
}

impl<'a> Escaped<'a> {
    /// An element of the given kind as written.
    pub fn new(raw: &'a [u8], element: Element) -> Self {
        Escaped {
            raw,
            element,
            backslash: raw.contains(&b'\\'),
        }
    }

    /// An element the parser has scanned: it saw whether it holds a
    /// backslash.
    pub(crate) fn scanned(raw: &'a [u8], element: Element, backslash: bool) -> Self {
        Escaped {
            raw,
            element,
            backslash,
        }
    }

    /// Whether the element holds a backslash (else it is its own value).
    pub fn has_backslash(&self) -> bool {
        self.backslash
    }

    /// The bytes as written, escapes included.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The value Telegraf reads: borrowed unless an escape had to be removed.
    pub fn unescaped(&self) -> Cow<'a, [u8]> {
        match self.unescaped_rules() {
            Some(escapable) => Cow::Owned(replace_escapes(self.raw, escapable)),
            None => Cow::Borrowed(self.raw),
        }
    }

    /// Appends [`Escaped::unescaped`] to `out`: no allocation of its own,
    /// for a caller that copies the value anyway (a series key).
    pub fn unescape_into(&self, out: &mut Vec<u8>) {
        match self.unescaped_rules() {
            Some(escapable) => push_replaced(self.raw, escapable, out),
            None => out.extend_from_slice(self.raw),
        }
    }

    /// The bytes a backslash escapes in this element, when it holds an
    /// escape to remove; `None` when it is its own value.
    #[inline]
    fn unescaped_rules(&self) -> Option<&'static [u8]> {
        let (triggers, escapable): (&[u8], &'static [u8]) = match self.element {
            Element::Measurement => (b" ,", b" ,"),
            Element::Key => (b" ,=", b" ,=\""),
        };
        (self.backslash && self.raw.iter().any(|b| triggers.contains(b))).then_some(escapable)
    }

    /// Whether the unescaped value equals `expected`, without allocating in
    /// the common case of an element with no backslash.
    pub fn is(&self, expected: &[u8]) -> bool {
        // Unescaping only ever shortens an element, and one without a
        // backslash is its own value.
        if !self.backslash {
            return same(self.raw, expected);
        }
        self.raw.len() > expected.len() && *self.unescaped() == *expected
    }
}

/// Whether two byte strings are equal: for 8 to 16 bytes (a measurement
/// name such as `network_delays`), two overlapping word compares instead
/// of a call to `memcmp`.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let w = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap_or([0; 8]));
    match n {
        8..=16 => w(a, 0) == w(b, 0) && w(a, n - 8) == w(b, n - 8),
        _ => a == b,
    }
}

/// Go's `strings.Replacer` over two-byte escapes: a backslash followed by
/// one of `escapable` becomes that byte; any other backslash stays, and the
/// byte after it is looked at afresh (so `\\,` reads as `\` then `,`).
fn replace_escapes(raw: &[u8], escapable: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    push_replaced(raw, escapable, &mut out);
    out
}

/// [`replace_escapes`], appended to `out`.
fn push_replaced(raw: &[u8], escapable: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'\\' && i + 1 < raw.len() && escapable.contains(&raw[i + 1]) {
            out.push(raw[i + 1]);
            i += 2;
        } else {
            out.push(b);
            i += 1;
        }
    }
}

/// A field value, validated by the parser and converted on demand.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A float, as written (`1`, `-1.5e3`, `.5`).
    Float(&'a [u8]),
    /// A signed integer without its `i` suffix.
    Integer(&'a [u8]),
    /// An unsigned integer without its `u` suffix.
    Unsigned(&'a [u8]),
    /// A boolean.
    Boolean(bool),
    /// A string's raw content between the quotes, escapes included.
    String(&'a [u8]),
}

/// A numeric field value, typed as the input typed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// A float.
    Float(f64),
    /// A signed integer.
    Integer(i64),
    /// An unsigned integer.
    Unsigned(u64),
}

impl<'a> Value<'a> {
    /// The number, or `None` for a boolean or string. The parser has checked
    /// the text and its range, so conversion cannot fail.
    pub fn number(&self) -> Option<Number> {
        match *self {
            Value::Float(t) => Some(Number::Float(parse_float(t))),
            Value::Integer(t) => Some(Number::Integer(parse_signed(t).unwrap_or(0))),
            Value::Unsigned(t) => Some(Number::Unsigned(parse_unsigned(t).unwrap_or(0))),
            Value::Boolean(_) | Value::String(_) => None,
        }
    }

    /// A string's content with `\"` and `\\` unescaped.
    pub fn string(&self) -> Option<Cow<'a, [u8]>> {
        match *self {
            Value::String(raw) if memchr::memchr(b'\\', raw).is_some() => {
                Some(Cow::Owned(replace_escapes(raw, b"\\\"")))
            }
            Value::String(raw) => Some(Cow::Borrowed(raw)),
            _ => None,
        }
    }
}

/// Parses validated float text (ASCII digits, sign, dot, exponent).
/// `fast-float2` reads bytes directly (no UTF-8 check) and rounds exactly
/// as the standard library does.
#[inline]
pub(crate) fn parse_float(text: &[u8]) -> f64 {
    short_float(text).unwrap_or_else(|| fast_float2::parse(text).unwrap_or(f64::NAN))
}

/// Clinger's fast path for a float of at most 15 digits and no exponent
/// (`54.301`): its digits as an integer and the power of ten it is divided
/// by are both exact in an f64, so one division rounds as the decimal
/// text itself would. `None` for any other text.
#[inline(always)]
fn short_float(text: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (neg, body) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if body.len() > 16 {
        return None;
    }
    let mut digits: u64 = 0;
    let mut dot = None;
    for (k, &b) in body.iter().enumerate() {
        match b {
            b'0'..=b'9' => digits = digits * 10 + u64::from(b - b'0'),
            b'.' if dot.is_none() => dot = Some(k),
            _ => return None,
        }
    }
    let scale = dot.map_or(0, |k| body.len() - k - 1);
    // 16 bytes without a dot are 16 digits: past 2^53 they would round.
    if body.len() == usize::from(dot.is_some()) || digits > 1 << 53 {
        return None;
    }
    let v = digits as f64 / POW10[scale];
    Some(if neg { -v } else { v })
}

/// Parses `-?[0-9]+` into an i64, `None` when out of range.
pub(crate) fn parse_signed(text: &[u8]) -> Option<i64> {
    let (neg, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    // Accumulate negatively so that i64::MIN is reachable.
    let mut acc: i64 = 0;
    for &d in digits {
        acc = acc.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if neg {
        Some(acc)
    } else {
        acc.checked_neg()
    }
}

/// Parses `[0-9]+` into a u64, `None` when out of range.
pub(crate) fn parse_unsigned(text: &[u8]) -> Option<u64> {
    let mut acc: u64 = 0;
    for &d in text {
        acc = acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_unescapes_only_when_a_trigger_is_present() {
        // Telegraf keeps `\"` unless the element also holds a space, comma or '='.
        assert_eq!(
            &*Escaped::new(br#"a\"b"#, Element::Key).unescaped(),
            br#"a\"b"#
        );
        assert_eq!(
            &*Escaped::new(br#"a\"b\ c"#, Element::Key).unescaped(),
            b"a\"b c"
        );
        assert_eq!(
            &*Escaped::new(br"two\\ words", Element::Key).unescaped(),
            br"two\ words"
        );
        assert_eq!(
            &*Escaped::new(br"c\=pu", Element::Measurement).unescaped(),
            br"c\=pu"
        );
        assert_eq!(
            &*Escaped::new(br"c\ pu", Element::Measurement).unescaped(),
            b"c pu"
        );
    }

    #[test]
    fn unescaping_into_a_buffer_appends_the_unescaped_value() {
        for (raw, element) in [
            (&br#"a\"b\ c"#[..], Element::Key),
            (br#"a\"b"#, Element::Key),
            (br"two\\ words", Element::Key),
            (br"c\ pu", Element::Measurement),
            (br"c\=pu", Element::Measurement),
            (b"plain", Element::Key),
        ] {
            let e = Escaped::new(raw, element);
            let mut out = b"x".to_vec();
            e.unescape_into(&mut out);
            assert_eq!(out[1..], *e.unescaped(), "{}", raw.escape_ascii());
        }
    }

    #[test]
    fn integers_cover_the_full_range() {
        assert_eq!(parse_signed(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_signed(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_signed(b"9223372036854775808"), None);
        assert_eq!(parse_signed(b"-0"), Some(0));
        assert_eq!(parse_unsigned(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_unsigned(b"18446744073709551616"), None);
    }

    #[test]
    fn floats_parse_every_form_the_grammar_allows() {
        for text in [
            "5.",
            ".5",
            "-.5",
            "1.e3",
            "00.42",
            "1E+3",
            "-0",
            "4.9e-324",
            "1e-400",
            "54.301",
            "-0.0",
            "9007199254740993",
            "9007199254740992",
            ".000000000000001",
            "123456789012345.",
            "0.1",
            "-999999999999999",
            "157.15096249326464",
        ] {
            let std: f64 = text.parse().unwrap();
            assert_eq!(
                parse_float(text.as_bytes()).to_bits(),
                std.to_bits(),
                "{text}"
            );
        }
        assert!(parse_float(b"1e309").is_infinite());
    }

    #[test]
    fn short_floats_round_as_the_standard_library_does() {
        // Seeded: every length up to the fast path's limit, the dot anywhere.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = 1 + (x % 16) as usize;
            let mut text: Vec<u8> = (0..len)
                .map(|k| b'0' + (x >> (4 + k * 3) & 7) as u8 + (k % 3) as u8)
                .collect();
            if x & 1 == 1 {
                text[(x >> 60) as usize % len] = b'.';
            }
            if x & 2 == 2 {
                text.insert(0, b'-');
            }
            let Ok(std) = std::str::from_utf8(&text).unwrap().parse::<f64>() else {
                continue;
            };
            assert_eq!(
                parse_float(&text).to_bits(),
                std.to_bits(),
                "{}",
                text.escape_ascii()
            );
        }
    }

    #[test]
    fn names_compare_equal_only_byte_for_byte() {
        let name = b"network_delays";
        assert!(Escaped::new(name, Element::Measurement).is(name));
        for k in 0..name.len() {
            let mut other = name.to_vec();
            other[k] ^= 1;
            assert!(!Escaped::new(&other, Element::Measurement).is(name), "{k}");
        }
        assert!(!Escaped::new(b"network_delay", Element::Measurement).is(name));
        assert!(Escaped::new(b"cpu", Element::Measurement).is(b"cpu"));
    }

    #[test]
    fn strings_unescape_quote_and_backslash() {
        let v = Value::String(br#"a\\\"b"#);
        assert_eq!(&*v.string().unwrap(), br#"a\"b"#);
    }
}
