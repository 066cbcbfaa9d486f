//! Locating the workspace's binaries next to the test executable (like chitchat-test's
//! `cargo_bin`): tests live in `target/<profile>/deps/`, binaries in `target/<profile>/`.

use std::path::PathBuf;

/// The path of the workspace binary `name`; panics with the fix when it was not built.
pub fn cargo_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    let mut dir = exe
        .parent()
        .expect("the test binary lives in a directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} not found: run cargo build --workspace --bins first",
        bin.display()
    );
    bin
}

/// The `quorumd` daemon binary.
pub fn quorumd_bin() -> PathBuf {
    cargo_bin("quorumd")
}

/// The `quorumctl` client binary.
pub fn quorumctl_bin() -> PathBuf {
    cargo_bin("quorumctl")
}
