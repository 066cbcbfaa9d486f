//! Heartbeats: numbering and dating the beats we send (a vote is dated by the beat it
//! echoes), building each peer's beat, and renewing our promise as our vote goes out.

use super::Output;
use super::cadence::Cadence;
use super::members::Peer;
use super::{Election, MAX_EPOCH, MAX_SENT};
use crate::control::MemberChange;
use crate::time::Millis;
use crate::types::{MemberId, MemberState};
use crate::wire::Grant;
use crate::wire::{Beat, Message};
use tracing::debug;

impl Election {
    pub(super) fn linked_peers(&self) -> impl Iterator<Item = MemberId> + '_ {
        self.peers
            .values()
            .filter(|p| p.state != MemberState::Dispatched && !p.crashed && p.last_heard.is_some())
            .map(|p| p.info.id)
    }

    pub(super) fn next_seq(&mut self, now: Millis) -> u64 {
        self.seq += 1;
        let horizon = self.cfg.silence_ms + self.cfg.lease_ms;
        while self.sent.len() >= MAX_SENT
            || self.sent.front().is_some_and(|&(_, t)| t + horizon < now)
        {
            self.sent.pop_front();
        }
        self.sent.push_back((self.seq, now));
        self.seq
    }

    pub(super) fn sent_at(&self, seq: u64) -> Option<Millis> {
        if seq == 0 {
            return None;
        }
        self.sent
            .binary_search_by_key(&seq, |&(s, _)| s)
            .ok()
            .map(|i| self.sent[i].1)
    }

    pub(super) fn beat_for(
        &self,
        seq: u64,
        to: &Peer,
        now: Millis,
        digests: (u64, u64),
        cadence: Cadence,
    ) -> Beat {
        Beat {
            seq,
            echo: to.their_seq,
            role: self.roles.role,
            eligible: self.eligible_now(now),
            priority: self.me.rank.priority,
            candidacy: self.cand.current,
            master: self.lease.is_master,
            grant: self.votes.grant,
            epoch: self.cand.max_epoch,
            voted: self.votes.last_granted_epoch,
            voting: self.may_vote(now),
            // Counted from when we received the beat we echo (the receiver dates it from when
            // it sent that one, which was earlier still): a bound as tight as the echo is old.
            quiet_ms: (self.started + self.quiet_ms()).since(if to.their_seq > 0 {
                to.their_seq_at.min(now)
            } else {
                now
            }),
            following: self.roles.master,
            view: digests.0,
            base: digests.1,
            want: cadence.want,
            gap_ms: cadence.gap_ms,
        }
    }

    /// A round of beats (all under one sequence number): to every linked peer we beat every
    /// heartbeat, and a probe to the quiet peer whose turn it is (cadence.rs).
    /// Returns whom it went to (sorted).
    pub(super) fn send_beats(&mut self, now: Millis) -> Vec<MemberId> {
        let to: Vec<MemberId> = self.linked_peers().collect();
        let rotate = now >= self.next_beat;
        let sent = self.send_beats_to(now, &to, rotate, false);
        // Due a heartbeat on, about when the master's next beat arrives: whichever comes
        // first starts the round. (Leaving a quarter heartbeat more, so that the master's
        // beat always starts it, was tried: the slaves' beats then all reached the master
        // just after its round, one wake-up each, and an idle master of five cost 0.25 % of
        // a core instead of 0.18 %, the slaves no less.)
        self.next_beat = now + self.cfg.heartbeat_ms;
        sent
    }

    /// Beats outside the rhythm to the peers whose beats in this batch did not echo one of
    /// ours (`sent`: whom this batch's round reached already), so that both sides see the
    /// link working within one round trip. One round for all of them: while many members
    /// start together every beat is such a one, and a round per beat (each building the
    /// plan and the digests over every member) was most of a 100-node cluster's CPU.
    pub(super) fn answer_unechoed(&mut self, now: Millis, sent: &[MemberId]) {
        if self.answer.is_empty() {
            return;
        }
        let due: Vec<MemberId> = std::mem::take(&mut self.answer)
            .into_iter()
            .filter(|id| sent.binary_search(id).is_err() && self.peers.contains_key(id))
            .collect();
        if !due.is_empty() {
            self.send_beats_to(now, &due, false, true);
        }
    }

    /// Beats to those of `to` that the cadence plan says (all of them when `all`); returns
    /// whom they went to, in the order of `to`.
    fn send_beats_to(
        &mut self,
        now: Millis,
        to: &[MemberId],
        rotate: bool,
        all: bool,
    ) -> Vec<MemberId> {
        let plan = self.plan_round(now, rotate);
        let view = self.digests();
        let mut plans: Vec<(MemberId, Cadence)> = Vec::with_capacity(to.len());
        for &id in to {
            if let Some(p) = self.peers.get(&id) {
                // While we cannot vote, our first beat to a member waits (a heartbeat at
                // most) for one of its own to echo: a beat that echoes nothing cannot be
                // dated, and a sitting master must then count us as if we could vote already
                // (`Peer::quiet_until`), which a quorum of newcomers would end.
                let undated = !self.may_vote(now)
                    && p.their_seq == 0
                    && now < p.first_heard + self.cfg.heartbeat_ms;
                let c = self.cadence(&plan, p, view, now);
                if (c.send || all) && !undated {
                    plans.push((id, c));
                }
            }
        }
        let ids: Vec<MemberId> = plans.iter().map(|&(id, _)| id).collect();
        let seq = self.next_seq(now);
        self.note_shown_view(now, &ids);
        // Showing a view may have changed the digests (a shown view binds us).
        let view = self.digests();
        self.beat_digests = view;
        for (id, c) in plans {
            // Whether we asked for its beats and the gap we declared are no part of the view:
            // the cached digests stay.
            if let Some(p) = self.peers.untracked_mut().get_mut(&id) {
                p.told_gap = c.gap_ms;
                p.told_at = now;
                p.wanted_since = if c.want {
                    Some(p.wanted_since.unwrap_or(now))
                } else {
                    None
                };
            }
            if let Some(p) = self.peers.get(&id) {
                let beat = self.beat_for(seq, p, now, view, c);
                self.outputs.push_back(Output::Send {
                    to: id,
                    msg: Message::Beat(beat),
                });
            }
        }
        self.extend_promise();
        ids
    }

    /// Every beat that carries our vote renews the promise, dated from when we received the
    /// candidate's beat we echo (the candidate dates it from when it sent that beat: earlier).
    pub(super) fn extend_promise(&mut self) {
        if let (Some(g), Some(pr)) = (self.votes.grant, self.votes.promise.as_mut()) {
            if pr.grant == g {
                if let Some(p) = self.peers.get(&g.candidate) {
                    let until = p.their_seq_at + self.cfg.lease_ms + self.cfg.drift_ms;
                    pr.until = pr.until.max(until);
                }
            }
        }
    }

    pub(super) fn handle_beat(&mut self, now: Millis, from: MemberId, beat: Beat) {
        let lease = self.cfg.lease_ms;
        let quiet_bound = beat
            .quiet_ms
            .min(self.quiet_ms())
            .saturating_sub(self.cfg.drift_ms);
        let sent_at = self.sent_at(beat.echo);
        let probe = self.is_quiet_probe(beat.gap_ms);
        let reach = self.reach();
        // A beat of a member already in the view as alive changes nothing the view is
        // computed from (it is heard, alive, not crashed nor replaced, and in the view by a
        // beat before or by its hello): the table's generation stays, and the cached digests
        // with it (view.rs, `MemoKey`). The first beat of a member in the view by its hello
        // is one of these: while members start together that is most first beats, and each
        // recomputed the digests (62,250 of 124,741 recomputes while 250 start in the
        // simulator).
        let routine = self.peers.get(&from).is_some_and(|p| {
            (p.had_beat || self.in_view(p, now))
                && p.state == MemberState::Alive
                && !p.crashed
                && !p.superseded
                && p.last_heard.is_some()
        });
        let Some(p) = self.peers.borrow_mut_if_tracked(routine).get_mut(&from) else {
            debug!(from, "beat from an unknown member ignored");
            return;
        };
        // A dispatched or certainly crashed incarnation never comes back (a restart is a new
        // incarnation): a beat from it can only be one that was still in flight.
        if p.state == MemberState::Dispatched || p.crashed || p.superseded {
            debug!(
                from,
                "late beat from a member that left, crashed or was replaced ignored"
            );
            return;
        }
        // Epochs only grow by one per mastership: a number near the top of the range is
        // forged or corrupt, and taking it would stop every later election.
        let implausible = |e: u64| e > MAX_EPOCH;
        if implausible(beat.epoch)
            || implausible(beat.voted)
            || beat.candidacy.is_some_and(implausible)
            || beat.grant.is_some_and(|g| implausible(g.epoch))
        {
            debug!(from, "beat with an implausible epoch ignored");
            return;
        }
        p.had_beat = true;
        // Heard in person now, not only from someone's list: without this a member first
        // learned from a list kept this node beating everyone every heartbeat for good.
        p.gossiped = false;
        Election::note_gap(p, beat.gap_ms);
        // Only whom we vote for follows a new priority; the tie-break ignores it (types.rs).
        p.info.rank.priority = beat.priority;
        if p.state == MemberState::Lost {
            p.state = MemberState::Alive;
            p.crashed = false;
            self.outputs.push_back(Output::Member {
                name: p.info.name.clone(),
                change: MemberChange::Returned,
            });
        }
        p.last_heard = Some(now);
        self.cand.beats_received += 1;
        p.beat_no = self.cand.beats_received;
        if beat.seq > p.their_seq {
            p.their_seq = beat.seq;
            p.their_seq_at = now;
        }
        if let Some(t) = sent_at {
            if p.heard_me.is_none_or(|h| h < t) {
                p.heard_me = Some(t);
            }
        }
        let mine = self.cand.current.map(|epoch| Grant {
            candidate: self.me.id,
            epoch,
        });
        // A vote backs us from when we sent the beat it echoes. A voter that stops voting for
        // us still backs us until then: its promise (which lasts longer) keeps it from voting
        // for anyone else, unless we release it ourselves.
        // A pledge (a vote given while the voter is still quiet after its start) backs
        // nobody yet: it only extends the voter's quiet period below.
        let granted = beat.grant.is_some() && beat.grant == mine;
        let pledged = granted && !beat.voting;
        if let (true, Some(t)) = (granted && beat.voting, sent_at) {
            p.support_until = p.support_until.max(t + lease);
        }
        let echo_missing = beat.echo == 0 || sent_at.is_none();
        if self.cand.max_epoch < beat.epoch {
            self.cand.max_epoch = beat.epoch;
        }
        if let (Some(c), Some(theirs)) = (self.cand.current, beat.candidacy) {
            // A real mastership at our epoch or above: ours must go above it. (Masters do not
            // bid, so this cannot start a bidding war.)
            if beat.master && theirs >= c && !self.lease.is_master {
                self.cand.bump = true;
            }
        }
        let reachable = p.reachable(now, &reach);
        if reachable {
            self.cand.max_voted_seen = self.cand.max_voted_seen.max(beat.voted);
            if let Some(c) = self.cand.current {
                // A competing candidate (its own candidacy set) will not vote for us whatever
                // our epoch: outbidding it would only start a bidding war.
                if !self.lease.is_master
                    && beat.voted >= c
                    && beat.grant != mine
                    && beat.candidacy.is_none()
                {
                    self.cand.bump = true;
                }
            }
        }
        if let Some(pr) = self.votes.promise {
            if pr.grant.candidate == from && beat.candidacy != Some(pr.grant.epoch) {
                debug!(
                    from,
                    epoch = pr.grant.epoch,
                    "candidate renounced; promise released"
                );
                self.votes.promise = None;
            }
        }
        // Until when it surely cannot vote: it sent this beat after we sent the one it echoes,
        // quiet for `quiet_ms` more (capped at our own quiet period, less a drift for clock
        // rates).
        p.quiet_until = match sent_at {
            Some(t) if !beat.voting => t + quiet_bound,
            _ => Millis(0),
        };
        // A newcomer that pledged its vote to our mastership cannot vote for anyone else
        // either once its quiet period ends, until its promise runs out (it lasts longer
        // than `t + lease`, as a vote's does): our lease leaves it out until then, or until
        // its first vote arrives (docs/ALGORITHM.md, "A pledge"). Without this, newcomers
        // making up half the count or more, all able to vote from one instant (which we date
        // a drift early), made the master step down until their votes came a round trip
        // later. A beat without the pledge changes nothing: the promise still binds it. A
        // pledge to another of our epochs is void: we released it when we gave that one up.
        match (mine, sent_at) {
            (Some(m), Some(t)) if pledged && self.lease.is_master => {
                let until = match p.pledged {
                    Some((e, u)) if e == m.epoch => u.max(t + lease),
                    _ => t + lease,
                };
                p.pledged = Some((m.epoch, until));
            }
            _ if granted && beat.voting => p.pledged = None,
            _ => {}
        }
        // Every beat passes here: the list is searched only when the view just changed.
        if beat.view != 0
            && p.view() != Some(beat.view)
            && !p.views_seen.iter().any(|(d, _)| *d == beat.view)
        {
            if p.views_seen.len() > super::view::MAX_SHOWN {
                p.views_seen.remove(0);
            }
            p.views_seen.push((beat.view, now));
        }
        p.beat = Some(beat);
        // Phase lock: a slave's round follows its master's beat, not its own phase. Every
        // member's round then follows the master's, so the frames a node receives come in
        // one burst a heartbeat rather than one wake-up per peer at its own phase (the idle
        // cost of a daemon is its wake-ups), and the master's echoes are as fresh as can be.
        // Our round is due within half a heartbeat: it goes now. We beat less than half a
        // heartbeat ago (our phase is just ahead): the next round waits for the master's
        // next beat, with a quarter heartbeat of room for its jitter before our own timer.
        if self.roles.master == Some(from) && !self.lease.is_master {
            let hb = self.cfg.heartbeat_ms;
            self.next_beat = if now + hb / 2 >= self.next_beat {
                now
            } else {
                self.next_beat.max(now + hb + hb / 4)
            };
        }
        if echo_missing && (!probe || self.loud_to_all(now)) {
            // It has not heard us (yet, or since long): it gets a beat at the end of this
            // batch of inputs (`answer_unechoed`). Not a probe of a quiet pair while we are
            // settled ourselves: our own rhythm reaches it (every heartbeat if we want its
            // beats, in our rotation if not), and an answer to each probe doubled the
            // traffic of the quiet pairs of a large cluster, whose probes come seconds apart
            // and so never echo a beat we still remember. (A paced beat of a forming member
            // is answered: it may see us as quiet while it still needs to reach us.)
            self.answer.insert(from);
        }
        // It counts other members than we do, and neither view moved for a while: tell it
        // whom we count (membership.rs). (At most once per silence window per peer: ask that
        // first, the digest costs a pass over every member and this runs on every beat.)
        if let Some(theirs) = self.peers.get(&from).and_then(|p| p.view()) {
            if self.gossip_due(now, from) {
                self.note_view_of(now, from, theirs);
            }
        }
    }
}
