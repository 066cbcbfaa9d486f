//! Issue 9's real-network cases 1-5 (and 6: two members leave, then restart behind a
//! partition) in the namespace lab, each repeated `LAB_REPEAT` times
//! (default 2; 20 for an acceptance run). Root only: `sudo -E LAB_REPEAT=20 cargo test -p
//! quorum-tests --test lab_membership`. Every run goes through the overlap checker.

use quorum_tests::lab::{Checker, Lab};
use std::process::{Command, Stdio};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(30);
/// How long two masters are looked for after the fault.
const WATCH: Duration = Duration::from_secs(4);

fn repeat() -> usize {
    std::env::var("LAB_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

fn root(test: &str) -> bool {
    if quorum_tests::skip_unless_root(test) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "lab tests must run in CI: run them as root"
        );
        eprintln!("run the lab as root: sudo -E cargo test -p quorum-tests --test lab_membership");
        return false;
    }
    true
}

/// Starts `names` on hosts 0.. in order, each answering a role before the next starts.
fn start(lab: &Lab, ck: &Checker, names: &[&str], extra: &[&str]) {
    for (i, name) in names.iter().enumerate() {
        ck.start(lab, i, name, extra);
        answered(ck, name);
    }
}

fn answered(ck: &Checker, name: &str) {
    ck.wait_until(&format!("{name} answers"), CONVERGE, || {
        ck.roles()
            .into_iter()
            .find(|(n, r)| n == name && r.as_deref().is_some_and(|r| r != "starting"))
    });
}

/// Watches for `WATCH` (the poller records), heals, waits for one master, checks.
fn watch_heal_check(lab: &Lab, ck: Checker) {
    std::thread::sleep(WATCH);
    ck.note("heal");
    lab.heal();
    ck.wait_master(CONVERGE);
    ck.finish();
}

#[test]
fn case1_witness_joins_then_master_cut() {
    if !root("case1") {
        return;
    }
    for run in 0..repeat() {
        eprintln!("case1 run {run}");
        let lab = Lab::new(3);
        let ck = Checker::new();
        start(&lab, &ck, &["alice", "bob"], &[]);
        ck.start(&lab, 2, "w", &["--witness"]);
        answered(&ck, "w");
        std::thread::sleep(Duration::from_millis(250));
        lab.cut(0);
        ck.note("alice cut silently 250 ms after w answered");
        watch_heal_check(&lab, ck);
    }
}

#[test]
fn case2_four_split_after_last_join() {
    if !root("case2") {
        return;
    }
    for run in 0..repeat() {
        eprintln!("case2 run {run}");
        let lab = Lab::new(4);
        let ck = Checker::new();
        start(&lab, &ck, &["alice", "dieter", "bob", "peter"], &[]);
        std::thread::sleep(Duration::from_millis(250));
        lab.split(&[&[0, 2], &[1, 3]]);
        ck.note("{alice, bob} | {dieter, peter} 250 ms after peter answered");
        watch_heal_check(&lab, ck);
    }
}

#[test]
fn case3_port_strategy_newcomer_refused() {
    if !root("case3") {
        return;
    }
    for run in 0..repeat() {
        eprintln!("case3 run {run}");
        let lab = Lab::new(3);
        let ck = Checker::new();
        start(&lab, &ck, &["alice", "bob"], &[]);
        ck.wait_master(CONVERGE);
        ck.spawn(
            &lab,
            2,
            "porty",
            "porty",
            6000,
            &["--use-port-instead-of-life-time"],
        );
        // A refused node may exit (2); it must never be master next to alice.
        ck.allow_exit("porty");
        ck.note("porty (port strategy, lowest port) started");
        std::thread::sleep(WATCH);
        ck.finish();
        drop(lab);
    }
}

#[test]
fn case4_frozen_master_answers_after_thaw() {
    if !root("case4") {
        return;
    }
    for run in 0..repeat() {
        eprintln!("case4 run {run}");
        let lab = Lab::new(3);
        let ck = Checker::new();
        start(&lab, &ck, &["alice", "dieter", "bob"], &[]);
        let (m, _) = ck.wait_master(CONVERGE);
        ck.signal(&m, libc::SIGSTOP);
        // A question that queues while the master is frozen.
        let waiting = Command::new(quorum_tests::quorumctl_bin())
            .arg("--socket")
            .arg(ck.socket(&m))
            .arg("role")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("quorumctl");
        ck.wait_until("another master while frozen", CONVERGE, || {
            ck.roles()
                .iter()
                .any(|(n, r)| *n != m && r.as_deref() == Some("master"))
                .then_some(())
        });
        ck.signal(&m, libc::SIGCONT);
        let out = waiting.wait_with_output().expect("quorumctl output");
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !answer.is_empty() {
            ck.record_answer(&m, &answer);
        }
        ck.wait_master(CONVERGE);
        ck.finish();
        drop(lab);
    }
}

#[test]
fn case5_duplicate_live_name() {
    if !root("case5") {
        return;
    }
    for run in 0..repeat() {
        eprintln!("case5 run {run}");
        let lab = Lab::new(3);
        let ck = Checker::new();
        start(&lab, &ck, &["alice", "bob"], &[]);
        ck.wait_master(CONVERGE);
        ck.spawn(&lab, 2, "alice2", "alice", 7000, &[]);
        // The clash may be refused by exiting (2); it must never split the cluster.
        ck.allow_exit("alice2");
        ck.note("a second process named alice started on host 2");
        std::thread::sleep(WATCH);
        ck.finish();
        drop(lab);
    }
}

/// Whether `observer` lists member `name` with `key` equal to `value` in its status.
fn member_shows(
    ck: &Checker,
    observer: &str,
    name: &str,
    key: &str,
    value: &serde_json::Value,
) -> Option<()> {
    let st = ck.status(observer)?;
    let members = st.get("members")?.as_array()?;
    members
        .iter()
        .any(|m| m.get("name").and_then(|n| n.as_str()) == Some(name) && m.get(key) == Some(value))
        .then_some(())
}

/// Whether `observer` no longer counts `name` (crashed for certain, or dispatched).
fn not_counted(ck: &Checker, observer: &str, name: &str) -> Option<()> {
    member_shows(
        ck,
        observer,
        name,
        "counted",
        &serde_json::Value::Bool(false),
    )
}

/// Two of three members leave one after the other (`signal`: SIGKILL on a live host, a
/// certain crash; SIGTERM, a dispatch); alice is master alone; both restart with their state
/// directories behind a partition away from her. Before a restart was bound by what it had
/// agreed (docs/ALGORITHM.md), the two formed 2 of their remembered 3 while alice stayed
/// master of 1: two masters (found by the simulator).
fn two_leave_then_restart_behind_a_partition(case: &str, signal: i32) {
    if !root(case) {
        return;
    }
    for run in 0..repeat() {
        eprintln!("{case} run {run}");
        let lab = Lab::new(3);
        let ck = Checker::new();
        start(&lab, &ck, &["alice", "bob", "carol"], &[]);
        ck.wait_master(CONVERGE);
        for name in ["carol", "bob"] {
            ck.signal(name, signal);
            ck.wait_until(&format!("alice stops counting {name}"), CONVERGE, || {
                not_counted(&ck, "alice", name)
            });
        }
        ck.wait_until("alice master alone", CONVERGE, || {
            ck.roles()
                .into_iter()
                .find(|(n, r)| n == "alice" && r.as_deref() == Some("master"))
        });
        lab.split(&[&[0], &[1, 2]]);
        ck.note("{alice} | {bob, carol}; bob and carol restart with their state");
        ck.start(&lab, 1, "bob", &[]);
        ck.start(&lab, 2, "carol", &[]);
        watch_heal_check(&lab, ck);
    }
}

#[test]
fn case6_two_certain_crashes_then_restarts_behind_a_partition() {
    two_leave_then_restart_behind_a_partition("case6", libc::SIGKILL);
}

#[test]
fn case6_two_dispatches_then_restarts_behind_a_partition() {
    two_leave_then_restart_behind_a_partition("case6-dispatch", libc::SIGTERM);
}

/// Whether `observer` has member `name` alive.
fn alive_at(ck: &Checker, observer: &str, name: &str) -> Option<()> {
    member_shows(
        ck,
        observer,
        name,
        "state",
        &serde_json::Value::from("alive"),
    )
}

/// carol is killed (the others forget her address at the certain crash), then restarted with
/// her state directory while her host is cut off: her start-up hellos reach nobody, and her
/// next one is 10 s away (`--announce 10s`). She dials the members her state file remembers
/// every heartbeat, so the others count her alive again within a few heartbeats of the
/// heal; before, only her next broadcast hello brought her back.
#[test]
fn restart_inside_a_partition_rejoins_soon_after_the_heal() {
    if !root("rejoin") {
        return;
    }
    let extra = ["--announce", "10s"];
    for run in 0..repeat() {
        eprintln!("rejoin run {run}");
        let lab = Lab::new(3);
        let ck = Checker::new();
        start(&lab, &ck, &["alice", "bob", "carol"], &extra);
        ck.wait_master(CONVERGE);
        ck.signal("carol", libc::SIGKILL);
        ck.wait_until("alice stops counting carol", CONVERGE, || {
            not_counted(&ck, "alice", "carol")
        });
        lab.cut(2);
        ck.note("carol cut off; she restarts with her state");
        ck.start(&lab, 2, "carol", &extra);
        answered(&ck, "carol");
        // Her hellos at start, +100, +300 and +700 ms are lost in the cut.
        std::thread::sleep(Duration::from_millis(1_200));
        ck.note("heal");
        lab.heal();
        let within = Duration::from_secs(4);
        for observer in ["alice", "bob"] {
            ck.wait_until(&format!("{observer} has carol alive again"), within, || {
                alive_at(&ck, observer, "carol")
            });
        }
        ck.wait_master(CONVERGE);
        ck.finish();
    }
}
