//! Roles: what we report (and run hooks for), and the master we follow.
//!
//! Invariant: a role change is announced once, never during the start-up window, and a
//! change of the followed master is announced while the role stays the same.

use super::members::Peer;
use super::{Election, Output};
use crate::time::Millis;
use crate::types::{MemberId, MemberState, Role};

/// The role we report and the master we follow.
#[derive(Debug)]
pub(super) struct Roles {
    pub role: Role,
    pub master: Option<MemberId>,
    /// The master (and the epoch of its mastership) the last role or master change told
    /// hooks and followers about.
    pub announced: Option<(MemberId, u64)>,
    pub left_starting: bool,
    /// When the master we followed left for certain (a crash its host reported, a leave):
    /// see [`Election::electing_after_master_left`].
    pub master_gone: Option<Millis>,
}

impl Default for Roles {
    fn default() -> Self {
        Roles {
            role: Role::Starting,
            master: None,
            announced: None,
            left_starting: false,
            master_gone: None,
        }
    }
}

impl Election {
    pub(super) fn update_role(&mut self, now: Millis) {
        let s = self.cfg.silence_ms;
        let master = if self.lease.is_master {
            Some(self.me.id)
        } else {
            // Prefer the member we vote for; else any best-ranked member claiming mastership.
            let voted = self.votes.grant.map(|g| g.candidate);
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
        if master.is_some() && !self.lease.is_master {
            self.lease.inquorate_since = None;
        }
        if master.is_some() {
            self.roles.master_gone = None;
        }
        let role = if self.dispatching {
            Role::Dispatching
        } else if self.view.refusal.is_some() {
            Role::Inquorate
        } else if self.lease.is_master {
            Role::Master
        } else if !self.roles.left_starting
            && master.is_none()
            && now < self.started + self.cfg.startup_ms + s
        {
            Role::Starting
        } else if master.is_some() {
            Role::Slave
        } else if self.reachable_quorum(now) {
            self.lease.inquorate_since = None;
            Role::Slave
        } else if self.electing_after_master_left(now) {
            Role::Slave
        } else {
            Role::Inquorate
        };
        if role != Role::Starting {
            self.roles.left_starting = true;
        }
        self.set_role(role, master);
    }

    /// Our master left for certain (its host reported the crash, or it said goodbye) within a
    /// lease and a silence window, and a quorum of the members we count is alive (heard at
    /// the pace each one declared): we are electing its successor, not cut off. Without
    /// this every slave of a settled cluster larger than about eight went `inquorate` the
    /// instant its master crashed or was dispatched, because quiet pairs meet only by probes
    /// in rotation, seconds apart, and are never reached within a silence window: each slave
    /// ran its hook twice (to `inquorate`, back to `slave`), those 24 hooks at once held up
    /// the election (a new master after ~100 ms instead of 6–9 in a cluster of 25), and
    /// with `--exit-on-minority` every slave exited. A cut (the master silent, not gone) is
    /// not this: there the strict test holds and a minority is `inquorate` at once.
    fn electing_after_master_left(&self, now: Millis) -> bool {
        // Latched inquorate (woken from a pause, a lease lost): contacts must be fresh first.
        let Some(gone) = self
            .roles
            .master_gone
            .filter(|_| self.lease.inquorate_since.is_none())
        else {
            return false;
        };
        if now >= gone + self.cfg.lease_ms + self.cfg.silence_ms {
            return false;
        }
        // Alive: heard within the gap it declared and a silence window. Not the test of
        // votes (its beats echo ours within a silence window): a peer that goes loud at the
        // news declares no gap any more, and until it has echoed one of our beats, which
        // takes a round trip, the last echo we have from a quiet pair is seconds old.
        self.joint_quorum(now, true, &|p: &Peer| p.state == MemberState::Alive)
    }

    pub(super) fn set_role(&mut self, role: Role, master: Option<MemberId>) {
        let previous = self.roles.role;
        self.roles.master = master;
        if role != previous {
            self.roles.role = role;
            if role != Role::Starting {
                // What this role change tells the hooks, "no master" included: a master
                // found later while the role stays the same is then announced. (Only a
                // `Some` was kept before: a node that went inquorate and came back a slave
                // before it saw the master again, the same master as before, ran no hook
                // naming it, and its last hook said "no master" for good.)
                let epoch = self.reported_epoch();
                self.roles.announced = master.map(|m| (m, epoch));
                self.outputs.push_back(Output::RoleChanged {
                    role,
                    previous,
                    master: master.and_then(|id| self.name_of(id)),
                    epoch,
                    master_until: self.master_until(),
                });
            }
        } else if let Some(m) = master.filter(|_| role == Role::Slave) {
            // Another master, or the same one elected again (a new mastership, a new epoch):
            // the hooks hear of it, so the epoch they were told is the master's own.
            let epoch = self.reported_epoch();
            if self.roles.announced == Some((m, epoch)) {
                return;
            }
            self.roles.announced = Some((m, epoch));
            self.outputs.push_back(Output::MasterChanged {
                master: self.name_of(m),
                epoch,
            });
        }
    }

    pub(super) fn name_of(&self, id: MemberId) -> Option<String> {
        if id == self.me.id {
            return Some(self.me.name.clone());
        }
        self.peers.get(&id).map(|p| p.info.name.clone())
    }
}
