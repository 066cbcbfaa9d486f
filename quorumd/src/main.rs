//! `quorumd`: parse settings, set up logging, turn signals and the terminal into stop
//! requests, run the node.
//!
//! Exit status: 0 after a dispatch or a stop request, 1 on a failure while running, 2 when the
//! node refuses to start (a bad flag, variable, file key or hook, a socket that cannot be
//! bound), 3 with `--exit-on-minority` when the quorum is lost for a silence window (docs/CONFIG.md, "Exit status").
//!
//! Signals keep the original's meaning: SIGTERM (and `systemctl stop`) or `q` + Enter on a
//! terminal = dispatch (hand over, run the hook, exit 0); a second SIGTERM during a dispatch =
//! exit at once; SIGINT = stop at once without a goodbye (peers see the node as lost).

use quorumd::config::Settings;
use quorumd::node::{self, Exit, Stop};
use std::io::IsTerminal;
use std::process::ExitCode;
use tokio::io::AsyncBufReadExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

fn main() -> ExitCode {
    // `--generate-key FILE` stands alone: no other setting matters.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(i) = args.iter().position(|a| a == "--generate-key") {
        let Some(path) = args.get(i + 1) else {
            quorumd::logging::eprint_line("quorumd: --generate-key needs a FILE");
            return ExitCode::from(2);
        };
        return match quorumd::keyfile::generate(std::path::Path::new(path)) {
            Ok(()) => {
                println!("wrote a new cluster key to {}", path.to_string_lossy());
                ExitCode::SUCCESS
            }
            Err(e) => {
                quorumd::logging::eprint_line(&format!("quorumd: {e:#}"));
                ExitCode::from(2)
            }
        };
    }
    let settings = Settings::from_args();
    if let Err(e) = node::check_settings(&settings) {
        quorumd::logging::eprint_line(&format!("quorumd: {e:#}"));
        return ExitCode::from(2);
    }
    let rust_log = std::env::var("RUST_LOG").ok();
    let spec = quorumd::logging::filter_spec(
        settings.log_level.as_deref(),
        settings.debug,
        rust_log.as_deref(),
    );
    let logged = quorumd::logging::init(&spec, settings.log_format, settings.log_file.as_deref());
    let _guard = match logged {
        Ok(g) => g,
        Err(e) => {
            quorumd::logging::eprint_line(&format!("quorumd: {e:#}"));
            return ExitCode::from(2);
        }
    };
    // One thread: a node's work is a few frames and timers a heartbeat, never CPU-bound.
    // With worker threads every frame woke two or three threads (the reader's worker, the
    // driver on the main thread, a sibling worker looking for work): measured side by side,
    // an idle daemon of 5 used 0.42 % of a core that way and 0.24 % on one thread (50 idle
    // daemons: 47 % in an earlier run, 38 % now). Blocking work (the state file's fsync)
    // was already on the driver's path, and hooks are child processes.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            quorumd::logging::eprint_line(&format!("quorumd: cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(async move {
        let (stop_tx, stop_rx) = mpsc::channel(8);
        if let Err(e) = spawn_stop_sources(stop_tx) {
            tracing::error!(error = %e, "cannot install signal handlers");
            return ExitCode::FAILURE;
        }
        match node::run(settings, stop_rx).await {
            Ok(Exit::Done) => ExitCode::SUCCESS,
            Ok(Exit::Minority) => ExitCode::from(3),
            // Logged once (the log goes to stderr): not printed again.
            Err(e) if e.downcast_ref::<node::StartError>().is_some() => {
                tracing::error!("cannot start: {e:#}");
                ExitCode::from(2)
            }
            Err(e) => {
                tracing::error!("{e:#}");
                ExitCode::from(1)
            }
        }
    });
    // The terminal reader blocks in read(2) on stdin and cannot be cancelled: do not wait for
    // it (or for any other straggler) once the node has left.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}

/// SIGTERM and `q` + Enter ask for a dispatch, SIGINT for an immediate stop, SIGHUP for a
/// reload of the configuration (never fatal: its default action would kill a master without
/// a hand-over and leave its VIP on the box).
fn spawn_stop_sources(tx: mpsc::Sender<Stop>) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let t = tx.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP received: reloading the configuration");
            if t.send(Stop::Reload).await.is_err() {
                break;
            }
        }
    });
    let t = tx.clone();
    tokio::spawn(async move {
        while term.recv().await.is_some() {
            if t.send(Stop::Dispatch).await.is_err() {
                break;
            }
        }
    });
    let t = tx.clone();
    tokio::spawn(async move {
        if int.recv().await.is_some() {
            let _ = t.send(Stop::Abort).await;
        }
    });
    if std::io::stdin().is_terminal() {
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            quorumd::logging::eprint_line(
                "quorumd: type q and Enter to leave the cluster gracefully",
            );
            while let Ok(Some(line)) = lines.next_line().await {
                if line.trim() == "q" {
                    let _ = tx.send(Stop::Dispatch).await;
                }
            }
        });
    }
    Ok(())
}
