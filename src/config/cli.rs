//! The command line: the argument groups every mode shares ([`Reading`])
//! and the processor's ([`Processing`]), the subcommands, and how they
//! become [`Options`].

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser};

use super::{ByteSize, Command, LogLevel, Options, Precision, ReportFormat};
use crate::duration::Duration;
use crate::schema::measurement;

const AFTER_HELP: &str = r#"Run it under Telegraf:

  [[processors.execd]]
    namepass = ["network_delays", "service_delays"]
    command = ["/usr/local/bin/e2e-aggregator", "--period", "5s", "--grace", "15s"]
    restart_delay = "10s"

Replay a recording (stdin a regular file implies --replay):

  e2e-aggregator --drop-original < recording.lp

Durations use Telegraf's syntax: 500ms, 5s, 1m30s, 24h."#;

/// The options that decide how a recording is read, windowed and joined:
/// the processor's, `flush`'s and `analyze`'s.
#[derive(Debug, Clone, clap::Args)]
pub struct Reading {
    /// TOML file with any of these options by long name; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Window length: windows are [k·period, (k+1)·period) on the epoch.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub period: Duration,

    /// How far behind the newest point a window closes (the watermark lag).
    #[arg(long, value_name = "DURATION", default_value = "15s")]
    pub grace: Duration,

    /// Unit of input timestamps; rows are written in the same unit.
    #[arg(long, value_enum, default_value = "ns")]
    pub precision: Precision,

    /// Longest record accepted; a longer one is reported and skipped.
    #[arg(long, value_name = "BYTES", default_value = "4MiB")]
    pub max_line_size: ByteSize,

    /// Expire a cached reverse path or service this long after the window it came from.
    #[arg(long, value_name = "DURATION")]
    pub cache_ttl: Option<Duration>,

    /// Cap on state held: (series, open window) pairs plus cache entries; 0 = no cap.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_series: usize,

    /// Least severe messages written to stderr.
    #[arg(long, value_enum, default_value = "info")]
    pub log_level: LogLevel,

    /// Measurement holding per-path network delays.
    #[arg(long, value_name = "NAME", default_value = measurement::NETWORK)]
    pub network_measurement: String,

    /// Measurement holding per-instance service delays.
    #[arg(long, value_name = "NAME", default_value = measurement::SERVICE)]
    pub service_measurement: String,

    /// Measurement of the rows written.
    #[arg(long, value_name = "NAME", default_value = "e2e_delays")]
    pub output_measurement: String,
}

/// The options of the processor alone (and of `flush`, which accepts the
/// processor's command line): live input, output and the state file.
#[derive(Debug, Clone, clap::Args)]
pub struct Processing {
    /// Do not pass network and service delay lines through.
    #[arg(long)]
    pub drop_original: bool,

    /// Replay a recording: no wall clock (implied when stdin is a regular file).
    #[arg(long)]
    pub replay: bool,

    /// Live: after this long without an accepted point, advance the watermark by wall time.
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub idle: Duration,

    /// Live: skip points stamped more than this ahead of the wall clock.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub max_future: Duration,

    /// Write self-metrics every DURATION (in a replay: once, at the end).
    #[arg(long, value_name = "DURATION")]
    pub stats_interval: Option<Duration>,

    /// Measurement of the self-metrics.
    #[arg(long, value_name = "NAME", default_value = "e2e_aggregator")]
    pub stats_measurement: String,

    /// Keep open windows and caches in FILE across restarts (saved at every stop).
    #[arg(long, value_name = "FILE")]
    pub state_file: Option<PathBuf>,

    /// Live, also save the state file this often; 0 = only at stop.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub state_interval: Duration,

    /// With --state-file: journal every change between saves, so that a crash loses nothing applied.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub journal: bool,

    /// With --state-file: also save once the journal grows past this.
    #[arg(long, value_name = "BYTES", default_value = "64MiB")]
    pub journal_max: ByteSize,

    /// Add reverse_age and service_age (seconds) to every row.
    #[arg(long)]
    pub age_fields: bool,
}

/// The processor's options that change nothing for `flush`: it reads no
/// input, is never live and journals nothing. Listed under their own
/// heading in `flush --help`.
const NOT_FOR_FLUSH: [&str; 7] = [
    "drop_original",
    "replay",
    "idle",
    "max_future",
    "state_interval",
    "journal",
    "journal_max",
];

/// The command line: the processor's options, or a subcommand followed by
/// its own. An option before a subcommand is an error, so that every
/// option on a line is the one mode's.
#[derive(Debug, Parser)]
#[command(
    name = "e2e-aggregator",
    version,
    about = "Telegraf execd processor: windows network_delays and service_delays and joins them into e2e_delays rows.",
    long_about = "Telegraf execd processor. Reads InfluxDB line protocol on stdin, passes every line \
                  through, averages network_delays and service_delays per event-time window, joins \
                  forward path, reverse path and the service behind the target, and writes one \
                  e2e_delays row per path and window on stdout.",
    after_help = AFTER_HELP,
    args_override_self = true,
    args_conflicts_with_subcommands = true
)]
pub(super) struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    reading: Reading,
    #[command(flatten)]
    processing: Processing,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Restore --state-file, close every open window, write the rows, save the emptied state.
    #[command(
        args_override_self = true,
        after_help = "It accepts every option of the processor, so that one command line serves \
                      a piece and its flush; those under \"Accepted, no effect on flush\" change \
                      nothing here. --period, --precision and the measurement names must be those \
                      the state was saved with."
    )]
    Flush {
        #[command(flatten)]
        reading: Reading,
        #[command(flatten)]
        processing: Processing,
    },
    /// Read a recording as a replay would and report disorder, the grace it needs and why rows are missing.
    #[command(
        args_override_self = true,
        after_help = "Only the options that change the report are accepted. A --config file \
                      shared with the processor may name the others: analyze ignores them there."
    )]
    Analyze {
        /// The recording; stdin when absent.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        /// Report format.
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
        /// Also draw the report as SVG in FILE: the lateness distribution with the given and suggested grace, and rows per window with the missing rows by reason.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
        #[command(flatten)]
        reading: Reading,
    },
}

/// The heading of `flush --help` for the options in [`NOT_FOR_FLUSH`].
const NOT_FOR_FLUSH_HEADING: &str = "Accepted, no effect on flush";

/// The command line's grammar, with `flush --help`'s second heading.
pub(super) fn cli() -> clap::Command {
    Cli::command().mut_subcommand("flush", |flush| {
        NOT_FOR_FLUSH.iter().fold(flush, |c, id| {
            c.mut_arg(*id, |a| a.help_heading(NOT_FOR_FLUSH_HEADING))
        })
    })
}

impl From<Cli> for Options {
    fn from(cli: Cli) -> Options {
        let (command, reading, processing) = match cli.command {
            None => (None, cli.reading, cli.processing),
            Some(Sub::Flush {
                reading,
                processing,
            }) => (Some(Command::Flush), reading, processing),
            Some(Sub::Analyze {
                file,
                format,
                plot,
                reading,
            }) => (
                Some(Command::Analyze { file, format, plot }),
                reading,
                Processing::defaults(),
            ),
        };
        let Reading {
            config,
            period,
            grace,
            precision,
            max_line_size,
            cache_ttl,
            max_series,
            log_level,
            network_measurement,
            service_measurement,
            output_measurement,
        } = reading;
        let Processing {
            drop_original,
            replay,
            idle,
            max_future,
            stats_interval,
            stats_measurement,
            state_file,
            state_interval,
            journal,
            journal_max,
            age_fields,
        } = processing;
        Options {
            command,
            config,
            period,
            grace,
            precision,
            max_line_size,
            cache_ttl,
            max_series,
            log_level,
            network_measurement,
            service_measurement,
            output_measurement,
            drop_original,
            replay,
            idle,
            max_future,
            stats_interval,
            stats_measurement,
            state_file,
            state_interval,
            journal,
            journal_max,
            age_fields,
        }
    }
}

impl Processing {
    /// The processor's options at their defaults (for `analyze`).
    fn defaults() -> Processing {
        let cmd = Processing::augment_args(clap::Command::new("defaults"));
        let matches = cmd.get_matches_from(["defaults"]);
        Processing::from_arg_matches(&matches).expect("the defaults parse")
    }
}
