//! The transport's member table: registered links (one per member id), members known by
//! address, dials in flight, crash reports and seed answers, with the rules that change them
//! (the duplicate-link rule, who dials after a hello, the Leave mark) and their bounds. Synchronous and without IO: the transport (`inner.rs`) keeps it behind
//! one mutex and acts on what its methods return.

use super::frame::Outgoing;
use common::types::{MemberId, MemberInfo};
use common::wire::PeerAddr;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A member without a link is re-dialled for this long, then forgotten until it says hello.
const FORGET_UNLINKED: Duration = Duration::from_secs(600);
/// Bound on the set of ids reported crashed (only used to report each crash once).
const MAX_CRASHED: usize = 10_000;
/// Bound on registered links (members with a proven handshake).
pub(crate) const MAX_LINKS: usize = 1024;
/// Bound on known members (linked or not): hellos beyond it are not remembered.
const MAX_KNOWN: usize = 2048;
/// Bound on connection attempts in flight.
const MAX_DIALING: usize = 128;
/// How many graces the larger id of a pair waits for the smaller one's dial before it dials
/// itself ([`Table::grace_for`]).
pub(crate) const PATIENCE: u32 = 4;
/// Addresses dialled per `Peers` frame, at most.
pub(crate) const MAX_DIALS_PER_PEERS: usize = 32;

/// One registered link.
pub(crate) struct Link {
    /// Tells this connection from a later one to the same member.
    link_id: u64,
    /// The writer's queue. Dropping the last sender makes the writer flush and send FIN.
    tx: mpsc::Sender<Outgoing>,
    /// The member's advertised address: where reconnects and crash probes go.
    addr: SocketAddr,
    /// Who opened the connection (us or the peer): decides between duplicate links.
    dialer: MemberId,
    /// Milliseconds since the transport's origin of the last frame read.
    last_read: Arc<AtomicU64>,
    /// Hard stop of this connection's reader and writer.
    close: CancellationToken,
    /// Cancelled by the writer when it has finished (flushed or failed).
    written: CancellationToken,
}

impl Link {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        link_id: u64,
        tx: mpsc::Sender<Outgoing>,
        addr: SocketAddr,
        dialer: MemberId,
        last_read: Arc<AtomicU64>,
        close: CancellationToken,
        written: CancellationToken,
    ) -> Self {
        Link {
            link_id,
            tx,
            addr,
            dialer,
            last_read,
            close,
            written,
        }
    }

    /// The writer's queue and the reader's hard stop, for retiring a replaced link.
    pub(crate) fn into_parts(self) -> (mpsc::Sender<Outgoing>, CancellationToken) {
        (self.tx, self.close)
    }
}

/// What decides whether a new, authenticated link replaces the registered one of a member.
#[derive(Clone, Copy, Debug)]
struct Existing {
    dialer: MemberId,
    addr: SocketAddr,
    /// A frame was read on it lately (within the stale limit: `Inner::stale_ms`).
    fresh: bool,
}

/// The duplicate-link rule. A live link is never taken over from another address (a process
/// claiming a linked member's id, even with the key, must wait until the real link is
/// stale). Otherwise: same opener = a reconnect, the newer link wins; a stale link is
/// replaced; two links dialled at once keep the one dialled by the smaller id
/// (`smaller`), a rule both ends apply identically.
fn takes_over(old: Existing, dialer: MemberId, addr: SocketAddr, smaller: MemberId) -> bool {
    if !old.fresh {
        return true;
    }
    if old.addr != addr {
        return false;
    }
    old.dialer == dialer || dialer == smaller
}

/// A member we heard of, linked or not.
struct Known {
    addr: SocketAddr,
    /// Its name, for logs.
    name: String,
    /// It said it leaves (dispatch): its port closing next is no crash.
    left: bool,
    /// When its link ended (or since when we wait for one); None while linked.
    unlinked_since: Option<Instant>,
    /// A discovery hello of it reached us: it is on our broadcast domain, and so hears the
    /// hellos of every other member we heard that way (no need to tell them of each other).
    heard: bool,
}

/// A crash report of [`Table::report_crash`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Crash {
    /// The member's name, if we knew it.
    pub name: Option<String>,
    /// It had said it leaves: its port closing is the end of a dispatch, not a crash.
    pub left: bool,
}

/// What [`Table::hello`] says about a discovery hello.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HelloDial {
    /// The table is full and the member unknown: the hello is ignored.
    Full,
    /// Dial the member now.
    Now,
    /// No dial now: the other end dials, or the maintenance round does a heartbeat later.
    Later,
}

/// What [`Table::staleness`] says to the reader of a link.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Staleness {
    /// The link is no longer the member's registered one: nothing to watch any more.
    Gone,
    /// A frame came within the stale limit.
    Fresh,
    /// Silent past the limit: re-dial the member at this address (the new link replaces it).
    Stale(SocketAddr),
}

/// The outcome of [`Table::register`].
pub(crate) enum Registered {
    /// An existing link wins, the table is full, or we are shutting down: close the new one.
    Refused(&'static str),
    /// The link is registered; `replaced` is the link it took over (retire it), `others`
    /// the queues of the other links (tell them about the new member).
    Yes {
        replaced: Option<Link>,
        others: Vec<mpsc::Sender<Outgoing>>,
    },
}

/// The table. Every field is private: the rules below are the only way to change it.
#[derive(Default)]
pub(crate) struct Table {
    me: Option<MemberInfo>,
    links: HashMap<MemberId, Link>,
    known: HashMap<MemberId, Known>,
    /// Addresses with a connection attempt (connect + handshake) in flight: at most one each.
    dialing: HashSet<SocketAddr>,
    /// Members already reported crashed (each crash is reported once).
    crashed: HashSet<MemberId>,
    /// Which member answered at each seed address.
    seed_ids: HashMap<SocketAddr, MemberId>,
    /// Addresses a peer's list told us of, known by no hello or link yet, and since when:
    /// the maintenance round dials those still unknown [`PATIENCE`] graces later
    /// ([`Table::hear_of`]).
    told_of: HashMap<SocketAddr, Instant>,
    /// When the maintenance round is planned (None: not at all, nobody waits for a link).
    round_at: Option<Instant>,
    shutting_down: bool,
    /// Our `Peers` frame (the addresses of every link), built once per change of the links
    /// (`Inner::peers_frame`): each connection's handshake sends it. Cleared, and
    /// `links_changed` counted, at every change.
    peers_frame: Option<Vec<u8>>,
    links_changed: u64,
}

impl Table {
    pub(crate) fn me(&self) -> Option<&MemberInfo> {
        self.me.as_ref()
    }

    pub(crate) fn set_me(&mut self, me: MemberInfo) {
        self.me = Some(me);
        self.links_moved();
    }

    fn links_moved(&mut self) {
        self.peers_frame = None;
        self.links_changed = self.links_changed.wrapping_add(1);
    }

    /// Our cached `Peers` frame if the links did not change since it was built, else the
    /// addresses to build it from and the count of changes to pass to [`Self::keep_peers_frame`].
    pub(crate) fn peers_frame(&self) -> Result<Vec<u8>, (Vec<PeerAddr>, u64)> {
        match &self.peers_frame {
            Some(f) => Ok(f.clone()),
            None => Err((self.peer_addrs(), self.links_changed)),
        }
    }

    /// Caches `frame`, built from the addresses [`Self::peers_frame`] gave with `changed`, if
    /// the links did not change since.
    pub(crate) fn keep_peers_frame(&mut self, changed: u64, frame: &[u8]) {
        if changed == self.links_changed {
            self.peers_frame = Some(frame.to_vec());
        }
    }

    /// The write queue of member `to`'s link.
    pub(crate) fn link_tx(&self, to: MemberId) -> Option<mpsc::Sender<Outgoing>> {
        self.links.get(&to).map(|l| l.tx.clone())
    }

    /// The write queues of every link.
    pub(crate) fn link_txs(&self) -> Vec<mpsc::Sender<Outgoing>> {
        self.links.values().map(|l| l.tx.clone()).collect()
    }

    pub(crate) fn is_linked(&self, id: MemberId) -> bool {
        self.links.contains_key(&id)
    }

    /// Ids of the linked members, sorted.
    /// How many members have a link.
    pub(crate) fn linked_count(&self) -> usize {
        self.links.len()
    }

    pub(crate) fn linked_ids(&self) -> Vec<MemberId> {
        let mut ids: Vec<_> = self.links.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Refuses new links and dials from now on and unregisters every link, which lets each
    /// writer drain its queue and send FIN. Returns the writers' completion signals.
    pub(crate) fn begin_shutdown(&mut self) -> Vec<CancellationToken> {
        self.shutting_down = true;
        self.links_moved();
        self.links.drain().map(|(_, l)| l.written).collect()
    }

    /// Addresses of the members we hold links to (our `Peers` frame).
    fn peer_addrs(&self) -> Vec<PeerAddr> {
        self.links
            .values()
            .map(|l| PeerAddr {
                addr: l.addr.ip().to_string(),
                port: l.addr.port(),
            })
            .collect()
    }

    /// Whether a hello of `id` may be taken in: known already, or room for one more.
    fn has_room_for(&self, id: MemberId) -> bool {
        self.known.len() < MAX_KNOWN || self.known.contains_key(&id)
    }

    /// Records a member's address (from a hello); clears an earlier crash report. False
    /// (nothing recorded) when the table is full.
    pub(crate) fn learn(
        &mut self,
        id: MemberId,
        name: &str,
        addr: SocketAddr,
        now: Instant,
    ) -> bool {
        if !self.has_room_for(id) {
            return false;
        }
        self.crashed.remove(&id);
        let linked = self.links.contains_key(&id);
        let k = self.known.entry(id).or_insert(Known {
            addr,
            name: name.to_string(),
            left: false,
            unlinked_since: None,
            heard: false,
        });
        k.addr = addr;
        // `left` stays: a hello still in flight after a Leave does not undo it (a restarted
        // member comes back under a new id).
        k.name = name.to_string();
        if !linked && k.unlinked_since.is_none() {
            k.unlinked_since = Some(now);
        }
        true
    }

    /// A discovery hello of member `id` at `addr` (`me`: our id): records it like
    /// [`Table::learn`] and says whether to dial it now. The smaller id dials at once; the
    /// other waits a heartbeat for that dial (halving duplicate connections), then the
    /// maintenance round dials too. With `dial_unknown` (we follow a master or are one, or
    /// the member cannot have heard us: [`super::discovery::cannot_have_heard`]), a member we
    /// never heard of is a newcomer that does not know us yet: we dial it at once whatever
    /// the ids, so its first beats reach us within a round trip (a sitting master keeps its
    /// exact half only while a newcomer it counts shows it the same view). A linked member
    /// is never dialled from a hello.
    pub(crate) fn hello(
        &mut self,
        me: MemberId,
        id: MemberId,
        name: &str,
        addr: SocketAddr,
        now: Instant,
        dial_unknown: bool,
    ) -> HelloDial {
        let newcomer = dial_unknown && self.is_unknown(id);
        if !self.learn(id, name, addr, now) {
            return HelloDial::Full;
        }
        if let Some(k) = self.known.get_mut(&id) {
            k.heard = true;
        }
        if (me < id || newcomer) && !self.is_linked(id) {
            HelloDial::Now
        } else {
            HelloDial::Later
        }
    }

    /// Registers `link` as member `id`'s after its handshake (`me`: our id; `now_ms` and
    /// `fresh_ms` on the clock of `last_read`), by the duplicate-link rule.
    pub(crate) fn register(
        &mut self,
        id: MemberId,
        name: &str,
        link: Link,
        me: MemberId,
        now_ms: u64,
        fresh_ms: u64,
    ) -> Registered {
        if self.shutting_down {
            return Registered::Refused("shutting down");
        }
        if self.links.len() >= MAX_LINKS && !self.links.contains_key(&id) {
            return Registered::Refused("link table full");
        }
        if let Some(old) = self.links.get(&id) {
            let fresh = now_ms.saturating_sub(old.last_read.load(Ordering::Relaxed)) < fresh_ms;
            let old = Existing {
                dialer: old.dialer,
                addr: old.addr,
                fresh,
            };
            if !takes_over(old, link.dialer, link.addr, me.min(id)) {
                return Registered::Refused("duplicate link: keeping the existing one");
            }
        }
        let addr = link.addr;
        self.links_moved();
        let replaced = self.links.insert(id, link);
        self.crashed.remove(&id);
        let left = self.known.get(&id).is_some_and(|k| k.left);
        let heard = self.known.get(&id).is_some_and(|k| k.heard);
        self.known.insert(
            id,
            Known {
                addr,
                name: name.to_string(),
                left,
                unlinked_since: None,
                heard,
            },
        );
        // Whom to tell about the new link: every other linked member, except those that
        // heard it say hello as we did. Two members whose hellos both reached us are on our
        // broadcast domain and hear each other's: telling them cost one frame per link per
        // other link, n³ frames while a large cluster starts (a hundred members started
        // together spent seconds on it before their hellos were all in).
        let others = self
            .links
            .iter()
            .filter(|(other, _)| {
                **other != id && !(heard && self.known.get(*other).is_some_and(|k| k.heard))
            })
            .map(|(_, l)| l.tx.clone())
            .collect();
        Registered::Yes { replaced, others }
    }

    /// Removes link `link_id` of `id` if it is still the registered one. Returns whether it was.
    pub(crate) fn unregister(&mut self, id: MemberId, link_id: u64, now: Instant) -> bool {
        if self.links.get(&id).map(|l| l.link_id) != Some(link_id) {
            return false;
        }
        self.links_moved();
        self.links.remove(&id);
        if let Some(k) = self.known.get_mut(&id) {
            k.unlinked_since = Some(now);
        }
        true
    }

    /// Nothing listens where member `id` lived. Some if this is news to report: it has no
    /// link (else it is evidently alive elsewhere) and was not reported before; then its
    /// name if we knew it, and whether it said it leaves (its port closing ends a dispatch).
    pub(crate) fn report_crash(&mut self, id: MemberId) -> Option<Crash> {
        if self.links.contains_key(&id) || self.crashed.contains(&id) || self.shutting_down {
            return None;
        }
        if self.crashed.len() >= MAX_CRASHED {
            self.crashed.clear();
        }
        self.crashed.insert(id);
        let k = self.known.remove(&id);
        Some(Crash {
            left: k.as_ref().is_some_and(|k| k.left),
            name: k.map(|k| k.name),
        })
    }

    /// Member `id` said it leaves (a dispatch).
    pub(crate) fn mark_left(&mut self, id: MemberId) {
        if let Some(k) = self.known.get_mut(&id) {
            k.left = true;
        }
    }

    /// Whether we never heard of member `id` (no hello, no link).
    fn is_unknown(&self, id: MemberId) -> bool {
        !self.known.contains_key(&id) && !self.links.contains_key(&id)
    }

    /// Whether a link or a known member has address `addr`.
    pub(crate) fn knows_addr(&self, addr: SocketAddr) -> bool {
        self.links.values().any(|l| l.addr == addr) || self.known.values().any(|k| k.addr == addr)
    }

    /// Claims the one dial slot of `addr`. False: one is in flight, too many are, or we are
    /// shutting down.
    pub(crate) fn start_dial(&mut self, addr: SocketAddr) -> bool {
        !self.shutting_down && self.dialing.len() < MAX_DIALING && self.dialing.insert(addr)
    }

    /// The dial to `addr` is over (failed, or its handshake finished).
    pub(crate) fn dial_done(&mut self, addr: SocketAddr) {
        self.dialing.remove(&addr);
    }

    /// A dial to seed `addr` answered as `id`.
    pub(crate) fn note_seed(&mut self, addr: SocketAddr, id: MemberId) {
        self.seed_ids.insert(addr, id);
    }

    /// What the reader of link `link_id` to member `id` should do at `now_ms` (on the clock
    /// of `last_read`) about a link silent for `stale_ms`: see [`Staleness`].
    pub(crate) fn staleness(
        &self,
        id: MemberId,
        link_id: u64,
        now_ms: u64,
        stale_ms: u64,
    ) -> Staleness {
        match self.links.get(&id) {
            Some(l) if l.link_id == link_id => {
                if now_ms.saturating_sub(l.last_read.load(Ordering::Relaxed)) >= stale_ms {
                    Staleness::Stale(l.addr)
                } else {
                    Staleness::Fresh
                }
            }
            _ => Staleness::Gone,
        }
    }

    /// One maintenance round at `now`: members unlinked for `grace` are to be dialled
    /// (returned); members unlinked for [`FORGET_UNLINKED`] are forgotten. (Stale links are
    /// their readers' to notice: [`Table::staleness`].)
    pub(crate) fn due(
        &mut self,
        now: Instant,
        grace: Duration,
    ) -> Vec<(SocketAddr, Option<MemberId>)> {
        let mut to_dial = Vec::new();
        let told: Vec<SocketAddr> = self
            .told_of
            .iter()
            .filter(|(_, t)| now.saturating_duration_since(**t) >= grace * PATIENCE)
            .map(|(a, _)| *a)
            .collect();
        for addr in told {
            self.told_of.remove(&addr);
            if !self.knows_addr(addr) {
                to_dial.push((addr, None));
            }
        }
        let links = &self.links;
        let mut forget = Vec::new();
        for (id, k) in &self.known {
            if links.contains_key(id) {
                continue;
            }
            match k.unlinked_since.map(|t| now.saturating_duration_since(t)) {
                Some(d) if d >= FORGET_UNLINKED => forget.push(*id),
                Some(d) if d >= self.grace_for(*id, grace) => to_dial.push((k.addr, Some(*id))),
                _ => {}
            }
        }
        for id in forget {
            tracing::debug!(peer = id, "forgetting a member unlinked for long");
            self.known.remove(&id);
        }
        to_dial
    }

    /// Plans the next maintenance round ([`Table::next_round`]) and returns it.
    pub(crate) fn plan_round(
        &mut self,
        last: Instant,
        grace: Duration,
        every: Duration,
    ) -> Option<Instant> {
        self.round_at = self.next_round(last, grace, every);
        self.round_at
    }

    /// A member begins to wait for a link, due to be dialled at `by`: true if the planned
    /// round comes too late for it (then it is moved to `by`, and the maintenance task must
    /// plan again). Constant time: a flood of hellos from ever new members (table churning
    /// as their dials are refused) must not cost a scan of the table each.
    pub(crate) fn claim_round(&mut self, by: Instant) -> bool {
        if self.round_at.is_some_and(|r| r <= by) {
            return false;
        }
        self.round_at = Some(by);
        true
    }

    /// When the next maintenance round is due, the last one having run at `last`: as soon as
    /// an unlinked member has waited `grace`, and never sooner than `every` after the last
    /// round (an unlinked member is dialled once a round until it links or is forgotten).
    /// None: no member waits for a link, so no round will have anything to do until one
    /// does (a link ends, a hello or a remembered member arrives).
    pub(crate) fn next_round(
        &self,
        last: Instant,
        grace: Duration,
        every: Duration,
    ) -> Option<Instant> {
        let told = self.told_of.values().map(|t| *t + grace * PATIENCE);
        self.known
            .iter()
            .filter(|(id, _)| !self.links.contains_key(id))
            .filter_map(|(id, k)| Some(k.unlinked_since? + self.grace_for(*id, grace)))
            .chain(told)
            .map(|due| due.max(last + every))
            .min()
    }

    /// A peer's list names `addr`: unless a hello or a link made it known already, the
    /// maintenance round dials it [`PATIENCE`] graces from `now` if it is still unknown then.
    /// Returns whether it waits now. Dialled at once, as before, the addresses of a list
    /// raced the hellos of a hundred members starting together: a member that had not read
    /// their hellos yet dialled them whatever the order of ids, and both ends dialled.
    pub(crate) fn hear_of(&mut self, addr: SocketAddr, now: Instant) -> bool {
        if self.knows_addr(addr) || self.told_of.contains_key(&addr) {
            return false;
        }
        if self.told_of.len() >= MAX_KNOWN {
            return false;
        }
        self.told_of.insert(addr, now);
        true
    }

    /// How long member `id` waits for a link before the maintenance round dials it: `grace`
    /// if we are the one to dial (the smaller id, as [`Table::hello`] has it), else
    /// [`PATIENCE`] times that, the time its own dial takes on a loaded host. With one grace
    /// for both ends, a hundred members starting together on two cores dialled every pair
    /// from both ends (the smaller end's dial not done a heartbeat later): 1.6 to 1.9 link
    /// set-ups per member, the duplicate closed, the CPU of the start spent on it.
    fn grace_for(&self, id: MemberId, grace: Duration) -> Duration {
        match &self.me {
            Some(me) if me.id > id => grace * PATIENCE,
            _ => grace,
        }
    }

    /// The seeds without a link (by the member that answered there, or by address).
    pub(crate) fn unlinked_seeds(&self, seeds: &[SocketAddr]) -> Vec<SocketAddr> {
        seeds
            .iter()
            .filter(|s| {
                let by_id = self
                    .seed_ids
                    .get(s)
                    .is_some_and(|id| self.links.contains_key(id));
                !by_id && !self.links.values().any(|l| l.addr == **s)
            })
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// A link to `addr` dialled by `dialer`, last read at `last_read` ms; its queue's receiver.
    fn link(id: u64, addr: SocketAddr, dialer: MemberId, last_read: u64) -> Link {
        let (tx, _rx) = mpsc::channel(1);
        Link::new(
            id,
            tx,
            addr,
            dialer,
            Arc::new(AtomicU64::new(last_read)),
            CancellationToken::new(),
            CancellationToken::new(),
        )
    }

    fn yes(r: Registered) -> (Option<Link>, usize) {
        match r {
            Registered::Yes { replaced, others } => (replaced, others.len()),
            Registered::Refused(why) => panic!("refused: {why}"),
        }
    }

    #[test]
    fn the_duplicate_link_rule() {
        let live = |dialer, addr| Existing {
            dialer,
            addr,
            fresh: true,
        };
        // A reconnect by the same opener from the same address replaces the link.
        assert!(takes_over(live(1, a(10)), 1, a(10), 1));
        assert!(takes_over(live(2, a(10)), 2, a(10), 1));
        // Both dialled at once: the link dialled by the smaller id stays, at both ends.
        assert!(takes_over(live(2, a(10)), 1, a(10), 1));
        assert!(!takes_over(live(1, a(10)), 2, a(10), 1));
        // Another address claiming a live member's id: never.
        assert!(!takes_over(live(1, a(10)), 1, a(11), 1));
        // A stale link is replaced, whoever asks.
        let stale = Existing {
            dialer: 1,
            addr: a(10),
            fresh: false,
        };
        assert!(takes_over(stale, 2, a(11), 1));
    }

    #[test]
    fn a_live_link_is_not_taken_over_from_another_address_a_stale_one_is() {
        let mut t = Table::default();
        let (replaced, others) = yes(t.register(7, "m", link(1, a(10), 7, 1000), 1, 1000, 300));
        assert!(replaced.is_none());
        assert_eq!(others, 0);
        // Another address claims member 7 while its link is fresh: refused, link 1 stays.
        assert!(matches!(
            t.register(7, "m", link(2, a(66), 7, 1100), 1, 1100, 300),
            Registered::Refused(_)
        ));
        assert!(
            !t.unregister(7, 2, Instant::now()),
            "link 2 never registered"
        );
        // Once the link is stale, a new one (any address) replaces it and is handed back.
        let (replaced, _) = yes(t.register(7, "m", link(3, a(66), 7, 2000), 1, 2000, 300));
        assert!(replaced.is_some_and(|l| l.link_id == 1));
        assert!(
            !t.unregister(7, 1, Instant::now()),
            "the replaced link is gone"
        );
        assert!(t.unregister(7, 3, Instant::now()));
        assert!(t.linked_ids().is_empty());
    }

    #[test]
    fn registering_tells_the_other_links_and_clears_a_crash_report() {
        let mut t = Table::default();
        yes(t.register(7, "m", link(1, a(10), 7, 0), 1, 0, 300));
        assert!(
            t.report_crash(7).is_none(),
            "a linked member has not crashed"
        );
        assert!(t.learn(8, "m", a(11), Instant::now()));
        assert!(t.report_crash(8).is_some());
        assert!(t.report_crash(8).is_none(), "each crash is reported once");
        assert!(!t.knows_addr(a(11)), "a crashed member is forgotten");
        let (_, others) = yes(t.register(8, "m", link(2, a(11), 8, 0), 1, 0, 300));
        assert_eq!(others, 1, "the link to 7 hears of 8");
        // Members whose hellos both reached us hear each other's: no need to tell them.
        let now = Instant::now();
        assert_eq!(t.hello(1, 20, "h", a(20), now, false), HelloDial::Now);
        assert_eq!(t.hello(1, 21, "i", a(21), now, false), HelloDial::Now);
        let (_, others) = yes(t.register(20, "h", link(3, a(20), 1, 0), 1, 0, 300));
        assert_eq!(
            others, 2,
            "7 and 8 (no hello of theirs reached us) hear of 20"
        );
        let (_, others) = yes(t.register(21, "i", link(4, a(21), 1, 0), 1, 0, 300));
        assert_eq!(
            others, 2,
            "7 and 8 hear of 21, 20 (heard by hello too) does not"
        );
        assert_eq!(t.linked_ids(), vec![7, 8, 20, 21]);
        assert_eq!(t.peer_addrs().len(), 4);
        assert!(t.unregister(8, 2, Instant::now()));
        assert!(
            t.report_crash(8).is_some(),
            "crashed again after the new link ended"
        );
    }

    #[test]
    fn known_members_and_dials_are_bounded() {
        let mut t = Table::default();
        let now = Instant::now();
        for id in 0..MAX_KNOWN as u64 {
            assert!(t.learn(id, "m", a(1000), now));
        }
        assert!(!t.learn(u64::MAX, "m", a(1), now), "table full");
        assert!(t.learn(5, "m", a(2), now), "a known member is updated");
        assert!(!t.has_room_for(u64::MAX));
        for port in 0..MAX_DIALING as u16 {
            assert!(t.start_dial(a(port)));
        }
        assert!(!t.start_dial(a(9999)), "too many dials in flight");
        t.dial_done(a(0));
        assert!(!t.start_dial(a(1)), "one dial per address");
        assert!(t.start_dial(a(9999)));
        t.begin_shutdown();
        t.dial_done(a(2));
        assert!(!t.start_dial(a(2)), "no dials while shutting down");
        assert!(matches!(
            t.register(1, "m", link(1, a(3), 1, 0), 2, 0, 300),
            Registered::Refused(_)
        ));
    }

    #[test]
    fn links_are_bounded() {
        let mut t = Table::default();
        for id in 0..MAX_LINKS as u64 {
            yes(t.register(id + 10, "m", link(id, a(10), id + 10, 0), 1, 0, 300));
        }
        assert!(matches!(
            t.register(u64::MAX, "m", link(0, a(11), u64::MAX, 0), 1, 0, 300),
            Registered::Refused(_)
        ));
    }

    #[test]
    fn maintenance_redials_unlinked_members_then_forgets_them() {
        let mut t = Table::default();
        let t0 = Instant::now();
        yes(t.register(7, "m", link(1, a(10), 7, 1000), 1, 1000, 300));
        assert!(t.learn(8, "m", a(11), t0));
        let grace = Duration::from_millis(150);
        assert!(t.due(t0, grace).is_empty(), "8 is still in its grace");
        assert_eq!(
            t.due(t0 + grace, grace),
            vec![(a(11), Some(8))],
            "7 is linked"
        );
        assert!(t.due(t0 + FORGET_UNLINKED, grace).is_empty());
        assert!(
            !t.knows_addr(a(11)),
            "8 forgotten after 10 minutes unlinked"
        );
        assert!(t.knows_addr(a(10)));
    }

    #[test]
    fn a_stale_link_is_for_its_reader_to_redial_while_it_is_the_registered_one() {
        let mut t = Table::default();
        yes(t.register(7, "m", link(1, a(10), 7, 1000), 1, 1000, 300));
        assert_eq!(t.staleness(7, 1, 1449, 450), Staleness::Fresh);
        assert_eq!(t.staleness(7, 1, 1450, 450), Staleness::Stale(a(10)));
        // Replaced by link 2: link 1's reader has nothing to watch any more.
        yes(t.register(7, "m", link(2, a(10), 7, 1500), 1, 1500, 300));
        assert_eq!(t.staleness(7, 1, 2000, 450), Staleness::Gone);
        assert!(t.unregister(7, 2, Instant::now()));
        assert_eq!(t.staleness(7, 2, 2000, 450), Staleness::Gone);
    }

    #[test]
    fn the_next_round_is_due_when_a_member_waits_for_a_link_and_only_then() {
        let mut t = Table::default();
        let t0 = Instant::now();
        let (grace, every) = (Duration::from_millis(150), Duration::from_millis(150));
        assert_eq!(t.next_round(t0, grace, every), None, "nobody known");
        yes(t.register(7, "m", link(1, a(10), 7, 0), 1, 0, 300));
        assert_eq!(t.next_round(t0, grace, every), None, "everybody linked");
        // The link ends: a round once its grace is over, then one every `every`.
        let t1 = t0 + Duration::from_millis(1000);
        assert!(t.unregister(7, 1, t1));
        assert_eq!(t.next_round(t0, grace, every), Some(t1 + grace));
        let t2 = t1 + grace;
        assert_eq!(t.next_round(t2, grace, every), Some(t2 + every));
        // A hello of a member never linked: the earliest wait decides.
        assert!(t.learn(8, "m", a(11), t0));
        assert_eq!(t.next_round(t0, grace, every), Some(t0 + every));
        // Both linked again: nothing due.
        yes(t.register(7, "m", link(2, a(10), 7, 0), 1, 0, 300));
        yes(t.register(8, "m", link(3, a(11), 8, 0), 1, 0, 300));
        assert_eq!(t.next_round(t2, grace, every), None);
    }

    #[test]
    fn a_new_waiter_replans_only_a_round_planned_too_late_for_it() {
        let mut t = Table::default();
        let t0 = Instant::now();
        let hb = Duration::from_millis(150);
        assert_eq!(t.plan_round(t0, hb, hb), None);
        assert!(t.claim_round(t0 + hb), "no round planned");
        assert!(
            !t.claim_round(t0 + hb),
            "the claimed round serves the next one"
        );
        assert!(!t.claim_round(t0 + 2 * hb));
        assert!(t.claim_round(t0 + hb / 2), "an earlier one moves it");
        assert!(t.learn(8, "m", a(11), t0));
        assert_eq!(t.plan_round(t0, hb, hb), Some(t0 + hb));
        assert!(!t.claim_round(t0 + hb));
    }

    #[test]
    fn seeds_are_dialled_until_linked_by_address_or_by_the_member_that_answered() {
        let mut t = Table::default();
        let seeds = [a(10), a(20)];
        assert_eq!(t.unlinked_seeds(&seeds), seeds.to_vec());
        // The member at seed a(20) advertises another address (NAT, another interface).
        t.note_seed(a(20), 9);
        yes(t.register(9, "m", link(1, a(99), 9, 0), 1, 0, 300));
        yes(t.register(7, "m", link(2, a(10), 7, 0), 1, 0, 300));
        assert!(t.unlinked_seeds(&seeds).is_empty());
    }

    #[test]
    fn a_hello_is_dialled_by_the_smaller_id_and_by_a_settled_node_that_hears_a_newcomer() {
        let now = Instant::now();
        let mut t = Table::default();
        // The smaller id dials at once, settled or not.
        assert_eq!(t.hello(1, 7, "m", a(10), now, false), HelloDial::Now);
        assert_eq!(t.hello(1, 7, "m", a(10), now, true), HelloDial::Now);
        // The larger id waits for that dial during its first heartbeats...
        assert_eq!(t.hello(9, 5, "m", a(11), now, false), HelloDial::Later);
        // ... and, settled, for a member it heard of already (the maintenance round dials).
        assert_eq!(t.hello(9, 5, "m", a(11), now, true), HelloDial::Later);
        // A settled node dials a newcomer at once whatever the ids: once.
        assert_eq!(t.hello(9, 4, "m", a(12), now, true), HelloDial::Now);
        assert_eq!(t.hello(9, 4, "m", a(12), now, true), HelloDial::Later);
        // A member reported crashed is forgotten: its next hello is a newcomer's again.
        assert!(t.report_crash(4).is_some());
        assert_eq!(t.hello(9, 4, "m", a(12), now, true), HelloDial::Now);
        // A linked member is never dialled from a hello, newcomer rule or smaller id.
        yes(t.register(3, "m", link(1, a(13), 3, 0), 1, 0, 300));
        assert_eq!(t.hello(1, 3, "m", a(13), now, true), HelloDial::Later);
        yes(t.register(20, "m", link(2, a(14), 20, 0), 9, 0, 300));
        assert_eq!(t.hello(9, 20, "m", a(14), now, true), HelloDial::Later);
        assert!(t.knows_addr(a(14)));
    }

    fn me(id: MemberId) -> MemberInfo {
        MemberInfo {
            id,
            name: "me".into(),
            addr: "127.0.0.1".into(),
            port: 9,
            rank: common::types::Rank {
                priority: 0,
                key: 0,
                tiebreak: "me".into(),
                id,
            },
            started_ms: 0,
            witness: false,
            strategy: common::types::Strategy::Age,
        }
    }

    /// A table of member `id`, the time it starts at and a grace of 150 ms.
    fn table_of(id: MemberId) -> (Table, Instant, Duration) {
        let mut t = Table::default();
        t.set_me(me(id));
        (t, Instant::now(), Duration::from_millis(150))
    }

    #[test]
    fn the_larger_id_waits_longer_for_a_link_than_the_smaller_one_that_dials() {
        let (mut t, t0, grace) = table_of(10);
        assert!(t.learn(20, "bigger", a(20), t0));
        assert!(t.learn(5, "smaller", a(5), t0));
        // We are the smaller end of the pair (10, 20): ours to dial after one grace.
        assert_eq!(t.next_round(t0, grace, grace), Some(t0 + grace));
        assert_eq!(t.due(t0 + grace, grace), vec![(a(20), Some(20))]);
        // 5 dials us: we dial it ourselves only after PATIENCE graces without its link.
        assert_eq!(
            t.due(t0 + grace * (PATIENCE - 1), grace),
            vec![(a(20), Some(20))]
        );
        let mut due = t.due(t0 + grace * PATIENCE, grace);
        due.sort();
        assert_eq!(due, vec![(a(5), Some(5)), (a(20), Some(20))]);
        // Linked: nothing is due.
        yes(t.register(5, "smaller", link(1, a(5), 5, 0), 10, 0, 300));
        yes(t.register(20, "bigger", link(2, a(20), 10, 0), 10, 0, 300));
        assert!(t.due(t0 + grace * PATIENCE, grace).is_empty());
        assert_eq!(t.next_round(t0, grace, grace), None);
    }

    #[test]
    fn an_address_from_a_peers_list_is_dialled_later_and_only_if_still_unknown() {
        let (mut t, t0, grace) = table_of(10);
        assert!(t.hear_of(a(30), t0));
        assert!(!t.hear_of(a(30), t0), "once");
        assert!(t.hear_of(a(31), t0));
        assert!(t.learn(20, "m", a(20), t0));
        assert!(
            !t.hear_of(a(20), t0),
            "known by its hello: the hello's rule decides"
        );
        assert_eq!(
            t.next_round(t0, grace, grace),
            Some(t0 + grace),
            "20's grace first"
        );
        assert_eq!(t.due(t0 + grace, grace), vec![(a(20), Some(20))]);
        // 31 says hello meanwhile: 30 is dialled without an id, 31 by its hello's rule.
        assert!(t.learn(31, "m", a(31), t0 + grace));
        let mut due = t.due(t0 + grace * PATIENCE, grace);
        due.sort();
        assert_eq!(
            due,
            vec![(a(20), Some(20)), (a(30), None), (a(31), Some(31))]
        );
        // Each address of a list is dialled once; the rest is the hellos' business.
        let mut due = t.due(t0 + grace * PATIENCE * 2, grace);
        due.sort();
        assert_eq!(due, vec![(a(20), Some(20)), (a(31), Some(31))]);
    }

    #[test]
    fn hellos_beyond_the_known_bound_are_ignored_and_never_dialled() {
        let now = Instant::now();
        let mut t = Table::default();
        for id in 0..MAX_KNOWN as u64 {
            assert!(t.learn(id + 10, "m", a(1000), now));
        }
        assert_eq!(t.hello(1, u64::MAX, "m", a(1), now, true), HelloDial::Full);
        assert!(!t.knows_addr(a(1)), "not remembered either");
        assert_eq!(
            t.hello(1, 10, "m", a(2), now, true),
            HelloDial::Now,
            "a known member is still heard"
        );
    }

    #[test]
    fn a_member_that_left_is_reported_as_leaving_through_hellos_and_new_links() {
        let mut t = Table::default();
        let now = Instant::now();
        assert!(t.is_unknown(7));
        assert!(t.learn(7, "bob", a(10), now));
        assert!(!t.is_unknown(7));
        t.mark_left(7);
        // A hello still in flight after the Leave, and a replacing link, keep the mark.
        assert!(t.learn(7, "bob", a(10), now));
        yes(t.register(7, "bob", link(1, a(10), 7, 0), 1, 0, 300));
        assert!(t.unregister(7, 1, now));
        assert_eq!(
            t.report_crash(7),
            Some(Crash {
                name: Some("bob".into()),
                left: true
            })
        );
        // A member that did not leave is reported by name as crashed.
        assert!(t.learn(8, "carol", a(11), now));
        assert_eq!(
            t.report_crash(8),
            Some(Crash {
                name: Some("carol".into()),
                left: false
            })
        );
        assert_eq!(
            t.report_crash(9),
            Some(Crash {
                name: None,
                left: false
            })
        );
    }
}
