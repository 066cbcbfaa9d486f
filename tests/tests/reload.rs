//! SIGHUP (`systemctl reload`) re-reads the config file: the log level, maintenance and
//! priority apply at once, what cannot change at runtime is named as needing a restart and left as it was, and
//! a bad file changes nothing. (Checks and hooks: tests/tests/operator.rs.)

use quorum_tests::{Cluster, DEADLINE, Node};
use std::time::Duration;

fn hup(node: &Node) {
    let pid = libc::pid_t::try_from(node.pid()).expect("pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; the node is ours and running.
    let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
    assert_eq!(rc, 0, "kill -HUP {pid}");
}

fn held(node: &Node) -> Vec<String> {
    node.status()["held"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// How many times `needle` appears in `node`'s log.
fn count(node: &Node, needle: &str) -> usize {
    node.log().matches(needle).count()
}

#[test]
fn sighup_applies_log_level_and_maintenance_and_names_what_needs_a_restart() {
    let c = Cluster::new();
    let config = c.dir().join("alice.toml");
    // Written whole, then renamed in place: a reload never reads a half-written file.
    let write = |text: &str| {
        let tmp = config.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write config");
        std::fs::rename(&tmp, &config).expect("rename config");
    };
    write("log_level = \"info\"\n");
    let cfg = config.to_str().expect("utf-8 path");
    let alice = c.start("alice", &["--config", cfg]);
    let bob = c.start("bob", &[]);
    let peter = c.start("peter", &[]);
    let all = [&alice, &bob, &peter];
    c.wait_master(&all, "alice");
    let _ = alice.ctl(&["role"]);
    assert!(!alice.log().contains(" DEBUG "));

    // The log level, at once.
    write("log_level = \"debug\"\n");
    hup(&alice);
    // An idle daemon may have nothing to say; a control request is logged at debug.
    c.wait_for("debug lines after the reload", DEADLINE, || {
        let _ = alice.ctl(&["role"]);
        alice.log().contains(" DEBUG ")
    });
    assert!(alice.log().contains("reload: log level changed"));

    // Maintenance from the file: alice hands over and keeps voting; off again, she is back.
    write("log_level = \"info\"\nmaintenance = true\n");
    hup(&alice);
    c.wait_master(&all, "bob");
    assert_eq!(held(&alice), ["maintenance"]);
    // A reload that does not change the key leaves quorumctl's say alone.
    let out = alice.ctl(&["maintenance", "off"]);
    assert!(out.status.success(), "{out:?}");
    c.wait_master(&all, "alice");
    let out = alice.ctl(&["maintenance", "on"]);
    assert!(out.status.success(), "{out:?}");
    c.wait_master(&all, "bob");
    write("log_level = \"info\"\nmaintenance = true\n");
    let reloads = count(&alice, "configuration reloaded");
    hup(&alice);
    c.wait_for("the reload is done", DEADLINE, || {
        count(&alice, "configuration reloaded") > reloads
    });
    assert_eq!(held(&alice), ["maintenance"]);
    write("log_level = \"info\"\nmaintenance = false\n");
    hup(&alice);
    c.wait_master(&all, "alice");
    assert!(held(&alice).is_empty());

    // What cannot change at runtime is named and left as it was.
    write(
        "log_level = \"info\"\ncluster = \"other\"\nstrategy = \"port\"\n\
         advertise = \"127.0.0.9\"\n[timers]\nheartbeat = \"30ms\"\n",
    );
    hup(&alice);
    c.wait_for("the restart-only changes are named", DEADLINE, || {
        alice
            .log()
            .lines()
            .any(|l| l.contains("needs a restart") && l.contains("cluster"))
    });
    let log = alice.log();
    let line = log
        .lines()
        .find(|l| l.contains("needs a restart"))
        .expect("the line");
    for option in ["cluster", "strategy", "advertise", "timers"] {
        assert!(line.contains(option), "{option} not named: {line}");
    }
    assert_eq!(alice.status()["cluster"], "quorum");
    c.hold("alice stays master", Duration::from_secs(1), || {
        alice.role().as_deref() == Some("master")
    });
}

#[test]
fn a_priority_reload_moves_mastership_there_and_back() {
    let c = Cluster::new();
    let config = c.dir().join("peter.toml");
    let write = |text: &str| {
        let tmp = config.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write config");
        std::fs::rename(&tmp, &config).expect("rename config");
    };
    write("priority = 0\n");
    let cfg = config.to_str().expect("utf-8 path");
    let alice = c.start("alice", &[]);
    let bob = c.start("bob", &[]);
    let peter = c.start("peter", &["--config", cfg]);
    let all = [&alice, &bob, &peter];
    c.wait_master(&all, "alice");
    // The preferred master by a reload: peter takes over (a clean hand-over), no restart.
    let pid = peter.pid();
    write("priority = 10\n");
    hup(&peter);
    c.wait_master(&all, "peter");
    assert!(peter.log().contains("reload: priority changed"));
    assert!(!peter.log().contains("needs a restart"));
    assert_eq!(peter.pid(), pid);
    // Back to the default: alice, the oldest, is preferred again.
    write("priority = 0\n");
    hup(&peter);
    c.wait_master(&all, "alice");
}

#[test]
fn a_bad_file_is_refused_with_its_error_and_nothing_changes() {
    let c = Cluster::new();
    let config = c.dir().join("alice.toml");
    // Written whole, then renamed in place: a reload never reads a half-written file.
    let write = |text: &str| {
        let tmp = config.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write config");
        std::fs::rename(&tmp, &config).expect("rename config");
    };
    write("log_level = \"info\"\n");
    let cfg = config.to_str().expect("utf-8 path");
    let alice = c.start("alice", &["--config", cfg]);
    let bob = c.start("bob", &[]);
    let peter = c.start("peter", &[]);
    let all = [&alice, &bob, &peter];
    c.wait_master(&all, "alice");

    // Valid maintenance and log level, but one bad value: none of it applies.
    write("log_level = \"debug\"\nmaintenance = true\ncheck_fall = 0\n");
    hup(&alice);
    c.wait_for("the bad file is refused", DEADLINE, || {
        alice.log().contains("reload refused")
    });
    let log = alice.log();
    let line = log
        .lines()
        .find(|l| l.contains("reload refused"))
        .expect("the line");
    assert!(
        line.contains("check_fall"),
        "the error names the key: {line}"
    );
    c.hold("nothing changed", Duration::from_secs(1), || {
        alice.role().as_deref() == Some("master") && held(&alice).is_empty()
    });
    assert!(!alice.log().contains(" DEBUG "));

    // Not TOML at all.
    write("maintenance = \n");
    hup(&alice);
    c.wait_for("the broken file is refused", DEADLINE, || {
        count(&alice, "reload refused") >= 2
    });
    assert!(held(&alice).is_empty());
    assert!(alice.role().is_some(), "SIGHUP must not end the daemon");
}
