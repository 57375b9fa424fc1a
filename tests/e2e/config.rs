//! gorgon.toml: defaults and parameters are used; a bad file is refused in
//! one sentence that names it and the line.

use std::collections::BTreeMap;

use crate::support::{plugin, Gorgon};

#[test]
fn defaults_and_params_come_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gorgon.toml");
    std::fs::write(
        &config,
        "[defaults]\noperations = 300\nprocesses = 2\nthreads = 3\n\n[params]\nlabel = \"from-config\"\n",
    )
    .unwrap();
    let report = Gorgon::testkit().config(&config).ok().json();
    let figures = report.run();
    assert_eq!(figures.labels(), BTreeMap::from([("from-config", 300)]));
    assert_eq!((figures.processes, figures.threads), (2, 3));
    assert_eq!(report.params["label"], "from-config");
    // A --set of the same key wins over the file; --config may also come
    // after `run`.
    let report = Gorgon::testkit()
        .args([std::ffi::OsStr::new("--config"), config.as_os_str()])
        .set("label", "from-flag")
        .args(["-n", "10"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("from-flag", 10)]));
}

#[test]
fn a_malformed_config_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gorgon.toml");
    std::fs::write(&config, "[defaults]\nthreads = 2\nprocesses = = 1\n").unwrap();
    Gorgon::run(plugin("gorgon-noop"))
        .config(&config)
        .args(["-n", "1"])
        .usage_error(&format!("{}, line 3", config.display()));
}

#[test]
fn a_missing_explicit_config_is_refused() {
    Gorgon::run(plugin("gorgon-noop"))
        .config("/nonexistent/gorgon.toml")
        .args(["-n", "1"])
        .usage_error("config file /nonexistent/gorgon.toml does not exist");
}
