//! `big`: N nodes (default profile) started together on this machine, for every N of
//! `--big-nodes`. Agreement is read cheaply: every node's `--notify` hook appends
//! `<ns> <node> <role> <master> <epoch> <event>` to one file, and a handful of
//! `quorumctl --json status` probes (at most [`PROBES`] per round, every 200 ms) confirm what
//! the hooks say; then an idle window measures hook runs over all of it, CPU over each half
//! (the first is the settling after forming, the target is read on the second) and traffic
//! and RSS at the end.

use super::{
    Row, Target, cpu_ns, cpu_over, ms_between, names, now_ns, poll, rss_mib, shuffle_pick,
    write_script,
};
use anyhow::{Context, Result};
use quorum_tests::{Cluster, Node, Profile};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The state letter of /proc/<pid>/stat (`R`, `S`, `T` stopped, ...).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Status probes per poll round (and nodes whose traffic counters are sampled).
const PROBES: usize = 5;

/// One run of a node's notify hook.
#[derive(Clone, Debug)]
struct Line {
    ns: i128,
    node: String,
    role: String,
    master: String,
    epoch: u64,
}

/// The notify hook of every node of a big cluster.
struct NotifyLog {
    script: PathBuf,
    output: PathBuf,
}

impl NotifyLog {
    fn write(dir: &Path) -> Result<NotifyLog> {
        let script = dir.join("notify.sh");
        let output = dir.join("notify.out");
        // The timestamp first; one short line per run (O_APPEND, below PIPE_BUF: atomic).
        let body = format!(
            "#!/bin/sh\nt=$(date +%s%N)\necho \"$t $QUORUM_NODE $QUORUM_ROLE \
             ${{QUORUM_MASTER:--}} ${{QUORUM_EPOCH:-0}} $QUORUM_EVENT\" >> '{}'\n",
            output.display()
        );
        write_script(&script, &body)?;
        Ok(NotifyLog { script, output })
    }

    fn lines(&self) -> Vec<Line> {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() < 6 {
                    return None;
                }
                Some(Line {
                    ns: f[0].parse().ok()?,
                    node: f[1].to_owned(),
                    role: f[2].to_owned(),
                    master: f[3].to_owned(),
                    epoch: f[4].parse().ok()?,
                })
            })
            .collect()
    }
}

/// What the hooks agree on: every one of `count` nodes' latest hook run names the same master,
/// exactly one of them is that master, none is starting or inquorate. Returns (master, the
/// epoch of the master's latest hook, start of the latest of those hook runs). A slave's hook
/// may carry an older epoch of the same master: when that master lost its lease and won again
/// while the slave kept following it, the slave's role and master did not change, so no hook
/// ran (hooks run on changes). The status probes check the epoch instead ([`probes_agree`]).
/// Requiring equal epochs in the hook lines too made a formed cluster of a hundred count as
/// "never agreed" (2026-12-06: 43 slaves' latest hooks named n00 at its previous epoch).
fn hooks_agree(lines: &[Line], count: usize) -> Option<(String, u64, i128)> {
    // A node's hooks run one after the other: its last line in the file is its latest state.
    let mut last: HashMap<&str, &Line> = HashMap::new();
    for l in lines {
        last.insert(l.node.as_str(), l);
    }
    if last.len() != count {
        return None;
    }
    let masters: Vec<&&Line> = last.values().filter(|l| l.role == "master").collect();
    let [m] = masters.as_slice() else {
        return None;
    };
    let ok = last
        .values()
        .all(|l| l.master == m.node && (l.role == "master" || l.role == "slave"));
    ok.then(|| {
        let at = last.values().map(|l| l.ns).max().unwrap_or(0);
        (m.node.clone(), m.epoch, at)
    })
}

/// `quorumctl --json status` of the master and a few random other nodes all report `master`
/// at `epoch` and none is starting.
fn probes_agree(nodes: &[Node], master: &str, epoch: u64) -> bool {
    let mut probe: Vec<&Node> = nodes.iter().filter(|n| n.name() == master).collect();
    let others: Vec<&Node> = nodes.iter().filter(|n| n.name() != master).collect();
    probe.extend(shuffle_pick(&others, PROBES - 1));
    probe.iter().all(|n| {
        n.status_json().is_some_and(|s| {
            s["master"].as_str() == Some(master)
                && s["epoch"].as_u64() == Some(epoch)
                && s["role"].as_str() != Some("starting")
        })
    })
}

/// Sum over a status's peers of (messages out, bytes out, messages in, bytes in).
fn traffic(status: &Value) -> Option<[u64; 4]> {
    let peers = status["security"]["traffic"].as_array()?;
    let mut t = [0u64; 4];
    for p in peers {
        for (i, k) in ["messages_out", "bytes_out", "messages_in", "bytes_in"]
            .iter()
            .enumerate()
        {
            t[i] += p[*k].as_u64().unwrap_or(0);
        }
    }
    Some(t)
}

/// Targets by size: the 100-node targets hold for fewer nodes too; above 100 the 250 ones.
struct Targets {
    master: Option<(f64, &'static str)>,
    all: (f64, &'static str),
    cpu: (f64, &'static str),
}

fn targets(count: usize) -> Targets {
    if count <= 100 {
        Targets {
            master: Some((3000.0, "<= 3 s (for 100)")),
            all: (5000.0, "<= 5 s (for 100)"),
            cpu: (30.0, "<= 30 % (for 100)"),
        }
    } else {
        Targets {
            master: None,
            all: (10_000.0, "<= 10 s (for 250)"),
            cpu: (100.0, "<= 100 % (for 250)"),
        }
    }
}

/// `count` nodes started together, then `idle_secs` of idle.
pub(crate) fn big(count: usize, idle_secs: u64) -> Result<Vec<Row>> {
    let c = Cluster::with_profile(Profile::Default);
    let hook = NotifyLog::write(c.dir())?;
    let script = hook
        .script
        .to_str()
        .context("temp paths are UTF-8")?
        .to_owned();
    // Generous but bounded: spawning and forming grows with the node count on 2 cores.
    let deadline = Duration::from_secs(30).max(Duration::from_millis(200) * count as u32);
    // Every daemon is spawned stopped (a `sh` that stops itself, then execs quorumd: same pid)
    // and all are continued at once, so "spawned together" holds for 250 too: spawning one by
    // one while the first ones already run takes minutes on 2 cores.
    let spawn_start = Instant::now();
    let mut nodes: Vec<Node> = names(count)
        .iter()
        .map(|name| {
            let q = c.command(name, c.tcp_port(), &["--notify", &script]);
            let mut w = Command::new("/bin/sh");
            w.arg("-c")
                .arg("kill -STOP $$ && exec \"$0\" \"$@\"")
                .arg(q.get_program())
                .args(q.get_args());
            let port = q
                .get_args()
                .nth(1)
                .and_then(|p| p.to_str()?.parse().ok())
                .unwrap_or(0);
            c.spawn_command(name, port, c.socket_path(name), w)
        })
        .collect();
    let all_stopped = poll(
        "every spawned daemon stopped before its exec",
        deadline,
        Duration::from_millis(10),
        || {
            nodes
                .iter()
                .all(|n| proc_state(n.pid()) == Some('T'))
                .then_some(())
        },
    );
    let spawned_ms = spawn_start.elapsed().as_secs_f64() * 1e3;
    let t0 = now_ns();
    for n in &nodes {
        // SAFETY: kill(2) of a child of this process that is not reaped yet.
        unsafe { libc::kill(n.pid() as libc::pid_t, libc::SIGCONT) };
    }
    eprintln!(
        "{count} nodes spawned (stopped) in {spawned_ms:.0} ms, continued in {:.1} ms",
        ms_between(t0, now_ns())
    );
    let result = all_stopped
        .and_then(|()| measure(&hook, &nodes, count, idle_secs, t0, spawned_ms, deadline));
    let result = match result {
        Ok(mut rows) => {
            // A formation slower than its target keeps its logs, like the other slow rows.
            if let Some(all) = rows.iter_mut().find(|r| r.id == format!("big{count}-all")) {
                let ms = all.samples.first().copied().unwrap_or(0.0);
                let limit = targets(count).all.0;
                super::keep_if_over(&c, (ms, "ms"), limit, format!("big{count}"), &mut all.notes);
            }
            Ok(rows)
        }
        Err(e) => {
            // Keep the logs and say how far the cluster got: the error alone says little.
            let secs = ms_between(t0, now_ns()) / 1e3;
            let cpu: u64 = nodes.iter().filter_map(|n| cpu_ns(n.pid()).ok()).sum();
            let state = format!(
                "{}; all daemons used {:.0} % of a core on average since the start",
                progress(&hook, &nodes, count),
                cpu as f64 / 1e9 / secs * 100.0
            );
            let kept = super::keep_logs(&c, &format!("big{count}"))
                .map(|d| d.display().to_string())
                .unwrap_or_else(|k| format!("(keeping the logs failed: {k:#})"));
            eprintln!("big{count} failed: {e:#}\n{state}\nlogs kept in {kept}");
            // The first master hook, if there was one, is still a figure; the rest failed.
            let mut rows = Vec::new();
            let mut failed = Row::new(
                &format!("big{count}-master"),
                &format!("{count} started together -> first master hook starts"),
                "ms",
                Target::None,
                "-",
            );
            if let Some(first) = hook.lines().into_iter().find(|l| l.role == "master") {
                let mut r = master_row(count, spawned_ms);
                r.samples = vec![ms_between(t0, first.ns)];
                rows.push(r);
                failed = Row::new(
                    &format!("big{count}-all"),
                    &format!("{count} started together -> every node's hook names one master"),
                    "ms",
                    Target::AtMost(targets(count).all.0),
                    targets(count).all.1,
                );
            }
            failed.errors.push(format!(
                "{e:#}; {state}; logs kept in {kept}; the idle rows were not measured"
            ));
            rows.push(failed);
            Ok(rows)
        }
    };
    // SIGKILL all first, then reap (the guards): killing and reaping one by one lets the
    // survivors, busy with each death, slow every next exit down (minutes at 250).
    for n in &mut nodes {
        n.kill(libc::SIGKILL);
    }
    drop(nodes);
    result
}

/// The `big<N>-master` row, without its sample.
fn master_row(count: usize, spawned_ms: f64) -> Row {
    let id = format!("big{count}-master");
    let what = format!("{count} started together -> first master hook starts");
    let mut r = match targets(count).master {
        Some((t, text)) => Row::new(&id, &what, "ms", Target::AtMost(t), text),
        None => Row::new(&id, &what, "ms", Target::None, "-"),
    };
    r.notes.push(format!(
        "from the release of the {count} stopped processes (spawning them took \
         {spawned_ms:.0} ms, not included)"
    ));
    r
}

/// How far a big cluster got: hook runs, latest roles by the hooks, a few nodes' status.
fn progress(hook: &NotifyLog, nodes: &[Node], count: usize) -> String {
    let lines = hook.lines();
    let mut last: HashMap<&str, &Line> = HashMap::new();
    for l in &lines {
        last.insert(l.node.as_str(), l);
    }
    let mut roles: HashMap<&str, usize> = HashMap::new();
    for l in last.values() {
        *roles.entry(l.role.as_str()).or_default() += 1;
    }
    let all: Vec<&Node> = nodes.iter().collect();
    let probes: Vec<String> = shuffle_pick(&all, 3)
        .iter()
        .map(|n| match n.status_json() {
            Some(s) => format!(
                "{}: {} master {} counted {}",
                n.name(),
                s["role"],
                s["master"],
                s["quorum"]["counted"]
            ),
            None => format!("{}: no answer", n.name()),
        })
        .collect();
    format!(
        "{} hook runs, {} of {count} nodes ran a hook, latest roles {roles:?}; status: {}",
        lines.len(),
        last.len(),
        probes.join("; ")
    )
}

fn measure(
    hook: &NotifyLog,
    nodes: &[Node],
    count: usize,
    idle_secs: u64,
    t0: i128,
    spawned_ms: f64,
    deadline: Duration,
) -> Result<Vec<Row>> {
    let id = |what: &str| format!("big{count}-{what}");
    let tg = targets(count);
    let first = poll("a master hook", deadline, Duration::from_millis(20), || {
        hook.lines().into_iter().find(|l| l.role == "master")
    })?;
    eprintln!(
        "{count} nodes (spawned in {spawned_ms:.0} ms): {} hooked master after {:.0} ms",
        first.node,
        ms_between(t0, first.ns)
    );
    let mut probe_rounds = 0u32;
    let (master, epoch, agreed_ns) = poll(
        &format!("all {count} hooks and {PROBES} status probes agree on one master"),
        deadline,
        Duration::from_millis(200),
        || {
            let (m, e, at) = hooks_agree(&hook.lines(), count)?;
            probe_rounds += 1;
            probes_agree(nodes, &m, e).then_some((m, e, at))
        },
    )?;
    let confirmed_ms = ms_between(t0, now_ns());
    eprintln!(
        "{count} nodes: all hooks name {master} (epoch {epoch}) at {:.0} ms, confirmed by probes \
         at {confirmed_ms:.0} ms",
        ms_between(t0, agreed_ns)
    );
    let mut rows = Vec::new();
    let mut r = master_row(count, spawned_ms);
    r.samples = vec![ms_between(t0, first.ns)];
    rows.push(r);
    let mut r = Row::new(
        &id("all"),
        &format!("{count} started together -> every node's hook names one master"),
        "ms",
        Target::AtMost(tg.all.0),
        tg.all.1,
    );
    r.samples = vec![ms_between(t0, agreed_ns)];
    r.notes.push(format!(
        "master {master} epoch {epoch}; confirmed by {PROBES} status probes per round at \
         {confirmed_ms:.0} ms ({probe_rounds} probe rounds)"
    ));
    rows.push(r);

    // Idle: let the last hooks and probes settle, then one window in two halves. Hook runs
    // count over all of it. The first half is the settling after forming (at a hundred,
    // paced members went `lost` and came back for tens of seconds while the machine was
    // saturated, and the last pending members commit); the idle CPU target and the traffic
    // are read over the second half, when nothing changes any more.
    std::thread::sleep(Duration::from_secs(1));
    let sample: Vec<&Node> = {
        let all: Vec<&Node> = nodes.iter().collect();
        shuffle_pick(&all, PROBES)
    };
    let traffic_of = |n: &Node| n.status_json().as_ref().and_then(traffic);
    let runs_before = hook.lines().len();
    let pids: Vec<u32> = nodes.iter().map(Node::pid).collect();
    let first_secs = idle_secs / 2;
    let (_, settling) = cpu_over(&pids, Duration::from_secs(first_secs))?;
    let t_before: Vec<Option<[u64; 4]>> = sample.iter().map(|n| traffic_of(n)).collect();
    let started = Instant::now();
    let steady_secs = idle_secs - first_secs;
    let (_, ns) = cpu_over(&pids, Duration::from_secs(steady_secs))?;
    let t_after: Vec<Option<[u64; 4]>> = sample.iter().map(|n| traffic_of(n)).collect();
    let secs = started.elapsed().as_secs_f64();
    let runs = hook.lines().len() - runs_before;

    let mut r = Row::new(
        &id("cpu-settling"),
        &format!(
            "{count} daemons together, % of a core over the {first_secs} s after they agree \
             (schedstat)"
        ),
        "%",
        Target::None,
        "-",
    );
    r.samples = vec![settling.iter().sum()];
    rows.push(r);
    let mut r = Row::new(
        &id("cpu"),
        &format!(
            "{count} idle daemons together, % of a core over the next {steady_secs} s \
             (schedstat)"
        ),
        "%",
        Target::AtMost(tg.cpu.0),
        tg.cpu.1,
    );
    r.samples = vec![ns.iter().sum()];
    rows.push(r);
    let mut r = Row::new(
        &id("hooks"),
        &format!("hook runs (role or master changes) in the {idle_secs} s idle window"),
        "runs",
        Target::Exactly(0.0),
        "0",
    );
    r.samples = vec![runs as f64];
    rows.push(r);
    let mut msgs = Row::new(
        &id("msgs"),
        &format!(
            "messages sent per node per s, idle second half ({} sampled nodes)",
            sample.len()
        ),
        "msg/s",
        Target::None,
        "-",
    );
    let mut bytes = Row::new(
        &id("bytes"),
        &format!(
            "bytes sent per node per s, idle second half ({} sampled nodes)",
            sample.len()
        ),
        "B/s",
        Target::None,
        "-",
    );
    let mut received = Vec::new();
    for ((n, a), b) in sample.iter().zip(&t_before).zip(&t_after) {
        match (a, b) {
            (Some(a), Some(b)) => {
                let rate = |i: usize| b[i].saturating_sub(a[i]) as f64 / secs;
                msgs.samples.push(rate(0));
                bytes.samples.push(rate(1));
                received.push(format!(
                    "{} {:.0} msg/s {:.0} B/s",
                    n.name(),
                    rate(2),
                    rate(3)
                ));
            }
            _ => msgs
                .errors
                .push(format!("{}: no traffic counters in its status", n.name())),
        }
    }
    msgs.notes.push(format!(
        "peer-link frames (status security.traffic, summed over peers); received: {}",
        received.join(", ")
    ));
    rows.push(msgs);
    rows.push(bytes);
    let mut r = Row::new(
        &id("rss"),
        &format!("VmRSS per daemon of {count} (all nodes; median is the figure)"),
        "MiB",
        Target::AtMost(8.0),
        "<= 8 MiB",
    );
    r.samples = pids.iter().filter_map(|&p| rss_mib(p).ok()).collect();
    rows.push(r);
    eprintln!("measured {count} nodes");
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(ns: i128, node: &str, role: &str, master: &str, epoch: u64) -> Line {
        Line {
            ns,
            node: node.into(),
            role: role.into(),
            master: master.into(),
            epoch,
        }
    }

    #[test]
    fn hooks_agree_on_one_master_whatever_epoch_a_slave_last_heard() {
        let mut lines = vec![
            line(1, "a", "slave", "c", 5),
            line(2, "b", "slave", "c", 5),
            line(3, "c", "master", "c", 5),
            // c lost its lease and won again: only c's role changed, a and b ran no hook.
            line(4, "c", "inquorate", "-", 5),
            line(5, "c", "master", "c", 7),
        ];
        assert_eq!(hooks_agree(&lines, 3), Some(("c".into(), 7, 5)));
        assert_eq!(hooks_agree(&lines, 4), None, "a node without a hook");
        lines.push(line(6, "a", "inquorate", "-", 7));
        assert_eq!(hooks_agree(&lines, 3), None, "a node without a master");
        lines.push(line(7, "a", "slave", "b", 8));
        assert_eq!(hooks_agree(&lines, 3), None, "another master named");
        lines.push(line(8, "a", "master", "a", 9));
        assert_eq!(hooks_agree(&lines, 3), None, "two masters");
    }
}
