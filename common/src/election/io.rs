//! What goes into the election core and what comes out of it.

use crate::control::MemberChange;
use crate::time::Millis;
use crate::types::{MemberId, MemberInfo, Role};
use crate::wire::Message;

/// An event for [`super::Election::handle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Time passed (the driver sleeps until [`super::Election::next_deadline`], then ticks).
    Tick,
    /// A member said hello (discovery datagram or the first frame of a link).
    Hello(MemberInfo),
    /// A frame from a linked member (`Beat`, `Leave` or `Forget`; a `Hello` is treated like
    /// [`Input::Hello`], `Peers` is the transport's business and ignored here).
    Message {
        /// The sender, as identified by its link.
        from: MemberId,
        /// The payload.
        msg: Message,
    },
    /// The member's process is certainly gone: its host closed its links and nothing listens
    /// on its port any more. It cannot be master anywhere, so its votes are void at once.
    Crashed(MemberId),
    /// The operator or a failing health check holds this node back (`true`) or lets it
    /// stand again (`false`). A held node still votes but is never a candidate; a held master
    /// hands over like a preempted one.
    Held(bool),
}

/// An action for the driver, drained with [`super::Election::take_round`] (or one by one with
/// [`super::Election::poll_output`]) after every call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send `msg` to member `to` over its link; dropping it is allowed (beats repeat).
    Send {
        /// Recipient.
        to: MemberId,
        /// Payload.
        msg: Message,
    },
    /// This node's info changed (rename): say hello again on every link and by broadcast.
    Announce(MemberInfo),
    /// This node's role changed: run the hook, tell followers, update systemd's status.
    RoleChanged {
        /// The new role.
        role: Role,
        /// The previous role.
        previous: Role,
        /// The master this node follows now (itself when master).
        master: Option<String>,
        /// The epoch this node knows.
        epoch: u64,
        /// When role is master: the lease end. A master hook must not start after it.
        master_until: Option<Millis>,
    },
    /// The master this node follows changed while its role stayed the same: run the slave
    /// hook so it can repoint at the new master.
    MasterChanged {
        /// The new master.
        master: Option<String>,
        /// The epoch this node knows.
        epoch: u64,
    },
    /// Something happened to a member (for logs and `follow`).
    Member {
        /// The member's current name.
        name: String,
        /// What happened.
        change: MemberChange,
    },
    /// A member was refused (other strategy, duplicate name): log loudly, it never votes.
    Refused {
        /// Its name.
        name: String,
        /// Its address.
        addr: String,
        /// Why, in a sentence.
        reason: String,
    },
    /// The membership worth remembering across restarts changed: persist
    /// [`super::Election::memory`].
    Remember,
}
