//! Load shapes and CI gates: time-based runs, the open model at a fixed
//! rate with coordinated-omission correction, ramp-up, warm-up, success
//! labels, thresholds and their exit codes, and the bad input around them.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{numbers_seen, Gorgon, Outcome, Report, Threshold};

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

/// The testkit writing the numbers it is given into `dir`.
fn numbering_into(dir: &Path) -> Gorgon {
    Gorgon::testkit().set("numbers_dir", dir.display())
}

// ---- time-based runs ----------------------------------------------------

#[test]
fn a_duration_run_stops_in_time_and_keeps_numbers_unique() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run = numbering_into(dir.path())
        .args(["--duration", "1s", "-p", "2", "-t", "2"])
        .set("sleep_us", 1000)
        .table()
        .ok();
    let wall = started.elapsed();
    let report = run.json();
    let figures = report.run();
    let counted = figures.all.count;
    // Each call sleeps at least 1 ms, so one thread cannot start more than
    // about 1000 calls in one second: the run really stopped at the time.
    assert!(counted > 0, "{report:?}");
    assert!(counted <= 4 * 1001, "{counted} calls in 1s on 4 threads");
    assert!(wall < Duration::from_secs(20), "took {wall:?}");
    // The report's elapsed time covers the second asked for.
    assert!(
        figures.elapsed_ns >= 1_000_000_000,
        "{}",
        figures.elapsed_ns
    );
    let numbers = numbers_seen(dir.path());
    assert_eq!(numbers.len() as u64, counted);
    assert_unique(&numbers);
    // The table heads the run with its shape and says how long it took.
    let header = run
        .stdout
        .lines()
        .find(|l| l.starts_with("Run 1: 2 processes × 2 threads"))
        .unwrap_or_else(|| panic!("no heading:\n{}", run.stdout));
    assert!(nanos(header.rsplit(" in ").next().unwrap()) >= 1_000_000_000);
}

#[test]
fn count_and_duration_stop_at_whichever_comes_first() {
    // The count comes first: exactly that many calls, long before the time.
    let started = Instant::now();
    let report = Gorgon::testkit()
        .args(["-n", "50", "--duration", "60s", "-t", "2"])
        .ok()
        .json();
    assert_eq!(report.run().all.count, 50);
    assert!(started.elapsed() < Duration::from_secs(30));
    // The time comes first: far fewer calls than asked for.
    let report = Gorgon::testkit()
        .args(["-n", "1000000", "--duration", "300ms"])
        .set("sleep_us", 1000)
        .ok()
        .json();
    let counted = report.run().all.count;
    assert!((1..=301).contains(&counted), "{counted}");
}

// ---- the open model -------------------------------------------------------

#[test]
fn a_rate_of_200_per_second_for_2s_starts_400_operations() {
    let dir = tempfile::tempdir().unwrap();
    let run = numbering_into(dir.path())
        .args(["--rate", "200/s", "--duration", "2s", "-p", "2", "-t", "2"])
        .table()
        .ok();
    let report = run.json();
    let started = report.run().all.count;
    assert!(
        (360..=440).contains(&started),
        "{started} operations started:\n{report:?}"
    );
    let open = report
        .run()
        .open_model
        .as_ref()
        .expect("open model figures");
    assert_eq!(open.target_per_sec, 200.0);
    // In the open model a number is the operation's place in the schedule:
    // the 400 due in the window started but for those dropped, and only
    // the last ones due can be (a lane woken past the window's end drops
    // its start, which on a loaded machine need not be the very last).
    let numbers = numbers_seen(dir.path());
    let never: Vec<u64> = (0..400)
        .filter(|n| numbers.binary_search(n).is_err())
        .collect();
    assert_eq!(numbers.len() as u64, started);
    assert_eq!(numbers.len() + never.len(), 400, "{numbers:?}");
    assert_eq!(never.len() as u64, open.dropped, "{never:?}");
    assert!(never.iter().all(|&n| n >= 360), "{never:?}");
    assert!(run.stdout.contains("Open model at 200/s"), "{}", run.stdout);
}

#[test]
fn a_stall_shows_in_the_corrected_latency_but_not_in_the_service_time() {
    // One thread at 100/s; call 50 stalls for 1 s. The 100 calls due
    // during the stall start late, and their latency counts from when they
    // were due.
    let run = Gorgon::testkit()
        .args(["--rate", "100/s", "--duration", "3s"])
        .set("stall_at", 50)
        .set("stall_ms", 1000)
        .table()
        .ok();
    let report = run.json();
    let figures = report.run();
    let open = figures.open_model.as_ref().expect("open model figures");
    let corrected_p99 = figures.all.p99_ns;
    let service_p99 = open.service.p99_ns;
    assert!(
        corrected_p99 >= 300_000_000,
        "corrected p99 {corrected_p99} ns:\n{report:?}"
    );
    assert!(
        service_p99 < 50_000_000,
        "service p99 {service_p99} ns:\n{report:?}"
    );
    // The stalled call itself took a second, in both views.
    assert!(open.service.max_ns >= 1_000_000_000);
    assert!(figures.all.max_ns >= 1_000_000_000);
    // The calls due during the stall all start late (a busy machine may
    // make a few more late, so there is no upper bound).
    assert!(open.late >= 90, "{} late:\n{report:?}", open.late);
    assert!(open.warning.is_some(), "{report:?}");
    // The table shows both latency views and the warning.
    assert_eq!(run.rows("all").len(), 2, "{}", run.stdout);
    assert!(run.stdout.contains("Warning: "), "{}", run.stdout);
    println!(
        "CO figures: corrected p99 {corrected_p99} ns, service p99 {service_p99} ns, late {}",
        open.late
    );
}

#[test]
fn an_open_model_ramp_starts_half_the_operations_during_the_ramp() {
    // 200/s ramped from zero over 2 s: 200 operations instead of 400.
    let report = Gorgon::testkit()
        .args(["--rate", "200/s", "--ramp-up", "2s", "--duration", "2s"])
        .args(["-t", "2"])
        .ok()
        .json();
    let started = report.run().all.count;
    assert!((180..=220).contains(&started), "{started}:\n{report:?}");
}

#[test]
fn a_closed_model_ramp_starts_threads_one_after_another() {
    // Four threads start 0, 250, 500 and 750 ms into a 1 s run, so the
    // first makes several times as many calls as the last.
    let dir = tempfile::tempdir().unwrap();
    numbering_into(dir.path())
        .args(["--duration", "1s", "--ramp-up", "1s", "-t", "4"])
        .set("sleep_us", 1000)
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
    let report = numbering_into(dir.path())
        .args(["-n", "1000", "--warmup", "200", "-p", "2", "-t", "2"])
        .set("panic_every", 1000)
        .with_failed_calls()
        .json();
    let figures = report.run();
    assert_eq!(figures.all.count, 1000);
    assert_eq!(figures.count("panic"), 1);
    assert_eq!(figures.panics.len(), 1, "{:?}", figures.panics);
    assert_eq!(figures.panics[0].count, 1);
    assert!(
        figures.panics[0].message.contains("planned panic at 1000"),
        "{:?}",
        figures.panics
    );
    assert_eq!(figures.warmup_operations, 200);
    assert_eq!(numbers_seen(dir.path()), (0..1200).collect::<Vec<_>>());
}

#[test]
fn a_timed_warmup_is_made_but_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let report = numbering_into(dir.path())
        .args(["--warmup", "300ms", "--duration", "500ms", "-t", "2"])
        .set("sleep_us", 1000)
        .ok()
        .json();
    let counted = report.run().all.count;
    let warmup = report.run().warmup_operations;
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
    let report = numbering_into(dir.path())
        .args(["--rate", "400/s", "--warmup", "100", "-n", "200", "-t", "2"])
        .ok()
        .json();
    assert_eq!(report.run().all.count, 200);
    assert_eq!(numbers_seen(dir.path()), (0..300).collect::<Vec<_>>());
}

// ---- success labels and thresholds ---------------------------------------

/// The testkit with `extra` arguments and `thresholds`.
fn gate(extra: &[&str], thresholds: &[&str]) -> Gorgon {
    thresholds
        .iter()
        .fold(Gorgon::testkit().args(extra), |run, t| {
            run.args(["--threshold", t])
        })
}

/// The report's entry for the threshold `expression`.
fn threshold<'a>(report: &'a Report, expression: &str) -> &'a Threshold {
    report
        .thresholds
        .iter()
        .find(|t| t.expression == expression)
        .unwrap_or_else(|| panic!("no threshold {expression}: {:?}", report.thresholds))
}

/// Asserts the exit code a gate gives (0: it held, 1: it failed), the
/// report's verdict on it, and the sentence that names a failed one.
fn assert_gate(run: &Outcome, code: i32, expression: &str) {
    assert_eq!(
        run.code, code,
        "{expression}: exit {}:\n{}\n{}",
        run.code, run.stdout, run.stderr
    );
    let passed = threshold(&run.json(), expression).passed;
    assert_eq!(passed, code == 0, "{expression}");
    if code == 1 {
        assert!(
            run.stderr.contains("threshold failed") && run.stderr.contains(expression),
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
        assert_gate(&gate(args, &[holds]).output(), 0, holds);
        assert_gate(&gate(args, &[fails]).output(), 1, fails);
    }
}

#[test]
fn the_ok_labels_decide_what_an_error_is() {
    let run = gate(
        &["-n", "50", "--set", "label=503", "--ok", "200,201"],
        &["error_rate<1%"],
    )
    .output();
    assert_gate(&run, 1, "error_rate<1%");
    let report = run.json();
    assert_eq!((report.run().errors, report.run().error_rate), (50, 1.0));
    assert_eq!(report.load.ok, Some(vec!["200".into(), "201".into()]));
    // Without --ok every label but panic is a success.
    let run = gate(&["-n", "50", "--set", "label=503"], &["error_rate<1%"]).output();
    assert_gate(&run, 0, "error_rate<1%");
    assert_eq!(run.json().run().errors, 0);
}

#[test]
fn a_threshold_on_a_name_that_never_occurred_fails_and_says_why() {
    let run = gate(&["-n", "10"], &["nope:p99<1s", "p99<10s"])
        .table()
        .output();
    assert_gate(&run, 1, "nope:p99<1s");
    let report = run.json();
    assert!(threshold(&report, "p99<10s").passed);
    let nope = &threshold(&report, "nope:p99<1s").runs[0];
    assert_eq!(nope.value, None);
    assert_eq!(
        nope.note.as_deref(),
        Some("no call returned 'nope' and no measurement is named 'nope'")
    );
    // The table says why and how many failed.
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
    )
    .expect_exit(1);
    let report = run.json();
    let gate = threshold(&report, "ops_per_sec>20");
    let verdicts: Vec<bool> = gate.runs.iter().map(|r| r.passed).collect();
    assert_eq!(verdicts, [false, true], "one verdict per run: {gate:?}");
    assert!(!gate.passed);
}

#[test]
fn a_failed_run_outranks_a_failed_threshold() {
    gate(
        &["-n", "200", "-p", "2", "--set", "abort_at=7"],
        &["count<1"],
    )
    .expect_exit(3);
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
    let run = Gorgon::testkit().config(&config).output();
    assert_gate(&run, 1, "p99<1ns");
    let report = run.json();
    assert_eq!(
        (report.load.model.as_str(), report.load.rate_per_sec),
        ("open", Some(400.0))
    );
    assert_eq!(report.load.ok, Some(vec!["OK".into()]));
    let started = report.run().all.count;
    assert!((150..=250).contains(&started), "{started}");
    assert_eq!(report.run().warmup_operations, 20);
    // --threshold on the command line replaces the config's list.
    let run = Gorgon::testkit()
        .config(&config)
        .args(["--threshold", "p99<10s"])
        .output();
    assert_gate(&run, 0, "p99<10s");
    let expressions: Vec<String> = run
        .json()
        .thresholds
        .into_iter()
        .map(|t| t.expression)
        .collect();
    assert_eq!(expressions, ["p99<10s"]);
    // -n on the command line replaces the config's duration.
    let run = Gorgon::testkit()
        .config(&config)
        .args(["-n", "40"])
        .output();
    assert_eq!(run.json().run().all.count, 40);
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
        Gorgon::testkit().args(*args).usage_error(says);
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
    Gorgon::testkit()
        .config(&config)
        .args(["-n", "1"])
        .usage_error(&format!(
            "config file {}, line 1: threshold 'p99 <> 1s'",
            config.display()
        ));
}

/// The thresholds table lists each expression with a value in its unit.
#[test]
fn threshold_values_are_shown_in_their_units() {
    let run = gate(
        &["-n", "100", "--set", "panic_every=10"],
        &["error_rate<50%", "ops_per_sec>1", "p99<10s", "count>1"],
    )
    .table()
    .ok();
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
    // The report has the same values, each in its unit.
    let report = run.json();
    let units: BTreeMap<&str, (&str, &str)> = report
        .thresholds
        .iter()
        .map(|t| {
            (
                t.expression.as_str(),
                (t.unit.as_str(), t.runs[0].shown.as_str()),
            )
        })
        .collect();
    assert_eq!(
        units,
        BTreeMap::from([
            ("error_rate<50%", ("fraction", values["error_rate<50%"])),
            ("ops_per_sec>1", ("ops/s", values["ops_per_sec>1"])),
            ("p99<10s", ("ns", values["p99<10s"])),
            ("count>1", ("calls", values["count>1"])),
        ])
    );
    assert_eq!(
        threshold(&report, "error_rate<50%").runs[0].value,
        Some(0.1)
    );
}
