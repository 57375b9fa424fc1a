//! `gorgon new`: the crate it writes builds offline, runs at once, and its
//! results reach the report; bad names and existing paths are refused.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::support::Gorgon;

fn cargo_build_offline(dir: &Path, target: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(dir)
        .args(["build", "--offline", "--release", "--quiet"])
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "the new crate does not build offline:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_new_plugin_builds_offline_and_runs() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("my-api-test");
    let created = Gorgon::command(["new"]).arg(&dir).ok();
    assert!(
        created.stdout.contains("cargo build --release"),
        "{}",
        created.stdout
    );
    assert!(created.stdout.contains("libmy_api_test.so --debug"));
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains("cargo build --release"), "{readme}");
    assert!(readme.contains("gorgon run --plugin target/release/libmy_api_test.so --debug"));

    let target = temp.path().join("target");
    cargo_build_offline(&dir, &target);
    let library = target.join("release/libmy_api_test.so");

    let debug = Gorgon::run(&library).debug().ok();
    let calls: Vec<&str> = debug
        .stdout
        .lines()
        .filter(|l| l.starts_with('#'))
        .collect();
    assert_eq!(calls.len(), 10, "{}", debug.stdout);
    assert!(
        calls[0].contains("FAIL") && calls[1].contains("SUCCESS"),
        "{calls:?}"
    );

    let report = Gorgon::run(&library)
        .args(["-n", "1000", "-p", "2", "-t", "2"])
        .ok()
        .json();
    let figures = report.run();
    assert_eq!(
        figures.labels(),
        BTreeMap::from([("SUCCESS", 800), ("FAIL", 200)])
    );
    assert_eq!(figures.measured_names(), BTreeMap::from([("work", 1000)]));

    let report = Gorgon::run(&library)
        .args(["-n", "100"])
        .set("fail_every", 10)
        .ok()
        .json();
    assert_eq!(report.run().count("FAIL"), 10);
}

#[test]
fn an_existing_path_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("taken");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("keep.txt"), "mine").unwrap();
    Gorgon::command(["new"])
        .arg(&dir)
        .usage_error("already exists");
    assert_eq!(
        std::fs::read_to_string(dir.join("keep.txt")).unwrap(),
        "mine"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn an_invalid_crate_name_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    for name in ["1st-test", "my test", "fn", "build"] {
        let dir = temp.path().join(name);
        Gorgon::command(["new"])
            .arg(&dir)
            .usage_error(&format!("`{name}` cannot be a crate name"));
        assert!(!dir.exists(), "{name} was created");
    }
}
