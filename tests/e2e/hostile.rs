//! Hostile plugins and inputs: a bad plugin never takes gorgon down, an
//! output file is never destroyed, and a run the machine cannot hold is
//! refused before it starts.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::Stdio;

use crate::support::{plugin, Gorgon, Report};

fn noop() -> Gorgon {
    Gorgon::run(plugin("gorgon-noop"))
}

/// The plugin whose load-time code does what GORGON_TEST_CONSTRUCTOR says.
fn constructor(how: &str) -> Gorgon {
    Gorgon::run(plugin("gorgon-test-constructor")).env("GORGON_TEST_CONSTRUCTOR", how)
}

#[test]
fn a_truncated_plugin_is_refused_without_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(plugin("gorgon-noop")).unwrap();
    for keep in [16, 100, whole.len() / 2, whole.len() - 1] {
        let cut = dir.path().join(format!("libcut{keep}.so"));
        std::fs::write(&cut, &whole[..keep]).unwrap();
        Gorgon::run(&cut)
            .args(["-n", "1"])
            .usage_error("is truncated");
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
    let run = Gorgon::run(&foreign)
        .args(["-n", "1"])
        .usage_error(&format!("was built for {name} but this machine is"));
    assert!(!run.stderr.contains("No such file"), "{}", run.stderr);
}

#[test]
fn what_a_plugin_prints_while_loading_never_reaches_stdout() {
    let run = constructor("print").args(["-n", "50", "-p", "2"]).ok();
    // `.json()` reads the whole of stdout as the report.
    assert_eq!(run.json().run().all.count, 50);
    assert!(run.stderr.contains("constructor writes this to stdout"));
}

#[test]
fn a_plugin_whose_load_time_code_exits_or_crashes_is_bad_input() {
    for (how, says) in [("exit", "exit code 7"), ("crash", "SIGSEGV")] {
        let run = constructor(how)
            .args(["-n", "5", "--output", "json"])
            .usage_error(says);
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
    let run = Gorgon::testkit()
        .args(["-n", "20", "-t", "2"])
        .set("setup_prints", 1)
        .ok();
    assert_eq!(run.json().run().all.count, 20, "stdout is only JSON");
    assert!(run.stderr.contains("testkit setup writes this to stdout"));
}

#[test]
fn a_symlinked_save_file_is_followed_and_the_link_kept() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.json");
    std::fs::write(&real, "old").unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    noop().args(["-n", "10", "-q", "--save"]).arg(&link).ok();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(Report::read(&real).run().all.count, 10);
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
    noop().args(["-n", "10", "-q", "--html"]).arg(&fifo).ok();
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
    noop()
        .args(["-n", "10", "-q", "--save"])
        .arg(&full)
        .run_failed("No space left on device");
    assert!(std::fs::metadata(&full)
        .unwrap()
        .file_type()
        .is_char_device());
}

#[test]
fn a_full_stdout_fails_the_run_in_one_sentence() {
    let output = noop().args(["-n", "10"]).with_full_stdout();
    let stderr = &output.stderr;
    assert_eq!(output.code, 3, "{stderr}");
    assert!(
        stderr.contains("cannot write the report to stdout"),
        "{stderr}"
    );
}

#[test]
fn a_reader_that_goes_away_is_no_failure() {
    let mut child = noop()
        .args(["-n", "10"])
        .to_command()
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
    Gorgon::run(&lib)
        .args(["-n", "1", "--save"])
        .arg(&lib)
        .usage_error("is the plugin");
    let requests = dir.path().join("flow.http");
    std::fs::write(&requests, "GET http://127.0.0.1:9/\n").unwrap();
    Gorgon::run(&lib)
        .args(["-n", "1"])
        .set("requests", requests.display())
        .arg("--html")
        .arg(&requests)
        .usage_error("is the file of --set requests");
    let config = dir.path().join("gorgon.toml");
    std::fs::write(&config, "").unwrap();
    Gorgon::run(&lib)
        .config(&config)
        .args(["-n", "1", "--save"])
        .arg(&config)
        .usage_error("is the config file");
    assert_eq!(std::fs::read(&lib).unwrap(), before);
    assert_eq!(
        std::fs::read_to_string(&requests).unwrap(),
        "GET http://127.0.0.1:9/\n"
    );
}

#[test]
fn runs_the_machine_cannot_hold_are_refused_before_they_start() {
    for processes in ["4294967295", "1000000000"] {
        noop()
            .args(["-n", "1", "-p", processes])
            .usage_error("more processes than one machine runs well");
    }
    noop()
        .args(["-n", "1", "-t", "1000000"])
        .usage_error("1×1000000 needs about");
    assert!(Path::new("/proc/sys/kernel/threads-max").exists());
}

#[test]
fn distinct_labels_beyond_the_cap_fold_into_one_row_with_a_warning() {
    let run = Gorgon::testkit()
        .args(["-n", "20000", "-t", "2"])
        .set("distinct_labels", 1)
        .ok();
    let report = run.json();
    let labels = report.run().labels();
    assert!(labels.len() <= 1001, "{} rows", labels.len());
    assert_eq!(labels.values().sum::<u64>(), 20000, "no call is lost");
    assert!(labels.contains_key("(other labels)"), "{labels:?}");
    assert!(
        run.stderr.contains("more than 1000 distinct result labels"),
        "{}",
        run.stderr
    );
}
