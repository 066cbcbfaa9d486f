//! The shipped VIP hook (`hooks/vip`) in the namespace lab, with a real client: four hosts run
//! quorumd with `hooks/vip` as master and slave hook, a fifth host pings the virtual address
//! through two failovers (a SIGKILL of the master, then a silent cut of the next one). The
//! client's neighbour entry must follow the address to the new master's MAC, replies must go
//! on after each failover, and at no instant may two hosts hold the address (every host's
//! `ip -o addr` polled every 50 ms). Root only: `sudo -E cargo test -p quorum-tests --test
//! lab_vip`.

use quorum_tests::lab::check::now_ns;
use quorum_tests::lab::{Checker, Lab};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const VIP: &str = "10.77.0.100";
const CONVERGE: Duration = Duration::from_secs(20);
const NAMES: [&str; 4] = ["alice", "dieter", "bob", "peter"];
/// The lab host that only pings.
const CLIENT: usize = 4;

/// `ip ARGS`' stdout ("" when it fails).
fn ip_out(args: &[&str]) -> String {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Whether the host in namespace `ns` holds the VIP now.
fn holds(ns: &str) -> bool {
    let needle = format!(" {VIP}/");
    ip_out(&["-n", ns, "-o", "-4", "addr", "show", "dev", "eth0"]).contains(&needle)
}

/// The MAC address of `eth0` in namespace `ns`.
fn mac(ns: &str) -> String {
    let out = ip_out(&["-n", ns, "-o", "link", "show", "eth0"]);
    let mut words = out.split_whitespace();
    words
        .find(|w| *w == "link/ether")
        .and_then(|_| words.next())
        .unwrap_or_else(|| panic!("no MAC for eth0 in {ns}: {out}"))
        .to_owned()
}

/// The client's neighbour entry for the VIP: its MAC, if it has one.
fn client_neighbour(ns: &str) -> Option<String> {
    let out = ip_out(&["-n", ns, "neigh", "show", VIP]);
    let mut words = out.split_whitespace();
    words.find(|w| *w == "lladdr")?;
    words.next().map(str::to_owned)
}

/// Samples of who holds the VIP: (time ns, host, holds).
type Samples = Arc<Mutex<Vec<(u128, usize, bool)>>>;

/// Polls every host's addresses every 50 ms until `stop`.
fn spawn_holder_poller(
    hosts: Vec<String>,
    samples: Samples,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            let round = std::time::Instant::now();
            for (i, ns) in hosts.iter().enumerate() {
                let h = holds(ns);
                samples.lock().expect("lock").push((now_ns(), i, h));
            }
            let left = Duration::from_millis(50).saturating_sub(round.elapsed());
            std::thread::sleep(left);
        }
    })
}

/// Overlaps that certainly happened: a host holds the VIP from its first positive sample to
/// its last one before a negative sample; two such intervals of different hosts must not meet.
fn overlaps(samples: &[(u128, usize, bool)]) -> Vec<String> {
    let mut open: std::collections::HashMap<usize, (u128, u128)> = Default::default();
    let mut intervals = Vec::new();
    for &(t, h, held) in samples {
        if held {
            open.entry(h).and_modify(|iv| iv.1 = t).or_insert((t, t));
        } else if let Some((a, b)) = open.remove(&h) {
            intervals.push((h, a, b));
        }
    }
    intervals.extend(open.into_iter().map(|(h, (a, b))| (h, a, b)));
    let mut problems = Vec::new();
    for (i, x) in intervals.iter().enumerate() {
        for y in &intervals[i + 1..] {
            if x.0 != y.0 && x.1 <= y.2 && y.1 <= x.2 {
                problems.push(format!(
                    "hosts {} and {} both held {VIP}: {x:?} {y:?}",
                    x.0, y.0
                ));
            }
        }
    }
    problems
}

/// Times (ns) of the client's ping replies so far (`ping -D` prints `[secs.micros] 64 bytes
/// from ...`).
fn replies(log: &std::path::Path) -> Vec<u128> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| {
            let ts = l.strip_prefix('[')?.split(']').next()?;
            let (s, us) = ts.split_once('.')?;
            let s: u128 = s.parse().ok()?;
            let us: u128 = format!("{us:0<6}").get(..6)?.parse().ok()?;
            Some(s * 1_000_000_000 + us * 1000)
        })
        .collect()
}

/// A hook that runs the shipped `hooks/vip` for this lab's VIP on `eth0`.
fn vip_wrapper(dir: &std::path::Path) -> std::path::PathBuf {
    let vip_hook = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../hooks/vip");
    let script = dir.join("vip-hook.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nVIP_ADDRESS={VIP}/24 VIP_INTERFACE=eth0 exec /bin/sh '{}'\n",
            vip_hook.display()
        ),
    )
    .expect("write the vip wrapper");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script
}

#[test]
fn a_client_pings_the_vip_through_a_kill_and_a_silent_cut_and_never_two_hosts_hold_it() {
    if quorum_tests::skip_unless_root("lab_vip") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "lab tests must run in CI: run them as root"
        );
        return;
    }
    for tool in ["ping", "arping"] {
        let found = Command::new(tool)
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(found, "{tool} is missing: apt-get install iputils-{tool}");
    }
    let started = std::time::Instant::now();
    let lab = Lab::new(5);
    let ck = Checker::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = vip_wrapper(dir.path());
    let hook = hook.to_str().expect("utf-8 path");
    let ns: Vec<String> = lab.hosts().iter().map(|h| h.ns.clone()).collect();
    let macs: Vec<String> = ns[..4].iter().map(|n| mac(n)).collect();

    let samples: Samples = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let poller = spawn_holder_poller(ns[..4].to_vec(), samples.clone(), stop.clone());

    // The default timers (the lab's checker starts nodes with the fast ones; a later flag
    // wins), and the VIP hook as master and slave hook.
    let extra = ["--profile", "default", "-m", hook, "-s", hook];
    for (i, name) in NAMES.iter().enumerate() {
        ck.start(&lab, i, name, &extra);
        ck.wait_until(&format!("{name} answers"), CONVERGE, || {
            ck.roles()
                .into_iter()
                .find(|(n, r)| n == name && r.as_deref().is_some_and(|r| r != "starting"))
        });
    }
    let only = |host: usize| {
        let ns = ns.clone();
        move || (0..4).all(|h| holds(&ns[h]) == (h == host)).then_some(())
    };
    assert_eq!(ck.wait_master(CONVERGE).0, "alice");
    ck.wait_until("only alice's host holds the VIP", CONVERGE, only(0));

    // The client pings the VIP every 50 ms (bounded: ping stops by itself after 50 s).
    let ping_log = dir.path().join("ping.log");
    let log_file = std::fs::File::create(&ping_log).expect("ping log");
    let ping = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns[CLIENT],
            "ping",
            "-n",
            "-D",
            "-i",
            "0.05",
        ])
        .args(["-W", "1", "-w", "50", VIP])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_file))
        .stderr(Stdio::null())
        .spawn()
        .expect("starting ping in the client host");
    let _ping = quorum_tests::ChildGuard::new(ping);
    // Replies go on: several answers after `t`, not one stray one.
    let answered_since = |t: u128| {
        let log = ping_log.clone();
        move || (replies(&log).into_iter().filter(|r| *r > t).count() >= 5).then_some(())
    };
    let neighbour_is = |host: usize| {
        let (client, want) = (ns[CLIENT].clone(), macs[host].clone());
        move || (client_neighbour(&client).as_deref() == Some(want.as_str())).then_some(())
    };
    ck.wait_until("the client gets replies", CONVERGE, answered_since(0));
    ck.wait_until(
        "the client's entry is alice's MAC",
        CONVERGE,
        neighbour_is(0),
    );

    // 1. The master's process is SIGKILLed on a live host. Its host keeps the address until
    // the unit's ExecStopPost= (README) runs the hook without a role, as systemd would once
    // the process is gone; the new master's hook waits until nobody answers for it.
    let t_kill = now_ns();
    ck.signal("alice", libc::SIGKILL);
    ck.wait_until("alice's process is gone", CONVERGE, || {
        ip_out(&["netns", "pids", &ns[0]])
            .trim()
            .is_empty()
            .then_some(())
    });
    let status = Command::new("ip")
        .args(["netns", "exec", &ns[0], hook])
        .env_remove("QUORUM_ROLE")
        .stdout(Stdio::null())
        .status()
        .expect("running the hook as ExecStopPost= would");
    assert!(status.success(), "the VIP hook without a role failed");
    ck.wait_until("dieter is master", CONVERGE, || {
        ck.roles()
            .iter()
            .any(|(n, r)| n == "dieter" && r.as_deref() == Some("master"))
            .then_some(())
    });
    ck.wait_until("only dieter's host holds the VIP", CONVERGE, only(1));
    ck.wait_until(
        "the client's entry moved to dieter's MAC",
        CONVERGE,
        neighbour_is(1),
    );
    ck.wait_until(
        "the client gets replies after the kill",
        CONVERGE,
        answered_since(t_kill),
    );

    // 2. The new master's host is cut off silently: its lease runs out, its slave hook drops
    // the address, and only then may bob take it.
    let t_cut = now_ns();
    lab.cut(1);
    ck.note("dieter's host cut silently");
    ck.wait_until("bob is master", CONVERGE, || {
        ck.roles()
            .iter()
            .any(|(n, r)| n == "bob" && r.as_deref() == Some("master"))
            .then_some(())
    });
    ck.wait_until("only bob's host holds the VIP", CONVERGE, only(2));
    ck.wait_until(
        "the client's entry moved to bob's MAC",
        CONVERGE,
        neighbour_is(2),
    );
    ck.wait_until(
        "the client gets replies after the cut",
        CONVERGE,
        answered_since(t_cut),
    );
    // Let the poller see a few more rounds of the settled state.
    ck.wait_until("a few more samples", CONVERGE, {
        let samples = samples.clone();
        let t = now_ns();
        move || {
            let s = samples.lock().expect("lock");
            (s.iter().filter(|x| x.0 > t).count() >= 12).then_some(())
        }
    });

    stop.store(true, Ordering::SeqCst);
    poller.join().expect("holder poller");
    let samples = samples.lock().expect("lock").clone();
    let problems = overlaps(&samples);
    if !problems.is_empty() {
        ck.fail(&problems.join("\n"));
    }
    let gaps = |after: u128| {
        let r = replies(&ping_log);
        r.windows(2)
            .filter(|w| w[1] > after)
            .map(|w| (w[1] - w[0]) / 1_000_000)
            .max()
            .unwrap_or(0)
    };
    eprintln!(
        "lab_vip: {} holder samples, {} replies, longest reply gap after the kill {} ms, \
         whole test {:?}",
        samples.len(),
        replies(&ping_log).len(),
        gaps(t_kill),
        started.elapsed()
    );
    ck.finish();
}
