//! Identity, rank, roles and member states: the words every other module uses.

use serde::{Deserialize, Serialize};
use std::cmp::{Ordering, Reverse};
use std::fmt;

/// The identity of one running quorumd process: its incarnation id, drawn anew at every start.
///
/// Names are for people and may change (`quorumctl rename`); a `MemberId` never does. Identity
/// is never derived from a network address: many daemons may share one host.
pub type MemberId = u64;

/// Which total order the vote uses. It must be the same on every member of a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The earliest started member ranks first (the original's default, "life time").
    #[default]
    Age,
    /// The member with the lowest peer port ranks first (`--use-port-instead-of-life-time`).
    Port,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Age => "age",
            Strategy::Port => "port",
        })
    }
}

/// A member's place in the vote order. Smaller ranks first: the best candidate is the minimum.
///
/// `key`, `tiebreak` and `id` are fixed when the process starts (a rename does not move a
/// node in the order); `priority` may change at runtime (a reload), so it orders whom nodes
/// vote for but never the exact-half tie-break, which needs an order every node agrees on
/// whatever it heard last (see [`Rank::tie_order`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rank {
    /// `--priority`: a higher priority ranks first, before `key`. Absent on the wire = 0.
    #[serde(default)]
    pub priority: i32,
    /// Start time in milliseconds since the Unix epoch (strategy age) or the peer port (port).
    pub key: u64,
    /// The name the process started with: breaks ties of `key` (e.g. equal ports on two hosts).
    pub tiebreak: String,
    /// The incarnation id: makes the order total even for equal keys and names.
    pub id: MemberId,
}

impl Ord for Rank {
    fn cmp(&self, other: &Self) -> Ordering {
        (Reverse(self.priority), self.key, &self.tiebreak, self.id).cmp(&(
            Reverse(other.priority),
            other.key,
            &other.tiebreak,
            other.id,
        ))
    }
}

impl Rank {
    /// The order of the exact-half tie-break: the fixed part of the rank, without `priority`.
    /// Two nodes that count the same members agree on its minimum even when one of them has
    /// not heard a member's new priority yet.
    pub fn tie_order(&self) -> (u64, &str, MemberId) {
        (self.key, &self.tiebreak, self.id)
    }
}

impl PartialOrd for Rank {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What a member tells others about itself when it says hello.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Incarnation id, new at every start.
    pub id: MemberId,
    /// Current name; unique in the cluster. A newer incarnation with the same name replaces the
    /// old entry (re-entry).
    pub name: String,
    /// Address peers reach this member at (never `0.0.0.0`).
    pub addr: String,
    /// TCP port of this member's peer listener.
    pub port: u16,
    /// Rank in the vote order.
    pub rank: Rank,
    /// Start time in milliseconds since the Unix epoch (tells which incarnation is newer).
    pub started_ms: u64,
    /// A witness votes but never becomes master.
    pub witness: bool,
    /// The rank strategy this member uses; a member with another strategy is refused.
    pub strategy: Strategy,
}

/// Who a process is when it starts: the one place a member's identity and rank are built
/// (the daemon and the simulator both call it).
#[derive(Clone, Debug)]
pub struct Identity {
    /// The new incarnation id.
    pub id: MemberId,
    /// The name it starts with.
    pub name: String,
    /// The address it advertises.
    pub addr: String,
    /// Its peer port.
    pub port: u16,
    /// Its start time, milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// How it ranks: by start time or by port.
    pub strategy: Strategy,
    /// `--priority`.
    pub priority: i32,
    /// `--witness`.
    pub witness: bool,
}

impl MemberInfo {
    /// The member a process announces at its start: ranked by its start time (age, the
    /// oldest first) or by its port, then by its name, then by its incarnation id.
    pub fn start(who: Identity) -> MemberInfo {
        MemberInfo {
            rank: Rank {
                priority: who.priority,
                key: match who.strategy {
                    Strategy::Age => who.started_ms,
                    Strategy::Port => u64::from(who.port),
                },
                tiebreak: who.name.clone(),
                id: who.id,
            },
            id: who.id,
            name: who.name,
            addr: who.addr,
            port: who.port,
            started_ms: who.started_ms,
            witness: who.witness,
            strategy: who.strategy,
        }
    }
}

/// The role of a node, as reported by `quorumctl role` and passed to hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Discovery window after boot: no claim, no hook.
    Starting,
    /// Holds the mastership (and a valid lease).
    Master,
    /// Part of a quorum, following the master (or waiting for the election to settle).
    Slave,
    /// Cannot reach a quorum; keeps trying to rejoin.
    Inquorate,
    /// Leaving gracefully.
    Dispatching,
}

impl Role {
    /// The lower-case word used on the command line, in hooks and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Starting => "starting",
            Role::Master => "master",
            Role::Slave => "slave",
            Role::Inquorate => "inquorate",
            Role::Dispatching => "dispatching",
        }
    }

    /// All roles, in the order of their life cycle.
    pub const ALL: [Role; 5] = [
        Role::Starting,
        Role::Master,
        Role::Slave,
        Role::Inquorate,
        Role::Dispatching,
    ];
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role {s:?} (expected starting, master, slave, inquorate or dispatching)")
            })
    }
}

/// How other members see a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Heard from recently.
    Alive,
    /// Silent or crashed. Counted for quorum, unless its crash is certain.
    Lost,
    /// Left gracefully; not counted.
    Dispatched,
}

impl MemberState {
    /// The lower-case word used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Alive => "alive",
            MemberState::Lost => "lost",
            MemberState::Dispatched => "dispatched",
        }
    }
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest accepted name, in characters (not bytes): 255 characters of any script. At most
/// 4 bytes each, a name stays far below the frame limit ([`crate::codec::MAX_FRAME`]).
pub const MAX_NAME: usize = 255;

/// Checks a name (member or cluster), wherever it comes from: the command line, the
/// environment, the config file, `quorumctl rename`, the state file, or a peer's hello
/// ([`crate::codec::decode_body`]). A name is 1 to [`MAX_NAME`] printable characters of any script:
/// no whitespace (names are words in tables and logs), no control characters and no invisible
/// formatting characters (zero-width, direction overrides) that would make two names look
/// alike. The message says what is wrong.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name must not be empty".into());
    }
    let chars = name.chars().count();
    if chars > MAX_NAME {
        return Err(format!(
            "name is {chars} characters long; the limit is {MAX_NAME}"
        ));
    }
    if let Some(c) = name.chars().find(|&c| !is_printable(c)) {
        return Err(format!(
            "name contains {c:?} (U+{:04X}); whitespace, control and invisible formatting \
             characters are not allowed",
            u32::from(c)
        ));
    }
    Ok(())
}

/// Visible: not whitespace, not a control character, not an invisible format character.
fn is_printable(c: char) -> bool {
    let invisible = matches!(
        c,
        '\u{00AD}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    );
    !(c.is_whitespace() || c.is_control() || invisible)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_up_to_255_printable_characters_of_any_script() {
        // 200 characters of CJK and emoji: about 600 bytes, accepted.
        let cjk_emoji: String = "数据库🐘".chars().cycle().take(200).collect();
        assert!(cjk_emoji.len() > 600);
        assert_eq!(check_name(&cjk_emoji), Ok(()));
        let emoji_255: String = std::iter::repeat_n('🐘', 255).collect();
        assert_eq!(check_name(&emoji_255), Ok(()));
        for ok in [
            "alice",
            "host:8080",
            "db-1.example",
            "Ærø",
            "ñandú",
            "a\u{301}",
        ] {
            assert_eq!(check_name(ok), Ok(()), "{ok:?}");
        }
        let too_long: String = std::iter::repeat_n('x', 256).collect();
        assert!(
            check_name(&too_long)
                .unwrap_err()
                .contains("256 characters")
        );
        for bad in [
            "",
            "a b",
            "a\tb",
            "a\u{7}",
            "a\nb",
            "a\u{200B}b",
            "\u{202E}evil",
            "a\u{A0}b",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} should be refused");
        }
    }
}

#[cfg(test)]
mod rank_tests {
    use super::Rank;

    fn rank(priority: i32, key: u64, id: u64) -> Rank {
        Rank {
            priority,
            key,
            tiebreak: "n".into(),
            id,
        }
    }

    #[test]
    fn a_higher_priority_ranks_first_then_the_key() {
        assert!(rank(1, 900, 2) < rank(0, 100, 1));
        assert!(rank(-1, 100, 1) > rank(0, 900, 2));
        assert!(rank(0, 100, 2) < rank(0, 900, 1));
    }

    #[test]
    fn a_rank_without_priority_on_the_wire_has_priority_zero() {
        let r: Rank = serde_json::from_str(r#"{"key":5,"tiebreak":"a","id":3}"#).expect("rank");
        assert_eq!(r.priority, 0);
    }
}

#[cfg(test)]
mod identity_tests {
    use super::{Identity, MemberInfo, Strategy};

    fn started(name: &str, id: u64, started_ms: u64, port: u16, strategy: Strategy) -> MemberInfo {
        MemberInfo::start(Identity {
            id,
            name: name.into(),
            addr: "10.0.0.1".into(),
            port,
            started_ms,
            strategy,
            priority: 0,
            witness: false,
        })
    }

    #[test]
    fn the_oldest_ranks_first_by_age_and_the_lowest_port_by_port() {
        let (old, young) = (1_000, 2_000);
        let a = started("a", 7, old, 9002, Strategy::Age);
        let b = started("b", 3, young, 9001, Strategy::Age);
        assert!(a.rank < b.rank, "by age the older process ranks first");
        let a = started("a", 7, old, 9002, Strategy::Port);
        let b = started("b", 3, young, 9001, Strategy::Port);
        assert!(b.rank < a.rank, "by port the lower port ranks first");
        assert_eq!(
            (a.rank.key, a.rank.id, a.rank.tiebreak.as_str()),
            (9002, 7, "a")
        );
    }

    #[test]
    fn equal_keys_are_ordered_by_name_then_id() {
        let a = started("a", 9, 1_000, 9000, Strategy::Age);
        let b = started("b", 1, 1_000, 9000, Strategy::Age);
        let a2 = started("a", 10, 1_000, 9000, Strategy::Age);
        assert!(a.rank < b.rank);
        assert!(a.rank < a2.rank);
    }
}
