//! `Election::handle` over arbitrary input sequences: hellos, beats, leaves, forgets and
//! crashes from arbitrary senders with arbitrary fields, monotone ticks and local commands.
//! No panic, the known epoch never decreases, the member table stays bounded. The same harness
//! runs in `cargo test` (common/tests/fuzz_election.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../common/tests/election_harness/mod.rs"]
mod harness;

fuzz_target!(|data: &[u8]| {
    let _ = harness::Harness::run(&mut harness::Bytes::new(data));
});
