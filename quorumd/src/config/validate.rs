//! Turns the merged options into [`Settings`], checking each value with the rules of `common`
//! (names: [`common::types::check_name`], timers: [`common::rules::check_timers`]) and
//! naming where a refused value came from.

use super::merge::{Merged, Origin};
use super::{ConfigError, Settings, Timers, default_socket};
use common::types::Strategy;
use std::fmt;
use std::time::Duration;

/// Most members `--expect` may ask for.
const MAX_EXPECT: usize = 1000;

pub(super) fn settings(
    m: Merged,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    let d = Settings::default();
    let strategy = strategy(&m)?;
    let c = &m.cli;
    let origin = |id: &str| {
        m.origin(id)
            .cloned()
            .unwrap_or(Origin::Flag(id.to_string()))
    };

    for id in ["port", "broadcast_port"] {
        let p = if id == "port" {
            c.port
        } else {
            c.broadcast_port
        };
        if p == Some(0) {
            return Err(invalid(&origin(id), &0, "a port must be in 1..=65535"));
        }
    }
    if let Some(n) = c.expect.filter(|n| *n > MAX_EXPECT) {
        let why = format!("at most {MAX_EXPECT} members can be expected");
        return Err(invalid(&origin("expect"), &n, &why));
    }
    for (id, value) in [("name", &c.name), ("cluster", &c.cluster)] {
        if let Some(v) = value {
            common::types::check_name(v).map_err(|reason| invalid(&origin(id), v, &reason))?;
        }
    }

    let profile = c.profile.unwrap_or_default();
    let base = Timers::for_profile(profile);
    let ms = |id: &str, given: Option<Duration>, default: u64| -> Result<u64, ConfigError> {
        match given {
            None => Ok(default),
            Some(dur) => u64::try_from(dur.as_millis())
                .map_err(|_| invalid(&origin(id), &format!("{dur:?}"), "too large")),
        }
    };
    let timers = Timers {
        heartbeat_ms: ms("heartbeat", c.heartbeat, base.heartbeat_ms)?,
        silence_ms: ms("silence", c.silence, base.silence_ms)?,
        lease_ms: ms("lease", c.lease, base.lease_ms)?,
        startup_ms: ms("startup", c.startup, base.startup_ms)?,
        announce_ms: ms("announce", c.announce, base.announce_ms)?,
        hook_timeout_ms: ms("hook_timeout", c.hook_timeout, base.hook_timeout_ms)?,
    };
    common::rules::check_timers(&common::rules::TimerValues {
        heartbeat_ms: timers.heartbeat_ms,
        silence_ms: timers.silence_ms,
        lease_ms: timers.lease_ms,
        startup_ms: timers.startup_ms,
        announce_ms: Some(timers.announce_ms),
        hook_timeout_ms: Some(timers.hook_timeout_ms),
    })
    .map_err(|e| {
        let from = |id: &str| {
            m.origin(id)
                .map_or_else(|| format!("the {profile} profile"), ToString::to_string)
        };
        let dependency = e.depends_on().map_or_else(String::new, |other| {
            let ms = if other == "lease" {
                timers.lease_ms
            } else {
                timers.heartbeat_ms
            };
            format!(", with {other} {ms}ms (from {})", from(other))
        });
        ConfigError::Conflict(format!("{e} (from {}){dependency}", from(e.timer)))
    })?;

    let reap_dispatched_ms = ms("reap_dispatched", c.reap_dispatched, d.reap_dispatched_ms)?;
    let c = m.cli;
    Ok(Settings {
        address: c.address.unwrap_or(d.address),
        port: c.port.unwrap_or(d.port),
        broadcast_address: c.broadcast_address.unwrap_or(d.broadcast_address),
        broadcast_port: c.broadcast_port.unwrap_or(d.broadcast_port),
        name: c.name,
        strategy,
        master_script: c.master_script,
        slave_script: c.slave_script,
        notify_script: c.notify,
        debug: c.debug,
        log_level: c.log_level,
        log_format: c.log_format.unwrap_or_default(),
        maintenance: c.maintenance,
        config_file: m.config_file,
        socket: c.socket.unwrap_or_else(|| default_socket(env)),
        cluster: c.cluster.unwrap_or(d.cluster),
        peers: c.peer,
        advertise: c.advertise,
        expect: c.expect.unwrap_or(d.expect),
        witness: c.witness,
        priority: c.priority.unwrap_or(0),
        metrics_listen: c.metrics_listen,
        checks: crate::checks::CheckSettings {
            commands: c.check,
            interval: c.check_interval.unwrap_or(Duration::from_secs(2)),
            timeout: c.check_timeout.unwrap_or(Duration::from_secs(2)),
            rise: c.check_rise.unwrap_or(2),
            fall: c.check_fall.unwrap_or(2),
        },
        no_preempt: c.no_preempt,
        exit_on_minority: c.exit_on_minority,
        key_file: c.key_file,
        log_file: c.log_file,
        state_dir: c.state_dir.or(d.state_dir),
        profile,
        timers,
        reap_dispatched_ms,
    })
}

/// `--use-port-instead-of-life-time` and `--strategy`: the one from the higher layer wins;
/// contradicting values from the same layer are refused.
fn strategy(m: &Merged) -> Result<Strategy, ConfigError> {
    let use_port = m
        .origin("use_port_instead_of_life_time")
        .map(|o| (m.cli.use_port_instead_of_life_time, o));
    let strategy = m.cli.strategy.zip(m.origin("strategy"));
    Ok(match (use_port, strategy) {
        (None, None) => Strategy::Age,
        (Some((up, _)), None) => port_if(up),
        (None, Some((s, _))) => s,
        (Some((up, uo)), Some((s, so))) => match uo.precedence().cmp(&so.precedence()) {
            std::cmp::Ordering::Greater => port_if(up),
            std::cmp::Ordering::Less => s,
            std::cmp::Ordering::Equal if up && s == Strategy::Age => {
                return Err(ConfigError::Conflict(format!(
                    "{uo} asks for the port strategy and {so} for age; keep one"
                )));
            }
            std::cmp::Ordering::Equal if up => Strategy::Port,
            std::cmp::Ordering::Equal => s,
        },
    })
}

fn port_if(up: bool) -> Strategy {
    if up { Strategy::Port } else { Strategy::Age }
}

pub(super) fn invalid(origin: &Origin, value: &dyn fmt::Display, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}
