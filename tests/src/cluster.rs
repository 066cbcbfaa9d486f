//! A test cluster: one temp dir, one fresh broadcast port, the nodes' logs, and polling helpers
//! that print every node's log when a condition is not reached in time.

use crate::bins::{quorumctl_bin, quorumd_bin};
use crate::hooks::Hook;
use crate::node::Node;
use crate::ports;
use crate::proc::ChildGuard;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long correctness conditions get to become true (CI is a busy 2-core box).
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Poll interval of [`Cluster::wait_for`] and [`Cluster::hold`].
const POLL: Duration = Duration::from_millis(50);

/// The timer profile nodes of a cluster are started with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// `--profile fast` (~5x faster timers): most tests.
    Fast,
    /// The default timers (no `--profile` flag).
    Default,
}

/// Nodes sharing a temp dir and a broadcast port on 127.255.255.255.
pub struct Cluster {
    dir: tempfile::TempDir,
    broadcast_port: u16,
    profile: Profile,
    /// (node name, log file) of every node ever started, for failure reports.
    logs: Mutex<Vec<(String, PathBuf)>>,
}

impl Cluster {
    /// A cluster whose nodes use `--profile fast`.
    pub fn new() -> Cluster {
        Cluster::with_profile(Profile::Fast)
    }

    /// A cluster whose nodes use `profile`.
    pub fn with_profile(profile: Profile) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("quorum-e2e-")
            .tempdir()
            .expect("creating a temp dir");
        Cluster {
            dir,
            broadcast_port: ports::broadcast_port(),
            profile,
            logs: Mutex::new(Vec::new()),
        }
    }

    /// The temp dir holding sockets, logs, hooks and state.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The discovery port every node of this cluster broadcasts to.
    pub fn broadcast_port(&self) -> u16 {
        self.broadcast_port
    }

    /// A fresh TCP port for a node.
    pub fn tcp_port(&self) -> u16 {
        ports::tcp_port()
    }

    /// Writes a recording hook script `<label>.sh` in the temp dir (see [`Hook::write`]).
    pub fn hook(&self, label: &str) -> Hook {
        Hook::write(self.dir(), label, false)
    }

    /// A hook whose first run hangs (`sleep 1000`) and later runs record (see [`Hook::write`]).
    pub fn hanging_hook(&self, label: &str) -> Hook {
        Hook::write(self.dir(), label, true)
    }

    /// The `quorumd` command line for node `name` on `port`, with `extra` arguments appended.
    pub fn command(&self, name: &str, port: u16, extra: &[&str]) -> Command {
        let mut cmd = Command::new(quorumd_bin());
        cmd.arg("127.0.0.1")
            .arg(port.to_string())
            .arg("127.255.255.255")
            .arg(self.broadcast_port.to_string())
            .arg("-n")
            .arg(name)
            .arg("--socket")
            .arg(self.socket_path(name))
            .arg("--state-dir")
            .arg(self.dir().join("state"));
        if self.profile == Profile::Fast {
            cmd.args(["--profile", "fast"]);
        }
        cmd.args(extra);
        cmd
    }

    /// The control socket path a node called `name` gets.
    pub fn socket_path(&self, name: &str) -> PathBuf {
        self.dir().join(format!("{name}.sock"))
    }

    /// Starts `cmd` as node `name` (its socket at `socket`) without waiting for it.
    pub fn spawn_command(&self, name: &str, port: u16, socket: PathBuf, mut cmd: Command) -> Node {
        let log = self.new_log_path(name);
        let file = File::create(&log).expect("creating a node log file");
        // Environment from the caller's shell must not configure the daemon behind our back.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("QUORUMD_") {
                cmd.env_remove(&key);
            }
        }
        cmd.env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                file.try_clone().expect("duplicating a log file handle"),
            ))
            .stderr(Stdio::from(file));
        // SAFETY: the closure only calls prctl(2), which is async-signal-safe. It makes the
        // kernel SIGKILL the daemon if the test thread dies without running destructors.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("starting quorumd");
        Node {
            name: name.to_owned(),
            port,
            socket,
            log,
            child: ChildGuard::new(child),
        }
    }

    /// Starts node `name` on `port` with `extra` arguments, without waiting for it.
    pub fn spawn_on(&self, name: &str, port: u16, extra: &[&str]) -> Node {
        let cmd = self.command(name, port, extra);
        self.spawn_command(name, port, self.socket_path(name), cmd)
    }

    /// Starts node `name` on a fresh port and waits until its control socket answers.
    pub fn start(&self, name: &str, extra: &[&str]) -> Node {
        let node = self.spawn_on(name, self.tcp_port(), extra);
        self.wait_up(node)
    }

    /// Starts node `name` on `port` and waits until its control socket answers.
    pub fn start_on(&self, name: &str, port: u16, extra: &[&str]) -> Node {
        let node = self.spawn_on(name, port, extra);
        self.wait_up(node)
    }

    /// Starts `names` one after the other (so the first is the oldest), each with `extra`.
    pub fn start_all(&self, names: &[&str], extra: &[&str]) -> Vec<Node> {
        names.iter().map(|n| self.start(n, extra)).collect()
    }

    /// Waits until `node`'s control socket answers status; panics with the logs if it exits.
    pub fn wait_up(&self, mut node: Node) -> Node {
        let up = testkit::try_wait_until(DEADLINE, || {
            if node.status_json().is_some() {
                return Some(Ok(()));
            }
            node.try_exit().map(Err)
        });
        match up {
            Some(Ok(())) => node,
            Some(Err(status)) => panic!(
                "quorumd {} exited during start-up with {status}\n{}",
                node.name(),
                self.logs()
            ),
            None => panic!(
                "quorumd {} did not answer on its socket within {DEADLINE:?}\n{}",
                node.name(),
                self.logs()
            ),
        }
    }

    /// Polls `cond` until it holds; panics naming `what`, with every node's log, if it does
    /// not within `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
        testkit::wait_until(what, timeout, || cond().then_some(()), || self.logs());
    }

    /// Checks `cond` every 50 ms for `window`; panics naming `what`, with the logs, the first
    /// time it does not hold (for "nothing changes" assertions).
    pub fn hold(&self, what: &str, window: Duration, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        // The first time it does not hold, if it does not for the whole window.
        let broken = testkit::poll_until(window, POLL, || (!cond()).then(|| start.elapsed()));
        if let Some(after) = broken {
            panic!("stopped holding after {after:?}: {what}\n{}", self.logs());
        }
    }

    /// Waits until every node in `nodes` reports `master` as its master and is not starting.
    pub fn wait_master(&self, nodes: &[&Node], master: &str) {
        let names: Vec<&str> = nodes.iter().map(|n| n.name()).collect();
        self.wait_for(
            &format!("{names:?} all report master {master}"),
            DEADLINE,
            || {
                nodes.iter().all(|n| {
                    n.status_json().is_some_and(|s| {
                        s["master"].as_str() == Some(master)
                            && s["role"].as_str() != Some("starting")
                    })
                })
            },
        );
    }

    /// Runs `quorumctl ARGS` with no `--socket` added (and `QUORUMD_SOCKET` unset).
    pub fn quorumctl(&self, args: &[&str]) -> Output {
        Command::new(quorumctl_bin())
            .args(args)
            .env_remove("QUORUMD_SOCKET")
            .stdin(Stdio::null())
            .output()
            .expect("running quorumctl")
    }

    /// Every node's log, labelled, for failure messages.
    pub fn logs(&self) -> String {
        let logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, path) in logs.iter() {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            out.push_str(&format!(
                "--- log of {name} ({}) ---\n{text}\n",
                path.display()
            ));
        }
        out
    }

    /// A log file name not used yet for `name` (a restarted node gets `name.2.log`, ...).
    fn new_log_path(&self, name: &str) -> PathBuf {
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        let n = logs.iter().filter(|(n, _)| n == name).count();
        let file = if n == 0 {
            format!("{name}.log")
        } else {
            format!("{name}.{}.log", n + 1)
        };
        let path = self.dir().join(file);
        logs.push((name.to_owned(), path.clone()));
        path
    }
}

impl Default for Cluster {
    fn default() -> Self {
        Cluster::new()
    }
}
