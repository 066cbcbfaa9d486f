//! `keepalived` (root, namespace lab): the same faults against keepalived's VRRP, side by side.
//! Three lab hosts run `keepalived -P` (VRRP only) on their lab interface, priorities
//! 100/90/80, one virtual address; a `notify` script appends `<ns> <host> <state>` on every
//! state change. Two advert intervals: 1 s (the default, VRRPv2) and 0.1 s (VRRPv3, which allows
//! centisecond intervals). Measured: silent loss of the master's host (cut off the bridge) and
//! SIGTERM of the master's keepalived -> the backup's notify (MASTER); after the cut, how long
//! both hosts are MASTER (the cut-off master never hears of its successor: a split brain that
//! lasts until the network heals, which the bench does after `--ka-hold-secs`); after SIGTERM,
//! how long the stopping master and its successor overlap (0 when the old one's last MASTER
//! evidence, its STOP notify or its exit, precedes the new one's MASTER notify).
//! Everything (configs, logs, notify records) is kept in `/tmp/quorum-bench-<pid>/ka-*`.

use super::{Row, Target, kept_dir, repeat, write_script};
use anyhow::{Context, Result, anyhow, bail};
use quorum_tests::ChildGuard;
use quorum_tests::lab::{Lab, check::now_ns};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The virtual address the instance holds (inside the lab's 10.77.0.0/24).
const VIP: &str = "10.77.0.100";
const PRIORITIES: [u32; 3] = [100, 90, 80];

/// One keepalived configuration variant.
#[derive(Clone, Copy)]
struct Advert {
    /// Row suffix: `1s`, `0.1s`.
    tag: &'static str,
    /// `advert_int` as written in the config.
    interval: &'static str,
    secs: f64,
    /// `vrrp_version`.
    version: u8,
}

const ADVERTS: [Advert; 2] = [
    Advert {
        tag: "1s",
        interval: "1",
        secs: 1.0,
        version: 2,
    },
    Advert {
        tag: "0.1s",
        interval: "0.1",
        secs: 0.1,
        version: 3,
    },
];

/// The keepalived binary, if installed.
fn keepalived_bin() -> Option<PathBuf> {
    for dir in ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"] {
        let p = Path::new(dir).join("keepalived");
        if p.is_file() {
            return Some(p);
        }
    }
    None
}

/// The rows of both advert intervals: silent, silent split, sigterm, sigterm overlap.
pub(crate) fn rows(reps: usize, hold_secs: f64) -> Vec<Row> {
    let Some(bin) = keepalived_bin() else {
        eprintln!(
            "skipping the keepalived rows: no keepalived binary (scripts/bench.sh installs the \
             Debian package as root)"
        );
        let mut r = Row::new("ka", "keepalived side by side", "-", Target::None, "-");
        r.errors
            .push("keepalived is not installed (apt-get install keepalived)".into());
        return vec![r];
    };
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .map(|o| {
            let all = [o.stdout, o.stderr].concat();
            String::from_utf8_lossy(&all)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        })
        .unwrap_or_default();
    eprintln!("keepalived: {version}");
    let mut rows = Vec::new();
    for adv in ADVERTS {
        let t = adv.tag;
        let skew = (256 - PRIORITIES[1]) as f64 / 256.0 * adv.secs;
        let down = 3.0 * adv.secs + skew;
        let mut silent = Row::new(
            &format!("ka-silent-{t}"),
            &format!(
                "keepalived, advert {t}: master's host cut off -> backup's notify MASTER \
                 (master-down {down:.2} s)"
            ),
            "ms",
            Target::None,
            "- (quorumd: silent-*)",
        );
        let mut split = Row::new(
            &format!("ka-silent-{t}-split"),
            &format!(
                "keepalived, advert {t}: both hosts MASTER after the cut (cut held {hold_secs} s, \
                 then healed)"
            ),
            "s",
            Target::Exactly(0.0),
            "0 (quorumd: zero overlap)",
        );
        let mut heal = Vec::new();
        let mut rep = 0;
        repeat(&mut silent, reps, || {
            rep += 1;
            let r = run(
                &bin,
                adv,
                Fault::Cut,
                hold_secs,
                &format!("ka-silent-{t}-rep{rep}"),
            )?;
            split.samples.push(r.overlap_ms / 1e3);
            if let Some(h) = r.healed_ms {
                heal.push(h);
            }
            Ok(r.failover_ms)
        });
        split.notes.push(format!(
            "the cut-off master stays MASTER (it hears no one) while the backup takes over: two \
             masters until the network heals; after the heal the split ended in {} ms \
             (per repetition)",
            heal.iter()
                .map(|h| format!("{h:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        silent.notes.push(version.clone());
        let mut sigterm = Row::new(
            &format!("ka-sigterm-{t}"),
            &format!(
                "keepalived, advert {t}: master's keepalived SIGTERMed -> backup's notify MASTER"
            ),
            "ms",
            Target::None,
            "- (quorumd: sigterm-*)",
        );
        let mut overlap = Row::new(
            &format!("ka-sigterm-{t}-overlap"),
            &format!(
                "keepalived, advert {t}: stopping master and new master overlap after SIGTERM"
            ),
            "ms",
            Target::Exactly(0.0),
            "0",
        );
        let mut rep = 0;
        repeat(&mut sigterm, reps, || {
            rep += 1;
            let r = run(
                &bin,
                adv,
                Fault::Term,
                hold_secs,
                &format!("ka-sigterm-{t}-rep{rep}"),
            )?;
            overlap.samples.push(r.overlap_ms);
            Ok(r.failover_ms)
        });
        rows.extend([silent, split, sigterm, overlap]);
    }
    rows
}

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// The master's host leaves the bridge (no packet in or out).
    Cut,
    /// SIGTERM to the master's keepalived (it sends a priority-0 advert and stops).
    Term,
}

/// What one repetition saw.
struct Outcome {
    /// Fault -> the new master's notify.
    failover_ms: f64,
    /// How long two hosts were MASTER at once.
    overlap_ms: f64,
    /// After a cut: heal -> the split ended (one MASTER left).
    healed_ms: Option<f64>,
}

/// The notify runs, (ns, host index, state), sorted by their timestamps: keepalived may run
/// two notify scripts of a host at once (a MASTER then BACKUP flip at start-up), so the order
/// of the lines in the file is not the order of the transitions.
fn notify_lines(path: &Path) -> Vec<(u128, usize, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines: Vec<(u128, usize, String)> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                f.first()?.parse().ok()?,
                f.get(1)?.parse().ok()?,
                (*f.get(2)?).to_owned(),
            ))
        })
        .collect();
    lines.sort_by_key(|l| l.0);
    lines
}

/// Each host's latest state per the notify record.
fn states(lines: &[(u128, usize, String)]) -> [Option<String>; 3] {
    let mut s: [Option<String>; 3] = Default::default();
    for (_, h, st) in lines {
        if let Some(x) = s.get_mut(*h) {
            *x = Some(st.clone());
        }
    }
    s
}

/// Whether host `i` holds the virtual address.
fn holds_vip(lab: &Lab, i: usize) -> bool {
    Command::new("ip")
        .args(["-n", &lab.host(i).ns, "-o", "addr", "show", "dev", "eth0"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("inet {VIP}/")))
}

/// A running keepalived of one lab host; stopped (SIGTERM, then SIGKILL of it and its VRRP
/// child, both by pid) on drop.
struct Ka {
    guard: Option<ChildGuard>,
    vrrp_pid_file: PathBuf,
}

impl Ka {
    fn vrrp_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(&self.vrrp_pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        // Only if it still is a keepalived (the pid file may be stale).
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "keepalived").then_some(pid)
    }
}

impl Drop for Ka {
    /// SIGKILL, not SIGTERM: a graceful stop would hand over to the next host and wait an
    /// advert or so, for nothing (the measurement is done). The VRRP child first (by the pid
    /// in its pid file, only if that is still a keepalived), then the parent (its guard
    /// SIGKILLs and reaps it).
    fn drop(&mut self) {
        if let Some(pid) = self.vrrp_pid() {
            // SAFETY: kill(2) of the VRRP child of a keepalived this bench started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        self.guard = None;
    }
}

/// Writes host `i`'s config and starts its keepalived in the lab host.
fn start(bin: &Path, lab: &Lab, i: usize, adv: Advert, dir: &Path, notify: &Path) -> Result<Ka> {
    let conf = dir.join(format!("h{i}.conf"));
    let body = format!(
        "global_defs {{\n  router_id h{i}\n  script_user root\n  vrrp_version {ver}\n  \
         vrrp_garp_master_delay 0\n  vrrp_garp_master_repeat 1\n}}\n\
         vrrp_instance bench {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 77\n  \
         priority {prio}\n  advert_int {int}\n  virtual_ipaddress {{\n    {VIP}/24 dev eth0\n  \
         }}\n  notify \"{notify} {i}\"\n}}\n",
        ver = adv.version,
        prio = PRIORITIES[i],
        int = adv.interval,
        notify = notify.display(),
    );
    std::fs::write(&conf, body)?;
    let log = std::fs::File::create(dir.join(format!("h{i}.log")))?;
    let vrrp_pid_file = dir.join(format!("h{i}.vrrp.pid"));
    let mut cmd = lab.command(i, bin);
    cmd.arg("-f")
        .arg(&conf)
        .arg("-p")
        .arg(dir.join(format!("h{i}.pid")))
        .arg("-r")
        .arg(&vrrp_pid_file)
        .arg("-c")
        .arg(dir.join(format!("h{i}.checkers.pid")))
        .args(["-P", "-n", "-l", "-D", "-G"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log));
    // SAFETY: prctl(2) only; keepalived dies with the bench.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = cmd.spawn().context("starting keepalived in a lab host")?;
    Ok(Ka {
        guard: Some(ChildGuard::new(child)),
        vrrp_pid_file,
    })
}

/// One repetition: 3 hosts, host 0 MASTER, the fault, the measurements.
fn run(bin: &Path, adv: Advert, fault: Fault, hold_secs: f64, label: &str) -> Result<Outcome> {
    let dir = kept_dir(label)?;
    let record = dir.join("notify.out");
    let _ = std::fs::remove_file(&record);
    let notify = dir.join("notify.sh");
    // keepalived calls: notify "<script> <host>" INSTANCE <name> <state> <priority>.
    write_script(
        &notify,
        &format!(
            "#!/bin/sh\nt=$(date +%s%N)\necho \"$t $1 $4 $5\" >> '{}'\n",
            record.display()
        ),
    )?;
    let lab = Lab::new(3);
    let mut kas: Vec<Ka> = (0..3)
        .map(|i| start(bin, &lab, i, adv, &dir, &notify))
        .collect::<Result<_>>()?;
    let elect = Duration::from_secs_f64(3.0 * adv.secs + 1.0).max(Duration::from_secs(3)) * 3;
    let poll_every = Duration::from_millis(2);
    // Host 0 (priority 100) MASTER, the others BACKUP.
    let formed = testkit::poll_until(elect, Duration::from_millis(20), || {
        let s = states(&notify_lines(&record));
        (s[0].as_deref() == Some("MASTER")
            && s[1].as_deref() == Some("BACKUP")
            && s[2].as_deref() == Some("BACKUP"))
        .then_some(())
    });
    if formed.is_none() {
        bail!(
            "keepalived did not elect host 0 within {elect:?} (notify record and logs in {})",
            dir.display()
        );
    }
    // Let the backups hear a few adverts from the settled master.
    std::thread::sleep(Duration::from_secs_f64(3.0 * adv.secs));
    let deadline = Duration::from_secs_f64(10.0 * adv.secs + 2.0);
    let t0 = now_ns();
    let mut old_exit: Option<u128> = None;
    match fault {
        Fault::Cut => lab.cut(0),
        Fault::Term => {
            let g = kas[0].guard.as_mut().context("host 0 runs")?;
            g.signal(libc::SIGTERM)?;
        }
    }
    let new_master = testkit::poll_until(deadline, poll_every, || {
        if fault == Fault::Term
            && old_exit.is_none()
            && kas[0].guard.as_mut().and_then(|g| g.try_exit()).is_some()
        {
            old_exit = Some(now_ns());
        }
        notify_lines(&record)
            .into_iter()
            .find(|(t, h, st)| *t >= t0 && *h != 0 && st == "MASTER")
    })
    .ok_or_else(|| {
        anyhow!(
            "no backup became MASTER within {deadline:?} ({})",
            dir.display()
        )
    })?;
    let failover_ms = (new_master.0 - t0) as f64 / 1e6;
    let mut out = Outcome {
        failover_ms,
        overlap_ms: 0.0,
        healed_ms: None,
    };
    match fault {
        Fault::Cut => {
            // Observe the split for the hold time: does host 0 still hold the address?
            std::thread::sleep(Duration::from_secs_f64(hold_secs));
            let old_still = holds_vip(&lab, 0)
                && !notify_lines(&record)
                    .iter()
                    .any(|(t, h, st)| *t >= t0 && *h == 0 && st != "MASTER");
            let heal_at = now_ns();
            lab.heal();
            if old_still {
                // The split ends when one of the two steps down (BACKUP notify after the heal);
                // if neither does in time, it is counted up to the heal only.
                let ended = testkit::poll_until(deadline, poll_every, || {
                    notify_lines(&record).into_iter().find(|(t, h, st)| {
                        *t >= heal_at && (*h == 0 || *h == new_master.1) && st != "MASTER"
                    })
                });
                let end = ended.as_ref().map_or(heal_at, |(t, _, _)| *t);
                out.overlap_ms = (end - new_master.0) as f64 / 1e6;
                out.healed_ms = ended.map(|(t, _, _)| (t - heal_at) as f64 / 1e6);
            }
        }
        Fault::Term => {
            // Old master's last MASTER evidence: its first non-MASTER notify after the
            // signal, else its exit (waited for here, bounded).
            let stop = notify_lines(&record)
                .into_iter()
                .find(|(t, h, st)| *t >= t0 && *h == 0 && st != "MASTER")
                .map(|(t, _, _)| t);
            let end = match (stop, old_exit) {
                (Some(s), _) => s,
                (None, Some(e)) => e,
                (None, None) => {
                    let g = kas[0].guard.as_mut().context("host 0 runs")?;
                    g.wait_timeout(deadline)
                        .ok_or_else(|| anyhow!("keepalived ignored SIGTERM"))?;
                    now_ns()
                }
            };
            out.overlap_ms = (end.saturating_sub(new_master.0)) as f64 / 1e6;
        }
    }
    kas.clear();
    drop(lab);
    std::fs::write(
        dir.join("outcome.txt"),
        format!(
            "failover {:.1} ms, two masters for {:.1} ms, healed {:?} ms\n",
            out.failover_ms, out.overlap_ms, out.healed_ms
        ),
    )?;
    Ok(out)
}
