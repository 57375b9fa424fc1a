//! Every bad input: one sentence on stderr, exit code 2, never a panic.

use crate::support::{plugin, Gorgon};

fn noop() -> Gorgon {
    Gorgon::run(plugin("gorgon-noop"))
}

#[test]
fn a_missing_plugin_is_named() {
    Gorgon::run("/nonexistent/libnothing.so")
        .args(["-n", "1"])
        .usage_error("/nonexistent/libnothing.so does not exist");
}

#[test]
fn a_file_that_is_not_a_library_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.so");
    std::fs::write(&text, "just some text\n").unwrap();
    Gorgon::run(&text)
        .args(["-n", "1"])
        .usage_error("is not a shared library");
}

#[test]
fn a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    Gorgon::run(dir.path())
        .args(["-n", "1"])
        .usage_error("is not a file");
}

#[test]
fn a_library_without_operation_is_refused() {
    Gorgon::run(plugin("gorgon-test-no-operation"))
        .args(["-n", "1"])
        .usage_error("has no `operation` symbol");
}

#[test]
fn a_plugin_of_another_abi_is_refused_before_any_call() {
    // The bad-abi plugin aborts if its operation is ever called.
    let lib = plugin("gorgon-test-bad-abi");
    Gorgon::run(&lib)
        .args(["-n", "1"])
        .usage_error("built for plugin ABI 999 but this gorgon speaks ABI 1 to");
    Gorgon::run(&lib).debug().usage_error("ABI 999");
}

#[test]
fn zero_or_non_numeric_counts_are_refused() {
    for (flag, value) in [
        ("-n", "0"),
        ("-n", "many"),
        ("-p", "0"),
        ("-p", "two"),
        ("-t", "0"),
        ("-t", "-1"),
    ] {
        let mut run = noop().args([flag, value]);
        if flag != "-n" {
            run = run.args(["-n", "10"]);
        }
        run.usage_error(value);
    }
}

#[test]
fn malformed_runs_are_refused() {
    for runs in ["2x", "abc", "1x1,,2x2", "0x4", "2x4x1"] {
        noop()
            .args(["-n", "10", "--runs", runs])
            .usage_error("expected PROCESSESxTHREADS");
    }
}

#[test]
fn a_missing_operation_count_is_refused() {
    noop().usage_error("--operations");
}

#[test]
fn a_malformed_parameter_is_refused() {
    noop()
        .args(["-n", "1", "--set", "novalue"])
        .usage_error("expected KEY=VALUE");
}

#[test]
fn an_unknown_flag_is_refused() {
    noop()
        .args(["-n", "1", "--frobnicate"])
        .usage_error("--frobnicate");
}

#[test]
fn a_setup_that_refuses_its_input_is_bad_input() {
    Gorgon::testkit()
        .args(["-n", "10", "-p", "2", "-t", "3"])
        .set("fail_setup", "input")
        .usage_error("fail_setup=input says the input is bad");
    Gorgon::testkit()
        .debug()
        .set("fail_setup", "input")
        .usage_error("fail_setup=input says the input is bad");
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
    noop()
        .config(&config)
        .args(["-n", "1"])
        .usage_error("too large to hand to a worker");
}
