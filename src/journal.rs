//! The journal's entries (SPEC.md, "Crash safety: the journal"): every
//! change of the engine's state since the last save, in the order it was
//! applied, as bytes. The engine appends to [`Changes`]; the checkpoint
//! protocol ([`crate::state`]) writes them to `PATH.journal.N` once per
//! chunk and, at a restore, reads them back with [`frames`] and replays
//! them through the engine.
//!
//! A frame is `len: u32 LE, crc32(payload): u32 LE, payload`, so a frame
//! cut by a crash, or garbage, is told from a whole one. A payload is
//! - `C`, the wall clock the engine was given (`i64` LE, [`NO_WALL`] in a
//!   replay), then the delay records it accepted, each followed by `\n`:
//!   parsed again at the replay, with that wall clock, they make the same
//!   decisions (a point without a timestamp gets the same one);
//! - `A`, a watermark (`i64` LE) the engine advanced to without a point
//!   (idle advance), applied as it stands at the replay.

/// The wall clock of a chunk read in a replay.
pub const NO_WALL: i64 = i64::MIN;

const HEADER: usize = 8;
const CHUNK: u8 = b'C';
const ADVANCE: u8 = b'A';

/// Frames of changes not yet written to the journal file.
#[derive(Debug, Default)]
pub struct Changes {
    buf: Vec<u8>,
    /// Where the open chunk frame starts, and its wall clock.
    open: Option<(usize, i64)>,
}

impl Changes {
    /// An accepted delay record (its body, without line ending), read at
    /// `wall` ([`NO_WALL`] in a replay).
    pub fn record(&mut self, wall: i64, body: &[u8]) {
        match self.open {
            Some((_, w)) if w == wall => {}
            _ => {
                self.close();
                let start = self.buf.len();
                self.buf.extend_from_slice(&[0; HEADER]);
                self.buf.push(CHUNK);
                self.buf.extend_from_slice(&wall.to_le_bytes());
                self.open = Some((start, wall));
            }
        }
        self.buf.extend_from_slice(body);
        self.buf.push(b'\n');
    }

    /// A watermark advance that did not come from a point.
    pub fn advance(&mut self, watermark: i64) {
        self.close();
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; HEADER]);
        self.buf.push(ADVANCE);
        self.buf.extend_from_slice(&watermark.to_le_bytes());
        seal(&mut self.buf, start);
    }

    /// The whole frames gathered so far; the caller writes them and calls
    /// [`Changes::clear`].
    pub fn frames(&mut self) -> &[u8] {
        self.close();
        &self.buf
    }

    /// Whether no change waits to be written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Forgets the frames written.
    pub fn clear(&mut self) {
        self.open = None;
        self.buf.clear();
    }

    fn close(&mut self) {
        if let Some((start, _)) = self.open.take() {
            seal(&mut self.buf, start);
        }
    }
}

/// Fills in the length and checksum of the frame starting at `start`.
fn seal(buf: &mut [u8], start: usize) {
    let payload = &buf[start + HEADER..];
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(payload);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
}

/// One change, as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    /// Delay records accepted in one chunk, each ending in `\n`, and the
    /// wall clock they were applied with (`None`: a replay).
    Chunk {
        /// The wall clock, ns.
        wall: Option<i64>,
        /// The records.
        records: &'a [u8],
    },
    /// An advance of the watermark without a point.
    Advance(i64),
}

impl Entry<'_> {
    /// The newest wall clock this entry proves a live process saw: the
    /// one its chunk was applied with, or an advance's watermark (capped
    /// at the wall clock less grace, so never ahead of it).
    pub fn wall(&self) -> Option<i64> {
        match *self {
            Entry::Chunk { wall, .. } => wall,
            Entry::Advance(watermark) => Some(watermark),
        }
    }
}

/// How the frames of a journal end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tail {
    /// With a whole frame.
    Whole,
    /// With a frame cut short (a crash during its write): its bytes.
    Partial(usize),
    /// With a frame whose checksum or content is wrong, at this offset.
    Damaged(usize),
}

/// Reads the frames of `bytes` up to the first that is not whole.
pub fn frames(bytes: &[u8]) -> (Vec<Entry<'_>>, Tail) {
    let mut entries = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.len() < HEADER {
            return (entries, Tail::Partial(rest.len()));
        }
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(rest[4..HEADER].try_into().unwrap_or_default());
        let Some(payload) = rest.get(HEADER..HEADER + len) else {
            return (entries, Tail::Partial(rest.len()));
        };
        let entry = (crc32fast::hash(payload) == crc)
            .then(|| entry(payload))
            .flatten();
        let Some(entry) = entry else {
            return (entries, Tail::Damaged(pos));
        };
        entries.push(entry);
        pos += HEADER + len;
    }
    (entries, Tail::Whole)
}

fn entry(payload: &[u8]) -> Option<Entry<'_>> {
    let (&tag, rest) = payload.split_first()?;
    let value = i64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
    match tag {
        CHUNK if rest.len() > 8 && rest.ends_with(b"\n") => Some(Entry::Chunk {
            wall: (value != NO_WALL).then_some(value),
            records: &rest[8..],
        }),
        ADVANCE if rest.len() == 8 => Some(Entry::Advance(value)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut c = Changes::default();
        c.record(7, b"net a=1 1");
        c.record(7, b"net a=2 2");
        c.advance(-5);
        c.record(NO_WALL, b"net a=3");
        let bytes = c.frames().to_vec();
        c.clear();
        assert!(c.frames().is_empty());
        bytes
    }

    #[test]
    fn frames_read_back_in_order() {
        let bytes = sample();
        let (entries, tail) = frames(&bytes);
        assert_eq!(tail, Tail::Whole);
        assert_eq!(
            entries,
            [
                Entry::Chunk {
                    wall: Some(7),
                    records: b"net a=1 1\nnet a=2 2\n"
                },
                Entry::Advance(-5),
                Entry::Chunk {
                    wall: None,
                    records: b"net a=3\n"
                },
            ]
        );
    }

    #[test]
    fn a_cut_frame_is_partial_and_garbage_is_damaged() {
        let bytes = sample();
        let whole = frames(&bytes).0.len();
        // Where each frame ends.
        let mut ends = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
            pos += HEADER + len;
            ends.push(pos);
        }
        for cut in 1..bytes.len() {
            let (entries, tail) = frames(&bytes[..cut]);
            let before = ends.iter().filter(|&&e| e <= cut).count();
            assert_eq!(entries.len(), before, "cut at {cut}");
            let last_end = if before == 0 { 0 } else { ends[before - 1] };
            let expected = match cut - last_end {
                0 => Tail::Whole,
                n => Tail::Partial(n),
            };
            assert_eq!(tail, expected, "cut at {cut}");
        }
        for flip in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[flip] ^= 0x40;
            let (entries, tail) = frames(&bad);
            assert!(entries.len() < whole, "flip at {flip}");
            assert_ne!(tail, Tail::Whole, "flip at {flip}");
        }
    }
}
