//! The hook runner with real scripts: which script runs, its environment, ordering, timeouts,
//! python scripts, validation, and that the caller never waits.

use common::types::Role;
use quorumd::hooks::{HookEvent, HookKind, HookRunner, HookScripts};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tempfile::TempDir;
use tokio::time::Instant;

/// Writes an executable `/bin/sh` script.
fn script(dir: &TempDir, name: &str, body: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// A script that appends one line with its name and the hook environment to `log`.
fn recorder(dir: &TempDir, name: &str) -> PathBuf {
    let log = dir.path().join("log");
    script(
        dir,
        name,
        &format!(
            "if read -r _; then stdin=data; else stdin=eof; fi\n\
             echo \"{name} role=$QUORUM_ROLE previous=$QUORUM_PREVIOUS_ROLE master=$QUORUM_MASTER \
             epoch=$QUORUM_EPOCH node=$QUORUM_NODE event=$QUORUM_EVENT stdin=$stdin \
             path=${{PATH:+set}}\" >> {}",
            log.display()
        ),
    )
}

fn log_lines(dir: &TempDir) -> Vec<String> {
    std::fs::read_to_string(dir.path().join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn event(role: Role, previous: Role, master: Option<&str>, epoch: u64) -> HookEvent {
    HookEvent {
        role,
        previous,
        master: master.map(str::to_string),
        epoch,
        node: "alice".into(),
        kind: HookKind::Role,
        master_until: None,
        context: Default::default(),
    }
}

fn scripts(dir: &TempDir, timeout: Duration) -> HookScripts {
    HookScripts {
        master: Some(recorder(dir, "master")),
        slave: Some(recorder(dir, "slave")),
        notify: Some(recorder(dir, "notify")),
        timeout,
    }
}

/// Polls `cond` until it holds or `secs` seconds pass.
async fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    testkit::wait_until_async(what, Duration::from_secs(secs), || cond().then_some(())).await;
}

#[tokio::test]
async fn master_script_runs_with_the_cluster_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = HookRunner::spawn(HookScripts {
        notify: None,
        ..scripts(&dir, Duration::from_secs(10))
    });
    runner.submit(event(Role::Master, Role::Slave, Some("alice"), 7));
    runner.drain().await;
    assert_eq!(
        log_lines(&dir),
        vec![
            "master role=master previous=slave master=alice epoch=7 node=alice event=role \
             stdin=eof path=set"
        ]
    );
}

#[tokio::test]
async fn a_hook_held_open_for_writing_a_moment_still_runs() {
    // A deploy tool replacing the script (or a fork that inherited its descriptor) keeps it
    // open for writing for a moment; exec answers "Text file busy" until it closes.
    let dir = tempfile::tempdir().expect("tempdir");
    let master = recorder(&dir, "master");
    let writer = std::fs::OpenOptions::new()
        .append(true)
        .open(&master)
        .expect("open the script for writing");
    let runner = HookRunner::spawn(HookScripts {
        master: Some(master),
        slave: None,
        notify: None,
        timeout: Duration::from_secs(10),
    });
    runner.submit(event(Role::Master, Role::Slave, Some("alice"), 7));
    tokio::time::sleep(Duration::from_millis(40)).await;
    drop(writer);
    runner.drain().await;
    assert_eq!(log_lines(&dir).len(), 1, "the master hook ran once");
}

#[tokio::test]
async fn slave_script_runs_for_slave_inquorate_and_dispatching() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = HookRunner::spawn(HookScripts {
        notify: None,
        ..scripts(&dir, Duration::from_secs(10))
    });
    runner.submit(event(Role::Slave, Role::Starting, Some("bob"), 1));
    runner.submit(HookEvent {
        kind: HookKind::Master,
        ..event(Role::Slave, Role::Slave, Some("carol"), 2)
    });
    runner.submit(event(Role::Inquorate, Role::Slave, None, 2));
    runner.submit(event(Role::Dispatching, Role::Inquorate, None, 2));
    runner.drain().await;
    assert_eq!(
        log_lines(&dir),
        vec![
            "slave role=slave previous=starting master=bob epoch=1 node=alice event=role stdin=eof path=set",
            "slave role=slave previous=slave master=carol epoch=2 node=alice event=master stdin=eof path=set",
            "slave role=inquorate previous=slave master= epoch=2 node=alice event=role stdin=eof path=set",
            "slave role=dispatching previous=inquorate master= epoch=2 node=alice event=role stdin=eof path=set",
        ]
    );
}

#[tokio::test]
async fn notify_script_runs_after_the_role_script_on_every_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = HookRunner::spawn(scripts(&dir, Duration::from_secs(10)));
    runner.submit(event(Role::Master, Role::Slave, Some("alice"), 3));
    runner.submit(event(Role::Slave, Role::Master, Some("bob"), 4));
    runner.drain().await;
    let names: Vec<String> = log_lines(&dir)
        .iter()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        names,
        vec![
            "master role=master",
            "notify role=master",
            "slave role=slave",
            "notify role=slave"
        ]
    );
}

#[tokio::test]
async fn notify_script_alone_runs_for_every_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = HookRunner::spawn(HookScripts {
        notify: Some(recorder(&dir, "notify")),
        timeout: Duration::from_secs(10),
        ..HookScripts::default()
    });
    runner.submit(event(Role::Master, Role::Starting, Some("alice"), 1));
    runner.submit(event(Role::Inquorate, Role::Master, None, 1));
    runner.drain().await;
    assert_eq!(log_lines(&dir).len(), 2, "{:?}", log_lines(&dir));
}

#[tokio::test]
async fn hooks_run_one_at_a_time_in_submission_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("log");
    // Each run records its start and end around a pause: overlapping runs would interleave.
    let body = format!(
        "echo \"start $QUORUM_EPOCH\" >> {log}\nsleep 0.1\necho \"end $QUORUM_EPOCH\" >> {log}",
        log = log.display()
    );
    let runner = HookRunner::spawn(HookScripts {
        slave: Some(script(&dir, "slave", &body)),
        timeout: Duration::from_secs(10),
        ..HookScripts::default()
    });
    for epoch in 1..=3 {
        runner.submit(event(Role::Slave, Role::Slave, Some("bob"), epoch));
    }
    runner.drain().await;
    assert_eq!(
        log_lines(&dir),
        vec!["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]
    );
}

fn process_gone(pid: u32) -> bool {
    // Gone, or a zombie waiting for whoever adopted it: either way no longer running.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn read_pid(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid")
}

#[tokio::test]
async fn hook_that_hangs_is_killed_with_its_children_and_the_next_hook_still_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("child.pid");
    let hang = script(
        &dir,
        "hang",
        &format!("sleep 1000 &\necho $! > {}\nwait", pid_file.display()),
    );
    let runner = HookRunner::spawn(HookScripts {
        master: Some(hang),
        slave: Some(recorder(&dir, "slave")),
        timeout: Duration::from_millis(300),
        ..HookScripts::default()
    });
    let started = Instant::now();
    runner.submit(event(Role::Master, Role::Slave, Some("alice"), 1));
    runner.submit(event(Role::Slave, Role::Master, Some("bob"), 2));
    let drained = tokio::time::timeout(Duration::from_secs(20), runner.drain()).await;
    assert!(
        drained.is_ok(),
        "the hung hook was not cut off after {:?}",
        started.elapsed()
    );
    assert_eq!(
        log_lines(&dir).len(),
        1,
        "the next hook ran: {:?}",
        log_lines(&dir)
    );
    // The hook's own child, in its process group, was killed too.
    let child = read_pid(&pid_file);
    wait_for("the hook's child to die", 10, || process_gone(child)).await;
}

#[tokio::test]
async fn hook_that_ignores_sigterm_is_killed_after_the_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stubborn = script(
        &dir,
        "stubborn",
        "trap '' TERM\ni=0\nwhile [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done",
    );
    let runner = HookRunner::spawn(HookScripts {
        slave: Some(stubborn),
        notify: Some(recorder(&dir, "notify")),
        timeout: Duration::from_millis(200),
        ..HookScripts::default()
    });
    let started = Instant::now();
    runner.submit(event(Role::Slave, Role::Starting, Some("bob"), 1));
    // 60 s of loop are cut to about timeout + 2 s grace.
    let drained = tokio::time::timeout(Duration::from_secs(30), runner.drain()).await;
    assert!(
        drained.is_ok(),
        "the hook ignoring SIGTERM was not killed after {:?}",
        started.elapsed()
    );
    assert_eq!(log_lines(&dir).len(), 1, "notify ran after the kill");
}

#[tokio::test]
async fn python_script_without_exec_bit_runs_with_python3() {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: python3 is not installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("log");
    let path = dir.path().join("i_am_master.py");
    std::fs::write(
        &path,
        format!(
            "import os\nwith open({:?}, 'a') as f:\n    f.write('py ' + os.environ['QUORUM_ROLE'] + '\\n')\n",
            log.display().to_string()
        ),
    )
    .expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let scripts = HookScripts {
        master: Some(path),
        timeout: Duration::from_secs(10),
        ..HookScripts::default()
    };
    scripts
        .validate()
        .expect("a non-executable .py file is accepted");
    let runner = HookRunner::spawn(scripts);
    runner.submit(event(Role::Master, Role::Slave, Some("alice"), 1));
    runner.drain().await;
    assert_eq!(log_lines(&dir), vec!["py master"]);
}

#[test]
fn validate_refuses_missing_non_executable_and_non_regular_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = recorder(&dir, "good");
    let plain = dir.path().join("plain.sh");
    std::fs::write(&plain, "echo hi\n").expect("write");
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let ok = HookScripts {
        master: Some(good.clone()),
        slave: Some(good.clone()),
        notify: Some(good.clone()),
        timeout: Duration::from_secs(1),
    };
    ok.validate().expect("executable scripts are accepted");
    HookScripts::default()
        .validate()
        .expect("no scripts is fine");

    let cases = [
        (
            HookScripts {
                master: Some(dir.path().join("missing.sh")),
                ..ok.clone()
            },
            "--master-script",
            "missing.sh",
        ),
        (
            HookScripts {
                slave: Some(plain.clone()),
                ..ok.clone()
            },
            "--slave-script",
            "plain.sh",
        ),
        (
            HookScripts {
                notify: Some(dir.path().to_path_buf()),
                ..ok.clone()
            },
            "--notify",
            "not a regular file",
        ),
    ];
    for (scripts, flag, detail) in cases {
        let msg = format!("{:#}", scripts.validate().expect_err(flag));
        assert!(msg.contains(flag) && msg.contains(detail), "{msg}");
    }
}

#[test]
fn validate_accepts_scripts_with_a_shebang_and_elf_binaries_and_refuses_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let no_shebang = dir.path().join("no-shebang.sh");
    std::fs::write(&no_shebang, "echo hi\n").expect("write");
    std::fs::set_permissions(&no_shebang, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let hook = |path: PathBuf| HookScripts {
        master: Some(path),
        timeout: Duration::from_secs(1),
        ..HookScripts::default()
    };
    let msg = format!("{:#}", hook(no_shebang).validate().expect_err("refused"));
    assert!(
        msg.contains("--master-script") && msg.contains("#!"),
        "{msg}"
    );
    let elf = ["/bin/true", "/usr/bin/true"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("true(1) exists");
    hook(elf).validate().expect("an ELF binary is accepted");
    hook(recorder(&dir, "good"))
        .validate()
        .expect("a script with #! is accepted");
}

#[tokio::test]
async fn submit_does_not_block_while_a_hook_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let go = dir.path().join("go");
    let log = dir.path().join("log");
    // The hook waits (boundedly) until the test creates `go`.
    let waiter = script(
        &dir,
        "slave",
        &format!(
            "echo \"start $QUORUM_EPOCH\" >> {log}\ni=0\n\
             while [ ! -e {go} ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done\n\
             echo \"end $QUORUM_EPOCH\" >> {log}",
            log = log.display(),
            go = go.display()
        ),
    );
    let runner = HookRunner::spawn(HookScripts {
        slave: Some(waiter),
        timeout: Duration::from_secs(60),
        ..HookScripts::default()
    });
    runner.submit(event(Role::Slave, Role::Starting, Some("bob"), 1));
    wait_for("the first hook to start", 10, || {
        log_lines(&dir) == vec!["start 1"]
    })
    .await;
    // The first hook is blocked; further submissions return at once all the same.
    for epoch in 2..=5 {
        runner.submit(event(Role::Slave, Role::Slave, Some("bob"), epoch));
    }
    assert_eq!(
        log_lines(&dir),
        vec!["start 1"],
        "the hook is still running"
    );
    std::fs::write(&go, "").expect("release the hook");
    runner.drain().await;
    assert_eq!(log_lines(&dir).len(), 10, "{:?}", log_lines(&dir));
}

#[tokio::test]
async fn stale_master_event_is_skipped_and_a_live_one_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = HookRunner::spawn(scripts(&dir, Duration::from_secs(10)));
    let now = Instant::now();
    let past = now.checked_sub(Duration::from_millis(50)).unwrap_or(now);
    runner.submit(HookEvent {
        master_until: Some(past),
        context: Default::default(),
        ..event(Role::Master, Role::Slave, Some("alice"), 1)
    });
    runner.submit(event(Role::Slave, Role::Master, Some("bob"), 2));
    runner.submit(HookEvent {
        master_until: Some(Instant::now() + Duration::from_secs(3600)),
        context: Default::default(),
        ..event(Role::Master, Role::Slave, Some("alice"), 3)
    });
    runner.drain().await;
    let epochs: Vec<String> = log_lines(&dir)
        .iter()
        .map(|l| {
            let name = l.split(' ').next().unwrap_or_default();
            let epoch = l
                .split(' ')
                .find(|w| w.starts_with("epoch="))
                .unwrap_or_default();
            format!("{name} {epoch}")
        })
        .collect();
    assert_eq!(
        epochs,
        vec![
            "slave epoch=2",
            "notify epoch=2",
            "master epoch=3",
            "notify epoch=3"
        ]
    );
}

/// Collects formatted log output in memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default()
    }
}

// current_thread runtime: the worker task runs on this thread, under the thread-local subscriber.
#[tokio::test(flavor = "current_thread")]
async fn hook_outcomes_and_output_are_logged_with_script_and_role() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = tempfile::tempdir().expect("tempdir");
    let master = script(
        &dir,
        "master.sh",
        "echo to-stdout\necho to-stderr >&2\nexit 3",
    );
    let slave = script(&dir, "slave.sh", "sleep 30");
    let runner = HookRunner::spawn(HookScripts {
        master: Some(master.clone()),
        slave: Some(slave.clone()),
        notify: Some(dir.path().join("vanished.sh")),
        timeout: Duration::from_millis(200),
    });
    runner.submit(event(Role::Master, Role::Slave, Some("alice"), 1));
    runner.submit(event(Role::Slave, Role::Master, Some("bob"), 2));
    runner.drain().await;

    let logs = capture.text();
    let line_with = |needles: &[&str]| logs.lines().any(|l| needles.iter().all(|n| l.contains(n)));
    let m = master.display().to_string();
    let s = slave.display().to_string();
    for needles in [
        vec![
            "INFO",
            "hook stdout",
            "to-stdout",
            m.as_str(),
            "role=master",
        ],
        // stderr is progress as often as errors: INFO, with the hook's name.
        vec![
            "INFO",
            "hook stderr",
            "to-stderr",
            "hook=\"master\"",
            m.as_str(),
            "role=master",
        ],
        vec!["hook finished", "exit_code=3", m.as_str(), "role=master"],
        vec!["hook timed out, killed", s.as_str(), "role=slave"],
        vec!["hook failed to start", "vanished.sh", "role=slave"],
    ] {
        assert!(
            line_with(&needles),
            "no log line with {needles:?} in:\n{logs}"
        );
    }
}
