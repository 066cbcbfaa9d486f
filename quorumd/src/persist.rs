//! The state file written off the event loop, with the frames that must follow a write held
//! back until it is on disk.
//!
//! The core asks for its memory to be durable before any frame of the same round leaves the
//! host (a beat may show a view that binds the next incarnation: docs/ALGORITHM.md, "A
//! restart is bound by what it agreed"). Written on the event loop, each write (then a temp
//! file, two fsyncs, a rename) stopped the whole daemon for as long as the disk took: beats were
//! not read nor sent meanwhile. A hundred daemons sharing one disk all write at the same
//! moments (a view changes everywhere at once), so each waited for the others' fsyncs and
//! starting them together took three times as long with the state directory on disk as on
//! tmpfs (BENCHMARKS.md). One slow disk would likewise make a single daemon's beats late.
//!
//! So a thread of its own writes, always the newest memory (a write that is still waiting
//! when a newer one comes is skipped: each holds the whole state), and reports the number of
//! the last one done. [`Outbox`] keeps every frame produced after a memory in order until the
//! write of that memory (or of a newer one) is done; frames with nothing to wait for leave at
//! once. The guarantee is the one the core asks for, and a held frame is, to its receiver,
//! only a late one (safety never depends on timing: a master's lease is dated from when its
//! beat was *produced*, which is earlier than when it left, so a late beat only makes the
//! lease more cautious).

use crate::state::{Saved, StateFile};
use common::types::{MemberId, MemberInfo};
use common::wire::Message;
use std::collections::VecDeque;
use std::sync::mpsc;
use tokio::sync::watch;

/// Frames held at most while a write is in flight (a write takes milliseconds; beyond this
/// the newest are dropped, as a full link queue drops them: beats are repeated).
const MAX_HELD: usize = 65_536;

/// What waits for a write.
#[derive(Debug)]
pub enum Held {
    /// A frame to a member.
    Send(MemberId, Message),
    /// Our hello changed (rename).
    Announce(MemberInfo),
}

/// The writer thread's handle: submit memories, learn which write is done.
pub struct Persister {
    jobs: mpsc::Sender<(u64, Saved)>,
    done: watch::Receiver<u64>,
}

impl Persister {
    /// Starts the writer thread for `file`. None (with an error logged) if the thread cannot
    /// start: the caller then writes on its own thread, as before.
    pub fn start(file: StateFile) -> Option<Persister> {
        let (jobs, rx) = mpsc::channel::<(u64, Saved)>();
        let (done_tx, done) = watch::channel(0u64);
        let spawned = std::thread::Builder::new()
            .name("quorumd-state".into())
            .spawn(move || {
                while let Ok(mut job) = rx.recv() {
                    // Only the newest memory matters: it holds the whole state.
                    while let Ok(newer) = rx.try_recv() {
                        job = newer;
                    }
                    let (generation, saved) = job;
                    // Errors are logged and the election goes on, as when the write was
                    // synchronous: the frames it held leave anyway.
                    file.save(&saved);
                    done_tx.send_replace(generation);
                }
            });
        match spawned {
            Ok(_) => Some(Persister { jobs, done }),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the state file's writer thread: writing on the event loop");
                None
            }
        }
    }

    /// Queues `saved` as write number `generation` (numbers grow).
    fn submit(&self, generation: u64, saved: Saved) -> bool {
        self.jobs.send((generation, saved)).is_ok()
    }

    /// The number of the last write done.
    fn written(&self) -> u64 {
        *self.done.borrow()
    }
}

/// The frames of the driver, in order, each leaving once the memory it follows is on disk.
pub struct Outbox {
    persister: Option<Persister>,
    /// Number of the newest memory submitted.
    submitted: u64,
    /// Frames in the order produced, each with the write it waits for.
    held: VecDeque<(u64, Held)>,
    /// Frames were dropped because too many were held (reported once per burst).
    dropped: bool,
}

impl Outbox {
    /// An outbox writing through `persister`; None: nothing is written off the loop (no state
    /// directory, or no thread), and every frame leaves at once.
    pub fn new(persister: Option<Persister>) -> Outbox {
        Outbox {
            persister,
            submitted: 0,
            held: VecDeque::new(),
            dropped: false,
        }
    }

    /// Submits `saved` to be written; false if there is no writer thread (the caller writes
    /// it itself, synchronously).
    pub fn remember(&mut self, saved: &Saved) -> bool {
        let Some(p) = &self.persister else {
            return false;
        };
        let generation = self.submitted + 1;
        if !p.submit(generation, saved.clone()) {
            // The thread is gone (it never panics; only at exit): write synchronously.
            self.persister = None;
            return false;
        }
        self.submitted = generation;
        true
    }

    /// `frame`, to leave through `out` now if no write is in flight before it, else held.
    pub fn push(&mut self, frame: Held, out: &mut impl FnMut(Held)) {
        self.release(out);
        let written = self.persister.as_ref().map_or(u64::MAX, Persister::written);
        if self.held.is_empty() && written >= self.submitted {
            out(frame);
            return;
        }
        if self.held.len() >= MAX_HELD {
            if !self.dropped {
                tracing::warn!(
                    "the state file's writes are slow: frames dropped while they wait (beats are repeated)"
                );
            }
            self.dropped = true;
            return;
        }
        self.held.push_back((self.submitted, frame));
    }

    /// Lets out, in order, the frames whose write is done.
    pub fn release(&mut self, out: &mut impl FnMut(Held)) {
        let written = self.persister.as_ref().map_or(u64::MAX, Persister::written);
        while self.held.front().is_some_and(|(g, _)| *g <= written) {
            if let Some((_, frame)) = self.held.pop_front() {
                out(frame);
            }
        }
        if self.held.is_empty() {
            self.dropped = false;
        }
    }

    /// Whether frames wait for a write.
    pub fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Resolves when the last write done changes (never, without a writer thread).
    pub async fn written_changed(&mut self) {
        match &mut self.persister {
            Some(p) => {
                if p.done.changed().await.is_err() {
                    // The thread ended: nothing will change any more.
                    std::future::pending::<()>().await
                }
            }
            None => std::future::pending::<()>().await,
        }
    }

    /// Waits until every submitted memory is written (at most `limit`), then lets every held
    /// frame out: the goodbye of a dispatch must leave after what it follows is on disk.
    pub async fn settle(&mut self, limit: std::time::Duration, out: &mut impl FnMut(Held)) {
        let deadline = tokio::time::Instant::now() + limit;
        while let Some(p) = &mut self.persister {
            if *p.done.borrow_and_update() >= self.submitted {
                break;
            }
            match tokio::time::timeout_at(deadline, p.done.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    tracing::warn!(
                        "the state file's last write is not done: frames waiting for it are dropped"
                    );
                    self.held.clear();
                    return;
                }
            }
        }
        self.release(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn beat(n: u64) -> Held {
        Held::Send(n, Message::Leave { epoch: n })
    }

    fn to(n: &Held) -> u64 {
        match n {
            Held::Send(to, _) => *to,
            Held::Announce(_) => 0,
        }
    }

    #[tokio::test]
    async fn frames_after_a_memory_leave_only_once_it_is_on_disk_and_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StateFile::new(dir.path(), "n1");
        let mut outbox = Outbox::new(Persister::start(file.clone()));
        // Each frame as it leaves, with the epoch on disk at that moment.
        let sent = std::cell::RefCell::new(Vec::new());
        let mut out = |h: Held| {
            let on_disk = file.load().map_or(0, |s| s.memory.epoch);
            sent.borrow_mut().push((to(&h), on_disk));
        };
        outbox.push(beat(1), &mut out);
        assert_eq!(*sent.borrow(), vec![(1, 0)], "no write in flight: at once");
        for epoch in [7, 8] {
            let mut saved = Saved::default();
            saved.memory.epoch = epoch;
            assert!(outbox.remember(&saved));
            outbox.push(beat(epoch), &mut out);
        }
        tokio::time::timeout(Duration::from_secs(10), async {
            while outbox.holding() {
                outbox.written_changed().await;
                outbox.release(&mut out);
            }
        })
        .await
        .expect("the writes are done within 10 s");
        // 7 left once epoch 7 (or the newer 8) was on disk, 8 once 8 was: in order.
        let sent = sent.borrow().clone();
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[1].0, 7);
        assert!(sent[1].1 >= 7, "frame 7 left before its memory was on disk");
        assert_eq!(
            sent[2],
            (8, 8),
            "frame 8 left before its memory was on disk"
        );
        // A frame pushed after the writes are done leaves at once.
        let mut late = Vec::new();
        outbox.push(beat(9), &mut |h| late.push(to(&h)));
        assert_eq!(late, vec![9]);
    }

    #[tokio::test]
    async fn settle_waits_for_the_last_write_and_lets_everything_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = StateFile::new(dir.path(), "n1");
        let mut outbox = Outbox::new(Persister::start(file.clone()));
        let mut sent = Vec::new();
        for epoch in 1..=20 {
            let mut saved = Saved::default();
            saved.memory.epoch = epoch;
            assert!(outbox.remember(&saved));
            outbox.push(beat(epoch), &mut |h| sent.push(to(&h)));
        }
        outbox
            .settle(Duration::from_secs(10), &mut |h| sent.push(to(&h)))
            .await;
        assert_eq!(sent, (1..=20).collect::<Vec<_>>());
        assert!(!outbox.holding());
        assert_eq!(
            file.load().expect("readable").memory.epoch,
            20,
            "the newest memory is the one on disk"
        );
    }

    #[tokio::test]
    async fn without_a_writer_thread_frames_leave_at_once() {
        let mut outbox = Outbox::new(None);
        assert!(
            !outbox.remember(&Saved::default()),
            "the caller writes itself"
        );
        let mut sent = Vec::new();
        outbox.push(beat(1), &mut |h| sent.push(to(&h)));
        assert_eq!(sent, vec![1]);
    }
}
