//! Partition scenarios on real processes in network namespaces (one host per node, the
//! daemon's default broadcast address, inside the lab). Root only: `sudo -E cargo test -p
//! quorum-tests --test lab_scenarios`. Every test runs the overlap checker.

use quorum_tests::lab::{Checker, Lab};
use std::time::Duration;

/// Correctness deadline for convergence (CI is a busy 2-core box).
const CONVERGE: Duration = Duration::from_secs(30);
/// How long a "no master here" claim is held.
const HOLD: Duration = Duration::from_secs(6);
const NAMES: [&str; 7] = ["alice", "dieter", "bob", "peter", "eve", "frank", "gina"];

/// A lab of `n` hosts with a checker, or `None` (after one line saying how) when not root.
/// Under `CI=true` a missing root is a failure, never a skip.
fn lab(test: &str, n: usize) -> Option<(Lab, Checker)> {
    if quorum_tests::skip_unless_root(test) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "lab tests must run in CI: run them as root"
        );
        eprintln!("run the lab as root: sudo -E cargo test -p quorum-tests --test lab_scenarios");
        return None;
    }
    Some((Lab::new(n), Checker::new()))
}

/// Starts `n` nodes in age order (each answers a role before the next starts), `extra` for all.
fn start(lab: &Lab, ck: &Checker, n: usize, extra: &[&str]) -> Vec<&'static str> {
    // Two nodes are alice and bob (DESIGN's names); more take the age order of NAMES.
    let names: Vec<&'static str> = if n == 2 {
        vec!["alice", "bob"]
    } else {
        NAMES[..n].to_vec()
    };
    for (i, name) in names.iter().enumerate() {
        ck.start(lab, i, name, extra);
        ck.wait_until(&format!("{name} answers"), CONVERGE, || {
            ck.roles()
                .into_iter()
                .find(|(n, r)| n == name && r.as_deref().is_some_and(|r| r != "starting"))
        });
    }
    names
}

fn host_of(names: &[&str], who: &str) -> usize {
    names.iter().position(|n| *n == who).expect("known node")
}

/// Heals and checks one master again, with an epoch no smaller (larger if the master changed).
fn heal_and_check(lab: &Lab, ck: &Checker, before: &(String, u64)) {
    ck.note("heal");
    lab.heal();
    let after = ck.wait_master(CONVERGE);
    if after.0 == before.0 {
        assert!(
            after.1 >= before.1,
            "epoch went back: {before:?} -> {after:?}"
        );
    } else {
        assert!(
            after.1 > before.1,
            "new master, same epoch: {before:?} -> {after:?}"
        );
    }
}

#[test]
fn s1_alone_is_master() {
    let Some((lab, ck)) = lab("s1_alone_is_master", 1) else {
        return;
    };
    start(&lab, &ck, 1, &[]);
    assert_eq!(ck.wait_master(CONVERGE).0, "alice");
    ck.finish();
}

#[test]
fn s2_two_nodes_master_alice() {
    let Some((lab, ck)) = lab("s2", 2) else {
        return;
    };
    start(&lab, &ck, 2, &[]);
    assert_eq!(ck.wait_master(CONVERGE).0, "alice");
    ck.finish();
}

#[test]
fn s3_two_nodes_bob_killed() {
    let Some((lab, ck)) = lab("s3", 2) else {
        return;
    };
    start(&lab, &ck, 2, &[]);
    ck.wait_master(CONVERGE);
    ck.signal("bob", libc::SIGKILL);
    ck.note("bob SIGKILLed");
    assert_eq!(ck.wait_master(CONVERGE).0, "alice");
    ck.finish();
}

#[test]
fn s4_two_nodes_alice_killed() {
    let Some((lab, ck)) = lab("s4k", 2) else {
        return;
    };
    start(&lab, &ck, 2, &[]);
    ck.wait_master(CONVERGE);
    ck.signal("alice", libc::SIGKILL);
    assert_eq!(ck.wait_master(CONVERGE).0, "bob");
    ck.finish();
}

#[test]
fn s4_two_nodes_alice_cut_silently() {
    let Some((lab, ck)) = lab("s4c", 2) else {
        return;
    };
    start(&lab, &ck, 2, &[]);
    let before = ck.wait_master(CONVERGE);
    lab.cut(0);
    ck.note("alice's host cut silently");
    // bob must not take over; alice may keep or drop the role, but never both masters.
    ck.wait_until("bob not master", HOLD, || {
        (ck.roles().iter().find(|(n, _)| n == "bob")?.1.as_deref() != Some("master")).then_some(())
    });
    std::thread::sleep(HOLD);
    heal_and_check(&lab, &ck, &before);
    ck.finish();
}

#[test]
fn s4_witness_survives_silent_loss_of_master() {
    let Some((lab, ck)) = lab("s4w", 3) else {
        return;
    };
    start(&lab, &ck, 2, &[]);
    ck.start(&lab, 2, "wit", &["--witness"]);
    let before = ck.wait_master(CONVERGE);
    assert_eq!(before.0, "alice");
    // The witness must be agreed before the cut: a member counts in the base a lease and a
    // drift after the others saw it (docs/ALGORITHM.md, Known limits), and cut in that window
    // alice would leave bob an exact half without the top. The witness's vote for alice shows
    // that alice committed it; bob commits it within milliseconds of her (both waited from
    // the moment alice showed it), so the cut waits one more fast lease and drift.
    ck.wait_until("alice backed by all three votes", CONVERGE, || {
        let st = ck.status("alice")?;
        (st.get("quorum")?.get("votes")?.as_u64()? == 3).then_some(())
    });
    std::thread::sleep(Duration::from_millis(200));
    lab.cut(0);
    ck.note("alice's host cut silently");
    ck.wait_until("bob master", CONVERGE, || {
        (ck.roles().iter().find(|(n, _)| n == "bob")?.1.as_deref() == Some("master")).then_some(())
    });
    heal_and_check(&lab, &ck, &before);
    ck.finish();
}

#[test]
fn s8_three_nodes_peter_killed() {
    let Some((lab, ck)) = lab("s8", 3) else {
        return;
    };
    // Three nodes: alice, dieter, bob; the youngest (bob here, DESIGN's peter) is killed.
    start(&lab, &ck, 3, &[]);
    ck.wait_master(CONVERGE);
    ck.signal("bob", libc::SIGKILL);
    assert_eq!(ck.wait_master(CONVERGE).0, "alice");
    ck.finish();
}

#[test]
fn s10_four_nodes_alice_killed() {
    let Some((lab, ck)) = lab("s10", 4) else {
        return;
    };
    start(&lab, &ck, 4, &[]);
    ck.wait_master(CONVERGE);
    ck.signal("alice", libc::SIGKILL);
    assert_eq!(ck.wait_master(CONVERGE).0, "dieter");
    ck.finish();
}

#[test]
fn s13_four_nodes_two_cut_no_master() {
    let Some((lab, ck)) = lab("s13", 4) else {
        return;
    };
    let names = start(&lab, &ck, 4, &[]);
    let before = ck.wait_master(CONVERGE);
    lab.split(&[&[0], &[2], &[1, 3]]);
    ck.note("alice and bob each cut off");
    let _ = names;
    // Leases run out; after that nobody may be master.
    std::thread::sleep(HOLD);
    ck.hold_no_master(HOLD);
    heal_and_check(&lab, &ck, &before);
    ck.finish();
}

/// 5 hosts, settled or struck inside the join window; `fault` returns the groups that must
/// hold no master (by name) after the leases ran out, `None` if a master must emerge.
/// What the rules promise while a fault of [`five`] lasts (the overlap checker runs throughout).
enum During {
    /// Some side holds a quorum: a master there within [`CONVERGE`].
    Master,
    /// No side holds a quorum: no master anywhere for [`HOLD`].
    NoMaster,
    /// The fault came while a newcomer was pending (counted in views, not yet agreed in the
    /// base, docs/ALGORITHM.md "Known limits"): which side may win depends on how far the
    /// join had gone, so either side may hold a master, or neither, never both at once.
    EitherSide,
}

fn five(test: &str, settle: bool, fault: impl Fn(&Lab, &Checker, &[&str], &str) -> During) {
    let Some((lab, ck)) = lab(test, 5) else {
        return;
    };
    let names = start(&lab, &ck, 5, &[]);
    let before = if settle {
        ck.wait_master(CONVERGE)
    } else {
        ("?".to_owned(), 0)
    };
    let master = before.0.clone();
    match fault(&lab, &ck, &names, &master) {
        During::Master => {
            ck.wait_until("a master on the majority side", CONVERGE, || {
                ck.roles()
                    .iter()
                    .any(|(_, r)| r.as_deref() == Some("master"))
                    .then_some(())
            });
        }
        During::NoMaster => {
            std::thread::sleep(HOLD);
            ck.hold_no_master(HOLD);
        }
        During::EitherSide => std::thread::sleep(HOLD),
    }
    std::thread::sleep(Duration::from_secs(2));
    heal_and_check(&lab, &ck, &before);
    ck.finish();
}

#[test]
fn five_master_cut_silently() {
    five("five_cut", true, |lab, ck, names, m| {
        lab.cut(host_of(names, m));
        ck.note("master cut silently");
        During::Master
    });
}

#[test]
fn five_split_master_in_minority() {
    five("five_min", true, |lab, ck, names, m| {
        let h = host_of(names, m);
        let other = (h + 1) % 5;
        let rest: Vec<usize> = (0..5).filter(|i| *i != h && *i != other).collect();
        lab.split(&[&[h, other], &rest]);
        ck.note("2|3 split, master in the 2");
        During::Master
    });
}

#[test]
fn five_split_master_in_majority() {
    five("five_maj", true, |lab, ck, names, m| {
        let h = host_of(names, m);
        let two: Vec<usize> = (0..5).filter(|i| *i != h).take(2).collect();
        let rest: Vec<usize> = (0..5).filter(|i| !two.contains(i)).collect();
        lab.split(&[&two, &rest]);
        ck.note("2|3 split, master in the 3");
        During::Master
    });
}

#[test]
fn five_split_2_2_1_no_master() {
    five("five_221", true, |lab, ck, _, _| {
        lab.split(&[&[0, 1], &[2, 3], &[4]]);
        ck.note("2|2|1 split");
        During::NoMaster
    });
}

#[test]
fn five_one_way_master_to_node() {
    five("five_ow1", true, |lab, ck, names, m| {
        let h = host_of(names, m);
        lab.drop_one_way(h, (h + 1) % 5);
        ck.note("one-way loss master -> next host");
        During::Master
    });
}

#[test]
fn five_one_way_node_to_master() {
    five("five_ow2", true, |lab, ck, names, m| {
        let h = host_of(names, m);
        lab.drop_one_way((h + 1) % 5, h);
        ck.note("one-way loss next host -> master");
        During::Master
    });
}

#[test]
fn five_frozen_master_thawed_after_lease() {
    five("five_frz", true, |_, ck, _, m| {
        ck.signal(m, libc::SIGSTOP);
        ck.wait_until("another master while frozen", CONVERGE, || {
            ck.roles()
                .iter()
                .any(|(n, r)| n != m && r.as_deref() == Some("master"))
                .then_some(())
        });
        ck.signal(m, libc::SIGCONT);
        During::Master
    });
}

#[test]
fn join_window_master_cut() {
    five("jw_cut", false, |lab, ck, _, _| {
        lab.cut(0);
        ck.note("alice's host cut right after the last node answered");
        During::Master
    });
}

#[test]
fn join_window_split_2_3() {
    five("jw_23", false, |lab, ck, _, _| {
        lab.split(&[&[0, 1], &[2, 3, 4]]);
        ck.note("2|3 split right after the last node answered");
        During::EitherSide
    });
}

#[test]
fn join_window_split_2_2_1() {
    five("jw_221", false, |lab, ck, _, _| {
        lab.split(&[&[0, 1], &[2, 3], &[4]]);
        ck.note("2|2|1 split right after the last node answered");
        During::NoMaster
    });
}

#[test]
fn seven_split_3_4() {
    let Some((lab, ck)) = lab("seven", 7) else {
        return;
    };
    start(&lab, &ck, 7, &[]);
    let before = ck.wait_master(CONVERGE);
    // Settled first: every member votes for the master, so each holds its configuration.
    // Split right after the last join instead, the newest members may not be in the agreed
    // count of the four yet, and no side can win until the heal (docs/ALGORITHM.md, "Known
    // limits"; `join_window_split_2_3` covers that case): a CI run split 170 ms after the
    // seventh start and the four never elected.
    ck.wait_until("all seven vote for the master", CONVERGE, || {
        let q = ck.status(&before.0)?["quorum"].clone();
        (q["votes"].as_u64()? == 7 && q["counted"].as_u64()? == 7).then_some(())
    });
    // ... and for a lease and a drift more (640 ms; 1 s here): members that follow a master
    // commit a join that long after a quorum showed it (docs/ALGORITHM.md, "Commit by
    // agreement"). Voting alone did not make it: a CI run split 150 ms after gina's vote
    // came, and eve, reaching four of the seven, stayed inquorate (its agreed count did not
    // hold gina yet: the join window of "Known limits").
    let dropped = testkit::poll_until(Duration::from_secs(1), Duration::from_millis(100), || {
        let q = ck.status(&before.0)?["quorum"].clone();
        (q["votes"].as_u64()? != 7).then_some(())
    });
    if dropped.is_some() {
        ck.fail("a vote of the seven lapsed while the cluster was settled");
    }
    ck.note("all seven voted for a lease and a drift");
    lab.split(&[&[0, 1, 2], &[3, 4, 5, 6]]);
    ck.note("3|4 split (alice in the 3)");
    ck.wait_until("dieter's side... a master among the 4", CONVERGE, || {
        ck.roles()
            .iter()
            .any(|(n, r)| {
                ["peter", "eve", "frank", "gina"].contains(&n.as_str())
                    && r.as_deref() == Some("master")
            })
            .then_some(())
    });
    heal_and_check(&lab, &ck, &before);
    ck.finish();
}

/// The members named `who` in node `observer`'s status (empty when it does not answer).
fn entries(ck: &Checker, observer: &str, who: &str) -> Vec<serde_json::Value> {
    ck.status(observer)
        .and_then(|s| s["members"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m["name"] == who)
        .collect()
}

/// Waits until every node in `observers` lists exactly one `who` with `pred` true of it.
fn wait_entry(
    ck: &Checker,
    what: &str,
    observers: &[&str],
    who: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) {
    ck.wait_until(what, CONVERGE, || {
        observers
            .iter()
            .all(|o| {
                let e = entries(ck, o, who);
                e.len() == 1 && pred(&e[0])
            })
            .then_some(())
    });
}

#[test]
fn s5_two_nodes_alice_dispatches_and_rejoins_as_one_entry() {
    let Some((lab, ck)) = lab("s5", 2) else {
        return;
    };
    start(&lab, &ck, 2, &[]);
    assert_eq!(ck.wait_master(CONVERGE).0, "alice");
    ck.signal("alice", libc::SIGTERM);
    ck.note("alice dispatches (SIGTERM)");
    wait_entry(&ck, "bob sees alice dispatched", &["bob"], "alice", |m| {
        m["state"] == "dispatched"
    });
    assert_eq!(ck.wait_master(CONVERGE).0, "bob");
    ck.start(&lab, 0, "alice", &[]);
    ck.note("a new alice starts");
    wait_entry(
        &ck,
        "one alive alice on both nodes",
        &["alice", "bob"],
        "alice",
        |m| m["state"] == "alive",
    );
    // The new alice is the youngest: bob keeps the mastership.
    assert_eq!(ck.wait_master(CONVERGE).0, "bob");
    ck.finish();
}

#[test]
fn s6_three_nodes_late_joiner_all_report_alice() {
    let Some((lab, ck)) = lab("s6", 3) else {
        return;
    };
    start(&lab, &ck, 2, &[]);
    assert_eq!(ck.wait_master(CONVERGE).0, "alice");
    ck.start(&lab, 2, "peter", &[]);
    ck.note("peter joins late");
    ck.wait_until("peter answers", CONVERGE, || {
        ck.roles()
            .into_iter()
            .find(|(n, r)| n == "peter" && r.as_deref().is_some_and(|r| r != "starting"))
    });
    assert_eq!(ck.wait_master(CONVERGE).0, "alice");
    ck.finish();
}

#[test]
fn s7_three_nodes_bob_dispatches_and_rejoins_on_another_port() {
    let Some((lab, ck)) = lab("s7", 3) else {
        return;
    };
    let names = start(&lab, &ck, 3, &[]);
    assert_eq!(ck.wait_master(CONVERGE).0, "alice");
    ck.signal("bob", libc::SIGTERM);
    ck.note("bob dispatches (SIGTERM)");
    wait_entry(
        &ck,
        "alice and dieter see bob dispatched",
        &["alice", "dieter"],
        "bob",
        |m| m["state"] == "dispatched",
    );
    ck.spawn(&lab, host_of(&names, "bob"), "bob", "bob", 7001, &[]);
    ck.note("bob rejoins on port 7001");
    ck.wait_until(
        "one alive bob on port 7001, nothing dispatched, anywhere",
        CONVERGE,
        || {
            names
                .iter()
                .all(|o| {
                    let ms = ck
                        .status(o)
                        .and_then(|s| s["members"].as_array().cloned())
                        .unwrap_or_default();
                    let bobs: Vec<_> = ms.iter().filter(|m| m["name"] == "bob").collect();
                    ms.len() == 3
                        && bobs.len() == 1
                        && bobs[0]["state"] == "alive"
                        && bobs[0]["port"].as_u64() == Some(7001)
                        && ms.iter().all(|m| m["state"] != "dispatched")
                })
                .then_some(())
        },
    );
    assert_eq!(ck.wait_master(CONVERGE).0, "alice");
    ck.finish();
}

#[test]
fn s9_three_nodes_peter_dispatches_not_counted() {
    let Some((lab, ck)) = lab("s9", 3) else {
        return;
    };
    // Three nodes: alice, dieter, bob; the youngest (bob here, DESIGN's peter) dispatches.
    start(&lab, &ck, 3, &[]);
    assert_eq!(ck.wait_master(CONVERGE).0, "alice");
    ck.signal("bob", libc::SIGTERM);
    ck.note("bob (the youngest) dispatches");
    wait_entry(
        &ck,
        "alice and dieter see bob dispatched, not counted",
        &["alice", "dieter"],
        "bob",
        |m| m["state"] == "dispatched" && m["counted"] == false,
    );
    assert_eq!(ck.wait_master(CONVERGE).0, "alice");
    ck.finish();
}

#[test]
fn s10_four_nodes_by_port_alice_killed() {
    let Some((lab, ck)) = lab("s10p", 4) else {
        return;
    };
    // Ports decide: alice has the lowest, then dieter, bob, peter; started youngest port
    // first so that age alone would pick peter.
    let names = ["alice", "dieter", "bob", "peter"];
    for (i, name) in names.iter().enumerate().rev() {
        let port = 7001 + u16::try_from(i).expect("small");
        ck.spawn(
            &lab,
            i,
            name,
            name,
            port,
            &["--use-port-instead-of-life-time"],
        );
        ck.wait_until(&format!("{name} answers"), CONVERGE, || {
            ck.roles()
                .into_iter()
                .find(|(n, r)| n == name && r.as_deref().is_some_and(|r| r != "starting"))
        });
    }
    // alice joined last with the best port: she takes over (preemption) a moment after
    // she answers, so wait for that hand-over rather than the first agreed master.
    ck.wait_until("alice is the agreed master", CONVERGE, || {
        ck.agreed_master().filter(|(m, _)| m == "alice")
    });
    ck.signal("alice", libc::SIGKILL);
    ck.note("alice SIGKILLed");
    ck.wait_until("dieter is the agreed master", CONVERGE, || {
        ck.agreed_master().filter(|(m, _)| m == "dieter")
    });
    ck.finish();
}

#[test]
fn s11_four_nodes_bob_killed_alice_stays() {
    let Some((lab, ck)) = lab("s11", 4) else {
        return;
    };
    start(&lab, &ck, 4, &[]);
    let before = ck.wait_master(CONVERGE);
    assert_eq!(before.0, "alice");
    ck.signal("bob", libc::SIGKILL);
    ck.note("bob SIGKILLed");
    wait_entry(&ck, "alice sees bob gone", &["alice"], "bob", |m| {
        m["state"] != "alive"
    });
    let after = ck.wait_master(CONVERGE);
    assert_eq!(after.0, "alice");
    ck.finish();
}

#[test]
fn s12_four_nodes_alice_dispatches_dieter_master() {
    let Some((lab, ck)) = lab("s12", 4) else {
        return;
    };
    start(&lab, &ck, 4, &[]);
    assert_eq!(ck.wait_master(CONVERGE).0, "alice");
    ck.signal("alice", libc::SIGTERM);
    ck.note("alice dispatches (SIGTERM)");
    assert_eq!(ck.wait_master(CONVERGE).0, "dieter");
    wait_entry(
        &ck,
        "the others see alice dispatched",
        &["dieter", "bob", "peter"],
        "alice",
        |m| m["state"] == "dispatched",
    );
    ck.finish();
}

#[test]
fn s13_four_nodes_alice_and_bob_killed_dieter_master() {
    let Some((lab, ck)) = lab("s13k", 4) else {
        return;
    };
    start(&lab, &ck, 4, &[]);
    assert_eq!(ck.wait_master(CONVERGE).0, "alice");
    ck.signal("alice", libc::SIGKILL);
    ck.signal("bob", libc::SIGKILL);
    ck.note("alice and bob SIGKILLed");
    assert_eq!(ck.wait_master(CONVERGE).0, "dieter");
    ck.finish();
}
