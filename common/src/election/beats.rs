//! Heartbeats: numbering and dating the beats we send (a vote is dated by the beat it
//! echoes), building each peer's beat, and renewing our promise as our vote goes out.

use super::Output;
use super::members::Peer;
use super::{Election, MAX_SENT};
use crate::time::Millis;
use crate::types::{MemberId, MemberState};
use crate::wire::{Beat, Message};

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

    pub(super) fn beat_for(&self, seq: u64, to: &Peer, now: Millis, digests: (u64, u64)) -> Beat {
        Beat {
            seq,
            echo: to.their_seq,
            role: self.role,
            eligible: self.eligible_now(now),
            candidacy: self.candidacy,
            master: self.is_master,
            grant: self.grant,
            epoch: self.max_epoch,
            voted: self.last_granted_epoch,
            voting: self.may_vote(now),
            following: self.master,
            view: digests.0,
            base: digests.1,
        }
    }

    /// A round of beats to every linked peer (all under one sequence number).
    pub(super) fn send_beats(&mut self, now: Millis) {
        let to: Vec<MemberId> = self.linked_peers().collect();
        self.send_beats_to(now, &to);
        self.next_beat = now + self.cfg.heartbeat_ms;
    }

    /// One beat to one peer, outside the rhythm (an answer to a beat that does not echo us).
    pub(super) fn send_beat_to(&mut self, now: Millis, id: MemberId) {
        self.send_beats_to(now, &[id]);
    }

    fn send_beats_to(&mut self, now: Millis, to: &[MemberId]) {
        let seq = self.next_seq(now);
        let view = self.digests();
        for &id in to {
            if let Some(p) = self.peers.get(&id) {
                let beat = self.beat_for(seq, p, now, view);
                self.outputs.push_back(Output::Send {
                    to: id,
                    msg: Message::Beat(beat),
                });
            }
        }
        self.extend_promise();
    }

    /// Every beat that carries our vote renews the promise, dated from when we received the
    /// candidate's beat we echo (the candidate dates it from when it sent that beat: earlier).
    pub(super) fn extend_promise(&mut self) {
        if let (Some(g), Some(pr)) = (self.grant, self.promise.as_mut()) {
            if pr.grant == g {
                if let Some(p) = self.peers.get(&g.candidate) {
                    let until = p.their_seq_at + self.cfg.lease_ms + self.cfg.drift_ms;
                    pr.until = pr.until.max(until);
                }
            }
        }
    }
}
