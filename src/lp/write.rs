//! The writer: line protocol in the portable subset of RULES.md, which
//! InfluxDB 1.x, Telegraf's parsers and the standard Rust crate all read the
//! same way. Tags are written in the order given (callers sort them), floats
//! in the shortest form that reads back as the same f64, always a timestamp,
//! and `\n` endings.

/// Builds one line into an output buffer.
///
/// ```
/// use e2e_aggregator::lp::write::Line;
/// let mut out = Vec::new();
/// Line::new(&mut out, b"e2e delays")
///     .tag(b"path_ID", b"a,b")
///     .float(b"delay", 1e-7)
///     .unsigned(b"n", 3)
///     .finish(1_700_000_000);
/// assert_eq!(out, b"e2e\\ delays,path_ID=a\\,b delay=1e-7,n=3u 1700000000\n");
/// ```
pub struct Line<'o> {
    out: &'o mut Vec<u8>,
    fields: usize,
}

impl<'o> Line<'o> {
    /// Starts a line with its measurement.
    pub fn new(out: &'o mut Vec<u8>, measurement: &[u8]) -> Self {
        escape::<false>(out, measurement);
        Line { out, fields: 0 }
    }

    /// Continues a line whose measurement and tags are already in `out`:
    /// a copy of what [`Line::new`] and [`Line::tag`] wrote for the same
    /// series earlier (the join prepares a series' text once).
    pub fn after_series(out: &'o mut Vec<u8>) -> Self {
        Line { out, fields: 0 }
    }

    /// Adds a tag; call in key order, before any field.
    pub fn tag(self, key: &[u8], value: &[u8]) -> Self {
        self.out.push(b',');
        escape::<true>(self.out, key);
        self.out.push(b'=');
        escape::<true>(self.out, value);
        self
    }

    fn key(&mut self, key: &[u8]) {
        self.out.push(if self.fields == 0 { b' ' } else { b',' });
        self.fields += 1;
        escape::<true>(self.out, key);
        self.out.push(b'=');
    }

    /// Adds a float field. The caller checks that it is finite: NaN and
    /// infinities have no line-protocol form.
    pub fn float(mut self, key: &[u8], value: f64) -> Self {
        self.key(key);
        float(self.out, value);
        self
    }

    /// [`Line::float`] for a key that needs no escaping (no space, comma
    /// or `=`): one of our own rows' field names, a constant, which is
    /// not scanned again for every row.
    pub fn float_plain_key(self, key: &'static [u8], value: f64) -> Self {
        debug_assert!(!key.iter().any(|b| matches!(b, b' ' | b',' | b'=')));
        let sep = if self.fields == 0 { b' ' } else { b',' };
        self.out.push(sep);
        self.out.extend_from_slice(key);
        self.out.push(b'=');
        float(self.out, value);
        Line {
            out: self.out,
            fields: self.fields + 1,
        }
    }

    /// Adds an unsigned integer field (`u` suffix: read by Telegraf).
    pub fn unsigned(mut self, key: &[u8], value: u64) -> Self {
        self.key(key);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self.out.push(b'u');
        self
    }

    /// Adds a signed integer field.
    pub fn integer(mut self, key: &[u8], value: i64) -> Self {
        self.key(key);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self.out.push(b'i');
        self
    }

    /// Adds a boolean field.
    pub fn boolean(mut self, key: &[u8], value: bool) -> Self {
        self.key(key);
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
        self
    }

    /// Adds a string field, escaping exactly `"` and `\`.
    pub fn string(mut self, key: &[u8], value: &[u8]) -> Self {
        self.key(key);
        self.out.push(b'"');
        for &b in value {
            if b == b'"' || b == b'\\' {
                self.out.push(b'\\');
            }
            self.out.push(b);
        }
        self.out.push(b'"');
        self
    }

    /// Ends the line with its timestamp.
    pub fn finish(self, timestamp: i64) {
        debug_assert!(self.fields > 0, "a line needs a field");
        self.out.push(b' ');
        self.out
            .extend_from_slice(itoa::Buffer::new().format(timestamp).as_bytes());
        self.out.push(b'\n');
    }
}

/// Appends the shortest text that reads back as `value`, as the `ryu`
/// crate writes it (`10.0`, `0.1`, `1e-7`, `1.5e300`): the digits from
/// `zmij` (Schubfach, about half ryu's instructions on 17-digit means,
/// and the same digits and notation as ryu for every f64), whose one
/// difference, the `+` of a positive exponent (`1.5e+300`), is dropped.
/// A positive exponent is written only from `e+16` on (ryu and zmij write
/// smaller numbers out), so the `+` can only stand 3 or 4 bytes from the
/// end. The property test `floats_are_written_as_ryu_writes_them` holds it
/// to ryu.
#[inline]
fn float(out: &mut Vec<u8>, value: f64) {
    debug_assert!(value.is_finite());
    let mut buf = zmij::Buffer::new();
    let text = buf.format_finite(value).as_bytes();
    let n = text.len();
    match n.checked_sub(4) {
        Some(k) if text[k] == b'+' => {
            out.extend_from_slice(&text[..k]);
            out.extend_from_slice(&text[k + 1..]);
        }
        Some(k) if text[k + 1] == b'+' => {
            out.extend_from_slice(&text[..k + 1]);
            out.extend_from_slice(&text[k + 2..]);
        }
        _ => out.extend_from_slice(text),
    }
}

/// Escapes space and comma, and `=` too in keys and tag values.
fn escape<const EQUALS: bool>(out: &mut Vec<u8>, text: &[u8]) {
    let special = |b: u8| b == b' ' || b == b',' || (EQUALS && b == b'=');
    if !text.iter().any(|&b| special(b)) {
        out.extend_from_slice(text);
        return;
    }
    for &b in text {
        if special(b) {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// Whether a measurement, tag key or tag value can be written in the
/// portable subset: non-empty valid UTF-8 with no backslash (read
/// differently by InfluxDB, Telegraf and the Rust crate) and no control
/// character. Field keys and measurement of our own rows are constants.
pub fn is_portable(text: &[u8]) -> bool {
    // Printable ASCII without a backslash is the common case: no decoding.
    let plain = |b: &u8| (0x20..0x7f).contains(b) && *b != b'\\';
    if !text.is_empty() && text.iter().all(plain) {
        return true;
    }
    !text.is_empty()
        && std::str::from_utf8(text).is_ok_and(|s| !s.chars().any(|c| c == '\\' || c.is_control()))
}

/// Whether a measurement name can be written: portable, and not starting
/// with `#`, which would make the line a comment.
pub fn is_portable_measurement(name: &[u8]) -> bool {
    is_portable(name) && name[0] != b'#'
}

/// InfluxDB refuses a series key (measurement and tags) that, with a field
/// key, reaches 64 KiB.
pub const MAX_SERIES_KEY: usize = 65535;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_take_the_shortest_round_trip_form() {
        let mut out = Vec::new();
        Line::new(&mut out, b"m")
            .float(b"a", 10.0)
            .float(b"b", 0.1)
            .float(b"c", 1.5e300)
            .float(b"d", -0.0)
            .finish(-5);
        assert_eq!(out, b"m a=10.0,b=0.1,c=1.5e300,d=-0.0 -5\n");
    }

    /// The text of `value` as [`Line::float`] writes it.
    fn written(value: f64) -> String {
        let mut out = Vec::new();
        float(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_are_written_as_ryu_writes_them() {
        let mut ryu = ryu::Buffer::new();
        for f in [
            0.0,
            -0.0,
            1.0,
            10.0,
            0.1,
            1e-7,
            1.5e300,
            1e16,
            1e15,
            9.999e15,
            1e-5,
            1e-6,
            5e-324,
            -5e-324,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            1e21,
            1e100,
            1.2e-100,
            123456789012345680.0,
            18.686937829828423,
            1605114.8,
        ] {
            assert_eq!(written(f), ryu.format_finite(f), "{f:e}");
        }
        // Seeded: every exponent, and means of the magnitudes rows carry.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..300_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = match x & 3 {
                0 => f64::from_bits(x >> 1),
                1 => f64::from_bits(x),
                _ => (x >> 11) as f64 / (1u64 << ((x >> 3) % 60)) as f64,
            };
            if f.is_finite() {
                assert_eq!(written(f), ryu.format_finite(f), "{:#x}", f.to_bits());
            }
        }
    }

    #[test]
    fn plain_keys_are_written_as_escaped_ones() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        Line::new(&mut a, b"m")
            .float(b"delay_forward", 1.5)
            .float(b"x", 2e20)
            .finish(1);
        Line::new(&mut b, b"m")
            .float_plain_key(b"delay_forward", 1.5)
            .float_plain_key(b"x", 2e20)
            .finish(1);
        assert_eq!(a, b);
        assert_eq!(a, b"m delay_forward=1.5,x=2e20 1\n");
    }

    #[test]
    fn strings_escape_quote_and_backslash_only() {
        let mut out = Vec::new();
        Line::new(&mut out, b"m")
            .string(b"s", b"a\"b\\c\nd")
            .finish(0);
        assert_eq!(out, b"m s=\"a\\\"b\\\\c\nd\" 0\n");
    }

    #[test]
    fn portable_text_excludes_backslash_controls_and_bad_utf8() {
        assert!(is_portable("sfr-01 (primary)=x,y".as_bytes()));
        assert!(!is_portable(b"a\\b"));
        assert!(!is_portable(b"a\tb"));
        assert!(!is_portable(b"\xff"));
        assert!(!is_portable(b""));
        assert!(is_portable(b"#x") && !is_portable_measurement(b"#x"));
    }
}
