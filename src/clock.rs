//! The time in a live pipeline. A replay reads no clock at all: every
//! stage takes `Option<Now>` and `None` means "replay".

use std::time::Instant;

/// The time, read once per chunk of input or tick.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Wall clock, ns since the Unix epoch.
    pub wall: i64,
    /// Monotonic clock, for "how long since".
    pub mono: Instant,
}

impl Now {
    /// Reads both clocks.
    pub fn read() -> Now {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Now {
            wall,
            mono: Instant::now(),
        }
    }
}
