//! Cadence: which peers get our beat every heartbeat, and which only a probe in rotation.
//!
//! If every pair beats every heartbeat, a cluster of n members sends n² messages a period,
//! and a hundred daemons on one machine cannot hold a master. In a *settled* cluster (a
//! master followed, every member committed, equal views) a member needs every-heartbeat
//! contact only with
//!
//! * the master it follows, the candidate it votes for, anyone claiming a candidacy or a
//!   mastership (their votes and leases ride on these beats);
//! * the next in line: the [`SUCCESSORS`] best-ranked eligible members, so that when the
//!   master goes, its successor is already reached both ways and failover costs no extra
//!   round trip (without it, a crash or dispatch of the master of 25 took 10–16 ms in the
//!   simulator instead of 6–9: sim test `a_successor_takes_over_without_an_extra_round_trip`);
//!   every other heartbeat is enough for that (below);
//! * anyone whose state differs from ours (no beat yet, pending, another view or base, not a
//!   plain slave) and anyone whose newest beat asks for ours ([`crate::wire::Beat::want`]).
//!
//! The other pairs are *quiet*: each member sends one probe per heartbeat to the next quiet
//! peer in rotation, so every quiet pair still meets every few seconds (a member that died on
//! a quiet pair's far side is `lost` there only that much later; the master sees it within
//! the silence window; in a small cluster a probe goes every few heartbeats, so each quiet
//! peer's turn still waits a silence window). *Going quiet* is said, not left to be
//! guessed: a beat declares the
//! gap that follows it, so a peer last told a gap that ends before its turn in the rotation
//! (0 while everyone beat everyone, a forming pace's gap) gets one beat with the quiet gap at
//! once. Without it every pair that went quiet together timed out together: in the
//! simulator a settled 30 went `lost` and back 574 times in 5 s and a hundred 9,451 times,
//! each wave making members loud again and the next quiet turn another wave. A settled
//! member does not answer a probe out of rhythm (beats.rs): its own rotation reaches the
//! prober. The next in line and each plain slave beat each other every other heartbeat
//! ([`Election::successor_pair`]): well within a silence window of each other's beats and
//! echoes, which is all a failover needs of them. The traffic of a settled cluster is then
//! about `2n` messages a period (the master beats everyone and everyone beats it), `n` for
//! the next in line, plus `n` probes: O(n).
//!
//! Anything unsettled (no master, a candidacy, a lost lease, a pending member, a start, a
//! pause) makes a node beat everyone and ask everyone to answer every heartbeat: the
//! all-pairs exchange the election and the membership agreement were designed on.
//!
//! **Forming pace.** Up to [`super::Config::pace_above`] links that is cheap; a hundred
//! members starting together would send ten thousand beats a heartbeat, more than two cores
//! carry, and beats late past the silence window make members flap and the start take
//! seconds. So an unsettled node with more links (not a candidate, not a master: their
//! beats carry leases and votes to everyone) beats every heartbeat only the members the
//! election rides on (the master it follows, the candidate it votes for, anyone claiming a
//! candidacy or a mastership, the next in line, a member it has no beat from yet, and anyone
//! whose beat asks for ours), and every other member one heartbeat in `k`, in turn, `k` being
//! what keeps a round near `pace_above` of them, at most `2/3` of a silence window
//! ([`Election::pace_cap`]). It declares that gap (`gap_ms`), and while it paces, a member
//! that declared a gap stays reachable that much longer (twice: both sides pace), so paced
//! members still count as reached both ways and still agree on views.
//!
//! **Safety does not depend on any of this.** A beat not sent is a beat lost, and the
//! election is safe under any loss (docs/ALGORITHM.md). Two things change and no more: whom
//! we beat, and when a quiet peer goes `lost` ([`super::members::Peer::silent_at`]): after
//! the gap it declared plus the silence window, or a silence window after we asked it to
//! answer every heartbeat. `lost` members still count, so this moves no quorum.

use super::Election;
use super::members::{Peer, Reach};
use crate::time::Millis;
use crate::types::{MemberId, MemberState, Rank, Role};
use crate::wire::MAX_GAP_MS;

/// How many of the best-ranked eligible members (the master usually first) every member
/// keeps beating every heartbeat.
pub(super) const SUCCESSORS: usize = 2;

/// The gap a settled member and the next in line declare to each other, in heartbeats: they
/// beat each other every other heartbeat ([`Election::successor_pair`]).
const SUCCESSOR_GAP_ROUNDS: u64 = 3;

/// How we beat one peer this round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Cadence {
    /// We want its beats every heartbeat (our own reasons).
    pub want: bool,
    /// The gap we declare: 0 when we beat it every heartbeat.
    pub gap_ms: u64,
    /// A beat goes to it this round (every heartbeat, or its turn in the probe rotation).
    pub send: bool,
}

/// This round's plan: our own reasons to be loud to everyone, and the next in line.
pub(super) struct Plan {
    everyone: bool,
    top: Vec<MemberId>,
    /// The quiet peers, by id (sorted): [`Election::cadence`] looks them up instead of asking
    /// [`Election::wants`] again for each.
    quiet: Vec<MemberId>,
    /// The peers we meet every other heartbeat ([`Election::successor_pair`]), by id.
    pairs: Vec<MemberId>,
    /// The quiet peer whose turn it is to be probed.
    probe: Option<MemberId>,
    /// The gap declared to quiet peers.
    gap_ms: u64,
    /// How long a quiet peer waits for its turn in the rotation.
    turn_ms: u64,
    /// Forming pace (module docs): 1 when every member gets every round, else `k`, and
    /// `quiet` holds nothing: the paced members are the ones [`Election::rides_on`] refuses.
    pace: u64,
    /// A round in the rhythm (not one sent at once on a change): paced members' turns.
    rotating: bool,
}

impl Election {
    /// Whether we are settled enough to keep quiet pairs at all.
    pub(super) fn loud_to_all(&self, now: Millis) -> bool {
        if !self.cfg.quiet_pairs {
            return true;
        }
        self.roles.role != Role::Slave
            || self.roles.master.is_none()
            || self.lease.is_master
            || self.cand.current.is_some()
            || self.votes.grant.is_none()
            || self.lease.inquorate_since.is_some()
            || self.dispatching
            || self.has_pending(now)
            || self.view.lone_probe.is_some_and(|t| now < t)
            || self.view.pause_look.is_some_and(|t| now < t)
            || self.master_late(now)
            || self
                .peers
                .values()
                .any(|p| self.in_view(p, now) && (!p.had_beat || p.gossiped))
    }

    /// The master we follow has not been heard for a third of a silence window (two
    /// heartbeats by default): we ask everyone for beats while it still counts as our
    /// master. If it is gone, the rest of the cluster has answered us by the time its silence
    /// window ends, so we find a quorum reachable and stay a slave while the successor is
    /// elected; if we are the one cut off, nobody answers and we go `inquorate` when the
    /// window ends, as before (rule 8). Without it, quiet pairs (which meet seconds apart in
    /// a cluster of eight or more) were never reached within a silence window: every slave
    /// of the majority went `inquorate` at a silent master's end for the round trip it then
    /// took to reach the others, ran its hook twice, and with `--exit-on-minority` exited
    /// (sim test `a_master_gone_silent_makes_no_slave_of_the_majority_inquorate`).
    fn master_late(&self, now: Millis) -> bool {
        let Some(m) = self.roles.master.filter(|&m| m != self.me.id) else {
            return false;
        };
        self.peers
            .get(&m)
            .and_then(|p| p.last_heard)
            .is_some_and(|t| now >= t + self.cfg.silence_ms / 3)
    }

    /// The best-ranked eligible members that are alive here (ourselves included).
    fn next_in_line(&self, now: Millis) -> Vec<MemberId> {
        fn offer<'a>(best: &mut Vec<(&'a Rank, MemberId)>, r: &'a Rank, id: MemberId) {
            let at = best.partition_point(|(b, _)| *b < r);
            if at < SUCCESSORS {
                best.insert(at, (r, id));
                best.truncate(SUCCESSORS);
            }
        }
        let mut best: Vec<(&Rank, MemberId)> = Vec::with_capacity(SUCCESSORS + 1);
        if self.eligible_now(now) {
            offer(&mut best, &self.me.rank, self.me.id);
        }
        for p in self.peers.values() {
            if p.state == MemberState::Alive && p.eligible() && self.in_view(p, now) {
                offer(&mut best, p.rank(), p.info.id);
            }
        }
        best.into_iter().map(|(_, id)| id).collect()
    }

    /// Our own reason to want `p`'s beats every heartbeat (not counting its wish for ours).
    fn wants(&self, plan: &Plan, p: &Peer, digests: (u64, u64)) -> bool {
        if plan.everyone || self.rides_on(plan, p) {
            return true;
        }
        // Its state differs from ours.
        p.beat
            .as_ref()
            .is_some_and(|b| b.role != Role::Slave || !p.committed || (b.view, b.base) != digests)
    }

    /// Plans a round of beats: who is next in line, whose turn it is to be probed, and the
    /// forming pace.
    pub(super) fn plan_round(&mut self, now: Millis, rotate: bool) -> Plan {
        let everyone = self.loud_to_all(now);
        let mut plan = Plan {
            everyone,
            top: Vec::new(),
            quiet: Vec::new(),
            pairs: Vec::new(),
            probe: None,
            gap_ms: 0,
            turn_ms: 0,
            pace: 1,
            rotating: rotate,
        };
        let may_pace = self.may_pace();
        if !everyone || may_pace {
            plan.top = self.next_in_line(now);
        }
        if !everyone {
            let digests = self.digests();
            for p in self.linked_peers().filter_map(|id| self.peers.get(&id)) {
                if self.successor_pair(&plan, p, digests) {
                    plan.pairs.push(p.info.id);
                } else if !p.wants_beats() && !self.wants(&plan, p, digests) {
                    plan.quiet.push(p.info.id);
                }
            }
        }
        if may_pace {
            plan.pace = self.forming_pace(&plan);
        }
        self.pacing = plan.pace > 1;
        if self.pacing && rotate {
            self.pace_round = self.pace_round.wrapping_add(1);
        }
        if plan.quiet.is_empty() {
            return plan;
        }
        // One probe every `spacing` heartbeats: each quiet peer's turn comes every
        // `quiet.len() · spacing` beats, never sooner than a silence window ([`probe_spacing`]).
        // The gap declared is twice that, so a lost probe or a few more quiet peers do not
        // make it `lost` on the far side.
        // Never as short as a forming pace's gap: that is how a receiver tells a probe from
        // a paced beat ([`Election::is_quiet_probe`]).
        let quiet = plan.quiet.len() as u64;
        let spacing = self.probe_spacing(quiet);
        let turn = quiet.saturating_mul(spacing);
        let rounds = (2 * turn + 1).max(self.pace_cap_rounds() + 1);
        plan.gap_ms = rounds.saturating_mul(self.cfg.heartbeat_ms);
        plan.turn_ms = turn.saturating_mul(self.cfg.heartbeat_ms);
        if rotate {
            self.probe_round = self.probe_round.wrapping_add(1);
        }
        if rotate && self.probe_round % spacing == 0 {
            let next = plan
                .quiet
                .iter()
                .copied()
                .find(|&id| id > self.probe_after)
                .or_else(|| plan.quiet.first().copied());
            if let Some(id) = next {
                self.probe_after = id;
                plan.probe = Some(id);
            }
        }
        plan
    }

    /// Heartbeats between two probes of a settled member's rotation over `quiet` peers: 1
    /// when a turn comes round in a silence window or more, else enough that each quiet peer
    /// still waits a silence window for its turn. A small cluster's quiet pairs met every
    /// other heartbeat before (2 quiet peers of 5), a third of an idle slave's frames and
    /// more of its wake-ups, and a quiet pair needs no more than the master and the next in
    /// line watch for (module docs).
    fn probe_spacing(&self, quiet: u64) -> u64 {
        let window = (self.cfg.silence_ms / self.cfg.heartbeat_ms.max(1)).max(1);
        window.div_ceil(quiet.max(1)).max(1)
    }

    /// Whether we may pace at all (module docs): linked to more than `pace_above` members,
    /// neither standing nor holding a lease nor leaving.
    fn may_pace(&self) -> bool {
        !(self.lease.is_master
            || self.cand.current.is_some()
            || self.dispatching
            || self.linked_peers().nth(self.cfg.pace_above).is_none())
    }

    /// The forming pace `k` (module docs) for the members we would beat every round though
    /// the election does not ride on them (all of them while unsettled; those whose state
    /// differs from ours otherwise): 1 when there are none.
    fn forming_pace(&self, plan: &Plan) -> u64 {
        // Not asking whom their beats ask for ours: every member that does not pace yet asks
        // everyone, and counting those out would keep everyone from ever pacing.
        let paced = self
            .linked_peers()
            .filter(|id| {
                plan.quiet.binary_search(id).is_err()
                    && plan.pairs.binary_search(id).is_err()
                    && self.peers.get(id).is_some_and(|p| !self.rides_on(plan, p))
            })
            .count() as u64;
        let per_round = self.cfg.pace_above.max(1) as u64;
        if paced == 0 || (!plan.everyone && paced <= per_round) {
            return 1;
        }
        paced.div_ceil(per_round).clamp(1, self.pace_cap_rounds())
    }

    /// The most rounds a forming node leaves between two beats to a member: 2/3 of a silence
    /// window (4 by default, 5 in the fast profile), so a paced member never looks silent.
    fn pace_cap_rounds(&self) -> u64 {
        (2 * self.cfg.silence_ms / (3 * self.cfg.heartbeat_ms.max(1))).max(1)
    }

    /// A beat declaring `gap_ms` is a quiet pair's probe from a settled member, not a
    /// forming member's paced beat: its gap is longer than any forming pace
    /// ([`Election::plan_round`]). Probes are not answered out of rhythm (beats.rs).
    pub(super) fn is_quiet_probe(&self, gap_ms: u64) -> bool {
        gap_ms > self.pace_cap_ms()
    }

    /// The longest gap a forming pace declares: [`Election::pace_cap_rounds`] heartbeats.
    fn pace_cap_ms(&self) -> u64 {
        self.pace_cap_rounds().saturating_mul(self.cfg.heartbeat_ms)
    }

    /// How much longer than a silence window a member that declared a gap stays reachable
    /// while we pace (0 when we do not): module docs.
    pub(super) fn pace_cap(&self) -> u64 {
        if self.pacing { self.pace_cap_ms() } else { 0 }
    }

    /// What [`Peer::reachable`] measures against now.
    pub(super) fn reach(&self) -> Reach {
        Reach {
            silence_ms: self.cfg.silence_ms,
            fresh_after: self.lease.inquorate_since,
            pace_cap: self.pace_cap(),
        }
    }

    /// A member the election rides on (module docs): it gets every round, even paced.
    fn rides_on(&self, plan: &Plan, p: &Peer) -> bool {
        let id = p.info.id;
        let Some(b) = p.beat.as_ref() else {
            return true;
        };
        Some(id) == self.roles.master
            || self.votes.grant.is_some_and(|g| g.candidate == id)
            || plan.top.contains(&id)
            || b.candidacy.is_some()
            || b.master
            || p.gossiped
    }

    /// A settled pair that only keeps the next in line reached both ways for the day the
    /// master goes (module docs): one of us is next in line and neither the master we follow
    /// nor whom we vote for, the other a plain slave in our state, and neither asks for the
    /// other's beats. It meets every other heartbeat, not every one. Asked once a round, by
    /// [`Election::plan_round`] of a settled node (`Plan::pairs`).
    fn successor_pair(&self, plan: &Plan, p: &Peer, digests: (u64, u64)) -> bool {
        let id = p.info.id;
        if p.wants_beats() {
            return false;
        }
        let Some(b) = p.beat.as_ref() else {
            return false;
        };
        let plain = b.role == Role::Slave
            && !b.master
            && b.candidacy.is_none()
            && p.committed
            && !p.gossiped
            && (b.view, b.base) == digests;
        plain
            && Some(id) != self.roles.master
            && self.votes.grant.is_none_or(|g| g.candidate != id)
            && plan.top.contains(&id) != plan.top.contains(&self.me.id)
    }

    /// How we beat `p` under `plan`.
    pub(super) fn cadence(
        &self,
        plan: &Plan,
        p: &Peer,
        digests: (u64, u64),
        now: Millis,
    ) -> Cadence {
        let quiet = plan.quiet.binary_search(&p.info.id).is_ok();
        if plan.pace > 1 && !quiet {
            if self.rides_on(plan, p) {
                return Cadence {
                    want: true,
                    gap_ms: 0,
                    send: true,
                };
            }
            if p.wants_beats() {
                return Cadence {
                    want: false,
                    gap_ms: 0,
                    send: true,
                };
            }
            // Its turn: ids are random, so the members spread evenly over the `k` rounds.
            // Beats outside the rhythm (a change, an answer) go only to those riding on it.
            // A turn skipped while `k` changed must not outlast the gap we declared.
            let turn = self.pace_round.wrapping_add(p.info.id) % plan.pace == 0
                || now >= p.told_at + p.told_gap + self.cfg.heartbeat_ms;
            return Cadence {
                want: false,
                gap_ms: plan.pace * self.cfg.heartbeat_ms,
                send: turn && plan.rotating,
            };
        }
        if plan.pairs.binary_search(&p.info.id).is_ok() {
            // Every other heartbeat: within a silence window of each other's beats and
            // echoes with room to spare, so the next in line stays reached both ways; the
            // gap declared covers a round or two come late.
            let hb = self.cfg.heartbeat_ms;
            let gap_ms = SUCCESSOR_GAP_ROUNDS * hb;
            return Cadence {
                want: false,
                gap_ms,
                send: p.told_gap < gap_ms || now + hb / 2 >= p.told_at + 2 * hb,
            };
        }
        let want = !quiet && self.wants(plan, p, digests);
        if !quiet && (want || p.wants_beats()) {
            return Cadence {
                want,
                gap_ms: 0,
                send: true,
            };
        }
        // Going quiet: a peer we last told a gap that ends before its turn in the rotation
        // can come gets the new gap now, or it would take us for `lost` (module docs).
        Cadence {
            want: false,
            gap_ms: plan.gap_ms,
            send: plan.probe == Some(p.info.id) || p.told_gap < plan.turn_ms,
        }
    }

    /// Notes the cadence a peer declared in its beat.
    pub(super) fn note_gap(p: &mut Peer, gap_ms: u64) {
        p.gap = gap_ms.min(MAX_GAP_MS);
    }
}
