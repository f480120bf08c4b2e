//! Deterministic workload generator: InfluxDB line protocol as Telegraf hands
//! it to a `processors.execd` processor, for benchmarks and memory tests.
//!
//! ```text
//! cargo run --release --example workload -- [OPTIONS] > data.lp
//!
//!   --sfrs N              SFRs sfr-01..sfr-N                              (20)
//!   --paths N             SFR pairs; each exists in BOTH directions,
//!                         the two directions share one path id            (40)
//!   --instances N         (endpoint, sf_instance) series per SFR          (3)
//!   --rate HZ             points per second per series                    (1)
//!   --minutes M           length of the run in event time                 (30)
//!   --lines N             stop after exactly N lines (overrides --minutes)
//!   --other-ratio R       fraction of ALL lines that are other measurements
//!                         (cpu, mem, disk, diskio, net, system, processes,
//!                         swap, kernel), which must pass through           (0.5)
//!   --hosts N             hosts emitting those metrics (0: as many as SFRs) (0)
//!   --jitter-ms J         timestamps jittered by ±J/2 and lines emitted out
//!                         of order by up to ~J                            (500)
//!   --types mixed|float   mixed: sizes written as `12i`, `12` or `12.5`;
//!                         float: every averaged field a float             (mixed)
//!   --start S             first tick, Unix seconds                       (1700000000)
//!   --seed N              PRNG seed                                       (1)
//!   --series-explosion N  every delay point gets a fresh path id (network)
//!                         or sf_instance (service), cycling through N ids:
//!                         up to N distinct series, for memory tests of
//!                         --max-series; no rows join in this mode         (0: off)
//!   --late-tail MS        heavy disorder: each delay point arrives a further
//!                         MS·(U^(-1/1.5) − 1) ms late (Lomax, α = 1.5: median
//!                         0.59·MS, p99 20·MS, p99.9 99·MS, capped at
//!                         1000·MS), for `analyze` and grace tests         (0: off)
//! ```
//!
//! The model is that of `../shared/bench/gen.py` (the shared yardstick's
//! generator), reimplemented with the seeded xoshiro256++ that the tests
//! and benches use (`tests/support/rng.rs`): it produces the same kind of
//! data (series, field sets, value forms, escaping, disorder), not the same
//! bytes. Every series has a fixed phase in its period; a point is
//! stamped `tick + phase ± J/2` and emitted at `timestamp + U(0, J)`, lines
//! sorted by that arrival. Some endpoint / sf_instance names hold a space, a
//! comma or `=` (escaped `\ `, `\,`, `\=`). Floats come in several forms
//! (shortest round-trip, rounded, integral without a dot, exponent form).
//!
//! Same arguments ⇒ byte-identical output, on any platform (integer PRNG,
//! IEEE arithmetic, Rust's deterministic float formatting; `--late-tail` draws
//! with `powf`, whose last bit may differ between platforms' libm, moving an
//! arrival by a nanosecond at most). A summary goes to
//! stderr. `--sfrs 20 --paths 40 --instances 3 --rate 1 --minutes 120` gives
//! ~2.0 M lines, like the yardstick's medium.lp; `--sfrs 50 --paths 100
//! --instances 4 --rate 2 --minutes 104` ~10 M lines, like large.lp.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io::{self, Write};
use std::process::ExitCode;

#[path = "../tests/support/rng.rs"]
mod rng;

use rng::Rng;

const NS: i64 = 1_000_000_000;

struct Args {
    sfrs: usize,
    paths: usize,
    instances: usize,
    rate: f64,
    minutes: f64,
    lines: Option<u64>,
    other_ratio: f64,
    hosts: usize,
    jitter_ms: f64,
    mixed: bool,
    start: i64,
    seed: u64,
    explosion: u64,
    late_tail_ms: f64,
}

fn usage() -> String {
    // The header comment's usage block, without the comment markers.
    let src = include_str!("workload.rs");
    let mut out = String::new();
    let mut inside = false;
    for line in src.lines() {
        let Some(text) = line.strip_prefix("//!") else {
            break;
        };
        let text = text.strip_prefix(' ').unwrap_or(text);
        if text.starts_with("```") {
            if inside {
                break;
            }
            inside = true;
            continue;
        }
        if inside {
            out.push_str(text);
            out.push('\n');
        }
    }
    out
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        sfrs: 20,
        paths: 40,
        instances: 3,
        rate: 1.0,
        minutes: 30.0,
        lines: None,
        other_ratio: 0.5,
        hosts: 0,
        jitter_ms: 500.0,
        mixed: true,
        start: 1_700_000_000,
        seed: 1,
        explosion: 0,
        late_tail_ms: 0.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            print!("{}", usage());
            std::process::exit(0);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let value = match inline {
            Some(v) => v,
            None => it.next().ok_or_else(|| format!("{flag} needs a value"))?,
        };
        fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
            v.parse().map_err(|_| format!("{flag}: bad value {v:?}"))
        }
        match flag.as_str() {
            "--sfrs" => a.sfrs = num(&flag, &value)?,
            "--paths" => a.paths = num(&flag, &value)?,
            "--instances" => a.instances = num(&flag, &value)?,
            "--rate" => a.rate = num(&flag, &value)?,
            "--minutes" => a.minutes = num(&flag, &value)?,
            "--lines" => a.lines = Some(num(&flag, &value)?),
            "--other-ratio" => a.other_ratio = num(&flag, &value)?,
            "--hosts" => a.hosts = num(&flag, &value)?,
            "--jitter-ms" => a.jitter_ms = num(&flag, &value)?,
            "--types" => {
                a.mixed = match value.as_str() {
                    "mixed" => true,
                    "float" => false,
                    _ => return Err(format!("--types: mixed or float, not {value:?}")),
                }
            }
            "--start" => a.start = num(&flag, &value)?,
            "--seed" => a.seed = num(&flag, &value)?,
            "--series-explosion" => a.explosion = num(&flag, &value)?,
            "--late-tail" => a.late_tail_ms = num(&flag, &value)?,
            _ => return Err(format!("unknown option {flag} (see --help)")),
        }
    }
    if !(0.0..1.0).contains(&a.other_ratio) {
        return Err("--other-ratio must be in [0, 1)".into());
    }
    if !(a.rate > 0.0 && a.rate.is_finite()) {
        return Err("--rate must be > 0".into());
    }
    if !(a.jitter_ms >= 0.0 && a.jitter_ms.is_finite()) {
        return Err("--jitter-ms must be >= 0".into());
    }
    if !(a.late_tail_ms >= 0.0 && a.late_tail_ms.is_finite()) {
        return Err("--late-tail must be >= 0".into());
    }
    if a.sfrs == 0 {
        return Err("--sfrs must be > 0".into());
    }
    let pairs = a.sfrs * (a.sfrs - 1) / 2;
    if a.paths > pairs {
        return Err(format!("--paths {} > possible SFR pairs {pairs}", a.paths));
    }
    if a.hosts == 0 {
        a.hosts = a.sfrs;
    }
    Ok(a)
}

/// Escapes a tag key or value (backslash, comma, `=`, space).
fn esc_tag(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=' | ' ') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `{:?}` of an f64 is its shortest round-trip text (`1234.0`, `0.1`,
/// `1e-7`), which is what Telegraf's `FormatFloat('f', -1)` and Python's
/// `repr` amount to for these magnitudes.
fn put_repr(out: &mut Vec<u8>, v: f64) {
    write!(out, "{v:?}").unwrap();
}

fn round_to(v: f64, ndigits: usize) -> f64 {
    // A table, not `powi`, whose result may vary by platform.
    let m = [1.0, 10.0, 100.0, 1000.0, 10000.0][ndigits];
    (v * m).round() / m
}

/// `%.6e` as C and Python write it: `1.234560e+01`.
fn put_exp(out: &mut Vec<u8>, v: f64) {
    let s = format!("{v:.6e}");
    let (mant, exp) = s.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    let sign = if exp < 0 { '-' } else { '+' };
    write!(out, "{mant}e{sign}{:02}", exp.abs()).unwrap();
}

/// A float as different emitters write it (all valid line-protocol floats).
fn put_float(out: &mut Vec<u8>, rnd: &mut Rng, v: f64, ndigits: usize) {
    let r = rnd.f64();
    if r < 0.45 {
        put_repr(out, v); // full precision
    } else if r < 0.90 {
        put_repr(out, round_to(v, ndigits)); // rounded
    } else if r < 0.99 {
        write!(out, "{}", v.round() as i64).unwrap(); // integral float, no dot
    } else {
        put_exp(out, v); // exponent form (rare)
    }
}

/// A size: `12i`, `12` or `12.5` (mixed), or always a float.
fn put_size(out: &mut Vec<u8>, rnd: &mut Rng, v: i64, mixed: bool) {
    let r = rnd.f64(); // drawn in both modes: --types float gives the same values
    if r < 0.5 {
        if mixed {
            write!(out, "{v}i").unwrap();
        } else {
            put_repr(out, v as f64);
        }
    } else if r < 0.75 {
        if mixed {
            write!(out, "{v}").unwrap();
        } else {
            put_repr(out, v as f64);
        }
    } else {
        put_repr(out, v as f64 + 0.5);
    }
}

enum Delay {
    /// A network direction: escaped source and target, base latency and bandwidth.
    Net {
        src: String,
        dst: String,
        lat: f64,
        bw: f64,
    },
    /// A service instance: escaped endpoint, sf_instance and sfr, base values.
    Svc {
        ep: String,
        inst: String,
        sfr: String,
        rt: f64,
        req: i64,
        resp: i64,
    },
}

struct Series {
    /// Measurement and tags, with the trailing space.
    prefix: String,
    delay: Delay,
    phase: i64,
}

fn build_relevant(rnd: &mut Rng, a: &Args, period_ns: i64) -> Vec<Series> {
    let names: Vec<String> = (1..=a.sfrs).map(|i| format!("sfr-{i:02}")).collect();
    let mut pairs: Vec<(usize, usize)> = (0..a.sfrs)
        .flat_map(|x| (x + 1..a.sfrs).map(move |y| (x, y)))
        .collect();
    rnd.shuffle(&mut pairs);
    pairs.truncate(a.paths);
    pairs.sort_unstable();
    let mut series = Vec::new();
    for (pi, &(x, y)) in pairs.iter().enumerate() {
        let pid = format!("path-{:03}", pi + 1);
        let base_lat = rnd.uniform(0.3, 60.0);
        let bw = rnd.choice(&[100.0, 1000.0, 10000.0, 40000.0]);
        for (s, t) in [(x, y), (y, x)] {
            let (src, dst) = (esc_tag(&names[s]), esc_tag(&names[t]));
            let prefix = format!(
                "network_delays,path={},source={src},target={dst} ",
                esc_tag(&pid)
            );
            let lat = base_lat * rnd.uniform(0.8, 1.25); // asymmetric directions
            let phase = rnd.below_i(period_ns);
            series.push(Series {
                prefix,
                delay: Delay::Net { src, dst, lat, bw },
                phase,
            });
        }
    }
    let services = [
        "nginx",
        "minio",
        "ffmpeg",
        "gst-stream",
        "api gateway",
        "auth,v2",
        "redis",
        "kafka",
    ];
    for (ri, sfr) in names.iter().enumerate() {
        for j in 0..a.instances {
            let sf = services[(ri + j) % services.len()];
            let mut inst = format!(
                "{}_{}",
                sf.replace([' ', ','], "_"),
                ri * a.instances + j + 1
            );
            let mut ep = format!("{sf}_ep{}", j + 1);
            let x = rnd.f64();
            if x < 0.08 {
                ep.push_str(" (primary)"); // space
            } else if x < 0.14 {
                ep = ep.replace("_ep", ",ep"); // comma
            } else if x < 0.17 {
                inst.push_str("=a"); // equals sign
            }
            let (ep, inst, sfr) = (esc_tag(&ep), esc_tag(&inst), esc_tag(sfr));
            let prefix = format!("service_delays,endpoint={ep},sf_instance={inst},sfr={sfr} ");
            let rt = rnd.uniform(2.0, 400.0);
            let req = 200 + rnd.below_i(3800);
            let small = 500 + rnd.below_i(19_500);
            let big = 100_000 + rnd.below_i(4_900_000);
            let resp = rnd.choice(&[small, big]);
            let phase = rnd.below_i(period_ns);
            series.push(Series {
                prefix,
                delay: Delay::Svc {
                    ep,
                    inst,
                    sfr,
                    rt,
                    req,
                    resp,
                },
                phase,
            });
        }
    }
    series
}

#[derive(Clone, Copy)]
enum OtherKind {
    Cpu,
    Mem,
    Disk,
    Diskio,
    Net,
    System,
    Uptime,
    Processes,
    Swap,
    Kernel,
}

struct Other {
    kind: OtherKind,
    prefix: String,
    state: i64,
    phase: i64,
}

/// Templates for Telegraf's system inputs, per host.
fn build_other(rnd: &mut Rng, hosts: usize, period_ns: i64) -> Vec<Other> {
    const GIB: i64 = 1 << 30;
    let mut out = Vec::new();
    let mut add = |kind, prefix: String, state, phase| {
        out.push(Other {
            kind,
            prefix,
            state,
            phase,
        })
    };
    for h in 1..=hosts {
        let host = format!("node-{h:02}.dc1.example.org");
        let ncpu = rnd.choice(&[2, 4, 8]);
        let phase = rnd.below_i(period_ns); // the host's gather time within the interval
        let cpus = (0..ncpu.min(4))
            .map(|i| format!("cpu{i}"))
            .chain(["cpu-total".to_string()]);
        for c in cpus {
            add(
                OtherKind::Cpu,
                format!("cpu,cpu={c},host={host} "),
                0,
                phase,
            );
        }
        let total = rnd.choice(&[8, 16, 32, 64]) * GIB;
        add(OtherKind::Mem, format!("mem,host={host} "), total, phase);
        for (dev, fstype, path) in [
            ("sda1", "ext4", "/"),
            ("sda2", "ext4", "/var/lib/docker"),
            ("nvme0n1p1", "xfs", "/data"),
        ] {
            let size = rnd.choice(&[100, 250, 500, 1000]) * GIB;
            let prefix = format!(
                "disk,device={dev},fstype={fstype},host={host},mode=rw,path={} ",
                esc_tag(path)
            );
            add(OtherKind::Disk, prefix, size, phase);
        }
        for dev in ["sda", "nvme0n1"] {
            let b = 1_000_000 + rnd.below_i(999_000_000);
            add(
                OtherKind::Diskio,
                format!("diskio,host={host},name={dev} "),
                b,
                phase,
            );
        }
        for iface in ["eth0", "docker0"] {
            let b = 100_000_000 + rnd.below_i(999_900_000_000);
            add(
                OtherKind::Net,
                format!("net,host={host},interface={iface} "),
                b,
                phase,
            );
        }
        add(
            OtherKind::System,
            format!("system,host={host} "),
            ncpu,
            phase,
        );
        let up = 3600 + rnd.below_i(90 * 86400 - 3600);
        add(OtherKind::Uptime, format!("system,host={host} "), up, phase);
        add(
            OtherKind::Processes,
            format!("processes,host={host} "),
            0,
            phase,
        );
        add(OtherKind::Swap, format!("swap,host={host} "), 0, phase);
        let k = 10_000_000 + rnd.below_i(9_990_000_000);
        add(OtherKind::Kernel, format!("kernel,host={host} "), k, phase);
    }
    out
}

/// The field set of one system-metrics line (k: the tick number, for counters).
fn put_other_fields(out: &mut Vec<u8>, rnd: &mut Rng, kind: OtherKind, st: i64, k: i64) {
    let mut r = || rnd.f64();
    let w = out;
    match kind {
        OtherKind::Cpu => {
            let (u, s, io) = (r() * 30.0, r() * 8.0, r() * 2.0);
            let (irq, si, steal) = (r() * 0.1, r() * 0.5, r() * 0.2);
            let idle = (100.0 - u - s - io - irq - si - steal).max(0.0);
            write!(
                w,
                "usage_user={u:?},usage_system={s:?},usage_idle={idle:?},usage_nice=0,\
                 usage_iowait={io:?},usage_irq={irq:?},usage_softirq={si:?},usage_steal={steal:?},\
                 usage_guest=0,usage_guest_nice=0"
            )
        }
        OtherKind::Mem => {
            let t = st as f64;
            let used = (t * (0.3 + r() * 0.4)) as i64;
            let cached = (t * 0.2 * r()) as i64;
            let free = st - used - cached;
            let avail_pct = 100.0 * (free + cached) as f64 / t;
            let used_pct = 100.0 * used as f64 / t;
            let dirty = (r() * 5e6) as i64;
            let mapped = (r() * 3e8) as i64;
            let page_tables = (r() * 3e7) as i64;
            let shared = (r() * 1e8) as i64;
            let slab = (r() * 6e8) as i64;
            let srecl = (r() * 4e8) as i64;
            let sunrecl = (r() * 2e8) as i64;
            let vmalloc_used = (r() * 1e8) as i64;
            write!(
                w,
                "active={}i,available={}i,available_percent={avail_pct:?},buffered={}i,cached={cached}i,\
                 commit_limit={}i,committed_as={}i,dirty={dirty}i,free={free}i,high_free=0i,\
                 high_total=0i,huge_page_size=2097152i,huge_pages_free=0i,huge_pages_total=0i,\
                 inactive={}i,low_free=0i,low_total=0i,mapped={mapped}i,page_tables={page_tables}i,\
                 shared={shared}i,slab={slab}i,sreclaimable={srecl}i,sunreclaim={sunrecl}i,\
                 swap_cached=0i,swap_free=0i,swap_total=0i,total={st}i,used={used}i,\
                 used_percent={used_pct:?},vmalloc_chunk=0i,vmalloc_total=35184372087808i,\
                 vmalloc_used={vmalloc_used}i,write_back=0i,write_back_tmp=0i",
                used / 2,
                free + cached,
                st / 200,
                st / 2,
                used + st / 10,
                used / 3,
            )
        }
        OtherKind::Disk => {
            let used = (st as f64 * (0.1 + 0.8 * r())) as i64;
            let ino = st / 16384;
            let iu = (ino as f64 * r() * 0.3) as i64;
            let pct = 100.0 * used as f64 / st as f64;
            write!(
                w,
                "free={}i,inodes_free={}i,inodes_total={ino}i,inodes_used={iu}i,total={st}i,\
                 used={used}i,used_percent={pct:?}",
                st - used,
                ino - iu
            )
        }
        OtherKind::Diskio => {
            let b = st + k * 137;
            let inprog = (r() * 4.0) as i64;
            write!(
                w,
                "io_time={}i,iops_in_progress={inprog}i,merged_reads={}i,merged_writes={}i,\
                 read_bytes={}i,read_time={}i,reads={b}i,weighted_io_time={}i,write_bytes={}i,\
                 write_time={}i,writes={}i",
                b / 3,
                b / 50,
                b / 7,
                b * 4096,
                b / 9,
                b / 2,
                b * 8192,
                b / 4,
                b * 2
            )
        }
        OtherKind::Net => {
            let b = st + k * 91237 + (r() * 1000.0) as i64;
            write!(
                w,
                "bytes_recv={b}i,bytes_sent={}i,drop_in={}i,drop_out=0i,err_in=0i,err_out=0i,\
                 packets_recv={}i,packets_sent={}i",
                b / 3,
                k / 1000,
                b / 900,
                b / 2700
            )
        }
        OtherKind::System => {
            let l1 = r() * st as f64;
            let (l15, l5) = (l1 * 0.7, l1 * 0.85);
            let users = (r() * 4.0) as i64;
            write!(
                w,
                "load1={l1:?},load15={l15:?},load5={l5:?},n_cpus={st}i,n_users={users}i"
            )
        }
        OtherKind::Uptime => {
            let up = st + k;
            let (d, rem) = (up / 86400, up % 86400);
            write!(
                w,
                "uptime={up}i,uptime_format=\"{d} days, {:2}:{:02}\"",
                rem / 3600,
                (rem / 60) % 60
            )
        }
        OtherKind::Processes => {
            let tot = 200 + (r() * 200.0) as i64;
            let blocked = (r() * 3.0) as i64;
            let idle = (r() * 50.0) as i64;
            let running = 1 + (r() * 4.0) as i64;
            let zombies = (r() * 2.0) as i64;
            write!(
                w,
                "blocked={blocked}i,dead=0i,idle={idle}i,paging=0i,running={running}i,\
                 sleeping={}i,stopped=0i,total={tot}i,total_threads={}i,unknown=0i,\
                 zombies={zombies}i",
                tot - 60,
                tot * 3
            )
        }
        OtherKind::Swap => write!(w, "free=0i,total=0i,used=0i,used_percent=0,in=0i,out=0i"),
        OtherKind::Kernel => {
            let b = st + k * 5113;
            write!(
                w,
                "boot_time=1699000000i,context_switches={}i,entropy_avail=256i,interrupts={}i,\
                 processes_forked={}i",
                b * 11,
                b * 7,
                b / 97
            )
        }
    }
    .unwrap();
}

/// An extra arrival delay in ns with a long tail: Lomax (Pareto II) with
/// shape 1.5 and scale `scale_ms`, capped at 1000 × the scale.
fn late_tail(rnd: &mut Rng, scale_ms: f64) -> i64 {
    let u = 1.0 - rnd.f64(); // in (0, 1]
    let x = (u.powf(-1.0 / 1.5) - 1.0).min(1000.0);
    (x * scale_ms * 1e6) as i64
}

/// A line waiting in the reorder heap: ordered by arrival, then by creation.
struct Pending {
    arrival: i64,
    seq: u64,
    line: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest arrival.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.arrival, other.seq).cmp(&(self.arrival, self.seq))
    }
}

/// Writes lines in arrival order, up to a limit, recycling line buffers.
struct Emitter<W: Write> {
    out: W,
    heap: BinaryHeap<Pending>,
    pool: Vec<Vec<u8>>,
    seq: u64,
    written: u64,
    limit: u64,
}

impl<W: Write> Emitter<W> {
    fn buffer(&mut self) -> Vec<u8> {
        self.pool.pop().unwrap_or_else(|| Vec::with_capacity(256))
    }

    fn push(&mut self, arrival: i64, line: Vec<u8>) {
        self.heap.push(Pending {
            arrival,
            seq: self.seq,
            line,
        });
        self.seq += 1;
    }

    /// Writes every line that arrived before `bound` (all when `None`).
    fn drain(&mut self, bound: Option<i64>) -> io::Result<()> {
        while self.written < self.limit {
            match self.heap.peek() {
                Some(p) if bound.is_none_or(|b| p.arrival < b) => {}
                _ => break,
            }
            let mut p = self.heap.pop().unwrap();
            self.out.write_all(&p.line)?;
            self.written += 1;
            p.line.clear();
            self.pool.push(p.line);
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.written >= self.limit
    }
}

fn generate<W: Write>(a: &Args, out: W) -> io::Result<(u64, usize, usize, i64)> {
    let mut rnd = Rng::new(a.seed);
    let period_ns = ((NS as f64) / a.rate).round().max(1.0) as i64;
    let jit = (a.jitter_ms * 1e6) as i64;
    let half = jit / 2;
    let rel = build_relevant(&mut rnd, a, period_ns);
    let oth = build_other(&mut rnd, a.hosts, period_ns);
    let ticks: Option<i64> = match a.lines {
        Some(_) => None,
        None => Some((a.minutes * 60.0 * a.rate).round() as i64),
    };
    let other_per_tick = rel.len() as f64 * a.other_ratio / (1.0 - a.other_ratio);
    let start_ns = a.start * NS;
    let mut em = Emitter {
        out,
        heap: BinaryHeap::new(),
        pool: Vec::new(),
        seq: 0,
        written: 0,
        limit: a.lines.unwrap_or(u64::MAX),
    };
    let (mut ocur, mut oacc, mut xid) = (0usize, 0.0f64, 0u64);
    let mut k: i64 = 0;
    while ticks.is_none_or(|t| k < t) && !em.done() {
        let tick = start_ns + k * period_ns;
        for s in &rel {
            let ts = tick
                + s.phase
                + if jit > 0 {
                    rnd.below_i(jit + 1) - half
                } else {
                    0
                };
            let mut line = em.buffer();
            if a.explosion > 0 {
                // A fresh series for every delay point (cycling through N ids).
                let id = xid % a.explosion;
                xid += 1;
                match &s.delay {
                    Delay::Net { src, dst, .. } => write!(
                        line,
                        "network_delays,path=xpath-{id:07},source={src},target={dst} "
                    ),
                    Delay::Svc { ep, inst, sfr, .. } => write!(
                        line,
                        "service_delays,endpoint={ep},sf_instance={inst}-x{id:07},sfr={sfr} "
                    ),
                }
                .unwrap();
            } else {
                line.extend_from_slice(s.prefix.as_bytes());
            }
            match s.delay {
                Delay::Net { lat, bw, .. } => {
                    let spike = if rnd.f64() < 0.01 {
                        rnd.f64() * lat * 3.0
                    } else {
                        0.0
                    };
                    let lv = lat * (0.7 + 0.6 * rnd.f64()) + spike; // rare spike
                    let bv = bw * (0.55 + 0.4 * rnd.f64());
                    line.extend_from_slice(b"latency=");
                    put_float(&mut line, &mut rnd, lv, 3);
                    line.extend_from_slice(b",bandwidth=");
                    put_float(&mut line, &mut rnd, bv, 2);
                }
                Delay::Svc { rt, req, resp, .. } => {
                    let rv = if rnd.f64() > 0.02 {
                        rt * (0.5 + rnd.f64())
                    } else {
                        rt * (3.0 + 10.0 * rnd.f64()) // slow response
                    };
                    let rq = (req as f64 * (0.8 + 0.4 * rnd.f64())) as i64;
                    let rs = (resp as f64 * (0.5 + rnd.f64())) as i64;
                    line.extend_from_slice(b"response_time=");
                    put_float(&mut line, &mut rnd, rv, 3);
                    line.extend_from_slice(b",request_size=");
                    put_size(&mut line, &mut rnd, rq, a.mixed);
                    line.extend_from_slice(b",response_size=");
                    put_size(&mut line, &mut rnd, rs, a.mixed);
                }
            }
            writeln!(line, " {ts}").unwrap();
            let arrival = ts + if jit > 0 { rnd.below_i(jit + 1) } else { 0 };
            // Drawn only with the option, so that other outputs stay the same.
            let tail = if a.late_tail_ms > 0.0 {
                late_tail(&mut rnd, a.late_tail_ms)
            } else {
                0
            };
            em.push(arrival + tail, line);
        }
        oacc += other_per_tick;
        let n_o = oacc as usize;
        oacc -= n_o as f64;
        for _ in 0..n_o {
            let o = &oth[ocur];
            ocur = (ocur + 1) % oth.len();
            let ts = tick + o.phase + rnd.below_i(5_000_000);
            let mut line = em.buffer();
            line.extend_from_slice(o.prefix.as_bytes());
            put_other_fields(&mut line, &mut rnd, o.kind, o.state, k);
            writeln!(line, " {ts}").unwrap();
            let arrival = ts + if jit > 0 { rnd.below_i(jit + 1) } else { 0 };
            em.push(arrival, line);
        }
        em.drain(Some(tick + period_ns - half))?;
        k += 1;
    }
    em.drain(None)?;
    em.out.flush()?;
    Ok((em.written, rel.len(), oth.len(), k))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("workload: {e}");
            return ExitCode::from(2);
        }
    };
    let stdout = io::stdout();
    let out = io::BufWriter::with_capacity(1 << 20, stdout.lock());
    match generate(&args, out) {
        Ok((lines, rel, oth, ticks)) => {
            eprintln!(
                "workload: {lines} lines ({rel} delay series, {oth} other templates, {ticks} ticks)"
            );
            ExitCode::SUCCESS
        }
        // A reader that stops early (`| head`) is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("workload: {e}");
            ExitCode::FAILURE
        }
    }
}
