//! Every run ends in bounded time, whatever the plugin does: a call that
//! never returns, a teardown that hangs, an interrupt, a parent killed.
//! Elapsed times are checked with generous bounds only.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::reports::{children_of, is_worker};
use crate::support::{gorgon, gorgon_bin, plugin, Run};

fn testkit() -> String {
    plugin("gorgon-test-testkit").display().to_string()
}

fn start(args: &[&str]) -> Child {
    Command::new(gorgon_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gorgon starts")
}

fn signal(child: &Child, signal: Signal) {
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
}

/// Waits up to `limit` for `condition`, checking every 20 ms.
fn eventually(limit: Duration, condition: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// Waits until `child` has `workers` workers running.
fn wait_for_workers(child: &Child, workers: usize) -> Vec<u32> {
    let pid = child.id();
    assert!(
        eventually(Duration::from_secs(20), || {
            children_of(pid)
                .into_iter()
                .filter(|p| is_worker(*p))
                .count()
                == workers
        }),
        "the workers did not start"
    );
    children_of(pid)
        .into_iter()
        .filter(|p| is_worker(*p))
        .collect()
}

#[test]
fn a_call_that_never_returns_ends_at_the_duration_plus_the_grace() {
    let lib = testkit();
    for hostile in ["hang_at=3", "spin_at=3"] {
        let started = Instant::now();
        let run = gorgon(&[
            "run",
            "--plugin",
            &lib,
            "--duration",
            "1s",
            "--grace",
            "2s",
            "-t",
            "2",
            "--set",
            hostile,
            "--set",
            "sleep_us=500",
            "--output",
            "json",
        ]);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{hostile}: ended on time"
        );
        run.assert_run_failed("did not finish within 2s after the run's planned end");
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let first = &report["runs"][0];
        assert!(
            first["all"]["count"].as_u64().unwrap() > 0,
            "{hostile}: results kept"
        );
        assert_eq!(first["failures"].as_array().unwrap().len(), 1);
    }
}

#[test]
fn a_teardown_that_hangs_is_killed_after_the_grace_and_named() {
    let lib = testkit();
    let started = Instant::now();
    let run = gorgon(&[
        "run",
        "--plugin",
        &lib,
        "-n",
        "100",
        "--grace",
        "1s",
        "--set",
        "hang_teardown=1",
        "--output",
        "json",
    ]);
    assert!(started.elapsed() < Duration::from_secs(20));
    run.assert_run_failed("sent all its results but did not exit within 1s");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["runs"][0]["all"]["count"], 100, "every call counted");
}

fn finish(child: Child) -> (Run, Duration) {
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    (Run::from(output), started.elapsed())
}

#[test]
fn the_first_ctrl_c_stops_within_the_grace_and_reports() {
    let lib = testkit();
    let child = start(&[
        "run",
        "--plugin",
        &lib,
        "-n",
        "100000000",
        "-t",
        "2",
        "--grace",
        "1s",
        "--set",
        "hang_at=5",
        "--set",
        "sleep_us=500",
        "--output",
        "json",
    ]);
    wait_for_workers(&child, 1);
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, Signal::SIGINT);
    let (run, took) = finish(child);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(run.code, 130, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("the report");
    assert!(report["runs"][0]["all"]["count"].as_u64().unwrap() > 0);
    assert!(
        run.stderr.contains("did not stop within 1s"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_second_ctrl_c_ends_everything_at_once_and_still_reports() {
    let lib = testkit();
    let child = start(&[
        "run",
        "--plugin",
        &lib,
        "-n",
        "100000000",
        "-p",
        "2",
        "--grace",
        "10m",
        "--set",
        "spin_at=5",
        "--output",
        "json",
    ]);
    let workers = wait_for_workers(&child, 2);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, Signal::SIGINT);
    let (run, took) = finish(child);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(run.code, 130, "{}", run.stderr);
    serde_json::from_str::<serde_json::Value>(&run.stdout).expect("the report");
    assert!(run.stderr.contains("second interrupt"), "{}", run.stderr);
    assert!(workers.iter().all(|w| !is_worker(*w)), "no worker left");
}

#[test]
fn no_worker_outlives_a_killed_parent() {
    let lib = testkit();
    let mut child = start(&[
        "run",
        "--plugin",
        &lib,
        "-n",
        "100000000",
        "-p",
        "2",
        "-t",
        "2",
        "--set",
        "spin_at=5",
    ]);
    let workers = wait_for_workers(&child, 2);
    signal(&child, Signal::SIGKILL);
    child.wait().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || workers
            .iter()
            .all(|w| !is_worker(*w))),
        "workers {workers:?} outlived their parent"
    );
}

#[test]
fn an_overloaded_rate_ends_at_its_duration_and_counts_the_dropped_starts() {
    let lib = testkit();
    let started = Instant::now();
    // 10 ms calls on 2 lanes hold 200/s; 1000/s is asked for 2 s.
    let run = gorgon(&[
        "run",
        "--plugin",
        &lib,
        "--rate",
        "1000/s",
        "--duration",
        "2s",
        "-t",
        "2",
        "--set",
        "sleep_us=10000",
        "--output",
        "json",
    ])
    .ok();
    assert!(started.elapsed() < Duration::from_secs(15), "ended on time");
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let first = &report["runs"][0];
    let calls = first["all"]["count"].as_u64().unwrap();
    let dropped = first["open_model"]["dropped"].as_u64().unwrap();
    assert!(calls < 1000, "{calls} calls");
    assert_eq!(
        calls + dropped,
        2000,
        "every start due in the window is a call or dropped"
    );
}

#[test]
fn throughput_is_over_the_window_of_a_timed_run() {
    let lib = testkit();
    let run = gorgon(&[
        "run",
        "--plugin",
        &lib,
        "--rate",
        "2/s",
        "--duration",
        "2s",
        "--output",
        "json",
    ])
    .ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let ops = report["runs"][0]["all"]["ops_per_sec"].as_f64().unwrap();
    assert!((1.5..=2.5).contains(&ops), "{ops} ops/s for 2/s");
}

#[test]
fn a_rate_no_schedule_can_hold_is_refused() {
    let lib = testkit();
    gorgon(&[
        "run",
        "--plugin",
        &lib,
        "--rate",
        "1e12/s",
        "--duration",
        "1s",
    ])
    .assert_usage_error("cannot be scheduled");
}

#[test]
fn a_call_past_the_call_timeout_stops_a_counted_run_and_is_named() {
    let lib = testkit();
    let started = Instant::now();
    let run = gorgon(&[
        "run",
        "--plugin",
        &lib,
        "-n",
        "100000000",
        "-t",
        "2",
        "--call-timeout",
        "1s",
        "--grace",
        "1s",
        "--set",
        "hang_at=50",
        "--set",
        "sleep_us=100",
        "--output",
        "json",
    ]);
    assert!(started.elapsed() < Duration::from_secs(20), "ended on time");
    run.assert_run_failed("call #50 has run for");
    assert!(
        run.stderr.contains("past --call-timeout 1s"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("still running: #50 for"),
        "{}",
        run.stderr
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(report["runs"][0]["all"]["count"].as_u64().unwrap() > 0);
}

#[test]
fn a_stopped_worker_is_found_out_and_named() {
    let lib = testkit();
    let child = start(&[
        "run",
        "--plugin",
        &lib,
        "-n",
        "100000000",
        "-t",
        "2",
        "--set",
        "sleep_us=100",
        "--output",
        "json",
    ]);
    let workers = wait_for_workers(&child, 1);
    kill(Pid::from_raw(workers[0] as i32), Signal::SIGSTOP).unwrap();
    let (run, took) = finish(child);
    assert!(took < Duration::from_secs(60), "took {took:?}");
    run.assert_run_failed("stopped answering: no word for");
    assert!(!is_worker(workers[0]), "the stopped worker was killed");
}

#[test]
fn dropped_starts_can_gate_a_run() {
    let lib = testkit();
    let run = gorgon(&[
        "run",
        "--plugin",
        &lib,
        "--rate",
        "1000/s",
        "--duration",
        "1s",
        "--set",
        "sleep_us=10000",
        "--threshold",
        "dropped<1",
    ]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("dropped<1"), "{}", run.stderr);
}
