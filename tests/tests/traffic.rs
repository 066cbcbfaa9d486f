//! Traffic of a settled cluster on real links: quiet pairs (docs/ALGORITHM.md, "Cadence")
//! must stay quiet on the wire too. A member that is neither the master nor next in line
//! probes another one every few heartbeats; before the link writer honoured the gap a beat
//! declares, it filled the silence with a keepalive every 1.5 heartbeats, and 50 idle
//! daemons spent 70 % of a core on them.

use quorum_tests::{Cluster, DEADLINE};

/// Heartbeats per second with `--profile fast` (20 ms).
const BEATS_PER_S: u64 = 50;

#[test]
fn quiet_pairs_stay_quiet_on_the_wire() {
    let c = Cluster::new();
    let names: Vec<String> = (0..10).map(|i| format!("n{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let nodes = c.start_all(&refs, &[]);
    c.wait_master(&nodes.iter().collect::<Vec<_>>(), "n0");
    // The youngest node; n0 (master) and n1 (next in line) beat it every heartbeat, the
    // others only probe it in turn. A keepalive alone would be 2/3 of the heartbeat rate.
    let last = &nodes[9];
    let quiet = &refs[3..9];
    c.wait_for(
        "the youngest node hears its quiet peers at a probe's pace",
        DEADLINE,
        || {
            let s = last.status();
            let Some(traffic) = s["security"]["traffic"].as_array().cloned() else {
                return false;
            };
            let rates: Vec<(String, u64)> = traffic
                .iter()
                .filter_map(|t| {
                    let name = t["name"].as_str()?.to_string();
                    quiet
                        .contains(&name.as_str())
                        .then(|| (name, t["messages_in_per_s"].as_u64().unwrap_or(u64::MAX)))
                })
                .collect();
            rates.len() == quiet.len() && rates.iter().all(|(_, r)| *r <= BEATS_PER_S / 3)
        },
    );
}
