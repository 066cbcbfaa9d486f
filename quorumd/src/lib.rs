//! quorumd: the daemon that elects one master on a LAN.
//!
//! # Layout
//!
//! - `config`: command line, environment and TOML config, resolved into [`config::Settings`].
//! - `node`: the driver: owns the pure election core and the transport; one `select!` loop.
//! - `discovery`, `links`: UDP broadcast hellos and TCP peer links (the transport).
//! - `control`: the Unix-socket control server quorumctl talks to.
//! - `hooks`: runs master/slave/notify scripts, one at a time, never blocking heartbeats.
//! - `logging`, `notify`: tracing setup and systemd's sd_notify protocol.
//! - `explain`: plain-text reasons for the log (why inquorate, remembered members).
//! - `flaps`: the log lines of members going `lost` and back over and over, counted.
//! - `state`: the election memory and a renamed name, kept across restarts.
//! - `timer`: the deadline timer of the driver and the hellos (a timerfd: one wake-up each).

pub mod checks;
pub mod config;
pub mod control;
pub mod explain;
pub mod flaps;
pub mod hold;
pub mod hooks;
pub mod keyfile;
pub mod links;
pub mod logging;
pub mod metrics;
pub mod node;
pub mod notify;
pub mod persist;
pub mod state;
pub mod timer;
