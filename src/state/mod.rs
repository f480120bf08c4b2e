//! `--state-file PATH`: the open windows and both caches kept across
//! restarts (SPEC.md, "State across restarts").
//!
//! This module owns the file and its neighbours: `PATH.lock` (an exclusive
//! advisory lock held for the life of the process), `PATH.tmp` (each save
//! is written there, fsynced and renamed over PATH, then the directory is
//! fsynced: a crash leaves the old file or the new one, whole),
//! `PATH.closed` (the closing frontier after each window close, so a
//! restore after SIGKILL drops windows already written) and `PATH.bad`
//! (where an unusable file is moved). What the file says is
//! [`snapshot`]'s job; this module never looks inside it.

pub mod snapshot;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::join::{Caches, Join};
use crate::settings::Settings;
use crate::window::Windows;

/// A state file in use: its paths and the lock that makes it ours.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    tmp: PathBuf,
    closed: PathBuf,
    closed_tmp: PathBuf,
    bad: PathBuf,
    dir: PathBuf,
    /// Held open for the exclusive lock; released when the process ends.
    _lock: File,
}

/// What a restore found.
// Made once at start and taken apart at once: its size costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Loaded {
    /// No usable state: start empty.
    Empty,
    /// The state, checked.
    State {
        /// The window state.
        windows: Windows,
        /// The join with its caches.
        join: Join,
    },
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

impl StateFile {
    /// Takes the state file at `path` for this process: its directory must
    /// be writable and `PATH.lock` free. Leftover temporary files of an
    /// earlier process are removed. The error names the path; the caller
    /// exits with status 2.
    pub fn open(path: &Path) -> Result<StateFile, String> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let file = StateFile {
            path: path.to_path_buf(),
            tmp: with_suffix(path, ".tmp"),
            closed: with_suffix(path, ".closed"),
            closed_tmp: with_suffix(path, ".closed.tmp"),
            bad: with_suffix(path, ".bad"),
            _lock: lock(path, &dir)?,
            dir,
        };
        for leftover in [&file.tmp, &file.closed_tmp]
            .into_iter()
            .cloned()
            .chain(file.stale_probes())
        {
            match fs::remove_file(&leftover) {
                Ok(()) => log::info!(
                    "state file {}: removed leftover {}",
                    path.display(),
                    leftover.display()
                ),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(format!(
                        "state file {}: cannot remove {}: {e}",
                        path.display(),
                        leftover.display()
                    ))
                }
            }
        }
        Ok(file)
    }

    /// Probe files of earlier processes (`PATH.probe-PID`) that died
    /// between creating and removing theirs.
    fn stale_probes(&self) -> Vec<PathBuf> {
        let Some(name) = self.path.file_name() else {
            return Vec::new();
        };
        let mut prefix = name.to_owned();
        prefix.push(".probe-");
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

    /// The path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state back. No file: empty. A file that cannot be used
    /// (damaged, another format version, other options, inconsistent) is
    /// moved to `PATH.bad` with a warning, and the state starts empty. A
    /// file that exists but cannot be read is an error (exit status 2).
    pub fn load(&self, settings: &Arc<Settings>) -> Result<Loaded, String> {
        let p = self.path.display();
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                log::info!("state file {p}: none, starting empty");
                return Ok(Loaded::Empty);
            }
            Err(e) => return Err(format!("state file {p}: cannot be read: {e}")),
        };
        let written = self.read_closed();
        let restored =
            snapshot::decode(&bytes).and_then(|s| snapshot::restore(s, settings, written));
        let restored = match restored {
            Ok(r) => r,
            Err(reason) => {
                return match fs::rename(&self.path, &self.bad) {
                    Ok(()) => {
                        log::warn!(
                            "state file {p}: {reason}; moved to {}, starting empty",
                            self.bad.display()
                        );
                        Ok(Loaded::Empty)
                    }
                    Err(e) => Err(format!(
                        "state file {p}: {reason}; cannot move it to {}: {e}",
                        self.bad.display()
                    )),
                };
            }
        };
        let join = Join::from_caches(settings.clone(), restored.caches);
        let windows = restored.windows;
        let open = windows.open().count();
        log::info!(
            "state file {p}: restored {open} windows, {} cache entries, max_ts {}{}",
            join.len(),
            windows
                .max_ts()
                .map_or("none".to_string(), |t| t.to_string()),
            match restored.dropped {
                0 => String::new(),
                n => format!(
                    " ({n} windows already written, per {}, dropped)",
                    self.closed.display()
                ),
            }
        );
        Ok(Loaded::State { windows, join })
    }

    /// The frontier in `PATH.closed`, if it holds one.
    fn read_closed(&self) -> Option<i64> {
        let text = fs::read_to_string(&self.closed).ok()?;
        match text.trim().parse() {
            Ok(v) => Some(v),
            Err(_) => {
                log::warn!(
                    "state file {}: {} is not a timestamp; ignored",
                    self.path.display(),
                    self.closed.display()
                );
                None
            }
        }
    }

    /// Saves `bytes` (a [`snapshot::encode`]d state) atomically and
    /// durably. On error the old file is untouched.
    pub fn save(&self, bytes: &[u8]) -> io::Result<()> {
        let result = (|| {
            let mut f = File::create(&self.tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&self.tmp, &self.path)?;
            File::open(&self.dir)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&self.tmp);
        }
        result
    }

    /// Records the closing frontier after a window closed (no fsync: it
    /// only guards against writing a window twice after a crash).
    pub fn save_closed(&self, closed_until: i64) -> io::Result<()> {
        fs::write(&self.closed_tmp, format!("{closed_until}\n"))?;
        fs::rename(&self.closed_tmp, &self.closed)
    }
}

/// Checks that `dir` is writable (by creating and removing a file) and
/// takes `PATH.lock`.
fn lock(path: &Path, dir: &Path) -> Result<File, String> {
    let p = path.display();
    let probe = with_suffix(path, &format!(".probe-{}", std::process::id()));
    File::create(&probe)
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

/// Saves the engine's state: snapshot, encode, write. The stall this puts
/// on the loop is measured in the README ("State across restarts").
pub fn save(
    file: &StateFile,
    settings: &Settings,
    windows: &Windows,
    join: &Join,
) -> io::Result<()> {
    let bytes = snapshot::encode(&snapshot::capture(settings, windows, join));
    file.save(&bytes)
}

/// Periodic saves off the event loop: the loop hands over a copy of the
/// state (the only stall it sees, measured in the README) and this thread
/// captures, encodes and writes it. A save asked for while the previous
/// one still runs is skipped: the next interval brings a newer state.
pub struct Saver {
    jobs: Option<crossbeam_channel::Sender<(Windows, Caches)>>,
    busy: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Saver {
    /// Starts the saver thread for `file`.
    pub fn start(file: Arc<StateFile>, settings: Arc<Settings>) -> io::Result<Saver> {
        let (jobs, rx) = crossbeam_channel::bounded::<(Windows, Caches)>(1);
        let busy = Arc::new(AtomicBool::new(false));
        let done = busy.clone();
        let thread = std::thread::Builder::new()
            .name("state-saver".into())
            .spawn(move || {
                for (windows, caches) in rx {
                    let join = Join::from_caches(settings.clone(), caches);
                    if let Err(e) = save(&file, &settings, &windows, &join) {
                        log::error!("state file {}: save failed: {e}", file.path().display());
                    }
                    done.store(false, Ordering::Release);
                }
            })?;
        Ok(Saver {
            jobs: Some(jobs),
            busy,
            thread: Some(thread),
        })
    }

    /// Saves a copy of this state unless a save is still running.
    pub fn save(&self, windows: &Windows, join: &Join) {
        let Some(jobs) = &self.jobs else { return };
        if self.busy.swap(true, Ordering::AcqRel) {
            log::debug!("state save skipped: the previous one is still running");
            return;
        }
        if jobs.try_send((windows.clone(), join.caches())).is_err() {
            self.busy.store(false, Ordering::Release);
        }
    }

    /// Waits for a save under way, then stops the thread. Call it before
    /// the save at stop, so that an older state never lands after it.
    pub fn finish(mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
