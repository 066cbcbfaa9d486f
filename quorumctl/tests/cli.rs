//! Runs the real quorumctl binary against an in-process control server with a fake driver.

use common::control::{ControlError, Event, Member, MemberChange, Response, Status};
use common::types::Role;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;
use testkit::control::{FakeDaemon, FakeDriver, OnDispatch, snapshot, status};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::{Instant, timeout};

/// Upper bound for anything a test waits for (CI is a busy 2-core box).
const PATIENCE: Duration = Duration::from_secs(20);

const BIN: &str = env!("CARGO_BIN_EXE_quorumctl");

/// The shared fake daemon, answering like a healthy node named alice that can forget bob.
struct Harness(FakeDaemon);

impl std::ops::Deref for Harness {
    type Target = FakeDaemon;
    fn deref(&self) -> &FakeDaemon {
        &self.0
    }
}

impl Harness {
    async fn start(status: Status) -> Harness {
        Self::start_with(status, OnDispatch::Reply).await
    }

    async fn start_with(status: Status, on_dispatch: OnDispatch) -> Harness {
        let driver = FakeDriver {
            taken_name: None,
            forgettable: "bob".into(),
            on_dispatch,
        };
        Harness(FakeDaemon::start(status, Some(driver), 64, "quorumd.sock").await)
    }

    fn cmd(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.env_remove("QUORUMD_SOCKET")
            .arg("--socket")
            .arg(&self.path)
            .args(args)
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, args: &[&str]) -> Output {
        run(self.cmd(args)).await
    }

    /// Waits until `n` follow streams are subscribed (so an event sent now reaches them).
    async fn wait_for_followers(&self, n: usize) {
        testkit::wait_until_async("followers subscribed", PATIENCE, || {
            (self.events.receiver_count() >= n).then_some(())
        })
        .await;
    }

    async fn stop(self) {
        self.0.stop().await;
    }
}

async fn run(mut cmd: tokio::process::Command) -> Output {
    timeout(PATIENCE, cmd.output())
        .await
        .expect("quorumctl finished in time")
        .expect("quorumctl ran")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
}

#[tokio::test]
async fn status_prints_the_node_the_quorum_and_an_aligned_members_table() {
    let h = Harness::start(status(Role::Master)).await;
    let out = h.run(&["status"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    for expected in [
        "node     alice\n",
        "role     master\n",
        "master   alice\n",
        "epoch    3\n",
        "quorum   votes 2 of 3 counted, 2 needed\n",
        "cluster  test (strategy age)\n",
        "  NAME   ADDRESS    PORT  STATE  ROLE    COUNTED  LAST-HEARD\n",
        "* alice  127.0.0.1  8080  alive  master  yes      -\n",
        "  bob    127.0.0.1  8081  alive  slave   yes      0.3s ago\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    h.stop().await;
}

#[tokio::test]
async fn status_json_is_the_status_object() {
    let h = Harness::start(status(Role::Master)).await;
    let out = h.run(&["--json", "status"]).await;
    assert_exit(&out, 0);
    let parsed: Status = serde_json::from_slice(&out.stdout).expect("one Status document");
    assert_eq!(parsed, status(Role::Master));
    let raw: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    for key in [
        "name", "role", "epoch", "master", "quorum", "members", "version",
    ] {
        assert!(raw.get(key).is_some(), "missing {key}");
    }
    h.stop().await;
}

#[tokio::test]
async fn json_is_accepted_before_and_after_the_subcommand() {
    let h = Harness::start(status(Role::Slave)).await;
    for args in [["--json", "role"], ["role", "--json"]] {
        let out = h.run(&args).await;
        assert_exit(&out, 0);
        assert_eq!(stdout(&out), "{\"role\":\"slave\"}\n");
    }
    // --socket after the subcommand works too.
    let path = h.path.to_string_lossy().into_owned();
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.env_remove("QUORUMD_SOCKET")
        .args(["role", "--socket", &path])
        .kill_on_drop(true);
    let out = run(cmd).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "slave\n");
    h.stop().await;
}

#[tokio::test]
async fn the_socket_can_come_from_the_environment() {
    let h = Harness::start(status(Role::Slave)).await;
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.env("QUORUMD_SOCKET", &h.path)
        .arg("role")
        .kill_on_drop(true);
    let out = run(cmd).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "slave\n");
    h.stop().await;
}

#[tokio::test]
async fn role_prints_one_word() {
    let h = Harness::start(status(Role::Master)).await;
    let out = h.run(&["role"]).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "master\n");
    h.stop().await;
}

#[tokio::test]
async fn is_master_exits_0_on_the_master_and_1_elsewhere_silently() {
    let h = Harness::start(status(Role::Master)).await;
    let out = h.run(&["is-master"]).await;
    assert_exit(&out, 0);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    h.status.send_replace(snapshot(status(Role::Slave)));
    let out = h.run(&["is-master"]).await;
    assert_exit(&out, 1);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    h.stop().await;
}

#[tokio::test]
async fn members_prints_the_table_or_a_json_array() {
    let h = Harness::start(status(Role::Slave)).await;
    let out = h.run(&["members"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.starts_with("  NAME "), "{text}");
    assert_eq!(text.lines().count(), 3, "{text}");
    let out = h.run(&["members", "--json"]).await;
    assert_exit(&out, 0);
    let members: Vec<Member> = serde_json::from_slice(&out.stdout).expect("array of Member");
    assert_eq!(members, status(Role::Slave).members);
    h.stop().await;
}

#[tokio::test]
async fn rename_prints_the_old_and_new_names() {
    let h = Harness::start(status(Role::Slave)).await;
    let out = h.run(&["rename", "carol"]).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "renamed alice -> carol\n");
    let out = h.run(&["--json", "rename", "dora"]).await;
    assert_exit(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v, serde_json::json!({"from": "alice", "to": "dora"}));
    h.stop().await;
}

#[tokio::test]
async fn forget_reports_success_and_a_refusal_exits_4() {
    let h = Harness::start(status(Role::Slave)).await;
    let out = h.run(&["forget", "bob"]).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "forgot bob\n");
    let out = h.run(&["forget", "zed"]).await;
    assert_exit(&out, 4);
    assert_eq!(stderr(&out), "quorumctl: not found: no member named zed\n");
    h.stop().await;
}

#[tokio::test]
async fn step_down_resume_and_maintenance_print_the_eligibility() {
    let h = Harness::start(status(Role::Slave)).await;
    let out = h.run(&["maintenance", "on"]).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "not eligible: maintenance\n");
    let out = h.run(&["--json", "resume"]).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "{\"eligible\":true,\"held\":[]}\n");
    let out = h.run(&["step-down", "--for", "30s"]).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "eligible\n");
    let out = h.run(&["maintenance", "maybe"]).await;
    assert_exit(&out, 2);
    h.stop().await;
}

#[tokio::test]
async fn dispatch_waits_for_the_confirmation() {
    let h = Harness::start(status(Role::Slave)).await;
    let out = h.run(&["dispatch"]).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "dispatched\n");
    h.stop().await;
}

#[tokio::test]
async fn dispatch_counts_as_done_when_the_daemon_exits_without_a_reply() {
    let h = Harness::start_with(status(Role::Slave), OnDispatch::Vanish).await;
    let out = h.run(&["dispatch"]).await;
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "dispatched\n");
    assert!(!h.path.exists());
    h.stop().await;
}

#[tokio::test]
async fn an_unreachable_daemon_exits_3_and_names_the_socket() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nothing-here.sock");
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.env_remove("QUORUMD_SOCKET")
        .arg("--socket")
        .arg(&missing)
        .arg("role");
    let out = run(cmd).await;
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot reach quorumd at {}", missing.display())),
        "{err}"
    );
    assert!(err.contains("No such file or directory"), "{err}");
    assert!(err.contains("set --socket or QUORUMD_SOCKET"), "{err}");
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn usage_errors_exit_2() {
    for args in [
        &["frobnicate"][..],
        &["wait"],
        &["wait", "king"],
        &["wait", "master", "--timeout", "soon"],
        &[],
    ] {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args(args);
        let out = run(cmd).await;
        assert_exit(&out, 2);
    }
}

#[tokio::test]
async fn help_documents_examples_and_exit_codes() {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--help");
    let out = run(cmd).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    for expected in [
        "Exit codes:",
        "3  quorumd unreachable",
        "--socket <PATH>",
        "--json",
        "wait",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(
        text.contains("manpage") && text.contains("completions"),
        "the packaging helpers are listed:\n{text}"
    );
}

#[tokio::test]
async fn wait_times_out_with_exit_1_naming_the_current_role() {
    let h = Harness::start(status(Role::Slave)).await;
    let started = Instant::now();
    let out = h.run(&["wait", "master", "--timeout", "300ms"]).await;
    assert_exit(&out, 1);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        stderr(&out),
        "quorumctl: timed out after 300ms waiting for role master (current: slave)\n"
    );
    h.stop().await;
}

#[tokio::test]
async fn wait_returns_at_once_when_the_role_is_already_reached() {
    let h = Harness::start(status(Role::Slave)).await;
    let out = h.run(&["wait", "slave", "--timeout", "10s"]).await;
    assert_exit(&out, 0);
    h.stop().await;
}

#[tokio::test]
async fn wait_returns_0_when_a_role_event_to_master_arrives() {
    let h = Harness::start(status(Role::Slave)).await;
    // A generous timeout: process start-up on a busy box must not make this flaky.
    let child = h.cmd(&["wait", "master", "--timeout", "15s"]).output();
    let waiter = tokio::spawn(child);
    h.wait_for_followers(1).await;
    // An unrelated event first: it must not end the wait.
    let _ = h.events.send(Event::Member {
        name: "dora".into(),
        change: MemberChange::Joined,
    });
    let _ = h.events.send(Event::Role {
        reason: String::new(),
        role: Role::Master,
        previous: Role::Slave,
        master: Some("alice".into()),
        epoch: 4,
    });
    let out = timeout(PATIENCE, waiter)
        .await
        .expect("wait finished in time")
        .expect("join")
        .expect("ran");
    assert_exit(&out, 0);
    h.stop().await;
}

#[tokio::test]
async fn wait_exits_3_when_the_daemon_goes_away() {
    let h = Harness::start(status(Role::Slave)).await;
    let waiter = tokio::spawn(h.cmd(&["wait", "master"]).output());
    h.wait_for_followers(1).await;
    h.stop().await;
    let out = timeout(PATIENCE, waiter)
        .await
        .expect("wait finished in time")
        .expect("join")
        .expect("ran");
    assert_exit(&out, 3);
}

#[tokio::test]
async fn follow_json_prints_the_snapshot_then_one_event_per_line() {
    let h = Harness::start(status(Role::Slave)).await;
    let mut child = h
        .cmd(&["follow", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = async || -> Event {
        let line = timeout(PATIENCE, lines.next_line())
            .await
            .expect("a line in time")
            .expect("read")
            .expect("not EOF");
        serde_json::from_str(&line).expect("one Event per line")
    };
    assert_eq!(next().await, Event::Snapshot(status(Role::Slave)));
    h.wait_for_followers(1).await;
    let role = Event::Role {
        reason: String::new(),
        role: Role::Master,
        previous: Role::Slave,
        master: Some("alice".into()),
        epoch: 4,
    };
    let _ = h.events.send(role.clone());
    assert_eq!(next().await, role);
    drop(child);
    h.stop().await;
}

#[tokio::test]
async fn follow_prints_human_lines_with_timestamps() {
    let h = Harness::start(status(Role::Slave)).await;
    let mut child = h
        .cmd(&["follow"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = async || -> String {
        timeout(PATIENCE, lines.next_line())
            .await
            .expect("a line in time")
            .expect("read")
            .expect("not EOF")
    };
    let first = next().await;
    assert!(
        first.contains("Z snapshot alice: role slave, master bob, epoch 3"),
        "{first}"
    );
    h.wait_for_followers(1).await;
    let _ = h.events.send(Event::Role {
        reason: String::new(),
        role: Role::Master,
        previous: Role::Slave,
        master: Some("alice".into()),
        epoch: 4,
    });
    let line = next().await;
    // 2026-11-24T04:40:00Z role slave -> master (master alice, epoch 4)
    assert_eq!(
        line.len(),
        20 + " role slave -> master (master alice, epoch 4)".len(),
        "{line}"
    );
    assert!(
        line.ends_with("Z role slave -> master (master alice, epoch 4)"),
        "{line}"
    );
    drop(child);
    h.stop().await;
}

#[tokio::test]
async fn follow_exits_0_quietly_when_its_reader_goes_away() {
    // Like `quorumctl follow | head -n 1`: read one line, close the pipe, keep the events coming.
    let h = Harness::start(status(Role::Slave)).await;
    let mut child = h
        .cmd(&["follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = timeout(PATIENCE, lines.next_line()).await.expect("in time");
    assert!(first.expect("read").is_some());
    drop(lines);
    // Events keep coming until follow notices the closed pipe and exits.
    let status = testkit::wait_until_async("follow exits after its reader left", PATIENCE, || {
        let exited = child.try_wait().expect("try_wait");
        if exited.is_none() {
            let _ = h.events.send(Event::Member {
                name: "dora".into(),
                change: MemberChange::Joined,
            });
        }
        exited
    })
    .await;
    assert_eq!(status.code(), Some(0));
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = e.read_to_string(&mut err).await;
    }
    assert!(err.is_empty(), "stderr: {err}");
    h.stop().await;
}

#[tokio::test]
async fn a_protocol_version_mismatch_prints_a_hint() {
    let mut newer = status(Role::Slave);
    newer.protocol_version = 99;
    let h = Harness::start(newer).await;
    let out = h.run(&["status"]).await;
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("hint: quorumd 0.1.0 speaks control protocol 99"),
        "{}",
        stderr(&out)
    );
    h.stop().await;
}

#[tokio::test]
async fn an_unprivileged_user_gets_status_but_not_dispatch() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: needs root to run quorumctl as uid 65534");
        return;
    }
    let h = Harness::start(status(Role::Slave)).await;
    std::fs::set_permissions(h.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&h.path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let copy = testkit::reachable_copy(Path::new(BIN), h.dir.path());
    let as_nobody = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(&copy);
        cmd.env_remove("QUORUMD_SOCKET")
            .arg("--socket")
            .arg(&h.path)
            .args(args)
            .kill_on_drop(true)
            .uid(65534)
            .gid(65534);
        cmd
    };
    let out = run(as_nobody(&["dispatch"])).await;
    assert_exit(&out, 4);
    assert!(
        stderr(&out).starts_with("quorumctl: permission denied: dispatch needs root"),
        "{}",
        stderr(&out)
    );
    let out = run(as_nobody(&["status"])).await;
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("role     slave"));
    h.stop().await;
}

#[tokio::test]
async fn completions_and_man_pages_are_generated() {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["completions", "bash"]);
    let out = run(cmd).await;
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("quorumctl"));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(["manpage", "--out-dir"]).arg(dir.path());
    let out = run(cmd).await;
    assert_exit(&out, 0);
    let page = |name: &str| dir.path().join(name);
    for name in [
        "quorumctl.1",
        "quorumctl-status.1",
        "quorumctl-wait.1",
        "quorumctl-forget.1",
    ] {
        assert!(page(name).exists(), "missing {name}");
    }
    let quorumd = std::fs::read_to_string(page("quorumd.1")).expect("quorumd.1 is written");
    assert!(
        quorumd.contains("use\\-port\\-instead\\-of\\-life\\-time"),
        "{quorumd}"
    );
    assert!(
        quorumd.contains("QUORUMD_NAME"),
        "the page names the variables"
    );
}

#[tokio::test]
async fn manpage_needs_an_output_directory_and_the_helpers_are_in_help() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("manpage").current_dir(dir.path());
    let out = run(cmd).await;
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--out-dir"), "{}", stderr(&out));
    let written = std::fs::read_dir(dir.path()).expect("read dir").count();
    assert_eq!(written, 0, "nothing written to the current directory");

    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("--help");
    let out = run(cmd).await;
    assert_exit(&out, 0);
    for needle in ["  completions ", "  manpage "] {
        assert!(stdout(&out).contains(needle), "--help lacks {needle:?}");
    }
    for shell in ["zsh", "fish"] {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.args(["completions", shell]);
        let out = run(cmd).await;
        assert_exit(&out, 0);
        assert!(stdout(&out).contains("quorumctl"), "{shell}");
    }
}

#[tokio::test]
async fn a_user_who_cannot_open_the_socket_exits_4_naming_the_group_to_join() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: needs root to run quorumctl as uid 65534");
        return;
    }
    let h = Harness::start(status(Role::Slave)).await;
    std::fs::set_permissions(h.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&h.path, std::fs::Permissions::from_mode(0o660)).expect("chmod");
    let mut cmd =
        tokio::process::Command::new(testkit::reachable_copy(Path::new(BIN), h.dir.path()));
    cmd.env_remove("QUORUMD_SOCKET")
        .arg("--socket")
        .arg(&h.path)
        .arg("status")
        .kill_on_drop(true)
        .uid(65534)
        .gid(65534);
    let out = run(cmd).await;
    assert_exit(&out, 4);
    let err = stderr(&out);
    assert!(err.starts_with("quorumctl: permission denied: "), "{err}");
    assert!(err.contains("group root"), "names the group: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    h.stop().await;
}

/// A stdout whose reader is already gone: every write fails with EPIPE (`| head` that quit).
fn closed_stdout() -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two new descriptors, each then owned exactly once.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fds[0] is the read end, just created, owned here and closed at once.
    drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[0]) });
    // SAFETY: fds[1] is the write end, just created and not owned elsewhere.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[1]) }
}

#[tokio::test]
async fn every_output_ends_quietly_on_a_closed_pipe() {
    let h = Harness::start(status(Role::Slave)).await;
    let cases: &[&[&str]] = &[
        &["completions", "fish"],
        &["completions", "bash"],
        &["completions", "zsh"],
        &["--help"],
        &["status", "--help"],
        &["--version"],
        &["status"],
        &["--json", "status"],
        &["role"],
        &["follow"],
        &["members"],
        &["--json", "members"],
        &["--json", "follow"],
    ];
    for args in cases {
        let mut cmd = h.cmd(args);
        // Not `output()`: tokio's would replace the closed stdout by a pipe of its own.
        cmd.stdout(closed_stdout()).stderr(Stdio::piped());
        let child = cmd.spawn().expect("spawn quorumctl");
        let out = timeout(PATIENCE, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("{args:?} still running"))
            .expect("quorumctl ran");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(out.stderr.is_empty(), "{args:?}: {}", stderr(&out));
    }
    h.stop().await;
}

#[tokio::test]
async fn make_install_stages_man_pages_of_both_programs_and_three_completions() {
    if std::process::Command::new("make")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: make is not installed");
        return;
    }
    let built = Path::new(BIN).parent().expect("bin dir");
    if !built.join("quorumd").exists() {
        eprintln!("skipping: quorumd is not built next to quorumctl");
        return;
    }
    let stage = tempfile::tempdir().expect("temp dir");
    let target = tempfile::tempdir().expect("temp dir");
    let mut cmd = tokio::process::Command::new("make");
    cmd.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .arg("--no-print-directory")
        .arg("install-files")
        .arg(format!("DESTDIR={}", stage.path().display()))
        .arg("PREFIX=/usr")
        .arg(format!("BUILT={}", built.display()))
        .arg(format!("CARGO_TARGET_DIR={}", target.path().display()));
    let out = run(cmd).await;
    assert_exit(&out, 0);
    for file in [
        "usr/share/man/man1/quorumd.1",
        "usr/share/man/man1/quorumctl.1",
        "usr/share/man/man1/quorumctl-status.1",
        "usr/share/bash-completion/completions/quorumctl",
        "usr/share/zsh/site-functions/_quorumctl",
        "usr/share/fish/vendor_completions.d/quorumctl.fish",
        "usr/bin/quorumd",
        "usr/bin/quorumctl",
        "usr/share/quorumd/hooks/vip",
    ] {
        assert!(
            stage.path().join(file).is_file(),
            "make install lacks {file}"
        );
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(stage.path().join("usr/share/quorumd/hooks/vip"))
        .expect("stat the VIP hook")
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "the VIP hook is executable: {mode:o}");
}

#[tokio::test]
async fn rename_checks_the_name_with_the_daemons_rule() {
    let h = Harness::start(status(Role::Slave)).await;
    let out = h.run(&["rename", &"x".repeat(256)]).await;
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("256 characters"), "{}", stderr(&out));
    h.stop().await;
}

/// A daemon frozen between answering "master" and sending the answer: the lease end in the
/// answer has passed when quorumctl reads it, so `role` must not say master (and `is-master`
/// must say no). A raw socket replays such an answer.
#[tokio::test]
async fn a_master_answer_read_after_its_lease_ended_reads_as_inquorate() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stale.sock");
    let listener = tokio::net::UnixListener::bind(&path).expect("bind");
    let server = tokio::spawn(async move {
        for _ in 0..3 {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(_request)) = lines.next_line().await {
                // valid_until_ns 1: long past on this host's monotonic clock.
                let stale = serde_json::to_string(&Ok::<_, ControlError>(Response::Role {
                    role: Role::Master,
                    valid_until_ns: Some(1),
                }))
                .expect("encode");
                let _ = w.write_all(format!("{stale}\n").as_bytes()).await;
            }
        }
    });
    let ctl = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.env_remove("QUORUMD_SOCKET")
            .arg("--socket")
            .arg(&path)
            .args(args)
            .kill_on_drop(true);
        cmd
    };
    let out = run(ctl(&["role"])).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "inquorate\n",
        "{out:?}"
    );
    let out = run(ctl(&["is-master"])).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    server.abort();
}

/// `quorumctl keygen PATH` writes a key file with mode 0600 in the format `--key-file` loads,
/// never overwrites one, and prints a fresh key without PATH.
#[tokio::test]
async fn keygen_writes_a_0600_key_file_that_quorumd_loads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("cluster.key");
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("keygen").arg(&key);
    let out = run(cmd).await;
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("cluster.key"), "{}", stdout(&out));
    let meta = std::fs::metadata(&key).expect("key file written");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let keys = quorumd::keyfile::load(&key).expect("quorumd loads the key file");
    assert_eq!(keys.len(), 1);
    let written = std::fs::read_to_string(&key).expect("read");

    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("keygen").arg(&key);
    let out = run(cmd).await;
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("cluster.key"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&key).expect("read"),
        written,
        "never overwritten"
    );

    let mut printed = Vec::new();
    for _ in 0..2 {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.arg("keygen");
        let out = run(cmd).await;
        assert_exit(&out, 0);
        let text = stdout(&out);
        assert!(
            common::codec::Keyring::parse(&text).is_ok_and(|k| k.len() == 1),
            "{text}"
        );
        printed.push(text);
    }
    assert_ne!(printed[0], printed[1], "every key is new");
    assert!(!printed.contains(&written));
}
