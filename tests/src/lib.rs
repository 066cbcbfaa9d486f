//! Harness for end-to-end tests: real `quorumd` processes on loopback, driven with the real
//! `quorumctl`, exactly as a user would.
//!
//! - [`bins`]: where the built binaries are (`cargo build --workspace --bins` first).
//! - [`ports`]: fresh broadcast and TCP ports, so tests running in parallel never hear each other.
//! - [`cluster`]: a [`Cluster`] (temp dir, broadcast port, shared log registry) that starts nodes
//!   and polls conditions with a deadline, printing every node's log on failure.
//! - [`node`]: a [`Node`] handle (one `quorumd` process): signals, exit, `quorumctl`, status.
//! - [`hooks`]: tiny shell hook scripts that record their environment as lines in a file.
//! - [`proc`]: long-running `quorumctl` children (follow, wait) killed on drop, and line readers.

pub mod bins;
pub mod cluster;
pub mod hooks;
pub mod lab;
pub mod node;
pub mod ports;
pub mod proc;

pub use bins::{cargo_bin, quorumctl_bin, quorumd_bin};
pub use cluster::{Cluster, DEADLINE, Profile};
pub use hooks::{Hook, HookRun};
pub use node::Node;
pub use proc::{ChildGuard, Lines};

/// True (after printing why) when the test needs root and we are not root: the caller returns.
pub fn skip_unless_root(test: &str) -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        false
    } else {
        eprintln!("skipping {test}: needs root (running as uid {euid})");
        true
    }
}
