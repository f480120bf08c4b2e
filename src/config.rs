//! Every option, defined once: flag, help text, default. A TOML file given
//! with `--config` supplies the same options by their long names (with `_`
//! or `-`), and the command line overrides it.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, ValueEnum};

use crate::duration::Duration;

const AFTER_HELP: &str = r#"Run it under Telegraf:

  [[processors.execd]]
    namepass = ["network_delays", "service_delays"]
    command = ["/usr/local/bin/e2e-aggregator", "--period", "5s", "--grace", "15s"]
    restart_delay = "10s"

Replay a recording (stdin a regular file implies --replay):

  e2e-aggregator --drop-original < recording.lp

Durations use Telegraf's syntax: 500ms, 5s, 1m30s, 24h."#;

/// Timestamp precision of the input (and of the rows written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Precision {
    /// Seconds.
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds.
    Ns,
}

impl std::fmt::Display for Precision {
    /// The value as written on the command line (`ms`, not `Ms`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = self.to_possible_value().expect("no precision is skipped");
        f.write_str(value.get_name())
    }
}

impl Precision {
    /// Nanoseconds per unit.
    pub fn nanos(self) -> i64 {
        match self {
            Precision::S => 1_000_000_000,
            Precision::Ms => 1_000_000,
            Precision::Us => 1_000,
            Precision::Ns => 1,
        }
    }
}

/// Verbosity of stderr, as Telegraf's log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// `E!` only.
    Error,
    /// `E!` and `W!`.
    Warn,
    /// Up to `I!`.
    Info,
    /// Up to `D!`.
    Debug,
    /// Everything, `T!` included.
    Trace,
}

impl LogLevel {
    /// The `log` crate's filter for this level.
    pub fn filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

/// A size in bytes: `65536`, `64KiB`, `4MiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (num, unit) = s.split_at(digits);
        let scale: usize = match unit.trim() {
            "" | "B" => 1,
            "KiB" | "K" | "KB" => 1 << 10,
            "MiB" | "M" | "MB" => 1 << 20,
            "GiB" | "G" | "GB" => 1 << 30,
            other => return Err(format!("unknown size unit {other:?} (B, KiB, MiB, GiB)")),
        };
        let n: usize = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
        match n.checked_mul(scale) {
            Some(0) => Err("must be at least 1 byte".into()),
            Some(v) => Ok(ByteSize(v)),
            None => Err(format!("size {s:?} too large")),
        }
    }
}

/// The options, as the program uses them: those of every mode
/// ([`Reading`]) and those of the processor ([`Processing`]), in one place.
/// Each field is documented on the argument group that defines it.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct Options {
    /// What to do; without a subcommand, run as the processor.
    pub command: Option<Command>,
    pub config: Option<PathBuf>,
    pub period: Duration,
    pub grace: Duration,
    pub precision: Precision,
    pub max_line_size: ByteSize,
    pub cache_ttl: Option<Duration>,
    pub max_series: usize,
    pub log_level: LogLevel,
    pub network_measurement: String,
    pub service_measurement: String,
    pub output_measurement: String,
    pub drop_original: bool,
    pub replay: bool,
    pub idle: Duration,
    pub max_future: Duration,
    pub stats_interval: Option<Duration>,
    pub stats_measurement: String,
    pub state_file: Option<PathBuf>,
    pub state_interval: Duration,
    pub journal: bool,
    pub journal_max: ByteSize,
    pub age_fields: bool,
}

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
    #[arg(long, value_name = "NAME", default_value = "network_delays")]
    pub network_measurement: String,

    /// Measurement holding per-instance service delays.
    #[arg(long, value_name = "NAME", default_value = "service_delays")]
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
struct Cli {
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
        #[command(flatten)]
        reading: Reading,
    },
}

/// The heading of `flush --help` for the options in [`NOT_FOR_FLUSH`].
const NOT_FOR_FLUSH_HEADING: &str = "Accepted, no effect on flush";

/// The command line's grammar, with `flush --help`'s second heading.
fn cli() -> clap::Command {
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
                reading,
            }) => (
                Some(Command::Analyze { file, format }),
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

/// The subcommands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Restore --state-file, close every open window, write the rows, save the emptied state.
    Flush,
    /// Report on a recording.
    Analyze {
        /// The recording; stdin when absent.
        file: Option<PathBuf>,
        /// Report format.
        format: ReportFormat,
    },
}

/// How `analyze` prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Aligned for a terminal.
    Text,
    /// One JSON object, for scripts.
    Json,
}

/// A configuration error: the message names the option or file.
#[derive(Debug)]
pub enum ConfigError {
    /// Bad flag or value (clap prints it, with usage).
    Clap(clap::Error),
    /// Anything else, with its message.
    Invalid(String),
}

impl Options {
    /// Reads the options from `args` (program name first) and the config
    /// file it names, then checks them.
    pub fn load<I, T>(args: I) -> Result<Options, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let cmd = cli();
        let parse = |args: &[std::ffi::OsString]| {
            let matches = cmd
                .clone()
                .try_get_matches_from(args)
                .map_err(ConfigError::Clap)?;
            Cli::from_arg_matches(&matches)
                .map(Options::from)
                .map_err(ConfigError::Clap)
        };
        let first = parse(&args)?;
        let options = match &first.config {
            None => first,
            Some(path) => {
                // The file's entries go right after the subcommand, if any
                // (it comes first: no option may precede it), so that the
                // command line's follow and override them.
                let (at, mode) = match first.command {
                    None => (1, &cmd),
                    Some(_) => {
                        let name = args[1].to_string_lossy();
                        (2, cmd.find_subcommand(name.as_ref()).expect("parsed"))
                    }
                };
                let from_file = file_args(path, &cmd, mode)?;
                let mut merged = args.clone();
                let at = at.min(merged.len());
                merged.splice(at..at, from_file);
                parse(&merged)?
            }
        };
        options.check()?;
        Ok(options)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        let unit = self.precision.nanos() as u64;
        if self.period.is_zero() {
            return bad("--period must be greater than 0".into());
        }
        if !self.period.as_nanos().is_multiple_of(unit) {
            return bad(format!(
                "--period {} is not a whole multiple of --precision {}",
                self.period, self.precision
            ));
        }
        if self.cache_ttl.is_some_and(Duration::is_zero) {
            return bad("--cache-ttl must be greater than 0 (leave it out to keep entries)".into());
        }
        if self.stats_interval.is_some_and(Duration::is_zero) {
            return bad("--stats-interval must be greater than 0".into());
        }
        for (flag, name) in [
            ("--network-measurement", &self.network_measurement),
            ("--service-measurement", &self.service_measurement),
            ("--output-measurement", &self.output_measurement),
            ("--stats-measurement", &self.stats_measurement),
        ] {
            if !crate::lp::write::is_portable_measurement(name.as_bytes()) {
                return bad(format!(
                    "{flag} {name:?} must be non-empty text without backslash or control \
                     characters, not starting with '#'"
                ));
            }
        }
        Ok(())
    }
}

/// Turns a TOML file into `--flag=value` arguments for `mode` (the
/// processor's command or a subcommand of `all`), placed before the real
/// ones so that those override it. A key must name an option of the
/// processor; one that `mode` does not take is left out (a file shared
/// with the processor may set `state_file`, which `analyze` ignores). Each
/// entry is checked on its own first, so that a bad one is reported as the
/// file's (`--config FILE: key "period" = 5: ...`), not as if it were a
/// flag on the command line.
fn file_args(
    path: &std::path::Path,
    all: &clap::Command,
    mode: &clap::Command,
) -> Result<Vec<std::ffi::OsString>, ConfigError> {
    let in_file = |m: String| ConfigError::Invalid(format!("--config {}: {m}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::Invalid(format!("cannot read --config {}: {e}", path.display()))
    })?;
    let table: toml::Table = text.parse().map_err(|e| in_file(format!("{e}")))?;
    let mut out = Vec::new();
    for (key, value) in table {
        let flag = key.replace('_', "-");
        let named = |cmd: &clap::Command| {
            cmd.get_arguments()
                .find(|a| a.get_long() == Some(flag.as_str()) && flag != "config")
                .cloned()
        };
        if named(all).is_none() {
            return Err(in_file(format!("unknown option {key:?}")));
        }
        let Some(arg) = named(mode) else {
            continue;
        };
        let arg = &arg;
        let entry = format!("key {key:?} = {value}");
        let takes_value = arg.get_action().takes_values();
        let text = match value {
            // An option that takes true or false (`--journal=false`).
            toml::Value::Boolean(b) if takes_bool(arg) => b.to_string(),
            toml::Value::Boolean(_) if takes_value => {
                return Err(in_file(format!("{entry}: expects a value, not a boolean")))
            }
            toml::Value::Boolean(true) => {
                out.push(format!("--{flag}").into());
                continue;
            }
            toml::Value::Boolean(false) => continue,
            _ if !takes_value => {
                return Err(in_file(format!("{entry}: expects true or false")));
            }
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            _ => return Err(in_file(format!("{entry}: expects a string or an integer"))),
        };
        let arg = format!("--{flag}={text}");
        mode.clone()
            .try_get_matches_from([mode.get_name(), arg.as_str()])
            .map_err(|e| in_file(format!("{entry}: {}", clap_reason(&e))))?;
        out.push(arg.into());
    }
    Ok(out)
}

/// Whether an option's value is `true` or `false`.
fn takes_bool(arg: &clap::Arg) -> bool {
    arg.get_action().takes_values()
        && arg
            .get_possible_values()
            .iter()
            .any(|v| v.get_name() == "false")
}

/// Why clap refused a value, without its usage text: the value parser's
/// own message when there is one (`invalid duration "5": missing unit`).
fn clap_reason(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue};
    use std::error::Error as _;
    if let Some(source) = e.source() {
        return source.to_string();
    }
    if let Some(ContextValue::Strings(valid)) = e.get(ContextKind::ValidValue) {
        return format!("expects one of {}", valid.join(", "));
    }
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(args: &[&str]) -> Result<Options, ConfigError> {
        Options::load(std::iter::once("e2e-aggregator").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_the_spec() {
        let o = load(&[]).unwrap();
        assert_eq!(o.period.as_nanos(), 5_000_000_000);
        assert_eq!(o.grace.as_nanos(), 15_000_000_000);
        assert_eq!(o.idle.as_nanos(), 1_000_000_000);
        assert_eq!(o.max_future.as_nanos(), 3_600_000_000_000);
        assert_eq!(o.max_line_size, ByteSize(4 << 20));
        assert_eq!(o.precision, Precision::Ns);
        assert!(o.cache_ttl.is_none() && o.stats_interval.is_none());
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "period = \"10s\"\ngrace = \"1m\"\ndrop_original = true\nmax-series = 7\n",
        )
        .unwrap();
        let o = load(&["--config", path.to_str().unwrap(), "--period", "2s"]).unwrap();
        assert_eq!(o.period.as_nanos(), 2_000_000_000);
        assert_eq!(o.grace.as_nanos(), 60_000_000_000);
        assert!(o.drop_original);
        assert_eq!(o.max_series, 7);
    }

    #[test]
    fn bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "perod = \"10s\"\n").unwrap();
        match load(&["--config", path.to_str().unwrap()]) {
            Err(ConfigError::Invalid(m)) => assert!(m.contains("unknown option \"perod\""), "{m}"),
            other => panic!("{other:?}"),
        }
        match load(&["--period", "1500ms", "--precision", "s"]) {
            Err(ConfigError::Invalid(m)) => assert!(m.contains("whole multiple"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            load(&["--grace", "soon"]),
            Err(ConfigError::Clap(_))
        ));
        match load(&["--period", "2us", "--precision", "ms"]) {
            Err(ConfigError::Invalid(m)) => assert_eq!(
                m,
                "--period 2\u{b5}s is not a whole multiple of --precision ms"
            ),
            other => panic!("{other:?}"),
        }
        match load(&["--output-measurement", "#rows"]) {
            Err(ConfigError::Invalid(m)) => assert!(m.contains("not starting with '#'"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    /// `analyze` takes only the options that change its report: another on
    /// its command line is refused, named; in a `--config` file shared with
    /// the processor it is ignored.
    #[test]
    fn analyze_refuses_the_processors_options_on_its_command_line() {
        for flag in [
            "--state-file=x",
            "--drop-original",
            "--idle=1s",
            "--age-fields",
            "--state-interval=1s",
        ] {
            match load(&["analyze", flag]) {
                Err(ConfigError::Clap(e)) => {
                    assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
                    let name = flag.split('=').next().unwrap();
                    assert!(e.to_string().contains(&format!("'{name}'")), "{e}");
                }
                other => panic!("{flag}: {other:?}"),
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "state_file = \"/s\"\ndrop_original = true\nidle = \"3s\"\ngrace = \"2s\"\n",
        )
        .unwrap();
        let o = load(&["analyze", "--config", path.to_str().unwrap(), "rec.lp"]).unwrap();
        assert_eq!(
            o.command,
            Some(Command::Analyze {
                file: Some("rec.lp".into()),
                format: ReportFormat::Text
            })
        );
        assert_eq!(o.grace.as_nanos(), 2_000_000_000);
        assert_eq!(o.state_file, None);
        assert!(!o.drop_original);
        assert_eq!(o.idle.as_nanos(), 1_000_000_000);
        // The processor and flush take the same file whole.
        for mode in [&[][..], &["flush"]] {
            let args = [mode, &["--config", path.to_str().unwrap()]].concat();
            let o = load(&args).unwrap();
            assert_eq!(o.state_file, Some("/s".into()), "{mode:?}");
            assert!(o.drop_original);
            assert_eq!(o.idle.as_nanos(), 3_000_000_000);
        }
        // A key no mode knows is still an error, also for analyze.
        std::fs::write(&path, "state_fil = \"/s\"\n").unwrap();
        match load(&["analyze", "--config", path.to_str().unwrap()]) {
            Err(ConfigError::Invalid(m)) => {
                assert!(m.ends_with("unknown option \"state_fil\""), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    /// `flush` accepts the processor's whole command line; an option
    /// before a subcommand belongs to no mode and is refused.
    #[test]
    fn flush_takes_the_processors_options_and_none_precede_a_subcommand() {
        let o = load(&[
            "flush",
            "--state-file",
            "/s",
            "--idle",
            "2s",
            "--drop-original",
        ])
        .unwrap();
        assert_eq!(o.command, Some(Command::Flush));
        assert_eq!(o.state_file, Some("/s".into()));
        assert!(o.drop_original);
        match load(&["--state-file", "/s", "flush"]) {
            Err(ConfigError::Clap(e)) => assert!(e.to_string().contains("'flush'"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    /// Regression: `period = 5` was reported as `invalid value '5' for
    /// '--period <DURATION>'`, as if it were a flag, without naming the
    /// file. A bad entry names the file, the key and the reason.
    #[test]
    fn a_bad_file_entry_names_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        for (entry, why) in [
            (
                "period = 5",
                "key \"period\" = 5: invalid duration \"5\": missing unit",
            ),
            (
                "max_series = \"many\"",
                "key \"max_series\" = \"many\": invalid digit",
            ),
            (
                "precision = \"MS\"",
                "key \"precision\" = \"MS\": expects one of s, ms, us, ns",
            ),
            (
                "log-level = 3",
                "key \"log-level\" = 3: expects one of error, warn",
            ),
            (
                "grace = true",
                "key \"grace\" = true: expects a value, not a boolean",
            ),
            (
                "drop_original = \"yes\"",
                "key \"drop_original\" = \"yes\": expects true or false",
            ),
            (
                "period = 5.0",
                "key \"period\" = 5.0: expects a string or an integer",
            ),
        ] {
            std::fs::write(&path, format!("{entry}\n")).unwrap();
            let want = format!("--config {}: {why}", path.display());
            match load(&["--config", path.to_str().unwrap()]) {
                Err(ConfigError::Invalid(m)) => assert!(m.starts_with(&want), "{entry}: {m}"),
                other => panic!("{entry}: {other:?}"),
            }
        }
    }
}
