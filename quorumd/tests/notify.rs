//! sd_notify against a fake service manager: a Unix datagram socket in a temp dir.
//!
//! Environment variables are process-global, so the notifying side runs in a child process:
//! this test binary re-executed with `--exact notifying_child` and the systemd variables set.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

const CHILD_ENV: &str = "QUORUMD_TEST_NOTIFY_CHILD";

/// The child's half: does nothing unless started by `notifications_reach_the_service_manager`.
#[test]
fn notifying_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    // systemd sets WATCHDOG_PID to the service's pid, which the parent could not know in
    // advance. This process runs only this one test, so nothing reads the env concurrently.
    // SAFETY: single-threaded at this point (one test, no runtime started yet).
    unsafe { std::env::set_var("WATCHDOG_PID", std::process::id().to_string()) };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        quorumd::notify::ready();
        quorumd::notify::status("role master, master alice, epoch 3");
        let watchdog = quorumd::notify::spawn_watchdog(|_| true).expect("WATCHDOG_USEC is set");
        // Enough time for several pings at the 10 ms half period.
        tokio::time::sleep(Duration::from_millis(200)).await;
        watchdog.abort();
        quorumd::notify::stopping();
    });
}

#[test]
fn notifications_reach_the_service_manager() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind fake NOTIFY_SOCKET");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");

    let child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "notifying_child",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .stdout(std::process::Stdio::null())
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "20000")
        .spawn()
        .expect("spawn child");
    let mut child = testkit::ChildGuard::new(child);

    let mut seen: Vec<String> = Vec::new();
    let wanted = [
        "READY=1",
        "STATUS=role master, master alice, epoch 3",
        "WATCHDOG=1",
        "STOPPING=1",
    ];
    let mut buf = [0u8; 4096];
    // Missing lines are reported below, with everything received.
    let _ = testkit::try_wait_until(Duration::from_secs(30), || {
        if wanted.iter().all(|w| seen.iter().any(|s| s == w)) {
            return Some(());
        }
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            seen.extend(msg.lines().map(str::to_string));
        }
        None
    });
    let status = child.wait_exit(
        "the notifying child exits",
        Duration::from_secs(30),
        String::new,
    );
    assert!(status.success(), "the notifying child failed");
    for w in wanted {
        assert!(
            seen.iter().any(|s| s == w),
            "{w:?} not received; got {seen:?}"
        );
    }
    assert_eq!(
        seen.first().map(String::as_str),
        Some("READY=1"),
        "{seen:?}"
    );
}

#[test]
fn without_a_service_manager_nothing_happens() {
    // This test process has no NOTIFY_SOCKET (cargo test is not a systemd service) unless the
    // developer runs tests under one; then the calls below still must not fail or panic.
    quorumd::notify::ready();
    quorumd::notify::status("idle");
    if std::env::var_os("WATCHDOG_USEC").is_none() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        assert!(
            rt.block_on(async { quorumd::notify::spawn_watchdog(|_| true) })
                .is_none()
        );
    }
}
