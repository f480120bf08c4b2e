//! The test kit: the one place where tests, benches and fuzz targets run
//! the engine, so that a change of its API is fixed here and nowhere else.
//!
//! It touches the program only through the pipeline's facade:
//! `Pipeline::new(Settings::new(&Options::load(args)?))`, `feed` (parse on
//! this thread) or `splitter().parse` + `feed_parsed` (the chunks parsed
//! apart, as `run` has its workers do), `finish`, `output`, `counters` (and
//! `Counters`) and the engine's `write_stats` and `event_time`.
//!
//! - settings from flags: [`Setup`];
//! - the engine over bytes, as a replay: [`Setup::replay`],
//!   [`Setup::replay_with`], and the same input split into chunks:
//!   [`Setup::check_split`];
//! - output checks: [`points`] (every record a valid point), [`rows`] (the
//!   `e2e_delays` rows), [`Stats`] (the self-metrics line), [`check_output`]
//!   (what every replay's output must satisfy);
//! - value comparison: [`close`], [`same_rows`].
//!
//! Tests include it with `mod support;`; benches and fuzz targets with
//! `#[path = "<relative path>/tests/support/mod.rs"] mod support;`. It uses
//! the crate and std only, so that the fuzz crate needs nothing more. Tests
//! that run the binary as a child process include `child.rs` beside it
//! (`#[path = "support/child.rs"] mod child;`), which needs rustix.

// Each user compiles this module and uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;

use e2e_aggregator::config::{ConfigError, Options};
use e2e_aggregator::input::End;
use e2e_aggregator::lp::{self, OwnedValue, Point};
use e2e_aggregator::pipeline::Pipeline;
use e2e_aggregator::records::Parsed;
use e2e_aggregator::settings::Settings;
use e2e_aggregator::stats::Counters;

/// Flags every setup starts with: a replay (no wall clock), quiet.
const BASE: [&str; 3] = ["e2e-aggregator", "--replay", "--log-level=error"];

/// Engine settings made from command-line flags, as the binary makes them.
#[derive(Debug, Clone)]
pub struct Setup {
    flags: String,
    options: Options,
    settings: Settings,
}

impl Setup {
    /// The settings of `flags` (whitespace-separated, as on a command line
    /// without quotes) after `--replay --log-level=error`. Panics on a bad
    /// flag: a test's settings are part of the test.
    pub fn new(flags: &str) -> Setup {
        Setup::try_new(flags).unwrap_or_else(|e| panic!("test flags {flags:?}: {e}"))
    }

    /// Like [`Setup::new`], returning the error.
    pub fn try_new(flags: &str) -> Result<Setup, String> {
        let args = BASE.into_iter().chain(flags.split_whitespace());
        let options = Options::load(args).map_err(|e| match e {
            ConfigError::Clap(e) => e.to_string(),
            ConfigError::Invalid(m) => m,
        })?;
        Ok(Setup {
            flags: flags.to_string(),
            settings: Settings::new(&options),
            options,
        })
    }

    /// The flags given (without the base ones).
    pub fn flags(&self) -> &str {
        &self.flags
    }

    /// The options the flags gave.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Runs a fresh pipeline over `chunks` as a replay: feeds each chunk,
    /// then finishes, then writes the self-metrics line if
    /// `--stats-interval` is given (stamped with the newest event time, as
    /// the binary does). Hands the output to `drain` after every step; it
    /// must take or clear it. Fails if `lines_in = ignored + invalid +
    /// other + aggregated + late + skipped` breaks after any chunk.
    pub fn replay_with(
        &self,
        chunks: &[&[u8]],
        drain: impl FnMut(&mut Vec<u8>),
    ) -> Result<Counters, String> {
        self.run(chunks, Feed::Here, drain)
    }

    /// Like [`Setup::replay_with`], each chunk parsed apart first, as the
    /// binary's parse workers do (they assume a chunk starts a record; the
    /// input stage completes the records that span chunks).
    pub fn replay_parsed(&self, chunks: &[&[u8]]) -> Result<Replay, String> {
        let mut out = Vec::new();
        let counters = self.run(chunks, Feed::Parsed, |o| out.append(o))?;
        Ok(Replay { out, counters })
    }

    fn run(
        &self,
        chunks: &[&[u8]],
        how: Feed,
        mut drain: impl FnMut(&mut Vec<u8>),
    ) -> Result<Counters, String> {
        let mut engine = Pipeline::new(self.settings.clone());
        let mut parsed = Parsed::default();
        for (i, chunk) in chunks.iter().enumerate() {
            match how {
                Feed::Here => engine.feed(chunk, None),
                Feed::Parsed => {
                    engine.splitter().parse(chunk, false, &mut parsed);
                    engine.feed_parsed(chunk, &parsed, None);
                }
            }
            if !engine.counters().balanced() {
                return Err(format!(
                    "identity broken after chunk {i}: {:?}",
                    engine.counters()
                ));
            }
            drain(engine.output());
        }
        engine.finish(End::Eof, None);
        if self.options.stats_interval.is_some() {
            let e = engine.engine();
            e.write_stats(e.event_time());
        }
        drain(engine.output());
        let counters = engine.counters().clone();
        if !counters.balanced() {
            return Err(format!("identity broken at the end: {counters:?}"));
        }
        Ok(counters)
    }

    /// [`Setup::replay_with`], collecting the output.
    pub fn replay(&self, chunks: &[&[u8]]) -> Result<Replay, String> {
        let mut out = Vec::new();
        let counters = self.replay_with(chunks, |o| out.append(o))?;
        Ok(Replay { out, counters })
    }

    /// `input` in one chunk; panics if the identity breaks.
    pub fn replay_whole(&self, input: &[u8]) -> Replay {
        self.replay(&[input])
            .unwrap_or_else(|e| panic!("[{}]: {e}", self.flags))
    }

    /// Checks that `chunks` (one input split anywhere) give `whole`, the
    /// output and counters of the input in one chunk.
    /// Both ways of feeding are checked: parsed here, and parsed apart.
    pub fn check_split(&self, whole: &Replay, chunks: &[&[u8]]) -> Result<(), String> {
        self.compare(whole, &self.replay(chunks)?, chunks, "")?;
        self.compare(whole, &self.replay_parsed(chunks)?, chunks, " parsed apart")
    }

    fn compare(
        &self,
        whole: &Replay,
        split: &Replay,
        chunks: &[&[u8]],
        mode: &str,
    ) -> Result<(), String> {
        let sizes: Vec<usize> = chunks.iter().take(4).map(|c| c.len()).collect();
        let how = format!("in {} chunks {sizes:?}{mode}", chunks.len());
        if split.counters != whole.counters {
            return Err(format!(
                "{how}: counters differ from one chunk:\n  one:   {:?}\n  split: {:?}",
                whole.counters, split.counters
            ));
        }
        if split.out != whole.out {
            return Err(format!(
                "{how}: output differs from one chunk:\n  one:   \"{}\"\n  split: \"{}\"",
                whole.out.escape_ascii(),
                split.out.escape_ascii()
            ));
        }
        Ok(())
    }
}

/// How chunks reach the pipeline.
#[derive(Debug, Clone, Copy)]
enum Feed {
    /// `feed`: parsed on the caller's thread.
    Here,
    /// `splitter().parse` then `feed_parsed`.
    Parsed,
}

/// What a replay wrote and counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    pub out: Vec<u8>,
    pub counters: Counters,
}

/// Every record of `out` as a point; an error names the first record that
/// is not one (a comment, a blank line or invalid line protocol).
pub fn points(out: &[u8]) -> Result<Vec<Point>, String> {
    lp::parse_all(out)
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            p.map_err(|e| {
                format!(
                    "output record {i} does not parse ({e}); output: \"{}\"",
                    out.escape_ascii()
                )
            })
        })
        .collect()
}

/// What every replay must write: valid line protocol ending in a line
/// feed, one record per line passed or row written (plus the self-metrics
/// line, whose counts equal the counters); the lines of other
/// measurements passed, and the delay lines too unless `--drop-original`.
pub fn check_output(setup: &Setup, replay: &Replay) -> Result<(), String> {
    let (out, c) = (&replay.out, &replay.counters);
    let delay_lines = c.aggregated + c.late + c.skipped_total();
    let passed = c.other
        + if setup.options.drop_original {
            0
        } else {
            delay_lines
        };
    if c.passed != passed {
        return Err(format!("{passed} lines to pass, counters say {c:?}"));
    }
    if !out.is_empty() && !out.ends_with(b"\n") {
        return Err("output does not end with a line feed".into());
    }
    let points = points(out)?;
    let mut want = c.passed + c.rows_written;
    if setup.options.stats_interval.is_some() {
        let stats = Stats::last(&points, &setup.options.stats_measurement)
            .ok_or("no self-metrics line at the end")?;
        stats.check_counters(c)?;
        want += 1;
    }
    if points.len() as u64 != want {
        return Err(format!(
            "{} records written, counters say {want}: {c:?}",
            points.len()
        ));
    }
    Ok(())
}

/// An `e2e_delays` row: tags, timestamp, and its values in field order.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub tags: BTreeMap<Vec<u8>, Vec<u8>>,
    pub timestamp: Option<i64>,
    pub values: Vec<(Vec<u8>, f64)>,
}

/// The rows of `measurement` in `out`; an error if a record does not parse
/// or a row holds a value that is not a float.
pub fn rows(out: &[u8], measurement: &str) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for p in points(out)? {
        if p.measurement != measurement.as_bytes() {
            continue;
        }
        let values = p
            .fields
            .into_iter()
            .map(|(k, v)| match v {
                OwnedValue::Float(f) => Ok((k, f)),
                other => Err(format!("row value {other:?} is not a float")),
            })
            .collect::<Result<_, _>>()?;
        rows.push(Row {
            tags: p.tags,
            timestamp: p.timestamp,
            values,
        });
    }
    Ok(rows)
}

/// Whether two means agree as SPEC.md's seed compatibility asks: equal, or
/// within 1e-12 relative.
pub fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// Whether two lists of rows are the same rows in the same order: tags,
/// timestamps and field keys equal, values [`close`].
pub fn same_rows(a: &[Row], b: &[Row]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("{} rows vs {}", a.len(), b.len()));
    }
    for (x, y) in a.iter().zip(b) {
        let keys = |r: &Row| r.values.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        let values_close = x
            .values
            .iter()
            .zip(&y.values)
            .all(|((_, vx), (_, vy))| close(*vx, *vy));
        if x.tags != y.tags || x.timestamp != y.timestamp || keys(x) != keys(y) || !values_close {
            return Err(format!("rows differ:\n  {x:?}\n  {y:?}"));
        }
    }
    Ok(())
}

/// A self-metrics line: its integer fields by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub fields: BTreeMap<String, i64>,
    pub timestamp: Option<i64>,
}

/// The counters of "What happens to each line" (SPEC.md) whose sum is
/// `lines_in`.
const CLASSES: [&str; 6] = [
    "ignored",
    "invalid",
    "other",
    "aggregated",
    "late",
    "skipped",
];

impl Stats {
    /// The fields of `point`; an error if one is not an integer.
    pub fn from_point(point: &Point) -> Result<Stats, String> {
        let fields = point
            .fields
            .iter()
            .map(|(k, v)| match v {
                OwnedValue::Integer(i) => Ok((String::from_utf8_lossy(k).into_owned(), *i)),
                other => Err(format!(
                    "self-metrics field {} is {other:?}",
                    k.escape_ascii()
                )),
            })
            .collect::<Result<_, _>>()?;
        Ok(Stats {
            fields,
            timestamp: point.timestamp,
        })
    }

    /// The last line of `measurement` among `points`, if any.
    pub fn last(points: &[Point], measurement: &str) -> Option<Stats> {
        let p = points
            .iter()
            .rev()
            .find(|p| p.measurement == measurement.as_bytes())?;
        Stats::from_point(p).ok()
    }

    /// The field `name`; panics if it is missing.
    pub fn get(&self, name: &str) -> i64 {
        match self.fields.get(name) {
            Some(v) => *v,
            None => panic!("no field {name} in {self:?}"),
        }
    }

    /// Whether `lines_in` is the sum of the classes.
    pub fn balanced(&self) -> bool {
        self.get("lines_in") == CLASSES.iter().map(|c| self.get(c)).sum::<i64>()
    }

    /// Checks that the line says what `counters` say.
    pub fn check_counters(&self, c: &Counters) -> Result<(), String> {
        let want = [
            ("lines_in", c.lines_in),
            ("ignored", c.ignored),
            ("invalid", c.invalid),
            ("other", c.other),
            ("aggregated", c.aggregated),
            ("late", c.late),
            ("skipped", c.skipped_total()),
            ("passed", c.passed),
            ("non_numeric_fields", c.non_numeric_fields),
            ("windows_closed", c.windows_closed),
            ("rows_written", c.rows_written),
            ("rows_unwritable", c.rows_unwritable),
        ];
        for (name, n) in want {
            if self.fields.get(name).copied() != i64::try_from(n).ok() {
                return Err(format!("self-metrics {name} vs counters {c:?}: {self:?}"));
            }
        }
        Ok(())
    }
}

/// Cuts `input` before the given lines (0-based line indexes).
pub fn cut_at_lines<'a>(input: &'a [u8], lines: &[usize]) -> Vec<&'a [u8]> {
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            input
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect();
    let mut pieces = Vec::new();
    let mut from = 0;
    for &line in lines {
        let at = starts[line];
        pieces.push(&input[from..at]);
        from = at;
    }
    pieces.push(&input[from..]);
    pieces
}
