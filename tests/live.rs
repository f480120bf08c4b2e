//! Live mode, end to end: the binary runs as Telegraf's `[[processors.execd]]`
//! runs it, with stdin, stdout and stderr all pipes (so not a replay), fed
//! line protocol as metrics arrive, with pauses, and stopped the ways Telegraf
//! and service managers stop it (SPEC.md: Windows, Output, Operations).
//!
//! The binary runs under the test kit's harness (`tests/support/child.rs`),
//! which reads stdout and stderr on background threads and notes when each
//! read returned. Here stdout is parsed strictly (every record must be a
//! point Telegraf's parser accepts, ending in a single `\n`), each record
//! with when it arrived, so the tests can bound latencies: a program that
//! buffers its output, stalls or hangs fails them. Timestamps are near the
//! real wall clock so that the live wall-clock cap and the future guard do
//! not interfere. Every child is killed by the harness's watchdog after
//! `child::HARD_TIMEOUT`, and every wait is bounded.
//!
//! Measured latencies are printed with `eprintln!`; see them with
//! `cargo test --test live -- --nocapture`.

use std::process::ExitStatus;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod support;

#[path = "support/child.rs"]
mod child;
#[path = "support/rng.rs"]
mod rng;

use child::{Captured, Launch, Proc, Signal};
use e2e_aggregator::lp::{self, Point};
use rng::Rng;
use support::Stats;

/// How soon after a stop (stdin closed, SIGTERM, SIGINT) the process must
/// have exited (SPEC.md, "Stop": finish within 1 s of the first of them).
const STOP_BUDGET: Duration = Duration::from_secs(1);

/// How soon a line written to stdin must come back on stdout.
const PROMPT: Duration = Duration::from_millis(500);

const SEC: i64 = 1_000_000_000;

// ---------------------------------------------------------------------------
// Clocks

/// The wall clock in ns since the epoch.
fn wall_ns() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(d.as_nanos()).unwrap()
}

/// The monotonic instant at which the wall clock reads (or read) `ns`.
fn instant_at_wall(ns: i64) -> Instant {
    let (i0, w0) = (Instant::now(), wall_ns());
    if ns >= w0 {
        i0 + Duration::from_nanos((ns - w0) as u64)
    } else {
        i0 - Duration::from_nanos((w0 - ns) as u64)
    }
}

/// Sleeps until `offset` ns into the next window of `period` ns and returns
/// that window's start, so that a test has almost a whole window ahead.
fn next_window(period: i64, offset: i64) -> i64 {
    let start = (wall_ns().div_euclid(period) + 1) * period;
    let target = start + offset;
    let now = wall_ns();
    if target > now {
        thread::sleep(Duration::from_nanos((target - now) as u64));
    }
    start
}

/// `a - b` in milliseconds, signed.
fn ms_between(a: Instant, b: Instant) -> f64 {
    if a >= b {
        (a - b).as_secs_f64() * 1e3
    } else {
        -((b - a).as_secs_f64() * 1e3)
    }
}

// ---------------------------------------------------------------------------
// stdout as Telegraf reads it

/// One output record: its bytes (ending in `\n`), as parsed, and when the
/// read that completed it returned.
#[derive(Debug, Clone)]
struct Rec {
    raw: Vec<u8>,
    point: Point,
    at: Instant,
}

impl Rec {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
    fn is(&self, measurement: &str) -> bool {
        self.point.measurement == measurement.as_bytes()
    }
    /// This record as a self-metrics line (the test kit's reading).
    fn stats(&self) -> Stats {
        Stats::from_point(&self.point).unwrap_or_else(|e| panic!("{e}: {:?}", self.text()))
    }
}

/// stdout so far, parsed strictly.
#[derive(Default)]
struct Out {
    /// The complete records, in order.
    recs: Vec<Rec>,
    /// Everything that Telegraf's parser would reject, or that the output
    /// contract forbids.
    violations: Vec<String>,
}

impl Out {
    /// The records of `stdout`; a record still incomplete is left out
    /// until the end of file, where it is a violation.
    fn parse(stdout: &Captured) -> Out {
        let mut out = Out::default();
        let (buf, at_eof) = (&stdout.bytes, stdout.eof);
        let mut pos = 0;
        while pos < buf.len() {
            let rest = &buf[pos..];
            let mut point = Point::default();
            match lp::parse_record(rest, at_eof, &mut point) {
                lp::Outcome::Record(rec) => {
                    let raw = &rest[..rec.len];
                    if rec.kind != lp::RecordKind::Point {
                        out.violations.push(format!(
                            "{:?} record on stdout: {:?}",
                            rec.kind,
                            String::from_utf8_lossy(raw)
                        ));
                    } else if rec.len != rec.body + 1
                        || raw.last() != Some(&b'\n')
                        || raw[..rec.body].last() == Some(&b'\r')
                    {
                        out.violations.push(format!(
                            "record not ending in a single \\n: {:?}",
                            String::from_utf8_lossy(raw)
                        ));
                    } else {
                        out.recs.push(Rec {
                            raw: raw.to_vec(),
                            point,
                            at: stdout.arrived(pos + rec.len).expect("bytes read"),
                        });
                    }
                    pos += rec.len.max(1);
                }
                lp::Outcome::Invalid(err) => {
                    let skip = lp::resume_after(rest, err.offset).max(1);
                    out.violations.push(format!(
                        "output Telegraf would reject ({err}): {:?}",
                        String::from_utf8_lossy(&rest[..skip])
                    ));
                    pos += skip;
                }
                lp::Outcome::NeedMore => break,
            }
        }
        if at_eof && pos < buf.len() {
            out.violations.push(format!(
                "output ends without a line feed: {:?}",
                String::from_utf8_lossy(&buf[pos..])
            ));
        }
        out
    }

    fn with(&self, measurement: &str) -> Vec<&Rec> {
        self.recs.iter().filter(|r| r.is(measurement)).collect()
    }
    fn find(&self, raw: &[u8]) -> Option<&Rec> {
        self.recs.iter().find(|r| r.raw == raw)
    }
    fn count(&self, raw: &[u8]) -> usize {
        self.recs.iter().filter(|r| r.raw == raw).count()
    }
}

// ---------------------------------------------------------------------------
// The process under test

/// What these tests ask of the harness's child beyond the harness: stdout
/// as records, Telegraf's conventions, a handshake, a freeze.
trait LiveProc {
    /// stdout so far, parsed.
    fn out(&self) -> Out;
    /// Waits until `done` holds on stdout, up to `timeout`.
    fn wait_out(&self, timeout: Duration, done: impl FnMut(&Out) -> bool) -> bool;
    /// Waits until `raw` has come out on stdout; returns when it came.
    fn wait_line(&self, raw: &[u8], timeout: Duration) -> Option<Instant>;
    /// Waits for the exit (up to `timeout`) and the end of the outputs;
    /// fails the test, saying `what`, if it does not come.
    fn expect_exit(&self, timeout: Duration, what: &str) -> (ExitStatus, Instant);
    /// Fails on anything on stdout that Telegraf would reject, and on
    /// stderr lines that break Telegraf's conventions.
    fn assert_clean_streams(&self);
    /// A handshake: a line written must come back, which also proves that
    /// the signal handlers are installed and the loop runs.
    fn ready(&mut self);
    /// Holds the process with SIGSTOP and waits until the kernel shows it
    /// stopped.
    fn freeze(&self);
}

impl LiveProc for Proc {
    fn out(&self) -> Out {
        Out::parse(&self.stdout())
    }

    fn wait_out(&self, timeout: Duration, mut done: impl FnMut(&Out) -> bool) -> bool {
        self.try_wait_stdout(timeout, |stdout| done(&Out::parse(stdout)))
    }

    fn wait_line(&self, raw: &[u8], timeout: Duration) -> Option<Instant> {
        let mut at = None;
        self.wait_out(timeout, |s| {
            at = s.find(raw).map(|r| r.at);
            at.is_some()
        });
        at
    }

    #[track_caller]
    fn expect_exit(&self, timeout: Duration, what: &str) -> (ExitStatus, Instant) {
        let Some(exit) = self.try_wait_exit(timeout) else {
            panic!(
                "{what}: still running after {timeout:?}; stderr:\n{}",
                self.stderr_text()
            );
        };
        (exit.status, exit.at)
    }

    fn assert_clean_streams(&self) {
        let out = self.out();
        assert!(
            out.violations.is_empty(),
            "stdout violations:\n{}",
            out.violations.join("\n")
        );
        for line in self.stderr_lines() {
            assert!(
                ["E! ", "W! ", "I! ", "D! ", "T! "]
                    .iter()
                    .any(|p| line.starts_with(p)),
                "stderr line without a Telegraf level prefix: {line:?}"
            );
            assert!(line.len() < 1024, "stderr line over 1 KiB: {line:?}");
        }
    }

    fn ready(&mut self) {
        let line = format!("ready,probe=1 up=1i {}\n", wall_ns());
        self.write(line.as_bytes());
        assert!(
            self.wait_line(line.as_bytes(), Duration::from_secs(10))
                .is_some(),
            "the probe line did not come back within 10 s; stderr:\n{}",
            self.stderr_text()
        );
    }

    fn freeze(&self) {
        self.signal(Signal::STOP);
        let stat = format!("/proc/{}/stat", self.pid());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&stat).unwrap_or_default();
            // The state follows the parenthesised command name.
            let state = text.rsplit(") ").next().and_then(|r| r.chars().next());
            if state == Some('T') {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not stopped 5 s after SIGSTOP: {text:?}"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Runs the binary with `args` and stdin open (so a program that wrongly
/// starts reading would hang) and returns (status, stdout, stderr).
fn run_cli(args: &[&str]) -> (ExitStatus, String, String) {
    let p = Proc::spawn(args);
    let Some(exit) = p.try_wait_exit(Duration::from_secs(10)) else {
        panic!("{args:?}: still running after 10 s");
    };
    (exit.status, exit.stdout_text(), p.stderr_lines().join("\n"))
}

// ---------------------------------------------------------------------------
// Input

fn net(path: &str, src: &str, dst: &str, latency: &str, bandwidth: &str, ts: i64) -> String {
    format!("network_delays,path={path},source={src},target={dst} latency={latency},bandwidth={bandwidth} {ts}\n")
}

fn svc(sfr: &str, endpoint: &str, inst: &str, rt: &str, req: &str, resp: &str, ts: i64) -> String {
    format!("service_delays,endpoint={endpoint},sf_instance={inst},sfr={sfr} response_time={rt},request_size={req},response_size={resp} {ts}\n")
}

/// The row the join writes for forward path `p1` A→B, reverse B→A and
/// service `sfr=B` (`ep1`/`inst1`).
fn row(values: [&str; 6], start: i64) -> String {
    format!(
        "e2e_delays,endpoint=ep1,path_ID=p1,sf_instance=inst1,source_SFR=A,target_SFR=B \
         delay_forward={},delay_reverse={},delay_service={},avg_request_size={},avg_response_size={},avg_bandwidth={} {start}\n",
        values[0], values[1], values[2], values[3], values[4], values[5]
    )
}

/// The points of one complete window starting at `start`, all stamped in
/// its first 40 ms, and the row they must give.
fn one_window(start: i64) -> (Vec<String>, String) {
    let lines = vec![
        net("p1", "A", "B", "10", "100", start + 10_000_000),
        net("p1", "A", "B", "20i", "200", start + 20_000_000),
        net("p1", "B", "A", "12", "90", start + 15_000_000),
        svc(
            "B",
            "ep1",
            "inst1",
            "3",
            "100i",
            "2000u",
            start + 30_000_000,
        ),
    ];
    let row = row(["15.0", "12.0", "3.0", "100.0", "2000.0", "150.0"], start);
    (lines, row)
}

// ---------------------------------------------------------------------------
// 1, 2: idle advance

/// What goes on after a window's points were written, stdin staying open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meanwhile {
    /// No input at all.
    Nothing,
    /// A `cpu` line every 100 ms.
    CpuLines,
    /// A record left open (an unterminated quoted string) waits for more.
    OpenRecord,
    /// An agent whose clock runs 10 minutes ahead reports, then a point of
    /// the window comes 300 ms later: it must still count (the wall-clock
    /// cap), and the window must still close on time.
    AheadAgent,
}

/// Feeds one window's points, then `meanwhile`, with stdin open: the row
/// must come out about `grace` after the window's end in wall time, and not
/// before.
fn idle_advance(meanwhile: Meanwhile) {
    let chatter = meanwhile == Meanwhile::CpuLines;
    let (period, grace) = (SEC, SEC);
    let mut p = Proc::spawn(&["--period", "1s", "--grace", "1s", "--idle", "200ms"]);
    p.ready();
    let start = next_window(period, 50_000_000);
    let (mut lines, mut row) = one_window(start);
    let written = Instant::now();
    p.write(lines.concat().as_bytes());
    let end = instant_at_wall(start + period);
    match meanwhile {
        Meanwhile::OpenRecord => p.write(b"log,src=app msg=\"still open, waiting"),
        Meanwhile::AheadAgent => {
            let ahead = net("p5", "F", "G", "1", "1", start + 600 * SEC);
            p.write(ahead.as_bytes());
            lines.push(ahead);
            thread::sleep(Duration::from_millis(300));
            let late_looking = net("p1", "A", "B", "30", "300", start + 300_000_000);
            p.write(late_looking.as_bytes());
            lines.push(late_looking);
            row = self::row(["20.0", "12.0", "3.0", "100.0", "2000.0", "200.0"], start);
        }
        Meanwhile::Nothing | Meanwhile::CpuLines => {}
    }

    let bound = Duration::from_nanos((grace + period) as u64) + Duration::from_secs(2);
    let give_up = end + bound + Duration::from_secs(5);
    let mut cpu_lines = Vec::new();
    let mut row_at = None;
    while Instant::now() < give_up {
        if chatter {
            let line = format!(
                "cpu,host=h1 usage_idle=99.5,n={}i {}\n",
                cpu_lines.len(),
                wall_ns()
            );
            p.write(line.as_bytes());
            cpu_lines.push(line);
        }
        row_at = p.wait_line(row.as_bytes(), Duration::from_millis(100));
        if row_at.is_some() {
            break;
        }
    }
    let Some(row_at) = row_at else {
        panic!(
            "no row {} s after the window's end (stdin open, {:?}); stdout so far:\n{}\nstderr:\n{}",
            (give_up - end).as_secs(),
            meanwhile,
            p.out().recs.iter().map(Rec::text).collect::<String>(),
            p.stderr_text()
        );
    };
    let latency = ms_between(row_at, end);
    eprintln!(
        "idle advance ({meanwhile:?}): row {latency:.0} ms after the window's end (grace {} ms, bound {} ms)",
        grace / 1_000_000,
        bound.as_millis()
    );
    assert!(
        latency <= bound.as_secs_f64() * 1e3,
        "row came {latency:.0} ms after the window's end, bound {} ms",
        bound.as_millis()
    );
    // The cap: the watermark never passes wall clock − grace.
    assert!(
        latency >= (grace / 1_000_000) as f64 - 30.0,
        "row came {latency:.0} ms after the window's end, before grace ({} ms) had passed",
        grace / 1_000_000
    );
    // The pass-through copies came promptly.
    let out = p.out();
    for line in &lines {
        let at = out.find(line.as_bytes()).map(|r| r.at);
        let at = at.unwrap_or_else(|| panic!("pass-through copy of {line:?} missing"));
        assert!(
            at - written < Duration::from_secs(1),
            "pass-through copy came {:?} after the write",
            at - written
        );
    }
    thread::sleep(Duration::from_millis(300));
    assert!(p.try_status().is_none(), "exited with stdin open");
    p.close_stdin();
    let t0 = Instant::now();
    let (status, exited) = p.expect_exit(Duration::from_secs(10), "after stdin closed");
    assert!(
        status.success(),
        "exit {status:?}; stderr:\n{}",
        p.stderr_text()
    );
    assert!(
        exited - t0 <= STOP_BUDGET,
        "exited {:?} after stdin closed",
        exited - t0
    );
    p.assert_clean_streams();
    let out = p.out();
    let rows = out.with("e2e_delays");
    assert_eq!(
        rows.len(),
        1,
        "rows: {:?}",
        rows.iter().map(|r| r.text()).collect::<Vec<_>>()
    );
    for line in &cpu_lines {
        assert_eq!(
            out.count(line.as_bytes()),
            1,
            "cpu line {line:?} not passed exactly once"
        );
    }
}

#[test]
fn idle_advance_closes_a_window_without_more_input() {
    idle_advance(Meanwhile::Nothing);
}

#[test]
fn idle_advance_closes_a_window_while_other_lines_flow() {
    idle_advance(Meanwhile::CpuLines);
}

#[test]
fn idle_advance_closes_a_window_while_a_record_is_open() {
    idle_advance(Meanwhile::OpenRecord);
}

#[test]
fn an_agent_ahead_of_the_clock_makes_no_one_late() {
    idle_advance(Meanwhile::AheadAgent);
}

// ---------------------------------------------------------------------------
// 3-6: stops

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    StdinClosed,
    Term,
    TermAndStdinClosed,
    Int,
}

/// Two open windows (grace 30 s, so neither closes by itself), 300 `cpu`
/// lines written right before the stop: every row and every line must come
/// out, and the process exit 0 within 1 s.
///
/// `frozen`: the process is held with SIGSTOP while the last lines are
/// written and the stop is made, then let go with SIGCONT, so the lines are
/// certainly still unread in the pipe when it sees the stop (without it, the
/// program usually reads them before the signal lands). The time to exit is
/// then measured from SIGCONT.
fn stop(kind: Stop, frozen: bool) {
    let period = SEC;
    let mut p = Proc::spawn(&["--period", "1s", "--grace", "30s", "--idle", "200ms"]);
    p.ready();
    let w2 = wall_ns().div_euclid(period) * period;
    let w1 = w2 - 2 * period;
    let (mut lines, row1) = one_window(w1);
    // The second window has only the forward path: reverse and service come
    // from the caches the first window filled.
    lines.push(net("p1", "A", "B", "40", "400", w2 + 1));
    let row2 = row(["40.0", "12.0", "3.0", "100.0", "2000.0", "400.0"], w2);
    p.write(lines.concat().as_bytes());
    thread::sleep(Duration::from_millis(200));
    let mut burst = String::new();
    for i in 0..300 {
        burst.push_str(&format!(
            "cpu,host=h{} usage_idle={i}.5,n={i}i {}\n",
            i % 7,
            wall_ns()
        ));
    }
    lines.extend(burst.split_inclusive('\n').map(String::from));
    if frozen {
        p.freeze();
    }
    p.write(burst.as_bytes());

    let mut t0 = Instant::now();
    match kind {
        Stop::StdinClosed => p.close_stdin(),
        Stop::Term => p.signal(Signal::TERM),
        Stop::TermAndStdinClosed => {
            p.close_stdin();
            p.signal(Signal::TERM);
        }
        Stop::Int => p.signal(Signal::INT),
    }
    if frozen {
        t0 = Instant::now();
        p.signal(Signal::CONT);
    }
    let signalled = Instant::now();
    let (status, exited) = p.expect_exit(Duration::from_secs(10), &format!("after {kind:?}"));
    let took = exited - t0;
    let rows_at = p.out().with("e2e_delays").iter().map(|r| r.at).max();
    eprintln!(
        "stop by {kind:?}{}: exited {:.0} ms after the stop ({:.0} ms after kill(2) returned), rows out {} ms after it",
        if frozen { " (frozen, from SIGCONT)" } else { "" },
        ms_between(exited, t0),
        ms_between(exited, signalled),
        rows_at.map_or("-".into(), |a| format!("{:.0}", ms_between(a, t0)))
    );
    assert!(
        status.success(),
        "{kind:?}: exit {status:?}, want 0; stderr:\n{}",
        p.stderr_text()
    );
    assert!(
        took <= STOP_BUDGET,
        "{kind:?}: exited {took:?} after the stop, budget {STOP_BUDGET:?}"
    );
    p.assert_clean_streams();
    let out = p.out();
    let rows: Vec<String> = out.with("e2e_delays").iter().map(|r| r.text()).collect();
    assert_eq!(rows, [row1, row2], "{kind:?}: rows of the open windows");
    for line in &lines {
        assert_eq!(
            out.count(line.as_bytes()),
            1,
            "{kind:?}: line written before the stop not passed exactly once: {line:?}"
        );
    }
    drop(out);
    let errors: Vec<String> = p
        .stderr_lines()
        .into_iter()
        .filter(|l| l.starts_with("E! "))
        .collect();
    assert!(errors.is_empty(), "{kind:?}: errors on stderr: {errors:?}");
}

#[test]
fn stop_by_closing_stdin() {
    stop(Stop::StdinClosed, false);
}

#[test]
fn stop_by_sigterm_with_stdin_open() {
    stop(Stop::Term, false);
}

#[test]
fn stop_by_stdin_close_and_sigterm_together() {
    stop(Stop::TermAndStdinClosed, false);
}

#[test]
fn stop_by_sigint() {
    stop(Stop::Int, false);
}

#[test]
fn a_stop_reads_what_is_already_in_the_pipe() {
    for kind in [
        Stop::Term,
        Stop::Int,
        Stop::TermAndStdinClosed,
        Stop::StdinClosed,
    ] {
        stop(kind, true);
    }
}

// ---------------------------------------------------------------------------
// 7: pass-through, exactly once, byte for byte

/// One valid line of another measurement, varied; returns (input bytes,
/// expected output bytes).
fn varied_line(i: u64, rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
    let ts = wall_ns();
    let f = rng.below(1_000_000) as f64 / 7.0;
    let body = match i % 14 {
        0 => format!(
            "cpu,host=h{},region=eu-{} usage={f},idle={i}i {ts}",
            i % 5,
            i % 3
        ),
        1 => {
            format!(r#"we\ ird\,meas,t\ k\,x=v\=1\ y f\=k="q\"uo\\te",n=-{i}i,u={i}u,b=true {ts}"#)
        }
        2 => format!("log,src=app msg=\"line one\nline two {i}\",lvl=\"warn\" {ts}"),
        3 => format!("mem,host=a used={i}i,free=1.5e3 {ts}"),
        4 => format!("disk,dev=sda free={f},ok=T {ts}   "),
        5 => format!("disk free={i}u   "),
        6 => format!("net bytes={i}u,err=0i"),
        7 => format!("raw,k=v s=\"a\rb\r\nc {i}\" {ts}"),
        8 => format!("température,ville=Zürich v=-1.5E-3,txt=\"héllo ☃ 😀 {i}\" {ts}"),
        9 => format!("   spaced   value={i}  {ts}  "),
        10 => format!("network_delays_extra,path=p,source=a,target=b latency={i} {ts}"),
        11 => format!(r##"str s="# not a comment, a=b \\ \"x\"",f=FALSE,g=t {ts}"##),
        12 => format!("big u=18446744073709551615u,i=-9223372036854775808i,x=1e300 {ts}"),
        _ => format!("service_delays\\ x,sfr=B v={i}i {ts}"),
    };
    let ending: &[u8] = if rng.below(4) == 0 { b"\r\n" } else { b"\n" };
    let mut input = body.clone().into_bytes();
    input.extend_from_slice(ending);
    let mut expected = body.into_bytes();
    expected.push(b'\n');
    (input, expected)
}

#[test]
fn pass_through_is_exactly_once_and_byte_for_byte() {
    const N: u64 = 2000;
    let mut p = Proc::spawn(&["--period", "1s", "--grace", "1s", "--idle", "200ms"]);
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let (mut input, mut expected) = (Vec::new(), Vec::new());
    let mut ends = Vec::new();
    for i in 0..N {
        let (inp, exp) = varied_line(i, &mut rng);
        input.extend_from_slice(&inp);
        ends.push(input.len());
        expected.push(exp);
    }
    // Bursts of 1..150 lines, each written in up to three pieces cut at
    // arbitrary bytes (inside a CRLF or a quoted line feed too), with pauses.
    let started = Instant::now();
    let mut line = 0usize;
    let mut from = 0usize;
    while line < ends.len() {
        line = (line + 1 + rng.below(150) as usize).min(ends.len());
        let to = ends[line - 1];
        let mut cuts = vec![from, to];
        for _ in 0..rng.below(3) {
            cuts.push(from + rng.below((to - from) as u64) as usize);
        }
        cuts.sort_unstable();
        for piece in cuts.windows(2) {
            p.write(&input[piece[0]..piece[1]]);
            if rng.below(2) == 0 {
                thread::sleep(Duration::from_millis(rng.below(4)));
            }
        }
        from = to;
        thread::sleep(Duration::from_millis(rng.below(40)));
    }
    // Everything comes back while stdin is still open.
    let all = p.wait_out(Duration::from_secs(20), |s| s.recs.len() >= N as usize);
    let fed = started.elapsed();
    let (got, violations) = {
        let out = p.out();
        (out.recs.len(), out.violations.join("\n"))
    };
    assert!(
        all,
        "only {got} of {N} lines came back with stdin open; stdout violations:\n{violations}\nstderr:\n{}",
        p.stderr_text()
    );
    p.close_stdin();
    let (status, _) = p.expect_exit(Duration::from_secs(10), "after stdin closed");
    assert!(
        status.success(),
        "exit {status:?}; stderr:\n{}",
        p.stderr_text()
    );
    p.assert_clean_streams();
    let out = p.out();
    eprintln!(
        "pass-through: {N} lines fed in {fed:?}, {} came back",
        out.recs.len()
    );
    for (k, (rec, want)) in out.recs.iter().zip(&expected).enumerate() {
        assert_eq!(
            rec.text(),
            String::from_utf8_lossy(want),
            "output record {k} differs from input line {k}"
        );
    }
    assert_eq!(out.recs.len(), expected.len(), "lines out != lines in");
    let warnings: Vec<String> = p
        .stderr_lines()
        .into_iter()
        .filter(|l| l.starts_with("W! ") || l.starts_with("E! "))
        .collect();
    assert!(
        warnings.is_empty(),
        "valid input warned about: {warnings:?}"
    );
}

// ---------------------------------------------------------------------------
// 8: garbage between valid lines

#[test]
fn garbage_is_reported_and_valid_lines_around_it_survive() {
    let mut p = Proc::spawn(&["--period", "1s", "--grace", "30s", "--idle", "200ms"]);
    let w = wall_ns().div_euclid(SEC) * SEC;
    let (delay, row) = one_window(w);
    let long_garbage = format!("{} tail", "x".repeat(5000));
    // (text, valid); physical line numbers in comments.
    let lines: Vec<(String, bool)> = vec![
        (format!("cpu v=1 {w}\n"), true),                 // 1
        ("this is garbage\n".into(), false),              // 2
        (format!("log msg=\"multi\nline\" {w}\n"), true), // 3-4
        ("cpu v=\n".into(), false),                       // 5
        (delay[0].clone(), true),                         // 6
        ("=== nonsense ===\n".into(), false),             // 7
        (delay[1].clone(), true),                         // 8
        (delay[2].clone(), true),                         // 9
        ("cpu v=1 1.5\n".into(), false),                  // 10
        (delay[3].clone(), true),                         // 11
        (format!("{long_garbage}\n"), false),             // 12
        ("bad\u{1}bytes,\u{7f} =\"\n".into(), false),     // 13
        (format!("cpu v=2 {w}\n"), true),                 // 14
    ];
    for (text, _) in &lines {
        p.write(text.as_bytes());
        thread::sleep(Duration::from_millis(20));
    }
    // Valid lines pass through while stdin is still open.
    for (text, valid) in &lines {
        if *valid {
            assert!(
                p.wait_line(text.as_bytes(), Duration::from_secs(5))
                    .is_some(),
                "valid line {text:?} not passed through"
            );
        }
    }
    let reported = |p: &Proc, n: u32| {
        let want = format!("line {n}");
        p.stderr_lines().iter().any(|l| {
            l.starts_with("W! ")
                && l.match_indices(&want)
                    .any(|(k, _)| !l[k + want.len()..].starts_with(|c: char| c.is_ascii_digit()))
        })
    };
    // Reported while stdin is still open, exactly: the physical line, the
    // reason, and the record quoted (escaped, at most 200 bytes of it).
    let line_12 = format!(
        "W! invalid line 12: expected '=' after field key at byte 5006: \"{}\"...",
        "x".repeat(200)
    );
    let line_13 =
        r#"W! invalid line 13: expected '=' after tag key at byte 12: "bad\x01bytes,\x7f =\"""#;
    assert!(
        p.try_wait_stderr(Duration::from_secs(5), |s| s
            .lines()
            .any(|l| l == line_13.as_bytes())),
        "line 13 not reported as {line_13:?} while stdin is open; stderr:\n{}",
        p.stderr_text()
    );
    assert!(
        p.stderr_lines().contains(&line_12),
        "line 12 not reported as {line_12:?}; stderr:\n{}",
        p.stderr_text()
    );
    p.close_stdin();
    let (status, _) = p.expect_exit(Duration::from_secs(10), "after stdin closed");
    assert!(
        status.success(),
        "exit {status:?}; stderr:\n{}",
        p.stderr_text()
    );
    p.assert_clean_streams();
    for n in [2, 5, 7, 10, 12, 13] {
        assert!(
            reported(&p, n),
            "invalid line {n} not reported at W! with its line number; stderr:\n{}",
            p.stderr_text()
        );
    }
    for n in [1, 3, 4, 6, 8, 9, 11, 14] {
        assert!(
            !reported(&p, n),
            "valid line {n} reported as invalid; stderr:\n{}",
            p.stderr_text()
        );
    }
    let out = p.out();
    for (text, valid) in &lines {
        assert_eq!(out.count(text.as_bytes()), usize::from(*valid), "{text:?}");
    }
    let rows: Vec<String> = out.with("e2e_delays").iter().map(|r| r.text()).collect();
    assert_eq!(rows, [row], "the delay points around the garbage aggregate");
    assert_eq!(out.recs.len(), 8, "nothing but the valid lines and the row");
}

// ---------------------------------------------------------------------------
// 9: stdout closed by the reader

fn assert_broken_pipe_exit(p: &Proc, closed: Instant, what: &str) {
    let Some(exit) = p.try_wait_exit(Duration::from_secs(10)) else {
        panic!(
            "{what}: still running 10 s after stdout was closed (a spin or a hang); stderr:\n{}",
            p.stderr_text()
        );
    };
    let (status, exited) = (exit.status, exit.at);
    let took = exited - closed;
    eprintln!(
        "{what}: exited {:.0} ms after stdout was closed, {status:?}",
        took.as_secs_f64() * 1e3
    );
    assert!(
        status.code().is_some_and(|c| c != 0),
        "{what}: want a non-zero exit code (not a signal death), got {status:?}; stderr:\n{}",
        p.stderr_text()
    );
    assert!(
        took <= STOP_BUDGET,
        "{what}: exited {took:?} after stdout was closed"
    );
    assert!(p.try_status().is_some());
    let stderr = p.stderr_text();
    assert!(
        p.stderr_lines().iter().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("e! ") && (l.contains("stdout") || l.contains("broken pipe"))
        }),
        "{what}: no E! message about stdout/broken pipe; stderr:\n{stderr}"
    );
}

#[test]
fn closed_stdout_while_feeding_ends_the_process() {
    let mut p = Launch::new()
        .args(["--period", "1s", "--grace", "1s", "--idle", "200ms"])
        .keep_stdout()
        .spawn();
    p.write(format!("cpu v=1 {}\n", wall_ns()).as_bytes());
    thread::sleep(Duration::from_millis(200));
    drop(p.take_stdout());
    let closed = Instant::now();
    let mut i = 0u64;
    while Instant::now() - closed < Duration::from_secs(5) && p.try_status().is_none() {
        let line = format!("cpu,host=h v={i}i {}\n", wall_ns());
        if p.try_write(line.as_bytes()).is_err() {
            break;
        }
        i += 1;
        thread::sleep(Duration::from_millis(10));
    }
    assert_broken_pipe_exit(&p, closed, "stdout closed while feeding");
}

#[test]
fn closed_stdout_during_a_stop_ends_the_process() {
    for kind in [Stop::StdinClosed, Stop::Term] {
        let mut p = Launch::new()
            .args([
                "--period",
                "1s",
                "--grace",
                "30s",
                "--idle",
                "200ms",
                "--drop-original",
            ])
            .keep_stdout()
            .spawn();
        let w = wall_ns().div_euclid(SEC) * SEC;
        // Rows pending in an open window; nothing else is written before
        // the stop, so the first write after it meets the closed pipe.
        p.write(one_window(w).0.concat().as_bytes());
        thread::sleep(Duration::from_millis(300));
        drop(p.take_stdout());
        thread::sleep(Duration::from_millis(100));
        let closed = Instant::now();
        match kind {
            Stop::Term => p.signal(Signal::TERM),
            _ => p.close_stdin(),
        }
        assert_broken_pipe_exit(&p, closed, &format!("stdout closed, then {kind:?}"));
    }
}

// ---------------------------------------------------------------------------
// 10: prompt pass-through

#[test]
fn a_single_line_comes_back_promptly() {
    let mut p = Proc::spawn(&["--period", "1s", "--grace", "1s", "--idle", "200ms"]);
    let mut worst = Duration::ZERO;
    for i in 0..5 {
        let w = wall_ns();
        let lines = [
            format!("cpu,host=h usage={i}.5 {w}\n"),
            // A delay point's copy too (it opens a window; no row needed).
            net("p9", "X", "Y", "1", "2", w),
        ];
        for line in &lines {
            let before = Instant::now();
            p.write(line.as_bytes());
            let at = p.wait_line(line.as_bytes(), Duration::from_secs(5));
            let Some(at) = at else {
                panic!("{line:?} not on stdout 5 s after it was written, with no further input");
            };
            let took = at - before;
            worst = worst.max(took);
            assert!(
                took <= PROMPT,
                "{line:?} came back after {took:?}, want ≤ {PROMPT:?}"
            );
        }
        // A line written in two pieces, the second after a pause.
        let line = format!("cpu,host=split usage={i}i {}\n", wall_ns());
        let (a, b) = line.as_bytes().split_at(line.len() / 2);
        p.write(a);
        thread::sleep(Duration::from_millis(150));
        assert!(p.out().find(line.as_bytes()).is_none());
        let before = Instant::now();
        p.write(b);
        let at = p.wait_line(line.as_bytes(), Duration::from_secs(5));
        let took = at.map(|a| a - before).unwrap_or(Duration::MAX);
        worst = worst.max(took);
        assert!(
            took <= PROMPT,
            "a line completed by a second write came back after {took:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "prompt pass-through: worst {:.1} ms",
        worst.as_secs_f64() * 1e3
    );
    p.close_stdin();
    let (status, _) = p.expect_exit(Duration::from_secs(10), "after stdin closed");
    assert!(status.success());
    p.assert_clean_streams();
}

// ---------------------------------------------------------------------------
// 11: accounting

#[test]
fn every_line_is_counted_in_exactly_one_class() {
    let mut p = Proc::spawn(&[
        "--period",
        "1s",
        "--grace",
        "1s",
        "--idle",
        "10s",
        "--stats-interval",
        "200ms",
    ]);
    let now = wall_ns();
    let w = now.div_euclid(SEC) * SEC;
    let (delay, _) = one_window(w);
    let ignored = [
        "\n",
        "   \n",
        "\r\n",
        "# a comment\n",
        "  # indented\n",
        "#m f=1\n",
    ];
    let invalid = ["garbage here\n", "cpu v=1 1.5\n", "m,t= f=1\n"];
    let other: Vec<String> = (0..5).map(|i| format!("cpu v={i} {now}\n")).collect();
    let mut aggregated = delay.clone();
    // No timestamp: stamped on arrival (live).
    aggregated.push("network_delays,path=p2,source=C,target=D latency=5\n".into());
    let late = [
        net("p1", "A", "B", "1", "1", now - 10 * SEC),
        net("p7", "Q", "R", "1", "1", now - 20 * SEC),
    ];
    let skipped_missing_tag = ["network_delays,path=p1,source=A latency=1\n".to_string()];
    let skipped_no_number = [format!(
        "network_delays,path=p1,source=A,target=B latency=\"x\",bandwidth=true {now}\n"
    )];
    let skipped_future = [net("p1", "A", "B", "1", "1", now + 2 * 3600 * SEC)];
    let skipped_range = [net("p1", "A", "B", "1", "1", -9_223_372_036_854_775_806)];
    // An unterminated string at the end of input: one invalid record.
    let unterminated = "log msg=\"never closed\n and still open";

    // Fed in bursts, the delay points first so that the late ones are late.
    let bursts: Vec<String> = vec![
        aggregated.concat(),
        ignored.concat() + &other[..2].concat() + &invalid[..1].concat(),
        late.concat() + &skipped_missing_tag.concat() + &skipped_no_number.concat(),
        other[2..].concat() + &invalid[1..].concat() + &skipped_future.concat(),
        skipped_range.concat() + unterminated,
    ];
    for b in &bursts {
        p.write(b.as_bytes());
        thread::sleep(Duration::from_millis(100));
    }
    // Periodic self-metrics come while the input is open.
    assert!(
        p.wait_out(Duration::from_secs(5), |s| !s
            .with("e2e_aggregator")
            .is_empty()),
        "no e2e_aggregator line within 5 s with --stats-interval 200ms"
    );
    thread::sleep(Duration::from_millis(300));
    p.close_stdin();
    let (status, _) = p.expect_exit(Duration::from_secs(10), "after stdin closed");
    assert!(
        status.success(),
        "exit {status:?}; stderr:\n{}",
        p.stderr_text()
    );
    p.assert_clean_streams();
    let out = p.out();
    let stats = out.with("e2e_aggregator");
    assert!(
        stats.len() >= 2,
        "want periodic lines and a final one: {}",
        stats.len()
    );
    let last = stats.last().unwrap();
    assert!(
        std::ptr::eq(*last, out.recs.last().unwrap()),
        "the final self-metrics line is not the last line out"
    );
    let final_stats = last.stats();
    let c = |k: &str| final_stats.get(k);
    let (n_invalid, n_skipped) = (invalid.len() + 1, 4);
    let fed = ignored.len() + n_invalid + other.len() + aggregated.len() + late.len() + n_skipped;
    assert!(final_stats.balanced(), "identity broken: {}", last.text());
    let want = [
        ("lines_in", fed),
        ("ignored", ignored.len()),
        ("invalid", n_invalid),
        ("other", other.len()),
        ("aggregated", aggregated.len()),
        ("late", late.len()),
        ("skipped", n_skipped),
        ("skipped_missing_tag", 1),
        ("skipped_no_numeric_field", 1),
        ("skipped_future", 1),
        ("skipped_out_of_range", 1),
        ("skipped_max_series", 0),
        ("skipped_no_timestamp", 0),
        (
            "passed",
            other.len() + aggregated.len() + late.len() + n_skipped,
        ),
    ];
    for (k, n) in want {
        assert_eq!(c(k), n as i64, "{k} in {}", last.text());
    }
    let rows = out.with("e2e_delays").len() as i64;
    assert_eq!(c("rows_written"), rows, "rows_written vs rows seen");
    assert!(rows >= 1, "the complete window wrote no row");
    assert!(c("windows_closed") >= 1);
    assert_eq!(c("rows_unwritable"), 0);
    // The periodic lines are consistent too, and counts never decrease.
    for pair in stats.windows(2) {
        assert!(pair[0].stats().get("lines_in") <= pair[1].stats().get("lines_in"));
    }
    for s in &stats {
        assert!(s.stats().balanced(), "identity broken in {}", s.text());
    }
}

// ---------------------------------------------------------------------------
// 12: command line

#[test]
fn help_version_and_bad_flags() {
    let (status, out, err) = run_cli(&["--help"]);
    assert_eq!(status.code(), Some(0), "--help: {status:?}\n{err}");
    assert!(
        out.contains("[[processors.execd]]"),
        "--help lacks a telegraf.conf snippet:\n{out}"
    );
    assert!(
        out.contains("command = ["),
        "--help snippet lacks command:\n{out}"
    );

    let (status, out, err) = run_cli(&["--version"]);
    assert_eq!(status.code(), Some(0), "--version: {status:?}\n{err}");
    assert!(
        out.contains(env!("CARGO_PKG_VERSION")),
        "--version: {out:?}"
    );

    let (status, out, err) = run_cli(&["--period", "soon"]);
    assert_eq!(
        status.code(),
        Some(2),
        "--period soon: {status:?}\n{out}\n{err}"
    );
    assert!(
        err.contains("--period"),
        "the message does not name the flag: {err:?}"
    );
    assert!(out.is_empty(), "a bad flag wrote to stdout: {out:?}");

    let (status, _, err) = run_cli(&["--no-such-flag"]);
    assert_eq!(status.code(), Some(2), "--no-such-flag: {status:?}\n{err}");
    assert!(err.contains("--no-such-flag"), "{err:?}");

    let (status, _, err) = run_cli(&["--period", "2us", "--precision", "ms"]);
    assert_eq!(status.code(), Some(2), "{status:?}\n{err}");
    assert_eq!(
        err, "E! --period 2\u{b5}s is not a whole multiple of --precision ms",
        "the precision as the user writes it, the period as Go writes it"
    );
}

/// Regression: a wrong type in the config file (`period = 5`) was reported
/// as `invalid value '5' for '--period <DURATION>'`, as if it were a flag,
/// without naming the file.
#[test]
fn a_bad_config_file_entry_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e2e.toml");
    std::fs::write(&path, "grace = \"20s\"\nperiod = 5\n").unwrap();
    let path = path.to_str().unwrap();
    let (status, out, err) = run_cli(&["--config", path]);
    assert_eq!(status.code(), Some(2), "{status:?}\n{err}");
    assert_eq!(
        err,
        format!(
            "E! --config {path}: key \"period\" = 5: invalid duration \"5\": missing unit (ns, us, ms, s, m, h)"
        )
    );
    assert!(out.is_empty(), "{out:?}");
}

// ---------------------------------------------------------------------------
// Lateness

/// Points that come more than 90 % of the grace behind the newest give one
/// `W!` for the process, naming a grace that makes them on time, and the
/// self-metrics show their lateness and the headroom left.
#[test]
fn points_near_the_grace_warn_once_with_a_grace_that_fits() {
    let mut p = Proc::spawn(&["--period", "1s", "--grace", "10s", "--stats-interval", "1s"]);
    p.ready();
    let m = next_window(SEC, 100_000_000) + SEC / 2;
    // M, then 9.5 s and 9.8 s behind it: neither is late at 10 s, both
    // leave less than 1 s of headroom.
    let lines = [
        net("p1", "A", "B", "1", "1", m),
        net("p1", "A", "B", "2", "2", m - 9_500_000_000),
        net("p1", "A", "B", "3", "3", m - 9_800_000_000),
    ]
    .concat();
    p.write(lines.as_bytes());
    let has_lateness = |l: &[u8]| String::from_utf8_lossy(l).contains("lateness_max_ns=");
    p.wait_stdout_line(
        Duration::from_secs(10),
        "self-metrics with lateness",
        has_lateness,
    );
    let stats = p
        .stdout()
        .text_lines()
        .into_iter()
        .find(|l| has_lateness(l.as_bytes()))
        .unwrap();
    for field in [
        "grace_ns=10000000000i",
        "lateness_max_ns=9800000000i",
        "lateness_p99_ns=9800000000i",
        "grace_headroom_ns=200000000i",
    ] {
        assert!(stats.contains(field), "{field} in {stats}");
    }
    p.close_stdin();
    let (status, _) = p.expect_exit(Duration::from_secs(10), "after stdin closed");
    assert!(status.success(), "{status:?}");

    let warned: Vec<String> = p
        .stderr_lines()
        .into_iter()
        .filter(|l| l.contains("behind the newest"))
        .collect();
    // The first point past 9 s, the second of the three (line 3 after the
    // probe line); M − its window's end + 1 ns = 8.5 s + 1 ns, so
    // max(1.25 × that, that + 1 s) rounds up to 11 s.
    assert_eq!(
        warned,
        [
            "W! line 3: a delay point came 9.5s behind the newest, leaving --grace 10s only 500ms \
          of headroom (under 10 %); for what was seen so far, analyze would suggest --grace 11s"
        ],
        "{}",
        p.stderr_text()
    );
    // The suggested grace makes the points on time: a replay with it has
    // no late point, and every point has a row.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("near.lp");
    std::fs::write(&input, &lines).unwrap();
    let replay = std::process::Command::new(env!("CARGO_BIN_EXE_e2e-aggregator"))
        .args(["--period", "1s", "--grace", "11s", "--log-level", "info"])
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&replay.stderr);
    assert!(stderr.contains("aggregated 3, late 0"), "{stderr}");
}
