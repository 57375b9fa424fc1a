//! Failure has one meaning: panics and calls the plugin says failed are
//! errors; with no threshold any error fails the run (exit 1); thresholds
//! decide when given; `--ok` overrides the plugin's word.

use crate::support::Gorgon;

/// The testkit's `-n N` calls, every tenth of which the plugin says failed.
fn every_tenth_fails(n: u64) -> Gorgon {
    Gorgon::testkit()
        .args(["-n", &n.to_string()])
        .set("fail_every", 10)
}

#[test]
fn calls_the_plugin_says_failed_are_errors_and_fail_the_run() {
    let run = every_tenth_fails(200).args(["-t", "2"]).with_failed_calls();
    assert!(
        run.stderr.contains("20 of 200 calls failed (10.00%)"),
        "{}",
        run.stderr
    );
    let report = run.json();
    let figures = report.run();
    assert_eq!(figures.errors, 20);
    assert_eq!(figures.error_rate, 0.1);
    let failed = figures.result("failed").expect("a `failed` label");
    assert_eq!((failed.summary.count, failed.failed), (20, 20));
}

#[test]
fn a_threshold_decides_instead() {
    every_tenth_fails(100)
        .args(["--threshold", "error_rate<20%"])
        .ok();
    let fail = every_tenth_fails(100)
        .args(["--threshold", "error_rate<5%"])
        .expect_exit(1);
    assert!(
        fail.stderr.contains("threshold failed: error_rate<5%"),
        "{}",
        fail.stderr
    );
}

#[test]
fn ok_labels_override_the_plugins_word() {
    let report = every_tenth_fails(100)
        .args(["--ok", "OK,failed"])
        .ok()
        .json();
    assert_eq!(report.run().count("failed"), 10);
    assert_eq!(report.run().errors, 0);
}

#[test]
fn a_clean_run_says_it_had_no_errors() {
    let run = Gorgon::testkit().args(["-n", "50"]).table().ok();
    assert!(
        run.stdout
            .contains("Errors: 0 of 50 (0.00%): panics and calls the plugin said failed."),
        "{}",
        run.stdout
    );
    assert_eq!(run.json().run().errors, 0);
}
