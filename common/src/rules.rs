//! The rules for values an operator gives: the relations between timers. Names follow
//! [`crate::types::check_name`]. Both the daemon's configuration and the election core's
//! [`crate::election::Config::validate`] call these, so each rule is written once.

/// Timer values in milliseconds, as configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerValues {
    /// Heartbeat interval.
    pub heartbeat_ms: u64,
    /// Silence after which a peer is lost.
    pub silence_ms: u64,
    /// Master lease.
    pub lease_ms: u64,
    /// Discovery window at start.
    pub startup_ms: u64,
    /// Interval of the repeated discovery hello; `None` where there is none (the core).
    pub announce_ms: Option<u64>,
    /// Hook timeout; `None` where there is none (the core).
    pub hook_timeout_ms: Option<u64>,
}

/// A timer below its lower bound. Says which timer, the bound and why the bound exists.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the {timer} timer must be at least {}, {why}; got {got_ms}ms", self.bound_text())]
pub struct TimerError {
    /// The offending timer: `heartbeat`, `silence`, `lease`, `startup`, `announce` or
    /// `hook_timeout` (the config file keys).
    pub timer: &'static str,
    /// The bound in words, e.g. `3 x heartbeat`.
    pub bound: &'static str,
    /// The bound in milliseconds.
    pub min_ms: u64,
    /// The value given.
    pub got_ms: u64,
    /// Why the bound exists.
    pub why: &'static str,
}

impl TimerError {
    /// `3 x heartbeat (450ms)`, or just `5ms` for a fixed bound.
    fn bound_text(&self) -> String {
        let ms = format!("{}ms", self.min_ms);
        if self.bound == ms {
            ms
        } else {
            format!("{} ({ms})", self.bound)
        }
    }

    /// The other timer the bound depends on (`heartbeat` or `lease`), if any.
    pub fn depends_on(&self) -> Option<&'static str> {
        match self.timer {
            "lease" | "startup" | "announce" => Some("heartbeat"),
            "silence" => Some("lease"),
            _ => None,
        }
    }
}

/// Shortest heartbeat accepted: below this, scheduling noise is as large as the interval.
pub const MIN_HEARTBEAT_MS: u64 = 5;

/// Checks every timer against its lower bound, in this order: heartbeat >= 5ms,
/// hook_timeout >= 1ms, lease >= 3 x heartbeat, silence >= lease, startup >= 2 x heartbeat,
/// announce >= heartbeat. The first broken rule is returned.
pub fn check_timers(t: &TimerValues) -> Result<(), TimerError> {
    let hb = t.heartbeat_ms;
    let rules = [
        (
            "heartbeat",
            Some(hb),
            "5ms",
            MIN_HEARTBEAT_MS,
            "shorter intervals drown in scheduling noise",
        ),
        (
            "hook_timeout",
            t.hook_timeout_ms,
            "1ms",
            1,
            "a hook needs some time to run",
        ),
        (
            "lease",
            Some(t.lease_ms),
            "3 x heartbeat",
            hb.saturating_mul(3),
            "so that one lost beat never costs the mastership",
        ),
        (
            "silence",
            Some(t.silence_ms),
            "the lease",
            t.lease_ms,
            "so that a peer is not counted lost while its lease may still run",
        ),
        (
            "startup",
            Some(t.startup_ms),
            "2 x heartbeat",
            hb.saturating_mul(2),
            "to hear the cluster before voting",
        ),
        (
            "announce",
            t.announce_ms,
            "the heartbeat",
            hb,
            "discovery need not be faster than heartbeats",
        ),
    ];
    for (timer, value, bound, min_ms, why) in rules {
        match value {
            Some(got_ms) if got_ms < min_ms => {
                return Err(TimerError {
                    timer,
                    bound,
                    min_ms,
                    got_ms,
                    why,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> TimerValues {
        TimerValues {
            heartbeat_ms: 150,
            silence_ms: 900,
            lease_ms: 600,
            startup_ms: 650,
            announce_ms: Some(2000),
            hook_timeout_ms: Some(30_000),
        }
    }

    #[test]
    fn each_rule_names_its_timer() {
        assert_eq!(check_timers(&defaults()), Ok(()));
        type Break = fn(&mut TimerValues);
        let cases: [(&str, Break); 6] = [
            ("heartbeat", |t| t.heartbeat_ms = 4),
            ("hook_timeout", |t| t.hook_timeout_ms = Some(0)),
            ("lease", |t| t.lease_ms = 449),
            ("silence", |t| t.silence_ms = 599),
            ("startup", |t| t.startup_ms = 299),
            ("announce", |t| t.announce_ms = Some(149)),
        ];
        for (timer, break_it) in cases {
            let mut t = defaults();
            break_it(&mut t);
            assert_eq!(check_timers(&t).map_err(|e| e.timer), Err(timer));
        }
    }
}
