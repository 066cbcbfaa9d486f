//! The election core: a pure state machine that decides who is master.
//!
//! No IO, no clock, no randomness: the driver passes `now` into every call, feeds it
//! [`Input`]s, and drains [`Output`]s. The same code runs in the daemon and in the
//! deterministic simulator (`sim`), and both carry the outputs out through one mapping
//! ([`Election::take_round`], [`Round::apply`] onto their [`Effects`]).
//!
//! ```text
//!            Hello / Beat / Leave / Crashed / Tick            Send / RoleChanged / Member ...
//!  driver ─────────────────────────────────────► Election ─────────────────────────────────► driver
//!            handle(now, input)                   │  ▲        take_round().apply(effects)
//!                                                 ▼  │
//!                                    next_deadline(): sleep until, then Tick
//! ```
//!
//! # How a master is made (see docs/ALGORITHM.md for the full argument)
//!
//! 1. Every node votes for the best-ranked *eligible* member it can reach both ways.
//! 2. The best node proposes a candidacy with a fresh epoch (`max known + 1`).
//! 3. A vote is a **promise**: "I back (candidate, epoch) and nobody else until
//!    `t + lease + drift` on my clock", where `t` is when I received the candidate's beat that my
//!    vote echoes. The candidate dates the same vote from when it *sent* that beat, which is
//!    earlier, so the candidate's view of the vote always runs out first.
//! 4. A candidate is master while the votes that are still valid on its clock form a quorum
//!    ([`quorum`]). When they stop forming one, it steps down at once: before any voter is
//!    free to vote for someone else. That is the lease.
//! 5. A voter is released early only by the candidate itself (it renounced: its beat carries
//!    another or no candidacy, or it left) or by a certain crash of its process.
//! 6. Who counts is agreed: joint quorums over a base and a view (`view.rs`).
//!
//! # Where each concern lives (each owns its part of the state and its invariant)
//!
//! | module | state | invariant |
//! |---|---|---|
//! | `votes` | promise, grant, highest epoch voted | every vote in a beat is backed by a promise |
//! | `candidacy` | candidacy, epochs known | epochs only grow and are unique |
//! | `lease` | mastership, lease end | master only while valid votes form a quorum |
//! | `roles` | reported role, followed master | one announcement per change, none at start |
//! | `view` | agreement on who counts, refusals | disjoint groups can never both win |
//! | `membership`, `members` | the member table | joins, leaves, crashes, re-entries, clashes |
//! | `beats` | sequence numbers, send times | a vote is dated from the beat it echoes |
//! | `effects` | (none) | the memory is persisted before any send of a round (local effects first) |

mod beats;
mod cadence;
mod candidacy;
mod config;
mod effects;
mod io;
mod lease;
mod members;
mod membership;
pub mod quorum;
mod roles;
mod tracked;
mod view;
mod votes;

#[cfg(test)]
mod exhaustive;
#[cfg(any(test, feature = "sim"))]
pub mod sim;
#[cfg(test)]
mod sim_change_tests;
#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod tests;

pub use config::{Config, REAP_DISPATCHED_MS};

pub use effects::{Effects, RoleChange, Round};
pub use io::{Input, Output};

use crate::control::{self, ControlError, ErrorKind, MemberChange, Quorum, Status};
use crate::time::Millis;
use crate::types::{MemberId, MemberInfo, MemberState, Rank, Role};
use crate::wire::{Grant, Message};
use members::Peer;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Most sent-beat timestamps kept (they date echoed votes); old ones are pruned by age first.
const MAX_SENT: usize = 4096;
/// Most refused incarnations remembered (bounded against floods).
const MAX_REFUSED: usize = 1024;
/// Bound on the member table (members learned from a peer's list stop there).
const MAX_MEMBERS: usize = 1024;
/// Highest epoch accepted from the network (see `handle_beat`).
const MAX_EPOCH: u64 = u64::MAX / 4;

/// What a node keeps across restarts (the daemon writes it to its state directory).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Memory {
    /// Members known (all but dispatched ones), with their last state.
    pub members: Vec<(MemberInfo, MemberState)>,
    /// Highest epoch this node knew, voted for or proposed: epochs keep growing across a
    /// restart of the whole cluster.
    pub epoch: u64,
    /// The last vote this node gave: after a restart it may give that same vote again (to
    /// the sitting master), but no other vote at that epoch or below.
    #[serde(default)]
    pub vote: Option<Grant>,
    /// The base this node counted (member ids, itself included) and the views it had shown
    /// since its last commit (view.rs, "Shown views bind"). Others may have agreed on any of
    /// them with it, so they bind the next incarnation until it commits again: a restart is
    /// fresh (its base is its whole view) and *also* needs a quorum in each of these
    /// (docs/ALGORITHM.md, "A restart is bound by what it agreed"). The daemon writes them
    /// before the beats that show a new view leave. Empty in older state files.
    #[serde(default)]
    pub bound: Vec<Vec<MemberId>>,
    /// More views were shown than the list holds: vote for nobody until a commit.
    #[serde(default)]
    pub shown_overflow: bool,
    /// The incarnation that wrote this memory. In `bound` its seat stays a *ghost* for the
    /// next one: it counts and never votes (the others may have seen it leave and shrunk
    /// their count without it, so a restart must not lend its own seat to a quorum of the old
    /// count).
    #[serde(default)]
    pub written_by: Option<MemberId>,
    /// Ghosts of incarnations before `written_by`, still in `bound` (a restart that had not
    /// committed yet when it stopped).
    #[serde(default)]
    pub ghosts: Vec<MemberId>,
}

/// The election state of one node.
#[derive(Debug)]
pub struct Election {
    cfg: Config,
    me: MemberInfo,
    started: Millis,
    peers: tracked::Tracked<BTreeMap<MemberId, Peer>>,
    refused: BTreeSet<MemberId>,
    /// Our beat counter and when each recent beat was sent.
    seq: u64,
    sent: VecDeque<(u64, Millis)>,
    next_beat: Millis,
    /// The digests our last round of beats showed (beats.rs).
    beat_digests: (u64, u64),
    /// Peers whose beat did not echo one of ours: they get a beat at the end of this batch
    /// of inputs (beats.rs), in one round, not one round per beat taken in.
    answer: BTreeSet<MemberId>,
    /// The quiet peer probed last (cadence.rs): the rotation goes on after it.
    probe_after: MemberId,
    /// Rotating rounds so far (cadence.rs): a small cluster probes one round in a few.
    probe_round: u64,
    /// Not before this instant does `commit_shown_prefix` (view.rs) look again: it tallies
    /// every earlier view we showed, and twice a heartbeat is enough for a wait of a lease.
    /// Kept out of `view`, whose every write drops the cached digests.
    prefix_look: Millis,
    /// Rounds paced so far (cadence.rs): whose turn it is in a paced round.
    pace_round: u64,
    /// Our last round was paced: peers that declared a gap stay reachable that much longer.
    pacing: bool,
    /// Votes we give and the promises behind them (votes.rs).
    votes: votes::Votes,
    /// Our candidacy and the epochs we know (candidacy.rs).
    cand: candidacy::Candidacy,
    /// Our mastership's lease (lease.rs).
    lease: lease::Lease,
    /// The role we report and the master we follow (roles.rs).
    roles: roles::Roles,
    /// Agreement on who counts, refusals, the lone node's extra look (view.rs).
    view: tracked::Tracked<view::ViewState>,
    /// Whom we sent our members list and when, and the views peers showed (membership.rs).
    /// Kept out of `view`, whose every write drops the cached digests: it changes at
    /// nearly every beat while members start together.
    lists: membership::Lists,
    /// The digests ([`Election::digests`]), keyed on what they were computed from (view.rs,
    /// `MemoKey`).
    digest_cache: std::cell::Cell<Option<view::DigestMemo>>,
    /// The binding shown views ([`Election::shown_configs`]), keyed the same way.
    shown_cache: std::cell::RefCell<view::ShownMemo>,
    /// Uses of a cached view so far, in test builds (view.rs, `check_memo`).
    memo_checks: std::cell::Cell<u64>,
    dispatching: bool,
    /// [`Input::Held`]: not eligible for mastership (checks failing, maintenance, step-down).
    held: bool,
    outputs: VecDeque<Output>,
    /// Time of the latest call.
    now: Millis,
}

impl Election {
    /// A node that starts now. `remembered`: what an earlier run knew (persisted by the driver
    /// from [`Election::memory`]). Remembered members count as lost until heard from, so a
    /// node that reboots into a partition cannot make itself master behind the cluster's back.
    pub fn new(cfg: Config, me: MemberInfo, remembered: Memory, now: Millis) -> Self {
        let mut e = Election {
            cfg,
            me,
            started: now,
            peers: tracked::Tracked::new(BTreeMap::new()),
            refused: BTreeSet::new(),
            seq: 0,
            sent: VecDeque::new(),
            next_beat: now,
            beat_digests: (0, 0),
            answer: BTreeSet::new(),
            probe_after: 0,
            probe_round: 0,
            prefix_look: Millis(0),
            pace_round: 0,
            pacing: false,
            votes: votes::Votes::default(),
            cand: candidacy::Candidacy::default(),
            lease: lease::Lease::default(),
            roles: roles::Roles::default(),
            view: tracked::Tracked::new(view::ViewState::default()),
            lists: membership::Lists::default(),
            digest_cache: std::cell::Cell::new(None),
            shown_cache: std::cell::RefCell::new(None),
            memo_checks: std::cell::Cell::new(0),
            dispatching: false,
            held: false,
            outputs: VecDeque::new(),
            now,
        };
        e.cand.max_epoch = remembered.epoch;
        e.votes.last_granted_epoch = remembered.epoch;
        e.votes.last_grant = remembered.vote;
        for (info, state) in remembered.members {
            if info.id == e.me.id
                || info.name == e.me.name
                || e.my_old_self(&info)
                || state == MemberState::Dispatched
            {
                continue;
            }
            if e.peers.values().any(|p| p.info.name == info.name) {
                continue;
            }
            // Back pending: a restarted node has agreed on nothing with the members it
            // finds (they may have moved on while it was down); they still count.
            let p = Peer::new(info, MemberState::Lost, None);
            e.peers.insert(p.info.id, p);
        }
        // What the previous incarnation agreed to binds this one (the base it counted, the
        // views it showed): counting every remembered member afresh is not enough, since the
        // others may have shrunk their count since (members that crashed or left), and two
        // restarted members could otherwise agree on their old count behind the back of the
        // one that carried on. Its own old id stands for this incarnation.
        // Our own old seats stay ghosts there: counted, never voting.
        // Only the seat of the last incarnation that had agreed on its count is a ghost: a
        // restart that stopped again before agreeing on anything held no seat of its own
        // beyond that one, and is simply us again (ghosts piling up over quick restarts would
        // make the bound counts unwinnable).
        let me = e.me.id;
        let written_by = remembered.written_by.filter(|&id| id != me);
        let (ghosts, again) = if remembered.ghosts.is_empty() {
            (written_by.into_iter().collect(), None)
        } else {
            (remembered.ghosts, written_by)
        };
        e.view.ghosts = ghosts.into_iter().filter(|&id| id != me).collect();
        while e.view.ghosts.len() > view::MAX_SHOWN {
            e.view.ghosts.pop_first();
        }
        for config in remembered.bound {
            let mut config: Vec<MemberId> = config
                .into_iter()
                .map(|id| if Some(id) == again { me } else { id })
                .collect();
            config.sort_unstable();
            config.dedup();
            // Members not restored (dispatched ones) left for good. A count of only our old
            // self: nobody else can have agreed on it with us.
            config.retain(|id| *id == me || e.view.ghosts.contains(id) || e.peers.contains_key(id));
            if config
                .iter()
                .all(|id| e.view.ghosts.contains(id) || *id == me)
            {
                continue;
            }
            // Our old seat there is a ghost, and this incarnation holds no other: added
            // beside the ghost it would be a seat that votes, and a count of four restarted
            // three times would be five, won by the three restarted without the member that
            // carried on (the simulator found two masters that way). A count written before
            // ghosts were kept has none: there we stand for our old self as before.
            if !config.contains(&e.me.id) && !config.iter().any(|id| e.view.ghosts.contains(id)) {
                config.push(e.me.id);
                config.sort_unstable();
            }
            if e.view.shown.contains(&config) {
                continue;
            }
            if e.view.shown.len() >= view::MAX_SHOWN {
                e.view.shown_overflow = true;
                break;
            }
            e.view.shown.push(config);
            e.view.shown_at.push(None);
        }
        e.view.shown_overflow |= remembered.shown_overflow;
        e
    }

    /// An earlier incarnation of this node, whatever name it had: it held the address and
    /// port we hold now, so its process is gone. (Under an old name, after a rename, it would
    /// otherwise linger as a lost member that counts and never answers.)
    fn my_old_self(&self, info: &MemberInfo) -> bool {
        info.id != self.me.id && info.addr == self.me.addr && info.port == self.me.port
    }

    /// Feeds one input. Drain [`Election::poll_output`] afterwards.
    pub fn handle(&mut self, now: Millis, input: Input) {
        self.handle_all(now, std::iter::once(input));
    }

    /// [`Election::handle`] for inputs that arrived together: each is taken in, in order,
    /// and the node decides (votes, lease, role, beats) once, on the state they leave. The
    /// same as receiving them at one instant; what it saves is the per-input decision over
    /// every member, which in a cluster of hundreds is most of the work (a daemon drains
    /// its queue of frames in one batch).
    pub fn handle_all(&mut self, now: Millis, inputs: impl IntoIterator<Item = Input>) {
        if self.dispatching {
            self.now = self.now.max(now);
            return;
        }
        self.notice_pause(now);
        self.now = self.now.max(now);
        for input in inputs {
            self.take_in(now, input);
        }
        self.update(now);
    }

    fn take_in(&mut self, now: Millis, input: Input) {
        match input {
            Input::Tick => {}
            Input::Hello(info) => self.handle_hello(now, info),
            Input::Message { from, msg } => match msg {
                Message::Hello(info) if info.id == from => self.handle_hello(now, info),
                Message::Beat(beat) => self.handle_beat(now, from, beat),
                Message::Leave { epoch } => self.handle_leave(now, from, epoch),
                Message::Forget { id } => self.handle_forget_msg(from, id),
                Message::Members { members } => self.handle_members(now, from, members),
                Message::Hello(_) | Message::Peers { .. } => {}
            },
            Input::Crashed(id) => self.handle_crashed(id),
            Input::Held(held) => self.held = held,
        }
    }

    /// The next action the driver must take, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When the driver must call `handle(now, Input::Tick)` at the latest.
    pub fn next_deadline(&self) -> Millis {
        if self.dispatching {
            return Millis::NEVER;
        }
        let mut d = self.next_beat;
        let mut consider = |t: Millis| {
            if t < d && t > self.now {
                d = t;
            }
        };
        if self.lease.is_master {
            consider(self.lease.until);
        }
        if let Some(p) = self.votes.promise {
            consider(p.until);
        }
        let s = self.cfg.silence_ms;
        for p in self.peers.values() {
            if p.state == MemberState::Alive {
                if let Some(t) = p.silent_at(s) {
                    consider(t);
                }
                // When it stops being reached both ways. Not for a pair that declared a gap
                // (quiet or paced, cadence.rs): there that is routine between two beats, and
                // waking for it was a wake-up per quiet peer per turn of the rotation with
                // nothing to do; the round a heartbeat on looks again, and `silent_at`
                // still wakes us when it goes silent.
                if p.gap > 0 || p.told_gap > 0 {
                    continue;
                }
                if let Some(t) = p.last_heard {
                    consider(t + s);
                }
                if let Some(t) = p.heard_me {
                    consider(t + s);
                }
            }
        }
        for p in self.peers.values() {
            if !p.had_beat && !p.committed && p.last_heard.is_some() {
                consider(p.first_heard + 2 * self.cfg.heartbeat_ms);
            }
        }
        if let Some((_, t)) = self.view.agreed {
            consider(t + self.cfg.lease_ms + self.cfg.drift_ms);
        }
        for p in self.peers.values() {
            if let Some(t) = p.forget_at {
                consider(t);
            }
            if let Some(t) = self.seat_until(p) {
                consider(t);
            }
        }
        if let Some(t) = self.view.pause_look {
            consider(t);
        }
        if let Some(t) = self.view.lone_probe {
            consider(t);
        }
        consider(self.started + self.cfg.startup_ms);
        consider(self.started + self.quiet_ms());
        if !self.roles.left_starting {
            consider(self.started + self.cfg.startup_ms + s);
        }
        d
    }

    /// This node's role as last computed.
    pub fn role(&self) -> Role {
        self.roles.role
    }

    /// This node's incarnation id.
    pub fn id(&self) -> MemberId {
        self.me.id
    }

    /// This node's current info.
    pub fn info(&self) -> &MemberInfo {
        &self.me
    }

    /// The epoch this node knows.
    pub fn epoch(&self) -> u64 {
        self.cand.max_epoch
    }

    /// When master: the end of the lease (the driver refuses to act as master after it).
    pub fn master_until(&self) -> Option<Millis> {
        self.lease.is_master.then_some(self.lease.until)
    }

    /// The epoch of the current mastership, when master.
    pub fn master_epoch(&self) -> Option<u64> {
        if self.lease.is_master {
            self.cand.current
        } else {
            None
        }
    }

    /// The epoch hooks, events and status report: the epoch of the mastership this node
    /// holds or follows (the master's candidacy, as its beats claim it), else the highest
    /// it knows. Not simply the highest known: a candidacy that lost after the master won
    /// raised that on most members, so a master's hook said one epoch and its slaves' another
    /// for the same mastership, and a fencing system that keeps the highest epoch it saw
    /// would have refused the master it should follow.
    ///
    /// Never above the highest it knows: a master's beats carry its candidacy and, at least
    /// as high, the highest epoch it knows, which we take in first; a beat claiming a
    /// candidacy above its own known epoch is corrupt or forged, and is not reported.
    pub fn reported_epoch(&self) -> u64 {
        self.master_epoch()
            .or_else(|| {
                let m = self.roles.master?;
                self.peers.get(&m)?.beat.as_ref()?.candidacy
            })
            .map_or(self.cand.max_epoch, |e| e.min(self.cand.max_epoch))
    }

    /// The master this node follows (itself when master).
    pub fn master(&self) -> Option<MemberId> {
        self.roles.master
    }

    /// The vote this node currently gives another member, with its promise end.
    pub fn promise(&self) -> Option<(Grant, Millis)> {
        self.votes.promise.map(|p| (p.grant, p.until))
    }

    /// Whether member `id` is known and alive here.
    pub fn knows_alive(&self, id: MemberId) -> bool {
        self.peers
            .get(&id)
            .is_some_and(|p| p.state == MemberState::Alive)
    }

    /// (counted members, padded by `--expect`, best-ranked counted member): the view the
    /// quorum rule is applied to. For invariant checks.
    pub fn quorum_view(&self) -> (usize, bool, MemberId) {
        self.view_summary(self.now)
    }

    /// [`Self::quorum_view`] as a sitting master's lease counts it now: without the members
    /// that cannot vote yet (view.rs, `quiet_at`). None when not master. For invariant checks.
    pub fn sitting_quorum_view(&self) -> Option<(usize, bool, MemberId)> {
        self.lease
            .is_master
            .then(|| self.view_summary_at(self.now, Some(self.now)))
    }

    /// Why this node may never be master in this run, if the cluster refused it.
    pub fn refusal(&self) -> Option<&str> {
        self.view.refusal.as_deref()
    }

    /// Members worth remembering across a restart (all but dispatched ones).
    pub fn memory(&self) -> Memory {
        Memory {
            members: self
                .peers
                .values()
                .filter(|p| p.state != MemberState::Dispatched && !p.superseded)
                .map(|p| (p.info.clone(), p.state))
                .collect(),
            bound: self.bound_configs(),
            shown_overflow: self.view.shown_overflow,
            written_by: Some(self.me.id),
            ghosts: self.view.ghosts.iter().copied().collect(),

            epoch: self
                .cand
                .max_epoch
                .max(self.votes.last_granted_epoch)
                .max(self.cand.last_proposed),
            vote: self.votes.last_grant,
        }
    }

    /// Leave gracefully: step down at once, tell every peer, stop. Returns after queueing the
    /// role change and the `Leave` frames.
    pub fn dispatch(&mut self, now: Millis) {
        if self.dispatching {
            return;
        }
        self.now = self.now.max(now);
        self.dispatching = true;
        self.lease.is_master = false;
        self.cand.current = None;
        self.votes.grant = None;
        let epoch = self.cand.max_epoch;
        self.set_role(Role::Dispatching, None);
        let to: Vec<MemberId> = self.linked_peers().collect();
        for id in to {
            self.outputs.push_back(Output::Send {
                to: id,
                msg: Message::Leave { epoch },
            });
        }
    }

    /// Renames this node. Peers see the new name; the rank order does not change.
    pub fn rename(&mut self, now: Millis, name: &str) -> Result<(), ControlError> {
        if let Err(e) = crate::types::check_name(name) {
            return Err(ControlError::new(ErrorKind::BadRequest, e));
        }
        if self.dispatching {
            return Err(ControlError::new(
                ErrorKind::ShuttingDown,
                "node is leaving",
            ));
        }
        if let Some(p) = self.peers.values().find(|p| p.info.name == name) {
            if p.state == MemberState::Alive {
                return Err(ControlError::new(
                    ErrorKind::Conflict,
                    format!(
                        "name {name:?} is taken by an alive member at {}:{}",
                        p.info.addr, p.info.port
                    ),
                ));
            }
            let id = p.info.id;
            self.peers.remove(&id);
        }
        let from = std::mem::replace(&mut self.me.name, name.to_string());
        self.outputs.push_back(Output::Announce(self.me.clone()));
        self.outputs.push_back(Output::Member {
            name: name.to_string(),
            change: MemberChange::Renamed { from },
        });
        self.outputs.push_back(Output::Remember);
        self.update(now);
        Ok(())
    }

    /// Changes this node's `--priority` (a reload). Peers rank it by the new priority from its
    /// next hello or beat on, so votes move to the best-ranked eligible member as after a join:
    /// a master that now ranks below an eligible member hands over (unless `--no-preempt`),
    /// a member that now ranks first takes over. Safety does not depend on the order of
    /// votes, and the exact-half tie-break ignores priorities (see `Rank::tie_order`).
    pub fn set_priority(&mut self, now: Millis, priority: i32) {
        if self.me.rank.priority == priority {
            return;
        }
        self.me.rank.priority = priority;
        self.outputs.push_back(Output::Announce(self.me.clone()));
        self.update(now);
    }

    /// Removes a lost member from the count on this node and tells the peers to do the same.
    pub fn forget(&mut self, now: Millis, name: &str) -> Result<(), ControlError> {
        if name == self.me.name {
            return Err(ControlError::new(
                ErrorKind::Conflict,
                "cannot forget this node itself (use dispatch to leave)",
            ));
        }
        let Some(p) = self.peers.values().find(|p| p.info.name == name) else {
            return Err(ControlError::new(
                ErrorKind::NotFound,
                format!("no member named {name:?}"),
            ));
        };
        if p.state == MemberState::Alive {
            return Err(ControlError::new(
                ErrorKind::Conflict,
                format!("{name:?} is alive; only lost members can be forgotten"),
            ));
        }
        let binding_until = self.votes_binding_until(p);
        if binding_until > now {
            return Err(ControlError::new(
                ErrorKind::Conflict,
                match p.departed_at.filter(|_| p.crashed) {
                    Some(t) => format!(
                        "{name:?} crashed {} ms ago: a vote it gave just before may still back \
                         a master elsewhere; retry in {} ms",
                        now.since(t),
                        binding_until.since(now)
                    ),
                    None => format!(
                        "{name:?} was heard {} ms ago: a vote it gave may still back a master \
                         elsewhere; retry in {} ms",
                        p.last_heard.map_or(0, |t| now.since(t)),
                        binding_until.since(now)
                    ),
                },
            ));
        }
        let id = p.info.id;
        self.peers.remove(&id);
        self.note_forgotten(id);
        self.outputs.push_back(Output::Member {
            name: name.to_string(),
            change: MemberChange::Forgotten,
        });
        self.outputs.push_back(Output::Remember);
        let to: Vec<MemberId> = self.linked_peers().collect();
        for peer in to {
            self.outputs.push_back(Output::Send {
                to: peer,
                msg: Message::Forget { id },
            });
        }
        self.update(now);
        Ok(())
    }

    /// A snapshot for `quorumctl status`.
    pub fn status(&self, now: Millis) -> Status {
        let (counted, _, _) = self.view_summary(now);
        let reach = self.reach();
        let mut rows: Vec<(Rank, control::Member)> = Vec::with_capacity(self.peers.len() + 1);
        rows.push((
            self.me.rank.clone(),
            control::Member {
                name: self.me.name.clone(),
                address: self.me.addr.clone(),
                port: self.me.port,
                state: MemberState::Alive,
                role: Some(self.roles.role),
                counted: !self.dispatching,
                witness: self.me.witness,
                is_self: true,
                last_heard_ms: None,
                reachable: true,
            },
        ));
        for p in self.peers.values().filter(|p| !p.superseded) {
            rows.push((
                p.info.rank.clone(),
                control::Member {
                    name: p.info.name.clone(),
                    address: p.info.addr.clone(),
                    port: p.info.port,
                    state: p.state,
                    role: match p.state {
                        MemberState::Alive => p.beat.as_ref().map(|b| b.role),
                        MemberState::Dispatched => Some(Role::Dispatching),
                        MemberState::Lost => None,
                    },
                    counted: self.in_view(p, now),
                    witness: p.info.witness,
                    is_self: false,
                    last_heard_ms: p.last_heard.map(|t| now.since(t)),
                    reachable: p.reachable(now, &reach),
                },
            ));
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        Status {
            name: self.me.name.clone(),
            role: self.roles.role,
            epoch: self.reported_epoch(),
            master: self.roles.master.and_then(|id| self.name_of(id)),
            quorum: Quorum {
                votes: self.votes(now),
                needed: quorum::majority(counted),
                counted,
            },
            members: rows.into_iter().map(|r| r.1).collect(),
            version: self.cfg.version.clone(),
            protocol_version: control::PROTOCOL_VERSION,
            cluster: self.cfg.cluster.clone(),
            strategy: self.cfg.strategy,
            witness: self.me.witness,
            refused: self.view.refusal.clone(),
            security: None,
            held: Vec::new(),
            checks: Vec::new(),
        }
    }

    // ----- the decision -------------------------------------------------------------------

    /// Re-evaluates everything after an input: silence, promises, vote, candidacy, lease,
    /// role; sends beats when due or when something changed.
    fn update(&mut self, now: Millis) {
        self.detect_silence(now);
        self.reap_dispatched(now);
        self.forget_due(now);
        self.commit_view(now);
        self.probe_if_alone(now);
        if self.votes.promise.is_some_and(|p| p.until <= now) {
            self.votes.promise = None;
        }
        let target = self.vote_target(now);
        let mut changed = self.update_candidacy(now, target);
        self.cand.bump = false;
        changed |= self.update_vote(now, target);
        changed |= self.update_lease(now);

        // Peers show our role in their tables: tell them at once.
        let role_before = self.roles.role;
        self.update_role(now);
        changed |= self.roles.role != role_before;
        // A candidate's or master's new digests (a commit, a member heard) go out at once:
        // a voter votes only for a candidate showing its own, and a newcomer whose quiet
        // period just ended must see ours to renew a sitting master's lease in time.
        let standing = self.lease.is_master || self.cand.current.is_some();
        changed |= standing && self.digests() != self.beat_digests;

        let sent = if changed || now >= self.next_beat {
            self.send_beats(now)
        } else {
            Vec::new()
        };
        self.answer_unechoed(now, &sent);
    }
}
