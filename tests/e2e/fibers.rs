//! Fibers (`--fibers N`): several calls at once on one worker thread, for
//! plugins that wait through `rec.wait`. The testkit plugin waits on a
//! pipe nobody writes to (`wait_us`), and can say how many calls were in
//! progress on its thread when one began (`label_in_flight`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::{numbers_seen, numbers_written, plugin, Gorgon};

#[test]
fn every_number_once_across_processes_threads_and_fibers() {
    let dir = tempfile::tempdir().unwrap();
    Gorgon::testkit()
        .args(["-n", "3001", "-p", "2", "-t", "3", "--fibers", "5"])
        .set("numbers_dir", dir.path().display())
        .set("wait_us", 100)
        .ok();
    assert_eq!(numbers_seen(dir.path()), (0..3001).collect::<Vec<_>>());
}

#[test]
fn a_thread_runs_its_fibers_calls_at_once_while_they_wait() {
    let in_flight = || {
        Gorgon::testkit()
            .args(["-n", "40", "-t", "1"])
            .set("wait_us", 2000)
            .set("label_in_flight", 1)
    };
    let fibers = in_flight().args(["--fibers", "4"]).table().ok();
    assert!(
        fibers
            .stdout
            .contains("1 process × 1 thread × 4 fibers, 40 operations"),
        "{}",
        fibers.stdout
    );
    let report = fibers.json();
    assert_eq!(report.load.fibers, 4);
    let labels = report.run().labels();
    let at_once: u64 = (1..=4)
        .map(|n| report.run().count(&format!("{n} at once")))
        .sum();
    assert_eq!(at_once, 40, "every call is counted once: {labels:?}");
    assert!(
        report.run().count("4 at once") >= 30,
        "four calls were in progress on the one thread: {labels:?}"
    );
    let threads = in_flight().ok().json();
    assert_eq!(threads.run().labels(), BTreeMap::from([("1 at once", 40)]));
}

#[test]
fn a_timed_run_on_fibers_makes_as_many_calls_as_its_lanes_allow() {
    // One thread, 10 fibers, 10 ms per call: about 1,000 calls in a second
    // where the thread alone could make at most 100.
    let report = Gorgon::testkit()
        .args(["--duration", "1s", "-t", "1", "--fibers", "10"])
        .set("wait_us", 10000)
        .ok()
        .json();
    let count = report.run().count("OK");
    assert!(
        (300..=1_010).contains(&count),
        "{count} calls: {:?}",
        report.run().labels()
    );
}

#[test]
fn the_open_model_shares_its_schedule_among_fibers() {
    // 200/s of 10 ms calls needs two calls in progress at a time: one
    // thread with 4 fibers holds it, where the thread alone would start
    // about 200 in the 2 s.
    let report = Gorgon::testkit()
        .args([
            "--rate",
            "200/s",
            "--duration",
            "2s",
            "-t",
            "1",
            "--fibers",
            "4",
        ])
        .set("wait_us", 10000)
        .ok()
        .json();
    assert_eq!(report.load.fibers, 4);
    let count = report.run().operations;
    assert!((360..=440).contains(&count), "{count} operations");
    // (Late starts are not asserted: on a loaded machine a whole time
    // slice can pass before the thread runs again, fibers or not.)
}

#[test]
fn panics_on_fibers_are_counted_and_the_run_goes_on() {
    let run = Gorgon::testkit()
        .args(["-n", "1000", "-p", "2", "-t", "2", "--fibers", "4"])
        .set("panic_every", 10)
        .set("wait_us", 50)
        .with_failed_calls();
    assert_eq!(
        run.json().run().labels(),
        BTreeMap::from([("panic", 100), ("OK", 900)])
    );
    assert!(!run.stderr.contains("panicked at"), "{}", run.stderr);
}

#[test]
fn a_worker_that_dies_on_fibers_is_named_and_the_others_are_reported() {
    let run = Gorgon::testkit()
        .args(["-n", "2000", "-p", "2", "-t", "2", "--fibers", "3"])
        .set("abort_at", 7)
        .set("wait_us", 50)
        .expect_exit(3);
    assert!(run.stderr.contains("SIGABRT"), "{}", run.stderr);
    let report = run.json();
    assert!(!report.run().complete);
    assert!(
        report.run().count("OK") >= 1000,
        "the other worker's share: {:?}",
        report.run().labels()
    );
}

#[test]
fn a_failing_setup_on_a_fiber_stops_the_run_before_it_starts() {
    Gorgon::testkit()
        .args(["-n", "10", "-t", "2", "--fibers", "3"])
        .set("fail_setup", 1)
        .run_failed("asked to fail by fail_setup");
}

#[test]
fn bad_fiber_counts_are_refused() {
    for bad in ["0", "many", "-3", "100001"] {
        Gorgon::testkit()
            .args(["-n", "10", &format!("--fibers={bad}")])
            .usage_error("--fibers");
    }
    Gorgon::testkit()
        .debug()
        .args(["--fibers", "2"])
        .usage_error("--fibers");
}

#[test]
fn ctrl_c_stops_fibers_in_their_waits_and_keeps_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Gorgon::testkit()
        .args([
            "-n",
            "100000000",
            "-p",
            "2",
            "-t",
            "2",
            "--fibers",
            "8",
            "-q",
        ])
        .set("wait_us", 300000)
        .set("numbers_dir", dir.path().display())
        .spawn();
    // At most 32 calls (2 × 2 × 8 lanes) are in progress at once: once 64
    // have begun, at least 32 have ended.
    child.wait_for("64 calls to begin", Duration::from_secs(60), || {
        numbers_written(dir.path()) >= 64
    });
    child.signal(nix::sys::signal::Signal::SIGINT);
    let stopped = Instant::now();
    let run = child.finish(Duration::from_secs(60));
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "a stop reaches fibers within one wait"
    );
    let report = run.expect_exit(130).json();
    assert!(report.interrupted);
    let done = report.run().operations;
    assert!(done >= 32, "{done} operations");
}

#[test]
fn the_timeline_places_each_fibers_call_in_the_second_it_ended() {
    // At 8/s calls are due at 0, 0.125, … s and wait 50 ms: eight end in
    // each second, on four fibers of one thread that share its histograms.
    let report = Gorgon::testkit()
        .args(["--rate", "8/s", "--duration", "3s", "-t", "1"])
        .args(["--fibers", "4", "-q"])
        .set("wait_us", 50000)
        .ok()
        .json();
    let points = crate::support::per_second(&report.run().timeline_calls());
    // Every call is in exactly one interval.
    assert_eq!(report.run().operations, 24);
    assert_eq!(points.iter().map(|(_, calls)| calls).sum::<u64>(), 24);
    // One interval per second (a fourth only if a late call ended past the
    // end), with about eight calls each: the last call due in a second ends
    // 75 ms before its end, and a busy machine may delay one past it.
    assert!((3..=4).contains(&points.len()), "{points:?}");
    for (second, &(start_ms, calls)) in points.iter().take(3).enumerate() {
        assert_eq!(start_ms, second as u64 * 1000, "{points:?}");
        assert!((6..=10).contains(&calls), "{points:?}");
    }
}

#[test]
fn warm_up_calls_on_fibers_are_left_out() {
    let report = Gorgon::testkit()
        .args([
            "-n", "200", "--warmup", "40", "-p", "2", "-t", "2", "--fibers", "3",
        ])
        .set("wait_us", 200)
        .set("measure", "step")
        .ok()
        .json();
    let figures = report.run();
    assert_eq!(figures.operations, 200);
    assert_eq!(figures.warmup_operations, 40);
    assert_eq!(figures.all.count, 200);
    assert_eq!(
        figures.measured("step"),
        200,
        "no warm-up call's measurement"
    );
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
    let run = Gorgon::testkit()
        .args(["-n", "1", "-t", "1", "--fibers", &fibers.to_string()])
        .expect_exit(2);
    assert!(
        run.stderr.contains("vm.max_map_count") && !run.stderr.contains("plugin"),
        "{}",
        run.stderr
    );
}

#[test]
fn fibers_with_a_plugin_that_never_waits_say_they_had_no_effect() {
    let run = Gorgon::run(plugin("gorgon-noop"))
        .args(["-n", "100", "--fibers", "4"])
        .ok();
    assert!(
        run.stderr.contains("--fibers 4 had no effect"),
        "{}",
        run.stderr
    );
    let run = Gorgon::testkit()
        .args(["-n", "50", "--fibers", "4"])
        .set("wait_us", 100)
        .ok();
    assert!(!run.stderr.contains("had no effect"), "{}", run.stderr);
}
