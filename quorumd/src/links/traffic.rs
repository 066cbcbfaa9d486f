//! Frames and bytes per linked member, for `quorumctl status` (rates are the driver's).

use common::types::MemberId;
use std::collections::HashMap;
use std::sync::Mutex;

/// Most members counted at once (the transport's own bound on links is lower).
const MAX_PEERS: usize = 4096;

/// Totals for one member since its link came up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerCount {
    /// Its name (from its hello).
    pub name: String,
    /// Frames received.
    pub frames_in: u64,
    /// Bytes received (with length prefixes).
    pub bytes_in: u64,
    /// Frames queued to it.
    pub frames_out: u64,
    /// Bytes queued to it.
    pub bytes_out: u64,
}

/// Per-member counters, shared by the link tasks.
#[derive(Default)]
pub(crate) struct Traffic {
    peers: Mutex<HashMap<MemberId, PeerCount>>,
}

impl Traffic {
    fn with(&self, id: MemberId, f: impl FnOnce(&mut PeerCount)) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = peers.get_mut(&id) {
            f(c);
        }
    }

    /// A link to `id` came up: counting starts (again) from zero.
    pub(crate) fn linked(&self, id: MemberId, name: &str) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if peers.len() >= MAX_PEERS && !peers.contains_key(&id) {
            return;
        }
        peers.insert(
            id,
            PeerCount {
                name: name.to_string(),
                ..PeerCount::default()
            },
        );
    }

    /// The link to `id` is gone.
    pub(crate) fn unlinked(&self, id: MemberId) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.remove(&id);
    }

    /// A frame of `bytes` came from `id`.
    pub(crate) fn inbound(&self, id: MemberId, bytes: usize) {
        self.with(id, |c| {
            c.frames_in = c.frames_in.saturating_add(1);
            c.bytes_in = c.bytes_in.saturating_add(bytes as u64);
        });
    }

    /// A frame of `bytes` was queued to `id`.
    pub(crate) fn outbound(&self, id: MemberId, bytes: usize) {
        self.with(id, |c| {
            c.frames_out = c.frames_out.saturating_add(1);
            c.bytes_out = c.bytes_out.saturating_add(bytes as u64);
        });
    }

    /// Every linked member's totals.
    pub(crate) fn snapshot(&self) -> Vec<(MemberId, PeerCount)> {
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.iter().map(|(id, c)| (*id, c.clone())).collect()
    }
}

/// Turns totals into per-second rates, recomputed about once a second (the driver calls
/// [`Rates::update`] whenever it publishes a status).
#[derive(Default)]
pub struct Rates {
    prev: Option<(std::time::Instant, HashMap<MemberId, PeerCount>)>,
    current: Vec<common::control::PeerTraffic>,
}

impl Rates {
    /// The per-member traffic for `status`; `snapshot` is read only when a second has passed.
    pub fn update(
        &mut self,
        now: std::time::Instant,
        snapshot: impl FnOnce() -> Vec<(MemberId, PeerCount)>,
    ) -> Vec<common::control::PeerTraffic> {
        let due = self
            .prev
            .as_ref()
            .is_none_or(|(t, _)| now.duration_since(*t).as_millis() >= 1000);
        if due {
            let snap: HashMap<MemberId, PeerCount> = snapshot().into_iter().collect();
            let (since, before) = match &self.prev {
                Some((t, b)) => (now.duration_since(*t).as_secs_f64(), Some(b)),
                None => (0.0, None),
            };
            let rate = |now: u64, then: Option<u64>| match then {
                Some(then) if since > 0.0 => {
                    (now.saturating_sub(then) as f64 / since).round() as u64
                }
                _ => 0,
            };
            let mut current: Vec<common::control::PeerTraffic> = snap
                .iter()
                .map(|(id, c)| {
                    let b = before.and_then(|b| b.get(id));
                    common::control::PeerTraffic {
                        name: c.name.clone(),
                        messages_in: c.frames_in,
                        bytes_in: c.bytes_in,
                        messages_out: c.frames_out,
                        bytes_out: c.bytes_out,
                        messages_in_per_s: rate(c.frames_in, b.map(|b| b.frames_in)),
                        bytes_in_per_s: rate(c.bytes_in, b.map(|b| b.bytes_in)),
                        messages_out_per_s: rate(c.frames_out, b.map(|b| b.frames_out)),
                        bytes_out_per_s: rate(c.bytes_out, b.map(|b| b.bytes_out)),
                    }
                })
                .collect();
            current.sort_by(|a, b| a.name.cmp(&b.name));
            self.current = current;
            self.prev = Some((now, snap));
        }
        self.current.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn rates_are_deltas_over_the_elapsed_second_and_totals_count_from_link_up() {
        let t = Traffic::default();
        t.linked(7, "bob");
        t.inbound(7, 100);
        t.outbound(7, 50);
        t.inbound(9, 1); // not linked: not counted
        let mut r = Rates::default();
        let t0 = Instant::now();
        let first = r.update(t0, || t.snapshot());
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].name, "bob");
        assert_eq!((first[0].messages_in, first[0].bytes_in), (1, 100));
        assert_eq!(
            first[0].messages_in_per_s, 0,
            "no rate without a previous sample"
        );
        for _ in 0..10 {
            t.inbound(7, 100);
        }
        // Within the second: the cached value.
        assert_eq!(
            r.update(t0 + Duration::from_millis(500), || t.snapshot()),
            first
        );
        let later = r.update(t0 + Duration::from_secs(2), || t.snapshot());
        assert_eq!(later[0].messages_in, 11);
        assert_eq!(later[0].messages_in_per_s, 5);
        assert_eq!(later[0].bytes_in_per_s, 500);
        assert_eq!(later[0].messages_out_per_s, 0);
        t.unlinked(7);
        assert!(
            r.update(t0 + Duration::from_secs(4), || t.snapshot())
                .is_empty()
        );
    }
}
