//! Hostile plugins and inputs: a bad plugin never takes gorgon down, an
//! output file is never destroyed, and a run the machine cannot hold is
//! refused before it starts.

use std::fs::File;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::{gorgon, gorgon_bin, plugin, Run};

fn noop() -> String {
    plugin("gorgon-noop").display().to_string()
}

fn run_with(args: &[&str], env: (&str, &str)) -> Run {
    let output = Command::new(gorgon_bin())
        .args(args)
        .env(env.0, env.1)
        .output()
        .expect("gorgon starts");
    Run::from(output)
}

#[test]
fn a_truncated_plugin_is_refused_without_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(plugin("gorgon-noop")).unwrap();
    for keep in [16, 100, whole.len() / 2, whole.len() - 1] {
        let cut = dir.path().join(format!("libcut{keep}.so"));
        std::fs::write(&cut, &whole[..keep]).unwrap();
        gorgon(&["run", "--plugin", cut.to_str().unwrap(), "-n", "1"])
            .assert_usage_error("is truncated");
    }
}

#[test]
fn a_plugin_for_another_architecture_names_both() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(plugin("gorgon-noop")).unwrap();
    // e_machine, at offset 18 of the ELF header (little endian here): a
    // machine this one is not.
    let (other, name) = if std::env::consts::ARCH == "aarch64" {
        (0x3eu16, "x86_64")
    } else {
        (0xb7u16, "aarch64")
    };
    bytes[18..20].copy_from_slice(&other.to_le_bytes());
    let foreign = dir.path().join("libforeign.so");
    std::fs::write(&foreign, bytes).unwrap();
    let run = gorgon(&["run", "--plugin", foreign.to_str().unwrap(), "-n", "1"]);
    run.assert_usage_error(&format!("was built for {name} but this machine is"));
    assert!(!run.stderr.contains("No such file"), "{}", run.stderr);
}

#[test]
fn what_a_plugin_prints_while_loading_never_reaches_stdout() {
    let lib = plugin("gorgon-test-constructor");
    let run = run_with(
        &[
            "run",
            "--plugin",
            lib.to_str().unwrap(),
            "-n",
            "50",
            "-p",
            "2",
            "--output",
            "json",
        ],
        ("GORGON_TEST_CONSTRUCTOR", "print"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: serde_json::Value =
        serde_json::from_str(&run.stdout).expect("stdout is only the JSON report");
    assert_eq!(report["runs"][0]["all"]["count"], 50);
    assert!(run.stderr.contains("constructor writes this to stdout"));
}

#[test]
fn a_plugin_whose_load_time_code_exits_or_crashes_is_bad_input() {
    let lib = plugin("gorgon-test-constructor");
    let lib = lib.to_str().unwrap();
    for (how, says) in [("exit", "exit code 7"), ("crash", "SIGSEGV")] {
        let run = run_with(
            &["run", "--plugin", lib, "-n", "5", "--output", "json"],
            ("GORGON_TEST_CONSTRUCTOR", how),
        );
        run.assert_usage_error(says);
        assert!(
            run.stderr.contains("while it was being loaded"),
            "{}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{}", run.stdout);
    }
}

#[test]
fn a_setup_that_prints_leaves_the_json_valid() {
    let lib = plugin("gorgon-test-testkit");
    let run = gorgon(&[
        "run",
        "--plugin",
        lib.to_str().unwrap(),
        "-n",
        "20",
        "-t",
        "2",
        "--set",
        "setup_prints=1",
        "--output",
        "json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str::<serde_json::Value>(&run.stdout).expect("stdout is only JSON");
    assert!(run.stderr.contains("testkit setup writes this to stdout"));
}

#[test]
fn a_symlinked_save_file_is_followed_and_the_link_kept() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.json");
    std::fs::write(&real, "old").unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    gorgon(&[
        "run",
        "--plugin",
        &noop(),
        "-n",
        "10",
        "-q",
        "--save",
        link.to_str().unwrap(),
    ])
    .ok();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&real).unwrap()).unwrap();
    assert_eq!(saved["runs"][0]["all"]["count"], 10);
}

#[test]
fn a_fifo_as_html_file_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("page");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    gorgon(&[
        "run",
        "--plugin",
        &noop(),
        "-n",
        "10",
        "-q",
        "--html",
        fifo.to_str().unwrap(),
    ])
    .ok();
    assert!(reader.join().unwrap().contains("<html"));
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn a_full_device_as_save_file_fails_the_run_and_stays_a_device() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: making a device node needs root");
        return;
    }
    // A private copy of /dev/full, so that a regression could only ever
    // replace this one.
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    nix::sys::stat::mknod(
        &full,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 7),
    )
    .unwrap();
    let run = gorgon(&[
        "run",
        "--plugin",
        &noop(),
        "-n",
        "10",
        "-q",
        "--save",
        full.to_str().unwrap(),
    ]);
    run.assert_run_failed("No space left on device");
    assert!(std::fs::metadata(&full)
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn a_full_stdout_fails_the_run_in_one_sentence() {
    let output = Command::new(gorgon_bin())
        .args(["run", "--plugin", &noop(), "-n", "10", "--output", "json"])
        .stdout(File::options().write(true).open("/dev/full").unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("cannot write the report to stdout"),
        "{stderr}"
    );
}

#[test]
fn a_reader_that_goes_away_is_no_failure() {
    let mut child = Command::new(gorgon_bin())
        .args(["run", "--plugin", &noop(), "-n", "10", "--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("cannot write"), "{stderr}");
}

#[test]
fn an_output_naming_an_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("libkept.so");
    std::fs::copy(plugin("gorgon-noop"), &lib).unwrap();
    let before = std::fs::read(&lib).unwrap();
    let lib = lib.to_str().unwrap();
    gorgon(&["run", "--plugin", lib, "-n", "1", "--save", lib]).assert_usage_error("is the plugin");
    let requests = dir.path().join("flow.http");
    std::fs::write(&requests, "GET http://127.0.0.1:9/\n").unwrap();
    let requests = requests.to_str().unwrap();
    gorgon(&[
        "run",
        "--plugin",
        lib,
        "-n",
        "1",
        "--set",
        &format!("requests={requests}"),
        "--html",
        requests,
    ])
    .assert_usage_error("is the file of --set requests");
    let config = dir.path().join("gorgon.toml");
    std::fs::write(&config, "").unwrap();
    let config = config.to_str().unwrap();
    gorgon(&[
        "--config", config, "run", "--plugin", lib, "-n", "1", "--save", config,
    ])
    .assert_usage_error("is the config file");
    assert_eq!(std::fs::read(lib).unwrap(), before);
    assert_eq!(
        std::fs::read_to_string(requests).unwrap(),
        "GET http://127.0.0.1:9/\n"
    );
}

#[test]
fn runs_the_machine_cannot_hold_are_refused_before_they_start() {
    let noop = noop();
    gorgon(&["run", "--plugin", &noop, "-n", "1", "-p", "4294967295"])
        .assert_usage_error("more processes than one machine runs well");
    gorgon(&["run", "--plugin", &noop, "-n", "1", "-p", "1000000000"])
        .assert_usage_error("more processes than one machine runs well");
    let run = gorgon(&["run", "--plugin", &noop, "-n", "1", "-t", "1000000"]);
    run.assert_usage_error("1×1000000 needs about");
    assert!(Path::new("/proc/sys/kernel/threads-max").exists());
}

#[test]
fn distinct_labels_beyond_the_cap_fold_into_one_row_with_a_warning() {
    let lib = plugin("gorgon-test-testkit");
    let run = gorgon(&[
        "run",
        "--plugin",
        lib.to_str().unwrap(),
        "-n",
        "20000",
        "-t",
        "2",
        "--set",
        "distinct_labels=1",
        "--output",
        "json",
    ])
    .ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let results = report["runs"][0]["results"].as_array().unwrap();
    assert!(results.len() <= 1001, "{} rows", results.len());
    let total: u64 = results.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 20000, "no call is lost");
    assert!(results.iter().any(|r| r["name"] == "(other labels)"));
    assert!(
        run.stderr.contains("more than 1000 distinct result labels"),
        "{}",
        run.stderr
    );
}
