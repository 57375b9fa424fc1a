//! The cluster against real SSH servers (see sshd.rs): managing nodes,
//! checking and setting them up, distributed runs with exact counts,
//! lost nodes, Ctrl-C, host-key checking, and bad input.
//!
//! Every test has its own sshd instances and node users, so they run in
//! parallel without meeting (a test that kills a user's processes owns
//! that user).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::sshd::{home_of, kill_user, processes_of, sh, uid_of, TestCluster};
use crate::support::{numbers_seen, plugin, wait_until, Gorgon, Report, Run};

fn sha256_of(path: &Path) -> String {
    sh("sha256sum", &[path.to_str().unwrap()])
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The count column of the node row `name` in the per-node table.
fn node_count(run: &Run, name: &str) -> u64 {
    let rows = run.rows(name);
    assert_eq!(rows.len(), 1, "one row {name:?} in:\n{}", run.stdout);
    rows[0][2].replace(',', "").parse().expect("a count")
}

/// Each node's counted calls in the report, by name.
fn node_operations(report: &Report) -> BTreeMap<&str, u64> {
    report
        .run()
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.operations))
        .collect()
}

/// Whether a file written by `user` in `dir` has a line in it.
fn numbers_from_user_begun(dir: &Path, user: &str) -> bool {
    let uid = uid_of(user);
    std::fs::read_dir(dir).unwrap().flatten().any(|entry| {
        entry
            .metadata()
            .is_ok_and(|m| m.uid() == uid && m.len() > 0)
    })
}

/// The numbers written by `user`'s workers.
fn numbers_from(dir: &Path, user: &str) -> Vec<u64> {
    let uid = uid_of(user);
    let mut numbers: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
        .flat_map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap()
                .lines()
                .map(|l| l.parse::<u64>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    numbers.sort_unstable();
    numbers
}

fn assert_no_duplicates(numbers: &[u64]) {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    let before = sorted.len();
    sorted.dedup();
    assert_eq!(before, sorted.len(), "a number was run twice");
}

#[test]
fn add_list_remove_edit_the_file_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gorgon.toml");
    let original = "# my load tests\n[defaults]\nthreads = 4 # per process\n\n\
                    [params]\nurl = \"http://127.0.0.1:8080\"\n";
    std::fs::write(&config, original).unwrap();
    let key = dir.path().join("id_test");
    std::fs::write(&key, "not really a key").unwrap();
    let cluster = |args: &[&str]| Gorgon::command(args).config(&config);
    let run = cluster(&[
        "cluster", "add", "web1", "--host", "10.1.2.3", "--user", "load",
    ])
    .args(["--port", "2222", "--key"])
    .arg(&key)
    .args(["--gorgon-path", "/opt/gorgon/bin/gorgon"])
    .ok();
    assert!(run.stdout.contains("added node web1"), "{}", run.stdout);
    cluster(&["cluster", "add", "web2", "--host", "web2.example"]).ok();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.starts_with(original),
        "the user's text is kept:\n{text}"
    );
    assert!(
        text.contains("[nodes.web1]\nhost = \"10.1.2.3\"\nuser = \"load\"\nport = 2222\n"),
        "{text}"
    );

    let list = cluster(&["cluster", "list"]).ok();
    let web1 = &list.rows("web1")[0];
    assert_eq!(web1[1..4], ["10.1.2.3", "2222", "load"], "{}", list.stdout);
    assert_eq!(web1[5], "/opt/gorgon/bin/gorgon");
    assert_eq!(
        list.rows("web2")[0][5],
        "~/.local/bin/gorgon",
        "the default path"
    );

    // Updating changes only what is given.
    let run = cluster(&["cluster", "add", "web1", "--port", "2200"]).ok();
    assert!(run.stdout.contains("updated node web1"), "{}", run.stdout);
    let list = cluster(&["cluster", "list"]).ok();
    assert_eq!(list.rows("web1")[0][1..4], ["10.1.2.3", "2200", "load"]);

    cluster(&["cluster", "remove", "web2"]).ok();
    cluster(&["cluster", "remove", "web1"]).ok();
    assert_eq!(std::fs::read_to_string(&config).unwrap(), original);
    cluster(&["cluster", "remove", "web1"]).usage_error("no node web1");

    // Bad values are refused before anything is written.
    cluster(&["cluster", "add", "x", "--host=-oProxyCommand=sh"]).usage_error("not allowed");
    cluster(&["cluster", "add", "x;y", "--host", "h"]).usage_error("not allowed");
    cluster(&["cluster", "add", "new"]).usage_error("--host");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), original);

    // A first `add` creates the file it was pointed at.
    let fresh = dir.path().join("sub").join("fresh.toml");
    Gorgon::command(["cluster", "add", "n", "--host", "h"])
        .config(&fresh)
        .ok();
    assert!(std::fs::read_to_string(&fresh)
        .unwrap()
        .contains("[nodes.n]"));
}

#[test]
fn check_tells_each_node_state_and_setup_installs_gorgon() {
    let user = "gorgon-e2e-setup";
    let cluster = TestCluster::start(&[("adm", user)]);
    cluster.add_unreachable_node("down");
    // This node's gorgon goes to the default place, which starts empty.
    let text = std::fs::read_to_string(&cluster.config).unwrap();
    let text = text.replace(
        &format!("gorgon_path = \"{}\"\n", cluster.gorgon.display()),
        "",
    );
    std::fs::write(&cluster.config, text).unwrap();
    let installed = home_of(user).join(".local/bin/gorgon");
    let _ = std::fs::remove_file(&installed);

    let check = cluster.command(["cluster", "check"]).expect_exit(3);
    let adm = &check.rows("adm")[0];
    assert_eq!(adm[2], "yes", "{}", check.stdout);
    assert_eq!(adm[5], format!("Linux {}", std::env::consts::ARCH));
    assert_eq!(adm[6], "missing");
    assert_eq!(check.rows("down")[0][2], "no");
    assert!(check.stdout.contains("node down ("), "{}", check.stdout);
    assert!(check.stdout.contains("refused"), "{}", check.stdout);
    assert!(
        check
            .stdout
            .contains("node adm has no gorgon at ~/.local/bin/gorgon"),
        "{}",
        check.stdout
    );
    assert!(
        check.stderr.contains("2 of 2 nodes not ready"),
        "{}",
        check.stderr
    );

    let setup = cluster.command(["cluster", "setup", "adm"]).ok();
    assert!(
        setup.stdout.contains(&format!(
            "adm: installed gorgon {} at {}",
            env!("CARGO_PKG_VERSION"),
            installed.display()
        )),
        "{}",
        setup.stdout
    );
    assert_eq!(
        sha256_of(&installed),
        sha256_of(&crate::support::gorgon_bin())
    );
    let mode = std::fs::metadata(&installed).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
    let again = cluster.command(["cluster", "setup", "adm"]).ok();
    assert!(
        again
            .stdout
            .contains("is this build already; nothing to do"),
        "{}",
        again.stdout
    );

    // Another build there is replaced.
    sh(
        "sh",
        &[
            "-c",
            &format!(
                "printf '#!/bin/sh\\necho gorgon 0.0.1\\n' > {0}; chmod 755 {0}",
                installed.display()
            ),
        ],
    );
    let replaced = cluster.command(["cluster", "setup", "adm"]).ok();
    assert!(
        replaced
            .stdout
            .contains("replaced gorgon 0.0.1 (another build)"),
        "{}",
        replaced.stdout
    );

    // A gorgon that cannot run there (say, a glibc too old) is told apart
    // from a missing one, and replaced.
    let broken = "#!/bin/sh\necho 'gorgon: version GLIBC_2.99 not found' >&2\nexit 1\n";
    std::fs::write(&installed, broken).unwrap();
    let check = cluster.command(["cluster", "check", "adm"]).expect_exit(3);
    assert_eq!(check.rows("adm")[0][6], "does not run", "{}", check.stdout);
    assert!(
        check
            .stdout
            .contains("does not run there (gorgon: version GLIBC_2.99 not found)"),
        "{}",
        check.stdout
    );
    let replaced = cluster.command(["cluster", "setup", "adm"]).ok();
    assert!(
        replaced
            .stdout
            .contains("replaced a gorgon that did not run"),
        "{}",
        replaced.stdout
    );

    let lib = plugin("gorgon-test-testkit");
    let check = cluster
        .command(["cluster", "check", "adm", "--plugin"])
        .arg(&lib)
        .ok();
    let adm = &check.rows("adm")[0];
    assert_eq!(adm[6], env!("CARGO_PKG_VERSION"), "{}", check.stdout);
    assert!(adm[7].starts_with("can run"), "{}", check.stdout);
    assert!(
        adm[3].ends_with("ms") && adm[4].ends_with("ms"),
        "login and round trip: {adm:?}"
    );

    // Setup of an unreachable node fails, naming it.
    let setup = cluster.command(["cluster", "setup", "down"]).expect_exit(3);
    assert!(setup.stderr.contains("node down"), "{}", setup.stderr);
}

#[test]
fn a_run_over_two_nodes_and_local_covers_every_number_once() {
    let users = ["gorgon-e2e-run-a", "gorgon-e2e-run-b"];
    let cluster = TestCluster::start(&[("a", users[0]), ("b", users[1])]);
    for user in users {
        let _ = std::fs::remove_dir_all(home_of(user).join(".cache/gorgon/plugins"));
    }
    let lib = plugin("gorgon-test-testkit");
    let numbers = cluster.numbers_dir();
    let saved = numbers.parent().unwrap().join("cluster-run.json");
    let n = 3001;
    let run = cluster
        .run(&lib)
        .args([
            "--cluster",
            "--local",
            "-n",
            &n.to_string(),
            "-p",
            "2",
            "-t",
            "2",
        ])
        .set("numbers_dir", numbers.display())
        .arg("--save")
        .arg(&saved)
        .output_format("table")
        .ok();
    assert_eq!(numbers_seen(&numbers), (0..n).collect::<Vec<_>>());
    let report = Report::read(&saved);
    assert_eq!(report.run().count("OK"), n);
    // The JSON has per-node figures with exactly the documented fields.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    let documented = &crate::reports::documented_fields()["Node"];
    for node in json["runs"][0]["nodes"].as_array().unwrap() {
        let keys: std::collections::BTreeSet<String> =
            node.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            &keys, documented,
            "node fields differ from docs/json-schema.md"
        );
    }
    // Six slots (3 nodes × 2 processes): the first takes the extra number.
    let names: Vec<&str> = report.run().nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "local"], "in the order given, local last");
    let per_node = node_operations(&report);
    assert_eq!(per_node, [("a", 1001), ("b", 1000), ("local", 1000)].into());
    assert!(run.stdout.contains("Nodes: a, b, local"), "{}", run.stdout);
    assert!(
        run.stdout.contains("3 nodes × 2 processes × 2 threads"),
        "{}",
        run.stdout
    );
    // The per-node table shows the same counts.
    for (name, operations) in &per_node {
        assert_eq!(node_count(&run, name), *operations, "{}", run.stdout);
    }
    assert_eq!(
        numbers_from(&numbers, users[1]).len(),
        1000,
        "node b's workers ran as its user"
    );

    // The plugin was uploaded to a private directory, named by its SHA-256.
    let sha = sha256_of(&lib);
    for user in users {
        let dir = home_of(user).join(".cache/gorgon/plugins");
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(sha256_of(&dir.join(format!("{sha}.so"))), sha);
    }
    assert_eq!(
        run.stderr.matches("uploaded the plugin").count(),
        2,
        "{}",
        run.stderr
    );

    // The next run reuses it, and costs one probe plus one command per
    // worker process on each node. Parameters reach the remote plugin
    // byte for byte: no remote shell sees them unquoted.
    let sessions_before: Vec<usize> = cluster.nodes.iter().map(|(_, s)| s.sessions()).collect();
    let label = "it's $(echo pwned) `id` \"q\" ;|&>x *";
    let run = cluster
        .run(&lib)
        .args(["--nodes", "b,a", "-n", "100", "-p", "3"])
        .set("label", label)
        .table()
        .ok();
    assert!(!run.stderr.contains("uploaded"), "{}", run.stderr);
    assert_eq!(run.json().run().labels(), [(label, 100)].into());
    assert!(run.stdout.contains("Nodes: b, a"), "{}", run.stdout);
    for ((name, sshd), before) in cluster.nodes.iter().zip(sessions_before) {
        assert_eq!(
            sshd.sessions() - before,
            1 + 3,
            "remote commands on node {name}"
        );
    }

    // A tampered copy on a node is replaced, not loaded.
    let copy = home_of(users[0]).join(format!(".cache/gorgon/plugins/{sha}.so"));
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(&copy, b"tampered").unwrap();
    let run = cluster.run(&lib).args(["--nodes", "a", "-n", "10"]).ok();
    assert!(
        run.stderr.contains("node a: uploaded the plugin"),
        "{}",
        run.stderr
    );
    assert_eq!(run.json().run().count("OK"), 10);
    assert_eq!(sha256_of(&copy), sha);
}

#[test]
fn a_node_lost_mid_run_is_named_and_the_others_results_are_kept() {
    let users = ["gorgon-e2e-lost-a", "gorgon-e2e-lost-b"];
    let cluster = TestCluster::start(&[("a", users[0]), ("b", users[1])]);
    let lib = plugin("gorgon-test-testkit");
    let numbers = cluster.numbers_dir();
    let mut run = cluster
        .run(&lib)
        .args(["--cluster", "-n", "1200", "-p", "1", "-t", "2"])
        .set("numbers_dir", numbers.display())
        .set("sleep_us", 4000)
        .table()
        .spawn();
    run.wait_for("a number from node b", Duration::from_secs(60), || {
        numbers_from_user_begun(&numbers, users[1])
    });
    // Node b dies: its SSH sessions and its worker, all at once.
    kill_user(users[1]);
    let run = run.finish(Duration::from_secs(120)).expect_exit(3);
    assert!(run.stdout.contains("(incomplete)"), "{}", run.stdout);
    assert!(run.stderr.contains("node b ("), "{}", run.stderr);
    assert!(run.stderr.contains("was lost mid-run"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    // Node a finished its share (the even numbers), and it was counted.
    let report = run.json();
    let per_node = node_operations(&report);
    assert_eq!(per_node["a"], 600);
    assert_eq!(
        numbers_from(&numbers, users[0]),
        (0..600).map(|k| 2 * k).collect::<Vec<_>>()
    );
    let b = per_node["b"];
    assert!(b < 600, "node b cannot have finished: {b}");
    assert_eq!(report.run().count("OK"), 600 + b);
    assert!(!report.run().complete);
    assert_no_duplicates(&numbers_seen(&numbers));
    assert!(processes_of(users[0], "gorgon worker").is_empty());
}

#[test]
fn ctrl_c_stops_the_remote_workers() {
    let user = "gorgon-e2e-int";
    let cluster = TestCluster::start(&[("i", user)]);
    let lib = plugin("gorgon-test-testkit");
    let numbers = cluster.numbers_dir();
    let mut run = cluster
        .run(&lib)
        .args(["--nodes", "i", "-n", "1000000", "-p", "2", "-t", "2"])
        .set("numbers_dir", numbers.display())
        .set("sleep_us", 2000)
        .spawn();
    run.wait_for("a number from the node", Duration::from_secs(60), || {
        numbers_from_user_begun(&numbers, user)
    });
    assert!(
        !processes_of(user, "gorgon worker").is_empty(),
        "the workers run as the node's user"
    );
    run.signal(Signal::SIGINT);
    let report = run.finish(Duration::from_secs(60)).expect_exit(130).json();
    assert!(report.interrupted);
    let counted = report.run().count("OK");
    assert!(counted > 0 && counted < 1_000_000, "{report:#?}");
    assert!(
        wait_until(Duration::from_secs(10), || processes_of(
            user,
            "gorgon worker"
        )
        .is_empty()),
        "workers left on the node: {:?}",
        processes_of(user, "gorgon worker")
    );
}

#[test]
fn unknown_and_changed_host_keys_are_refused() {
    let cluster = TestCluster::start(&[("k", "gorgon-e2e-keys")]);
    let lib = plugin("gorgon-test-testkit");
    let run_on_k = || cluster.run(&lib).args(["--nodes", "k", "-n", "10"]);
    let node = cluster.node("k");

    // Unknown host: refused by default, naming the node and the way out.
    std::fs::write(&cluster.known_hosts, "").unwrap();
    let run = run_on_k().run_failed("host key is not in");
    assert!(run.stderr.contains("node k ("), "{}", run.stderr);
    assert!(
        run.stderr.contains("--accept-new-host-keys"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "no run started: {}", run.stdout);

    // Accepted when the user opts in, and recorded.
    let run = run_on_k().arg("--accept-new-host-keys").ok();
    assert_eq!(run.json().run().count("OK"), 10);
    let recorded = std::fs::read_to_string(&cluster.known_hosts).unwrap();
    assert!(recorded.contains(&node.host_key), "{recorded}");
    cluster.command(["cluster", "check", "k"]).ok();

    // Changed host key: refused, opt-in or not.
    let other = cluster.dir.path().join("other_host_key");
    let other_key = crate::sshd::keygen(&other);
    let other_key: Vec<&str> = other_key.split_whitespace().take(2).collect();
    std::fs::write(
        &cluster.known_hosts,
        format!("[{}]:{} {}\n", node.address, node.port, other_key.join(" ")),
    )
    .unwrap();
    for extra in [&[][..], &["--accept-new-host-keys"][..]] {
        let run = run_on_k().args(extra).run_failed("host key has changed");
        assert!(run.stderr.contains("node k ("), "{}", run.stderr);
        assert!(run.stderr.contains("ssh-keygen -R"), "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
}

#[test]
fn an_unreachable_node_stops_the_run_unless_skipped() {
    let cluster = TestCluster::start(&[("up", "gorgon-e2e-skip")]);
    cluster.add_unreachable_node("down");
    let lib = plugin("gorgon-test-testkit");
    let run_all = || cluster.run(&lib).args(["--cluster", "-n", "50"]);
    let run = run_all().run_failed("unreachable");
    assert!(run.stderr.contains("node down ("), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);

    let run = run_all().arg("--skip-unreachable").table().ok();
    let report = run.json();
    assert_eq!(report.run().count("OK"), 50);
    assert_eq!(report.skipped_nodes.len(), 1, "{:?}", report.skipped_nodes);
    assert!(
        report.skipped_nodes[0].contains("node down ("),
        "{:?}",
        report.skipped_nodes
    );
    assert!(
        run.stdout.contains("Skipped: node down ("),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Nodes: up\n"), "{}", run.stdout);
}

#[test]
fn an_unknown_node_name_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gorgon.toml");
    std::fs::write(&config, "[nodes.a]\nhost = \"127.0.0.1\"\n").unwrap();
    let noop = || Gorgon::run(plugin("gorgon-noop")).config(&config);
    noop()
        .args(["--nodes", "a,nosuch", "-n", "1"])
        .usage_error("there is no node nosuch");
    Gorgon::command(["cluster", "check", "nosuch"])
        .config(&config)
        .usage_error("there is no node nosuch");
    noop()
        .args(["--local", "-n", "1"])
        .usage_error("--cluster or --nodes");
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    Gorgon::run(plugin("gorgon-noop"))
        .config(&empty)
        .args(["--cluster", "-n", "1"])
        .usage_error("there are no nodes");
}

#[test]
fn a_malformed_cluster_config_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gorgon.toml");
    let lib = plugin("gorgon-noop");
    for (text, line) in [
        (
            "[ssh]\nknown_hosts = \"kh\"\n\n[nodes.a]\nhost = \"h\"\nport = \"x\"\n",
            6,
        ),
        ("[nodes.a]\nhost = \"h\"\npassword = \"secret\"\n", 3),
        ("[nodes.a]\nhost = \"h; rm -rf /\"\n", 2),
        ("[nodes.a\nhost = \"h\"\n", 1),
    ] {
        std::fs::write(&config, text).unwrap();
        let mention = format!("config file {}, line {line}", config.display());
        Gorgon::run(&lib)
            .config(&config)
            .args(["--cluster", "-n", "1"])
            .usage_error(&mention);
        Gorgon::command(["cluster", "list"])
            .config(&config)
            .usage_error(&mention);
        Gorgon::command(["cluster", "add", "b", "--host", "h"])
            .config(&config)
            .usage_error(&mention);
        assert_eq!(
            std::fs::read_to_string(&config).unwrap(),
            text,
            "left as it was"
        );
    }
}

#[test]
fn a_worker_crashing_on_a_node_is_named_and_the_rest_is_kept() {
    let cluster = TestCluster::start(&[("c", "gorgon-e2e-crash")]);
    let lib = plugin("gorgon-test-testkit");
    let run = cluster
        .run(&lib)
        .args(["--nodes", "c", "--local", "-n", "400", "-p", "2"])
        .set("abort_at", 0)
        .expect_exit(3);
    // Number 0 is slot 0: the first worker on node c.
    assert!(
        run.stderr
            .contains("worker 1 of 2 on node c was killed by signal 6 (SIGABRT)"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("was lost"),
        "the node itself is fine: {}",
        run.stderr
    );
    let report = run.json();
    let per_node = node_operations(&report);
    assert_eq!(per_node["local"], 200);
    assert_eq!(per_node["c"], 100, "the other worker on c finished");
}

#[test]
fn a_worker_refuses_a_plugin_that_does_not_match_its_checksum() {
    let lib = plugin("gorgon-test-testkit");
    let lib = lib.to_str().unwrap();
    let worker_args = |sha: String| -> Vec<String> {
        crate::support::worker_args(&serde_json::json!({
            "plugin": lib,
            "plugin_sha256": sha,
            "threads": 1,
            "share": {"offset": 0, "stride": 1, "count": 1},
            "interval_ms": 1000,
        }))
    };
    let refused = Gorgon::command(worker_args("0".repeat(64))).expect_exit(2);
    assert!(
        refused.stdout.contains(r#""type":"error""#),
        "{}",
        refused.stdout
    );
    assert!(
        refused.stdout.contains("does not match its checksum"),
        "{}",
        refused.stdout
    );
    // The right checksum loads it: the worker says `ready`, then ends when
    // its input closes without a `go`.
    let mut loaded = Gorgon::command(worker_args(sha256_of(Path::new(lib)))).spawn_with_stdin();
    loaded.wait_for_stdout_line(r#""type":"ready""#, Duration::from_secs(30));
    loaded.close_stdin();
    loaded.finish(Duration::from_secs(30)).ok();
}

#[test]
fn a_worker_refuses_a_spec_field_it_does_not_know() {
    // What an older gorgon on a node does with a setting it has never
    // heard of: it says so in a frame the parent shows, rather than
    // running without it.
    let lib = plugin("gorgon-test-testkit");
    let args = crate::support::worker_args(&serde_json::json!({
        "plugin": lib,
        "threads": 1,
        "share": {"offset": 0, "stride": 1, "count": 1},
        "interval_ms": 1000,
        "load": {"jitter_ns": 5},
    }));
    let refused = Gorgon::command(args).expect_exit(2);
    // After its first word (`setting_up`), the refusal.
    let last = refused.stdout.trim().lines().last().unwrap_or_default();
    let frame: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(frame["type"], "error", "{}", refused.stdout);
    let message = frame["message"].as_str().unwrap();
    assert!(message.contains("unknown field `jitter_ns`"), "{message}");
    assert!(message.contains("install the same version"), "{message}");
}

#[test]
fn an_open_model_run_shares_its_rate_over_the_nodes() {
    let users = ["gorgon-e2e-rate-a", "gorgon-e2e-rate-b"];
    let cluster = TestCluster::start(&[("a", users[0]), ("b", users[1])]);
    let lib = plugin("gorgon-test-testkit");
    let numbers = cluster.numbers_dir();
    let report = cluster
        .run(&lib)
        .args([
            "--cluster",
            "--local",
            "--rate",
            "300/s",
            "--duration",
            "2s",
            "-t",
            "2",
        ])
        .set("numbers_dir", numbers.display())
        .ok()
        .json();
    // 600 calls started in all, a third on each node, numbers never reused.
    let seen = numbers_seen(&numbers);
    let count = seen.len() as u64;
    assert!((540..=660).contains(&count), "{count} calls:\n{report:#?}");
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a number was used twice");
    assert_eq!(report.run().count("OK"), count);
    let per_node = node_operations(&report);
    assert_eq!(per_node.len(), 3, "{per_node:?}");
    for node in ["a", "b", "local"] {
        let on_node = per_node[node];
        assert!((160..=240).contains(&on_node), "node {node}: {on_node}");
    }
}

#[test]
fn per_node_rates_leave_the_warm_up_out_as_the_run_does() {
    let cluster = TestCluster::start(&[("a", "gorgon-e2e-warm-a")]);
    let lib = plugin("gorgon-test-testkit");
    let report = cluster
        .run(&lib)
        .args([
            "--cluster",
            "--local",
            "-n",
            "400",
            "--warmup",
            "1s",
            "-t",
            "2",
        ])
        .set("sleep_us", 500)
        .ok()
        .json();
    let run = report.run();
    assert_eq!(run.nodes.len(), 2, "{run:#?}");
    for node in &run.nodes {
        let elapsed = node.elapsed_ns;
        // A node's measured part ends with the run's: never the second of
        // warm-up before it.
        assert!(
            elapsed <= run.elapsed_ns,
            "{node:?}: {elapsed} > {}",
            run.elapsed_ns
        );
        assert!(
            elapsed < 900_000_000,
            "{} counted the warm-up: {elapsed} ns",
            node.name
        );
    }
}

#[test]
fn fibers_on_every_node_cover_every_number_once() {
    let users = ["gorgon-e2e-fib-a", "gorgon-e2e-fib-b"];
    let cluster = TestCluster::start(&[("a", users[0]), ("b", users[1])]);
    let lib = plugin("gorgon-test-testkit");
    let numbers = cluster.numbers_dir();
    let n = 1201;
    let run = cluster
        .run(&lib)
        .args([
            "--cluster",
            "--local",
            "-n",
            &n.to_string(),
            "-t",
            "1",
            "--fibers",
            "4",
        ])
        .set("numbers_dir", numbers.display())
        .set("wait_us", 500)
        .set("label_in_flight", 1)
        .table()
        .ok();
    assert!(
        run.stdout
            .contains("3 nodes × 1 process × 1 thread × 4 fibers"),
        "{}",
        run.stdout
    );
    assert_eq!(numbers_seen(&numbers), (0..n).collect::<Vec<_>>());
    let report = run.json();
    assert!(
        report.run().count("4 at once") > 0,
        "four calls at once on a node's thread: {:?}",
        report.run().labels()
    );
}

#[test]
fn eight_nodes_under_a_low_open_files_limit_report_in_config_order_with_phase_times() {
    // Names whose alphabetical order (n10, n11, …, n9) is not the file's.
    let names = ["n9", "n10", "n11", "n12", "n13", "n14", "n15", "n16"];
    let users: Vec<String> = names
        .iter()
        .map(|n| format!("gorgon-e2e-many-{n}"))
        .collect();
    let pairs: Vec<(&str, &str)> = names
        .iter()
        .zip(&users)
        .map(|(n, u)| (*n, u.as_str()))
        .collect();
    let cluster = TestCluster::start(&pairs);
    let lib = plugin("gorgon-test-testkit");
    let n = 8000;
    // Under an open-files limit of `limit` (`SOFT:HARD`; no HARD keeps
    // the hard one), as a user whose shell or CI has a low `ulimit -n`.
    let run_all = |limit: &str| {
        cluster
            .run(&lib)
            .args(["--cluster", "-n", "8000", "-p", "2"])
            .launched_by("prlimit", [format!("--nofile={limit}")])
    };
    // 8 nodes × 2 workers need more than 64 descriptors: gorgon raises its
    // soft limit to the hard one and runs.
    let run = run_all("64:").table().ok();
    let report = run.json();
    assert_eq!(report.run().count("OK"), n);
    assert!(
        run.stdout.contains(&format!("Nodes: {}", names.join(", "))),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stderr.matches("uploaded the plugin").count(),
        8,
        "{}",
        run.stderr
    );
    let nodes = &report.run().nodes;
    let order: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(order, names, "nodes in the config's order");
    let total = report.total_elapsed_ns;
    let run_elapsed = report.run().elapsed_ns;
    for node in nodes {
        assert_eq!(node.operations, 1000, "{node:?}");
        assert!(node.complete);
        let phase = |name: &str, value: Option<u64>| {
            value.unwrap_or_else(|| panic!("{name} of {}: {node:?}", node.name))
        };
        let phases = &node.phases;
        let connect = phase("connect_ns", phases.connect_ns);
        let probe = phase("probe_ns", phases.probe_ns);
        let upload = phase("upload_ns", phases.upload_ns);
        let calls = phase("calls_ns", phases.calls_ns);
        let before_go = connect + probe + upload;
        assert!(connect > 0 && probe > 0);
        assert!(calls > 0);
        // The total time is the whole wall time: every node's login,
        // probe and upload, its workers' start and the run are in it.
        assert!(
            total > before_go + phase("ready_ns", phases.ready_ns) + run_elapsed,
            "total {total} ns leaves out a phase: {node:?}"
        );
        assert!(phase("first_call_ns", phases.first_call_ns) <= calls + 1_000_000_000);
    }

    // The plugin is there now: never sent again.
    let run = run_all("64:").ok();
    assert!(!run.stderr.contains("uploaded"), "{}", run.stderr);
    let report = run.json();
    assert_eq!(report.run().count("OK"), n);
    for node in &report.run().nodes {
        assert!(node.phases.upload_ns.is_none(), "{node:?}");
    }

    // A hard limit too low for 8 nodes is refused before any connection,
    // naming the limit and the fix.
    let sessions: usize = cluster.nodes.iter().map(|(_, s)| s.sessions()).sum();
    let run = run_all("64:64").usage_error("open-files limit is 64");
    assert!(run.stderr.contains("ulimit -n"), "{}", run.stderr);
    let after: usize = cluster.nodes.iter().map(|(_, s)| s.sessions()).sum();
    assert_eq!(after, sessions, "no node was contacted");
}

#[test]
fn kept_connections_spare_the_next_commands_their_logins() {
    let cluster = TestCluster::start(&[("k1", "gorgon-e2e-keep-1"), ("k2", "gorgon-e2e-keep-2")]);
    let text = std::fs::read_to_string(&cluster.config).unwrap();
    std::fs::write(
        &cluster.config,
        text.replacen("[ssh]\n", "[ssh]\nkeep_connections = 60\n", 1),
    )
    .unwrap();
    let lib = plugin("gorgon-test-testkit");
    let operations = || {
        cluster
            .run(&lib)
            .args(["--cluster", "-n", "200"])
            .ok()
            .json()
            .run()
            .operations
    };
    assert_eq!(operations(), 200);
    let logins: Vec<usize> = cluster.nodes.iter().map(|(_, s)| s.logins()).collect();
    assert_eq!(logins, [1, 1], "one login per node");
    // Two more commands, no more logins; the counts stay exact.
    cluster.command(["cluster", "check"]).ok();
    assert_eq!(operations(), 200);
    let logins: Vec<usize> = cluster.nodes.iter().map(|(_, s)| s.logins()).collect();
    assert_eq!(logins, [1, 1], "the kept connections were used");
    // A node whose connection died is logged in to afresh: once its
    // master, told by the node's end, has gone with its socket.
    let record = kept_record(&cluster, "k1");
    assert!(record.exists(), "a live master for k1");
    crate::sshd::kill_user("gorgon-e2e-keep-1");
    assert!(
        wait_until(Duration::from_secs(30), || !record.exists()),
        "k1's master outlived its node's end"
    );
    assert_eq!(operations(), 200);
    assert_eq!(cluster.node("k1").logins(), 2);
    assert_eq!(cluster.node("k2").logins(), 1);
}

/// The record (a symbolic link) of `node`'s kept connection to its
/// master's socket: `exists` follows it, so it tells whether the socket is
/// still there.
fn kept_record(cluster: &TestCluster, node: &str) -> std::path::PathBuf {
    let dir = cluster.dir.path().join("ctl");
    let prefix = format!("kept-{node}-");
    let mut records: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    assert_eq!(records.len(), 1, "one record for {node}: {records:?}");
    records.pop().unwrap()
}

#[test]
fn a_node_whose_probe_hangs_is_named_at_the_probe_deadline_and_skipped() {
    let users = ["gorgon-e2e-hang-a", "gorgon-e2e-hang-b"];
    let cluster = TestCluster::start(&[("fine", users[0]), ("stuck", users[1])]);
    // Node stuck's login shell hangs on the probe (the only command that
    // runs `uname`) and runs everything else.
    let shell = cluster.dir.path().join("stuck-shell");
    std::fs::write(
        &shell,
        "#!/bin/sh\ncase \"$2\" in *uname*) sleep 90 ;; esac\nexec /bin/sh \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&shell, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stuck_user = crate::sshd::system_user(users[1]);
    sh(
        "usermod",
        &["--shell", shell.to_str().unwrap(), &stuck_user],
    );
    let lib = plugin("gorgon-test-testkit");
    let started = Instant::now();
    let run = cluster
        .run(&lib)
        .args(["--cluster", "--skip-unreachable", "-n", "100"])
        .table()
        .ok();
    // About 20 s; the bound is generous, and still far below the 120 s a
    // hung command once cost.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(100), "{took:?}");
    assert!(
        run.stderr
            .contains("node stuck did not finish the probe within 20s"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("Skipped: node stuck"), "{}", run.stdout);
    let report = run.json();
    assert_eq!(report.run().count("OK"), 100);
    assert_eq!(node_operations(&report), [("fine", 100)].into());
}
