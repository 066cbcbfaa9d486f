//! A sitting master must keep its role while newcomers join: no hook runs, no VIP flap.
//! Found while writing the VIP lab test: a lone master went master -> inquorate -> slave ->
//! master (new epoch) about 0.3 s after a second node started (the established node waited
//! for the newcomer to dial, and counted it before its first beat showed the same view).

use quorum_tests::{Cluster, DEADLINE};
use std::time::Duration;

#[test]
fn a_lone_master_keeps_its_role_and_runs_no_hook_when_others_join() {
    let c = Cluster::new();
    let hook = c.hook("alice");
    let alice = c.start("alice", &["-m", hook.arg(), "-s", hook.arg()]);
    c.wait_for("alice is master alone", DEADLINE, || {
        alice.role().as_deref() == Some("master")
    });
    c.wait_for("alice's master hook ran", DEADLINE, || {
        !hook.runs().is_empty()
    });
    let epoch = alice.status()["epoch"].clone();
    let bob = c.start("bob", &[]);
    c.wait_master(&[&alice, &bob], "alice");
    c.hold("alice stays master", Duration::from_secs(2), || {
        alice.role().as_deref() == Some("master")
    });
    let carol = c.start("carol", &[]);
    c.wait_master(&[&alice, &bob, &carol], "alice");
    c.hold("alice stays master", Duration::from_secs(2), || {
        alice.role().as_deref() == Some("master")
    });
    let roles: Vec<String> = hook.runs().into_iter().map(|r| r.role).collect();
    assert_eq!(roles, ["master"], "hook runs of alice");
    assert_eq!(
        alice.status()["epoch"],
        epoch,
        "the epoch moved without a new master"
    );
}
