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
//! * **Members lists.** A peer whose beat shows another view gets the list of members we
//!   count (membership.rs): one it never heard of counts for it too, as lost until heard.
//! * **Joint quorums.** A candidate needs a quorum in its base **and** in its view. A member
//!   that only some nodes count yet never helps a candidate whose base does not count it.
//! * **Votes need equal digests.** A voter votes only for a candidate showing the same view
//!   and base as its own: whatever quorum a candidate gathers, every voter in it holds the
//!   candidate's configuration.
//! * **Commit by agreement.** Pending members are committed (the base becomes the view) once
//!   a joint quorum, reachable both ways, has shown our view for a lease and a drift: every
//!   promise those voters gave to a candidate with another view has run out by then, so no
//!   candidate that does not count the newcomers can gather a quorum of the base any more.
//!   At once when none of them can hold such a promise: each never voted, or its highest
//!   vote is its own current candidacy, or (at a sitting master) it is still quiet and its
//!   highest vote is its pledge to our mastership. When our view moved on meanwhile
//!   (members joining less than a lease and a drift apart), a view we showed earlier is
//!   committed instead, on the same terms, by the members that showed it and still show it
//!   or a later one of ours (`commit_shown_prefix`).
//! * **The tie-break needs agreement.** An exact half wins only with the best-ranked member,
//!   and in the view only when every pending member showed our view: otherwise that member
//!   may count itself with others we do not know, and their half could win too.
//! * **A member that cannot vote yet does not count in a sitting master's lease** (its beat
//!   says how long its quiet period lasts; the lease is tallied at each instant without the
//!   members that surely cannot vote then, `quiet_at`), and a pending member that shows our
//!   view agrees with its exact half even before it may vote: a join does not unseat a
//!   master. A newcomer pledges its vote to a sitting master while still quiet, and the
//!   master leaves it out until its vote arrives, so that newcomers able to vote from one
//!   instant do not unseat it either (docs/ALGORITHM.md, "A pledge").
//! * **Shown views bind.** Every view a node showed in a beat since its last commit may have
//!   been committed by a peer on the strength of that beat, so until the node commits itself
//!   a candidate needs a quorum in each of those views too (members that left for good
//!   dropped), and the base digest it shows covers them: a voter only helps a candidate bound
//!   by the same views. A commit clears the list.
//! * **Take-overs replace.** A newer incarnation that takes over the name of a member that is
//!   only silent (it may be alive behind a partition) is pending; the old entry keeps counting
//!   in the base (hidden from status) until the newcomer is committed.

use super::Election;
use super::members::Peer;
use super::quorum;
use crate::time::Millis;
use crate::types::MemberId;
use crate::wire::Beat;
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
    /// Every view we showed in a beat since our last commit (member ids, sorted, ourselves
    /// included) that differed from our base then: a peer may have committed any of them on
    /// the strength of our beats, so until we commit ourselves a candidate we help needs a
    /// quorum in each (see "Shown views" in docs/ALGORITHM.md).
    pub shown: Vec<Vec<MemberId>>,
    /// When we first showed each of [`Self::shown`] (None: a view our previous incarnation
    /// showed, from its memory; never committed by `commit_shown_prefix`).
    pub shown_at: Vec<Option<Millis>>,
    /// More distinct views were shown than [`MAX_SHOWN`]: we stop voting for anyone (our
    /// digest is unique) until a commit clears the list.
    pub shown_overflow: bool,
    /// Members forgotten here (bounded): a peer's list of members never brings them back.
    pub forgotten: std::collections::BTreeSet<MemberId>,
    /// Our own earlier incarnations whose seats are in [`Self::shown`] from the memory of a
    /// restart: they count there and never vote (see `Memory::written_by`). A commit clears
    /// them with the list.
    pub ghosts: std::collections::BTreeSet<MemberId>,
}

/// A peer's view digest as its beats showed it, and ours when we last compared: a members
/// list goes to a peer whose view differs from ours only once theirs stood still for two
/// heartbeats and ours for the last of them (`note_view_of`).
///
/// While members start together every view changes as links come up, and each differs
/// from every other until the last link: a list to every peer whose view differed, once a
/// silence window, was 56,000 lists of about 95 members each (10 kB) while a hundred
/// daemons started on one machine, and tells no one anything its links would not tell it
/// a moment later. A difference that stands still is one that hearing does not mend (a
/// member frozen or cut off while others joined): that is what the list is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeenView {
    /// The peer's view digest.
    pub theirs: u64,
    /// Ours at the last comparison (none yet since theirs changed).
    pub ours: Option<u64>,
    /// Since when theirs (and, once compared, ours) stood still.
    pub since: Millis,
}

/// What a cached view (digests, shown views) was computed from: the generations of the
/// peer table and of the view state, and the span of time over which the clock changes
/// nothing in it (a member heard of by hello enters the view two heartbeats later:
/// [`Election::view_steady_until`]). A beat of a member already in the view touches the
/// table without moving its generation (`handle_beat`), so a settled node computes its view
/// once per change, not once per input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MemoKey {
    peers: u64,
    view: u64,
    from: Millis,
    until: Millis,
}

impl MemoKey {
    fn fits(&self, peers: u64, view: u64, now: Millis) -> bool {
        self.peers == peers && self.view == view && self.from <= now && now < self.until
    }
}

/// Cached digests: (key, (view, base)).
pub(super) type DigestMemo = (MemoKey, (u64, u64));

/// The views we showed that still bind us ([`Election::shown_configs`]).
pub(super) type ShownConfigs = std::collections::BTreeSet<Vec<MemberId>>;

/// Cached [`ShownConfigs`], keyed like [`DigestMemo`].
pub(super) type ShownMemo = Option<(MemoKey, std::rc::Rc<ShownConfigs>)>;

/// Bound on [`ViewState::shown`]: distinct uncommitted views shown in a row.
pub(super) const MAX_SHOWN: usize = 32;

/// One count to win in: its size, whether the exact-half win is ruled out, the votes, the
/// best-ranked member and whether it is among them.
struct Tally {
    counted: usize,
    no_tie: bool,
    votes: usize,
    top: MemberId,
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
    /// two heartbeats (a hello whose link never carried a beat counts against winning then),
    /// or heard of at all by a newcomer still in its quiet period.
    pub(super) fn in_view(&self, p: &Peer, now: Millis) -> bool {
        !p.superseded
            && p.counted(self.cfg.expect)
            && (p.had_beat
                || p.committed
                || p.last_heard.is_none()
                || now >= p.first_heard + 2 * self.cfg.heartbeat_ms
                // A newcomer counts whom it hears at once (it cannot vote yet, and counting
                // more only makes winning harder): its first beats then show the sitting
                // members their own view, and a sitting master keeps its exact half.
                || p.first_heard < self.started + self.quiet_ms())
    }

    /// In the base tally: committed and still counted (a superseded entry too).
    /// `fresh` is [`Self::fresh`], computed once by the caller: it scans every peer, and
    /// callers ask this of every peer in a loop.
    fn in_base(&self, p: &Peer, now: Millis, fresh: bool) -> bool {
        if fresh {
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
        let (peers, view, now) = (self.peers.generation(), self.view.generation(), self.now);
        if let Some((k, d)) = self.digest_cache.get() {
            if k.fits(peers, view, now) {
                self.check_memo(|| d == self.compute_digests());
                return d;
            }
        }
        let d = self.compute_digests();
        self.digest_cache.set(Some((self.memo_key(now), d)));
        d
    }

    /// The view digest alone: from the cache when it is fresh, else without the shown views
    /// the base digest needs (the per-beat check of a peer's view asks only this).
    pub(super) fn view_digest(&self) -> u64 {
        let (peers, view, now) = (self.peers.generation(), self.view.generation(), self.now);
        if let Some((k, d)) = self.digest_cache.get() {
            if k.fits(peers, view, now) {
                return d.0;
            }
        }
        self.ids_digest(|p| self.in_view(p, self.now)).finish()
    }

    /// The key a view computed now is cached under.
    fn memo_key(&self, now: Millis) -> MemoKey {
        MemoKey {
            peers: self.peers.generation(),
            view: self.view.generation(),
            from: now,
            until: self.view_steady_until(now),
        }
    }

    /// Until when the clock alone changes nothing in the view: the first instant a member
    /// heard of only by hello enters it ([`Self::in_view`]: two heartbeats after it was
    /// first heard), or never.
    fn view_steady_until(&self, now: Millis) -> Millis {
        let newcomer_until = self.started + self.quiet_ms();
        self.peers
            .values()
            .filter(|p| {
                !p.had_beat
                    && !p.committed
                    && p.last_heard.is_some()
                    && p.first_heard >= newcomer_until
            })
            .map(|p| p.first_heard + 2 * self.cfg.heartbeat_ms)
            .filter(|&t| t > now)
            .min()
            .unwrap_or(Millis::NEVER)
    }

    /// In test builds, every 16th use of a cached view is checked against one computed
    /// afresh: a change to the peers that does not move the table's generation must never
    /// change the view (`handle_beat`).
    fn check_memo(&self, same: impl FnOnce() -> bool) {
        if cfg!(debug_assertions) {
            let n = self.memo_checks.get().wrapping_add(1);
            self.memo_checks.set(n);
            if n % 16 == 0 {
                assert!(same(), "a cached view went stale (view.rs, MemoKey)");
            }
        }
    }

    /// FNV of our id and the ids of the peers `with` picks, in ascending order.
    fn ids_digest(&self, with: impl Fn(&Peer) -> bool) -> Digest {
        let mut d = Digest::new();
        let mut me_done = false;
        for p in self.peers.values() {
            if !me_done && self.me.id < p.info.id {
                d.add(self.me.id);
                me_done = true;
            }
            if with(p) {
                d.add(p.info.id);
            }
        }
        if !me_done {
            d.add(self.me.id);
        }
        d
    }

    /// [`Self::digests`], uncached: everything they depend on is in `peers`, `view` and the
    /// clock (a member heard of two heartbeats ago enters the view), apart from fixed config.
    fn compute_digests(&self) -> (u64, u64) {
        let now = self.now;
        let fresh = self.fresh();
        let view = self.ids_digest(|p| self.in_view(p, now));
        let mut base = self.ids_digest(|p| self.in_base(p, now, fresh) && !p.superseded);
        // The views we showed bind us (module docs): they are part of what a voter must share.
        for config in self.shown_configs(now).iter() {
            base.add(MemberId::MAX);
            for &id in config {
                base.add(id);
            }
        }
        if self.view.shown_overflow {
            base.add(MemberId::MAX);
            base.add(self.me.id);
            base.add(MemberId::MAX);
        }
        (view.finish(), base.finish())
    }

    /// The digest of our view with the departed seats ([`Self::departed_seats`]) in it: the
    /// view a member shows that has not heard of the departures yet.
    fn view_with_seats_digest(&self, now: Millis) -> u64 {
        self.ids_digest(|p| self.in_view(p, now) || self.departed_seat(p, now))
            .finish()
    }

    /// Sorted ids of the base (ourselves included), as [`Self::shown`] stores views.
    fn base_ids(&self, now: Millis) -> Vec<MemberId> {
        let fresh = self.fresh();
        let mut ids: Vec<MemberId> = self
            .peers
            .values()
            .filter(|p| self.in_base(p, now, fresh) && !p.superseded)
            .map(|p| p.info.id)
            .chain(std::iter::once(self.me.id))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// What binds our next incarnation (see `Memory::bound`): the base, then every view we
    /// showed since our last commit that differs from it.
    pub(super) fn bound_configs(&self) -> Vec<Vec<MemberId>> {
        let base = self.base_ids(self.now);
        let mut configs = vec![base.clone()];
        configs.extend(self.view.shown.iter().filter(|c| **c != base).cloned());
        configs
    }

    /// A re-entry replaced `old` by `new` (the old process is gone for certain): the seat in
    /// the views that bind us passes to the new incarnation.
    pub(super) fn pass_seat(&mut self, old: MemberId, new: MemberId) {
        for config in &mut self.view.shown {
            if let Some(i) = config.iter().position(|&id| id == old) {
                config[i] = new;
                config.sort_unstable();
                config.dedup();
            }
        }
    }

    /// Sorted ids of the view (ourselves included).
    fn view_ids(&self, now: Millis) -> Vec<MemberId> {
        let mut ids: Vec<MemberId> = self
            .peers
            .values()
            .filter(|p| self.in_view(p, now))
            .map(|p| p.info.id)
            .chain(std::iter::once(self.me.id))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The shown views as they bind now: members that left for good (a certain crash, a
    /// dispatch, `forget`: that incarnation votes nowhere any more) dropped, duplicates and
    /// views equal to the base removed, in a canonical order.
    fn shown_configs(&self, now: Millis) -> std::rc::Rc<ShownConfigs> {
        let (peers, view) = (self.peers.generation(), self.view.generation());
        if let Some((k, c)) = &*self.shown_cache.borrow() {
            if k.fits(peers, view, now) {
                self.check_memo(|| **c == self.compute_shown_configs(now));
                return c.clone();
            }
        }
        let c = std::rc::Rc::new(self.compute_shown_configs(now));
        *self.shown_cache.borrow_mut() = Some((self.memo_key(now), c.clone()));
        c
    }

    /// [`Self::shown_configs`], uncached: every tally asks for it, and while members join
    /// it is up to 32 views of every member, filtered.
    fn compute_shown_configs(&self, now: Millis) -> ShownConfigs {
        if self.view.shown.is_empty() {
            // The settled case, on every input: no need to build the base.
            return ShownConfigs::new();
        }
        let base = self.base_ids(now);
        let binding = self.binding_ids();
        self.view
            .shown
            .iter()
            .map(|config| self.binding_config(config, &binding))
            .filter(|c| !c.is_empty() && *c != base)
            .collect()
    }

    /// The members a shown view still binds us with, sorted: ourselves, our ghosts, and
    /// every counted member (those that left for good are not).
    fn binding_ids(&self) -> Vec<MemberId> {
        let mut ids: Vec<MemberId> = self
            .peers
            .values()
            .filter(|p| p.counted(self.cfg.expect))
            .map(|p| p.info.id)
            .chain(std::iter::once(self.me.id))
            .chain(self.view.ghosts.iter().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// A view we showed as it binds now: members that left for good dropped, and our old
    /// seat alone once every other member of it left. `binding` is [`Self::binding_ids`],
    /// built once for all the views: a lookup in the member table for every member of up
    /// to 32 views was a sixth of the core's work while 250 members started together.
    fn binding_config(&self, config: &[MemberId], binding: &[MemberId]) -> Vec<MemberId> {
        let mut c = kept_in(config, binding);
        // Once every other member of such a count left for good, our old seat in it
        // stands against nobody: it would only keep us from ever winning again.
        if c.iter()
            .all(|id| *id == self.me.id || self.view.ghosts.contains(id))
        {
            c.retain(|id| *id == self.me.id);
        }
        c
    }

    /// Records the view we are about to show in beats to `to` (before each round of beats).
    /// Only a member of a view can commit it (its own view includes itself), so a view none
    /// of the recipients is in binds nobody: a lone node's view of itself, say.
    pub(super) fn note_shown_view(&mut self, now: Millis, to: &[MemberId]) {
        let view = self.view_ids(now);
        if !to.iter().any(|id| view.binary_search(id).is_ok()) {
            return;
        }
        if !self.fresh() && view == self.base_ids(now) {
            return;
        }
        if self.view.shown.contains(&view) {
            return;
        }
        if self.view.shown.len() >= MAX_SHOWN {
            if !self.view.shown_overflow {
                self.view.shown_overflow = true;
                self.outputs.push_back(super::Output::Remember);
            }
            return;
        }
        self.view.shown.push(view);
        self.view.shown_at.push(Some(now));
        // Written before the beats that show it leave: it binds our next incarnation too.
        self.outputs.push_back(super::Output::Remember);
    }

    /// Whether the members for which `votes_for` holds (and our own vote, if `me_votes`)
    /// decide both in the base and in the view.
    pub(super) fn joint_quorum(
        &self,
        now: Millis,
        me_votes: bool,
        votes_for: &dyn Fn(&Peer) -> bool,
    ) -> bool {
        self.joint_quorum_for(now, me_votes, votes_for, None, false)
    }

    /// [`Self::joint_quorum`]; `sitting`: `Some(at)` for the lease of a sitting master at
    /// instant `at`, which does not count a member that cannot vote yet at `at`
    /// ([`Self::quiet_at`]). `own_lease`: the tally is of our own candidacy's votes, so the
    /// seats of members that died promised to us count as ours ([`Self::departures_allow`]).
    pub(super) fn joint_quorum_for(
        &self,
        now: Millis,
        me_votes: bool,
        votes_for: &dyn Fn(&Peer) -> bool,
        sitting: Option<Millis>,
        own_lease: bool,
    ) -> bool {
        let (base, view) = self.tallies(now, me_votes, votes_for, sitting);
        base.decides()
            && view.decides()
            && self.departures_allow(now, me_votes, votes_for, (&base, &view), sitting, own_lease)
            && self.shown_configs(now).iter().all(|config| {
                self.config_tally(config, me_votes, votes_for, sitting)
                    .decides()
            })
    }

    /// For the lease of a sitting master at instant `at` (`sitting`): `p` surely cannot
    /// vote yet at `at` (its quiet period after its start, dated on our clock by the beat it
    /// echoed: `Peer::quiet_until`). Such a member does not count in that lease's tallies
    /// (module docs, "A member that cannot vote yet"): no candidate anywhere can hold its
    /// vote before then, so any count that holds it is won, if at all, by a quorum of that
    /// count without it, which meets ours.
    ///
    /// A member that pledged its vote to our current mastership (`Peer::pledged`) is left
    /// out the same way until its pledge runs out: at any instant before then it is either
    /// still quiet or bound to us by its promise, and in both cases no other candidate holds
    /// its vote, which is all the argument above needs (docs/ALGORITHM.md, "A pledge").
    fn quiet_at(&self, p: &Peer, sitting: Option<Millis>) -> bool {
        sitting.is_some_and(|at| p.quiet_until > at || p.pledge_end(self.cand.current) > at)
    }

    /// Members that left the count by a certain crash or a dispatch less than a lease and a
    /// drift ago. Their processes vote nowhere any more, but a promise one of them gave just
    /// before it went may still back a master that has not heard of the departure yet (its
    /// crash notice or goodbye reaches each member at its own instant). Until that promise
    /// has surely run out, a quorum counts their seats (never voting, except for us when
    /// they died promised to us), unless every member still counted backs us: then no one
    /// else can hold a quorum anywhere, whatever the departed voted (docs/ALGORITHM.md,
    /// "Departures"). A member that departed in its quiet period has no seat (`member_gone`).
    pub(super) fn departed_seats(&self, now: Millis) -> impl Iterator<Item = &Peer> {
        self.peers
            .values()
            .filter(move |p| self.departed_seat(p, now))
    }

    fn departed_seat(&self, p: &Peer, now: Millis) -> bool {
        !p.superseded && !p.counted(self.cfg.expect) && self.seat_until(p).is_some_and(|t| now < t)
    }

    /// The departure rule ([`Self::departed_seats`]) for a tally that decides without them.
    ///
    /// In the tally of our own lease (`own_lease`), the seat of a member that died promised
    /// to us (`departed_backing`) votes for us: its promise to us was still running when it
    /// died, so it gave none to anyone else that could still run, and no other candidate can
    /// count it. Without this a master whose voter crashed would need every survivor's
    /// renewal on time for a lease and a drift (one late beat would end a settled mastership).
    fn departures_allow(
        &self,
        now: Millis,
        me_votes: bool,
        votes_for: &dyn Fn(&Peer) -> bool,
        (base, view): (&Tally, &Tally),
        sitting: Option<Millis>,
        own_lease: bool,
    ) -> bool {
        let (mut seats, mut backing) = (0, 0);
        let mut best = None;
        for p in self.departed_seats(now) {
            let backs = own_lease && p.departed_backing;
            seats += 1;
            backing += usize::from(backs);
            let rank = p.rank().tie_order();
            if best.is_none_or(|(r, _)| rank < r) {
                best = Some((rank, backs));
            }
        }
        let Some((best, best_backs)) = best else {
            return true;
        };
        // The seats stand where the departed stood in the count: the exact half goes to the
        // best-ranked seat, counted or departed (a departed top backs only the candidate it
        // died promised to).
        let rank_of = |id: MemberId| {
            if id == self.me.id {
                Some(self.me.rank.tie_order())
            } else {
                self.peers.get(&id).map(|p| p.rank().tie_order())
            }
        };
        let with_seats = |t: &Tally| Tally {
            counted: t.counted + seats,
            no_tie: t.no_tie,
            votes: t.votes + backing,
            top: t.top,
            top_in: if rank_of(t.top).is_none_or(|top| best < top) {
                best_backs
            } else {
                t.top_in
            },
        };
        if with_seats(base).decides() && with_seats(view).decides() {
            return true;
        }
        // Where the seats stand, a pending member still showing our view from before the
        // departures counts exactly these seats: it agrees with this count (its next beats
        // will show our new view, but the lease must not lapse in between).
        let (base2, view2) = self.tallies_agreeing(
            now,
            me_votes,
            votes_for,
            sitting,
            Some(self.view_with_seats_digest(now)),
        );
        if with_seats(&base2).decides() && with_seats(&view2).decides() {
            return true;
        }
        // For a sitting master, a member that cannot vote yet at the instant tallied backs
        // no one else either.
        let fresh = self.fresh();
        me_votes
            && self.peers.values().all(|p| {
                !(self.in_view(p, now) || self.in_base(p, now, fresh) || self.ghost(p))
                    || votes_for(p)
                    || self.quiet_at(p, sitting)
            })
    }

    /// The tally in one shown view: its members still counted; superseded entries count
    /// and never vote; an exact half wins with the best-ranked member, unless a member was
    /// never heard in this run. `sitting`: as in [`Self::joint_quorum_for`].
    fn config_tally(
        &self,
        config: &[MemberId],
        me_votes: bool,
        votes_for: &dyn Fn(&Peer) -> bool,
        sitting: Option<Millis>,
    ) -> Tally {
        let mut t = Tally {
            counted: 0,
            no_tie: false,
            votes: 0,
            top: self.me.id,
            top_in: false,
        };
        let mut top = None;
        let mut ghosts = 0;
        for &id in config {
            let (rank, votes) = if id == self.me.id {
                (self.me.rank.tie_order(), me_votes)
            } else if self.view.ghosts.contains(&id) {
                // Our own old seat: it counts and votes only with every other seat (below);
                // its rank is unknown, so the exact half is ruled out.
                t.counted += 1;
                t.no_tie = true;
                ghosts += 1;
                continue;
            } else {
                let Some(p) = self.peers.get(&id) else {
                    continue;
                };
                if self.quiet_at(p, sitting) {
                    continue;
                }
                t.no_tie |= p.last_heard.is_none();
                (p.rank().tie_order(), votes_for(p) && !p.superseded)
            };
            t.counted += 1;
            t.votes += usize::from(votes);
            if top.is_none_or(|best| rank < best) {
                top = Some(rank);
                t.top = id;
                t.top_in = votes;
            }
        }
        // Our old seat backs what every other seat of that count backs. Only a count of two
        // (one other member and our ghost) gains by it: there the other's vote is a majority
        // of what is left of the count, and without it such a count could never be won nor
        // shed; in a larger count every other seat already is one.
        if ghosts > 0 && t.votes + ghosts == t.counted {
            t.votes = t.counted;
        }
        t
    }

    fn tallies(
        &self,
        now: Millis,
        me_votes: bool,
        votes_for: &dyn Fn(&Peer) -> bool,
        sitting: Option<Millis>,
    ) -> (Tally, Tally) {
        self.tallies_agreeing(now, me_votes, votes_for, sitting, None)
    }

    /// [`Self::tallies`]; a pending member that shows `also` (a view digest) agrees too.
    fn tallies_agreeing(
        &self,
        now: Millis,
        me_votes: bool,
        votes_for: &dyn Fn(&Peer) -> bool,
        sitting: Option<Millis>,
        also: Option<u64>,
    ) -> (Tally, Tally) {
        let expect = self.cfg.expect;
        let fresh = self.fresh();
        let (my_view, _) = self.digests();
        let mut base = Tally {
            counted: 1,
            no_tie: false,
            votes: usize::from(me_votes),
            top: self.me.id,
            top_in: me_votes,
        };
        let mut view = Tally {
            counted: 1,
            no_tie: false,
            votes: usize::from(me_votes),
            top: self.me.id,
            top_in: me_votes,
        };
        let (mut base_top, mut view_top) = (self.me.rank.tie_order(), self.me.rank.tie_order());
        let mut unheard = false;
        let mut pending_agree = true;
        for p in self.peers.values() {
            let v = votes_for(p);
            if self.ghost(p) {
                view.counted += 1;
                if p.rank().tie_order() < view_top {
                    view_top = p.rank().tie_order();
                    view.top = p.info.id;
                    view.top_in = false;
                }
            }
            if self.quiet_at(p, sitting) {
                continue;
            }
            if self.in_view(p, now) {
                view.counted += 1;
                view.votes += usize::from(v);
                if p.rank().tie_order() < view_top {
                    view_top = p.rank().tie_order();
                    view.top = p.info.id;
                    view.top_in = v;
                }
                unheard |= p.last_heard.is_none();
                // A pending member agrees with our count when it shows our view and may vote
                // already: a tie-break won before it can vote would be lost (a flap) as soon
                // as the next member joins. For a sitting master, one that shows our view
                // agrees even before it may vote (one that cannot vote at all yet does not
                // count in its lease: `quiet_at`).
                let voting = p.beat.as_ref().is_some_and(|b| b.voting);
                let agrees = (p.view() == Some(my_view)
                    || (p.view().is_some() && p.view() == also))
                    && (voting || sitting.is_some());
                if !p.committed && !agrees {
                    pending_agree = false;
                }
            }
            if self.in_base(p, now, fresh) {
                base.counted += 1;
                base.votes += usize::from(v && !p.superseded);
                if p.rank().tie_order() < base_top {
                    base_top = p.rank().tie_order();
                    base.top = p.info.id;
                    base.top_in = v && !p.superseded;
                }
                unheard |= p.last_heard.is_none();
            }
        }
        // `--expect` pads the view only: the base grows by agreement, and padding it too
        // would keep a new cluster from ever agreeing on anything.
        base.no_tie = unheard || (fresh && !pending_agree);
        view.no_tie = view.counted < expect || unheard || !pending_agree;
        view.counted = view.counted.max(expect);
        (base, view)
    }

    /// (counted, exact half ruled out, best-ranked counted member) of the view: for
    /// invariant checks and status.
    pub(super) fn view_summary(&self, now: Millis) -> (usize, bool, MemberId) {
        self.view_summary_at(now, None)
    }

    /// [`Self::view_summary`]; `sitting`: as a sitting master's lease counts at `at`,
    /// without the members that cannot vote yet (`quiet_at`).
    pub(super) fn view_summary_at(
        &self,
        now: Millis,
        sitting: Option<Millis>,
    ) -> (usize, bool, MemberId) {
        let (_, view) = self.tallies(now, false, &|_| false, sitting);
        let mut best = (self.me.rank.tie_order(), self.me.id);
        for p in self.peers.values() {
            if self.in_view(p, now) && !self.quiet_at(p, sitting) && p.rank().tie_order() < best.0 {
                best = (p.rank().tie_order(), p.info.id);
            }
        }
        (view.counted, view.no_tie, best.1)
    }

    /// "view [..] base [..]" by name, for the simulator's failure dumps and debug logs.
    pub(crate) fn debug_sets(&self) -> String {
        let now = self.now;
        let fresh = self.fresh();
        let name = |p: &Peer| p.info.name.to_string();
        let view: Vec<String> = self
            .peers
            .values()
            .filter(|p| self.in_view(p, now))
            .map(name)
            .collect();
        let base: Vec<String> = self
            .peers
            .values()
            .filter(|p| self.in_base(p, now, fresh))
            .map(name)
            .collect();
        format!(
            "fresh={fresh} view {view:?} base {base:?} digests {:?}",
            self.digests()
        )
    }

    /// The tallies of the lease, for the simulator's failure dumps and the debug log of a
    /// step-down.
    pub(crate) fn debug_tallies(&self, now: Millis) -> String {
        let f = |p: &Peer| p.support_until > now;
        let (b, v) = self.tallies(now, true, &f, Some(now));
        let peers: Vec<String> = self
            .peers
            .values()
            .map(|p| {
                format!(
                    "{} {}:{}#{} {:?} crashed {} heard {:?} committed {} view {:?} quiet_until {} voting {:?}",
                    p.info.name, p.info.addr, p.info.port, p.info.id,
                    p.state,
                    p.crashed,
                    p.last_heard,
                    p.committed,
                    p.view(),
                    p.quiet_until,
                    p.beat.as_ref().map(|b| b.voting)
                )
            })
            .collect();
        let shown: Vec<String> = self
            .shown_configs(now)
            .iter()
            .map(|c| {
                let t = self.config_tally(c, true, &f, Some(now));
                format!(
                    "{c:?}:{}/{} top {} no_tie {}",
                    t.votes, t.counted, t.top_in, t.no_tie
                )
            })
            .collect();
        let departed: Vec<String> = self
            .departed_seats(now)
            .map(|p| format!("{} backing {}", p.info.name, p.departed_backing))
            .collect();
        format!(
            "(sitting) base {}/{} top {} no_tie {} | view {}/{} top {} no_tie {} | shown {shown:?} | departed {departed:?} | {} | {peers:?}",
            b.votes,
            b.counted,
            b.top_in,
            b.no_tie,
            v.votes,
            v.counted,
            v.top_in,
            v.no_tie,
            self.debug_sets()
        )
    }

    /// Whether the base differs from the view (pending members, superseded entries).
    pub(super) fn has_pending(&self, now: Millis) -> bool {
        !self.fresh()
            && self
                .peers
                .values()
                .any(|p| (self.in_view(p, now) && !p.committed) || p.superseded)
            || self.fresh() && self.peers.values().any(|p| self.in_view(p, now))
            || !self.shown_configs(now).is_empty()
            || self.view.shown_overflow
    }

    /// The epoch of the sitting mastership that members still quiet may have pledged their
    /// votes to without binding our commit: ours, while we are master (a candidate backed
    /// only by itself, bound by the view it shows until it commits, as in `own_only`).
    /// Members that follow a master commit as before: at once only with newcomers that
    /// never voted, else a lease and a drift after a quorum showed the view (committing
    /// sooner than their master made their bases differ from its own, which newcomers'
    /// first votes after a pledge need equal, and in the fast profile masters stepped down
    /// while several members joined 15 ms apart).
    fn pledge_epoch(&self) -> Option<u64> {
        self.lease.is_master.then_some(self.cand.current).flatten()
    }

    /// We can hold no promise to another candidate (`own_only`).
    fn self_unbound(&self) -> bool {
        self.votes.promise.is_none() && own_only(self.votes.last_granted_epoch, self.cand.current)
    }

    /// Commits the pending members once a joint quorum, reachable both ways, has shown our
    /// digests for a lease and a drift.
    pub(super) fn commit_view(&mut self, now: Millis) {
        // Runs on every input: a write to `view` drops the cached digests (tracked.rs), so
        // only write what changes.
        if !self.has_pending(now) {
            if self.view.agreed.is_some() {
                self.view.agreed = None;
            }
            return;
        }
        // Agreement on the view is enough: a newcomer that has agreed on nothing yet shows
        // another base (its whole view), and the members it completes must still be able to
        // commit it.
        let digests = self.digests();
        let reach = self.reach();
        let agreed = self.joint_quorum(now, true, &|p: &Peer| {
            p.reachable(now, &reach) && p.view() == Some(digests.0)
        });
        if !agreed {
            if self.view.agreed.is_some() {
                self.view.agreed = None;
            }
            self.commit_shown_prefix(now);
            return;
        }
        let since = match self.view.agreed {
            Some((d, t)) if d == digests => t,
            _ => {
                self.view.agreed = Some((digests, now));
                now
            }
        };
        // The wait lets every promise the agreeing voters gave out to a candidate with
        // another view run out. Voters that never voted nor stood (a cold start: each beat
        // shows the highest epoch its sender ever voted for or proposed) have none to wait
        // for, and neither has one whose highest vote is its own current candidacy: it stood
        // only with no promise out and votes for no one else while it stands, so the only
        // candidate it backs is itself, showing our view now (and bound by it until it
        // commits: shown views). A sitting master and its newcomers commit at once.
        let pledged_to = self.pledge_epoch();
        let unbound = self.self_unbound()
            && self.joint_quorum(now, true, &|p: &Peer| {
                p.reachable(now, &reach)
                    && p.view() == Some(digests.0)
                    && p.beat
                        .as_ref()
                        .is_some_and(|b| unbound_voter(b, pledged_to))
            });
        if !unbound && now < since + self.cfg.lease_ms + self.cfg.drift_ms {
            self.commit_shown_prefix(now);
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
        self.view.shown.clear();
        self.view.shown_at.clear();
        self.view.shown_overflow = false;
        self.view.ghosts.clear();
        self.outputs.push_back(super::Output::Remember);
    }

    /// Commits an earlier view we showed, when our own view has moved on since.
    ///
    /// A commit waits a lease and a drift with a quorum showing our view, and starts again
    /// whenever our view changes: members joining less than that apart (a rolling start,
    /// every half second) kept every node from ever committing, the newcomers, whose base
    /// differed, never voted, and once they made half the count the master lost its lease
    /// and nobody was elected until the joins stopped (30 members started 500 ms apart: no
    /// master from the 11th start to the last; sim test
    /// `members_joining_every_half_second_never_unseat_the_master`). So a view `W` we showed
    /// earlier is committed as it would have been had we learned of the later members only
    /// after the commit: a joint quorum, reachable both ways, of the base, of `W` (a strict
    /// majority: its pending members may not have shown it) and of every view we showed
    /// before it, whose members each first showed `W` a lease and a drift ago (or never
    /// voted) and show `W` or a view we showed after it now. Each of them is bound by `W`
    /// since it first showed it (its shown views), so its promises to candidates not bound
    /// by `W` have run out. The views we showed after `W` keep binding us, as they would
    /// have, shown after the commit; the later members stay pending.
    fn commit_shown_prefix(&mut self, now: Millis) {
        if self.view.shown.len() < 2
            || now < self.prefix_look
            || self.view.shown_overflow
            || !self.view.ghosts.is_empty()
            || self.peers.values().any(|p| p.superseded)
        {
            return;
        }
        self.prefix_look = now + (self.cfg.heartbeat_ms / 2).max(1);
        let wait = self.cfg.lease_ms + self.cfg.drift_ms;
        let current = self.digests().0;
        let shown: Vec<u64> = self.view.shown.iter().map(|c| config_digest(c)).collect();
        let view_ids = self.view_ids(now);
        let binding = self.binding_ids();
        let reach = self.reach();
        let pledged_to = self.pledge_epoch();
        let self_unbound = self.self_unbound();
        for j in (0..shown.len()).rev() {
            let Some(at) = self.view.shown_at.get(j).copied().flatten() else {
                continue;
            };
            let config = &self.view.shown[j];
            if shown[j] == current
                || !config.iter().all(|id| view_ids.binary_search(id).is_ok())
                || !config
                    .iter()
                    .any(|id| self.peers.get(id).is_some_and(|p| !p.committed))
            {
                continue;
            }
            let target = shown[j];
            let later: Vec<u64> = shown[j..].iter().copied().chain([current]).collect();
            let first_showed = |p: &Peer| {
                if !p.reachable(now, &reach) || !p.view().is_some_and(|d| later.contains(&d)) {
                    return None;
                }
                p.views_seen
                    .iter()
                    .find(|(d, _)| *d == target)
                    .map(|&(_, t)| t)
            };
            // Cheap first: a strict majority of `W` must have shown it at all.
            let showed = config
                .iter()
                .filter(|id| {
                    self.peers
                        .get(id)
                        .is_some_and(|p| first_showed(p).is_some())
                })
                .count();
            if 2 * (showed + 1) <= config.len() {
                continue;
            }
            let waited = now >= at + wait
                && self.prefix_quorum(now, j, &binding, &|p: &Peer| {
                    first_showed(p).is_some_and(|t| now >= t + wait)
                });
            let unbound = !waited
                && self_unbound
                && self.prefix_quorum(now, j, &binding, &|p: &Peer| {
                    first_showed(p).is_some()
                        && p.beat
                            .as_ref()
                            .is_some_and(|b| unbound_voter(b, pledged_to))
                });
            if waited || unbound {
                self.commit_prefix_at(now, j);
                return;
            }
        }
    }

    /// Whether the members for which `votes_for` holds, and we, decide in the base, in the
    /// `j`-th view we showed (a strict majority) and in every view we showed before it.
    /// `binding` is [`Self::binding_ids`], built once by the caller for all its looks.
    fn prefix_quorum(
        &self,
        now: Millis,
        j: usize,
        binding: &[MemberId],
        votes_for: &dyn Fn(&Peer) -> bool,
    ) -> bool {
        let (base, _) = self.tallies(now, true, votes_for, None);
        if !base.decides() {
            return false;
        }
        let base_ids = self.base_ids(now);
        let configs: Vec<Vec<MemberId>> = self.view.shown[..=j]
            .iter()
            .map(|c| self.binding_config(c, binding))
            .collect();
        let mut last = self.config_tally(&configs[j], true, votes_for, None);
        last.no_tie = true;
        last.decides()
            && self.departures_allow(now, true, votes_for, (&base, &last), None, false)
            && configs[..j]
                .iter()
                .filter(|c| !c.is_empty() && **c != base_ids)
                .all(|c| self.config_tally(c, true, votes_for, None).decides())
    }

    /// Commits the `j`-th view we showed: its members join the base, the views shown up to
    /// it no longer bind us, the later ones still do.
    fn commit_prefix_at(&mut self, now: Millis, j: usize) {
        let config = self.view.shown[j].clone();
        #[cfg(test)]
        PREFIX_COMMITS.with(|c| c.set(c.get() + 1));
        let expect = self.cfg.expect;
        for id in &config {
            if let Some(p) = self.peers.get_mut(id) {
                if !p.committed && p.counted(expect) {
                    debug!(name = %p.info.name, "member committed to the view (an earlier one we showed)");
                    p.committed = true;
                }
            }
        }
        let base = self.base_ids(now);
        let shown = std::mem::take(&mut self.view.shown);
        let shown_at = std::mem::take(&mut self.view.shown_at);
        (self.view.shown, self.view.shown_at) = shown
            .into_iter()
            .zip(shown_at)
            .skip(j + 1)
            .filter(|(c, _)| *c != base)
            .unzip();
        self.view.agreed = None;
        self.outputs.push_back(super::Output::Remember);
    }
}

#[cfg(test)]
thread_local! {
    /// Commits of an earlier shown view on this thread (the simulator's tests count them:
    /// a generator meant to exercise them must).
    pub(crate) static PREFIX_COMMITS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// A voter that can hold no promise to another candidate: it never voted, or its highest
/// vote is its own current candidacy (view.rs, `commit_view`).
fn own_only(voted: u64, candidacy: Option<u64>) -> bool {
    voted == 0 || candidacy == Some(voted)
}

/// [`own_only`], or a member still quiet whose highest vote is its pledge to the sitting
/// mastership at `pledged_to` ([`Election::pledge_epoch`], ours): epochs are unique to one
/// candidacy, so it holds no promise to anyone else (docs/ALGORITHM.md, "A pledge").
/// Without this, newcomers that pledged their votes waited a lease and a drift for commits
/// that used to come at once.
fn unbound_voter(b: &Beat, pledged_to: Option<u64>) -> bool {
    own_only(b.voted, b.candidacy) || !b.voting && Some(b.voted) == pledged_to
}

/// The members of `config` that are in `binding` (sorted), in `config`'s order: one pass
/// over both when `config` is sorted too (as every view we show is), else a search each.
fn kept_in(config: &[MemberId], binding: &[MemberId]) -> Vec<MemberId> {
    if config.is_sorted() {
        let mut rest = binding.iter().peekable();
        config
            .iter()
            .copied()
            .filter(|&id| {
                while rest.next_if(|&&b| b < id).is_some() {}
                rest.peek() == Some(&&id)
            })
            .collect()
    } else {
        config
            .iter()
            .copied()
            .filter(|id| binding.binary_search(id).is_ok())
            .collect()
    }
}

/// The digest a member shows for a view of exactly these members (sorted ids).
fn config_digest(config: &[MemberId]) -> u64 {
    let mut d = Digest::new();
    for &id in config {
        d.add(id);
    }
    d.finish()
}

#[cfg(test)]
mod kept_tests {
    use super::kept_in;

    #[test]
    fn kept_in_keeps_exactly_the_members_found_sorted_or_not() {
        // Random lists of small ids (xorshift), with duplicates and members on one side only.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for case in 0..5_000 {
            let mut config: Vec<u64> = (0..next(30)).map(|_| next(40)).collect();
            let mut binding: Vec<u64> = (0..next(30)).map(|_| next(40)).collect();
            binding.sort_unstable();
            binding.dedup();
            if case % 2 == 0 {
                config.sort_unstable();
            }
            let naive: Vec<u64> = config
                .iter()
                .copied()
                .filter(|id| binding.contains(id))
                .collect();
            assert_eq!(
                kept_in(&config, &binding),
                naive,
                "{config:?} in {binding:?}"
            );
        }
    }
}
