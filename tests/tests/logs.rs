//! Logs for operators, read from real daemons: `--log-format json`, `--log-level`, member
//! names and plain words (no Rust `Debug` text), hook stderr at INFO, a dispatch that is not a
//! crash, the remembered members at start-up, and why a node is inquorate.

use quorum_tests::{Cluster, DEADLINE, Node};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;

fn json_lines(node: &Node) -> Vec<Value> {
    node.log()
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l:?}\n{}", node.log()))
        })
        .collect()
}

#[test]
fn json_format_gives_one_object_per_line_with_level_message_and_fields() {
    let c = Cluster::new();
    let alice = c.start("alice", &["--log-format", "json"]);
    let bob = c.start("bob", &["--log-format=json"]);
    c.wait_master(&[&alice, &bob], "alice");
    c.wait_for("alice logs her mastership", DEADLINE, || {
        alice.log().contains("\"role changed\"")
    });
    let lines = json_lines(&alice);
    for l in &lines {
        assert!(l["timestamp"].is_string(), "{l}");
        assert!(l["level"].is_string(), "{l}");
        assert!(l["message"].is_string(), "{l}");
    }
    let role = lines
        .iter()
        .find(|l| l["message"] == "role changed" && l["role"] == "master")
        .unwrap_or_else(|| panic!("no role change to master in {lines:?}"));
    assert_eq!(role["level"], "INFO");
    assert_eq!(role["master"], "alice");
    let member = lines
        .iter()
        .find(|l| l["message"] == "membership")
        .expect("a membership line");
    assert_eq!(member["member"], "bob");
    assert_eq!(member["change"], "joined");
    // A bad format is a usage error, named.
    let out = c
        .command("eve", c.tcp_port(), &["--log-format", "xml"])
        .output()
        .expect("run quorumd");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log-format"));
}

#[test]
fn log_level_from_flag_environment_and_config_file() {
    let c = Cluster::new();
    // warn: no INFO line at all.
    let quiet = c.start("quiet", &["--log-level", "warn"]);
    // debug from the environment.
    let port = c.tcp_port();
    let mut cmd = c.command("loud", port, &[]);
    cmd.env("QUORUMD_LOG_LEVEL", "debug").env_remove("RUST_LOG");
    let loud = c.wait_up(c.spawn_command("loud", port, c.socket_path("loud"), cmd));
    c.wait_master(&[&quiet, &loud], "quiet");
    // warn from the file, which also asks for json.
    let cfg = c.dir().join("terse.toml");
    std::fs::write(&cfg, "log_level = \"warn\"\nlog_format = \"json\"\n").expect("config");
    let terse = c.start("terse", &["--config", cfg.to_str().expect("utf-8")]);
    c.wait_for("terse joins", DEADLINE, || {
        terse.role().as_deref() == Some("slave")
    });
    c.wait_for("loud logs debug lines", DEADLINE, || {
        loud.log().contains(" DEBUG ")
    });
    assert!(!quiet.log().contains(" INFO "), "{}", quiet.log());
    assert!(
        quiet.log().contains("NO CLUSTER KEY"),
        "the warning stays: {}",
        quiet.log()
    );
    let terse_lines = json_lines(&terse);
    assert!(!terse_lines.is_empty(), "the key warning is logged");
    assert!(
        terse_lines
            .iter()
            .all(|l| l["level"] == "WARN" || l["level"] == "ERROR"),
        "{terse_lines:?}"
    );
    let out = c
        .command("eve", c.tcp_port(), &["--log-level", "loud=what=no"])
        .output()
        .expect("run quorumd");
    assert_eq!(out.status.code(), Some(2), "a bad level is a usage error");
}

/// Every line at INFO or above of `log`: readable words, member names, no Rust Debug text.
fn assert_plain(who: &str, log: &str) {
    for line in log
        .lines()
        .filter(|l| !l.contains(" DEBUG ") && !l.contains(" TRACE "))
    {
        for bad in ["{ ", "Some(", "None", "Renamed", "peer=", " id="] {
            assert!(
                !line.contains(bad),
                "{who}'s log has {bad:?} in: {line}\n{log}"
            );
        }
    }
}

#[test]
fn member_changes_are_plain_words_with_names_and_a_dispatch_is_not_a_crash() {
    let c = Cluster::new();
    let alice = c.start("alice", &[]);
    let bob = c.start("bob", &[]);
    let peter = c.start("peter", &[]);
    c.wait_master(&[&alice, &bob, &peter], "alice");
    let out = bob.ctl(&["rename", "robert"]);
    assert!(out.status.success(), "{out:?}");
    c.wait_for("alice logs the rename", DEADLINE, || {
        alice.log().contains("change=renamed from bob")
    });
    let out = peter.ctl(&["dispatch"]);
    assert!(out.status.success(), "{out:?}");
    c.wait_for("alice logs the dispatch", DEADLINE, || {
        alice.log().contains("member=peter change=left gracefully")
    });
    // The dispatched node's port closes after it left: give the crash probe time to run.
    c.hold(
        "no crash is logged for peter",
        std::time::Duration::from_secs(2),
        || !alice.log().contains("crash"),
    );
    assert_plain("alice", &alice.log());
    assert_plain("bob", &bob.log());
}

#[test]
fn hook_stderr_is_logged_at_info_with_the_hooks_name() {
    let c = Cluster::new();
    let script = c.dir().join("noisy.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"moving the VIP\" >&2\n").expect("hook");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let s = script.to_str().expect("utf-8");
    let alice = c.start("alice", &["-m", s]);
    c.wait_for("the hook's stderr is logged", DEADLINE, || {
        alice.log().contains("moving the VIP")
    });
    let log = alice.log();
    let line = log
        .lines()
        .find(|l| l.contains("moving the VIP"))
        .expect("the line");
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("hook=\"master\""), "{line}");
    assert!(line.contains("noisy.sh"), "{line}");
}

#[test]
fn start_up_names_the_remembered_members_and_inquorate_says_why() {
    let c = Cluster::new();
    let mut alice = c.start("alice", &[]);
    let mut bob = c.start("bob", &[]);
    let peter = c.start("peter", &[]);
    c.wait_master(&[&alice, &bob, &peter], "alice");
    assert!(
        alice.log().contains("remembered=none"),
        "a first start remembers nobody: {}",
        alice.log()
    );
    // Restarted, alice names the members her state file remembers.
    alice.kill(libc::SIGKILL);
    alice.wait_exit(DEADLINE);
    let alice = c.start("alice", &[]);
    let line = alice
        .log()
        .lines()
        .find(|l| l.contains("quorumd starting"))
        .map(str::to_owned)
        .expect("a start-up line");
    assert!(
        line.contains("bob (alive)") && line.contains("peter (alive)"),
        "{line}"
    );
    c.wait_for("alice is back", DEADLINE, || {
        alice.role().as_deref() == Some("slave")
    });
    // bob and peter freeze: whoever is left cannot reach a majority and says whom it misses.
    bob.kill(libc::SIGSTOP);
    let mut peter = peter;
    peter.kill(libc::SIGSTOP);
    c.wait_for("alice is inquorate", DEADLINE, || {
        alice.role().as_deref() == Some("inquorate")
    });
    c.wait_for("alice says why", DEADLINE, || {
        alice
            .log()
            .lines()
            .any(|l| l.contains("inquorate") && l.contains("cannot reach: bob, peter"))
    });
    let log = alice.log();
    let why = log
        .lines()
        .find(|l| l.contains("cannot reach: bob, peter"))
        .expect("the reason");
    assert!(why.contains("counts 3 member(s)"), "{why}");
    assert!(why.contains("reaches 1 both ways: alice"), "{why}");
    assert!(why.contains("a majority needs 2 votes"), "{why}");
    bob.kill(libc::SIGCONT);
    peter.kill(libc::SIGCONT);
}

/// Members going `lost` and coming back over and over (here one, its process frozen past the
/// silence window and thawed again and again) are logged in full only for the first 8 such
/// changes of a 10 s window; the rest are told in one line when the window ends, with how
/// many and who is still lost. A busy cluster flooded its logs with these (250 daemons:
/// 5,000 lines each in 50 s).
#[test]
fn members_going_lost_and_back_are_logged_a_few_times_then_summed_up() {
    let c = Cluster::new();
    let alice = c.start("alice", &["--log-format", "json"]);
    let mut bob = c.start("bob", &[]);
    c.wait_master(&[&alice, &bob], "alice");
    let flapping = |l: &Value| {
        l["message"] == "membership"
            && l["member"] == "bob"
            && (l["change"] == "lost (silent, still counted)" || l["change"] == "returned")
    };
    let summary = |l: &Value| l["quieted"].is_u64();
    for round in 0..7 {
        bob.kill(libc::SIGSTOP);
        c.wait_for(&format!("bob lost at alice ({round})"), DEADLINE, || {
            alice.member_state("bob").as_deref() == Some("lost")
        });
        bob.kill(libc::SIGCONT);
        c.wait_for(&format!("bob back at alice ({round})"), DEADLINE, || {
            alice.member_state("bob").as_deref() == Some("alive")
        });
    }
    // Fourteen changes at least; the window is 10 s from the first.
    c.wait_for("the flapping summed up", DEADLINE * 3, || {
        json_lines(&alice).iter().any(summary)
    });
    let lines: Vec<Value> = json_lines(&alice)
        .into_iter()
        .filter(|l| flapping(l) || summary(l))
        .collect();
    let first = lines.iter().position(summary).expect("a summary line");
    assert_eq!(
        first, 8,
        "the first 8 changes of the window in full, then the summary: {lines:#?}"
    );
    let told = &lines[first];
    assert_eq!(told["level"], "INFO", "{told}");
    assert_eq!(told["members"], 1, "{told}");
    // bob was thawed last: nobody is still lost.
    assert_eq!(told["still_lost"], "none", "{told}");
    // Every change was counted: the lines in full and the quieted ones make at least 14.
    let all = lines.iter().filter(|l| flapping(l)).count() as u64
        + lines
            .iter()
            .filter_map(|l| l["quieted"].as_u64())
            .sum::<u64>();
    assert!(all >= 14, "{all} changes told: {lines:#?}");
}
