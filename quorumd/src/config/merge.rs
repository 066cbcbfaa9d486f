//! The merge: for each option, command-line flag > environment > config file > default,
//! remembering where each value came from so that errors can name it.

use super::cli::{self, Cli};
use super::file::FileConfig;
use super::validate::{
    TimerValue, check_port, duration_ms, invalid, validate_name, validate_timers,
};
use super::{ConfigError, Settings, Timers, default_socket, parse_duration};
use common::types::Strategy;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a value came from, for error messages.
#[derive(Clone, Debug)]
pub(super) enum Origin {
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
            Origin::Default(profile) => write!(f, "the {profile} profile"),
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

pub(super) struct Merge<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    pub file_name: Option<&'a Path>,
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

    pub fn merge(
        &self,
        cli: Cli,
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
        let default_origin = || Origin::Default(profile.to_string());
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
    fn strategy(&self, cli: &Cli, file: &FileConfig) -> Result<Strategy, ConfigError> {
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
