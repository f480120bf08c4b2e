//! The table-driven, word-at-a-time scans behind the grammar's fast paths.
//!
//! Each answers one question about a run of bytes (where the plain bytes of
//! an element end, where the digits end, what eight digits are worth) one
//! table lookup per byte, or eight bytes per step where a word test can
//! rule a whole word out. They know nothing of the grammar: the fast paths
//! in [`super::grammar`] use them, and the differential tests
//! (`tests/lp_differential.rs`, `fuzz/fuzz_targets/differential.rs`) check
//! that those fast paths read every input as the general grammar does.

/// Byte classes, one table lookup per byte.
pub(crate) const WS: u8 = 1; // separator whitespace: space, TAB, VT, FF
pub(crate) const MEAS_STOP: u8 = 2; // ends a run of plain measurement bytes
pub(crate) const KEY_STOP: u8 = 4; // ends a run of plain tag/field-key bytes
pub(crate) const CTL_NL: u8 = 8; // may not follow a backslash: TAB, LF, VT, FF, CR

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

/// Whether `b` is in `class`.
#[inline]
pub(crate) fn is(b: u8, class: u8) -> bool {
    CLASS[b as usize] & class != 0
}

/// Eight bytes at `p`, first byte lowest.
#[inline(always)]
pub(crate) fn word(i: &[u8], p: usize) -> u64 {
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
pub(crate) fn find_class<const CLASS: u8>(i: &[u8], mut p: usize) -> usize {
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
pub(crate) fn digits_end(i: &[u8], mut p: usize) -> usize {
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
pub(crate) fn eight_digits(w: u64) -> u64 {
    let w = w.wrapping_sub(u64::from_le_bytes([b'0'; 8]));
    let w = (w.wrapping_mul(10) + (w >> 8)) & 0x00ff_00ff_00ff_00ff;
    let w = (w.wrapping_mul(100) + (w >> 16)) & 0x0000_ffff_0000_ffff;
    (w.wrapping_mul(10_000) + (w >> 32)) & 0xffff_ffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_at_a_time_helpers_agree_with_bytes() {
        assert_eq!(eight_digits(word(b"12345678", 0)), 12_345_678);
        assert_eq!(eight_digits(word(b"00000009", 0)), 9);
        assert_eq!(digits_end(b"123456789012x", 0), 12);
        assert_eq!(digits_end(b"1234567\xfa9", 0), 7);
        assert_eq!(find_class::<KEY_STOP>(b"abcdefgh\x01ij=k", 0), 11);
        assert_eq!(find_class::<MEAS_STOP>(b"abcdefgh\x01ij=k l", 0), 13);
    }

    #[test]
    fn the_table_and_the_word_scan_stop_at_the_same_byte() {
        // Every byte value, at every position of a 17-byte run.
        for b in 0..=255u8 {
            for at in 0..17 {
                let mut run = vec![b'a'; 17];
                run[at] = b;
                let key = if is(b, KEY_STOP) { at } else { 17 };
                let meas = if is(b, MEAS_STOP) { at } else { 17 };
                assert_eq!(find_class::<KEY_STOP>(&run, 0), key, "{b:#x} at {at}");
                assert_eq!(find_class::<MEAS_STOP>(&run, 0), meas, "{b:#x} at {at}");
            }
        }
    }
}
