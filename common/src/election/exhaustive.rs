//! An exhaustive check of small clusters: every interleaving of a bounded set of events.
//!
//! A depth-first search over event sequences for two shapes: three nodes, and two nodes plus a
//! witness. The events are joins and restarts (a start with the node's memory), silent cuts
//! (a host off the network), a heal of every link, certain crashes (SIGKILL), dispatches, and
//! time steps of three sizes (a few message latencies, one heartbeat, one lease). Every
//! sequence is replayed on a fresh [`Sim`] (the core is not `Clone`; replay is cheap at these
//! depths) with the checker running after every event: one master, leases backed by promises,
//! unique and growing epochs, no stale answer. At each leaf the faults stop (heal, start
//! every node) and one agreed master must follow within the bound of the random schedules.
//!
//! States reached by different sequences are merged on [`Sim::fingerprint`] (times relative to
//! now), so commuting events are explored once. Network latency is fixed at 1 ms: the
//! simulator then draws no random numbers, and the time steps provide the interleavings.
//!
//! `EXHAUSTIVE_DEPTH=n` searches deeper than the default.

use super::Config;
use super::sim::{NetConfig, NodeOpts, Sim};
use crate::types::{Role, Strategy};
use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::time::Instant;

/// One step of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    /// Start the process on a node that is down (first join, or restart with its memory).
    Start(usize),
    /// Cut a running node off the network, silently.
    Cut(usize),
    /// Repair every link.
    Heal,
    /// SIGKILL on a live host: peers it still talks to learn of the crash.
    Kill(usize),
    /// Leave gracefully.
    Dispatch(usize),
    /// Let time pass.
    Step(u64),
}

/// The cluster shape under test.
struct Model {
    names: &'static [&'static str],
    witness: Option<usize>,
}

/// Default search depth (events per schedule).
const DEPTH: usize = 6;

/// Time steps: a few message latencies, one heartbeat, one lease plus drift.
fn steps(cfg: &Config) -> [u64; 3] {
    [5, cfg.heartbeat_ms, cfg.lease_ms + cfg.drift_ms]
}

fn build(model: &Model, cfg: &Config) -> Sim {
    let net = NetConfig {
        latency: (1, 1),
        drop_rate: 0.0,
        announce_ms: 2_000,
    };
    let mut sim = Sim::new(1, net, Strategy::Age);
    sim.check_answers = true;
    for (i, n) in model.names.iter().enumerate() {
        let opts = NodeOpts {
            witness: model.witness == Some(i),
            port: Some(8000 + i as u16),
            ..Default::default()
        };
        sim.add(n, cfg.clone(), opts);
    }
    sim
}

fn apply(sim: &mut Sim, ev: Event) {
    match ev {
        Event::Start(s) => {
            let fresh = sim.memory(s).members.is_empty();
            sim.start(s);
            if fresh {
                // A node that knows nobody gets one round of hellos and beats first.
                let calm = sim.fresh_start_calm(s);
                sim.run_for(calm);
            }
        }
        Event::Cut(s) => sim.isolate(s),
        Event::Heal => sim.heal(),
        Event::Kill(s) => sim.kill(s),
        Event::Dispatch(s) => sim.dispatch(s),
        Event::Step(ms) => sim.run_for(ms),
    }
}

/// The events enabled in the current state.
fn enabled(sim: &Sim, cfg: &Config) -> Vec<Event> {
    let n = sim.nodes.len();
    let mut evs = Vec::new();
    for s in 0..n {
        let running = sim.nodes[s].core.is_some();
        if !running && sim.start_safe(s) {
            evs.push(Event::Start(s));
        }
        if running {
            if (0..n).any(|o| o != s && (sim.link_up(s, o) || sim.link_up(o, s))) {
                evs.push(Event::Cut(s));
            }
            evs.push(Event::Kill(s));
            evs.push(Event::Dispatch(s));
        }
    }
    let cut = (0..n).any(|a| (0..n).any(|b| a != b && !sim.link_up(a, b)));
    if cut {
        evs.push(Event::Heal);
    }
    evs.extend(steps(cfg).map(Event::Step));
    evs
}

/// Faults stop: heal, start every node; one agreed master (not the witness) must follow.
fn liveness(sim: &mut Sim, model: &Model, cfg: &Config) -> Option<String> {
    sim.heal();
    for s in 0..sim.nodes.len() {
        if sim.nodes[s].core.is_none() {
            sim.start(s);
        }
    }
    sim.run_for(cfg.startup_ms.max(cfg.lease_ms + cfg.drift_ms) + cfg.silence_ms);
    let bound = 2 * (cfg.startup_ms + cfg.silence_ms + cfg.lease_ms + cfg.drift_ms) + 500;
    let m = sim.settle(bound);
    if sim.violation.is_some() {
        return None; // reported as a safety violation
    }
    let witness = model.witness.map(|w| sim.nodes[w].name.clone());
    match m {
        Some(m) if Some(&m) != witness.as_ref() => None,
        m => Some(format!(
            "liveness: no single agreed master {bound}ms after the faults stopped (got {m:?}, masters {:?})",
            sim.master_names()
        )),
    }
}

/// What a search found.
struct Report {
    /// States expanded (distinct after merging).
    states: usize,
    /// Complete schedules checked to the full depth (with the liveness phase).
    schedules: usize,
    /// Sequences cut short because their state was already explored.
    merged: usize,
    /// Failures: the event sequence and what broke.
    failures: Vec<String>,
}

fn hash(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// Depth-first search over every sequence of `depth` enabled events.
fn explore(model: &Model, depth: usize) -> Report {
    let cfg = Config::default();
    let mut report = Report {
        states: 0,
        schedules: 0,
        merged: 0,
        failures: Vec::new(),
    };
    // State fingerprint -> the most remaining depth it was explored with.
    let mut visited: HashMap<u64, usize> = HashMap::new();
    let mut stack: Vec<Vec<Event>> = vec![Vec::new()];
    while let Some(prefix) = stack.pop() {
        let mut sim = build(model, &cfg);
        for &ev in &prefix {
            apply(&mut sim, ev);
            if sim.violation.is_some() {
                break;
            }
        }
        if let Some(v) = &sim.violation {
            report.failures.push(format!(
                "{prefix:?}\nrule {} at {}: {}\nrecent events:\n{}",
                v.rule,
                v.at,
                v.detail,
                sim.trail()
            ));
            continue;
        }
        let left = depth - prefix.len();
        let key = hash(&sim.fingerprint());
        if visited.get(&key).is_some_and(|&l| l >= left) {
            report.merged += 1;
            continue;
        }
        visited.insert(key, left);
        report.states += 1;
        if left == 0 {
            report.schedules += 1;
            if let Some(f) = liveness(&mut sim, model, &cfg) {
                report
                    .failures
                    .push(format!("{prefix:?}\n{f}\nrecent events:\n{}", sim.trail()));
            } else if let Some(v) = &sim.violation {
                report.failures.push(format!(
                    "{prefix:?} + faults stop\nrule {} at {}: {}\nrecent events:\n{}",
                    v.rule,
                    v.at,
                    v.detail,
                    sim.trail()
                ));
            }
            continue;
        }
        for ev in enabled(&sim, &cfg).into_iter().rev() {
            let mut next = prefix.clone();
            next.push(ev);
            stack.push(next);
        }
    }
    report
}

fn depth() -> usize {
    std::env::var("EXHAUSTIVE_DEPTH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEPTH)
}

fn run(what: &str, model: &Model) {
    let depth = depth();
    let t0 = Instant::now();
    let r = explore(model, depth);
    eprintln!(
        "exhaustive {what}: depth {depth}, {} states, {} complete schedules, {} merged, {} failures, {:.1}s",
        r.states,
        r.schedules,
        r.merged,
        r.failures.len(),
        t0.elapsed().as_secs_f64()
    );
    if let Some(f) = r.failures.first() {
        panic!(
            "exhaustive {what} at depth {depth}: {} failing schedules; the first:\n{f}",
            r.failures.len()
        );
    }
}

#[test]
fn exhaustive_three_nodes() {
    run(
        "3 nodes",
        &Model {
            names: &["alice", "bob", "peter"],
            witness: None,
        },
    );
}

#[test]
fn exhaustive_two_nodes_and_a_witness() {
    run(
        "2 nodes + witness",
        &Model {
            names: &["alice", "bob", "w"],
            witness: Some(2),
        },
    );
}

#[test]
fn exhaustive_search_covers_every_event_kind() {
    // The search is only as good as its events: from a running cluster every kind is enabled.
    let cfg = Config::default();
    let model = Model {
        names: &["alice", "bob", "peter"],
        witness: None,
    };
    let mut sim = build(&model, &cfg);
    let evs = enabled(&sim, &cfg);
    assert_eq!(
        evs.iter().filter(|e| matches!(e, Event::Start(_))).count(),
        3
    );
    for s in 0..3 {
        apply(&mut sim, Event::Start(s));
    }
    apply(&mut sim, Event::Step(2_000));
    assert_eq!(sim.role(0), Some(Role::Master), "{}", sim.trail());
    apply(&mut sim, Event::Cut(0));
    let evs = enabled(&sim, &cfg);
    for want in [
        Event::Heal,
        Event::Cut(1),
        Event::Kill(0),
        Event::Dispatch(2),
        Event::Step(5),
    ] {
        assert!(evs.contains(&want), "{want:?} not enabled: {evs:?}");
    }
    // Fingerprints ignore absolute time but see every state change.
    let a = sim.fingerprint();
    apply(&mut sim, Event::Heal);
    assert_ne!(a, sim.fingerprint());
}
