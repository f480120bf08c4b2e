//! The input stage and the engine on one thread: bytes in, line protocol
//! out. The event loop drives it with chunks the workers parsed; tests,
//! benches and fuzzers drive it with plain bytes.

use std::sync::Arc;

use crate::clock::Now;
use crate::engine::Engine;
use crate::input::{End, Input};
use crate::records::{Parsed, Splitter};
use crate::settings::Settings;
use crate::stats::Counters;

/// See the module doc.
pub struct Pipeline {
    input: Input,
    engine: Engine,
}

impl Pipeline {
    /// Nothing read, nothing open.
    pub fn new(settings: Settings) -> Pipeline {
        let settings = Arc::new(settings);
        Pipeline {
            input: Input::new(settings.clone()),
            engine: Engine::new(settings),
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
        let engine = &mut self.engine;
        self.input.finish(end, &mut |r| engine.apply(r, now));
        self.engine.close_all();
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
    pub fn engine(&mut self) -> &mut Engine {
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
