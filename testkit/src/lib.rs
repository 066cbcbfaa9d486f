//! Helpers shared by every test crate of the workspace (`publish = false`):
//!
//! - [`wait_until`] / [`try_wait_until`] / [`poll_until`] (and, with the `async` feature,
//!   `wait_until_async` / `try_wait_until_async` / `poll_until_async`, the last for a
//!   condition that itself awaits): one polling loop with a deadline instead of hand-written
//!   ones; also for "nothing bad happens for a while" checks, polling for the first
//!   violation;
//! - [`ChildGuard`]: a child process killed and reaped on drop (also on panic), signalled
//!   only while unreaped, with [`Lines`] to read its output with a deadline
//!   ([`Lines::find_before`]: the first line a predicate accepts);
//! - [`free_tcp_port`] / [`free_udp_port`]: fresh ports, never handed out twice;
//! - [`reachable_copy`]: a copy of a binary that another uid can run;
//! - `control` (feature `control`): a fake daemon for control-socket tests.

#[cfg(feature = "control")]
pub mod control;

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// How often [`wait_until`] polls.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `cond` every [`POLL`] until it returns `Some`, or `None` once `within` has passed
/// (after a last try).
pub fn try_wait_until<T>(within: Duration, cond: impl FnMut() -> Option<T>) -> Option<T> {
    poll_until(within, POLL, cond)
}

/// [`try_wait_until`] polling every `every` (a process that answers in milliseconds).
pub fn poll_until<T>(
    within: Duration,
    every: Duration,
    mut cond: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = cond() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// [`try_wait_until`] for async tests: sleeps on the tokio timer between polls, so the
/// runtime's other tasks (a server under test) keep running.
#[cfg(feature = "async")]
pub async fn try_wait_until_async<T>(
    within: Duration,
    mut cond: impl FnMut() -> Option<T>,
) -> Option<T> {
    poll_until_async(within, POLL, async || cond()).await
}

/// [`poll_until`] with an async condition (one that itself waits, e.g. sends and awaits an
/// answer), sleeping `every` on the tokio timer between tries (`Duration::ZERO`: try again
/// at once); `None` once `within` has passed (after a last try).
#[cfg(feature = "async")]
pub async fn poll_until_async<T>(
    within: Duration,
    every: Duration,
    mut cond: impl AsyncFnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = cond().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// [`wait_until`] for async tests; panics naming `what` when `within` passes first.
#[cfg(feature = "async")]
pub async fn wait_until_async<T>(
    what: &str,
    within: Duration,
    cond: impl FnMut() -> Option<T>,
) -> T {
    match try_wait_until_async(within, cond).await {
        Some(v) => v,
        None => panic!("not reached within {within:?}: {what}"),
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

/// A child process that is SIGKILLed and reaped when dropped (also when a test panics).
pub struct ChildGuard {
    child: Child,
    exit: Option<ExitStatus>,
}

impl ChildGuard {
    /// Takes ownership of `child`.
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard { child, exit: None }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `libc::SIGSTOP`) to the child, unless it has exited already
    /// (then its pid may belong to another process: nothing is sent).
    pub fn signal(&mut self, signal: i32) -> std::io::Result<()> {
        if self.try_exit().is_some() {
            return Ok(());
        }
        let pid = libc::pid_t::try_from(self.child.id()).map_err(std::io::Error::other)?;
        // SAFETY: kill(2) has no memory-safety preconditions; the child is not reaped yet
        // (reaping happens only in `try_exit` and on drop), so the pid is still ours.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// The child's stdin (only once; stdin must have been piped).
    pub fn take_stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// Waits up to `within` for the child to exit; panics naming `what` (and `context()`)
    /// when it is still running then.
    pub fn wait_exit(
        &mut self,
        what: &str,
        within: Duration,
        context: impl FnOnce() -> String,
    ) -> ExitStatus {
        wait_until(what, within, || self.try_exit(), context)
    }

    /// The child's stdout as a [`Lines`] reader (only once; stdout must have been piped).
    pub fn stdout_lines(&mut self) -> Lines {
        Lines::new(
            self.child
                .stdout
                .take()
                .expect("stdout piped and not taken yet"),
        )
    }

    /// Everything the child wrote on stdout (call after it exited; stdout must have been
    /// piped and not taken by [`ChildGuard::stdout_lines`]).
    pub fn stdout_text(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut s);
        }
        s
    }

    /// Everything the child wrote on stderr (call after it exited).
    pub fn stderr_text(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }

    /// Whether it exited already (without waiting).
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("waiting for a child");
        }
        self.exit
    }

    /// Waits up to `within` for the child to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, within: Duration) -> Option<ExitStatus> {
        try_wait_until(within, || self.try_exit())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Lines of a child's output, read by a background thread and received with a deadline.
pub struct Lines {
    rx: Receiver<String>,
}

impl Lines {
    /// Reads `reader` line by line on a thread until EOF.
    pub fn new(reader: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { rx }
    }

    /// The next line, waiting at most until `deadline`; `None` on timeout or EOF.
    pub fn next_before(&self, deadline: Instant) -> Option<String> {
        let left = deadline.saturating_duration_since(Instant::now());
        // Timeout and EOF (the reader thread ended) both mean "no line".
        self.rx.recv_timeout(left).ok()
    }

    /// Reads lines until `pred` accepts one and returns it; `None` when `deadline` passes or
    /// the output ends first. `pred` sees every line read, in order.
    pub fn find_before(
        &self,
        deadline: Instant,
        mut pred: impl FnMut(&str) -> bool,
    ) -> Option<String> {
        while let Some(line) = self.next_before(deadline) {
            if pred(&line) {
                return Some(line);
            }
        }
        None
    }
}

/// Ports this process handed out: never twice, even to tests on other threads.
static HANDED_OUT: std::sync::Mutex<Option<std::collections::HashSet<u16>>> =
    std::sync::Mutex::new(None);

/// Records `port` as used; false if this process already handed it out.
fn claim(port: u16) -> bool {
    let mut guard = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    guard
        .get_or_insert_with(std::collections::HashSet::new)
        .insert(port)
}

/// A random number (std's per-process random hash keys, mixed with time and pid).
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// A TCP port free on 127.0.0.1 right now (chosen by the kernel), whose next port up is free
/// too ("port in use" tests move a node there); never handed out twice by this process.
pub fn free_tcp_port() -> u16 {
    for _ in 0..1000 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("binding a TCP port on loopback");
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port.wrapping_add(1))).is_ok() && claim(port) {
            return port;
        }
    }
    panic!("no free TCP port found after 1000 tries");
}

/// A UDP port for one test's discovery broadcasts: from 20000..32000 (below Linux's
/// ephemeral range, so no outgoing socket takes it meanwhile), free on loopback and on every
/// address (a daemon binds it on 0.0.0.0), never handed out twice by this process.
pub fn free_udp_port() -> u16 {
    for _ in 0..1000 {
        let port = 20000 + (random() % 12000) as u16;
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
            && UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
            && claim(port)
        {
            return port;
        }
    }
    panic!("no free UDP port found in 20000..32000 after 1000 tries");
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn wait_until_returns_the_first_value_and_gives_up_after_the_deadline() {
        let mut n = 0;
        let got = wait_until(
            "three tries",
            Duration::from_secs(5),
            || {
                n += 1;
                (n == 3).then_some(n)
            },
            String::new,
        );
        assert_eq!(got, 3);
        let start = Instant::now();
        assert_eq!(
            try_wait_until(Duration::from_millis(100), || None::<()>),
            None
        );
        assert!(start.elapsed() >= Duration::from_millis(100));
    }

    #[test]
    fn find_before_returns_the_first_accepted_line_and_none_at_the_end() {
        let lines = Lines::new(std::io::Cursor::new(b"a\nb\nc\n".to_vec()));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = Vec::new();
        let found = lines.find_before(deadline, |l| {
            seen.push(l.to_owned());
            l == "b"
        });
        assert_eq!(found.as_deref(), Some("b"));
        assert_eq!(seen, ["a", "b"]);
        assert_eq!(lines.find_before(deadline, |l| l == "z"), None);
        assert!(Instant::now() < deadline, "EOF ends the search at once");
    }

    #[test]
    fn a_child_guard_signals_until_the_child_is_reaped_and_kills_on_drop() {
        let mut sleeper = ChildGuard::new(Command::new("sleep").arg("30").spawn().unwrap());
        sleeper.signal(libc::SIGTERM).unwrap();
        let st = sleeper.wait_exit(
            "sleep exits on SIGTERM",
            Duration::from_secs(10),
            String::new,
        );
        assert!(!st.success());
        // Reaped: nothing is sent to a pid that may be another process's by now.
        sleeper.signal(libc::SIGKILL).unwrap();

        let other = ChildGuard::new(Command::new("sleep").arg("30").spawn().unwrap());
        let pid = libc::pid_t::try_from(other.id()).unwrap();
        drop(other);
        // SAFETY: signal 0 only checks that the pid exists.
        assert_eq!(
            unsafe { libc::kill(pid, 0) },
            -1,
            "killed and reaped on drop"
        );
    }

    #[cfg(feature = "async")]
    #[tokio::test]
    async fn poll_until_async_awaits_its_condition() {
        let mut tries = 0;
        let got = poll_until_async(Duration::from_secs(5), Duration::ZERO, async || {
            tokio::time::sleep(Duration::from_millis(1)).await;
            tries += 1;
            (tries == 3).then_some(tries)
        })
        .await;
        assert_eq!(got, Some(3));
        let none = poll_until_async(Duration::from_millis(50), POLL, async || None::<()>).await;
        assert_eq!(none, None);
    }
}
