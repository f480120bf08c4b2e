//! stderr logging the way Telegraf reads a processor's stderr: one line per
//! message, prefixed `E! `, `W! `, `I! `, `D! ` or `T! `, and never longer
//! than 1 KiB (Telegraf stops reading stderr for good after a 64 KiB line,
//! and the processor then blocks). Plus a rate limiter for warnings that
//! input can repeat without end.

use std::io::Write;
use std::time::Instant;

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

    /// Messages held back and not yet announced.
    pub fn pending(&self) -> u64 {
        self.suppressed
    }
}

/// Remembers the subjects already warned about, so that a warning is given
/// once per subject (a series, a measurement). Bounded: past `cap`
/// subjects, new ones are no longer remembered and only the rate limit
/// holds their warnings back, so a flood of subjects cannot grow memory.
#[derive(Debug)]
pub struct Once {
    seen: std::collections::HashSet<Vec<u8>>,
    cap: usize,
}

impl Default for Once {
    fn default() -> Self {
        Once {
            seen: std::collections::HashSet::new(),
            cap: 10_000,
        }
    }
}

impl Once {
    /// Whether `subject` has not been warned about yet.
    pub fn first(&mut self, subject: &[u8]) -> bool {
        if self.seen.contains(subject) {
            return false;
        }
        if self.seen.len() < self.cap {
            self.seen.insert(subject.to_vec());
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
        let mut once = Once {
            seen: Default::default(),
            cap: 1,
        };
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
