//! UDP discovery: the shared broadcast socket, the hello schedule, the receive loop, and the
//! choice of the address we advertise.
//!
//! Every daemon on a host binds the broadcast port with `SO_REUSEADDR` + `SO_REUSEPORT`, so
//! each of them receives every broadcast. A hello is only a hint: it makes the receiver open
//! a TCP link (see the parent module), where liveness is actually judged.

use super::{Inner, TransportConfig};
use anyhow::Context as _;
use common::codec;
use common::wire::Message;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Delays of the first hellos after start with the default `announce` (2 s), so one lost
/// datagram costs 100 ms, not `announce`. A shorter `announce` (the fast profile's 500 ms)
/// shortens them in proportion ([`first_hellos`]).
const FIRST_HELLOS_MS: [u64; 4] = [0, 100, 300, 700];
/// The `announce` that [`FIRST_HELLOS_MS`] is written for.
const FIRST_HELLOS_ANNOUNCE_MS: u64 = 2000;

/// The delays of the first hellos for `announce`: [`FIRST_HELLOS_MS`] scaled by `announce /
/// 2 s`, never longer. Their end matters: a member started after it has heard no hello of
/// ours, and we dial it ([`Inner::on_udp_hello`]). The fast profile elects in about 200 ms,
/// and with the default 700 ms a member started 0.1 s after the second one was counted from
/// a list before its link came (3 to 5 runs in 30 of three 0.1 s apart).
pub(crate) fn first_hellos(announce: Duration) -> [Duration; 4] {
    let a = u64::try_from(announce.as_millis())
        .unwrap_or(u64::MAX)
        .min(FIRST_HELLOS_ANNOUNCE_MS);
    FIRST_HELLOS_MS.map(|ms| Duration::from_millis(ms * a / FIRST_HELLOS_ANNOUNCE_MS))
}

/// The discovery socket's receive buffer, asked for (the kernel doubles it for its own
/// bookkeeping). Every daemon of a host hears every hello: 250 started together send 1,000
/// in their first 0.7 s, and with the default buffer (208 KiB) one such start dropped 66,921
/// of them (`UdpRcvbufErrors`). Memory is taken only while hellos wait unread.
const DISCOVERY_RCVBUF: usize = 2 * 1024 * 1024;

/// Asks for [`DISCOVERY_RCVBUF`]: past the system's `net.core.rmem_max` if we may
/// (`SO_RCVBUFFORCE`, root or `CAP_NET_ADMIN`), else up to it (`SO_RCVBUF` is capped there).
fn size_receive_buffer(s: &Socket) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let size = libc::c_int::try_from(DISCOVERY_RCVBUF).unwrap_or(libc::c_int::MAX);
        // SAFETY: a valid socket, and a pointer to a c_int with its size.
        let forced = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast::<libc::c_void>(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if forced == 0 {
            return;
        }
    }
    if let Err(e) = s.set_recv_buffer_size(DISCOVERY_RCVBUF) {
        tracing::debug!(error = %e, "cannot size the discovery socket's receive buffer");
    }
}

/// Binds the discovery socket on the wildcard address and the broadcast port, shared with the
/// other daemons of this host.
pub(crate) fn bind_udp(broadcast: SocketAddr) -> anyhow::Result<UdpSocket> {
    let any: IpAddr = match broadcast {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let local = SocketAddr::new(any, broadcast.port());
    let build = || -> std::io::Result<UdpSocket> {
        let s = Socket::new(Domain::for_address(local), Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        #[cfg(unix)]
        s.set_reuse_port(true)?;
        s.set_broadcast(true)?;
        size_receive_buffer(&s);
        s.bind(&local.into())?;
        s.set_nonblocking(true)?;
        UdpSocket::from_std(s.into())
    };
    build().with_context(|| format!("binding the UDP discovery socket on {local}"))
}

/// The address peers should reach us at: `--advertise`, else the listen address, else the
/// local address of the route toward the broadcast address (or the first seed), else
/// 127.0.0.1 with a warning. Never unspecified.
pub(crate) fn advertise_addr(cfg: &TransportConfig) -> IpAddr {
    if let Some(a) = cfg.advertise {
        if !a.is_unspecified() {
            return a;
        }
        tracing::warn!(advertise = %a, "refusing to advertise an unspecified address");
    }
    if !cfg.listen.is_unspecified() {
        return cfg.listen;
    }
    if let Some(ip) = route_source(cfg.broadcast) {
        return ip;
    }
    if let Some(ip) = cfg.seeds.first().and_then(|s| route_source(*s)) {
        return ip;
    }
    tracing::warn!("cannot find a local address to advertise: using 127.0.0.1 (set --advertise)");
    Ipv4Addr::LOCALHOST.into()
}

/// The source address the kernel would use toward `target` (no packet is sent).
fn route_source(target: SocketAddr) -> Option<IpAddr> {
    let s = Socket::new(
        Domain::for_address(target),
        Type::DGRAM,
        Some(Protocol::UDP),
    )
    .ok()?;
    // Connecting a UDP socket to a broadcast address needs SO_BROADCAST.
    let _ = s.set_broadcast(true);
    s.connect(&target.into()).ok()?;
    let ip = s.local_addr().ok()?.as_socket()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// How long after our own start a member must have started for [`cannot_have_heard`] to
/// count on its start alone, while our first hellos still go on.
const STARTED_LATER_MS: u64 = 300;

/// Whether a member that started at `started_ms` (its hello says so) cannot have heard any
/// hello of ours, so that it cannot dial us and we must dial it, whatever the order of ids
/// says. It started after our last hello (`last_hello_ms`, 0 before our first: wall clocks,
/// ours and its), and either our first hellos are over (`first_over`: our next is seconds
/// away) or it started at least [`STARTED_LATER_MS`] after us (`my_started_ms`).
///
/// Left to the order of ids, the newcomer dialled us only from a peer's list (four graces
/// later) or at our next hello, and a master elected meanwhile counted it from that list
/// before it had heard it: its exact half was gone and it stepped down (3 daemons 0.5 s
/// apart: 4 runs in 15). Members started together (within 300 ms, while their first hellos
/// go on: a hundred spawned in about 110 ms) keep the order of ids, one dial per pair:
/// dialling them too made a hundred started together elect in 2.25 s median instead of 1.18.
pub(crate) fn cannot_have_heard(
    started_ms: u64,
    my_started_ms: u64,
    last_hello_ms: u64,
    first_over: bool,
) -> bool {
    last_hello_ms != 0
        && started_ms > last_hello_ms
        && (first_over || started_ms >= my_started_ms.saturating_add(STARTED_LATER_MS))
}

/// Members per `announce` period of steady-state hellos: a node linked to more waits longer
/// between its broadcasts (see [`steady_interval`]).
const HELLOS_PER_PERIOD: usize = 8;
/// The longest steady-state interval, in `announce` periods.
const MAX_STRETCH: u32 = 16;
/// The shortest steady-state interval of a node linked to anyone, in `announce` periods.
const LINKED_STRETCH: u32 = 4;

/// The steady-state hello interval of a node linked to `linked` members. Every node hears
/// every broadcast, so hellos every `announce` from each of n nodes cost n² receptions a
/// period; stretching the interval with the cluster keeps the total near `8n` per period
/// (capped at 16 periods: 32 s by default) and traffic O(n). A node linked to nobody
/// announces every `announce`: a newcomer's hellos are what make the cluster dial it (its
/// first ones do not wait at all), and a member already known is re-dialled by the
/// transport without any hello. A linked node's hellos only help someone who hears us but
/// is not heard, so they go at least 4 periods apart (8 s by default): every 2 s, the
/// hellos of 5 members were a quarter of an idle member's wake-ups.
pub(crate) fn steady_interval(announce: Duration, linked: usize) -> Duration {
    let stretch = match linked {
        0 => 1,
        n => (n / HELLOS_PER_PERIOD).clamp(LINKED_STRETCH as usize, MAX_STRETCH as usize) as u32,
    };
    announce.saturating_mul(stretch)
}

/// Sends hellos: at start, +100 ms, +300 ms, +700 ms ([`first_hellos`]: a quarter of that with
/// the fast profile), then every [`steady_interval`], and at
/// once when [`Inner::announce_now`] is notified (rename).
pub(crate) async fn announce_loop(inner: Arc<Inner>) {
    let start = tokio::time::Instant::now();
    let announce = inner.cfg.announce.max(Duration::from_millis(10));
    let mut schedule = first_hellos(announce).into_iter().map(|d| start + d);
    let mut next = schedule.next().unwrap_or(start);
    // Seconds apart in steady state: on tokio's timer each hello cost a second wake-up, to
    // move the timer down the wheel (`crate::timer`).
    let mut timer = crate::timer::DeadlineTimer::new();
    loop {
        tokio::select! {
            _ = inner.stop.cancelled() => break,
            _ = timer.sleep_until(next) => {
                next = schedule.next().unwrap_or_else(|| {
                    // This hello is the last of the first ones, or a steady one: once it is
                    // out, our next is seconds away.
                    inner
                        .first_hellos_over
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    let linked = inner.state().linked_count();
                    tokio::time::Instant::now() + steady_interval(announce, linked)
                });
            }
            _ = inner.announce_now.notified() => {}
        }
        let Some(me) = inner.me() else { continue };
        let Some(bytes) = inner.datagram(Message::Hello(me)) else {
            continue;
        };
        match inner.udp.send_to(&bytes, inner.cfg.broadcast).await {
            Ok(n) => {
                crate::metrics::METRICS.frame("out", "datagram", n);
                inner
                    .last_hello_ms
                    .store(super::unix_ms(), std::sync::atomic::Ordering::Relaxed);
                tracing::trace!(to = %inner.cfg.broadcast, "hello sent")
            }
            Err(e) => {
                tracing::debug!(to = %inner.cfg.broadcast, error = %e, "sending hello failed")
            }
        }
    }
}

/// Receives hellos; junk, other clusters, our own hellos and other messages are dropped.
pub(crate) async fn recv_loop(inner: Arc<Inner>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let r = tokio::select! {
            _ = inner.stop.cancelled() => break,
            r = inner.udp.recv_from(&mut buf) => r,
        };
        let (n, from) = match r {
            Ok(x) => x,
            Err(e) => {
                // E.g. ICMP errors surfacing on the socket: never fatal.
                tracing::debug!(error = %e, "udp receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(data) = buf.get(..n) else { continue };
        crate::metrics::METRICS.frame("in", "datagram", n);
        let env = match codec::open_datagram(&inner.cfg.keys, super::unix_ms(), data) {
            Ok(env) => env,
            Err(e) => {
                inner.refused.note(Some(from), "datagram", &e);
                continue;
            }
        };
        if env.cluster != inner.cfg.cluster {
            tracing::debug!(%from, cluster = %env.cluster, "datagram of another cluster dropped");
            continue;
        }
        match env.msg {
            Message::Hello(info) if info.id == env.from => {
                tracing::trace!(%from, id = info.id, "hello received");
                inner.on_udp_hello(info);
            }
            _ => tracing::debug!(%from, "datagram is not a valid hello: dropped"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The buffer asked for, or as much of it as the system allows an unprivileged process.
    #[tokio::test]
    async fn the_discovery_socket_gets_a_receive_buffer_for_a_burst_of_hellos() {
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|u| u.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let udp = bind_udp(SocketAddr::from(([127, 255, 255, 255], port))).expect("bind");
        let got = socket2::SockRef::from(&udp)
            .recv_buffer_size()
            .expect("SO_RCVBUF");
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let cap = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|t| t.trim().parse::<usize>().ok())
            .unwrap_or(0);
        // Linux reports twice what was set.
        let want = if root {
            DISCOVERY_RCVBUF
        } else {
            DISCOVERY_RCVBUF.min(cap)
        };
        assert!(
            got >= 2 * want,
            "receive buffer {got}, wanted {want} (root: {root}, rmem_max {cap})"
        );
    }

    #[test]
    fn a_member_started_after_our_last_hello_cannot_have_heard_us() {
        // We started at 1000 and said hello at 1000, 1100, 1300 (first hellos going on).
        assert!(
            !cannot_have_heard(1250, 1000, 1100, false),
            "started together"
        );
        assert!(
            cannot_have_heard(1350, 1000, 1300, false),
            "300 ms after us"
        );
        assert!(
            !cannot_have_heard(1299, 1000, 1300, false),
            "heard our 1300 hello"
        );
        assert!(
            !cannot_have_heard(1300, 1000, 1300, false),
            "same millisecond"
        );
        // First hellos over (the last at 1700): anyone started after it.
        assert!(cannot_have_heard(1701, 1000, 1700, true));
        assert!(!cannot_have_heard(1600, 1000, 1700, true));
        // Before our first hello, nobody: we have not said anything yet.
        assert!(!cannot_have_heard(5000, 1000, 0, true));
        // Remote numbers at the edges never overflow.
        assert!(cannot_have_heard(u64::MAX, u64::MAX, 1, false));
        assert!(!cannot_have_heard(0, 0, u64::MAX, true));
    }

    #[test]
    fn the_first_hellos_shorten_with_announce_and_never_lengthen() {
        let ms = |v: [u64; 4]| v.map(Duration::from_millis);
        assert_eq!(first_hellos(Duration::from_secs(2)), ms([0, 100, 300, 700]));
        // The fast profile's announce: over by 175 ms, before its first election.
        assert_eq!(
            first_hellos(Duration::from_millis(500)),
            ms([0, 25, 75, 175])
        );
        assert_eq!(
            first_hellos(Duration::from_secs(60)),
            ms([0, 100, 300, 700])
        );
        assert_eq!(first_hellos(Duration::MAX), ms([0, 100, 300, 700]));
        assert_eq!(first_hellos(Duration::from_millis(10)), ms([0, 0, 1, 3]));
    }

    #[test]
    fn the_steady_hello_interval_stretches_with_the_cluster_and_is_capped() {
        let a = Duration::from_secs(2);
        assert_eq!(steady_interval(a, 0), a);
        assert_eq!(steady_interval(a, 1), 4 * a);
        assert_eq!(steady_interval(a, 4), 4 * a);
        assert_eq!(steady_interval(a, 39), 4 * a);
        assert_eq!(steady_interval(a, 40), 5 * a);
        assert_eq!(steady_interval(a, 99), 12 * a);
        assert_eq!(steady_interval(a, 250), 16 * a);
        assert_eq!(steady_interval(a, usize::MAX), 16 * a);
    }
}
