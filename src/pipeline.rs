//! The input stage and the engine on one thread: bytes in, line protocol
//! out. The event loop drives it with chunks the workers parsed; tests,
//! benches and fuzzers drive it with plain bytes.

use std::sync::Arc;

use crate::clock::Now;
use crate::engine::Engine;
use crate::input::{End, Input};
use crate::journal::Entry;
use crate::observe::Observer;
use crate::records::{Parsed, Splitter};
use crate::settings::Settings;
use crate::stats::Counters;

/// See the module doc.
pub struct Pipeline<O: Observer = ()> {
    input: Input,
    engine: Engine<O>,
}

impl Pipeline {
    /// Nothing read, nothing open.
    pub fn new(settings: Settings) -> Pipeline {
        Pipeline::observed(settings, ())
    }
}

impl<O: Observer> Pipeline<O> {
    /// Nothing read, nothing open; the engine tells `observer` what it
    /// decides.
    pub fn observed(settings: Settings, observer: O) -> Pipeline<O> {
        let settings = Arc::new(settings);
        Pipeline {
            input: Input::new(settings.clone()),
            engine: Engine::observed(settings, observer),
        }
    }

    /// Processes a chunk of input, parsing it on this thread. `now` is
    /// `None` in a replay.
    pub fn feed(&mut self, chunk: &[u8], now: Option<Now>) {
        let engine = &mut self.engine;
        self.input.feed(chunk, None, &mut |r| engine.apply(r, now));
    }

    /// Processes a chunk that a worker parsed with [`Pipeline::splitter`].
    pub fn feed_parsed(&mut self, chunk: &[u8], parsed: &Parsed, now: Option<Now>) {
        let engine = &mut self.engine;
        self.input
            .feed(chunk, Some(parsed), &mut |r| engine.apply(r, now));
    }

    /// Ends the input (see [`End`]), then closes every window.
    pub fn finish(&mut self, end: End, now: Option<Now>) {
        self.end_input(end, now);
        self.engine.close_all();
    }

    /// Ends the input (see [`End`]) and leaves the windows open, for a
    /// state file to keep.
    pub fn end_input(&mut self, end: End, now: Option<Now>) {
        let engine = &mut self.engine;
        self.input.finish(end, &mut |r| engine.apply(r, now));
    }

    /// Replays journal entries through the engine (see
    /// [`Engine::replay`]), each chunk's records parsed on this thread as
    /// a whole input of its own; returns the entries replayed.
    pub fn replay_journal<'a>(&mut self, entries: impl IntoIterator<Item = Entry<'a>>) -> u64 {
        let settings = self.engine.settings().clone();
        self.engine.replay(entries, |engine, records, now| {
            let mut input = Input::new(settings.clone());
            input.feed(records, None, &mut |r| engine.apply(r, now));
            input.finish(End::Eof, &mut |r| engine.apply(r, now));
        })
    }

    /// Whether no record is under way.
    pub fn at_boundary(&self) -> bool {
        self.input.at_boundary()
    }

    /// The parse stage, for parsing on other threads.
    pub fn splitter(&self) -> &Splitter {
        self.input.splitter()
    }

    /// The engine: output, counters, clock ticks, self-metrics.
    pub fn engine(&mut self) -> &mut Engine<O> {
        &mut self.engine
    }

    /// The output produced so far; the caller writes and clears it.
    pub fn output(&mut self) -> &mut Vec<u8> {
        self.engine.output()
    }

    /// The counters.
    pub fn counters(&self) -> &Counters {
        self.engine.counters()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::config::Options;
    use crate::stats::SkipReason;

    const SEC: i64 = 1_000_000_000;
    const T0: i64 = 1_700_000_000 * SEC;

    fn engine(flags: &[&str]) -> Pipeline {
        let args = std::iter::once("e2e-aggregator").chain(flags.iter().copied());
        Pipeline::new(Settings::new(&Options::load(args).unwrap()))
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
        e.finish(End::Eof, live(T0 + 3 * SEC));
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
        e.finish(End::Eof, None);
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
        e.finish(End::Eof, None);
        assert_eq!(e.counters().invalid, 4);
        assert_eq!(e.counters().rows_unwritable, 1);
        assert_eq!(rows(e.output()), 0);
        assert!(crate::lp::parse_all(e.output()).iter().all(Result::is_ok));
    }
}
