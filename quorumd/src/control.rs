//! The control socket server: how `quorumctl` talks to the running daemon.
//!
//! Newline-delimited JSON over a Unix socket (the protocol types live in
//! [`common::control`]). Each client is served in its own task:
//!
//! ```text
//!  client ──line──> LineReader (bounded) ──> decode ──> permission check
//!                                                        │
//!      status / role / members: answered from the watch<Snapshot> (the driver is not asked)
//!      rename / dispatch / forget: Command + oneshot ──> driver ──> Reply
//!      follow: Following, Snapshot, then every broadcast Event until hang-up or shutdown
//! ```
//!
//! Nothing a client sends can disturb the daemon: lines are capped at
//! [`common::control::MAX_LINE`], bad lines get a `bad_request` reply, slow readers are
//! disconnected, and the number of clients is capped.
//!
//! - `auth`: who may change state (peer credentials vs the socket's group).
//! - `lines`: the bounded line reader.
//! - `session`: one client connection (requests, replies, follow streams).

mod auth;
mod lines;
mod session;
mod sockdir;

use anyhow::{Context, bail};
use common::control::{Event, Reply, Status};
use common::types::Role;
use session::Client;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// A write to a client that takes longer than this (its socket buffer is full) disconnects it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Clients served at once; further connections are closed at once (fd exhaustion guard).
const MAX_CLIENTS: usize = 256;
/// Of [`MAX_CLIENTS`], the last slots are kept for root and the daemon's own user, so a crowd
/// of other clients never locks out `dispatch`.
const PRIVILEGED_SLOTS: usize = 16;
/// How long `run` waits, after shutdown, for clients still writing a reply (e.g. `Dispatched`).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// What the driver publishes after every change (on a `tokio::sync::watch` channel).
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The status as of the driver's last change.
    pub status: Status,
    /// When this node's master lease runs out (None when it is not master).
    pub master_until: Option<Instant>,
}

impl Snapshot {
    /// The status as it is true *now*: if `status.role` is Master but `master_until` has passed
    /// (the process was frozen, or the driver has not ticked yet), report role Inquorate and
    /// master None. A node must never answer "master" after its lease ran out
    /// (docs/ALGORITHM.md, rule 1).
    /// A Master status without any `master_until` counts as expired (fail safe).
    pub fn effective(&self, now: Instant) -> Status {
        let mut status = self.status.clone();
        if self.lease_expired(now) {
            status.role = Role::Inquorate;
            status.master = None;
            for member in status.members.iter_mut().filter(|m| m.is_self) {
                member.role = Some(Role::Inquorate);
            }
        }
        status
    }

    /// `effective(now).role` without cloning the members table (`quorumctl role` is hot).
    fn effective_role(&self, now: Instant) -> Role {
        if self.lease_expired(now) {
            Role::Inquorate
        } else {
            self.status.role
        }
    }

    /// For a master: the lease end on `CLOCK_MONOTONIC` (ns), for clients on this host to
    /// check when they read the answer.
    pub fn valid_until_ns(&self, now: Instant) -> Option<u64> {
        if self.lease_expired(now) || self.status.role != Role::Master {
            return None;
        }
        let left = self.master_until?.saturating_duration_since(now);
        Some(monotonic_ns().saturating_add(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX)))
    }

    fn lease_expired(&self, now: Instant) -> bool {
        self.status.role == Role::Master && self.master_until.is_none_or(|until| now >= until)
    }
}

/// State-changing requests forwarded to the driver; it answers on `reply`.
#[derive(Debug)]
pub enum Command {
    /// Rename this node.
    Rename {
        /// The requested name (not validated here: the driver knows the cluster's names).
        name: String,
        /// Where the driver answers.
        reply: oneshot::Sender<Reply>,
    },
    /// The driver answers Ok(Response::Dispatched) only after handover + hook, right before exit.
    Dispatch {
        /// Where the driver answers.
        reply: oneshot::Sender<Reply>,
    },
    /// Remove a lost member from the count.
    Forget {
        /// The member's name.
        name: String,
        /// Where the driver answers.
        reply: oneshot::Sender<Reply>,
    },
    /// Rebuild the published snapshot now (members' `last heard`, traffic, metrics): the
    /// driver rebuilds it only on news otherwise. Answered once it is published.
    Refresh {
        /// Where the driver answers.
        reply: oneshot::Sender<()>,
    },
    /// Step down, resume, maintenance on or off.
    Hold {
        /// The change.
        change: HoldChange,
        /// Where the driver answers.
        reply: oneshot::Sender<Reply>,
    },
}

/// An operator's change to this node's eligibility for mastership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldChange {
    /// Hand over now; eligible again after the duration, or at `Resume` when `None`.
    StepDown(Option<std::time::Duration>),
    /// End a step-down.
    Resume,
    /// Maintenance on or off.
    Maintenance(bool),
}

/// Plain words for logs: `step-down for 30s`, `maintenance on`, ...
impl std::fmt::Display for HoldChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HoldChange::StepDown(None) => f.write_str("step-down until resume"),
            HoldChange::StepDown(Some(d)) => write!(f, "step-down for {}s", d.as_secs_f64()),
            HoldChange::Resume => f.write_str("resume"),
            HoldChange::Maintenance(true) => f.write_str("maintenance on"),
            HoldChange::Maintenance(false) => f.write_str("maintenance off"),
        }
    }
}

/// The server's view of the driver: status to read, events to relay, commands to forward.
#[derive(Clone)]
pub struct ControlHandle {
    /// The driver's latest snapshot.
    pub status: watch::Receiver<Snapshot>,
    /// Role, master and membership events; each `follow` client subscribes.
    pub events: broadcast::Sender<Event>,
    /// Where state-changing requests go.
    pub commands: mpsc::Sender<Command>,
}

/// A bound control socket. Dropping it removes the socket file (if it is still ours).
pub struct ControlServer {
    /// Taken by `run`; a std listener so that `bind` works outside a runtime.
    listener: Option<std::os::unix::net::UnixListener>,
    path: PathBuf,
    /// (device, inode) of the socket file we created: never unlink a successor's socket.
    file_id: (u64, u64),
    /// The socket's group right after bind (used if the file cannot be read later).
    gid: u32,
}

/// Root or the daemon's own user (by the kernel's peer credentials).
fn privileged(stream: &tokio::net::UnixStream) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    stream
        .peer_cred()
        .is_ok_and(|c| c.uid() == 0 || c.uid() == euid)
}

impl ControlServer {
    /// Creates the parent directory if missing (0750) and checks it (see `sockdir`), then: if
    /// a socket file exists and a
    /// daemon answers on it -> error "another quorumd is already running on `<path>`"; if it
    /// exists but nobody answers -> remove it (stale) and log it. Bind, chmod 0660.
    pub fn bind(path: &Path) -> anyhow::Result<ControlServer> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            sockdir::ensure(parent)?;
        }
        remove_stale_socket(path)?;
        let listener = std::os::unix::net::UnixListener::bind(path)
            .with_context(|| format!("binding control socket {}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
            .with_context(|| format!("setting mode 0660 on {}", path.display()))?;
        listener
            .set_nonblocking(true)
            .context("making the control socket non-blocking")?;
        let meta = std::fs::metadata(path)
            .with_context(|| format!("reading back control socket {}", path.display()))?;
        info!(path = %path.display(), "control socket bound");
        Ok(ControlServer {
            listener: Some(listener),
            path: path.to_path_buf(),
            file_id: (meta.dev(), meta.ino()),
            gid: meta.gid(),
        })
    }

    /// The socket file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accept loop until `shutdown` is cancelled; each client served in its own task; removes
    /// the socket file when it returns.
    pub async fn run(mut self, handle: ControlHandle, shutdown: CancellationToken) {
        let listener = match self.listener.take().map(UnixListener::from_std) {
            Some(Ok(listener)) => listener,
            Some(Err(e)) => {
                warn!(error = %e, "control socket unusable; control requests disabled");
                shutdown.cancelled().await;
                return;
            }
            None => return,
        };
        let policy = Arc::new(auth::Policy::new(self.path.clone(), self.gid));
        let mut clients = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                // Reap finished clients so the set stays as small as the live connections.
                Some(done) = clients.join_next(), if !clients.is_empty() => {
                    match done {
                        Err(e) if e.is_panic() => warn!(error = %e, "a control client task panicked"),
                        _ => {}
                    }
                    continue;
                }
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, _))
                    if clients.len() >= MAX_CLIENTS
                        || (clients.len() >= MAX_CLIENTS - PRIVILEGED_SLOTS
                            && !privileged(&stream)) =>
                {
                    warn!(
                        limit = MAX_CLIENTS,
                        reserved = PRIVILEGED_SLOTS,
                        "too many control clients; closing a new one"
                    );
                    drop(stream);
                }
                Ok((stream, _)) => {
                    let client = Client {
                        handle: handle.clone(),
                        policy: Arc::clone(&policy),
                        shutdown: shutdown.clone(),
                    };
                    clients.spawn(client.serve(stream));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on the error.
                    warn!(error = %e, "accepting a control connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        drop(listener);
        self.remove_socket_file();
        // Idle and following clients end at once; one still writing a reply (e.g. the final
        // `Dispatched`) gets a grace period, then is aborted so its connection closes.
        let drained = timeout(SHUTDOWN_GRACE, async {
            while clients.join_next().await.is_some() {}
        });
        if drained.await.is_err() {
            debug!(
                left = clients.len(),
                "control clients still busy after shutdown; closing them"
            );
            clients.abort_all();
        }
    }

    fn remove_socket_file(&self) {
        let ours =
            std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.file_id);
        if ours {
            match std::fs::remove_file(&self.path) {
                Ok(()) => debug!(path = %self.path.display(), "control socket removed"),
                Err(e) => warn!(path = %self.path.display(), error = %e, "removing control socket"),
            }
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.remove_socket_file();
    }
}

/// Refuses a live socket, removes a dead one, leaves anything that is not a socket alone.
fn remove_stale_socket(path: &Path) -> anyhow::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("checking {}", path.display())),
    };
    if !meta.file_type().is_socket() {
        bail!(
            "{} exists and is not a socket; refusing to replace it",
            path.display()
        );
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => bail!("another quorumd is already running on {}", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path)
                .with_context(|| format!("removing stale control socket {}", path.display()))?;
            info!(path = %path.display(), "removed stale control socket (nobody answered on it)");
            Ok(())
        }
        Err(e) => Err(e)
            .with_context(|| format!("checking whether a daemon answers on {}", path.display())),
    }
}

/// This host's `CLOCK_MONOTONIC` in ns (the clock `Instant` reads too; shared by every process).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}
