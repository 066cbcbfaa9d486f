//! One TCP connection's life (handshake, reader, writer), the accept loop and the dialler.
//!
//! The dialler is also the crash probe: a dial that expects member `id` and is refused
//! (nothing listens on its port any more) reports `Crashed(id)` unless `id` is linked.

use super::frame::{Outgoing, ReadError, length_prefixed, read_frame};
use super::{Inner, LINK_QUEUE, NetEvent, member_addr};
use common::codec::{self, Keyring, LinkOpener, LinkSealer, NONCE_LEN, Nonce};
use common::types::{MemberId, MemberInfo};
use common::wire::{Envelope, MAX_GAP_MS, Message};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Accepted connections still in their handshake, at most: more are closed at once (a flood
/// of idle connections costs a file descriptor for a moment, never a task or a buffer). A
/// hundred members starting together dial one another at once: at 64, a member slowed down
/// by the start closed one dial in six at once, and each was dialled again.
const MAX_HANDSHAKING: usize = 256;
/// Accepted connections alive in all, at most (links are bounded by `MAX_LINKS` besides).
const MAX_ACCEPTED: usize = super::table::MAX_LINKS + MAX_HANDSHAKING;
/// Read buffer of one link (see `run_link`).
const LINK_READ_BUFFER: usize = 2 * 1024;

/// Accepts peer connections until the transport stops.
pub(crate) async fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    let handshaking = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKING));
    let accepted = Arc::new(tokio::sync::Semaphore::new(MAX_ACCEPTED));
    loop {
        tokio::select! {
            _ = inner.stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let (Ok(shaking), Ok(slot)) = (
                        handshaking.clone().try_acquire_owned(),
                        accepted.clone().try_acquire_owned(),
                    ) else {
                        tracing::debug!(%peer, "too many connections: closed at once");
                        drop(stream);
                        continue;
                    };
                    tracing::trace!(%peer, "accepted a peer connection");
                    let inner2 = inner.clone();
                    inner.tracker.spawn(async move {
                        let _slot = slot;
                        run_link(inner2, stream, None, Some(shaking)).await;
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a peer connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

/// Frees the dialling slot of an address when the attempt is over, whatever happened.
struct DialSlot {
    inner: Arc<Inner>,
    addr: SocketAddr,
}

impl Drop for DialSlot {
    fn drop(&mut self) {
        self.inner.dial_done(self.addr);
    }
}

/// A connection we opened.
struct Dialed {
    addr: SocketAddr,
    expected: Option<MemberId>,
    /// Crash probe retries left (see [`PROBE_RETRIES`]).
    probes_left: u8,
    _slot: DialSlot,
}

/// A crash probe may connect to a listener whose process is being torn down at that very
/// moment (the kernel completes the handshake, then resets). Such a connection that ends
/// before its hello is probed again, a few times, shortly after.
const PROBE_RETRIES: u8 = 3;
/// Pause between two probes of one member.
const PROBE_GAP: Duration = Duration::from_millis(3);

/// Connects to `addr` (expecting member `expected`, if known) and runs the link. A refusal
/// means nothing listens there: the expected member is reported crashed.
pub(crate) async fn dial(
    inner: Arc<Inner>,
    addr: SocketAddr,
    expected: Option<MemberId>,
    probes_left: u8,
) {
    let slot = DialSlot {
        inner: inner.clone(),
        addr,
    };
    let timeout = inner.connect_timeout();
    let res = tokio::select! {
        _ = inner.cancel.cancelled() => return,
        r = tokio::time::timeout(timeout, TcpStream::connect(addr)) => r,
    };
    match res {
        Ok(Ok(stream)) => {
            let dialed = Dialed {
                addr,
                expected,
                probes_left,
                _slot: slot,
            };
            run_link(inner, stream, Some(dialed), None).await;
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            drop(slot);
            tracing::debug!(%addr, peer = expected.unwrap_or_default(), "connection refused");
            if let Some(id) = expected {
                inner.refused(id).await;
            }
        }
        Ok(Err(e)) if probes_left > 0 && reset_while_connecting(&e) => {
            // The listener of a process being killed can reset the connection before it
            // is even accepted: like a probe that ends before its hello, probe again. A
            // survivor whose probe got this reset learned of the crash only from the next
            // maintenance dial (150 ms later, 600 ms for the larger id of the pair: a
            // failover of 155 and 605 ms instead of 3, `bench --only kill`, 2026-12-07).
            drop(slot);
            tracing::debug!(%addr, peer = expected.unwrap_or_default(), error = %e, "probe reset while connecting: probing again");
            if let Some(id) = expected {
                tokio::time::sleep(PROBE_GAP).await;
                inner.probe(addr, id, probes_left - 1);
            }
        }
        Ok(Err(e)) => {
            tracing::debug!(%addr, peer = expected.unwrap_or_default(), error = %e, "connecting failed")
        }
        Err(_) => {
            tracing::trace!(%addr, peer = expected.unwrap_or_default(), "connecting timed out")
        }
    }
}

/// A connection attempt that the other end reset or aborted (not refused): the listener may
/// be closing at this very moment.
fn reset_while_connecting(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
    )
}

fn tune(inner: &Inner, stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY");
    }
    // Unacknowledged data for a few beats means the path is dead: let the kernel end the
    // connection instead of retransmitting for minutes.
    #[cfg(target_os = "linux")]
    {
        let t = (inner.hb() * 5).max(Duration::from_secs(1));
        if let Err(e) = socket2::SockRef::from(stream).set_tcp_user_timeout(Some(t)) {
            tracing::debug!(error = %e, "cannot set TCP_USER_TIMEOUT");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = inner;
}

/// A fresh random nonce for one connection (None if the OS has no randomness for us).
fn fresh_nonce() -> Option<Nonce> {
    let mut n = [0u8; NONCE_LEN];
    match getrandom::fill(&mut n) {
        Ok(()) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "no randomness for a link nonce: connection closed");
            None
        }
    }
}

/// Runs one connection from handshake to close.
async fn run_link(
    inner: Arc<Inner>,
    stream: TcpStream,
    dialed: Option<Dialed>,
    handshaking: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    let Some(me) = inner.me() else { return };
    let Some(nonce) = fresh_nonce() else { return };
    let hello = Envelope::new(&inner.cfg.cluster, me.id, Message::Hello(me.clone()));
    let open = match codec::seal_open(&inner.cfg.keys, &nonce, &hello) {
        Ok(f) => length_prefixed(&f),
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode our hello: connection closed");
            return;
        }
    };
    tune(&inner, &stream);
    let peer = stream.peer_addr().ok();
    let peer_ip = peer.map(|a| a.ip());
    let (rd, wr) = stream.into_split();
    // Beats are about a hundred bytes, and a burst of them a heartbeat fits in 2 KiB; a
    // larger frame (a members list) is read straight into its own buffer. A member of a
    // hundred holds 99 of these: 16 KiB each was 1.5 MiB of its memory.
    let mut rd = BufReader::with_capacity(LINK_READ_BUFFER, rd);
    let (tx, rx) = mpsc::channel(LINK_QUEUE);
    let close = inner.cancel.child_token();
    let written = CancellationToken::new();
    // Both sides speak first: the open frame (Hello(me) and our nonce), then, once the peer's
    // nonce is known, the addresses we know, so stars become meshes (queued by `handshake`).
    let (nonce_tx, nonce_rx) = oneshot::channel();
    let writer = Writer {
        open,
        keys: inner.cfg.keys.clone(),
        nonce,
        peer_nonce: nonce_rx,
        handshake: handshake_wait(&inner),
        keepalive: inner.frame(Message::Peers { peers: Vec::new() }),
        idle: inner.hb() * 3 / 2,
        stall: (inner.hb() * 2).max(Duration::from_millis(100)),
        close: close.clone(),
        written: written.clone(),
    };
    inner.tracker.spawn(writer.run(wr, rx));

    let shaken = handshake(&inner, &mut rd, &close, me.id, peer, &nonce, nonce_tx, &tx).await;
    drop(handshaking);
    let Some((info, mut opener, first)) = shaken else {
        close.cancel();
        if let Some(Dialed {
            addr,
            expected: Some(id),
            probes_left: left @ 1..,
            _slot,
        }) = dialed
        {
            drop(_slot);
            tokio::time::sleep(PROBE_GAP).await;
            inner.probe(addr, id, left - 1);
        }
        return;
    };
    let id = info.id;
    let Some(addr) = member_addr(&info).or(peer_ip.map(|ip| SocketAddr::new(ip, info.port))) else {
        close.cancel();
        return;
    };
    let dialer = match &dialed {
        Some(d) => {
            inner.note_seed(d.addr, id);
            if let Some(old) = d.expected.filter(|old| *old != id) {
                // Another incarnation listens where `old` lived: `old` is gone.
                tracing::debug!(
                    old,
                    new = id,
                    "a new incarnation answers at a member's address"
                );
                inner.refused(old).await;
            }
            me.id
        }
        None => id,
    };
    let last_read = Arc::new(AtomicU64::new(inner.now_ms()));
    let registered = inner.register(
        &info,
        addr,
        dialer,
        tx,
        last_read.clone(),
        close.clone(),
        written,
    );
    drop(dialed);
    let Some(link_id) = registered else {
        // Lost the duplicate race: our queue (Hello, Peers) drains and FIN follows; read
        // until the peer closes too, so neither side sees a reset.
        linger(&mut rd, &close, inner.hb()).await;
        close.cancel();
        return;
    };
    tracing::debug!(peer = id, name = %info.name, %addr, dialed = dialer == me.id, "link up");
    inner
        .emit_bounded(NetEvent::Hello(info), Duration::from_secs(1))
        .await;
    handle_frame(&inner, id, first).await;

    // Staleness is watched here, not by a periodic scan of every link: one timer at the
    // instant this link would turn stale, replaced by every frame, so a busy link never
    // wakes anybody. Once stale, the member is re-dialled every heartbeat while it stays so.
    let stale_ms = inner.stale_ms();
    let hb_ms = inner.hb().as_millis() as u64;
    // Not before this instant (ms on `inner`'s clock) is the link checked again; None: it
    // is no longer the registered one (replaced), nothing to watch.
    let mut watch = Some(0u64);
    let end = loop {
        // The read stays pinned across staleness checks: a frame half read is never lost.
        let read = read_frame(&mut rd);
        tokio::pin!(read);
        let r = loop {
            let stale_at = watch.map(|not_before| {
                let silent = last_read.load(Ordering::Relaxed).saturating_add(stale_ms);
                inner.instant_ms(silent.max(not_before))
            });
            // Biased, the read first: a process that ran late (a hundred members starting
            // on two cores) finds its frames waiting and the stale timer due at once; picked
            // at random, half of those links were taken for stale, re-dialled and replaced,
            // losing the frames in flight, which made members `lost` and the load worse.
            tokio::select! {
                biased;
                _ = close.cancelled() => break None,
                r = &mut read => break Some(r),
                _ = super::inner::sleep_until(stale_at) => {
                    watch = inner
                        .stale_link(id, link_id)
                        .then(|| inner.now_ms().saturating_add(hb_ms));
                }
            }
        };
        let Some(r) = r else { break None };
        match r {
            Ok(body) => match opener.open(&body) {
                Ok(env) => {
                    // A quiet pair's probe declares the gap until the next one (docs/
                    // ALGORITHM.md, "Cadence"): the link is not stale before that gap ends,
                    // or every quiet link would be re-dialled every heartbeat.
                    let quiet = match &env.msg {
                        Message::Beat(b) => b.gap_ms.min(MAX_GAP_MS),
                        _ => 0,
                    };
                    // Never backwards: a frame without a gap (a members list) inside a
                    // declared gap does not cut it short.
                    last_read.fetch_max(inner.now_ms().saturating_add(quiet), Ordering::Relaxed);
                    let len = body.len().saturating_add(4);
                    crate::metrics::METRICS.frame("in", "link", len);
                    inner.traffic.inbound(id, len);
                    handle_frame(&inner, id, env).await;
                }
                // Dropped without touching the link: the next genuine frame still carries
                // the expected sequence number.
                Err(e) => inner.refused.note(peer, "link frame", &e),
            },
            Err(e) => break Some(e),
        }
    };
    close.cancel();
    let was_registered = inner.unregister(id, link_id);
    match end {
        Some(e) if was_registered && e.suggests_crash() && !inner.stop.is_cancelled() => {
            // docs/ALGORITHM.md, rule 5: is anybody still listening there?
            tracing::debug!(peer = id, reason = %e, "link ended: probing the member's port");
            inner.probe(addr, id, PROBE_RETRIES);
        }
        Some(ReadError::TooLarge(n)) => {
            tracing::debug!(peer = id, len = n, "oversized frame: link closed");
        }
        Some(e) => {
            tracing::debug!(peer = id, reason = %e, registered = was_registered, "link ended")
        }
        None => tracing::debug!(peer = id, registered = was_registered, "link closed"),
    }
}

/// How long a new connection may take to prove itself.
fn handshake_wait(inner: &Inner) -> Duration {
    (inner.hb() * 5).max(Duration::from_millis(500))
}

/// Reads one frame within the handshake deadline.
async fn read_until(
    rd: &mut BufReader<OwnedReadHalf>,
    close: &CancellationToken,
    until: tokio::time::Instant,
) -> Option<Vec<u8>> {
    let r = tokio::select! {
        _ = close.cancelled() => return None,
        r = tokio::time::timeout_at(until, read_frame(rd)) => r,
    };
    match r {
        Err(_) => {
            tracing::debug!("new connection silent past its handshake deadline: closed");
            None
        }
        Ok(Err(e)) => {
            tracing::debug!(reason = %e, "new connection ended during its handshake");
            None
        }
        Ok(Ok(body)) => Some(body),
    }
}

/// The handshake: the open frame must be a Hello of our cluster from somebody else (it gives
/// the peer's nonce, which goes to our writer), and the next frame must open with both
/// nonces: only then is the peer proven (it holds the key and is live, not a replay). Returns
/// the peer's info, the link's opener and that first frame.
#[allow(clippy::too_many_arguments)]
async fn handshake(
    inner: &Inner,
    rd: &mut BufReader<OwnedReadHalf>,
    close: &CancellationToken,
    me: MemberId,
    peer: Option<SocketAddr>,
    nonce: &Nonce,
    nonce_tx: oneshot::Sender<Nonce>,
    tx: &mpsc::Sender<Outgoing>,
) -> Option<(MemberInfo, LinkOpener, Envelope)> {
    let until = tokio::time::Instant::now() + handshake_wait(inner);
    let body = read_until(rd, close, until).await?;
    let (peer_nonce, env) = match codec::open_open(&inner.cfg.keys, &body) {
        Ok(x) => x,
        Err(e) => {
            inner.refused.note(peer, "link handshake", &e);
            return None;
        }
    };
    if env.cluster != inner.cfg.cluster {
        tracing::debug!(cluster = %env.cluster, "connection from another cluster: closed");
        return None;
    }
    let info = match env.msg {
        Message::Hello(info) if info.id == env.from && info.id != me => info,
        Message::Hello(info) if info.id == me => {
            tracing::trace!("connected to ourselves: closed");
            return None;
        }
        _ => {
            tracing::debug!(
                from = env.from,
                "first frame is not a hello: connection closed"
            );
            return None;
        }
    };
    let _ = nonce_tx.send(peer_nonce);
    // Our first sealed frame, which the peer's handshake waits for: the addresses we know.
    // Built only once the peer's hello came: 250 members starting on two cores saw hundreds
    // of thousands of connections end silent before it (and it is built once per change of
    // the links: `Inner::peers_frame`). Nothing else is queued yet (the queue is registered
    // later).
    if let Some(f) = inner.peers_frame() {
        let _ = tx.try_send(f.into());
    }
    let mut opener = LinkOpener::new(inner.cfg.keys.clone(), nonce, &peer_nonce);
    let body = read_until(rd, close, until).await?;
    let first = match opener.open(&body) {
        Ok(env) => env,
        Err(e) => {
            inner.refused.note(peer, "link handshake", &e);
            return None;
        }
    };
    if first.from != info.id || first.cluster != inner.cfg.cluster {
        tracing::debug!(from = first.from, "handshake from another member: closed");
        return None;
    }
    Some((info, opener, first))
}

/// Dispatches one frame read on the link of member `id`.
async fn handle_frame(inner: &Arc<Inner>, id: MemberId, env: Envelope) {
    if env.cluster != inner.cfg.cluster {
        tracing::debug!(peer = id, cluster = %env.cluster, "frame of another cluster dropped");
        return;
    }
    if env.from != id {
        tracing::debug!(
            peer = id,
            from = env.from,
            "frame from another member on this link dropped"
        );
        return;
    }
    tracing::trace!(peer = id, "frame");
    match env.msg {
        Message::Hello(info) => {
            if info.id != id {
                tracing::debug!(peer = id, "hello with another id on this link dropped");
                return;
            }
            if let Some(a) = member_addr(&info) {
                inner.learn(&info, a);
            }
            inner.emit_bounded(NetEvent::Hello(info), inner.hb()).await;
        }
        Message::Peers { peers } => inner.on_peers(&peers),
        msg @ Message::Beat(_) => {
            inner
                .emit_bounded(NetEvent::Message { from: id, msg }, inner.hb())
                .await;
        }
        // Leave (and Forget) are one-shot: never dropped.
        msg => {
            if matches!(msg, Message::Leave { .. }) {
                inner.mark_left(id);
            }
            inner
                .emit_reliable(NetEvent::Message { from: id, msg })
                .await
        }
    }
}

/// Reads and discards until the peer closes or `hb * 10` passes.
async fn linger(rd: &mut BufReader<OwnedReadHalf>, close: &CancellationToken, hb: Duration) {
    let until = tokio::time::Instant::now() + (hb * 10).max(Duration::from_secs(1));
    loop {
        let r = tokio::select! {
            _ = close.cancelled() => return,
            r = tokio::time::timeout_at(until, read_frame(rd)) => r,
        };
        if !matches!(r, Ok(Ok(_))) {
            return;
        }
    }
}

/// The writing half of a link: sends the open frame, waits for the peer's nonce, then seals
/// every queued body as the link's next frame.
struct Writer {
    /// Our open frame (length-prefixed).
    open: Vec<u8>,
    keys: Keyring,
    nonce: Nonce,
    /// The peer's nonce, from the reader's handshake (dropped if the handshake fails).
    peer_nonce: oneshot::Receiver<Nonce>,
    handshake: Duration,
    /// Sent when nothing was written for `idle` (1.5 beats) and no declared gap runs, so a
    /// link never looks stale (six beats past the gap, `STALE_BEATS`) to the peer.
    keepalive: Option<Vec<u8>>,
    idle: Duration,
    /// A write not done within this means the peer is stuck: the link is dropped.
    stall: Duration,
    close: CancellationToken,
    written: CancellationToken,
}

impl Writer {
    async fn run(mut self, mut wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Outgoing>) {
        let sealer = match tokio::time::timeout(self.stall, wr.write_all(&self.open)).await {
            Ok(Ok(())) => {
                let peer = tokio::select! {
                    _ = self.close.cancelled() => None,
                    r = tokio::time::timeout(self.handshake, &mut self.peer_nonce) => {
                        r.ok().and_then(Result::ok)
                    }
                };
                peer.map(|p| LinkSealer::new(self.keys.clone(), &self.nonce, &p))
            }
            _ => None,
        };
        let Some(mut sealer) = sealer else {
            // No handshake: say nothing more.
            let _ = tokio::time::timeout(self.stall, wr.shutdown()).await;
            self.written.cancel();
            return;
        };
        // Until when the peer expects nothing from us: the gap our last beat declared.
        let mut quiet_until = tokio::time::Instant::now();
        let mut last_write = tokio::time::Instant::now();
        loop {
            // A keepalive is due once the link was idle for `idle` and the declared gap is
            // over: one timer to that instant, not a wake-up every `idle` inside the gap.
            let due = (last_write + self.idle).max(quiet_until);
            let next = tokio::select! {
                biased;
                _ = self.close.cancelled() => break,
                r = tokio::time::timeout_at(due, rx.recv()) => r,
            };
            let frame = match next {
                Ok(Some(f)) => {
                    if f.quiet_ms > 0 {
                        quiet_until = tokio::time::Instant::now()
                            + Duration::from_millis(f.quiet_ms.min(MAX_GAP_MS));
                    }
                    f.bytes
                }
                Ok(None) => {
                    // Every sender is gone: the queue is flushed, say goodbye with a FIN.
                    let _ = tokio::time::timeout(self.stall, wr.shutdown()).await;
                    break;
                }
                // A quiet pair's gap: the peer does not count the link stale before it ends.
                Err(_) if tokio::time::Instant::now() < quiet_until => continue,
                Err(_) => match &self.keepalive {
                    Some(k) => k.clone(),
                    None => continue,
                },
            };
            let frame = length_prefixed(&sealer.seal(&frame));
            match tokio::time::timeout(self.stall, wr.write_all(&frame)).await {
                Ok(Ok(())) => last_write = tokio::time::Instant::now(),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "write failed: link dropped");
                    // A reset seen here first must still reach the reader, which probes for a
                    // crash: let it see the error itself, and stop it only if it does not.
                    self.written.cancel();
                    drop(wr);
                    tokio::time::sleep(self.idle).await;
                    self.close.cancel();
                    return;
                }
                Err(_) => {
                    tracing::debug!("write stalled for 2 beats: link dropped");
                    self.close.cancel();
                    break;
                }
            }
        }
        self.written.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::reset_while_connecting;
    use std::io::{Error, ErrorKind};

    #[test]
    fn a_probe_reset_while_connecting_is_probed_again_a_refused_one_is_a_crash() {
        // Reset or aborted: the listener may be closing right now, so the probe goes again.
        assert!(reset_while_connecting(&Error::from(
            ErrorKind::ConnectionReset
        )));
        assert!(reset_while_connecting(&Error::from(
            ErrorKind::ConnectionAborted
        )));
        // Refused is the crash itself (its own branch); other failures are not a probe's.
        assert!(!reset_while_connecting(&Error::from(
            ErrorKind::ConnectionRefused
        )));
        assert!(!reset_while_connecting(&Error::from(ErrorKind::TimedOut)));
        assert!(!reset_while_connecting(&Error::from(
            ErrorKind::PermissionDenied
        )));
    }
}
