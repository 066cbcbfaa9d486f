//! TCP peer links and the transport façade the driver owns.
//!
//! The transport moves frames; it never interprets beats. Inside:
//!
//! - [`Transport`]: bind, start, send, rename, shutdown; [`NetEvent`]s come out of a bounded
//!   channel returned by [`Transport::bind`].
//! - `table`: the member table, synchronous and unit-tested: links (one per member id, the
//!   duplicate-link rule), known members (who dials after a hello), dials in flight, crash
//!   reports, with their bounds.
//! - `inner`: the state the tasks share (the table behind a mutex, sockets, events) and the
//!   maintenance task: unlinked members are dialled every heartbeat and `--peer` seeds every
//!   `announce` until a link exists; it sleeps while there is nothing to dial.
//! - `conn`: one task pair per TCP connection (handshake + reader, writer with a bounded
//!   queue; the reader re-dials its member every heartbeat while the link is stale) and the
//!   dialler, which doubles as the crash probe (docs/ALGORITHM.md, rule 5): a
//!   refused connection to a member whose link just ended means its process is gone.
//! - `frame`: the length-prefixed codec.
//! - `discovery`: UDP hellos (schedule, receive loop) and the advertised address.
//! - `traffic`: frames and bytes per linked member (status, metrics); `refused`: refused
//!   traffic counted by reason.
//!
//! ```text
//!  new connection (accepted or dialled)
//!    -> queue Hello(me), Peers[..]         both sides, before anything else
//!    -> first frame must be Hello(peer)    of our cluster, not ourselves; else close
//!    -> register under peer id             duplicate: keep the link dialled by the smaller id
//!    -> read loop: Hello/Beat/Leave/Forget -> NetEvent, Peers -> dial unknown addresses
//!    -> EOF or reset on the registered link -> dial the member at once:
//!         refused -> Crashed(id) | connected -> new link | timeout -> nothing
//! ```

mod conn;
mod discovery;
mod frame;
mod inner;
mod refused;
mod table;
mod traffic;

pub use traffic::{PeerCount, Rates};

pub(crate) use inner::{Inner, member_addr, unix_ms};

use crate::metrics::METRICS;
use common::codec::Keyring;
use common::control::Security;
use common::types::{MemberId, MemberInfo};
use common::wire::Message;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Capacity of the [`NetEvent`] channel.
const EVENT_QUEUE: usize = 4096;
/// Capacity of each link's write queue; `send` drops when it is full.
const LINK_QUEUE: usize = 256;
/// How many ports above the requested one are tried when it is taken.
const PORT_SCAN: u16 = 100;

/// Where and how the transport listens, announces and dials.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// TCP listener address (`0.0.0.0` by default).
    pub listen: IpAddr,
    /// Requested TCP port; if taken, port+1, +2 ... are tried (and the choice logged).
    /// 0 picks an ephemeral port.
    pub port: u16,
    /// Where hellos go, e.g. `255.255.255.255:5595`, or `127.255.255.255:5595` on loopback.
    /// Its port is also the UDP port we listen on (shared with other local daemons).
    pub broadcast: SocketAddr,
    /// `--peer ADDR:PORT`: TCP peer ports to dial directly (where broadcast does not reach).
    pub seeds: Vec<SocketAddr>,
    /// Cluster name: frames of other clusters are ignored.
    pub cluster: String,
    /// Address to advertise; by default derived (see `discovery`), never `0.0.0.0`.
    pub advertise: Option<IpAddr>,
    /// The election's beat interval: link staleness and timeouts are judged in beats.
    pub heartbeat: Duration,
    /// Hello repeat interval in steady state (and seed retry interval).
    pub announce: Duration,
    /// Cluster keys (`--key-file`); empty: unauthenticated traffic.
    pub keys: Keyring,
}

/// What the transport reports to the driver.
#[derive(Debug)]
pub enum NetEvent {
    /// A hello from a member of our cluster (UDP or first frame of a link). Repeats are normal.
    Hello(MemberInfo),
    /// A Beat, Leave or Forget from a linked member; `from` is the id of that link's Hello.
    Message {
        /// The member that sent it.
        from: MemberId,
        /// The payload.
        msg: Message,
    },
    /// The member's process is certainly gone: its link ended and its port refuses connections.
    Crashed(MemberId),
}

/// What [`Transport::bind`] actually bound.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    /// The TCP port we listen on (may differ from the requested one).
    pub port: u16,
    /// The address peers should use to reach us (never unspecified).
    pub advertise: IpAddr,
}

/// The transport: UDP discovery plus one TCP link per member. Cheap to clone.
/// Dropping the last clone without [`Transport::shutdown`] stops every task at once.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
    _stop_on_drop: Arc<tokio_util::sync::DropGuard>,
}

impl Transport {
    /// Binds the TCP listener and the UDP discovery socket. Nothing is sent before
    /// [`Transport::start`], which needs our own [`MemberInfo`] (built from [`Bound`]).
    pub async fn bind(
        cfg: TransportConfig,
    ) -> anyhow::Result<(Transport, Bound, mpsc::Receiver<NetEvent>)> {
        let listener = bind_listener(cfg.listen, cfg.port)?;
        let port = listener.local_addr()?.port();
        let udp = discovery::bind_udp(cfg.broadcast)?;
        let advertise = discovery::advertise_addr(&cfg);
        let (events, events_rx) = mpsc::channel(EVENT_QUEUE);
        tracing::info!(
            listen = %cfg.listen, port, advertise = %advertise, broadcast = %cfg.broadcast,
            cluster = %cfg.cluster, "transport bound"
        );
        let inner = Arc::new(Inner::new(cfg, advertise, port, listener, udp, events));
        let transport = Transport {
            _stop_on_drop: Arc::new(inner.cancel.clone().drop_guard()),
            inner,
        };
        Ok((transport, Bound { port, advertise }, events_rx))
    }

    /// Begins announcing, accepting and dialling as `me`. A second call is ignored.
    pub fn start(&self, me: MemberInfo) {
        let (id, name) = (me.id, me.name.clone());
        let Some(listener) = self.inner.begin(me) else {
            tracing::warn!("transport already started");
            return;
        };
        let shared = &self.inner;
        let tracker = &shared.tracker;
        tracker.spawn(conn::accept_loop(shared.clone(), listener));
        tracker.spawn(discovery::announce_loop(shared.clone()));
        tracker.spawn(discovery::recv_loop(shared.clone()));
        tracker.spawn(inner::maintenance_loop(shared.clone()));
        tracing::info!(%name, "transport started");
        tracing::debug!(%name, incarnation = id, "incarnation id");
    }

    /// Members remembered from the state file: their addresses join the member table as
    /// unlinked, so the maintenance round dials them every heartbeat until a link exists (a
    /// node restarted while its hellos could not reach the cluster, inside a partition,
    /// rejoins within a heartbeat of the heal instead of at its next hello). A refusal there
    /// is a certain crash of that incarnation, a new incarnation answering replaces it, as
    /// for any member a link was lost to. A member remembered at our own address (it had
    /// that port before us) is left out: it would never be dialled, only keep the maintenance
    /// round waking every heartbeat for ten minutes.
    pub fn remember<'a>(&self, members: impl IntoIterator<Item = &'a MemberInfo>) {
        for info in members {
            match member_addr(info) {
                Some(addr) if !self.inner.is_self_addr(addr) => self.inner.learn(info, addr),
                _ => {}
            }
        }
    }

    /// Our info changed (rename): re-sends Hello on every link and announces at once.
    /// The id must stay the same (peers check it on every frame).
    pub fn set_self(&self, me: MemberInfo) {
        self.inner.set_me(me);
        self.inner.announce_now.notify_one();
    }

    /// Whether this node follows a master or is one. Only then does a hello from a member
    /// never heard of make us dial it at once whatever the ids (`table::Table::hello`): a
    /// newcomer to a settled cluster is linked within a round trip, while members starting
    /// together dial each pair once (the smaller id dials).
    pub fn set_settled(&self, settled: bool) {
        self.inner
            .settled
            .store(settled, std::sync::atomic::Ordering::Relaxed);
    }

    /// Queues `msg` to member `to` on its link. Never blocks, never fails: without a link or
    /// with a full queue the message is dropped (beats are repeated).
    pub fn send(&self, to: MemberId, msg: Message) {
        // A quiet pair's beat: the writer stays silent (no keepalives) for the gap it declares.
        let quiet_ms = match &msg {
            Message::Beat(b) => b.gap_ms,
            _ => 0,
        };
        let Some(bytes) = self.inner.frame(msg) else {
            return;
        };
        let frame = frame::Outgoing { bytes, quiet_ms };
        let len = frame.bytes.len();
        match self.inner.link_tx(to) {
            None => {
                METRICS.dropped("no_link");
                tracing::trace!(to, "no link: message dropped");
            }
            Some(tx) => {
                if tx.try_send(frame).is_err() {
                    METRICS.dropped("queue_full");
                    tracing::trace!(to, "link queue full: message dropped");
                } else {
                    METRICS.frame("out", "link", len);
                    self.inner.traffic.outbound(to, len);
                }
            }
        }
    }

    /// Frames and bytes per linked member since its link came up.
    pub fn traffic(&self) -> Vec<(MemberId, PeerCount)> {
        self.inner.traffic.snapshot()
    }

    /// Authentication state and counts of refused messages (for `quorumctl status`).
    pub fn security(&self) -> Security {
        self.inner.refused.snapshot(self.inner.cfg.keys.is_keyed())
    }

    /// Ids of the members we currently hold a link to (for status and tests).
    pub fn linked(&self) -> Vec<MemberId> {
        self.inner.linked_ids()
    }

    /// Graceful end: stops listening and announcing, writes what is queued on every link
    /// (e.g. Leave frames) within `flush_deadline`, closes each link with a FIN, and stops
    /// every task.
    pub async fn shutdown(&self, flush_deadline: Duration) {
        let inner = &self.inner;
        let deadline = Instant::now() + flush_deadline;
        inner.stop.cancel();
        // Dropping the queues' senders lets each writer drain its queue, then send FIN.
        let done = inner.begin_shutdown();
        for d in done {
            if tokio::time::timeout_at(deadline, d.cancelled())
                .await
                .is_err()
            {
                tracing::debug!("flush deadline reached with frames still queued");
                break;
            }
        }
        // Give peers a moment to close their side, so our sockets end with FIN, not RST.
        inner.tracker.close();
        let _ = tokio::time::timeout_at(deadline, inner.tracker.wait()).await;
        inner.cancel.cancel();
        let _ = tokio::time::timeout(Duration::from_millis(200), inner.tracker.wait()).await;
        tracing::info!("transport stopped");
    }
}

/// Binds the TCP listener on `port`, or the next free port above it.
fn bind_listener(ip: IpAddr, port: u16) -> anyhow::Result<TcpListener> {
    use anyhow::Context as _;
    let last = if port == 0 {
        0
    } else {
        port.saturating_add(PORT_SCAN)
    };
    let mut candidate = port;
    loop {
        let addr = SocketAddr::new(ip, candidate);
        match try_bind(addr) {
            Ok(l) => {
                if candidate != port {
                    tracing::info!(
                        requested = port,
                        port = candidate,
                        "peer port taken, using the next free one"
                    );
                }
                return Ok(l);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && candidate < last => {
                tracing::debug!(port = candidate, "peer port in use, trying the next");
                candidate += 1;
            }
            Err(e) => {
                let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                    ports_taken_hint(port, candidate, ephemeral_range())
                } else {
                    String::new()
                };
                return Err(e).with_context(|| {
                    format!("binding the TCP peer listener on {addr} (requested port {port}){hint}")
                });
            }
        }
    }
}

/// This host's ephemeral port range (`net.ipv4.ip_local_port_range`), where the kernel
/// picks the local ports of outgoing connections; None where it cannot be read.
fn ephemeral_range() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<u16>().ok());
    Some((it.next()??, it.next()??))
}

/// What to tell the operator when every port from `requested` to `last` was taken. Inside
/// the ephemeral range, ports are also the local ends of this host's outgoing connections
/// (a host running hundreds of daemons dials tens of thousands), so the way out is a port
/// outside it.
fn ports_taken_hint(requested: u16, last: u16, ephemeral: Option<(u16, u16)>) -> String {
    let tried = if last > requested {
        format!(": ports {requested}-{last} are all in use")
    } else {
        String::new()
    };
    match ephemeral {
        Some((low, high)) if low <= high && requested <= high && last >= low => format!(
            "{tried}; they lie in this host's ephemeral port range ({low}-{high}, \
             net.ipv4.ip_local_port_range), where outgoing connections take ports too: \
             choose a port outside it"
        ),
        _ => tried,
    }
}

fn try_bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // SO_REUSEADDR only skips TIME_WAIT; a live listener on the port still makes bind fail.
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    TcpListener::from_std(s.into())
}

#[cfg(test)]
mod tests {
    use super::ports_taken_hint;

    #[test]
    fn a_port_taken_inside_the_ephemeral_range_says_so_and_outside_does_not() {
        let inside = ports_taken_hint(47201, 47301, Some((32768, 60999)));
        assert!(
            inside.contains("ports 47201-47301 are all in use"),
            "{inside}"
        );
        assert!(
            inside.contains("ephemeral port range (32768-60999"),
            "{inside}"
        );
        let outside = ports_taken_hint(8080, 8180, Some((32768, 60999)));
        assert_eq!(outside, ": ports 8080-8180 are all in use");
        // Overlapping the range's lower end counts; an unreadable range says nothing of it.
        assert!(ports_taken_hint(32700, 32800, Some((32768, 60999))).contains("ephemeral"));
        assert_eq!(
            ports_taken_hint(47201, 47301, None),
            ": ports 47201-47301 are all in use"
        );
        // One port tried (port 0, or the scan's end at 65535): nothing to list.
        assert_eq!(ports_taken_hint(65535, 65535, None), "");
    }
}
