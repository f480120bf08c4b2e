//! The value types of options: precision, log level, byte sizes.

use clap::ValueEnum;

/// Timestamp precision of the input (and of the rows written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Precision {
    /// Seconds.
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds.
    Ns,
}

impl std::fmt::Display for Precision {
    /// The value as written on the command line (`ms`, not `Ms`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = self.to_possible_value().expect("no precision is skipped");
        f.write_str(value.get_name())
    }
}

impl Precision {
    /// Nanoseconds per unit.
    pub fn nanos(self) -> i64 {
        match self {
            Precision::S => 1_000_000_000,
            Precision::Ms => 1_000_000,
            Precision::Us => 1_000,
            Precision::Ns => 1,
        }
    }
}

/// Verbosity of stderr, as Telegraf's log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// `E!` only.
    Error,
    /// `E!` and `W!`.
    Warn,
    /// Up to `I!`.
    Info,
    /// Up to `D!`.
    Debug,
    /// Everything, `T!` included.
    Trace,
}

impl LogLevel {
    /// The `log` crate's filter for this level.
    pub fn filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

/// A size in bytes: `65536`, `64KiB`, `4MiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (num, unit) = s.split_at(digits);
        let scale: usize = match unit.trim() {
            "" | "B" => 1,
            "KiB" | "K" | "KB" => 1 << 10,
            "MiB" | "M" | "MB" => 1 << 20,
            "GiB" | "G" | "GB" => 1 << 30,
            other => return Err(format!("unknown size unit {other:?} (B, KiB, MiB, GiB)")),
        };
        let n: usize = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
        match n.checked_mul(scale) {
            Some(0) => Err("must be at least 1 byte".into()),
            Some(v) => Ok(ByteSize(v)),
            None => Err(format!("size {s:?} too large")),
        }
    }
}
