//! Drives [`Election::handle`] with an arbitrary input sequence decoded from bytes, and checks
//! what must hold after every step: no panic, the known epoch never decreases, the member
//! table holds no more entries than members ever introduced.
//!
//! Shared by the plain test (`common/tests/fuzz_election.rs`, random bytes from fixed seeds)
//! and the cargo-fuzz target (`fuzz/fuzz_targets/election.rs`).

use common::election::{Config, Election, Input, Memory, Output};
use common::time::Millis;
use common::types::{MemberId, MemberInfo, MemberState, Rank, Role, Strategy};
use common::wire::{Beat, Grant, Message, PeerAddr};
use std::collections::BTreeSet;

/// Reads numbers from the fuzz input; zeros once it is used up.
pub struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    /// Reads from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Bytes(data)
    }
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }
    fn u64(&mut self) -> u64 {
        // Mostly small or extreme numbers: those are where the arithmetic breaks.
        match self.u8() % 8 {
            0 => 0,
            1 => u64::MAX,
            2 => u64::MAX - u64::from(self.u8()),
            3 => u64::MAX / 4 + u64::from(self.u8()) - 128,
            4 | 5 => u64::from(self.u8()),
            _ => (0..8).fold(0, |n, _| n << 8 | u64::from(self.u8())),
        }
    }
    fn epoch(&mut self, base: u64) -> u64 {
        // Near the epochs in play, or anything.
        if self.bool() {
            base.saturating_add(u64::from(self.u8() % 4))
        } else {
            self.u64()
        }
    }
    fn text(&mut self) -> String {
        let n = usize::from(self.u8() % 12);
        (0..n)
            .map(|_| match self.u8() {
                b @ b'a'..=b'z' => char::from(b),
                0 => '\0',
                1 => '\n',
                2 => ' ',
                3 => 'é',
                b => char::from(b'a' + b % 4),
            })
            .collect()
    }
}

/// The node under test, the members it may hear from, and what is checked after each step.
pub struct Harness {
    e: Election,
    now: u64,
    /// Ids a message may come from (the node's own among them).
    pool: Vec<MemberId>,
    /// Every id ever introduced to the node (hellos, messages, remembered members).
    introduced: BTreeSet<MemberId>,
    epoch: u64,
    pub steps: usize,
    /// Roles the node took (to see that the inputs reach past the start).
    pub roles: BTreeSet<&'static str>,
}

const ME: MemberId = 1;
/// Most distinct senders: keeps the pool small enough for senders to meet again.
const POOL: usize = 12;

fn info(b: &mut Bytes, id: MemberId) -> MemberInfo {
    let name = if b.bool() {
        format!("n{}", b.u8() % 6)
    } else {
        b.text()
    };
    MemberInfo {
        id,
        name: name.clone(),
        addr: if b.bool() {
            "127.0.0.1".into()
        } else {
            b.text()
        },
        port: u16::from(b.u8()) | 0x1000,
        rank: Rank {
            priority: i32::from(b.u8() as i8) * if b.bool() { 1 } else { i32::MAX / 128 },
            key: b.u64(),
            tiebreak: if b.bool() { name } else { b.text() },
            id,
        },
        started_ms: b.u64(),
        witness: b.u8() % 8 == 0,
        strategy: if b.u8() % 16 == 0 {
            Strategy::Port
        } else {
            Strategy::Age
        },
    }
}

impl Harness {
    /// A node started from remembered members and an epoch taken from the input.
    pub fn new(b: &mut Bytes) -> Harness {
        let cfg = if b.bool() {
            Config::fast()
        } else {
            Config::default()
        };
        let cfg = Config {
            expect: usize::from(b.u8() % 4),
            preempt: b.bool(),
            witness: b.u8() % 8 == 0,
            ..cfg
        };
        let me = MemberInfo {
            id: ME,
            name: "me".into(),
            addr: "127.0.0.1".into(),
            port: 7000,
            rank: Rank {
                priority: 0,
                key: 1_000,
                tiebreak: "me".into(),
                id: ME,
            },
            started_ms: 1_000,
            witness: cfg.witness,
            strategy: Strategy::Age,
        };
        let mut introduced = BTreeSet::new();
        let mut members = Vec::new();
        for i in 0..b.u8() % 4 {
            let id = 100 + u64::from(i);
            introduced.insert(id);
            let state = match b.u8() % 3 {
                0 => MemberState::Alive,
                1 => MemberState::Lost,
                _ => MemberState::Dispatched,
            };
            members.push((info(b, id), state));
        }
        let memory = Memory {
            members,
            epoch: if b.bool() { b.u64() } else { 0 },
            vote: None,
            bound: if b.bool() {
                vec![introduced.iter().copied().chain([ME, 99]).collect()]
            } else {
                Vec::new()
            },
            shown_overflow: b.u8() == 0,
            written_by: if b.bool() { Some(99) } else { None },
            ghosts: if b.bool() { vec![98, ME] } else { Vec::new() },
        };
        let now = u64::from(b.u8()) * 1000;
        let e = Election::new(cfg, me, memory, Millis(now));
        let epoch = e.epoch();
        let mut pool = vec![ME, 100, 101, 102];
        pool.extend(introduced.iter().copied());
        Harness {
            e,
            now,
            pool,
            introduced,
            epoch,
            steps: 0,
            roles: BTreeSet::new(),
        }
    }

    fn sender(&mut self, b: &mut Bytes) -> MemberId {
        let i = usize::from(b.u8());
        if i < 224 || self.pool.len() >= POOL {
            self.pool[i % self.pool.len()]
        } else {
            let id = b.u64();
            self.pool.push(id);
            id
        }
    }

    /// Feeds every input the bytes describe, checking after each.
    pub fn run(b: &mut Bytes) -> Harness {
        let mut h = Harness::new(b);
        while !b.0.is_empty() && h.steps < 2_000 {
            h.step(b);
        }
        h
    }

    fn input(&mut self, input: Input) {
        if let Input::Hello(i)
        | Input::Message {
            msg: Message::Hello(i),
            ..
        } = &input
        {
            self.introduced.insert(i.id);
        }
        if let Input::Message { from, .. } = &input {
            self.introduced.insert(*from);
        }
        if let Input::Message {
            msg: Message::Members { members },
            ..
        } = &input
        {
            self.introduced.extend(members.iter().map(|i| i.id));
        }
        self.e.handle(Millis(self.now), input);
    }

    fn beat(&mut self, b: &mut Bytes) -> Beat {
        let known = self.e.epoch();
        let candidate = self.sender(b);
        let mut beat = Beat {
            seq: b.u64(),
            echo: b.u64(),
            role: match b.u8() % 5 {
                0 => Role::Starting,
                1 => Role::Master,
                2 => Role::Slave,
                3 => Role::Inquorate,
                _ => Role::Dispatching,
            },
            eligible: b.bool(),
            priority: 0,
            candidacy: b.bool().then(|| b.epoch(known)),
            master: b.bool(),
            grant: b.bool().then(|| Grant {
                candidate,
                epoch: b.epoch(known),
            }),
            epoch: b.epoch(known),
            voted: b.epoch(known),
            voting: b.bool(),
            quiet_ms: u64::from(b.u8()) * 8,
            view: if b.bool() { 0 } else { b.u64() },
            base: if b.bool() { 0 } else { b.u64() },
            following: b
                .bool()
                .then(|| self.pool[usize::from(b.u8()) % self.pool.len()]),
            want: false,
            gap_ms: 0,
        };
        // Read last, so that the stored seeds keep decoding to the beats they were found as.
        beat.priority = i32::from(b.u8() % 3) - 1;
        beat.want = b.bool();
        beat.gap_ms = if b.bool() {
            u64::MAX
        } else {
            u64::from(b.u8()) * 100
        };
        beat
    }

    fn step(&mut self, b: &mut Bytes) {
        self.steps += 1;
        match b.u8() % 16 {
            0..=2 => {
                // Monotone time: mostly a heartbeat or so, sometimes a long pause.
                let d = match b.u8() % 8 {
                    7 => u64::from(b.u8()) * 1000,
                    _ => u64::from(b.u8()) * 4,
                };
                self.now = self.now.saturating_add(d);
                self.input(Input::Tick);
            }
            3 => {
                let id = self.sender(b);
                let i = info(b, id);
                self.input(Input::Hello(i));
            }
            4 => {
                let id = self.sender(b);
                let i = info(b, id);
                let from = if b.u8() % 8 == 0 { self.sender(b) } else { id };
                self.input(Input::Message {
                    from,
                    msg: Message::Hello(i),
                });
            }
            5..=9 => {
                let from = self.sender(b);
                let beat = self.beat(b);
                self.input(Input::Message {
                    from,
                    msg: Message::Beat(beat),
                });
            }
            10 => {
                let from = self.sender(b);
                let epoch = b.epoch(self.e.epoch());
                self.input(Input::Message {
                    from,
                    msg: Message::Leave { epoch },
                });
            }
            11 => {
                let from = self.sender(b);
                let id = self.sender(b);
                self.input(Input::Message {
                    from,
                    msg: Message::Forget { id },
                });
            }
            12 if b.bool() => {
                let from = self.sender(b);
                let members = (0..b.u8() % 4)
                    .map(|_| {
                        let id = self.sender(b);
                        info(b, id)
                    })
                    .collect();
                self.input(Input::Message {
                    from,
                    msg: Message::Members { members },
                });
            }
            12 => {
                let from = self.sender(b);
                let peers = (0..b.u8() % 4)
                    .map(|_| PeerAddr {
                        addr: b.text(),
                        port: u16::from(b.u8()),
                    })
                    .collect();
                self.input(Input::Message {
                    from,
                    msg: Message::Peers { peers },
                });
            }
            13 => {
                let id = self.sender(b);
                self.input(Input::Crashed(id));
            }
            14 => {
                let held = b.bool();
                self.input(Input::Held(held));
            }
            _ => {
                // Local commands, as the control socket gives them.
                let name = if b.bool() {
                    format!("n{}", b.u8() % 6)
                } else {
                    b.text()
                };
                match b.u8() % 16 {
                    0..=6 => {
                        let _ = self.e.forget(Millis(self.now), &name);
                    }
                    7..=12 => {
                        let _ = self.e.rename(Millis(self.now), &name);
                    }
                    13 | 14 => {
                        let _ = self.e.status(Millis(self.now));
                        let _ = self.e.memory();
                        let _ = self.e.next_deadline();
                    }
                    // Leaving ends the run: rarely.
                    _ if b.u8() % 8 == 0 => self.e.dispatch(Millis(self.now)),
                    _ => {}
                }
            }
        }
        self.check();
    }

    fn check(&mut self) {
        while let Some(out) = self.e.poll_output() {
            if let Output::RoleChanged { role, .. } = out {
                self.roles.insert(role.as_str());
            }
            if let Output::RoleChanged { epoch, .. } | Output::MasterChanged { epoch, .. } = out {
                assert!(
                    epoch <= self.e.epoch(),
                    "announced epoch {epoch} above the known one"
                );
            }
        }
        let epoch = self.e.epoch();
        assert!(
            epoch >= self.epoch,
            "the known epoch went down from {} to {epoch} (step {})",
            self.epoch,
            self.steps
        );
        self.epoch = epoch;
        assert!(
            self.e.memory().epoch >= epoch,
            "the remembered epoch is below the known one"
        );
        let members = self.e.status(Millis(self.now)).members.len();
        assert!(
            members <= 1 + self.introduced.len(),
            "{members} members listed, only {} ever introduced",
            self.introduced.len()
        );
        let remembered = self.e.memory().members.len();
        assert!(remembered <= self.introduced.len());
    }
}
