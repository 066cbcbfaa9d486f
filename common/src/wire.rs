//! Daemon-to-daemon messages (the bytes are [`crate::codec`]'s business).
//!
//! Two transports carry the same [`Envelope`]:
//!
//! - **UDP discovery**: a [`Message::Hello`] datagram broadcast to
//!   `BROADCAST_ADDRESS:BROADCAST_PORT` (and sent to every `--peer`) at start and then
//!   periodically, so a lost datagram heals. A hello is only a hint: it makes the receiver open
//!   a TCP link to the advertised address.
//! - **TCP peer links**, one per pair of members, carrying length-prefixed frames
//!   (4-byte big-endian length, then the sealed message, at most
//!   [`crate::codec::MAX_FRAME`] bytes).
//!
//! ```text
//!  alice                                     bob
//!    |--- UDP Hello(alice) -- broadcast ------>|   bob learns alice's address
//!    |<== TCP connect ===========================|
//!    |<-- open: Hello(bob) + nonce B -----------|   first frame on a link, both ways
//!    |--- open: Hello(alice) + nonce A -------->|
//!    |<-- #1 Peers[..] (tag over A, B, seq) ----|   the first sequenced frame proves the
//!    |--- #1 Peers[..] (tag over B, A, seq) --->|   key on this connection: link registered
//!    |--- Beat{seq, echo, grant, candidacy} --->|   every heartbeat interval, both ways;
//!    |<-- Beat{seq, echo, grant, candidacy} ----|   a beat is also sent at once on a change
//!    |            ...                           |
//!    |--- Leave{epoch} ------------------------>|   graceful leave (dispatch)
//! ```
//!
//! This module only defines the messages. [`crate::codec`] is the one place that turns them
//! into bytes and back (compact binary, a version byte, authentication and replay checks).

use crate::types::{MemberId, MemberInfo, Role};
use serde::{Deserialize, Serialize};

/// Longest [`Beat::gap_ms`] a receiver honours (a bound on a remote number): ten minutes.
pub const MAX_GAP_MS: u64 = 10 * 60 * 1000;

/// What every message travels in (inside the sealed frame of [`crate::codec`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Cluster name (`--cluster`): frames of other clusters are ignored.
    pub cluster: String,
    /// Sender's incarnation id.
    pub from: MemberId,
    /// The payload.
    pub msg: Message,
}

impl Envelope {
    /// Wraps `msg` from `from` in `cluster`.
    pub fn new(cluster: &str, from: MemberId, msg: Message) -> Self {
        Envelope {
            cluster: cluster.to_string(),
            from,
            msg,
        }
    }
}

/// An address a member can be reached at, passed along so that `--peer` clusters converge.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PeerAddr {
    /// IP address (text).
    pub addr: String,
    /// TCP peer port.
    pub port: u16,
}

/// The payloads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// "I exist": discovery datagram, first frame on every link, and re-sent after a rename.
    Hello(MemberInfo),
    /// Addresses of the other members the sender knows (sent on a new link).
    Peers {
        /// Known members' addresses.
        peers: Vec<PeerAddr>,
    },
    /// Heartbeat, vote and lease renewal; see [`Beat`].
    Beat(Beat),
    /// The sender leaves the cluster gracefully and renounces every vote it was given.
    Leave {
        /// Highest epoch the sender knows.
        epoch: u64,
    },
    /// An operator ran `quorumctl forget` on the sender: drop this lost member from the count.
    Forget {
        /// The forgotten member's incarnation id.
        id: MemberId,
    },
    /// The members the sender counts, sent to a peer whose beat shows another view: a member
    /// only the sender ever heard (one that was frozen or cut off when the peer joined) then
    /// counts for the peer too, so the two cannot agree on a count without it. At most
    /// [`crate::codec::MAX_GOSSIP`] entries: a longer view goes out in several frames.
    Members {
        /// The sender's counted members (itself and the receiver excluded).
        members: Vec<MemberInfo>,
    },
}

/// A promise of support: "I vote for `candidate` in `epoch`, and I will support nobody else
/// until my promise runs out".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grant {
    /// The candidate voted for.
    pub candidate: MemberId,
    /// The epoch the candidate proposed.
    pub epoch: u64,
}

/// Heartbeat, sent to each peer every heartbeat interval and at once on any change.
///
/// A beat is addressed to one peer, because `echo` is the receiver's own sequence number: it
/// lets the receiver date the promise in `grant` on its own clock (see `docs/ALGORITHM.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beat {
    /// Sender's beat counter; grows with every beat it sends.
    pub seq: u64,
    /// The latest `seq` the sender received from the receiver (0 if none yet).
    pub echo: u64,
    /// Sender's role.
    pub role: Role,
    /// The sender may become master now (past its discovery window, not a witness, not
    /// leaving): voters only vote for eligible members.
    pub eligible: bool,
    /// The sender's `--priority` now (a reload may change it): peers rank it by this from
    /// this beat on, so whom they vote for follows the change without a restart.
    pub priority: i32,
    /// The epoch the sender proposes or holds as master; None when it is not a candidate.
    /// Seeing None (or another epoch) tells voters the sender renounced earlier votes.
    pub candidacy: Option<u64>,
    /// The sender holds a valid master lease now.
    pub master: bool,
    /// Sender's vote, if it is granting one. From a sender that is not `voting` yet (quiet
    /// after its start) it is a pledge, only ever to a sitting master: it binds the sender
    /// like a vote but backs the master only once the sender votes.
    pub grant: Option<Grant>,
    /// Highest epoch the sender knows.
    pub epoch: u64,
    /// Highest epoch the sender ever voted for or proposed: it votes only above this (or
    /// renews the same vote). A candidate below it proposes a higher epoch.
    pub voted: u64,
    /// The sender is past its quiet period after start and may vote: members that raise the
    /// count are counted from then on (before, their vote cannot back anyone).
    #[serde(default)]
    pub voting: bool,
    /// While not voting: milliseconds until the sender may vote (its quiet period after
    /// start), counted from when it received the beat this one echoes (from now when it
    /// echoes none). The receiver dates it from when it sent that beat, which was earlier: a
    /// lower bound of the instant. A member that cannot vote yet cannot help any candidate
    /// anywhere before then, so a sitting master's lease does not count it until then. (A
    /// sender that counts from now gives a looser bound that is still a lower bound.)
    #[serde(default)]
    pub quiet_ms: u64,
    /// Digest of the sender's view: every member it counts or has pending, itself included.
    /// A voter votes only for a candidate whose view equals its own, and a pending member
    /// is committed once a quorum of the base shows the same view (0: unknown).
    #[serde(default)]
    pub view: u64,
    /// Digest of the sender's base: the agreed part of its view (its whole view while it has
    /// agreed on nothing yet). A vote needs equal views *and* bases (0: unknown).
    #[serde(default)]
    pub base: u64,
    /// The master the sender follows, if any.
    pub following: Option<MemberId>,
    /// The sender wants the receiver's beats every heartbeat (it is unsettled, the receiver
    /// is its master or next in line, ...): the receiver answers every heartbeat while the
    /// newest beat it has from the sender says so (election/cadence.rs).
    #[serde(default)]
    pub want: bool,
    /// 0: the sender beats the receiver every heartbeat. Otherwise this pair is quiet: the
    /// sender's next beat to the receiver comes within about this many milliseconds (a probe
    /// in rotation), and the receiver takes the sender for lost only this long after the
    /// silence window (capped at [`MAX_GAP_MS`] on receipt).
    #[serde(default)]
    pub gap_ms: u64,
}
