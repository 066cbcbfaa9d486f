//! The network-namespace lab: N hosts, each a network namespace with its own address on a
//! shared bridge, and the faults a real LAN has (silent cuts, link down, splits, one-way loss (nftables),
//! frozen processes). Root only; see [`crate::skip_unless_root`].
//!
//! Layout: one namespace `qlPIDxK` holds the bridges (`br0`, plus `brG` per split group) and the
//! bridge ends `vI` of the veth pairs; each host `qlPIDxKhI` holds `eth0` (address 10.77.0.I+1/24)
//! and a default route on it, so the limited broadcast stays on the bridge. Nothing touches the root
//! namespace. Names carry the pid, so a stale lab of a dead test run is recognised and removed
//! by the next [`Lab::new`]. Labs serialize on a `flock` of `/run/quorum-lab.lock` (two labs
//! never share the 2 cores), and everything is torn down on drop, also on panic.

pub mod check;

use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub use check::{Checker, LabNode};

static COUNTER: AtomicU32 = AtomicU32::new(0);
const PREFIX: &str = "ql";

/// Runs `ip ARGS`, panicking with its stderr on failure.
pub fn ip(args: &[&str]) {
    run("ip", args);
}

fn run(prog: &str, args: &[&str]) {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {prog}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run_quiet(prog: &str, args: &[&str]) {
    let _ = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// One host of the lab.
#[derive(Clone, Debug)]
pub struct Host {
    /// Its namespace name.
    pub ns: String,
    /// Its address on the lab network.
    pub addr: String,
    idx: usize,
}

/// A lab of hosts on one bridge.
pub struct Lab {
    base: String,
    hosts: Vec<Host>,
    _lock: std::fs::File,
}

impl Lab {
    /// Creates `n` hosts (waiting for the global lab lock first).
    pub fn new(n: usize) -> Lab {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/run/quorum-lab.lock")
            .expect("opening /run/quorum-lab.lock");
        // SAFETY: flock(2) on a file descriptor we own; blocks until the lock is ours.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock /run/quorum-lab.lock");
        clean_stale();
        let base = format!(
            "{PREFIX}{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut lab = Lab {
            base: base.clone(),
            hosts: Vec::new(),
            _lock: lock,
        };
        ip(&["netns", "add", &base]);
        ip(&["-n", &base, "link", "set", "lo", "up"]);
        ip(&["-n", &base, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &base, "link", "set", "br0", "up"]);
        for i in 0..n {
            let ns = format!("{base}h{i}");
            ip(&["netns", "add", &ns]);
            let addr = format!("10.77.0.{}", i + 1);
            let peer = format!("v{i}");
            ip(&[
                "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &peer, "netns",
                &base,
            ]);
            ip(&["-n", &base, "link", "set", &peer, "master", "br0", "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &ns, "route", "add", "default", "dev", "eth0"]);
            lab.hosts.push(Host { ns, addr, idx: i });
        }
        lab
    }

    /// The hosts, in creation order.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Host `i`.
    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    /// A command running `prog` inside host `i` (`ip netns exec` execs in place: the child's
    /// pid is the program's).
    pub fn command(&self, i: usize, prog: &std::path::Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.hosts[i].ns]).arg(prog);
        cmd
    }

    /// Cuts host `i` off silently: its bridge end leaves every bridge, the carrier stays up.
    pub fn cut(&self, i: usize) {
        ip(&[
            "-n",
            &self.base,
            "link",
            "set",
            &format!("v{i}"),
            "nomaster",
        ]);
    }

    /// Brings host `i`'s link down (its side sees the carrier go).
    pub fn link_down(&self, i: usize) {
        ip(&["-n", &self.hosts[i].ns, "link", "set", "eth0", "down"]);
    }

    /// Splits the hosts into `groups` (hosts in no group are cut off), each on its own bridge.
    pub fn split(&self, groups: &[&[usize]]) {
        for i in 0..self.hosts.len() {
            self.cut(i);
        }
        for (g, members) in groups.iter().enumerate() {
            let br = format!("br{}", g + 1);
            run_quiet(
                "ip",
                &["-n", &self.base, "link", "add", &br, "type", "bridge"],
            );
            ip(&["-n", &self.base, "link", "set", &br, "up"]);
            for &i in *members {
                ip(&[
                    "-n",
                    &self.base,
                    "link",
                    "set",
                    &format!("v{i}"),
                    "master",
                    &br,
                ]);
            }
        }
    }

    /// Drops every IP packet from host `from` arriving at host `to` (an nftables prerouting
    /// rule in `to`'s namespace, broadcasts included); the other direction still flows.
    pub fn drop_one_way(&self, from: usize, to: usize) {
        let ns = &self.hosts[to].ns;
        let chain = "{ type filter hook prerouting priority -300; policy accept; }";
        run_quiet(
            "ip",
            &["netns", "exec", ns, "nft", "add", "table", "inet", "qlab"],
        );
        run_quiet(
            "ip",
            &[
                "netns", "exec", ns, "nft", "add", "chain", "inet", "qlab", "in", chain,
            ],
        );
        let src = &self.hosts[from].addr;
        run(
            "ip",
            &[
                "netns", "exec", ns, "nft", "add", "rule", "inet", "qlab", "in", "ip", "saddr",
                src, "drop",
            ],
        );
    }

    /// Heals everything: every host back on `br0`, links up, no loss filters.
    pub fn heal(&self) {
        for h in &self.hosts {
            ip(&[
                "-n",
                &self.base,
                "link",
                "set",
                &format!("v{}", h.idx),
                "master",
                "br0",
            ]);
            ip(&["-n", &h.ns, "link", "set", "eth0", "up"]);
            run_quiet(
                "ip",
                &[
                    "netns", "exec", &h.ns, "nft", "delete", "table", "inet", "qlab",
                ],
            );
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for h in &self.hosts {
            run_quiet("ip", &["netns", "del", &h.ns]);
        }
        run_quiet("ip", &["netns", "del", &self.base]);
    }
}

/// Deletes lab namespaces whose creating process is gone.
fn clean_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('x').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            run_quiet("ip", &["netns", "del", name]);
        }
    }
}
