//! `--state-file PATH`: the open windows and both caches kept across
//! restarts, and a journal of every change between saves (SPEC.md, "State
//! across restarts" and "Crash safety: the journal").
//!
//! - [`checkpoint`] owns the protocol: the order of journal appends, rows,
//!   `PATH.closed`, the copy for a save and the save, at start, in the
//!   event loop, at stop and in `flush`.
//! - This module owns the files: PATH (each save written to `PATH.tmp`,
//!   fsynced and renamed over PATH, then the directory fsynced: a crash
//!   leaves the old file or the new one, whole), `PATH.lock` (an exclusive
//!   advisory lock held for the life of the process), `PATH.closed` (the
//!   closing frontier, recorded after the rows of each close are out),
//!   `PATH.replaying` (a replay under way) and `PATH.bad` (where an
//!   unusable file goes). Every file it creates is created anew
//!   (`O_EXCL|O_NOFOLLOW`), so a symlink planted beside PATH is never
//!   followed; a symlink at PATH itself is refused at start.
//! - [`journal_files`] names, writes and reads `PATH.journal.N`;
//!   [`snapshot`] says what the state file holds. Neither looks at the
//!   other's bytes.

pub mod checkpoint;
pub mod journal_files;
pub mod snapshot;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub use checkpoint::Checkpoint;

/// The id that ties a state file, its `PATH.closed` and its journal files
/// together: made when a state starts empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateId(pub String);

impl StateId {
    /// A new random id (16 hex digits).
    pub fn new() -> StateId {
        use std::hash::{BuildHasher, Hasher};
        // std's RandomState is seeded from the OS; time and pid make two
        // ids made in one process differ too.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        StateId(format!("{:016x}", h.finish()))
    }

    /// Whether `text` can be an id: what [`StateId::new`] makes.
    pub fn parse(text: &str) -> Option<StateId> {
        (text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| StateId(text.to_owned()))
    }
}

impl Default for StateId {
    fn default() -> Self {
        StateId::new()
    }
}

impl std::fmt::Display for StateId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `PATH.closed` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// No such file.
    None,
    /// A frontier.
    Frontier {
        /// The state it belongs to (`None`: written by a program older
        /// than state ids, for a state file of format 1).
        id: Option<StateId>,
        /// The frontier, ns.
        value: i64,
        /// Whether the state file and its journal held every change up
        /// to it when it was written ([`UNJOURNALED`] says they did not).
        journaled: bool,
    },
    /// Not what this program writes.
    Unreadable,
}

/// The word after the frontier in `PATH.closed` when the process that
/// wrote it had not journaled every change up to it (`--journal=false`, or
/// entries it could not append): the frontier may then lie beyond what the
/// state file and its journal reach, and is not checked against them.
pub const UNJOURNALED: &str = "unjournaled";

/// A state file in use: its paths and the lock that makes it ours.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    dir: PathBuf,
    /// Held open for the exclusive lock; released when the process ends.
    _lock: File,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Opens a file this program creates: anew, never through a symlink.
fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// Writes `bytes` to `tmp`, made anew (a leftover removed first), and
/// renames it to `path`; with `durable`, fsyncs the file and `dir`.
fn replace(tmp: &Path, path: &Path, dir: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let result = (|| {
        remove_if_there(tmp)?;
        let mut f = create_new(tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        drop(f);
        fs::rename(tmp, path)?;
        if durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

impl StateFile {
    /// Takes the state file at `path` for this process: a symlink there is
    /// refused, its directory must exist and be writable and `PATH.lock`
    /// free. Leftover temporary files of an earlier process are removed.
    /// The error names the path; the caller exits with status 2.
    pub fn open(path: &Path) -> Result<StateFile, String> {
        let p = path.display();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!(
                "state file {p}: is a symbolic link; give the path it points to"
            ));
        }
        match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "state file {p}: {} is not a directory",
                    dir.display()
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(format!(
                    "state file {p}: directory {} does not exist",
                    dir.display()
                ))
            }
            Err(e) => return Err(format!("state file {p}: directory {}: {e}", dir.display())),
        }
        let file = StateFile {
            path: path.to_path_buf(),
            _lock: lock(path, &dir)?,
            dir,
        };
        let leftovers = [file.tmp(), file.closed_tmp()]
            .into_iter()
            .chain(file.neighbours(".probe-"));
        for leftover in leftovers {
            match fs::remove_file(&leftover) {
                Ok(()) => log::info!("state file {p}: removed leftover {}", leftover.display()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(format!(
                        "state file {p}: cannot remove {}: {e}",
                        leftover.display()
                    ))
                }
            }
        }
        Ok(file)
    }

    /// The path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `PATH` followed by `suffix`.
    pub fn neighbour(&self, suffix: &str) -> PathBuf {
        with_suffix(&self.path, suffix)
    }

    fn tmp(&self) -> PathBuf {
        self.neighbour(".tmp")
    }

    fn closed(&self) -> PathBuf {
        self.neighbour(".closed")
    }

    fn closed_tmp(&self) -> PathBuf {
        self.neighbour(".closed.tmp")
    }

    /// The files beside PATH whose names go on with `infix`.
    fn neighbours(&self, infix: &str) -> Vec<PathBuf> {
        let Some(name) = self.path.file_name() else {
            return Vec::new();
        };
        let mut prefix = name.to_owned();
        prefix.push(infix);
        let prefix = prefix.as_encoded_bytes();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().as_encoded_bytes().starts_with(prefix))
            .map(|e| e.path())
            .collect()
    }

    /// The state file's bytes; `None` when there is none. A file that
    /// exists but cannot be read is an error (exit status 2).
    pub fn read(&self) -> Result<Option<Vec<u8>>, String> {
        match fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!(
                "state file {}: cannot be read: {e}",
                self.path.display()
            )),
        }
    }

    /// Saves `bytes` (a [`snapshot::encode`]d state) atomically and
    /// durably. On error the old file is untouched.
    pub fn save(&self, bytes: &[u8]) -> io::Result<()> {
        replace(&self.tmp(), &self.path, &self.dir, bytes, true)
    }

    /// Moves `file` (PATH or a neighbour) to the same name plus `.bad`,
    /// replacing an older one; returns the new name.
    pub fn quarantine(&self, file: &Path) -> io::Result<PathBuf> {
        let bad = with_suffix(file, ".bad");
        fs::rename(file, &bad)?;
        Ok(bad)
    }

    /// What `PATH.closed` says.
    pub fn read_closed(&self) -> Closed {
        let text = match fs::read_to_string(self.closed()) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Closed::None,
            Err(_) => return Closed::Unreadable,
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let frontier = |id: Option<StateId>, v: &str, journaled| {
            v.parse().ok().map(|value| Closed::Frontier {
                id,
                value,
                journaled,
            })
        };
        let parsed = match words[..] {
            [id, v] => StateId::parse(id).and_then(|id| frontier(Some(id), v, true)),
            [id, v, UNJOURNALED] => StateId::parse(id).and_then(|id| frontier(Some(id), v, false)),
            // Format 1 had no journal.
            [v] => frontier(None, v, false),
            _ => None,
        };
        parsed.unwrap_or(Closed::Unreadable)
    }

    /// Records the closing frontier of state `id` after the rows of a
    /// close are out (no fsync: it only keeps a window from being written
    /// twice after a crash). `journaled`: the state file and its journal
    /// hold every change up to it.
    pub fn save_closed(&self, id: &StateId, closed_until: i64, journaled: bool) -> io::Result<()> {
        let text = if journaled {
            format!("{id} {closed_until}\n")
        } else {
            format!("{id} {closed_until} {UNJOURNALED}\n")
        };
        replace(
            &self.closed_tmp(),
            &self.closed(),
            &self.dir,
            text.as_bytes(),
            false,
        )
    }

    /// Moves `PATH.closed`, if there is one, to `.bad`, saying why.
    pub fn quarantine_closed(&self, why: &str) {
        let closed = self.closed();
        if !closed.exists() {
            return;
        }
        self.set_aside(&closed, why);
    }

    /// Moves a neighbour to `.bad` with a `W!` saying why.
    pub fn set_aside(&self, file: &Path, why: &str) {
        let p = self.path.display();
        match self.quarantine(file) {
            Ok(bad) => log::warn!(
                "state file {p}: {} {why}; moved to {}",
                file.display(),
                bad.display()
            ),
            Err(e) => log::error!(
                "state file {p}: {} {why}; cannot move it aside: {e}",
                file.display()
            ),
        }
    }
}

/// Checks that `dir` is writable (by creating and removing a file) and
/// takes `PATH.lock`.
fn lock(path: &Path, dir: &Path) -> Result<File, String> {
    let p = path.display();
    let probe = with_suffix(path, &format!(".probe-{}", std::process::id()));
    create_new(&probe)
        .and_then(|_| fs::remove_file(&probe))
        .map_err(|e| {
            format!(
                "state file {p}: directory {} is not writable: {e}",
                dir.display()
            )
        })?;
    let lock_path = with_suffix(path, ".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&lock_path)
        .map_err(|e| format!("state file {p}: cannot open {}: {e}", lock_path.display()))?;
    match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(lock),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(format!(
            "state file {p}: in use by another process (lock {} held)",
            lock_path.display()
        )),
        Err(e) => Err(format!(
            "state file {p}: cannot lock {}: {}",
            lock_path.display(),
            io::Error::from(e)
        )),
    }
}
