//! Prometheus metrics: `quorumctl metrics` and the optional `--metrics-listen` endpoint
//! serve the same text (encoded by `prometheus-client`).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{LazyLock, OnceLock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tracing::{debug, warn};

type Labels = Vec<(String, String)>;

/// Every metric the daemon keeps.
pub struct Metrics {
    registry: Registry,
    /// 1 for the current role, 0 for the others.
    pub role: Family<Labels, Gauge>,
    /// The epoch this node knows.
    pub epoch: Gauge<u64, AtomicU64>,
    /// Members by state (alive, lost, dispatched) and counted.
    pub members: Family<Labels, Gauge>,
    /// Times this node became master.
    pub elections: Counter,
    /// Times this node stopped being master.
    pub handovers: Counter,
    /// Hook runs by hook and outcome.
    pub hook_runs: Family<Labels, Counter>,
    /// Hook durations in seconds.
    pub hook_seconds: Histogram,
    /// Check results by check and outcome.
    pub check_results: Family<Labels, Counter>,
    /// Milliseconds left on this master's lease (0 when not master).
    pub lease_margin_ms: Gauge,
    /// Frames by direction (in, out) and transport (link, datagram).
    pub frames: Family<Labels, Counter>,
    /// Bytes by direction and transport.
    pub bytes: Family<Labels, Counter>,
    /// Frames dropped by this node, by reason (link queue full, no link, driver busy).
    pub dropped: Family<Labels, Counter>,
    /// Frames refused on arrival, by reason (unauthenticated, bad_key, replayed, malformed).
    pub refused: Family<Labels, Counter>,
    hot: Hot,
}

/// The series updated on every frame and every status update, each looked up in its family
/// once, on first use: a lookup allocates and hashes its labels, and an idle node counts
/// dozens of frames a second (that was a tenth of its user time). A handle shares its
/// series' value, so the output is the same.
#[derive(Default)]
struct Hot {
    /// (frames, bytes) by [`frame_slot`].
    frames: [OnceLock<(Counter, Counter)>; 4],
    /// In the order of [`ROLES`].
    role: OnceLock<Vec<Gauge>>,
    /// In the order of [`MEMBER_SERIES`].
    members: OnceLock<Vec<Gauge>>,
}

const ROLES: [&str; 5] = ["starting", "master", "slave", "inquorate", "dispatching"];
const MEMBER_SERIES: [(&str, bool); 6] = [
    ("alive", true),
    ("alive", false),
    ("lost", true),
    ("lost", false),
    ("dispatched", true),
    ("dispatched", false),
];

/// The slot in [`Hot::frames`] of a direction and transport.
fn frame_slot(direction: &str, transport: &str) -> Option<usize> {
    match (direction, transport) {
        ("in", "link") => Some(0),
        ("out", "link") => Some(1),
        ("in", "datagram") => Some(2),
        ("out", "datagram") => Some(3),
        _ => None,
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("quorumd");
        let m = Metrics {
            registry: Registry::default(),
            role: Family::default(),
            epoch: Gauge::default(),
            members: Family::default(),
            elections: Counter::default(),
            handovers: Counter::default(),
            hook_runs: Family::default(),
            hook_seconds: Histogram::new([0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0]),
            check_results: Family::default(),
            lease_margin_ms: Gauge::default(),
            frames: Family::default(),
            bytes: Family::default(),
            dropped: Family::default(),
            refused: Family::default(),
            hot: Hot::default(),
        };
        registry.register("role", "1 for this node's current role", m.role.clone());
        registry.register(
            "epoch",
            "The cluster epoch this node knows",
            m.epoch.clone(),
        );
        registry.register("members", "Members by state and counted", m.members.clone());
        registry.register(
            "elections",
            "Times this node became master",
            m.elections.clone(),
        );
        registry.register(
            "handovers",
            "Times this node stopped being master",
            m.handovers.clone(),
        );
        registry.register(
            "hook_runs",
            "Hook runs by hook and result",
            m.hook_runs.clone(),
        );
        registry.register(
            "hook_duration_seconds",
            "How long hooks ran",
            m.hook_seconds.clone(),
        );
        registry.register(
            "check_results",
            "Health check runs by check and result",
            m.check_results.clone(),
        );
        registry.register(
            "lease_margin_milliseconds",
            "Time left on this master's lease",
            m.lease_margin_ms.clone(),
        );
        registry.register(
            "frames",
            "Frames by direction (in, out) and transport (link, datagram)",
            m.frames.clone(),
        );
        registry.register(
            "bytes",
            "Bytes by direction (in, out) and transport (link, datagram)",
            m.bytes.clone(),
        );
        registry.register(
            "frames_dropped",
            "Frames dropped by this node (queue_full, no_link, driver_busy)",
            m.dropped.clone(),
        );
        registry.register(
            "frames_refused",
            "Frames refused on arrival (unauthenticated, bad_key, replayed, malformed)",
            m.refused.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts one frame of `bytes` going `direction` ("in", "out") on `transport` ("link",
    /// "datagram").
    pub fn frame(&self, direction: &str, transport: &str, bytes: usize) {
        let series = || {
            let l = labels(&[("direction", direction), ("transport", transport)]);
            (
                self.frames.get_or_create(&l).clone(),
                self.bytes.get_or_create(&l).clone(),
            )
        };
        let slot = frame_slot(direction, transport).and_then(|i| self.hot.frames.get(i));
        let counted = match slot {
            Some(slot) => slot.get_or_init(series),
            None => &series(),
        };
        counted.0.inc();
        counted.1.inc_by(bytes as u64);
    }

    /// Counts a frame this node dropped.
    pub fn dropped(&self, reason: &str) {
        self.dropped
            .get_or_create(&labels(&[("reason", reason)]))
            .inc();
    }

    /// Counts a frame refused on arrival.
    pub fn refused(&self, reason: &str) {
        self.refused
            .get_or_create(&labels(&[("reason", reason)]))
            .inc();
    }

    /// Sets the role gauge: 1 for `role`, 0 for every other.
    pub fn set_role(&self, role: &str) {
        let gauges = self.hot.role.get_or_init(|| {
            ROLES
                .iter()
                .map(|r| self.role.get_or_create(&labels(&[("role", r)])).clone())
                .collect()
        });
        for (r, g) in ROLES.iter().zip(gauges) {
            g.set(i64::from(*r == role));
        }
    }

    /// Sets the members gauges from (state, counted) pairs.
    pub fn set_members(&self, members: &[(String, bool)]) {
        let gauges = self.hot.members.get_or_init(|| {
            MEMBER_SERIES
                .iter()
                .map(|(state, counted)| {
                    let c = if *counted { "true" } else { "false" };
                    self.members
                        .get_or_create(&labels(&[("state", state), ("counted", c)]))
                        .clone()
                })
                .collect()
        });
        for ((state, counted), g) in MEMBER_SERIES.iter().zip(gauges) {
            let n = members
                .iter()
                .filter(|(s, c)| s == state && c == counted)
                .count();
            g.set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Counts a hook run.
    pub fn hook_run(&self, hook: &str, ok: bool, seconds: f64) {
        let result = if ok { "ok" } else { "failed" };
        self.hook_runs
            .get_or_create(&labels(&[("hook", hook), ("result", result)]))
            .inc();
        self.hook_seconds.observe(seconds);
    }

    /// Counts a check result.
    pub fn check_result(&self, check: &str, ok: bool) {
        let result = if ok { "pass" } else { "fail" };
        self.check_results
            .get_or_create(&labels(&[("check", check), ("result", result)]))
            .inc();
    }

    /// The Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            warn!("encoding metrics failed");
        }
        out
    }
}

/// The daemon's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Serves `GET /metrics` on `listener` (HTTP/1.1, one request per connection).
pub async fn serve(listener: TcpListener) {
    loop {
        let Ok((mut conn, peer)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut len = 0;
            let read = async {
                while len < buf.len() {
                    let n = conn.read(&mut buf[len..]).await.ok()?;
                    if n == 0 {
                        return None;
                    }
                    len += n;
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        return Some(());
                    }
                }
                None
            };
            let got = tokio::time::timeout(std::time::Duration::from_secs(5), read).await;
            if !matches!(got, Ok(Some(()))) {
                debug!(%peer, "metrics: incomplete request");
                return;
            }
            let head = String::from_utf8_lossy(&buf[..len]);
            let line = head.lines().next().unwrap_or("");
            let (status, ctype, body) =
                if line.starts_with("GET /metrics ") || line.starts_with("GET /metrics?") {
                    (
                        "200 OK",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        METRICS.encode(),
                    )
                } else {
                    (
                        "404 Not Found",
                        "text/plain",
                        "not found: try /metrics\n".to_string(),
                    )
                };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_series_are_the_families_own() {
        let m = Metrics::new();
        m.frame("in", "link", 100);
        m.frame("in", "link", 20);
        m.frame("out", "datagram", 7);
        m.frame("sideways", "link", 1);
        m.set_role("slave");
        m.set_role("master");
        let members = [("alive".to_string(), true), ("lost".to_string(), true)];
        m.set_members(&members);
        m.set_members(&members[..1]);
        let text = m.encode();
        for line in [
            "quorumd_frames_total{direction=\"in\",transport=\"link\"} 2",
            "quorumd_bytes_total{direction=\"in\",transport=\"link\"} 120",
            "quorumd_frames_total{direction=\"out\",transport=\"datagram\"} 1",
            "quorumd_frames_total{direction=\"sideways\",transport=\"link\"} 1",
            "quorumd_role{role=\"master\"} 1",
            "quorumd_role{role=\"slave\"} 0",
            "quorumd_members{state=\"alive\",counted=\"true\"} 1",
            "quorumd_members{state=\"lost\",counted=\"true\"} 0",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
        assert!(!text.contains("direction=\"out\",transport=\"link\""));
    }
}
