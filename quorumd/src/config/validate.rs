//! Checks of single values and of the timers against each other.

use super::ConfigError;
use super::merge::Origin;
use std::fmt;
use std::time::Duration;

pub(super) struct TimerValue {
    pub ms: u64,
    pub origin: Origin,
}

impl fmt::Display for TimerValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms (from {})", self.ms, self.origin)
    }
}

pub(super) fn duration_ms(d: Duration, origin: &Origin) -> Result<u64, ConfigError> {
    u64::try_from(d.as_millis()).map_err(|_| invalid(origin, &format!("{d:?}"), "too large"))
}

pub(super) fn validate_timers(
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
    let rules: [(&str, &TimerValue, &str, u64, &str); 4] = [
        (
            "lease",
            lease,
            "3 x heartbeat",
            heartbeat.ms.saturating_mul(3),
            "so that one lost beat never costs the mastership",
        ),
        (
            "silence",
            silence,
            "the lease",
            lease.ms,
            "so that a peer is not counted lost while its lease may still run",
        ),
        (
            "startup",
            startup,
            "2 x heartbeat",
            heartbeat.ms.saturating_mul(2),
            "to hear the cluster before voting",
        ),
        (
            "announce",
            announce,
            "the heartbeat",
            heartbeat.ms,
            "discovery need not be faster than heartbeats",
        ),
    ];
    for (what, value, bound, min, why) in rules {
        if value.ms < min {
            return Err(ConfigError::Conflict(format!(
                "the {what} timer must be at least {bound} ({min}ms), {why}; got {value} \
                 with heartbeat {heartbeat} and lease {lease}"
            )));
        }
    }
    Ok(())
}

pub(super) fn invalid(origin: &Origin, value: &dyn fmt::Display, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

pub(super) fn check_port(port: u16, origin: &Origin) -> Result<(), ConfigError> {
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
