//! How far the times of a state may reach.

use crate::schema::TIME_MAX;
use crate::schema::TIME_MIN;

/// How far the times of a state may reach: a timestamp is accepted only
/// if its window lies in InfluxDB's time range, so `max_ts` is at most the
/// end of such a window; the frontier is at most the end of `max_ts`'s
/// window, or the newest wall clock a live process holding the state saw
/// (idle advance moves it by wall time); and live, nothing is more than
/// `--max-future` ahead of now.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    most: i64,
    /// Live: now + `--max-future`.
    live: Option<i64>,
}

impl Bound {
    /// The bound for a state whose newest timestamp is `max_ts`.
    pub fn new(
        period: i64,
        max_ts: Option<i64>,
        wall: Option<i64>,
        now: Option<i64>,
        max_future: i64,
    ) -> Bound {
        let end_of_max = max_ts
            .and_then(|m| {
                m.div_euclid(period)
                    .checked_mul(period)?
                    .checked_add(period)
            })
            .unwrap_or(i64::MIN);
        Bound {
            most: end_of_max.max(wall.unwrap_or(i64::MIN)).min(TIME_MAX),
            live: now.map(|n| n.saturating_add(max_future)),
        }
    }

    /// Checks `value`, named `what`, against the bound.
    pub fn check(&self, what: &str, value: i64) -> Result<(), String> {
        if !(TIME_MIN..=TIME_MAX).contains(&value) {
            return Err(format!("{what} {value} is outside the time range"));
        }
        if let Some(live) = self.live.filter(|&l| value > l) {
            return Err(format!(
                "{what} {value} is more than --max-future ahead of the wall clock ({live})"
            ));
        }
        if value > self.most {
            return Err(format!(
                "{what} {value} is beyond what the state's timestamps and wall clock allow ({})",
                self.most
            ));
        }
        Ok(())
    }
}
