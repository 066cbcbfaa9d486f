//! Logging setup: the rotated log file. `init` installs the global subscriber, so this binary
//! holds a single test.

#[test]
fn log_file_gets_plain_lines_and_a_second_init_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("logs").join("quorumd.log");
    let guard = quorumd::logging::init("info", quorumd::logging::LogFormat::Text, Some(&path))
        .expect("init logging");
    tracing::info!(role = "master", "role changed");
    tracing::debug!("not shown without -d");
    assert!(
        quorumd::logging::init("info", quorumd::logging::LogFormat::Text, None).is_err(),
        "a second logger must be refused"
    );
    drop(guard); // flushes the file writer

    let files: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
        .expect("the log directory was created")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    let file = files
        .iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("quorumd.log."))
        })
        .unwrap_or_else(|| panic!("no dated quorumd.log.* file in {files:?}"));
    let text = std::fs::read_to_string(file).expect("read log");
    assert!(
        text.contains("role changed") && text.contains("role=\"master\""),
        "{text}"
    );
    assert!(text.contains("INFO"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escapes in the file: {text:?}"
    );
    assert!(!text.contains("not shown"), "{text}");
}
