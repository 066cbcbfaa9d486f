//! Command line, environment and TOML config file, resolved into one [`Settings`].
//!
//! Precedence, per option: command-line flag > environment variable `QUORUMD_<KEY>` > config
//! file key (`--config FILE` or `QUORUMD_CONFIG`) > default (timers: the chosen
//! [`Profile`]'s). The merged result is validated as a whole; every error names the flag,
//! variable or file key the bad value came from. `docs/CONFIG.md` lists every option.
//!
//! # Layout
//!
//! - `cli`: every option, declared once: flag, environment variable, help, default; the
//!   config file key is derived from it.
//! - `file`: the TOML file, read as text values by key (unknown keys refused).
//! - `duration`: [`parse_duration`], systemd-style durations.
//! - `merge`: flags > env > file, one loop over the options, remembering where each value
//!   came from.
//! - `validate`: defaults, and the rules of `common` (names, timers), naming the origin.
//! - this file: the types others use and the entry points.

mod cli;
mod duration;
mod file;
mod merge;
mod validate;

pub use duration::parse_duration;

use common::types::Strategy;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A set of timer defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// LAN defaults: failover within about a second, little traffic.
    #[default]
    Default,
    /// About ten times quicker (failover and cold start within 300 ms), ten times the beats.
    Fast,
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Default => "default",
            Profile::Fast => "fast",
        })
    }
}

/// Protocol timers, all in milliseconds. See `docs/CONFIG.md` for tuning advice.
#[derive(Clone, Debug, PartialEq)]
pub struct Timers {
    /// Heartbeat interval on every peer link. At least 5 ms.
    pub heartbeat_ms: u64,
    /// A peer silent for this long is counted lost. At least `lease_ms`.
    pub silence_ms: u64,
    /// Master lease: a master that has not heard a quorum for this long steps down.
    /// At least 3 x `heartbeat_ms`, so that one lost beat never costs the mastership.
    pub lease_ms: u64,
    /// Discovery window after start, before the node may vote or claim. At least 2 x heartbeat.
    pub startup_ms: u64,
    /// Interval of the repeated discovery hello. At least `heartbeat_ms`.
    pub announce_ms: u64,
    /// A hook running longer is killed (SIGTERM to its process group, SIGKILL 2 s later).
    pub hook_timeout_ms: u64,
}

impl Timers {
    /// The values of a profile.
    pub fn for_profile(profile: Profile) -> Timers {
        // One source of truth: the election core's own profiles.
        let core = match profile {
            Profile::Default => common::election::Config::default(),
            Profile::Fast => common::election::Config::fast(),
        };
        Timers {
            heartbeat_ms: core.heartbeat_ms,
            silence_ms: core.silence_ms,
            lease_ms: core.lease_ms,
            startup_ms: core.startup_ms,
            announce_ms: match profile {
                Profile::Default => 2000,
                Profile::Fast => 500,
            },
            hook_timeout_ms: 30_000,
        }
    }

    /// [`Timers::hook_timeout_ms`] as a `Duration` (what [`crate::hooks::HookScripts`] takes).
    pub fn hook_timeout(&self) -> Duration {
        Duration::from_millis(self.hook_timeout_ms)
    }
}

impl Default for Timers {
    fn default() -> Self {
        Timers::for_profile(Profile::Default)
    }
}

/// Everything the daemon needs to know from its operator.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// TCP peer listener address (positional 1, default 0.0.0.0).
    pub address: IpAddr,
    /// TCP peer port (positional 2, default 8080; the next free one is used if taken).
    pub port: u16,
    /// Discovery broadcast address (positional 3, default 255.255.255.255).
    pub broadcast_address: IpAddr,
    /// Discovery UDP port (positional 4, default 5595).
    pub broadcast_port: u16,
    /// `-n/--name`; None => `<hostname>:<port>`, decided once the port is bound.
    pub name: Option<String>,
    /// Rank strategy (`--use-port-instead-of-life-time` => Port).
    pub strategy: Strategy,
    /// `-m/--master-script`.
    pub master_script: Option<PathBuf>,
    /// `-s/--slave-script`.
    pub slave_script: Option<PathBuf>,
    /// `--notify`: run on every role or master change.
    pub notify_script: Option<PathBuf>,
    /// `-d/--debug`.
    pub debug: bool,
    /// `--log-level`: a level or filter; wins over `RUST_LOG` and `-d`.
    pub log_level: Option<String>,
    /// `--log-format`.
    pub log_format: crate::logging::LogFormat,
    /// `--maintenance`: start (or, by a reload, go) in maintenance.
    pub maintenance: bool,
    /// The config file that was loaded, if any.
    pub config_file: Option<PathBuf>,
    /// Control socket path.
    pub socket: PathBuf,
    /// Cluster name (default "quorum").
    pub cluster: String,
    /// Static peers (TCP peer addresses).
    pub peers: Vec<SocketAddr>,
    /// Address announced to peers.
    pub advertise: Option<IpAddr>,
    /// Minimum counted members (0 = off).
    pub expect: usize,
    /// Votes but never becomes master.
    pub witness: bool,
    /// `--priority`: higher wins the vote first (default 0).
    pub priority: i32,
    /// `--metrics-listen`.
    pub metrics_listen: Option<SocketAddr>,
    /// `--check` and its timers.
    pub checks: crate::checks::CheckSettings,
    /// A sitting master keeps the role.
    pub no_preempt: bool,
    /// Exit when inquorate instead of waiting.
    pub exit_on_minority: bool,
    /// Shared key for cluster traffic.
    pub key_file: Option<PathBuf>,
    /// Log file (rotated daily), besides stderr.
    pub log_file: Option<PathBuf>,
    /// Persistent state directory (default /var/lib/quorumd when root).
    pub state_dir: Option<PathBuf>,
    /// Timer profile the defaults came from.
    pub profile: Profile,
    /// Effective timers (profile values, each overridable).
    pub timers: Timers,
    /// A dispatched member leaves the table this long after it left (`--reap-dispatched`).
    pub reap_dispatched_ms: u64,
}

impl Default for Settings {
    /// The defaults, as with a bare `quorumd` and an empty environment.
    fn default() -> Self {
        Settings {
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 8080,
            broadcast_address: IpAddr::V4(Ipv4Addr::BROADCAST),
            broadcast_port: 5595,
            name: None,
            strategy: Strategy::Age,
            master_script: None,
            slave_script: None,
            notify_script: None,
            debug: false,
            log_level: None,
            log_format: crate::logging::LogFormat::Text,
            maintenance: false,
            config_file: None,
            socket: default_socket(&|_| None),
            cluster: "quorum".into(),
            peers: Vec::new(),
            advertise: None,
            expect: 0,
            witness: false,
            priority: 0,
            metrics_listen: None,
            checks: crate::checks::CheckSettings::default(),
            no_preempt: false,
            exit_on_minority: false,
            key_file: None,
            log_file: None,
            state_dir: default_state_dir(),
            profile: Profile::Default,
            timers: Timers::default(),
            reap_dispatched_ms: common::election::REAP_DISPATCHED_MS,
        }
    }
}

/// Why the configuration was refused. Nothing was started.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The command line itself is wrong (or `--help`/`--version` was asked): clap's message.
    #[error("{0}")]
    Cli(#[from] clap::Error),
    /// A value is malformed or out of range; `source` names the flag, variable or key.
    #[error("invalid value {value:?} for {origin}: {reason}")]
    Invalid {
        /// Where the value came from, e.g. `--name`, `QUORUMD_PORT`, `key port in FILE`.
        origin: String,
        /// The offending value as written.
        value: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// Two values contradict each other (e.g. lease shorter than 3 heartbeats).
    #[error("{0}")]
    Conflict(String),
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML of the expected shape (toml's message names the key).
    #[error("invalid config file {path}: {message}")]
    ParseFile {
        /// The file.
        path: PathBuf,
        /// toml's message (line, column, key).
        message: String,
    },
}

impl Settings {
    /// Parse `std::env::args` + environment + config file. On error print a clear message
    /// naming the flag/key and exit 2 (clap's usage exit code); `--help`/`--version` exit 0.
    pub fn from_args() -> Settings {
        let env = |key: &str| std::env::var(key).ok();
        match Settings::parse_from(std::env::args_os(), &env) {
            Ok(settings) => settings,
            Err(ConfigError::Cli(e)) => e.exit(),
            Err(e) => {
                crate::logging::eprint_line(&format!("error: {e}"));
                crate::logging::eprint_line("\nFor more information, try 'quorumd --help'.");
                std::process::exit(2);
            }
        }
    }

    /// The same from an explicit argv (argv\[0\] included) and environment lookup, for tests.
    pub fn parse_from<I, T>(
        args: I,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        validate::settings(merge::merge(args, env)?, env)
    }
}

/// quorumd's clap command (for generating a man page or completions for `quorumd`).
pub fn command() -> clap::Command {
    <cli::Cli as clap::CommandFactory>::command()
}

/// Every config file key (`timers.heartbeat` for a key of the `[timers]` table), derived from
/// the options' declarations: for tests that check the docs and the example config.
pub fn file_keys() -> Vec<String> {
    command()
        .get_arguments()
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .filter_map(|a| cli::file_key(a.get_id().as_str()))
        .collect()
}

/// The default control socket: `/run/quorumd/quorumd.sock` for root, else
/// `$XDG_RUNTIME_DIR/quorumd/quorumd.sock`, else `/tmp/quorumd-<uid>/quorumd.sock`.
pub fn default_socket(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    let uid = euid();
    if uid == 0 {
        return PathBuf::from(common::control::DEFAULT_SOCKET);
    }
    match env("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => Path::new(&dir).join("quorumd/quorumd.sock"),
        None => PathBuf::from(format!("/tmp/quorumd-{uid}/quorumd.sock")),
    }
}

/// The default state directory: `/var/lib/quorumd` for root (systemd's `StateDirectory`),
/// none otherwise.
pub fn default_state_dir() -> Option<PathBuf> {
    (euid() == 0).then(|| PathBuf::from("/var/lib/quorumd"))
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, ConfigError> {
        let argv = std::iter::once("quorumd").chain(args.iter().copied());
        Settings::parse_from(argv, &|_| None)
    }

    #[test]
    fn short_options_accept_the_equals_form() {
        let s = parse(&["-m=i_am_master.py", "-s=slave.sh", "-n=Dick"]).expect("parses");
        assert_eq!(s.master_script, Some(PathBuf::from("i_am_master.py")));
        assert_eq!(s.slave_script, Some(PathBuf::from("slave.sh")));
        assert_eq!(s.name.as_deref(), Some("Dick"));
    }
}
