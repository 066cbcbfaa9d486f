//! The real `quorumd` binary under a fake service manager: READY, STATUS and WATCHDOG arrive
//! on `NOTIFY_SOCKET`, SIGHUP is not fatal, and SIGTERM is a dispatch (hook runs, exit 0).

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::{ChildGuard, free_tcp_port, free_udp_port};

/// Collects notify messages until `pred` holds or the deadline passes.
fn wait_notify(
    sock: &UnixDatagram,
    seen: &mut Vec<String>,
    within: Duration,
    pred: impl Fn(&[String]) -> bool,
) -> bool {
    let mut buf = [0u8; 4096];
    testkit::try_wait_until(within, || {
        if pred(seen) {
            return Some(());
        }
        if let Ok(n) = sock.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            seen.extend(text.lines().map(str::to_string));
        }
        None
    })
    .is_some()
}

/// Polls until `path` contains `text`; panics with `what` after `within`.
fn wait_contains(path: &Path, text: &str, within: Duration, what: &str) {
    let has = || {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .contains(text)
            .then_some(())
    };
    testkit::wait_until(what, within, has, String::new);
}

fn write_hook(dir: &Path) -> std::path::PathBuf {
    let hook = dir.join("hook.sh");
    let out = dir.join("hook.out");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\necho \"$QUORUM_ROLE $QUORUM_PREVIOUS_ROLE $QUORUM_EPOCH\" >> {}\n",
            out.display()
        ),
    )
    .expect("write hook");
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    hook
}

#[test]
fn daemon_notifies_ready_status_and_watchdog_and_sigterm_dispatches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let notify_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify_path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let hook = write_hook(dir.path());
    let ctl_sock = dir.path().join("n.sock");
    // systemd sets WATCHDOG_PID to the service's main pid: let the shell do the same.
    let child = Command::new("sh")
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_quorumd"))
        .args([
            "127.0.0.1",
            &free_tcp_port().to_string(),
            "127.255.255.255",
            &free_udp_port().to_string(),
            "-n",
            "solo",
            "--profile",
            "fast",
            "--socket",
        ])
        .arg(&ctl_sock)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("-m")
        .arg(&hook)
        .arg("-s")
        .arg(&hook)
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "200000")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn quorumd");
    let mut child = ChildGuard::new(child);
    let mut seen = Vec::new();
    assert!(
        wait_notify(&sock, &mut seen, Duration::from_secs(10), |s| s
            .iter()
            .any(|l| l == "READY=1")),
        "no READY=1: {seen:?}"
    );
    assert!(
        wait_notify(&sock, &mut seen, Duration::from_secs(10), |s| s
            .iter()
            .any(|l| l.starts_with("STATUS=master"))),
        "no STATUS=master...: {seen:?}"
    );
    assert!(
        wait_notify(&sock, &mut seen, Duration::from_secs(10), |s| s
            .iter()
            .any(|l| l == "WATCHDOG=1")),
        "no WATCHDOG=1: {seen:?}"
    );
    // The master hook ran once the node knew it was alone.
    let out = dir.path().join("hook.out");
    wait_contains(
        &out,
        "master starting",
        Duration::from_secs(10),
        "no master hook ran",
    );

    // SIGHUP is caught, never fatal: the daemon keeps pinging the watchdog afterwards and
    // still leaves gracefully on SIGTERM below.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGHUP);
    }
    seen.clear();
    assert!(
        wait_notify(&sock, &mut seen, Duration::from_secs(10), |s| s
            .iter()
            .filter(|l| *l == "WATCHDOG=1")
            .count()
            >= 3),
        "no watchdog pings after SIGHUP: {seen:?}"
    );
    assert!(child.try_exit().is_none(), "SIGHUP ended the daemon");

    // SIGTERM = dispatch: STOPPING=1, the slave hook with role dispatching, exit 0.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait_exit(
        "quorumd exits after SIGTERM",
        Duration::from_secs(15),
        String::new,
    );
    assert!(status.success(), "exit status {status:?}");
    assert!(
        wait_notify(&sock, &mut seen, Duration::from_secs(2), |s| s
            .iter()
            .any(|l| l == "STOPPING=1")),
        "no STOPPING=1: {seen:?}"
    );
    let hooks = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        hooks.lines().any(|l| l.starts_with("dispatching master")),
        "hooks: {hooks}"
    );
    assert!(!ctl_sock.exists(), "control socket left behind");
}

#[test]
fn a_missing_non_executable_or_unrunnable_hook_is_refused_at_start_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_exec = dir.path().join("hook.sh");
    std::fs::write(&not_exec, "#!/bin/sh\n").expect("write");
    // Executable, but no #! line: exec(2) would fail with "Exec format error".
    let no_shebang = dir.path().join("no-shebang.sh");
    std::fs::write(&no_shebang, "echo hello\n").expect("write");
    std::fs::set_permissions(
        &no_shebang,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    for (flag, path) in [
        ("-m", dir.path().join("missing.sh")),
        ("-s", not_exec.clone()),
        ("--notify", no_shebang.clone()),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_quorumd"))
            .args(["127.0.0.1", &free_tcp_port().to_string(), "127.255.255.255"])
            .arg(free_udp_port().to_string())
            .arg(flag)
            .arg(&path)
            .arg("--socket")
            .arg(dir.path().join("n.sock"))
            .stdin(Stdio::null())
            .output()
            .expect("run quorumd");
        assert_eq!(out.status.code(), Some(2), "{flag} {}", path.display());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&path.display().to_string()),
            "message names the file: {err}"
        );
        assert!(!dir.path().join("n.sock").exists(), "no socket left behind");
    }
}

/// `q` + Enter on a terminal dispatches, as in the original. `script` gives quorumd a
/// pseudo-terminal whose input we write.
#[test]
fn q_and_enter_on_a_terminal_dispatches() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipping: `script` (util-linux) is not installed");
        return;
    }
    use std::io::Write;
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = write_hook(dir.path());
    let sock = dir.path().join("q.sock");
    let cmd = format!(
        "{} 127.0.0.1 {} 127.255.255.255 {} -n term --profile fast --socket {} -s {} -m {} --state-dir {}",
        env!("CARGO_BIN_EXE_quorumd"),
        free_tcp_port(),
        free_udp_port(),
        sock.display(),
        hook.display(),
        hook.display(),
        dir.path().join("state").display()
    );
    let child = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(dir.path().join("term.log")).expect("log"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn script");
    let mut child = ChildGuard::new(child);
    let out = dir.path().join("hook.out");
    wait_contains(
        &out,
        "master starting",
        Duration::from_secs(15),
        "the node never became master",
    );
    let mut stdin = child.take_stdin().expect("stdin");
    stdin.write_all(b"q\n").expect("type q");
    stdin.flush().expect("flush");
    let log = dir.path().join("term.log");
    let status = child.wait_exit(
        "quorumd leaves after q + Enter",
        Duration::from_secs(15),
        || std::fs::read_to_string(&log).unwrap_or_default(),
    );
    assert!(status.success(), "exit status {status:?}");
    let hooks = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(
        hooks.lines().any(|l| l.starts_with("dispatching master")),
        "hooks: {hooks}"
    );
    drop(stdin);
}

/// Every refusal at start exits 2 with one message: a bad flag, a key file readable by
/// others, a socket that cannot be bound.
#[test]
fn start_up_errors_exit_2_and_are_printed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("cluster.key");
    std::fs::write(&key, "secret\n").expect("write key");
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").expect("write");
    let cases: [(Vec<std::ffi::OsString>, &str); 3] = [
        (vec!["--key-file".into(), key.clone().into()], "chmod 600"),
        (vec!["--heartbeat".into(), "1ms".into()], "at least 5ms"),
        (
            // A socket under a regular file cannot be created.
            vec!["--socket".into(), blocker.join("q.sock").into()],
            "Not a directory",
        ),
    ];
    for (extra, needle) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_quorumd"))
            .args(["127.0.0.1", &free_tcp_port().to_string(), "127.255.255.255"])
            .arg(free_udp_port().to_string())
            .arg("--socket")
            .arg(dir.path().join("n.sock"))
            .args(&extra)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run quorumd");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert_eq!(
            err.matches(needle).count(),
            1,
            "{extra:?} printed once: {err}"
        );
    }
}

#[test]
fn help_and_version_end_quietly_on_a_closed_pipe() {
    for arg in ["--help", "-h", "--version"] {
        use std::os::fd::{FromRawFd, OwnedFd};
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two new descriptors, each then owned exactly once.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: the read end, just created, closed at once: the pipe has no reader.
        drop(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        // SAFETY: the write end, just created and not owned elsewhere.
        let writer = unsafe { OwnedFd::from_raw_fd(fds[1]) };
        let out = Command::new(env!("CARGO_BIN_EXE_quorumd"))
            .arg(arg)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .expect("run quorumd");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{arg}: {err}");
        assert!(err.is_empty(), "{arg}: {err}");
    }
}
