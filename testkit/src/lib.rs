//! Helpers shared by every test crate of the workspace (`publish = false`):
//!
//! - [`wait_until`]: one polling loop with a deadline instead of hand-written ones;
//! - [`ChildGuard`]: a child process killed and reaped on drop (also on panic);
//! - [`free_tcp_port`] / [`free_udp_port`]: ports the kernel just handed out.

use std::net::{TcpListener, UdpSocket};
use std::process::{Child, ExitStatus};
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
