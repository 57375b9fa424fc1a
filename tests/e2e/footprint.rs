//! What gorgon reports about its own cost: the peak memory of the parent
//! and of the workers in the JSON report, and the testkit probe that the
//! start-up benchmark (bench/startup.sh) reads.

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::{plugin, Gorgon, Report, RunFigures};

fn unix_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The parent's and the workers' peak memory, in bytes.
fn peaks(figures: &RunFigures) -> [(&str, Option<u64>); 2] {
    [
        ("parent_peak_rss_bytes", figures.parent_peak_rss_bytes),
        ("worker_peak_rss_bytes", figures.worker_peak_rss_bytes),
    ]
}

#[test]
fn the_json_report_carries_the_peak_memory_of_parent_and_workers() {
    let report = Gorgon::run(plugin("gorgon-noop"))
        .args(["-n", "20000", "-p", "2", "-t", "2"])
        .ok()
        .json();
    for (field, bytes) in peaks(report.run()) {
        let bytes = bytes.unwrap_or_else(|| panic!("{field} is a number: {report:?}"));
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
    Gorgon::run(plugin("gorgon-noop"))
        .args(["-n", "1000", "-q", "--save"])
        .arg(&saved)
        .ok();
    let original = Report::read(&saved);
    let again = Gorgon::command(["report"])
        .arg(&saved)
        .args(["--output", "json"])
        .ok()
        .json();
    for ((field, before), (_, after)) in peaks(original.run()).into_iter().zip(peaks(again.run())) {
        assert!(before.is_some(), "{field} saved");
        assert_eq!(after, before, "{field}");
    }
}

#[test]
fn the_first_call_probe_notes_each_worker_process_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("first-calls.txt");
    let before = unix_ns();
    Gorgon::testkit()
        .args(["-n", "600", "-p", "3", "-t", "2"])
        .set("first_call_file", file.display())
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
