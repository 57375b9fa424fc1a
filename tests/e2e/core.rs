//! The core: plugins multiplied over processes and threads, exact counts,
//! unique numbers, measurements, suites, panics, crashes, debug mode.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::{numbers_seen, plugin, Gorgon};

#[test]
fn hash_counts_are_exact_across_processes_and_threads() {
    let run = Gorgon::run(plugin("gorgon-hash"))
        .args(["-n", "4000", "-p", "2", "-t", "4"])
        .table()
        .ok();
    let report = run.json();
    let figures = report.run();
    assert_eq!(figures.all.count, 4000);
    assert_eq!(
        figures.labels(),
        BTreeMap::from([("SUCCESS", 3200), ("FAIL", 800)])
    );
    assert_eq!((figures.processes, figures.threads), (2, 4));
    // The table says the shape and starts with the total time.
    assert!(
        run.stdout.contains("2 processes × 4 threads"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("\nTotal time: "), "{}", run.stdout);
}

fn assert_numbers_cover(processes: usize, threads: usize, n: u64) {
    let dir = tempfile::tempdir().unwrap();
    Gorgon::testkit()
        .args(["-n", &n.to_string()])
        .args(["-p", &processes.to_string(), "-t", &threads.to_string()])
        .set("numbers_dir", dir.path().display())
        .ok();
    assert_eq!(numbers_seen(dir.path()), (0..n).collect::<Vec<_>>());
    // One file per worker thread that got work: several processes took part.
    let pids: BTreeSet<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name();
            let name = name.to_string_lossy();
            name.split('-').next().unwrap().to_string()
        })
        .collect();
    assert_eq!(pids.len(), processes);
}

#[test]
fn numbers_are_unique_and_cover_the_range_2x4() {
    assert_numbers_cover(2, 4, 4000);
}

#[test]
fn numbers_are_unique_and_cover_the_range_4x10() {
    assert_numbers_cover(4, 10, 4001);
}

#[test]
fn measurements_get_their_own_lines() {
    let report = Gorgon::run(plugin("gorgon-subcalls"))
        .args(["-n", "50", "-t", "2"])
        .ok()
        .json();
    let figures = report.run();
    assert_eq!(figures.labels(), BTreeMap::from([("200", 50)]));
    assert_eq!(
        figures.measured_names(),
        BTreeMap::from([("http call 1", 50), ("http call 2", 50)])
    );
    // A sub-step cannot take longer than the call that contains it.
    let step = &figures.measurement("http call 1").unwrap().summary;
    assert!(
        step.avg_ns < figures.all.avg_ns,
        "step {} ns, call {} ns",
        step.avg_ns,
        figures.all.avg_ns
    );
}

#[test]
fn a_suite_reports_each_run_and_compares_them() {
    let run = Gorgon::run(plugin("gorgon-noop"))
        .args(["-n", "2000", "--runs", "1x1,2x1,2x4"])
        .table()
        .ok();
    let report = run.json();
    let shapes: Vec<(u32, u32, u64)> = report
        .runs
        .iter()
        .map(|r| (r.processes, r.threads, r.count("OK")))
        .collect();
    assert_eq!(shapes, [(1, 1, 2000), (2, 1, 2000), (2, 4, 2000)]);
    // The table heads each run with its shape, then compares them.
    for (i, shape) in [
        "1 process × 1 thread",
        "2 processes × 1 thread",
        "2 processes × 4 threads",
    ]
    .iter()
    .enumerate()
    {
        assert!(
            run.stdout.contains(&format!("Run {} of 3: {shape}", i + 1)),
            "{}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("Comparison of runs"), "{}", run.stdout);
    for shape in ["1 × 1", "2 × 1", "2 × 4"] {
        assert!(run.stdout.contains(shape), "{}", run.stdout);
    }
}

#[test]
fn panics_are_counted_with_their_message_and_the_run_goes_on() {
    let run = Gorgon::testkit()
        .args(["-n", "1000", "-p", "2", "-t", "2"])
        .set("panic_every", 4)
        .with_failed_calls();
    let report = run.json();
    let figures = report.run();
    assert_eq!(
        figures.labels(),
        BTreeMap::from([("panic", 250), ("OK", 750)])
    );
    assert_eq!(figures.errors, 250);
    // Each sample keeps the message and where in the plugin it panicked.
    assert!(!figures.panics.is_empty());
    for sample in &figures.panics {
        assert!(
            sample.message.contains("planned panic at") && sample.message.contains("src/lib.rs"),
            "{:?}",
            figures.panics
        );
    }
    assert!(!run.stderr.contains("panicked at"), "{}", run.stderr);
}

#[test]
fn a_crashing_worker_is_named_and_the_rest_is_reported() {
    // Number 7 belongs to the second of two workers (odd numbers).
    let run = Gorgon::testkit()
        .args(["-n", "2000", "-p", "2"])
        .set("abort_at", 7)
        .table()
        .expect_exit(3);
    assert!(run.stderr.contains("worker 2 of 2"), "{}", run.stderr);
    assert!(run.stderr.contains("SIGABRT"), "{}", run.stderr);
    assert!(run.stdout.contains("(incomplete)"), "{}", run.stdout);
    let report = run.json();
    let figures = report.run();
    assert!(!figures.complete);
    assert!(
        figures.failures.iter().any(|f| f.contains("worker 2 of 2")),
        "{:?}",
        figures.failures
    );
    // The other worker finished its whole share.
    let ok = figures.count("OK");
    assert!((1000..2000).contains(&ok), "ok = {ok}");
}

/// The calls `--debug` printed, one line each.
fn debug_calls(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with('#')).collect()
}

#[test]
fn debug_mode_prints_every_call_and_panic_messages() {
    let run = Gorgon::testkit()
        .debug()
        .set("panic_every", 3)
        .set("measure", "step")
        .ok();
    let calls = debug_calls(&run.stdout);
    assert_eq!(calls.len(), 10, "{}", run.stdout);
    assert!(
        calls[0].starts_with("#0 ") && calls[0].contains("panic"),
        "{}",
        calls[0]
    );
    assert!(
        calls[1].contains("OK") && calls[1].contains("step<"),
        "{}",
        calls[1]
    );
    assert!(
        run.stdout.contains("panicked: planned panic at 0"),
        "{}",
        run.stdout
    );
    // --debug has no JSON report: its closing table says the counts.
    assert_eq!(run.count("panic"), 4);
}

#[test]
fn debug_mode_honours_n() {
    let run = Gorgon::run(plugin("gorgon-hash"))
        .debug()
        .args(["-n", "3"])
        .ok();
    assert_eq!(debug_calls(&run.stdout).len(), 3);
    assert_eq!(run.count("FAIL"), 1);
}

#[test]
fn parameters_reach_every_worker() {
    let report = Gorgon::testkit()
        .args(["-n", "400", "-p", "4", "-t", "2"])
        .set("label", "from-the-command-line")
        .ok()
        .json();
    assert_eq!(
        report.run().labels(),
        BTreeMap::from([("from-the-command-line", 400)])
    );
}

#[test]
fn a_failing_thread_setup_stops_the_run_with_its_reason() {
    Gorgon::testkit()
        .args(["-n", "10"])
        .set("fail_setup", 1)
        .run_failed("asked to fail by fail_setup");
}

#[test]
fn a_reader_that_stops_early_ends_gorgon_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    // `gorgon run --debug … | head -1`: the pipe closes after one line.
    let mut child = Gorgon::run(plugin("gorgon-noop"))
        .debug()
        .args(["-n", "100000000"])
        .to_command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("#0 "), "{first}");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}
