//! `--batch-scheduling`: every worker thread runs under SCHED_BATCH, and
//! only then.

use std::collections::BTreeMap;

use crate::support::Gorgon;

/// The policy gorgon's threads inherit when it sets none: this process's.
fn inherited_policy() -> &'static str {
    use nix::libc;
    // SAFETY: a plain system call about the calling thread.
    match unsafe { libc::sched_getscheduler(0) } {
        libc::SCHED_OTHER => "SCHED_OTHER",
        libc::SCHED_BATCH => "SCHED_BATCH",
        other => panic!("the tests run under an unexpected policy {other}"),
    }
}

/// Runs 600 calls of the testkit labelled with their thread's policy and
/// returns the labels with their counts.
fn policies(extra: &[&str]) -> BTreeMap<String, u64> {
    let report = Gorgon::testkit()
        .args(["-n", "600", "-p", "2", "-t", "3"])
        .set("label_policy", 1)
        .args(extra)
        .ok()
        .json();
    report
        .run()
        .labels()
        .into_iter()
        .map(|(label, count)| (label.to_string(), count))
        .collect()
}

#[test]
fn batch_scheduling_puts_every_worker_thread_under_sched_batch() {
    let batch = BTreeMap::from([("SCHED_BATCH".to_string(), 600)]);
    assert_eq!(policies(&["--batch-scheduling"]), batch);
    // The open model's threads too.
    assert_eq!(policies(&["--batch-scheduling", "--rate", "3000/s"]), batch);
    assert_eq!(
        policies(&[]),
        BTreeMap::from([(inherited_policy().to_string(), 600)])
    );
}
