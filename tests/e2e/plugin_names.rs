//! `--plugin NAME`: the ready plugins by name, a user's plugin found on
//! GORGON_PLUGIN_PATH before the others, and `gorgon plugins` listing
//! them. (scripts/check-install covers an installed gorgon with no build
//! tree around, which only has the bundled ones.)

use std::process::Command;

use crate::support::{gorgon, gorgon_bin, plugin, Run};

/// Runs gorgon with GORGON_PLUGIN_PATH set to `search`, and the cache the
/// bundled plugins are extracted to inside it (not the user's).
fn gorgon_with_path(search: &std::path::Path, args: &[&str]) -> Run {
    Run::from(
        Command::new(gorgon_bin())
            .args(args)
            .env("GORGON_PLUGIN_PATH", search)
            .env("XDG_CACHE_HOME", search.join("cache"))
            .output()
            .expect("gorgon starts"),
    )
}

fn labels(run: &Run) -> Vec<String> {
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("a JSON report");
    report["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_ready_plugin_runs_by_name() {
    plugin("gorgon-hash");
    let run = gorgon(&[
        "run", "--plugin", "hash", "-n", "200", "-q", "--output", "json",
    ])
    .ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["runs"][0]["operations"], 200);
    assert!(
        report["plugin"]
            .as_str()
            .unwrap()
            .ends_with("libgorgon_hash.so"),
        "{}",
        report["plugin"]
    );
}

#[test]
fn the_search_path_comes_first() {
    let hash = plugin("gorgon-hash");
    let dir = tempfile::tempdir().unwrap();
    // A user's plugin named `noop` shadows the ready one: this one is the
    // hash plugin, whose labels tell them apart.
    std::fs::copy(&hash, dir.path().join("libnoop.so")).unwrap();
    std::fs::copy(&hash, dir.path().join("libmy_test.so")).unwrap();
    let args = ["run", "-n", "50", "-q", "--output", "json", "--plugin"];
    let shadowed = gorgon_with_path(dir.path(), &[&args[..], &["noop"]].concat()).ok();
    assert!(labels(&shadowed).contains(&"SUCCESS".to_string()));
    let mine = gorgon_with_path(dir.path(), &[&args[..], &["my-test"]].concat()).ok();
    assert!(labels(&mine).contains(&"SUCCESS".to_string()));

    let listed = gorgon_with_path(dir.path(), &["plugins"]).ok();
    let line = |name: &str, origin: &str| {
        listed.stdout.lines().any(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            cells.len() >= 4
                && cells[0] == name
                && line.contains(origin)
                && cells.contains(&gorgon_plugin_api::ABI_VERSION.to_string().as_str())
        })
    };
    assert!(line("my_test", "GORGON_PLUGIN_PATH"), "{}", listed.stdout);
    assert!(line("noop", "GORGON_PLUGIN_PATH"), "{}", listed.stdout);
    assert!(line("http", "bundled"), "{}", listed.stdout);
}

#[test]
fn an_unknown_name_is_bad_input() {
    gorgon(&["run", "--plugin", "no-such-plugin", "-n", "1"])
        .assert_usage_error("no plugin named no-such-plugin");
}

/// An installed gorgon (no plugins beside it) runs a bundled plugin on a
/// cluster: the plugin is extracted to a real file, which is what the
/// nodes get uploaded. Needs root, like every cluster test.
#[test]
fn a_cluster_run_uploads_a_bundled_plugin() {
    let user = "gorgon-e2e-bundle";
    let cluster = crate::sshd::TestCluster::start(&[("b", user)]);
    let cache = cluster.dir.path().join("cache");
    // The cluster's copy of gorgon sits alone in a directory: `hash` can
    // only be the bundled one.
    let run = Run::from(
        Command::new(&cluster.gorgon)
            .args(["--config", cluster.config.to_str().unwrap()])
            .args(["run", "--plugin", "hash", "--cluster", "-n", "300"])
            .args(["-q", "--output", "json"])
            .env("XDG_CACHE_HOME", &cache)
            .env_remove("GORGON_PLUGIN_PATH")
            .output()
            .expect("gorgon starts"),
    )
    .ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["runs"][0]["operations"], 300);
    let extracted = report["plugin"].as_str().unwrap();
    assert!(
        extracted.starts_with(cache.join("gorgon/bundled").to_str().unwrap()),
        "{extracted}"
    );
    let uploaded = std::fs::read_dir(crate::sshd::home_of(user).join(".cache/gorgon/plugins"))
        .expect("the node has a plugin cache")
        .count();
    assert_eq!(uploaded, 1, "the bundled plugin was uploaded to the node");
}
