//! What gorgon reports about its own cost: the peak memory of the parent
//! and of the workers in the JSON report, and the testkit probe that the
//! start-up benchmark (bench/startup.sh) reads.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::support::{gorgon, plugin};

fn path(name: &str) -> String {
    plugin(name).display().to_string()
}

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn the_json_report_carries_the_peak_memory_of_parent_and_workers() {
    let run = gorgon(&[
        "run",
        "--plugin",
        &path("gorgon-noop"),
        "-n",
        "20000",
        "-p",
        "2",
        "-t",
        "2",
        "--output",
        "json",
    ])
    .ok();
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let first = &report["runs"][0];
    for field in ["parent_peak_rss_bytes", "worker_peak_rss_bytes"] {
        let bytes = first[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{field} is a number: {first}"));
        // A Rust process with its libraries mapped: megabytes, not bytes,
        // and not gigabytes for a no-op.
        assert!(
            (1 << 20..1 << 30).contains(&bytes),
            "{field} = {bytes} bytes"
        );
    }
}

#[test]
fn a_report_read_back_keeps_the_memory_figures() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("run.json");
    gorgon(&[
        "run",
        "--plugin",
        &path("gorgon-noop"),
        "-n",
        "1000",
        "--save",
        saved.to_str().unwrap(),
        "-q",
    ])
    .ok();
    let original: Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    let again = gorgon(&["report", saved.to_str().unwrap(), "--output", "json"]).ok();
    let again: Value = serde_json::from_str(&again.stdout).unwrap();
    for field in ["parent_peak_rss_bytes", "worker_peak_rss_bytes"] {
        assert!(original["runs"][0][field].is_u64(), "{field} saved");
        assert_eq!(again["runs"][0][field], original["runs"][0][field]);
    }
}

#[test]
fn the_first_call_probe_notes_each_worker_process_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("first-calls.txt");
    let before = unix_ns();
    gorgon(&[
        "run",
        "--plugin",
        &path("gorgon-test-testkit"),
        "-n",
        "600",
        "-p",
        "3",
        "-t",
        "2",
        "--set",
        &format!("first_call_file={}", file.display()),
        "-q",
    ])
    .ok();
    let after = unix_ns();
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<(u128, u32)> = text
        .lines()
        .map(|line| {
            let (ns, pid) = line.split_once(' ').expect("`NS PID`");
            (ns.parse().unwrap(), pid.parse().unwrap())
        })
        .collect();
    assert_eq!(lines.len(), 3, "one line per worker process:\n{text}");
    let pids: BTreeSet<u32> = lines.iter().map(|(_, pid)| *pid).collect();
    assert_eq!(pids.len(), 3, "three distinct processes:\n{text}");
    for (ns, _) in &lines {
        assert!((before..=after).contains(ns), "{before} <= {ns} <= {after}");
    }
}
