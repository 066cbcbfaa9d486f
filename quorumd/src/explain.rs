//! Plain-text explanations for the log: why this node is inquorate, which members it remembers.

use common::control::Status;
use common::election::Memory;
use common::types::MemberState;

/// Why a node is inquorate: which counted members it reaches both ways (the test its quorum
/// rests on: [`common::control::Member::reachable`]) and which it does not. One line, the same
/// while nothing changes (the driver logs it when it changes). Heard one way is not enough:
/// a quiet pair's probe heard 100 ms ago, with our last beat to it echoed seconds ago, is not
/// reached; counting it made an `inquorate` node of sixteen say it reached fifteen.
pub fn inquorate(status: &Status) -> String {
    let reached =
        |m: &common::control::Member| m.is_self || (m.state == MemberState::Alive && m.reachable);
    let counted: Vec<&common::control::Member> =
        status.members.iter().filter(|m| m.counted).collect();
    let reach: Vec<&str> = counted
        .iter()
        .filter(|m| reached(m))
        .map(|m| m.name.as_str())
        .collect();
    let cannot: Vec<&str> = counted
        .iter()
        .filter(|m| !reached(m))
        .map(|m| m.name.as_str())
        .collect();
    let q = &status.quorum;
    let padded = q.counted.saturating_sub(counted.len());
    let expect = if padded > 0 {
        format!(" (--expect counts {padded} more not seen yet)")
    } else {
        String::new()
    };
    format!(
        "counts {} member(s): {}{expect}; reaches {} both ways: {}; cannot reach: {}; a majority needs {} \
         votes, it has {}",
        q.counted,
        list(counted.iter().map(|m| m.name.as_str())),
        reach.len(),
        list(reach.iter().copied()),
        list(cannot.iter().copied()),
        q.needed,
        q.votes,
    )
}

/// The members remembered from the state file, with their last state: `alice (alive), bob (lost)`.
pub fn remembered(memory: &Memory) -> String {
    list(
        memory
            .members
            .iter()
            .map(|(info, state)| format!("{} ({state})", info.name)),
    )
}

fn list<S: AsRef<str>>(items: impl Iterator<Item = S>) -> String {
    let v: Vec<String> = items.map(|s| s.as_ref().to_string()).collect();
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::types::Role;

    #[test]
    fn an_inquorate_node_lists_as_reached_only_members_reached_both_ways() {
        let mut status = testkit::control::status(Role::Inquorate);
        status.quorum.counted = 3;
        status.quorum.votes = 0;
        // bob heard 300 ms ago (a quiet pair's probe) but our beats not echoed lately.
        status.members[1].reachable = false;
        let mut peter = status.members[1].clone();
        peter.name = "peter".into();
        peter.reachable = true;
        status.members.push(peter);
        let why = inquorate(&status);
        assert!(
            why.contains("reaches 2 both ways: alice, peter; cannot reach: bob"),
            "{why}"
        );
    }
}
