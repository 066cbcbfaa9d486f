//! The fuzz seeds of the daemon's decoders (`fuzz/seeds/`, and every crash found, kept there
//! as a regression) run in `cargo test`: control requests, the state file, durations, config
//! files.

use std::path::Path;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let files = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    files
        .flatten()
        .map(|f| std::fs::read(f.path()).expect("read seed"))
        .collect()
}

#[test]
fn control_request_seeds_decode_without_panic() {
    let all = seeds("control_request");
    assert!(!all.is_empty());
    let ok = all
        .iter()
        .filter(|d| serde_json::from_slice::<common::control::Request>(d).is_ok())
        .count();
    assert!(ok > 0, "no seed is a valid request");
}

#[test]
fn state_file_seeds_load_or_fail_without_panic() {
    for d in seeds("state_file") {
        let _ = serde_json::from_slice::<quorumd::state::Saved>(&d);
    }
}

#[test]
fn duration_seeds_parse_or_fail_without_panic() {
    for d in seeds("duration") {
        if let Ok(s) = std::str::from_utf8(&d) {
            let _ = quorumd::config::parse_duration(s);
        }
    }
}

#[test]
fn config_seeds_give_settings_or_an_error_without_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ok = 0;
    for (i, d) in seeds("config").iter().enumerate() {
        let path = dir.path().join(format!("{i}.toml"));
        std::fs::write(&path, d).expect("write seed");
        let args = ["quorumd", "--config", path.to_str().expect("utf-8 path")];
        if quorumd::config::Settings::parse_from(args, &|_| None).is_ok() {
            ok += 1;
        }
    }
    assert!(ok > 0, "no seed is a valid config file");
}
