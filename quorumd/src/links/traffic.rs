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
    /// When its link came up (counting started).
    pub linked_at: Option<std::time::Instant>,
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

    /// A link to `id` came up at `now`: counting starts (again) from zero.
    pub(crate) fn linked(&self, id: MemberId, name: &str, now: std::time::Instant) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if peers.len() >= MAX_PEERS && !peers.contains_key(&id) {
            return;
        }
        peers.insert(
            id,
            PeerCount {
                name: name.to_string(),
                linked_at: Some(now),
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
/// [`Rates::update`] whenever it publishes a status): the average since the previous
/// sample, or, for a link that came up since, since the link came up. The status is rebuilt
/// on news and when a client asks, not on a timer, so the previous sample may be minutes old;
/// a link missing from it showed 0 msg/s however busy it was.
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
            let mut current: Vec<common::control::PeerTraffic> = snap
                .iter()
                .map(|(id, c)| {
                    let b = before.and_then(|b| b.get(id));
                    // Since the previous sample; for a link that came up since, since then
                    // (after a second at least: less tells nothing).
                    let over = match (b, c.linked_at) {
                        (Some(_), _) => since,
                        (None, Some(t)) if now.duration_since(t).as_secs_f64() >= 1.0 => {
                            now.duration_since(t).as_secs_f64()
                        }
                        _ => 0.0,
                    };
                    let rate = |count: u64, then: Option<u64>| {
                        if over > 0.0 {
                            (count.saturating_sub(then.unwrap_or(0)) as f64 / over).round() as u64
                        } else {
                            0
                        }
                    };
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
        let t0 = Instant::now();
        t.linked(7, "bob", t0);
        t.inbound(7, 100);
        t.outbound(7, 50);
        t.inbound(9, 1); // not linked: not counted
        let mut r = Rates::default();
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

    #[test]
    fn a_link_that_came_up_since_the_previous_sample_is_rated_since_it_came_up() {
        let t = Traffic::default();
        let t0 = Instant::now();
        let mut r = Rates::default();
        assert!(r.update(t0, || t.snapshot()).is_empty());
        // Bob links a minute later and sends 40 frames in 20 s; nobody asks meanwhile.
        t.linked(7, "bob", t0 + Duration::from_secs(60));
        for _ in 0..40 {
            t.inbound(7, 100);
        }
        let later = r.update(t0 + Duration::from_secs(80), || t.snapshot());
        assert_eq!(later[0].messages_in, 40);
        assert_eq!(
            later[0].messages_in_per_s, 2,
            "40 frames over the 20 s since link up"
        );
        assert_eq!(later[0].bytes_in_per_s, 200);
        assert_eq!(later[0].messages_out_per_s, 0);
    }
}
