//! The core: plugins multiplied over processes and threads, exact counts,
//! unique numbers, measurements, suites, panics, crashes, debug mode.

use crate::support::{gorgon, numbers_seen, plugin};

fn path(name: &str) -> String {
    plugin(name).display().to_string()
}

#[test]
fn hash_counts_are_exact_across_processes_and_threads() {
    let run = gorgon(&[
        "run",
        "--plugin",
        &path("gorgon-hash"),
        "-n",
        "4000",
        "-p",
        "2",
        "-t",
        "4",
    ])
    .ok();
    assert_eq!(run.count("all"), 4000);
    assert_eq!(run.count("SUCCESS"), 3200);
    assert_eq!(run.count("FAIL"), 800);
    assert!(
        run.stdout.contains("2 processes × 4 threads"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("\nTotal time: "), "{}", run.stdout);
}

fn assert_numbers_cover(processes: &str, threads: &str, n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let set = format!("numbers_dir={}", dir.path().display());
    gorgon(&[
        "run",
        "--plugin",
        &path("gorgon-test-testkit"),
        "-n",
        &n.to_string(),
        "-p",
        processes,
        "-t",
        threads,
        "--set",
        &set,
    ])
    .ok();
    assert_eq!(numbers_seen(dir.path()), (0..n).collect::<Vec<_>>());
    // One file per worker thread that got work: several processes took part.
    let pids: std::collections::BTreeSet<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .split('-')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(pids.len(), processes.parse::<usize>().unwrap());
}

#[test]
fn numbers_are_unique_and_cover_the_range_2x4() {
    assert_numbers_cover("2", "4", 4000);
}

#[test]
fn numbers_are_unique_and_cover_the_range_4x10() {
    assert_numbers_cover("4", "10", 4001);
}

#[test]
fn measurements_get_their_own_lines() {
    let run = gorgon(&[
        "run",
        "--plugin",
        &path("gorgon-subcalls"),
        "-n",
        "50",
        "-t",
        "2",
    ])
    .ok();
    assert_eq!(run.count("200"), 50);
    assert_eq!(run.count("http call 1<"), 50);
    assert_eq!(run.count("http call 2<"), 50);
    // A sub-step cannot take longer than the call that contains it.
    let all = &run.rows("all")[0];
    let step = &run.rows("http call 1<")[0];
    assert_ne!(all[3], step[3], "avg of call and step should differ");
}

#[test]
fn a_suite_reports_each_run_and_compares_them() {
    let run = gorgon(&[
        "run",
        "--plugin",
        &path("gorgon-noop"),
        "-n",
        "2000",
        "--runs",
        "1x1,2x1,2x4",
    ])
    .ok();
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
    let ok_rows = run.rows("OK");
    assert_eq!(ok_rows.len(), 3);
    assert!(ok_rows.iter().all(|r| r[1] == "2,000"), "{ok_rows:?}");
    // The comparison lists every run with its shape.
    for shape in ["1 × 1", "2 × 1", "2 × 4"] {
        assert!(run.stdout.contains(shape), "{}", run.stdout);
    }
}

#[test]
fn panics_are_counted_with_their_message_and_the_run_goes_on() {
    let run = gorgon(&[
        "run",
        "--plugin",
        &path("gorgon-test-testkit"),
        "-n",
        "1000",
        "-p",
        "2",
        "-t",
        "2",
        "--set",
        "panic_every=4",
    ])
    .with_failed_calls();
    assert_eq!(run.count("panic"), 250);
    assert_eq!(run.count("OK"), 750);
    assert!(run.stdout.contains("planned panic at"), "{}", run.stdout);
    assert!(
        run.stdout.contains("src/lib.rs"),
        "the panic location is kept: {}",
        run.stdout
    );
    assert!(!run.stderr.contains("panicked at"), "{}", run.stderr);
}

#[test]
fn a_crashing_worker_is_named_and_the_rest_is_reported() {
    // Number 7 belongs to the second of two workers (odd numbers).
    let run = gorgon(&[
        "run",
        "--plugin",
        &path("gorgon-test-testkit"),
        "-n",
        "2000",
        "-p",
        "2",
        "--set",
        "abort_at=7",
    ]);
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("worker 2 of 2"), "{}", run.stderr);
    assert!(run.stderr.contains("SIGABRT"), "{}", run.stderr);
    assert!(run.stdout.contains("(incomplete)"), "{}", run.stdout);
    // The other worker finished its whole share.
    let ok = run.count("OK");
    assert!((1000..2000).contains(&ok), "ok = {ok}");
}

#[test]
fn debug_mode_prints_every_call_and_panic_messages() {
    let run = gorgon(&[
        "run",
        "--plugin",
        &path("gorgon-test-testkit"),
        "--debug",
        "--set",
        "panic_every=3",
        "--set",
        "measure=step",
    ])
    .ok();
    let calls: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with('#')).collect();
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
    assert_eq!(run.count("panic"), 4);
}

#[test]
fn debug_mode_honours_n() {
    let run = gorgon(&[
        "run",
        "--plugin",
        &path("gorgon-hash"),
        "--debug",
        "-n",
        "3",
    ])
    .ok();
    assert_eq!(run.stdout.lines().filter(|l| l.starts_with('#')).count(), 3);
    assert_eq!(run.count("FAIL"), 1);
}

#[test]
fn parameters_reach_every_worker() {
    let run = gorgon(&[
        "run",
        "--plugin",
        &path("gorgon-test-testkit"),
        "-n",
        "400",
        "-p",
        "4",
        "-t",
        "2",
        "--set",
        "label=from-the-command-line",
    ])
    .ok();
    assert_eq!(run.count("from-the-command-line"), 400);
}

#[test]
fn a_failing_thread_setup_stops_the_run_with_its_reason() {
    let run = gorgon(&[
        "run",
        "--plugin",
        &path("gorgon-test-testkit"),
        "-n",
        "10",
        "--set",
        "fail_setup=1",
    ]);
    run.assert_run_failed("asked to fail by fail_setup");
}

#[test]
fn a_reader_that_stops_early_ends_gorgon_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    // `gorgon run --debug … | head -1`: the pipe closes after one line.
    let mut child = Command::new(crate::support::gorgon_bin())
        .args([
            "run",
            "--plugin",
            &path("gorgon-noop"),
            "--debug",
            "-n",
            "100000000",
        ])
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
