//! Fast path for a plain point that is only validated (a line passed
//! through, not reported to the visitor): the rest of the line after the
//! measurement holds no quote, and no backslash but in a tag key or value
//! (nearly every line Telegraf writes), ends with a line feed, and has its
//! sections separated by single bytes: spaces, commas and `=`.
//!
//! One pass builds a bit mask of the line's structural bytes (space, comma,
//! `=`, backslash, quote and the control bytes TAB..CR, the line feed among
//! them), sixteen bytes a step with SSE2, and walks it: each element is the
//! span between two set bits, found with a `trailing_zeros`, not byte by
//! byte, and the line's end is the first line feed the walk meets, with no
//! search for it first. Numbers and the timestamp are checked by the
//! grammar's own leaf fast paths. On any line that is not plain, or not
//! valid, it gives up and [`super::grammar`]'s `scan_point` reads on from
//! the measurement's end. Proven equivalent by `tests/lp_differential.rs`
//! and the `differential` fuzz target, which compare it (as part of
//! [`super::Path::Fast`]) with the general grammar.
//!
//! A point whose parts are wanted (a delay point) is read by the grammar's
//! fast path instead: a walk like this one that kept the parts' spans and
//! reported them once the line was validated cost about 4 % more
//! instructions on delay lines, whose elements are short
//! (`docs/performance.md`).

use super::grammar::{scan_number, scan_timestamp};

/// What follows a plain record, its line ending's length and its
/// timestamp.
type Read<'a> = (&'a [u8], usize, Option<i64>);

/// Validates the plain point at the start of `i` from the end of its
/// measurement at `p` to its line feed, as the grammar would. Returns what
/// follows the record, its line ending's length and its timestamp, or
/// `None` to have the grammar read on from `p`. The line's end is a
/// structural byte like any other (LF, or CR before LF).
///
/// Not inlined: kept out of the record parser, the pass-through path and
/// the delay points' path no longer share one function's registers and
/// layout, and each costs fewer instructions (`docs/performance.md`).
#[inline(never)]
pub(super) fn rest(i: &[u8], p: usize) -> Option<Read<'_>> {
    let mut s = Structural::new(i, p);
    let (end, ts) = validate(i, &mut s, p)?;
    match (i.get(end), i.get(end + 1)) {
        (Some(b'\n'), _) => Some((&i[end + 1..], 1, ts)),
        (Some(b'\r'), Some(b'\n')) => Some((&i[end + 2..], 2, ts)),
        _ => None,
    }
}

/// Whether `b` ends a line: its line feed, or a CR (which must come before
/// one).
#[inline(always)]
fn is_end(b: Option<&u8>) -> bool {
    matches!(b, Some(b'\n' | b'\r'))
}

/// Validates the point at the start of `line` (the input from its start)
/// from the end of its measurement at `p` (`s` past it) and returns where
/// its line ending starts and its timestamp; `None` where the grammar must
/// decide.
#[inline(always)]
fn validate(line: &[u8], s: &mut Structural<'_>, mut p: usize) -> Option<(usize, Option<i64>)> {
    let len = line.len();
    while line.get(p) == Some(&b',') {
        let k = tag_part(line, s)?;
        if k == p + 1 || line.get(k) != Some(&b'=') {
            return None;
        }
        let e = tag_part(line, s)?;
        if e == k + 1 || !matches!(line.get(e), Some(b',' | b' ')) {
            return None;
        }
        p = e;
    }
    if line.get(p) != Some(&b' ') {
        return None;
    }
    // The fields, after one or more spaces.
    let mut start = p + 1;
    let mut q = s.next();
    while q == start && line.get(q) == Some(&b' ') {
        start += 1;
        q = s.next();
    }
    loop {
        if q == start || line.get(q) != Some(&b'=') {
            return None;
        }
        let at = q + 1;
        match line.get(at) {
            Some(b'-' | b'.' | b'0'..=b'9') => {
                let (rest, _) = scan_number(&line[at..])?;
                q = s.next();
                if q != len - rest.len() {
                    return None;
                }
            }
            Some(b't' | b'T' | b'f' | b'F') => {
                q = s.next();
                if !is_boolean(&line[at..q]) {
                    return None;
                }
            }
            _ => return None,
        }
        match line.get(q) {
            Some(b',') => {
                start = q + 1;
                q = s.next();
            }
            Some(b' ') => break,
            end if is_end(end) => return Some((q, None)),
            _ => return None,
        }
    }
    // Then: spaces, a timestamp, spaces, in plain bytes.
    let spaces = |mut r: usize| {
        while line.get(r) == Some(&b' ') {
            r += 1;
        }
        r
    };
    let r = spaces(q);
    if is_end(line.get(r)) {
        return Some((r, None));
    }
    if !matches!(line.get(r), Some(b'-' | b'0'..=b'9')) {
        return None;
    }
    let (rest, ts) = scan_timestamp(&line[r..])?;
    let e = spaces(len - rest.len());
    is_end(line.get(e)).then_some((e, Some(ts)))
}

/// The end of a tag key or value whose first byte follows the last
/// structural byte taken from `s`. A backslash escapes the byte after it,
/// any but TAB..CR, as in the grammar's tag rule: `\\` is one backslash,
/// and the second starts the next escape.
#[inline(always)]
fn tag_part(line: &[u8], s: &mut Structural<'_>) -> Option<usize> {
    loop {
        let q = s.next();
        if line.get(q) != Some(&b'\\') {
            return Some(q);
        }
        match line.get(q + 1)? {
            b'\t'..=b'\r' => return None,
            // A structural byte escaped is plain: skip its bit.
            b' ' | b',' | b'=' | b'"' => {
                s.next();
            }
            // A backslash's bit is the next one taken; any other byte has none.
            _ => {}
        }
    }
}

/// Whether `text` is a boolean in one of the grammar's ten forms.
#[inline(always)]
fn is_boolean(text: &[u8]) -> bool {
    matches!(
        text,
        b"t" | b"T" | b"true" | b"True" | b"TRUE" | b"f" | b"F" | b"false" | b"False" | b"FALSE"
    )
}

/// The structural bytes of the input from a line's start, in order: a
/// 64-byte block's bit mask at a time, computed as the walk reaches it.
struct Structural<'a> {
    /// The input from the line's start: loads may run past the line.
    buf: &'a [u8],
    /// Where the current block starts.
    base: usize,
    /// Its structural bytes not yet taken.
    mask: u64,
}

impl<'a> Structural<'a> {
    /// The structural bytes of `buf` after `from`.
    #[inline(always)]
    fn new(buf: &'a [u8], from: usize) -> Self {
        Structural {
            buf,
            base: from,
            mask: block(buf, from) & !1,
        }
    }

    /// The next structural byte's position, or the input's length.
    #[inline(always)]
    fn next(&mut self) -> usize {
        loop {
            if self.mask != 0 {
                let at = self.base + self.mask.trailing_zeros() as usize;
                self.mask &= self.mask - 1;
                return at.min(self.buf.len());
            }
            if self.base + 64 >= self.buf.len() {
                return self.buf.len();
            }
            self.base += 64;
            self.mask = block(self.buf, self.base);
        }
    }
}

/// Whether `b` is structural: what ends a plain run of a key or value,
/// or may not stand in a plain line.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
fn structural(b: u8) -> bool {
    matches!(b, b' ' | b',' | b'=' | b'\\' | b'"' | b'\t'..=b'\r')
}

/// The structural bytes of `buf[at..at + 64]` as bits, the first lowest;
/// bytes past the end of `buf` count as plain.
#[inline(always)]
fn block(buf: &[u8], at: usize) -> u64 {
    match buf.get(at..at + 64) {
        Some(b) => block64(b.try_into().expect("64 bytes")),
        None => {
            let mut pad = [0u8; 64];
            let tail = &buf[at.min(buf.len())..];
            pad[..tail.len()].copy_from_slice(tail);
            block64(&pad)
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn block64(b: &[u8; 64]) -> u64 {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of x86_64; each load reads 16 of the 64 bytes.
    unsafe {
        let splat = |c: u8| _mm_set1_epi8(c as i8);
        let sixteen = |k: usize| {
            let x = _mm_loadu_si128(b.as_ptr().add(16 * k).cast());
            // TAB..CR: x - 9 is at most 4, unsigned.
            let t = _mm_sub_epi8(x, splat(b'\t'));
            let ctl = _mm_cmpeq_epi8(_mm_min_epu8(t, splat(4)), t);
            let sep = _mm_or_si128(
                _mm_or_si128(
                    _mm_cmpeq_epi8(x, splat(b' ')),
                    _mm_cmpeq_epi8(x, splat(b',')),
                ),
                _mm_or_si128(
                    _mm_cmpeq_epi8(x, splat(b'=')),
                    _mm_or_si128(
                        _mm_cmpeq_epi8(x, splat(b'\\')),
                        _mm_cmpeq_epi8(x, splat(b'"')),
                    ),
                ),
            );
            u64::from(_mm_movemask_epi8(_mm_or_si128(sep, ctl)) as u16)
        };
        sixteen(0) | sixteen(1) << 16 | sixteen(2) << 32 | sixteen(3) << 48
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn block64(b: &[u8; 64]) -> u64 {
    b.iter()
        .rev()
        .fold(0, |m, &c| m << 1 | u64::from(structural(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mask_marks_exactly_the_structural_bytes() {
        for c in 0..=255u8 {
            for at in [0, 15, 16, 40, 63] {
                let mut b = [b'a'; 64];
                b[at] = c;
                let want = if structural(c) { 1u64 << at } else { 0 };
                assert_eq!(block64(&b), want, "{c:#x} at {at}");
            }
        }
    }

    #[test]
    fn plain_lines_are_read_and_others_left_to_the_grammar() {
        // `p`: where the measurement ends.
        let read = |s: &str, p: usize| rest(s.as_bytes(), p).map(|(r, e, ts)| (r.len(), e, ts));
        assert_eq!(read("m,t=v f=1i,g=T 12\r\nx", 1), Some((1, 2, Some(12))));
        assert_eq!(read("m=x  f=-1.5e3  \n", 3), Some((0, 1, None)));
        assert_eq!(read("m\\ x f=1\n", 4), Some((0, 1, None)));
        assert_eq!(read("m f=1", 1), None, "no line feed yet");
        assert_eq!(read("m f=\"s\"\n", 1), None);
        assert_eq!(read("m f=1\t2\n", 1), None);
        assert_eq!(read("m f=tr\n", 1), None);
        assert_eq!(read("m f=1 2 3\n", 1), None);
        assert_eq!(read("m\n", 1), None);
    }

    #[test]
    fn escapes_in_tags_are_read_and_line_ends_found_by_the_walk() {
        let read = |s: &str, p: usize| rest(s.as_bytes(), p).map(|(r, e, ts)| (r.len(), e, ts));
        // Escaped structural bytes in a tag key and value; `\\ ` is an
        // escaped backslash's successor read afresh: an escaped space.
        assert_eq!(read("m,a\\=b=c\\,d\\ e f=1 5\nx", 1), Some((1, 1, Some(5))));
        assert_eq!(read("m,t=a\\\\ b f=1\n", 1), Some((0, 1, None)));
        assert_eq!(read("m,t=a\\\"b f=1\n", 1), Some((0, 1, None)));
        assert_eq!(read("m,t=a\\x f=1\n", 1), Some((0, 1, None)));
        // An escape of a control byte, a bare quote, an escape in a field key.
        assert_eq!(read("m,t=a\\\tb f=1\n", 1), None);
        assert_eq!(read("m,t=a\"b f=1\n", 1), None);
        assert_eq!(read("m f\\ g=1\n", 1), None);
        // Line ends: CR LF, a bare CR, the end of the input.
        assert_eq!(read("m f=1\r\n", 1), Some((0, 2, None)));
        assert_eq!(read("m f=1 7 \r\n", 1), Some((0, 2, Some(7))));
        assert_eq!(read("m f=1\rx\n", 1), None);
        assert_eq!(read("m f=1 7", 1), None);
        assert_eq!(read("m,t=v f=1", 1), None);
    }
}
