//! Command line, environment and config file: the original's syntax, precedence, validation,
//! the example config and the systemd unit.

use common::types::Strategy;
use quorumd::config::{ConfigError, Profile, Settings, Timers, parse_duration};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn parse_env(args: &[&str], env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let argv = std::iter::once("quorumd").chain(args.iter().copied());
    Settings::parse_from(argv, &move |k: &str| env.get(k).cloned())
}

fn parse(args: &[&str]) -> Result<Settings, ConfigError> {
    parse_env(args, &[])
}

fn ok(args: &[&str]) -> Settings {
    match parse(args) {
        Ok(s) => s,
        Err(e) => panic!("{args:?} should parse: {e}"),
    }
}

fn err(args: &[&str], env: &[(&str, &str)]) -> String {
    match parse_env(args, env) {
        Ok(s) => panic!("{args:?} {env:?} should be refused, got {s:?}"),
        Err(e) => e.to_string(),
    }
}

fn write_config(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("quorumd.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/quorumd.toml")
}

#[test]
fn defaults_equal_the_originals() {
    let s = ok(&[]);
    assert_eq!(s.address, ip("0.0.0.0"));
    assert_eq!(s.port, 8080);
    let original_default = ip("255.255.255.255"); // compared only: no test sends there
    assert_eq!(s.broadcast_address, original_default);
    assert_eq!(s.broadcast_port, 5595);
    assert_eq!(s.name, None);
    assert_eq!(s.strategy, Strategy::Age);
    assert_eq!(s.master_script, None);
    assert_eq!(s.slave_script, None);
    assert!(!s.debug);
    assert_eq!(s.cluster, "quorum");
    assert_eq!(s.expect, 0);
    assert_eq!(s.profile, Profile::Default);
    assert_eq!(
        s.timers,
        Timers {
            heartbeat_ms: 150,
            silence_ms: 900,
            lease_ms: 600,
            startup_ms: 650,
            announce_ms: 2000,
            hook_timeout_ms: 30_000,
        }
    );
    assert_eq!(s, Settings::default());
}

#[test]
fn the_original_readme_example_parses_with_repeated_debug_flag() {
    let s = ok(&[
        "0.0.0.0",
        "6170",
        "-d",
        "-m=i_am_master.py",
        "-s=i_am_slave.py",
        "-n=Dick",
        "-d",
    ]);
    assert_eq!(s.address, ip("0.0.0.0"));
    assert_eq!(s.port, 6170);
    assert!(s.debug);
    assert_eq!(s.master_script, Some(PathBuf::from("i_am_master.py")));
    assert_eq!(s.slave_script, Some(PathBuf::from("i_am_slave.py")));
    assert_eq!(s.name.as_deref(), Some("Dick"));
}

#[test]
fn all_four_positionals_parse_in_order() {
    let s = ok(&["127.0.0.1", "7001", "127.255.255.255", "7000"]);
    assert_eq!(s.address, ip("127.0.0.1"));
    assert_eq!(s.port, 7001);
    assert_eq!(s.broadcast_address, ip("127.255.255.255"));
    assert_eq!(s.broadcast_port, 7000);
}

#[test]
fn short_options_take_their_value_after_equals_or_a_space() {
    for args in [
        &["-n=Name", "-m=/x/master", "-s=/x/slave"][..],
        &["-n", "Name", "-m", "/x/master", "-s", "/x/slave"][..],
        &["-nName", "-m/x/master", "-s/x/slave"][..],
        &[
            "--name",
            "Name",
            "--master-script=/x/master",
            "--slave-script",
            "/x/slave",
        ][..],
    ] {
        let s = ok(args);
        assert_eq!(s.name.as_deref(), Some("Name"), "{args:?}");
        assert_eq!(
            s.master_script,
            Some(PathBuf::from("/x/master")),
            "{args:?}"
        );
        assert_eq!(s.slave_script, Some(PathBuf::from("/x/slave")), "{args:?}");
    }
}

#[test]
fn port_strategy_accepts_the_dashed_and_the_originals_underscore_flag() {
    assert_eq!(
        ok(&["--use-port-instead-of-life-time"]).strategy,
        Strategy::Port
    );
    assert_eq!(
        ok(&["--use_port_instead_of_life_time"]).strategy,
        Strategy::Port
    );
    assert_eq!(ok(&["--strategy", "port"]).strategy, Strategy::Port);
    assert_eq!(ok(&[]).strategy, Strategy::Age);
}

#[test]
fn every_new_flag_parses() {
    let s = ok(&[
        "--socket",
        "/tmp/q.sock",
        "--cluster",
        "prod",
        "--peer",
        "10.0.0.2:8080",
        "--peer",
        "[::1]:9000",
        "--advertise",
        "10.0.0.1",
        "--expect",
        "3",
        "--witness",
        "--no-preempt",
        "--exit-on-minority",
        "--notify",
        "/x/notify",
        "--key-file",
        "/x/key",
        "--log-file",
        "/x/log",
        "--state-dir",
        "/x/state",
    ]);
    assert_eq!(s.socket, PathBuf::from("/tmp/q.sock"));
    assert_eq!(s.cluster, "prod");
    let peers: Vec<SocketAddr> = vec![
        "10.0.0.2:8080".parse().expect("addr"),
        "[::1]:9000".parse().expect("addr"),
    ];
    assert_eq!(s.peers, peers);
    assert_eq!(s.advertise, Some(ip("10.0.0.1")));
    assert_eq!(s.expect, 3);
    assert!(s.witness && s.no_preempt && s.exit_on_minority);
    assert_eq!(s.notify_script, Some(PathBuf::from("/x/notify")));
    assert_eq!(s.key_file, Some(PathBuf::from("/x/key")));
    assert_eq!(s.log_file, Some(PathBuf::from("/x/log")));
    assert_eq!(s.state_dir, Some(PathBuf::from("/x/state")));
}

#[test]
fn flags_override_environment() {
    let s = parse_env(
        &["-n", "flag", "--cluster", "fc", "--heartbeat", "100ms"],
        &[
            ("QUORUMD_NAME", "env"),
            ("QUORUMD_CLUSTER", "ec"),
            ("QUORUMD_HEARTBEAT", "50ms"),
        ],
    )
    .expect("parses");
    assert_eq!(s.name.as_deref(), Some("flag"));
    assert_eq!(s.cluster, "fc");
    assert_eq!(s.timers.heartbeat_ms, 100);
}

#[test]
fn environment_overrides_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        &dir,
        "name = \"file\"\nport = 7000\npeer = [\"10.0.0.9:1\"]\n[timers]\nlease = \"2s\"\n",
    );
    let s = parse_env(
        &["--config", path.to_str().expect("utf-8")],
        &[
            ("QUORUMD_NAME", "env"),
            ("QUORUMD_PORT", "7100"),
            ("QUORUMD_PEERS", "10.0.0.2:1, 10.0.0.3:2"),
            ("QUORUMD_LEASE", "900ms"),
        ],
    )
    .expect("parses");
    assert_eq!(s.name.as_deref(), Some("env"));
    assert_eq!(s.port, 7100);
    let peers: Vec<SocketAddr> = vec![
        "10.0.0.2:1".parse().expect("addr"),
        "10.0.0.3:2".parse().expect("addr"),
    ];
    assert_eq!(s.peers, peers);
    assert_eq!(s.timers.lease_ms, 900);
    assert_eq!(s.config_file, Some(path));
}

#[test]
fn flags_override_the_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        &dir,
        "name = \"file\"\nport = 7000\nwitness = false\nstrategy = \"age\"\n",
    );
    let s = parse(&[
        "127.0.0.1",
        "7200",
        "-n=flag",
        "--witness",
        "--use-port-instead-of-life-time",
        "--config",
        path.to_str().expect("utf-8"),
    ])
    .expect("parses");
    assert_eq!(s.name.as_deref(), Some("flag"));
    assert_eq!(s.port, 7200);
    assert!(s.witness);
    assert_eq!(s.strategy, Strategy::Port);
}

#[test]
fn config_file_is_found_through_quorumd_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        &dir,
        "name = \"file\"\ndebug = true\nuse_port_instead_of_life_time = true\n",
    );
    let s = parse_env(&[], &[("QUORUMD_CONFIG", path.to_str().expect("utf-8"))]).expect("parses");
    assert_eq!(s.name.as_deref(), Some("file"));
    assert!(s.debug);
    assert_eq!(s.strategy, Strategy::Port);
    assert_eq!(s.config_file, Some(path));
}

#[test]
fn environment_switches_can_turn_a_file_setting_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(&dir, "witness = true\n");
    let p = path.to_str().expect("utf-8");
    let s = parse_env(&["--config", p], &[("QUORUMD_WITNESS", "false")]).expect("parses");
    assert!(!s.witness);
    let s = parse_env(&["--config", p], &[]).expect("parses");
    assert!(s.witness);
}

#[test]
fn unknown_toml_key_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(&dir, "name = \"a\"\nmaster_scirpt = \"/x\"\n");
    let msg = err(&["--config", path.to_str().expect("utf-8")], &[]);
    assert!(msg.contains("master_scirpt"), "{msg}");
    assert!(msg.contains("quorumd.toml"), "{msg}");

    let path = write_config(&dir, "[timers]\nheartbeet = \"1s\"\n");
    let msg = err(&["--config", path.to_str().expect("utf-8")], &[]);
    assert!(msg.contains("heartbeet"), "{msg}");
}

#[test]
fn a_missing_config_file_is_an_error_naming_it() {
    let msg = err(&["--config", "/nonexistent/quorumd.toml"], &[]);
    assert!(msg.contains("/nonexistent/quorumd.toml"), "{msg}");
}

#[test]
fn invalid_values_name_the_flag_variable_or_key() {
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (&["--heartbeat", "2ms"], &[], "--heartbeat"),
        (&["--heartbeat", "soon"], &[], "--heartbeat"),
        (&["--lease", "300ms"], &[], "lease"),
        (&["--silence", "500ms"], &[], "--silence"),
        (&["--startup", "100ms"], &[], "--startup"),
        (&["--announce", "100ms"], &[], "--announce"),
        (&["--hook-timeout", "0s"], &[], "--hook-timeout"),
        (&["0.0.0.0", "0"], &[], "PORT"),
        (&["0.0.0.0", "70000"], &[], "PORT"),
        (&["not-an-ip"], &[], "ADDRESS"),
        (&["--expect", "1001"], &[], "--expect"),
        (&["-n", "a b"], &[], "--name"),
        (&["-n="], &[], "--name"),
        (&["--profile", "turbo"], &[], "--profile"),
        (&["--peer", "nohost"], &[], "--peer"),
        (&[], &[("QUORUMD_PORT", "abc")], "QUORUMD_PORT"),
        (&[], &[("QUORUMD_NAME", "tab\there")], "QUORUMD_NAME"),
        (&[], &[("QUORUMD_HEARTBEAT", "1ms")], "QUORUMD_HEARTBEAT"),
        (&[], &[("QUORUMD_WITNESS", "maybe")], "QUORUMD_WITNESS"),
        (&[], &[("QUORUMD_PEERS", "1.2.3.4")], "QUORUMD_PEERS"),
    ];
    for (args, env, needle) in cases {
        let msg = err(args, env);
        assert!(
            msg.contains(needle),
            "{args:?} {env:?}: {msg:?} should name {needle}"
        );
    }
}

#[test]
fn invalid_file_values_name_the_key_and_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(&dir, "[timers]\nheartbeat = \"1ms\"\n");
    let msg = err(&["--config", path.to_str().expect("utf-8")], &[]);
    assert!(msg.contains("timers.heartbeat"), "{msg}");
    assert!(msg.contains("quorumd.toml"), "{msg}");

    let path = write_config(&dir, "port = \"eighty\"\n");
    let msg = err(&["--config", path.to_str().expect("utf-8")], &[]);
    assert!(msg.contains("port"), "{msg}");
}

#[test]
fn usage_errors_exit_2_and_help_and_version_exit_0() {
    let code = |args: &[&str]| match parse(args) {
        Err(ConfigError::Cli(e)) => (e.exit_code(), e.render().to_string()),
        other => panic!("{args:?}: expected a clap outcome, got {other:?}"),
    };
    let (c, _) = code(&["--no-such-flag"]);
    assert_eq!(c, 2);
    let (c, help) = code(&["--help"]);
    assert_eq!(c, 0);
    for needle in [
        "Network:",
        "Election:",
        "Hooks:",
        "Timers:",
        "Logging and files:",
        "Examples:",
        "127.255.255.255",
        "default: 8080",
        "--use-port-instead-of-life-time",
    ] {
        assert!(help.contains(needle), "help lacks {needle:?}:\n{help}");
    }
    let (c, version) = code(&["--version"]);
    assert_eq!(c, 0);
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
}

#[test]
fn fast_profile_sets_fast_timers_and_flags_still_override_them() {
    let s = ok(&["--profile", "fast"]);
    assert_eq!(s.profile, Profile::Fast);
    assert_eq!(
        s.timers,
        Timers {
            heartbeat_ms: 20,
            silence_ms: 150,
            lease_ms: 120,
            startup_ms: 150,
            announce_ms: 500,
            hook_timeout_ms: 30_000,
        }
    );
    let s = parse_env(&["--heartbeat", "30ms"], &[("QUORUMD_PROFILE", "fast")]).expect("parses");
    assert_eq!(s.profile, Profile::Fast);
    assert_eq!(s.timers.heartbeat_ms, 30);
    assert_eq!(s.timers.lease_ms, 120);
}

#[test]
fn timer_flags_use_systemd_durations_and_bare_numbers_are_seconds() {
    let s = ok(&[
        "--silence",
        "1.5s",
        "--announce",
        "3",
        "--hook-timeout",
        "1min",
    ]);
    assert_eq!(s.timers.silence_ms, 1500);
    assert_eq!(s.timers.announce_ms, 3000);
    assert_eq!(s.timers.hook_timeout_ms, 60_000);
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
}

#[test]
fn default_socket_follows_the_user() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let with_xdg = parse_env(&[], &[("XDG_RUNTIME_DIR", "/run/user/1000")]).expect("parses");
    if root {
        assert_eq!(with_xdg.socket, PathBuf::from("/run/quorumd/quorumd.sock"));
        assert_eq!(with_xdg.state_dir, Some(PathBuf::from("/var/lib/quorumd")));
    } else {
        assert_eq!(
            with_xdg.socket,
            PathBuf::from("/run/user/1000/quorumd/quorumd.sock")
        );
        assert_eq!(with_xdg.state_dir, None);
    }
    let from_env = parse_env(&[], &[("QUORUMD_SOCKET", "/tmp/x.sock")]).expect("parses");
    assert_eq!(from_env.socket, PathBuf::from("/tmp/x.sock"));
}

#[test]
fn the_example_config_parses_to_the_defaults() {
    let path = example_config();
    let s = parse(&["--config", path.to_str().expect("utf-8")]).expect("example config parses");
    // The example is written for systemd, i.e. root: its socket and state_dir are root's.
    let expected = Settings {
        config_file: Some(path.clone()),
        socket: PathBuf::from("/run/quorumd/quorumd.sock"),
        state_dir: Some(PathBuf::from("/var/lib/quorumd")),
        ..Settings::default()
    };
    assert_eq!(s, expected);
}

#[test]
fn the_example_configs_commented_timer_keys_are_valid_defaults() {
    let text = std::fs::read_to_string(example_config()).expect("read example");
    let (head, timers) = text.split_once("[timers]").expect("has a [timers] table");
    // Uncomment `#key = value` lines of the timers table: they must parse to the same defaults.
    let uncommented: String = timers
        .lines()
        .map(|l| match l.strip_prefix('#') {
            Some(rest)
                if rest.starts_with(|c: char| c.is_ascii_lowercase()) && rest.contains(" = ") =>
            {
                rest.to_string()
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(uncommented.contains("\nheartbeat = "), "{uncommented}");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(&dir, &format!("{head}[timers]{uncommented}\n"));
    let s = parse(&["--config", path.to_str().expect("utf-8")]).expect("parses");
    assert_eq!(s.timers, Timers::default());
}

#[test]
fn the_systemd_unit_verifies() {
    let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(analyze) = analyze else {
        eprintln!("skipping: systemd-analyze is not installed");
        return;
    };
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/quorumd.service"),
    )
    .expect("read unit");
    assert!(unit.contains("ExecStart=/usr/local/bin/quorumd "), "{unit}");
    // `systemctl reload` = SIGHUP = re-read the config (never fatal).
    assert!(
        unit.contains("ExecReload=/bin/kill -HUP $MAINPID"),
        "{unit}"
    );
    let unit = unit.replace("/usr/local/bin/quorumd", env!("CARGO_BIN_EXE_quorumd"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("quorumd.service");
    std::fs::write(&path, unit).expect("write unit");
    let out = std::process::Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_option_is_declared_once_with_its_variable_and_documented() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/CONFIG.md"))
            .expect("read docs/CONFIG.md");
    let cmd = quorumd::config::command();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        let env = arg
            .get_env()
            .unwrap_or_else(|| panic!("option {id} has no environment variable"))
            .to_string_lossy()
            .into_owned();
        assert!(env.starts_with("QUORUMD_"), "{id}: {env}");
        assert!(docs.contains(&env), "docs/CONFIG.md does not mention {env}");
    }
}

#[test]
fn every_config_key_is_in_the_docs_and_in_the_example_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let docs = std::fs::read_to_string(root.join("docs/CONFIG.md")).expect("read docs");
    let example = std::fs::read_to_string(example_config()).expect("read example");
    let (head, timers) = example.split_once("\n[timers]").expect("a [timers] table");
    // `key = ...` or, for options without a default, `#key = ...`.
    let has = |text: &str, key: &str| {
        text.lines().any(|l| {
            let l = l.trim_start_matches('#');
            l.strip_prefix(key)
                .is_some_and(|rest| rest.starts_with(" ="))
        })
    };
    let keys = quorumd::config::file_keys();
    assert!(keys.len() > 30, "{keys:?}");
    for key in &keys {
        let (documented, in_example) = match key.strip_prefix("timers.") {
            Some(t) => (docs.contains(&format!("`[timers] {t}`")), has(timers, t)),
            None => (
                docs.contains(&format!("`{key}`")) || docs.contains(&format!("`{key} =")),
                has(head, key),
            ),
        };
        assert!(documented, "docs/CONFIG.md does not document the key {key}");
        assert!(
            in_example,
            "systemd/quorumd.toml does not carry the key {key}"
        );
    }
}

#[test]
fn a_switch_from_the_file_is_overridden_by_a_higher_layer_and_strategies_layer_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        &dir,
        "use_port_instead_of_life_time = true\nexit_on_minority = true\n",
    );
    let p = path.to_str().expect("utf-8");
    let s = parse_env(&["--config", p], &[("QUORUMD_STRATEGY", "age")]).expect("parses");
    assert_eq!(s.strategy, Strategy::Age);
    assert!(s.exit_on_minority);
    let s = parse_env(&["--config", p, "--strategy", "age"], &[]).expect("parses");
    assert_eq!(s.strategy, Strategy::Age);
    let msg = err(
        &["--strategy", "age", "--use-port-instead-of-life-time"],
        &[],
    );
    assert!(msg.contains("--strategy"), "{msg}");
}

#[test]
fn names_are_up_to_255_printable_characters_not_bytes() {
    let wide: String = "数据库🐘".chars().cycle().take(200).collect();
    assert!(wide.len() > 600);
    assert_eq!(ok(&["-n", &wide]).name.as_deref(), Some(wide.as_str()));
    let longest: String = "é".repeat(255);
    assert_eq!(
        ok(&["-n", &longest]).name.as_deref(),
        Some(longest.as_str())
    );
    let msg = err(&["-n", &"é".repeat(256)], &[]);
    assert!(
        msg.contains("--name") && msg.contains("256 characters"),
        "{msg}"
    );
    let msg = err(&[], &[("QUORUMD_CLUSTER", "a\u{200B}b")]);
    assert!(msg.contains("QUORUMD_CLUSTER"), "{msg}");
}

#[test]
fn reap_dispatched_defaults_to_a_day_and_is_a_timer_everywhere() {
    assert_eq!(ok(&[]).reap_dispatched_ms, 24 * 3600 * 1000);
    assert_eq!(ok(&["--reap-dispatched", "90s"]).reap_dispatched_ms, 90_000);
    let s = parse_env(&[], &[("QUORUMD_REAP_DISPATCHED", "1h")]).expect("parses");
    assert_eq!(s.reap_dispatched_ms, 3_600_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(&dir, "[timers]\nreap_dispatched = \"2min\"\n");
    let s = parse(&["--config", path.to_str().expect("utf-8")]).expect("parses");
    assert_eq!(s.reap_dispatched_ms, 120_000);
}

/// The repository stands alone: no file cites a design document that is not in it.
#[test]
fn no_file_cites_a_document_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut stack = vec![root.clone()];
    let mut offenders = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" {
                    stack.push(path);
                }
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            // Built by concatenation so that this test does not cite it either.
            let cited = [".md", " §", " rule"].map(|tail| ["DESIGN", tail].concat());
            if cited.iter().any(|c| text.contains(c.as_str())) {
                offenders.push(
                    path.strip_prefix(&root)
                        .unwrap_or(&path)
                        .display()
                        .to_string(),
                );
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "cite docs/ALGORITHM.md instead: {offenders:?}"
    );
}

#[test]
fn paths_given_on_the_command_line_need_not_be_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let raw = std::ffi::OsStr::from_bytes(b"/tmp/st\xffate");
    let argv: Vec<std::ffi::OsString> = vec!["quorumd".into(), "--state-dir".into(), raw.into()];
    let s = Settings::parse_from(argv, &|_| None).expect("parses");
    assert_eq!(s.state_dir.as_deref(), Some(Path::new(raw)));
}
