//! `Election::handle` over arbitrary input sequences (the plain-`cargo test` twin of the
//! cargo-fuzz target `fuzz/fuzz_targets/election.rs`): random inputs from fixed seeds, so a
//! failure is reproducible. Checks: no panic, the known epoch never decreases, the member
//! table never lists more members than were ever introduced.

mod election_harness;

use election_harness::{Bytes, Harness};

/// splitmix64: a fixed, dependency-free source of random bytes.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed;
    (0..len.div_ceil(8))
        .flat_map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)).to_le_bytes()
        })
        .take(len)
        .collect()
}

#[test]
fn arbitrary_input_sequences_never_panic_nor_lower_the_epoch() {
    let mut roles = std::collections::BTreeMap::new();
    let mut steps = 0;
    for seed in 0..3000u64 {
        let data = random_bytes(seed, 256 + (seed as usize % 8) * 512);
        let result = std::panic::catch_unwind(|| Harness::run(&mut Bytes::new(&data)));
        let Ok(h) = result else {
            panic!("seed {seed} failed (see the panic above)");
        };
        steps += h.steps;
        for r in h.roles {
            *roles.entry(r).or_insert(0) += 1;
        }
    }
    eprintln!("{steps} inputs; runs reaching each role: {roles:?}");
}

/// The committed seeds of the fuzz target (and every crash it found) replay without failure.
#[test]
fn fuzz_seeds_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/election");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/seeds/election") {
        let data = std::fs::read(entry.expect("entry").path()).expect("seed");
        Harness::run(&mut Bytes::new(&data));
        n += 1;
    }
    assert!(n > 0, "no seeds in {}", dir.display());
}
