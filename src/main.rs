//! The binary: options, logger, then the subcommand: run as the
//! processor, `flush` a state file, or `analyze` a recording.

use std::process::ExitCode;

use e2e_aggregator::config::{Command, ConfigError, Options};
use e2e_aggregator::run::{flush, run};

fn main() -> ExitCode {
    let options = match Options::load(std::env::args_os()) {
        Ok(o) => o,
        Err(ConfigError::Clap(e)) => {
            // --help and --version exit 0; a bad flag or value exits 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
        Err(ConfigError::Invalid(message)) => {
            eprintln!("E! {message}");
            return ExitCode::from(2);
        }
    };
    e2e_aggregator::logging::init(options.log_level.filter());
    match &options.command {
        None => ExitCode::from(run(&options).status()),
        Some(Command::Flush) => ExitCode::from(flush(&options).status()),
        Some(Command::Analyze { file, format, plot }) => ExitCode::from(
            e2e_aggregator::analyze::run(&options, file.as_deref(), *format, plot.as_deref()),
        ),
    }
}
