//! Command line, environment and TOML config file, resolved into one [`Settings`].
//!
//! Precedence, per option: command-line flag > environment variable `QUORUMD_<KEY>` > config
//! file key (`--config FILE` or `QUORUMD_CONFIG`) > default (timers: the chosen
//! [`Profile`]'s). The merged result is validated as a whole; every error names the flag,
//! variable or file key the bad value came from. `docs/CONFIG.md` lists every option.
//!
//! # Layout
//!
//! - `cli`: the clap definition (all options optional, `--help` text).
//! - `file`: the TOML file's shape (unknown keys refused).
//! - `duration`: [`parse_duration`], systemd-style durations.
//! - this file: the types others use, the merge and the validation.

mod cli;
mod duration;
mod file;

pub use duration::parse_duration;

use clap::Parser;
use common::types::Strategy;
use file::FileConfig;
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
        match profile {
            Profile::Default => Timers {
                heartbeat_ms: 200,
                silence_ms: 1000,
                lease_ms: 800,
                startup_ms: 600,
                announce_ms: 2000,
                hook_timeout_ms: 30_000,
            },
            Profile::Fast => Timers {
                heartbeat_ms: 20,
                silence_ms: 150,
                lease_ms: 120,
                startup_ms: 150,
                announce_ms: 500,
                hook_timeout_ms: 30_000,
            },
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
            config_file: None,
            socket: default_socket(&|_| None),
            cluster: "quorum".into(),
            peers: Vec::new(),
            advertise: None,
            expect: 0,
            witness: false,
            no_preempt: false,
            exit_on_minority: false,
            key_file: None,
            log_file: None,
            state_dir: default_state_dir(),
            profile: Profile::Default,
            timers: Timers::default(),
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
                eprintln!("error: {e}");
                eprintln!("\nFor more information, try 'quorumd --help'.");
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
        let cli = cli::Cli::try_parse_from(args)?;
        let config_file = match cli.config_file.clone() {
            Some(path) => Some(path),
            None => env("QUORUMD_CONFIG")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        };
        let file = match &config_file {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let m = Merge {
            env,
            file_name: config_file.as_deref(),
        };
        let settings = m.merge(cli, file, config_file.clone())?;
        Ok(settings)
    }
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

/// Where a value came from, for error messages.
#[derive(Clone, Debug)]
enum Origin {
    Flag(&'static str),
    Env(String),
    File(String, String),
    Default(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => f.write_str(flag),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::File(key, file) => write!(f, "key `{key}` in {file}"),
            Origin::Default(what) => write!(f, "the {what} default"),
        }
    }
}

/// One option's description: flag, env var, TOML key.
struct Opt {
    flag: &'static str,
    env: &'static str,
    key: &'static str,
}

const fn opt(flag: &'static str, env: &'static str, key: &'static str) -> Opt {
    Opt { flag, env, key }
}

struct Merge<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    file_name: Option<&'a Path>,
}

impl Merge<'_> {
    /// flag > env > file; `None` when none is set. Env values are parsed with `parse`.
    fn pick<T>(
        &self,
        o: &Opt,
        flag: Option<T>,
        file: Option<T>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<(T, Origin)>, ConfigError> {
        if let Some(v) = flag {
            return Ok(Some((v, Origin::Flag(o.flag))));
        }
        if let Some(raw) = (self.env)(o.env) {
            let origin = Origin::Env(o.env.to_string());
            return match parse(raw.trim()) {
                Ok(v) => Ok(Some((v, origin))),
                Err(reason) => Err(ConfigError::Invalid {
                    origin: format!("{origin} ({})", o.flag),
                    value: raw,
                    reason,
                }),
            };
        }
        Ok(file.map(|v| (v, self.file_origin(o.key))))
    }

    fn file_origin(&self, key: &str) -> Origin {
        let file = self
            .file_name
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the config file".into());
        Origin::File(key.to_string(), file)
    }

    fn value<T>(
        &self,
        o: &Opt,
        flag: Option<T>,
        file: Option<T>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        Ok(self.pick(o, flag, file, parse)?.map(|(v, _)| v))
    }

    /// A boolean switch: the flag can only turn it on; env and file can say either.
    fn switch(&self, o: &Opt, flag: bool, file: Option<bool>) -> Result<bool, ConfigError> {
        Ok(self
            .value(o, flag.then_some(true), file, parse_bool)?
            .unwrap_or(false))
    }

    fn merge(
        &self,
        cli: cli::Cli,
        file: FileConfig,
        config_file: Option<PathBuf>,
    ) -> Result<Settings, ConfigError> {
        let d = Settings::default();
        let strategy = self.strategy(&cli, &file)?;
        let ft = &file.timers;

        let address = self.value(
            &opt("ADDRESS", "QUORUMD_ADDRESS", "address"),
            cli.address,
            file.address,
            parse_ip,
        )?;
        let port = self.pick(
            &opt("PORT", "QUORUMD_PORT", "port"),
            cli.port,
            file.port,
            parse_u16,
        )?;
        let broadcast_address = self.value(
            &opt(
                "BROADCAST_ADDRESS",
                "QUORUMD_BROADCAST_ADDRESS",
                "broadcast_address",
            ),
            cli.broadcast_address,
            file.broadcast_address,
            parse_ip,
        )?;
        let broadcast_port = self.pick(
            &opt("BROADCAST_PORT", "QUORUMD_BROADCAST_PORT", "broadcast_port"),
            cli.broadcast_port,
            file.broadcast_port,
            parse_u16,
        )?;
        let name = self.pick(
            &opt("--name", "QUORUMD_NAME", "name"),
            cli.name,
            file.name,
            |s| Ok(s.to_string()),
        )?;
        let path = |s: &str| Ok(PathBuf::from(s));
        let master_script = self.value(
            &opt("--master-script", "QUORUMD_MASTER_SCRIPT", "master_script"),
            cli.master_script,
            file.master_script,
            path,
        )?;
        let slave_script = self.value(
            &opt("--slave-script", "QUORUMD_SLAVE_SCRIPT", "slave_script"),
            cli.slave_script,
            file.slave_script,
            path,
        )?;
        let notify_script = self.value(
            &opt("--notify", "QUORUMD_NOTIFY", "notify"),
            cli.notify_script,
            file.notify,
            path,
        )?;
        let debug = self.switch(
            &opt("--debug", "QUORUMD_DEBUG", "debug"),
            cli.debug,
            file.debug,
        )?;
        let socket = self.value(
            &opt("--socket", common::control::SOCKET_ENV, "socket"),
            cli.socket,
            file.socket,
            path,
        )?;
        let cluster = self.pick(
            &opt("--cluster", "QUORUMD_CLUSTER", "cluster"),
            cli.cluster,
            file.cluster,
            |s| Ok(s.to_string()),
        )?;
        let peers = self.value(
            &opt("--peer", "QUORUMD_PEERS", "peer"),
            (!cli.peers.is_empty()).then_some(cli.peers),
            file.peer,
            parse_peers,
        )?;
        let advertise = self.value(
            &opt("--advertise", "QUORUMD_ADVERTISE", "advertise"),
            cli.advertise,
            file.advertise,
            parse_ip,
        )?;
        let expect = self.pick(
            &opt("--expect", "QUORUMD_EXPECT", "expect"),
            cli.expect,
            file.expect,
            |s| s.parse::<usize>().map_err(|e| e.to_string()),
        )?;
        let witness = self.switch(
            &opt("--witness", "QUORUMD_WITNESS", "witness"),
            cli.witness,
            file.witness,
        )?;
        let no_preempt = self.switch(
            &opt("--no-preempt", "QUORUMD_NO_PREEMPT", "no_preempt"),
            cli.no_preempt,
            file.no_preempt,
        )?;
        let exit_on_minority = self.switch(
            &opt(
                "--exit-on-minority",
                "QUORUMD_EXIT_ON_MINORITY",
                "exit_on_minority",
            ),
            cli.exit_on_minority,
            file.exit_on_minority,
        )?;
        let key_file = self.value(
            &opt("--key-file", "QUORUMD_KEY_FILE", "key_file"),
            cli.key_file,
            file.key_file,
            path,
        )?;
        let log_file = self.value(
            &opt("--log-file", "QUORUMD_LOG_FILE", "log_file"),
            cli.log_file,
            file.log_file,
            path,
        )?;
        let state_dir = self.value(
            &opt("--state-dir", "QUORUMD_STATE_DIR", "state_dir"),
            cli.state_dir,
            file.state_dir,
            path,
        )?;
        let profile = self
            .value(
                &opt("--profile", "QUORUMD_PROFILE", "profile"),
                cli.profile,
                file.profile,
                cli::parse_profile,
            )?
            .unwrap_or_default();

        let base = Timers::for_profile(profile);
        let default_origin = || Origin::Default(format!("{profile} profile"));
        let timer = |o: Opt, flag: Option<Duration>, file: Option<Duration>, def: u64| {
            Ok::<_, ConfigError>(match self.pick(&o, flag, file, parse_duration)? {
                Some((dur, origin)) => TimerValue {
                    ms: duration_ms(dur, &origin)?,
                    origin,
                },
                None => TimerValue {
                    ms: def,
                    origin: default_origin(),
                },
            })
        };
        let heartbeat = timer(
            opt("--heartbeat", "QUORUMD_HEARTBEAT", "timers.heartbeat"),
            cli.heartbeat,
            ft.heartbeat,
            base.heartbeat_ms,
        )?;
        let silence = timer(
            opt("--silence", "QUORUMD_SILENCE", "timers.silence"),
            cli.silence,
            ft.silence,
            base.silence_ms,
        )?;
        let lease = timer(
            opt("--lease", "QUORUMD_LEASE", "timers.lease"),
            cli.lease,
            ft.lease,
            base.lease_ms,
        )?;
        let startup = timer(
            opt("--startup", "QUORUMD_STARTUP", "timers.startup"),
            cli.startup,
            ft.startup,
            base.startup_ms,
        )?;
        let announce = timer(
            opt("--announce", "QUORUMD_ANNOUNCE", "timers.announce"),
            cli.announce,
            ft.announce,
            base.announce_ms,
        )?;
        let hook_timeout = timer(
            opt(
                "--hook-timeout",
                "QUORUMD_HOOK_TIMEOUT",
                "timers.hook_timeout",
            ),
            cli.hook_timeout,
            ft.hook_timeout,
            base.hook_timeout_ms,
        )?;
        validate_timers(
            &heartbeat,
            &silence,
            &lease,
            &startup,
            &announce,
            &hook_timeout,
        )?;

        if let Some((p, origin)) = &port {
            check_port(*p, origin)?;
        }
        if let Some((p, origin)) = &broadcast_port {
            check_port(*p, origin)?;
        }
        if let Some((n, origin)) = &expect {
            if *n > 1000 {
                return Err(invalid(origin, n, "at most 1000 members can be expected"));
            }
        }
        if let Some((n, origin)) = &name {
            validate_name(n).map_err(|reason| invalid(origin, n, &reason))?;
        }
        if let Some((c, origin)) = &cluster {
            validate_name(c).map_err(|reason| invalid(origin, c, &reason))?;
        }

        Ok(Settings {
            address: address.unwrap_or(d.address),
            port: port.map_or(d.port, |(p, _)| p),
            broadcast_address: broadcast_address.unwrap_or(d.broadcast_address),
            broadcast_port: broadcast_port.map_or(d.broadcast_port, |(p, _)| p),
            name: name.map(|(n, _)| n),
            strategy,
            master_script,
            slave_script,
            notify_script,
            debug,
            config_file,
            socket: socket.unwrap_or_else(|| default_socket(self.env)),
            cluster: cluster.map_or(d.cluster, |(c, _)| c),
            peers: peers.unwrap_or_default(),
            advertise,
            expect: expect.map_or(0, |(n, _)| n),
            witness,
            no_preempt,
            exit_on_minority,
            key_file,
            log_file,
            state_dir: state_dir.or(d.state_dir),
            profile,
            timers: Timers {
                heartbeat_ms: heartbeat.ms,
                silence_ms: silence.ms,
                lease_ms: lease.ms,
                startup_ms: startup.ms,
                announce_ms: announce.ms,
                hook_timeout_ms: hook_timeout.ms,
            },
        })
    }

    /// `--use-port-instead-of-life-time` / `--strategy`, their env vars and keys.
    fn strategy(&self, cli: &cli::Cli, file: &FileConfig) -> Result<Strategy, ConfigError> {
        let use_port = opt(
            "--use-port-instead-of-life-time",
            "QUORUMD_USE_PORT_INSTEAD_OF_LIFE_TIME",
            "use_port_instead_of_life_time",
        );
        let strategy = opt("--strategy", "QUORUMD_STRATEGY", "strategy");
        // Flags first (clap already refuses both together), then env, then file.
        if cli.use_port {
            return Ok(Strategy::Port);
        }
        if let Some(s) = cli.strategy {
            return Ok(s);
        }
        let from_env = self.value(&strategy, None, None, cli::parse_strategy)?;
        let port_env = self.value(&use_port, None, None, parse_bool)?;
        if from_env.is_some() || port_env.is_some() {
            return Ok(match (from_env, port_env) {
                (_, Some(true)) => Strategy::Port,
                (Some(s), _) => s,
                (None, _) => Strategy::Age,
            });
        }
        Ok(match (file.strategy, file.use_port_instead_of_life_time) {
            (Some(Strategy::Age), Some(true)) => {
                return Err(ConfigError::Conflict(format!(
                    "{} sets strategy = \"age\" and use_port_instead_of_life_time = true; keep one",
                    self.file_name
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                )));
            }
            (_, Some(true)) => Strategy::Port,
            (Some(s), _) => s,
            (None, _) => Strategy::Age,
        })
    }
}

struct TimerValue {
    ms: u64,
    origin: Origin,
}

impl fmt::Display for TimerValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms (from {})", self.ms, self.origin)
    }
}

fn duration_ms(d: Duration, origin: &Origin) -> Result<u64, ConfigError> {
    u64::try_from(d.as_millis()).map_err(|_| invalid(origin, &format!("{d:?}"), "too large"))
}

fn validate_timers(
    heartbeat: &TimerValue,
    silence: &TimerValue,
    lease: &TimerValue,
    startup: &TimerValue,
    announce: &TimerValue,
    hook_timeout: &TimerValue,
) -> Result<(), ConfigError> {
    if heartbeat.ms < 5 {
        return Err(invalid(
            &heartbeat.origin,
            &format!("{}ms", heartbeat.ms),
            "the heartbeat must be at least 5ms",
        ));
    }
    if hook_timeout.ms == 0 {
        return Err(invalid(
            &hook_timeout.origin,
            &"0ms",
            "the hook timeout must be positive",
        ));
    }
    let rules: [(&TimerValue, u64, &str); 4] = [
        (
            lease,
            heartbeat.ms.saturating_mul(3),
            "the lease must be at least 3 x heartbeat, so that a lost beat never costs the mastership",
        ),
        (
            silence,
            lease.ms,
            "the silence timeout must be at least the lease, so a peer is not lost before its lease ran out",
        ),
        (
            startup,
            heartbeat.ms.saturating_mul(2),
            "the startup window must be at least 2 x heartbeat, to hear the cluster before voting",
        ),
        (
            announce,
            heartbeat.ms,
            "the announce interval must be at least the heartbeat",
        ),
    ];
    for (value, min, why) in rules {
        if value.ms < min {
            return Err(ConfigError::Conflict(format!(
                "{why}: got {value}, need at least {min}ms (heartbeat {heartbeat}, lease {lease})"
            )));
        }
    }
    Ok(())
}

fn invalid(origin: &Origin, value: &dyn fmt::Display, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn check_port(port: u16, origin: &Origin) -> Result<(), ConfigError> {
    if port == 0 {
        return Err(invalid(origin, &port, "a port must be in 1..=65535"));
    }
    Ok(())
}

/// Names (and cluster names): non-empty, at most 200 bytes, no whitespace or control characters.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 200 {
        return Err(format!(
            "is {} bytes long; at most 200 are allowed",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "must not contain whitespace or control characters (found {c:?})"
        ));
    }
    Ok(())
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err("expected true or false (also 1/0, yes/no, on/off)".into()),
    }
}

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.parse()
        .map_err(|_| "expected an IP address such as 0.0.0.0 or 10.0.0.1".into())
}

fn parse_u16(s: &str) -> Result<u16, String> {
    s.parse()
        .map_err(|_| "expected a port number in 1..=65535".into())
}

fn parse_peers(s: &str) -> Result<Vec<SocketAddr>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse()
                .map_err(|_| format!("{p:?} is not ADDR:PORT (e.g. 10.0.0.2:8080, [fe80::1]:8080)"))
        })
        .collect()
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

    #[test]
    fn names_with_whitespace_or_control_characters_are_refused() {
        assert!(validate_name("alice").is_ok());
        assert!(validate_name("host:8080").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("a\u{7}").is_err());
        assert!(validate_name(&"x".repeat(201)).is_err());
        assert!(validate_name(&"x".repeat(200)).is_ok());
    }
}
