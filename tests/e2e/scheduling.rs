//! `--batch-scheduling`: every worker thread runs under SCHED_BATCH, and
//! only then.

use serde_json::Value;

use crate::support::{gorgon, plugin};

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
fn policies(extra: &[&str]) -> Vec<(String, u64)> {
    let testkit = plugin("gorgon-test-testkit").display().to_string();
    let mut args = vec![
        "run",
        "--plugin",
        &testkit,
        "-n",
        "600",
        "-p",
        "2",
        "-t",
        "3",
        "--set",
        "label_policy=1",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let run = gorgon(&args).ok();
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    report["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn batch_scheduling_puts_every_worker_thread_under_sched_batch() {
    let batch = vec![("SCHED_BATCH".to_string(), 600)];
    assert_eq!(policies(&["--batch-scheduling"]), batch);
    // The open model's threads too.
    assert_eq!(policies(&["--batch-scheduling", "--rate", "3000/s"]), batch);
    assert_eq!(policies(&[]), vec![(inherited_policy().to_string(), 600)]);
}
