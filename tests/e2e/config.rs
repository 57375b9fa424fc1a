//! gorgon.toml: defaults and parameters are used; a bad file is refused in
//! one sentence that names it and the line.

use crate::support::{gorgon, plugin};

#[test]
fn defaults_and_params_come_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gorgon.toml");
    std::fs::write(
        &config,
        "[defaults]\noperations = 300\nprocesses = 2\nthreads = 3\n\n[params]\nlabel = \"from-config\"\n",
    )
    .unwrap();
    let lib = plugin("gorgon-test-testkit");
    let run = gorgon(&[
        "--config",
        config.to_str().unwrap(),
        "run",
        "--plugin",
        lib.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(run.count("from-config"), 300);
    assert!(
        run.stdout.contains("2 processes × 3 threads"),
        "{}",
        run.stdout
    );
    // A --set of the same key wins over the file.
    let run = gorgon(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--plugin",
        lib.to_str().unwrap(),
        "--set",
        "label=from-flag",
        "-n",
        "10",
    ])
    .ok();
    assert_eq!(run.count("from-flag"), 10);
}

#[test]
fn a_malformed_config_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gorgon.toml");
    std::fs::write(&config, "[defaults]\nthreads = 2\nprocesses = = 1\n").unwrap();
    let lib = plugin("gorgon-noop");
    gorgon(&[
        "--config",
        config.to_str().unwrap(),
        "run",
        "--plugin",
        lib.to_str().unwrap(),
        "-n",
        "1",
    ])
    .assert_usage_error(&format!("{}, line 3", config.display()));
}

#[test]
fn a_missing_explicit_config_is_refused() {
    let lib = plugin("gorgon-noop");
    gorgon(&[
        "--config",
        "/nonexistent/gorgon.toml",
        "run",
        "--plugin",
        lib.to_str().unwrap(),
        "-n",
        "1",
    ])
    .assert_usage_error("config file /nonexistent/gorgon.toml does not exist");
}
