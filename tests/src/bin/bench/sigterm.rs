//! `sigterm` (root, namespace lab): the master's `quorumd` gets SIGTERM (a graceful stop:
//! hand over, leave, exit) -> another node's master hook starts. Three lab hosts, the overlap
//! checker over every repetition, both profiles; the daemons log at `--sigterm-log-level`
//! (debug by default) and the bench merges their logs into a timeline of the key steps, printed
//! for the median repetition, to show where the time goes. Each profile runs twice: with the
//! state directory in the lab's temp dir (on disk, as a real host) and on tmpfs (`/dev/shm`), so
//! the cost of the state file's fsync on the failover path is visible by difference.

use super::{DEADLINE, Row, Target, kept_dir, profile_name, repeat};
use anyhow::{Result, anyhow};
use quorum_tests::Profile;
use quorum_tests::lab::{Checker, Lab, check::now_ns};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the nodes keep their state file.
#[derive(Clone, Copy, PartialEq)]
enum StateOn {
    /// The checker's temp dir (the machine's disk here): what a real host does.
    Disk,
    /// `/dev/shm`: an fsync costs nothing.
    Tmpfs,
}

/// The rows of one profile: state on disk, then on tmpfs.
pub(crate) fn sigterm(profile: Profile, reps: usize, log_level: &str) -> Vec<Row> {
    [StateOn::Disk, StateOn::Tmpfs]
        .into_iter()
        .map(|on| one(profile, on, reps, log_level))
        .collect()
}

fn one(profile: Profile, on: StateOn, reps: usize, log_level: &str) -> Row {
    let p = profile_name(profile);
    let (id, where_) = match on {
        StateOn::Disk => (format!("sigterm-{p}"), "state on disk"),
        StateOn::Tmpfs => (format!("sigterm-{p}-shm"), "state on tmpfs"),
    };
    let mut row = Row::new(
        &id,
        &format!("master's quorumd SIGTERMed -> new master's hook ({p}, 3 lab hosts, {where_})"),
        "ms",
        Target::AtMost(10.0),
        "<= 10 ms, zero overlap",
    );
    // The lab starts daemons with `--profile fast`; a later `--profile` overrides it.
    let mut extra: Vec<String> = match profile {
        Profile::Default => vec!["--profile".into(), "default".into()],
        Profile::Fast => vec![],
    };
    extra.extend(["--log-level".to_owned(), log_level.to_owned()]);
    // After the new master's hook, watch for a lease before checking for overlap.
    let watch = match profile {
        Profile::Default => Duration::from_millis(600),
        Profile::Fast => Duration::from_millis(120),
    };
    let names = ["alice", "bob", "carol"];
    let mut breakdowns: Vec<(f64, String)> = Vec::new();
    let mut rep = 0;
    repeat(&mut row, reps, || {
        rep += 1;
        let label = format!("{id}-rep{rep}");
        let kept = kept_dir(&label)?;
        let shm = RemoveOnDrop(PathBuf::from(format!(
            "/dev/shm/quorum-bench-{}-{label}",
            std::process::id()
        )));
        let lab = Lab::new(names.len());
        let ck = Checker::new();
        for (host, name) in names.iter().enumerate() {
            let mut args: Vec<String> = extra.clone();
            if on == StateOn::Tmpfs {
                // A later --state-dir wins over the checker's.
                args.extend(["--state-dir".into(), shm.0.join(name).display().to_string()]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ck.start(&lab, host, name, &args);
        }
        let (master, _) = ck.wait_master(DEADLINE);
        let t0 = now_ns();
        ck.signal(&master, libc::SIGTERM);
        let (new, hooked) = ck.wait_until("another master's hook", DEADLINE, || {
            ck.master_hook_after(t0, &master)
        });
        // The old master exits and the checker keeps watching every node for a lease.
        std::thread::sleep(watch);
        copy_logs(ck.dir(), &kept)?;
        let ms = hooked.saturating_sub(t0) as f64 / 1e6;
        let text = breakdown(&kept, t0, hooked, &master, &new);
        std::fs::write(kept.join("breakdown.txt"), &text)?;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ck.finish()));
        drop(lab);
        drop(shm);
        if result.is_err() {
            return Err(anyhow!(
                "overlap checker failed (see stderr); logs in {}",
                kept.display()
            ));
        }
        breakdowns.push((ms, format!("{label}: {ms:.2} ms\n{text}")));
        Ok(ms)
    });
    if let Some(med) = row.quantile(0.5)
        && let Some((_, text)) = breakdowns.iter().find(|(ms, _)| *ms == med)
    {
        eprintln!("--- {id}: where the time goes in the median repetition ---\n{text}");
        row.notes
            .push(format!("median repetition, merged log timeline:\n{text}"));
    }
    if let Some(dir) = kept_dir(&format!("{id}-rep1"))
        .ok()
        .and_then(|d| d.parent().map(Path::to_path_buf))
    {
        row.notes.push(format!(
            "every repetition's logs, hook records and breakdown.txt are kept in {}/{id}-rep*/",
            dir.display()
        ));
    }
    row
}

/// A directory removed when dropped (also when a repetition panics).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies the nodes' logs and hook records out of the checker's temp dir.
fn copy_logs(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        let keep = path.extension().is_some_and(|e| e == "log" || e == "hooks");
        if let (true, Some(name)) = (keep, path.file_name()) {
            std::fs::copy(&path, to.join(name))?;
        }
    }
    Ok(())
}

/// `2026-12-05T16:53:49.545478Z` (the daemon's log timestamp, UTC) as ns since the epoch.
fn parse_log_time(s: &str) -> Option<u128> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    let digits: String = frac.chars().take(9).collect();
    let ns: i64 = format!("{digits:0<9}").parse().ok()?;
    u128::try_from(secs)
        .ok()
        .map(|s| s * 1_000_000_000 + ns as u128)
}

/// One line of the merged timeline.
struct Ev {
    ns: u128,
    node: String,
    text: String,
}

/// Every node's log lines and hook runs from 1 ms before the signal to 2 ms after the new
/// master's hook, merged by time (control requests of the checker's poller left out).
fn timeline(dir: &Path, t0: u128, hooked: u128) -> Vec<Ev> {
    let mut evs = Vec::new();
    let (from, to) = (t0.saturating_sub(1_000_000), hooked + 2_000_000);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return evs;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines() {
            let (ns, what) = match ext {
                "log" => {
                    let Some((ts, rest)) = line.split_once(' ') else {
                        continue;
                    };
                    let Some(ns) = parse_log_time(ts) else {
                        continue;
                    };
                    if rest.contains("control request") {
                        continue;
                    }
                    (ns, rest.trim().to_owned())
                }
                "hooks" => {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    let Some(ns) = f.first().and_then(|t| t.parse::<u128>().ok()) else {
                        continue;
                    };
                    let tag = f.get(4).copied().unwrap_or("?");
                    let role = f.get(1).copied().unwrap_or("?");
                    (ns, format!("HOOK ({tag}) {role}: its first `date +%s%N`"))
                }
                _ => continue,
            };
            if ns >= from && ns <= to {
                evs.push(Ev {
                    ns,
                    node: stem.to_owned(),
                    text: what,
                });
            }
        }
    }
    evs.sort_by_key(|e| e.ns);
    evs
}

/// The key steps (first occurrence after the signal) and the merged timeline, as text.
fn breakdown(dir: &Path, t0: u128, hooked: u128, old: &str, new: &str) -> String {
    let evs = timeline(dir, t0, hooked);
    let ms = |ns: u128| (ns as f64 - t0 as f64) / 1e6;
    let first = |node: Option<&str>, other_than: Option<&str>, pat: &str| {
        evs.iter().find(|e| {
            e.ns >= t0
                && node.is_none_or(|n| e.node == n)
                && other_than.is_none_or(|n| e.node != n)
                && e.text.contains(pat)
        })
    };
    let steps: [(&str, Option<&str>, Option<&str>, &str); 9] = [
        (
            "old master handles the stop",
            Some(old),
            None,
            "dispatching",
        ),
        (
            "old master's role: dispatching",
            Some(old),
            None,
            "role=dispatching",
        ),
        (
            "a survivor sees the link end",
            None,
            Some(old),
            "link ended",
        ),
        (
            "new master proposes candidacy",
            Some(new),
            None,
            "proposing candidacy",
        ),
        (
            "new master marks the old one left",
            Some(new),
            None,
            "change=left",
        ),
        ("new master's role changes", Some(new), None, "role=master"),
        (
            "new master's hook started (log)",
            Some(new),
            None,
            "hook started",
        ),
        (
            "old master's transport stopped",
            Some(old),
            None,
            "transport stopped",
        ),
        ("old master left", Some(old), None, "left the cluster"),
    ];
    let mut out =
        format!("key steps (ms after the SIGTERM was sent to {old}; new master {new}):\n");
    let mut found: Vec<(f64, String)> = steps
        .iter()
        .filter_map(|(label, node, other, pat)| {
            first(*node, *other, pat).map(|e| (ms(e.ns), format!("{label} [{}]", e.node)))
        })
        .collect();
    found.push((ms(hooked), format!("new master's hook runs `date` [{new}]")));
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut prev = 0.0;
    for (at, label) in &found {
        out.push_str(&format!("  {at:>8.3}  (+{:>6.3})  {label}\n", at - prev));
        prev = *at;
    }
    out.push_str("merged timeline (ms after the signal, node, log line):\n");
    for e in &evs {
        out.push_str(&format!("  {:>8.3}  {:<6} {}\n", ms(e.ns), e.node, e.text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse_log_time;

    #[test]
    fn log_time() {
        // date -u -d 2026-12-05T16:53:49Z +%s = 1796489629
        assert_eq!(
            parse_log_time("2026-12-05T16:53:49.545478Z"),
            Some(1_796_489_629_545_478_000)
        );
    }
}
