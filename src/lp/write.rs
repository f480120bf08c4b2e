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
        debug_assert!(value.is_finite());
        self.key(key);
        self.out
            .extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
        self
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
