//! Saves: the one function that writes a state and deletes the journal
//! files it covers, and the thread that runs periodic saves off the event
//! loop.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::join::{Caches, Join};
use crate::logging::RateLimit;
use crate::settings::Settings;
use crate::window::Windows;

use super::super::journal_files;
use super::super::snapshot::{self, Identity};
use super::super::StateFile;
use super::error;

/// Encodes and writes a state durably, then deletes the journal files it
/// covers.
pub(super) fn save(
    file: &StateFile,
    settings: &Settings,
    identity: &Identity,
    windows: &Windows,
    join: &Join,
) -> io::Result<()> {
    let bytes = snapshot::encode(&snapshot::capture(settings, identity, windows, join));
    file.save(&bytes)?;
    journal_files::delete_through(file, identity.journal)
}

/// A save's copy, on its way to the saver thread.
type Job = (Windows, Caches, Identity);

/// Periodic saves off the event loop: the loop hands over a copy of the
/// state (the only stall it sees, measured in the README) and this thread
/// captures, encodes and writes it, then deletes the journal files it
/// covers.
pub(super) struct Saver {
    jobs: Option<crossbeam_channel::Sender<Job>>,
    busy: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Saver {
    pub(super) fn start(
        file: Arc<StateFile>,
        settings: Arc<Settings>,
        failed: Arc<AtomicBool>,
        errors: Arc<Mutex<RateLimit>>,
    ) -> io::Result<Saver> {
        let (jobs, rx) = crossbeam_channel::bounded::<Job>(1);
        let busy = Arc::new(AtomicBool::new(false));
        let done = busy.clone();
        let thread = std::thread::Builder::new()
            .name("state-saver".into())
            .spawn(move || {
                for (windows, caches, identity) in rx {
                    let join = Join::from_caches(settings.clone(), caches);
                    if let Err(e) = save(&file, &settings, &identity, &windows, &join) {
                        failed.store(true, Ordering::Release);
                        error(&errors, file.path(), format_args!("save failed: {e}"));
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

    pub(super) fn busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Waits until no save is under way (only while the journal is
    /// behind, when a save must be made on the loop's thread and must not
    /// race this one for `PATH.tmp`).
    pub(super) fn wait_idle(&self) {
        while self.busy() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    pub(super) fn save(&self, windows: &Windows, join: &Join, identity: Identity) {
        let Some(jobs) = &self.jobs else { return };
        self.busy.store(true, Ordering::Release);
        if jobs
            .try_send((windows.clone(), join.caches(), identity))
            .is_err()
        {
            self.busy.store(false, Ordering::Release);
        }
    }

    /// Waits for a save under way, then stops the thread, so that an
    /// older state never lands after the one at stop.
    pub(super) fn finish(mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
