//! The config file (`--config FILE`): any bytes in the file give settings or a clear error,
//! never a panic. The input is written to a per-process file and read through the same path
//! as `quorumd --config FILE` (TOML parsing, unknown keys, every option's own parser, the
//! merge with defaults and the validation).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("quorum-fuzz-config-{}.toml", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let args = ["quorumd", "--config", path.to_str().unwrap_or_default()];
    let _ = quorumd::config::Settings::parse_from(args, &|_| None);
});
