//! Hook scripts run by real daemons: which hook runs on which change, with which environment,
//! and the original's non-executable Python scripts.

use quorum_tests::{Cluster, DEADLINE};
use std::os::unix::fs::PermissionsExt;

#[test]
fn a_dispatching_node_runs_its_slave_hook_with_role_dispatching_before_exiting() {
    let c = Cluster::new();
    let hook = c.hook("peter-slave");
    let alice = c.start("alice", &[]);
    let mut peter = c.start("peter", &["-s", hook.arg()]);
    c.wait_master(&[&alice, &peter], "alice");
    c.wait_for(
        "peter's slave hook ran for joining as slave",
        DEADLINE,
        || hook.runs().iter().any(|r| r.role == "slave"),
    );
    let first = hook.runs()[0].clone();
    // The daemons' logs with the failure: a first hook other than this one is rare (seen
    // once, under load, not reproduced) and only the logs can say why.
    assert_eq!(first.previous, "starting", "{first:?}\n{}", c.logs());
    assert_eq!(first.master, "alice", "{first:?}\n{}", c.logs());
    assert_eq!(first.node, "peter", "{first:?}\n{}", c.logs());

    peter.kill(libc::SIGTERM);
    assert_eq!(peter.wait_exit(DEADLINE).code(), Some(0), "{}", c.logs());
    // The hook ran before the daemon exited: its line is there already.
    let runs = hook.runs();
    let last = runs.last().expect("hook runs");
    assert_eq!(last.role, "dispatching", "{runs:?}");
    assert_eq!(last.previous, "slave", "{runs:?}");
    assert_eq!(last.node, "peter", "{runs:?}");
}

#[test]
fn notify_runs_for_every_change_and_the_master_hook_only_for_mastership() {
    let c = Cluster::new();
    let notify = c.hook("bob-notify");
    let master = c.hook("bob-master");
    let mut alice = c.start("alice", &[]);
    let bob = c.start("bob", &["--notify", notify.arg(), "-m", master.arg()]);
    let peter = c.start("peter", &[]);
    c.wait_master(&[&alice, &bob, &peter], "alice");
    c.wait_for("bob's notify ran for becoming slave", DEADLINE, || {
        notify
            .runs()
            .iter()
            .any(|r| r.role == "slave" && r.master == "alice")
    });
    assert!(
        master.runs().is_empty(),
        "the master hook ran on a slave: {:?}",
        master.runs()
    );

    alice.kill(libc::SIGKILL);
    alice.wait_exit(DEADLINE);
    c.wait_master(&[&bob, &peter], "bob");
    c.wait_for(
        "bob's notify and master hooks ran for mastership",
        DEADLINE,
        || {
            notify.runs().iter().any(|r| r.role == "master")
                && master.runs().iter().any(|r| r.role == "master")
        },
    );
    let n = notify.runs();
    let last = n.last().expect("notify runs");
    assert_eq!(last.role, "master", "{n:?}");
    assert_eq!(last.master, "bob", "{n:?}");
    assert_eq!(last.event, "role", "{n:?}");
    // The last hook run matches the current state.
    assert_eq!(
        bob.status()["epoch"].as_u64(),
        Some(last.epoch),
        "notify's epoch is bob's"
    );
}

#[test]
fn a_follower_runs_its_slave_hook_when_the_master_it_follows_changes() {
    let c = Cluster::new();
    let hook = c.hook("peter-slave");
    let mut alice = c.start("alice", &[]);
    let bob = c.start("bob", &[]);
    let peter = c.start("peter", &["-s", hook.arg()]);
    c.wait_master(&[&alice, &bob, &peter], "alice");
    alice.kill(libc::SIGKILL);
    alice.wait_exit(DEADLINE);
    c.wait_master(&[&bob, &peter], "bob");
    c.wait_for("peter's slave hook saw master bob", DEADLINE, || {
        hook.runs().iter().any(|r| r.master == "bob")
    });
    let runs = hook.runs();
    let run = runs.iter().find(|r| r.master == "bob").expect("a run");
    assert_eq!(run.role, "slave", "{runs:?}");
    assert_eq!(run.previous, "slave", "{runs:?}");
    assert_eq!(run.event, "master", "{runs:?}");
    assert_eq!(run.node, "peter", "{runs:?}");
}

#[test]
fn a_non_executable_python_hook_runs_with_python3() {
    let c = Cluster::new();
    let script = c.dir().join("i_am_master.py");
    let out = c.dir().join("python.out");
    std::fs::write(
        &script,
        format!(
            "import os\nwith open({:?}, 'a') as f:\n    \
             f.write(os.environ['QUORUM_ROLE'] + ' ' + os.environ['QUORUM_NODE'] + '\\n')\n",
            out.display().to_string()
        ),
    )
    .expect("writing the python hook");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).expect("chmod 644");
    let script = script.to_str().expect("UTF-8 temp path").to_owned();
    let alice = c.start("alice", &[&format!("-m={script}")]);
    c.wait_for("alice becomes master", DEADLINE, || {
        alice.role().as_deref() == Some("master")
    });
    c.wait_for("the python master hook wrote its line", DEADLINE, || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.lines().any(|l| l == "master alice"))
    });
}
