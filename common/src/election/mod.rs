//! The election core: a pure state machine that decides who is master.
//!
//! No IO, no clock, no randomness: the driver passes `now` into every call, feeds it
//! [`Input`]s, and drains [`Output`]s. The same code runs in the daemon and in the
//! deterministic simulator ([`sim`]).
//!
//! ```text
//!            Hello / Beat / Leave / Crashed / Tick            Send / RoleChanged / Member ...
//!  driver ─────────────────────────────────────► Election ─────────────────────────────────► driver
//!            handle(now, input)                   │  ▲        poll_output()
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

mod beats;
mod config;
mod io;
mod members;
mod membership;
pub mod quorum;

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

pub use config::Config;

pub use io::{Input, Output};

use crate::control::{self, ControlError, ErrorKind, MemberChange, Quorum, Status};
use crate::time::Millis;
use crate::types::{MemberId, MemberInfo, MemberState, Rank, Role};
use crate::wire::{Beat, Grant, Message};
use members::Peer;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use tracing::debug;

/// Most sent-beat timestamps kept (they date echoed votes); old ones are pruned by age first.
const MAX_SENT: usize = 4096;
/// Most refused incarnations remembered (bounded against floods).
const MAX_REFUSED: usize = 1024;

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
}

/// A vote this node has given and must honour until `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Promise {
    grant: Grant,
    until: Millis,
}

/// The election state of one node.
#[derive(Debug)]
pub struct Election {
    cfg: Config,
    me: MemberInfo,
    started: Millis,
    peers: BTreeMap<MemberId, Peer>,
    refused: BTreeSet<MemberId>,
    /// Our beat counter and when each recent beat was sent.
    seq: u64,
    sent: VecDeque<(u64, Millis)>,
    next_beat: Millis,
    /// The vote we gave another member (our own candidacy needs no promise).
    promise: Option<Promise>,
    /// The vote we currently put in beats.
    grant: Option<Grant>,
    /// Highest epoch we ever voted for, and that vote: a new vote needs a higher epoch (or
    /// is the same vote again), so no two masterships ever share an epoch.
    last_granted_epoch: u64,
    last_grant: Option<Grant>,
    /// The epoch we propose or hold as master.
    candidacy: Option<u64>,
    /// Highest epoch we ever proposed: never reused.
    last_proposed: u64,
    /// A voter we reach has voted at an epoch at least as high as our pending candidacy: it
    /// cannot vote for us at that epoch, so propose a higher one.
    bump: bool,
    /// Highest `voted` seen in a beat: a new candidacy goes above it.
    max_voted_seen: u64,
    /// Beats received so far, and that count when we proposed our candidacy: we take
    /// mastership only after every alive member has spoken since (so we know its epochs).
    beats_received: u64,
    candidacy_beat_no: u64,
    /// Highest epoch known from votes given, masterships seen, and peers' beats. Our own
    /// pending proposals are not in it: proposals that never became masterships must not
    /// drive other candidates into an endless bidding.
    max_epoch: u64,
    is_master: bool,
    lease_until: Millis,
    /// Set when we lost a lease involuntarily: until contacts are fresh again we are inquorate.
    inquorate_since: Option<Millis>,
    dispatching: bool,
    left_starting: bool,
    role: Role,
    master: Option<MemberId>,
    /// Last master announced to hooks/followers (only `Some` values are announced).
    announced_master: Option<MemberId>,
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
            peers: BTreeMap::new(),
            refused: BTreeSet::new(),
            seq: 0,
            sent: VecDeque::new(),
            next_beat: now,
            promise: None,
            grant: None,
            last_granted_epoch: 0,
            last_grant: None,
            candidacy: None,
            last_proposed: 0,
            bump: false,
            max_voted_seen: 0,
            beats_received: 0,
            candidacy_beat_no: 0,
            max_epoch: 0,
            is_master: false,
            lease_until: Millis(0),
            inquorate_since: None,
            dispatching: false,
            left_starting: false,
            role: Role::Starting,
            master: None,
            announced_master: None,
            outputs: VecDeque::new(),
            now,
        };
        e.max_epoch = remembered.epoch;
        e.last_granted_epoch = remembered.epoch;
        e.last_grant = remembered.vote;
        for (info, state) in remembered.members {
            if info.id == e.me.id || info.name == e.me.name || state == MemberState::Dispatched {
                continue;
            }
            if e.peers.values().any(|p| p.info.name == info.name) {
                continue;
            }
            e.peers
                .insert(info.id, Peer::new(info, MemberState::Lost, None));
        }
        e
    }

    /// Feeds one input. Drain [`Election::poll_output`] afterwards.
    pub fn handle(&mut self, now: Millis, input: Input) {
        self.now = self.now.max(now);
        if self.dispatching {
            return;
        }
        match input {
            Input::Tick => {}
            Input::Hello(info) => self.handle_hello(now, info),
            Input::Message { from, msg } => match msg {
                Message::Hello(info) if info.id == from => self.handle_hello(now, info),
                Message::Beat(beat) => self.handle_beat(now, from, beat),
                Message::Leave { epoch } => self.handle_leave(from, epoch),
                Message::Forget { id } => self.handle_forget_msg(id),
                Message::Hello(_) | Message::Peers { .. } => {}
            },
            Input::Crashed(id) => self.handle_crashed(id),
        }
        self.update(now);
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
        if self.is_master {
            consider(self.lease_until);
        }
        if let Some(p) = self.promise {
            consider(p.until);
        }
        let s = self.cfg.silence_ms;
        for p in self.peers.values() {
            if p.state == MemberState::Alive {
                if let Some(t) = p.last_heard {
                    consider(t + s);
                }
                if let Some(t) = p.heard_me {
                    consider(t + s);
                }
            }
        }
        consider(self.started + self.cfg.startup_ms);
        consider(self.started + self.quiet_ms());
        if !self.left_starting {
            consider(self.started + self.cfg.startup_ms + s);
        }
        d
    }

    /// This node's role as last computed.
    pub fn role(&self) -> Role {
        self.role
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
        self.max_epoch
    }

    /// When master: the end of the lease (the driver refuses to act as master after it).
    pub fn master_until(&self) -> Option<Millis> {
        self.is_master.then_some(self.lease_until)
    }

    /// The epoch of the current mastership, when master.
    pub fn master_epoch(&self) -> Option<u64> {
        if self.is_master { self.candidacy } else { None }
    }

    /// The master this node follows (itself when master).
    pub fn master(&self) -> Option<MemberId> {
        self.master
    }

    /// The vote this node currently gives another member, with its promise end.
    pub fn promise(&self) -> Option<(Grant, Millis)> {
        self.promise.map(|p| (p.grant, p.until))
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
        let (counted, padded) = self.counted();
        (counted, padded, self.top())
    }

    /// Members worth remembering across a restart (all but dispatched ones).
    pub fn memory(&self) -> Memory {
        Memory {
            members: self
                .peers
                .values()
                .filter(|p| p.state != MemberState::Dispatched)
                .map(|p| (p.info.clone(), p.state))
                .collect(),
            epoch: self
                .max_epoch
                .max(self.last_granted_epoch)
                .max(self.last_proposed),
            vote: self.last_grant,
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
        self.is_master = false;
        self.candidacy = None;
        self.grant = None;
        let epoch = self.max_epoch;
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
        let id = p.info.id;
        self.peers.remove(&id);
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
        let (counted, _) = self.counted();
        let mut rows: Vec<(Rank, control::Member)> = Vec::with_capacity(self.peers.len() + 1);
        rows.push((
            self.me.rank.clone(),
            control::Member {
                name: self.me.name.clone(),
                address: self.me.addr.clone(),
                port: self.me.port,
                state: MemberState::Alive,
                role: Some(self.role),
                counted: !self.dispatching,
                witness: self.me.witness,
                is_self: true,
                last_heard_ms: None,
            },
        ));
        for p in self.peers.values() {
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
                    counted: p.counted(self.cfg.expect),
                    witness: p.info.witness,
                    is_self: false,
                    last_heard_ms: p.last_heard.map(|t| now.since(t)),
                },
            ));
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        Status {
            name: self.me.name.clone(),
            role: self.role,
            epoch: self.max_epoch,
            master: self.master.and_then(|id| self.name_of(id)),
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
        }
    }

    fn handle_beat(&mut self, now: Millis, from: MemberId, beat: Beat) {
        let lease = self.cfg.lease_ms;
        let sent_at = self.sent_at(beat.echo);
        let Some(p) = self.peers.get_mut(&from) else {
            debug!(from, "beat from an unknown member ignored");
            return;
        };
        // A dispatched or certainly crashed incarnation never comes back (a restart is a new
        // incarnation): a beat from it can only be one that was still in flight.
        if p.state == MemberState::Dispatched || p.crashed {
            debug!(from, "late beat from a member that left or crashed ignored");
            return;
        }
        if p.state == MemberState::Lost {
            p.state = MemberState::Alive;
            p.crashed = false;
            self.outputs.push_back(Output::Member {
                name: p.info.name.clone(),
                change: MemberChange::Returned,
            });
        }
        p.last_heard = Some(now);
        self.beats_received += 1;
        p.beat_no = self.beats_received;
        if beat.seq > p.their_seq {
            p.their_seq = beat.seq;
            p.their_seq_at = now;
        }
        if let Some(t) = sent_at {
            if p.heard_me.is_none_or(|h| h < t) {
                p.heard_me = Some(t);
            }
        }
        let mine = self.candidacy.map(|epoch| Grant {
            candidate: self.me.id,
            epoch,
        });
        // A vote backs us from when we sent the beat it echoes. A voter that stops voting for
        // us still backs us until then: its promise (which lasts longer) keeps it from voting
        // for anyone else, unless we release it ourselves.
        if let (Some(g), Some(m), Some(t)) = (beat.grant, mine, sent_at) {
            if g == m {
                p.support_until = p.support_until.max(t + lease);
            }
        }
        let echo_missing = beat.echo == 0 || sent_at.is_none();
        if self.max_epoch < beat.epoch {
            self.max_epoch = beat.epoch;
        }
        if let (Some(c), Some(theirs)) = (self.candidacy, beat.candidacy) {
            // A real mastership at our epoch or above: ours must go above it. (Masters do not
            // bid, so this cannot start a bidding war.)
            if beat.master && theirs >= c && !self.is_master {
                self.bump = true;
            }
        }
        let reachable = p.reachable(now, self.cfg.silence_ms, self.inquorate_since);
        if reachable {
            self.max_voted_seen = self.max_voted_seen.max(beat.voted);
            if let Some(c) = self.candidacy {
                // A competing candidate (its own candidacy set) will not vote for us whatever
                // our epoch: outbidding it would only start a bidding war.
                if !self.is_master
                    && beat.voted >= c
                    && beat.grant != mine
                    && beat.candidacy.is_none()
                {
                    self.bump = true;
                }
            }
        }
        if let Some(pr) = self.promise {
            if pr.grant.candidate == from && beat.candidacy != Some(pr.grant.epoch) {
                debug!(
                    from,
                    epoch = pr.grant.epoch,
                    "candidate renounced; promise released"
                );
                self.promise = None;
            }
        }
        p.beat = Some(beat);
        if echo_missing {
            // It has not heard us (yet, or since long): answer at once so that both sides
            // see the link working within one round trip.
            self.send_beat_to(now, from);
        }
    }

    // ----- the decision -------------------------------------------------------------------

    /// Re-evaluates everything after an input: silence, promises, vote, candidacy, lease,
    /// role; sends beats when due or when something changed.
    fn update(&mut self, now: Millis) {
        self.detect_silence(now);
        self.admit(now);
        if self.promise.is_some_and(|p| p.until <= now) {
            self.promise = None;
        }
        let target = self.vote_target(now);
        let mut changed = false;

        // Our own candidacy.
        if target == Some(self.me.id) {
            // Stale: a voter cannot vote for us at this epoch, or we learnt of a mastership at
            // this epoch or above since we proposed (a thawed node proposes from what it knew
            // before its pause).
            let stale = self.bump && !self.is_master && self.candidacy.is_some();
            if (self.candidacy.is_none() || stale) && self.promise.is_none() {
                let epoch = self
                    .max_epoch
                    .max(self.last_proposed)
                    .max(self.last_granted_epoch)
                    .max(self.max_voted_seen)
                    + 1;
                self.last_proposed = epoch;
                // Standing is voting for ourselves: we never vote for anyone at this epoch or
                // below again, so two candidacies of one epoch can never both win.
                self.last_granted_epoch = epoch;
                self.last_grant = None;
                self.candidacy = Some(epoch);
                self.candidacy_beat_no = self.beats_received;
                self.outputs.push_back(Output::Remember);
                for p in self.peers.values_mut() {
                    p.support_until = Millis(0);
                }
                debug!(epoch, "proposing candidacy");
                changed = true;
            }
        } else if self.candidacy.is_some() {
            debug!(?target, "renouncing candidacy");
            self.candidacy = None;
            if self.is_master {
                // Voluntary hand-over: step down first; our next beats release the voters.
                self.is_master = false;
            }
            changed = true;
        }

        self.bump = false;

        // Our vote for someone else.
        let grant = match target {
            Some(t) if t != self.me.id && self.may_vote(now) => self.peers.get(&t).and_then(|p| {
                let epoch = p.beat.as_ref()?.candidacy?;
                let g = Grant {
                    candidate: t,
                    epoch,
                };
                let renewing = self.promise.is_some_and(|pr| pr.grant == g);
                // Backing a sitting master at its own epoch makes no new mastership, so it is
                // allowed even if we voted at that epoch or above meanwhile (say for ourselves
                // while cut off): otherwise a healed partition would unseat it for nothing.
                let sitting = p.beat.as_ref().is_some_and(|b| b.master);
                let free = self.promise.is_none()
                    && (epoch > self.last_granted_epoch || self.last_grant == Some(g) || sitting);
                (renewing || free).then_some(g)
            }),
            _ => None,
        };
        // Invariant: a vote we put in beats is always backed by our promise.
        if let Some(g) = grant {
            if self.promise.map(|p| p.grant) != Some(g) {
                if g.epoch > self.last_granted_epoch {
                    self.outputs.push_back(Output::Remember);
                }
                self.last_granted_epoch = self.last_granted_epoch.max(g.epoch);
                self.last_grant = Some(g);
                self.max_epoch = self.max_epoch.max(g.epoch);
                let from = self.peers.get(&g.candidate).map_or(now, |p| p.their_seq_at);
                self.promise = Some(Promise {
                    grant: g,
                    until: from + self.cfg.lease_ms + self.cfg.drift_ms,
                });
            }
        }
        if grant != self.grant {
            changed = true;
            self.grant = grant;
        }

        // Our lease. Once it has run out the mastership is over, even if a renewal arrives in
        // the same instant: the next one is a new mastership with a new epoch.
        let was_master = self.is_master;
        let lapsed = was_master && self.lease_until <= now;
        self.is_master = match self.candidacy {
            Some(_) if !lapsed => {
                self.lease_until = self.lease_end(now);
                self.lease_until > now && (was_master || self.everyone_spoke())
            }
            _ => false,
        };
        if was_master && !self.is_master && self.candidacy.is_some() {
            // The votes ran out: we could not renew a quorum. Drop the candidacy (voters are
            // released by it) and stay inquorate until contacts are fresh again.
            debug!("lease expired; stepping down");
            self.candidacy = None;
            self.inquorate_since = Some(now);
        }
        if was_master != self.is_master {
            changed = true;
        }
        if self.is_master {
            if let Some(e) = self.candidacy {
                self.max_epoch = self.max_epoch.max(e);
            }
        }

        // Peers show our role in their tables: tell them at once.
        let role_before = self.role;
        self.update_role(now);
        changed |= self.role != role_before;

        if changed || now >= self.next_beat {
            self.send_beats(now);
        }
    }

    fn eligible_now(&self, now: Millis) -> bool {
        !self.me.witness
            && !self.dispatching
            && self.may_vote(now)
            && now >= self.started + self.cfg.startup_ms
    }

    fn may_vote(&self, now: Millis) -> bool {
        now >= self.started + self.quiet_ms()
    }

    /// Whom we vote for: the best-ranked eligible member we reach both ways (ourselves
    /// included), or the sitting master with `--no-preempt`.
    fn vote_target(&self, now: Millis) -> Option<MemberId> {
        let s = self.cfg.silence_ms;
        let fresh = self.inquorate_since;
        if !self.cfg.preempt {
            if self.is_master {
                return Some(self.me.id);
            }
            if let Some(p) = self
                .peers
                .values()
                .filter(|p| {
                    p.admitted
                        && p.claims_master(now, s)
                        && p.reachable(now, s, fresh)
                        && p.eligible()
                })
                .min_by(|a, b| a.rank().cmp(b.rank()))
            {
                return Some(p.info.id);
            }
        }
        let mut best: Option<(&Rank, MemberId)> = None;
        // After losing a lease (cut off, or frozen) we stand again only once fresh contacts
        // form a quorum: by then their beats told us the epochs we missed.
        let may_stand = self.inquorate_since.is_none() || self.reachable_quorum(now);
        if self.eligible_now(now) && may_stand {
            best = Some((&self.me.rank, self.me.id));
        }
        for p in self.peers.values() {
            if p.admitted
                && p.eligible()
                && p.reachable(now, s, fresh)
                && best.is_none_or(|(r, _)| p.rank() < r)
            {
                best = Some((p.rank(), p.info.id));
            }
        }
        let (best_rank, best_id) = best?;
        // While nobody is master yet, wait for a better member still in its discovery window
        // rather than make a master that would be preempted a moment later.
        let someone_master = self.is_master || self.peers.values().any(|p| p.claims_master(now, s));
        if !someone_master {
            let better_starting = self.peers.values().any(|p| {
                p.admitted
                    && !p.info.witness
                    && p.rank() < best_rank
                    && p.reachable(now, s, fresh)
                    && p.beat.as_ref().is_some_and(|b| b.role == Role::Starting)
            });
            if better_starting {
                return None;
            }
        }
        Some(best_id)
    }

    /// Every alive member sent a beat since we proposed: we know the epochs it voted for, so
    /// ours is above them (a member that just rejoined may know a newer epoch than we do).
    fn everyone_spoke(&self) -> bool {
        self.peers
            .values()
            .all(|p| p.state != MemberState::Alive || p.beat_no > self.candidacy_beat_no)
    }

    /// (counted members, whether `--expect` padded the count).
    ///
    /// Members remembered from an earlier run but not heard from since also disable the
    /// exact-half win: we do not know what they did while we were down (which epochs, which
    /// votes), so only a strict majority decides until they speak or are forgotten.
    fn counted(&self) -> (usize, bool) {
        let mut known = 1;
        let mut unheard = false;
        for p in self.peers.values().filter(|p| p.counted(self.cfg.expect)) {
            known += 1;
            unheard |= p.last_heard.is_none();
        }
        (
            known.max(self.cfg.expect),
            known < self.cfg.expect || unheard,
        )
    }

    /// The id of the best-ranked counted member.
    fn top(&self) -> MemberId {
        let mut best = (&self.me.rank, self.me.id);
        for p in self.peers.values() {
            if p.counted(self.cfg.expect) && p.rank() < best.0 {
                best = (p.rank(), p.info.id);
            }
        }
        best.1
    }

    /// The instant our current candidacy stops holding a quorum of valid votes (≤ now: none).
    fn lease_end(&self, now: Millis) -> Millis {
        let (counted, padded) = self.counted();
        let top = self.top();
        // Our own vote never runs out while we are a candidate.
        let mut votes: Vec<(Millis, bool)> = vec![(Millis::NEVER, top == self.me.id)];
        let probation = self.probation_ms();
        for p in self.peers.values() {
            let settled = p.admitted_at.is_none_or(|t| t + probation <= now);
            if p.counted(self.cfg.expect) && settled && p.support_until > now {
                votes.push((p.support_until, top == p.info.id));
            }
        }
        votes.sort();
        // Votes run out in order; the quorum holds until the first expiry that breaks it.
        let mut i = 0;
        while i < votes.len() {
            let remaining = &votes[i..];
            let top_in = remaining.iter().any(|v| v.1);
            if !quorum::has_quorum(counted, remaining.len(), top_in, padded) {
                return if i == 0 { now } else { votes[i - 1].0 };
            }
            i += 1;
        }
        Millis::NEVER
    }

    fn update_role(&mut self, now: Millis) {
        let s = self.cfg.silence_ms;
        let master = if self.is_master {
            Some(self.me.id)
        } else {
            // Prefer the member we vote for; else any best-ranked member claiming mastership.
            let voted = self.grant.map(|g| g.candidate);
            let claims: Vec<&Peer> = self
                .peers
                .values()
                .filter(|p| p.claims_master(now, s))
                .collect();
            claims
                .iter()
                .find(|p| Some(p.info.id) == voted)
                .or_else(|| claims.iter().min_by(|a, b| a.rank().cmp(b.rank())))
                .map(|p| p.info.id)
        };
        if master.is_some() && !self.is_master {
            self.inquorate_since = None;
        }
        let role = if self.dispatching {
            Role::Dispatching
        } else if self.is_master {
            Role::Master
        } else if !self.left_starting
            && master.is_none()
            && now < self.started + self.cfg.startup_ms + s
        {
            Role::Starting
        } else if master.is_some() {
            Role::Slave
        } else if self.reachable_quorum(now) {
            self.inquorate_since = None;
            Role::Slave
        } else {
            Role::Inquorate
        };
        if role != Role::Starting {
            self.left_starting = true;
        }
        self.set_role(role, master);
    }

    fn reachable_quorum(&self, now: Millis) -> bool {
        let (counted, padded) = self.counted();
        let top = self.top();
        let mut n = 1;
        let mut top_in = top == self.me.id;
        for p in self.peers.values() {
            if p.counted(self.cfg.expect)
                && p.reachable(now, self.cfg.silence_ms, self.inquorate_since)
            {
                n += 1;
                top_in |= top == p.info.id;
            }
        }
        quorum::has_quorum(counted, n, top_in, padded)
    }

    fn set_role(&mut self, role: Role, master: Option<MemberId>) {
        let previous = self.role;
        self.master = master;
        if role != previous {
            self.role = role;
            if role != Role::Starting {
                if master.is_some() {
                    self.announced_master = master;
                }
                self.outputs.push_back(Output::RoleChanged {
                    role,
                    previous,
                    master: master.and_then(|id| self.name_of(id)),
                    epoch: self.max_epoch,
                    master_until: self.master_until(),
                });
            }
        } else if role == Role::Slave && master.is_some() && master != self.announced_master {
            self.announced_master = master;
            self.outputs.push_back(Output::MasterChanged {
                master: master.and_then(|id| self.name_of(id)),
                epoch: self.max_epoch,
            });
        }
    }

    fn votes(&self, now: Millis) -> usize {
        if self.is_master {
            return 1 + self
                .peers
                .values()
                .filter(|p| p.counted(self.cfg.expect) && p.support_until > now)
                .count();
        }
        let Some(m) = self.master else {
            return 0;
        };
        let mine = usize::from(self.grant.is_some_and(|g| g.candidate == m));
        mine + self
            .peers
            .values()
            .filter(|p| {
                p.state == MemberState::Alive
                    && p.beat.as_ref().is_some_and(|b| {
                        (b.master && p.info.id == m) || b.grant.is_some_and(|g| g.candidate == m)
                    })
            })
            .count()
    }

    fn name_of(&self, id: MemberId) -> Option<String> {
        if id == self.me.id {
            return Some(self.me.name.clone());
        }
        self.peers.get(&id).map(|p| p.info.name.clone())
    }

    /// After a start, this long passes before we vote or stand: any promise our previous
    /// incarnation gave (it may have crashed a moment ago) has surely run out by then.
    fn quiet_ms(&self) -> u64 {
        self.cfg.lease_ms + self.cfg.drift_ms
    }
}
