//! Helpers shared by every test crate of the workspace (`publish = false`):
//!
//! - [`wait_until`]: one polling loop with a deadline instead of hand-written ones;
//! - [`ChildGuard`]: a child process killed and reaped on drop (also on panic);
//! - [`free_tcp_port`] / [`free_udp_port`]: ports the kernel just handed out;
//! - [`reachable_copy`]: a copy of a binary that another uid can run.

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// How often [`wait_until`] polls.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `cond` every [`POLL`] until it returns `Some`, or `None` once `within` has passed
/// (after a last try).
pub fn try_wait_until<T>(within: Duration, mut cond: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = cond() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `cond` until it returns `Some`; panics naming `what` (and `context()`, e.g. logs)
/// when `within` passes first.
pub fn wait_until<T>(
    what: &str,
    within: Duration,
    cond: impl FnMut() -> Option<T>,
    context: impl FnOnce() -> String,
) -> T {
    match try_wait_until(within, cond) {
        Some(v) => v,
        None => panic!("not reached within {within:?}: {what}\n{}", context()),
    }
}

/// A child process that is SIGKILLed and reaped when dropped.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Waits up to `within` for the child to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        try_wait_until(within, || self.0.try_wait().ok().flatten())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free tcp port")
        .port()
}

/// A UDP port free on 127.0.0.1 right now.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free udp port")
        .port()
}

/// Copies the executable `bin` into `dir` (mode 0755) so that a test can run it as another
/// uid: the checkout may sit in a 0700 directory that uid cannot enter.
///
/// The copy is written by a child process (`install`), never through a file opened in this
/// process: a test binary runs many tests on threads, and a write descriptor open here while
/// another thread forks would be inherited by that child until it execs, so running the copy
/// would fail with "Text file busy" (ETXTBSY).
pub fn reachable_copy(bin: &Path, dir: &Path) -> PathBuf {
    let name = bin.file_name().expect("binary path has a file name");
    let copy = dir.join(name);
    let status = Command::new("install")
        .arg("-m")
        .arg("0755")
        .arg(bin)
        .arg(&copy)
        .status()
        .expect("run install(1)");
    assert!(
        status.success(),
        "install {} {}: {status}",
        bin.display(),
        copy.display()
    );
    copy
}
