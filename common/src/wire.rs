//! Daemon-to-daemon messages and their codec.
//!
//! Two transports carry the same [`Envelope`]:
//!
//! - **UDP discovery**: a [`Message::Hello`] datagram broadcast to
//!   `BROADCAST_ADDRESS:BROADCAST_PORT` (and sent to every `--peer`) at start and then
//!   periodically, so a lost datagram heals. A hello is only a hint: it makes the receiver open
//!   a TCP link to the advertised address.
//! - **TCP peer links**, one per pair of members, carrying length-prefixed frames
//!   (4-byte big-endian length, then the encoded envelope, at most [`MAX_FRAME`] bytes).
//!
//! ```text
//!  alice                                     bob
//!    |--- UDP Hello(alice) -- broadcast ------>|   bob learns alice's address
//!    |<== TCP connect ===========================|
//!    |<-- Hello(bob), Peers[..] ----------------|   first frames on a link, both ways
//!    |--- Hello(alice), Peers[..] ------------->|
//!    |--- Beat{seq, echo, grant, candidacy} --->|   every heartbeat interval, both ways;
//!    |<-- Beat{seq, echo, grant, candidacy} ----|   a beat is also sent at once on a change
//!    |            ...                           |
//!    |--- Leave{epoch} ------------------------>|   graceful leave (dispatch)
//! ```
//!
//! Only [`encode`] and [`decode`] know the codec (JSON: readable in tcpdump, the same codec as
//! the control socket). Authentication (HMAC with `--key-file`) wraps the encoded bytes in the
//! daemon; this module never sees keys.

use crate::types::{MemberId, MemberInfo, Role};
use serde::{Deserialize, Serialize};

/// First field of every envelope: tells our frames from anybody else's traffic on the port.
pub const MAGIC: &str = "quorumd";

/// Version of the daemon-to-daemon protocol. Frames of another version are refused.
pub const WIRE_VERSION: u32 = 1;

/// Largest encoded envelope accepted or sent, in bytes (UDP datagrams and TCP frames).
pub const MAX_FRAME: usize = 60 * 1024;

/// The header every message travels in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Always [`MAGIC`].
    pub magic: String,
    /// Always [`WIRE_VERSION`] for frames we send.
    pub version: u32,
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
            magic: MAGIC.to_string(),
            version: WIRE_VERSION,
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
#[serde(tag = "type", rename_all = "snake_case")]
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
    /// The epoch the sender proposes or holds as master; None when it is not a candidate.
    /// Seeing None (or another epoch) tells voters the sender renounced earlier votes.
    pub candidacy: Option<u64>,
    /// The sender holds a valid master lease now.
    pub master: bool,
    /// Sender's vote, if it is granting one.
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
}

/// Why a frame was refused. Refusing a frame never changes any state.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Larger than [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME}")]
    TooLarge(usize),
    /// Not JSON of the expected shape.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// Not our protocol at all.
    #[error("not a quorumd frame (bad magic)")]
    BadMagic,
    /// Our protocol, another version.
    #[error("unsupported protocol version {0} (this node speaks {WIRE_VERSION})")]
    BadVersion(u32),
    /// A hello whose name breaks [`crate::types::check_name`], the rule local names follow.
    #[error("bad member name: {0}")]
    BadName(String),
}

/// Encodes an envelope. Fails only if the result would exceed [`MAX_FRAME`].
pub fn encode(env: &Envelope) -> Result<Vec<u8>, DecodeError> {
    let bytes = serde_json::to_vec(env).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if bytes.len() > MAX_FRAME {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    Ok(bytes)
}

/// Decodes and checks an envelope: size, shape, magic, version, and a hello's name (the same
/// rule as local names). Cluster and sender are left to the caller (a foreign cluster is normal traffic, not an error).
pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    if bytes.len() > MAX_FRAME {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    // Look at magic and version first, so that a newer protocol gets a precise error instead
    // of a shape mismatch.
    #[derive(Deserialize)]
    struct Head {
        magic: String,
        version: u32,
    }
    let head: Head =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if head.magic != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if head.version != WIRE_VERSION {
        return Err(DecodeError::BadVersion(head.version));
    }
    let env: Envelope =
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if let Message::Hello(info) = &env.msg {
        crate::types::check_name(&info.name).map_err(DecodeError::BadName)?;
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Rank, Strategy};

    fn info() -> MemberInfo {
        MemberInfo {
            id: 7,
            name: "alice".into(),
            addr: "127.0.0.1".into(),
            port: 8080,
            rank: Rank {
                priority: 0,
                key: 1,
                tiebreak: "alice".into(),
                id: 7,
            },
            started_ms: 1,
            witness: false,
            strategy: Strategy::Age,
        }
    }

    #[test]
    fn envelopes_round_trip() {
        let msgs = vec![
            Message::Hello(info()),
            Message::Peers {
                peers: vec![PeerAddr {
                    addr: "10.0.0.1".into(),
                    port: 1,
                }],
            },
            Message::Beat(Beat {
                seq: 3,
                echo: 2,
                role: Role::Slave,
                eligible: true,
                candidacy: None,
                master: false,
                grant: Some(Grant {
                    candidate: 7,
                    epoch: 4,
                }),
                epoch: 4,
                voted: 4,
                voting: true,
                view: 0,
                base: 0,
                following: Some(7),
            }),
            Message::Leave { epoch: 9 },
            Message::Forget { id: 3 },
        ];
        for msg in msgs {
            let env = Envelope::new("c", 1, msg);
            assert_eq!(decode(&encode(&env).unwrap()), Ok(env));
        }
    }

    #[test]
    fn names_from_the_network_follow_the_local_rule() {
        let hello = |name: &str| {
            let mut i = info();
            i.name = name.into();
            Envelope::new("c", 7, Message::Hello(i))
        };
        // 200 characters of CJK and emoji (about 600 bytes) pass, as they do locally.
        let wide: String = "数据库🐘".chars().cycle().take(200).collect();
        let env = hello(&wide);
        assert_eq!(decode(&encode(&env).unwrap()), Ok(env));
        for bad in ["", "a b", "a\u{7}", &"x".repeat(256)] {
            let bytes = encode(&hello(bad)).unwrap();
            assert_eq!(
                decode(&bytes),
                Err(DecodeError::BadName(
                    crate::types::check_name(bad).unwrap_err()
                )),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn junk_is_refused_without_panic() {
        assert!(matches!(decode(b""), Err(DecodeError::Malformed(_))));
        assert!(matches!(
            decode(b"\xff\x00garbage"),
            Err(DecodeError::Malformed(_))
        ));
        assert_eq!(
            decode(br#"{"magic":"other","version":1}"#),
            Err(DecodeError::BadMagic)
        );
        assert_eq!(
            decode(br#"{"magic":"quorumd","version":99,"cluster":"c"}"#),
            Err(DecodeError::BadVersion(99))
        );
        assert!(matches!(
            decode(
                br#"{"magic":"quorumd","version":1,"cluster":"c","from":1,"msg":{"type":"nope"}}"#
            ),
            Err(DecodeError::Malformed(_))
        ));
        assert_eq!(
            decode(&vec![b'{'; MAX_FRAME + 1]),
            Err(DecodeError::TooLarge(MAX_FRAME + 1))
        );
    }
}
