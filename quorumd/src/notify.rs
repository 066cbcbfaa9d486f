//! systemd's sd_notify protocol (`Type=notify`): READY, STATUS, STOPPING and the watchdog.
//!
//! Every function is a no-op when the daemon does not run under systemd (no `NOTIFY_SOCKET`),
//! and a failure to notify is logged at debug, never fatal: the daemon's job is the election.

use sd_notify::NotifyState;
use std::time::Duration;
use tracing::debug;

fn send(state: &[NotifyState]) {
    // unset_env = false: we notify many times over the process lifetime.
    if let Err(e) = sd_notify::notify(false, state) {
        debug!(error = %e, "sd_notify failed");
    }
}

/// READY=1: the sockets are bound (no-op without NOTIFY_SOCKET).
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// STATUS=`line`: the one-line status `systemctl status` shows (role, master, epoch).
pub fn status(line: &str) {
    // A newline would end the STATUS= assignment and start a bogus one.
    let line = line.replace(['\n', '\r'], " ");
    send(&[NotifyState::Status(&line)]);
}

/// STOPPING=1: the daemon is leaving (dispatch).
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// If the service manager set WATCHDOG_USEC, spawn a task sending WATCHDOG=1 every half
/// period, but only while `alive()` says the caller's main loop is turning: a wedged election
/// loop must let systemd's watchdog fire, not be hidden by a healthy helper task.
pub fn spawn_watchdog(
    alive: impl Fn(Duration) -> bool + Send + 'static,
) -> Option<tokio::task::JoinHandle<()>> {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return None;
    }
    let period = Duration::from_micros(usec / 2).max(Duration::from_millis(1));
    debug!(
        period_ms = period.as_millis() as u64,
        "systemd watchdog enabled"
    );
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if alive(period) {
                send(&[NotifyState::Watchdog]);
            } else {
                tracing::warn!("election loop stalled; withholding the watchdog ping");
            }
        }
    }))
}
