//! The overlap checker: every lab node's hooks (`-m`, `-s`, `--notify`) append
//! `time role epoch master tag` lines, a poller asks `quorumctl role` of every node every 50 ms,
//! and [`Checker::finish`] fails (printing the whole timeline) if two nodes were master at one
//! instant, a daemon exited unasked, or a log holds a panic.
//!
//! Times are CLOCK_REALTIME nanoseconds (`date +%s%N` in hooks, `SystemTime` here): one
//! machine, one clock. A node counts as master from its first master evidence (hook line or
//! answer) to its last one before any non-master evidence (another role, a freeze, an exit):
//! only overlaps that certainly happened are reported.

use super::Lab;
use crate::bins::{quorumctl_bin, quorumd_bin};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use testkit::ChildGuard;

/// Nanoseconds since the epoch (CLOCK_REALTIME, like `date +%s%N`).
pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

/// A timeline event (its fields are read through `Debug` in the failure report).
#[derive(Clone, Debug)]
#[allow(dead_code)]
enum Ev {
    Role(String, String),
    Note(String),
    Freeze,
    Thaw,
    Exit(bool, String),
}

/// One `quorumd` of the lab.
pub struct LabNode {
    /// Its name (`-n`).
    pub name: String,
    /// Its host index.
    pub host: usize,
    socket: PathBuf,
    log: PathBuf,
    hooks: PathBuf,
    /// The running daemon; `None` once its exit was recorded.
    child: Option<ChildGuard>,
    asked_exit: bool,
    frozen: bool,
}

struct Shared {
    nodes: Vec<LabNode>,
    events: Vec<(u128, String, Ev)>,
}

/// Nodes of a lab, their poller, and the timeline.
pub struct Checker {
    dir: tempfile::TempDir,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    poller: Option<std::thread::JoinHandle<()>>,
    start: u128,
}

impl Default for Checker {
    fn default() -> Self {
        Checker::new()
    }
}

impl Checker {
    /// A checker with its poller running.
    pub fn new() -> Checker {
        let dir = tempfile::Builder::new()
            .prefix("quorum-lab-")
            .tempdir()
            .expect("temp dir");
        let shared = Arc::new(Mutex::new(Shared {
            nodes: Vec::new(),
            events: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (shared.clone(), stop.clone());
        let poller = std::thread::spawn(move || poll_loop(&s, &st));
        Checker {
            dir,
            shared,
            stop,
            poller: Some(poller),
            start: now_ns(),
        }
    }

    /// The temp dir holding the nodes' logs (`<label>.log`), hook records (`<label>.hooks`),
    /// sockets and state; removed when the checker is dropped.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Records a test event (a fault, a heal) in the timeline.
    pub fn note(&self, what: &str) {
        self.push("lab", Ev::Note(what.to_owned()));
    }

    fn push(&self, node: &str, ev: Ev) {
        self.shared
            .lock()
            .expect("lock")
            .events
            .push((now_ns(), node.to_owned(), ev));
    }

    /// Starts `quorumd -n name` on lab host `host` (default broadcast address, port 7000,
    /// discovery port 5595), with hooks recording into the timeline and `extra` arguments.
    pub fn start(&self, lab: &Lab, host: usize, name: &str, extra: &[&str]) {
        self.spawn(lab, host, name, name, 7000, extra);
    }

    /// Starts `quorumd -n name` on `port` of lab host `host`, known to the checker as `label`
    /// (two processes may share a name; labels are unique).
    pub fn spawn(
        &self,
        lab: &Lab,
        host: usize,
        label: &str,
        name: &str,
        port: u16,
        extra: &[&str],
    ) {
        // A restart waits for the previous process of this node to be gone: one that was
        // asked to leave (SIGTERM) still hands over, runs its hook and holds its socket for
        // a moment, and a second daemon on that socket is refused (exit 2), as it should be.
        let what = format!("the previous {label} has exited");
        self.wait_until(&what, Duration::from_secs(30), || {
            let mut sh = self.shared.lock().expect("lock");
            let running = sh
                .nodes
                .iter_mut()
                .find(|n| n.name == label)
                .and_then(|n| n.child.as_mut())
                .is_some_and(|c| c.try_exit().is_none());
            (!running).then_some(())
        });
        let socket = self.dir.path().join(format!("{label}.sock"));
        let log = self.dir.path().join(format!("{label}.log"));
        let hooks = self.dir.path().join(format!("{label}.hooks"));
        let state = self.dir.path().join(format!("{label}.state"));
        let mut args: Vec<String> = vec![
            lab.host(host).addr.clone(),
            port.to_string(),
            // No broadcast address or port: the daemon's defaults, as an operator's daemon
            // runs. It runs inside the lab host's own network namespace (`lab.command`),
            // whose default route is the lab bridge, so the broadcast never reaches the root
            // namespace.
            "-n".into(),
            name.into(),
            "--socket".into(),
            socket.display().to_string(),
            "--state-dir".into(),
            state.display().to_string(),
            "--profile".into(),
            "fast".into(),
        ];
        for (flag, tag) in [("-m", "m"), ("-s", "s"), ("--notify", "n")] {
            let script = self.dir.path().join(format!("{label}-{tag}.sh"));
            let body = format!(
                "#!/bin/sh\necho \"$(date +%s%N) $QUORUM_ROLE ${{QUORUM_EPOCH:--}} \
                 ${{QUORUM_MASTER:--}} {tag}\" >> '{}'\n",
                hooks.display()
            );
            std::fs::write(&script, body).expect("hook script");
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
                .expect("chmod hook");
            args.push(flag.into());
            args.push(script.display().to_string());
        }
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("log file");
        let mut cmd = lab.command(host, &quorumd_bin());
        cmd.args(&args)
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().expect("dup log")))
            .stderr(Stdio::from(file));
        // SAFETY: prctl(2) only; the daemon dies with the test thread.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("starting quorumd in a lab host");
        let mut sh = self.shared.lock().expect("lock");
        sh.events.push((
            now_ns(),
            label.to_owned(),
            Ev::Note(format!("start on host {host}")),
        ));
        sh.nodes.retain(|n| n.name != label);
        sh.nodes.push(LabNode {
            name: label.to_owned(),
            host,
            socket,
            log,
            hooks,
            child: Some(ChildGuard::new(child)),
            asked_exit: false,
            frozen: false,
        });
    }

    /// Sends `signal` to node `name`; SIGKILL/SIGTERM mark its exit as asked for,
    /// SIGSTOP/SIGCONT are recorded as freeze/thaw.
    pub fn signal(&self, name: &str, signal: i32) {
        let mut sh = self.shared.lock().expect("lock");
        let Some(n) = sh.nodes.iter_mut().find(|n| n.name == name) else {
            panic!("no node {name}")
        };
        let Some(child) = n.child.as_mut() else {
            return;
        };
        // Not sent if it has exited already (the poller records that exit).
        let _ = child.signal(signal);
        let ev = match signal {
            libc::SIGSTOP => {
                n.frozen = true;
                Ev::Freeze
            }
            libc::SIGCONT => {
                n.frozen = false;
                Ev::Thaw
            }
            _ => {
                n.asked_exit = true;
                Ev::Note(format!("signal {signal}"))
            }
        };
        sh.events.push((now_ns(), name.to_owned(), ev));
    }

    /// The last polled role of every live node (name, role).
    pub fn roles(&self) -> Vec<(String, Option<String>)> {
        let sockets: Vec<(String, PathBuf, bool)> = {
            let sh = self.shared.lock().expect("lock");
            sh.nodes
                .iter()
                .filter(|n| n.child.is_some())
                .map(|n| (n.name.clone(), n.socket.clone(), n.frozen))
                .collect()
        };
        sockets
            .into_iter()
            .map(|(name, sock, frozen)| {
                let r = if frozen { None } else { ctl(&sock, &["role"]) };
                (name, r)
            })
            .collect()
    }

    /// `quorumctl --json status` of node `name`.
    pub fn status(&self, name: &str) -> Option<serde_json::Value> {
        let sock = self.socket(name);
        ctl(&sock, &["--json", "status"]).and_then(|s| serde_json::from_str(&s).ok())
    }

    /// Marks node `name`'s exit (whatever its status) as allowed.
    pub fn allow_exit(&self, name: &str) {
        let mut sh = self.shared.lock().expect("lock");
        for n in sh.nodes.iter_mut().filter(|n| n.name == name) {
            n.asked_exit = true;
        }
    }

    /// Records an answer `role` of node `name` received now (from a caller's own `quorumctl`).
    pub fn record_answer(&self, name: &str, role: &str) {
        self.push(name, Ev::Role(role.to_owned(), "answer".into()));
    }

    /// Node `name`'s control socket.
    pub fn socket(&self, name: &str) -> PathBuf {
        let sh = self.shared.lock().expect("lock");
        sh.nodes
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.socket.clone())
            .expect("known node")
    }

    /// The master's name and epoch when exactly one live node answers master and every other
    /// live, unfrozen node follows it.
    pub fn agreed_master(&self) -> Option<(String, u64)> {
        let roles = self.roles();
        let masters: Vec<&String> = roles
            .iter()
            .filter(|(_, r)| r.as_deref() == Some("master"))
            .map(|(n, _)| n)
            .collect();
        if masters.len() != 1 || roles.iter().any(|(_, r)| r.is_none()) {
            return None;
        }
        let m = masters[0].clone();
        let mut epoch = 0;
        for (n, _) in &roles {
            let st = self.status(n)?;
            if st.get("master").and_then(|v| v.as_str()) != Some(m.as_str()) {
                return None;
            }
            if *n == m {
                epoch = st
                    .get("epoch")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
            }
        }
        Some((m, epoch))
    }

    /// Waits until `cond` holds (polling every 50 ms) or fails with the timeline.
    pub fn wait_until<T>(
        &self,
        what: &str,
        within: Duration,
        cond: impl FnMut() -> Option<T>,
    ) -> T {
        match testkit::try_wait_until(within, cond) {
            Some(v) => {
                self.note(&format!("reached: {what}"));
                v
            }
            None => self.fail(&format!("not reached within {within:?}: {what}")),
        }
    }

    /// The first master hook (`-m`) that started at or after `after` (CLOCK_REALTIME ns) on a
    /// node other than `except`: (node, start time).
    pub fn master_hook_after(&self, after: u128, except: &str) -> Option<(String, u128)> {
        self.timeline().into_iter().find_map(|(t, n, e)| match e {
            Ev::Role(r, d)
                if t >= after && n != except && r == "master" && d.starts_with("hook m ") =>
            {
                Some((n, t))
            }
            _ => None,
        })
    }

    /// Waits until one agreed master; returns (master, epoch).
    pub fn wait_master(&self, within: Duration) -> (String, u64) {
        self.wait_until("one agreed master", within, || self.agreed_master())
    }

    /// Checks for `within` that no live node is master (fails on the first one seen).
    pub fn hold_no_master(&self, within: Duration) {
        let master = testkit::poll_until(within, Duration::from_millis(100), || {
            self.roles()
                .into_iter()
                .find(|(_, r)| r.as_deref() == Some("master"))
        });
        if let Some((n, _)) = master {
            self.fail(&format!("{n} is master where no side holds a quorum"));
        }
    }

    /// Stops the poller and checks the whole run; panics with the timeline on a violation.
    pub fn finish(mut self) {
        self.stop_poller();
        if let Some(problem) = self.violations() {
            self.fail(&problem);
        }
    }

    fn stop_poller(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(p) = self.poller.take() {
            let _ = p.join();
        }
    }

    /// Every event so far, hook lines included, sorted by time.
    fn timeline(&self) -> Vec<(u128, String, Ev)> {
        let sh = self.shared.lock().expect("lock");
        let mut ev = sh.events.clone();
        for n in &sh.nodes {
            let text = std::fs::read_to_string(&n.hooks).unwrap_or_default();
            for line in text.lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() == 5
                    && let Ok(t) = f[0].parse::<u128>()
                {
                    ev.push((
                        t,
                        n.name.clone(),
                        Ev::Role(
                            f[1].to_owned(),
                            format!("hook {} epoch {} master {}", f[4], f[2], f[3]),
                        ),
                    ));
                }
            }
        }
        ev.sort_by_key(|e| e.0);
        ev
    }

    fn violations(&self) -> Option<String> {
        let tl = self.timeline();
        let mut problems = Vec::new();
        for (_, n, e) in &tl {
            if let Ev::Exit(false, how) = e {
                problems.push(format!("{n} exited unasked ({how})"));
            }
        }
        {
            let sh = self.shared.lock().expect("lock");
            for n in &sh.nodes {
                let log = std::fs::read_to_string(&n.log).unwrap_or_default();
                if log.contains("panicked") {
                    problems.push(format!("{}'s log holds a panic", n.name));
                }
            }
        }
        // Certain master intervals per node.
        let mut open: std::collections::HashMap<String, (u128, u128)> = Default::default();
        let mut intervals: Vec<(String, u128, u128)> = Vec::new();
        for (t, n, e) in &tl {
            let master = match e {
                Ev::Role(r, _) => r == "master",
                Ev::Freeze | Ev::Exit(..) => false,
                Ev::Note(_) | Ev::Thaw => continue,
            };
            if n == "lab" {
                continue;
            }
            if master {
                open.entry(n.clone())
                    .and_modify(|iv| iv.1 = *t)
                    .or_insert((*t, *t));
            } else if let Some((a, b)) = open.remove(n) {
                intervals.push((n.clone(), a, b));
            }
        }
        for (n, (a, b)) in open {
            intervals.push((n, a, b));
        }
        for (i, x) in intervals.iter().enumerate() {
            for y in &intervals[i + 1..] {
                if x.0 != y.0 && x.1 <= y.2 && y.1 <= x.2 {
                    problems.push(format!(
                        "two masters: {} [{}..{} ms] and {} [{}..{} ms]",
                        x.0,
                        self.rel(x.1),
                        self.rel(x.2),
                        y.0,
                        self.rel(y.1),
                        self.rel(y.2)
                    ));
                }
            }
        }
        if problems.is_empty() {
            None
        } else {
            Some(problems.join("\n"))
        }
    }

    fn rel(&self, t: u128) -> i128 {
        (t as i128 - self.start as i128) / 1_000_000
    }

    /// Panics with `why`, the timeline (role changes only, not repeated answers) and logs.
    pub fn fail(&self, why: &str) -> ! {
        let mut out = String::new();
        let mut last: std::collections::HashMap<String, String> = Default::default();
        for (t, n, e) in self.timeline() {
            let line = match &e {
                Ev::Role(r, how) => {
                    if how == "poll" && last.get(&n) == Some(r) {
                        continue;
                    }
                    last.insert(n.clone(), r.clone());
                    format!("{r} ({how})")
                }
                other => {
                    last.remove(&n);
                    format!("{other:?}")
                }
            };
            out.push_str(&format!("{:>8} ms  {n:<8} {line}\n", self.rel(t)));
        }
        let sh = self.shared.lock().expect("lock");
        for n in &sh.nodes {
            let log = std::fs::read_to_string(&n.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            out.push_str(&format!("--- last log lines of {} ---\n", n.name));
            for l in tail.iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        drop(sh);
        panic!("LAB FAILURE: {why}\n--- timeline ---\n{out}");
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.stop_poller();
        let mut sh = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for n in &mut sh.nodes {
            // Dropping the guard kills and reaps the daemon.
            n.child = None;
        }
    }
}

/// `quorumctl --socket SOCK ARGS` with a 2 s limit; its trimmed stdout on success.
fn ctl(sock: &Path, args: &[&str]) -> Option<String> {
    let child = Command::new(quorumctl_bin())
        .arg("--socket")
        .arg(sock)
        .args(args)
        .env_remove("QUORUMD_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut child = ChildGuard::new(child);
    // quorumctl answers in milliseconds: poll it finely, so that a round of the poller stays
    // close to its 50 ms period. Still running after 2 s: killed by the guard.
    let st = testkit::poll_until(Duration::from_secs(2), Duration::from_millis(5), || {
        child.try_exit()
    })?;
    let out = child.stdout_text();
    st.success().then(|| out.trim().to_owned())
}

fn poll_loop(shared: &Mutex<Shared>, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let round = Instant::now();
        let targets: Vec<(String, PathBuf)> = {
            let mut sh = shared.lock().expect("lock");
            let mut exits = Vec::new();
            for n in &mut sh.nodes {
                if let Some(c) = n.child.as_mut()
                    && let Some(st) = c.try_exit()
                {
                    exits.push((n.name.clone(), Ev::Exit(n.asked_exit, format!("{st}"))));
                    n.child = None;
                }
            }
            for (n, e) in exits {
                sh.events.push((now_ns(), n, e));
            }
            sh.nodes
                .iter()
                .filter(|n| n.child.is_some() && !n.frozen)
                .map(|n| (n.name.clone(), n.socket.clone()))
                .collect()
        };
        for (name, sock) in targets {
            // The answer shows the role at some instant between the question and the answer
            // (spawning quorumctl alone takes milliseconds): it is dated at the question, the
            // earliest such instant, so a master that stepped down while answering is never
            // taken for one that overlapped its successor.
            let asked = now_ns();
            if let Some(role) = ctl(&sock, &["role"]) {
                let t = asked;
                let mut sh = shared.lock().expect("lock");
                // A freeze between the question and the answer voids the answer.
                if sh.nodes.iter().any(|n| n.name == name && n.frozen) {
                    continue;
                }
                sh.events.push((t, name, Ev::Role(role, "poll".into())));
            }
        }
        let left = Duration::from_millis(50).saturating_sub(round.elapsed());
        std::thread::sleep(left);
    }
}
