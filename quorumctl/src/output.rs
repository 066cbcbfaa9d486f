//! Human formatting: the status block, the members table, follow lines, UTC timestamps.
//! Pure functions from protocol types to text, so they are tested without a daemon.

use common::control::{Event, Member, MemberChange, Quorum, Status};
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// `quorumctl status`: a key/value block, a blank line, then the members table.
pub fn status(s: &Status) -> String {
    let mut out = String::new();
    let rows = [
        (
            "node",
            format!("{}{}", s.name, if s.witness { " (witness)" } else { "" }),
        ),
        ("role", s.role.to_string()),
        ("master", s.master.clone().unwrap_or_else(|| "none".into())),
        ("epoch", s.epoch.to_string()),
        ("quorum", quorum(&s.quorum)),
        (
            "cluster",
            format!("{} (strategy {})", s.cluster, s.strategy),
        ),
        ("version", s.version.clone()),
    ];
    for (key, value) in rows {
        let _ = writeln!(out, "{key:<8} {value}");
    }
    if !s.held.is_empty() {
        let _ = writeln!(
            out,
            "held     {} (not eligible for master)",
            s.held.join(", ")
        );
    }
    for c in &s.checks {
        let state = if c.passing { "passing" } else { "failing" };
        let code = c.exit_code.map_or("-".to_string(), |c| c.to_string());
        let _ = writeln!(
            out,
            "check    {state} exit {code}  {}  {}",
            c.command, c.output
        );
    }
    if let Some(why) = &s.refused {
        let _ = writeln!(out, "refused  {why}");
    }
    if let Some(sec) = &s.security {
        let refused = sec.unauthenticated + sec.bad_key + sec.replayed;
        if !sec.authenticated {
            let _ = writeln!(
                out,
                "security WARNING: no cluster key, traffic is not authenticated (README, Security)"
            );
        } else if refused > 0 {
            let _ = writeln!(
                out,
                "security {refused} messages refused (bad key {}, unauthenticated {}, replayed {})",
                sec.bad_key, sec.unauthenticated, sec.replayed
            );
        }
        for t in &sec.traffic {
            let _ = writeln!(
                out,
                "traffic  {}: in {} msg/s {} B/s, out {} msg/s {} B/s",
                t.name,
                t.messages_in_per_s,
                t.bytes_in_per_s,
                t.messages_out_per_s,
                t.bytes_out_per_s
            );
        }
    }
    out.push('\n');
    out.push_str(&members(&s.members));
    out
}

/// The members table, columns aligned, this node marked with `*`.
pub fn members(members: &[Member]) -> String {
    let header = [
        "NAME",
        "ADDRESS",
        "PORT",
        "STATE",
        "ROLE",
        "COUNTED",
        "LAST-HEARD",
    ]
    .map(String::from);
    let rows: Vec<[String; 7]> = members
        .iter()
        .map(|m| {
            let role = m.role.map_or_else(|| "-".to_string(), |r| r.to_string());
            [
                m.name.clone(),
                m.address.clone(),
                m.port.to_string(),
                m.state.to_string(),
                if m.witness {
                    format!("{role} (witness)")
                } else {
                    role
                },
                if m.counted { "yes" } else { "no" }.to_string(),
                last_heard(m),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let marks = std::iter::once(false).chain(members.iter().map(|m| m.is_self));
    for (row, is_self) in std::iter::once(&header).chain(&rows).zip(marks) {
        let mut line = String::from(if is_self { "* " } else { "  " });
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn last_heard(m: &Member) -> String {
    match m.last_heard_ms {
        None if m.is_self => "-".into(),
        None => "never".into(),
        Some(ms) => format!("{} ago", age(ms)),
    }
}

/// `300` -> `0.3s`, `12_345` -> `12.3s`, `125_000` -> `2m05s`, `7_500_000` -> `2h05m`.
fn age(ms: u64) -> String {
    match ms {
        0..60_000 => format!("{}.{}s", ms / 1000, (ms % 1000) / 100),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000),
        _ => format!("{}h{:02}m", ms / 3_600_000, (ms % 3_600_000) / 60_000),
    }
}

/// The quorum in words: `votes 2 of 3 counted, 2 needed`.
fn quorum(q: &Quorum) -> String {
    format!(
        "votes {} of {} counted, {} needed",
        q.votes, q.counted, q.needed
    )
}

/// One `follow` line, e.g. `2026-11-24T04:40:00Z role slave -> master (master alice, epoch 3)`.
pub fn event(at: SystemTime, event: &Event) -> String {
    let master = |m: &Option<String>| m.clone().unwrap_or_else(|| "none".into());
    let what = match event {
        Event::Snapshot(s) => format!(
            "snapshot {}: role {}, master {}, epoch {}, {}, {} members",
            s.name,
            s.role,
            master(&s.master),
            s.epoch,
            quorum(&s.quorum),
            s.members.len()
        ),
        Event::Role {
            role,
            previous,
            master: m,
            epoch,
            reason,
        } if reason.is_empty() => format!(
            "role {previous} -> {role} (master {}, epoch {epoch})",
            master(m)
        ),
        Event::Role {
            role,
            previous,
            master: m,
            epoch,
            reason,
        } => format!(
            "role {previous} -> {role} (master {}, epoch {epoch}, reason: {reason})",
            master(m)
        ),
        Event::Master { master: m, epoch } => format!("master {} (epoch {epoch})", master(m)),
        Event::Member { name, change } => match change {
            MemberChange::Joined => format!("member {name} joined"),
            MemberChange::Lost => format!("member {name} lost"),
            MemberChange::Crashed => format!("member {name} crashed"),
            MemberChange::Returned => format!("member {name} returned"),
            MemberChange::Dispatched => format!("member {name} dispatched"),
            MemberChange::Renamed { from } => format!("member {from} renamed to {name}"),
            MemberChange::Forgotten => format!("member {name} forgotten"),
            MemberChange::Reaped => format!("member {name} reaped"),
        },
    };
    format!("{} {what}", timestamp(at))
}

/// RFC 3339 UTC with second precision: `2026-11-24T04:40:00Z`.
pub fn timestamp(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::control::Quorum;
    use common::types::{MemberState, Role, Strategy};
    use std::time::Duration;

    fn member(name: &str, me: bool, heard: Option<u64>) -> Member {
        Member {
            name: name.into(),
            address: "127.0.0.1".into(),
            port: 8080,
            state: MemberState::Alive,
            role: Some(if me { Role::Master } else { Role::Slave }),
            counted: true,
            witness: false,
            is_self: me,
            last_heard_ms: heard,
            reachable: true,
        }
    }

    #[test]
    fn timestamps_are_utc_rfc3339() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_495_200);
        assert_eq!(timestamp(t), "2026-11-24T04:40:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(timestamp(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn members_table_is_aligned_and_marks_self() {
        let table = members(&[
            member("alice", true, None),
            member("bob-long", false, Some(300)),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "  NAME      ADDRESS    PORT  STATE  ROLE    COUNTED  LAST-HEARD"
        );
        assert_eq!(
            lines[1],
            "* alice     127.0.0.1  8080  alive  master  yes      -"
        );
        assert_eq!(
            lines[2],
            "  bob-long  127.0.0.1  8080  alive  slave   yes      0.3s ago"
        );
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(300), "0.3s");
        assert_eq!(age(12_345), "12.3s");
        assert_eq!(age(125_000), "2m05s");
        assert_eq!(age(7_500_000), "2h05m");
    }

    #[test]
    fn role_events_read_like_the_docs() {
        let e = Event::Role {
            reason: String::new(),
            role: Role::Master,
            previous: Role::Slave,
            master: Some("alice".into()),
            epoch: 3,
        };
        let t = UNIX_EPOCH + Duration::from_secs(1_795_495_200);
        assert_eq!(
            event(t, &e),
            "2026-11-24T04:40:00Z role slave -> master (master alice, epoch 3)"
        );
    }

    #[test]
    fn status_block_shows_quorum_and_members() {
        let s = Status {
            name: "alice".into(),
            role: Role::Master,
            epoch: 3,
            master: Some("alice".into()),
            quorum: Quorum {
                votes: 2,
                needed: 2,
                counted: 3,
            },
            members: vec![member("alice", true, None)],
            version: "0.1.0".into(),
            protocol_version: 1,
            cluster: "default".into(),
            strategy: Strategy::Age,
            witness: false,
            refused: None,
            security: None,
            held: Vec::new(),
            checks: Vec::new(),
        };
        let text = status(&s);
        assert!(
            text.starts_with("node     alice\nrole     master\n"),
            "{text}"
        );
        assert!(
            text.contains("quorum   votes 2 of 3 counted, 2 needed\n"),
            "{text}"
        );
        assert!(text.contains("* alice "), "{text}");
    }
}
