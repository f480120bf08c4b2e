//! stderr logging the way Telegraf reads a processor's stderr: one line per
//! message, prefixed `E! `, `W! `, `I! `, `D! ` or `T! `, and never longer
//! than 1 KiB (Telegraf stops reading stderr for good after a 64 KiB line,
//! and the processor then blocks). Plus [`Warnings`]: every warning that
//! input can repeat without end, rate-limited, some once per subject.

use std::io::Write;
use std::time::Instant;

use crate::lp::{ErrorKind, ParseError};
use crate::schema::Kind;
use crate::stats::SkipReason;

/// The longest line written to stderr, prefix and newline included.
pub const MAX_LINE: usize = 1024;

/// Writes `log` records to stderr with Telegraf's level prefixes.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let prefix = match record.level() {
            log::Level::Error => "E! ",
            log::Level::Warn => "W! ",
            log::Level::Info => "I! ",
            log::Level::Debug => "D! ",
            log::Level::Trace => "T! ",
        };
        let line = format_line(prefix, &record.args().to_string());
        // One write per line so that lines from threads never interleave.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

/// One stderr line: no raw line breaks, cut to [`MAX_LINE`] on a character
/// boundary.
pub fn format_line(prefix: &str, message: &str) -> String {
    let mut line = String::with_capacity(prefix.len() + message.len() + 1);
    line.push_str(prefix);
    for c in message.chars() {
        match c {
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            c => line.push(c),
        }
    }
    const MARK: &str = " [...]";
    if line.len() + 1 > MAX_LINE {
        let mut cut = MAX_LINE - 1 - MARK.len();
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str(MARK);
    }
    line.push('\n');
    line
}

/// Installs the logger. Later calls have no effect.
pub fn init(level: log::LevelFilter) {
    if log::set_logger(&StderrLogger).is_ok() {
        log::set_max_level(level);
    }
}

/// At most `burst` messages at once, then one per `every`; says how many
/// were held back when it lets the next one through.
#[derive(Debug)]
pub struct RateLimit {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Option<Instant>,
    suppressed: u64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::new(10, 1.0)
    }
}

impl RateLimit {
    /// `burst` messages at once, `per_second` after that.
    pub fn new(burst: u32, per_second: f64) -> Self {
        RateLimit {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            per_second,
            last: None,
            suppressed: 0,
        }
    }

    /// Whether to log now. `Some(n)`: log, and say that `n` similar
    /// messages were suppressed before it (when n > 0).
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + refill).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }

    /// [`RateLimit::allow`] for a message at `level`: a level that is not
    /// shown is neither logged nor counted as suppressed, so the count
    /// announced at the end is of messages the reader would have seen.
    pub fn allow_at(&mut self, level: log::Level, now: Instant) -> Option<u64> {
        if level > log::max_level() {
            return None;
        }
        self.allow(now)
    }

    /// Messages held back and not yet announced.
    pub fn pending(&self) -> u64 {
        self.suppressed
    }
}

/// Remembers the subjects already warned about, so that a warning is given
/// once per subject (a series, a measurement). It keeps a 64-bit hash of
/// each, not the subject (a series key can be as long as
/// `--max-line-size`): at most [`ONCE_CAP`] hashes, about 150 KiB however
/// long the keys. Past the cap, new subjects are no longer remembered and
/// only the rate limit holds their warnings back. Two subjects whose
/// hashes collide (odds about 1 in 10^11 at the cap) share one warning.
#[derive(Debug)]
pub struct Once {
    seen: foldhash::HashSet<u64>,
    hasher: foldhash::fast::RandomState,
    cap: usize,
}

/// How many subjects [`Once`] remembers.
pub const ONCE_CAP: usize = 10_000;

impl Default for Once {
    fn default() -> Self {
        Once::with_cap(ONCE_CAP)
    }
}

impl Once {
    fn with_cap(cap: usize) -> Once {
        Once {
            seen: foldhash::HashSet::default(),
            hasher: foldhash::fast::RandomState::default(),
            cap,
        }
    }

    /// Whether `subject` has not been warned about yet.
    pub fn first(&mut self, subject: &[u8]) -> bool {
        let hash = std::hash::BuildHasher::hash_one(&self.hasher, subject);
        if self.seen.contains(&hash) {
            return false;
        }
        if self.seen.len() < self.cap {
            self.seen.insert(hash);
        }
        true
    }
}

/// The suffix announcing suppressed messages, empty when there were none.
pub fn suppressed_note(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} similar messages suppressed)")
    }
}

/// The warnings that input can repeat without end, each with its own
/// rate limit, and the subjects already warned about where a warning is
/// due once per series or measurement. One method per event; the engine
/// says what happened, this says it on stderr.
#[derive(Debug, Default)]
pub struct Warnings {
    once: Once,
    invalid: RateLimit,
    missing_tag: RateLimit,
    non_numeric: RateLimit,
    skipped: RateLimit,
    late: RateLimit,
    unwritable: RateLimit,
}

impl Warnings {
    /// An invalid record starting on `line`; `text` is what was skipped
    /// (at most 200 bytes of it are quoted).
    pub fn invalid(&mut self, line: u64, err: ParseError, text: &[u8], max_line: usize) {
        let Some(n) = self.invalid.allow_at(log::Level::Warn, Instant::now()) else {
            return;
        };
        let shown = &text[..text.len().min(200)];
        let shown = shown.strip_suffix(b"\n").unwrap_or(shown);
        let limit = match err.kind {
            ErrorKind::TooLong => format!(" ({max_line} bytes)"),
            _ => String::new(),
        };
        log::warn!(
            "invalid line {line}: {err}{limit}: \"{}\"{}{}",
            shown.escape_ascii(),
            if text.len() > 200 { "..." } else { "" },
            suppressed_note(n)
        );
    }

    /// An averaged field of the series `series` holds a bool or string;
    /// warned once per series and field.
    pub fn non_numeric(&mut self, line: u64, kind: Kind, slot: usize, series: &[u8]) {
        let subject = [&[b'n', kind as u8, slot as u8][..], series].concat();
        if !self.once.first(&subject) {
            return;
        }
        if let Some(n) = self.non_numeric.allow_at(log::Level::Warn, Instant::now()) {
            log::warn!(
                "line {line}: field {} is not a number: ignored{}",
                String::from_utf8_lossy(kind.fields()[slot]),
                suppressed_note(n)
            );
        }
    }

    /// A delay point of `measurement` lacks the key tags in the bit set
    /// `missing`; warned once per measurement.
    pub fn missing_tag(&mut self, line: u64, kind: Kind, measurement: &[u8], missing: u8) {
        if !self.once.first(&[b'm', kind as u8]) {
            return;
        }
        let Some(n) = self.missing_tag.allow_at(log::Level::Warn, Instant::now()) else {
            return;
        };
        let names = kind
            .key_tags()
            .iter()
            .enumerate()
            .filter(|(i, _)| missing & (1 << i) != 0)
            .map(|(_, n)| String::from_utf8_lossy(n))
            .collect::<Vec<_>>()
            .join(", ");
        log::warn!(
            "line {line}: {} point without tag {names}: not aggregated{}",
            String::from_utf8_lossy(measurement),
            suppressed_note(n)
        );
    }

    /// A valid delay point not aggregated for `reason` (other than a
    /// missing tag or no number, which have their own warnings).
    pub fn skipped(&mut self, line: u64, reason: SkipReason) {
        let Some(n) = self.skipped.allow_at(log::Level::Warn, Instant::now()) else {
            return;
        };
        let why = match reason {
            SkipReason::MaxSeries => "--max-series reached",
            SkipReason::Future => "stamped more than --max-future ahead of the clock",
            SkipReason::OutOfRange => "its window lies outside InfluxDB's time range",
            SkipReason::NoTimestamp => "no timestamp in a replay",
            SkipReason::MissingTag | SkipReason::NoNumericField => reason.name(),
        };
        log::warn!(
            "line {line}: delay point not aggregated: {why}{}",
            suppressed_note(n)
        );
    }

    /// A late point (debug level).
    pub fn late(&mut self, line: u64) {
        if let Some(n) = self.late.allow_at(log::Level::Debug, Instant::now()) {
            log::debug!(
                "late point on line {line}: its window has closed{}",
                suppressed_note(n)
            );
        }
    }

    /// A row that cannot be written; warned once per forward series.
    pub fn unwritable(&mut self, series: &str, start: i64, reason: &str) {
        let subject = [b"u", series.as_bytes()].concat();
        if !self.once.first(&subject) {
            return;
        }
        if let Some(n) = self.unwritable.allow_at(log::Level::Warn, Instant::now()) {
            log::warn!(
                "row for {series} at {start} not written: {reason}{}",
                suppressed_note(n)
            );
        }
    }

    /// A point came `lateness` ns behind the newest: within 10 % of the
    /// grace, or past it. Given once per process (the engine asks once),
    /// with the grace `analyze` would suggest for what was seen so far.
    pub fn grace_headroom(&mut self, line: u64, lateness: u64, grace: i64, suggested: i128) {
        let go = |ns: i128| {
            let shown = crate::duration::Duration::from_nanos(ns.clamp(0, i64::MAX.into()) as u64);
            if ns > i64::MAX.into() {
                format!("at least {shown}")
            } else {
                shown.to_string()
            }
        };
        let (came, grace_text) = (go(lateness.into()), go(grace.into()));
        let room = i128::from(grace) - i128::from(lateness);
        let how = if room > 0 {
            format!(
                "leaving --grace {grace_text} only {} of headroom (under 10 %)",
                go(room)
            )
        } else {
            format!("--grace {grace_text} or more")
        };
        log::warn!(
            "line {line}: a delay point came {came} behind the newest, {how}; for what was seen so far, analyze would suggest --grace {}",
            go(suggested)
        );
    }

    /// Warnings held back by rate limits and not yet announced.
    pub fn suppressed(&self) -> u64 {
        [
            &self.invalid,
            &self.missing_tag,
            &self.non_numeric,
            &self.skipped,
            &self.late,
            &self.unwritable,
        ]
        .iter()
        .map(|r| r.pending())
        .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lines_are_capped_and_single() {
        let line = format_line("W! ", &"é".repeat(2000));
        assert!(line.len() <= MAX_LINE, "{}", line.len());
        assert!(line.ends_with(" [...]\n"));
        assert_eq!(format_line("E! ", "a\nb"), "E! a\\nb\n");
    }

    #[test]
    fn once_is_once_per_subject_within_its_bound() {
        let mut once = Once::with_cap(1);
        assert!(once.first(b"a"));
        assert!(!once.first(b"a"));
        assert!(once.first(b"b"));
        assert!(once.first(b"b"), "past the bound nothing is remembered");
    }

    #[test]
    fn rate_limit_counts_what_it_holds_back() {
        let t0 = Instant::now();
        let mut r = RateLimit::new(2, 1.0);
        assert_eq!(r.allow(t0), Some(0));
        assert_eq!(r.allow(t0), Some(0));
        assert_eq!(r.allow(t0), None);
        assert_eq!(r.allow(t0), None);
        assert_eq!(r.pending(), 2);
        assert_eq!(r.allow(t0 + Duration::from_secs(1)), Some(2));
    }
}
