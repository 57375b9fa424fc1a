//! Every run ends in bounded time, whatever the plugin does: a call that
//! never returns, a teardown that hangs, an interrupt, a parent killed.
//! Elapsed times are checked with generous bounds only.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{is_worker, threads_in_setup, wait_until, Gorgon, Outcome, Running};

/// A process the test stopped: killed when the test ends, should gorgon
/// not have (a stopped process reads nothing, so it would not notice its
/// parent gone).
struct KilledOnDrop(u32);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        if is_worker(self.0) {
            let _ = kill(Pid::from_raw(self.0 as i32), Signal::SIGKILL);
        }
    }
}

/// How many of `workers` still run.
fn workers_left(workers: &[u32]) -> usize {
    workers.iter().filter(|&&w| is_worker(w)).count()
}

/// Waits for a spawned run to end: what it did, and how long that took
/// (the bound on the wait itself is wider than any the tests assert).
fn finish(run: Running) -> (Outcome, Duration) {
    let started = Instant::now();
    let outcome = run.finish(Duration::from_secs(120));
    (outcome, started.elapsed())
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
    let mut child = Gorgon::testkit()
        .args(["-n", "100000000", "-t", "2", "--grace", "1s"])
        .set("hang_at", 5)
        .set("sleep_us", 500)
        .spawn();
    child.wait_for_workers(1);
    // Call #5 hangs once it has begun: the first status line counts calls.
    child.wait_for_line(" ops (", Duration::from_secs(30));
    child.signal(Signal::SIGINT);
    let (run, took) = finish(child);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let run = run.expect_exit(130);
    let report = run.json();
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
    let mut child = Gorgon::testkit()
        .args(["-n", "100000000", "-p", "2", "--grace", "10m"])
        .set("spin_at", 5)
        .spawn();
    let workers = child.wait_for_workers(2);
    // Calls are made, so #5 spins: the first status line counts them.
    child.wait_for_line(" ops (", Duration::from_secs(30));
    child.signal(Signal::SIGINT);
    // The first interrupt is taken once the worker without the spinning
    // call (#5 is the other's) has stopped and gone; the other would use
    // up its ten minutes' grace. Now the second.
    child.wait_for(
        "the first interrupt to stop a worker",
        Duration::from_secs(30),
        || workers_left(&workers) == 1,
    );
    child.signal(Signal::SIGINT);
    let (run, took) = finish(child);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let run = run.expect_exit(130);
    run.json();
    assert!(run.stderr.contains("second interrupt"), "{}", run.stderr);
    assert!(workers.iter().all(|w| !is_worker(*w)), "no worker left");
}

#[test]
fn no_worker_outlives_a_killed_parent() {
    let mut child = Gorgon::testkit()
        .args(["-n", "100000000", "-p", "2", "-t", "2"])
        .set("spin_at", 5)
        .spawn();
    let workers = child.wait_for_workers(2);
    child.signal(Signal::SIGKILL);
    assert!(
        wait_until(Duration::from_secs(10), || !child.is_running()),
        "a killed gorgon did not end"
    );
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
    let mut child = Gorgon::testkit()
        .args(["-n", "100000000", "-t", "2"])
        .set("sleep_us", 100)
        .spawn();
    let workers = child.wait_for_workers(1);
    // Stopped once the run has begun (the first status line comes after
    // `go`); one stopped in its setup is the next test's.
    child.wait_for_line(" ops (", Duration::from_secs(30));
    let _stopped = KilledOnDrop(workers[0]);
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

#[test]
fn a_worker_stopped_in_its_setup_is_found_out_and_the_run_does_not_start() {
    let mut child = Gorgon::testkit()
        .args(["-n", "10", "-p", "2", "-q"])
        .set("setup_sleep_ms", 600000)
        .spawn();
    let workers = child.wait_for_workers(2);
    child.wait_for(
        "both workers in their setup",
        Duration::from_secs(30),
        || workers.iter().all(|&w| threads_in_setup(w) == 1),
    );
    let _stopped = KilledOnDrop(workers[0]);
    kill(Pid::from_raw(workers[0] as i32), Signal::SIGSTOP).unwrap();
    let (run, took) = finish(child);
    assert!(took < Duration::from_secs(60), "took {took:?}");
    run.assert_run_failed("said nothing for 10s while starting");
    assert_eq!(workers_left(&workers), 0, "both workers were ended");
}

#[test]
fn a_setup_that_never_returns_is_bounded_by_the_call_timeout() {
    let started = Instant::now();
    let run = Gorgon::testkit()
        .args(["-n", "10", "-t", "2", "--call-timeout", "2s"])
        .set("setup_sleep_ms", 600000)
        .run_failed("past --call-timeout 2s; the run did not start");
    assert!(
        run.stderr.contains("(0 of its threads set up)"),
        "{}",
        run.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(60));
}
