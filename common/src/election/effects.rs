//! The one mapping from the core's [`Output`]s to what a driver does: the daemon
//! (`quorumd/src/node.rs`) and the simulator (`sim.rs`) both implement [`Effects`] and apply a
//! drained [`Round`], so the order that safety needs is written once: the memory is persisted
//! before anything of the same round leaves the host (a beat may show a view that binds the
//! next incarnation, docs/ALGORITHM.md "A restart is bound by what it agreed"); local effects
//! (hooks, events, logs) go first, without waiting for the disk.

use super::{Election, Memory, Output};
use crate::control::MemberChange;
use crate::time::Millis;
use crate::types::{MemberId, MemberInfo, Role};
use crate::wire::Message;

/// A change of this node's role (the fields of [`Output::RoleChanged`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleChange {
    /// The new role.
    pub role: Role,
    /// The previous role.
    pub previous: Role,
    /// The master this node follows now (itself when master).
    pub master: Option<String>,
    /// The epoch this node knows.
    pub epoch: u64,
    /// When role is master: the lease end. A master hook must not start after it.
    pub master_until: Option<Millis>,
}

/// What a driver does with the core's outputs.
pub trait Effects {
    /// Persist `memory` durably before any later send or announce leaves the host: called
    /// before the sends of its round. (The simulator keeps it at once; the daemon writes on
    /// a thread of its own and holds every later frame until the write is done,
    /// `quorumd/src/persist.rs`.)
    fn remember(&mut self, memory: Memory);
    /// Send `msg` to member `to` over its link; dropping it is allowed (beats repeat).
    fn send(&mut self, to: MemberId, msg: Message);
    /// This node's info changed (rename): say hello again on every link and by broadcast.
    fn announce(&mut self, info: MemberInfo);
    /// This node's role changed: run the hook, tell followers.
    fn role_changed(&mut self, change: RoleChange);
    /// The master this node follows changed while its role stayed the same.
    fn master_changed(&mut self, master: Option<String>, epoch: u64);
    /// Something happened to a member (logs, `follow`).
    fn member(&mut self, name: String, change: MemberChange);
    /// A member was refused: log loudly.
    fn refused(&mut self, name: String, addr: String, reason: String);
}

/// The outputs of one round of calls into the core, drained with [`Election::take_round`].
#[derive(Debug)]
pub struct Round {
    outputs: std::collections::VecDeque<Output>,
    /// The memory to persist, when the round asked for it.
    memory: Option<Memory>,
}

impl Round {
    /// Carries the round out on `fx`. What stays on this host comes first, in order (role
    /// changes start their hooks, `follow` hears of them, member logs): nothing of it leaves
    /// the host, so it need not wait for the disk, and a failover's hook no longer waits for
    /// the state file's two fsyncs (BENCHMARKS.md, graceful stop). Then the memory, durably,
    /// then every send and announce in the order the core produced them: a beat may show a
    /// view that binds the next incarnation. Returns whether anything but plain sends
    /// happened (what status readers should see at once).
    pub fn apply(self, fx: &mut impl Effects) -> bool {
        let mut news = false;
        let mut wire = Vec::new();
        for out in self.outputs {
            news |= !matches!(out, Output::Send { .. });
            match out {
                Output::Send { .. } | Output::Announce(_) => wire.push(out),
                Output::RoleChanged {
                    role,
                    previous,
                    master,
                    epoch,
                    master_until,
                } => fx.role_changed(RoleChange {
                    role,
                    previous,
                    master,
                    epoch,
                    master_until,
                }),
                Output::MasterChanged { master, epoch } => fx.master_changed(master, epoch),
                Output::Member { name, change } => fx.member(name, change),
                Output::Refused { name, addr, reason } => fx.refused(name, addr, reason),
                Output::Remember => {}
            }
        }
        if let Some(memory) = self.memory {
            fx.remember(memory);
        }
        for out in wire {
            match out {
                Output::Send { to, msg } => fx.send(to, msg),
                Output::Announce(info) => fx.announce(info),
                _ => {}
            }
        }
        news
    }
}

impl Election {
    /// Drains every pending output, with the memory to persist when one of them asks for it.
    pub fn take_round(&mut self) -> Round {
        // The queue itself moves out: nothing copied on the heartbeat path.
        let outputs = std::mem::take(&mut self.outputs);
        let memory = outputs
            .iter()
            .any(|o| matches!(o, Output::Remember))
            .then(|| self.memory());
        Round { outputs, memory }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::MemberChange;

    /// Records the order of the calls.
    #[derive(Default)]
    struct Log(Vec<&'static str>);

    impl Effects for Log {
        fn remember(&mut self, _: Memory) {
            self.0.push("remember");
        }
        fn send(&mut self, _: MemberId, _: Message) {
            self.0.push("send");
        }
        fn announce(&mut self, _: MemberInfo) {
            self.0.push("announce");
        }
        fn role_changed(&mut self, _: RoleChange) {
            self.0.push("role");
        }
        fn master_changed(&mut self, _: Option<String>, _: u64) {
            self.0.push("master");
        }
        fn member(&mut self, _: String, _: MemberChange) {
            self.0.push("member");
        }
        fn refused(&mut self, _: String, _: String, _: String) {
            self.0.push("refused");
        }
    }

    #[test]
    fn local_effects_go_before_the_disk_and_the_disk_before_anything_on_the_wire() {
        let outputs = [
            Output::Send {
                to: 7,
                msg: Message::Leave { epoch: 1 },
            },
            Output::Member {
                name: "bob".into(),
                change: MemberChange::Dispatched,
            },
            Output::Remember,
            Output::RoleChanged {
                role: Role::Master,
                previous: Role::Slave,
                master: Some("alice".into()),
                epoch: 2,
                master_until: None,
            },
            Output::Send {
                to: 8,
                msg: Message::Leave { epoch: 1 },
            },
        ];
        let round = Round {
            outputs: outputs.into_iter().collect(),
            memory: Some(Memory::default()),
        };
        let mut log = Log::default();
        assert!(round.apply(&mut log));
        assert_eq!(log.0, ["member", "role", "remember", "send", "send"]);
    }
}
