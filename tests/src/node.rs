//! One `quorumd` process and the ways a test talks to it: signals, exit status, `quorumctl`.
//!
//! Dropping a [`Node`] SIGKILLs and reaps the daemon: no stray daemons, even when a test panics.

use crate::bins::quorumctl_bin;
use crate::proc::ChildGuard;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::Duration;

/// A running (or exited) `quorumd`.
pub struct Node {
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) socket: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) child: ChildGuard,
}

impl Node {
    /// The name given with `-n` (a `quorumctl rename` does not change it here).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The TCP port requested on the command line (the daemon may have moved to the next one).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The control socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The file holding the daemon's stderr (its log).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `libc::SIGKILL`) to the daemon, unless it was already reaped.
    pub fn kill(&mut self, signal: i32) {
        let pid = self.child.id();
        if let Err(e) = self.child.signal(signal) {
            panic!("kill({pid}, {signal}) failed: {e}");
        }
    }

    /// The exit status if the daemon has exited (reaping it), else `None`.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        self.child.try_exit()
    }

    /// Waits up to `timeout` for the daemon to exit; panics with its log if it does not.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        match testkit::try_wait_until(timeout, || self.try_exit()) {
            Some(status) => status,
            None => panic!(
                "quorumd {} did not exit within {timeout:?}\n--- log of {} ---\n{}",
                self.name,
                self.name,
                self.log()
            ),
        }
    }

    /// A `quorumctl --socket <this node's socket> ARGS` command, not started yet.
    pub fn ctl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(quorumctl_bin());
        cmd.arg("--socket").arg(&self.socket).args(args);
        cmd.env_remove("QUORUMD_SOCKET").stdin(Stdio::null());
        cmd
    }

    /// Runs `quorumctl ARGS` against this node and returns its output.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_command(args).output().expect("running quorumctl")
    }

    /// Starts a long-running `quorumctl ARGS` (follow, wait) with stdout and stderr piped.
    pub fn ctl_spawn(&self, args: &[&str]) -> ChildGuard {
        let child = self
            .ctl_command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting quorumctl");
        ChildGuard::new(child)
    }

    /// `quorumctl --json status` parsed, or `None` if the daemon does not answer (yet).
    pub fn status_json(&self) -> Option<Value> {
        let out = self.ctl(&["--json", "status"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// This node's role (`quorumctl role`), or `None` if it does not answer.
    pub fn role(&self) -> Option<String> {
        let out = self.ctl(&["role"]);
        if !out.status.success() {
            return None;
        }
        Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The master this node follows (`null` -> `None`), or `None` if it does not answer.
    pub fn master(&self) -> Option<String> {
        self.status_json()
            .and_then(|s| s.get("master").and_then(Value::as_str).map(str::to_owned))
    }

    /// The member entries named `name` in this node's members table (empty if it does not
    /// answer).
    pub fn members_named(&self, name: &str) -> Vec<Value> {
        self.status_json()
            .and_then(|s| s.get("members").and_then(Value::as_array).cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.get("name").and_then(Value::as_str) == Some(name))
            .collect()
    }

    /// The single member entry named `name`, if there is exactly one.
    pub fn member(&self, name: &str) -> Option<Value> {
        let mut found = self.members_named(name);
        if found.len() == 1 { found.pop() } else { None }
    }

    /// The state (`alive`, `lost`, `dispatched`) of member `name` as this node sees it.
    pub fn member_state(&self, name: &str) -> Option<String> {
        self.member(name)
            .and_then(|m| m.get("state").and_then(Value::as_str).map(str::to_owned))
    }
}

impl Node {
    /// `quorumctl --json status` parsed; panics with the log if the node does not answer.
    pub fn status(&self) -> Value {
        match self.status_json() {
            Some(s) => s,
            None => panic!(
                "quorumd {} does not answer status\n--- log of {} ---\n{}",
                self.name,
                self.name,
                self.log()
            ),
        }
    }
}
