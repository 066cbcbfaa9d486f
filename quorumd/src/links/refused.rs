//! Counters of refused traffic (wrong key, unauthenticated, replayed, malformed), shown in
//! `quorumctl status`, and their rate-limited log: an attacker's flood must not flood the
//! journal too.

use common::codec::OpenError;
use common::control::Security;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// At most one warning per this interval (the counters keep the rest).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Counts of refused messages, per reason.
#[derive(Default)]
pub(crate) struct Refused {
    unauthenticated: AtomicU64,
    bad_key: AtomicU64,
    replayed: AtomicU64,
    malformed: AtomicU64,
    last_log: Mutex<Option<Instant>>,
}

impl Refused {
    /// Counts a refused message and warns about authentication failures, at most once per
    /// [`LOG_EVERY`].
    pub(crate) fn note(&self, from: Option<SocketAddr>, what: &str, e: &OpenError) {
        let from = from.map_or_else(|| "a peer link".to_string(), |a| a.to_string());
        let (counter, reason) = match e {
            OpenError::Unauthenticated => (&self.unauthenticated, "unauthenticated"),
            OpenError::BadTag => (&self.bad_key, "bad_key"),
            OpenError::Replay => (&self.replayed, "replayed"),
            _ => (&self.malformed, "malformed"),
        };
        crate::metrics::METRICS.refused(reason);
        counter.fetch_add(1, Ordering::Relaxed);
        // Authentication failures and another protocol version are an operator's business
        // (a wrong key file, a node of another release: a cluster must run one protocol
        // version); plain garbage is not worth more than a debug line.
        let version = matches!(e, OpenError::BadVersion(_));
        if !e.is_auth() && !version {
            tracing::debug!(%from, error = %e, "{what} dropped");
            return;
        }
        let now = Instant::now();
        let mut last = self.last_log.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            tracing::debug!(%from, error = %e, "{what} dropped");
            return;
        }
        *last = Some(now);
        drop(last);
        if version {
            tracing::warn!(
                %from, error = %e,
                "{what} refused: it comes from a node speaking another protocol version (every \
                 node of a cluster must run the same release; further ones are logged at most \
                 every 10 s)"
            );
            return;
        }
        let s = self.snapshot(true);
        tracing::warn!(
            %from, error = %e,
            unauthenticated = s.unauthenticated, bad_key = s.bad_key, replayed = s.replayed,
            "{what} refused (authentication); further ones are counted in quorumctl status \
             and logged at most every 10 s"
        );
    }

    /// The counters as shown in `quorumctl status`.
    pub(crate) fn snapshot(&self, keyed: bool) -> Security {
        Security {
            authenticated: keyed,
            unauthenticated: self.unauthenticated.load(Ordering::Relaxed),
            bad_key: self.bad_key.load(Ordering::Relaxed),
            replayed: self.replayed.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            traffic: Vec::new(),
        }
    }
}
