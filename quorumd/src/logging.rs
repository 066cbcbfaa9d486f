//! Logging setup: `tracing` to stderr (journald under systemd), optionally also to a file
//! rotated daily by `tracing-appender`; lines as readable text or as JSON objects
//! (`--log-format json`, one per line).
//!
//! Level, first found: `--log-level` (flag, `QUORUMD_LOG_LEVEL` or the `log_level` key), then
//! `RUST_LOG`, then `-d` (debug for quorumd's own crates), else `info`. A reload (SIGHUP)
//! applies a changed `--log-level` at once ([`set_filter`]).

use anyhow::Context;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::OnceLock;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// `2026-01-01T00:00:00Z  INFO role changed role=master ...`
    #[default]
    Text,
    /// `{"timestamp":"...","level":"INFO","message":"role changed","role":"master",...}`
    Json,
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// Keeps the log file writer alive; drop it only at exit (dropping flushes the file).
#[must_use = "dropping the guard stops writing the log file"]
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

/// The filter used when neither `--log-level` nor `RUST_LOG` is set.
pub fn default_filter(debug: bool) -> &'static str {
    if debug {
        "info,quorumd=debug,common=debug"
    } else {
        "info"
    }
}

/// The filter in force: `level` (`--log-level`), else `rust_log` (`RUST_LOG`), else `-d`'s or
/// the default.
pub fn filter_spec(level: Option<&str>, debug: bool, rust_log: Option<&str>) -> String {
    match (level, rust_log.map(str::trim).filter(|s| !s.is_empty())) {
        (Some(l), _) => l.to_string(),
        (None, Some(r)) => r.to_string(),
        (None, None) => default_filter(debug).to_string(),
    }
}

/// Checks a filter (a level such as `debug`, or `RUST_LOG` syntax such as
/// `info,quorumd=debug`).
pub fn check_filter(spec: &str) -> Result<(), String> {
    EnvFilter::builder()
        .parse(spec)
        .map(drop)
        .map_err(|e| format!("not a log level or filter: {e}"))
}

type Base = Layered<reload::Layer<EnvFilter, Registry>, Registry>;
type Output = Box<dyn Layer<Base> + Send + Sync>;

static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Replaces the filter of the installed logger (a reload). Refused (nothing changes) if the
/// filter does not parse or no logger was installed by [`init`].
pub fn set_filter(spec: &str) -> Result<(), String> {
    let filter = EnvFilter::builder()
        .parse(spec)
        .map_err(|e| format!("not a log level or filter: {e}"))?;
    let handle = FILTER.get().ok_or("no logger installed")?;
    handle.reload(filter).map_err(|e| e.to_string())
}

fn output<W>(format: LogFormat, writer: W, ansi: bool) -> Output
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(false)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => layer.boxed(),
        LogFormat::Json => layer
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
    }
}

/// Installs the logger: stderr always (ANSI colours only on a terminal and in text); with
/// `log_file`, also that file (daily rotation, directory + file prefix from the path, never
/// ANSI). `spec` is the filter ([`filter_spec`]). Returns the guard to keep alive until exit.
pub fn init(spec: &str, format: LogFormat, log_file: Option<&Path>) -> anyhow::Result<LogGuard> {
    let filter = EnvFilter::builder()
        .parse(spec)
        .with_context(|| format!("invalid log filter {spec:?}"))?;
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = format == LogFormat::Text && std::io::stderr().is_terminal();
    let mut outputs: Vec<Output> = vec![output(format, std::io::stderr, ansi)];
    let guard = match log_file {
        Some(path) => {
            let appender = rolling_appender(path)?;
            let (writer, guard) = tracing_appender::non_blocking(appender);
            outputs.push(output(format, writer, false));
            Some(guard)
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(outputs)
        .try_init()
        .context("a logger is already installed")?;
    let _ = FILTER.set(handle);
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
