//! A master gone silent in a cluster large enough for quiet pairs, and `--exit-on-minority`
//! (docs/ALGORITHM.md, "Cadence" and "Roles"). Sixteen daemons: alone in their test binary,
//! so that no sibling test's daemons share the two cores with them.

use quorum_tests::{Cluster, DEADLINE, Node, Profile};
use std::time::Duration;

#[test]
fn a_frozen_master_of_sixteen_sends_no_slave_inquorate_and_none_exits_on_minority() {
    // The master silent (SIGSTOP: its links stay open, nothing is said: a cable cut as its
    // peers see it) in a cluster large enough that quiet pairs meet seconds apart. Before,
    // every slave of the majority went `inquorate` when the master's silence window ended,
    // for the round trip it took to reach the others: its hook ran twice, and with
    // --exit-on-minority every one of them exited. Now a slave whose master is late asks
    // everyone for beats first, and stays a slave while the successor is elected.
    let c = Cluster::new();
    let hook = c.hook("notify");
    // --exit-on-minority only once formed, by a reload: members joining one after the other
    // can make the first master step down (docs/ALGORITHM.md, known limits), and on a busy
    // machine the churn of a formation may last longer than the fast profile's silence
    // window; what this test is about is the freeze.
    let config = c.dir().join("quorumd.toml");
    std::fs::write(&config, "exit_on_minority = false\n").expect("write config");
    let cfg = config.to_str().expect("utf-8 path");
    let names: Vec<String> = (0..16).map(|i| format!("n{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut nodes = c.start_all(&refs, &["--notify", hook.arg(), "--config", cfg]);
    let all: Vec<&Node> = nodes.iter().collect();
    c.wait_master(&all, "n00");
    let tmp = config.with_extension("tmp");
    std::fs::write(&tmp, "exit_on_minority = true\n").expect("write config");
    std::fs::rename(&tmp, &config).expect("rename config");
    // One at a time: sixteen debug builds reloading at once starve the cores.
    for n in &mut nodes {
        n.kill(libc::SIGHUP);
        c.wait_for(
            &format!("{} took exit_on_minority = true", n.name()),
            DEADLINE,
            || n.log().contains("reload: exit on minority changed"),
        );
    }
    let all: Vec<&Node> = nodes.iter().collect();
    // Long enough for the pairs to go quiet (each slave probes the 13 others one a heartbeat).
    // (A master stepping down for a round trip under a busy machine's load is no failure
    // here: the fault must find the cluster settled, which the wait after checks.)
    c.hold(
        "all sixteen keep running for 5 s",
        Duration::from_secs(5),
        || all.iter().all(|n| n.status_json().is_some()),
    );
    c.wait_master(&all, "n00");
    let before = hook.runs().len();
    nodes[0].kill(libc::SIGSTOP);
    // Until every other node follows n01, or one of them exits (--exit-on-minority).
    let mut exited: Vec<String> = Vec::new();
    c.wait_for(
        "each other node follows n01, or one exited",
        DEADLINE,
        || {
            for n in nodes[1..].iter_mut() {
                if n.try_exit().is_some() && !exited.iter().any(|e| e == n.name()) {
                    exited.push(n.name().to_owned());
                }
            }
            !exited.is_empty()
                || nodes[1..].iter().all(|n| {
                    n.status_json().is_some_and(|s| {
                        s["master"].as_str() == Some("n01")
                            && s["role"].as_str() != Some("starting")
                    })
                })
        },
    );
    assert!(
        exited.is_empty(),
        "{exited:?} exited (--exit-on-minority) when the master froze\n{}",
        c.logs()
    );
    let rest: Vec<&Node> = nodes[1..].iter().collect();
    // Hooks run after the role changes, one at a time: wait for each node's run naming n01.
    c.wait_for("every other node's hook ran naming n01", DEADLINE, || {
        let runs = hook.runs();
        rest.iter().all(|n| {
            runs[before..]
                .iter()
                .any(|r| r.node == n.name() && r.master == "n01")
        })
    });
    let runs = hook.runs();
    let inquorate: Vec<_> = runs[before..]
        .iter()
        .filter(|r| r.role == "inquorate")
        .collect();
    assert!(
        inquorate.is_empty(),
        "slaves of the majority went inquorate when the master froze: {inquorate:?}\n{}",
        c.logs()
    );
    nodes[0].kill(libc::SIGCONT);
}

#[test]
fn a_node_cut_off_with_exit_on_minority_exits_3_after_a_silence_window() {
    // Rule 8 with --exit-on-minority (the original's behaviour): a node that cannot reach a
    // quorum exits with status 3, once it has been `inquorate` for a silence window (the
    // default profile's 900 ms here).
    let c = Cluster::with_profile(Profile::Default);
    let mut alice = c.start("alice", &[]);
    let mut bob = c.start("bob", &["--exit-on-minority"]);
    let mut peter = c.start("peter", &[]);
    c.wait_master(&[&alice, &bob, &peter], "alice");
    alice.kill(libc::SIGSTOP);
    peter.kill(libc::SIGSTOP);
    let status = bob.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(3), "bob's exit status\n{}", c.logs());
    let log = bob.log();
    let inquorate = log
        .find("role changed role=inquorate")
        .expect("bob went inquorate first");
    let exit = log
        .find("no quorum for a silence window and --exit-on-minority is set: exiting")
        .expect("bob says why it exits");
    assert!(inquorate < exit, "bob exits after it went inquorate\n{log}");
    // Not at once: a blip of `inquorate` (a round trip) must not end the process.
    let at = |i: usize| log[..i].rfind('\n').map_or(0, |n| n + 1);
    let waited = seconds_of_day(&log[at(exit)..]) - seconds_of_day(&log[at(inquorate)..]);
    assert!(
        waited >= 0.85,
        "bob exited {waited:.3} s after going inquorate, not a silence window (0.9 s)\n{log}"
    );
    alice.kill(libc::SIGCONT);
    peter.kill(libc::SIGCONT);
}

/// The time of day, in seconds, of a log line that starts with an RFC 3339 UTC timestamp
/// (`2026-12-07T03:43:31.233443Z ...`).
fn seconds_of_day(line: &str) -> f64 {
    let t = line
        .get(11..26)
        .unwrap_or_else(|| panic!("no timestamp in {line:?}"));
    let parts: Vec<f64> = t
        .split(':')
        .map(|p| {
            p.parse()
                .unwrap_or_else(|e| panic!("{p:?} in {line:?}: {e}"))
        })
        .collect();
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}
