//! Durations written as Telegraf writes its own: Go's `time.ParseDuration`
//! syntax (`500ms`, `5s`, `1m30s`, `1.5h`, `24h`).
//!
//! Hand-written on purpose: the Rust crates for human durations read a
//! different language (`humantime` rejects `1.5s` and accepts `1 day`), and
//! an operator copies these values between `telegraf.conf` settings.

use std::fmt;
use std::str::FromStr;

/// A non-negative duration in nanoseconds, within `i64` like Go's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Duration(u64);

impl Duration {
    /// A duration of `ns` nanoseconds.
    pub const fn from_nanos(ns: u64) -> Self {
        Duration(ns)
    }

    /// The duration in nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The duration in nanoseconds as a signed value (always fits).
    pub const fn as_nanos_i64(self) -> i64 {
        self.0 as i64
    }

    /// Whether this is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// As a std duration, for timers.
    pub const fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0)
    }
}

/// Why a duration did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DurationError {}

const UNITS: &[(&str, u64)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| DurationError(format!("invalid duration {text:?}: {why}"));
        let s = text.strip_prefix('+').unwrap_or(text);
        if let Some(abs) = s.strip_prefix('-') {
            let d: Duration = abs.parse().map_err(|_| bad("must not be negative"))?;
            return if d.is_zero() {
                Ok(d)
            } else {
                Err(bad("must not be negative"))
            };
        }
        if s == "0" {
            return Ok(Duration(0));
        }
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let mut rest = s;
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
            let (int, after) = rest.split_at(int_len);
            let (frac, after) = match after.strip_prefix('.') {
                Some(a) => {
                    let n = a.bytes().take_while(u8::is_ascii_digit).count();
                    a.split_at(n)
                }
                None => ("", after),
            };
            if int.is_empty() && frac.is_empty() {
                return Err(bad("expected a number"));
            }
            let unit_len = after
                .char_indices()
                .find(|&(_, c)| c.is_ascii_digit() || c == '.')
                .map_or(after.len(), |(i, _)| i);
            let (unit, after) = after.split_at(unit_len);
            let Some(&(_, scale)) = UNITS.iter().find(|(u, _)| *u == unit) else {
                return Err(if unit.is_empty() {
                    bad("missing unit (ns, us, ms, s, m, h)")
                } else {
                    bad(&format!("unknown unit {unit:?} (ns, us, ms, s, m, h)"))
                });
            };
            let whole: u128 = if int.is_empty() {
                0
            } else {
                int.parse().map_err(|_| bad("too large"))?
            };
            let mut part = whole
                .checked_mul(u128::from(scale))
                .ok_or(bad("too large"))?;
            // Fractions are exact to the nanosecond, truncated as Go does.
            let mut unit_scale = u128::from(scale);
            for d in frac.bytes().take(30) {
                unit_scale /= 10;
                part += u128::from(d - b'0') * unit_scale;
            }
            total = total.checked_add(part).ok_or(bad("too large"))?;
            if total > i64::MAX as u128 {
                return Err(bad("too large"));
            }
            rest = after;
        }
        Ok(Duration(total as u64))
    }
}

impl fmt::Display for Duration {
    /// Writes what Go's `time.Duration.String()` writes, so that a value
    /// reads the same in our messages and in Telegraf's: `0s`, `1.5s`,
    /// `1m30s`, `24h0m0s`, `7.500000001s`; under a second, the largest unit
    /// below it with a fraction (`2µs` with U+00B5, `1.5ms`, `999ns`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SECOND: u64 = 1_000_000_000;
        let ns = self.0;
        if ns == 0 {
            return f.write_str("0s");
        }
        if ns < SECOND {
            let (scale, unit) = match ns {
                0..1_000 => (1, "ns"),
                1_000..1_000_000 => (1_000, "\u{b5}s"),
                _ => (1_000_000, "ms"),
            };
            write_decimal(f, ns, scale)?;
            return f.write_str(unit);
        }
        let (hours, minutes) = (ns / (3600 * SECOND), ns / (60 * SECOND) % 60);
        if hours > 0 {
            write!(f, "{hours}h")?;
        }
        if hours > 0 || minutes > 0 {
            write!(f, "{minutes}m")?;
        }
        write_decimal(f, ns % (60 * SECOND), SECOND)?;
        f.write_str("s")
    }
}

/// Writes `value / scale` (`scale` a power of ten) exactly, without
/// trailing zeros in the fraction, as Go's `fmtFrac` does.
fn write_decimal(f: &mut fmt::Formatter<'_>, value: u64, scale: u64) -> fmt::Result {
    write!(f, "{}", value / scale)?;
    let frac = value % scale;
    if frac == 0 {
        return Ok(());
    }
    let digits = format!("{frac:0width$}", width = scale.ilog10() as usize);
    write!(f, ".{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> u64 {
        s.parse::<Duration>().unwrap().as_nanos()
    }

    #[test]
    fn reads_go_syntax() {
        assert_eq!(ns("500ms"), 500_000_000);
        assert_eq!(ns("5s"), 5_000_000_000);
        assert_eq!(ns("1m30s"), 90_000_000_000);
        assert_eq!(ns("1.5h"), 5_400_000_000_000);
        assert_eq!(ns("24h"), 86_400_000_000_000);
        assert_eq!(ns("1us"), 1_000);
        assert_eq!(ns("1µs"), 1_000);
        assert_eq!(ns(".5s"), 500_000_000);
        assert_eq!(ns("0"), 0);
        assert_eq!(ns("1h2m3s4ms5us6ns"), 3_723_004_005_006);
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in ["", "5", "s", "5 s", "5x", "-1s", "1e3s", "3000000h", ".s"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad:?} parsed");
        }
    }

    /// Go's `time.Duration.String()` for each value (checked with Go 1.22:
    /// `fmt.Println(time.Duration(ns))`).
    #[test]
    fn displays_as_go_does() {
        for (ns, go) in [
            (0, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (1_000, "1\u{b5}s"),
            (2_000, "2\u{b5}s"),
            (1_500, "1.5\u{b5}s"),
            (1_000_001, "1.000001ms"),
            (1_500_000, "1.5ms"),
            (500_000_000, "500ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (7_500_000_001, "7.500000001s"),
            (60_000_000_000, "1m0s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_004_005_006, "1h2m3.004005006s"),
            (86_400_000_000_000, "24h0m0s"),
            (i64::MAX as u64, "2562047h47m16.854775807s"),
        ] {
            assert_eq!(Duration::from_nanos(ns).to_string(), go, "{ns} ns");
        }
    }

    /// Regression: `2µs` was written with U+03BC (Greek mu) instead of
    /// Go's U+00B5 (micro sign), because the check for the micro spellings
    /// compared their length in bytes (3) with 2.
    #[test]
    fn micro_sign_is_u00b5() {
        let text = Duration::from_nanos(2_000).to_string();
        assert_eq!(text.as_bytes(), b"2\xc2\xb5s", "{text:?}");
    }

    #[test]
    fn every_text_reads_back_as_the_same_duration() {
        for ns in [
            1,
            999,
            1_000,
            1_500,
            2_000_000,
            7_500_000_001,
            86_400_000_000_000,
        ] {
            let d = Duration::from_nanos(ns);
            assert_eq!(d.to_string().parse::<Duration>(), Ok(d), "{d}");
        }
    }
}
