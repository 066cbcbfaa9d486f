//! Plain-text explanations for the log: why this node is inquorate, which members it remembers.

use common::control::Status;
use common::election::Memory;
use common::types::MemberState;

/// Why a node is inquorate: which counted members it can reach (heard within `lease_ms`) and
/// which it cannot. One line, the same while nothing changes (the driver logs it when it
/// changes).
pub fn inquorate(status: &Status, lease_ms: u64) -> String {
    let heard = |m: &common::control::Member| {
        m.is_self
            || (m.state == MemberState::Alive && m.last_heard_ms.is_some_and(|ms| ms < lease_ms))
    };
    let counted: Vec<&common::control::Member> =
        status.members.iter().filter(|m| m.counted).collect();
    let reach: Vec<&str> = counted
        .iter()
        .filter(|m| heard(m))
        .map(|m| m.name.as_str())
        .collect();
    let cannot: Vec<&str> = counted
        .iter()
        .filter(|m| !heard(m))
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
        "counts {} member(s): {}{expect}; reaches {}: {}; cannot reach: {}; a majority needs {} \
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
