//! The journal files `PATH.journal.N`: a header line naming the state and
//! the sequence number, then the frames of [`crate::journal`]. The
//! current one is appended to with one `write(2)` per chunk; at a save the
//! checkpoint starts the next one, and the files the save covers are
//! deleted once it is durable.

use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::PathBuf;

use super::{create_new, StateFile, StateId};

const MAGIC: &str = "e2e-aggregator journal 1";

/// The journal file being appended to.
#[derive(Debug)]
pub struct Writer {
    file: File,
    bytes: u64,
    spent: bool,
}

impl Writer {
    /// Creates `PATH.journal.seq` for state `id`.
    pub fn create(state: &StateFile, id: &StateId, seq: u64) -> io::Result<Writer> {
        let path = path(state, seq);
        let mut file = create_new(&path)?;
        let header = format!("{MAGIC} {id} {seq}\n");
        if let Err(e) = file.write_all(header.as_bytes()) {
            // Made again on the next try.
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Ok(Writer {
            file,
            bytes: header.len() as u64,
            spent: false,
        })
    }

    /// Appends whole frames. If the write fails part way (a full disk
    /// takes what fits), the file is cut back to its last whole frame, so
    /// that the frames can be appended again; if even that fails, the
    /// writer is spent ([`Writer::spent`]) and a save must cover it.
    pub fn append(&mut self, frames: &[u8]) -> io::Result<()> {
        if self.spent {
            return Err(io::Error::other("an earlier append left a partial entry"));
        }
        if let Err(e) = self.file.write_all(frames) {
            let cut = self
                .file
                .set_len(self.bytes)
                .and_then(|()| self.file.seek(SeekFrom::Start(self.bytes)));
            self.spent = cut.is_err();
            return Err(e);
        }
        self.bytes += frames.len() as u64;
        Ok(())
    }

    /// Whether a failed append left a partial frame that could not be cut
    /// off: nothing more may follow it.
    pub fn spent(&self) -> bool {
        self.spent
    }

    /// Its size.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// The path of journal `seq`.
pub fn path(state: &StateFile, seq: u64) -> PathBuf {
    state.neighbour(&format!(".journal.{seq}"))
}

/// The journal files beside the state file, by sequence number.
pub fn list(state: &StateFile) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = state
        .neighbours(".journal.")
        .into_iter()
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let seq = name.rsplit('.').next()?.parse().ok()?;
            (p.file_name() == path(state, seq).file_name()).then_some((seq, p))
        })
        .collect();
    found.sort();
    found
}

/// The first journal number after `covered` with no file at its path:
/// where a new journal goes when the files after `covered` were kept.
pub fn first_free(state: &StateFile, covered: u64) -> u64 {
    let mut seq = covered + 1;
    while path(state, seq).exists() {
        seq += 1;
    }
    seq
}

/// Deletes the journal files numbered `..=seq`.
pub fn delete_through(state: &StateFile, seq: u64) -> io::Result<()> {
    for (n, p) in list(state) {
        if n <= seq {
            super::remove_if_there(&p)?;
        }
    }
    Ok(())
}

/// A journal file read back.
#[derive(Debug)]
pub struct Read {
    /// The state it belongs to, per its header.
    pub id: Option<StateId>,
    /// The sequence number in its header.
    pub seq: Option<u64>,
    /// Its frames: the bytes after the header.
    pub frames: Vec<u8>,
}

/// Reads a journal file.
pub fn read(path: &std::path::Path) -> io::Result<Read> {
    let bytes = fs::read(path)?;
    let end = memchr::memchr(b'\n', &bytes);
    let header = end.and_then(|e| std::str::from_utf8(&bytes[..e]).ok());
    let (id, seq) = header
        .and_then(|h| h.strip_prefix(MAGIC))
        .and_then(|rest| {
            let mut words = rest.split_whitespace();
            let id = StateId::parse(words.next()?)?;
            let seq = words.next()?.parse().ok()?;
            words.next().is_none().then_some((Some(id), Some(seq)))
        })
        .unwrap_or((None, None));
    let frames = match (end, &id) {
        (Some(e), Some(_)) => bytes[e + 1..].to_vec(),
        _ => Vec::new(),
    };
    Ok(Read { id, seq, frames })
}
