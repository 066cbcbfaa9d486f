//! A deterministic simulator of many election cores on a virtual clock.
//!
//! Nodes are [`Election`]s; the network is a queue of deliveries with per-link latency,
//! loss and FIFO order (like TCP). Faults: symmetric partitions, one-way link loss, silent
//! crash (host gone), certain crash (process killed on a live host: peers that can still talk
//! to it get [`Input::Crashed`]), freeze and thaw (SIGSTOP: inputs wait in the socket buffers),
//! restart under the same name (with the membership memory the daemon persists, or without it
//! for a node that has no state directory), dispatch, forget and rename. A node may run another
//! rank strategy than the cluster (it must be refused), and two hosts may share a name (a
//! cloned VM: the second one must be refused). Time jumps straight to the next delivery or deadline, so an hour of protocol runs
//! in milliseconds.
//!
//! After every event, [`Sim::check`] verifies the rules of docs/ALGORITHM.md ("The contract")
//! as named invariants; the first violation is kept with the trail of recent events for the failure message.

use super::{Config, Election, Input, Memory, quorum};
use crate::time::Millis;
use crate::types::{Identity, MemberId, MemberInfo, MemberState, Role, Strategy};
use crate::wire::Grant;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

/// A small deterministic RNG (splitmix64): the simulator's only source of randomness.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 1.0 < p
    }
}

/// Network behaviour.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// One-way latency bounds in ms.
    pub latency: (u64, u64),
    /// Probability that a message is lost (on top of partitions).
    pub drop_rate: f64,
    /// Interval of the repeated discovery hello.
    pub announce_ms: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            latency: (1, 3),
            drop_rate: 0.0,
            announce_ms: 2000,
        }
    }
}

/// Per-node options.
#[derive(Clone, Debug, Default)]
pub struct NodeOpts {
    /// `--witness`.
    pub witness: bool,
    /// Port (rank key with the port strategy).
    pub port: Option<u16>,
    /// A rank strategy other than the cluster's (`--use-port-instead-of-life-time` on one
    /// node of an age-ranked cluster): such a node must be refused.
    pub strategy: Option<Strategy>,
    /// `--priority`: higher ranks first.
    pub priority: i32,
}

/// One simulated host with its (possibly absent) quorumd process.
#[derive(Debug)]
pub struct Node {
    /// The node's name (stable across restarts).
    pub name: String,
    /// The running core, `None` while the process is down.
    pub core: Option<Election>,
    /// Frozen (SIGSTOP): receives nothing and acts on nothing until thawed.
    pub frozen: bool,
    held: Vec<Input>,
    cfg: Config,
    opts: NodeOpts,
    memory: Memory,
    next_announce: Millis,
    /// Hosts this process heard a hello from or remembers (the transport's known members):
    /// like the daemon's link maintenance, it dials them every heartbeat while it does not
    /// have the process there alive, so a healed partition reconnects without waiting for a
    /// broadcast. A certain crash report drops the host, as the transport does.
    dials: SlotSet,
    next_dial: Millis,
    /// Every role change this process reported: (time, previous, role, master, epoch).
    pub role_log: Vec<(Millis, Role, Role, Option<String>, u64)>,
    /// Master changes reported while the role stayed slave.
    pub master_log: Vec<(Millis, Option<String>)>,
    /// The master named by this process's latest hook (role or master change); None before
    /// its first. What the daemon's last hook run says must match its state: a node that
    /// follows a master has had a hook naming one ([`Sim::agreed_master`]).
    pub hook_master: Option<Option<String>>,
    /// The epoch its last hook was told.
    pub hook_epoch: u64,
    /// Promises of earlier incarnations, still binding after a crash (ghost votes): a
    /// process killed twice in a row leaves its first promise in force.
    ghosts: Vec<((Grant, Millis), MemberId)>,
    /// The core's next deadline, cached after every call (NEVER when down or frozen).
    deadline: Millis,
    /// Times the core was woken by its deadline (a tick), not by a message, and sent no
    /// beat: what an idle daemon pays for besides its frames.
    pub idle_wakes: u64,
    /// Highest epoch this host's processes reported since it last started without memory:
    /// a restart with memory must not go below it.
    host_epoch: u64,
    /// The role `quorumctl role` would have answered at the instant of the last thaw, before
    /// the core handled anything (a request that queued while the process was frozen). Like
    /// the daemon, a master answers `master` only on a lease valid at that instant, else
    /// `inquorate`.
    pub thaw_answer: Option<Role>,
    /// When the process was last frozen.
    frozen_at: Millis,
    /// When the process last went down (crash, kill, dispatch).
    pub down_since: Millis,
}

#[derive(Clone, Debug)]
struct Delivery {
    at: Millis,
    order: u64,
    to_slot: usize,
    to_id: MemberId,
    from_slot: usize,
    input: Input,
}

/// A violated rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The invariant's name.
    pub rule: &'static str,
    /// What was seen.
    pub detail: String,
    /// Virtual time.
    pub at: Millis,
}

/// A test-only switch that breaks a rule on purpose, to prove the checker catches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Sabotage {
    /// No sabotage.
    #[default]
    None,
    /// Voters release their promise as soon as the candidate goes quiet (no lease wait):
    /// a cut-off master and its successor overlap.
    EagerRelease,
}

/// The simulated cluster.
pub struct Sim {
    /// Virtual time.
    pub now: Millis,
    /// The hosts, by slot.
    pub nodes: Vec<Node>,
    rng: Rng,
    /// Latency, loss and the hello period.
    pub net: NetConfig,
    queue: BinaryHeap<Reverse<Delivery>>,
    order: u64,
    /// Last delivery time per directed link, for FIFO order.
    link_clock: BTreeMap<(usize, usize), Millis>,
    /// Blocked directed links (from, to).
    blocked: BTreeSet<(usize, usize)>,
    next_id: u64,
    /// Incarnation id -> slot, for the running processes.
    slots: BTreeMap<MemberId, usize>,
    strategy: Strategy,
    /// Highest epoch of any mastership so far, and who held it.
    last_mastership: Option<(u64, String)>,
    masters_now: BTreeMap<usize, u64>,
    /// Every mastership so far, by epoch: (holder's name, incarnation, start). An epoch
    /// number is a fencing token: two masterships must never share one.
    masterships: BTreeMap<u64, (String, MemberId, Millis)>,
    /// Nodes whose role was master at their last event (the only possible masters now).
    maybe_masters: BTreeSet<usize>,
    /// The first violation found, if any.
    pub violation: Option<Violation>,
    trail: VecDeque<String>,
    /// Sabotage switch for checker tests.
    pub sabotage: Sabotage,
    /// Also check rule 1 for answers (`stale_answer`): a process thawed after another node
    /// became master while it was frozen must not answer `master` to a request that queued
    /// meanwhile. Off by default (the older tests predate the rule); the change schedules,
    /// the issue-9 tests and the exhaustive check turn it on.
    pub check_answers: bool,
    /// Beats handed to the network so far (lost ones included): the traffic tests count them.
    pub beats_sent: u64,
    /// Members reported `lost` so far, by any node (a settled cluster going quiet loses none).
    pub members_lost: u64,
    /// Role changes to `inquorate` so far, by any node.
    pub inquorate_turns: u64,
    /// When `Some`, every beat handed to the network: (time, from slot, to slot).
    pub beat_log: Option<Vec<(Millis, usize, usize)>>,
    /// When each node last answered a hello from each sender id: like the daemon's
    /// transport, which dials an unknown member once (with a back-off), not once per hello.
    answered: BTreeMap<(usize, MemberId), Millis>,
}

/// A set of slots, as bits: the hosts a node dials. A `BTreeSet` there was a third of the
/// 250-node run (every hello passes addresses on to every linked host); same order of
/// iteration (ascending), so the schedules are the same.
#[derive(Clone, Debug, Default)]
struct SlotSet(Vec<u64>);

impl SlotSet {
    fn insert(&mut self, slot: usize) {
        let (w, b) = (slot / 64, slot % 64);
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << b;
    }

    fn contains(&self, slot: usize) -> bool {
        self.0
            .get(slot / 64)
            .is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }

    fn remove(&mut self, slot: usize) {
        if let Some(w) = self.0.get_mut(slot / 64) {
            *w &= !(1 << (slot % 64));
        }
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &w)| {
            (0..64)
                .filter(move |b| w & (1 << b) != 0)
                .map(move |b| i * 64 + b)
        })
    }
}

impl FromIterator<usize> for SlotSet {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        let mut s = SlotSet::default();
        for slot in iter {
            s.insert(slot);
        }
        s
    }
}

/// How long a node waits before it answers another hello from the same sender (a link is up
/// or being dialled meanwhile). Without it two nodes that neither beat nor count each other
/// (quiet pairs) would bounce hellos at network speed forever.
const HELLO_ANSWER_BACKOFF_MS: u64 = 1_000;

// Deliveries are ordered by time, then by the order they were queued (FIFO per link).
impl PartialEq for Delivery {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Delivery {}
impl PartialOrd for Delivery {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delivery {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

const TRAIL: usize = 60;

/// Rewrites every `Millis(t)` in `text` as an offset from `now` (`NEVER` stays).
fn relative_times(text: &str, now: u64) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("Millis(") {
        out.push_str(&rest[..i + 7]);
        rest = &rest[i + 7..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        match rest[..end].parse::<u64>() {
            Ok(u64::MAX) | Err(_) => out.push_str(&rest[..end]),
            Ok(t) => out.push_str(&format!("{}", i128::from(t) - i128::from(now))),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The address of the host on `slot` (10.0.0.1 is slot 0).
fn host_addr(slot: usize) -> String {
    format!("10.0.0.{}", slot + 1)
}

/// The slot of the host at `addr`, the inverse of [`host_addr`].
fn host_slot(addr: &str) -> Option<usize> {
    addr.strip_prefix("10.0.0.")?
        .parse::<usize>()
        .ok()?
        .checked_sub(1)
}

impl Sim {
    /// An empty cluster with the given seed, network behaviour and rank strategy.
    pub fn new(seed: u64, net: NetConfig, strategy: Strategy) -> Self {
        Sim {
            now: Millis(0),
            nodes: Vec::new(),
            rng: Rng::new(seed),
            net,
            queue: BinaryHeap::new(),
            order: 0,
            link_clock: BTreeMap::new(),
            blocked: BTreeSet::new(),
            next_id: 1000 + seed.wrapping_mul(7919) % 1000,
            slots: BTreeMap::new(),
            strategy,
            last_mastership: None,
            masters_now: BTreeMap::new(),
            maybe_masters: BTreeSet::new(),
            masterships: BTreeMap::new(),
            violation: None,
            trail: VecDeque::new(),
            sabotage: Sabotage::None,
            check_answers: false,
            beats_sent: 0,
            members_lost: 0,
            inquorate_turns: 0,
            beat_log: None,
            answered: BTreeMap::new(),
        }
    }

    fn note(&mut self, line: String) {
        if self.trail.len() >= TRAIL {
            self.trail.pop_front();
        }
        self.trail.push_back(format!("{:>7} {line}", self.now.0));
    }

    /// The recent events, for failure messages.
    pub fn trail(&self) -> String {
        self.trail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Adds a host (not started). Returns its slot.
    pub fn add(&mut self, name: &str, cfg: Config, opts: NodeOpts) -> usize {
        self.nodes.push(Node {
            name: name.to_string(),
            core: None,
            frozen: false,
            held: Vec::new(),
            cfg,
            opts,
            memory: Memory::default(),
            next_announce: Millis::NEVER,
            dials: Default::default(),
            next_dial: Millis::NEVER,
            role_log: Vec::new(),
            master_log: Vec::new(),
            hook_master: None,
            hook_epoch: 0,
            ghosts: Vec::new(),
            deadline: Millis::NEVER,
            idle_wakes: 0,
            host_epoch: 0,
            thaw_answer: None,
            frozen_at: Millis(0),
            down_since: Millis(0),
        });
        self.nodes.len() - 1
    }

    /// Slot of the node named `name`.
    pub fn slot(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    /// Starts (or restarts) the process on `slot` with a new incarnation, without the memory
    /// of earlier runs (no state directory, or a wiped one).
    pub fn start_fresh(&mut self, slot: usize) {
        let node = &mut self.nodes[slot];
        node.memory = Memory::default();
        node.host_epoch = 0;
        let name = node.name.clone();
        self.note(format!("{name} loses its memory"));
        self.start(slot);
    }

    /// Starts (or restarts) the process on `slot` with a new incarnation, keeping its memory.
    pub fn start(&mut self, slot: usize) {
        self.next_id += 1;
        let id = self.next_id;
        let node = &mut self.nodes[slot];
        let port = node.opts.port.unwrap_or(9000 + slot as u16);
        let strategy = node.opts.strategy.unwrap_or(self.strategy);
        let info = MemberInfo::start(Identity {
            id,
            name: node.name.clone(),
            addr: host_addr(slot),
            port,
            started_ms: 1_700_000_000_000 + self.now.0,
            strategy,
            priority: node.opts.priority,
            witness: node.opts.witness,
        });
        let mut cfg = node.cfg.clone();
        cfg.witness = node.opts.witness;
        cfg.strategy = strategy;
        node.core = Some(Election::new(
            cfg,
            info.clone(),
            node.memory.clone(),
            self.now,
        ));
        node.hook_master = None;
        node.hook_epoch = 0;
        self.slots.insert(id, slot);
        node.frozen = false;
        node.held.clear();
        node.next_announce = self.now;
        // The daemon's transport starts knowing the addresses the state file remembers.
        node.dials = node
            .memory
            .members
            .iter()
            .filter_map(|(m, _)| host_slot(&m.addr))
            .filter(|&s| s != slot)
            .collect();
        node.next_dial = self.now + node.cfg.heartbeat_ms;
        let name = node.name.clone();
        self.note(format!("start {name} id={id}"));
        self.pump(slot);
    }

    fn id_of(&self, slot: usize) -> Option<MemberId> {
        self.nodes[slot].core.as_ref().map(|c| c.id())
    }

    /// What the host on `slot` remembers for its next start.
    pub fn memory(&self, slot: usize) -> &Memory {
        &self.nodes[slot].memory
    }

    /// The network behaviour.
    pub fn net(&self) -> &NetConfig {
        &self.net
    }

    /// Whether messages flow from `a` to `b`.
    pub fn link_up(&self, a: usize, b: usize) -> bool {
        !self.blocked.contains(&(a, b))
    }

    /// Queues `input` for `to` (its current incarnation), with latency, loss and FIFO order.
    fn send(&mut self, from: usize, to: usize, input: Input, lossless: bool) {
        let Some(to_id) = self.id_of(to) else {
            return;
        };
        if !self.link_up(from, to) {
            return;
        }
        if !lossless && self.net.drop_rate > 0.0 && self.rng.chance(self.net.drop_rate) {
            return;
        }
        let lat = self.rng.range(self.net.latency.0, self.net.latency.1);
        let clock = self.link_clock.entry((from, to)).or_insert(Millis(0));
        let at = (self.now + lat).max(*clock);
        *clock = at;
        self.order += 1;
        self.queue.push(Reverse(Delivery {
            at,
            order: self.order,
            to_slot: to,
            to_id,
            from_slot: from,
            input,
        }));
    }

    fn slot_of_id(&self, id: MemberId) -> Option<usize> {
        self.slots.get(&id).copied()
    }

    /// Drains a node's outputs into the network and the logs (through the same mapping the
    /// daemon uses, [`super::Round::apply`]).
    fn pump(&mut self, slot: usize) {
        // Effects never call into the core: one round drains everything.
        if let Some(round) = self.nodes[slot].core.as_mut().map(|c| c.take_round()) {
            round.apply(&mut NodeEffects { sim: self, slot });
        }
        let n = &mut self.nodes[slot];
        n.deadline = match (&n.core, n.frozen) {
            (Some(c), false) => c.next_deadline(),
            _ => Millis::NEVER,
        };
    }

    /// The transport's link maintenance: every heartbeat, each known host whose process this
    /// one does not have alive is dialled; a connection (both directions up) carries a hello
    /// each way, as every new link does.
    fn redial(&mut self, slot: usize) {
        let n = &mut self.nodes[slot];
        n.next_dial = self.now + n.cfg.heartbeat_ms;
        let targets: Vec<usize> = n.dials.iter().collect();
        for other in targets {
            if self.id_of(other).is_none()
                || self.sees_alive(slot, other)
                || !self.link_up(slot, other)
                || !self.link_up(other, slot)
            {
                continue;
            }
            if self.nodes[other].frozen {
                continue; // the kernel accepts, but no hello comes back: not a link yet
            }
            if let (Some(me), Some(them)) = (self.hello(slot), self.hello(other)) {
                self.send(slot, other, Input::Hello(me), true);
                self.send(other, slot, Input::Hello(them), true);
            }
        }
    }

    /// `to` heard a hello from `from` (a link opened): like the daemon's `Peers` frames, the
    /// hosts `to` is linked with learn `from`'s address, and `from` learns theirs; each dials
    /// what it does not have alive at its next maintenance tick.
    fn link_opened(&mut self, to: usize, from: usize) {
        self.nodes[to].dials.insert(from);
        let back = self.link_up(to, from);
        // A host that has both addresses already learns nothing: skip it before the costly
        // part (asking `to`'s core whom it has alive), the same result at a fraction.
        let linked: Vec<usize> = self.nodes[to]
            .dials
            .iter()
            .filter(|&x| {
                x != from
                    && !(self.nodes[x].dials.contains(from)
                        && (!back || self.nodes[from].dials.contains(x)))
                    && self.link_up(to, x)
                    && self.sees_alive(to, x)
            })
            .collect();
        for x in linked {
            self.nodes[x].dials.insert(from);
            if self.link_up(to, from) {
                self.nodes[from].dials.insert(x);
            }
        }
    }

    /// Whether the process on `slot` has the process running on `other` alive.
    fn sees_alive(&self, slot: usize, other: usize) -> bool {
        self.id_of(other).is_some_and(|id| {
            self.nodes[slot]
                .core
                .as_ref()
                .is_some_and(|c| c.knows_alive(id))
        })
    }

    fn hello(&mut self, slot: usize) -> Option<MemberInfo> {
        self.nodes[slot].core.as_ref().map(|c| c.info().clone())
    }

    fn deliver(&mut self, d: Delivery) {
        if self.id_of(d.to_slot) != Some(d.to_id) {
            return; // the addressee died or restarted meanwhile
        }
        if self.nodes[d.to_slot].frozen {
            self.nodes[d.to_slot].held.push(d.input);
            return;
        }
        // A certain crash report: the transport forgets that member's address (a restart
        // there is found by its own dials and hellos).
        if let Input::Crashed(id) = d.input {
            if let Some(s) = self.slot_of_id(id) {
                self.nodes[d.to_slot].dials.remove(s);
            }
        }
        // A hello from an unknown member opens a link: answer with our own hello.
        if let Input::Hello(ref info) = d.input {
            self.link_opened(d.to_slot, d.from_slot);
            let known = self.nodes[d.to_slot]
                .core
                .as_ref()
                .is_some_and(|c| c.knows_alive(info.id));
            let key = (d.to_slot, info.id);
            let recently = self
                .answered
                .get(&key)
                .is_some_and(|t| self.now < *t + HELLO_ANSWER_BACKOFF_MS);
            if !known && !recently {
                if let Some(me) = self.hello(d.to_slot) {
                    self.answered.insert(key, self.now);
                    self.send(d.to_slot, d.from_slot, Input::Hello(me), true);
                }
            }
        }
        let now = self.now;
        if let Some(c) = self.nodes[d.to_slot].core.as_mut() {
            c.handle(now, d.input);
        }
        self.pump(d.to_slot);
    }

    /// The time of the next event (delivery, deadline or announce).
    fn next_event(&self) -> Millis {
        let mut t = self.queue.peek().map_or(Millis::NEVER, |d| d.0.at);
        for n in &self.nodes {
            if n.core.is_some() && !n.frozen {
                t = t.min(n.deadline).min(n.next_announce).min(n.next_dial);
            }
        }
        t
    }

    /// Runs until virtual time `until`, checking the invariants after every event. Stops early
    /// at the first violation.
    pub fn run_until(&mut self, until: Millis) {
        let mut guard: u64 = 0;
        while self.violation.is_none() {
            let t = self.next_event().max(self.now);
            if t > until {
                self.now = until;
                break;
            }
            self.now = t;
            guard += 1;
            if guard > 50_000_000 {
                self.violation = Some(Violation {
                    rule: "progress",
                    detail: "too many events: a busy loop in the core?".into(),
                    at: self.now,
                });
                break;
            }
            // Deliveries due now.
            while self.queue.peek().is_some_and(|d| d.0.at <= self.now) {
                if let Some(Reverse(d)) = self.queue.pop() {
                    let slot = d.to_slot;
                    self.deliver(d);
                    self.check_node(slot);
                }
            }
            // Deadlines and announces due now.
            for slot in 0..self.nodes.len() {
                let due = {
                    let n = &self.nodes[slot];
                    n.core.is_some() && !n.frozen && n.deadline <= self.now
                };
                if due {
                    let now = self.now;
                    let beats = self.beats_sent;
                    if let Some(c) = self.nodes[slot].core.as_mut() {
                        c.handle(now, Input::Tick);
                    }
                    self.pump(slot);
                    if self.beats_sent == beats {
                        self.nodes[slot].idle_wakes += 1;
                    }
                    self.check_node(slot);
                }
                let dial = {
                    let n = &self.nodes[slot];
                    n.core.is_some() && !n.frozen && n.next_dial <= self.now
                };
                if dial {
                    self.redial(slot);
                }
                let announce = {
                    let n = &self.nodes[slot];
                    n.core.is_some() && !n.frozen && n.next_announce <= self.now
                };
                if announce {
                    self.nodes[slot].next_announce = self.now + self.net.announce_ms;
                    if let Some(me) = self.hello(slot) {
                        for other in 0..self.nodes.len() {
                            // As in the daemon, a periodic hello from a member a node already
                            // has alive never reaches its core (the transport only dials
                            // unknown members): n² core rounds per announce for nothing.
                            let known = self.nodes[other]
                                .core
                                .as_ref()
                                .is_some_and(|c| c.knows_alive(me.id));
                            if other != slot && !known {
                                self.send(slot, other, Input::Hello(me.clone()), true);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Runs for `ms` more milliseconds.
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now + ms;
        self.run_until(until);
    }

    // ----- faults -------------------------------------------------------------------------

    /// Blocks every link between the groups (both ways). Nodes in no group keep their links.
    pub fn partition(&mut self, groups: &[Vec<usize>]) {
        for (i, a) in groups.iter().enumerate() {
            for b in groups.iter().skip(i + 1) {
                for &x in a {
                    for &y in b {
                        self.blocked.insert((x, y));
                        self.blocked.insert((y, x));
                    }
                }
            }
        }
        self.note(format!("partition {groups:?}"));
        self.sabotage_cut();
    }

    /// With [`Sabotage::EagerRelease`], a cut link is reported as a certain crash (a broken
    /// transport that confuses silence with death): voters drop their promises at once.
    fn sabotage_cut(&mut self) {
        if self.sabotage != Sabotage::EagerRelease {
            return;
        }
        let n = self.nodes.len();
        for a in 0..n {
            for b in 0..n {
                if a != b && !self.link_up(a, b) {
                    if let (Some(id), Some(to_id)) = (self.id_of(a), self.id_of(b)) {
                        self.order += 1;
                        self.queue.push(Reverse(Delivery {
                            at: self.now + 1,
                            order: self.order,
                            to_slot: b,
                            to_id,
                            from_slot: a,
                            input: Input::Crashed(id),
                        }));
                    }
                }
            }
        }
    }

    /// Cuts one node off from every other (cable cut).
    pub fn isolate(&mut self, slot: usize) {
        for other in 0..self.nodes.len() {
            if other != slot {
                self.blocked.insert((slot, other));
                self.blocked.insert((other, slot));
            }
        }
        let name = self.nodes[slot].name.clone();
        self.note(format!("isolate {name}"));
        self.sabotage_cut();
    }

    /// Messages from `a` to `b` are lost from now on (one-way link loss).
    pub fn block_one_way(&mut self, a: usize, b: usize) {
        self.blocked.insert((a, b));
        let (x, y) = (self.nodes[a].name.clone(), self.nodes[b].name.clone());
        self.note(format!("block {x} -> {y}"));
    }

    /// Repairs every link.
    pub fn heal(&mut self) {
        self.blocked.clear();
        self.note("heal".into());
    }

    /// The process is SIGKILLed on a live host: peers that still talk to it both ways learn
    /// at once that it is gone.
    pub fn kill(&mut self, slot: usize) {
        let Some(id) = self.id_of(slot) else { return };
        self.bury(slot);
        for other in 0..self.nodes.len() {
            if other != slot && self.link_up(slot, other) && self.link_up(other, slot) {
                self.send(slot, other, Input::Crashed(id), true);
            }
        }
        let name = self.nodes[slot].name.clone();
        self.note(format!("kill -9 {name}"));
    }

    /// The host goes silent (power cut): nobody learns anything.
    pub fn crash_silently(&mut self, slot: usize) {
        self.bury(slot);
        let name = self.nodes[slot].name.clone();
        self.note(format!("host of {name} gone"));
    }

    fn bury(&mut self, slot: usize) {
        let now = self.now;
        let n = &mut self.nodes[slot];
        if let Some(c) = n.core.take() {
            n.down_since = now;
            n.memory = c.memory();
            n.ghosts.retain(|&(p, _)| p.1 > now);
            n.ghosts.extend(
                c.promise()
                    .filter(|&(_, until)| until > now)
                    .map(|p| (p, c.id())),
            );
            self.slots.remove(&c.id());
        }
        n.deadline = Millis::NEVER;
        n.frozen = false;
        self.maybe_masters.remove(&slot);
        n.held.clear();
        self.masters_now.remove(&slot);
    }

    /// SIGSTOP.
    pub fn freeze(&mut self, slot: usize) {
        self.nodes[slot].frozen = true;
        self.nodes[slot].frozen_at = self.now;
        self.nodes[slot].deadline = Millis::NEVER;
        let name = self.nodes[slot].name.clone();
        self.note(format!("freeze {name}"));
    }

    /// SIGCONT: the held inputs are handled now, with the current time.
    pub fn thaw(&mut self, slot: usize) {
        let name = self.nodes[slot].name.clone();
        self.note(format!("thaw {name}"));
        self.nodes[slot].frozen = false;
        let held = std::mem::take(&mut self.nodes[slot].held);
        let now = self.now;
        // A `quorumctl role` that queued while the process was frozen is answered now, as the
        // daemon does: `master` only on a lease valid on the clock of this instant.
        let (answer, id) = match self.nodes[slot].core.as_ref() {
            Some(c) => {
                let acting = c.role() == Role::Master && c.master_until().is_some_and(|u| u > now);
                let role = match c.status(now).role {
                    Role::Master if !acting => Role::Inquorate,
                    r => r,
                };
                (Some(role), c.id())
            }
            None => (None, 0),
        };
        self.nodes[slot].thaw_answer = answer;
        let since = self.nodes[slot].frozen_at;
        let newer = self
            .masterships
            .iter()
            .find(|(_, (_, who, at))| *who != id && *at >= since)
            .map(|(e, (name, _, at))| (*e, name.clone(), *at));
        if let (true, Some(Role::Master), Some((e, other, at))) =
            (self.check_answers, answer, newer)
        {
            self.fail(
                "stale_answer",
                format!(
                    "{name} answered master on thaw, but {other} became master (epoch {e}) at {} while it was frozen",
                    at.0
                ),
            );
        }
        // The daemon ticks first: a thawed master finds its lease expired before anything else.
        if let Some(c) = self.nodes[slot].core.as_mut() {
            c.handle(now, Input::Tick);
        }
        self.pump(slot);
        self.check_node(slot);
        for input in held {
            if let Some(c) = self.nodes[slot].core.as_mut() {
                c.handle(now, input);
            }
            self.pump(slot);
            self.check_node(slot);
        }
    }

    /// `quorumctl dispatch`: leave gracefully; the process exits once its Leave is sent.
    pub fn dispatch(&mut self, slot: usize) {
        let now = self.now;
        if let Some(c) = self.nodes[slot].core.as_mut() {
            c.dispatch(now);
        }
        self.pump(slot);
        self.check_node(slot);
        // The process exits; a vote it gave stays binding until it runs out (a restarted
        // process keeps quiet that long).
        self.bury(slot);
        let name = self.nodes[slot].name.clone();
        self.note(format!("dispatch {name}"));
    }

    /// A failing health check, maintenance or step-down on `slot` (`true`), or its end.
    pub fn hold(&mut self, slot: usize, held: bool) {
        let now = self.now;
        if let Some(c) = self.nodes[slot].core.as_mut() {
            c.handle(now, Input::Held(held));
        }
        self.pump(slot);
        self.check_node(slot);
        let name = self.nodes[slot].name.clone();
        self.note(format!("hold {name} {held}"));
    }

    /// A reload that changes `--priority` on `slot` (kept for its later restarts too).
    pub fn set_priority(&mut self, slot: usize, priority: i32) {
        let now = self.now;
        self.nodes[slot].opts.priority = priority;
        if let Some(c) = self.nodes[slot].core.as_mut() {
            c.set_priority(now, priority);
        }
        self.pump(slot);
        self.check_node(slot);
        let name = self.nodes[slot].name.clone();
        self.note(format!("priority {name} {priority}"));
    }

    /// `quorumctl forget NAME` on `slot`.
    pub fn forget(&mut self, slot: usize, name: &str) -> Result<(), crate::control::ControlError> {
        let now = self.now;
        let r = match self.nodes[slot].core.as_mut() {
            Some(c) => c.forget(now, name),
            None => Ok(()),
        };
        self.pump(slot);
        r
    }

    /// `quorumctl rename NEW` on `slot`.
    pub fn rename(&mut self, slot: usize, name: &str) -> Result<(), crate::control::ControlError> {
        let now = self.now;
        let r = match self.nodes[slot].core.as_mut() {
            Some(c) => c.rename(now, name),
            None => Ok(()),
        };
        if r.is_ok() {
            self.nodes[slot].name = name.to_string();
        }
        self.pump(slot);
        r
    }

    // ----- observations -------------------------------------------------------------------

    /// Whether the node acts as master now: role master with a lease valid at this instant
    /// (what the daemon reports and acts on; a frozen process acts on nothing).
    pub fn is_master(&self, slot: usize) -> bool {
        let n = &self.nodes[slot];
        !n.frozen
            && n.core.as_ref().is_some_and(|c| {
                c.role() == Role::Master && c.master_until().is_some_and(|u| u > self.now)
            })
    }

    /// Slots acting as master now.
    pub fn masters(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&s| self.is_master(s))
            .collect()
    }

    /// Names acting as master now.
    pub fn master_names(&self) -> Vec<String> {
        self.masters()
            .into_iter()
            .map(|s| self.nodes[s].name.clone())
            .collect()
    }

    /// The role of the process on `slot` (None if down).
    pub fn role(&self, slot: usize) -> Option<Role> {
        self.nodes[slot].core.as_ref().map(|c| c.role())
    }

    /// The master `slot` reports (None if down or none).
    pub fn reported_master(&self, slot: usize) -> Option<String> {
        self.nodes[slot]
            .core
            .as_ref()
            .and_then(|c| c.status(self.now).master)
    }

    /// The state of member `name` as seen by `slot`.
    pub fn member_state(&self, slot: usize, name: &str) -> Option<(MemberState, bool)> {
        let st = self.nodes[slot].core.as_ref()?.status(self.now);
        let rows: Vec<_> = st.members.iter().filter(|m| m.name == name).collect();
        assert!(rows.len() <= 1, "duplicate entries for {name}: {rows:?}");
        rows.first().map(|m| (m.state, m.counted))
    }

    /// The one node acting as master, if every running, unfrozen node that talks to it both
    /// ways reports it as master too, and the latest hook of each named a master (a hook
    /// that said "no master" while the node went on to follow one is a lie to the operator).
    pub fn agreed_master(&self) -> Option<String> {
        let masters = self.masters();
        let [m] = masters[..] else {
            return None;
        };
        let name = &self.nodes[m].name;
        // Every hook names the master's own epoch (status and hooks report the mastership's).
        let master_epoch = self.nodes[m].core.as_ref().and_then(|c| c.master_epoch());
        let all = (0..self.nodes.len()).all(|s| {
            let n = &self.nodes[s];
            n.core.is_none()
                || n.frozen
                || !(self.link_up(s, m) && self.link_up(m, s))
                || (self.reported_master(s).as_ref() == Some(name)
                    && n.hook_master.as_ref().is_some_and(Option::is_some)
                    && Some(n.hook_epoch) == master_epoch)
        });
        all.then(|| name.clone())
    }

    /// Runs until every node agrees on one master, or `within` ms pass.
    pub fn settle(&mut self, within: u64) -> Option<String> {
        let deadline = self.now + within;
        while self.now < deadline && self.violation.is_none() {
            if let Some(m) = self.agreed_master() {
                return Some(m);
            }
            self.run_for(10);
        }
        self.agreed_master()
    }

    /// Whether `slot` may start now with its memory inside the guarantees: always if it
    /// remembers members, else as [`Sim::fresh_start_safe`].
    pub fn start_safe(&self, slot: usize) -> bool {
        !self.nodes[slot].memory.members.is_empty() || self.fresh_start_safe(slot)
    }

    /// Whether `slot` may start now knowing nobody (no memory, or one that knows no member)
    /// inside the guarantees. A node that starts knowing nobody and hears nobody is master of
    /// itself, and one that hears nobody who knows the latest epoch cannot know it: that is
    /// the documented limit (a state directory or `--expect` lifts it), not a bug. So such a
    /// start is safe only while every link of the node is up and, once there was a mastership,
    /// some running, unfrozen node knows the latest epoch, and some other process runs
    /// unfrozen (or none runs and no other host remembers a cluster); and then faults pause for
    /// [`Sim::fresh_start_calm`].
    pub fn fresh_start_safe(&self, slot: usize) -> bool {
        let n = self.nodes.len();
        let links = (0..n)
            .filter(|&o| o != slot)
            .all(|o| self.link_up(slot, o) && self.link_up(o, slot));
        let latest = self.masterships.keys().next_back().copied().unwrap_or(0);
        let knower = latest == 0
            || (0..n).any(|o| {
                o != slot
                    && !self.nodes[o].frozen
                    && self.nodes[o]
                        .core
                        .as_ref()
                        .is_some_and(|c| c.epoch() >= latest)
            });
        // Someone running must hear it now. If every other running process is frozen, or
        // nobody runs while other hosts remember a cluster (it is down, not absent), the node
        // starts as alone as inside a partition.
        let running: Vec<usize> = (0..n)
            .filter(|&o| o != slot && self.nodes[o].core.is_some())
            .collect();
        let others_remember = (0..n).any(|o| o != slot && !self.nodes[o].memory.members.is_empty());
        let heard = running.iter().any(|&o| !self.nodes[o].frozen)
            || (running.is_empty() && !others_remember);
        links && knower && heard
    }

    /// How long faults pause after a start that knows nobody: one round of hellos and beats.
    pub fn fresh_start_calm(&self, slot: usize) -> u64 {
        self.nodes[slot].cfg.heartbeat_ms + 4 * self.net.latency.1 + 5
    }

    /// A fingerprint of everything that decides the future of the run (cores, links, messages
    /// in flight, memories, the checker's record), with times taken relative to now: two runs
    /// with the same fingerprint behave alike. For the exhaustive search's visited set.
    pub fn fingerprint(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            out.push_str(&format!(
                "[{} frozen={} held={:?} core={:?} mem={:?} ghost={:?} ann={:?}]",
                n.name, n.frozen, n.held, n.core, n.memory, n.ghosts, n.next_announce
            ));
        }
        let mut q: Vec<&Delivery> = self.queue.iter().map(|r| &r.0).collect();
        q.sort();
        for d in q {
            out.push_str(&format!(
                "<{:?} {}->{} {} {:?}>",
                d.at, d.from_slot, d.to_slot, d.to_id, d.input
            ));
        }
        out.push_str(&format!(
            "blocked={:?} lc={:?} masters={:?} ships={:?}",
            self.blocked, self.link_clock, self.masters_now, self.masterships
        ));
        relative_times(&out, self.now.0)
    }

    // ----- invariants ---------------------------------------------------------------------

    fn fail(&mut self, rule: &'static str, detail: String) {
        if self.violation.is_none() {
            self.violation = Some(Violation {
                rule,
                detail,
                at: self.now,
            });
        }
    }

    /// Checks every invariant at the current instant, for every node.
    pub fn check(&mut self) {
        for slot in 0..self.nodes.len() {
            self.check_node(slot);
        }
    }

    /// Checks every invariant after an event on `slot`. Only that node's state changed; the
    /// others' leases can only have run out, which [`Sim::is_master`] sees by itself.
    fn check_node(&mut self, slot: usize) {
        let master = self.nodes[slot]
            .core
            .as_ref()
            .is_some_and(|c| c.role() == Role::Master);
        if master {
            self.maybe_masters.insert(slot);
        } else {
            self.maybe_masters.remove(&slot);
        }
        self.check_one_master();
        self.check_lease_backed();
        self.check_epochs(slot);
    }

    /// Nodes acting as master now (from those that were master at their last event).
    fn current_masters(&self) -> Vec<usize> {
        self.maybe_masters
            .iter()
            .copied()
            .filter(|&s| self.is_master(s))
            .collect()
    }

    /// Rule 1: never two nodes acting as master at the same instant.
    fn check_one_master(&mut self) {
        let masters: Vec<String> = self
            .current_masters()
            .into_iter()
            .map(|s| self.nodes[s].name.clone())
            .collect();
        if masters.len() > 1 && std::env::var("SIM_DEBUG").is_ok() {
            for n in &self.nodes {
                if let Some(c) = &n.core {
                    let st = c.status(self.now);
                    eprintln!(
                        "{} {:?} {:?} {} {} members {:?}",
                        n.name,
                        st.role,
                        st.quorum,
                        c.debug_sets(),
                        c.debug_tallies(self.now),
                        st.members
                            .iter()
                            .map(|m| (m.name.clone(), m.state, m.counted))
                            .collect::<Vec<_>>()
                    );
                }
            }
        }
        if masters.len() > 1 {
            self.fail("one_master", format!("two masters at once: {masters:?}"));
        }
    }

    /// Rules 1 and 2: a master's lease is backed by real promises from a quorum of the members
    /// it counts (promises of crashed processes stay binding until they run out).
    fn check_lease_backed(&mut self) {
        for m in self.current_masters() {
            let Some(c) = self.nodes[m].core.as_ref() else {
                continue;
            };
            let (Some(epoch), id) = (c.master_epoch(), c.id()) else {
                continue;
            };
            let grant = Grant {
                candidate: id,
                epoch,
            };
            // The lease holds on the whole view, or, for a sitting master, on the view
            // without the members that cannot vote yet (their promises cannot exist).
            let backed = |(counted, padded, top): (usize, bool, MemberId)| {
                let mut votes = 1;
                let mut top_in = top == id;
                for (s, n) in self.nodes.iter().enumerate() {
                    if s == m {
                        continue;
                    }
                    // A live promise, or one a crashed incarnation gave (still binding: the
                    // new incarnation keeps quiet until it runs out).
                    let live = n
                        .core
                        .as_ref()
                        .and_then(|c| c.promise().map(|p| (p, c.id())));
                    let backs = |p: &((Grant, Millis), MemberId)| {
                        let ((g, until), _) = p;
                        *g == grant && *until > self.now
                    };
                    let backing = live
                        .iter()
                        .chain(n.ghosts.iter())
                        .find(|p| backs(p))
                        .map(|p| p.1);
                    if let Some(vid) = backing {
                        votes += 1;
                        top_in |= vid == top;
                    }
                }
                (
                    votes,
                    counted,
                    quorum::has_quorum(counted, votes, top_in, padded),
                )
            };
            let (votes, counted, whole) = backed(c.quorum_view());
            if !whole && !c.sitting_quorum_view().is_some_and(|v| backed(v).2) {
                if std::env::var("SIM_DEBUG").is_ok() {
                    for n in &self.nodes {
                        eprintln!(
                            "{} promise {:?} ghost {:?} status {:?}",
                            n.name,
                            n.core.as_ref().map(|c| c.promise()),
                            n.ghosts,
                            n.core
                                .as_ref()
                                .map(|c| (c.role(), c.status(self.now).quorum))
                        );
                    }
                }
                let name = self.nodes[m].name.clone();
                self.fail(
                    "lease_backed",
                    format!("{name} is master (epoch {epoch}) with {votes} promised votes of {counted} counted"),
                );
            }
        }
    }

    /// Epochs never decrease on a host (across restarts with memory); no two masterships
    /// ever share an epoch number, and every new mastership has a larger epoch than any
    /// mastership before it.
    fn check_epochs(&mut self, s: usize) {
        let n = &self.nodes[s];
        let Some(c) = n.core.as_ref() else {
            self.masters_now.remove(&s);
            return;
        };
        let mut fails = Vec::new();
        let e = c.epoch();
        let prev = n.host_epoch;
        if e < prev {
            fails.push(format!("{}'s epoch went back from {prev} to {e}", n.name));
        }
        self.nodes[s].host_epoch = prev.max(e);
        let n = &self.nodes[s];
        let Some(c) = n.core.as_ref() else {
            return;
        };
        // A frozen master that still holds its lease keeps its mastership: it is the same one
        // when it thaws, not a new one.
        let holds = c.role() == Role::Master && c.master_until().is_some_and(|u| u > self.now);
        match (holds, c.master_epoch()) {
            (true, Some(me)) if self.masters_now.get(&s) != Some(&me) => {
                let name = n.name.clone();
                let id = c.id();
                if let Some((who, wid, since)) = self.masterships.get(&me) {
                    let same = if *wid == id { " (same process)" } else { "" };
                    fails.push(format!(
                        "epoch reuse: {name} became master with epoch {me}, already used by \
                         {who}'s mastership from {}{same}",
                        since.0
                    ));
                }
                if let Some((last, who)) = &self.last_mastership {
                    if me <= *last {
                        fails.push(format!(
                            "{name} became master with epoch {me}, not above {who}'s {last}"
                        ));
                    }
                }
                self.masterships
                    .entry(me)
                    .or_insert((name.clone(), id, self.now));
                self.last_mastership = Some((me, name));
                // Masterships whose lease ran out meanwhile have ended, even if their node
                // had no event since: if it is master again later, that is a new mastership.
                // (A frozen master keeps its mastership while its lease runs.)
                let now = self.now;
                let nodes = &self.nodes;
                self.masters_now.retain(|&k, _| {
                    nodes[k].core.as_ref().is_some_and(|c| {
                        c.role() == Role::Master && c.master_until().is_some_and(|u| u > now)
                    })
                });
                self.masters_now.insert(s, me);
            }
            (true, Some(_)) => {}
            _ => {
                self.masters_now.remove(&s);
            }
        }
        for f in fails {
            self.fail("epochs", f);
        }
    }

    /// Every mastership so far: (epoch, holder, start time), in epoch order.
    pub fn masterships(&self) -> Vec<(u64, String, Millis)> {
        self.masterships
            .iter()
            .map(|(e, (who, _, at))| (*e, who.clone(), *at))
            .collect()
    }

    /// Panics with the violation and the trail if any rule was broken.
    pub fn assert_ok(&self, what: &str) {
        if let Some(v) = &self.violation {
            panic!(
                "{what}: rule {} broken at {}: {}\nrecent events:\n{}",
                v.rule,
                v.at,
                v.detail,
                self.trail()
            );
        }
    }
}

/// The simulator's side of [`super::Effects`]: messages go into the virtual network, role and
/// master changes into the node's logs, the memory into the node (its "state file").
struct NodeEffects<'a> {
    sim: &'a mut Sim,
    slot: usize,
}

impl super::Effects for NodeEffects<'_> {
    fn remember(&mut self, memory: Memory) {
        self.sim.nodes[self.slot].memory = memory;
    }

    fn send(&mut self, to: MemberId, msg: crate::wire::Message) {
        if matches!(msg, crate::wire::Message::Beat(_)) {
            self.sim.beats_sent += 1;
        }
        if let Some(to_slot) = self.sim.slot_of_id(to) {
            if matches!(msg, crate::wire::Message::Beat(_)) {
                let now = self.sim.now;
                if let Some(log) = self.sim.beat_log.as_mut() {
                    log.push((now, self.slot, to_slot));
                }
            }
            let from = self.sim.id_of(self.slot).unwrap_or(0);
            self.sim
                .send(self.slot, to_slot, Input::Message { from, msg }, false);
        }
    }

    fn announce(&mut self, info: MemberInfo) {
        for other in 0..self.sim.nodes.len() {
            if other != self.slot {
                self.sim
                    .send(self.slot, other, Input::Hello(info.clone()), true);
            }
        }
    }

    fn role_changed(&mut self, c: super::RoleChange) {
        let sim = &mut *self.sim;
        if c.role == Role::Inquorate {
            sim.inquorate_turns += 1;
        }
        let name = sim.nodes[self.slot].name.clone();
        sim.note(format!(
            "{name}: {} -> {} (master {:?}, epoch {})",
            c.previous, c.role, c.master, c.epoch
        ));
        if std::env::var("SIM_DEBUG").is_ok() && c.previous == Role::Master {
            for n in &sim.nodes {
                if let Some(core) = &n.core {
                    let st = core.status(sim.now);
                    eprintln!(
                        "{} {:?} {:?} promise {:?} members {:?}",
                        n.name,
                        st.role,
                        st.quorum,
                        core.promise(),
                        st.members
                            .iter()
                            .map(|m| (m.name.clone(), m.state, m.counted, m.last_heard_ms))
                            .collect::<Vec<_>>()
                    );
                }
            }
        }
        let now = sim.now;
        sim.nodes[self.slot].hook_master = Some(c.master.clone());
        sim.nodes[self.slot].hook_epoch = c.epoch;
        sim.nodes[self.slot]
            .role_log
            .push((now, c.previous, c.role, c.master, c.epoch));
    }

    fn master_changed(&mut self, master: Option<String>, epoch: u64) {
        let name = self.sim.nodes[self.slot].name.clone();
        self.sim.note(format!("{name}: follows {master:?}"));
        let now = self.sim.now;
        self.sim.nodes[self.slot].hook_master = Some(master.clone());
        self.sim.nodes[self.slot].hook_epoch = epoch;
        self.sim.nodes[self.slot].master_log.push((now, master));
    }

    fn member(&mut self, name: String, change: crate::control::MemberChange) {
        let me = self.sim.nodes[self.slot].name.clone();
        if change == crate::control::MemberChange::Lost {
            self.sim.members_lost += 1;
        }
        self.sim.note(format!("{me}: member {name} {change:?}"));
    }

    fn refused(&mut self, name: String, _addr: String, reason: String) {
        let me = self.sim.nodes[self.slot].name.clone();
        self.sim.note(format!("{me}: refused {name}: {reason}"));
    }
}
