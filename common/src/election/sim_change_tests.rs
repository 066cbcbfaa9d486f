//! Faults that strike while the membership changes (issue 9).
//!
//! The older random schedules (`sim_tests`) start every node, let the cluster settle for two
//! seconds and only then inject faults. Here faults land from t = 0: nodes start at random
//! times over the first two seconds, and partitions, silent cuts, one-way loss, kills, silent
//! crashes, freezes, restarts with and without memory, dispatches, forgets of lost members
//! and renames strike while members still join, rejoin and leave. Then the faults stop and one
//! agreed master must follow within a bound.
//!
//! The targeted tests replay the six cases of issue 9 (and two more from its text), each swept
//! over the instants at which the fault can land, with the checker running after every event.
//! `SIM_SEEDS=N` sets the number of random change schedules, `SEED=n` replays one, and
//! `SIM_LIST=1` lists every failing seed with the rule it broke; `SIM_DUMP=1` prints every
//! node's tallies when a schedule ends without a master.

use super::Config;
use super::sim::{NetConfig, NodeOpts, Rng, Sim};
use super::sim_tests::random_run;
use crate::types::{Role, Strategy};

/// Formats the first violation with the schedule and the trail.
fn failure(sim: &Sim, schedule: &[String]) -> Option<String> {
    sim.violation.as_ref().map(|v| {
        format!(
            "{}\nrule {} at {}: {}\nrecent events:\n{}",
            schedule.join("\n"),
            v.rule,
            v.at,
            v.detail,
            sim.trail()
        )
    })
}

/// Runs `ms` more, then fails with the schedule if a rule broke.
fn run_checked(sim: &mut Sim, ms: u64, schedule: &[String]) {
    sim.run_for(ms);
    if let Some(f) = failure(sim, schedule) {
        panic!("{f}");
    }
}

/// Runs until one master is agreed; fails after `within` ms.
fn expect_master(sim: &mut Sim, within: u64, schedule: &[String]) -> String {
    let m = sim.settle(within);
    if let Some(f) = failure(sim, schedule) {
        panic!("{f}");
    }
    m.unwrap_or_else(|| {
        panic!(
            "{}\nliveness: no agreed master within {within}ms (masters {:?})\n{}",
            schedule.join("\n"),
            sim.master_names(),
            sim.trail()
        )
    })
}

/// A sim with `names` added (not started); witnesses and per-node options by name.
fn hosts(seed: u64, names: &[&str], witnesses: &[&str]) -> Sim {
    let mut sim = Sim::new(seed, NetConfig::default(), Strategy::Age);
    sim.check_answers = true;
    for (i, n) in names.iter().enumerate() {
        let opts = NodeOpts {
            witness: witnesses.contains(n),
            port: Some(8000 + i as u16),
            ..Default::default()
        };
        sim.add(n, Config::default(), opts);
    }
    sim
}

/// Runs until `slot` has reported its first role (its discovery window ended); at most 5 s.
fn until_role_reported(sim: &mut Sim, slot: usize) {
    let end = sim.now + 5_000;
    while sim.nodes[slot].role_log.is_empty() && sim.now < end && sim.violation.is_none() {
        sim.run_for(1);
    }
}

/// Whether the process on `slot` ever reported role master.
fn ever_master(sim: &Sim, slot: usize) -> bool {
    sim.nodes[slot].role_log.iter().any(|r| r.2 == Role::Master)
}

// ----- issue 9, case 1: a witness joins, then the master is cut off -----------------------

/// alice and bob, then a witness w; alice is cut off silently `delay` ms after w reported its
/// role. With `lost_hellos`, alice has not heard w yet (w's messages to her are lost until
/// the cut: a lost broadcast), so the two sides disagree on who counts. Never two masters;
/// once w's join has long settled (`delay` ≥ 3 s, nothing lost) bob + w make bob master; after
/// the heal one master.
fn witness_join_then_cut(delay: u64, lost_hellos: bool) {
    let mut sim = hosts(1, &["alice", "bob", "w"], &["w"]);
    sim.start(0);
    sim.run_for(50);
    sim.start(1);
    let schedule = vec![format!(
        "case 1: cut alice {delay}ms after w reported its role{}",
        if lost_hellos {
            " (alice has not heard w)"
        } else {
            ""
        }
    )];
    expect_master(&mut sim, 3_000, &schedule);
    run_checked(&mut sim, 1_000, &schedule);
    if lost_hellos {
        sim.block_one_way(2, 0);
    }
    sim.start(2);
    until_role_reported(&mut sim, 2);
    run_checked(&mut sim, delay, &schedule);
    sim.isolate(0);
    run_checked(&mut sim, 4_000, &schedule);
    if delay >= 3_000 && !lost_hellos {
        let m = expect_master(&mut sim, 1_000, &schedule);
        assert_eq!(
            m,
            "bob",
            "{}: bob and w are 2 of 3 and must elect bob (masters now {:?})\n{}",
            schedule[0],
            sim.master_names(),
            sim.trail()
        );
    }
    sim.heal();
    expect_master(&mut sim, 5_000, &schedule);
    run_checked(&mut sim, 2_000, &schedule);
}

#[test]
fn case1_witness_joins_then_master_cut_off_250ms_after() {
    witness_join_then_cut(250, true);
}

#[test]
fn case1_witness_joins_then_master_cut_off_at_any_instant() {
    for lost in [false, true] {
        for delay in (0..=1_500).step_by(10) {
            witness_join_then_cut(delay, lost);
        }
    }
    witness_join_then_cut(3_000, false);
}

// ----- issue 9, case 2: four nodes, a split right after the youngest joined ---------------

/// alice, dieter, bob, peter (age order, `gap` ms apart, peter `late` ms after bob);
/// {alice, bob} | {dieter, peter} `delay` ms after peter reported its role. Never two
/// masters; during the split only alice's side may win (it holds the best-ranked member);
/// one master after the heal.
fn four_nodes_split_after_join(seed: u64, gap: u64, late: u64, delay: u64) {
    let mut sim = hosts(seed, &["alice", "dieter", "bob", "peter"], &[]);
    let schedule = vec![format!(
        "case 2 (seed {seed}): started {gap}ms apart, peter {late}ms after bob; \
         {{alice, bob}} | {{dieter, peter}} {delay}ms after peter reported its role"
    )];
    for s in 0..3 {
        sim.start(s);
        run_checked(&mut sim, gap, &schedule);
    }
    run_checked(&mut sim, late, &schedule);
    sim.start(3);
    until_role_reported(&mut sim, 3);
    run_checked(&mut sim, delay, &schedule);
    sim.partition(&[vec![0, 2], vec![1, 3]]);
    run_checked(&mut sim, 4_000, &schedule);
    for s in [1, 3] {
        assert!(
            !sim.is_master(s),
            "{}: {} is master on the side without alice\n{}",
            schedule[0],
            sim.nodes[s].name,
            sim.trail()
        );
    }
    sim.heal();
    let m = expect_master(&mut sim, 5_000, &schedule);
    assert_eq!(m, "alice", "{}\n{}", schedule[0], sim.trail());
    run_checked(&mut sim, 2_000, &schedule);
}

#[test]
fn case2_four_nodes_split_250ms_after_the_youngest_joined() {
    four_nodes_split_after_join(1, 300, 0, 250);
}

#[test]
fn case2_four_nodes_split_at_any_instant_of_the_join() {
    for seed in 0..3 {
        for (gap, late) in [
            (0, 0),
            (2, 5),
            (50, 100),
            (50, 700),
            (300, 1_000),
            (50, 2_000),
        ] {
            for delay in (0..=800).step_by(20) {
                four_nodes_split_after_join(seed, gap, late, delay);
            }
        }
    }
}

// ----- issue 9, case 3: a node of another strategy is refused and powerless ---------------

/// An age-ranked alice and bob; `porty` on the port strategy and the lowest port starts
/// `at` ms after bob. It is refused and never master; alice stays master.
fn other_strategy_joins(at: u64) {
    let mut sim = hosts(3, &["alice", "bob"], &[]);
    let porty = sim.add(
        "porty",
        Config::default(),
        NodeOpts {
            port: Some(1),
            strategy: Some(Strategy::Port),
            ..Default::default()
        },
    );
    let schedule = vec![format!("case 3: port-ranked porty starts {at}ms after bob")];
    sim.start(0);
    sim.run_for(50);
    sim.start(1);
    run_checked(&mut sim, at, &schedule);
    sim.start(porty);
    run_checked(&mut sim, 5_000, &schedule);
    assert!(
        !ever_master(&sim, porty),
        "case 3 (at {at}): the refused node became master: {:?}\n{}",
        sim.nodes[porty].role_log,
        sim.trail()
    );
    // The cluster is unchanged: alice master, bob follows her (porty follows nobody).
    assert_eq!(sim.masters(), vec![0], "case 3 (at {at})\n{}", sim.trail());
    assert_eq!(
        sim.reported_master(1).as_deref(),
        Some("alice"),
        "case 3 (at {at})\n{}",
        sim.trail()
    );
}

#[test]
fn case3_port_ranked_node_in_an_age_cluster_never_becomes_master() {
    other_strategy_joins(2_000);
}

#[test]
fn case3_port_ranked_node_refused_whenever_it_starts() {
    for at in [0, 5, 100, 300, 600, 700, 1_000] {
        other_strategy_joins(at);
    }
}

// ----- issue 9, case 4: a frozen master wakes up with no lease -----------------------------

/// alice, bob, peter; the master alice is frozen for `frozen` ms (bob takes over once her
/// lease ran out), then thawed: a request that queued meanwhile must not be answered
/// `master` (`stale_answer`), and she is not master at her first step.
fn frozen_master_thawed(frozen: u64) {
    let mut sim = hosts(4, &["alice", "bob", "peter"], &[]);
    let schedule = vec![format!("case 4: master alice frozen for {frozen}ms")];
    for s in 0..3 {
        sim.start(s);
        sim.run_for(50);
    }
    let m = expect_master(&mut sim, 3_000, &schedule);
    assert_eq!(m, "alice");
    run_checked(&mut sim, 1_000, &schedule);
    let lease = Config::default().lease_ms;
    sim.freeze(0);
    run_checked(&mut sim, frozen, &schedule);
    sim.thaw(0);
    if let Some(f) = failure(&sim, &schedule) {
        panic!("{f}");
    }
    if frozen > lease {
        assert_ne!(
            sim.nodes[0].thaw_answer,
            Some(Role::Master),
            "case 4 ({frozen}ms): alice answered master on thaw\n{}",
            sim.trail()
        );
        assert!(
            !sim.is_master(0),
            "case 4 ({frozen}ms): alice acts as master at her first step after thaw\n{}",
            sim.trail()
        );
    }
    expect_master(&mut sim, 5_000, &schedule);
    run_checked(&mut sim, 2_000, &schedule);
}

#[test]
fn case4_master_frozen_past_its_lease_never_acts_after_thaw() {
    frozen_master_thawed(3_000);
}

#[test]
fn case4_master_frozen_for_any_length_never_acts_on_a_stale_lease() {
    for frozen in (100..=2_500).step_by(50) {
        frozen_master_thawed(frozen);
    }
}

// ----- issue 9, case 5: a second process with a live member's name -------------------------

/// alice, bob (and `extra` more nodes); a second host named alice starts `at` ms later.
/// It is refused and never master, the cluster is unchanged: the real alice stays master.
fn name_clash(extra: usize, at: u64) {
    let names = ["alice", "bob", "peter", "zoe"];
    let mut sim = hosts(5, &names[..2 + extra], &[]);
    let schedule = vec![format!(
        "case 5: a second alice joins {} nodes {at}ms after they settled",
        2 + extra
    )];
    for s in 0..2 + extra {
        sim.start(s);
        sim.run_for(50);
    }
    let m = expect_master(&mut sim, 3_000, &schedule);
    assert_eq!(m, "alice");
    run_checked(&mut sim, at, &schedule);
    let clone = sim.add(
        "alice",
        Config::default(),
        NodeOpts {
            port: Some(8100),
            ..Default::default()
        },
    );
    sim.start(clone);
    run_checked(&mut sim, 5_000, &schedule);
    assert!(
        !ever_master(&sim, clone),
        "case 5: the clashing alice became master: {:?}\n{}",
        sim.nodes[clone].role_log,
        sim.trail()
    );
    assert_eq!(
        sim.masters(),
        vec![0],
        "case 5: the real alice must stay master\n{}",
        sim.trail()
    );
    for s in 1..2 + extra {
        assert_eq!(
            sim.reported_master(s).as_deref(),
            Some("alice"),
            "slot {s}\n{}",
            sim.trail()
        );
    }
}

#[test]
fn case5_a_second_alice_never_splits_a_two_node_cluster() {
    name_clash(0, 1_000);
}

#[test]
fn case5_a_second_alice_never_splits_a_cluster_whenever_it_starts() {
    for extra in 0..=2 {
        for at in [0, 100, 500, 1_000, 2_500] {
            name_clash(extra, at);
        }
    }
}

// ----- issue 9, case 6: the old soak seeds -------------------------------------------------

#[test]
fn case6_old_soak_seeds_keep_every_rule() {
    let seeds = [9604, 9678, 10375, 12487, 15608, 17500, 19036];
    let failed: Vec<(u64, String)> = seeds
        .iter()
        .filter_map(|&s| random_run(s).map(|f| (s, f)))
        .collect();
    if let Some((seed, f)) = failed.first() {
        eprintln!("---- failing schedule ----\n{f}\n---- reproduce with SEED={seed} ----");
    }
    assert!(
        failed.is_empty(),
        "old soak seeds still fail: {:?}",
        failed.iter().map(|x| x.0).collect::<Vec<_>>()
    );
}

// ----- more from issue 9: a partition during a cold start, a lone newcomer ------------------

/// `n` nodes started 1 ms apart; `at` ms after the first start (by then all heard each
/// other's hellos: `at` ≥ 15), the first `cut` nodes are split from the rest. Never two masters, one after the heal.
fn split_during_cold_start(n: usize, cut: usize, at: u64) {
    let names = ["a", "b", "c", "d", "e"];
    let mut sim = hosts(7, &names[..n], &[]);
    let schedule = vec![format!(
        "cold start of {n}: first {cut} split off at {at}ms"
    )];
    for s in 0..n {
        sim.start(s);
        sim.run_for(1);
    }
    run_checked(&mut sim, at.saturating_sub(n as u64), &schedule);
    let (left, right): (Vec<usize>, Vec<usize>) = (0..n).partition(|&s| s < cut);
    sim.partition(&[left, right]);
    run_checked(&mut sim, 4_000, &schedule);
    sim.heal();
    expect_master(&mut sim, 5_000, &schedule);
    run_checked(&mut sim, 2_000, &schedule);
}

#[test]
fn partition_while_all_nodes_still_start_never_makes_two_masters() {
    for n in 2..=5 {
        for cut in 1..n {
            for at in (15..=800).step_by(15) {
                split_during_cold_start(n, cut, at);
            }
        }
    }
}

/// alice, bob, peter settled; zoe starts fresh behind a cut and is reconnected `early` ms
/// before her discovery window ends. She must not overlap the real master.
fn lone_newcomer_healed_before_its_window_ends(early: u64) {
    let mut sim = hosts(8, &["alice", "bob", "peter", "zoe"], &[]);
    let schedule = vec![format!(
        "zoe starts cut off, reconnected {early}ms before her window ends"
    )];
    for s in 0..3 {
        sim.start(s);
        sim.run_for(50);
    }
    expect_master(&mut sim, 3_000, &schedule);
    run_checked(&mut sim, 1_000, &schedule);
    sim.isolate(3);
    sim.start(3);
    let window = Config::default().startup_ms;
    run_checked(&mut sim, window.saturating_sub(early), &schedule);
    sim.heal();
    run_checked(&mut sim, 3_000, &schedule);
    let m = expect_master(&mut sim, 5_000, &schedule);
    assert_eq!(m, "alice", "{}\n{}", schedule[0], sim.trail());
}

#[test]
fn lone_newcomer_whose_window_ends_just_after_a_heal_never_overlaps_the_master() {
    // From 2 ms: a heal after her window's last look (same instant) is the documented limit.
    for early in (2..=200).step_by(2) {
        lone_newcomer_healed_before_its_window_ends(early);
    }
}

// ----- random schedules: faults from t = 0 while members join, leave and rejoin ------------

/// Runs until virtual time `t` (never backwards).
fn run_to(sim: &mut Sim, t: u64) {
    if t > sim.now.0 {
        sim.run_until(crate::time::Millis(t));
    }
}

/// One random change schedule; returns the failure text (seed, schedule, trail), if any.
pub(super) fn change_run(seed: u64) -> Option<String> {
    change_run_traced(seed, Draw::Plain).0
}

/// [`change_run`], also returning the schedule it ran; `priorities`: nodes start with random
/// priorities and reloads change them among the faults (issue 12).
fn change_run_traced(seed: u64, draw: Draw) -> (Option<String>, Vec<String>) {
    let mut schedule = Vec::new();
    let r = change_schedule(seed, &mut schedule, draw);
    (r, schedule)
}

/// Which kind of change schedule a seed draws.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Draw {
    /// Starts over the first 2 s, faults from t = 0.
    Plain,
    /// The same, with random priorities changed by reloads among the faults (issue 12).
    Priorities,
    /// A rolling start: two members first, then one after another 80–700 ms apart once a
    /// master may sit, faults striking throughout. Joins closer than a lease and a drift
    /// make nodes commit earlier views they showed (view.rs, `commit_shown_prefix`).
    Rolling,
}

/// Priorities a reload may set in a `priorities` schedule.
const PRIORITIES: [i32; 5] = [0, 0, 5, 10, -3];

/// `Draw::Priorities`: nodes start with random priorities and event 15 changes one;
/// `Draw::Rolling`: more members, joining one after another (module docs of [`Draw`]). The
/// plain schedules draw exactly what they drew before either existed.
fn change_schedule(seed: u64, schedule: &mut Vec<String>, draw: Draw) -> Option<String> {
    let priorities = draw == Draw::Priorities;
    let rolling = draw == Draw::Rolling;
    let mut rng = Rng::new(seed.wrapping_mul(0x9E6C_63D0_676A_9A99) ^ 0x5EED);
    let n = if rolling {
        rng.range(4, 8) as usize
    } else {
        rng.range(2, 6) as usize
    };
    let strategy = if rng.chance(0.3) {
        Strategy::Port
    } else {
        Strategy::Age
    };
    let net = NetConfig {
        latency: (0, rng.range(1, 15)),
        drop_rate: if rng.chance(0.2) {
            rng.range(1, 5) as f64 / 100.0
        } else {
            0.0
        },
        announce_ms: 2_000,
    };
    let mut c = if rng.chance(0.2) {
        Config::fast()
    } else {
        Config::default()
    };
    c.preempt = !rng.chance(0.2);
    if rng.chance(0.1) {
        c.expect = n;
    }
    // Debug aid: SIM_ALL_PAIRS=1 replays the schedules with every pair beating every
    // heartbeat instead of the default quiet pairs (cadence.rs).
    c.quiet_pairs = std::env::var_os("SIM_ALL_PAIRS").is_none();
    // Forming pace (cadence.rs) in a small cluster: every round only to those the election
    // rides on, the others one round in up to four. Drawn apart from `rng`, so the
    // schedules (and the known list) stay those of the seeds without it.
    if paced_seed(seed) {
        c.pace_above = 1;
    }
    let witness = if n >= 3 && rng.chance(0.3) {
        Some(rng.range(0, n as u64 - 1) as usize)
    } else {
        None
    };
    let mut sim = Sim::new(seed, net, strategy);
    sim.check_answers = true;
    for i in 0..n {
        let mut opts = NodeOpts {
            witness: Some(i) == witness,
            port: Some(7000 + rng.range(0, 500) as u16),
            ..Default::default()
        };
        if priorities {
            opts.priority = PRIORITIES[rng.range(0, 4) as usize];
        }
        sim.add(&format!("n{i}"), c.clone(), opts);
    }
    schedule.push(format!(
        "change seed {seed}: n={n} {strategy} fast={} preempt={} expect={} witness={witness:?}",
        c.heartbeat_ms == 20,
        c.preempt,
        c.expect
    ));
    // Staggered starts over the first ~2 s; faults from t = 0.
    let mut pending: Vec<(u64, usize)> = if rolling {
        let mut at = rng.range(1_200, 2_500);
        (0..n)
            .map(|i| {
                if i < 2 {
                    (rng.range(0, 300), i)
                } else {
                    at += rng.range(80, 700);
                    (at, i)
                }
            })
            .collect()
    } else {
        (0..n).map(|i| (rng.range(0, 2_000), i)).collect()
    };
    pending.sort();
    let mut joined = vec![false; n];
    let fault_end = if rolling {
        pending.last().map_or(0, |&(at, _)| at) + rng.range(0, 2_000)
    } else {
        rng.range(1_500, 8_000)
    };
    // A rolling start's faults come less often: its joins need a quiet moment to commit.
    let fault_gap = if rolling { 1_200 } else { 600 };
    // After a start without memory, faults pause for a round of hellos and beats (see
    // `Sim::fresh_start_safe`).
    let mut calm_until = 0;
    let mut renames = 0;
    let mut t = 0;
    loop {
        t += rng.range(0, fault_gap);
        // Joins due before the next fault (a join that may not start yet waits).
        let mut waiting = Vec::new();
        for (at, s) in std::mem::take(&mut pending) {
            if at > t.min(fault_end) {
                waiting.push((at, s));
                continue;
            }
            run_to(&mut sim, at);
            if sim.fresh_start_safe(s) {
                sim.start(s);
                joined[s] = true;
                calm_until = sim.now.0 + sim.fresh_start_calm(s);
                schedule.push(format!("{} join {}", sim.now.0, sim.nodes[s].name));
            } else {
                waiting.push((at, s));
            }
        }
        pending = waiting;
        if t > fault_end {
            break;
        }
        run_to(&mut sim, t);
        if let Some(f) = failure(&sim, schedule) {
            return Some(f);
        }
        if t < calm_until {
            continue;
        }
        let victim = rng.range(0, n as u64 - 1) as usize;
        let other = (victim + 1 + rng.range(0, n as u64 - 2) as usize) % n;
        let running = sim.nodes[victim].core.is_some();
        let started = joined[victim];
        let vname = sim.nodes[victim].name.clone();
        let oname = sim.nodes[other].name.clone();
        let what = match rng.range(0, 15) {
            0 | 1 => {
                let mut a = Vec::new();
                let mut b = Vec::new();
                // Nodes that have not joined yet keep their links: a node that starts inside a
                // partition knowing nobody is the documented limit.
                for s in (0..n).filter(|&s| joined[s]) {
                    if rng.chance(0.5) {
                        a.push(s);
                    } else {
                        b.push(s);
                    }
                }
                sim.partition(&[a.clone(), b.clone()]);
                format!("partition {a:?} | {b:?}")
            }
            2 if started => {
                sim.isolate(victim);
                format!("isolate {vname}")
            }
            3 if n > 1 && started && joined[other] => {
                sim.block_one_way(victim, other);
                format!("block {vname} -> {oname}")
            }
            4 if running => {
                sim.kill(victim);
                format!("kill -9 {vname}")
            }
            5 if running => {
                sim.crash_silently(victim);
                format!("crash {vname}")
            }
            6 if running && !sim.nodes[victim].frozen => {
                sim.freeze(victim);
                format!("freeze {vname}")
            }
            7 if sim.nodes[victim].frozen => {
                sim.thaw(victim);
                format!("thaw {vname}")
            }
            8 if !running && started && sim.start_safe(victim) => {
                if sim.memory(victim).members.is_empty() {
                    calm_until = sim.now.0 + sim.fresh_start_calm(victim);
                }
                sim.start(victim);
                format!("restart {vname} with memory")
            }
            9 if !running && started && sim.fresh_start_safe(victim) => {
                sim.start_fresh(victim);
                calm_until = sim.now.0 + sim.fresh_start_calm(victim);
                format!("restart {vname} without memory")
            }
            10 if running && !sim.nodes[victim].frozen => {
                sim.dispatch(victim);
                format!("dispatch {vname}")
            }
            11 | 12 => {
                sim.heal();
                "heal".to_string()
            }
            // An operator forgets only members that are really gone, for longer than a lease
            // (docs: a vote its process gave may back a master elsewhere until then).
            13 if running
                && n > 1
                && sim.nodes[other].core.is_none()
                && sim.nodes[other].down_since + c.lease_ms + c.drift_ms <= sim.now =>
            {
                let r = sim.forget(victim, &oname);
                format!("forget {oname} on {vname}: {}", r.is_ok())
            }
            // A rename reaches every peer (all running and linked): a peer that misses it and
            // remembers the old name keeps a lost entry that only `forget` removes.
            14 if running
                && (0..n).all(|o| {
                    o == victim
                        || (sim.nodes[o].core.is_some()
                            && !sim.nodes[o].frozen
                            && sim.link_up(victim, o)
                            && sim.link_up(o, victim))
                })
                && !sim.nodes[victim].frozen =>
            {
                renames += 1;
                let new = format!("{vname}r{renames}");
                let r = sim.rename(victim, &new);
                format!("rename {vname} -> {new}: {}", r.is_ok())
            }
            15 if priorities && running => {
                let p = PRIORITIES[rng.range(0, 4) as usize];
                sim.set_priority(victim, p);
                format!("priority {vname} {p}")
            }
            _ => continue,
        };
        schedule.push(format!("{t} {what}"));
    }
    run_to(&mut sim, fault_end);
    if let Some(f) = failure(&sim, schedule) {
        return Some(f);
    }
    // Faults stop: everything heals, thaws and (re)starts. One agreed master must follow.
    schedule.push(format!("{fault_end} faults stop: heal, thaw, start all"));
    sim.heal();
    for s in 0..n {
        if sim.nodes[s].frozen {
            sim.thaw(s);
        }
    }
    for s in 0..n {
        if sim.nodes[s].core.is_none() {
            sim.start(s);
        }
    }
    sim.run_for(c.startup_ms.max(c.lease_ms + c.drift_ms) + c.silence_ms);
    let bound = 2 * (c.startup_ms + c.silence_ms + c.lease_ms + c.drift_ms) + 500;
    let m = sim.settle(bound);
    if let Some(f) = failure(&sim, schedule) {
        return Some(f);
    }
    let witness_master = witness.is_some_and(|w| sim.masters() == vec![w]);
    if m.is_none() && std::env::var("SIM_DUMP").is_ok() {
        for n in &sim.nodes {
            if let Some(c) = &n.core {
                eprintln!("{}: {}", n.name, c.debug_tallies(sim.now));
            }
        }
    }
    if m.is_none() || witness_master {
        return Some(format!(
            "{}\nliveness: no single agreed master {bound}ms after the faults stopped (masters {:?})\nrecent events:\n{}",
            schedule.join("\n"),
            sim.master_names(),
            sim.trail()
        ));
    }
    // And it stays: no flapping.
    let before: Vec<usize> = sim.nodes.iter().map(|n| n.role_log.len()).collect();
    sim.run_for(3_000);
    let after: Vec<usize> = sim.nodes.iter().map(|n| n.role_log.len()).collect();
    if let Some(f) = failure(&sim, schedule) {
        return Some(f);
    }
    if before != after || sim.agreed_master() != m {
        return Some(format!(
            "{}\nstability: roles changed after settling on {m:?}\nrecent events:\n{}",
            schedule.join("\n"),
            sim.trail()
        ));
    }
    None
}

/// Seeds to run: `SEED=n` for one, else `0..SIM_SEEDS` (default `default`).
/// Whether the schedule of `seed` runs with the forming pace on in a small cluster
/// (`pace_above = 1`): three seeds in ten, drawn apart from the schedule's own generator.
/// `SIM_NO_PACE=1` turns it off (to tell a pacing failure from another).
pub(super) fn paced_seed(seed: u64) -> bool {
    std::env::var_os("SIM_NO_PACE").is_none() && Rng::new(seed ^ 0x9ACE).chance(0.3)
}

fn seeds(default: u64) -> std::ops::Range<u64> {
    if let Ok(one) = std::env::var("SEED") {
        let s: u64 = one.parse().expect("SEED must be a number");
        return s..s + 1;
    }
    let n = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    0..n
}

/// Default number of change schedules in `cargo test`.
const CHANGE_SEEDS: u64 = 50_000;

/// Schedules of the default range that still fail, with the rule they break: open work,
/// listed in docs/ALGORITHM.md ("Known limits"). Any *other* failing seed fails the test; a
/// listed seed that passes is reported so the list can shrink. Regenerate with
/// `SIM_LIST=1 cargo test -p quorum-common --lib random_change_schedules_keep_every_rule`.
const KNOWN_FAILURES: &[u64] = include!("sim_change_known.txt");

#[test]
fn random_change_schedules_keep_every_rule() {
    let mut failures = Vec::new();
    let mut rules: std::collections::BTreeMap<String, usize> = Default::default();
    for seed in seeds(CHANGE_SEEDS) {
        if let Some(f) = change_run(seed) {
            let rule = f
                .lines()
                .find(|l| {
                    l.starts_with("rule ")
                        || l.starts_with("liveness")
                        || l.starts_with("stability")
                })
                .map(|l| l.split(':').next().unwrap_or(l).to_string())
                .unwrap_or_default();
            let rule = rule.split(" at ").next().unwrap_or("").to_string();
            if std::env::var("SIM_LIST").is_ok() {
                eprintln!("seed {seed}: {rule}");
            }
            *rules.entry(rule).or_default() += 1;
            failures.push(seed);
            if failures.len() == 1 {
                eprintln!("---- failing schedule ----\n{f}\n---- reproduce with SEED={seed} ----");
            }
        }
    }
    let single = std::env::var("SEED").is_ok();
    let known: std::collections::BTreeSet<u64> = KNOWN_FAILURES.iter().copied().collect();
    let new: Vec<u64> = failures
        .iter()
        .copied()
        .filter(|s| single || !known.contains(s))
        .collect();
    let fixed: Vec<u64> = seeds(CHANGE_SEEDS)
        .filter(|s| known.contains(s) && !failures.contains(s))
        .collect();
    if !fixed.is_empty() && !single {
        eprintln!("known failures that pass now (remove them from the list): {fixed:?}");
    }
    eprintln!(
        "{} of the change schedules failed ({rules:?}); {} of them are known",
        failures.len(),
        failures.len() - new.len()
    );
    assert!(
        new.is_empty(),
        "{} failing seeds outside the known list ({rules:?}), first ones: {:?} (reproduce with \
         SEED=<n>)",
        new.len(),
        &new[..new.len().min(20)]
    );
}

/// Default number of schedules with priority reloads in `cargo test`.
const PRIORITY_SEEDS: u64 = 4_000;

/// Priority schedules of the default range that fail: none. (1360, a master of two on a network
/// that drops 1-4 % of frames losing two beats in a row and its lease, passes since slaves beat
/// right after their master's beat, which keeps its echoes fresh; 650 and 2594 pass since the
/// simulator redials like the daemon's transport; 3247, two members that left the count
/// restarting with memory behind a partition, made two masters until a restart was bound by
/// what it had agreed.) 1198: a master of two on a network that drops 1-4 % of frames loses
/// its lease when its beat to the slave and the slave's next renewal are both dropped (a
/// stability failure, never two masters; it appeared when a newcomer's first beat began to
/// wait for one to echo, which moved the two nodes' phases).
const PRIORITY_KNOWN: &[u64] = &[1198];

#[test]
fn random_priority_reloads_keep_every_rule() {
    // The change schedules again, with random priorities changed by reloads among the faults:
    // a priority moves whom nodes vote for, never the tie-break, so no rule may break.
    let mut failures = Vec::new();
    let mut reloads = 0;
    for seed in seeds(PRIORITY_SEEDS) {
        let (f, schedule) = change_run_traced(seed, Draw::Priorities);
        reloads += schedule.iter().filter(|l| l.contains(" priority ")).count();
        if let Some(f) = f {
            if failures.is_empty() {
                eprintln!("---- failing schedule ----\n{f}\n---- reproduce with SEED={seed} ----");
            }
            failures.push(seed);
        }
    }
    eprintln!("{reloads} priority reloads; failing seeds: {failures:?}");
    assert!(reloads > 0, "the generator changed no priority");
    let single = std::env::var("SEED").is_ok();
    let new: Vec<u64> = failures
        .iter()
        .copied()
        .filter(|s| single || !PRIORITY_KNOWN.contains(s))
        .collect();
    assert!(
        new.is_empty(),
        "failing seeds outside the known list: {new:?}"
    );
}

/// Default number of rolling-start schedules in `cargo test`.
const ROLLING_SEEDS: u64 = 4_000;

#[test]
fn random_rolling_starts_keep_every_rule() {
    // The change schedules again as a rolling start: members join one after another, often
    // closer than a lease and a drift, while faults strike. Nodes then commit earlier views
    // they showed, and that must keep every rule; the generator must make them do it.
    let before = super::view::PREFIX_COMMITS.with(|c| c.get());
    let mut failures = Vec::new();
    for seed in seeds(ROLLING_SEEDS) {
        let (f, _) = change_run_traced(seed, Draw::Rolling);
        if let Some(f) = f {
            if failures.is_empty() {
                eprintln!("---- failing schedule ----\n{f}\n---- reproduce with SEED={seed} ----");
            }
            failures.push(seed);
        }
    }
    let prefix = super::view::PREFIX_COMMITS.with(|c| c.get()) - before;
    eprintln!("{prefix} commits of an earlier shown view; failing seeds: {failures:?}");
    assert!(
        failures.is_empty(),
        "failing rolling-start seeds: {failures:?}"
    );
    if std::env::var("SEED").is_err() {
        assert!(prefix > 0, "no schedule committed an earlier shown view");
    }
}

#[test]
fn random_change_schedules_exercise_every_fault_kind() {
    // The generator is only as good as what it does: every kind of event must occur.
    let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
    let kinds = [
        " join ",
        " partition ",
        " isolate ",
        " block ",
        " kill -9 ",
        " crash ",
        " freeze ",
        " thaw ",
        "with memory",
        "without memory",
        " dispatch ",
        " heal",
        " forget ",
        ": true",
        " rename ",
    ];
    for seed in 0..300 {
        let (_, schedule) = change_run_traced(seed, Draw::Plain);
        for line in &schedule {
            for k in kinds {
                if line.contains(k) {
                    *seen.entry(k).or_default() += 1;
                }
            }
        }
    }
    for k in kinds {
        assert!(
            seen.get(k).is_some_and(|&c| c >= 5),
            "{k:?} too rare: {seen:?}"
        );
    }
}

/// Three nodes; `leave` takes two of them out of the count one after the other (seen by the
/// survivor, which is then master alone); both restart with their memory inside a partition
/// away from it.
fn two_leave_then_restart_behind_a_partition(leave: fn(&mut Sim, usize)) {
    let mut sim = hosts(1, &["n0", "n1", "n2"], &[]);
    for s in 0..3 {
        sim.start(s);
        sim.run_for(100);
    }
    let sched = vec!["n0, n1, n2 start 100 ms apart".to_string()];
    expect_master(&mut sim, 5_000, &sched);
    leave(&mut sim, 2);
    run_checked(&mut sim, 1_000, &sched);
    leave(&mut sim, 1);
    run_checked(&mut sim, 1_000, &sched);
    sim.partition(&[vec![0], vec![1, 2]]);
    sim.start(1);
    sim.start(2);
    run_checked(&mut sim, 5_000, &sched);
}

#[test]
fn a_crash_seen_by_one_node_then_a_restart_behind_a_partition_never_overlaps() {
    let mut sim = hosts(1, &["n0", "n1", "n2"], &[]);
    for s in 0..3 {
        sim.start(s);
        sim.run_for(100);
    }
    let sched = vec!["n0, n1, n2 start 100 ms apart; isolate n1; kill -9 n2".to_string()];
    expect_master(&mut sim, 5_000, &sched);
    sim.isolate(1);
    sim.kill(2);
    run_checked(&mut sim, 3_000, &sched);
    sim.partition(&[vec![0], vec![1, 2]]);
    sim.start(2);
    run_checked(&mut sim, 5_000, &sched);
}

#[test]
fn two_certain_crashes_then_restarts_behind_a_partition_never_overlap() {
    two_leave_then_restart_behind_a_partition(|sim, s| sim.kill(s));
}

#[test]
fn two_dispatches_then_restarts_behind_a_partition_never_overlap() {
    two_leave_then_restart_behind_a_partition(|sim, s| sim.dispatch(s));
}

/// Random schedules of the same kind as the two tests above: a settled cluster of 3 to 5
/// loses members one after the other (certain crashes, dispatches, silent crashes) at random
/// gaps (some shrinks are agreed, some not yet), then the network splits at random and the
/// members that left restart with their memory on either side, at random moments; then the
/// network heals and one agreed master must follow.
fn leave_then_restart_schedule(seed: u64) -> Option<String> {
    // SIM_SHIFTED=1: the other draw (a soak over more schedules of the kind).
    leave_then_restart_schedule_drawn(seed, std::env::var_os("SIM_SHIFTED").is_some())
}

/// [`leave_then_restart_schedule`]; `shifted`: one more draw before the schedule, which
/// gives other schedules (a two-master one was among them: see the test after it).
fn leave_then_restart_schedule_drawn(seed: u64, shifted: bool) -> Option<String> {
    let mut rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x1EA7E);
    let n = rng.range(3, 5) as usize;
    let strategy = if rng.chance(0.3) {
        Strategy::Port
    } else {
        Strategy::Age
    };
    let mut cfg = if rng.chance(0.3) {
        Config::fast()
    } else {
        Config::default()
    };
    if shifted {
        rng.chance(0.3);
    }
    if paced_seed(seed) {
        cfg.pace_above = 1;
    }
    let mut sim = Sim::new(seed, NetConfig::default(), strategy);
    sim.check_answers = true;
    for i in 0..n {
        let opts = NodeOpts {
            port: Some(7000 + rng.range(0, 500) as u16),
            ..Default::default()
        };
        sim.add(&format!("n{i}"), cfg.clone(), opts);
    }
    let mut schedule = vec![format!("leave-restart seed {seed}: n={n} {strategy}")];
    for s in 0..n {
        sim.start(s);
        sim.run_for(100);
    }
    if sim.settle(5_000).is_none() {
        return Some(format!(
            "{}\nliveness: no master after the start",
            schedule.join("\n")
        ));
    }
    let leavers = rng.range(1, n as u64 - 1) as usize;
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, rng.range(0, i as u64) as usize);
    }
    let gone: Vec<usize> = order[..leavers].to_vec();
    for &s in &gone {
        let name = sim.nodes[s].name.clone();
        let how = match rng.range(0, 2) {
            0 => {
                sim.kill(s);
                "kill -9"
            }
            1 => {
                sim.dispatch(s);
                "dispatch"
            }
            _ => {
                sim.crash_silently(s);
                "crash"
            }
        };
        let gap = rng.range(0, 1_500);
        schedule.push(format!("{} {how} {name}, then {gap} ms", sim.now.0));
        sim.run_for(gap);
        if let Some(f) = failure(&sim, &schedule) {
            return Some(f);
        }
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for s in 0..n {
        if rng.chance(0.5) {
            a.push(s);
        } else {
            b.push(s);
        }
    }
    sim.partition(&[a.clone(), b.clone()]);
    schedule.push(format!("{} partition {a:?} | {b:?}", sim.now.0));
    for &s in &gone {
        let gap = rng.range(0, 400);
        sim.run_for(gap);
        sim.start(s);
        schedule.push(format!(
            "{} {} restarts with memory",
            sim.now.0, sim.nodes[s].name
        ));
        if let Some(f) = failure(&sim, &schedule) {
            return Some(f);
        }
    }
    sim.run_for(4_000);
    if let Some(f) = failure(&sim, &schedule) {
        return Some(f);
    }
    sim.heal();
    schedule.push(format!("{} heal", sim.now.0));
    if sim.settle(10_000).is_none() {
        // A broken rule stops the settling early: report it, not a liveness failure.
        if let Some(f) = failure(&sim, &schedule) {
            return Some(f);
        }
        return Some(format!(
            "{}\nliveness: no agreed master 10 s after the heal (masters {:?})\n{}",
            schedule.join("\n"),
            sim.master_names(),
            sim.trail()
        ));
    }
    failure(&sim, &schedule)
}

/// Seeds of [`leave_then_restart_schedule`] run by `cargo test`.
const LEAVE_RESTART_SEEDS: u64 = 3_000;

/// Four members; three crash (one silently, two for certain) and restart with their memory
/// behind a partition away from the one that carried on, master of itself alone. Each
/// restart was *added* to its old counts beside its old seat (a ghost): a count of four
/// became five, the three restarted a majority of it without the survivor, and after the
/// heal one of them was elected while the survivor's lease ran (the simulator found it in
/// about 1 schedule in 2,000 of another draw of this kind). A restart now holds no seat of
/// its own in its old counts (docs/ALGORITHM.md, "A restart is bound by what it agreed").
#[test]
fn three_of_four_restarting_behind_a_partition_never_make_two_masters() {
    let schedule = leave_then_restart_schedule_drawn(1912, true);
    assert!(schedule.is_none(), "{}", schedule.unwrap_or_default());
}

#[test]
fn random_leaves_then_restarts_behind_partitions_keep_every_rule() {
    let mut failures = Vec::new();
    for seed in seeds(LEAVE_RESTART_SEEDS) {
        if let Some(f) = leave_then_restart_schedule(seed) {
            if failures.is_empty() {
                eprintln!("---- failing schedule ----\n{f}\n---- reproduce with SEED={seed} ----");
            }
            failures.push(seed);
        }
    }
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}

#[test]
fn a_rename_missed_by_a_peer_leaves_no_stale_member_after_restarts() {
    // n0 is down while n1 renames itself; both restart with their memory. n0 remembers n1
    // under its old name at the same address and port as n1r1: that is n1r1's earlier
    // incarnation, gone, and must not stay in n0's count as a lost member (with restarts bound
    // by what they agreed, such an entry kept the pair from ever electing again).
    let mut sim = hosts(5, &["n0", "n1"], &[]);
    sim.start(0);
    sim.run_for(100);
    sim.start(1);
    let sched = vec!["n0, n1; kill n0; rename n1 -> n1r1; kill n1; restart both".to_string()];
    expect_master(&mut sim, 5_000, &sched);
    sim.kill(0);
    run_checked(&mut sim, 500, &sched);
    sim.rename(1, "n1r1").expect("rename");
    run_checked(&mut sim, 500, &sched);
    sim.kill(1);
    run_checked(&mut sim, 200, &sched);
    sim.start(0);
    sim.start(1);
    expect_master(&mut sim, 5_000, &sched);
    assert_eq!(
        sim.member_state(0, "n1"),
        None,
        "n0 still lists n1's old name"
    );
    assert!(sim.member_state(0, "n1r1").is_some());
}
