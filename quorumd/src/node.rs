//! The driver: owns the pure election core and the transport, and runs one `select!` loop.
//!
//! ```text
//!   transport (UDP hellos, TCP links) ──NetEvent──┐
//!   timer (timerfd): next_deadline ──Tick─────────┤
//!   control socket ──Command (rename/forget/...)──┼──► Election::handle ──► outputs:
//!   signals / "q"+Enter ──dispatch or stop────────┘        Send → transport
//!                                                          RoleChanged/MasterChanged → hooks, events
//!                                                          Member → log, events
//!                                                          Remember → state file
//!                                                  status → watch<Snapshot> (control socket, systemd)
//! ```
//!
//! The core never sees a clock: the driver maps `tokio::time::Instant` to [`Millis`] since its
//! start. Hooks run on their own task and never delay a heartbeat.
//!
//! Inside: `start` binds the sockets, builds the node's identity and spawns the node's
//! tasks; [`run`] turns the loop; `Driver` holds what the loop works on, with one method per
//! kind of event (`handle_all` for frames and ticks, `on_command`, `on_check`, `reload`) and
//! `flush`, which carries out the core's outputs; `leave` is the graceful leave (rule 6).

use crate::config::Settings;
use crate::control::{Command, ControlHandle, ControlServer, Snapshot};
use crate::hold::Hold;
use crate::hooks::{HookContext, HookEvent, HookKind, HookRunner, HookScripts};
use crate::links::{NetEvent, Transport, TransportConfig};
use crate::metrics::METRICS;
use crate::notify;
use crate::persist::Held;
use crate::state::{Saved, StateFile};
use anyhow::Context;
use common::control::{CheckState, ErrorKind, Event, MemberChange, Reply, Response, Status};
use common::election::{Config, Effects, Election, Input, Memory, RoleChange};
use common::time::Millis;
use common::types::{Identity, MemberId, MemberInfo, Role};
use common::wire::Message;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

/// How the daemon was asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM, `q` + Enter, `quorumctl dispatch`: leave gracefully (hand over, hook, exit 0).
    Dispatch,
    /// SIGINT: stop at once without a goodbye (peers see a crash).
    Abort,
    /// SIGHUP: re-read the configuration and apply what can change at runtime.
    Reload,
}

/// How the daemon ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Left gracefully or stopped on request.
    Done,
    /// `--exit-on-minority` and the node lost its quorum.
    Minority,
}

/// The node could not start (its sockets could not be bound): the operator's to fix, like a
/// bad flag, so `main` exits 2. Anything later is a runtime failure (exit 1).
#[derive(Debug)]
pub struct StartError(pub anyhow::Error);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for StartError {}

/// Runs a node until `stop` says so. `stop` yields every stop request (a second dispatch
/// request during a dispatch means "exit now").
pub async fn run(mut settings: Settings, mut stop: mpsc::Receiver<Stop>) -> anyhow::Result<Exit> {
    let Started {
        mut driver,
        mut net_rx,
        mut cmd_rx,
        mut check_rx,
        control_task,
        watchdog,
        loop_turned,
    } = start(&settings).await?;
    let cancel = driver.node_cancel.clone();

    // The reply of the dispatch request that ends the loop, answered once the node left.
    let mut dispatch_reply = None;
    // Not tokio's timer: see `crate::timer` (one wake-up per deadline, not two).
    let mut timer = crate::timer::DeadlineTimer::new();
    let stop_kind = loop {
        loop_turned.store(driver.now().0, std::sync::atomic::Ordering::Relaxed);
        let mut deadline = driver.instant(driver.election.next_deadline());
        if let Some(d) = driver.hold.deadline() {
            deadline = deadline.min(d);
        }
        if let Some(m) = driver.minority_deadline() {
            deadline = deadline.min(driver.instant(m));
        }
        if let Some(f) = driver.flaps.deadline() {
            deadline = deadline.min(Instant::from_std(f));
        }
        tokio::select! {
            ev = net_rx.recv() => {
                let Some(ev) = ev else { break Stop::Abort };
                let inputs = gather(&mut net_rx, vec![net_input(ev)], deadline).await;
                driver.handle_all(inputs);
            }
            _ = timer.sleep_until(deadline) => {
                let mut inputs = gather(&mut net_rx, Vec::new(), deadline).await;
                inputs.push(Input::Tick);
                driver.handle_all(inputs);
            }
            // The state file's write is done: the frames that followed it leave.
            _ = driver.outbox.written_changed(), if driver.outbox.holding() => driver.release(),
            Some(report) = check_rx.recv() => driver.on_check(report),
            cmd = cmd_rx.recv() => {
                if let Some(reply) = cmd.and_then(|c| driver.on_command(c)) {
                    dispatch_reply = Some(reply);
                    break Stop::Dispatch;
                }
            }
            s = stop.recv() => match s {
                Some(Stop::Reload) => driver.reload(&mut settings),
                s => break s.unwrap_or(Stop::Abort),
            },
        }
        driver.check_minority();
        if driver.minority {
            break Stop::Abort;
        }
    };

    let exit = if driver.minority {
        Exit::Minority
    } else {
        Exit::Done
    };
    match stop_kind {
        Stop::Abort | Stop::Reload => {
            info!("stopping at once, without a goodbye (peers will see this node as lost)");
            notify::stopping();
            cancel.cancel();
        }
        Stop::Dispatch => {
            leave(driver, &settings, &mut stop, &mut cmd_rx, dispatch_reply).await;
            cancel.cancel();
        }
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    let _ = tokio::time::timeout(Duration::from_secs(3), control_task).await;
    Ok(exit)
}

/// A node bound and announced, its loop not turned yet.
struct Started {
    driver: Driver,
    net_rx: mpsc::Receiver<NetEvent>,
    cmd_rx: mpsc::Receiver<Command>,
    check_rx: mpsc::UnboundedReceiver<crate::checks::CheckReport>,
    control_task: tokio::task::JoinHandle<()>,
    watchdog: Option<tokio::task::JoinHandle<()>>,
    /// When the loop last turned (the watchdog pings systemd only while it turns).
    loop_turned: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Binds the sockets (an error here is a [`StartError`]), loads the state file, builds the
/// node's identity and the core, spawns the control server, the hooks' runner, the checks and
/// the watchdog, and tells systemd the node is ready.
async fn start(settings: &Settings) -> anyhow::Result<Started> {
    let scripts = hook_scripts(settings);
    let cfg = election_config(settings);

    let keys = cluster_keys(settings)?;
    let (transport, bound, net_rx) = Transport::bind(TransportConfig {
        keys,
        listen: settings.address,
        port: settings.port,
        broadcast: SocketAddr::new(settings.broadcast_address, settings.broadcast_port),
        seeds: settings.peers.clone(),
        cluster: settings.cluster.clone(),
        advertise: settings.advertise,
        heartbeat: Duration::from_millis(settings.timers.heartbeat_ms),
        announce: Duration::from_millis(settings.timers.announce_ms),
    })
    .await
    .map_err(StartError)?;
    if bound.port != settings.port && settings.port != 0 {
        warn!(
            requested = settings.port,
            port = bound.port,
            "port in use; using the next free one"
        );
    }
    let control = ControlServer::bind(&settings.socket)
        .with_context(|| format!("control socket {}", settings.socket.display()))
        .map_err(StartError)?;

    let configured_name = settings
        .name
        .clone()
        .unwrap_or_else(|| format!("{}:{}", hostname(), bound.port));
    let state = settings
        .state_dir
        .as_ref()
        .map(|d| StateFile::new(d, &configured_name));
    let saved = state
        .as_ref()
        .map(StateFile::load)
        .transpose()
        .map_err(StartError)?
        .unwrap_or_default();
    let name = match &saved.renamed {
        Some(n) if common::types::check_name(n).is_ok() => {
            info!(name = %n, configured = %configured_name, "using the name set by quorumctl rename");
            n.clone()
        }
        _ => configured_name.clone(),
    };
    let started_ms = unix_ms();
    let id = incarnation_id(started_ms);
    let me = MemberInfo::start(Identity {
        id,
        name: name.clone(),
        addr: bound.advertise.to_string(),
        port: bound.port,
        started_ms,
        strategy: settings.strategy,
        priority: settings.priority,
        witness: settings.witness,
    });
    let base = Instant::now();
    let election = Election::new(cfg, me.clone(), saved.memory.clone(), Millis(0));
    info!(
        name = %me.name, addr = %me.addr, port = me.port, cluster = %settings.cluster,
        strategy = %settings.strategy, witness = settings.witness, priority = settings.priority,
        socket = %settings.socket.display(), remembered = %crate::explain::remembered(&saved.memory),
        "quorumd starting"
    );

    let (status_tx, status_rx) = watch::channel(Snapshot {
        status: Status {
            security: Some(transport.security()),
            ..election.status(Millis(0))
        },
        master_until: None,
    });
    let (lease_tx, lease_rx) = watch::channel::<Option<Instant>>(None);
    let (events_tx, _) = broadcast::channel::<Event>(1024);
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(64);
    let cancel = CancellationToken::new();
    let control_task = tokio::spawn(control.run(
        ControlHandle {
            status: status_rx,
            events: events_tx.clone(),
            commands: cmd_tx,
        },
        cancel.clone(),
    ));
    let hooks = HookRunner::spawn_with_lease(scripts, Some(lease_rx));
    let (check_tx, check_rx) = mpsc::unbounded_channel();
    if let Some(addr) = settings.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("--metrics-listen {addr}"))?;
        info!(%addr, "serving metrics at /metrics");
        tokio::spawn(crate::metrics::serve(listener));
    }
    let checks_cancel = cancel.child_token();
    let checks = crate::checks::spawn(&settings.checks, check_tx.clone(), checks_cancel.clone());
    transport.start(me);
    transport.remember(saved.memory.members.iter().map(|(m, _)| m));
    notify::ready();
    // The loop turns at least every heartbeat; the watchdog pings only while it does.
    let loop_turned = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let turned = loop_turned.clone();
    let heartbeat = Duration::from_millis(settings.timers.heartbeat_ms);
    let watchdog = notify::spawn_watchdog(move |period| {
        let last = Duration::from_millis(turned.load(std::sync::atomic::Ordering::Relaxed));
        base.elapsed().saturating_sub(last) < period.max(heartbeat * 4)
    });

    let mut driver = Driver {
        base,
        publish_now: false,
        flaps: crate::flaps::Flaps::default(),
        election,
        transport: transport.clone(),
        hooks,
        events: events_tx,
        status: status_tx,
        lease: lease_tx,
        outbox: crate::persist::Outbox::new(
            state.clone().and_then(crate::persist::Persister::start),
        ),
        state,
        saved,
        last_notify: String::new(),
        minority: false,
        exit_on_minority: settings.exit_on_minority,
        minority_since: None,
        minority_grace_ms: settings.timers.silence_ms,
        hold: Hold::default(),
        held: false,
        checks,
        inquorate_why: String::new(),
        inquorate_logged: None,
        rates: crate::links::Rates::default(),
        check_tx,
        node_cancel: cancel.clone(),
        checks_cancel,
    };
    driver.hold.maintenance = settings.maintenance;
    driver.flush();
    Ok(Started {
        driver,
        net_rx,
        cmd_rx,
        check_rx,
        control_task,
        watchdog,
        loop_turned,
    })
}

/// The cluster keys of `--key-file`, or none, said loudly: without a key anyone on the LAN
/// can join.
fn cluster_keys(settings: &Settings) -> Result<common::codec::Keyring, StartError> {
    match &settings.key_file {
        Some(path) => {
            let keys = crate::keyfile::load(path).map_err(StartError)?;
            info!(file = %path.display(), keys = keys.len(), "cluster traffic is authenticated");
            Ok(keys)
        }
        None => {
            warn!(
                "NO CLUSTER KEY (--key-file): cluster traffic is not authenticated; anyone on \
                 this LAN can join, forge a master or split the cluster (README, Security)"
            );
            Ok(common::codec::Keyring::none())
        }
    }
}

/// Rule 6, the graceful leave: hand over and say goodbye (once what it follows is on disk),
/// run the hook, then answer every dispatch request. A second stop request meanwhile means
/// "exit now" and cuts the wait for the hooks short; any other command is refused.
async fn leave(
    mut driver: Driver,
    settings: &Settings,
    stop: &mut mpsc::Receiver<Stop>,
    cmd_rx: &mut mpsc::Receiver<Command>,
    first: Option<oneshot::Sender<Reply>>,
) {
    info!("dispatching: handing over and leaving the cluster");
    notify::stopping();
    let now = driver.now();
    driver.election.dispatch(now);
    driver.flush();
    // The goodbye leaves once what it follows is on disk.
    let transport = driver.transport.clone();
    driver
        .outbox
        .settle(Duration::from_secs(5), &mut |h| deliver(&transport, h))
        .await;
    let hooks = driver.hooks;
    // Leave goes out first (peers re-elect at once), then the hook runs.
    transport.shutdown(Duration::from_millis(500)).await;
    let hook_wait = driver_hook_timeout(settings);
    tokio::select! {
        _ = hooks.drain() => {}
        _ = tokio::time::sleep(hook_wait) => warn!("hooks still running at exit"),
        s = stop.recv() => {
            if s.is_some() {
                warn!("second stop request: exiting without waiting for hooks");
            }
        }
    }
    // Answer other dispatch requests that arrived meanwhile, with the first.
    let mut dispatch_replies: Vec<_> = first.into_iter().collect();
    while let Ok(cmd) = cmd_rx.try_recv() {
        match cmd {
            Command::Dispatch { reply } => dispatch_replies.push(reply),
            // Its client reads the last snapshot.
            Command::Refresh { .. } => {}
            Command::Rename { reply, .. }
            | Command::Forget { reply, .. }
            | Command::Hold { reply, .. } => {
                let _ = reply.send(Err(common::control::ControlError::new(
                    ErrorKind::ShuttingDown,
                    "node is leaving",
                )));
            }
        }
    }
    for reply in dispatch_replies {
        let _ = reply.send(Ok(Response::Dispatched));
    }
    info!("left the cluster");
}

/// Hands a frame (or a new hello) that may leave now to the transport.
fn deliver(transport: &Transport, frame: Held) {
    match frame {
        Held::Send(to, msg) => transport.send(to, msg),
        Held::Announce(info) => transport.set_self(info),
    }
}

/// The options whose change a reload cannot apply (they need a restart).
fn needs_restart(old: &Settings, new: &Settings) -> Vec<&'static str> {
    let mut v = Vec::new();
    let mut diff = |name, changed: bool| {
        if changed {
            v.push(name);
        }
    };
    diff("address", old.address != new.address);
    diff("port", old.port != new.port);
    diff(
        "broadcast_address",
        old.broadcast_address != new.broadcast_address,
    );
    diff("broadcast_port", old.broadcast_port != new.broadcast_port);
    diff("name", old.name != new.name);
    diff("strategy", old.strategy != new.strategy);
    diff("socket", old.socket != new.socket);
    diff("cluster", old.cluster != new.cluster);
    diff("peer", old.peers != new.peers);
    diff("advertise", old.advertise != new.advertise);
    diff("expect", old.expect != new.expect);
    diff("witness", old.witness != new.witness);
    diff("no_preempt", old.no_preempt != new.no_preempt);
    diff("key_file", old.key_file != new.key_file);
    diff("log_file", old.log_file != new.log_file);
    diff("log_format", old.log_format != new.log_format);
    diff("metrics_listen", old.metrics_listen != new.metrics_listen);
    diff("state_dir", old.state_dir != new.state_dir);
    let mut t_old = old.timers.clone();
    t_old.hook_timeout_ms = new.timers.hook_timeout_ms;
    diff("timers", t_old != new.timers || old.profile != new.profile);
    v
}

/// Checks what can only be checked against the system (hook files) or across settings
/// (timer relations): an error here is the operator's, reported like a bad flag (exit 2).
pub fn check_settings(settings: &Settings) -> anyhow::Result<()> {
    if let Some(key) = &settings.key_file {
        crate::keyfile::load(key)?;
    }
    hook_scripts(settings).validate()?;
    election_config(settings)
        .validate()
        .map_err(|e| anyhow::anyhow!("timers: {e}"))?;
    Ok(())
}

fn hook_scripts(settings: &Settings) -> HookScripts {
    HookScripts {
        master: settings.master_script.clone(),
        slave: settings.slave_script.clone(),
        notify: settings.notify_script.clone(),
        timeout: settings.timers.hook_timeout(),
    }
}

fn driver_hook_timeout(settings: &Settings) -> Duration {
    settings.timers.hook_timeout() + Duration::from_secs(3)
}

/// The election configuration from the operator's settings.
pub fn election_config(settings: &Settings) -> Config {
    let t = &settings.timers;
    let base = Config::default();
    Config {
        cluster: settings.cluster.clone(),
        strategy: settings.strategy,
        witness: settings.witness,
        expect: settings.expect,
        preempt: !settings.no_preempt,
        heartbeat_ms: t.heartbeat_ms,
        silence_ms: t.silence_ms,
        lease_ms: t.lease_ms,
        // Keep the default ratio of margin to lease (clock-rate differences scale with it).
        drift_ms: (t.lease_ms * base.drift_ms).div_ceil(base.lease_ms).max(2),
        startup_ms: t.startup_ms,
        reap_dispatched_ms: settings.reap_dispatched_ms,
        version: env!("CARGO_PKG_VERSION").to_string(),
        quiet_pairs: base.quiet_pairs,
        pace_above: base.pace_above,
    }
}

struct Driver {
    base: Instant,
    /// Rebuild the published status at the next flush even without news: a control
    /// client asked for it (`last heard`, traffic rates), or a check changed.
    publish_now: bool,
    /// `lost`/`returned` log lines of flapping members, counted instead (`crate::flaps`).
    flaps: crate::flaps::Flaps,
    election: Election,
    transport: Transport,
    hooks: HookRunner,
    events: broadcast::Sender<Event>,
    status: watch::Sender<Snapshot>,
    lease: watch::Sender<Option<Instant>>,
    state: Option<StateFile>,
    saved: Saved,
    /// Frames waiting for the state file's write they follow (written off the event loop).
    outbox: crate::persist::Outbox,
    last_notify: String,
    /// `--exit-on-minority` and the node has been `inquorate` for `minority_grace_ms`.
    minority: bool,
    exit_on_minority: bool,
    /// Since when this node is `inquorate` (None while it is not).
    minority_since: Option<Millis>,
    /// How long `inquorate` must last before `--exit-on-minority` exits: a silence window.
    /// A node that reaches a quorum again within it was not in a minority: a master whose
    /// lease lapsed while newcomers' votes were on their way, a slave at a silent master's
    /// end before it reached the others, each `inquorate` for a round trip (their hooks
    /// run, the process stays); one cut off stays `inquorate` and exits.
    minority_grace_ms: u64,
    /// Maintenance, step-down, failing checks.
    hold: Hold,
    /// What the core was last told about `hold`.
    held: bool,
    /// Health checks' latest states.
    checks: Vec<CheckState>,
    /// Why this node is inquorate, as last logged (empty when it is not).
    inquorate_why: String,
    /// When the explanation above was last logged: while members join by the dozen it
    /// changes at every join, and one warning a second is enough.
    inquorate_logged: Option<Instant>,
    /// Per-member traffic rates for the status.
    rates: crate::links::Rates,
    /// Where the health checks report, and what stops them (a reload that changes the
    /// checks starts new ones under a new child of the node's token).
    check_tx: mpsc::UnboundedSender<crate::checks::CheckReport>,
    node_cancel: CancellationToken,
    checks_cancel: CancellationToken,
}

impl Driver {
    fn now(&self) -> Millis {
        Millis(self.base.elapsed().as_millis() as u64)
    }

    fn instant(&self, m: Millis) -> Instant {
        // NEVER and other far deadlines: an hour is as good as forever for a sleep.
        let ms = m.0.min(self.now().0 + 3_600_000);
        self.base + Duration::from_millis(ms)
    }

    /// When `--exit-on-minority` makes this node exit, if it stays `inquorate` until then.
    fn minority_deadline(&self) -> Option<Millis> {
        let since = self.minority_since.filter(|_| self.exit_on_minority)?;
        Some(since + self.minority_grace_ms)
    }

    /// Sets `minority` once the node has been `inquorate` for the grace with
    /// `--exit-on-minority` (also when a reload just turned it on).
    fn check_minority(&mut self) {
        if self.minority_deadline().is_some_and(|at| self.now() >= at) {
            error!(
                after_ms = self.minority_grace_ms,
                "no quorum for a silence window and --exit-on-minority is set: exiting"
            );
            self.minority = true;
        }
    }

    /// Where `master` is, who counts, and why the role changed from `previous` to `role`.
    fn hook_context(&self, master: Option<&str>, change: Option<(Role, Role)>) -> HookContext {
        let status = self.election.status(self.now());
        let master_addr = master.and_then(|m| {
            status
                .members
                .iter()
                .find(|x| x.name == m)
                .map(|x| (x.address.clone(), x.port))
        });
        let members = status
            .members
            .iter()
            .filter(|x| x.counted)
            .map(|x| x.name.clone())
            .collect();
        let reason = match change {
            None => "master changed".to_string(),
            Some((Role::Dispatching, _)) => "dispatch".to_string(),
            Some((Role::Inquorate, _)) => "quorum lost".to_string(),
            Some((Role::Master, _)) => "elected".to_string(),
            Some((_, Role::Master)) if self.hold.held() => {
                self.hold.reasons(Instant::now()).join("; ")
            }
            Some((_, Role::Master)) => "handed over".to_string(),
            Some(_) => "election".to_string(),
        };
        HookContext {
            master_addr,
            members,
            reason,
        }
    }

    fn handle(&mut self, input: Input) {
        self.handle_all(std::iter::once(input));
    }

    /// Lets out the frames whose state file write is done.
    fn release(&mut self) {
        let transport = &self.transport;
        self.outbox.release(&mut |h| deliver(transport, h));
    }

    fn handle_all(&mut self, inputs: impl IntoIterator<Item = Input>) {
        let now = self.now();
        if self.hold.expire(Instant::now()) {
            info!("step-down over: eligible for mastership again");
        }
        let held = self.hold.held();
        if held != self.held {
            self.held = held;
            self.election.handle(now, Input::Held(held));
        }
        self.election.handle_all(now, inputs);
        self.flush();
        if let Some(f) = self.flaps.due(std::time::Instant::now()) {
            info!(
                quieted = f.quieted,
                members = f.members,
                still_lost = %f.still_lost,
                "membership: lost and returned members not logged one by one in the last 10 s"
            );
        }
    }

    /// Carries out the core's outputs (through the mapping the simulator uses too,
    /// [`common::election::Round::apply`]: the memory is on disk before any frame of the round
    /// leaves) and publishes the new status.
    fn flush(&mut self) {
        let round = self.election.take_round();
        // Anything but a plain send changes what status readers should see at once.
        let news = round.apply(self);
        let now = self.now();
        let master_until = self.election.master_until().map(|m| self.instant(m));
        if self.election.role() == Role::Master {
            let _ = self.lease.send_if_modified(|l| {
                let changed = *l != master_until;
                *l = master_until;
                changed
            });
        } else {
            let _ = self.lease.send_if_modified(|l| l.take().is_some());
        }
        // Beats arrive hundreds of times a second in a large cluster; the members table is
        // rebuilt on news and when a control client asks for it (`Command::Refresh`: its
        // `last heard` and traffic rates must be fresh), never on a timer: rebuilding it at
        // every batch of beats (members, traffic, metrics: hundreds of allocations in a
        // cluster of a hundred) was most of an idle daemon's work there. The lease end in
        // the snapshot is refreshed every time: readers check it.
        if news || self.publish_now {
            self.publish_now = false;
            let mut status = self.election.status(now);
            let mut security = self.transport.security();
            let transport = &self.transport;
            security.traffic = self
                .rates
                .update(std::time::Instant::now(), || transport.traffic());
            status.security = Some(security);
            status.held = self.hold.reasons(Instant::now());
            status.checks = self.checks.clone();
            METRICS.set_role(status.role.as_str());
            METRICS.epoch.set(status.epoch);
            let members: Vec<(String, bool)> = status
                .members
                .iter()
                .map(|m| (m.state.to_string(), m.counted))
                .collect();
            METRICS.set_members(&members);
            let margin = master_until.map_or(0, |u| {
                u.saturating_duration_since(Instant::now()).as_millis()
            });
            METRICS
                .lease_margin_ms
                .set(i64::try_from(margin).unwrap_or(i64::MAX));
            self.notify_status(&status);
            if status.role == Role::Inquorate {
                // Once a second at most, and only then spelled out: the reason names every
                // counted member, and news comes hundreds of times a second to a large
                // cluster that cannot form.
                let due = self
                    .inquorate_logged
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
                let why = if due {
                    crate::explain::inquorate(&status)
                } else {
                    String::new()
                };
                if due && why != self.inquorate_why {
                    warn!(why = %why, "inquorate: no majority of the counted members reachable");
                    self.inquorate_why = why;
                    self.inquorate_logged = Some(Instant::now());
                }
            } else {
                self.inquorate_why.clear();
                self.inquorate_logged = None;
            }
            self.status.send_modify(|s| {
                s.status = status;
                s.master_until = master_until;
            });
        } else {
            self.status.send_if_modified(|s| {
                let changed = s.master_until != master_until;
                s.master_until = master_until;
                changed
            });
        }
    }

    fn notify_status(&mut self, status: &Status) {
        let line = format!(
            "{} (master {}, epoch {}, votes {}/{} of {})",
            status.role,
            status.master.as_deref().unwrap_or("none"),
            status.epoch,
            status.quorum.votes,
            status.quorum.needed,
            status.quorum.counted
        );
        if line != self.last_notify {
            debug!(status = %line, "status");
            notify::status(&line);
            self.last_notify = line;
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Most network events handed to the core in one batch (a bound on the latency a batch adds
/// to the first of them: a few hundred microseconds of decoding at most).
const MAX_BATCH: usize = 256;

/// How late past the core's deadline a turn of the loop counts as starved (`gather`).
const LATE: Duration = Duration::from_millis(20);

/// The network events queued now, after `first`: the core decides once for all of them
/// (`Election::handle_all`), not once per frame over every member. A turn that comes late
/// past the core's deadline (`LATE`: the process did not run, a hundred members starting on
/// two cores) first lets the link readers run: frames that arrived meanwhile may still sit
/// in their sockets, and the core, deciding without them, would take their senders for
/// silent (`lost`, everyone loud again, more load).
async fn gather(
    net_rx: &mut tokio::sync::mpsc::Receiver<NetEvent>,
    mut inputs: Vec<Input>,
    deadline: Instant,
) -> Vec<Input> {
    if Instant::now().saturating_duration_since(deadline) > LATE {
        tokio::task::yield_now().await;
    }
    while inputs.len() < MAX_BATCH {
        match net_rx.try_recv() {
            Ok(ev) => inputs.push(net_input(ev)),
            Err(_) => break,
        }
    }
    inputs
}

/// What the loop does with a control command, a check's report and a reload.
impl Driver {
    /// Carries out a control command and answers it, except a dispatch: its reply is handed
    /// back, answered once the node has left.
    fn on_command(&mut self, cmd: Command) -> Option<oneshot::Sender<Reply>> {
        match cmd {
            Command::Rename { name, reply } => {
                let now = self.now();
                let from = self.election.info().name.clone();
                let answer = self.election.rename(now, &name).map(|()| {
                    info!(%from, to = %name, "renamed");
                    // Kept in the state file: a restart keeps the new name.
                    self.saved.renamed = Some(name.clone());
                    Response::Renamed { from, to: name }
                });
                self.flush();
                let _ = reply.send(answer);
            }
            Command::Forget { name, reply } => {
                let now = self.now();
                let answer = self
                    .election
                    .forget(now, &name)
                    .map(|()| Response::Forgotten { name });
                self.flush();
                let _ = reply.send(answer);
            }
            Command::Dispatch { reply } => return Some(reply),
            Command::Refresh { reply } => {
                self.publish_now = true;
                self.flush();
                let _ = reply.send(());
            }
            Command::Hold { change, reply } => {
                self.hold.apply(change, Instant::now());
                let held = self.hold.reasons(Instant::now());
                info!(%change, held = %held.join(", "), "eligibility changed by the operator");
                self.handle(Input::Tick);
                let _ = reply.send(Ok(Response::Held { held }));
            }
        }
        None
    }

    /// A health check ran: a failing one holds the node out of the election.
    fn on_check(&mut self, report: crate::checks::CheckReport) {
        if let Some(slot) = self.checks.get_mut(report.index) {
            *slot = report.state;
        }
        self.hold.failing_checks = self
            .checks
            .iter()
            .filter(|c| !c.passing)
            .map(|c| c.command.clone())
            .collect();
        self.publish_now = true;
        self.handle(Input::Tick);
    }

    /// SIGHUP: reads the configuration again and applies what can change while running;
    /// the rest is named in a warning and left as it was. A configuration that does not
    /// parse or check changes nothing.
    fn reload(&mut self, settings: &mut Settings) {
        let env = |key: &str| std::env::var(key).ok();
        let new = match Settings::parse_from(std::env::args_os(), &env)
            .map_err(anyhow::Error::from)
            .and_then(|new| check_settings(&new).map(|()| new))
        {
            Err(e) => {
                error!(error = %e, "reload refused: the configuration is unchanged");
                return;
            }
            Ok(new) => new,
        };
        let restart = needs_restart(settings, &new);
        if !restart.is_empty() {
            warn!(options = %restart.join(", "), "reload: changing these needs a restart; they were left as they were");
        }
        self.hooks.set_scripts(hook_scripts(&new));
        if (&new.log_level, new.debug) != (&settings.log_level, settings.debug) {
            let rust_log = std::env::var("RUST_LOG").ok();
            let spec = crate::logging::filter_spec(
                new.log_level.as_deref(),
                new.debug,
                rust_log.as_deref(),
            );
            match crate::logging::set_filter(&spec) {
                Ok(()) => info!(filter = %spec, "reload: log level changed"),
                Err(e) => warn!(error = %e, "reload: log level unchanged"),
            }
            settings.log_level = new.log_level.clone();
            settings.debug = new.debug;
        }
        if new.maintenance != settings.maintenance {
            self.hold.maintenance = new.maintenance;
            settings.maintenance = new.maintenance;
            let state = if new.maintenance { "on" } else { "off" };
            info!(
                maintenance = state,
                "reload: maintenance changed by the config file"
            );
            self.publish_now = true;
            self.handle(Input::Tick);
        }
        if new.priority != settings.priority {
            info!(
                from = settings.priority,
                to = new.priority,
                "reload: priority changed"
            );
            settings.priority = new.priority;
            let now = self.now();
            self.election.set_priority(now, new.priority);
            self.flush();
        }
        if new.exit_on_minority != settings.exit_on_minority {
            info!(
                exit_on_minority = new.exit_on_minority,
                "reload: exit on minority changed"
            );
            self.exit_on_minority = new.exit_on_minority;
            settings.exit_on_minority = new.exit_on_minority;
        }
        if new.checks != settings.checks {
            self.checks_cancel.cancel();
            self.checks_cancel = self.node_cancel.child_token();
            self.checks = crate::checks::spawn(
                &new.checks,
                self.check_tx.clone(),
                self.checks_cancel.clone(),
            );
            self.hold.failing_checks.clear();
            self.publish_now = true;
            self.handle(Input::Tick);
        }
        settings.master_script = new.master_script;
        settings.slave_script = new.slave_script;
        settings.notify_script = new.notify_script;
        settings.timers.hook_timeout_ms = new.timers.hook_timeout_ms;
        settings.checks = new.checks;
        info!("configuration reloaded");
    }
}

/// The core's input for a transport event.
fn net_input(ev: NetEvent) -> Input {
    match ev {
        NetEvent::Hello(info) => Input::Hello(info),
        NetEvent::Message { from, msg } => Input::Message { from, msg },
        NetEvent::Crashed(id) => Input::Crashed(id),
    }
}

/// A fresh incarnation id: start time mixed with the pid and an address-space value, so two
/// daemons started in the same millisecond on one host still differ.
fn incarnation_id(started_ms: u64) -> u64 {
    let pid = u64::from(std::process::id());
    let local = 0u8;
    let addr = &local as *const u8 as u64;
    let mut z = started_ms ^ pid.rotate_left(32) ^ addr.rotate_left(17);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)).max(1)
}

/// This host's name, for the default node name `<hostname>:<port>`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The daemon's side of the core's outputs: frames to the transport, hooks, events, logs and
/// the state file.
impl Effects for Driver {
    fn remember(&mut self, memory: Memory) {
        if let Some(state) = &self.state {
            self.saved.memory = memory;
            // Off the event loop; the frames after it wait for it (`crate::persist`).
            if !self.outbox.remember(&self.saved) {
                state.save(&self.saved);
            }
        }
    }

    fn send(&mut self, to: MemberId, msg: Message) {
        let transport = &self.transport;
        self.outbox
            .push(Held::Send(to, msg), &mut |h| deliver(transport, h));
    }

    fn announce(&mut self, info: MemberInfo) {
        let transport = &self.transport;
        self.outbox
            .push(Held::Announce(info), &mut |h| deliver(transport, h));
    }

    fn role_changed(&mut self, c: RoleChange) {
        let RoleChange {
            role,
            previous,
            master,
            epoch,
            master_until,
        } = c;
        let context = self.hook_context(master.as_deref(), Some((role, previous)));
        info!(%role, %previous, master = master.as_deref().unwrap_or("none"), epoch, reason = %context.reason, "role changed");
        self.transport
            .set_settled(role == Role::Master || (role == Role::Slave && master.is_some()));
        let until = master_until.map(|m| self.instant(m));
        let _ = self.lease.send(until);
        let reason = context.reason.clone();
        if role == Role::Master {
            METRICS.elections.inc();
        } else if previous == Role::Master {
            METRICS.handovers.inc();
        }
        self.hooks.submit(HookEvent {
            role,
            previous,
            master: master.clone(),
            epoch,
            node: self.election.info().name.clone(),
            kind: HookKind::Role,
            master_until: until,
            context,
        });
        let _ = self.events.send(Event::Role {
            role,
            previous,
            master,
            epoch,
            reason,
        });
        if role == Role::Inquorate {
            self.minority_since.get_or_insert(self.now());
            if self.exit_on_minority {
                warn!(
                    within_ms = self.minority_grace_ms,
                    "inquorate and --exit-on-minority is set: exiting unless a quorum is reached again"
                );
            }
        } else {
            self.minority_since = None;
        }
    }

    fn master_changed(&mut self, master: Option<String>, epoch: u64) {
        info!(
            master = master.as_deref().unwrap_or("none"),
            epoch, "master changed"
        );
        let role = self.election.role();
        self.transport
            .set_settled(master.is_some() && matches!(role, Role::Master | Role::Slave));
        self.hooks.submit(HookEvent {
            role,
            previous: role,
            master: master.clone(),
            epoch,
            node: self.election.info().name.clone(),
            kind: HookKind::Master,
            master_until: None,
            context: self.hook_context(master.as_deref(), None),
        });
        let _ = self.events.send(Event::Master { master, epoch });
    }

    fn member(&mut self, name: String, change: MemberChange) {
        match self.flaps.note(&name, &change, std::time::Instant::now()) {
            crate::flaps::Line::Log => info!(member = %name, %change, "membership"),
            // Counted: told in one line when its window ends (`crate::flaps`).
            crate::flaps::Line::Quiet => debug!(member = %name, %change, "membership"),
        }
        let _ = self.events.send(Event::Member { name, change });
    }

    fn refused(&mut self, name: String, addr: String, reason: String) {
        error!(member = %name, %addr, %reason, "refused a member");
    }
}
