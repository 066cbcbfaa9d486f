//! Membership inputs: hellos (joins, re-entries, renames, refusals), leaves, certain crashes,
//! forgets, silence, and the admission of members that raise the count.

use super::members::Peer;
use super::{Election, MAX_REFUSED, Output};
use crate::control::MemberChange;
use crate::time::Millis;
use crate::types::{MemberId, MemberInfo, MemberState};
use tracing::debug;

impl Election {
    pub(super) fn handle_hello(&mut self, now: Millis, info: MemberInfo) {
        if info.id == self.me.id || self.refused.contains(&info.id) {
            return;
        }
        if info.strategy != self.cfg.strategy {
            let reason = format!(
                "it ranks by {} but this cluster ranks by {}; it will never vote here",
                info.strategy, self.cfg.strategy
            );
            return self.refuse(info, reason);
        }
        if let Some(p) = self.peers.get_mut(&info.id) {
            if p.state == MemberState::Dispatched {
                return;
            }
            if p.info.name != info.name {
                if self.me.name == info.name {
                    let reason = "it renamed itself to this node's name".to_string();
                    return self.refuse(info, reason);
                }
                let from = std::mem::replace(&mut p.info.name, info.name.clone());
                self.outputs.push_back(Output::Member {
                    name: info.name.clone(),
                    change: MemberChange::Renamed { from },
                });
                self.outputs.push_back(Output::Remember);
            }
            p.info.addr = info.addr;
            p.info.port = info.port;
            return;
        }
        if info.name == self.me.name {
            let reason = format!("its name {:?} is this node's name", info.name);
            return self.refuse(info, reason);
        }
        let old = self
            .peers
            .values()
            .find(|p| p.info.name == info.name)
            .map(|p| {
                (
                    p.info.id,
                    p.state,
                    p.info.started_ms,
                    p.counted(self.cfg.expect),
                )
            });
        let mut admitted = false;
        if let Some((old_id, old_state, old_started, old_counted)) = old {
            if old_state == MemberState::Alive && old_started > info.started_ms {
                let reason = format!(
                    "name {:?} is used by a newer process; the older one is ignored",
                    info.name
                );
                return self.refuse(info, reason);
            }
            // Re-entry: the new incarnation takes over the entry (and its place in the count,
            // if it had one). A promise we gave the old one stays in force until it runs out
            // (it is kept apart from the table).
            admitted = old_counted;
            self.peers.remove(&old_id);
            debug!(name = %info.name, old = old_id, new = info.id, "member re-entered");
        }
        let name = info.name.clone();
        let mut peer = Peer::new(info, MemberState::Alive, Some(now));
        peer.admitted = admitted;
        self.peers.insert(peer.info.id, peer);
        self.outputs.push_back(Output::Member {
            name,
            change: MemberChange::Joined,
        });
        self.outputs.push_back(Output::Remember);
    }

    pub(super) fn refuse(&mut self, info: MemberInfo, reason: String) {
        if self.refused.len() >= MAX_REFUSED {
            self.refused.pop_first();
        }
        self.refused.insert(info.id);
        self.outputs.push_back(Output::Refused {
            name: info.name,
            addr: format!("{}:{}", info.addr, info.port),
            reason,
        });
    }

    pub(super) fn handle_leave(&mut self, now: Millis, from: MemberId, epoch: u64) {
        self.max_epoch = self.max_epoch.max(epoch);
        self.member_gone(from, MemberState::Dispatched, MemberChange::Dispatched);
        if let Some(p) = self.peers.get_mut(&from) {
            p.left_at.get_or_insert(now);
        }
    }

    /// Removes dispatched members `reap_dispatched_ms` after they left. They count nowhere,
    /// so the count does not change.
    pub(super) fn reap_dispatched(&mut self, now: Millis) {
        let after = self.cfg.reap_dispatched_ms;
        let due: Vec<MemberId> = self
            .peers
            .values()
            .filter(|p| p.state == MemberState::Dispatched)
            .filter(|p| p.left_at.is_some_and(|t| t + after <= now))
            .map(|p| p.info.id)
            .collect();
        for id in due {
            if let Some(p) = self.peers.remove(&id) {
                debug!(name = %p.info.name, "dispatched member reaped");
                self.outputs.push_back(Output::Member {
                    name: p.info.name,
                    change: MemberChange::Reaped,
                });
            }
        }
    }

    pub(super) fn handle_crashed(&mut self, id: MemberId) {
        if self.cfg.expect > 0 {
            // --expect disables the shortcut: resets may come from a firewall in front of a
            // live node; let silence and leases decide.
            return;
        }
        if self.peers.get(&id).is_some_and(|p| p.crashed) {
            return;
        }
        self.member_gone(id, MemberState::Lost, MemberChange::Crashed);
    }

    /// The member's process left (`Dispatched`) or died for certain (`Lost`, crashed): it can
    /// be master nowhere, so its votes for us and our promise to it are void at once.
    pub(super) fn member_gone(&mut self, id: MemberId, state: MemberState, change: MemberChange) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        if p.state == MemberState::Dispatched {
            return;
        }
        p.state = state;
        p.crashed = state == MemberState::Lost;
        p.support_until = Millis(0);
        p.beat = None;
        let name = p.info.name.clone();
        self.release_promise_to(id);
        self.outputs.push_back(Output::Member { name, change });
        self.outputs.push_back(Output::Remember);
    }

    pub(super) fn handle_forget_msg(&mut self, id: MemberId) {
        if let Some(p) = self.peers.get(&id) {
            if p.state != MemberState::Alive {
                let name = p.info.name.clone();
                self.peers.remove(&id);
                self.outputs.push_back(Output::Member {
                    name,
                    change: MemberChange::Forgotten,
                });
                self.outputs.push_back(Output::Remember);
            }
        }
    }

    pub(super) fn release_promise_to(&mut self, id: MemberId) {
        if self.promise.is_some_and(|p| p.grant.candidate == id) {
            self.promise = None;
        }
    }

    pub(super) fn detect_silence(&mut self, now: Millis) {
        let s = self.cfg.silence_ms;
        let mut lost_counted = false;
        for p in self.peers.values_mut() {
            if p.state == MemberState::Alive && p.last_heard.is_none_or(|t| t + s <= now) {
                p.state = MemberState::Lost;
                p.support_until = Millis(0);
                lost_counted |= p.counted(self.cfg.expect);
                self.outputs.push_back(Output::Member {
                    name: p.info.name.clone(),
                    change: MemberChange::Lost,
                });
            }
        }
        if lost_counted {
            // We were perhaps cut off already when we admitted recent members: an admission
            // still on probation is taken back (that only lowers the count to what it was).
            let probation = self.probation_ms();
            for p in self.peers.values_mut() {
                if p.state == MemberState::Alive
                    && p.admitted_at.is_some_and(|t| t + probation > now)
                {
                    debug!(name = %p.info.name, "admission revoked: a counted member went silent");
                    p.admitted = false;
                    p.admitted_at = None;
                    p.support_until = Millis(0);
                }
            }
        }
    }

    /// How long a newly admitted member's vote waits before it backs a master: long enough
    /// that a partition we did not see yet at admission is detected first.
    pub(super) fn probation_ms(&self) -> u64 {
        self.cfg.silence_ms + self.cfg.lease_ms + self.cfg.drift_ms
    }

    /// Admits pending members while we see a quorum of the members we already count.
    pub(super) fn admit(&mut self, now: Millis) {
        // Only members that may vote already: until then they cannot back anyone, and counting
        // them early would cost a sitting master its quorum before their first vote.
        let ready = |p: &Peer| {
            !p.admitted
                && p.state == MemberState::Alive
                && p.beat.as_ref().is_some_and(|b| b.voting)
        };
        let pending = self.peers.values().filter(|p| ready(p)).count();
        if pending == 0 {
            return;
        }
        // Below `--expect` the count does not change by admitting: that is always safe.
        let known = 1 + self
            .peers
            .values()
            .filter(|p| p.counted(self.cfg.expect))
            .count();
        let starting = now < self.started + self.cfg.startup_ms + self.cfg.silence_ms;
        if known + pending <= self.cfg.expect || self.reachable_quorum(now) {
            for p in self.peers.values_mut() {
                if ready(p) {
                    debug!(name = %p.info.name, "member admitted to the count");
                    p.admitted = true;
                    // While we start up there is no mastership of ours to protect and nothing
                    // we counted before: members found now count at once (a cold start of a
                    // whole cluster must not wait out a probation).
                    p.admitted_at = (!starting).then_some(now);
                }
            }
            self.outputs.push_back(Output::Remember);
        }
    }
}
