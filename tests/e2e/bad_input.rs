//! Every bad input: one sentence on stderr, exit code 2, never a panic.

use crate::support::{gorgon, plugin};

fn noop() -> String {
    plugin("gorgon-noop").display().to_string()
}

#[test]
fn a_missing_plugin_is_named() {
    gorgon(&["run", "--plugin", "/nonexistent/libnothing.so", "-n", "1"])
        .assert_usage_error("/nonexistent/libnothing.so does not exist");
}

#[test]
fn a_file_that_is_not_a_library_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.so");
    std::fs::write(&text, "just some text\n").unwrap();
    gorgon(&["run", "--plugin", text.to_str().unwrap(), "-n", "1"])
        .assert_usage_error("is not a shared library");
}

#[test]
fn a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    gorgon(&["run", "--plugin", dir.path().to_str().unwrap(), "-n", "1"])
        .assert_usage_error("is not a file");
}

#[test]
fn a_library_without_operation_is_refused() {
    let lib = plugin("gorgon-test-no-operation");
    gorgon(&["run", "--plugin", lib.to_str().unwrap(), "-n", "1"])
        .assert_usage_error("has no `operation` symbol");
}

#[test]
fn a_plugin_of_another_abi_is_refused_before_any_call() {
    // The bad-abi plugin aborts if its operation is ever called.
    let lib = plugin("gorgon-test-bad-abi");
    gorgon(&["run", "--plugin", lib.to_str().unwrap(), "-n", "1"])
        .assert_usage_error("built for plugin ABI 999 but this gorgon speaks ABI 1 to");
    gorgon(&["run", "--plugin", lib.to_str().unwrap(), "--debug"]).assert_usage_error("ABI 999");
}

#[test]
fn zero_or_non_numeric_counts_are_refused() {
    let noop = noop();
    for (flag, value) in [
        ("-n", "0"),
        ("-n", "many"),
        ("-p", "0"),
        ("-p", "two"),
        ("-t", "0"),
        ("-t", "-1"),
    ] {
        let mut args = vec!["run", "--plugin", &noop, flag, value];
        if flag != "-n" {
            args.extend(["-n", "10"]);
        }
        let run = gorgon(&args);
        run.assert_usage_error(value);
    }
}

#[test]
fn malformed_runs_are_refused() {
    let noop = noop();
    for runs in ["2x", "abc", "1x1,,2x2", "0x4", "2x4x1"] {
        gorgon(&["run", "--plugin", &noop, "-n", "10", "--runs", runs])
            .assert_usage_error("expected PROCESSESxTHREADS");
    }
}

#[test]
fn a_missing_operation_count_is_refused() {
    gorgon(&["run", "--plugin", &noop()]).assert_usage_error("--operations");
}

#[test]
fn a_malformed_parameter_is_refused() {
    gorgon(&["run", "--plugin", &noop(), "-n", "1", "--set", "novalue"])
        .assert_usage_error("expected KEY=VALUE");
}

#[test]
fn an_unknown_flag_is_refused() {
    gorgon(&["run", "--plugin", &noop(), "-n", "1", "--frobnicate"])
        .assert_usage_error("--frobnicate");
}

#[test]
fn a_setup_that_refuses_its_input_is_bad_input() {
    let lib = plugin("gorgon-test-testkit");
    let lib = lib.to_str().unwrap();
    let set = ["--set", "fail_setup=input"];
    gorgon(
        &[
            &["run", "--plugin", lib, "-n", "10", "-p", "2", "-t", "3"],
            &set[..],
        ]
        .concat(),
    )
    .assert_usage_error("fail_setup=input says the input is bad");
    gorgon(&[&["run", "--plugin", lib, "--debug"], &set[..]].concat())
        .assert_usage_error("fail_setup=input says the input is bad");
}

#[test]
fn parameters_too_large_for_a_worker_are_refused_before_it_starts() {
    // A worker is told its parameters in one command-line argument; a
    // value too large for that (from gorgon.toml, as the command line
    // itself could not hold it either) is bad input, said in a sentence.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gorgon.toml");
    let body = "x".repeat(150_000);
    std::fs::write(&config, format!("[params]\nbody = \"{body}\"\n")).unwrap();
    let config = config.to_str().unwrap();
    gorgon(&["--config", config, "run", "--plugin", &noop(), "-n", "1"])
        .assert_usage_error("too large to hand to a worker");
}
