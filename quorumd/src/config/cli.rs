//! The declaration of every option, in one place: flag, environment variable (`env =`), help
//! and default (written in the doc line). The config file key is the option's id (its long name
//! in snake_case; timers in a `[timers]` table, see [`file_key`]), so adding an option means
//! adding a field here and using it in `Settings`.
//!
//! Every field is optional here so that `merge` can tell, with clap's `value_source()`, whether
//! a value was given on the command line, and layer flags > environment > config file >
//! defaults. clap does not read the environment itself: `merge` reads the variables named here
//! through an injectable lookup, so tests never depend on the process environment.

use super::Profile;
use crate::logging::LogFormat;
use clap::{ArgAction, Parser};
use common::types::Strategy;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

const AFTER_HELP: &str = "\
Every option can also be given as the environment variable shown with it (e.g. QUORUMD_NAME,
QUORUMD_PEERS=a:1,b:2, QUORUMD_HEARTBEAT=200ms; switches take true/false) or as a key of the
--config file (TOML, the long option name in snake_case; timers in a [timers] table).
Precedence: command line > environment > config file > defaults (of the chosen --profile).
Durations are written as in systemd: 200ms, 1s, 1.5s, 2min; a bare number means seconds.

Examples:
  One node, default ports, master hook:
    quorumd -n alice -m /etc/quorumd/master.sh -s /etc/quorumd/slave.sh

  The original's command line:
    quorumd 0.0.0.0 6170 -d -m=i_am_master.py -s=i_am_slave.py -n=Dick

  Three nodes on one machine (loopback broadcast):
    quorumd 127.0.0.1 7001 127.255.255.255 7000 -n a --socket /tmp/a.sock --state-dir /tmp/a &
    quorumd 127.0.0.1 7002 127.255.255.255 7000 -n b --socket /tmp/b.sock --state-dir /tmp/b &
    quorumd 127.0.0.1 7003 127.255.255.255 7000 -n c --socket /tmp/c.sock --state-dir /tmp/c &
    quorumctl --socket /tmp/a.sock status

  A hook: the script sees QUORUM_ROLE, QUORUM_PREVIOUS_ROLE, QUORUM_MASTER, QUORUM_EPOCH,
  QUORUM_NODE and QUORUM_EVENT in its environment:
    quorumd --notify /usr/local/bin/on-role-change --hook-timeout 10s

  As a systemd service:
    quorumd --config /etc/quorumd/quorumd.toml
";

/// quorumd: elects exactly one master among the machines of a LAN, by quorum.
#[derive(Debug, Parser)]
#[command(
    name = "quorumd",
    version,
    about,
    after_help = AFTER_HELP,
    // The original (argparse) accepted repeated options such as `-d ... -d`: the last wins.
    args_override_self = true
)]
pub(super) struct Cli {
    // ---- Arguments (the original's positionals) ----
    /// Address of the TCP peer listener (default: 0.0.0.0).
    #[arg(value_name = "ADDRESS", env = "QUORUMD_ADDRESS")]
    pub address: Option<IpAddr>,

    /// TCP peer port; the next free port is used if it is taken (default: 8080).
    #[arg(value_name = "PORT", env = "QUORUMD_PORT")]
    pub port: Option<u16>,

    /// Discovery broadcast address (default: 255.255.255.255; 127.255.255.255 on loopback).
    #[arg(value_name = "BROADCAST_ADDRESS", env = "QUORUMD_BROADCAST_ADDRESS")]
    pub broadcast_address: Option<IpAddr>,

    /// Discovery UDP port, shared by all nodes of a cluster (default: 5595).
    #[arg(value_name = "BROADCAST_PORT", env = "QUORUMD_BROADCAST_PORT")]
    pub broadcast_port: Option<u16>,

    // ---- Network ----
    /// A peer's TCP address ADDR:PORT, contacted directly where broadcast does not reach
    /// (repeatable; default: none).
    #[arg(id = "peer", long = "peer", env = "QUORUMD_PEERS", value_name = "ADDR:PORT", action = ArgAction::Append, help_heading = "Network")]
    pub peer: Vec<SocketAddr>,

    /// Address announced to peers when listening on 0.0.0.0 (default: guessed from the route).
    #[arg(
        long,
        env = "QUORUMD_ADVERTISE",
        value_name = "IP",
        help_heading = "Network"
    )]
    pub advertise: Option<IpAddr>,

    /// Cluster name: nodes of other clusters on the same ports are ignored (default: quorum).
    #[arg(
        long,
        env = "QUORUMD_CLUSTER",
        value_name = "NAME",
        help_heading = "Network"
    )]
    pub cluster: Option<String>,

    /// Cluster key file authenticating all cluster traffic (HMAC-SHA256; mode 0600; one key
    /// per line, the first signs, all verify). Without it traffic is unauthenticated.
    /// Create one with `quorumctl keygen FILE` (or `quorumd --generate-key FILE`).
    #[arg(
        long,
        env = "QUORUMD_KEY_FILE",
        value_name = "FILE",
        help_heading = "Network"
    )]
    pub key_file: Option<PathBuf>,

    // ---- Election ----
    /// This node's name, unique in the cluster (default: <hostname>:<port>).
    #[arg(
        short = 'n',
        long,
        env = "QUORUMD_NAME",
        value_name = "NAME",
        help_heading = "Election"
    )]
    pub name: Option<String>,

    /// Rank by lowest port instead of earliest start (alias: --use_port_instead_of_life_time).
    #[arg(
        id = "use_port_instead_of_life_time",
        long = "use-port-instead-of-life-time",
        env = "QUORUMD_USE_PORT_INSTEAD_OF_LIFE_TIME",
        alias = "use_port_instead_of_life_time",
        action = ArgAction::SetTrue,
        help_heading = "Election"
    )]
    pub use_port_instead_of_life_time: bool,

    /// Rank strategy: age (earliest start wins) or port (lowest port wins) (default: age).
    #[arg(long, env = "QUORUMD_STRATEGY", value_name = "age|port", value_parser = parse_strategy, help_heading = "Election")]
    pub strategy: Option<Strategy>,

    /// Count at least N members for quorum, so a lone node never makes itself master
    /// (default: 0 = off).
    #[arg(
        long,
        env = "QUORUMD_EXPECT",
        value_name = "N",
        help_heading = "Election"
    )]
    pub expect: Option<usize>,

    /// Vote but never become master (a tie-breaker box) (default: off).
    #[arg(long, env = "QUORUMD_WITNESS", action = ArgAction::SetTrue, help_heading = "Election")]
    pub witness: bool,

    /// Preferred master: a higher priority wins the vote first, then the strategy's order
    /// (default: 0).
    #[arg(
        long,
        env = "QUORUMD_PRIORITY",
        value_name = "N",
        allow_negative_numbers = true,
        help_heading = "Election"
    )]
    pub priority: Option<i32>,

    /// Start in maintenance: vote, but never become master, until `quorumctl maintenance off`
    /// or a reload with this off (default: off).
    #[arg(long, env = "QUORUMD_MAINTENANCE", action = ArgAction::SetTrue, help_heading = "Election")]
    pub maintenance: bool,

    /// A sitting master keeps the role when a better-ranked node joins (default: off).
    #[arg(long, env = "QUORUMD_NO_PREEMPT", action = ArgAction::SetTrue, help_heading = "Election")]
    pub no_preempt: bool,

    /// Exit (status 3) instead of waiting when no quorum can be reached for a silence window
    /// (default: off).
    #[arg(long, env = "QUORUMD_EXIT_ON_MINORITY", action = ArgAction::SetTrue, help_heading = "Election")]
    pub exit_on_minority: bool,

    // ---- Hooks ----
    /// Script run when this node becomes master; -m=path works (default: none).
    #[arg(
        short = 'm',
        long,
        env = "QUORUMD_MASTER_SCRIPT",
        value_name = "PATH",
        help_heading = "Hooks"
    )]
    pub master_script: Option<PathBuf>,

    /// Script run when this node becomes slave, inquorate or leaves; -s=path works
    /// (default: none).
    #[arg(
        short = 's',
        long,
        env = "QUORUMD_SLAVE_SCRIPT",
        value_name = "PATH",
        help_heading = "Hooks"
    )]
    pub slave_script: Option<PathBuf>,

    /// Script run on every role or master change (default: none).
    #[arg(
        id = "notify",
        long = "notify",
        env = "QUORUMD_NOTIFY",
        value_name = "PATH",
        help_heading = "Hooks"
    )]
    pub notify: Option<PathBuf>,

    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (default: off).
    #[arg(
        long,
        env = "QUORUMD_METRICS_LISTEN",
        value_name = "ADDR:PORT",
        help_heading = "Control"
    )]
    pub metrics_listen: Option<SocketAddr>,

    /// A health-check command run with `sh -c`; repeatable. While one fails this node is
    /// not eligible for mastership (it still votes) (default: none).
    #[arg(id = "check", long = "check", env = "QUORUMD_CHECK", value_name = "CMD", action = ArgAction::Append, help_heading = "Health checks")]
    pub check: Vec<String>,

    /// Run each check this often (default: 2s).
    #[arg(long, env = "QUORUMD_CHECK_INTERVAL", value_name = "DUR", value_parser = super::parse_duration, help_heading = "Health checks")]
    pub check_interval: Option<Duration>,

    /// Kill a check (its process group) running longer than this; counts as a failure
    /// (default: 2s).
    #[arg(long, env = "QUORUMD_CHECK_TIMEOUT", value_name = "DUR", value_parser = super::parse_duration, help_heading = "Health checks")]
    pub check_timeout: Option<Duration>,

    /// Successes in a row that make a failing check pass again (default: 2).
    #[arg(long, env = "QUORUMD_CHECK_RISE", value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Health checks")]
    pub check_rise: Option<u32>,

    /// Failures in a row that make a passing check fail (default: 2).
    #[arg(long, env = "QUORUMD_CHECK_FALL", value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Health checks")]
    pub check_fall: Option<u32>,

    /// Kill a hook (its whole process group) running longer than this (default: 30s).
    #[arg(long, env = "QUORUMD_HOOK_TIMEOUT", value_name = "DUR", value_parser = super::parse_duration, help_heading = "Hooks")]
    pub hook_timeout: Option<Duration>,

    // ---- Timers ----
    /// Timer profile: default, or fast (about 10x quicker failover, more traffic).
    #[arg(long, env = "QUORUMD_PROFILE", value_name = "default|fast", value_parser = parse_profile, help_heading = "Timers")]
    pub profile: Option<Profile>,

    /// Heartbeat interval, >= 5ms (default: 150ms; fast: 20ms).
    #[arg(long, env = "QUORUMD_HEARTBEAT", value_name = "DUR", value_parser = super::parse_duration, help_heading = "Timers")]
    pub heartbeat: Option<Duration>,

    /// A peer is lost after this silence, >= lease (default: 900ms; fast: 150ms).
    #[arg(long, env = "QUORUMD_SILENCE", value_name = "DUR", value_parser = super::parse_duration, help_heading = "Timers")]
    pub silence: Option<Duration>,

    /// Master lease, >= 3 x heartbeat (default: 600ms; fast: 120ms).
    #[arg(long, env = "QUORUMD_LEASE", value_name = "DUR", value_parser = super::parse_duration, help_heading = "Timers")]
    pub lease: Option<Duration>,

    /// Discovery window at start, >= 2 x heartbeat (default: 650ms; fast: 150ms).
    #[arg(long, env = "QUORUMD_STARTUP", value_name = "DUR", value_parser = super::parse_duration, help_heading = "Timers")]
    pub startup: Option<Duration>,

    /// Interval of the repeated discovery broadcast while linked to nobody; 4 intervals or
    /// more once linked (more past 32 members). >= heartbeat (default: 2s; fast: 500ms).
    #[arg(long, env = "QUORUMD_ANNOUNCE", value_name = "DUR", value_parser = super::parse_duration, help_heading = "Timers")]
    pub announce: Option<Duration>,

    /// Remove a dispatched member from the members table this long after it left; lost
    /// members stay until they return or are forgotten (default: 24h, like Serf's tombstones).
    #[arg(long, env = "QUORUMD_REAP_DISPATCHED", value_name = "DUR", value_parser = super::parse_duration, help_heading = "Timers")]
    pub reap_dispatched: Option<Duration>,

    // ---- Logging and files ----
    /// Debug logging for quorumd (RUST_LOG overrides) (default: off).
    #[arg(short = 'd', long, env = "QUORUMD_DEBUG", action = ArgAction::SetTrue, help_heading = "Logging and files")]
    pub debug: bool,

    /// Log level (error, warn, info, debug, trace) or a RUST_LOG-style filter such as
    /// info,quorumd=debug; wins over RUST_LOG and -d (default: info).
    #[arg(long, env = "QUORUMD_LOG_LEVEL", value_name = "LEVEL", value_parser = parse_log_level, help_heading = "Logging and files")]
    pub log_level: Option<String>,

    /// Log lines as readable text or as JSON objects, one per line (default: text).
    #[arg(long, env = "QUORUMD_LOG_FORMAT", value_name = "text|json", value_parser = parse_log_format, help_heading = "Logging and files")]
    pub log_format: Option<LogFormat>,

    /// Also log to this file, rotated daily (default: none; stderr always).
    #[arg(
        long,
        env = "QUORUMD_LOG_FILE",
        value_name = "FILE",
        help_heading = "Logging and files"
    )]
    pub log_file: Option<PathBuf>,

    /// TOML config file (default: none).
    #[arg(
        id = "config",
        long = "config",
        env = "QUORUMD_CONFIG",
        value_name = "FILE",
        help_heading = "Logging and files"
    )]
    pub config: Option<PathBuf>,

    /// Control socket quorumctl talks to (default: /run/quorumd/quorumd.sock as root, else
    /// $XDG_RUNTIME_DIR/quorumd/quorumd.sock or /tmp/quorumd-<uid>/quorumd.sock).
    #[arg(long, env = common::control::SOCKET_ENV, value_name = "PATH", help_heading = "Logging and files")]
    pub socket: Option<PathBuf>,

    /// Directory for persistent state (default: /var/lib/quorumd as root, else none).
    #[arg(
        long,
        env = "QUORUMD_STATE_DIR",
        value_name = "DIR",
        help_heading = "Logging and files"
    )]
    pub state_dir: Option<PathBuf>,
}

pub(super) fn parse_strategy(s: &str) -> Result<Strategy, String> {
    match s {
        "age" => Ok(Strategy::Age),
        "port" => Ok(Strategy::Port),
        _ => Err(format!("unknown strategy {s:?} (expected age or port)")),
    }
}

pub(super) fn parse_log_level(s: &str) -> Result<String, String> {
    crate::logging::check_filter(s).map(|()| s.to_string())
}

pub(super) fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("unknown log format {s:?} (expected text or json)")),
    }
}

pub(super) fn parse_profile(s: &str) -> Result<Profile, String> {
    match s {
        "default" => Ok(Profile::Default),
        "fast" => Ok(Profile::Fast),
        _ => Err(format!("unknown profile {s:?} (expected default or fast)")),
    }
}

/// The positionals (the original's command line), by id.
pub(super) const POSITIONALS: [&str; 4] =
    ["address", "port", "broadcast_address", "broadcast_port"];

/// The timers: their config file keys live in the `[timers]` table.
const TIMERS: [&str; 7] = [
    "heartbeat",
    "silence",
    "lease",
    "startup",
    "announce",
    "hook_timeout",
    "reap_dispatched",
];

/// Older spellings of file keys, still accepted: (alias, key).
pub(super) const FILE_KEY_ALIASES: [(&str, &str); 2] =
    [("notify_script", "notify"), ("peers", "peer")];

/// The config file key of the option with clap id `id`; `None` for `--config` itself.
pub(super) fn file_key(id: &str) -> Option<String> {
    match id {
        "config" => None,
        t if TIMERS.contains(&t) => Some(format!("timers.{t}")),
        other => Some(other.to_string()),
    }
}
