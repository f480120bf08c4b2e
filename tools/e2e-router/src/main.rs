//! `e2e-router`: splits a line-protocol recording into the input each
//! e2e-aggregator instance of a Kafka scale-out would see
//! (`telegraf/scale-out/README.md`), so that the deployment can be tested
//! without a Kafka.
//!
//! It routes exactly as that deployment does:
//!
//! - a network-delay record goes to the partition that Telegraf's
//!   `outputs.kafka` (with `routing_tag = "path"`) and its Kafka client,
//!   sarama, choose: sarama's default hash partitioner, FNV-1a 32-bit of the
//!   key, `int32(hash) % partitions`, negated when negative
//!   (`partitioner.go`, `hashPartitioner.Partition`). A record without the
//!   tag gets `routing_key` instead; when that is unset the message has no
//!   key and sarama picks a random partition (here: random from `--seed`);
//! - each partition belongs to the instance that the consumer group's
//!   balance strategy gives it (`range` or `roundrobin`, as sarama computes
//!   them for one topic; instance *i* is the *i*-th member id in sorted
//!   order);
//! - every service-delay record goes to every instance (each instance reads
//!   the services topic in a consumer group of its own);
//! - every other record (other measurements, comments, blank and invalid
//!   records) goes to one instance (`--other-instance`).
//!
//! Without `--disorder` each shard keeps the recording's order. With it, the
//! streams an instance reads (each of its partitions, the services topic,
//! the other records) are merged as independent Kafka fetches would merge
//! them: each stream lags behind the recording's event time by a random
//! amount in `[0, D]`, drawn again every `D` of event time, and a stream
//! never reorders itself. A record is then delivered at most `D` (event time)
//! after the records of the recording that precede it; an aggregator whose
//! `--grace` covers the recording's own disorder plus `D` counts no point late.
//!
//! Records are found with the project's own line-protocol parser
//! ([`e2e_aggregator::lp`]), so a record is what e2e-aggregator and Telegraf
//! call a record (a quoted string may span lines). Records are copied byte
//! for byte. The whole recording is read into memory.

use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use e2e_aggregator::config::Precision;
use e2e_aggregator::duration::Duration;
use e2e_aggregator::lp::{parse_record, Escaped, Outcome, Value, Visitor};

const AFTER_HELP: &str = r#"Examples:
  # 16 partitions over 4 instances, range assignment, as the scale-out deploys it
  e2e-router --partitions 16 --instances 4 --out-dir shards recording.lp
  for i in 0 1 2 3; do e2e-aggregator < shards/instance-$i.lp > rows-$i.lp; done

  # the two topics arriving up to 5 s apart (then run e2e-aggregator with --grace 20s)
  e2e-router --partitions 7 --instances 3 --disorder 5s --seed 42 --out-dir shards recording.lp

  # the wrong key: rows whose two directions land on different instances are lost
  e2e-router --partitions 16 --instances 4 --key source --out-dir wrong recording.lp

Files written: OUT_DIR/instance-0.lp ... instance-(N-1).lp (replaced if present).
A summary of what went where is printed on stderr."#;

/// Split a line-protocol recording into the shards a Kafka scale-out of
/// e2e-aggregator would deliver to each instance.
#[derive(Debug, Parser)]
#[command(version, after_help = AFTER_HELP)]
struct Args {
    /// The recording to split; `-` reads stdin.
    input: PathBuf,

    /// Directory for the shard files `instance-<i>.lp` (created if missing).
    #[arg(long, short = 'o', value_name = "DIR")]
    out_dir: PathBuf,

    /// Partitions of the network-delays topic.
    #[arg(long, short = 'p', value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    partitions: u32,

    /// e2e-aggregator instances: members of the network topic's consumer group.
    #[arg(long, short = 'i', value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    instances: u32,

    /// The consumer group's `balance_strategy` (Telegraf `inputs.kafka_consumer`).
    #[arg(long, value_enum, default_value_t = Strategy::Range)]
    strategy: Strategy,

    /// Tag whose value is the message key: `routing_tag` of `outputs.kafka`.
    /// `path` is the right one; anything else shows what a wrong key breaks.
    #[arg(long, value_name = "TAG", default_value = "path")]
    key: String,

    /// `routing_key` of `outputs.kafka`: the key of a record without the tag.
    /// Unset: no key, a random partition; `random`: a random key per record
    /// (also a random partition); any other text: that key, hashed.
    #[arg(long, value_name = "KEY")]
    routing_key: Option<String>,

    /// Instance that receives every record that is not a delay point
    /// (other measurements, comments, blank and invalid records).
    #[arg(long, value_name = "I", default_value_t = 0)]
    other_instance: u32,

    /// Merge each instance's streams with up to this much event-time lag
    /// between them (Go syntax: `500ms`, `5s`); `0s` keeps the recording's order.
    #[arg(long, value_name = "D", default_value = "0s")]
    disorder: Duration,

    /// Seed of the random choices (lags, partitions of keyless records).
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Unit of the recording's timestamps (for `--disorder`).
    #[arg(long, value_enum, default_value_t = Precision::Ns)]
    precision: Precision,

    /// Measurement of network delays (the keyed topic).
    #[arg(long, value_name = "NAME", default_value = "network_delays")]
    network_measurement: String,

    /// Measurement of service delays (the broadcast topic).
    #[arg(long, value_name = "NAME", default_value = "service_delays")]
    service_measurement: String,
}

/// How a consumer group spreads one topic's partitions over its members;
/// both as sarama computes them (`balance_strategy.go`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Strategy {
    /// Consecutive ranges: the first `P % N` members get one partition more.
    Range,
    /// Partitions sorted as the strings `<topic>-<n>` (so 10 sorts before
    /// 2), dealt out to the members in turn.
    Roundrobin,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("e2e-router: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    if args.other_instance >= args.instances {
        return Err(format!(
            "--other-instance {} is not below --instances {}",
            args.other_instance, args.instances
        ));
    }
    let input = read_input(&args.input)?;
    let owners = assign(args.strategy, args.partitions, args.instances);
    let router = Router::new(args);
    let (records, counts) = router.split(&input);

    let instances = args.instances as usize;
    let mut shards: Vec<Vec<&Record>> = vec![Vec::new(); instances];
    for rec in &records {
        match rec.route {
            Route::Partition(p) => shards[owners[p as usize]].push(rec),
            Route::Services => shards.iter_mut().for_each(|s| s.push(rec)),
            Route::Other => shards[args.other_instance as usize].push(rec),
        }
    }

    let lag_max = args.disorder.as_nanos_i64() / args.precision.nanos();
    fs::create_dir_all(&args.out_dir)
        .map_err(|e| format!("create {}: {e}", args.out_dir.display()))?;
    for (i, shard) in shards.iter_mut().enumerate() {
        if lag_max > 0 {
            interleave(shard, lag_max, args.seed, i as u64, args.partitions);
        }
        let path = args.out_dir.join(format!("instance-{i}.lp"));
        write_shard(&path, &input, shard)?;
    }
    eprint!("{}", summary(args, &counts, &owners, &records));
    Ok(())
}

fn read_input(path: &Path) -> Result<Vec<u8>, String> {
    let mut input = Vec::new();
    if path == Path::new("-") {
        io::stdin()
            .read_to_end(&mut input)
            .map_err(|e| format!("read stdin: {e}"))?;
    } else {
        input = fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    }
    Ok(input)
}

/// FNV-1a, 32 bits: Go's `hash/fnv` `New32a`, sarama's default hasher.
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h: u32, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The partition sarama's `NewHashPartitioner` gives a key: the hash as an
/// `int32`, Go's `%` (which keeps the dividend's sign, as Rust's does),
/// negated when negative. Not the Java client's `& 0x7fffffff`: the two
/// disagree for half of all keys.
fn hash_partition(key: &[u8], partitions: u32) -> u32 {
    let n = i32::try_from(partitions).expect("partitions fit in i32");
    let p = (fnv1a32(key) as i32) % n;
    p.unsigned_abs()
}

/// The instance (member index in sorted member-id order) that owns each
/// partition of the one topic, as sarama's strategy plans it.
fn assign(strategy: Strategy, partitions: u32, instances: u32) -> Vec<usize> {
    let (p, n) = (partitions as usize, instances as usize);
    let mut owner = vec![0; p];
    match strategy {
        Strategy::Range => {
            let (per, extra) = (p / n, p % n);
            for member in 0..n {
                let start = member * per + member.min(extra);
                let len = per + usize::from(member < extra);
                owner[start..start + len].fill(member);
            }
        }
        Strategy::Roundrobin => {
            // sarama sorts `fmt.Sprintf("%s-%d", topic, partition)`: with one
            // topic that is the order of the partition numbers as text.
            let mut order: Vec<usize> = (0..p).collect();
            order.sort_by_key(|k| k.to_string());
            for (turn, &partition) in order.iter().enumerate() {
                owner[partition] = turn % n;
            }
        }
    }
    owner
}

/// Where a record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// A network-delay record, to the owner of this partition.
    Partition(u32),
    /// A service-delay record, to every instance.
    Services,
    /// Anything else, to `--other-instance`.
    Other,
}

/// One record of the recording.
#[derive(Debug, Clone)]
struct Record {
    /// Byte range in the recording, line ending included.
    start: usize,
    end: usize,
    route: Route,
    /// The largest timestamp of the recording up to and including this
    /// record (in `--precision` units): the event-time clock of the
    /// recording when this record was produced. `None` before the first.
    clock: Option<i64>,
}

/// What went where, for the summary.
#[derive(Debug, Default)]
struct Counts {
    records: u64,
    network_keyed: u64,
    network_fallback: u64,
    network_keyless: u64,
    services: u64,
    other: u64,
}

/// The fields of a record the router needs, collected by the parser.
#[derive(Default)]
struct Classify {
    kind: Kind,
    key: Option<Vec<u8>>,
    timestamp: Option<i64>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Kind {
    #[default]
    Other,
    Network,
    Service,
}

struct ClassifyWith<'r> {
    router: &'r Router,
    found: Classify,
}

impl<'a> Visitor<'a> for ClassifyWith<'_> {
    fn measurement(&mut self, name: Escaped<'a>) -> bool {
        self.found.kind = if name.is(self.router.network.as_bytes()) {
            Kind::Network
        } else if name.is(self.router.service.as_bytes()) {
            Kind::Service
        } else {
            Kind::Other
        };
        // Tags are needed only for the key of a network record.
        self.found.kind == Kind::Network
    }

    fn tag(&mut self, key: Escaped<'a>, value: Escaped<'a>) {
        // A later duplicate wins, as in Telegraf's metric.
        if key.is(self.router.key.as_bytes()) {
            self.found.key = Some(value.unescaped().into_owned());
        }
    }

    fn field(&mut self, _: Escaped<'a>, _: Value<'a>) {}

    fn timestamp(&mut self, ts: i64) {
        self.found.timestamp = Some(ts);
    }
}

/// Splits a recording into routed records.
struct Router {
    network: String,
    service: String,
    key: String,
    routing_key: Option<String>,
    partitions: u32,
    seed: u64,
}

impl Router {
    fn new(args: &Args) -> Router {
        Router {
            network: args.network_measurement.clone(),
            service: args.service_measurement.clone(),
            key: args.key.clone(),
            routing_key: args.routing_key.clone(),
            partitions: args.partitions,
            seed: args.seed,
        }
    }

    fn split(&self, input: &[u8]) -> (Vec<Record>, Counts) {
        let mut records = Vec::new();
        let mut counts = Counts::default();
        // sarama's random partitioner for keyless messages; seeded here.
        let mut random = Rng::new(self.seed ^ 0x6b65_796c_6573_7321);
        let mut clock: Option<i64> = None;
        let mut pos = 0;
        while pos < input.len() {
            let mut v = ClassifyWith {
                router: self,
                found: Classify::default(),
            };
            let (len, found) = match parse_record(&input[pos..], true, &mut v) {
                Outcome::Record(rec) => (rec.len.max(1), v.found),
                Outcome::Invalid(err) => {
                    (resume_after(&input[pos..], err.offset), Classify::default())
                }
                // Not returned when at_eof is set; treat the rest as one record.
                Outcome::NeedMore => (input.len() - pos, Classify::default()),
            };
            if let Some(ts) = found.timestamp {
                clock = Some(clock.map_or(ts, |c| c.max(ts)));
            }
            let route = match found.kind {
                Kind::Network => {
                    Route::Partition(self.partition(found.key, &mut random, &mut counts))
                }
                Kind::Service => {
                    counts.services += 1;
                    Route::Services
                }
                Kind::Other => {
                    counts.other += 1;
                    Route::Other
                }
            };
            counts.records += 1;
            records.push(Record {
                start: pos,
                end: pos + len,
                route,
                clock,
            });
            pos += len;
        }
        (records, counts)
    }

    /// The partition of a network record, as `outputs.kafka` keys it
    /// (`routingKey`: the tag, else `routing_key`; `"random"` is a fresh
    /// UUID per message; an empty key is no key) and sarama places it.
    fn partition(&self, tag: Option<Vec<u8>>, random: &mut Rng, counts: &mut Counts) -> u32 {
        let key = match (tag, self.routing_key.as_deref()) {
            (Some(value), _) => {
                counts.network_keyed += 1;
                Some(value)
            }
            (None, Some(fixed)) if !fixed.is_empty() && fixed != "random" => {
                counts.network_fallback += 1;
                Some(fixed.as_bytes().to_vec())
            }
            (None, _) => {
                counts.network_keyless += 1;
                None
            }
        };
        match key {
            Some(key) => hash_partition(&key, self.partitions),
            None => random.below(u64::from(self.partitions)) as u32,
        }
    }
}

/// The length of an invalid record: up to and including the first line
/// feed at or after the byte where parsing failed, as Telegraf's parser
/// (and e2e-aggregator) resume; or the rest of the input.
fn resume_after(record: &[u8], offset: usize) -> usize {
    let from = offset.min(record.len());
    record[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(record.len(), |k| from + k + 1)
}

/// Reorders one instance's records as its consumers would receive them: the
/// records of each stream (a partition, the services topic, the other
/// records) stay in order; each stream runs behind the recording's clock by
/// a lag in `[0, lag_max]` that is drawn again every `lag_max` of clock.
fn interleave(shard: &mut Vec<&Record>, lag_max: i64, seed: u64, instance: u64, partitions: u32) {
    struct Stream {
        rng: Rng,
        lag: i64,
        next_draw: Option<i64>,
        last: i64,
    }
    let stream_of = |route: Route| match route {
        Route::Partition(p) => p as usize,
        Route::Services => partitions as usize,
        Route::Other => partitions as usize + 1,
    };
    let mut streams: Vec<Stream> = (0..partitions as u64 + 2)
        .map(|s| Stream {
            rng: Rng::new(seed ^ mix(instance << 32 | s)),
            lag: 0,
            next_draw: None,
            last: i64::MIN,
        })
        .collect();
    let mut keyed: Vec<(i64, usize, &Record)> = Vec::with_capacity(shard.len());
    for (index, rec) in shard.iter().enumerate() {
        let s = &mut streams[stream_of(rec.route)];
        let arrival = match rec.clock {
            None => i64::MIN,
            Some(clock) => {
                if s.next_draw.is_none_or(|at| clock >= at) {
                    s.lag = s.rng.below(lag_max as u64 + 1) as i64;
                    s.next_draw = Some((clock.div_euclid(lag_max) + 1).saturating_mul(lag_max));
                }
                clock.saturating_add(s.lag)
            }
        };
        s.last = s.last.max(arrival);
        keyed.push((s.last, index, rec));
    }
    keyed.sort_unstable_by_key(|&(arrival, index, _)| (arrival, index));
    *shard = keyed.into_iter().map(|(_, _, rec)| rec).collect();
}

fn write_shard(path: &Path, input: &[u8], shard: &[&Record]) -> Result<(), String> {
    let fail = |e: io::Error| format!("write {}: {e}", path.display());
    let mut out = BufWriter::with_capacity(1 << 18, fs::File::create(path).map_err(fail)?);
    for rec in shard {
        let bytes = &input[rec.start..rec.end];
        out.write_all(bytes).map_err(fail)?;
        // The recording's last record may lack its line feed; a shard must
        // not glue it to the record that follows it there.
        if bytes.last() != Some(&b'\n') {
            out.write_all(b"\n").map_err(fail)?;
        }
    }
    out.flush().map_err(fail)
}

fn summary(args: &Args, counts: &Counts, owners: &[usize], records: &[Record]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "e2e-router: {} records: {} {} ({} keyed by tag {:?}, {} by --routing-key, {} to a random partition), \
         {} {} (to each of {} instances), {} other (to instance {})",
        counts.records,
        counts.network_keyed + counts.network_fallback + counts.network_keyless,
        args.network_measurement,
        counts.network_keyed,
        args.key,
        counts.network_fallback,
        counts.network_keyless,
        counts.services,
        args.service_measurement,
        args.instances,
        counts.other,
        args.other_instance,
    );
    let mut per_partition = vec![0u64; owners.len()];
    for rec in records {
        if let Route::Partition(p) = rec.route {
            per_partition[p as usize] += 1;
        }
    }
    for instance in 0..args.instances as usize {
        let mine: Vec<usize> = (0..owners.len())
            .filter(|&p| owners[p] == instance)
            .collect();
        let network: u64 = mine.iter().map(|&p| per_partition[p]).sum();
        let list: Vec<String> = mine.iter().map(usize::to_string).collect();
        let _ = writeln!(
            s,
            "e2e-router: instance-{instance}.lp: partitions [{}] ({network} network records, {:?})",
            list.join(","),
            args.strategy,
        );
    }
    s
}

/// splitmix64: small, fast, deterministic on every platform.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// Uniform in `[0, n)` (multiply-shift).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// splitmix64's finaliser: spreads the bits of `z`.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a32_matches_the_reference_vectors() {
        // FNV reference values (Go's hash/fnv tests use the same).
        assert_eq!(fnv1a32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn hash_partition_negates_a_negative_remainder_as_sarama_does() {
        // sarama's partitioner_test.go: "1468509572224" hashes to 2^31,
        // i.e. int32 min; -2147483648 % 50 = -48, negated: 48.
        assert_eq!(fnv1a32(b"1468509572224"), 0x8000_0000);
        assert_eq!(hash_partition(b"1468509572224", 50), 48);
        // "a" hashes to 0xe40c292c = -468965076 as int32; % 7 = -6 → 6.
        // (The Java client's `& 0x7fffffff` would give 1678518572 % 7 = 2.)
        assert_eq!(hash_partition(b"a", 7), 6);
        assert_eq!(hash_partition(b"anything", 1), 0);
    }

    #[test]
    fn range_gives_the_first_members_one_partition_more() {
        assert_eq!(assign(Strategy::Range, 7, 3), [0, 0, 0, 1, 1, 2, 2]);
        assert_eq!(assign(Strategy::Range, 2, 4), [0, 1]);
        assert_eq!(assign(Strategy::Range, 1, 1), [0]);
    }

    #[test]
    fn roundrobin_deals_partitions_in_text_order() {
        // Order 0, 1, 10, 11, 2, 3, ..., 9, dealt to members 0, 1, 2, 0, 1, ...:
        // 0→0, 1→1, 10→2, 11→0, 2→1, 3→2, ..., 9→2.
        let owner = assign(Strategy::Roundrobin, 12, 3);
        assert_eq!(owner[0], 0);
        assert_eq!(owner[1], 1);
        assert_eq!(owner[10], 2);
        assert_eq!(owner[11], 0);
        assert_eq!(owner[2], 1);
        assert_eq!(owner[9], 2);
        assert_eq!(assign(Strategy::Roundrobin, 5, 2), [0, 1, 0, 1, 0]);
    }

    fn rec(route: Route, clock: i64) -> Record {
        Record {
            start: 0,
            end: 0,
            route,
            clock: Some(clock),
        }
    }

    #[test]
    fn interleave_keeps_each_stream_in_order_and_bounds_the_lag() {
        let lag = 50;
        let records: Vec<Record> = (0..3000)
            .map(|k| {
                let route = match k % 3 {
                    0 => Route::Partition(0),
                    1 => Route::Partition(1),
                    _ => Route::Services,
                };
                rec(route, k)
            })
            .collect();
        let mut shard: Vec<&Record> = records.iter().collect();
        interleave(&mut shard, lag, 7, 0, 2);
        assert_eq!(shard.len(), records.len());
        let mut moved = 0;
        for route in [Route::Partition(0), Route::Partition(1), Route::Services] {
            let clocks: Vec<i64> = shard
                .iter()
                .filter(|r| r.route == route)
                .map(|r| r.clock.unwrap())
                .collect();
            assert!(
                clocks.windows(2).all(|w| w[0] < w[1]),
                "{route:?} reordered"
            );
        }
        let mut newest = 0;
        for (at, r) in shard.iter().enumerate() {
            let clock = r.clock.unwrap();
            assert!(newest - clock <= lag, "a record {} behind", newest - clock);
            newest = newest.max(clock);
            moved += usize::from(clock != at as i64);
        }
        assert!(moved > 100, "only {moved} records moved: no disorder");
    }
}
