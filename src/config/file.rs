//! The `--config` TOML file: its keys become command-line arguments, which
//! the command line then overrides.

use super::ConfigError;

/// Turns a TOML file into `--flag=value` arguments for `mode` (the
/// processor's command or a subcommand of `all`), placed before the real
/// ones so that those override it. A key must name an option of the
/// processor; one that `mode` does not take is left out (a file shared
/// with the processor may set `state_file`, which `analyze` ignores). Each
/// entry is checked on its own first, so that a bad one is reported as the
/// file's (`--config FILE: key "period" = 5: ...`), not as if it were a
/// flag on the command line.
pub(super) fn file_args(
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
