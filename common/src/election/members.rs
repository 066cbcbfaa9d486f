//! The member table: what this node knows of every other member.

use crate::time::Millis;
use crate::types::{MemberInfo, MemberState, Rank};
use crate::wire::Beat;

/// One other member, as seen from here.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    /// Its hello.
    pub info: MemberInfo,
    /// alive, lost or dispatched.
    pub state: MemberState,
    /// Lost by a certain crash: not counted (unless `--expect`).
    pub crashed: bool,
    /// When we last received anything from it (None: only remembered from an earlier run).
    pub last_heard: Option<Millis>,
    /// Our clock time at which we sent the newest beat it echoed: proof that it hears us.
    pub heard_me: Option<Millis>,
    /// The newest beat sequence number it sent us (we echo it).
    pub their_seq: u64,
    /// When we received `their_seq`: our promises to it are dated from here.
    pub their_seq_at: Millis,
    /// Its newest beat.
    pub beat: Option<Beat>,
    /// Until when its vote backs our current candidacy (our clock).
    pub support_until: Millis,
    /// Number (in our count of received beats) of its newest beat.
    pub beat_no: u64,
    /// Counted for quorum. A member that raises the count (new, or back after a certain
    /// crash or a dispatch) is admitted only while this node sees a quorum of the members it
    /// already counts: so only one side of a partition can ever grow its count.
    pub admitted: bool,
    /// When it was admitted (None: it took over a counted entry or was remembered). Its vote
    /// backs a master only after a probation, so that every member that talks to it learns
    /// the larger count first.
    pub admitted_at: Option<Millis>,
    /// When it left (dispatched): it is removed from the table `reap_dispatched_ms` later.
    pub left_at: Option<Millis>,
}

impl Peer {
    pub fn new(info: MemberInfo, state: MemberState, now: Option<Millis>) -> Self {
        Peer {
            info,
            state,
            crashed: false,
            last_heard: now,
            heard_me: None,
            their_seq: 0,
            their_seq_at: Millis(0),
            beat: None,
            support_until: Millis(0),
            beat_no: 0,
            admitted: true,
            admitted_at: None,
            left_at: None,
        }
    }

    pub fn rank(&self) -> &Rank {
        &self.info.rank
    }

    /// Counts for quorum: alive, or lost without a certain crash (with `--expect`, a certain
    /// crash counts too).
    pub fn counted(&self, expect: usize) -> bool {
        if !self.admitted {
            return false;
        }
        match self.state {
            MemberState::Alive => true,
            MemberState::Lost => !self.crashed || expect > 0,
            MemberState::Dispatched => false,
        }
    }

    /// Heard from it within `silence_ms` and it heard us within `silence_ms`, both after
    /// `fresh_after` (the inquorate latch): the link works both ways.
    pub fn reachable(&self, now: Millis, silence_ms: u64, fresh_after: Option<Millis>) -> bool {
        if self.state != MemberState::Alive {
            return false;
        }
        let recent = |t: Option<Millis>| match t {
            Some(t) => t + silence_ms > now && fresh_after.is_none_or(|f| t > f),
            None => false,
        };
        recent(self.last_heard) && recent(self.heard_me)
    }

    /// Claims to be master in its newest beat and was heard within `silence_ms`.
    pub fn claims_master(&self, now: Millis, silence_ms: u64) -> bool {
        self.state == MemberState::Alive
            && self.last_heard.is_some_and(|t| t + silence_ms > now)
            && self.beat.as_ref().is_some_and(|b| b.master)
    }

    /// May become master, as it said in its newest beat.
    pub fn eligible(&self) -> bool {
        !self.info.witness && self.beat.as_ref().is_some_and(|b| b.eligible)
    }
}
