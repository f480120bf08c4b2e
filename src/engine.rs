//! The engine: bytes of line protocol in, bytes of line protocol out.
//!
//! It has the parse stage ([`crate::records`]) split its input into
//! classified records (carrying a record that spans chunks), accounts for
//! each one (SPEC.md, "What happens to each line"), passes lines
//! through byte for byte, folds delay points into their windows, and writes
//! the rows of every window that closes. It does no I/O and reads no clock:
//! the caller says what time it is ([`Now`]) in a live pipeline and nothing
//! in a replay, so a replay depends on the input bytes alone.

use std::time::Instant;

use crate::config::Options;
use crate::join::{Join, RowFormat};
use crate::logging::{suppressed_note, Once, RateLimit};
use crate::lp::{ErrorKind, ParseError};
use crate::records::{self, schema, DelayPoint, Parsed, Rec, Splitter};
use crate::stats::{Counters, Gauges, SkipReason};
use crate::window::{Kind, Refused, Window, WindowStart, Windows};

/// The time in a live pipeline.
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

/// The settings the engine works with, all times in ns.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Measurement of network delays.
    pub network: Vec<u8>,
    /// Measurement of service delays.
    pub service: Vec<u8>,
    /// Measurement of the self-metrics.
    pub stats_measurement: Vec<u8>,
    /// Do not pass delay lines through.
    pub drop_original: bool,
    /// Nanoseconds per unit of input timestamps.
    pub unit: i64,
    /// Window length.
    pub period: i64,
    /// Watermark lag.
    pub grace: i64,
    /// Quiet time before the watermark advances by wall time.
    pub idle: i64,
    /// How far ahead of the wall clock a point may be.
    pub max_future: i64,
    /// Longest record.
    pub max_line: usize,
    /// Cap on (series, window) pairs plus cache entries; 0 = none.
    pub max_series: usize,
    /// Cache expiry, if any.
    pub cache_ttl: Option<i64>,
    /// Measurement of the rows.
    pub output: Vec<u8>,
}

impl Settings {
    /// What the parse stage needs.
    pub fn splitter(&self) -> Splitter {
        Splitter {
            network: self.network.clone(),
            service: self.service.clone(),
            max_line: self.max_line,
        }
    }

    /// The settings for a set of options.
    pub fn new(o: &Options) -> Settings {
        Settings {
            network: o.network_measurement.as_bytes().to_vec(),
            service: o.service_measurement.as_bytes().to_vec(),
            stats_measurement: o.stats_measurement.as_bytes().to_vec(),
            drop_original: o.drop_original,
            unit: o.precision.nanos(),
            period: o.period.as_nanos_i64(),
            grace: o.grace.as_nanos_i64(),
            idle: o.idle.as_nanos_i64(),
            max_future: o.max_future.as_nanos_i64(),
            max_line: o.max_line_size.0,
            max_series: o.max_series,
            cache_ttl: o.cache_ttl.map(|d| d.as_nanos_i64()),
            output: o.output_measurement.as_bytes().to_vec(),
        }
    }
}

/// What became of a delay point.
enum Fate {
    Aggregated,
    Late,
    Skipped(SkipReason),
}

/// Rate limits of the warnings that input can repeat without end, and the
/// subjects already warned about where a warning is due once per series
/// or measurement.
#[derive(Debug, Default)]
struct Warnings {
    once: Once,
    invalid: RateLimit,
    missing_tag: RateLimit,
    non_numeric: RateLimit,
    skipped: RateLimit,
    late: RateLimit,
    unwritable: RateLimit,
}

/// The engine. See the module doc.
pub struct Engine {
    settings: Settings,
    splitter: Splitter,
    /// Scratch for the records of a chunk parsed on this thread.
    parsed: Parsed,
    windows: Windows,
    join: Join,
    counters: Counters,
    out: Vec<u8>,
    /// A record that started in an earlier chunk and has not ended yet.
    carry: Vec<u8>,
    /// Discarding the rest of an invalid record up to its next line feed.
    skipping: bool,
    /// The physical line on which the next record starts (1-based).
    line: u64,
    /// When the last point was accepted into a window (live).
    last_accept: Option<Instant>,
    /// Whether a window closed since [`Engine::take_window_closed`].
    window_closed: bool,
    warnings: Warnings,
}

impl Engine {
    /// A new engine with nothing open.
    pub fn new(settings: Settings) -> Engine {
        let windows = Windows::new(settings.period);
        let join = Join::new(
            settings.period,
            settings.cache_ttl,
            RowFormat {
                measurement: settings.output.clone(),
                unit: settings.unit,
            },
        );
        let splitter = settings.splitter();
        Engine {
            settings,
            splitter,
            parsed: Parsed::default(),
            windows,
            join,
            counters: Counters::default(),
            out: Vec::with_capacity(1 << 17),
            carry: Vec::new(),
            skipping: false,
            line: 1,
            last_accept: None,
            window_closed: false,
            warnings: Warnings::default(),
        }
    }

    /// Processes a chunk of input. `now` is `None` in a replay.
    pub fn feed(&mut self, chunk: &[u8], now: Option<Now>) {
        let mut chunk = chunk;
        if self.skipping {
            let Some(k) = memchr::memchr(b'\n', chunk) else {
                return;
            };
            self.skipping = false;
            self.line += 1;
            chunk = &chunk[k + 1..];
        }
        if self.carry.is_empty() {
            let used = self.parse_and_apply(chunk, false, now);
            self.carry.extend_from_slice(&chunk[used..]);
        } else {
            let mut pending = std::mem::take(&mut self.carry);
            pending.extend_from_slice(chunk);
            let used = self.parse_and_apply(&pending, false, now);
            pending.drain(..used);
            self.carry = pending;
        }
        self.limit_carry(now);
    }

    /// Parses `buf` on this thread and applies its records; returns the
    /// bytes consumed (a record that may continue is left unless `at_eof`).
    fn parse_and_apply(&mut self, buf: &[u8], at_eof: bool, now: Option<Now>) -> usize {
        let mut parsed = std::mem::take(&mut self.parsed);
        self.splitter.parse(buf, at_eof, &mut parsed);
        self.apply(buf, &parsed, at_eof, now);
        let used = parsed.consumed;
        self.parsed = parsed;
        used
    }

    /// Processes a chunk that another thread has parsed with this engine's
    /// [`Splitter`]. The parse assumed the chunk starts at a record
    /// boundary; if a record from the previous chunk is still open, it is
    /// parsed again here.
    pub fn feed_parsed(&mut self, chunk: &[u8], parsed: &Parsed, now: Option<Now>) {
        if self.skipping || !self.carry.is_empty() {
            return self.feed(chunk, now);
        }
        self.apply(chunk, parsed, false, now);
        self.carry.extend_from_slice(&chunk[parsed.consumed..]);
        self.limit_carry(now);
    }

    /// The parse stage's settings, for parsing on other threads.
    pub fn splitter(&self) -> &Splitter {
        &self.splitter
    }

    /// Ends the input: the record still open is parsed as it stands (an
    /// unterminated string is invalid), then every window closes.
    pub fn finish(&mut self, now: Option<Now>) {
        self.skipping = false;
        let pending = std::mem::take(&mut self.carry);
        self.parse_and_apply(&pending, true, now);
        let closed = self.windows.close_all();
        self.close(closed);
    }

    /// Advances the watermark by wall time when no point has been accepted
    /// for `--idle` (live only).
    pub fn tick(&mut self, now: Now) {
        let (Some(max_ts), Some(last)) = (self.windows.max_ts(), self.last_accept) else {
            return;
        };
        let quiet = now.mono.saturating_duration_since(last);
        let quiet = i64::try_from(quiet.as_nanos()).unwrap_or(i64::MAX);
        if quiet < self.settings.idle {
            return;
        }
        let watermark = max_ts
            .saturating_add(quiet)
            .saturating_sub(self.settings.grace);
        self.raise_watermark(watermark, Some(now));
    }

    /// Appends the self-metrics line, stamped `timestamp_ns` (written in
    /// the input precision).
    pub fn write_stats(&mut self, timestamp_ns: i64) {
        let ts = timestamp_ns.div_euclid(self.settings.unit);
        let gauges = self.gauges();
        self.counters
            .write(&mut self.out, &self.settings.stats_measurement, gauges, ts);
    }

    /// The newest event time seen, the timestamp of self-metrics in a replay.
    pub fn event_time(&self) -> i64 {
        self.windows.max_ts().unwrap_or(0)
    }

    /// The output produced so far; the caller writes and clears it.
    pub fn output(&mut self) -> &mut Vec<u8> {
        &mut self.out
    }

    /// Whether a window closed since the last call (the caller flushes).
    pub fn take_window_closed(&mut self) -> bool {
        std::mem::take(&mut self.window_closed)
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The state sizes.
    pub fn gauges(&self) -> Gauges {
        Gauges {
            open_series: self.windows.pairs(),
            cache_entries: self.join.len(),
        }
    }

    /// Warnings held back by rate limits and not yet announced.
    pub fn suppressed_warnings(&self) -> u64 {
        let w = &self.warnings;
        [
            &w.invalid,
            &w.missing_tag,
            &w.non_numeric,
            &w.skipped,
            &w.late,
            &w.unwritable,
        ]
        .iter()
        .map(|r| r.pending())
        .sum()
    }

    /// Applies the records of `buf`, in order.
    fn apply(&mut self, buf: &[u8], parsed: &Parsed, at_eof: bool, now: Option<Now>) {
        let mut pos = 0;
        for rec in &parsed.records {
            let rest = &buf[pos..];
            match rec {
                Rec::Ignored { len } => {
                    self.counters.lines_in += 1;
                    self.counters.ignored += 1;
                    self.line += 1;
                    pos += len;
                }
                Rec::Other { body, len, lines } => {
                    self.counters.lines_in += 1;
                    self.counters.other += 1;
                    self.line += *lines as u64;
                    self.pass(&rest[..*body]);
                    pos += len;
                }
                Rec::Delay {
                    body,
                    len,
                    lines,
                    point,
                } => {
                    self.counters.lines_in += 1;
                    let line = self.line;
                    self.line += *lines as u64;
                    self.delay(point, &parsed.keys, line, &rest[..*body], now);
                    pos += len;
                }
                Rec::Invalid { err, len, ended } => {
                    self.invalid(&rest[..*len], *err);
                    if !ended && !at_eof {
                        self.skipping = true;
                    }
                    pos += (*len).max(1);
                }
            }
        }
    }

    /// Counts and reports an invalid record (`skipped` is what is skipped
    /// of it in this chunk).
    fn invalid(&mut self, skipped: &[u8], err: ParseError) {
        self.counters.lines_in += 1;
        self.counters.invalid += 1;
        if let Some(n) = self.warnings.invalid.allow(Instant::now()) {
            let shown = &skipped[..skipped.len().min(200)];
            let shown = shown.strip_suffix(b"\n").unwrap_or(shown);
            let limit = if err.kind == ErrorKind::TooLong {
                format!(" ({} bytes)", self.settings.max_line)
            } else {
                String::new()
            };
            log::warn!(
                "invalid line {}: {}{limit}: \"{}\"{}{}",
                self.line,
                err,
                shown.escape_ascii(),
                if skipped.len() > 200 { "..." } else { "" },
                suppressed_note(n)
            );
        }
        self.line += memchr::memchr_iter(b'\n', skipped).count() as u64;
    }

    /// A record pending in the carry buffer that outgrew `--max-line-size`
    /// is invalid: report it and drop it without holding more of it.
    fn limit_carry(&mut self, now: Option<Now>) {
        // The limit is on the record without its line ending, and the
        // carried record may be waiting for the `\n` after its `\r`.
        let body = self.carry.len() - usize::from(self.carry.ends_with(b"\r"));
        if body <= self.settings.max_line {
            return;
        }
        let pending = std::mem::take(&mut self.carry);
        let Rec::Invalid { len, ended, .. } = records::invalid(&pending, self.splitter.too_long())
        else {
            return;
        };
        self.invalid(&pending[..len], self.splitter.too_long());
        if ended {
            self.feed(&pending[len..], now);
        } else {
            self.skipping = true;
        }
    }

    /// Writes a line through: its bytes and one `\n`.
    fn pass(&mut self, body: &[u8]) {
        self.counters.passed += 1;
        self.out.extend_from_slice(body);
        self.out.push(b'\n');
    }

    fn delay(&mut self, point: &DelayPoint, keys: &[u8], line: u64, body: &[u8], now: Option<Now>) {
        let fate = self.place(point, keys, line, now);
        match fate {
            Fate::Aggregated => self.counters.aggregated += 1,
            Fate::Late => {
                self.counters.late += 1;
                if let Some(n) = self.warnings.late.allow(Instant::now()) {
                    log::debug!(
                        "late point on line {line}: its window has closed{}",
                        suppressed_note(n)
                    );
                }
            }
            Fate::Skipped(reason) => self.counters.skip(reason),
        }
        if !self.settings.drop_original {
            self.pass(body);
        }
        if let Fate::Aggregated = fate {
            self.last_accept = now.map(|n| n.mono);
            if let Some(max_ts) = self.windows.max_ts() {
                self.raise_watermark(max_ts.saturating_sub(self.settings.grace), now);
            }
        }
    }

    /// Decides where a delay point goes and adds it to its window.
    fn place(&mut self, p: &DelayPoint, keys: &[u8], line: u64, now: Option<Now>) -> Fate {
        let (tag_names, field_names) = schema(p.kind);
        let series = p.key.clone().map_or(&[][..], |k| &keys[k]);
        for (i, name) in field_names.iter().enumerate() {
            if p.non_numeric & (1 << i) != 0 {
                self.counters.non_numeric_fields += 1;
                let subject = [&[b'n', p.kind as u8, i as u8][..], series].concat();
                if !self.warnings.once.first(&subject) {
                    continue;
                }
                if let Some(n) = self.warnings.non_numeric.allow(Instant::now()) {
                    log::warn!(
                        "line {line}: field {} is not a number: ignored{}",
                        String::from_utf8_lossy(name),
                        suppressed_note(n)
                    );
                }
            }
        }
        let Some(key) = p.key.clone() else {
            let once = self.warnings.once.first(&[b'm', p.kind as u8]);
            if let Some(n) = once
                .then(|| self.warnings.missing_tag.allow(Instant::now()))
                .flatten()
            {
                let missing = tag_names
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| p.missing_tags & (1 << i) != 0)
                    .map(|(_, n)| String::from_utf8_lossy(n))
                    .collect::<Vec<_>>()
                    .join(", ");
                log::warn!(
                    "line {line}: {} point without tag {missing}: not aggregated{}",
                    self.measurement_name(p.kind),
                    suppressed_note(n)
                );
            }
            return Fate::Skipped(SkipReason::MissingTag);
        };
        if p.values.iter().all(Option::is_none) {
            return Fate::Skipped(SkipReason::NoNumericField);
        }

        let unit = self.settings.unit;
        let ts = match (p.timestamp, now) {
            (Some(ts), _) => i128::from(ts) * i128::from(unit),
            (None, Some(now)) => i128::from(now.wall.div_euclid(unit) * unit),
            (None, None) => return self.skipped(SkipReason::NoTimestamp, line),
        };
        let Some(start) = i64::try_from(ts)
            .ok()
            .and_then(|ts| self.windows.window_of(ts))
        else {
            return self.skipped(SkipReason::OutOfRange, line);
        };
        let ts = ts as i64;
        if let Some(now) = now {
            if i128::from(ts) > i128::from(now.wall) + i128::from(self.settings.max_future) {
                return self.skipped(SkipReason::Future, line);
            }
        }

        let cap = self.settings.max_series;
        let room = cap == 0 || self.windows.pairs() + self.join.len() < cap;
        match self
            .windows
            .add(p.kind, &keys[key], ts, start, &p.values, room)
        {
            Ok(()) => Fate::Aggregated,
            Err(Refused::Late) => Fate::Late,
            Err(Refused::Full) => self.skipped(SkipReason::MaxSeries, line),
        }
    }

    fn skipped(&mut self, reason: SkipReason, line: u64) -> Fate {
        if let Some(n) = self.warnings.skipped.allow(Instant::now()) {
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
        Fate::Skipped(reason)
    }

    fn measurement_name(&self, kind: Kind) -> String {
        let name = match kind {
            Kind::Network => &self.settings.network,
            Kind::Service => &self.settings.service,
        };
        String::from_utf8_lossy(name).into_owned()
    }

    /// Raises the watermark (capped by the wall clock when live) and closes
    /// the windows behind it.
    fn raise_watermark(&mut self, watermark: i64, now: Option<Now>) {
        let capped = match now {
            Some(now) => watermark.min(now.wall.saturating_sub(self.settings.grace)),
            None => watermark,
        };
        let closed = self.windows.advance(capped);
        self.close(closed);
    }

    fn close(&mut self, closed: Vec<(WindowStart, Window)>) {
        for (start, window) in closed {
            self.counters.windows_closed += 1;
            self.window_closed = true;
            let result = self.join.close(start, window, &mut self.out);
            self.counters.rows_written += result.rows;
            for u in result.unwritable {
                self.counters.rows_unwritable += 1;
                let subject = [b"u", u.series.as_bytes()].concat();
                if !self.warnings.once.first(&subject) {
                    continue;
                }
                if let Some(n) = self.warnings.unwritable.allow(Instant::now()) {
                    log::warn!(
                        "row for {} at {} not written: {}{}",
                        u.series,
                        start.0,
                        u.reason,
                        suppressed_note(n)
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Options;

    const SEC: i64 = 1_000_000_000;
    const T0: i64 = 1_700_000_000 * SEC;

    fn engine(flags: &[&str]) -> Engine {
        let args = std::iter::once("e2e-aggregator").chain(flags.iter().copied());
        Engine::new(Settings::new(&Options::load(args).unwrap()))
    }

    /// A complete window's worth of input for path p: forward, reverse and
    /// the service behind the target, all stamped `ts`.
    fn window(p: &str, ts: i64) -> String {
        format!(
            "network_delays,path={p},source=A,target=B latency=10,bandwidth=100 {ts}\n\
             network_delays,path={p},source=B,target=A latency=20,bandwidth=100 {ts}\n\
             service_delays,endpoint=e,sf_instance=i,sfr=B response_time=1,request_size=2,response_size=3 {ts}\n"
        )
    }

    fn live(wall: i64) -> Option<Now> {
        Some(Now {
            wall,
            mono: Instant::now(),
        })
    }

    fn rows(out: &[u8]) -> usize {
        out.split(|&b| b == b'\n')
            .filter(|l| l.starts_with(b"e2e_delays"))
            .count()
    }

    #[test]
    fn live_a_point_years_ahead_is_skipped_and_makes_no_one_late() {
        let mut e = engine(&[]);
        let years = T0 + 5 * 365 * 24 * 3600 * SEC;
        e.feed(window("p1", years).as_bytes(), live(T0));
        e.feed(window("p1", T0 + SEC).as_bytes(), live(T0 + 2 * SEC));
        assert_eq!(e.counters().skipped[SkipReason::Future as usize], 3);
        assert_eq!(e.counters().late, 0);
        assert_eq!(e.counters().aggregated, 3);
        assert!(e.counters().balanced());
    }

    #[test]
    fn live_a_clock_minutes_ahead_is_capped_by_the_wall_clock() {
        let mut e = engine(&[]);
        // Ten minutes ahead: within --max-future, so aggregated, but the
        // watermark stays behind the wall clock and nobody else is late.
        e.feed(window("p1", T0 + 600 * SEC).as_bytes(), live(T0));
        e.feed(window("p2", T0 + SEC).as_bytes(), live(T0 + 2 * SEC));
        assert_eq!(e.counters().aggregated, 6);
        assert_eq!(e.counters().late, 0);
        e.finish(live(T0 + 3 * SEC));
        assert_eq!(rows(e.output()), 2);
    }

    #[test]
    fn a_replay_trusts_its_timestamps() {
        let mut e = engine(&[]);
        e.feed(window("p1", T0 + 600 * SEC).as_bytes(), None);
        e.feed(window("p2", T0 + SEC).as_bytes(), None);
        assert_eq!(e.counters().late, 3, "the replay's clock is its data");
    }

    #[test]
    fn a_field_that_changes_type_mid_stream_counts_where_it_is_a_number() {
        let mut e = engine(&["--drop-original"]);
        let mut input = window("p1", T0);
        for v in ["2i", "3u", "\"x\"", "true"] {
            input.push_str(&format!(
                "network_delays,path=p1,source=A,target=B latency={v},bandwidth=100 {T0}\n"
            ));
        }
        e.feed(input.as_bytes(), None);
        e.finish(None);
        assert_eq!(e.counters().non_numeric_fields, 2);
        let out = String::from_utf8(e.output().clone()).unwrap();
        // latency mean over 10, 2 and 3; the string and bool are ignored.
        assert!(out.contains("delay_forward=5.0,"), "{out}");
    }

    #[test]
    fn nan_and_infinity_never_reach_the_output() {
        let mut e = engine(&[]);
        let mut input = String::new();
        for v in ["NaN", "inf", "-Inf", "1e309"] {
            input.push_str(&format!(
                "network_delays,path=p1,source=A,target=B latency={v} {T0}\n"
            ));
        }
        // Finite values whose sum overflows: the mean is infinite, so the
        // row cannot be written.
        input.push_str(&window("p1", T0).replace("latency=10", "latency=1.7e308"));
        input.push_str(&format!(
            "network_delays,path=p1,source=A,target=B latency=1.7e308 {T0}\n"
        ));
        e.feed(input.as_bytes(), None);
        e.finish(None);
        assert_eq!(e.counters().invalid, 4);
        assert_eq!(e.counters().rows_unwritable, 1);
        assert_eq!(rows(e.output()), 0);
        assert!(crate::lp::parse_all(e.output()).iter().all(Result::is_ok));
    }
}
