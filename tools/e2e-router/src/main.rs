//! `e2e-router`: splits a line-protocol recording into the input each
//! e2e-aggregator instance of a Kafka scale-out would see
//! (`telegraf/scale-out/README.md`), so that the deployment can be tested
//! without a Kafka.
//!
//! It routes exactly as that deployment does ([`route`]):
//!
//! - a network-delay record goes to the partition that Telegraf's
//!   `outputs.kafka` (with `routing_tag = "path"`) and its Kafka client,
//!   sarama, choose: sarama's default hash partitioner. A record without the
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
//! streams an instance reads are merged as independent Kafka fetches would
//! merge them ([`disorder`]).
//!
//! Records are found with the processor's own line-protocol parser
//! ([`e2e_aggregator::lp`]), so a record is what e2e-aggregator and Telegraf
//! call a record (a quoted string may span lines). Records are copied byte
//! for byte. The whole recording is read into memory.

mod disorder;
mod route;
mod splitmix;

use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use e2e_aggregator::config::Precision;
use e2e_aggregator::duration::Duration;
use e2e_aggregator::schema::{measurement, tag};

use route::{assign, Counts, Record, Route, Router, Strategy};

const AFTER_HELP: &str = r#"Examples:
  # 16 partitions over 4 instances, range assignment, as the scale-out deploys it
  e2e-router --partitions 16 --instances 4 --out-dir shards recording.lp
  for i in 0 1 2 3; do e2e-aggregator < shards/instance-$i.lp > rows-$i.lp; done

  # the two topics arriving up to 5 s apart (then run e2e-aggregator with --grace 20s)
  e2e-router --partitions 7 --instances 3 --disorder 5s --seed 42 --out-dir shards recording.lp

  # the wrong key: rows whose two directions land on different instances are lost
  e2e-router --partitions 16 --instances 4 --key source --out-dir wrong recording.lp

Files written: OUT_DIR/instance-0.lp ... instance-(N-1).lp (replaced if present).
A summary of what went where is printed on stderr.
Exit status: 0 done; 1 the recording could not be read or a shard written;
2 bad arguments (as e2e-aggregator)."#;

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
    #[arg(long, value_name = "TAG", default_value_t = String::from_utf8_lossy(tag::PATH).into_owned())]
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
    #[arg(long, value_name = "NAME", default_value = measurement::NETWORK)]
    network_measurement: String,

    /// Measurement of service delays (the broadcast topic).
    #[arg(long, value_name = "NAME", default_value = measurement::SERVICE)]
    service_measurement: String,
}

fn main() -> ExitCode {
    // clap exits 2 on a bad flag or value, 0 on --help and --version.
    let args = Args::parse();
    if args.other_instance >= args.instances {
        // Arguments that do not fit together: a usage error like clap's.
        Args::command()
            .error(
                ErrorKind::ArgumentConflict,
                format!(
                    "--other-instance {} is not below --instances {}",
                    args.other_instance, args.instances
                ),
            )
            .exit();
    }
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("e2e-router: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let input = read_input(&args.input)?;
    let owners = assign(args.strategy, args.partitions, args.instances);
    let router = Router {
        network: args.network_measurement.as_bytes().to_vec(),
        service: args.service_measurement.as_bytes().to_vec(),
        key: args.key.as_bytes().to_vec(),
        routing_key: args.routing_key.clone(),
        partitions: args.partitions,
        seed: args.seed,
    };
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
            disorder::interleave(shard, lag_max, args.seed, i as u64, args.partitions);
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
