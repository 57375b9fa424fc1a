//! Failure has one meaning: panics and calls the plugin says failed are
//! errors; with no threshold any error fails the run (exit 1); thresholds
//! decide when given; `--ok` overrides the plugin's word.

use crate::support::{gorgon, plugin};

fn testkit() -> String {
    plugin("gorgon-test-testkit").display().to_string()
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).expect("a JSON report")
}

#[test]
fn calls_the_plugin_says_failed_are_errors_and_fail_the_run() {
    let lib = testkit();
    let run = gorgon(&[
        "run",
        "--plugin",
        &lib,
        "-n",
        "200",
        "-t",
        "2",
        "--set",
        "fail_every=10",
        "--output",
        "json",
    ])
    .with_failed_calls();
    assert!(
        run.stderr.contains("20 of 200 calls failed (10.00%)"),
        "{}",
        run.stderr
    );
    let report = json(&run.stdout);
    let first = &report["runs"][0];
    assert_eq!(first["errors"], 20);
    assert_eq!(first["error_rate"], 0.1);
    let failed = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "failed")
        .expect("a `failed` label");
    assert_eq!(failed["count"], 20);
    assert_eq!(failed["failed"], 20);
}

#[test]
fn a_threshold_decides_instead() {
    let lib = testkit();
    let base = [
        "run",
        "--plugin",
        &lib,
        "-n",
        "100",
        "--set",
        "fail_every=10",
        "-q",
    ];
    let pass = gorgon(&[&base[..], &["--threshold", "error_rate<20%"]].concat());
    assert_eq!(pass.code, 0, "{}", pass.stderr);
    let fail = gorgon(&[&base[..], &["--threshold", "error_rate<5%"]].concat());
    assert_eq!(fail.code, 1, "{}", fail.stderr);
    assert!(
        fail.stderr.contains("threshold failed: error_rate<5%"),
        "{}",
        fail.stderr
    );
}

#[test]
fn ok_labels_override_the_plugins_word() {
    let lib = testkit();
    let run = gorgon(&[
        "run",
        "--plugin",
        &lib,
        "-n",
        "100",
        "--set",
        "fail_every=10",
        "--ok",
        "OK,failed",
        "--output",
        "json",
    ])
    .ok();
    assert_eq!(json(&run.stdout)["runs"][0]["errors"], 0);
}

#[test]
fn a_clean_run_says_it_had_no_errors() {
    let lib = testkit();
    let run = gorgon(&["run", "--plugin", &lib, "-n", "50"]).ok();
    assert!(
        run.stdout
            .contains("Errors: 0 of 50 (0.00%): panics and calls the plugin said failed."),
        "{}",
        run.stdout
    );
}
