//! Arbitrary bytes through the engine, as a replay.
//!
//! Input layout: byte 0 picks the settings (low 3 bits, see `common.rs`)
//! and the number of chunks (1 to 3); bytes 1..5 are two split points (u16,
//! taken modulo the input length + 1); the rest is the line protocol.
//!
//! Checks: no panic; the accounting identity after every chunk and at the
//! end; every record written parses as valid line protocol and there is one
//! per line passed or row written; the output and counters equal those of
//! feeding the same bytes in one chunk. The engine is fed through
//! `Engine::feed` only (the test kit's facade): the parse-on-another-thread
//! path of `run` (`feed_parsed`) is no longer driven here.

#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((head, input)) = data.split_at_checked(5) else {
        return;
    };
    let setup = common::setup(head[0] & 7);
    let chunks = usize::from(head[0] >> 3) % 3 + 1;
    let at = |i: usize| usize::from(u16::from_le_bytes([head[i], head[i + 1]])) % (input.len() + 1);
    let mut cuts = [at(1), at(3)];
    cuts.sort_unstable();
    let parts: Vec<&[u8]> = match chunks {
        1 => vec![input],
        2 => vec![&input[..cuts[0]], &input[cuts[0]..]],
        _ => vec![
            &input[..cuts[0]],
            &input[cuts[0]..cuts[1]],
            &input[cuts[1]..],
        ],
    };
    common::check_chunking(setup, input, &parts);
});
