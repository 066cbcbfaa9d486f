//! Tunables of the election core. All durations are milliseconds of the monotonic clock.

use crate::types::Strategy;

/// Configuration of one [`super::Election`].
///
/// The timers relate like this (checked by [`Config::validate`], rules in [`crate::rules`]):
///
/// ```text
/// heartbeat  <  lease / 3      a master's lease survives two lost beats
/// lease      <= silence        a silent master has stepped down before anyone notices it is gone
/// startup    >= 2 * heartbeat  the discovery window sees at least two beats of every peer
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Cluster name, reported in status.
    pub cluster: String,
    /// Rank strategy; members with another strategy are refused.
    pub strategy: Strategy,
    /// A witness votes but never becomes master.
    pub witness: bool,
    /// Lower bound of the counted members (corosync's expected_votes). 0 = off. When set, a
    /// certain crash is treated like silence: the member keeps counting and its votes run out
    /// with their lease (a firewall answering with resets looks like a crash).
    pub expect: usize,
    /// Move mastership to a better-ranked member when it (re)joins. `false` = `--no-preempt`.
    pub preempt: bool,
    /// Interval between heartbeats to each peer. Default 150; the fast profile uses 20.
    pub heartbeat_ms: u64,
    /// A peer not heard from for this long is `lost`, and a silent master is replaced about
    /// this long after it went silent. Default 900; fast 150.
    pub silence_ms: u64,
    /// How long a vote backs a master, measured from when the master sent the beat the vote
    /// answers. A master that cannot renew a quorum of votes within this steps down. Voters keep
    /// their promise for `lease_ms + drift_ms` after they received that beat, so the master's
    /// lease always ends first. A freshly started node neither votes nor stands for
    /// `lease_ms + drift_ms`, so a promise its previous incarnation gave has run out.
    /// Default 600; fast 120.
    pub lease_ms: u64,
    /// Safety margin for clock-rate differences between two hosts. Default 40; fast 10.
    pub drift_ms: u64,
    /// Discovery window after start: no candidacy, no hook. Default 650; fast 150.
    pub startup_ms: u64,
    /// A dispatched member is removed from the table this long after it left (like Serf's
    /// tombstones): it no longer counts anyway, but stays listed until then so operators see
    /// that it left. Lost members stay until they return or are forgotten. Default 24 h.
    pub reap_dispatched_ms: u64,
    /// quorumd version string, reported in status.
    pub version: String,
    /// Quiet pairs in a settled cluster (`cadence.rs`): members beat every heartbeat only the
    /// master, the next in line and whoever asks, and probe the others in rotation, so the
    /// traffic grows with n, not n² (the default). `false`: every pair beats every heartbeat,
    /// as the first releases did (docs/ALGORITHM.md, "Cadence").
    pub quiet_pairs: bool,
    /// While nothing is settled, a node linked to more than this many members paces its
    /// rounds (`cadence.rs`, "Forming pace"): the members the election rides on every
    /// heartbeat, and about this many of the others in turn. Default 24; `usize::MAX` turns
    /// it off.
    pub pace_above: usize,
}

/// [`Config::pace_above`] by default: up to this many links every pair of an unsettled
/// cluster beats every heartbeat (a cluster of 25 formed in 0.75 s that way).
pub const PACE_ABOVE: usize = 24;

/// [`Config::reap_dispatched_ms`] by default: 24 hours, Serf's tombstone timeout.
pub const REAP_DISPATCHED_MS: u64 = 24 * 3600 * 1000;

impl Default for Config {
    fn default() -> Self {
        Config {
            cluster: "quorum".into(),
            strategy: Strategy::Age,
            witness: false,
            expect: 0,
            preempt: true,
            heartbeat_ms: 150,
            silence_ms: 900,
            lease_ms: 600,
            drift_ms: 40,
            startup_ms: 650,
            reap_dispatched_ms: REAP_DISPATCHED_MS,
            version: String::new(),
            quiet_pairs: true,
            pace_above: PACE_ABOVE,
        }
    }
}

impl Config {
    /// How long a vote can bind after the beat behind it: the voter's promise runs a lease
    /// and a drift from when it received that beat.
    pub fn promise_ms(&self) -> u64 {
        self.lease_ms + self.drift_ms
    }

    /// The fast timer profile (like keepalived's 0.1 s adverts): failover and cold start well
    /// under 300 ms on a quiet LAN.
    pub fn fast() -> Self {
        Config {
            heartbeat_ms: 20,
            silence_ms: 150,
            lease_ms: 120,
            drift_ms: 10,
            startup_ms: 150,
            ..Config::default()
        }
    }

    /// Checks the relations between timers ([`crate::rules::check_timers`]); the message names
    /// the offending timer.
    pub fn validate(&self) -> Result<(), String> {
        crate::rules::check_timers(&crate::rules::TimerValues {
            heartbeat_ms: self.heartbeat_ms,
            silence_ms: self.silence_ms,
            lease_ms: self.lease_ms,
            startup_ms: self.startup_ms,
            announce_ms: None,
            hook_timeout_ms: None,
        })
        .map_err(|e| e.to_string())
    }
}
