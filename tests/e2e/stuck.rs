//! A worker thread stuck in a call never hands its results over again:
//! the worker's main thread takes them over, so the calls it finished
//! before reach the report even though the worker is killed.

use std::time::{Duration, Instant};

use crate::support::{Gorgon, Report};

/// Numbers 0 to 49 finish on the one thread, then #50 never returns.
const FINISHED: u64 = 50;

/// Runs `gorgon`, which must end with its worker killed (exit 3), and
/// returns its report.
fn killed(gorgon: Gorgon) -> Report {
    let started = Instant::now();
    let outcome = gorgon.expect_exit(3);
    assert!(started.elapsed() < Duration::from_secs(30), "ended on time");
    outcome.assert_run_failed("was killed");
    outcome.json()
}

/// Every finished call is counted, in the results and in the timeline.
fn assert_finished_calls_kept(report: &Report, what: &str) {
    let run = report.run();
    assert_eq!(run.all.count, FINISHED, "{what}: {run:#?}");
    assert_eq!(run.count("OK"), FINISHED, "{what}");
    let in_timeline: u64 = run.timeline.iter().map(|p| p.calls).sum();
    assert_eq!(in_timeline, FINISHED, "{what}: {:?}", run.timeline_calls());
}

#[test]
fn calls_finished_before_a_call_that_never_returns_are_kept_at_the_runs_end() {
    for stuck in ["hang_at", "spin_at"] {
        let report = killed(
            Gorgon::testkit()
                .args(["--duration", "1s", "--grace", "1s", "-t", "1"])
                .set(stuck, FINISHED),
        );
        assert_finished_calls_kept(&report, stuck);
    }
}

#[test]
fn calls_finished_before_a_call_past_the_call_timeout_are_kept() {
    let report = killed(
        Gorgon::testkit()
            .args([
                "-n",
                "100",
                "-t",
                "1",
                "--call-timeout",
                "2s",
                "--grace",
                "1s",
            ])
            .set("hang_at", FINISHED),
    );
    assert_finished_calls_kept(&report, "--call-timeout");
}

/// On fibers the stuck call holds the whole thread: its fibers' results
/// are taken over all the same.
#[test]
fn calls_finished_on_fibers_before_a_spinning_call_are_kept() {
    let report = killed(
        Gorgon::testkit()
            .args([
                "--duration",
                "1s",
                "--grace",
                "1s",
                "-t",
                "1",
                "--fibers",
                "4",
            ])
            .set("spin_at", FINISHED),
    );
    assert_finished_calls_kept(&report, "--fibers 4");
}

/// What the stuck call measured before it got stuck is kept too, beside
/// the measurements of the calls that finished.
#[test]
fn a_step_the_stuck_call_finished_is_counted() {
    for stuck in ["hang_at", "spin_at"] {
        let report = killed(
            Gorgon::testkit()
                .args(["--duration", "1s", "--grace", "1s", "-t", "1"])
                .set(stuck, FINISHED)
                .set("measure", "work")
                .set("hang_in_step", "login"),
        );
        assert_finished_calls_kept(&report, stuck);
        let run = report.run();
        assert_eq!(run.measured("work"), FINISHED, "{stuck}");
        assert_eq!(run.measured("before login"), 1, "{stuck}");
        assert_eq!(run.measured("login"), 0, "{stuck}: never ended");
    }
}
