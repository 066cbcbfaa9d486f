//! The TOML config file (`--config FILE` / `QUORUMD_CONFIG`).
//!
//! Every command-line option has a key: its long name in snake_case (`name`, `port`,
//! `master_script`, `peer = ["10.0.0.2:8080"]`, ...) and the timers live in a `[timers]` table
//! (`heartbeat = "200ms"`). Unknown keys are refused, naming the key, so a typo never silently
//! falls back to a default.

use super::{ConfigError, Profile};
use common::types::Strategy;
use serde::{Deserialize, Deserializer};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file's contents; `None` = key absent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub address: Option<IpAddr>,
    pub port: Option<u16>,
    pub broadcast_address: Option<IpAddr>,
    pub broadcast_port: Option<u16>,
    pub name: Option<String>,
    pub use_port_instead_of_life_time: Option<bool>,
    #[serde(default, deserialize_with = "strategy_opt")]
    pub strategy: Option<Strategy>,
    pub master_script: Option<PathBuf>,
    pub slave_script: Option<PathBuf>,
    /// `notify = "/path"` (the flag is `--notify`); `notify_script` is accepted too.
    #[serde(alias = "notify_script")]
    pub notify: Option<PathBuf>,
    pub debug: Option<bool>,
    pub socket: Option<PathBuf>,
    pub cluster: Option<String>,
    #[serde(alias = "peers")]
    pub peer: Option<Vec<SocketAddr>>,
    pub advertise: Option<IpAddr>,
    pub expect: Option<usize>,
    pub witness: Option<bool>,
    pub no_preempt: Option<bool>,
    pub exit_on_minority: Option<bool>,
    pub key_file: Option<PathBuf>,
    pub log_file: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    #[serde(default, deserialize_with = "profile_opt")]
    pub profile: Option<Profile>,
    #[serde(default)]
    pub timers: FileTimers,
}

/// The `[timers]` table. Values are durations: `"200ms"`, `"1.5s"`, or a number of seconds.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTimers {
    #[serde(default, deserialize_with = "duration_opt")]
    pub heartbeat: Option<Duration>,
    #[serde(default, deserialize_with = "duration_opt")]
    pub silence: Option<Duration>,
    #[serde(default, deserialize_with = "duration_opt")]
    pub lease: Option<Duration>,
    #[serde(default, deserialize_with = "duration_opt")]
    pub startup: Option<Duration>,
    #[serde(default, deserialize_with = "duration_opt")]
    pub announce: Option<Duration>,
    #[serde(default, deserialize_with = "duration_opt")]
    pub hook_timeout: Option<Duration>,
}

impl FileConfig {
    /// Reads and parses `path`. Errors name the file, and toml's message names the key.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::ParseFile {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<FileConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }
}

/// A duration in the file: a systemd-like string, or a plain number of seconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Text(String),
    Int(u64),
    Float(f64),
}

fn duration_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let raw = RawDuration::deserialize(d).map_err(|_| {
        serde::de::Error::custom(
            "expected a duration such as \"200ms\", \"1.5s\" or a number of seconds",
        )
    })?;
    let parsed = match raw {
        RawDuration::Text(s) => super::parse_duration(&s),
        RawDuration::Int(n) => Ok(Duration::from_secs(n)),
        RawDuration::Float(f) => Duration::try_from_secs_f64(f).map_err(|e| e.to_string()),
    };
    parsed.map(Some).map_err(serde::de::Error::custom)
}

fn strategy_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Strategy>, D::Error> {
    let s = String::deserialize(d)?;
    super::cli::parse_strategy(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn profile_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Profile>, D::Error> {
    let s = String::deserialize(d)?;
    super::cli::parse_profile(&s)
        .map(Some)
        .map_err(serde::de::Error::custom)
}
