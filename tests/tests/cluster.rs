//! Issue "quorumd on the network": real daemons on loopback forming clusters, electing,
//! failing over, dispatching, rejoining, running hooks.

use quorum_tests::{Cluster, DEADLINE, Node, Profile};
use serde_json::Value;
use std::io::Read;
use std::net::{Ipv4Addr, TcpListener};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The names in a status' members table.
fn member_names(status: &Value) -> Vec<String> {
    status["members"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The status' entry for member `name`, if there is exactly one.
fn entry<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
    let ms = status["members"].as_array()?;
    let mut found = ms.iter().filter(|m| m["name"].as_str() == Some(name));
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

#[test]
fn three_nodes_form_a_cluster_with_the_oldest_as_master() {
    let c = Cluster::with_profile(Profile::Default);
    let nodes = c.start_all(&["alice", "bob", "peter"], &[]);
    let refs: Vec<&Node> = nodes.iter().collect();
    c.wait_for(
        "all three report master alice, quorum counted 3, three members all alive",
        DEADLINE,
        || {
            refs.iter().all(|n| {
                n.status_json().is_some_and(|s| {
                    s["master"] == "alice"
                        && s["quorum"]["counted"] == 3
                        && s["members"].as_array().is_some_and(|ms| {
                            ms.len() == 3 && ms.iter().all(|m| m["state"] == "alive")
                        })
                })
            })
        },
    );
    assert_eq!(nodes[0].role().as_deref(), Some("master"));
    assert_eq!(nodes[1].role().as_deref(), Some("slave"));
    assert_eq!(nodes[2].role().as_deref(), Some("slave"));
    for n in &nodes {
        let s = n.status();
        assert_eq!(s["master"], "alice", "{} follows alice", n.name());
        assert_eq!(s["quorum"]["counted"], 3);
        let mut names = member_names(&s);
        names.sort();
        assert_eq!(names, ["alice", "bob", "peter"]);
    }
}

#[test]
fn killing_the_master_elects_a_new_one_whose_hook_sees_the_right_environment() {
    let c = Cluster::new();
    let hook = c.hook("bob-master");
    let mut alice = c.start("alice", &[]);
    let bob = c.start("bob", &["-m", hook.arg()]);
    let peter = c.start("peter", &[]);
    c.wait_master(&[&alice, &bob, &peter], "alice");
    let epoch_before = bob.status()["epoch"].as_u64().expect("epoch is a number");
    assert!(
        hook.runs().iter().all(|r| r.role != "master"),
        "bob's master hook ran before bob was master: {:?}",
        hook.runs()
    );

    alice.kill(libc::SIGKILL);
    alice.wait_exit(DEADLINE);
    c.wait_master(&[&bob, &peter], "bob");
    assert_eq!(bob.role().as_deref(), Some("master"));
    c.wait_for("bob's master hook ran", DEADLINE, || {
        hook.runs().iter().any(|r| r.role == "master")
    });
    let runs = hook.runs();
    let run = runs
        .iter()
        .find(|r| r.role == "master")
        .expect("a master run");
    assert_eq!(run.previous, "slave", "{runs:?}");
    assert_eq!(run.master, "bob", "{runs:?}");
    assert_eq!(run.node, "bob", "{runs:?}");
    assert_eq!(run.event, "role", "{runs:?}");
    assert!(
        run.epoch > epoch_before,
        "epoch {} in the hook is not above {epoch_before}: {runs:?}",
        run.epoch
    );
    assert_eq!(
        bob.status()["epoch"].as_u64(),
        Some(run.epoch),
        "the hook saw the epoch bob reports"
    );
}

#[test]
fn dispatching_the_master_hands_over_and_it_exits_zero() {
    let c = Cluster::new();
    let mut alice = c.start("alice", &[]);
    let bob = c.start("bob", &[]);
    let peter = c.start("peter", &[]);
    c.wait_master(&[&alice, &bob, &peter], "alice");

    let out = alice.ctl(&["dispatch"]);
    assert!(
        out.status.success(),
        "quorumctl dispatch failed: {out:?}\n{}",
        c.logs()
    );
    let status = alice.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "alice's exit status\n{}", c.logs());

    c.wait_master(&[&bob, &peter], "bob");
    c.wait_for(
        "bob and peter show alice dispatched and not counted",
        DEADLINE,
        || {
            [&bob, &peter].iter().all(|n| {
                n.member("alice")
                    .is_some_and(|m| m["state"] == "dispatched" && m["counted"] == false)
            })
        },
    );
    // A member counts once it may vote (after its quiet period following start), so right
    // after a quick start-and-dispatch peter may not be counted yet: wait for it.
    c.wait_for("bob and peter count each other", DEADLINE, || {
        [&bob, &peter]
            .iter()
            .all(|n| n.status_json().is_some_and(|s| s["quorum"]["counted"] == 2))
    });
    assert_eq!(bob.role().as_deref(), Some("master"));
    assert_eq!(peter.role().as_deref(), Some("slave"));
}

#[test]
fn sigterm_dispatches_and_sigint_leaves_the_node_lost() {
    let c = Cluster::new();
    let alice = c.start("alice", &[]);
    let mut bob = c.start("bob", &[]);
    let mut peter = c.start("peter", &[]);
    c.wait_master(&[&alice, &bob, &peter], "alice");

    peter.kill(libc::SIGTERM);
    let status = peter.wait_exit(DEADLINE);
    assert_eq!(status.code(), Some(0), "SIGTERM exit status\n{}", c.logs());
    c.wait_for(
        "alice and bob show peter dispatched, not counted",
        DEADLINE,
        || {
            [&alice, &bob].iter().all(|n| {
                n.member("peter")
                    .is_some_and(|m| m["state"] == "dispatched" && m["counted"] == false)
            })
        },
    );

    bob.kill(libc::SIGINT);
    bob.wait_exit(DEADLINE);
    c.wait_for("alice shows bob lost", DEADLINE, || {
        alice.member_state("bob").as_deref() == Some("lost")
    });
    // Lost is not dispatched: the goodbye was never said.
    assert_eq!(alice.member_state("peter").as_deref(), Some("dispatched"));
}

#[test]
fn a_restarted_node_keeps_its_name_and_one_entry() {
    let c = Cluster::new();
    let alice = c.start("alice", &[]);
    let bob = c.start("bob", &[]);
    let mut peter = c.start("peter", &[]);
    let port = peter.port();
    c.wait_master(&[&alice, &bob, &peter], "alice");

    peter.kill(libc::SIGKILL);
    peter.wait_exit(DEADLINE);
    c.wait_for("alice and bob show peter lost", DEADLINE, || {
        [&alice, &bob]
            .iter()
            .all(|n| n.member_state("peter").as_deref() == Some("lost"))
    });

    let peter = c.start_on("peter", port, &[]);
    let all = [&alice, &bob, &peter];
    c.wait_for(
        "every node has one alive, counted entry for peter and three members",
        DEADLINE,
        || {
            all.iter().all(|n| {
                n.status_json().is_some_and(|s| {
                    entry(&s, "peter")
                        .is_some_and(|m| m["state"] == "alive" && m["counted"] == true)
                        && member_names(&s).len() == 3
                        && s["quorum"]["counted"] == 3
                })
            })
        },
    );
    c.wait_master(&all, "alice");
    for n in all {
        let s = n.status();
        let peters = member_names(&s).iter().filter(|m| *m == "peter").count();
        assert_eq!(peters, 1, "{} lists peter {peters} times", n.name());
    }
}

#[test]
fn two_clusters_with_different_names_ignore_each_other() {
    let c = Cluster::new();
    // Interleaved start order: a leak across clusters would change who is oldest.
    let a1 = c.start("a1", &["--cluster", "a"]);
    let b1 = c.start("b1", &["--cluster", "b"]);
    let a2 = c.start("a2", &["--cluster", "a"]);
    let b2 = c.start("b2", &["--cluster", "b"]);
    c.wait_master(&[&a1, &a2], "a1");
    c.wait_master(&[&b1, &b2], "b1");
    let only = |n: &Node, names: [&str; 2], cluster: &str| {
        n.status_json().is_some_and(|s| {
            let mut m = member_names(&s);
            m.sort();
            m == names && s["cluster"] == cluster && s["quorum"]["counted"] == 2
        })
    };
    c.wait_for("each node lists only its own cluster", DEADLINE, || {
        only(&a1, ["a1", "a2"], "a")
            && only(&a2, ["a1", "a2"], "a")
            && only(&b1, ["b1", "b2"], "b")
            && only(&b2, ["b1", "b2"], "b")
    });
    // Several discovery rounds (the fast profile announces every 500 ms) must change nothing.
    c.hold(
        "each cluster keeps its own members and master",
        Duration::from_secs(2),
        || {
            only(&a1, ["a1", "a2"], "a")
                && only(&b2, ["b1", "b2"], "b")
                && a2.master().as_deref() == Some("a1")
                && b2.master().as_deref() == Some("b1")
        },
    );
    assert_eq!(a1.role().as_deref(), Some("master"));
    assert_eq!(b1.role().as_deref(), Some("master"));
}

#[test]
fn a_hook_that_hangs_is_killed_and_heartbeats_go_on() {
    // Default timers: the hook hangs far longer than the silence timeout, so a blocked
    // heartbeat would show as a failover.
    let c = Cluster::with_profile(Profile::Default);
    let hook = c.hanging_hook("hang");
    let mut alice = c.start("alice", &[]);
    let bob = c.start("bob", &[]);
    let peter = c.start("peter", &["-s", hook.arg(), "--hook-timeout", "1s"]);
    c.wait_master(&[&alice, &bob, &peter], "alice");
    c.wait_for("peter's slave hook started and hangs", DEADLINE, || {
        hook.hung_pid().is_some()
    });
    let epoch = alice.status()["epoch"].clone();

    c.hold(
        "no role change anywhere while peter's hook hangs and is killed",
        Duration::from_secs(3),
        || {
            alice.role().as_deref() == Some("master")
                && bob.role().as_deref() == Some("slave")
                && peter.role().as_deref() == Some("slave")
                && bob.status_json().is_some_and(|s| s["epoch"] == epoch)
        },
    );
    c.wait_for("peter logs that the hook timed out", DEADLINE, || {
        let log = peter.log();
        log.contains("hook timed out")
    });
    let pid = hook.hung_pid().expect("pid recorded");
    c.wait_for("the hung hook's process is gone", DEADLINE, || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    });

    // A later change still runs the hook.
    alice.kill(libc::SIGKILL);
    alice.wait_exit(DEADLINE);
    c.wait_master(&[&bob, &peter], "bob");
    c.wait_for(
        "peter's slave hook ran for the new master bob",
        DEADLINE,
        || {
            hook.runs()
                .iter()
                .any(|r| r.role == "slave" && r.master == "bob" && r.node == "peter")
        },
    );
}

#[test]
fn a_node_whose_every_scanned_port_is_taken_exits_2_naming_them() {
    let c = Cluster::new();
    // The requested port and the 100 above it (the scan), all taken: 101 listeners on
    // consecutive ports, below the usual ephemeral range so that no connection takes one.
    let (base, _taken) = (20_000u16..32_000)
        .step_by(150)
        .find_map(|base| {
            let taken: Result<Vec<TcpListener>, _> = (base..=base + 100)
                .map(|p| TcpListener::bind((Ipv4Addr::LOCALHOST, p)))
                .collect();
            taken.ok().map(|t| (base, t))
        })
        .expect("101 consecutive free ports between 20000 and 32000");
    let mut child = c
        .command("alice", base, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run quorumd");
    let deadline = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for quorumd") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "quorumd started on a port of {base}-{}, all taken",
                base + 100
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr piped")
        .read_to_string(&mut err)
        .expect("read stderr");
    assert_eq!(status.code(), Some(2), "a start error exits 2:\n{err}");
    let named = format!("ports {base}-{} are all in use", base + 100);
    assert!(
        err.contains(&named),
        "the error does not say '{named}':\n{err}"
    );
}

#[test]
fn a_taken_port_moves_to_the_next_free_one() {
    let c = Cluster::new();
    let port = c.tcp_port();
    let _taken = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("taking the port");
    let alice = c.start_on("alice", port, &[]);
    let s = alice.status();
    let me = entry(&s, "alice").expect("alice lists herself");
    let actual = me["port"].as_u64().expect("port is a number");
    assert_eq!(me["self"], true);
    assert_ne!(actual, u64::from(port), "alice kept the taken port");
    assert!(
        actual > u64::from(port),
        "moved down to {actual} from {port}"
    );
    let log = alice.log();
    assert!(
        log.contains("port in use"),
        "no warning about the taken port in the log:\n{log}"
    );

    // Peers reach her on the port she moved to.
    let bob = c.start("bob", &[]);
    c.wait_master(&[&alice, &bob], "alice");
    c.wait_for("bob sees alice alive on her new port", DEADLINE, || {
        bob.member("alice")
            .is_some_and(|m| m["port"].as_u64() == Some(actual) && m["state"] == "alive")
    });
}

#[test]
fn a_config_file_configures_a_node() {
    let c = Cluster::new();
    let port = c.tcp_port();
    let socket = c.dir().join("from-config.sock");
    let config = c.dir().join("quorumd.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"configured\"\naddress = \"127.0.0.1\"\nport = {port}\n\
             broadcast_address = \"127.255.255.255\"\nbroadcast_port = {}\n\
             socket = \"{}\"\nstate_dir = \"{}\"\nprofile = \"fast\"\ncluster = \"conf\"\n",
            c.broadcast_port(),
            socket.display(),
            c.dir().join("state").display(),
        ),
    )
    .expect("writing the config file");
    let mut cmd = std::process::Command::new(quorum_tests::quorumd_bin());
    cmd.arg("--config").arg(&config);
    let node = c.spawn_command("configured", port, socket, cmd);
    let node = c.wait_up(node);
    let s = node.status();
    assert_eq!(s["name"], "configured");
    assert_eq!(s["cluster"], "conf");
    let me = entry(&s, "configured").expect("the node lists itself");
    assert_eq!(me["port"].as_u64(), Some(u64::from(port)));
    assert_eq!(me["address"], "127.0.0.1");

    // The broadcast settings came from the file too: a node given them as flags joins it.
    let other = c.start("flags", &["--cluster", "conf"]);
    c.wait_master(&[&node, &other], "configured");
}

#[test]
fn a_late_joiner_sees_the_same_master() {
    let c = Cluster::new();
    let nodes = c.start_all(&["alice", "bob", "peter"], &[]);
    c.wait_master(&nodes.iter().collect::<Vec<_>>(), "alice");
    let dieter = c.start("dieter", &[]);
    let all: Vec<&Node> = nodes.iter().chain([&dieter]).collect();
    c.wait_master(&all, "alice");
    c.wait_for("every node lists four alive members", DEADLINE, || {
        all.iter().all(|n| {
            n.status_json().is_some_and(|s| {
                s["members"]
                    .as_array()
                    .is_some_and(|ms| ms.len() == 4 && ms.iter().all(|m| m["state"] == "alive"))
                    && s["quorum"]["counted"] == 4
            })
        })
    });
    assert_eq!(dieter.role().as_deref(), Some("slave"));
    assert_eq!(nodes[0].role().as_deref(), Some("master"));
}

#[test]
fn a_witness_is_never_master_but_keeps_a_two_node_cluster_alive() {
    let c = Cluster::new();
    let mut alice = c.start("alice", &[]);
    // The witness is older than carol: rank alone would make it the next master.
    let witness = c.start("witness", &["--witness"]);
    let carol = c.start("carol", &[]);
    c.wait_master(&[&alice, &witness, &carol], "alice");
    let ws = witness.status();
    assert_eq!(ws["witness"], true);
    assert_eq!(ws["role"], "slave");
    assert_eq!(
        entry(&alice.status(), "witness").map(|m| m["witness"].clone()),
        Some(Value::Bool(true))
    );

    alice.kill(libc::SIGKILL);
    alice.wait_exit(DEADLINE);
    c.wait_for(
        "carol becomes master, the witness follows her",
        DEADLINE,
        || {
            assert_ne!(
                witness.role().as_deref(),
                Some("master"),
                "the witness became master\n{}",
                c.logs()
            );
            carol.role().as_deref() == Some("master")
                && witness.master().as_deref() == Some("carol")
        },
    );
    assert_eq!(witness.role().as_deref(), Some("slave"));
    c.hold(
        "the witness stays slave",
        Duration::from_millis(500),
        || witness.role().as_deref() == Some("slave") && carol.role().as_deref() == Some("master"),
    );
}
