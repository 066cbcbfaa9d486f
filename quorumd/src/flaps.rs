//! Log lines for members going `lost` and coming back: at most [`FREE`] of them in a
//! ten-second window are logged as they come; the others are counted, and when the window
//! ends one line tells how many there were, of how many members, and which of them are
//! still lost.
//!
//! Why: on a loaded cluster members' frames come late again and again. 250 daemons started
//! together on two cores logged about 5,000 `lost`/`returned` lines each in 50 s (1.3 million
//! in all, 2.6 % of the cluster's CPU under `perf`), each member only a few times but all of
//! them; a log that floods hides what an operator looks for. `quorumctl follow` still gets
//! every change: only the log is quieted. Joins, crashes, dispatches, renames and forgets
//! are always logged.

use common::control::MemberChange;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// `lost`/`returned` lines logged in full per window, all members together.
pub const FREE: u32 = 8;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Members named in a summary's list of those still lost, at most.
const NAMED: usize = 16;
/// Members counted at most (names come from the network); past it, the count goes on but
/// the names of more members are not kept.
const MAX_TRACKED: usize = 4096;

/// What to do with one change's log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Line {
    /// Log it as it is.
    Log,
    /// Counted, logged now only at debug: [`Flaps::due`] tells it when the window ends.
    Quiet,
}

/// A window that ended with quieted changes.
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    /// Changes not logged in full.
    pub quieted: u32,
    /// Members they were of.
    pub members: usize,
    /// Those whose last quieted change was `lost` (sorted, at most `NAMED`; "none"), and
    /// how many more there are.
    pub still_lost: String,
}

/// The window's counts (module docs).
#[derive(Default)]
pub struct Flaps {
    /// Start of the window; None before the first `lost`/`returned` change after the last one.
    since: Option<Instant>,
    logged: u32,
    quieted: u32,
    /// Each quieted member's last quieted change: lost (true) or returned.
    last: BTreeMap<String, bool>,
}

impl Flaps {
    /// Whether the line for `change` of `member` at `now` is logged in full or counted.
    pub fn note(&mut self, member: &str, change: &MemberChange, now: Instant) -> Line {
        let lost = match change {
            MemberChange::Lost => true,
            MemberChange::Returned => false,
            _ => {
                // News on its own; a member quieted as lost that crashed, left or was
                // forgotten is not "still lost" at the window's end.
                self.last.remove(member);
                return Line::Log;
            }
        };
        let since = *self.since.get_or_insert(now);
        if now >= since + WINDOW && self.quieted == 0 {
            // The window ended with nothing quieted: a new one starts.
            self.since = Some(now);
            self.logged = 0;
        }
        if self.logged < FREE {
            self.logged += 1;
            return Line::Log;
        }
        self.quieted = self.quieted.saturating_add(1);
        if self.last.contains_key(member) || self.last.len() < MAX_TRACKED {
            self.last.insert(member.to_string(), lost);
        }
        Line::Quiet
    }

    /// The summary of a window that ended by `now` with quieted changes, once; a new
    /// window starts. Cheap when nothing is due (called after every batch of inputs).
    pub fn due(&mut self, now: Instant) -> Option<Summary> {
        let end = self.deadline()?;
        if now < end {
            return None;
        }
        let lost: Vec<&str> = self
            .last
            .iter()
            .filter(|(_, lost)| **lost)
            .map(|(name, _)| name.as_str())
            .collect();
        let mut still_lost = if lost.is_empty() {
            "none".to_string()
        } else {
            lost[..lost.len().min(NAMED)].join(", ")
        };
        if lost.len() > NAMED {
            still_lost.push_str(&format!(" and {} more", lost.len() - NAMED));
        }
        let summary = Summary {
            quieted: self.quieted,
            members: self.last.len(),
            still_lost,
        };
        *self = Flaps::default();
        Some(summary)
    }

    /// When [`Flaps::due`] has something to tell, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        if self.quieted == 0 {
            return None;
        }
        self.since.map(|s| s + WINDOW)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` changes of `member` at `t`, lost first, then returned, and so on.
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

    /// A fresh window's worth of `bob`'s changes at `t` is logged in full.
    fn all_logged(f: &mut Flaps, t: Instant) -> bool {
        flap(f, "bob", FREE, t) == vec![Line::Log; FREE as usize]
    }

    #[test]
    fn the_first_changes_are_logged_the_rest_told_once_with_who_is_still_lost() {
        let t0 = Instant::now();
        let mut f = Flaps::default();
        let lines = flap(&mut f, "bob", FREE + 3, t0);
        assert_eq!(lines[..FREE as usize], vec![Line::Log; FREE as usize]);
        assert_eq!(lines[FREE as usize..], vec![Line::Quiet; 3]);
        // The window is shared: carol's changes are quieted too; she ends lost, bob ends lost
        // (his 11th change), dave returned.
        assert_eq!(flap(&mut f, "carol", 1, t0), vec![Line::Quiet]);
        assert_eq!(flap(&mut f, "dave", 2, t0), vec![Line::Quiet; 2]);
        assert_eq!(f.due(t0 + WINDOW - Duration::from_millis(1)), None);
        assert_eq!(f.deadline(), Some(t0 + WINDOW));
        assert_eq!(
            f.due(t0 + WINDOW),
            Some(Summary {
                quieted: 6,
                members: 3,
                still_lost: "bob, carol".into(),
            })
        );
        // Told once; the next window starts afresh.
        assert_eq!(f.due(t0 + WINDOW * 2), None);
        assert_eq!(f.deadline(), None);
        assert!(all_logged(&mut f, t0 + WINDOW * 2));
    }

    #[test]
    fn other_changes_always_log_and_a_window_without_quieting_just_ends() {
        let t0 = Instant::now();
        let mut f = Flaps::default();
        flap(&mut f, "bob", FREE, t0);
        assert_eq!(f.note("bob", &MemberChange::Lost, t0), Line::Quiet);
        // A crash, a join or a dispatch is never quieted, and bob is not "still lost" after.
        assert_eq!(f.note("bob", &MemberChange::Crashed, t0), Line::Log);
        assert_eq!(f.note("bob", &MemberChange::Joined, t0), Line::Log);
        let told = f.due(t0 + WINDOW).expect("a summary");
        assert_eq!(told.quieted, 1);
        assert_eq!(told.still_lost, "none");
        // A window with only a few changes ends without a word, and the count starts again.
        let t1 = t0 + WINDOW * 3;
        flap(&mut f, "bob", 2, t1);
        assert_eq!(f.deadline(), None);
        assert!(all_logged(&mut f, t1 + WINDOW));
    }

    #[test]
    fn a_summary_names_a_bounded_number_of_members_and_the_table_is_bounded() {
        let t0 = Instant::now();
        let mut f = Flaps::default();
        flap(&mut f, "first", FREE, t0);
        for i in 0..MAX_TRACKED + 10 {
            f.note(&format!("m{i:05}"), &MemberChange::Lost, t0);
        }
        assert!(f.last.len() <= MAX_TRACKED);
        let told = f.due(t0 + WINDOW).expect("a summary");
        assert_eq!(told.quieted as usize, MAX_TRACKED + 10);
        assert_eq!(told.members, MAX_TRACKED);
        assert!(
            told.still_lost
                .starts_with("m00000, m00001, m00002, m00003, m00004, m00005, m00006, m00007"),
            "{}",
            told.still_lost
        );
        assert!(
            told.still_lost
                .ends_with(&format!(" and {} more", MAX_TRACKED - NAMED)),
            "{}",
            told.still_lost
        );
    }
}
