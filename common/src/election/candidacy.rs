//! Candidacy and epochs: when we stand, with which epoch, and when we may take mastership.
//!
//! Invariant: epochs only grow, and a new candidacy's epoch is above every epoch we know,
//! voted for or proposed, and unique across partitions (a hybrid logical clock).

use super::{Election, MAX_EPOCH, Output};
use crate::time::Millis;
use crate::types::{MemberId, MemberState};
use tracing::debug;

/// Our candidacy and the epochs we know.
#[derive(Debug, Default)]
pub(super) struct Candidacy {
    /// The epoch we propose or hold as master.
    pub current: Option<u64>,
    /// Highest epoch we ever proposed: never reused.
    pub last_proposed: u64,
    /// A voter we reach has voted at an epoch at least as high as our pending candidacy: it
    /// cannot vote for us at that epoch, so propose a higher one.
    pub bump: bool,
    /// Highest `voted` seen in a beat: a new candidacy goes above it.
    pub max_voted_seen: u64,
    /// Beats received so far, and that count when we proposed our candidacy: we take
    /// mastership only after every alive member has spoken since (so we know its epochs).
    pub beats_received: u64,
    pub beat_no: u64,
    /// Highest epoch known from votes given, masterships seen, and peers' beats. Our own
    /// pending proposals are not in it: proposals that never became masterships must not
    /// drive other candidates into an endless bidding.
    pub max_epoch: u64,
    /// When we proposed the current candidacy.
    pub proposed_at: Millis,
}

impl Election {
    /// Proposes a candidacy when we are our own choice (again, above a mastership we learnt of
    /// since), renounces it when we are not. Returns whether anything changed.
    pub(super) fn update_candidacy(&mut self, now: Millis, target: Option<MemberId>) -> bool {
        let mut changed = false;
        // Our own candidacy.
        if target == Some(self.me.id) {
            // Stale: a voter cannot vote for us at this epoch, or we learnt of a mastership at
            // this epoch or above since we proposed (a thawed node proposes from what it knew
            // before its pause).
            // Or it is older than a lease: its epoch (a clock value) is then below those of
            // masterships that may have come and gone meanwhile elsewhere.
            let old = self.cand.proposed_at + self.cfg.lease_ms + self.cfg.silence_ms < now;
            let stale =
                (self.cand.bump || old) && !self.lease.is_master && self.cand.current.is_some();
            if (self.cand.current.is_none() || stale) && self.votes.promise.is_none() {
                let known = self
                    .cand
                    .max_epoch
                    .max(self.cand.last_proposed)
                    .max(self.votes.last_granted_epoch)
                    .max(self.cand.max_voted_seen);
                let epoch = self.fresh_epoch(now, known);
                self.cand.last_proposed = epoch;
                // Standing is voting for ourselves: we never vote for anyone at this epoch or
                // below again, so two candidacies of one epoch can never both win.
                self.votes.last_granted_epoch = epoch;
                self.votes.last_grant = None;
                self.cand.current = Some(epoch);
                self.cand.proposed_at = now;
                self.cand.beat_no = self.cand.beats_received;
                self.outputs.push_back(Output::Remember);
                for p in self.peers.values_mut() {
                    p.support_until = Millis(0);
                }
                debug!(epoch, "proposing candidacy");
                changed = true;
            }
        } else if self.cand.current.is_some() {
            debug!(?target, "renouncing candidacy");
            self.cand.current = None;
            if self.lease.is_master {
                // Voluntary hand-over: step down first; our next beats release the voters.
                self.lease.is_master = false;
            }
            changed = true;
        }

        changed
    }

    /// Every alive member sent a beat since we proposed: we know the epochs it voted for, so
    /// ours is above them (a member that just rejoined may know a newer epoch than we do).
    pub(super) fn everyone_spoke(&self) -> bool {
        self.peers
            .values()
            .all(|p| p.state != MemberState::Alive || p.beat_no > self.cand.beat_no)
    }

    /// A new epoch above `known`, and unique even across a partition (where `known` is all
    /// a side can go by): a hybrid logical clock, the wall-clock milliseconds times 1024 plus
    /// ten bits of our incarnation id, or `known + 1` if that is larger. Two sides that never
    /// heard of each other's masterships would otherwise both pick `known + 1`, and the epoch
    /// is the fencing token external systems rely on.
    pub(super) fn fresh_epoch(&self, now: Millis, known: u64) -> u64 {
        let wall_ms = self.me.started_ms.saturating_add(now.since(self.started));
        let clock = wall_ms.saturating_mul(1024) | (self.me.id & 1023);
        known.saturating_add(1).max(clock.min(MAX_EPOCH / 2))
    }

    /// After a start, this long passes before we vote or stand: any promise our previous
    /// incarnation gave (it may have crashed a moment ago) has surely run out by then.
    pub(super) fn quiet_ms(&self) -> u64 {
        self.cfg.promise_ms()
    }
}
