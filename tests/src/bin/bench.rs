//! `bench`: measures the speed and cost targets of docs/ALGORITHM.md with real `quorumd`
//! processes on loopback (127.255.255.255 broadcast, fresh ports), driven by the real `quorumctl`.
//!
//! Build the release binaries first (`scripts/bench.sh` does both):
//! `cargo build --release --workspace --bins && target/release/bench [--reps N] [--json]`.
//!
//! What it measures (each a table row: min / median / max over the repetitions):
//! - `kill`: master SIGKILLed (host up) -> the new master's hook starts (3 nodes, or
//!   `--failover-nodes N`: a failover in a larger cluster needs the next in line reached both
//!   ways by every voter, which 3 nodes cannot show; both profiles);
//! - `dispatch`: `quorumctl dispatch` on the master -> the new master's hook starts (the same);
//! - `freeze`: the master SIGSTOPped (its links stay open, nothing is said: a silent loss as
//!   its peers see it, on loopback) -> the new master's hook starts, and the `inquorate` hook
//!   runs of the other nodes (the same sizes and profiles);
//! - `cold`: 5 nodes spawned together -> every node reports the same master, plus the number of
//!   hook runs (one per node, nothing spurious);
//! - `role`: whole-process latency of `quorumctl role`;
//! - `idle`: CPU share of one core and RSS per daemon of an idle 5-node cluster;
//! - `big`: for each size of `--big-nodes` (25,50,100 by default): time to the first master
//!   hook and to every node's hook naming one master (confirmed by a few status probes), then
//!   over an idle window all daemons' CPU, hook runs, messages and bytes per node per second
//!   (the daemons' own counters) and RSS (`bench/big.rs`);
//! - `silent` (root only, in the namespace lab): the master's host is cut off the network
//!   silently -> another node's master hook starts, with the overlap checker over the whole
//!   repetition (both profiles). Skipped with a message when not root.
//! - `sigterm` (root only, namespace lab): the master's quorumd gets SIGTERM -> another node's
//!   master hook, state on disk and on tmpfs, with a timeline of the key steps from the
//!   daemons' debug logs (`bench/sigterm.rs`);
//! - `keepalived` (root only, namespace lab): keepalived's VRRP under the same faults (silent
//!   cut, SIGTERM), 1 s and 0.1 s adverts, its split brain after a cut (`bench/keepalived.rs`).
//!
//! Hook start times come from a hook script that appends `date +%s%N` (the realtime clock, the
//! same clock the bench reads), so they include `sh` and `date` start-up; the bench measures
//! that offset (`hook-offset` row) so the reader can subtract it. Every wait has a deadline and
//! every daemon is SIGKILLed when its [`Node`] is dropped, even when a scenario fails.

#[path = "bench/big.rs"]
mod big;
#[path = "bench/keepalived.rs"]
mod keepalived;
#[path = "bench/sigterm.rs"]
mod sigterm;

use anyhow::{Context, Result, anyhow, bail};
use quorum_tests::{Cluster, Node, Profile, quorumctl_bin};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long any single condition (start-up, election, hook run) may take before a repetition
/// counts as failed.
const DEADLINE: Duration = Duration::from_secs(15);

/// Scenario names accepted by `--only`.
const SCENARIOS: [&str; 10] = [
    "kill",
    "dispatch",
    "freeze",
    "cold",
    "role",
    "idle",
    "big",
    "silent",
    "sigterm",
    "keepalived",
];

const USAGE: &str = "usage: bench [--reps N] [--json] [--json-file PATH] \
                     [--only kill,dispatch,freeze,cold,role,idle,big,silent,sigterm,keepalived] \
                     [--role-runs N] [--idle-secs S] [--big-nodes N,N,...] [--big-idle-secs S] \
                     [--failover-nodes N] [--lab-reps N] [--sigterm-log-level LEVEL] [--ka-hold-secs S]\n\
                     defaults: --reps 10 --role-runs 200 --idle-secs 10 --big-nodes 25,50,100 \
                     --big-idle-secs 60 --failover-nodes 3 --lab-reps 5 --sigterm-log-level debug --ka-hold-secs 3\n\
                     silent, sigterm and keepalived need root (namespace lab); keepalived also \
                     needs the keepalived binary (scripts/bench.sh installs it)";

/// Command-line options.
struct Opts {
    reps: usize,
    json: bool,
    /// Also write the JSON document here (with the table on stdout).
    json_file: Option<PathBuf>,
    only: Vec<String>,
    role_runs: usize,
    idle_secs: u64,
    /// Cluster sizes of the `big` rows, in order.
    big_nodes: Vec<usize>,
    big_idle_secs: u64,
    /// Cluster size of the kill and dispatch rows.
    failover_nodes: usize,
    /// Repetitions of the namespace-lab rows (silent, sigterm, keepalived): each builds a lab.
    lab_reps: usize,
    /// `--log-level` of the daemons of the sigterm rows (their logs give the time breakdown).
    sigterm_log_level: String,
    /// How long keepalived's two masters are left split before the lab heals.
    ka_hold_secs: f64,
}

impl Opts {
    fn parse() -> Result<Opts> {
        let mut o = Opts {
            reps: 10,
            json: false,
            json_file: None,
            only: SCENARIOS.iter().map(|s| (*s).to_owned()).collect(),
            role_runs: 200,
            idle_secs: 10,
            big_nodes: vec![25, 50, 100],
            big_idle_secs: 60,
            failover_nodes: 3,
            lab_reps: 5,
            sigterm_log_level: "debug".to_owned(),
            ka_hold_secs: 3.0,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = |name: &str| -> Result<String> {
                args.next()
                    .ok_or_else(|| anyhow!("{name} needs a value\n{USAGE}"))
            };
            match a.as_str() {
                "--json" => o.json = true,
                "--json-file" => o.json_file = Some(PathBuf::from(value("--json-file")?)),
                "--reps" => o.reps = parse_num(&value("--reps")?, "--reps")?,
                "--role-runs" => o.role_runs = parse_num(&value("--role-runs")?, "--role-runs")?,
                "--idle-secs" => o.idle_secs = parse_num(&value("--idle-secs")?, "--idle-secs")?,
                "--big-nodes" => {
                    o.big_nodes = value("--big-nodes")?
                        .split(',')
                        .filter(|x| !x.is_empty())
                        .map(|x| parse_num(x, "--big-nodes"))
                        .collect::<Result<_>>()?
                }
                "--failover-nodes" => {
                    o.failover_nodes = parse_num(&value("--failover-nodes")?, "--failover-nodes")?
                }
                "--lab-reps" => o.lab_reps = parse_num(&value("--lab-reps")?, "--lab-reps")?,
                "--sigterm-log-level" => o.sigterm_log_level = value("--sigterm-log-level")?,
                "--ka-hold-secs" => {
                    o.ka_hold_secs = parse_num(&value("--ka-hold-secs")?, "--ka-hold-secs")?
                }
                "--big-idle-secs" => {
                    o.big_idle_secs = parse_num(&value("--big-idle-secs")?, "--big-idle-secs")?
                }
                "--only" => {
                    let list = value("--only")?;
                    o.only = list.split(',').map(str::to_owned).collect();
                    if let Some(bad) = o.only.iter().find(|s| !SCENARIOS.contains(&s.as_str())) {
                        bail!("unknown scenario {bad:?}\n{USAGE}");
                    }
                }
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        if o.reps == 0 || o.role_runs == 0 || o.lab_reps == 0 {
            bail!("--reps, --role-runs and --lab-reps must be at least 1");
        }
        if o.big_nodes.iter().any(|&n| n < 3) {
            bail!("--big-nodes: every size must be at least 3");
        }
        if !(3..=100).contains(&o.failover_nodes) {
            bail!("--failover-nodes must be in 3..=100");
        }
        if !(o.ka_hold_secs > 0.0 && o.ka_hold_secs <= 60.0) {
            bail!("--ka-hold-secs must be in (0, 60]");
        }
        Ok(o)
    }

    fn wants(&self, scenario: &str) -> bool {
        self.only.iter().any(|s| s == scenario)
    }
}

fn parse_num<T: std::str::FromStr>(s: &str, name: &str) -> Result<T> {
    s.parse()
        .map_err(|_| anyhow!("{name}: {s:?} is not a number\n{USAGE}"))
}

/// What a row is compared with (smaller is better unless `Exactly`).
#[derive(Clone, Copy)]
enum Target {
    AtMost(f64),
    Exactly(f64),
    None,
}

/// One line of the result table.
struct Row {
    id: String,
    what: String,
    unit: &'static str,
    samples: Vec<f64>,
    target: Target,
    target_text: String,
    /// Failures of individual repetitions (the samples hold only the successful ones).
    errors: Vec<String>,
    /// Remarks printed under the table (e.g. where the logs of a slow repetition were kept).
    notes: Vec<String>,
}

impl Row {
    fn new(id: &str, what: &str, unit: &'static str, target: Target, target_text: &str) -> Row {
        Row {
            id: id.to_owned(),
            what: what.to_owned(),
            unit,
            samples: Vec::new(),
            target,
            target_text: target_text.to_owned(),
            errors: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn sorted(&self) -> Vec<f64> {
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        s
    }

    /// The `q`-quantile (nearest rank) of the samples.
    fn quantile(&self, q: f64) -> Option<f64> {
        let s = self.sorted();
        if s.is_empty() {
            return None;
        }
        let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
        Some(s[rank - 1])
    }

    fn min(&self) -> Option<f64> {
        self.sorted().first().copied()
    }

    fn max(&self) -> Option<f64> {
        self.sorted().last().copied()
    }

    /// `met` when every sample meets the target, `median only` when the median does.
    fn verdict(&self) -> &'static str {
        let (Some(min), Some(med), Some(max)) = (self.min(), self.quantile(0.5), self.max()) else {
            return "FAILED";
        };
        let partial = !self.errors.is_empty();
        match self.target {
            Target::None => "-",
            _ if partial => "NOT met (failures)",
            Target::AtMost(t) if max <= t => "met",
            Target::AtMost(t) if med <= t => "median only",
            Target::AtMost(_) => "NOT met",
            Target::Exactly(t) if min == t && max == t => "met",
            Target::Exactly(_) => "NOT met",
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "what": self.what,
            "unit": self.unit,
            "n": self.samples.len(),
            "min": self.min(),
            "median": self.quantile(0.5),
            "p99": self.quantile(0.99),
            "max": self.max(),
            "target": self.target_text,
            "verdict": self.verdict(),
            "samples": self.samples,
            "errors": self.errors,
            "notes": self.notes,
        })
    }
}

/// Realtime clock in nanoseconds since the epoch: the clock `date +%s%N` prints.
fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

fn ms_between(from_ns: i128, to_ns: i128) -> f64 {
    (to_ns - from_ns) as f64 / 1e6
}

/// Polls `f` every `every` until it gives a value; an error naming `what` after `timeout`.
fn poll<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    f: impl FnMut() -> Option<T>,
) -> Result<T> {
    testkit::poll_until(timeout, every, f)
        .with_context(|| format!("timed out after {timeout:?} waiting for {what}"))
}

/// A hook that appends `<ns> <node> <role> <previous role>` to `<dir>/ts.out` on every run.
struct TsHook {
    script: PathBuf,
    output: PathBuf,
}

/// One recorded hook run.
#[derive(Debug)]
struct HookLine {
    ns: i128,
    node: String,
    role: String,
}

impl TsHook {
    fn write(dir: &Path) -> Result<TsHook> {
        let script = dir.join("ts.sh");
        let output = dir.join("ts.out");
        // The timestamp is taken first, before anything else the script does.
        let body = format!(
            "#!/bin/sh\nt=$(date +%s%N)\necho \"$t $QUORUM_NODE $QUORUM_ROLE \
             $QUORUM_PREVIOUS_ROLE\" >> '{}'\n",
            output.display()
        );
        std::fs::write(&script, body).context("writing the hook script")?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .context("chmod 755 the hook script")?;
        Ok(TsHook { script, output })
    }

    fn arg(&self) -> Result<&str> {
        self.script.to_str().context("temp paths are UTF-8")
    }

    /// `-m HOOK -s HOOK`: every role change of a node is recorded.
    fn args(&self) -> Result<[&str; 4]> {
        let a = self.arg()?;
        Ok(["-m", a, "-s", a])
    }

    /// The runs recorded so far (lines still being written are left out).
    fn lines(&self) -> Vec<HookLine> {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                if f.len() < 3 {
                    return None;
                }
                Some(HookLine {
                    ns: f[0].parse().ok()?,
                    node: f[1].to_owned(),
                    role: f[2].to_owned(),
                })
            })
            .collect()
    }

    /// The first master run by a node other than `old` that started after `after_ns`.
    fn new_master_since(&self, old: &str, after_ns: i128) -> Option<HookLine> {
        self.lines()
            .into_iter()
            .find(|l| l.role == "master" && l.node != old && l.ns >= after_ns)
    }
}

/// The master every node in `nodes` reports, if they all report the same one and none is
/// still starting; with `full`, also every node counts all of them and sees them alive.
fn common_master(nodes: &[Node], full: bool) -> Option<String> {
    let mut master: Option<String> = None;
    for n in nodes {
        let s = n.status_json()?;
        if s["role"].as_str() == Some("starting") {
            return None;
        }
        if full {
            let counted = s["quorum"]["counted"].as_u64()?;
            let members = s["members"].as_array()?;
            if counted != nodes.len() as u64
                || members.len() != nodes.len()
                || members.iter().any(|m| m["state"] != "alive")
            {
                return None;
            }
        }
        let m = s["master"].as_str()?;
        match &master {
            None => master = Some(m.to_owned()),
            Some(x) if x == m => {}
            Some(_) => return None,
        }
    }
    master
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("n{i:02}")).collect()
}

/// Spawns `count` nodes at once (no waiting between them) with `extra` arguments.
fn spawn_all(c: &Cluster, count: usize, extra: &[&str]) -> Vec<Node> {
    names(count)
        .iter()
        .map(|name| c.spawn_on(name, c.tcp_port(), extra))
        .collect()
}

/// A fully formed cluster of `count` nodes (all alive, counted, one master) and its hook.
fn formed(profile: Profile, count: usize) -> Result<(Cluster, TsHook, Vec<Node>, String)> {
    let c = Cluster::with_profile(profile);
    let hook = TsHook::write(c.dir())?;
    let nodes = spawn_all(&c, count, &hook.args()?);
    let master = poll(
        "a fully formed cluster",
        DEADLINE,
        Duration::from_millis(20),
        || common_master(&nodes, true),
    )?;
    // Every node has run its first hook: nothing from start-up is still pending.
    poll(
        "one hook run per node",
        DEADLINE,
        Duration::from_millis(10),
        || (hook.lines().len() >= count).then_some(()),
    )?;
    Ok((c, hook, nodes, master))
}

/// Copies the nodes' logs and the hook record of `c` to a directory that outlives the cluster,
/// so a repetition that missed its target can be looked into; returns where.
fn keep_logs(c: &Cluster, label: &str) -> Result<PathBuf> {
    let dest = std::env::temp_dir()
        .join(format!("quorum-bench-{}", std::process::id()))
        .join(label);
    std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
    for entry in std::fs::read_dir(c.dir())? {
        let path = entry?.path();
        let keep = path
            .extension()
            .is_some_and(|e| e == "log" || e == "out" || e == "sh");
        if let (true, Some(name)) = (keep, path.file_name()) {
            std::fs::copy(&path, dest.join(name))?;
        }
    }
    Ok(dest)
}

/// Keeps the logs of a repetition whose `value` (in `unit`) exceeds `limit`, noting where in
/// `notes`.
fn keep_if_over(
    c: &Cluster,
    (value, unit): (f64, &str),
    limit: f64,
    label: String,
    notes: &mut Vec<String>,
) {
    if value > limit {
        match keep_logs(c, &label) {
            Ok(dir) => notes.push(format!(
                "{label}: {value:.1} {unit}, logs kept in {}",
                dir.display()
            )),
            Err(e) => notes.push(format!(
                "{label}: {value:.1} {unit}, keeping logs failed: {e:#}"
            )),
        }
    }
}

fn profile_name(p: Profile) -> &'static str {
    match p {
        Profile::Default => "default",
        Profile::Fast => "fast",
    }
}

/// Runs `f` once per repetition, recording its sample or its error (a panic in the harness
/// counts as an error too).
fn repeat(row: &mut Row, reps: usize, mut f: impl FnMut() -> Result<f64>) {
    for rep in 0..reps {
        match catch_unwind(AssertUnwindSafe(&mut f)) {
            Ok(Ok(v)) => row.samples.push(v),
            Ok(Err(e)) => row.errors.push(format!("rep {rep}: {e:#}")),
            Err(_) => row.errors.push(format!("rep {rep}: panicked (see stderr)")),
        }
        eprint!(".");
    }
    eprintln!(" {}", row.id);
}

/// The delay between spawning the hook script and the timestamp it records.
fn hook_offset(reps: usize) -> Result<Row> {
    let dir = tempfile::Builder::new().prefix("quorum-bench-").tempdir()?;
    let hook = TsHook::write(dir.path())?;
    let mut row = Row::new(
        "hook-offset",
        "hook spawn -> its `date +%s%N` (included below)",
        "ms",
        Target::None,
        "-",
    );
    repeat(&mut row, reps, || {
        let before = hook.lines().len();
        let t0 = now_ns();
        let status = Command::new(&hook.script)
            .env("QUORUM_NODE", "calib")
            .env("QUORUM_ROLE", "master")
            .status()?;
        if !status.success() {
            bail!("hook script failed: {status}");
        }
        let lines = hook.lines();
        let line = lines.get(before).context("the hook recorded no line")?;
        Ok(ms_between(t0, line.ns))
    });
    Ok(row)
}

/// How long a cluster larger than 3 is left idle before its master is killed or dispatched:
/// the fault must find it settled, its quiet pairs meeting only by probes in rotation (the
/// case a failover in a large cluster must be fast in), not still loud from its formation.
const FAILOVER_SETTLE: Duration = Duration::from_secs(5);

/// The id of a kill or dispatch row: `kill-default` with 3 nodes, `kill25-default` with 25.
fn failover_id(what: &str, nodes: usize, p: &str) -> String {
    if nodes == 3 {
        format!("{what}-{p}")
    } else {
        format!("{what}{nodes}-{p}")
    }
}

/// How the master leaves in a failover row.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Leave {
    /// SIGKILL: its host closes its links (a certain crash).
    Kill,
    /// `quorumctl dispatch`: a goodbye.
    Dispatch,
    /// SIGSTOP: its links stay open and nothing is said, as a cable cut looks to its peers.
    Freeze,
}

impl Leave {
    fn id(self) -> &'static str {
        match self {
            Leave::Kill => "kill",
            Leave::Dispatch => "dispatch",
            Leave::Freeze => "freeze",
        }
    }

    /// The target of the row, in ms, and as text.
    fn target(self, profile: Profile) -> (f64, &'static str) {
        match (self, profile) {
            (Leave::Kill, _) => (20.0, "<= 20 ms"),
            (Leave::Dispatch, _) => (10.0, "<= 10 ms"),
            (Leave::Freeze, Profile::Default) => (1500.0, "<= 1.5 s"),
            (Leave::Freeze, Profile::Fast) => (300.0, "<= 300 ms"),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Leave::Kill => "master SIGKILLed",
            Leave::Dispatch => "quorumctl dispatch",
            Leave::Freeze => "master frozen (SIGSTOP)",
        }
    }
}

/// The master leaves (`leave`) -> the new master's hook starts, `nodes` nodes. A freeze also
/// gives a second row: the `inquorate` hook runs of the other nodes (a slave of the majority
/// has no reason to go `inquorate`; with --exit-on-minority it would exit).
fn failover(leave: Leave, profile: Profile, reps: usize, nodes: usize) -> Vec<Row> {
    let p = profile_name(profile);
    let id = failover_id(leave.id(), nodes, p);
    let (limit, text) = leave.target(profile);
    let mut row = Row::new(
        &id,
        &format!("{} -> new master's hook ({p}, {nodes} nodes)", leave.what()),
        "ms",
        Target::AtMost(limit),
        text,
    );
    let mut inquorate = Row::new(
        &format!("{id}-inquorate"),
        &format!("`inquorate` hook runs of the other nodes ({p}, {nodes} nodes)"),
        "runs",
        Target::Exactly(0.0),
        "0",
    );
    let mut notes = Vec::new();
    let mut rep = 0;
    repeat(&mut row, reps, || {
        rep += 1;
        let (c, hook, mut members, master) = formed(profile, nodes)?;
        if nodes > 3 {
            std::thread::sleep(FAILOVER_SETTLE);
        }
        let leaving = members
            .iter_mut()
            .find(|n| n.name() == master)
            .context("the master is one of the nodes")?;
        let mut ctl = leaving.ctl_command(&["dispatch"]);
        ctl.stdout(Stdio::null()).stderr(Stdio::null());
        let t0 = now_ns();
        match leave {
            Leave::Kill => leaving.kill(libc::SIGKILL),
            Leave::Freeze => leaving.kill(libc::SIGSTOP),
            Leave::Dispatch => {
                let status = ctl.status().context("running quorumctl dispatch")?;
                if !status.success() {
                    bail!("quorumctl dispatch failed: {status}");
                }
            }
        }
        let line = poll(
            "the new master's hook",
            DEADLINE,
            Duration::from_millis(1),
            || hook.new_master_since(&master, t0),
        )?;
        let ms = ms_between(t0, line.ns);
        if leave == Leave::Freeze {
            // The other nodes' hooks for this change run within a few ms of the master's.
            std::thread::sleep(Duration::from_millis(300));
            let runs = hook
                .lines()
                .iter()
                .filter(|l| l.ns >= t0 && l.node != master && l.role == "inquorate")
                .count();
            inquorate.samples.push(runs as f64);
            let label = format!("{id}-inquorate-rep{rep}");
            keep_if_over(&c, (runs as f64, "runs"), 0.0, label, &mut notes);
        }
        keep_if_over(&c, (ms, "ms"), limit, format!("{id}-rep{rep}"), &mut notes);
        Ok(ms)
    });
    row.notes = notes;
    if leave == Leave::Freeze {
        vec![row, inquorate]
    } else {
        vec![row]
    }
}

/// 5 nodes spawned together -> all report one master; then the hook runs after a quiet hold.
fn cold(profile: Profile, reps: usize) -> Vec<Row> {
    const N: usize = 5;
    let p = profile_name(profile);
    let (limit, text) = match profile {
        Profile::Default => (1000.0, "<= 1 s"),
        Profile::Fast => (300.0, "<= 300 ms"),
    };
    let mut stable = Row::new(
        &format!("cold-{p}"),
        &format!("5 spawned together -> all report one master ({p})"),
        "ms",
        Target::AtMost(limit),
        text,
    );
    let mut first_hook = Row::new(
        &format!("cold-hook-{p}"),
        &format!("5 spawned together -> master's hook starts ({p})"),
        "ms",
        Target::AtMost(limit),
        text,
    );
    let mut runs = Row::new(
        &format!("cold-runs-{p}"),
        &format!("hook runs after a cold start of 5 ({p})"),
        "runs",
        Target::Exactly(N as f64),
        "5 (one per node)",
    );
    // After the cluster looks stable, watch this long for spurious hook runs (3 silences).
    let hold = match profile {
        Profile::Default => Duration::from_millis(2700),
        Profile::Fast => Duration::from_millis(450),
    };
    let mut hook_ms = Vec::new();
    let mut run_counts = Vec::new();
    repeat(&mut stable, reps, || {
        let c = Cluster::with_profile(profile);
        let hook = TsHook::write(c.dir())?;
        let args = hook.args()?;
        let t0 = now_ns();
        let start = Instant::now();
        let nodes = spawn_all(&c, N, &args);
        let master = poll(
            "all five report one master",
            DEADLINE,
            Duration::from_millis(5),
            || common_master(&nodes, false),
        )?;
        let took = start.elapsed().as_secs_f64() * 1e3;
        std::thread::sleep(hold);
        let lines = hook.lines();
        run_counts.push(lines.len() as f64);
        if let Some(l) = lines
            .iter()
            .find(|l| l.role == "master" && l.node == master)
        {
            hook_ms.push(ms_between(t0, l.ns));
        }
        Ok(took)
    });
    first_hook.samples = hook_ms;
    runs.samples = run_counts;
    vec![stable, first_hook, runs]
}

/// Reads utime+stime (clock ticks) from /proc/<pid>/stat.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc/pid/stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = f.get(11).context("no utime")?.parse()?;
    let stime: u64 = f.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

/// Nanoseconds on a CPU of all threads of `pid` (/proc/<pid>/task/*/schedstat), finer than ticks.
fn cpu_ns(pid: u32) -> Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(first) = text.split_whitespace().next() {
            total += first.parse::<u64>().unwrap_or(0);
        }
    }
    Ok(total)
}

/// VmRSS of `pid` in MiB.
fn rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    let kib: f64 = line
        .split_whitespace()
        .nth(1)
        .context("empty VmRSS line")?
        .parse()?;
    Ok(kib / 1024.0)
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf(3) has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// CPU % of one core per pid over `window`: (from stat ticks, from schedstat ns).
fn cpu_over(pids: &[u32], window: Duration) -> Result<(Vec<f64>, Vec<f64>)> {
    let ticks0: Vec<u64> = pids.iter().map(|&p| cpu_ticks(p)).collect::<Result<_>>()?;
    let ns0: Vec<u64> = pids.iter().map(|&p| cpu_ns(p)).collect::<Result<_>>()?;
    let start = Instant::now();
    std::thread::sleep(window);
    let ticks1: Vec<u64> = pids.iter().map(|&p| cpu_ticks(p)).collect::<Result<_>>()?;
    let ns1: Vec<u64> = pids.iter().map(|&p| cpu_ns(p)).collect::<Result<_>>()?;
    let secs = start.elapsed().as_secs_f64();
    let hz = clock_ticks_per_sec();
    let by_ticks = ticks0
        .iter()
        .zip(&ticks1)
        .map(|(a, b)| b.saturating_sub(*a) as f64 / hz / secs * 100.0)
        .collect();
    let by_ns = ns0
        .iter()
        .zip(&ns1)
        .map(|(a, b)| b.saturating_sub(*a) as f64 / 1e9 / secs * 100.0)
        .collect();
    Ok((by_ticks, by_ns))
}

/// `quorumctl role` latency, then the idle cost of the same 5-node cluster (default profile).
fn role_and_idle(opts: &Opts) -> Result<Vec<Row>> {
    let (_c, hook, nodes, master) = formed(Profile::Default, 5)?;
    let mut rows = Vec::new();
    if opts.wants("role") {
        let node = nodes
            .iter()
            .find(|n| n.name() == master)
            .context("the master is one of the nodes")?;
        let mut row = Row::new(
            "role",
            "`quorumctl role`, whole process (p99 in JSON)",
            "ms",
            Target::AtMost(3.0),
            "<= 3 ms",
        );
        for _ in 0..opts.role_runs {
            let mut cmd = Command::new(quorumctl_bin());
            cmd.arg("--socket")
                .arg(node.socket())
                .arg("role")
                .env_remove("QUORUMD_SOCKET")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let start = Instant::now();
            let status = cmd.status().context("running quorumctl role")?;
            let took = start.elapsed().as_secs_f64() * 1e3;
            if status.success() {
                row.samples.push(took);
            } else {
                row.errors.push(format!("quorumctl role exited {status}"));
            }
        }
        let mut p99 = Row::new(
            "role-p99",
            "`quorumctl role`, whole process, p99",
            "ms",
            Target::AtMost(3.0),
            "<= 3 ms",
        );
        p99.samples = row.quantile(0.99).into_iter().collect();
        eprintln!("{} runs role", row.samples.len());
        rows.push(row);
        rows.push(p99);
    }
    if opts.wants("idle") {
        // Let the role runs' sockets and any start-up work settle first.
        std::thread::sleep(Duration::from_secs(1));
        let runs_before = hook.lines().len();
        let pids: Vec<u32> = nodes.iter().map(Node::pid).collect();
        let (ticks, ns) = cpu_over(&pids, Duration::from_secs(opts.idle_secs))?;
        let mut cpu = Row::new(
            "idle-cpu",
            &format!(
                "idle daemon of 5, % of a core over {} s (schedstat)",
                opts.idle_secs
            ),
            "%",
            Target::AtMost(0.1),
            "<= 0.1 %",
        );
        cpu.samples = ns;
        let mut cpu_ticks = Row::new(
            "idle-cpu-stat",
            "same, from /proc/pid/stat utime+stime (10 ms ticks)",
            "%",
            Target::AtMost(0.1),
            "<= 0.1 %",
        );
        cpu_ticks.samples = ticks;
        let mut rss = Row::new(
            "idle-rss",
            "idle daemon of 5, VmRSS",
            "MiB",
            Target::AtMost(8.0),
            "<= 8 MiB",
        );
        rss.samples = pids.iter().map(|&p| rss_mib(p)).collect::<Result<_>>()?;
        let mut quiet = Row::new(
            "idle-hooks",
            "hook runs during the idle window",
            "runs",
            Target::Exactly(0.0),
            "0",
        );
        quiet.samples = vec![(hook.lines().len() - runs_before) as f64];
        eprintln!("measured idle");
        rows.extend([cpu, cpu_ticks, rss, quiet]);
    }
    Ok(rows)
}

/// Raises the soft limit of open files to the hard limit (250 daemons and their `quorumctl`
/// probes and hook pipes are children of this process; they inherit the raised limit).
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit(2) on a struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                eprintln!("could not raise RLIMIT_NOFILE to {}", lim.rlim_max);
            }
        }
    }
}

/// Writes an executable (0755) script.
fn write_script(path: &Path, body: &str) -> Result<()> {
    std::fs::write(path, body).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod 755 {}", path.display()))
}

/// Up to `k` distinct elements of `from` in random order (xorshift seeded by the clock; the
/// bench needs spread, not cryptographic randomness).
fn shuffle_pick<T: Copy>(from: &[T], k: usize) -> Vec<T> {
    let mut v = from.to_vec();
    let mut x = (now_ns() as u64) | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v.truncate(k);
    v
}

/// The directory that keeps logs of this bench run: `/tmp/quorum-bench-<pid>/<label>`.
fn kept_dir(label: &str) -> Result<PathBuf> {
    let dest = std::env::temp_dir()
        .join(format!("quorum-bench-{}", std::process::id()))
        .join(label);
    std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
    Ok(dest)
}

/// Runs a scenario that yields several rows; a failure becomes one failed row.
fn guarded(id: &str, what: &str, f: impl FnOnce() -> Result<Vec<Row>>) -> Vec<Row> {
    let err = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(rows)) => return rows,
        Ok(Err(e)) => format!("{e:#}"),
        Err(_) => "panicked (see stderr)".to_owned(),
    };
    let mut row = Row::new(id, what, "-", Target::None, "-");
    row.errors.push(err);
    vec![row]
}

fn fmt(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
        None => "-".to_owned(),
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "| id | measurement | unit | n | min | median | max | target | verdict |\n\
         |---|---|---|---|---|---|---|---|---|"
    );
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.id,
            r.what,
            r.unit,
            r.samples.len(),
            fmt(r.min()),
            fmt(r.quantile(0.5)),
            fmt(r.max()),
            r.target_text,
            r.verdict()
        );
    }
    for r in rows {
        for e in &r.errors {
            println!("\nerror in {}: {e}", r.id);
        }
        for n in &r.notes {
            println!("\nnote on {}: {n}", r.id);
        }
    }
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned());
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "model": model,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .ok(),
        "unix_time": now_ns() / 1_000_000_000,
    })
}

fn main() -> Result<()> {
    let opts = Opts::parse()?;
    raise_nofile();
    let started = Instant::now();
    let mut rows = vec![hook_offset(opts.reps.max(20))?];
    for leave in [Leave::Kill, Leave::Dispatch, Leave::Freeze] {
        for profile in [Profile::Default, Profile::Fast] {
            if opts.wants(leave.id()) {
                rows.extend(failover(leave, profile, opts.reps, opts.failover_nodes));
            }
        }
    }
    for profile in [Profile::Default, Profile::Fast] {
        if opts.wants("cold") {
            rows.extend(cold(profile, opts.reps));
        }
    }
    if opts.wants("silent")
        && !quorum_tests::skip_unless_root("the silent-loss rows (namespace lab)")
    {
        for profile in [Profile::Default, Profile::Fast] {
            rows.push(silent(profile, opts.lab_reps));
        }
    }
    if opts.wants("role") || opts.wants("idle") {
        rows.extend(guarded("role-idle", "role latency and idle cost", || {
            role_and_idle(&opts)
        }));
    }
    if opts.wants("sigterm") && !quorum_tests::skip_unless_root("the sigterm rows (namespace lab)")
    {
        for profile in [Profile::Default, Profile::Fast] {
            rows.extend(sigterm::sigterm(
                profile,
                opts.lab_reps,
                &opts.sigterm_log_level,
            ));
        }
    }
    if opts.wants("keepalived")
        && !quorum_tests::skip_unless_root("the keepalived rows (namespace lab)")
    {
        rows.extend(keepalived::rows(opts.lab_reps, opts.ka_hold_secs));
    }
    if opts.wants("big") {
        for &count in &opts.big_nodes {
            rows.extend(guarded(
                &format!("big{count}"),
                &format!("{count} nodes on one machine"),
                || big::big(count, opts.big_idle_secs),
            ));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let doc = json!({
        "machine": machine(),
        "reps": opts.reps,
        "seconds": secs,
        "results": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&doc)?;
    if let Some(path) = &opts.json_file {
        std::fs::write(path, format!("{text}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if opts.json {
        println!("{text}");
    } else {
        print_table(&rows);
        println!("\n{} repetitions; bench took {secs:.0} s", opts.reps);
    }
    Ok(())
}

/// The master's host goes silent (moved off the lab bridge: no FIN, no reset) -> another
/// node's master hook starts. Three lab hosts; the overlap checker looks at the whole
/// repetition, so a repetition with two masters at once counts as failed. At most 5
/// repetitions (each builds a lab).
fn silent(profile: Profile, reps: usize) -> Row {
    use quorum_tests::lab::{Checker, Lab, check::now_ns};
    let (id, limit, text) = match profile {
        Profile::Default => ("silent-default", 1500.0, "<= 1.5 s, zero overlap"),
        Profile::Fast => ("silent-fast", 300.0, "<= 300 ms, zero overlap"),
    };
    let mut row = Row::new(
        id,
        &format!(
            "master's host cut off silently -> new master's hook ({}, 3 lab hosts)",
            profile_name(profile)
        ),
        "ms",
        Target::AtMost(limit),
        text,
    );
    // The lab starts daemons with `--profile fast`; a later `--profile` overrides it.
    let extra: &[&str] = match profile {
        Profile::Default => &["--profile", "default"],
        Profile::Fast => &[],
    };
    let names = ["alice", "bob", "carol"];
    repeat(&mut row, reps, || {
        let lab = Lab::new(names.len());
        let ck = Checker::new();
        for (host, name) in names.iter().enumerate() {
            ck.start(&lab, host, name, extra);
        }
        let (master, _) = ck.wait_master(DEADLINE);
        let host = names
            .iter()
            .position(|n| *n == master)
            .ok_or_else(|| anyhow!("unknown master {master}"))?;
        let cut_at = now_ns();
        lab.cut(host);
        ck.note(&format!("{master}'s host cut off"));
        let (_, hooked) = ck.wait_until("another master's hook", DEADLINE, || {
            ck.master_hook_after(cut_at, &master)
        });
        // Let the old master's lease run out in full view of the checker, then check.
        std::thread::sleep(Duration::from_millis(limit as u64));
        ck.finish();
        drop(lab);
        Ok(hooked.saturating_sub(cut_at) as f64 / 1e6)
    });
    row
}
