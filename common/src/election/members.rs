//! The member table: what this node knows of every other member.

use crate::time::Millis;
use crate::types::{MemberInfo, MemberState, Rank};
use crate::wire::Beat;

/// What [`Peer::reachable`] measures against (`Election::reach`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reach {
    /// The silence window.
    pub silence_ms: u64,
    /// Contacts must be later than this (the inquorate latch), if set.
    pub fresh_after: Option<Millis>,
    /// The most a declared gap extends the window (0 unless we pace: cadence.rs).
    pub pace_cap: u64,
}

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
    /// In this node's *base* view: the agreed part of the count. A member heard of enters
    /// the count at once, but as *pending* (see `view.rs`): until a quorum of the base holds
    /// the same view, a candidate needs a quorum in the base too (joint consensus).
    pub committed: bool,
    /// A newer incarnation with this name took over the entry while this one was only lost
    /// (it may still be alive behind a partition): it keeps counting, hidden from status,
    /// until the newcomer is committed.
    pub superseded: bool,
    /// When we first heard of it.
    pub first_heard: Millis,
    /// We received at least one beat from it (its view is known).
    pub had_beat: bool,
    /// Until when it surely cannot vote (its quiet period after start, from its newest beat;
    /// 0 when it votes or we cannot tell).
    pub quiet_until: Millis,
    /// Its pledge to our mastership (a vote given while it was still quiet): the epoch
    /// pledged to, and until when the promise surely binds it (our clock). Until then it
    /// votes for nobody else, quiet or not, and our lease at that epoch leaves it out
    /// until its first vote arrives (view.rs, `quiet_at`; docs/ALGORITHM.md, "A pledge").
    pub pledged: Option<(u64, Millis)>,
    /// Learned from a peer's list of members, not heard yet ourselves (cleared by its first
    /// beat).
    pub gossiped: bool,
    /// When it left the count for good (a certain crash or a dispatch, as we learned it): for
    /// a lease and a drift its seat still counts (view.rs, `departed_seats`).
    pub departed_at: Option<Millis>,
    /// Its vote for our candidacy was still valid (on our clock) when it departed: it died
    /// promised to us, so no other candidate can hold its seat (view.rs, `departures_allow`).
    pub departed_backing: bool,
    /// When it left (dispatched): it is removed from the table `reap_dispatched_ms` later.
    pub left_at: Option<Millis>,
    /// A `forget` that arrived while its last vote could still be binding somewhere: it
    /// leaves the table at this instant.
    pub forget_at: Option<Millis>,
    /// The gap it declared in its newest beat (0: it beats us every heartbeat; otherwise we
    /// are a quiet pair and its next probe comes within about this long; cadence.rs).
    pub gap: u64,
    /// Since when our beats ask it to answer every heartbeat (`Beat::want`), if they do.
    pub wanted_since: Option<Millis>,
    /// The gap we declared in our newest beat to it: it takes us for `lost` that long plus a
    /// silence window after that beat (cadence.rs, "going quiet").
    pub told_gap: u64,
    /// When we sent it our newest beat.
    pub told_at: Millis,
    /// The view digests its beats showed, each with when we first received it (the newest
    /// [`super::view::MAX_SHOWN`] + 1): a view we showed earlier may be committed on the
    /// strength of members that showed it and moved on (view.rs, `commit_shown_prefix`).
    pub views_seen: Vec<(u64, Millis)>,
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
            committed: false,
            superseded: false,
            first_heard: now.unwrap_or(Millis(0)),
            had_beat: false,
            quiet_until: Millis(0),
            pledged: None,
            gossiped: false,
            departed_at: None,
            departed_backing: false,
            left_at: None,
            forget_at: None,
            gap: 0,
            wanted_since: None,
            told_gap: 0,
            told_at: Millis(0),
            views_seen: Vec::new(),
        }
    }

    pub fn rank(&self) -> &Rank {
        &self.info.rank
    }

    /// Counts for quorum: alive, or lost without a certain crash (with `--expect`, a certain
    /// crash counts too).
    pub fn counted(&self, expect: usize) -> bool {
        match self.state {
            MemberState::Alive => true,
            MemberState::Lost => !self.crashed || expect > 0,
            MemberState::Dispatched => false,
        }
    }

    /// When it goes `lost` if nothing more arrives: a silence window after it was last heard,
    /// plus the gap it declared for a quiet pair, but never later than a silence window after
    /// we asked it to answer every heartbeat (it answers our first such beat).
    pub fn silent_at(&self, silence_ms: u64) -> Option<Millis> {
        let t = self.last_heard?;
        let mut at = t + silence_ms + self.gap;
        if let Some(w) = self.wanted_since {
            at = at.min(t.max(w) + silence_ms);
        }
        Some(at)
    }

    /// Its newest beat asks for our beats every heartbeat.
    pub fn wants_beats(&self) -> bool {
        self.beat.as_ref().is_some_and(|b| b.want)
    }

    /// Until when its pledge to our mastership at `epoch` leaves it out of our lease (0: no
    /// such pledge; a pledge to another of our epochs is void).
    pub fn pledge_end(&self, epoch: Option<u64>) -> Millis {
        match self.pledged {
            Some((e, until)) if Some(e) == epoch => until,
            _ => Millis(0),
        }
    }

    /// Heard from it within the silence window and it heard us within it, both after the
    /// inquorate latch: the link works both ways. While we pace (cadence.rs, "Forming pace")
    /// a member that declared a gap gets twice that gap more (both sides pace), up to the cap.
    pub fn reachable(&self, now: Millis, reach: &Reach) -> bool {
        if self.state != MemberState::Alive {
            return false;
        }
        let window = reach.silence_ms + 2 * self.gap.min(reach.pace_cap);
        let recent = |t: Option<Millis>| match t {
            Some(t) => t + window > now && reach.fresh_after.is_none_or(|f| t > f),
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
        !self.superseded && !self.info.witness && self.beat.as_ref().is_some_and(|b| b.eligible)
    }

    /// The view digest it showed in its newest beat (None: no beat, or an old peer).
    pub fn view(&self) -> Option<u64> {
        self.beat.as_ref().map(|b| b.view).filter(|&v| v != 0)
    }

    /// (view, base) digests it showed in its newest beat.
    pub fn digests(&self) -> Option<(u64, u64)> {
        self.beat
            .as_ref()
            .map(|b| (b.view, b.base))
            .filter(|&(v, b)| v != 0 && b != 0)
    }
}
