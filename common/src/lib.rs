//! Shared vocabulary of quorumd and quorumctl, and the pure election core.
//!
//! # Layout
//!
//! - [`types`]: member identity, rank, roles and member states.
//! - [`time`]: [`time::Millis`], the monotonic milliseconds every pure function takes as input.
//! - [`wire`]: daemon-to-daemon frames (UDP discovery and TCP peer links) and their codec.
//! - [`control`]: quorumctl-to-daemon requests, replies and events (newline-delimited JSON).
//! - [`rules`]: the timer rules, shared by the daemon's configuration and the core.
//! - [`election`]: the election state machine. Time is an input, outputs are data.
//!
//! Nothing in this crate does IO, reads a clock or draws global randomness: that is what lets
//! the election be simulated deterministically with thousands of seeds.
#![deny(missing_docs)]

pub mod codec;
pub mod control;
pub mod election;
pub mod rules;
pub mod time;
pub mod types;
pub mod wire;
