//! Issue "operator features": a preferred master (`--priority`), step-down, resume and
//! maintenance without leaving, on real daemons on loopback.

use quorum_tests::{Cluster, DEADLINE, Node};
use std::time::Duration;

fn ctl_ok(node: &Node, args: &[&str]) -> String {
    let out = node.ctl(args);
    assert!(
        out.status.success(),
        "quorumctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn held(node: &Node) -> Vec<String> {
    node.status_json()
        .and_then(|s| {
            s["held"].as_array().map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

#[test]
fn a_higher_priority_node_started_last_becomes_master_and_takes_it_back() {
    let c = Cluster::new();
    let alice = c.start("alice", &[]);
    let bob = c.start("bob", &[]);
    let mut db1 = c.start("db1", &["--priority", "10"]);
    c.wait_master(&[&alice, &bob, &db1], "db1");
    db1.kill(libc::SIGKILL);
    db1.wait_exit(DEADLINE);
    c.wait_master(&[&alice, &bob], "alice");
    let db1 = c.start("db1", &["--priority", "10"]);
    c.wait_master(&[&alice, &bob, &db1], "db1");
}

#[test]
fn step_down_hands_over_keeps_voting_and_resume_or_its_timer_ends_it() {
    let c = Cluster::new();
    let alice = c.start("alice", &[]);
    let bob = c.start("bob", &[]);
    let peter = c.start("peter", &[]);
    let all = [&alice, &bob, &peter];
    c.wait_master(&all, "alice");

    let out = ctl_ok(&alice, &["step-down"]);
    assert!(out.contains("step-down until resume"), "{out}");
    c.wait_master(&all, "bob");
    assert_eq!(alice.role().as_deref(), Some("slave"));
    assert!(held(&alice).iter().any(|h| h.contains("step-down")));
    // Still counted: the quorum stays three members.
    assert_eq!(bob.status()["quorum"]["counted"], 3);
    // Held for good: alice stays a slave (preemption would otherwise give her the role back).
    c.hold(
        "alice stays a slave while stepped down",
        Duration::from_secs(3),
        || alice.role().as_deref() == Some("slave"),
    );
    assert_eq!(ctl_ok(&alice, &["resume"]).trim(), "eligible");
    c.wait_master(&all, "alice");

    // A timed step-down runs out by itself.
    ctl_ok(&alice, &["step-down", "--for", "3s"]);
    c.wait_master(&all, "bob");
    c.wait_master(&all, "alice");
    assert!(held(&alice).is_empty());
}

#[test]
fn maintenance_keeps_a_node_from_mastership_until_it_is_turned_off() {
    let c = Cluster::new();
    let alice = c.start("alice", &[]);
    let bob = c.start("bob", &[]);
    let peter = c.start("peter", &[]);
    let all = [&alice, &bob, &peter];
    c.wait_master(&all, "alice");
    ctl_ok(&bob, &["maintenance", "on"]);
    ctl_ok(&alice, &["maintenance", "on"]);
    // bob is held too: peter is the only eligible node.
    c.wait_master(&all, "peter");
    let text = ctl_ok(&alice, &["status"]);
    assert!(text.contains("held     maintenance"), "{text}");
    ctl_ok(&alice, &["maintenance", "off"]);
    c.wait_master(&all, "alice");
}

#[test]
fn bad_step_down_and_maintenance_arguments_are_usage_errors() {
    let c = Cluster::new();
    let alice = c.start("alice", &[]);
    let out = alice.ctl(&["maintenance", "maybe"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = alice.ctl(&["step-down", "--for", "soon"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn a_master_whose_check_fails_hands_over_and_takes_over_again_after_rise_successes() {
    let c = Cluster::new();
    let flag = c.dir().join("alice-healthy");
    std::fs::write(&flag, "").expect("flag");
    let check = format!("echo checking; test -e {}", flag.display());
    let hook = c.hook("alice");
    let alice = c.start(
        "alice",
        &[
            "--check",
            &check,
            "--check-interval",
            "200ms",
            "--check-timeout",
            "1s",
            "-s",
            hook.arg(),
        ],
    );
    let bob = c.start("bob", &[]);
    let peter = c.start("peter", &[]);
    let all = [&alice, &bob, &peter];
    c.wait_master(&all, "alice");
    let s = alice.status();
    assert_eq!(s["checks"][0]["passing"], true, "{s}");
    assert_eq!(s["checks"][0]["command"], check.as_str());

    std::fs::remove_file(&flag).expect("rm flag");
    c.wait_master(&all, "bob");
    let s = alice.status();
    assert_eq!(s["checks"][0]["passing"], false, "{s}");
    assert_eq!(s["checks"][0]["exit_code"], 1, "{s}");
    assert_eq!(s["checks"][0]["output"], "checking", "{s}");
    assert!(held(&alice).iter().any(|h| h.contains("failing")), "{s}");
    c.wait_for("alice's slave hook ran", DEADLINE, || {
        hook.runs().iter().any(|r| r.role == "slave")
    });
    let text = ctl_ok(&alice, &["status"]);
    assert!(text.contains("check    failing exit 1"), "{text}");

    std::fs::write(&flag, "").expect("flag");
    c.wait_master(&all, "alice");
}

#[test]
fn a_hanging_check_is_killed_at_its_timeout_and_heartbeats_go_on() {
    let c = Cluster::new();
    let alice = c.start(
        "alice",
        &[
            "--check",
            "sleep 30",
            "--check-interval",
            "200ms",
            "--check-timeout",
            "300ms",
            "--check-fall",
            "1",
        ],
    );
    let bob = c.start("bob", &[]);
    let peter = c.start("peter", &[]);
    let all = [&alice, &bob, &peter];
    c.wait_master(&all, "bob");
    let s = alice.status();
    assert_eq!(s["checks"][0]["passing"], false, "{s}");
    assert!(
        s["checks"][0]["output"]
            .as_str()
            .is_some_and(|o| o.contains("timed out")),
        "{s}"
    );
    // alice stays alive and counted throughout.
    c.hold("alice stays alive on bob", Duration::from_secs(2), || {
        bob.member_state("alice").as_deref() == Some("alive")
    });
}

/// A hook that appends `ROLE|REASON|MASTER_ADDR|MASTER_PORT|MEMBERS` lines to `out`.
fn env_hook(c: &Cluster, label: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let script = c.dir().join(format!("{label}.sh"));
    let out = c.dir().join(format!("{label}.out"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$QUORUM_ROLE|$QUORUM_REASON|$QUORUM_MASTER_ADDR|$QUORUM_MASTER_PORT|$QUORUM_MEMBERS\" >> {}\n",
            out.display()
        ),
    )
    .expect("write hook");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (script, out)
}

#[test]
fn hooks_see_where_the_master_is_who_counts_and_why_the_role_changed() {
    let c = Cluster::new();
    let (script, out) = env_hook(&c, "alice-env");
    let s = script.to_str().expect("utf-8 path");
    let alice = c.start("alice", &["-m", s, "-s", s]);
    let bob = c.start("bob", &[]);
    let peter = c.start("peter", &[]);
    let all = [&alice, &bob, &peter];
    c.wait_master(&all, "alice");
    ctl_ok(&alice, &["maintenance", "on"]);
    c.wait_master(&all, "bob");
    let bob_port = bob.port().to_string();
    // Stepping down, alice knows no master for a moment (no overlap): the slave hook says
    // why, and the master-change run that follows says where bob is.
    let prefix = "slave|master changed|127.";
    c.wait_for("alice's hooks ran for the hand-over", DEADLINE, || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with(prefix))
    });
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        text.lines().any(|l| l.starts_with("slave|maintenance|")),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .expect("master-change line");
    let f: Vec<&str> = line.split('|').collect();
    assert_eq!(f[3], bob_port, "{text}");
    let mut members: Vec<&str> = f[4].split(' ').collect();
    members.sort();
    assert_eq!(members, ["alice", "bob", "peter"], "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("master|elected|")),
        "{text}"
    );
}

#[test]
fn sighup_reloads_checks_refuses_a_bad_file_and_names_what_needs_a_restart() {
    let c = Cluster::new();
    let config = c.dir().join("alice.toml");
    // Written whole, then renamed in place: a reload never reads a half-written file.
    let write = |text: &str| {
        let tmp = config.with_extension("tmp");
        std::fs::write(&tmp, text).expect("write config");
        std::fs::rename(&tmp, &config).expect("rename config");
    };
    write("check = [\"true\"]\ncheck_interval = \"200ms\"\ncheck_fall = 1\ncheck_rise = 1\n");
    let cfg = config.to_str().expect("utf-8 path");
    let alice = c.start("alice", &["--config", cfg]);
    let bob = c.start("bob", &[]);
    let peter = c.start("peter", &[]);
    let all = [&alice, &bob, &peter];
    c.wait_master(&all, "alice");

    // A failing check arrives by reload: alice hands over and keeps running.
    write("check = [\"false\"]\ncheck_interval = \"200ms\"\ncheck_fall = 1\ncheck_rise = 1\n");
    hup(&alice);
    c.wait_master(&all, "bob");
    assert!(alice.role().is_some(), "SIGHUP must not end the daemon");
    assert_eq!(alice.status()["checks"][0]["command"], "false");

    // A bad file changes nothing.
    write("check = [\n");
    hup(&alice);
    c.wait_for("the bad file is refused", DEADLINE, || {
        alice.log().contains("reload refused")
    });
    assert_eq!(alice.status()["checks"][0]["command"], "false");

    // Checks pass again; the cluster name would need a restart and stays.
    write(
        "check = [\"true\"]\ncheck_interval = \"200ms\"\ncheck_fall = 1\ncheck_rise = 1\n\
         cluster = \"elsewhere\"\n",
    );
    hup(&alice);
    c.wait_for(
        "the cluster change is named as needing a restart",
        DEADLINE,
        || alice.log().contains("needs a restart") && alice.log().contains("cluster"),
    );
    c.wait_master(&all, "alice");
    assert_ne!(alice.status()["cluster"], "elsewhere");
    assert!(alice.role().is_some());
}

fn hup(node: &Node) {
    let pid = libc::pid_t::try_from(node.pid()).expect("pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; the node is ours and running.
    let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
    assert_eq!(rc, 0, "kill -HUP {pid}");
}

#[test]
fn metrics_are_served_over_http_and_by_quorumctl() {
    let c = Cluster::new();
    let port = c.tcp_port();
    let listen = format!("127.0.0.1:{port}");
    let alice = c.start("alice", &["--metrics-listen", &listen]);
    let bob = c.start("bob", &[]);
    c.wait_master(&[&alice, &bob], "alice");
    let url = format!("http://{listen}/metrics");
    let scrape = || {
        std::process::Command::new("curl")
            .args(["-sf", "--max-time", "5", &url])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    c.wait_for("the scrape shows alice as master", DEADLINE, || {
        scrape().contains("quorumd_role{role=\"master\"} 1")
    });
    // A garbage datagram on the discovery port is refused and counted.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    udp.set_broadcast(true).expect("SO_BROADCAST");
    udp.send_to(
        b"not a quorumd datagram",
        ("127.255.255.255", c.broadcast_port()),
    )
    .expect("send junk");
    c.wait_for("the junk is counted", DEADLINE, || {
        scrape().contains("quorumd_frames_refused_total{reason=\"malformed\"}")
    });
    let text = scrape();
    for needle in [
        "quorumd_elections_total 1",
        "quorumd_epoch ",
        "quorumd_members{state=\"alive\",counted=\"true\"} 2",
        "quorumd_lease_margin_milliseconds ",
        "quorumd_frames_total{direction=\"in\",transport=\"link\"} ",
        "quorumd_frames_total{direction=\"out\",transport=\"link\"} ",
        "quorumd_frames_total{direction=\"in\",transport=\"datagram\"} ",
        "quorumd_bytes_total{direction=\"in\",transport=\"link\"} ",
        "quorumd_bytes_total{direction=\"out\",transport=\"datagram\"} ",
        "# TYPE quorumd_frames_dropped counter",
        "# TYPE quorumd_frames_refused counter",
        "# EOF",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
    // Per-member traffic in status: totals and rates over the last second.
    c.wait_for("alice shows bob's traffic rates", DEADLINE, || {
        alice.status()["security"]["traffic"]
            .as_array()
            .and_then(|a| a.iter().find(|t| t["name"] == "bob").cloned())
            .is_some_and(|t| {
                t["messages_in_per_s"].as_u64().unwrap_or(0) > 0
                    && t["bytes_out_per_s"].as_u64().unwrap_or(0) > 0
                    && t["messages_in"].as_u64().unwrap_or(0) > 0
            })
    });
    let human = ctl_ok(&alice, &["status"]);
    assert!(human.contains("traffic  bob: in "), "{human}");
    let ctl = ctl_ok(&alice, &["metrics"]);
    assert!(ctl.contains("quorumd_role{role=\"master\"} 1"), "{ctl}");
    // Anything but /metrics is a 404.
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{listen}/"),
        ])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
}

#[test]
fn a_failing_check_is_the_reason_in_hooks_and_follow_and_with_no_preempt_the_node_waits() {
    let c = Cluster::new();
    let flag = c.dir().join("alice-healthy");
    std::fs::write(&flag, "").expect("flag");
    let check = format!("test -e {}", flag.display());
    let (script, out) = env_hook(&c, "alice-check");
    let s = script.to_str().expect("utf-8 path");
    let fast = [
        "--check-interval",
        "200ms",
        "--check-rise",
        "1",
        "--check-fall",
        "1",
        "--no-preempt",
    ];
    let mut args = vec!["--check", check.as_str(), "-m", s, "-s", s];
    args.extend(fast);
    let alice = c.start("alice", &args);
    let bob = c.start("bob", &["--no-preempt"]);
    let peter = c.start("peter", &["--no-preempt"]);
    let all = [&alice, &bob, &peter];
    c.wait_master(&all, "alice");
    let epoch = alice.status()["epoch"].as_u64().expect("epoch");
    let mut follow = alice.ctl_spawn(&["--json", "follow"]);
    let lines = follow.stdout_lines();
    let parse =
        |line: &str| -> serde_json::Value { serde_json::from_str(line).expect("JSON event") };
    // The follower is subscribed once its snapshot came: only then may the check fail
    // (quorumctl starting slowly on a busy machine missed the role event otherwise).
    lines
        .find_before(std::time::Instant::now() + DEADLINE, |line| {
            parse(line)["type"] == "snapshot"
        })
        .expect("the follow snapshot");

    std::fs::remove_file(&flag).expect("rm flag");
    c.wait_master(&all, "bob");
    assert!(bob.status()["epoch"].as_u64().expect("epoch") > epoch);
    let reason = format!("check {check} failing");
    let line = lines
        .find_before(std::time::Instant::now() + DEADLINE, |line| {
            let ev = parse(line);
            ev["type"] == "role" && ev["role"] == "slave"
        })
        .expect("a role event to slave in follow");
    let event = parse(&line);
    assert_eq!(event["reason"], reason.as_str(), "{event}");
    c.wait_for("the slave hook saw the reason", DEADLINE, || {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with(&format!("slave|{reason}|")))
    });

    // Healthy again, but --no-preempt: bob keeps the role.
    std::fs::write(&flag, "").expect("flag");
    c.wait_for("alice's check passes", DEADLINE, || held(&alice).is_empty());
    c.hold("bob stays master", Duration::from_secs(2), || {
        bob.role().as_deref() == Some("master") && alice.role().as_deref() == Some("slave")
    });
}
