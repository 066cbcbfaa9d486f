//! Views: who counts, and how a change of who counts is agreed (joint consensus).
//!
//! A node's **view** is every member it counts or has pending, itself included. Its **base**
//! is the agreed part of it. A member heard of (a join, a re-entry, a member found after a
//! partition) enters the view at once — so it makes winning *harder* at once — but stays
//! *pending* until a quorum of the base has shown the same view (a digest in every beat) for
//! a lease and a drift. Until then a candidate needs a quorum in the base **and** in the
//! whole view. Leaving a view (a certain crash, a dispatch, `forget`) is immediate: that
//! process can vote nowhere any more.
//!
//! Three rules make two disjoint groups unable to both win while views differ:
//!
//! * **Joint quorums.** A pending member never helps a candidate whose base does not count
//!   it: the candidate must also win in the base, which every node that might not know the
//!   newcomer shares.
//! * **Votes need equal views.** A voter votes only for a candidate showing the same view
//!   digest as its own. So when a quorum of the base has shown a view for a lease and a
//!   drift, every promise those voters gave to a candidate with another view has run out:
//!   no candidate with an older view can gather a quorum of the base any more, and the
//!   pending members may be committed.
//! * **The tie-break needs agreement.** An exact half wins only with the best-ranked member,
//!   and only in a count everybody involved agrees on: in the whole view it is used only when
//!   every pending member showed our view (otherwise that member may count itself with others
//!   we do not know, and their half could win too).

use super::Election;
use super::members::Peer;
use super::quorum;
use crate::time::Millis;
use tracing::debug;

/// One count to win in: its size, whether `--expect` or unheard members rule out the
/// exact-half win, and the votes (with whether the best-ranked member is among them).
struct Tally {
    counted: usize,
    no_tie: bool,
    votes: usize,
    top_in: bool,
}

impl Tally {
    fn decides(&self) -> bool {
        quorum::has_quorum(self.counted, self.votes, self.top_in, self.no_tie)
    }
}

impl Election {
    /// In the view: counted (alive, or lost without a certain crash), and either known well
    /// (a beat received, committed, remembered) or heard of for two heartbeats (a hello whose
    /// link never carried a beat still counts against winning after that).
    pub(super) fn in_view(&self, p: &Peer, now: Millis) -> bool {
        p.counted(self.cfg.expect)
            && (p.had_beat
                || p.committed
                || p.last_heard.is_none()
                || now >= p.first_heard + 2 * self.cfg.heartbeat_ms)
    }

    /// The digest of our view as shown in beats: every counted member heard of, by id.
    pub(super) fn view_digest(&self) -> u64 {
        // FNV-1a over the sorted ids (the table is a BTreeMap: sorted already).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |id: u64| {
            for b in id.to_le_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        let mut mine_done = false;
        // A superseded entry keeps counting but is not shown: the newcomer that replaces it
        // never knew it, and must be able to agree with us.
        for p in self.peers.values() {
            if !p.counted(self.cfg.expect) || p.superseded {
                continue;
            }
            if !mine_done && self.me.id < p.info.id {
                mix(self.me.id);
                mine_done = true;
            }
            mix(p.info.id);
        }
        if !mine_done {
            mix(self.me.id);
        }
        // 0 means "unknown" on the wire.
        h.max(1)
    }

    /// Whether the members for which `votes_for` holds (and our own vote, if `me_votes`)
    /// decide both in the base and in the whole view.
    pub(super) fn joint_quorum(
        &self,
        now: Millis,
        me_votes: bool,
        votes_for: &dyn Fn(&Peer) -> bool,
    ) -> bool {
        let (base, view) = self.tallies(now, me_votes, votes_for);
        base.decides() && view.decides()
    }

    fn tallies(
        &self,
        now: Millis,
        me_votes: bool,
        votes_for: &dyn Fn(&Peer) -> bool,
    ) -> (Tally, Tally) {
        let expect = self.cfg.expect;
        let digest = self.view_digest();
        let mut base_top = (&self.me.rank, true);
        let mut view_top = (&self.me.rank, true);
        let (mut base_n, mut view_n) = (1usize, 1usize);
        let (mut base_votes, mut view_votes) = (usize::from(me_votes), usize::from(me_votes));
        let mut unheard = false;
        let mut pending_agree = true;
        let mut top_votes_base = me_votes;
        let mut top_votes_view = me_votes;
        for p in self.peers.values() {
            if !self.in_view(p, now) {
                continue;
            }
            let v = votes_for(p);
            view_n += 1;
            view_votes += usize::from(v);
            if p.rank() < view_top.0 {
                view_top = (p.rank(), false);
                top_votes_view = v;
            }
            unheard |= p.last_heard.is_none();
            if p.committed {
                base_n += 1;
                base_votes += usize::from(v);
                if p.rank() < base_top.0 {
                    base_top = (p.rank(), false);
                    top_votes_base = v;
                }
            } else if p.view() != Some(digest) {
                pending_agree = false;
            }
        }
        // `--expect` pads the whole view only: the base grows by agreement, and padding it
        // too would keep a fresh cluster from ever agreeing on anything.
        let base = Tally {
            counted: base_n,
            no_tie: unheard,
            votes: base_votes,
            top_in: top_votes_base,
        };
        let view = Tally {
            counted: view_n.max(expect),
            no_tie: view_n < expect || unheard || !pending_agree,
            votes: view_votes,
            top_in: top_votes_view,
        };
        (base, view)
    }

    /// (counted, exact half ruled out, best-ranked counted member) of the whole view: for
    /// invariant checks and status.
    pub(super) fn view_summary(&self, now: Millis) -> (usize, bool, crate::types::MemberId) {
        let (_, view) = self.tallies(now, false, &|_| false);
        let mut best = (&self.me.rank, self.me.id);
        for p in self.peers.values() {
            if self.in_view(p, now) && p.rank() < best.0 {
                best = (p.rank(), p.info.id);
            }
        }
        (view.counted, view.no_tie, best.1)
    }

    /// Whether some member of the view is still pending (or a superseded entry waits).
    fn has_pending(&self, now: Millis) -> bool {
        self.peers
            .values()
            .any(|p| (self.in_view(p, now) && !p.committed) || p.superseded)
    }

    /// Commits the pending members once a quorum of the base, reachable both ways, has shown
    /// our view for a lease and a drift (every promise its members gave to a candidate with
    /// another view has run out by then).
    pub(super) fn commit_view(&mut self, now: Millis) {
        if !self.has_pending(now) {
            self.view_agreed = None;
            return;
        }
        let digest = self.view_digest();
        let s = self.cfg.silence_ms;
        let fresh = self.inquorate_since;
        // A quorum of the base and of the whole view (the joint configuration), as for a
        // candidacy: a fresh node whose base is only itself must not commit on its own say.
        let agreed = self.joint_quorum(now, true, &|p: &Peer| {
            p.reachable(now, s, fresh) && p.view() == Some(digest)
        });
        if !agreed {
            self.view_agreed = None;
            return;
        }
        let since = match self.view_agreed {
            Some((d, t)) if d == digest => t,
            _ => {
                self.view_agreed = Some((digest, now));
                now
            }
        };
        if now < since + self.cfg.lease_ms + self.cfg.drift_ms {
            return;
        }
        let mut changed = false;
        let in_view: Vec<_> = self
            .peers
            .values()
            .filter(|p| self.in_view(p, now) && !p.committed && !p.superseded)
            .map(|p| p.info.id)
            .collect();
        for id in in_view {
            if let Some(p) = self.peers.get_mut(&id) {
                debug!(name = %p.info.name, "member committed to the view");
                p.committed = true;
                changed = true;
            }
        }
        let before = self.peers.len();
        self.peers.retain(|_, p| !p.superseded);
        changed |= self.peers.len() != before;
        self.view_agreed = None;
        if changed {
            self.outputs.push_back(super::Output::Remember);
        }
    }
}
