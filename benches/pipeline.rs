//! Criterion benchmarks of the hot paths, on inputs generated in-process.
//!
//! ```text
//! cargo bench --bench pipeline                 # all, ~2–3 min
//! cargo bench --bench pipeline -- --quick      # faster, rougher
//! cargo bench --bench pipeline -- engine       # only the engine group
//! ```
//!
//! Groups:
//! - `parse`: one record through `lp::parse_record`, validating only
//!   (`lp::Validate`, what pass-through costs) and collecting everything
//!   (`lp::Point`, owned and unescaped), on a `network_delays` line, a
//!   `service_delays` line with escaped tag values, and a `mem` line with its
//!   35 integer fields (Telegraf's longest common line).
//! - `passthrough`: validating a ~1 MiB buffer of system-metrics lines
//!   (cpu, mem, disk, diskio, net, system, processes, swap, kernel) record by
//!   record, as the engine does for lines it passes through.
//! - `engine`: the whole engine (parse, window update, close, join, rows) in
//!   a replay with `--drop-original`, fed in 256 KiB chunks cut at a line feed
//!   as the stdin reader does: ~10k delay lines only, and a mixed buffer in
//!   which half the lines are system metrics; and the mixed buffer without
//!   `--drop-original` (`mixed_20k_passed`), where every line is written
//!   too: runs of pass-through lines handed on and copied as one range,
//!   delay lines one by one.
//!
//! Throughput is reported in MB/s (10^6 bytes, `Throughput::BytesDecimal`),
//! the unit of `scripts/throughput.sh` and of the shared yardstick.
//!
//! The inputs follow `examples/workload.rs` (and the shared yardstick's
//! `gen.py`) in miniature: bidirectional paths sharing a path id, several
//! service instances per SFR, some escaped tag values, floats in several
//! forms, `i` integers, timestamps jittered out of order within ±250 ms.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use e2e_aggregator::lp::{parse_record, Outcome, Point, Validate};

#[path = "../tests/support/rng.rs"]
mod rng;
#[path = "../tests/support/mod.rs"]
mod support;

use rng::Rng;
use support::Setup;

const NS: i64 = 1_000_000_000;
const START: i64 = 1_700_000_000 * NS;

const NET_LINE: &[u8] = b"network_delays,path=path-017,source=sfr-06,target=sfr-05 \
latency=16.926804127594625,bandwidth=896.4663 1699999999949337175\n";

const SVC_LINE: &[u8] =
    b"service_delays,endpoint=api\\ gateway_ep3\\ (primary),sf_instance=auth\\,v2_12\\=a,\
sfr=sfr-04 response_time=51.25,request_size=1695i,response_size=2177.5 1699999999921015286\n";

const MEM_LINE: &[u8] =
    b"mem,host=node-03.dc1.example.org active=2368538687i,available=3852857217i,\
available_percent=44.85316128702834,buffered=42949672i,cached=534635067i,commit_limit=4294967296i,\
committed_as=5596070834i,dirty=3109792i,free=3318222150i,high_free=0i,high_total=0i,\
huge_page_size=2097152i,huge_pages_free=0i,huge_pages_total=0i,inactive=1579025791i,low_free=0i,\
low_total=0i,mapped=52757561i,page_tables=11954441i,shared=96166644i,slab=471808014i,\
sreclaimable=35098944i,sunreclaim=36468920i,swap_cached=0i,swap_free=0i,swap_total=0i,\
total=8589934592i,used=4737077375i,used_percent=55.14683871297166,vmalloc_chunk=0i,\
vmalloc_total=35184372087808i,vmalloc_used=16533682i,write_back=0i,write_back_tmp=0i \
1700000000194550487\n";

/// A float in one of the forms emitters use.
fn float(r: &mut Rng, v: f64) -> String {
    match r.below(20) {
        0..=8 => format!("{v:?}"),
        9..=17 => format!("{:?}", (v * 1000.0).round() / 1000.0),
        18 => format!("{}", v.round() as i64),
        _ => format!("{v:e}"),
    }
}

/// A size written as an integer, an integral float or a fractional float.
fn size(r: &mut Rng, v: u64) -> String {
    match r.below(4) {
        0 | 1 => format!("{v}i"),
        2 => format!("{v}"),
        _ => format!("{v}.5"),
    }
}

/// `lines` delay lines (40 bidirectional paths, 20 SFRs × 3 instances, one
/// point per series per second), plus as many system-metrics lines again
/// when `mixed`.
fn workload(lines: usize, mixed: bool) -> Vec<u8> {
    let mut r = Rng::new(0x9E37_79B9_7F4A_7C15);
    let mut series: Vec<String> = Vec::new();
    for p in 0..40u64 {
        let a = p % 20;
        let b = (a + 1 + p / 20 * 3 + p % 7) % 20;
        let b = if b == a { (a + 1) % 20 } else { b };
        for (s, t) in [(a, b), (b, a)] {
            series.push(format!(
                "network_delays,path=path-{:03},source=sfr-{:02},target=sfr-{:02} ",
                p + 1,
                s + 1,
                t + 1
            ));
        }
    }
    let services = ["nginx", "minio", "api\\ gateway", "auth\\,v2", "redis"];
    for sfr in 0..20usize {
        for j in 0..3usize {
            let sf = services[(sfr + j) % services.len()];
            let ep = if (sfr + j) % 7 == 0 {
                format!("{sf}_ep{j}\\ (primary)")
            } else {
                format!("{sf}_ep{j}")
            };
            let eq = if (sfr + j) % 11 == 0 { "\\=a" } else { "" };
            series.push(format!(
                "service_delays,endpoint={ep},sf_instance=inst_{}{eq},sfr=sfr-{:02} ",
                sfr * 3 + j,
                sfr + 1
            ));
        }
    }
    let others = other_templates();
    let mut out = Vec::with_capacity(lines * if mixed { 400 } else { 160 });
    let (mut n, mut tick, mut o) = (0, 0i64, 0usize);
    while n < lines {
        let base = START + tick * NS;
        for s in &series {
            if n == lines {
                break;
            }
            let ts = base + r.below(500_000_000) as i64 - 250_000_000;
            out.extend_from_slice(s.as_bytes());
            if s.starts_with("network") {
                let lat = 5.0 + 50.0 * r.f64();
                let bw = 1000.0 * (0.5 + r.f64());
                let (lat, bw) = (float(&mut r, lat), float(&mut r, bw));
                out.extend_from_slice(format!("latency={lat},bandwidth={bw} {ts}\n").as_bytes());
            } else {
                let rt = 2.0 + 300.0 * r.f64();
                let rt = float(&mut r, rt);
                let req = 200 + r.below(3800);
                let resp = 500 + r.below(100_000);
                let (req, resp) = (size(&mut r, req), size(&mut r, resp));
                out.extend_from_slice(
                    format!("response_time={rt},request_size={req},response_size={resp} {ts}\n")
                        .as_bytes(),
                );
            }
            n += 1;
            if mixed {
                other_line(&mut out, &others[o], &mut r, ts);
                o = (o + 1) % others.len();
            }
        }
        tick += 1;
    }
    out
}

/// System-metrics lines: (prefix, field-set template); `#` marks where a
/// number goes.
fn other_templates() -> Vec<(String, &'static str)> {
    let mut t = Vec::new();
    for h in 1..=20 {
        let host = format!("node-{h:02}.dc1.example.org");
        for c in ["cpu0", "cpu1", "cpu-total"] {
            t.push((
                format!("cpu,cpu={c},host={host} "),
                "usage_user=#.25,usage_system=#.5,usage_idle=#.125,usage_nice=0,usage_iowait=0.#,\
                 usage_irq=0,usage_softirq=0.0#,usage_steal=0,usage_guest=0,usage_guest_nice=0",
            ));
        }
        let mem = std::str::from_utf8(MEM_LINE).unwrap();
        let fields = mem.split(' ').nth(1).unwrap();
        t.push((format!("mem,host={host} "), fields));
        t.push((
            format!("disk,device=sda1,fstype=ext4,host={host},mode=rw,path=/var/lib/docker "),
            "free=#i,inodes_free=#i,inodes_total=6553600i,inodes_used=#i,total=107374182400i,\
             used=#i,used_percent=#.75",
        ));
        t.push((
            format!("diskio,host={host},name=nvme0n1 "),
            "io_time=#i,iops_in_progress=0i,merged_reads=#i,merged_writes=#i,read_bytes=#i,\
             read_time=#i,reads=#i,weighted_io_time=#i,write_bytes=#i,write_time=#i,writes=#i",
        ));
        t.push((
            format!("net,host={host},interface=eth0 "),
            "bytes_recv=#i,bytes_sent=#i,drop_in=0i,drop_out=0i,err_in=0i,err_out=0i,\
             packets_recv=#i,packets_sent=#i",
        ));
        t.push((
            format!("system,host={host} "),
            "load1=0.#,load15=0.#,load5=0.#,n_cpus=4i,n_users=#i",
        ));
        t.push((
            format!("system,host={host} "),
            "uptime=#i,uptime_format=\"12 days,  3:#\"",
        ));
        t.push((
            format!("processes,host={host} "),
            "blocked=0i,dead=0i,idle=#i,paging=0i,running=#i,sleeping=#i,stopped=0i,total=#i,\
             total_threads=#i,unknown=0i,zombies=0i",
        ));
        t.push((
            format!("swap,host={host} "),
            "free=0i,total=0i,used=0i,used_percent=0,in=0i,out=0i",
        ));
        t.push((
            format!("kernel,host={host} "),
            "boot_time=1699000000i,context_switches=#i,entropy_avail=256i,interrupts=#i,\
             processes_forked=#i",
        ));
    }
    t
}

fn other_line(out: &mut Vec<u8>, (prefix, fields): &(String, &str), r: &mut Rng, ts: i64) {
    out.extend_from_slice(prefix.as_bytes());
    for (i, part) in fields.split('#').enumerate() {
        if i > 0 {
            out.extend_from_slice(r.below(1_000_000_000).to_string().as_bytes());
        }
        out.extend_from_slice(part.as_bytes());
    }
    out.extend_from_slice(format!(" {ts}\n").as_bytes());
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for (name, line) in [
        ("network", NET_LINE),
        ("service_escaped", SVC_LINE),
        ("mem", MEM_LINE),
    ] {
        assert!(
            matches!(parse_record(line, true, &mut Validate), Outcome::Record(_)),
            "{name} line must parse"
        );
        g.throughput(Throughput::BytesDecimal(line.len() as u64));
        g.bench_with_input(BenchmarkId::new("validate", name), line, |b, line| {
            b.iter(|| parse_record(black_box(line), true, &mut Validate))
        });
        g.bench_with_input(BenchmarkId::new("point", name), line, |b, line| {
            b.iter(|| {
                let mut p = Point::default();
                let o = parse_record(black_box(line), true, &mut p);
                (o, p)
            })
        });
    }
    g.finish();
}

/// Validates every record of `buf` as the pass-through path does; returns
/// the number of records.
fn validate_all(buf: &[u8]) -> usize {
    let (mut pos, mut n) = (0, 0);
    while pos < buf.len() {
        match parse_record(&buf[pos..], true, &mut Validate) {
            Outcome::Record(rec) => pos += rec.len.max(1),
            other => panic!("unexpected {other:?} at byte {pos}"),
        }
        n += 1;
    }
    n
}

fn passthrough(c: &mut Criterion) {
    let others = other_templates();
    let mut r = Rng::new(7);
    let mut buf = Vec::new();
    let mut i = 0;
    while buf.len() < 1 << 20 {
        other_line(
            &mut buf,
            &others[i % others.len()],
            &mut r,
            START + i as i64,
        );
        i += 1;
    }
    let mut g = c.benchmark_group("passthrough");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::BytesDecimal(buf.len() as u64));
    g.bench_function(BenchmarkId::new("validate", format!("{i}_lines")), |b| {
        b.iter(|| validate_all(black_box(&buf)))
    });
    g.finish();
}

/// Chunks of about 256 KiB ending at a line feed, as the stdin reader cuts them.
fn chunks(buf: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        let cut = if rest.len() <= 256 * 1024 {
            rest.len()
        } else {
            rest[..256 * 1024]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(rest.len(), |k| k + 1)
        };
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out
}

/// The engine over `chunks` as a replay; returns the bytes written. The
/// output is dropped after every chunk, as `run` writes it out.
fn run_engine(setup: &Setup, chunks: &[&[u8]]) -> usize {
    let mut written = 0;
    setup
        .replay_with(chunks, |out| {
            written += out.len();
            out.clear();
        })
        .expect("the accounting identity holds");
    written
}

fn engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(3));
    // One iteration takes milliseconds: flat sampling fits 20 samples in 3 s.
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(20);
    let mixed = workload(10_000, true);
    for (name, flags, buf) in [
        ("delay_10k", "--drop-original", workload(10_000, false)),
        ("mixed_20k", "--drop-original", mixed.clone()),
        ("mixed_20k_passed", "", mixed),
    ] {
        let setup = Setup::new(flags);
        let parts = chunks(&buf);
        // Sanity: every delay point aggregated, rows written.
        let check = setup.replay(&parts).expect("identity holds");
        let c = &check.counters;
        assert_eq!(c.invalid, 0, "{name}: invalid lines");
        assert_eq!(c.aggregated, 10_000, "{name}: aggregated");
        assert!(c.rows_written > 0, "{name}: no rows");
        g.throughput(Throughput::BytesDecimal(buf.len() as u64));
        g.bench_function(name, |b| b.iter(|| run_engine(&setup, black_box(&parts))));
    }
    g.finish();
}

criterion_group!(benches, parse, passthrough, engine);
criterion_main!(benches);
