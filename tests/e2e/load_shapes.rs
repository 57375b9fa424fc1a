//! Load shapes and CI gates: time-based runs, the open model at a fixed
//! rate with coordinated-omission correction, ramp-up, warm-up, success
//! labels, thresholds and their exit codes, and the bad input around them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{gorgon, numbers_seen, plugin, Run};

fn testkit() -> String {
    plugin("gorgon-test-testkit").display().to_string()
}

/// Runs the testkit plugin with `args` after `run --plugin`.
fn run_testkit(args: &[&str]) -> Run {
    let lib = testkit();
    let mut all = vec!["run", "--plugin", &lib];
    all.extend_from_slice(args);
    gorgon(&all)
}

/// Reads a duration as the table shows it (`1.68ms`, `950µs`, `12.3s`,
/// `1m 5s`).
fn nanos(text: &str) -> u64 {
    text.split_whitespace()
        .map(|part| {
            let digits: String = part
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let value: f64 = digits.parse().unwrap_or_else(|_| panic!("{text:?}"));
            let unit = match &part[digits.len()..] {
                "h" => 3_600_000_000_000.0,
                "m" => 60_000_000_000.0,
                "s" => 1_000_000_000.0,
                "ms" => 1_000_000.0,
                "µs" => 1_000.0,
                "ns" => 1.0,
                unit => panic!("unit {unit:?} in {text:?}"),
            };
            (value * unit).round() as u64
        })
        .sum()
}

/// The number just before `after` in the line of the report that contains
/// it, e.g. `late(run, " started late")`.
fn figure_before(run: &Run, after: &str) -> u64 {
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains(after))
        .unwrap_or_else(|| panic!("no {after:?} in:\n{}", run.stdout));
    let head = &line[..line.find(after).unwrap()];
    let word = head.split_whitespace().last().unwrap().replace(',', "");
    word.parse().unwrap_or_else(|_| panic!("{line}"))
}

/// The count of the first row named `name`: in the open model the
/// latency table, before the service-time table that repeats the names.
fn count_first(run: &Run, name: &str) -> u64 {
    let rows = run.rows(name);
    let row = rows
        .first()
        .unwrap_or_else(|| panic!("no row {name:?} in:\n{}", run.stdout));
    row[1].replace(',', "").parse().expect("a count")
}

/// Calls per worker thread, from the testkit's numbers files.
fn calls_per_thread(dir: &Path) -> Vec<usize> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .count()
        })
        .collect()
}

fn assert_unique(numbers: &[u64]) {
    let mut seen = std::collections::BTreeSet::new();
    for n in numbers {
        assert!(seen.insert(n), "number {n} was used twice");
    }
}

// ---- time-based runs ----------------------------------------------------

#[test]
fn a_duration_run_stops_in_time_and_keeps_numbers_unique() {
    let dir = tempfile::tempdir().unwrap();
    let set = format!("numbers_dir={}", dir.path().display());
    let started = Instant::now();
    let run = run_testkit(&[
        "--duration",
        "1s",
        "-p",
        "2",
        "-t",
        "2",
        "--set",
        "sleep_us=1000",
        "--set",
        &set,
    ])
    .ok();
    let wall = started.elapsed();
    let counted = run.count("all");
    // Each call sleeps at least 1 ms, so one thread cannot start more than
    // about 1000 calls in one second: the run really stopped at the time.
    assert!(counted > 0, "{}", run.stdout);
    assert!(counted <= 4 * 1001, "{counted} calls in 1s on 4 threads");
    assert!(wall < Duration::from_secs(20), "took {wall:?}");
    // The report's elapsed time covers the second asked for.
    let header = run.stdout.lines().find(|l| l.starts_with("Run 1")).unwrap();
    let elapsed = nanos(header.rsplit(" in ").next().unwrap());
    assert!(elapsed >= 1_000_000_000, "{header}");
    let numbers = numbers_seen(dir.path());
    assert_eq!(numbers.len() as u64, counted);
    assert_unique(&numbers);
    assert!(run.stdout.contains("Run 1: 2 processes × 2 threads"));
}

#[test]
fn count_and_duration_stop_at_whichever_comes_first() {
    // The count comes first: exactly that many calls, long before the time.
    let started = Instant::now();
    let run = run_testkit(&["-n", "50", "--duration", "60s", "-t", "2"]).ok();
    assert_eq!(run.count("all"), 50);
    assert!(started.elapsed() < Duration::from_secs(30));
    // The time comes first: far fewer calls than asked for.
    let run = run_testkit(&[
        "-n",
        "1000000",
        "--duration",
        "300ms",
        "--set",
        "sleep_us=1000",
    ])
    .ok();
    let counted = run.count("all");
    assert!((1..=301).contains(&counted), "{counted}");
}

// ---- the open model -------------------------------------------------------

#[test]
fn a_rate_of_200_per_second_for_2s_starts_400_operations() {
    let dir = tempfile::tempdir().unwrap();
    let set = format!("numbers_dir={}", dir.path().display());
    let run = run_testkit(&[
        "--rate",
        "200/s",
        "--duration",
        "2s",
        "-p",
        "2",
        "-t",
        "2",
        "--set",
        &set,
    ])
    .ok();
    let started = count_first(&run, "all");
    assert!(
        (360..=440).contains(&started),
        "{started} operations started:\n{}",
        run.stdout
    );
    // In the open model a number is the operation's place in the schedule:
    // what started is exactly the first ones.
    assert_eq!(numbers_seen(dir.path()), (0..started).collect::<Vec<_>>());
    assert!(run.stdout.contains("Open model at 200/s"), "{}", run.stdout);
}

#[test]
fn a_stall_shows_in_the_corrected_latency_but_not_in_the_service_time() {
    // One thread at 100/s; call 50 stalls for 1 s. The 100 calls due
    // during the stall start late, and their latency counts from when they
    // were due.
    let run = run_testkit(&[
        "--rate",
        "100/s",
        "--duration",
        "3s",
        "--set",
        "stall_at=50",
        "--set",
        "stall_ms=1000",
    ])
    .ok();
    let rows = run.rows("all");
    assert_eq!(rows.len(), 2, "latency and service tables:\n{}", run.stdout);
    let corrected_p99 = nanos(&rows[0][6]);
    let service_p99 = nanos(&rows[1][6]);
    assert!(
        corrected_p99 >= 300_000_000,
        "corrected p99 {corrected_p99} ns:\n{}",
        run.stdout
    );
    assert!(
        service_p99 < 50_000_000,
        "service p99 {service_p99} ns:\n{}",
        run.stdout
    );
    // The stalled call itself took a second, in both views.
    assert!(nanos(&rows[1][7]) >= 1_000_000_000);
    // The calls due during the stall all start late (a busy machine may
    // make a few more late, so there is no upper bound).
    let late = figure_before(&run, " started late");
    assert!(late >= 90, "{late} late:\n{}", run.stdout);
    assert!(run.stdout.contains("Warning: "), "{}", run.stdout);
    println!(
        "CO figures: corrected p99 {}, service p99 {}, late {late}",
        rows[0][6], rows[1][6]
    );
}

#[test]
fn an_open_model_ramp_starts_half_the_operations_during_the_ramp() {
    // 200/s ramped from zero over 2 s: 200 operations instead of 400.
    let run = run_testkit(&[
        "--rate",
        "200/s",
        "--ramp-up",
        "2s",
        "--duration",
        "2s",
        "-t",
        "2",
    ])
    .ok();
    let started = count_first(&run, "all");
    assert!((180..=220).contains(&started), "{started}:\n{}", run.stdout);
}

#[test]
fn a_closed_model_ramp_starts_threads_one_after_another() {
    // Four threads start 0, 250, 500 and 750 ms into a 1 s run, so the
    // first makes several times as many calls as the last.
    let dir = tempfile::tempdir().unwrap();
    let set = format!("numbers_dir={}", dir.path().display());
    run_testkit(&[
        "--duration",
        "1s",
        "--ramp-up",
        "1s",
        "-t",
        "4",
        "--set",
        "sleep_us=1000",
        "--set",
        &set,
    ])
    .ok();
    let mut calls = calls_per_thread(dir.path());
    calls.sort_unstable();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert!(calls[3] >= 2 * calls[0], "{calls:?}");
}

// ---- warm-up ---------------------------------------------------------------

#[test]
fn a_count_warmup_takes_the_first_numbers_and_is_not_counted() {
    // Numbers 0 and 1000 panic; 0 falls in the warm-up (0..200), so only
    // one panic is counted, and the counted calls are exactly -n.
    let dir = tempfile::tempdir().unwrap();
    let set = format!("numbers_dir={}", dir.path().display());
    let run = run_testkit(&[
        "-n",
        "1000",
        "--warmup",
        "200",
        "-p",
        "2",
        "-t",
        "2",
        "--set",
        "panic_every=1000",
        "--set",
        &set,
    ])
    .with_failed_calls();
    assert_eq!(run.count("all"), 1000);
    assert_eq!(run.count("panic"), 1);
    assert!(
        run.stdout.contains("planned panic at 1000"),
        "{}",
        run.stdout
    );
    assert_eq!(figure_before(&run, " operations before these"), 200);
    assert_eq!(numbers_seen(dir.path()), (0..1200).collect::<Vec<_>>());
}

#[test]
fn a_timed_warmup_is_made_but_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let set = format!("numbers_dir={}", dir.path().display());
    let run = run_testkit(&[
        "--warmup",
        "300ms",
        "--duration",
        "500ms",
        "-t",
        "2",
        "--set",
        "sleep_us=1000",
        "--set",
        &set,
    ])
    .ok();
    let counted = run.count("all");
    let warmup = figure_before(&run, " operations before these");
    let made = numbers_seen(dir.path());
    assert_unique(&made);
    assert_eq!(made.len() as u64, counted + warmup);
    // 300 ms of 1 ms calls on two threads: a few hundred, none counted.
    assert!(warmup >= 10, "{warmup}");
    assert!(counted <= 2 * 501, "{counted}");
}

#[test]
fn an_open_model_warmup_keeps_the_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let set = format!("numbers_dir={}", dir.path().display());
    let run = run_testkit(&[
        "--rate", "400/s", "--warmup", "100", "-n", "200", "-t", "2", "--set", &set,
    ])
    .ok();
    assert_eq!(count_first(&run, "all"), 200);
    assert_eq!(numbers_seen(dir.path()), (0..300).collect::<Vec<_>>());
}

// ---- success labels and thresholds ---------------------------------------

/// Runs the testkit with thresholds and returns the run for checks.
fn gate(extra: &[&str], thresholds: &[&str]) -> Run {
    let mut args: Vec<&str> = extra.to_vec();
    for t in thresholds {
        args.extend(["--threshold", t]);
    }
    run_testkit(&args)
}

fn assert_gate(run: &Run, code: i32, threshold: &str) {
    assert_eq!(
        run.code, code,
        "{threshold}: exit {}:\n{}\n{}",
        run.code, run.stdout, run.stderr
    );
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with('│') && l.contains(threshold))
        .unwrap_or_else(|| panic!("no row for {threshold}:\n{}", run.stdout));
    let verdict = if code == 0 { "pass" } else { "FAIL" };
    assert!(row.contains(verdict), "{row}");
    if code == 1 {
        assert!(
            run.stderr.contains("threshold failed") && run.stderr.contains(threshold),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn each_threshold_kind_passes_and_fails_with_its_exit_code() {
    let slow = ["-n", "40", "-t", "2", "--set", "sleep_us=2000"];
    let panics = ["-n", "100", "--set", "panic_every=4"];
    let labelled = [
        "-n",
        "30",
        "--set",
        "label=http call 1",
        "--set",
        "measure=db query",
        "--set",
        "sleep_us=1000",
    ];
    let cases: &[(&[&str], &str, &str)] = &[
        (&slow, "p99<10s", "p99<1ms"),
        (&slow, "p50<=10s", "p50>10s"),
        (&slow, "avg<10s", "avg<1ms"),
        (&slow, "max>=1ms", "max<1ms"),
        (&slow, "ops_per_sec>1", "ops_per_sec>1000000000"),
        (&slow, "count>=40", "count<40"),
        (&panics, "error_rate<30%", "error_rate<10%"),
        (&panics, "error_rate<=0.25", "error_rate<0.2"),
        (&panics, "errors<=25", "errors<25"),
        (&labelled, "http call 1:count>=30", "http call 1:count<30"),
        (&labelled, "http call 1:p95<10s", "http call 1:p95<1ms"),
        (&labelled, "db query:p95>=1ms", "db query:p95<1ms"),
        (&labelled, "db query<:max<10s", "db query<:min<1ms"),
        (&labelled, "FAIL:count<1", "FAIL:count>=1"),
    ];
    for (args, holds, fails) in cases {
        assert_gate(&gate(args, &[holds]), 0, holds);
        assert_gate(&gate(args, &[fails]), 1, fails);
    }
}

#[test]
fn the_ok_labels_decide_what_an_error_is() {
    let run = gate(
        &["-n", "50", "--set", "label=503", "--ok", "200,201"],
        &["error_rate<1%"],
    );
    assert_gate(&run, 1, "error_rate<1%");
    assert!(
        run.stdout.contains("Errors: 50 of 50 (100.00%)"),
        "{}",
        run.stdout
    );
    // Without --ok every label but panic is a success.
    let run = gate(&["-n", "50", "--set", "label=503"], &["error_rate<1%"]);
    assert_gate(&run, 0, "error_rate<1%");
}

#[test]
fn a_threshold_on_a_name_that_never_occurred_fails_and_says_why() {
    let run = gate(&["-n", "10"], &["nope:p99<1s", "p99<10s"]);
    assert_gate(&run, 1, "nope:p99<1s");
    assert!(
        run.stdout
            .contains("no call returned 'nope' and no measurement is named 'nope'"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Thresholds: 1 of 2 failed"),
        "{}",
        run.stdout
    );
}

#[test]
fn every_run_of_a_suite_must_hold_a_threshold() {
    // 8 calls of 100 ms: one thread needs 800 ms (at most 10/s), four
    // threads about 200 ms (about 40/s). The gate holds in run 2 only.
    let run = gate(
        &["-n", "8", "--runs", "1x1,1x4", "--set", "sleep_us=100000"],
        &["ops_per_sec>20"],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let rows: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with('│') && l.contains("ops_per_sec>20"))
        .collect();
    assert_eq!(rows.len(), 2, "one row per run:\n{}", run.stdout);
    assert!(
        rows[0].contains("FAIL") && rows[1].contains("pass"),
        "{rows:?}"
    );
}

#[test]
fn a_failed_run_outranks_a_failed_threshold() {
    let run = gate(
        &["-n", "200", "-p", "2", "--set", "abort_at=7"],
        &["count<1"],
    );
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
}

#[test]
fn thresholds_and_defaults_come_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gorgon.toml");
    std::fs::write(
        &config,
        "thresholds = [\"p99<1ns\"]\n\n[defaults]\nrate = \"400/s\"\nduration = \"500ms\"\nwarmup = 20\nok = [\"OK\"]\n",
    )
    .unwrap();
    let lib = testkit();
    let config = config.to_str().unwrap();
    let run = gorgon(&["--config", config, "run", "--plugin", &lib]);
    assert_gate(&run, 1, "p99<1ns");
    assert!(run.stdout.contains("Open model at 400/s"), "{}", run.stdout);
    let started = count_first(&run, "all");
    assert!((150..=250).contains(&started), "{started}");
    assert_eq!(figure_before(&run, " operations before these"), 20);
    // --threshold on the command line replaces the config's list.
    let run = gorgon(&[
        "--config",
        config,
        "run",
        "--plugin",
        &lib,
        "--threshold",
        "p99<10s",
    ]);
    assert_gate(&run, 0, "p99<10s");
    assert!(!run.stdout.contains("p99<1ns"), "{}", run.stdout);
    // -n on the command line replaces the config's duration.
    let run = gorgon(&["--config", config, "run", "--plugin", &lib, "-n", "40"]);
    assert_eq!(count_first(&run, "all"), 40);
}

// ---- bad input -----------------------------------------------------------

#[test]
fn malformed_load_shapes_and_thresholds_are_refused() {
    let cases: &[(&[&str], &str)] = &[
        (&["--duration", "5x"], "malformed duration '5x'"),
        (&["--duration", "0s"], "must be more than zero"),
        (
            &["-n", "1", "--ramp-up", "soon"],
            "malformed duration 'soon'",
        ),
        (&["--rate", "500", "-n", "1"], "malformed rate '500'"),
        (&["--rate", "fast/s", "-n", "1"], "malformed rate"),
        (&["--rate", "0/s", "-n", "1"], "must be more than zero"),
        (&["--warmup", "lots", "-n", "1"], "malformed warm-up 'lots'"),
        (&["-n", "1", "--set", "=x"], "expected KEY=VALUE"),
        (
            &["-n", "1", "--threshold", "p99 250ms"],
            "malformed threshold",
        ),
        (&["-n", "1", "--threshold", "p99<"], "malformed threshold"),
        (
            &["-n", "1", "--threshold", "latency<1s"],
            "unknown metric 'latency'",
        ),
        (&["-n", "1", "--threshold", "p99<250"], "not a duration"),
        (
            &["-n", "1", "--threshold", "error_rate<lots"],
            "not a number",
        ),
        (
            &["-n", "1", "--threshold", "OK:error_rate<1%"],
            "takes no NAME",
        ),
        (&["-n", "1", "--ok", "200,panic"], "cannot name `panic`"),
        (
            &["-n", "1000", "--rate", "10/s", "--duration", "5s"],
            "starts at most 50 operations, fewer than -n 1000",
        ),
        (
            &["--duration", "1s", "--ramp-up", "5s"],
            "longer than --duration",
        ),
        (
            &["-n", "10", "--rate", "1e-300/s"],
            "would take centuries to start",
        ),
        (&["--debug", "--rate", "5/s"], "--rate does not apply"),
    ];
    for (args, says) in cases {
        run_testkit(args).assert_usage_error(says);
    }
}

#[test]
fn a_malformed_threshold_in_the_config_names_the_file_and_the_expression() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gorgon.toml");
    std::fs::write(
        &config,
        "thresholds = [\n  \"p99<1s\",\n  \"p99 <> 1s\",\n]\n",
    )
    .unwrap();
    let lib = testkit();
    let path = config.to_str().unwrap();
    gorgon(&["--config", path, "run", "--plugin", &lib, "-n", "1"]).assert_usage_error(&format!(
        "config file {path}, line 1: threshold 'p99 <> 1s'"
    ));
}

/// The thresholds table lists each expression with a value in its unit.
#[test]
fn threshold_values_are_shown_in_their_units() {
    let run = gate(
        &["-n", "100", "--set", "panic_every=10"],
        &["error_rate<50%", "ops_per_sec>1", "p99<10s", "count>1"],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    let values: BTreeMap<&str, &str> = run
        .stdout
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l
                .split(['│', '┆'])
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            (cells.len() == 3 && cells[2] == "pass").then(|| (cells[0], cells[1]))
        })
        .collect();
    assert_eq!(values["error_rate<50%"], "10.00%");
    assert!(values["ops_per_sec>1"].ends_with("/s"));
    assert_eq!(values["count>1"], "100");
    assert!(nanos(values["p99<10s"]) < 10_000_000_000);
}
