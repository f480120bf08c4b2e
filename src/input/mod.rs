//! The input stage: bytes → complete records, on the model of ripgrep's
//! line buffer. Three rooms, in the order the bytes go:
//!
//! - [`reader`]: the reader thread reads stdin into chunks that end at a
//!   line feed (the partial line is rolled to the front of the next chunk)
//!   and deals them to the parse workers in turn;
//! - [`workers`]: the parse workers and the channels between them, the
//!   reader and the event loop; chunk buffers come back for reuse, so
//!   reading allocates and zero-fills nothing after start;
//! - [`complete`]: on the loop's thread, [`Input`] takes the parsed chunks
//!   back in order, completes a record that spans chunks, applies
//!   `--max-line-size` to it, and numbers lines and byte offsets. What it
//!   hands on is always a complete record.
//!
//! A stop never invents a record from a fragment (SPEC.md, "Stop"): at a
//! signal, a regular file is read on to the end of the record under way,
//! and a pipe's unfinished record is reported incomplete. The stage never
//! looks at what a record means: that is the engine's job.

mod complete;
mod reader;
mod workers;

pub use complete::Input;
pub use reader::stdin_is_file;
pub use workers::{spawn, Chunk, Chunks, Work, WORKERS};

use crate::lp::ParseError;
use crate::records::DelayPoint;

/// A complete record, as the engine receives it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The physical line it starts on (1-based).
    pub line: u64,
    /// The byte offset of its start in the input.
    pub offset: u64,
    /// What it is.
    pub class: Class<'a>,
}

/// What a record is.
#[derive(Debug, Clone, Copy)]
pub enum Class<'a> {
    /// A blank line or a comment.
    Ignored,
    /// A valid line of another measurement; `body` is passed through.
    Other {
        /// The line without its ending.
        body: &'a [u8],
    },
    /// Consecutive valid lines of other measurements, each ending in `\n`:
    /// passed through as one copy of `bytes` (a run of [`Class::Other`]).
    Others {
        /// The lines, each with its `\n`.
        bytes: &'a [u8],
        /// How many records.
        records: u64,
    },
    /// A valid delay point.
    Delay {
        /// The line without its ending.
        body: &'a [u8],
        /// What it says.
        point: &'a DelayPoint,
        /// Its encoded series key, when it has every key tag.
        key: Option<&'a [u8]>,
    },
    /// An invalid record.
    Invalid {
        /// What is wrong.
        err: ParseError,
        /// The bytes skipped (the whole record, or its part in hand).
        text: &'a [u8],
    },
}

/// How the input ended, for [`Input::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// stdin closed: a record still open ends here.
    Eof,
    /// Stopped before the end (a signal on a pipe, a read error): a record
    /// still open is incomplete.
    Interrupted,
}
