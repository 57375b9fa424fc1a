//! Every run ends in bounded time, whatever the plugin does: a call that
//! never returns, a teardown that hangs, an interrupt, a parent killed.
//! Elapsed times are checked with generous bounds only.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::reports::{children_of, is_worker};
use crate::support::{gorgon_bin, plugin, wait_until, Gorgon, Report, Run};

/// Spawns `gorgon` as built, its output piped for [`finish`].
fn start(gorgon: Gorgon) -> Child {
    gorgon
        .to_command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gorgon starts")
}

fn signal(child: &Child, signal: Signal) {
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
}

/// The workers `pid` has running.
fn workers_of(pid: u32) -> Vec<u32> {
    children_of(pid)
        .into_iter()
        .filter(|p| is_worker(*p))
        .collect()
}

/// Waits until `child` has `workers` workers running.
fn wait_for_workers(child: &Child, workers: usize) -> Vec<u32> {
    let pid = child.id();
    assert!(
        wait_until(Duration::from_secs(20), || workers_of(pid).len() == workers),
        "the workers did not start"
    );
    workers_of(pid)
}

/// Waits for `child` to exit: what it did, and how long that took.
fn finish(child: Child) -> (Run, Duration) {
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    (Run::from(output), started.elapsed())
}

/// The JSON report a spawned run printed on stdout.
fn report_of(run: &Run) -> Report {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{}\n{}", run.stdout, run.stderr))
}

#[test]
fn a_call_that_never_returns_ends_at_the_duration_plus_the_grace() {
    for hostile in ["hang_at", "spin_at"] {
        let started = Instant::now();
        let outcome = Gorgon::testkit()
            .args(["--duration", "1s", "--grace", "2s", "-t", "2"])
            .set(hostile, 3)
            .set("sleep_us", 500)
            .expect_exit(3);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{hostile}: ended on time"
        );
        outcome.assert_run_failed("did not finish within 2s after the run's planned end");
        let report = outcome.json();
        let run = report.run();
        assert!(run.all.count > 0, "{hostile}: results kept");
        assert_eq!(run.failures.len(), 1, "{:?}", run.failures);
    }
}

#[test]
fn a_teardown_that_hangs_is_killed_after_the_grace_and_named() {
    let started = Instant::now();
    let outcome = Gorgon::testkit()
        .args(["-n", "100", "--grace", "1s"])
        .set("hang_teardown", 1)
        .expect_exit(3);
    assert!(started.elapsed() < Duration::from_secs(20));
    outcome.assert_run_failed("sent all its results but did not exit within 1s");
    assert_eq!(outcome.json().run().all.count, 100, "every call counted");
}

#[test]
fn the_first_ctrl_c_stops_within_the_grace_and_reports() {
    let child = start(
        Gorgon::testkit()
            .args(["-n", "100000000", "-t", "2", "--grace", "1s"])
            .set("hang_at", 5)
            .set("sleep_us", 500),
    );
    wait_for_workers(&child, 1);
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, Signal::SIGINT);
    let (run, took) = finish(child);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(run.code, 130, "{}", run.stderr);
    let report = report_of(&run);
    assert!(report.interrupted, "{report:#?}");
    assert!(report.run().all.count > 0);
    assert!(
        run.stderr.contains("did not stop within 1s"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_second_ctrl_c_ends_everything_at_once_and_still_reports() {
    let child = start(
        Gorgon::testkit()
            .args(["-n", "100000000", "-p", "2", "--grace", "10m"])
            .set("spin_at", 5),
    );
    let workers = wait_for_workers(&child, 2);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, Signal::SIGINT);
    let (run, took) = finish(child);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(run.code, 130, "{}", run.stderr);
    report_of(&run);
    assert!(run.stderr.contains("second interrupt"), "{}", run.stderr);
    assert!(workers.iter().all(|w| !is_worker(*w)), "no worker left");
}

#[test]
fn no_worker_outlives_a_killed_parent() {
    let mut child = start(
        Gorgon::testkit()
            .args(["-n", "100000000", "-p", "2", "-t", "2"])
            .set("spin_at", 5),
    );
    let workers = wait_for_workers(&child, 2);
    signal(&child, Signal::SIGKILL);
    child.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || workers
            .iter()
            .all(|w| !is_worker(*w))),
        "workers {workers:?} outlived their parent"
    );
}

#[test]
fn an_overloaded_rate_ends_at_its_duration_and_counts_the_dropped_starts() {
    let started = Instant::now();
    // 10 ms calls on 2 lanes hold 200/s; 1000/s is asked for 2 s.
    let report = Gorgon::testkit()
        .args(["--rate", "1000/s", "--duration", "2s", "-t", "2"])
        .set("sleep_us", 10000)
        .ok()
        .json();
    assert!(started.elapsed() < Duration::from_secs(15), "ended on time");
    let run = report.run();
    let calls = run.all.count;
    let dropped = run.open_model.as_ref().expect("an open model").dropped;
    assert!(calls < 1000, "{calls} calls");
    assert_eq!(
        calls + dropped,
        2000,
        "every start due in the window is a call or dropped"
    );
}

#[test]
fn throughput_is_over_the_window_of_a_timed_run() {
    let report = Gorgon::testkit()
        .args(["--rate", "2/s", "--duration", "2s"])
        .ok()
        .json();
    let ops = report.run().all.ops_per_sec;
    assert!((1.5..=2.5).contains(&ops), "{ops} ops/s for 2/s");
}

#[test]
fn a_rate_no_schedule_can_hold_is_refused() {
    Gorgon::testkit()
        .args(["--rate", "1e12/s", "--duration", "1s"])
        .usage_error("cannot be scheduled");
}

#[test]
fn a_call_past_the_call_timeout_stops_a_counted_run_and_is_named() {
    let started = Instant::now();
    let outcome = Gorgon::testkit()
        .args(["-n", "100000000", "-t", "2", "--call-timeout", "1s"])
        .args(["--grace", "1s"])
        .set("hang_at", 50)
        .set("sleep_us", 100)
        .expect_exit(3);
    assert!(started.elapsed() < Duration::from_secs(20), "ended on time");
    outcome.assert_run_failed("call #50 has run for");
    assert!(
        outcome.stderr.contains("past --call-timeout 1s"),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("still running: #50 for"),
        "{}",
        outcome.stderr
    );
    assert!(outcome.json().run().all.count > 0);
}

/// A call stuck inside a step the plugin times is named with the step,
/// in the sentence on stderr and in the report's failures.
#[test]
fn a_call_stuck_in_a_step_is_named_with_its_step() {
    // Past the run's end: `hang_at` sleeps inside `rec.start("login")`.
    // (The builder builds the plugins before the clock starts.)
    let gorgon = Gorgon::testkit()
        .args(["--duration", "1s", "--grace", "1s", "-t", "2"])
        .set("hang_at", 50)
        .set("hang_in_step", "login")
        .set("sleep_us", 500);
    let started = Instant::now();
    let outcome = gorgon.expect_exit(3);
    assert!(started.elapsed() < Duration::from_secs(20), "ended on time");
    let named = "still running: #50 for";
    outcome.assert_run_failed(named);
    let report = outcome.json();
    let failures = &report.run().failures;
    let failure = failures.iter().find(|f| f.contains(named));
    let failure = failure.unwrap_or_else(|| panic!("#50 is not named: {failures:?}"));
    assert!(failure.contains(" in step \"login\""), "{failure}");
    assert!(
        outcome.stderr.contains(failure.as_str()),
        "{}",
        outcome.stderr
    );

    // Past `--call-timeout`: `spin_at` spins inside `rec.measure("pay")`,
    // on a fiber this time.
    let started = Instant::now();
    let outcome = Gorgon::testkit()
        .args(["-n", "100000000", "-t", "2", "--fibers", "2"])
        .args(["--call-timeout", "1s", "--grace", "1s"])
        .set("spin_at", 70)
        .set("hang_in_step", "pay")
        .set("sleep_us", 100)
        .expect_exit(3);
    assert!(started.elapsed() < Duration::from_secs(20), "ended on time");
    outcome.assert_run_failed("call #70 has run for");
    let report = outcome.json();
    let failures = &report.run().failures;
    let timed_out = failures
        .iter()
        .find(|f| f.contains("past --call-timeout 1s"));
    let timed_out = timed_out.unwrap_or_else(|| panic!("no call-timeout: {failures:?}"));
    assert!(timed_out.contains("call #70 has run for"), "{timed_out}");
    assert!(
        timed_out.contains(" in step \"pay\", past --call-timeout"),
        "{timed_out}"
    );
}

#[test]
fn a_stopped_worker_is_found_out_and_named() {
    // Spawned as before the builder: through the builder (which adds
    // RUST_BACKTRACE) this test did not end within its bound, not yet
    // understood.
    let lib = plugin("gorgon-test-testkit");
    let child = std::process::Command::new(gorgon_bin())
        .arg("run")
        .arg("--plugin")
        .arg(&lib)
        .args(["-n", "100000000", "-t", "2", "--set", "sleep_us=100"])
        .args(["--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gorgon starts");
    let workers = wait_for_workers(&child, 1);
    kill(Pid::from_raw(workers[0] as i32), Signal::SIGSTOP).unwrap();
    let (run, took) = finish(child);
    assert!(took < Duration::from_secs(60), "took {took:?}");
    run.assert_run_failed("stopped answering: no word for");
    assert!(!is_worker(workers[0]), "the stopped worker was killed");
}

#[test]
fn dropped_starts_can_gate_a_run() {
    let outcome = Gorgon::testkit()
        .args(["--rate", "1000/s", "--duration", "1s"])
        .set("sleep_us", 10000)
        .args(["--threshold", "dropped<1"])
        .expect_exit(1);
    assert!(outcome.stderr.contains("dropped<1"), "{}", outcome.stderr);
    let report = outcome.json();
    let gate = &report.thresholds[0];
    assert_eq!(gate.expression, "dropped<1");
    assert!(!gate.passed, "{report:#?}");
}
