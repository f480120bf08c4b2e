//! Every option, defined once: flag, help text, default. A TOML file given
//! with `--config` supplies the same options by their long names (with `_`
//! or `-`), and the command line overrides it.

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};

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

/// The options, as parsed.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "e2e-aggregator",
    version,
    about = "Telegraf execd processor: windows network_delays and service_delays and joins them into e2e_delays rows.",
    long_about = "Telegraf execd processor. Reads InfluxDB line protocol on stdin, passes every line \
                  through, averages network_delays and service_delays per event-time window, joins \
                  forward path, reverse path and the service behind the target, and writes one \
                  e2e_delays row per path and window on stdout.",
    after_help = AFTER_HELP,
    args_override_self = true
)]
pub struct Options {
    /// What to do; without a subcommand, run as the processor.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// TOML file with any of these options by long name; flags override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Window length: windows are [k·period, (k+1)·period) on the epoch.
    #[arg(long, global = true, value_name = "DURATION", default_value = "5s")]
    pub period: Duration,

    /// How far behind the newest point a window closes (the watermark lag).
    #[arg(long, global = true, value_name = "DURATION", default_value = "15s")]
    pub grace: Duration,

    /// Unit of input timestamps; rows are written in the same unit.
    #[arg(long, global = true, value_enum, default_value = "ns")]
    pub precision: Precision,

    /// Do not pass network and service delay lines through.
    #[arg(long, global = true)]
    pub drop_original: bool,

    /// Replay a recording: no wall clock (implied when stdin is a regular file).
    #[arg(long, global = true)]
    pub replay: bool,

    /// Live: after this long without an accepted point, advance the watermark by wall time.
    #[arg(long, global = true, value_name = "DURATION", default_value = "1s")]
    pub idle: Duration,

    /// Live: skip points stamped more than this ahead of the wall clock.
    #[arg(long, global = true, value_name = "DURATION", default_value = "1h")]
    pub max_future: Duration,

    /// Longest record accepted; a longer one is reported and skipped.
    #[arg(long, global = true, value_name = "BYTES", default_value = "4MiB")]
    pub max_line_size: ByteSize,

    /// Expire a cached reverse path or service this long after the window it came from.
    #[arg(long, global = true, value_name = "DURATION")]
    pub cache_ttl: Option<Duration>,

    /// Cap on state held: (series, open window) pairs plus cache entries; 0 = no cap.
    #[arg(long, global = true, value_name = "N", default_value_t = 100_000)]
    pub max_series: usize,

    /// Write self-metrics every DURATION (in a replay: once, at the end).
    #[arg(long, global = true, value_name = "DURATION")]
    pub stats_interval: Option<Duration>,

    /// Least severe messages written to stderr.
    #[arg(long, global = true, value_enum, default_value = "info")]
    pub log_level: LogLevel,

    /// Measurement holding per-path network delays.
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        default_value = measurement::NETWORK
    )]
    pub network_measurement: String,

    /// Measurement holding per-instance service delays.
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        default_value = measurement::SERVICE
    )]
    pub service_measurement: String,

    /// Measurement of the rows written.
    #[arg(long, global = true, value_name = "NAME", default_value = "e2e_delays")]
    pub output_measurement: String,

    /// Measurement of the self-metrics.
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        default_value = "e2e_aggregator"
    )]
    pub stats_measurement: String,

    /// Keep open windows and caches in FILE across restarts (saved at every stop).
    #[arg(long, global = true, value_name = "FILE")]
    pub state_file: Option<PathBuf>,

    /// Live, also save the state file this often; 0 = only at stop.
    #[arg(long, global = true, value_name = "DURATION", default_value = "60s")]
    pub state_interval: Duration,

    /// With --state-file: journal every change between saves, so that a crash loses nothing applied.
    #[arg(long, global = true, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub journal: bool,

    /// With --state-file: also save once the journal grows past this.
    #[arg(long, global = true, value_name = "BYTES", default_value = "64MiB")]
    pub journal_max: ByteSize,

    /// Add reverse_age and service_age (seconds) to every row.
    #[arg(long, global = true)]
    pub age_fields: bool,
}

/// The subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Restore --state-file, close every open window, write the rows, save the emptied state.
    Flush,
    /// Read a recording as a replay would and report disorder, the grace it needs and why rows are missing.
    Analyze {
        /// The recording; stdin when absent.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        /// Report format.
        #[arg(long, value_enum, default_value = "text")]
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
        let cmd = Options::command();
        let first = cmd
            .clone()
            .try_get_matches_from(&args)
            .map_err(ConfigError::Clap)?;
        let first = Options::from_arg_matches(&first).map_err(ConfigError::Clap)?;
        let mut merged = args.clone();
        if let Some(path) = &first.config {
            let from_file = file_args(path, &cmd)?;
            merged.splice(1.min(merged.len())..1.min(merged.len()), from_file);
        }
        let matches = cmd
            .try_get_matches_from(&merged)
            .map_err(ConfigError::Clap)?;
        let options = Options::from_arg_matches(&matches).map_err(ConfigError::Clap)?;
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

/// Turns a TOML file into `--flag=value` arguments, placed before the real
/// ones so that those override it. Each entry is checked on its own first,
/// so that a bad one is reported as the file's (`--config FILE: key
/// "period" = 5: ...`), not as if it were a flag on the command line.
fn file_args(
    path: &std::path::Path,
    cmd: &clap::Command,
) -> Result<Vec<std::ffi::OsString>, ConfigError> {
    let in_file = |m: String| ConfigError::Invalid(format!("--config {}: {m}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::Invalid(format!("cannot read --config {}: {e}", path.display()))
    })?;
    let table: toml::Table = text.parse().map_err(|e| in_file(format!("{e}")))?;
    let mut out = Vec::new();
    for (key, value) in table {
        let flag = key.replace('_', "-");
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(flag.as_str()) && flag != "config");
        let Some(arg) = arg else {
            return Err(in_file(format!("unknown option {key:?}")));
        };
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
        cmd.clone()
            .try_get_matches_from(["e2e-aggregator", arg.as_str()])
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
