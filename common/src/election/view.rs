//! Views: who counts, and how a change of who counts is agreed (joint consensus).
//!
//! A node's **view** is every member it counts, itself included: alive and lost members it
//! heard of (a hello it heard two heartbeats ago, or a beat), remembered ones, but not
//! dispatched or certainly crashed ones. Its **base** is the part of the view it has agreed on
//! with the others (*committed* members). A node that has agreed on nothing yet (it just
//! started, or it is alone) is *fresh*: its base is its whole view.
//!
//! A member heard of enters the view at once — so it makes winning *harder* at once — but is
//! *pending* until it is committed. Leaving a view (a certain crash, a dispatch, `forget`) is
//! immediate: that process can vote nowhere any more. Every beat shows two digests, of the
//! view and of the base. The rules:
//!
//! * **Joint quorums.** A candidate needs a quorum in its base **and** in its view. A member
//!   that only some nodes count yet never helps a candidate whose base does not count it.
//! * **Votes need equal digests.** A voter votes only for a candidate showing the same view
//!   and base as its own: whatever quorum a candidate gathers, every voter in it holds the
//!   candidate's configuration.
//! * **Commit by agreement.** Pending members are committed (the base becomes the view) once
//!   a joint quorum, reachable both ways, has shown our view for a lease and a drift: every
//!   promise those voters gave to a candidate with another view has run out by then, so no
//!   candidate that does not count the newcomers can gather a quorum of the base any more.
//! * **The tie-break needs agreement.** An exact half wins only with the best-ranked member,
//!   and in the view only when every pending member showed our view: otherwise that member
//!   may count itself with others we do not know, and their half could win too.
//! * **Take-overs replace.** A newer incarnation that takes over the name of a member that is
//!   only silent (it may be alive behind a partition) is pending; the old entry keeps counting
//!   in the base (hidden from status) until the newcomer is committed.

use super::Election;
use super::members::Peer;
use super::quorum;
use crate::time::Millis;
use crate::types::MemberId;
use tracing::debug;

/// Agreement on the view, refusals and the lone node's extra look.
#[derive(Debug, Default)]
pub(super) struct ViewState {
    /// Since when a quorum of the base and of the view shows our view digest.
    pub agreed: Option<((u64, u64), Millis)>,
    /// Why this node may never be master in this run: the cluster it hears refused it
    /// (another strategy, or its name is used by an older live member).
    pub refusal: Option<String>,
    /// A node that heard nobody announces itself once more at the end of its window and
    /// stands only after this instant.
    pub lone_probe: Option<Millis>,
    /// After a pause (frozen, starved: more than the silence window between two inputs) we
    /// act on nothing we knew before it: we say hello again and stand only after this.
    pub pause_look: Option<Millis>,
    /// Newcomers whose name clashed with a live member (logged once each; bounded).
    pub clashing: std::collections::BTreeSet<MemberId>,
}

/// One count to win in: its size, whether the exact-half win is ruled out, the votes, and
/// whether the best-ranked member is among them.
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

/// FNV-1a over member ids, fed in ascending order.
struct Digest(u64);

impl Digest {
    fn new() -> Self {
        Digest(0xcbf2_9ce4_8422_2325)
    }

    fn add(&mut self, id: MemberId) {
        for b in id.to_le_bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// 0 means "unknown" on the wire.
    fn finish(self) -> u64 {
        self.0.max(1)
    }
}

impl Election {
    /// In the view: counted (alive, or lost without a certain crash), not replaced by a newer
    /// incarnation, and known well (a beat received, committed, remembered) or heard of for
    /// two heartbeats (a hello whose link never carried a beat counts against winning then).
    pub(super) fn in_view(&self, p: &Peer, now: Millis) -> bool {
        !p.superseded
            && p.counted(self.cfg.expect)
            && (p.had_beat
                || p.committed
                || p.last_heard.is_none()
                || now >= p.first_heard + 2 * self.cfg.heartbeat_ms)
    }

    /// In the base tally: committed and still counted (a superseded entry too).
    fn in_base(&self, p: &Peer, now: Millis) -> bool {
        if self.fresh() {
            self.in_view(p, now) || self.ghost(p)
        } else {
            p.committed && p.counted(self.cfg.expect)
        }
    }

    /// A superseded entry: it counts (never votes) in both tallies until the newcomer that
    /// replaces it is committed, so a take-over never shrinks a count. It is not shown in the
    /// digests: the newcomer never knew it.
    fn ghost(&self, p: &Peer) -> bool {
        p.superseded && p.counted(self.cfg.expect)
    }

    /// Agreed on nothing yet: the base is the whole view.
    fn fresh(&self) -> bool {
        !self.peers.values().any(|p| p.committed)
    }

    /// (view, base) digests as shown in beats. Superseded entries are not shown: the newcomer
    /// that replaces one never knew it, and must be able to agree with us.
    pub(super) fn digests(&self) -> (u64, u64) {
        let now = self.now;
        let (mut view, mut base) = (Digest::new(), Digest::new());
        let mut me_done = false;
        for p in self.peers.values() {
            if !me_done && self.me.id < p.info.id {
                view.add(self.me.id);
                base.add(self.me.id);
                me_done = true;
            }
            if self.in_view(p, now) {
                view.add(p.info.id);
            }
            if self.in_base(p, now) && !p.superseded {
                base.add(p.info.id);
            }
        }
        if !me_done {
            view.add(self.me.id);
            base.add(self.me.id);
        }
        (view.finish(), base.finish())
    }

    /// Whether the members for which `votes_for` holds (and our own vote, if `me_votes`)
    /// decide both in the base and in the view.
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
        let (my_view, _) = self.digests();
        let mut base = Tally {
            counted: 1,
            no_tie: false,
            votes: usize::from(me_votes),
            top_in: me_votes,
        };
        let mut view = Tally {
            counted: 1,
            no_tie: false,
            votes: usize::from(me_votes),
            top_in: me_votes,
        };
        let (mut base_top, mut view_top) = (&self.me.rank, &self.me.rank);
        let mut unheard = false;
        let mut pending_agree = true;
        for p in self.peers.values() {
            let v = votes_for(p);
            if self.ghost(p) {
                view.counted += 1;
                if p.rank() < view_top {
                    view_top = p.rank();
                    view.top_in = false;
                }
            }
            if self.in_view(p, now) {
                view.counted += 1;
                view.votes += usize::from(v);
                if p.rank() < view_top {
                    view_top = p.rank();
                    view.top_in = v;
                }
                unheard |= p.last_heard.is_none();
                // A pending member agrees with our count when it shows our view and may vote
                // already: a tie-break won before it can vote would be lost (a flap) as soon
                // as the next member joins.
                let voting = p.beat.as_ref().is_some_and(|b| b.voting);
                if !p.committed && (p.view() != Some(my_view) || !voting) {
                    pending_agree = false;
                }
            }
            if self.in_base(p, now) {
                base.counted += 1;
                base.votes += usize::from(v && !p.superseded);
                if p.rank() < base_top {
                    base_top = p.rank();
                    base.top_in = v && !p.superseded;
                }
                unheard |= p.last_heard.is_none();
            }
        }
        // `--expect` pads the view only: the base grows by agreement, and padding it too
        // would keep a new cluster from ever agreeing on anything.
        base.no_tie = unheard || (self.fresh() && !pending_agree);
        view.no_tie = view.counted < expect || unheard || !pending_agree;
        view.counted = view.counted.max(expect);
        (base, view)
    }

    /// (counted, exact half ruled out, best-ranked counted member) of the view: for
    /// invariant checks and status.
    pub(super) fn view_summary(&self, now: Millis) -> (usize, bool, MemberId) {
        let (_, view) = self.tallies(now, false, &|_| false);
        let mut best = (&self.me.rank, self.me.id);
        for p in self.peers.values() {
            if self.in_view(p, now) && p.rank() < best.0 {
                best = (p.rank(), p.info.id);
            }
        }
        (view.counted, view.no_tie, best.1)
    }

    /// Whether the base differs from the view (pending members, superseded entries).
    fn has_pending(&self, now: Millis) -> bool {
        !self.fresh()
            && self
                .peers
                .values()
                .any(|p| (self.in_view(p, now) && !p.committed) || p.superseded)
            || self.fresh() && self.peers.values().any(|p| self.in_view(p, now))
    }

    /// Commits the pending members once a joint quorum, reachable both ways, has shown our
    /// digests for a lease and a drift.
    pub(super) fn commit_view(&mut self, now: Millis) {
        if !self.has_pending(now) {
            self.view.agreed = None;
            return;
        }
        // Agreement on the view is enough: a newcomer that has agreed on nothing yet shows
        // another base (its whole view), and the members it completes must still be able to
        // commit it.
        let digests = self.digests();
        let s = self.cfg.silence_ms;
        let fresh = self.lease.inquorate_since;
        let agreed = self.joint_quorum(now, true, &|p: &Peer| {
            p.reachable(now, s, fresh) && p.view() == Some(digests.0)
        });
        if !agreed {
            self.view.agreed = None;
            return;
        }
        let since = match self.view.agreed {
            Some((d, t)) if d == digests => t,
            _ => {
                self.view.agreed = Some((digests, now));
                now
            }
        };
        if now < since + self.cfg.lease_ms + self.cfg.drift_ms {
            return;
        }
        let joining: Vec<MemberId> = self
            .peers
            .values()
            .filter(|p| self.in_view(p, now) && !p.committed)
            .map(|p| p.info.id)
            .collect();
        for id in joining {
            if let Some(p) = self.peers.get_mut(&id) {
                debug!(name = %p.info.name, "member committed to the view");
                p.committed = true;
            }
        }
        self.peers.retain(|_, p| !p.superseded);
        self.view.agreed = None;
        self.outputs.push_back(super::Output::Remember);
    }
}
