//! Issue "quorumctl": every command of the real CLI against live daemons, its exit codes,
//! permissions, and the control socket's resistance to malformed input.

use quorum_tests::{Cluster, DEADLINE, Node, skip_unless_root};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Output;
use std::time::{Duration, Instant};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Three nodes alpha (master), beta, gamma, all agreeing.
fn three(c: &Cluster) -> (Node, Node, Node) {
    let a = c.start("alpha", &[]);
    let b = c.start("beta", &[]);
    let g = c.start("gamma", &[]);
    c.wait_master(&[&a, &b, &g], "alpha");
    (a, b, g)
}

#[test]
fn each_command_works_against_a_live_cluster() {
    let c = Cluster::new();
    let (alpha, beta, mut gamma) = three(&c);

    // status, human and JSON
    let out = alpha.ctl(&["status"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    for word in [
        "node", "alpha", "role", "master", "epoch", "quorum", "beta", "gamma",
    ] {
        assert!(text.contains(word), "status lacks {word:?}:\n{text}");
    }
    let out = beta.ctl(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let s: Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(s["name"], "beta");
    assert_eq!(s["master"], "alpha");

    // role, one word
    for (node, role) in [(&alpha, "master"), (&beta, "slave"), (&gamma, "slave")] {
        let out = node.ctl(&["role"]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(stdout(&out), format!("{role}\n"), "{}", node.name());
    }
    let out = alpha.ctl(&["--json", "role"]);
    let r: Value = serde_json::from_slice(&out.stdout).expect("role --json is JSON");
    assert_eq!(r["role"], "master");

    // is-master: exit 0/1, no output
    let out = alpha.ctl(&["is-master"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stdout.is_empty(),
        "is-master printed {:?}",
        stdout(&out)
    );
    let out = beta.ctl(&["is-master"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        out.stdout.is_empty(),
        "is-master printed {:?}",
        stdout(&out)
    );

    // members, human and JSON
    let out = gamma.ctl(&["members"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    for name in ["alpha", "beta", "gamma"] {
        assert!(text.contains(name), "members lacks {name}:\n{text}");
    }
    let out = gamma.ctl(&["members", "--json"]);
    let ms: Value = serde_json::from_slice(&out.stdout).expect("members --json is JSON");
    assert_eq!(ms.as_array().map(Vec::len), Some(3), "{ms}");

    // rename: peers show the new name, the old one disappears
    let out = gamma.ctl(&["rename", "carol"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}\n{}", c.logs());
    assert!(stdout(&out).contains("carol"), "{}", stdout(&out));
    assert_eq!(gamma.status()["name"], "carol");
    c.wait_for("alpha and beta show carol and no gamma", DEADLINE, || {
        [&alpha, &beta].iter().all(|n| {
            n.member("carol").is_some_and(|m| m["state"] == "alive")
                && n.members_named("gamma").is_empty()
        })
    });

    // forget: refused for an alive member, done for a killed one
    let out = alpha.ctl(&["forget", "beta"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(stderr(&out).contains("conflict"), "{}", stderr(&out));
    assert_eq!(alpha.member_state("beta").as_deref(), Some("alive"));

    gamma.kill(libc::SIGKILL);
    gamma.wait_exit(DEADLINE);
    c.wait_for("alpha shows carol lost", DEADLINE, || {
        alpha.member_state("carol").as_deref() == Some("lost")
    });
    // A crashed member's seat stays for a lease and a drift (a vote it gave just before may
    // still back a master elsewhere): forget says so and when to retry, then succeeds.
    c.wait_for("forget carol succeeds", DEADLINE, || {
        let out = alpha.ctl(&["forget", "carol"]);
        if out.status.code() != Some(0) {
            assert_eq!(out.status.code(), Some(4), "{out:?}\n{}", c.logs());
            assert!(stderr(&out).contains("retry in"), "{}", stderr(&out));
            return false;
        }
        true
    });
    c.wait_for("carol no longer counts on alpha", DEADLINE, || {
        alpha.status_json().is_some_and(|s| {
            s["quorum"]["counted"] == 2
                && s["members"].as_array().is_some_and(|ms| {
                    ms.iter()
                        .all(|m| m["name"] != "carol" || m["counted"] == false)
                })
        })
    });

    // wait: returns 0 at once when the role is already there
    let out = alpha.ctl(&["wait", "master", "--timeout", "10s"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(alpha.role().as_deref(), Some("master"));
}

#[test]
fn status_json_has_every_documented_field() {
    let c = Cluster::new();
    let alpha = c.start("alpha", &["--cluster", "fields"]);
    let beta = c.start("beta", &["--cluster", "fields"]);
    c.wait_master(&[&alpha, &beta], "alpha");
    // Each node's table shows the others' roles as of their latest beat: wait until alpha's
    // table has caught up with beta becoming slave.
    c.wait_for(
        "alpha counts two alive members and sees beta as slave",
        DEADLINE,
        || {
            alpha.status_json().is_some_and(|s| {
                s["quorum"]["counted"] == 2
                    && s["quorum"]["votes"] == 2
                    && s["members"].as_array().is_some_and(|ms| {
                        ms.iter()
                            .any(|m| m["name"] == "beta" && m["role"] == "slave")
                    })
            })
        },
    );
    let s = alpha.status();
    let obj = s.as_object().expect("status is an object");
    for key in [
        "name",
        "role",
        "epoch",
        "master",
        "quorum",
        "members",
        "version",
        "protocol_version",
        "cluster",
        "strategy",
        "witness",
    ] {
        assert!(obj.contains_key(key), "status lacks {key}: {s}");
    }
    assert_eq!(s["name"], "alpha");
    assert_eq!(s["role"], "master");
    assert!(s["epoch"].as_u64().is_some_and(|e| e >= 1), "epoch {s}");
    assert_eq!(s["master"], "alpha");
    assert_eq!(s["quorum"]["votes"].as_u64(), Some(2));
    assert_eq!(s["quorum"]["needed"].as_u64(), Some(2));
    assert_eq!(s["quorum"]["counted"].as_u64(), Some(2));
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        s["protocol_version"].as_u64(),
        Some(u64::from(common::control::PROTOCOL_VERSION))
    );
    assert_eq!(s["cluster"], "fields");
    assert_eq!(s["strategy"], "age");
    assert_eq!(s["witness"], false);

    let members = s["members"].as_array().expect("members is an array");
    assert_eq!(members.len(), 2, "{s}");
    for m in members {
        let name = m["name"].as_str().expect("member name is a string");
        let me = name == "alpha";
        let node = if me { &alpha } else { &beta };
        assert_eq!(m["address"], "127.0.0.1", "{m}");
        assert_eq!(m["port"].as_u64(), Some(u64::from(node.port())), "{m}");
        assert_eq!(m["state"], "alive", "{m}");
        assert_eq!(m["role"], if me { "master" } else { "slave" }, "{m}");
        assert_eq!(m["counted"], true, "{m}");
        assert_eq!(m["witness"], false, "{m}");
        assert_eq!(m["self"], me, "{m}");
        // Two members beating each other every heartbeat reach each other both ways.
        assert_eq!(m["reachable"], true, "{m}");
        if me {
            assert!(m["last_heard_ms"].is_null(), "{m}");
        } else {
            assert!(m["last_heard_ms"].is_u64(), "{m}");
        }
    }
    // The other side's view agrees on the master and marks its own entry.
    let b = beta.status();
    assert_eq!(b["role"], "slave");
    assert_eq!(b["master"], "alpha");
    assert_eq!(b["epoch"], s["epoch"]);
}

#[test]
fn follow_sees_the_role_change_caused_by_killing_the_master() {
    let c = Cluster::new();
    let (mut alpha, beta, gamma) = three(&c);
    let mut follow = gamma.ctl_spawn(&["--json", "follow"]);
    let lines = follow.stdout_lines();
    let deadline = Instant::now() + DEADLINE;
    let first = lines
        .next_before(deadline)
        .unwrap_or_else(|| panic!("follow printed nothing\n{}", c.logs()));
    let snap: Value = serde_json::from_str(&first).expect("the first line is JSON");
    assert_eq!(snap["type"], "snapshot", "{first}");
    assert_eq!(snap["name"], "gamma", "{first}");
    assert_eq!(snap["master"], "alpha", "{first}");

    alpha.kill(libc::SIGKILL);
    alpha.wait_exit(DEADLINE);
    let mut seen = Vec::new();
    let mut crashed = false;
    let mut event = None;
    // Both a role/master event naming beta and alpha's crash, in either order.
    let both = lines.find_before(deadline, |line| {
        let ev: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("follow line is not JSON ({e}): {line}"));
        seen.push(line.to_owned());
        if (ev["type"] == "role" || ev["type"] == "master") && ev["master"] == "beta" {
            event.get_or_insert(ev);
        } else if ev["type"] == "member" && ev["name"] == "alpha" && ev["change"] != "lost" {
            // The documented flat shape, exactly.
            assert_eq!(
                line.trim(),
                r#"{"type":"member","name":"alpha","change":"crashed"}"#
            );
            crashed = true;
        }
        crashed && event.is_some()
    });
    if both.is_none() {
        panic!(
            "no role/master event naming beta or no crash of alpha before the deadline; \
             got {seen:#?}\n{}",
            c.logs()
        );
    }
    let event = event.expect("found with an event");
    assert!(event["epoch"].as_u64().is_some_and(|e| e > 1), "{event}");
    // gamma stays a slave: it sees a master change, or a role event still saying slave.
    if event["type"] == "role" {
        assert_eq!(event["role"], "slave", "{event}");
    }
    assert_eq!(beta.role().as_deref(), Some("master"));
}

#[test]
fn wait_master_returns_when_the_master_dies() {
    let c = Cluster::new();
    let (mut alpha, beta, _gamma) = three(&c);
    let mut wait = beta.ctl_spawn(&["wait", "master", "--timeout", "20s"]);
    assert_eq!(beta.role().as_deref(), Some("slave"));
    alpha.kill(libc::SIGKILL);
    alpha.wait_exit(DEADLINE);
    let status = wait.wait_timeout(DEADLINE);
    let status = status.unwrap_or_else(|| panic!("wait master still running\n{}", c.logs()));
    assert_eq!(
        status.code(),
        Some(0),
        "wait master: {}\n{}",
        wait.stderr_text(),
        c.logs()
    );
    assert_eq!(beta.role().as_deref(), Some("master"));
}

#[test]
fn exit_codes_for_no_daemon_usage_and_refusal() {
    let c = Cluster::new();
    let alpha = c.start("alpha", &[]);
    let beta = c.start("beta", &[]);
    c.wait_master(&[&alpha, &beta], "alpha");

    // 3: nobody listens on the socket
    let missing = c.dir().join("nobody-here.sock");
    let missing = missing.to_str().expect("UTF-8 temp path");
    let out = c.quorumctl(&["--socket", missing, "role"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(stderr(&out).contains(missing), "{}", stderr(&out));

    // 2: usage errors
    let out = alpha.ctl(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = alpha.ctl(&["wait", "emperor"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = alpha.ctl(&["wait", "master", "--timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    // 4: refusals, with the kind on stderr
    let out = alpha.ctl(&["forget", "beta"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(stderr(&out).contains("conflict"), "{}", stderr(&out));
    let out = alpha.ctl(&["forget", "nobody"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    let out = alpha.ctl(&["rename", "beta"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(stderr(&out).contains("conflict"), "{}", stderr(&out));
    // A name breaking the rule of common::types::check_name is a usage error: quorumctl
    // checks it with the daemon's own rule before asking.
    let out = alpha.ctl(&["rename", "two words"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("whitespace"), "{}", stderr(&out));
    assert_eq!(
        alpha.status()["name"],
        "alpha",
        "a refused rename changed the name"
    );

    // 1: negative answers
    let out = beta.ctl(&["is-master"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = beta.ctl(&["wait", "master", "--timeout", "300ms"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));

    // 0
    let out = alpha.ctl(&["is-master"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn a_non_root_user_may_read_status_but_not_dispatch() {
    if skip_unless_root("a_non_root_user_may_read_status_but_not_dispatch") {
        return;
    }
    let c = Cluster::new();
    let mut alpha = c.start("alpha", &[]);
    c.wait_for("alpha is master", DEADLINE, || {
        alpha.role().as_deref() == Some("master")
    });
    // nobody must be able to reach the socket through the temp dir.
    std::fs::set_permissions(c.dir(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod the temp dir");
    std::fs::set_permissions(alpha.socket(), std::fs::Permissions::from_mode(0o666))
        .expect("chmod the socket");
    // The checkout may sit in a directory "nobody" cannot enter: run a copy from the temp dir.
    let copy = testkit::reachable_copy(&quorum_tests::quorumctl_bin(), c.dir());
    let as_nobody = |args: &[&str]| {
        let mut cmd = std::process::Command::new(&copy);
        cmd.arg("--socket")
            .arg(alpha.socket())
            .args(args)
            .env_remove("QUORUMD_SOCKET")
            .uid(65534)
            .gid(65534);
        cmd.output().expect("running quorumctl as nobody")
    };

    let out = as_nobody(&["--json", "status"]);
    assert_eq!(out.status.code(), Some(0), "status as nobody: {out:?}");
    let s: Value = serde_json::from_slice(&out.stdout).expect("status is JSON");
    assert_eq!(s["name"], "alpha");

    let out = as_nobody(&["dispatch"]);
    assert_eq!(out.status.code(), Some(4), "dispatch as nobody: {out:?}");
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );
    let out = as_nobody(&["rename", "mallory"]);
    assert_eq!(out.status.code(), Some(4), "rename as nobody: {out:?}");
    // step-down, resume and maintenance need the same rights as dispatch; metrics is a read.
    for args in [
        &["step-down"][..],
        &["step-down", "--for", "1m"],
        &["resume"],
        &["maintenance", "on"],
        &["maintenance", "off"],
    ] {
        let out = as_nobody(args);
        assert_eq!(out.status.code(), Some(4), "{args:?} as nobody: {out:?}");
        assert!(
            stderr(&out).contains("permission denied"),
            "{}",
            stderr(&out)
        );
    }
    let out = as_nobody(&["metrics"]);
    assert_eq!(out.status.code(), Some(0), "metrics as nobody: {out:?}");
    assert!(alpha.status()["held"].is_null(), "nobody held alpha back");

    // Nothing changed: still running, same name, still master.
    assert!(alpha.try_exit().is_none(), "alpha exited\n{}", c.logs());
    let s = alpha.status();
    assert_eq!(s["name"], "alpha");
    assert_eq!(s["role"], "master");
}

/// Sends `bytes` on a fresh connection, then reads what comes back (until EOF, a newline, or
/// a 5 s timeout).
fn exchange(socket: &std::path::Path, bytes: &[u8], close_write: bool) -> String {
    let mut conn = UnixStream::connect(socket).expect("connecting to the control socket");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    conn.set_write_timeout(Some(Duration::from_secs(5)))
        .expect("write timeout");
    // The daemon may hang up in the middle of a huge line: a write error is fine.
    let _ = conn.write_all(bytes);
    if close_write {
        let _ = conn.shutdown(std::net::Shutdown::Write);
    }
    let mut reply = String::new();
    let mut reader = BufReader::new(conn.take(1 << 20));
    let _ = reader.read_line(&mut reply);
    reply
}

#[test]
fn malformed_input_does_not_disturb_a_running_daemon() {
    let c = Cluster::new();
    let alpha = c.start("alpha", &[]);
    let beta = c.start("beta", &[]);
    c.wait_master(&[&alpha, &beta], "alpha");
    let epoch = alpha.status()["epoch"].clone();
    let sock = alpha.socket().to_path_buf();

    let still_fine = |what: &str| {
        let s = alpha
            .status_json()
            .unwrap_or_else(|| panic!("alpha stopped answering after {what}\n{}", c.logs()));
        assert_eq!(s["role"], "master", "after {what}");
        assert_eq!(s["epoch"], epoch, "after {what}");
        assert_eq!(beta.master().as_deref(), Some("alpha"), "after {what}");
    };

    let bad_request = |what: &str, reply: &str| {
        let v: Value = serde_json::from_str(reply)
            .unwrap_or_else(|e| panic!("reply to {what} is not JSON ({e}): {reply:?}"));
        assert_eq!(v["Err"]["kind"], "bad_request", "reply to {what}: {reply}");
    };

    let reply = exchange(&sock, b"hello\n", false);
    bad_request("garbage", &reply);
    still_fine("garbage");

    let reply = exchange(&sock, b"\xff\xfe\x00\x01 not utf-8\n", false);
    bad_request("non-UTF-8 bytes", &reply);
    still_fine("non-UTF-8 bytes");

    for (what, line) in [
        ("an unknown type", &b"{\"type\":\"self_destruct\"}\n"[..]),
        ("a missing field", b"{\"type\":\"rename\"}\n"),
        ("a wrong field type", b"{\"type\":\"forget\",\"name\":5}\n"),
        ("a JSON array", b"[1,2,3]\n"),
    ] {
        bad_request(what, &exchange(&sock, line, false));
        still_fine(what);
    }

    // A line far over the 64 KiB limit: an error (or a hang-up), never a crash.
    let huge = vec![b'x'; 1 << 20];
    let reply = exchange(&sock, &huge, false);
    if !reply.is_empty() {
        bad_request("a huge line", &reply);
    }
    still_fine("a huge line");

    // Half a request, then hang up.
    let reply = exchange(&sock, b"{\"type\":\"sta", true);
    assert!(
        reply.is_empty() || reply.contains("Err"),
        "half a line got {reply:?}"
    );
    still_fine("half a line");

    // Connect and leave at once, many times.
    for _ in 0..50 {
        drop(UnixStream::connect(&sock).expect("connecting"));
    }
    still_fine("empty connections");

    // A valid request still works on a raw connection.
    let reply = exchange(&sock, b"{\"type\":\"role\"}\n", false);
    let v: Value = serde_json::from_str(&reply).expect("role reply is JSON");
    assert_eq!(v["Ok"]["role"], "master", "{reply}");
}

#[test]
fn a_dispatched_member_is_reaped_from_the_table_after_reap_dispatched() {
    let c = Cluster::new();
    let reap = ["--reap-dispatched", "1s"];
    let a = c.start("alpha", &reap);
    let b = c.start("beta", &reap);
    let mut g = c.start("gamma", &reap);
    c.wait_master(&[&a, &b, &g], "alpha");
    let out = g.ctl(&["dispatch"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    g.wait_exit(DEADLINE);
    c.wait_for("alpha lists gamma as dispatched", DEADLINE, || {
        a.member_state("gamma").as_deref() == Some("dispatched")
    });
    c.wait_for("alpha reaps gamma", DEADLINE, || {
        a.status_json().is_some_and(|s| {
            s["members"]
                .as_array()
                .is_some_and(|m| m.len() == 2 && m.iter().all(|m| m["name"] != "gamma"))
        })
    });
    assert_eq!(a.role().as_deref(), Some("master"));
}

/// The daemon rebuilds its published status only on news (a role, master or member change)
/// and when a client asks: `status` must still show the traffic counters and `last heard` of
/// the moment of the request in an idle cluster, not those of the last change.
#[test]
fn status_shows_the_traffic_and_last_heard_of_the_request_in_an_idle_cluster() {
    let c = Cluster::new();
    let (_alpha, beta, _gamma) = three(&c);
    // (frames beta has received from alpha on their link, ms since beta last heard alpha);
    // None while the link is not counted yet (it may have been replaced since the start).
    let alpha_in = || -> (Option<u64>, Option<u64>, Value) {
        let out = beta.ctl(&["--json", "status"]);
        let s: Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
        let traffic = s["security"]["traffic"]
            .as_array()
            .and_then(|t| t.iter().find(|r| r["name"] == "alpha"))
            .and_then(|r| r["messages_in"].as_u64());
        let heard = s["members"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["name"] == "alpha"))
            .and_then(|m| m["last_heard_ms"].as_u64());
        (traffic, heard, s)
    };
    let deadline = Instant::now() + DEADLINE;
    let mut first = None;
    // A settled cluster: no news for the daemon to publish, but the master beats on.
    loop {
        let (frames, heard, s) = alpha_in();
        if let (Some(f), Some(h)) = (frames, heard) {
            // Fast profile: alpha beats beta every 20 ms; silent for 150 ms it is lost.
            match first {
                None => first = Some(f),
                Some(before) if f > before && h < 1000 => break,
                Some(_) => {}
            }
        }
        assert!(
            Instant::now() < deadline,
            "beta's status still says {frames:?} frames in from alpha (first {first:?}), last \
             heard {heard:?} ms ago: a snapshot of the last change, not of the request: {s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
