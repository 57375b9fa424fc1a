//! The progress display when stderr is not a terminal (CI, a log file):
//! one self-contained status line per second early in a run, and one when
//! it ends, with figures that agree with the report.

use crate::support::{plugin, Gorgon};

/// The status lines of the only run, as their parts after the run's name.
fn status_lines(stderr: &str) -> Vec<Vec<String>> {
    stderr
        .lines()
        .filter_map(|line| line.strip_prefix("gorgon: run (1×2): "))
        .map(|rest| rest.split(", ").map(str::to_string).collect())
        .collect()
}

/// `12,345 ops` → 12345.
fn count_in(part: &str, suffix: &str) -> Option<u64> {
    part.strip_suffix(suffix)?.replace(',', "").parse().ok()
}

#[test]
fn a_two_second_run_without_a_terminal_prints_a_line_per_second() {
    let run = Gorgon::testkit()
        .args(["--duration", "2s", "-t", "2", "--ok", "OK"])
        .args(["--threshold", "error_rate<50%"])
        .set("sleep_us", 1000)
        .set("panic_every", 100)
        .ok();
    let lines = status_lines(&run.stderr);
    // The line of the first second, then the run's end (a busy machine may
    // slip in one of second 2 while the workers finish).
    assert!(lines.len() >= 2, "{}", run.stderr);
    assert_eq!(lines[0][0], "1s of 2s", "{}", run.stderr);
    let last = lines.last().unwrap();
    assert!(last[0].starts_with("done in 2."), "{}", run.stderr);
    for middle in &lines[1..lines.len() - 1] {
        assert_eq!(middle[0], "2s of 2s", "{}", run.stderr);
    }
    for line in &lines {
        assert!(count_in(&line[1], " ops").is_some(), "{line:?}");
        assert!(line[2].ends_with(" ops/s"), "{line:?}");
        assert!(
            line[3].ends_with(" errors") || line[3].ends_with(" error"),
            "{line:?}"
        );
        assert!(line[4].starts_with("p99 "), "{line:?}");
    }
    assert!(
        lines[0].last().unwrap().ends_with(" left"),
        "{:?}",
        lines[0]
    );
    // The last line says what the report says.
    let report = run.json();
    let first = report.run();
    let calls = first.all.count;
    assert!(calls > 100, "{calls} calls");
    assert_eq!(count_in(&last[1], " ops"), Some(calls), "{last:?}");
    let errors = first.errors;
    assert!(errors > 0);
    assert_eq!(count_in(&last[3], " errors"), Some(errors), "{last:?}");
    let rate: f64 = last[2]
        .strip_suffix(" ops/s")
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap();
    let reported = first.all.ops_per_sec;
    assert!((rate - reported).abs() <= 1.0, "{rate} against {reported}");
}

#[test]
fn a_count_run_shows_done_of_planned_and_quiet_shows_nothing() {
    let hash = || Gorgon::run(plugin("gorgon-hash")).args(["-n", "2000", "-t", "2"]);
    let run = hash().ok();
    let last = status_lines(&run.stderr)
        .pop()
        .unwrap_or_else(|| panic!("no status line: {}", run.stderr));
    assert!(last[0].starts_with("done in "), "{last:?}");
    assert_eq!(last[1], "2,000 ops", "{last:?}");
    assert_eq!(run.json().run().all.count, 2000);
    let quiet = hash().arg("-q").ok();
    assert!(
        !quiet.stderr.contains("gorgon: run"),
        "no progress with -q: {}",
        quiet.stderr
    );
}
