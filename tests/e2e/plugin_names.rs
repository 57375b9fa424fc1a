//! `--plugin NAME`: the ready plugins by name, a user's plugin found on
//! GORGON_PLUGIN_PATH before the others, and `gorgon plugins` listing
//! them. (scripts/check-install covers an installed gorgon with no build
//! tree around, which only has the bundled ones.)

use std::path::Path;
use std::process::Command;

use crate::support::{plugin, Gorgon, Report, Run};

/// Gorgon with GORGON_PLUGIN_PATH set to `search`, and the cache the
/// bundled plugins are extracted to inside it (not the user's).
fn with_search_path(gorgon: Gorgon, search: &Path) -> Gorgon {
    gorgon
        .env("GORGON_PLUGIN_PATH", search)
        .env("XDG_CACHE_HOME", search.join("cache"))
}

#[test]
fn a_ready_plugin_runs_by_name() {
    plugin("gorgon-hash");
    let report = Gorgon::run("hash").args(["-n", "200", "-q"]).ok().json();
    assert_eq!(report.run().operations, 200);
    assert!(
        report.plugin.ends_with("libgorgon_hash.so"),
        "{}",
        report.plugin
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
    for name in ["noop", "my-test"] {
        let run = Gorgon::run(name).args(["-n", "50", "-q"]);
        let report = with_search_path(run, dir.path()).ok().json();
        assert!(
            report.run().labels().contains_key("SUCCESS"),
            "{name}: {:?}",
            report.run().labels()
        );
    }

    // `gorgon plugins` prints a table for people, and nothing else.
    let listed = with_search_path(Gorgon::command(["plugins"]), dir.path()).ok();
    // Each line: name, where it was found, the ABI it was built for, file.
    let abi = format!(" {} ", gorgon_plugin_api::ABI_VERSION);
    let line = |name: &str, origin: &str| {
        listed.stdout.lines().any(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            cells.len() >= 4 && cells[0] == name && line.contains(origin) && line.contains(&abi)
        })
    };
    assert!(line("my_test", "GORGON_PLUGIN_PATH"), "{}", listed.stdout);
    assert!(line("noop", "GORGON_PLUGIN_PATH"), "{}", listed.stdout);
    assert!(line("http", "bundled"), "{}", listed.stdout);
}

#[test]
fn an_unknown_name_is_bad_input() {
    Gorgon::run("no-such-plugin")
        .args(["-n", "1"])
        .usage_error("no plugin named no-such-plugin");
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
    let report: Report = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report.run().operations, 300);
    let extracted = &report.plugin;
    assert!(
        extracted.starts_with(cache.join("gorgon/bundled").to_str().unwrap()),
        "{extracted}"
    );
    let uploaded = std::fs::read_dir(crate::sshd::home_of(user).join(".cache/gorgon/plugins"))
        .expect("the node has a plugin cache")
        .count();
    assert_eq!(uploaded, 1, "the bundled plugin was uploaded to the node");
}
