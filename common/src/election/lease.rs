//! The lease: a candidate is master while the votes still valid on its own clock form a
//! joint quorum (view.rs), and steps down the moment they stop forming one.
//!
//! Invariant: `is_master` implies `until > now`, and `until` is never later than the moment
//! the valid votes stop forming a quorum.

use super::Election;
use super::members::Peer;
use crate::time::Millis;
use crate::types::MemberState;
use tracing::debug;

/// Our mastership.
#[derive(Debug, Default)]
pub(super) struct Lease {
    pub is_master: bool,
    /// When the votes backing us stop forming a quorum.
    pub until: Millis,
    /// Set when we lost a lease involuntarily: until contacts are fresh again we are inquorate.
    pub inquorate_since: Option<Millis>,
}

impl Election {
    /// Renews or ends our mastership from the votes that are still valid. Returns whether we
    /// became or stopped being master.
    pub(super) fn update_lease(&mut self, now: Millis) -> bool {
        let mut changed = false;
        // Our lease. Once it has run out the mastership is over, even if a renewal arrives in
        // the same instant: the next one is a new mastership with a new epoch.
        let was_master = self.lease.is_master;
        let lapsed = was_master && self.lease.until <= now;
        self.lease.is_master = match self.cand.current {
            Some(_) if !lapsed => {
                // Never further than one lease ahead, even when only our own vote (which
                // never runs out) holds the quorum: a master frozen after its last tick must
                // find its lease expired when it thaws, whatever backed it.
                self.lease.until = self.lease_end(now).min(now + self.cfg.lease_ms);
                // A sitting master's lease does not count a member until it may vote
                // (view.rs, `quiet_at`): a join does not unseat a master.
                if was_master && self.lease.until <= now {
                    let sitting = self.lease_end_for(now, true);
                    self.lease.until = sitting.min(now + self.cfg.lease_ms);
                }
                self.lease.until > now && (was_master || self.everyone_spoke())
            }
            _ => false,
        };
        if was_master && !self.lease.is_master && self.cand.current.is_some() {
            // The votes ran out: we could not renew a quorum. Drop the candidacy (voters are
            // released by it) and stay inquorate until contacts are fresh again.
            debug!(tallies = %self.debug_tallies(now), "lease expired; stepping down");
            #[cfg(test)]
            if std::env::var("SIM_DEBUG").is_ok() {
                eprintln!(
                    "{} {now} lease lost: {}",
                    self.me.name,
                    self.debug_tallies(now)
                );
            }
            self.cand.current = None;
            self.lease.inquorate_since = Some(now);
        }
        if was_master != self.lease.is_master {
            changed = true;
        }
        if self.lease.is_master {
            if let Some(e) = self.cand.current {
                self.cand.max_epoch = self.cand.max_epoch.max(e);
            }
        }

        changed
    }

    /// The instant our current candidacy stops holding a joint quorum of valid votes (≤ now:
    /// none). Our own vote never runs out while we are a candidate.
    pub(super) fn lease_end(&self, now: Millis) -> Millis {
        self.lease_end_for(now, false)
    }

    /// [`Self::lease_end`]; `sitting`: for a sitting master, whose lease does not count a
    /// member before it may vote ([`Self::joint_quorum_for`]).
    fn lease_end_for(&self, now: Millis, sitting: bool) -> Millis {
        let holds_after = |t: Millis| {
            self.joint_quorum_for(
                now,
                true,
                &|p: &Peer| p.support_until > t,
                sitting.then_some(t),
                true,
            )
        };
        if !holds_after(now) {
            return now;
        }
        let mut ends: Vec<Millis> = self
            .peers
            .values()
            .filter(|p| p.support_until > now)
            .map(|p| p.support_until)
            .collect();
        if sitting {
            // A member whose quiet period or pledge ends counts from then on (without a vote
            // until its first one arrives): the tally may break there too.
            ends.extend(
                self.peers
                    .values()
                    .filter(|p| p.quiet_until > now)
                    .map(|p| p.quiet_until),
            );
            ends.extend(
                self.peers
                    .values()
                    .map(|p| p.pledge_end(self.cand.current))
                    .filter(|&t| t > now),
            );
        }
        ends.sort();
        ends.dedup();
        // Votes run out and quiet periods end in order, and each only makes the tally harder
        // (a member cannot vote while it is quiet), so once one breaks the quorum every later
        // one does: the lease ends at the first that breaks it (a binary search, not one
        // tally per voter: a master of n members would pay n² per input).
        let first_broken = ends.partition_point(|&t| holds_after(t));
        ends.get(first_broken).copied().unwrap_or(Millis::NEVER)
    }

    pub(super) fn reachable_quorum(&self, now: Millis) -> bool {
        let reach = self.reach();
        self.joint_quorum(now, true, &|p: &Peer| p.reachable(now, &reach))
    }

    pub(super) fn votes(&self, now: Millis) -> usize {
        if self.lease.is_master {
            return 1 + self
                .peers
                .values()
                .filter(|p| p.support_until > now)
                .count();
        }
        let Some(m) = self.roles.master else {
            return 0;
        };
        let mine = usize::from(self.votes.grant.is_some_and(|g| g.candidate == m));
        mine + self
            .peers
            .values()
            .filter(|p| {
                p.state == MemberState::Alive
                    && p.beat.as_ref().is_some_and(|b| {
                        (b.master && p.info.id == m)
                            || (b.voting && b.grant.is_some_and(|g| g.candidate == m))
                    })
            })
            .count()
    }
}
