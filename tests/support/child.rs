//! The test kit's child processes: the program binary run as a test needs
//! it, with every wait bounded and no child outliving its test.
//!
//! - how to start it: [`Launch`] (arguments, environment, stdin a pipe or
//!   a file, stdout read here or left to the test), or [`Proc::spawn`] for
//!   the common case (three pipes, both outputs read here);
//! - the running child: [`Proc`]: write to stdin, close it, send signals,
//!   wait for what stdout or stderr holds ([`Captured`]), wait for the exit
//!   ([`Exit`]); dropping it kills and reaps a child still running;
//! - a child still running after [`HARD_TIMEOUT`] is killed by a watchdog,
//!   and the test fails.
//!
//! stdout and stderr are read on background threads into buffers that the
//! test reads and waits on, so the child never blocks on a full pipe
//! unless the test asks for that (`Launch::keep_stdout`).
//!
//! Tests include it with `#[path = "support/child.rs"] mod child;`. It is
//! not part of `support/mod.rs`, which the fuzz crate and the benches
//! include: it needs rustix (for `kill(2)`), a dev-dependency they lack.

// Each user compiles this module and uses only part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

pub use rustix::process::Signal;
use rustix::process::{kill_process, Pid};

/// The program under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_e2e-aggregator");

/// A child still running after this long is killed and its test fails.
pub const HARD_TIMEOUT: Duration = Duration::from_secs(60);

/// How long [`Proc::wait_exit`] waits, after the exit, for the outputs to
/// reach end of file (a grandchild holding them open would be a bug).
const DRAIN: Duration = Duration::from_secs(5);

/// How often an exit is looked for: the resolution of [`Exit::at`].
const POLL: Duration = Duration::from_millis(2);

// ---------------------------------------------------------------------------
// Starting

/// How to start the binary: a [`Command`] with the test kit's defaults
/// (stdin, stdout and stderr pipes, both outputs read on threads).
pub struct Launch {
    command: Command,
    /// `None`: a pipe the test writes with [`Proc::write`].
    stdin: Option<Stdio>,
    /// What becomes of stdout.
    stdout: Out,
}

/// Where the child's stdout goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Out {
    /// A pipe read on a thread into [`Proc::stdout`].
    Read,
    /// A pipe left to the test ([`Proc::take_stdout`]).
    Keep,
    /// A pipe whose reading end is closed before the child starts.
    Closed,
}

impl Launch {
    /// The binary without arguments.
    pub fn new() -> Launch {
        Launch {
            command: Command::new(BIN),
            stdin: None,
            stdout: Out::Read,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Launch {
        self.command.arg(arg);
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Launch {
        self.command.args(args);
        self
    }

    /// Sets one variable of the child's environment (the rest is the
    /// test's).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Launch {
        self.command.env(key, value);
        self
    }

    /// stdin from `stdin` instead of a pipe: a `File` of a regular file
    /// makes the run a replay.
    pub fn stdin(mut self, stdin: impl Into<Stdio>) -> Launch {
        self.stdin = Some(stdin.into());
        self
    }

    /// Leaves stdout unread, for the test to take ([`Proc::take_stdout`]):
    /// to read it at its own pace (so that the child blocks on a full
    /// pipe) or to close it.
    pub fn keep_stdout(mut self) -> Launch {
        self.stdout = Out::Keep;
        self
    }

    /// stdout a pipe nobody reads any more, from the start: every write
    /// to it fails with `EPIPE`, whenever it comes.
    pub fn closed_stdout(mut self) -> Launch {
        self.stdout = Out::Closed;
        self
    }

    /// Starts the child; panics if it cannot be started.
    pub fn spawn(self) -> Proc {
        let Launch {
            mut command,
            stdin,
            stdout,
        } = self;
        let into = match stdout {
            Out::Read | Out::Keep => Stdio::piped(),
            Out::Closed => {
                let (reader, writer) = io::pipe().expect("a pipe");
                drop(reader);
                writer.into()
            }
        };
        let mut child = command
            .stdin(stdin.unwrap_or_else(Stdio::piped))
            .stdout(into)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
        let stdin = child.stdin.take();
        let stderr = child.stderr.take().expect("stderr is a pipe");
        let out = Arc::new(Shared::default());
        let err = Arc::new(Shared::default());
        let reads_stdout = stdout == Out::Read;
        let stdout = match (stdout, child.stdout.take()) {
            (Out::Read, Some(stdout)) => {
                let out = Arc::clone(&out);
                thread::spawn(move || read_into(stdout, &out));
                None
            }
            (_, stdout) => stdout,
        };
        {
            let err = Arc::clone(&err);
            thread::spawn(move || read_into(stderr, &err));
        }
        let pid = child.id();
        let child = Arc::new(Mutex::new(child));
        let killed = Arc::new(AtomicBool::new(false));
        let (watchdog, stop) = mpsc::channel::<()>();
        {
            let child = Arc::clone(&child);
            let killed = Arc::clone(&killed);
            thread::spawn(move || {
                // Ends early when the `Proc` (and so the sender) is dropped.
                if let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(HARD_TIMEOUT) {
                    killed.store(true, Ordering::SeqCst);
                    // Kill on a reaped child is a no-op, never another pid.
                    let _ = lock(&child).kill();
                }
            });
        }
        Proc {
            child,
            pid,
            stdin,
            stdout,
            reads_stdout,
            out,
            err,
            _watchdog: watchdog,
            killed,
        }
    }

    /// Starts the child, closes stdin if it is a pipe (so the child sees
    /// its end at once, as with `Command::output`) and waits up to
    /// `timeout` for the exit.
    #[track_caller]
    pub fn run(self, timeout: Duration) -> Exit {
        self.spawn().finish(timeout)
    }
}

impl Default for Launch {
    fn default() -> Launch {
        Launch::new()
    }
}

// ---------------------------------------------------------------------------
// What the outputs hold

/// What one output of the child has written so far.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    /// Every byte read, in order.
    pub bytes: Vec<u8>,
    /// After each read: how many bytes had been read, and when the read
    /// returned.
    reads: Vec<(usize, Instant)>,
    /// The output reached end of file (or could not be read any more).
    pub eof: bool,
}

impl Captured {
    /// The bytes as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The bytes up to and including the last line feed; all of them at
    /// end of file. A predicate on this never sees half a line.
    pub fn complete(&self) -> &[u8] {
        if self.eof {
            return &self.bytes;
        }
        let end = self
            .bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |k| k + 1);
        &self.bytes[..end]
    }

    /// The lines of [`Captured::complete`], without their line feeds.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.complete()
            .split_inclusive(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\n").unwrap_or(l))
    }

    /// The lines as text.
    pub fn text_lines(&self) -> Vec<String> {
        self.lines()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    /// When the read that brought the first `end` bytes returned; `None`
    /// if they have not all come.
    pub fn arrived(&self, end: usize) -> Option<Instant> {
        let k = self.reads.partition_point(|&(n, _)| n < end);
        self.reads.get(k).map(|&(_, at)| at)
    }
}

/// An output shared with its reader thread, with a condition variable
/// notified on every change.
#[derive(Default)]
struct Shared {
    state: Mutex<Captured>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Captured> {
        lock(&self.state)
    }

    fn update(&self, f: impl FnOnce(&mut Captured)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    /// Waits until `done` holds, up to `timeout`; returns whether it held.
    /// Gives up early at end of file, after which nothing changes.
    fn wait_until(&self, timeout: Duration, mut done: impl FnMut(&Captured) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = self.lock();
        loop {
            if done(&guard) {
                return true;
            }
            let now = Instant::now();
            if guard.eof || now >= deadline {
                return false;
            }
            guard = self
                .changed
                .wait_timeout(guard, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// A lock that a panicking test thread does not poison for the others.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads `from` into `into` until end of file.
fn read_into(mut from: impl Read, into: &Shared) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let at = Instant::now();
                into.update(|c| {
                    c.bytes.extend_from_slice(&buf[..n]);
                    c.reads.push((c.bytes.len(), at));
                });
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    into.update(|c| c.eof = true);
}

// ---------------------------------------------------------------------------
// The running child

/// How the child ended, and everything it wrote.
#[derive(Debug, Clone)]
pub struct Exit {
    pub status: ExitStatus,
    /// When the exit was seen (polled every 2 ms).
    pub at: Instant,
    /// All of stdout; empty if the test kept stdout.
    pub stdout: Vec<u8>,
    /// All of stderr, as text.
    pub stderr: String,
}

impl Exit {
    /// The exit code; `None` after a death by signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// A running child (see the module doc). Dropping it closes stdin and kills
/// and reaps the child if it still runs.
pub struct Proc {
    /// Shared with the watchdog; reaped only through this lock, so a pid
    /// signalled under it is the child's.
    child: Arc<Mutex<Child>>,
    pid: u32,
    stdin: Option<ChildStdin>,
    /// stdout, until the test takes it (only with `Launch::keep_stdout`).
    stdout: Option<ChildStdout>,
    reads_stdout: bool,
    out: Arc<Shared>,
    err: Arc<Shared>,
    /// Dropping it stops the watchdog.
    _watchdog: mpsc::Sender<()>,
    /// Set when the watchdog killed the child.
    killed: Arc<AtomicBool>,
}

impl Proc {
    /// Starts the binary with `args`, stdin, stdout and stderr pipes, both
    /// outputs read here.
    pub fn spawn(args: &[&str]) -> Proc {
        Launch::new().args(args).spawn()
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Writes `bytes` to stdin at once (nothing is buffered on this side);
    /// panics, with the exit status and stderr, if that fails.
    #[track_caller]
    pub fn write(&mut self, bytes: impl AsRef<[u8]>) {
        if let Err(e) = self.try_write(bytes) {
            panic!(
                "writing stdin failed: {e}; exit {:?}; stderr:\n{}",
                self.try_status(),
                self.stderr_text()
            );
        }
    }

    /// Like [`Proc::write`], returning the error (a child that stopped
    /// reading gives a broken pipe).
    #[track_caller]
    pub fn try_write(&mut self, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        let stdin = self.stdin.as_mut().expect("stdin is closed, or not a pipe");
        stdin.write_all(bytes.as_ref())?;
        stdin.flush()
    }

    /// Closes stdin: the child sees its end. Closing it again is a no-op.
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// stdout, for a test that reads or closes it itself; panics unless
    /// started with `Launch::keep_stdout` (and only once).
    #[track_caller]
    pub fn take_stdout(&mut self) -> ChildStdout {
        self.stdout
            .take()
            .expect("stdout is read by the test kit (Launch::keep_stdout leaves it to the test)")
    }

    /// Sends `signal` with `kill(2)`; a no-op once the child has exited.
    #[track_caller]
    pub fn signal(&self, signal: Signal) {
        let mut child = lock(&self.child);
        if child.try_wait().expect("try_wait").is_some() {
            return;
        }
        // Not reaped (the lock is held): the pid is still the child's.
        if let Err(e) = kill_process(Pid::from_child(&child), signal) {
            panic!("kill({}, {signal:?}) failed: {e}", self.pid);
        }
    }

    /// The exit status, if the child has exited.
    pub fn try_status(&self) -> Option<ExitStatus> {
        lock(&self.child).try_wait().expect("try_wait")
    }

    /// What stdout holds now (empty if the test kept stdout).
    pub fn stdout(&self) -> Captured {
        self.out.lock().clone()
    }

    /// What stderr holds now.
    pub fn stderr(&self) -> Captured {
        self.err.lock().clone()
    }

    /// stderr's lines so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.err.lock().text_lines()
    }

    /// stderr so far, as text.
    pub fn stderr_text(&self) -> String {
        self.err.lock().text()
    }

    /// Waits until `done` holds for stdout, up to `timeout` (less if stdout
    /// ends first); returns whether it held. `done` runs after every read.
    pub fn try_wait_stdout(&self, timeout: Duration, done: impl FnMut(&Captured) -> bool) -> bool {
        self.out.wait_until(timeout, done)
    }

    /// [`Proc::try_wait_stdout`] for stderr.
    pub fn try_wait_stderr(&self, timeout: Duration, done: impl FnMut(&Captured) -> bool) -> bool {
        self.err.wait_until(timeout, done)
    }

    /// Like [`Proc::try_wait_stdout`]; panics if `done` does not hold, with
    /// `what` (what was awaited) and both outputs.
    #[track_caller]
    pub fn wait_stdout(&self, timeout: Duration, what: &str, done: impl FnMut(&Captured) -> bool) {
        if !self.try_wait_stdout(timeout, done) {
            self.waited_in_vain(timeout, what);
        }
    }

    /// Like [`Proc::try_wait_stderr`]; panics as [`Proc::wait_stdout`].
    #[track_caller]
    pub fn wait_stderr(&self, timeout: Duration, what: &str, done: impl FnMut(&Captured) -> bool) {
        if !self.try_wait_stderr(timeout, done) {
            self.waited_in_vain(timeout, what);
        }
    }

    /// Waits until stdout holds a line (without its line feed) for which
    /// `matches` holds; returns when it came. Panics as
    /// [`Proc::wait_stdout`].
    #[track_caller]
    pub fn wait_stdout_line(
        &self,
        timeout: Duration,
        what: &str,
        mut matches: impl FnMut(&[u8]) -> bool,
    ) -> Instant {
        let mut at = None;
        self.wait_stdout(timeout, what, |c| {
            let mut end = 0;
            for line in c.lines() {
                // The line feed, unless the last line at end of file has none.
                end = (end + line.len() + 1).min(c.bytes.len());
                if matches(line) {
                    at = c.arrived(end);
                    return true;
                }
            }
            false
        });
        at.expect("a line read has a read that brought it")
    }

    /// Waits until stderr holds a line (without its line feed) for which
    /// `matches` holds; returns it. Panics as [`Proc::wait_stdout`].
    #[track_caller]
    pub fn wait_stderr_line(
        &self,
        timeout: Duration,
        what: &str,
        mut matches: impl FnMut(&str) -> bool,
    ) -> String {
        let mut found = None;
        self.wait_stderr(timeout, what, |c| {
            found = c
                .lines()
                .map(String::from_utf8_lossy)
                .find(|l| matches(l))
                .map(|l| l.into_owned());
            found.is_some()
        });
        found.expect("found")
    }

    #[track_caller]
    fn waited_in_vain(&self, timeout: Duration, what: &str) -> ! {
        let stdout = if self.reads_stdout {
            self.out.lock().text()
        } else {
            "(kept by the test)".into()
        };
        panic!(
            "waited {timeout:?} in vain for {what}; exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            self.try_status(),
            self.stderr_text()
        );
    }

    /// Waits up to `timeout` for the exit, then for the outputs to reach
    /// end of file; panics, with stderr, if either does not come. Leaves
    /// stdin as it is: a child that waits for its end does not exit.
    #[track_caller]
    pub fn wait_exit(&self, timeout: Duration) -> Exit {
        match self.try_wait_exit(timeout) {
            Some(exit) => exit,
            None => panic!(
                "still running {timeout:?} later; stderr:\n{}",
                self.stderr_text()
            ),
        }
    }

    /// Like [`Proc::wait_exit`], `None` if the child still runs after
    /// `timeout` (it panics only if the outputs do not end after the exit).
    #[track_caller]
    pub fn try_wait_exit(&self, timeout: Duration) -> Option<Exit> {
        let deadline = Instant::now() + timeout;
        let (status, at) = loop {
            if let Some(status) = self.try_status() {
                break (status, Instant::now());
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL);
        };
        if self.reads_stdout {
            assert!(
                self.out.wait_until(DRAIN, |c| c.eof),
                "stdout not closed {DRAIN:?} after the exit"
            );
        }
        assert!(
            self.err.wait_until(DRAIN, |c| c.eof),
            "stderr not closed {DRAIN:?} after the exit"
        );
        Some(Exit {
            status,
            at,
            stdout: self.out.lock().bytes.clone(),
            stderr: self.stderr_text(),
        })
    }

    /// Closes stdin and [waits for the exit](Proc::wait_exit).
    #[track_caller]
    pub fn finish(&mut self, timeout: Duration) -> Exit {
        self.close_stdin();
        self.wait_exit(timeout)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let mut child = lock(&self.child);
        if child.try_wait().ok().flatten().is_none() {
            let _ = child.kill();
        }
        let _ = child.wait();
        if self.killed.load(Ordering::SeqCst) && !thread::panicking() {
            panic!("the child was killed by the watchdog after {HARD_TIMEOUT:?}");
        }
    }
}
