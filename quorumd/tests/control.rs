//! In-process tests of the control socket server: a real `ControlServer` on a temporary
//! socket, a hand-built status on a watch channel, and a task playing the driver (the shared
//! fake daemon, `testkit::control`).

use common::control::{ControlError, ErrorKind, Event, MAX_LINE, MemberChange, Reply, Response};
use common::types::Role;
use quorumd::control::{ControlServer, Snapshot};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::control::{FakeDaemon, FakeDriver, OnDispatch, status};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::{Instant, timeout};

/// Upper bound for anything a test waits for (CI is a busy 2-core box).
const PATIENCE: Duration = Duration::from_secs(10);

/// A snapshot whose master lease (if master) is valid for an hour.
fn snapshot(role: Role) -> Snapshot {
    testkit::control::snapshot(status(role))
}

/// The shared fake daemon, answering like a healthy node named alice whose peer bob holds
/// the name `bob` and who can forget `carol`.
struct Harness(FakeDaemon);

impl std::ops::Deref for Harness {
    type Target = FakeDaemon;
    fn deref(&self) -> &FakeDaemon {
        &self.0
    }
}

impl Harness {
    async fn start(role: Role) -> Harness {
        Self::start_with(role, true, 64).await
    }

    async fn start_with(role: Role, with_driver: bool, event_capacity: usize) -> Harness {
        let driver = with_driver.then(|| FakeDriver {
            taken_name: Some("bob".into()),
            forgettable: "carol".into(),
            on_dispatch: OnDispatch::Reply,
        });
        // A missing parent directory is created by bind.
        Harness(FakeDaemon::start(status(role), driver, event_capacity, "run/quorumd.sock").await)
    }

    async fn connect(&self) -> Conn {
        Conn::open(&self.path).await
    }

    async fn stop(self) -> PathBuf {
        self.0.stop().await
    }
}

/// A raw test client.
struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Conn {
    async fn open(path: &Path) -> Conn {
        let stream = UnixStream::connect(path).await.expect("connect");
        let (read, writer) = stream.into_split();
        Conn {
            reader: BufReader::new(read),
            writer,
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("send");
    }

    /// The next line, or None at EOF (or a reset).
    async fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match timeout(PATIENCE, self.reader.read_line(&mut line)).await {
            Ok(Ok(0)) | Ok(Err(_)) => None,
            Ok(Ok(_)) => Some(line),
            Err(_) => panic!("no line from the server within {PATIENCE:?}"),
        }
    }

    async fn ask(&mut self, request: &str) -> Reply {
        self.send(format!("{request}\n").as_bytes()).await;
        let line = self.line().await.expect("a reply line");
        serde_json::from_str(&line).expect("reply parses")
    }

    async fn event(&mut self) -> Event {
        let line = self.line().await.expect("an event line");
        serde_json::from_str(&line).expect("event parses")
    }
}

fn bad_request(reply: &Reply) -> &ControlError {
    match reply {
        Err(e) if e.kind == ErrorKind::BadRequest => e,
        other => panic!("expected bad_request, got {other:?}"),
    }
}

#[tokio::test]
async fn status_role_and_members_are_answered_from_the_snapshot() {
    let h = Harness::start(Role::Master).await;
    let mut c = h.connect().await;
    assert_eq!(
        c.ask(r#"{"type":"status"}"#).await,
        Ok(Response::Status(status(Role::Master)))
    );
    assert!(matches!(
        c.ask(r#"{"type":"role"}"#).await,
        Ok(Response::Role {
            role: Role::Master,
            valid_until_ns: Some(_)
        })
    ));
    assert_eq!(
        c.ask(r#"{"type":"members"}"#).await,
        Ok(Response::Members {
            members: status(Role::Master).members
        })
    );
    // A new publication is seen by the next request.
    h.status.send_replace(snapshot(Role::Slave));
    assert_eq!(
        c.ask(r#"{"type":"role"}"#).await,
        Ok(Response::Role {
            role: Role::Slave,
            valid_until_ns: None
        })
    );
    h.stop().await;
}

#[tokio::test]
async fn rename_dispatch_and_forget_are_forwarded_to_the_driver() {
    let h = Harness::start(Role::Slave).await;
    let mut c = h.connect().await;
    assert_eq!(
        c.ask(r#"{"type":"rename","name":"carol"}"#).await,
        Ok(Response::Renamed {
            from: "alice".into(),
            to: "carol".into()
        })
    );
    let refused = c.ask(r#"{"type":"rename","name":"bob"}"#).await;
    assert_eq!(refused.map_err(|e| e.kind), Err(ErrorKind::Conflict));
    assert_eq!(
        c.ask(r#"{"type":"forget","name":"carol"}"#).await,
        Ok(Response::Forgotten {
            name: "carol".into()
        })
    );
    let missing = c.ask(r#"{"type":"forget","name":"zed"}"#).await;
    assert_eq!(missing.map_err(|e| e.kind), Err(ErrorKind::NotFound));
    assert_eq!(
        c.ask(r#"{"type":"dispatch"}"#).await,
        Ok(Response::Dispatched)
    );
    h.stop().await;
}

#[tokio::test]
async fn commands_get_shutting_down_when_the_driver_is_gone() {
    let h = Harness::start_with(Role::Slave, false, 16).await;
    let mut c = h.connect().await;
    let reply = c.ask(r#"{"type":"dispatch"}"#).await;
    assert_eq!(reply.map_err(|e| e.kind), Err(ErrorKind::ShuttingDown));
    // Reads still work without a driver.
    assert_eq!(
        c.ask(r#"{"type":"role"}"#).await,
        Ok(Response::Role {
            role: Role::Slave,
            valid_until_ns: None
        })
    );
    h.stop().await;
}

#[tokio::test]
async fn garbage_lines_get_bad_request_and_the_connection_keeps_working() {
    let h = Harness::start(Role::Slave).await;
    let mut c = h.connect().await;
    let reply = c.ask("hello there").await;
    assert!(bad_request(&reply).message.contains("not a valid request"));
    let reply = c.ask(r#"{"type":"launch_missiles"}"#).await;
    bad_request(&reply);
    let reply = c.ask(r#"{"type":"rename"}"#).await;
    bad_request(&reply);
    c.send(b"\xff\xfe{\"type\":\"status\"}\n").await;
    let line = c.line().await.expect("a reply to non-UTF-8");
    let reply: Reply = serde_json::from_str(&line).expect("reply parses");
    assert!(bad_request(&reply).message.contains("UTF-8"));
    assert_eq!(
        c.ask(r#"{"type":"role"}"#).await,
        Ok(Response::Role {
            role: Role::Slave,
            valid_until_ns: None
        })
    );
    assert!(matches!(
        c.ask(r#"{"type":"status"}"#).await,
        Ok(Response::Status(_))
    ));
    h.stop().await;
}

#[tokio::test]
async fn several_requests_on_one_connection_are_answered_in_order() {
    let h = Harness::start(Role::Slave).await;
    let mut c = h.connect().await;
    c.send(b"{\"type\":\"role\"}\n{\"type\":\"members\"}\n{\"type\":\"role\"}\n")
        .await;
    for expect_role in [true, false, true] {
        let reply: Reply =
            serde_json::from_str(&c.line().await.expect("reply")).expect("reply parses");
        match reply {
            Ok(Response::Role { .. }) => assert!(expect_role),
            Ok(Response::Members { .. }) => assert!(!expect_role),
            other => panic!("unexpected {other:?}"),
        }
    }
    h.stop().await;
}

#[tokio::test]
async fn a_huge_line_gets_an_error_and_is_closed_while_others_are_served() {
    let h = Harness::start(Role::Slave).await;
    let mut bystander = h.connect().await;
    let mut c = h.connect().await;
    // More than the limit, and no newline: the server must not wait for the end of it.
    let huge = vec![b'x'; MAX_LINE + 10];
    c.send(&huge).await;
    let line = c.line().await.expect("an error reply");
    let reply: Reply = serde_json::from_str(&line).expect("reply parses");
    assert!(bad_request(&reply).message.contains("longer than"));
    // The connection is closed after the error (EOF or a reset: either way no more lines).
    assert_eq!(c.line().await, None);
    assert_eq!(
        bystander.ask(r#"{"type":"role"}"#).await,
        Ok(Response::Role {
            role: Role::Slave,
            valid_until_ns: None
        })
    );
    let mut fresh = h.connect().await;
    assert!(fresh.ask(r#"{"type":"status"}"#).await.is_ok());
    h.stop().await;
}

#[tokio::test]
async fn a_line_of_exactly_the_limit_is_read_as_a_request() {
    let h = Harness::start(Role::Slave).await;
    let mut c = h.connect().await;
    let mut line = br#"{"type":"role"}"#.to_vec();
    line.resize(MAX_LINE, b' ');
    line.push(b'\n');
    c.send(&line).await;
    let reply: Reply = serde_json::from_str(&c.line().await.expect("reply")).expect("parses");
    assert_eq!(
        reply,
        Ok(Response::Role {
            role: Role::Slave,
            valid_until_ns: None
        })
    );
    h.stop().await;
}

#[tokio::test]
async fn half_a_line_then_hang_up_leaves_the_server_serving() {
    let h = Harness::start(Role::Slave).await;
    for _ in 0..3 {
        let mut c = h.connect().await;
        c.send(br#"{"type":"sta"#).await;
        drop(c);
    }
    let mut c = h.connect().await;
    assert_eq!(
        c.ask(r#"{"type":"role"}"#).await,
        Ok(Response::Role {
            role: Role::Slave,
            valid_until_ns: None
        })
    );
    h.stop().await;
}

#[tokio::test]
async fn follow_sends_the_snapshot_then_broadcast_events() {
    let h = Harness::start(Role::Slave).await;
    let mut c = h.connect().await;
    assert_eq!(c.ask(r#"{"type":"follow"}"#).await, Ok(Response::Following));
    assert_eq!(c.event().await, Event::Snapshot(status(Role::Slave)));
    let role = Event::Role {
        reason: String::new(),
        role: Role::Master,
        previous: Role::Slave,
        master: Some("alice".into()),
        epoch: 4,
    };
    let joined = Event::Member {
        name: "dora".into(),
        change: MemberChange::Joined,
    };
    h.events.send(role.clone()).expect("a subscriber exists");
    h.events.send(joined.clone()).expect("a subscriber exists");
    assert_eq!(c.event().await, role);
    assert_eq!(c.event().await, joined);
    // The stream ends on shutdown.
    let path = h.stop().await;
    assert_eq!(c.line().await, None);
    assert!(!path.exists());
}

#[tokio::test]
async fn a_follower_that_does_not_read_is_disconnected_and_others_are_unaffected() {
    let h = Harness::start_with(Role::Slave, true, 8).await;
    let mut lazy = h.connect().await;
    assert_eq!(
        lazy.ask(r#"{"type":"follow"}"#).await,
        Ok(Response::Following)
    );
    let mut other = h.connect().await;
    // Flood far more than the socket buffers hold while `lazy` reads nothing: the server's write
    // blocks, the broadcast queue (8) overflows, and the server must drop the lazy client.
    let name = "n".repeat(16 * 1024);
    for i in 0..400 {
        let event = Event::Member {
            name: format!("{name}{i}"),
            change: MemberChange::Joined,
        };
        let _ = h.events.send(event);
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(
        other.ask(r#"{"type":"role"}"#).await,
        Ok(Response::Role {
            role: Role::Slave,
            valid_until_ns: None
        })
    );
    // Drain what was buffered; the stream must end well before 400 events.
    let mut received = 0;
    while let Some(_line) = lazy.line().await {
        received += 1;
        assert!(
            received < 400,
            "the lagging follower was never disconnected"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn a_stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("quorumd.sock");
    // A socket file nobody listens on, as a crashed daemon leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind stale"));
    assert!(path.exists());
    let server = ControlServer::bind(&path).expect("a stale socket is replaced");
    assert!(path.exists());
    drop(server);
    assert!(!path.exists(), "dropping the server removes its socket");
}

#[tokio::test]
async fn a_second_bind_on_a_live_socket_fails() {
    let h = Harness::start(Role::Slave).await;
    let err = match ControlServer::bind(&h.path) {
        Ok(_) => panic!("a second bind on a live socket succeeded"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("another quorumd is already running on"),
        "{err}"
    );
    // The first server is untouched.
    let mut c = h.connect().await;
    assert!(c.ask(r#"{"type":"role"}"#).await.is_ok());
    h.stop().await;
}

#[tokio::test]
async fn something_that_is_not_a_socket_is_never_removed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("quorumd.sock");
    std::fs::write(&path, b"precious").expect("write");
    assert!(ControlServer::bind(&path).is_err());
    assert_eq!(std::fs::read(&path).expect("still there"), b"precious");
}

#[tokio::test]
async fn the_socket_is_mode_0660_and_removed_after_shutdown() {
    let h = Harness::start(Role::Slave).await;
    let mode = std::fs::metadata(&h.path).expect("socket exists").mode() & 0o777;
    assert_eq!(mode, 0o660);
    let parent_mode = std::fs::metadata(h.path.parent().expect("parent"))
        .expect("parent exists")
        .mode()
        & 0o777;
    assert_eq!(parent_mode, 0o750);
    let mut idle = h.connect().await;
    let path = h.stop().await;
    assert!(!path.exists(), "socket file left behind after shutdown");
    assert_eq!(
        idle.line().await,
        None,
        "idle client not closed on shutdown"
    );
}

#[test]
fn effective_downgrades_an_expired_master() {
    let now = Instant::now();
    let mut snap = snapshot(Role::Master);
    snap.master_until = Some(now + Duration::from_millis(100));
    assert_eq!(snap.effective(now), status(Role::Master));

    snap.master_until = Some(now);
    let expired = snap.effective(now);
    assert_eq!(expired.role, Role::Inquorate);
    assert_eq!(expired.master, None);
    let me = expired
        .members
        .iter()
        .find(|m| m.is_self)
        .expect("self row");
    assert_eq!(me.role, Some(Role::Inquorate));

    // A master with no lease at all is not trusted either.
    snap.master_until = None;
    assert_eq!(snap.effective(now).role, Role::Inquorate);

    // Other roles pass through untouched.
    let slave = snapshot(Role::Slave);
    assert_eq!(
        slave.effective(now + Duration::from_secs(7200)),
        status(Role::Slave)
    );
}

#[tokio::test]
async fn a_master_whose_lease_ran_out_answers_inquorate() {
    let h = Harness::start(Role::Master).await;
    h.status.send_replace(Snapshot {
        status: status(Role::Master),
        master_until: Some(Instant::now()),
    });
    let mut c = h.connect().await;
    assert_eq!(
        c.ask(r#"{"type":"role"}"#).await,
        Ok(Response::Role {
            role: Role::Inquorate,
            valid_until_ns: None
        })
    );
    match c.ask(r#"{"type":"status"}"#).await {
        Ok(Response::Status(s)) => {
            assert_eq!(s.role, Role::Inquorate);
            assert_eq!(s.master, None);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(c.ask(r#"{"type":"follow"}"#).await, Ok(Response::Following));
    match c.event().await {
        Event::Snapshot(s) => assert_eq!(s.role, Role::Inquorate),
        other => panic!("unexpected {other:?}"),
    }
    h.stop().await;
}

/// The quorumctl binary next to this test binary, if it was built.
fn quorumctl_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?;
    let bin = dir.join("quorumctl");
    bin.exists().then_some(bin)
}

#[tokio::test]
async fn an_unprivileged_client_is_refused_dispatch_but_gets_status() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: needs root to run a client as uid 65534");
        return;
    }
    let Some(bin) = quorumctl_bin() else {
        eprintln!(
            "skipping: quorumctl binary not built (cargo build -p quorumctl); \
             quorumctl/tests/cli.rs runs the same check"
        );
        return;
    };
    let h = Harness::start(Role::Slave).await;
    // Let "nobody" reach the socket: the temp dirs are 0700 by default.
    for dir in [h.path.parent().expect("run dir"), h.dir.path()] {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    }
    std::fs::set_permissions(&h.path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    // The checkout may sit in a directory "nobody" cannot enter: run a copy from the temp dir.
    let bin = testkit::reachable_copy(&bin, h.dir.path());
    let run = |args: &'static [&'static str]| {
        let bin = bin.clone();
        let path = h.path.clone();
        tokio::task::spawn_blocking(move || {
            use std::os::unix::process::CommandExt;
            std::process::Command::new(bin)
                .arg("--socket")
                .arg(path)
                .args(args)
                .uid(65534)
                .gid(65534)
                .output()
                .expect("run quorumctl")
        })
    };
    let refused = run(&["dispatch"]).await.expect("join");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(4), "stderr: {stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert!(stderr.contains("dispatch needs root"), "{stderr}");
    // Changing eligibility needs the same credentials as dispatch.
    for (args, verb) in [
        (&["step-down"][..], "step-down needs root"),
        (&["resume"][..], "resume needs root"),
        (&["maintenance", "on"][..], "maintenance needs root"),
    ] {
        let refused = run(args).await.expect("join");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(4), "{args:?}: {stderr}");
        assert!(stderr.contains(verb), "{args:?}: {stderr}");
    }
    let allowed = run(&["role"]).await.expect("join");
    assert_eq!(allowed.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&allowed.stdout), "slave\n");
    h.stop().await;
}

#[tokio::test]
async fn a_master_answer_carries_its_lease_end_on_the_hosts_monotonic_clock() {
    let h = Harness::start(Role::Master).await;
    h.status.send_replace(Snapshot {
        status: status(Role::Master),
        master_until: Some(Instant::now() + Duration::from_millis(600)),
    });
    let mut c = h.connect().await;
    let before = quorumd::control::monotonic_ns();
    match c.ask(r#"{"type":"role"}"#).await {
        Ok(Response::Role {
            role: Role::Master,
            valid_until_ns: Some(until),
        }) => {
            // quorumctl compares this with the same clock when the answer arrives.
            assert!(until > before, "lease end {until} not after {before}");
            assert!(until <= quorumd::control::monotonic_ns() + 600_000_000);
        }
        other => panic!("unexpected {other:?}"),
    }
}
