//! Log lines for members that go `lost` and come back over and over: the first few of each
//! member are logged as they come, the rest of a ten-second window are counted and told in
//! one line when the window ends, with the state the member is in by then.
//!
//! Why: on a loaded cluster a member's frames can come late again and again. 250 daemons
//! started together on two cores logged about 5,000 `lost`/`returned` lines each in 50 s
//! (1.3 million in all, 2.6 % of the cluster's CPU under `perf`), and a log that floods
//! hides what an operator looks for. `quorumctl follow` still gets every change: only the
//! log is quieted. Joins, crashes, dispatches, renames and forgets are always logged.

use common::control::MemberChange;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Changes of one member logged in full per window.
pub const FREE: u32 = 4;
/// The window a member's flapping is counted over.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Members tracked at most (names come from the network: the table is bounded). Past it,
/// changes are logged in full.
const MAX_TRACKED: usize = 4096;

/// What to do with one change's log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// Log it as it is.
    Log,
    /// Count it, log nothing now: [`Flaps::due`] tells it when the window ends.
    Quiet,
}

/// A window that ended with quieted changes: say how many, and where the member stands.
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    pub member: String,
    /// Changes not logged in the window.
    pub quieted: u32,
    /// The member's last change (`lost` or `returned`): its state now.
    pub last: MemberChange,
}

struct Flap {
    since: Instant,
    changes: u32,
    quieted: u32,
    last: MemberChange,
}

/// Per-member counts of `lost` and `returned` changes (module docs).
#[derive(Default)]
pub struct Flaps {
    members: HashMap<String, Flap>,
    /// The earliest end of a window with quieted changes: nothing to do before it.
    next_due: Option<Instant>,
}

impl Flaps {
    /// Whether the line for `change` of `member` at `now` is logged or counted.
    pub fn note(&mut self, member: &str, change: &MemberChange, now: Instant) -> Line {
        if !matches!(change, MemberChange::Lost | MemberChange::Returned) {
            // Anything else is news on its own, and starts the member afresh.
            self.members.remove(member);
            return Line::Log;
        }
        if !self.members.contains_key(member) && self.members.len() >= MAX_TRACKED {
            self.members
                .retain(|_, f| f.quieted > 0 || now < f.since + WINDOW);
            if self.members.len() >= MAX_TRACKED {
                return Line::Log;
            }
        }
        let f = self.members.entry(member.to_string()).or_insert(Flap {
            since: now,
            changes: 0,
            quieted: 0,
            last: change.clone(),
        });
        if now >= f.since + WINDOW && f.quieted == 0 {
            f.since = now;
            f.changes = 0;
        }
        f.changes += 1;
        f.last = change.clone();
        if f.changes <= FREE {
            return Line::Log;
        }
        f.quieted += 1;
        let end = f.since + WINDOW;
        self.next_due = Some(self.next_due.map_or(end, |d| d.min(end)));
        Line::Quiet
    }

    /// The windows ended by `now` with quieted changes, each once; those members start a new
    /// window. Cheap when nothing is due (called after every batch of inputs).
    pub fn due(&mut self, now: Instant) -> Vec<Summary> {
        if self.next_due.is_none_or(|d| now < d) {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut next: Option<Instant> = None;
        for (name, f) in &mut self.members {
            if f.quieted == 0 {
                continue;
            }
            let end = f.since + WINDOW;
            if now >= end {
                out.push(Summary {
                    member: name.clone(),
                    quieted: f.quieted,
                    last: f.last.clone(),
                });
                f.since = now;
                f.changes = 0;
                f.quieted = 0;
            } else {
                next = Some(next.map_or(end, |d| d.min(end)));
            }
        }
        self.next_due = next;
        out.sort_by(|a, b| a.member.cmp(&b.member));
        out
    }

    /// When [`Flaps::due`] has something to tell, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        self.next_due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flap(f: &mut Flaps, member: &str, n: u32, t: Instant) -> Vec<Line> {
        (0..n)
            .map(|i| {
                let change = if i % 2 == 0 {
                    MemberChange::Lost
                } else {
                    MemberChange::Returned
                };
                f.note(member, &change, t)
            })
            .collect()
    }

    #[test]
    fn the_first_changes_are_logged_the_rest_told_once_with_the_state_at_the_end() {
        let t0 = Instant::now();
        let mut f = Flaps::default();
        let lines = flap(&mut f, "bob", 9, t0);
        assert_eq!(
            lines.iter().filter(|l| **l == Line::Log).count(),
            FREE as usize
        );
        assert!(lines[FREE as usize..].iter().all(|l| *l == Line::Quiet));
        // Another member is counted on its own.
        assert_eq!(flap(&mut f, "carol", 1, t0), vec![Line::Log]);
        assert!(f.due(t0 + WINDOW - Duration::from_millis(1)).is_empty());
        assert_eq!(f.deadline(), Some(t0 + WINDOW));
        let told = f.due(t0 + WINDOW);
        assert_eq!(
            told,
            vec![Summary {
                member: "bob".into(),
                quieted: 9 - FREE,
                // The ninth change (index 8) was `lost`: that is where bob stands.
                last: MemberChange::Lost,
            }]
        );
        // Told once.
        assert!(f.due(t0 + WINDOW * 2).is_empty());
        assert_eq!(f.deadline(), None);
    }

    #[test]
    fn a_quiet_member_starts_a_new_window_and_other_changes_always_log() {
        let t0 = Instant::now();
        let mut f = Flaps::default();
        flap(&mut f, "bob", FREE, t0);
        // Within the window the next one is quieted...
        assert_eq!(f.note("bob", &MemberChange::Lost, t0), Line::Quiet);
        // ...but a crash, a join or a dispatch is never quieted, and starts bob afresh.
        assert_eq!(f.note("bob", &MemberChange::Crashed, t0), Line::Log);
        assert_eq!(f.note("bob", &MemberChange::Joined, t0), Line::Log);
        assert_eq!(
            flap(&mut f, "bob", FREE, t0),
            vec![Line::Log; FREE as usize]
        );
        // A window over with nothing quieted: the count starts again.
        let later = t0 + WINDOW;
        assert_eq!(
            flap(&mut f, "bob", FREE, later),
            vec![Line::Log; FREE as usize]
        );
        assert_eq!(f.note("bob", &MemberChange::Lost, later), Line::Quiet);
    }

    #[test]
    fn the_tracked_members_are_bounded() {
        let t0 = Instant::now();
        let mut f = Flaps::default();
        for i in 0..MAX_TRACKED + 10 {
            f.note(&format!("m{i}"), &MemberChange::Lost, t0);
        }
        assert!(f.members.len() <= MAX_TRACKED);
        // Past the bound a new member is logged in full, never quieted.
        assert_eq!(
            flap(&mut f, "newcomer", FREE + 3, t0),
            vec![Line::Log; FREE as usize + 3]
        );
        // Once windows have ended, room is made again.
        let later = t0 + WINDOW;
        assert_eq!(f.note("late", &MemberChange::Lost, later), Line::Log);
        assert!(f.members.contains_key("late"));
    }
}
