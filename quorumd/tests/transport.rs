//! The transport over loopback: discovery by broadcast on 127.255.255.255, seeds, port clashes,
//! crash detection with a real SIGKILLed / SIGSTOPped child process, junk input, shutdown, and
//! the re-dials of remembered members and stale links.
//!
//! Every test uses its own broadcast port(s) and cluster name, so parallel tests never hear
//! each other. The child process is this test binary re-run in a hidden helper mode
//! (`TRANSPORT_CHILD`, see [`child_helper_mode`]).

use anyhow::{Context as _, bail};
use common::codec::{self, Keyring};
use common::types::{MemberId, MemberInfo, Rank, Strategy};
use common::wire::{Envelope, Message};
use quorumd::links::{Bound, NetEvent, Transport, TransportConfig};
use std::io::{BufRead as _, Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use testkit::{ChildGuard, free_udp_port};
use tokio::sync::mpsc;
use tokio::time::Instant;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const BROADCAST: Ipv4Addr = Ipv4Addr::new(127, 255, 255, 255);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A member id unique to this process and `k`.
fn member_id(k: u64) -> MemberId {
    u64::from(std::process::id()) * 1000 + k
}

fn config(broadcast_port: u16, cluster: &str, seeds: Vec<SocketAddr>) -> TransportConfig {
    TransportConfig {
        listen: LOCALHOST,
        port: 0,
        broadcast: SocketAddr::new(BROADCAST.into(), broadcast_port),
        seeds,
        cluster: cluster.to_string(),
        advertise: None,
        heartbeat: Duration::from_millis(100),
        announce: Duration::from_millis(500),
        keys: Keyring::none(),
    }
}

fn member(id: MemberId, bound: &Bound) -> MemberInfo {
    MemberInfo {
        id,
        name: format!("n{id}"),
        addr: bound.advertise.to_string(),
        port: bound.port,
        rank: Rank {
            priority: 0,
            key: id,
            tiebreak: format!("n{id}"),
            id,
        },
        started_ms: id,
        witness: false,
        strategy: Strategy::Age,
    }
}

/// A started transport and everything it reported so far.
struct Node {
    t: Transport,
    rx: mpsc::Receiver<NetEvent>,
    id: MemberId,
    port: u16,
    seen: Vec<NetEvent>,
}

async fn node(cfg: TransportConfig, id: MemberId) -> anyhow::Result<Node> {
    let (t, bound, rx) = Transport::bind(cfg).await?;
    t.start(member(id, &bound));
    Ok(Node {
        t,
        rx,
        id,
        port: bound.port,
        seen: Vec::new(),
    })
}

impl Node {
    fn addr(&self) -> SocketAddr {
        SocketAddr::new(LOCALHOST, self.port)
    }

    /// Waits up to `within` for an event matching `pred` (kept in `seen` with all others).
    async fn wait_event(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&NetEvent) -> bool,
    ) -> anyhow::Result<()> {
        if self.seen.iter().any(&pred) {
            return Ok(());
        }
        let deadline = Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(ev)) => {
                    let hit = pred(&ev);
                    self.seen.push(ev);
                    if hit {
                        return Ok(());
                    }
                }
                Ok(None) => bail!("node {}: event channel closed waiting for {what}", self.id),
                Err(_) => bail!(
                    "node {}: no {what} within {within:?}; saw {:?}",
                    self.id,
                    self.seen
                ),
            }
        }
    }

    /// Collects every event for `d` (used to show that something does NOT happen).
    async fn collect_for(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            self.seen.push(ev);
        }
    }

    async fn wait_linked(&self, peers: &[MemberId], within: Duration) -> anyhow::Result<()> {
        let all = || {
            let linked = self.t.linked();
            peers.iter().all(|p| linked.contains(p)).then_some(())
        };
        if testkit::try_wait_until_async(within, all).await.is_none() {
            bail!(
                "node {}: linked to {:?}, expected {peers:?} within {within:?}",
                self.id,
                self.t.linked()
            );
        }
        Ok(())
    }
}

fn is_hello_from(ev: &NetEvent, id: MemberId) -> bool {
    matches!(ev, NetEvent::Hello(info) if info.id == id)
}

fn is_leave(ev: &NetEvent, from: MemberId, epoch: u64) -> bool {
    matches!(ev, NetEvent::Message { from: f, msg: Message::Leave { epoch: e } } if *f == from && *e == epoch)
}

fn is_crashed(ev: &NetEvent, id: MemberId) -> bool {
    matches!(ev, NetEvent::Crashed(c) if *c == id)
}

const LONG: Duration = Duration::from_secs(5);

#[tokio::test]
async fn three_transports_discover_each_other_by_broadcast_and_exchange_messages()
-> anyhow::Result<()> {
    init_tracing();
    let b = free_udp_port();
    let cluster = format!("disc-{}", std::process::id());
    let mut nodes = Vec::new();
    for k in 0..3 {
        nodes.push(node(config(b, &cluster, vec![]), member_id(k)).await?);
    }
    let ids: Vec<MemberId> = nodes.iter().map(|n| n.id).collect();
    for n in &mut nodes {
        let me = n.id;
        for &other in ids.iter().filter(|o| **o != me) {
            n.wait_event("hello", LONG, |ev| is_hello_from(ev, other))
                .await?;
        }
    }
    for n in &nodes {
        let others: Vec<_> = ids.iter().copied().filter(|o| *o != n.id).collect();
        n.wait_linked(&others, LONG).await?;
    }
    for (i, n) in nodes.iter().enumerate() {
        for &other in ids.iter().filter(|o| **o != n.id) {
            n.t.send(
                other,
                Message::Leave {
                    epoch: i as u64 + 10,
                },
            );
        }
    }
    for n in &mut nodes {
        let me = n.id;
        for (i, &other) in ids.iter().enumerate().filter(|(_, o)| **o != me) {
            n.wait_event("message", LONG, |ev| is_leave(ev, other, i as u64 + 10))
                .await?;
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_transport_of_another_cluster_is_ignored() -> anyhow::Result<()> {
    init_tracing();
    let b = free_udp_port();
    let ours = format!("ours-{}", std::process::id());
    let mut a = node(config(b, &ours, vec![]), member_id(10)).await?;
    let mut bn = node(config(b, &ours, vec![]), member_id(11)).await?;
    // The foreigner shares the broadcast port and even dials `a` directly.
    let mut f = node(config(b, "theirs", vec![a.addr()]), member_id(12)).await?;
    a.wait_linked(&[bn.id], LONG).await?;
    bn.wait_linked(&[a.id], LONG).await?;
    // Several hello rounds and seed retries happen in this time.
    for n in [&mut a, &mut bn, &mut f] {
        n.collect_for(Duration::from_millis(1500)).await;
    }
    let fid = f.id;
    for n in [&a, &bn] {
        assert!(
            !n.seen.iter().any(|ev| is_hello_from(ev, fid)),
            "node {} heard the foreigner",
            n.id
        );
        assert!(
            !n.t.linked().contains(&fid),
            "node {} linked the foreigner",
            n.id
        );
    }
    assert!(f.seen.is_empty(), "the foreigner heard us: {:?}", f.seen);
    assert!(f.t.linked().is_empty());
    Ok(())
}

#[tokio::test]
async fn a_star_of_seeds_converges_to_a_full_mesh() -> anyhow::Result<()> {
    init_tracing();
    let cluster = format!("star-{}", std::process::id());
    // Each node broadcasts on its own port: nobody hears anybody's hellos.
    let hub = node(config(free_udp_port(), &cluster, vec![]), member_id(20)).await?;
    let mut spokes = Vec::new();
    for k in 0..3u16 {
        spokes.push(
            node(
                config(free_udp_port(), &cluster, vec![hub.addr()]),
                member_id(21 + u64::from(k)),
            )
            .await?,
        );
    }
    let all: Vec<MemberId> = std::iter::once(hub.id)
        .chain(spokes.iter().map(|s| s.id))
        .collect();
    for n in std::iter::once(&hub).chain(spokes.iter()) {
        let others: Vec<_> = all.iter().copied().filter(|o| *o != n.id).collect();
        n.wait_linked(&others, LONG).await?;
    }
    // The spoke-to-spoke links carry messages.
    spokes[0].t.send(spokes[1].id, Message::Leave { epoch: 77 });
    let from = spokes[0].id;
    spokes[1]
        .wait_event("message over a gossiped link", LONG, |ev| {
            is_leave(ev, from, 77)
        })
        .await?;
    Ok(())
}

/// A member started after the others' first hellos has heard none of theirs (their next is
/// seconds away), so the order of ids cannot leave the dial to it: every member that hears
/// its hello dials it at once. Before, a member with a larger id waited for a dial that never
/// came, and the link came only from the maintenance round, 4 graces later (here 2 s; 600 ms
/// with the default timers, long enough for a master elected meanwhile to lose its exact
/// half to the newcomer counted from a peer's list).
#[tokio::test]
async fn a_newcomer_is_dialled_at_once_by_members_it_cannot_have_heard() -> anyhow::Result<()> {
    init_tracing();
    let b = free_udp_port();
    let cluster = format!("late-{}", std::process::id());
    // Heartbeat 500 ms: the maintenance round's dial comes 2 s after a hello. Announce 2 s:
    // once linked, a member's steady hellos go 8 s apart.
    let cfg = || TransportConfig {
        heartbeat: Duration::from_millis(500),
        announce: Duration::from_secs(2),
        ..config(b, &cluster, vec![])
    };
    // The two members have larger ids than the newcomer: the order of ids leaves the dial to it.
    let first = node(cfg(), member_id(900)).await?;
    let second = node(cfg(), member_id(901)).await?;
    first.wait_linked(&[second.id], LONG).await?;
    second.wait_linked(&[first.id], LONG).await?;
    // Their first hellos (0, 100, 300, 700 ms after start) are over.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let (t, bound, rx) = Transport::bind(cfg()).await?;
    let mut info = member(member_id(1), &bound);
    info.started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis()
        .try_into()?;
    t.start(info);
    let newcomer = Node {
        t,
        rx,
        id: member_id(1),
        port: bound.port,
        seen: Vec::new(),
    };
    // Well within the maintenance round's 2 s and the members' next hellos (seconds away).
    let within = Duration::from_millis(1000);
    newcomer
        .wait_linked(&[first.id, second.id], within)
        .await
        .context("the members dial a newcomer that cannot have heard them")?;
    first.wait_linked(&[newcomer.id], within).await?;
    second.wait_linked(&[newcomer.id], within).await?;
    Ok(())
}

#[tokio::test]
async fn a_taken_port_makes_the_transport_use_the_next_free_one() -> anyhow::Result<()> {
    init_tracing();
    let taken = std::net::TcpListener::bind((LOCALHOST, 0))?;
    let p = taken.local_addr()?.port();
    let mut cfg = config(free_udp_port(), "clash", vec![]);
    cfg.port = p;
    let (_t, bound, _rx) = Transport::bind(cfg).await?;
    assert!(
        bound.port > p && bound.port <= p.saturating_add(100),
        "requested {p}, got {}",
        bound.port
    );
    assert_eq!(bound.advertise, LOCALHOST);
    // The transport really listens on the port it reports.
    tokio::net::TcpStream::connect((LOCALHOST, bound.port)).await?;
    assert_eq!(taken.local_addr()?.port(), p);
    Ok(())
}

#[tokio::test]
async fn the_advertised_address_is_loopback_when_broadcasting_on_loopback() -> anyhow::Result<()> {
    let mut cfg = config(free_udp_port(), "adv", vec![]);
    cfg.listen = Ipv4Addr::UNSPECIFIED.into();
    let (_t, bound, _rx) = Transport::bind(cfg).await?;
    assert_eq!(bound.advertise, LOCALHOST);
    Ok(())
}

#[tokio::test]
async fn junk_datagrams_and_frames_leave_the_transport_working() -> anyhow::Result<()> {
    init_tracing();
    let b = free_udp_port();
    let cluster = format!("junk-{}", std::process::id());
    let a = node(config(b, &cluster, vec![]), member_id(30)).await?;
    let mut bn = node(config(b, &cluster, vec![]), member_id(31)).await?;
    a.wait_linked(&[bn.id], LONG).await?;

    // Junk datagrams to every daemon on the broadcast port.
    let udp = std::net::UdpSocket::bind((LOCALHOST, 0))?;
    udp.set_broadcast(true)?;
    let leave = codec::seal_datagram(
        &Keyring::none(),
        0,
        &Envelope::new(&cluster, 99, Message::Leave { epoch: 1 }),
    )?;
    let junk: Vec<Vec<u8>> = vec![
        b"\xff\x00junk".to_vec(),
        b"{}".to_vec(),
        br#"{"magic":"other","version":1}"#.to_vec(),
        br#"{"magic":"quorumd","version":99}"#.to_vec(),
        leave,
        vec![b'{'; 60_000],
    ];
    for j in &junk {
        udp.send_to(j, (BROADCAST, b))?;
    }

    // Junk connections: each must be closed by the transport.
    let hello_of = |cluster: &str| -> anyhow::Result<Vec<u8>> {
        let info = MemberInfo {
            addr: "127.0.0.1".into(),
            port: 1,
            ..member(
                98,
                &Bound {
                    port: 1,
                    advertise: LOCALHOST,
                },
            )
        };
        frame(&Envelope::new(cluster, 98, Message::Hello(info)))
    };
    let mut too_large = hello_of(&cluster)?;
    too_large.extend_from_slice(&u32::MAX.to_be_bytes());
    let streams: Vec<Vec<u8>> = vec![
        u32::MAX.to_be_bytes().to_vec(),
        frame(&Envelope::new(&cluster, 98, Message::Leave { epoch: 1 }))?,
        [&5u32.to_be_bytes()[..], b"junk!"].concat(),
        hello_of("other-cluster")?,
        too_large,
    ];
    for bytes in streams {
        let port = a.port;
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let mut s = std::net::TcpStream::connect((LOCALHOST, port))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(&bytes)?;
            // Read (the transport's own Hello and Peers) until it closes the connection.
            let mut sink = Vec::new();
            match s.read_to_end(&mut sink) {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
                Err(e) => Err(e).context("the transport did not close a junk connection"),
            }
        })
        .await??;
    }

    // Still working: a real message arrives, over the link that existed before the junk.
    a.t.send(bn.id, Message::Leave { epoch: 5 });
    let from = a.id;
    bn.wait_event("message after junk", LONG, |ev| is_leave(ev, from, 5))
        .await?;
    assert!(a.t.linked().contains(&bn.id));
    Ok(())
}

fn frame(env: &Envelope) -> anyhow::Result<Vec<u8>> {
    let body = codec::seal_open(&Keyring::none(), &[0; codec::NONCE_LEN], env)?;
    Ok([&(body.len() as u32).to_be_bytes()[..], &body].concat())
}

#[tokio::test]
async fn shutdown_flushes_a_queued_frame_before_closing() -> anyhow::Result<()> {
    init_tracing();
    let b = free_udp_port();
    let cluster = format!("flush-{}", std::process::id());
    let a = node(config(b, &cluster, vec![]), member_id(40)).await?;
    let mut bn = node(config(b, &cluster, vec![]), member_id(41)).await?;
    a.wait_linked(&[bn.id], LONG).await?;
    a.t.send(bn.id, Message::Leave { epoch: 42 });
    a.t.shutdown(Duration::from_secs(1)).await;
    let from = a.id;
    bn.wait_event("the frame queued before shutdown", LONG, |ev| {
        is_leave(ev, from, 42)
    })
    .await?;
    // The link is closed afterwards.
    testkit::wait_until_async("the link closed after shutdown", LONG, || {
        (!bn.t.linked().contains(&from)).then_some(())
    })
    .await;
    Ok(())
}

// ---- crash detection with a child process ----

/// A child process running a transport that echoes every message; killed on drop.
struct Child {
    proc: ChildGuard,
    id: MemberId,
}

async fn spawn_child(broadcast_port: u16, cluster: &str, id: MemberId) -> anyhow::Result<Child> {
    let exe = std::env::current_exe()?;
    let mut proc = std::process::Command::new(exe)
        .args([
            "child_helper_mode",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            "TRANSPORT_CHILD",
            format!("{broadcast_port} {cluster} {id}"),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()?;
    let stdout = proc.stdout.take().context("child stdout")?;
    let child = Child {
        proc: ChildGuard::new(proc),
        id,
    };
    // Wait for the child's READY line (bounded: the child gives up after 60 s anyway).
    let ready = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || {
            let lines = std::io::BufReader::new(stdout).lines();
            lines
                .map_while(Result::ok)
                .take(100)
                .any(|l| l.contains("READY "))
        }),
    )
    .await;
    match ready {
        Ok(Ok(true)) => Ok(child),
        _ => bail!("child transport did not get ready"),
    }
}

/// Hidden helper: does nothing unless run by [`spawn_child`] with `TRANSPORT_CHILD` set.
#[test]
fn child_helper_mode() -> anyhow::Result<()> {
    let Ok(spec) = std::env::var("TRANSPORT_CHILD") else {
        return Ok(());
    };
    let mut it = spec.split(' ');
    let (Some(b), Some(cluster), Some(id)) = (it.next(), it.next(), it.next()) else {
        bail!("bad TRANSPORT_CHILD {spec:?}");
    };
    let (b, id): (u16, MemberId) = (b.parse()?, id.parse()?);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let (t, bound, mut rx) = Transport::bind(config(b, cluster, vec![])).await?;
        t.start(member(id, &bound));
        println!("READY {}", bound.port);
        std::io::stdout().flush()?;
        let end = Instant::now() + Duration::from_secs(60);
        while let Ok(Some(ev)) = tokio::time::timeout_at(end, rx.recv()).await {
            if let NetEvent::Message { from, msg } = ev {
                t.send(from, msg);
            }
        }
        anyhow::Ok(())
    })
}

/// Starts a parent transport and a child, and checks the link works both ways.
async fn parent_and_child(k: u16) -> anyhow::Result<(Node, Child)> {
    init_tracing();
    let b = free_udp_port();
    let cluster = format!("crash-{}-{k}", std::process::id());
    let mut parent = node(config(b, &cluster, vec![]), member_id(50 + u64::from(k))).await?;
    let child = spawn_child(b, &cluster, member_id(60 + u64::from(k))).await?;
    let cid = child.id;
    parent
        .wait_event("the child's hello", LONG, |ev| is_hello_from(ev, cid))
        .await?;
    parent.wait_linked(&[cid], LONG).await?;
    echo(&mut parent, cid, 1).await?;
    Ok((parent, child))
}

/// Sends Leave{epoch} to the child and waits for its echo.
async fn echo(parent: &mut Node, child: MemberId, epoch: u64) -> anyhow::Result<()> {
    // Resend until echoed: a frame may be dropped while a link is being replaced.
    testkit::poll_until_async(LONG, Duration::ZERO, async || {
        parent.t.send(child, Message::Leave { epoch });
        parent
            .wait_event("echo", Duration::from_millis(300), |ev| {
                is_leave(ev, child, epoch)
            })
            .await
            .ok()
    })
    .await
    .with_context(|| format!("no echo of epoch {epoch} from the child"))
}

#[tokio::test]
async fn a_sigkilled_peer_is_reported_crashed_quickly() -> anyhow::Result<()> {
    let (mut parent, mut child) = parent_and_child(11).await?;
    let cid = child.id;
    child.proc.signal(libc::SIGKILL)?;
    parent
        .wait_event("crash report", Duration::from_secs(2), |ev| {
            is_crashed(ev, cid)
        })
        .await?;
    // Reported once.
    parent.collect_for(Duration::from_millis(500)).await;
    assert_eq!(
        parent.seen.iter().filter(|ev| is_crashed(ev, cid)).count(),
        1
    );
    Ok(())
}

#[tokio::test]
async fn a_sigstopped_peer_is_not_reported_crashed() -> anyhow::Result<()> {
    let (mut parent, mut child) = parent_and_child(12).await?;
    let cid = child.id;
    child.proc.signal(libc::SIGSTOP)?;
    // Keep writing to the frozen peer while watching: stale-link reconnects happen here.
    let crash =
        testkit::poll_until_async(Duration::from_millis(1500), Duration::ZERO, async || {
            parent.t.send(cid, Message::Leave { epoch: 2 });
            parent.collect_for(Duration::from_millis(100)).await;
            parent
                .seen
                .iter()
                .any(|ev| is_crashed(ev, cid))
                .then_some(())
        })
        .await;
    assert!(crash.is_none(), "a frozen peer was reported crashed");
    child.proc.signal(libc::SIGCONT)?;
    // Once thawed, the link works again.
    echo(&mut parent, cid, 3).await?;
    assert!(!parent.seen.iter().any(|ev| is_crashed(ev, cid)));
    Ok(())
}

#[tokio::test]
async fn a_rename_is_announced_on_every_link_at_once() -> anyhow::Result<()> {
    init_tracing();
    let b = free_udp_port();
    let cluster = format!("rename-{}", std::process::id());
    let a = node(config(b, &cluster, vec![]), member_id(70)).await?;
    let mut bn = node(config(b, &cluster, vec![]), member_id(71)).await?;
    a.wait_linked(&[bn.id], LONG).await?;
    let bound = Bound {
        port: a.port,
        advertise: LOCALHOST,
    };
    let renamed = MemberInfo {
        name: "renamed".into(),
        ..member(a.id, &bound)
    };
    a.t.set_self(renamed);
    let from = a.id;
    // Well before the next periodic hello (500 ms) would carry it.
    bn.wait_event(
        "hello with the new name",
        Duration::from_millis(400),
        |ev| matches!(ev, NetEvent::Hello(info) if info.id == from && info.name == "renamed"),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_restarted_member_on_the_same_port_is_a_new_member() -> anyhow::Result<()> {
    init_tracing();
    let b = free_udp_port();
    let cluster = format!("restart-{}", std::process::id());
    let mut a = node(config(b, &cluster, vec![]), member_id(80)).await?;
    let old = node(config(b, &cluster, vec![]), member_id(81)).await?;
    a.wait_linked(&[old.id], LONG).await?;
    let (old_id, port) = (old.id, old.port);
    drop(old);
    // The dropped transport's tasks release the listener asynchronously.
    testkit::wait_until_async("the old incarnation released its port", LONG, || {
        std::net::TcpListener::bind((LOCALHOST, port))
            .ok()
            .map(drop)
    })
    .await;
    let mut cfg = config(b, &cluster, vec![]);
    cfg.port = port;
    let new = node(cfg, member_id(82)).await?;
    assert_eq!(
        new.port, port,
        "the restarted member could not take its old port"
    );
    a.wait_event("the old incarnation's crash", LONG, |ev| {
        is_crashed(ev, old_id)
    })
    .await?;
    a.wait_linked(&[new.id], LONG).await?;
    assert!(!a.t.linked().contains(&old_id));
    Ok(())
}

// ---- re-dialling: what the maintenance round and the links' readers must keep doing ----

/// Accepts (and at once closes) every connection to `listener` for `d`: how many came.
async fn count_accepts(listener: &tokio::net::TcpListener, d: Duration) -> usize {
    let deadline = Instant::now() + d;
    let mut n = 0;
    while let Ok(Ok((stream, _))) = tokio::time::timeout_at(deadline, listener.accept()).await {
        drop(stream);
        n += 1;
    }
    n
}

/// A member that is nothing but a listener on loopback (it hangs up on every connection):
/// its info, advertising the listener's port.
async fn hollow_member(id: MemberId) -> anyhow::Result<(MemberInfo, tokio::net::TcpListener)> {
    let listener = tokio::net::TcpListener::bind((LOCALHOST, 0)).await?;
    let bound = Bound {
        port: listener.local_addr()?.port(),
        advertise: LOCALHOST,
    };
    Ok((member(id, &bound), listener))
}

#[tokio::test]
async fn a_remembered_member_is_dialled_every_heartbeat_until_it_links() -> anyhow::Result<()> {
    init_tracing();
    let cluster = format!("remember-{}", std::process::id());
    let mut a = node(config(free_udp_port(), &cluster, vec![]), member_id(90)).await?;
    let (gone, listener) = hollow_member(member_id(91)).await?;
    a.t.remember([&gone]);
    // No hello ever comes (nobody else broadcasts on this port): only the maintenance round
    // dials it, once a heartbeat (100 ms), each dial ending in the handshake.
    let dials = count_accepts(&listener, Duration::from_millis(1500)).await;
    assert!(
        dials >= 6,
        "a remembered member was dialled {dials} times in 1.5 s (15 heartbeats)"
    );
    // A member comes up at that address (a new incarnation, broadcasting elsewhere): the
    // next round links it, and the remembered incarnation is reported gone.
    let port = listener.local_addr()?.port();
    drop(listener);
    let mut cfg = config(free_udp_port(), &cluster, vec![]);
    cfg.port = port;
    let back = node(cfg, member_id(92)).await?;
    assert_eq!(back.port, port);
    a.wait_linked(&[back.id], LONG).await?;
    let old = gone.id;
    a.wait_event("the remembered incarnation's crash", LONG, |ev| {
        is_crashed(ev, old)
    })
    .await?;
    Ok(())
}

/// Writes one frame: an already sealed message after its length.
async fn write_frame(s: &mut tokio::net::TcpStream, sealed: &[u8]) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    s.write_all(&(sealed.len() as u32).to_be_bytes()).await?;
    s.write_all(sealed).await?;
    Ok(())
}

/// Plays member `info` on a raw connection to `to`: sends its open frame, reads the
/// transport's, and returns the connection with the sealer of the frames that follow (the
/// first of them completes the handshake).
async fn link_as(
    to: SocketAddr,
    cluster: &str,
    info: &MemberInfo,
) -> anyhow::Result<(tokio::net::TcpStream, codec::LinkSealer)> {
    use tokio::io::AsyncReadExt as _;
    let keys = Keyring::none();
    let ours = [7u8; codec::NONCE_LEN];
    let mut s = tokio::net::TcpStream::connect(to).await?;
    let hello = Envelope::new(cluster, info.id, Message::Hello(info.clone()));
    write_frame(&mut s, &codec::seal_open(&keys, &ours, &hello)?).await?;
    // The transport's open frame: its nonce.
    let mut head = [0u8; 4];
    s.read_exact(&mut head).await?;
    let mut body = vec![0u8; u32::from_be_bytes(head) as usize];
    s.read_exact(&mut body).await?;
    let (theirs, _) = codec::open_open(&keys, &body)?;
    let sealer = codec::LinkSealer::new(keys, &ours, &theirs);
    Ok((s, sealer))
}

#[tokio::test]
async fn a_stale_link_is_redialled_every_heartbeat_while_it_stays_stale() -> anyhow::Result<()> {
    init_tracing();
    let cluster = format!("stale-{}", std::process::id());
    let a = node(config(free_udp_port(), &cluster, vec![]), member_id(95)).await?;
    let (quiet, listener) = hollow_member(member_id(96)).await?;
    let (mut s, mut sealer) = link_as(a.addr(), &cluster, &quiet).await?;
    let peers = |sealer: &mut codec::LinkSealer| -> anyhow::Result<Vec<u8>> {
        let env = Envelope::new(&cluster, quiet.id, Message::Peers { peers: Vec::new() });
        Ok(sealer.seal(&codec::encode_body(&env)?))
    };
    // The first frame proves the link.
    write_frame(&mut s, &peers(&mut sealer)?).await?;
    a.wait_linked(&[quiet.id], LONG).await?;
    // While frames come every heartbeat, the link is never re-dialled.
    let end = Instant::now() + Duration::from_millis(800);
    while Instant::now() < end {
        write_frame(&mut s, &peers(&mut sealer)?).await?;
        assert_eq!(
            count_accepts(&listener, Duration::from_millis(100)).await,
            0,
            "a live link was re-dialled"
        );
    }
    // Silent (connection open): stale after 6 heartbeats, then re-dialled every heartbeat
    // while it stays so (each dial ends in the handshake: the stale link stays registered).
    let dials = count_accepts(&listener, Duration::from_millis(1500)).await;
    assert!(
        dials >= 6,
        "a stale link was re-dialled {dials} times in 1.5 s (15 heartbeats, 6 to go stale)"
    );
    assert!(a.t.linked().contains(&quiet.id));
    drop(s);
    Ok(())
}
