//! Fibers (`--fibers N`): several calls at once on one worker thread, for
//! plugins that wait through `rec.wait`. The testkit plugin waits on a
//! pipe nobody writes to (`wait_us`), and can say how many calls were in
//! progress on its thread when one began (`label_in_flight`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{gorgon, gorgon_bin, numbers_seen, plugin, Run};

fn run_testkit(args: &[&str]) -> Run {
    let lib = plugin("gorgon-test-testkit").display().to_string();
    let mut all = vec!["run", "--plugin", &lib];
    all.extend_from_slice(args);
    gorgon(&all)
}

#[test]
fn every_number_once_across_processes_threads_and_fibers() {
    let dir = tempfile::tempdir().unwrap();
    let set = format!("numbers_dir={}", dir.path().display());
    run_testkit(&[
        "-n",
        "3001",
        "-p",
        "2",
        "-t",
        "3",
        "--fibers",
        "5",
        "--set",
        &set,
        "--set",
        "wait_us=100",
    ])
    .ok();
    assert_eq!(numbers_seen(dir.path()), (0..3001).collect::<Vec<_>>());
}

#[test]
fn a_thread_runs_its_fibers_calls_at_once_while_they_wait() {
    let args = [
        "-n",
        "40",
        "-t",
        "1",
        "--set",
        "wait_us=2000",
        "--set",
        "label_in_flight=1",
    ];
    let fibers = run_testkit(&[&args[..], &["--fibers", "4"]].concat()).ok();
    assert!(
        fibers
            .stdout
            .contains("1 process × 1 thread × 4 fibers, 40 operations"),
        "{}",
        fibers.stdout
    );
    let at_once: u64 = (1..=4)
        .map(|n| format!("{n} at once"))
        .filter(|label| !fibers.rows(label).is_empty())
        .map(|label| fibers.count(&label))
        .sum();
    assert_eq!(
        at_once, 40,
        "every call is counted once:\n{}",
        fibers.stdout
    );
    assert!(
        fibers.count("4 at once") >= 30,
        "four calls were in progress on the one thread:\n{}",
        fibers.stdout
    );
    let threads = run_testkit(&args).ok();
    assert_eq!(threads.count("1 at once"), 40, "{}", threads.stdout);
}

#[test]
fn a_timed_run_on_fibers_makes_as_many_calls_as_its_lanes_allow() {
    // One thread, 10 fibers, 10 ms per call: about 1,000 calls in a second
    // where the thread alone could make at most 100.
    let run = run_testkit(&[
        "--duration",
        "1s",
        "-t",
        "1",
        "--fibers",
        "10",
        "--set",
        "wait_us=10000",
    ])
    .ok();
    let count = run.count("OK");
    assert!(
        (300..=1_010).contains(&count),
        "{count} calls:\n{}",
        run.stdout
    );
}

#[test]
fn the_open_model_shares_its_schedule_among_fibers() {
    // 200/s of 10 ms calls needs two calls in progress at a time: one
    // thread with 4 fibers holds it, where the thread alone would start
    // about 200 in the 2 s.
    let run = run_testkit(&[
        "--rate",
        "200/s",
        "--duration",
        "2s",
        "-t",
        "1",
        "--fibers",
        "4",
        "--set",
        "wait_us=10000",
        "--output",
        "json",
    ])
    .ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["load"]["fibers"], 4);
    let first = &report["runs"][0];
    let count = first["operations"].as_u64().unwrap();
    assert!((360..=440).contains(&count), "{count} operations");
    // (Late starts are not asserted: on a loaded machine a whole time
    // slice can pass before the thread runs again, fibers or not.)
}

#[test]
fn panics_on_fibers_are_counted_and_the_run_goes_on() {
    let run = run_testkit(&[
        "-n",
        "1000",
        "-p",
        "2",
        "-t",
        "2",
        "--fibers",
        "4",
        "--set",
        "panic_every=10",
        "--set",
        "wait_us=50",
    ])
    .with_failed_calls();
    assert_eq!(run.count("panic"), 100, "{}", run.stdout);
    assert_eq!(run.count("OK"), 900, "{}", run.stdout);
    assert!(!run.stderr.contains("panicked at"), "{}", run.stderr);
}

#[test]
fn a_worker_that_dies_on_fibers_is_named_and_the_others_are_reported() {
    let run = run_testkit(&[
        "-n",
        "2000",
        "-p",
        "2",
        "-t",
        "2",
        "--fibers",
        "3",
        "--set",
        "abort_at=7",
        "--set",
        "wait_us=50",
    ]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("SIGABRT"), "{}", run.stderr);
    assert!(
        run.count("OK") >= 1000,
        "the other worker's share:\n{}",
        run.stdout
    );
}

#[test]
fn a_failing_setup_on_a_fiber_stops_the_run_before_it_starts() {
    let run = run_testkit(&[
        "-n",
        "10",
        "-t",
        "2",
        "--fibers",
        "3",
        "--set",
        "fail_setup=1",
    ]);
    run.assert_run_failed("asked to fail by fail_setup");
}

#[test]
fn bad_fiber_counts_are_refused() {
    for bad in ["0", "many", "-3", "100001"] {
        let flag = format!("--fibers={bad}");
        run_testkit(&["-n", "10", &flag]).assert_usage_error("--fibers");
    }
    run_testkit(&["--debug", "--fibers", "2"]).assert_usage_error("--fibers");
}

#[test]
fn ctrl_c_stops_fibers_in_their_waits_and_keeps_the_results() {
    let lib = plugin("gorgon-test-testkit").display().to_string();
    let child = Command::new(gorgon_bin())
        .args([
            "run",
            "--plugin",
            &lib,
            "-n",
            "100000000",
            "-p",
            "2",
            "-t",
            "2",
            "--fibers",
            "8",
            "--set",
            "wait_us=300000",
            "--output",
            "json",
            "-q",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let stopped = Instant::now();
    let run = Run::from(child.wait_with_output().unwrap());
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "a stop reaches fibers within one wait"
    );
    assert_eq!(run.code, 130, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["interrupted"], true);
    let done = report["runs"][0]["operations"].as_u64().unwrap();
    // 32 lanes of 300 ms calls for about 1.5 s.
    assert!(done >= 32, "{done} operations");
}

#[test]
fn the_timeline_places_each_fibers_call_in_the_second_it_ended() {
    // At 8/s calls are due at 0, 0.125, … s and wait 50 ms: eight end in
    // each second, on four fibers of one thread that share its histograms.
    let run = run_testkit(&[
        "--rate",
        "8/s",
        "--duration",
        "3s",
        "-t",
        "1",
        "--fibers",
        "4",
        "--set",
        "wait_us=50000",
        "--output",
        "json",
        "-q",
    ])
    .ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let points = crate::support::timeline_calls(&report);
    assert_eq!(points, [(0, 8), (1000, 8), (2000, 8)]);
}

#[test]
fn warm_up_calls_on_fibers_are_left_out() {
    let run = run_testkit(&[
        "-n",
        "200",
        "--warmup",
        "40",
        "-p",
        "2",
        "-t",
        "2",
        "--fibers",
        "3",
        "--set",
        "wait_us=200",
        "--set",
        "measure=step",
        "--output",
        "json",
    ])
    .ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let first = &report["runs"][0];
    assert_eq!(first["operations"], 200);
    assert_eq!(first["warmup_operations"], 40);
    assert_eq!(first["all"]["count"], 200);
    let step = first["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "step")
        .expect("the step measurement");
    assert_eq!(step["count"], 200, "no warm-up call's measurement");
}

#[test]
fn more_fibers_than_the_process_can_map_are_refused_before_the_run() {
    let limit: u32 = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Two mappings per fiber's stack: half the limit and some more cannot
    // fit in one worker process.
    let fibers = limit / 2 + 500;
    if fibers > 100_000 {
        eprintln!("vm.max_map_count is {limit}: --fibers cannot go past it here");
        return;
    }
    let run = run_testkit(&["-n", "1", "-t", "1", "--fibers", &fibers.to_string()]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("vm.max_map_count") && !run.stderr.contains("plugin"),
        "{}",
        run.stderr
    );
}
