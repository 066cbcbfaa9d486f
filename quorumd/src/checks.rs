//! Health checks (`--check CMD`): keepalived's `vrrp_script`/`track_script`.
//!
//! Each check runs `sh -c CMD` every `interval` in its own task (never in the driver's loop,
//! so a slow check cannot delay heartbeats), in its own process group, killed at `timeout`
//! like a hook. A passing check turns failing after `fall` failures in a row and passing again
//! after `rise` successes in a row; checks start out passing (as keepalived's do). Every
//! result goes to the driver, which holds the node back from mastership while any check fails.

use common::control::CheckState;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Longest output line kept for `status`.
const MAX_OUTPUT: usize = 200;

/// The checks and their timers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckSettings {
    /// Commands, run with `sh -c`.
    pub commands: Vec<String>,
    /// Time between runs of one check.
    pub interval: Duration,
    /// A run longer than this is killed and counts as a failure.
    pub timeout: Duration,
    /// Successes in a row that make a failing check pass.
    pub rise: u32,
    /// Failures in a row that make a passing check fail.
    pub fall: u32,
}

impl Default for CheckSettings {
    fn default() -> Self {
        CheckSettings {
            commands: Vec::new(),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(2),
            rise: 2,
            fall: 2,
        }
    }
}

/// One check's result, sent to the driver after every run.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// Index in the configured list.
    pub index: usize,
    /// The state after this run.
    pub state: CheckState,
}

/// The counting of one check: a state that flips after `rise`/`fall` results in a row.
#[derive(Debug)]
pub struct Counter {
    passing: bool,
    streak: u32,
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            passing: true,
            streak: 0,
        }
    }
}

impl Counter {
    /// Counts one result; returns whether the check passes now.
    pub fn record(&mut self, ok: bool, rise: u32, fall: u32) -> bool {
        if ok == self.passing {
            self.streak = 0;
        } else {
            self.streak += 1;
            if self.streak >= if ok { rise } else { fall } {
                self.passing = ok;
                self.streak = 0;
            }
        }
        self.passing
    }
}

/// Starts one task per check; they stop when `cancel` fires. The initial states (all
/// passing, never run) are returned for the status.
pub fn spawn(
    settings: &CheckSettings,
    reports: mpsc::UnboundedSender<CheckReport>,
    cancel: CancellationToken,
) -> Vec<CheckState> {
    let mut initial = Vec::new();
    for (index, command) in settings.commands.iter().enumerate() {
        initial.push(CheckState {
            command: command.clone(),
            passing: true,
            exit_code: None,
            output: String::new(),
        });
        let settings = settings.clone();
        let command = command.clone();
        let reports = reports.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut counter = Counter::default();
            let mut tick = tokio::time::interval(settings.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let (ok, exit_code, output) = run_once(&command, settings.timeout).await;
                crate::metrics::METRICS.check_result(&command, ok);
                let was = counter.passing;
                let passing = counter.record(ok, settings.rise, settings.fall);
                if passing != was {
                    if passing {
                        info!(check = %command, "check passing again");
                    } else {
                        warn!(check = %command, exit_code, %output, "check failing");
                    }
                }
                let state = CheckState {
                    command: command.clone(),
                    passing,
                    exit_code,
                    output,
                };
                if reports.send(CheckReport { index, state }).is_err() {
                    return;
                }
            }
        });
    }
    initial
}

/// Runs the check once: (success, exit code, first output line).
async fn run_once(command: &str, timeout: Duration) -> (bool, Option<i32>, String) {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (false, None, format!("cannot start: {e}")),
    };
    let pid = child.id();
    let out = child.stdout.take().map(|o| tokio::spawn(first_line(o)));
    let err = child.stderr.take().map(|e| tokio::spawn(first_line(e)));
    let (ok, code, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => (status.success(), status.code(), false),
        Ok(Err(e)) => return (false, None, format!("wait failed: {e}")),
        Err(_) => {
            crate::hooks::kill_group(&mut child, pid).await;
            (false, None, true)
        }
    };
    let mut line = String::new();
    for reader in [out, err].into_iter().flatten() {
        let abort = reader.abort_handle();
        match tokio::time::timeout(Duration::from_millis(200), reader).await {
            Ok(Ok(l)) if line.is_empty() => line = l,
            Ok(_) => {}
            Err(_) => abort.abort(),
        }
    }
    if timed_out {
        line = format!("timed out after {}ms, killed", timeout.as_millis());
    }
    (ok, code, line)
}

async fn first_line(pipe: impl AsyncRead + Unpin) -> String {
    let mut lines = BufReader::new(pipe).lines();
    let mut first = String::new();
    while let Ok(Some(l)) = lines.next_line().await {
        if first.is_empty() && !l.trim().is_empty() {
            first = l
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_OUTPUT)
                .collect();
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::Counter;

    #[test]
    fn a_check_falls_after_fall_failures_and_rises_after_rise_successes() {
        let mut c = Counter::default();
        assert!(c.record(false, 2, 3));
        assert!(c.record(false, 2, 3));
        assert!(!c.record(false, 2, 3));
        assert!(!c.record(true, 2, 3));
        // A failure in between starts the count again.
        assert!(!c.record(false, 2, 3));
        assert!(!c.record(true, 2, 3));
        assert!(c.record(true, 2, 3));
    }
}
