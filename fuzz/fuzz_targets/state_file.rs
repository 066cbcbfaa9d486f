//! The state file loader: garbage is an error, never a panic and never a blank state.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<quorumd::state::Saved>(data);
});
