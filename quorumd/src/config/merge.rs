//! The merge: for each option, command-line flag > environment > config file > default,
//! remembering where each value came from so that errors can name it.
//!
//! One loop over clap's options does it for all of them: a value given on the command line
//! (`value_source()`) wins; otherwise the option's environment variable (its `env =`), then its
//! file key. Those values are text, parsed by the option's own clap parser one by one (so that
//! an error names the variable or key), then all winners are parsed together into one typed
//! [`Cli`].

use super::ConfigError;
use super::cli::{self, Cli};
use super::file::FileValues;
use clap::parser::ValueSource;
use clap::{ArgAction, Command, CommandFactory, FromArgMatches};
use std::collections::HashMap;
use std::error::Error as _;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// Where a value came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Origin {
    /// The command line: `--name` or `PORT`.
    Flag(String),
    /// An environment variable, and the option it sets.
    Env(String, String),
    /// A config file key, and the file.
    File(String, String),
}

impl Origin {
    /// Higher wins: flag 3, environment 2, file 1.
    pub fn precedence(&self) -> u8 {
        match self {
            Origin::Flag(_) => 3,
            Origin::Env(..) => 2,
            Origin::File(..) => 1,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => f.write_str(flag),
            Origin::Env(var, flag) => write!(f, "environment variable {var} ({flag})"),
            Origin::File(key, file) => write!(f, "key `{key}` in {file}"),
        }
    }
}

/// The merged options and where each given one came from (by clap id).
pub(super) struct Merged {
    pub cli: Cli,
    pub origins: HashMap<String, Origin>,
    pub config_file: Option<PathBuf>,
}

impl Merged {
    /// Where option `id` came from; `None` = not given anywhere.
    pub fn origin(&self, id: &str) -> Option<&Origin> {
        self.origins.get(id)
    }
}

/// What the merge needs to know of one option, read from its clap declaration.
struct Opt {
    id: String,
    /// `--name`, or the value name of a positional (`PORT`).
    shown: String,
    /// The long name in the value command (positionals get their id).
    long: String,
    env: Option<String>,
    key: Option<String>,
    switch: bool,
    multiple: bool,
}

fn options(cmd: &Command) -> Vec<Opt> {
    cmd.get_arguments()
        .filter(|a| !matches!(a.get_action(), ArgAction::Help | ArgAction::Version))
        .map(|a| {
            let id = a.get_id().to_string();
            let shown = match a.get_long() {
                Some(l) => format!("--{l}"),
                None => a
                    .get_value_names()
                    .and_then(|v| v.first())
                    .map_or_else(|| id.clone(), ToString::to_string),
            };
            Opt {
                long: a.get_long().unwrap_or(&id).to_string(),
                shown,
                env: a.get_env().map(|e| e.to_string_lossy().into_owned()),
                key: cli::file_key(&id),
                switch: matches!(a.get_action(), ArgAction::SetTrue),
                multiple: matches!(a.get_action(), ArgAction::Append),
                id,
            }
        })
        .collect()
}

/// The command that parses argv: clap's own `env` reading is switched off (the lookup is
/// injected).
fn argv_command() -> Command {
    Cli::command().mut_args(|a| a.env(None))
}

/// The command that parses values from the environment and the file: positionals get a long
/// name (their id), so that any one of them can be given alone as `--port=7000`.
fn value_command() -> Command {
    argv_command().mut_args(
        |a| match cli::POSITIONALS.iter().find(|p| a.get_id() == **p) {
            Some(p) => a.index(None).long(*p),
            None => a,
        },
    )
}

/// Parses argv, then layers environment and file values under it.
pub(super) fn merge(
    args: Vec<OsString>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Merged, ConfigError> {
    let matches = match argv_command().try_get_matches_from(&args) {
        Ok(m) => m,
        // --help and --version: render with the full command, which shows the variables.
        Err(e) if !e.use_stderr() => {
            return Err(Cli::command()
                .try_get_matches_from(&args)
                .err()
                .unwrap_or(e)
                .into());
        }
        Err(e) => return Err(e.into()),
    };
    let full = Cli::command();
    let opts = options(&full);
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);

    let config_file = match given("config") {
        true => matches.get_one::<PathBuf>("config").cloned(),
        false => opts
            .iter()
            .find(|o| o.id == "config")
            .and_then(|o| o.env.as_deref())
            .and_then(env)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
    };
    let file = match &config_file {
        Some(path) => FileValues::load(path, &|key| {
            opts.iter().any(|o| o.key.as_deref() == Some(key))
        })?,
        None => FileValues::default(),
    };
    let file_name = file.path.as_ref().map_or_else(
        || "the config file".to_string(),
        |p| p.display().to_string(),
    );

    let values = value_command();
    let mut layered: Vec<OsString> = vec!["quorumd".into()];
    let mut origins = HashMap::new();
    for o in &opts {
        // Text as given: command-line values stay OsStrings (a path need not be UTF-8).
        let (raw, origin): (Vec<OsString>, Origin) = if given(&o.id) {
            let origin = Origin::Flag(o.shown.clone());
            let raw = if o.switch {
                vec![matches.get_flag(&o.id).to_string().into()]
            } else {
                matches
                    .get_raw(&o.id)
                    .into_iter()
                    .flatten()
                    .map(OsString::from)
                    .collect()
            };
            (raw, origin)
        } else if let Some(v) = o.env.as_deref().and_then(env) {
            let origin = Origin::Env(o.env.clone().unwrap_or_default(), o.shown.clone());
            let raw = match o.multiple {
                true => v
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(OsString::from)
                    .collect(),
                false => vec![v.trim().into()],
            };
            (raw, origin)
        } else if let Some(v) = o.key.as_deref().and_then(|k| file.get(k)) {
            let key = o.key.clone().unwrap_or_default();
            let raw = v.iter().map(OsString::from).collect();
            (raw, Origin::File(key, file_name.clone()))
        } else {
            continue;
        };
        let fragment = argv_fragment(&values, o, &raw).map_err(|reason| ConfigError::Invalid {
            origin: origin.to_string(),
            value: raw
                .iter()
                .map(|v| v.to_string_lossy())
                .collect::<Vec<_>>()
                .join(","),
            reason,
        })?;
        layered.extend(fragment);
        origins.insert(o.id.clone(), origin);
    }
    let merged = values.try_get_matches_from(layered)?;
    Ok(Merged {
        cli: Cli::from_arg_matches(&merged)?,
        origins,
        config_file,
    })
}

/// `--long=value` for each value, checked by the option's own parser; a switch's value is
/// true or false (also 1/0, yes/no, on/off).
fn argv_fragment(values: &Command, o: &Opt, raw: &[OsString]) -> Result<Vec<OsString>, String> {
    if o.switch {
        return match raw {
            [one] => Ok(if parse_bool(&one.to_string_lossy())? {
                vec![format!("--{}", o.long).into()]
            } else {
                Vec::new()
            }),
            _ => Err("expected one value, true or false".into()),
        };
    }
    if !o.multiple && raw.len() != 1 {
        return Err(format!("expected one value, got {}", raw.len()));
    }
    let fragment: Vec<OsString> = raw
        .iter()
        .map(|v| {
            let mut arg = OsString::from(format!("--{}=", o.long));
            arg.push(v);
            arg
        })
        .collect();
    let argv = std::iter::once(OsString::from("quorumd")).chain(fragment.iter().cloned());
    match values.clone().try_get_matches_from(argv) {
        Ok(_) => Ok(fragment),
        Err(e) => Err(match e.source() {
            Some(inner) => inner.to_string(),
            None => e
                .render()
                .to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_string(),
        }),
    }
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err("expected true or false (also 1/0, yes/no, on/off)".into()),
    }
}
