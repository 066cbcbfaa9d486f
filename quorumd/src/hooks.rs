//! Role-change hooks: the master, slave and notify scripts (docs/ALGORITHM.md, rule 12).
//!
//! The driver [`HookRunner::submit`]s a [`HookEvent`] for every role or master change; a
//! single worker task runs the hooks one at a time, in submission order, so the election
//! loop never waits for a script. For each event the worker runs the master script (role
//! master) or the slave script (any other role), then the notify script.
//!
//! Each script is executed directly (no shell) with stdin from /dev/null, in its own process
//! group, with `QUORUM_ROLE`, `QUORUM_PREVIOUS_ROLE`, `QUORUM_MASTER`, `QUORUM_EPOCH`,
//! `QUORUM_NODE` and `QUORUM_EVENT` added to the daemon's environment. Its stdout lines are
//! logged at info, stderr lines at warn. A script running past the timeout gets SIGTERM on its
//! whole process group, SIGKILL two seconds later, and is always reaped.
//!
//! A non-executable `*.py` script runs as `python3 <file>`, like the original's scripts.

use common::types::Role;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// How long a timed-out hook's process group has between SIGTERM and SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// How long output of a finished hook is still collected: a background process it started may
/// hold the pipe open forever, and must not stall the next hook.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// Longest output line logged as one line; longer lines are cut (memory stays bounded).
const MAX_LINE: usize = 8 * 1024;

/// One role or master change, as the hooks see it.
#[derive(Clone, Debug)]
pub struct HookEvent {
    /// The new role (`QUORUM_ROLE`).
    pub role: Role,
    /// The role before (`QUORUM_PREVIOUS_ROLE`).
    pub previous: Role,
    /// The master this node knows (`QUORUM_MASTER`; empty string if none).
    pub master: Option<String>,
    /// Cluster epoch (`QUORUM_EPOCH`).
    pub epoch: u64,
    /// This node's name (`QUORUM_NODE`).
    pub node: String,
    /// Why it runs (`QUORUM_EVENT`).
    pub kind: HookKind,
    /// Set when role == Master: the lease end. A master hook whose lease already ran out when
    /// its turn comes is skipped with a warning (a frozen/late process must not act as master).
    pub master_until: Option<Instant>,
    /// Where the master is, its peer address and port (`QUORUM_MASTER_ADDR`,
    /// `QUORUM_MASTER_PORT`; empty if none), the counted members (`QUORUM_MEMBERS`, names
    /// separated by spaces) and why the hook runs (`QUORUM_REASON`).
    pub context: HookContext,
}

/// What replicas need besides the role: where the master is, who counts, why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HookContext {
    /// The master's peer address and port.
    pub master_addr: Option<(String, u16)>,
    /// Counted members' names, self included.
    pub members: Vec<String>,
    /// Why the role changed (`QUORUM_REASON`).
    pub reason: String,
}

/// Why a hook runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookKind {
    /// This node's role changed (`QUORUM_EVENT=role`).
    Role,
    /// The master this node follows changed, its role did not (`QUORUM_EVENT=master`).
    Master,
}

impl HookKind {
    /// The value of `QUORUM_EVENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::Role => "role",
            HookKind::Master => "master",
        }
    }
}

/// The configured scripts and their timeout.
#[derive(Clone, Debug, Default)]
pub struct HookScripts {
    /// `-m/--master-script`.
    pub master: Option<PathBuf>,
    /// `-s/--slave-script`.
    pub slave: Option<PathBuf>,
    /// `--notify`.
    pub notify: Option<PathBuf>,
    /// Kill a hook that runs longer.
    pub timeout: Duration,
}

impl HookScripts {
    /// Refuse at start: a configured hook that is missing, not a regular file, not
    /// executable (unless it ends in .py: then it runs as `python3 <file>`, the original's
    /// scripts), or executable but without a `#!` line and not an ELF binary (it would fail
    /// with "Exec format error" at every role change) -> error naming the flag and path.
    pub fn validate(&self) -> anyhow::Result<()> {
        let hooks = [
            ("--master-script", &self.master),
            ("--slave-script", &self.slave),
            ("--notify", &self.notify),
        ];
        for (flag, path) in hooks {
            let Some(path) = path else { continue };
            let meta = std::fs::metadata(path)
                .map_err(|e| anyhow::anyhow!("{flag} {}: {e}", path.display()))?;
            if !meta.is_file() {
                anyhow::bail!("{flag} {}: not a regular file", path.display());
            }
            if is_executable(&meta) && !is_runnable(path) {
                anyhow::bail!(
                    "{flag} {}: executable but neither a script with a #! line nor an ELF \
                     binary, so it cannot be run (add e.g. #!/bin/sh as its first line)",
                    path.display()
                );
            }
            if !is_executable(&meta) {
                if !is_python(path) {
                    anyhow::bail!(
                        "{flag} {}: not executable (chmod +x it; only *.py files run without, with python3)",
                        path.display()
                    );
                }
                if find_in_path("python3").is_none() {
                    anyhow::bail!(
                        "{flag} {}: not executable and python3, needed to run it, is not in PATH",
                        path.display()
                    );
                }
            }
        }
        Ok(())
    }
}

/// Whether the kernel can exec `path`: it starts with `#!` (a script) or is an ELF binary.
fn is_runnable(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    head[..n].starts_with(b"#!") || head[..n] == *b"\x7fELF"
}

/// Runs hooks one at a time on its own task.
pub struct HookRunner {
    tx: mpsc::UnboundedSender<HookEvent>,
    scripts: tokio::sync::watch::Sender<HookScripts>,
    worker: JoinHandle<()>,
}

impl HookRunner {
    /// Spawn the sequential worker task.
    pub fn spawn(scripts: HookScripts) -> HookRunner {
        Self::spawn_with_lease(scripts, None)
    }

    /// Like [`HookRunner::spawn`], with the daemon's live lease: a master hook runs only if
    /// the node still holds its lease when the hook's turn comes (an earlier hook may have
    /// been slow; the lease in the event itself is only its value when it was queued).
    pub fn spawn_with_lease(
        scripts: HookScripts,
        lease: Option<tokio::sync::watch::Receiver<Option<Instant>>>,
    ) -> HookRunner {
        let (tx, mut rx) = mpsc::unbounded_channel::<HookEvent>();
        let (scripts_tx, scripts_rx) = tokio::sync::watch::channel(scripts);
        let worker = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut event = coalesce(first, &mut rx);
                if let (Some(lease), Role::Master) = (&lease, event.role) {
                    event.master_until = *lease.borrow();
                    if event.master_until.is_none() {
                        // Stepped down meanwhile: the lease is gone.
                        event.master_until = Some(Instant::now());
                    }
                }
                let scripts = scripts_rx.borrow().clone();
                run_event(&scripts, &event).await;
            }
        });
        HookRunner {
            tx,
            scripts: scripts_tx,
            worker,
        }
    }

    /// Hooks queued from now on run these scripts (reload).
    pub fn set_scripts(&self, scripts: HookScripts) {
        self.scripts.send_replace(scripts);
    }

    /// Queue a hook run; never blocks, never fails. The queue holds only what happens while
    /// one hook runs (at most the hook timeout); a backlog longer than `HOOK_BACKLOG` is
    /// coalesced to the latest state before the next run (docs/ALGORITHM.md, rule 12: the
    /// last hook run matches the current state).
    pub fn submit(&self, event: HookEvent) {
        if self.tx.send(event).is_err() {
            // Only if the worker panicked: nothing left to run hooks with.
            warn!("hook worker is gone; hook event dropped");
        }
    }

    /// Close the queue and wait until every queued hook has finished (used by dispatch).
    pub async fn drain(self) {
        let HookRunner { tx, worker, .. } = self;
        drop(tx);
        if let Err(e) = worker.await {
            warn!(error = %e, "hook worker ended abnormally");
        }
    }
}

/// Events queued beyond this (a flapping master while a hook runs) are coalesced.
const HOOK_BACKLOG: usize = 16;

/// When more than [`HOOK_BACKLOG`] events wait, everything queued behind `first` collapses
/// into one event: the latest state, with the role before the whole batch as `previous`
/// (what the last hook run reported). A short backlog runs event by event.
fn coalesce(first: HookEvent, rx: &mut mpsc::UnboundedReceiver<HookEvent>) -> HookEvent {
    let mut event = first;
    if rx.len() < HOOK_BACKLOG {
        return event;
    }
    let mut skipped = 0u64;
    while let Ok(next) = rx.try_recv() {
        skipped = skipped.saturating_add(1);
        event = HookEvent {
            previous: event.previous,
            kind: if next.role != event.previous {
                HookKind::Role
            } else {
                next.kind
            },
            ..next
        };
    }
    if skipped > 0 {
        debug!(
            skipped,
            "hook events coalesced: running the latest state only"
        );
    }
    event
}

/// Which hook of an event, for logs.
#[derive(Clone, Copy)]
enum Which {
    Master,
    Slave,
    Notify,
}

impl Which {
    fn as_str(self) -> &'static str {
        match self {
            Which::Master => "master",
            Which::Slave => "slave",
            Which::Notify => "notify",
        }
    }
}

async fn run_event(scripts: &HookScripts, event: &HookEvent) {
    let (which, main) = if event.role == Role::Master {
        (Which::Master, &scripts.master)
    } else {
        (Which::Slave, &scripts.slave)
    };
    for (which, script) in [(which, main), (Which::Notify, &scripts.notify)] {
        let Some(script) = script else { continue };
        if is_stale(event) {
            warn!(
                hook = which.as_str(),
                script = %script.display(),
                role = %event.role,
                epoch = event.epoch,
                "hook skipped: the master lease already ran out"
            );
            continue;
        }
        run_one(which, script, event, scripts.timeout).await;
    }
}

/// A master event whose lease has run out by the time its hook's turn comes.
fn is_stale(event: &HookEvent) -> bool {
    event.role == Role::Master
        && event
            .master_until
            .is_some_and(|until| until <= Instant::now())
}

fn command_for(script: &Path) -> Command {
    let run_with_python = std::fs::metadata(script)
        .map(|m| !is_executable(&m))
        .unwrap_or(false)
        && is_python(script);
    if run_with_python {
        let mut cmd = Command::new("python3");
        cmd.arg(script);
        cmd
    } else {
        Command::new(script)
    }
}

async fn run_one(which: Which, script: &Path, event: &HookEvent, timeout: Duration) {
    let hook = which.as_str();
    let shown = script.display();
    let role = event.role;
    let mut cmd = command_for(script);
    cmd.env("QUORUM_ROLE", role.as_str())
        .env("QUORUM_PREVIOUS_ROLE", event.previous.as_str())
        .env("QUORUM_MASTER", event.master.as_deref().unwrap_or(""))
        .env("QUORUM_EPOCH", event.epoch.to_string())
        .env("QUORUM_NODE", &event.node)
        .env("QUORUM_EVENT", event.kind.as_str())
        .env(
            "QUORUM_MASTER_ADDR",
            event
                .context
                .master_addr
                .as_ref()
                .map_or("", |(a, _)| a.as_str()),
        )
        .env(
            "QUORUM_MASTER_PORT",
            event
                .context
                .master_addr
                .as_ref()
                .map_or(String::new(), |(_, p)| p.to_string()),
        )
        .env("QUORUM_MEMBERS", event.context.members.join(" "))
        .env("QUORUM_REASON", &event.context.reason)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = match spawn_when_not_busy(&mut cmd).await {
        Ok(child) => child,
        Err(e) => {
            warn!(hook, script = %shown, %role, error = %e, "hook failed to start");
            return;
        }
    };
    info!(hook, script = %shown, %role, previous = %event.previous, epoch = event.epoch, "hook started");
    let pid = child.id();
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(tokio::spawn(log_lines(
            out,
            hook,
            script.to_path_buf(),
            role,
            false,
        )));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(tokio::spawn(log_lines(
            err,
            hook,
            script.to_path_buf(),
            role,
            true,
        )));
    }

    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            let duration_ms = started.elapsed().as_millis() as u64;
            crate::metrics::METRICS.hook_run(
                hook,
                status.success(),
                started.elapsed().as_secs_f64(),
            );
            if status.success() {
                info!(hook, script = %shown, %role, exit_code = 0, duration_ms, "hook finished");
            } else if let Some(exit_code) = status.code() {
                warn!(hook, script = %shown, %role, exit_code, duration_ms, "hook finished with failure");
            } else {
                let signal = std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0);
                warn!(hook, script = %shown, %role, signal, duration_ms, "hook finished, killed by a signal");
            }
        }
        Ok(Err(e)) => warn!(hook, script = %shown, %role, error = %e, "waiting for hook failed"),
        Err(_) => {
            kill_group(&mut child, pid).await;
            crate::metrics::METRICS.hook_run(hook, false, started.elapsed().as_secs_f64());
            warn!(hook, script = %shown, %role, timeout_ms = timeout.as_millis() as u64,
                "hook timed out, killed");
        }
    }

    // The hook is done; its output pipes may still be held by processes it left behind.
    let deadline = Instant::now() + OUTPUT_GRACE;
    for reader in readers {
        let abort = reader.abort_handle();
        if tokio::time::timeout_at(deadline, reader).await.is_err() {
            abort.abort();
        }
    }
}

/// SIGTERM the hook's process group, SIGKILL it after [`KILL_GRACE`], and reap the hook.
pub(crate) async fn kill_group(child: &mut Child, pid: Option<u32>) {
    // The group id is the hook's pid (process_group(0)). The hook is not reaped yet, so its
    // pid, and with it the group id, cannot have been reused.
    let pgid = pid.and_then(|p| libc::pid_t::try_from(p).ok());
    if let Some(pgid) = pgid {
        signal_group(pgid, libc::SIGTERM);
    }
    let exited = tokio::time::timeout(KILL_GRACE, child.wait()).await.is_ok();
    if let Some(pgid) = pgid {
        // Also when the leader exited on SIGTERM: children it left in the group may ignore
        // SIGTERM. Linux does not hand out a pid equal to a live process group's id, so this
        // reaches only the hook's own stragglers (or nobody: ESRCH).
        signal_group(pgid, libc::SIGKILL);
    }
    if !exited {
        let _ = child.start_kill();
        if let Err(e) = child.wait().await {
            warn!(error = %e, "reaping killed hook failed");
        }
    }
}

fn signal_group(pgid: libc::pid_t, signal: libc::c_int) {
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid addresses a group.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Logs each line of a hook's stdout and stderr at INFO with the hook's name, cutting lines at
/// [`MAX_LINE`].
async fn log_lines(
    pipe: impl AsyncRead + Unpin,
    hook: &'static str,
    script: PathBuf,
    role: Role,
    stderr: bool,
) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        // A longer line is cut; its remainder is logged as the next line.
        let mut limited = (&mut reader).take(MAX_LINE as u64);
        match limited.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        // Both at INFO: hooks write progress to stderr as often as errors; a failure shows
        // in the exit code, logged at WARN.
        if stderr {
            info!(hook, script = %script.display(), %role, line, "hook stderr");
        } else {
            info!(hook, script = %script.display(), %role, line, "hook stdout");
        }
    }
}

fn is_executable(meta: &std::fs::Metadata) -> bool {
    meta.permissions().mode() & 0o111 != 0
}

fn is_python(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "py")
}

/// The first `name` in `$PATH` that is an executable file.
fn find_in_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && is_executable(&m)))
}

/// Spawns `cmd`, trying again a few times (up to ~630 ms in all) while the kernel answers
/// "Text file busy": the script is open for writing somewhere, which lasts a moment while a
/// deploy tool or editor replaces it, or while any process that inherited the writer's
/// descriptor in a fork has not exec'd yet. Any other error is returned at once.
async fn spawn_when_not_busy(cmd: &mut Command) -> std::io::Result<Child> {
    let mut pause = Duration::from_millis(10);
    for _ in 0..6 {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            other => return other,
        }
    }
    cmd.spawn()
}
