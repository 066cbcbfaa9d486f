//! Logging setup: `tracing` to stderr (journald under systemd), optionally also to a file
//! rotated daily by `tracing-appender`.
//!
//! Level: `info`, or `debug` for quorumd's own crates with `-d`; `RUST_LOG` overrides both.

use anyhow::Context;
use std::io::IsTerminal;
use std::path::Path;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the log file writer alive; drop it only at exit (dropping flushes the file).
#[must_use = "dropping the guard stops writing the log file"]
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

/// The filter used when `RUST_LOG` is not set.
pub fn default_filter(debug: bool) -> &'static str {
    if debug {
        "info,quorumd=debug,common=debug"
    } else {
        "info"
    }
}

/// stderr always (readable lines with time, level, target-less message and fields); `debug`
/// => debug level for quorumd/common (RUST_LOG overrides when set); `log_file` => also written
/// by tracing-appender with daily rotation (directory + file prefix from the path), non-ANSI.
/// Returns the guard(s) to keep alive until exit.
pub fn init(debug: bool, log_file: Option<&Path>) -> anyhow::Result<LogGuard> {
    let filter = || match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => {
            EnvFilter::try_new(spec.trim()).with_context(|| format!("invalid RUST_LOG {spec:?}"))
        }
        _ => Ok(EnvFilter::new(default_filter(debug))),
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter()?);

    let (file_layer, guard) = match log_file {
        Some(path) => {
            let appender = rolling_appender(path)?;
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(writer)
                .with_target(false)
                .with_ansi(false)
                .with_filter(filter()?);
            (Some(layer), Some(guard))
        }
        None => (None, None),
    };

    tracing_subscriber::registry()
        .with(stderr)
        .with(file_layer)
        .try_init()
        .context("a logger is already installed")?;
    Ok(LogGuard { _file: guard })
}

/// `/var/log/quorumd/quorumd.log` => files `/var/log/quorumd/quorumd.log.YYYY-MM-DD`.
fn rolling_appender(path: &Path) -> anyhow::Result<RollingFileAppender> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let prefix = path
        .file_name()
        .with_context(|| format!("--log-file {}: not a file path", path.display()))?
        .to_string_lossy()
        .into_owned();
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--log-file {}: creating {}", path.display(), dir.display()))?;
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(prefix)
        .build(dir)
        .with_context(|| format!("--log-file {}: cannot open", path.display()))
}

/// Writes one line to stderr, ignoring a closed stderr (`eprintln!` would panic).
pub fn eprint_line(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
