//! A node's SSH session dropped mid-run, against real SSH servers (see
//! sshd.rs): the node is not killed, only its connection is cut, so the
//! worker on it is left to notice by itself that its parent is gone (its
//! stdin ends) and exit, while the parent names the node and keeps what
//! the other nodes did.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::sshd::{processes_of, uid_of, TestCluster};
use crate::support::{plugin, wait_until, Node, Report};

/// Calls the testkit has begun on `user`'s node: the lines its workers
/// wrote into `dir` (`numbers_dir`, one line as each call begins).
fn calls_begun_by(dir: &Path, user: &str) -> usize {
    let uid = uid_of(user);
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|entry| entry.metadata().is_ok_and(|m| m.uid() == uid))
        .map(|entry| {
            std::fs::read_to_string(entry.path())
                .unwrap_or_default()
                .lines()
                .count()
        })
        .sum()
}

/// The PIDs of `user`'s processes whose command line matches `pattern`.
fn pids_of(user: &str, pattern: &str) -> Vec<String> {
    processes_of(user, pattern)
        .iter()
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect()
}

/// `user`'s processes, each cut to its PID and the start of its command
/// line (a worker's spec is long).
fn listed(user: &str) -> Vec<String> {
    processes_of(user, ".")
        .iter()
        .map(|line| line.chars().take(100).collect())
        .collect()
}

/// The node named `name` in the report's one run.
fn node<'a>(report: &'a Report, name: &str) -> &'a Node {
    let nodes = &report.run().nodes;
    nodes
        .iter()
        .find(|node| node.name == name)
        .unwrap_or_else(|| panic!("no node {name} in {nodes:#?}"))
}

#[test]
fn a_node_whose_ssh_session_drops_is_named_and_its_worker_exits() {
    let users = ["gorgon-e2e-cut-a", "gorgon-e2e-cut-b"];
    // Its Drop stops the servers and removes both users and anything of
    // theirs still running, whatever happens below.
    let cluster = TestCluster::start(&[("a", users[0]), ("b", users[1])]);
    let lib = plugin("gorgon-test-testkit");
    let numbers = cluster.numbers_dir();
    // 1,200 calls a node, 2 threads of 4 ms calls: 2.4 s, long enough to
    // cut node b's session in the middle. Node b has the odd numbers, and
    // its call #1 never returns: only the end of its input can end that
    // worker, once nobody is left to kill it.
    let child = cluster
        .run(&lib)
        .args(["--cluster", "-n", "2400", "-p", "1", "-t", "2"])
        .set("numbers_dir", numbers.display())
        .set("sleep_us", 4000)
        .set("hang_at", 1)
        .spawn();
    assert!(
        wait_until(Duration::from_secs(60), || calls_begun_by(
            &numbers, users[1]
        ) > 0),
        "node b never began a call"
    );
    assert!(
        !processes_of(users[1], "gorgon worker").is_empty(),
        "node b's worker runs as its user"
    );
    // The processes sshd runs as the node's user for its connection
    // (`sshd: USER@notty`): killing them drops the session, and with it
    // the worker's stdin and stdout, but signals nothing else.
    let sessions = pids_of(users[1], "^sshd");
    assert!(
        !sessions.is_empty(),
        "no sshd session of node b: {:?}",
        listed(users[1])
    );
    let cut = Instant::now();
    for pid in &sessions {
        let _ = Command::new("kill").args(["-KILL", pid]).status();
    }
    let run = child.finish(Duration::from_secs(120)).expect_exit(3);
    let took = cut.elapsed();
    assert!(
        took < Duration::from_secs(60),
        "the run took {took:?} after the cut"
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(run.stderr.contains("node b ("), "{}", run.stderr);
    assert!(run.stderr.contains("was lost mid-run"), "{}", run.stderr);

    let report = run.json();
    let (a, b) = (node(&report, "a"), node(&report, "b"));
    // Node a ran its whole share, and it is in the report.
    assert_eq!(a.operations, 1200, "{a:#?}");
    assert!(a.complete, "{a:#?}");
    assert!(a.failures.is_empty(), "{a:#?}");
    // Node b is named as lost, with what it reported before.
    assert!(b.operations < 1200, "node b cannot have finished: {b:#?}");
    assert!(!b.complete, "{b:#?}");
    assert!(
        b.failures.iter().any(|f| f.contains("was lost mid-run")),
        "{b:#?}"
    );
    assert!(!report.run().complete);
    assert_eq!(report.run().all.count, 1200 + b.operations);

    // Nothing cut its worker but the dropped session: it ends by itself.
    assert!(
        wait_until(Duration::from_secs(10), || processes_of(users[1], ".")
            .is_empty()),
        "left on node b after its session dropped: {:?}",
        listed(users[1])
    );
    assert!(processes_of(users[0], "gorgon worker").is_empty());
}
