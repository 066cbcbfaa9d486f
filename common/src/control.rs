//! The control protocol between `quorumctl` and the local daemon.
//!
//! Newline-delimited JSON over a Unix socket. The client writes one [`Request`] line; the
//! daemon answers one [`Reply`] line. `follow` is answered with [`Response::Following`], then
//! one [`Event`] per line (the first is a full [`Event::Snapshot`]) until either side hangs up.
//!
//! ```text
//! quorumctl                       quorumd
//!    | {"type":"status"}\n           |
//!    |------------------------------>|
//!    | {"Ok":{"type":"status",...}}\n|
//!    |<------------------------------|
//!    | {"type":"follow"}\n           |
//!    |------------------------------>|
//!    | {"Ok":{"type":"following"}}\n |
//!    | {"type":"snapshot",...}\n     |
//!    | {"type":"role",...}\n  ...    |
//!    |<------------------------------|
//! ```
//!
//! This is a stable, versioned interface: fields may be added, never renamed or removed without
//! bumping [`PROTOCOL_VERSION`].

use crate::types::{MemberState, Role, Strategy};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Version of the control protocol; reported in [`Status::protocol_version`].
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request or reply line accepted, in bytes (newline excluded).
pub const MAX_LINE: usize = 64 * 1024;

/// Default control socket path (systemd's `RuntimeDirectory=quorumd`).
pub const DEFAULT_SOCKET: &str = "/run/quorumd/quorumd.sock";

/// Environment variable that overrides the socket path for both programs.
pub const SOCKET_ENV: &str = "QUORUMD_SOCKET";

/// One request line from a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// The full status of this node and its view of the cluster.
    Status,
    /// This node's role only (cheap: for scripts polling several times a second).
    Role,
    /// The members table only.
    Members,
    /// Rename this node; peers see the new name, the rank order does not change. Privileged.
    Rename {
        /// The new name (non-empty, no control characters, unique in the cluster).
        name: String,
    },
    /// Leave the cluster gracefully: hand over, run the hook, exit 0. Privileged.
    Dispatch,
    /// Stream events: a snapshot, then role, master and membership changes.
    Follow,
    /// Remove a lost member from the quorum count (an operator's decision). Privileged.
    Forget {
        /// The member's name.
        name: String,
    },
    /// Hand over now and stay a voter: not eligible for mastership for `for_ms`, or until
    /// [`Request::Resume`] when absent. Privileged.
    StepDown {
        /// How long the step-down lasts, in milliseconds (absent: until `resume`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_ms: Option<u64>,
    },
    /// End a step-down. Privileged.
    Resume,
    /// The daemon's metrics in the Prometheus text format.
    Metrics,
    /// Maintenance on (not eligible, still counted and voting) or off. Privileged.
    Maintenance {
        /// On or off.
        on: bool,
    },
}

impl Request {
    /// Whether the request changes state and therefore needs root, the daemon's uid or group.
    pub fn is_privileged(&self) -> bool {
        matches!(
            self,
            Request::Rename { .. }
                | Request::Dispatch
                | Request::Forget { .. }
                | Request::StepDown { .. }
                | Request::Resume
                | Request::Maintenance { .. }
        )
    }
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
// A status is the answer people ask for most; boxing it would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Response {
    /// Answer to [`Request::Status`].
    Status(Status),
    /// Answer to [`Request::Role`].
    Role {
        /// This node's role.
        role: Role,
        /// When `role` is master: the lease end on this host's `CLOCK_MONOTONIC`, in ns. A
        /// client that reads the answer at or after it (the daemon was frozen between
        /// answering and sending, say) must not take it as master.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        valid_until_ns: Option<u64>,
    },
    /// Answer to [`Request::Members`].
    Members {
        /// The members table, self included.
        members: Vec<Member>,
    },
    /// Answer to [`Request::Rename`].
    Renamed {
        /// The previous name.
        from: String,
        /// The new name.
        to: String,
    },
    /// Answer to [`Request::Dispatch`], sent once the node has handed over and run its hook,
    /// just before it exits.
    Dispatched,
    /// Answer to [`Request::Follow`]; [`Event`] lines follow.
    Following,
    /// Answer to [`Request::Forget`].
    Forgotten {
        /// The forgotten member's name.
        name: String,
    },
    /// Answer to [`Request::Metrics`].
    Metrics {
        /// Prometheus/OpenMetrics text.
        text: String,
    },
    /// Answer to [`Request::StepDown`], [`Request::Resume`] and [`Request::Maintenance`]:
    /// why this node is held back from mastership now (empty: eligible).
    Held {
        /// Reasons, e.g. `maintenance`, `step-down until resume`, `check db failing`.
        held: Vec<String>,
    },
}

/// The answer line to a request: `{"Ok": Response}` or `{"Err": ControlError}`.
pub type Reply = Result<Response, ControlError>;

/// Why the daemon refused a request. The daemon's state is unchanged by a refused request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ControlError {
    /// Machine-readable reason.
    pub kind: ErrorKind,
    /// A sentence for people.
    pub message: String,
}

impl ControlError {
    /// Builds an error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ControlError {
            kind,
            message: message.into(),
        }
    }
}

/// Machine-readable reasons for a refused request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The line was not a valid request (not JSON, unknown type, missing field, too long).
    BadRequest,
    /// The caller may read but not change state.
    PermissionDenied,
    /// No member has that name.
    NotFound,
    /// The request conflicts with the cluster's state (forget an alive member, name taken...).
    Conflict,
    /// The node is leaving and accepts no more changes.
    ShuttingDown,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::BadRequest => "bad request",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::ShuttingDown => "shutting down",
        })
    }
}

/// Votes behind the current decision, as seen by this node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quorum {
    /// Members (self included) whose vote backs the master this node follows (or itself).
    pub votes: usize,
    /// Votes needed for a strict majority of `counted`.
    pub needed: usize,
    /// Counted members: alive + lost (not dispatched, not certainly crashed), at least `--expect`.
    pub counted: usize,
}

/// One row of the members table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The member's name.
    pub name: String,
    /// The address peers reach it at.
    pub address: String,
    /// Its peer (TCP) port.
    pub port: u16,
    /// alive, lost or dispatched.
    pub state: MemberState,
    /// Its role as last reported by it (None when never heard or not alive).
    pub role: Option<Role>,
    /// Whether it counts for quorum.
    pub counted: bool,
    /// Whether it is a witness (votes, never master).
    pub witness: bool,
    /// Whether this row is the answering node itself.
    #[serde(rename = "self")]
    pub is_self: bool,
    /// Milliseconds since this node last heard from it (None for self and never heard).
    pub last_heard_ms: Option<u64>,
    /// Reached both ways: heard from it, and it echoed one of our beats, within the silence
    /// window (the declared gap of a quiet pair counts only while forming). What this node's
    /// quorum test counts: an `inquorate` node lists the members it does not reach. Always
    /// true for self; false from a daemon older than the field.
    #[serde(default)]
    pub reachable: bool,
}

/// Full status of a node: what `quorumctl status` prints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This node's name.
    pub name: String,
    /// This node's role.
    pub role: Role,
    /// The cluster epoch this node knows (grows with every new mastership).
    pub epoch: u64,
    /// The master's name, if this node knows one.
    pub master: Option<String>,
    /// Vote count behind the current decision.
    pub quorum: Quorum,
    /// Members table, self included, best rank first.
    pub members: Vec<Member>,
    /// quorumd version.
    pub version: String,
    /// Control protocol version ([`PROTOCOL_VERSION`]).
    pub protocol_version: u32,
    /// Cluster name (`--cluster`).
    pub cluster: String,
    /// Rank strategy.
    pub strategy: Strategy,
    /// Whether this node is a witness.
    pub witness: bool,
    /// Why the cluster refused this node (it never acts as master in this run): another
    /// rank strategy, or its name is used by an older live member. Absent when not refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Cluster traffic authentication and the messages refused so far (filled in by the
    /// daemon; absent from older daemons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<Security>,
    /// Why this node is not eligible for mastership although it votes (maintenance,
    /// step-down, failing checks). Empty when eligible.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<String>,
    /// Health checks (`--check`), in configuration order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckState>,
}

/// Whether cluster traffic is authenticated, and counts of refused messages since start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// A cluster key is in use (`--key-file`). False: anyone on the LAN can join or forge.
    pub authenticated: bool,
    /// Messages without a tag while we hold a key (or with one while we hold none).
    pub unauthenticated: u64,
    /// Messages whose tag verifies with none of our keys.
    pub bad_key: u64,
    /// Replayed or stale messages (link sequence, datagram time window).
    pub replayed: u64,
    /// Garbage, other versions, bad names.
    pub malformed: u64,
    /// Traffic on the link to each linked member: totals since the link came up and rates
    /// over about the last second. (Kept here, the block the daemon fills in, beside the
    /// counts of refused messages.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<PeerTraffic>,
}

/// Frames and bytes exchanged with one member over its link.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerTraffic {
    /// The member's name.
    pub name: String,
    /// Frames (messages) received from it since the link came up.
    pub messages_in: u64,
    /// Bytes received from it (frames with their length prefix).
    pub bytes_in: u64,
    /// Frames queued to it.
    pub messages_out: u64,
    /// Bytes queued to it (before sealing).
    pub bytes_out: u64,
    /// Messages per second received, over about the last second.
    pub messages_in_per_s: u64,
    /// Bytes per second received.
    pub bytes_in_per_s: u64,
    /// Messages per second sent.
    pub messages_out_per_s: u64,
    /// Bytes per second sent.
    pub bytes_out_per_s: u64,
}

/// One health check's state in [`Status`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckState {
    /// The command, as configured.
    pub command: String,
    /// `true` while the check counts as passing (after `rise` successes; at start).
    pub passing: bool,
    /// Exit code of the last run; absent before the first run or when killed/timed out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// First line of the last run's output (stdout, else stderr), or why it failed to run.
    #[serde(default)]
    pub output: String,
}

/// One line of a `follow` stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
// Snapshots open every follow stream; boxing them would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// The full status: always the first event of a stream.
    Snapshot(Status),
    /// This node's role changed.
    Role {
        /// The new role.
        role: Role,
        /// The role before.
        previous: Role,
        /// The master this node now knows (None if none).
        master: Option<String>,
        /// The cluster epoch.
        epoch: u64,
        /// Why (`QUORUM_REASON`): e.g. `check db failing`, `maintenance`, `quorum lost`.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        reason: String,
    },
    /// The master this node follows changed, its own role unchanged.
    Master {
        /// The new master (None if none).
        master: Option<String>,
        /// The cluster epoch.
        epoch: u64,
    },
    /// A member joined, was lost, left, came back, was renamed or forgotten. On the wire the
    /// change is flat: `{"type":"member","name":"bob","change":"renamed","from":"robert"}`.
    Member {
        /// The member's (current) name.
        name: String,
        /// What happened: its `change` key (and `from` for a rename) sit beside `name`.
        #[serde(flatten)]
        change: MemberChange,
    },
}

/// What happened to a member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum MemberChange {
    /// First heard from (or a new incarnation replaced an old entry of that name).
    Joined,
    /// Went silent (still counted).
    Lost,
    /// Crash certain: its host closed its links. Not counted until it returns.
    Crashed,
    /// Heard from again after being lost.
    Returned,
    /// Left gracefully.
    Dispatched,
    /// Renamed; the event's `name` is the new name.
    Renamed {
        /// The old name.
        from: String,
    },
    /// Removed from the count by an operator.
    Forgotten,
    /// Removed from the table some time after it was dispatched (quorumd `--reap-dispatched`,
    /// 24 h by default). It counted no more since it left.
    Reaped,
}

/// Plain words for logs and human output: `joined`, `renamed from "bob"`, ...
impl fmt::Display for MemberChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberChange::Joined => f.write_str("joined"),
            MemberChange::Lost => f.write_str("lost (silent, still counted)"),
            MemberChange::Crashed => f.write_str("crashed (not counted until it returns)"),
            MemberChange::Returned => f.write_str("returned"),
            MemberChange::Dispatched => f.write_str("left gracefully"),
            MemberChange::Renamed { from } => write!(f, "renamed from {from}"),
            MemberChange::Forgotten => f.write_str("forgotten by an operator"),
            MemberChange::Reaped => f.write_str("removed (left long ago)"),
        }
    }
}

/// Encodes one line (JSON plus `\n`).
pub fn encode_line<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing our own plain data types cannot fail (no maps with non-string keys).
    let mut out = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    out.push(b'\n');
    out
}

/// Decodes one request line; a clear [`ControlError`] on anything else.
pub fn decode_request(line: &[u8]) -> Result<Request, ControlError> {
    if line.len() > MAX_LINE {
        return Err(ControlError::new(
            ErrorKind::BadRequest,
            format!("request line longer than {MAX_LINE} bytes"),
        ));
    }
    serde_json::from_slice(line).map_err(|e| {
        ControlError::new(
            ErrorKind::BadRequest,
            format!("not a valid request ({e}); expected one JSON object per line, e.g. {{\"type\":\"status\"}}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_read_like_the_docs() {
        let r = Request::Rename { name: "bob".into() };
        let line = encode_line(&r);
        assert_eq!(line, b"{\"type\":\"rename\",\"name\":\"bob\"}\n".to_vec());
        assert_eq!(decode_request(&line[..line.len() - 1]), Ok(r));
        assert_eq!(
            decode_request(b"{\"type\":\"status\"}"),
            Ok(Request::Status)
        );
    }

    #[test]
    fn garbage_and_huge_lines_are_clear_errors() {
        let e = decode_request(b"hello").unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        let e = decode_request(b"{\"type\":\"launch_missiles\"}").unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        let huge = vec![b' '; MAX_LINE + 1];
        let e = decode_request(&huge).unwrap_err();
        assert!(e.message.contains("longer"), "{e}");
    }

    #[test]
    fn every_event_has_the_documented_flat_json() {
        let member = |name: &str, change| Event::Member {
            name: name.into(),
            change,
        };
        let cases = [
            (
                Event::Role {
                    reason: String::new(),
                    role: Role::Master,
                    previous: Role::Slave,
                    master: Some("alice".into()),
                    epoch: 3,
                },
                r#"{"type":"role","role":"master","previous":"slave","master":"alice","epoch":3}"#,
            ),
            (
                Event::Role {
                    reason: String::new(),
                    role: Role::Inquorate,
                    previous: Role::Master,
                    master: None,
                    epoch: 4,
                },
                r#"{"type":"role","role":"inquorate","previous":"master","master":null,"epoch":4}"#,
            ),
            (
                Event::Master {
                    master: Some("bob".into()),
                    epoch: 5,
                },
                r#"{"type":"master","master":"bob","epoch":5}"#,
            ),
            (
                member("bob", MemberChange::Joined),
                r#"{"type":"member","name":"bob","change":"joined"}"#,
            ),
            (
                member("bob", MemberChange::Lost),
                r#"{"type":"member","name":"bob","change":"lost"}"#,
            ),
            (
                member("bob", MemberChange::Crashed),
                r#"{"type":"member","name":"bob","change":"crashed"}"#,
            ),
            (
                member("bob", MemberChange::Returned),
                r#"{"type":"member","name":"bob","change":"returned"}"#,
            ),
            (
                member("bob", MemberChange::Dispatched),
                r#"{"type":"member","name":"bob","change":"dispatched"}"#,
            ),
            (
                member(
                    "pete",
                    MemberChange::Renamed {
                        from: "peter".into(),
                    },
                ),
                r#"{"type":"member","name":"pete","change":"renamed","from":"peter"}"#,
            ),
            (
                member("bob", MemberChange::Forgotten),
                r#"{"type":"member","name":"bob","change":"forgotten"}"#,
            ),
            (
                member("bob", MemberChange::Reaped),
                r#"{"type":"member","name":"bob","change":"reaped"}"#,
            ),
        ];
        for (event, json) in cases {
            let line = String::from_utf8(encode_line(&event)).unwrap();
            assert_eq!(line, format!("{json}\n"));
            let back: Event = serde_json::from_str(json).unwrap();
            assert_eq!(back, event, "{json}");
        }
    }

    #[test]
    fn reply_errors_serialize_as_err() {
        let reply: Reply = Err(ControlError::new(ErrorKind::PermissionDenied, "no"));
        let s = String::from_utf8(encode_line(&reply)).unwrap();
        assert_eq!(
            s,
            "{\"Err\":{\"kind\":\"permission_denied\",\"message\":\"no\"}}\n"
        );
        let back: Reply = serde_json::from_str(s.trim()).unwrap();
        assert_eq!(back, reply);
    }
}
