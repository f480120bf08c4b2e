//! Every option, defined once: flag, help text, default. A TOML file given
//! with `--config` supplies the same options by their long names (with `_`
//! or `-`), and the command line overrides it.

use std::path::PathBuf;

use clap::{FromArgMatches, ValueEnum};

use crate::duration::Duration;

mod cli;
mod file;
mod values;

use cli::{cli, Cli};
pub use cli::{Processing, Reading};
use file::file_args;
pub use values::{ByteSize, LogLevel, Precision};

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
        /// `--plot`: where to draw the report as SVG.
        plot: Option<PathBuf>,
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
                format: ReportFormat::Text,
                plot: None,
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
