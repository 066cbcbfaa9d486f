//! A fake daemon for control-socket tests (feature `control`): the real `ControlServer` on a
//! temporary socket, a status snapshot on a watch channel the test changes at will (starting
//! from [`status`], a healthy two-member node, or any other), an event channel, and a task
//! playing the driver with fixed answers.
//!
//! Shared by `quorumd/tests/control.rs` (the server, raw JSON lines) and
//! `quorumctl/tests/cli.rs` (the real `quorumctl` binary against it).

use common::control::{ControlError, ErrorKind, Event, Member, Quorum, Response, Status};
use common::types::{MemberState, Role, Strategy};
use quorumd::control::{Command, ControlHandle, ControlServer, HoldChange, Snapshot};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

/// How long [`FakeDaemon::stop`] waits for the server task.
const STOP_WITHIN: Duration = Duration::from_secs(20);

/// The status of a healthy node alice (port 8080, `role`) with one peer bob (port 8081,
/// slave, last heard 300 ms ago), epoch 3, 2 of 3 counted votes with 2 needed; the master is
/// alice when `role` is master, else bob.
pub fn status(role: Role) -> Status {
    let master = if role == Role::Master { "alice" } else { "bob" };
    Status {
        name: "alice".into(),
        role,
        epoch: 3,
        master: Some(master.into()),
        quorum: Quorum {
            votes: 2,
            needed: 2,
            counted: 3,
        },
        members: vec![
            member("alice", true, role),
            member("bob", false, Role::Slave),
        ],
        version: "0.1.0".into(),
        protocol_version: common::control::PROTOCOL_VERSION,
        cluster: "test".into(),
        strategy: Strategy::Age,
        witness: false,
        refused: None,
        security: None,
        held: Vec::new(),
        checks: Vec::new(),
    }
}

/// A live, counted member on 127.0.0.1 (port 8080 for the node itself, else 8081).
fn member(name: &str, me: bool, role: Role) -> Member {
    Member {
        name: name.into(),
        address: "127.0.0.1".into(),
        port: if me { 8080 } else { 8081 },
        state: MemberState::Alive,
        role: Some(role),
        counted: true,
        witness: false,
        is_self: me,
        last_heard_ms: if me { None } else { Some(300) },
        reachable: true,
    }
}

/// A snapshot of `status`; a master's lease is valid for an hour.
pub fn snapshot(status: Status) -> Snapshot {
    let until = (status.role == Role::Master).then(|| Instant::now() + Duration::from_secs(3600));
    Snapshot {
        status,
        master_until: until,
    }
}

/// How the fake driver answers `dispatch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDispatch {
    /// Answers `Dispatched`.
    Reply,
    /// Never answers and shuts the server down (the daemon's process ends, its socket goes
    /// away).
    Vanish,
}

/// The fake driver's answers: like a healthy node named alice.
#[derive(Clone, Debug)]
pub struct FakeDriver {
    /// `rename` to this name is refused as taken (`conflict`); any other name is accepted.
    pub taken_name: Option<String>,
    /// The one member `forget` knows; any other name is `not_found`.
    pub forgettable: String,
    /// What `dispatch` does.
    pub on_dispatch: OnDispatch,
}

impl FakeDriver {
    /// Plays the driver until the command channel closes.
    async fn run(self, mut commands: mpsc::Receiver<Command>, shutdown: CancellationToken) {
        while let Some(command) = commands.recv().await {
            let _ = match command {
                Command::Rename { name, reply } if Some(&name) == self.taken_name.as_ref() => reply
                    .send(Err(ControlError::new(
                        ErrorKind::Conflict,
                        format!("name {name} is taken"),
                    ))),
                Command::Rename { name, reply } => reply.send(Ok(Response::Renamed {
                    from: "alice".into(),
                    to: name,
                })),
                Command::Dispatch { reply } if self.on_dispatch == OnDispatch::Vanish => {
                    // Like a daemon whose process ends before it answers: the reply is never
                    // sent (and never dropped, which would be answered `shutting_down`).
                    shutdown.cancel();
                    let _keep = reply;
                    std::future::pending::<()>().await;
                    return;
                }
                Command::Dispatch { reply } => reply.send(Ok(Response::Dispatched)),
                // The fake's snapshot never changes: nothing to rebuild.
                Command::Refresh { reply } => {
                    let _ = reply.send(());
                    Ok(())
                }
                Command::Forget { name, reply } if name == self.forgettable => {
                    reply.send(Ok(Response::Forgotten { name }))
                }
                Command::Forget { name, reply } => reply.send(Err(ControlError::new(
                    ErrorKind::NotFound,
                    format!("no member named {name}"),
                ))),
                Command::Hold { change, reply } => {
                    let held = match change {
                        HoldChange::Maintenance(true) => vec!["maintenance".to_string()],
                        _ => Vec::new(),
                    };
                    reply.send(Ok(Response::Held { held }))
                }
            };
        }
    }
}

/// A running control server with its fake driver; stopped (and its directory removed) by
/// [`FakeDaemon::stop`] or on drop.
pub struct FakeDaemon {
    /// The temporary directory holding the socket.
    pub dir: tempfile::TempDir,
    /// The socket.
    pub path: PathBuf,
    /// What `status` answers; `send_replace` a new snapshot to change it.
    pub status: watch::Sender<Snapshot>,
    /// Role and membership events, as `follow` streams them.
    pub events: broadcast::Sender<Event>,
    /// Cancelled to stop the server.
    pub shutdown: CancellationToken,
    server: JoinHandle<()>,
}

impl FakeDaemon {
    /// Binds a server at `socket` (relative to a new temporary directory; missing parent
    /// directories are created by bind) answering `status`. Without a `driver`, commands
    /// find the driver gone. `event_capacity` bounds the event channel (a slow follower
    /// lags behind past it).
    pub async fn start(
        status: Status,
        driver: Option<FakeDriver>,
        event_capacity: usize,
        socket: &str,
    ) -> FakeDaemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(socket);
        let server = ControlServer::bind(&path).expect("bind");
        assert_eq!(server.path(), path);
        let (status_tx, status_rx) = watch::channel(snapshot(status));
        let (events, _) = broadcast::channel(event_capacity);
        let (commands, commands_rx) = mpsc::channel(8);
        let shutdown = CancellationToken::new();
        match driver {
            Some(d) => {
                tokio::spawn(d.run(commands_rx, shutdown.clone()));
            }
            None => drop(commands_rx),
        }
        let handle = ControlHandle {
            status: status_rx,
            events: events.clone(),
            commands,
        };
        let server = tokio::spawn(server.run(handle, shutdown.clone()));
        FakeDaemon {
            dir,
            path,
            status: status_tx,
            events,
            shutdown,
            server,
        }
    }

    /// Stops the server and waits for it (it must not have panicked); returns the socket path.
    pub async fn stop(self) -> PathBuf {
        self.shutdown.cancel();
        timeout(STOP_WITHIN, self.server)
            .await
            .expect("server stops in time")
            .expect("server task did not panic");
        self.path
    }
}
