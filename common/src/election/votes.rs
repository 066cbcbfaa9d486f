//! Votes and promises: whom we vote for, and the promise that backs every vote we give.
//!
//! Invariant: a vote we put in beats is always backed by our promise, and we never vote at an
//! epoch at or below one we voted for before unless it is the same vote again (or backing a
//! sitting master at its own epoch): so no two masterships ever share an epoch.

use super::{Election, Output};
use crate::time::Millis;
use crate::types::{MemberId, Rank, Role};
use crate::wire::Grant;

/// A vote this node has given and must honour until `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Promise {
    pub grant: Grant,
    pub until: Millis,
    /// Given or renewed while the candidate showed our base digest. A pledge may be given
    /// without (it backs nobody yet), and its first renewal as a vote then needs it.
    pub based: bool,
}

/// What we vote and promise.
#[derive(Debug, Default)]
pub(super) struct Votes {
    /// The vote we gave another member (our own candidacy needs no promise).
    pub promise: Option<Promise>,
    /// The vote we currently put in beats.
    pub grant: Option<Grant>,
    /// Highest epoch we ever voted for, and that vote: a new vote needs a higher epoch (or
    /// is the same vote again), so no two masterships ever share an epoch.
    pub last_granted_epoch: u64,
    pub last_grant: Option<Grant>,
}

impl Election {
    /// Gives, renews or withdraws our vote for `target`. Returns whether the vote we put in
    /// beats changed.
    pub(super) fn update_vote(&mut self, now: Millis, target: Option<MemberId>) -> bool {
        let mut changed = false;
        // Our vote for someone else.
        let digests = self.digests();
        // The vote, and whether the candidate shows our base (`Promise::based`).
        let chosen = match target {
            Some(t) if t != self.me.id => self.peers.get(&t).and_then(|p| {
                // While we are quiet after our start, a vote is a pledge, and only to a
                // sitting master: it binds us from now on like any vote, but it does not back
                // the master until our quiet period surely ended (docs/ALGORITHM.md, "A
                // pledge"). It spares a master its step-down when newcomers making up half
                // its count or more all become able to vote at one instant.
                let sitting = p.beat.as_ref().is_some_and(|b| b.master);
                let pledge = !self.may_vote(now);
                if pledge && !sitting {
                    return None;
                }
                let epoch = p.beat.as_ref()?.candidacy?;
                let g = Grant {
                    candidate: t,
                    epoch,
                };
                let renewing = self.votes.promise.is_some_and(|pr| pr.grant == g);
                // Only for a candidate that counts exactly whom we count (view.rs). A new vote
                // also needs the same agreed base; renewing one given under equal bases needs
                // equal views only: two nodes commit the same members a few milliseconds
                // apart, and the base of the later one is briefly its whole view. A pledge
                // needs equal views only: a master commits newcomers a lease and a drift
                // after its voters saw them, about when their quiet periods end, and a pledge
                // that waited for it would come too late to matter.
                let (view, base) = p.digests()?;
                let based = self.votes.promise.is_some_and(|pr| pr.grant == g && pr.based);
                if view != digests.0 || (!pledge && !based && base != digests.1) {
                    #[cfg(test)]
                    if std::env::var("SIM_DEBUG").is_ok() {
                        eprintln!("{} {now} no vote for {t} (renewing {renewing}): theirs {:?} ours {digests:?}", self.me.name, (view, base));
                    }
                    return None;
                }
                // Backing a sitting master at its own epoch makes no new mastership, so it is
                // allowed even if we voted at that epoch or above meanwhile (say for ourselves
                // while cut off): otherwise a healed partition would unseat it for nothing.
                let free = self.votes.promise.is_none()
                    && (epoch > self.votes.last_granted_epoch
                        || self.votes.last_grant == Some(g)
                        || sitting);
                (renewing || free).then_some((g, base == digests.1))
            }),
            _ => None,
        };
        let grant = chosen.map(|(g, _)| g);
        // Invariant: a vote we put in beats is always backed by our promise.
        if let Some((g, bases_agree)) = chosen {
            if self.votes.promise.map(|p| p.grant) != Some(g) {
                if g.epoch > self.votes.last_granted_epoch {
                    self.outputs.push_back(Output::Remember);
                }
                self.votes.last_granted_epoch = self.votes.last_granted_epoch.max(g.epoch);
                self.votes.last_grant = Some(g);
                self.cand.max_epoch = self.cand.max_epoch.max(g.epoch);
                let from = self.peers.get(&g.candidate).map_or(now, |p| p.their_seq_at);
                self.votes.promise = Some(Promise {
                    grant: g,
                    until: from + self.cfg.lease_ms + self.cfg.drift_ms,
                    based: false,
                });
            }
            if let Some(pr) = self.votes.promise.as_mut() {
                pr.based |= bases_agree;
            }
        }
        if grant != self.votes.grant {
            changed = true;
            self.votes.grant = grant;
        }

        changed
    }

    pub(super) fn eligible_now(&self, now: Millis) -> bool {
        self.view.refusal.is_none()
            && !self.me.witness
            && !self.dispatching
            && !self.held
            && self.may_vote(now)
            && now >= self.started + self.cfg.startup_ms
    }

    pub(super) fn may_vote(&self, now: Millis) -> bool {
        now >= self.started + self.quiet_ms()
    }

    /// Whom we vote for: the best-ranked eligible member we reach both ways (ourselves
    /// included), or the sitting master with `--no-preempt`.
    pub(super) fn vote_target(&self, now: Millis) -> Option<MemberId> {
        let s = self.cfg.silence_ms;
        let reach = self.reach();
        if !self.cfg.preempt {
            if self.lease.is_master && !self.held {
                return Some(self.me.id);
            }
            if let Some(p) = self
                .peers
                .values()
                .filter(|p| {
                    self.in_view(p, now)
                        && p.claims_master(now, s)
                        && p.reachable(now, &reach)
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
        let may_stand = self.lease.inquorate_since.is_none() || self.reachable_quorum(now);
        let probing = self.view.lone_probe.is_some_and(|t| now < t)
            || self.view.pause_look.is_some_and(|t| now < t);
        if self.eligible_now(now) && may_stand && !probing {
            best = Some((&self.me.rank, self.me.id));
        }
        for p in self.peers.values() {
            if self.in_view(p, now)
                && p.eligible()
                && p.reachable(now, &reach)
                && best.is_none_or(|(r, _)| p.rank() < r)
            {
                best = Some((p.rank(), p.info.id));
            }
        }
        let (best_rank, best_id) = best?;
        // While nobody is master yet, wait for a better member still in its discovery window
        // rather than make a master that would be preempted a moment later.
        let someone_master =
            self.lease.is_master || self.peers.values().any(|p| p.claims_master(now, s));
        if !someone_master {
            let better_starting = self.peers.values().any(|p| {
                self.in_view(p, now)
                    && !p.info.witness
                    && p.rank() < best_rank
                    && p.reachable(now, &reach)
                    && p.beat.as_ref().is_some_and(|b| b.role == Role::Starting)
            });
            if better_starting {
                return None;
            }
        }
        Some(best_id)
    }
}
