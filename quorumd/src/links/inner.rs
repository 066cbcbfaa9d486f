//! The transport's shared state: the member table (`table.rs`, behind one mutex), the event
//! channel, the sockets, and the maintenance task, which dials unlinked members and `--peer`
//! seeds. The table decides; this module acts (dials, events, retiring replaced links).
//!
//! Nothing here wakes on a fixed period for nothing to do: the maintenance task sleeps until
//! the table's next due round (none while every known member is linked), the seed timer runs
//! only when there are seeds, and a stale link is noticed by its own reader
//! ([`Inner::stale_link`]).
//!
//! The `std` mutexes are never held across an `.await`. Where two are held, the table's is
//! taken first: a link's traffic counters start and stop under it, with its registration.

use super::frame::Outgoing;
use super::refused::Refused;
use super::table::{
    Crash, HelloDial, Link, MAX_DIALS_PER_PEERS, MAX_LINKS, PATIENCE, Registered, Staleness, Table,
};
use super::{NetEvent, TransportConfig, conn};
use common::codec;
use common::types::{MemberId, MemberInfo};
use common::wire::{Envelope, Message, PeerAddr};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A link from which nothing was read for this many heartbeats (past a gap the peer
/// declared) is stale: its reader has the member re-dialled ([`Inner::stale_ms`]).
pub(crate) const STALE_BEATS: u32 = 6;

/// State shared by the transport's tasks.
pub(crate) struct Inner {
    pub(crate) cfg: TransportConfig,
    pub(crate) advertise: IpAddr,
    pub(crate) port: u16,
    events: mpsc::Sender<NetEvent>,
    state: Mutex<Table>,
    /// Stops accepting, announcing and timers (start of shutdown).
    pub(crate) stop: CancellationToken,
    /// Stops everything (end of shutdown).
    pub(crate) cancel: CancellationToken,
    pub(crate) tracker: TaskTracker,
    origin: Instant,
    pub(crate) announce_now: Notify,
    /// A member began waiting for a link and the planned round is too late for it
    /// ([`Table::claim_round`]): the maintenance task plans its next round anew.
    replan: Notify,
    next_link: AtomicU64,
    listener: Mutex<Option<TcpListener>>,
    pub(crate) udp: Arc<UdpSocket>,
    /// Refused traffic, counted for `quorumctl status`.
    pub(crate) refused: Refused,
    /// Frames and bytes per linked member.
    pub(crate) traffic: super::traffic::Traffic,
    /// We follow a master or are one ([`super::Transport::set_settled`]): a hello from a
    /// member we never heard of is a newcomer's.
    pub(crate) settled: std::sync::atomic::AtomicBool,
    /// Wall-clock ms of our last broadcast hello (0 before the first): a member started
    /// after it has not heard us ([`Inner::on_udp_hello`]).
    pub(crate) last_hello_ms: AtomicU64,
    /// Our first hellos are over: the next is seconds away.
    pub(crate) first_hellos_over: std::sync::atomic::AtomicBool,
}

/// Wall clock, ms since the Unix epoch (datagram time stamps).
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the transport down with it: the data stays consistent
    // because no critical section here can panic half-way.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Parses a member's advertised address.
pub(crate) fn member_addr(info: &MemberInfo) -> Option<SocketAddr> {
    let ip: IpAddr = info.addr.parse().ok()?;
    (!ip.is_unspecified()).then_some(SocketAddr::new(ip, info.port))
}

impl Inner {
    /// The shared state of a bound, not yet started transport.
    pub(super) fn new(
        cfg: TransportConfig,
        advertise: IpAddr,
        port: u16,
        listener: TcpListener,
        udp: UdpSocket,
        events: mpsc::Sender<NetEvent>,
    ) -> Self {
        // `stop` ends the loops (start of shutdown); `cancel` ends everything, loops included.
        let cancel = CancellationToken::new();
        Inner {
            cfg,
            advertise,
            port,
            events,
            state: Mutex::new(Table::default()),
            stop: cancel.child_token(),
            cancel,
            tracker: TaskTracker::new(),
            origin: Instant::now(),
            announce_now: Notify::new(),
            replan: Notify::new(),
            next_link: AtomicU64::new(1),
            listener: Mutex::new(Some(listener)),
            udp: Arc::new(udp),
            refused: Refused::default(),
            traffic: Default::default(),
            settled: Default::default(),
            last_hello_ms: AtomicU64::new(0),
            first_hellos_over: Default::default(),
        }
    }

    /// Takes the listener and sets our info, once: the caller (`Transport::start`) then
    /// spawns the tasks. None if already started. (The table never names the discovery
    /// module: discovery depends on the table, not the other way round.)
    pub(super) fn begin(&self, me: MemberInfo) -> Option<TcpListener> {
        let listener = lock(&self.listener).take()?;
        self.state().set_me(me);
        Some(listener)
    }

    /// Replaces our info and queues the new Hello on every link.
    pub(super) fn set_me(&self, me: MemberInfo) {
        let hello = Message::Hello(me.clone());
        self.state().set_me(me);
        if let Some(frame) = self.frame(hello) {
            for tx in self.state().link_txs() {
                let _ = tx.try_send(frame.clone().into());
            }
        }
    }

    /// The write queue of member `to`'s link.
    pub(super) fn link_tx(&self, to: MemberId) -> Option<mpsc::Sender<Outgoing>> {
        self.state().link_tx(to)
    }

    /// Ids of the linked members, sorted.
    pub(super) fn linked_ids(&self) -> Vec<MemberId> {
        self.state().linked_ids()
    }

    /// Refuses new links and unregisters every link, which lets each writer drain its queue
    /// and send FIN. Returns the writers' completion signals.
    pub(super) fn begin_shutdown(&self) -> Vec<CancellationToken> {
        self.state().begin_shutdown()
    }

    pub(super) fn state(&self) -> MutexGuard<'_, Table> {
        lock(&self.state)
    }

    pub(crate) fn me(&self) -> Option<MemberInfo> {
        self.state().me().cloned()
    }

    pub(crate) fn my_id(&self) -> Option<MemberId> {
        self.state().me().map(|m| m.id)
    }

    pub(crate) fn hb(&self) -> Duration {
        self.cfg.heartbeat.max(Duration::from_millis(1))
    }

    /// Connect timeout for reconnects and crash probes: ~2 heartbeats, at least 50 ms.
    pub(crate) fn connect_timeout(&self) -> Duration {
        (self.hb() * 2).max(Duration::from_millis(50))
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// The instant `ms` on the clock of [`Inner::now_ms`].
    pub(crate) fn instant_ms(&self, ms: u64) -> Instant {
        self.origin + Duration::from_millis(ms)
    }

    /// A link silent for this long ([`STALE_BEATS`] heartbeats) is stale: its member is
    /// re-dialled.
    pub(crate) fn stale_ms(&self) -> u64 {
        // Six heartbeats (the default silence window), four times the writer's keepalive
        // interval. At three, a member merely slowed down (a hundred members starting
        // together on two cores) had its links re-dialled every round, and each new link
        // replacing the old one lost the frames in flight: beats went missing, members went
        // `lost`, everyone stayed loud, and the load that made the links look stale never
        // ended (no master after 30 s). A link really broken is re-dialled at most three
        // heartbeats later than before; a crash is seen by the crash probe, not here.
        (self.hb() * STALE_BEATS).as_millis() as u64
    }

    /// Our own envelope around `msg`, encoded once (each link's writer seals it). None
    /// before `start` or if too large.
    pub(crate) fn frame(&self, msg: Message) -> Option<Vec<u8>> {
        let id = self.my_id()?;
        codec::encode_body(&Envelope::new(&self.cfg.cluster, id, msg))
            .map_err(|e| tracing::warn!(error = %e, "cannot encode frame: dropped"))
            .ok()
    }

    /// Seals `msg` as a discovery datagram.
    pub(crate) fn datagram(&self, msg: Message) -> Option<Vec<u8>> {
        let id = self.my_id()?;
        codec::seal_datagram(
            &self.cfg.keys,
            unix_ms(),
            &Envelope::new(&self.cfg.cluster, id, msg),
        )
        .map_err(|e| tracing::warn!(error = %e, "cannot encode datagram"))
        .ok()
    }

    /// Is `addr` our own listener?
    pub(crate) fn is_self_addr(&self, addr: SocketAddr) -> bool {
        addr.port() == self.port
            && (addr.ip() == self.advertise
                || addr.ip() == self.cfg.listen
                || (addr.ip().is_loopback()
                    && (self.advertise.is_loopback() || self.cfg.listen.is_unspecified())))
    }

    /// Our `Peers` frame: the addresses of every member we hold a link to, as each
    /// connection's handshake sends it. Built once per change of the links: 250 members
    /// starting on two cores made hundreds of thousands of connections, and formatting every
    /// address for each of them was 4–5 % of their CPU.
    pub(crate) fn peers_frame(&self) -> Option<Vec<u8>> {
        let (peers, changed) = match self.state().peers_frame() {
            Ok(f) => return Some(f),
            Err(to_build) => to_build,
        };
        let frame = self.frame(Message::Peers { peers })?;
        self.state().keep_peers_frame(changed, &frame);
        Some(frame)
    }

    // ---- events ----

    /// Bounded wait: a link's first Hello and beats may wait a little, never forever.
    pub(crate) async fn emit_bounded(&self, ev: NetEvent, wait: Duration) {
        if tokio::time::timeout(wait, self.events.send(ev))
            .await
            .is_err()
        {
            crate::metrics::METRICS.dropped("driver_busy");
            tracing::debug!("event queue full: event dropped");
        }
    }

    /// Crashed and Leave are never dropped.
    pub(crate) async fn emit_reliable(&self, ev: NetEvent) {
        let _ = self.events.send(ev).await;
    }

    // ---- membership table ----

    /// Records a member's address (from a hello); clears an earlier crash report.
    pub(crate) fn learn(&self, info: &MemberInfo, addr: SocketAddr) {
        let mut table = self.state();
        if !table.learn(info.id, &info.name, addr, Instant::now()) {
            drop(table);
            tracing::debug!(
                id = info.id,
                "member table of the transport full: hello ignored"
            );
            return;
        }
        if !table.is_linked(info.id) {
            self.await_link(table);
        }
    }

    /// A member begins to wait for a link (under `table`, released here): the maintenance
    /// round dials it a heartbeat from now, planned anew if it was later than that.
    fn await_link(&self, mut table: MutexGuard<'_, Table>) {
        let replan = table.claim_round(Instant::now() + self.hb());
        drop(table);
        if replan {
            self.replan.notify_one();
        }
    }

    /// A UDP hello: make sure a link exists (who dials when: [`Table::hello`]). The hello is
    /// only a hint to dial: the election core hears of a member from the Hello its link
    /// carries after the handshake, never from a datagram, so members no link ever proved
    /// (a flood of hellos with fresh ids, even authentic ones) never enter the count.
    pub(crate) fn on_udp_hello(self: &Arc<Self>, info: MemberInfo) {
        let Some(me) = self.my_id() else { return };
        if info.id == me {
            return;
        }
        let Some(addr) = member_addr(&info) else {
            tracing::debug!(id = info.id, addr = %info.addr, "hello with an unusable address");
            return;
        };
        // In a cluster with a master, whoever says hello and is unknown is a newcomer. Not
        // merely past our first heartbeats, as before: a hundred members starting together
        // on two cores read one another's hellos a second or more after their start, took
        // them all for newcomers' and dialled every pair from both ends.
        let settled = self.settled.load(Ordering::Relaxed);
        // Settled or not, a member that cannot have heard us is dialled at once: it cannot
        // make the dial the order of ids leaves to it (`super::discovery::cannot_have_heard`).
        let last_hello = self.last_hello_ms.load(Ordering::Relaxed);
        let first_over = self.first_hellos_over.load(Ordering::Relaxed);
        let mut table = self.state();
        let unheard = table.me().is_some_and(|mine| {
            super::discovery::cannot_have_heard(
                info.started_ms,
                mine.started_ms,
                last_hello,
                first_over,
            )
        });
        let answer = table.hello(
            me,
            info.id,
            &info.name,
            addr,
            Instant::now(),
            settled || unheard,
        );
        // Dialled now or not, it is the maintenance round's until a link exists.
        if answer != HelloDial::Full && !table.is_linked(info.id) {
            self.await_link(table);
        } else {
            drop(table);
        }
        match answer {
            HelloDial::Now => self.dial(addr, Some(info.id)),
            HelloDial::Later => {}
            HelloDial::Full => tracing::debug!(
                id = info.id,
                "member table of the transport full: hello dropped"
            ),
        }
    }

    /// Registers a link after its handshake. Returns its link id, or None when an existing
    /// link wins (or we are shutting down): the caller then closes the new one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn register(
        self: &Arc<Self>,
        info: &MemberInfo,
        addr: SocketAddr,
        dialer: MemberId,
        tx: mpsc::Sender<Outgoing>,
        last_read: Arc<AtomicU64>,
        close: CancellationToken,
        written: CancellationToken,
    ) -> Option<u64> {
        let me = self.my_id()?;
        let now = self.now_ms();
        // An existing link counts as alive (a second link to its member is refused) for as
        // long as its reader does not call it stale. With a shorter window (two heartbeats)
        // a member busy with a hundred others starting had frames waiting unread on a link
        // older than that: each end judged its first link stale and kept the other end's,
        // so both links closed, each end probed the other's port, and the dialling began
        // again (a third of all link set-ups at such a start).
        let fresh_ms = self.stale_ms();
        let link_id = self.next_link.fetch_add(1, Ordering::Relaxed);
        let link = Link::new(link_id, tx, addr, dialer, last_read, close, written);
        let mut table = self.state();
        let registered = table.register(info.id, &info.name, link, me, now, fresh_ms);
        let (replaced, others) = match registered {
            Registered::Yes { replaced, others } => {
                // Counting restarts under the table's lock, as `unregister` stops it: the
                // end of a previous link can never remove the counters of a newer one.
                self.traffic
                    .linked(info.id, &info.name, std::time::Instant::now());
                drop(table);
                (replaced, others)
            }
            Registered::Refused(why) => {
                drop(table);
                if why == "link table full" {
                    tracing::warn!(
                        member = %info.name,
                        "{MAX_LINKS} links already: new link refused"
                    );
                } else {
                    tracing::debug!(peer = info.id, "{why}");
                }
                return None;
            }
        };
        if let Some(old) = replaced {
            tracing::debug!(peer = info.id, "replacing the link to a member");
            self.retire(old);
        }
        // Tell the other linked members about the new one, so that a star of `--peer` seeds
        // becomes a full mesh whatever the order in which its links came up.
        if !others.is_empty() {
            let gossip = Message::Peers {
                peers: vec![PeerAddr {
                    addr: addr.ip().to_string(),
                    port: addr.port(),
                }],
            };
            if let Some(frame) = self.frame(gossip) {
                for tx in others {
                    let _ = tx.try_send(frame.clone().into());
                }
            }
        }
        Some(link_id)
    }

    /// Closes a replaced link gracefully: its queue drains, FIN goes out, and its reader
    /// is stopped after a grace period if the peer does not close its side.
    fn retire(self: &Arc<Self>, old: Link) {
        let (tx, close) = old.into_parts();
        drop(tx);
        let grace = (self.hb() * 10).max(Duration::from_secs(1));
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(grace) => {}
                _ = cancel.cancelled() => {}
            }
            close.cancel();
        });
    }

    /// Removes link `link_id` of `id` if it is still the registered one. Returns whether it was.
    pub(crate) fn unregister(&self, id: MemberId, link_id: u64) -> bool {
        let mut table = self.state();
        let was = table.unregister(id, link_id, Instant::now());
        if was {
            // Under the table's lock: see `register`.
            self.traffic.unlinked(id);
            // The member now waits for a link: dialled a grace after, then every round.
            self.await_link(table);
        }
        was
    }

    /// Nothing listens where member `id` lived: report it crashed, once, unless a link to it
    /// exists (then it is evidently alive elsewhere).
    pub(crate) async fn refused(&self, id: MemberId) {
        let Some(crash) = self.state().report_crash(id) else {
            return;
        };
        match crash {
            // A member that said it leaves closes its port: that is the end of a dispatch.
            Crash { name, left: true } => {
                let name = name.unwrap_or_default();
                tracing::debug!(member = %name, "the port of a member that left is closed");
            }
            Crash {
                name: Some(name),
                left: false,
            } => {
                tracing::info!(member = %name, "member crashed: its port refuses connections");
            }
            Crash { name: None, .. } => {
                tracing::debug!(peer = id, "a member never heard from refuses connections");
            }
        }
        self.emit_reliable(NetEvent::Crashed(id)).await;
    }

    /// Member `id` said it leaves (a dispatch).
    pub(crate) fn mark_left(&self, id: MemberId) {
        self.state().mark_left(id);
    }

    /// Received Peers: every address we do not know yet is dialled if still unknown a
    /// little later ([`Table::hear_of`]).
    pub(crate) fn on_peers(self: &Arc<Self>, peers: &[PeerAddr]) {
        let mut dials = 0usize;
        for p in peers {
            if dials >= MAX_DIALS_PER_PEERS {
                tracing::debug!(
                    len = peers.len(),
                    "peers list beyond the dial bound: rest ignored"
                );
                break;
            }
            let Ok(ip) = p.addr.parse::<IpAddr>() else {
                continue;
            };
            if ip.is_unspecified() {
                continue;
            }
            let addr = SocketAddr::new(ip, p.port);
            if self.is_self_addr(addr) {
                continue;
            }
            let mut table = self.state();
            if table.hear_of(addr, Instant::now()) {
                tracing::debug!(%addr, "a peer learned from a peers list: dialled if still unknown");
                dials += 1;
                let replan = table.claim_round(Instant::now() + self.hb() * PATIENCE);
                drop(table);
                if replan {
                    self.replan.notify_one();
                }
            }
        }
    }

    /// Starts a connection attempt to `addr` (expecting member `expected`), unless one is in
    /// flight already or it is ourselves.
    pub(crate) fn dial(self: &Arc<Self>, addr: SocketAddr, expected: Option<MemberId>) {
        self.dial_with(addr, expected, 0);
    }

    /// A crash probe: dial member `id` at `addr`; a refusal reports it crashed, and a
    /// connection that ends before its hello is probed again (`retries` more times).
    pub(crate) fn probe(self: &Arc<Self>, addr: SocketAddr, id: MemberId, retries: u8) {
        self.dial_with(addr, Some(id), retries);
    }

    fn dial_with(self: &Arc<Self>, addr: SocketAddr, expected: Option<MemberId>, retries: u8) {
        if self.is_self_addr(addr) || self.stop.is_cancelled() {
            return;
        }
        if !self.state().start_dial(addr) {
            return;
        }
        self.tracker
            .spawn(conn::dial(self.clone(), addr, expected, retries));
    }

    /// The dial to `addr` is over (failed, or its handshake finished).
    pub(crate) fn dial_done(&self, addr: SocketAddr) {
        self.state().dial_done(addr);
    }

    /// A dial to `addr` answered as `id`: remember it if `addr` is a seed.
    pub(crate) fn note_seed(&self, addr: SocketAddr, id: MemberId) {
        if self.cfg.seeds.contains(&addr) {
            self.state().note_seed(addr, id);
        }
    }

    /// One maintenance round: dial the members waiting for a link.
    fn tick(self: &Arc<Self>) {
        let to_dial = self.state().due(Instant::now(), self.hb());
        for (addr, id) in to_dial {
            self.dial(addr, id);
        }
    }

    /// The reader of link `link_id` to member `id` found it silent since its last frame
    /// for [`Inner::stale_ms`]: re-dial the member (the new link replaces the stale one, by the
    /// duplicate-link rule). Returns whether the reader should keep watching: false once
    /// that link is not the member's registered one any more.
    pub(crate) fn stale_link(self: &Arc<Self>, id: MemberId, link_id: u64) -> bool {
        let staleness = self
            .state()
            .staleness(id, link_id, self.now_ms(), self.stale_ms());
        match staleness {
            Staleness::Gone => false,
            Staleness::Fresh => true,
            Staleness::Stale(addr) => {
                tracing::trace!(peer = id, "link silent for long: reconnecting");
                self.dial(addr, Some(id));
                true
            }
        }
    }

    /// Dials every seed that has no link yet.
    fn dial_seeds(self: &Arc<Self>) {
        let pending = self.state().unlinked_seeds(&self.cfg.seeds);
        for s in pending {
            self.dial(s, None);
        }
    }
}

/// Dials the members waiting for a link (a heartbeat after their link ended or their first
/// hello, then every heartbeat until linked) and, every `announce`, the unlinked seeds.
///
/// The round sleeps until the table's next due instant ([`Table::plan_round`]), or until a
/// member begins to wait before it ([`Inner::replan`]): in a settled cluster every member is
/// linked and nothing wakes this task. The seed timer exists only with `--peer` seeds.
pub(super) async fn maintenance_loop(inner: Arc<Inner>) {
    let hb = inner.hb();
    let mut seeds = (!inner.cfg.seeds.is_empty()).then(|| {
        let mut t = tokio::time::interval(inner.cfg.announce.max(Duration::from_millis(10)));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut last = Instant::now();
    loop {
        let next = inner.state().plan_round(last, hb, hb);
        tokio::select! {
            _ = inner.stop.cancelled() => break,
            // A member began to wait: plan again (`last` keeps the rounds a heartbeat apart).
            _ = inner.replan.notified() => {}
            _ = sleep_until(next) => {
                last = Instant::now();
                inner.tick();
            }
            _ = tick(&mut seeds) => inner.dial_seeds(),
        }
    }
}

/// Sleeps until `t`; forever if None.
pub(crate) async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// The next tick of `timer`; never if None.
async fn tick(timer: &mut Option<tokio::time::Interval>) {
    match timer {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}
