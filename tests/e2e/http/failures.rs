//! Failures are failures: a status of 400 or more and a transport error
//! are errors in the report and the exit code without any `--ok`; `--ok`
//! still decides when given.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::server::{closed_port, TestServer};
use super::{http, requests_file};

#[test]
fn statuses_of_400_and_more_are_errors_unless_ok_says_otherwise() {
    let server = TestServer::start();
    let file = requests_file("mod.http", "GET {{base}}/mod/4/{{$number}}\n");
    let failing = http(&file)
        .set("base", server.base())
        .args(["-n", "100"])
        .with_failed_calls()
        .json();
    assert_eq!(failing.run().errors, 25, "every 500 is an error");
    let accepted = http(&file)
        .set("base", server.base())
        .args(["-n", "100", "--ok", "200,500"])
        .ok()
        .json();
    assert_eq!(accepted.run().errors, 0, "--ok decides");
}

#[test]
fn a_refused_connection_throughout_fails_the_run() {
    let port = closed_port();
    let file = requests_file("down.http", &format!("GET http://127.0.0.1:{port}/\n"));
    let run = http(&file)
        .set("connect_at_start", "false")
        .args(["-n", "20"])
        .with_failed_calls();
    assert!(
        run.stderr.contains("20 of 20 calls failed"),
        "{}",
        run.stderr
    );
}

/// A response trickled a byte every 200 ms, forever as far as the client
/// knows: `timeout_ms` bounds the whole exchange, so each call ends as
/// `timeout` after half a second instead of running until the server or
/// `--call-timeout` gives up.
fn a_trickled_response_times_out_as_a_whole(threads: &[&str]) {
    let server = TestServer::start();
    let file = requests_file("trickle.http", &format!("GET {}/trickle\n", server.base()));
    // Built first (the plugins are compiled on first use), then timed.
    let gorgon = http(&file)
        .set("timeout_ms", 500)
        .args(["-n", "4", "-p", "1"])
        .args(threads);
    let started = Instant::now();
    let report = gorgon.with_failed_calls().json();
    let took = started.elapsed();
    assert_eq!(report.run().labels(), BTreeMap::from([("timeout", 4)]));
    // Four calls of 0.5 s, two at a time at worst one after the other:
    // well under the 10 s a single call would take without the deadline.
    assert!(took < Duration::from_secs(8), "took {took:?}");
    assert_eq!(server.seen().len(), 4);
}

#[test]
fn a_trickled_response_is_a_timeout_on_threads() {
    a_trickled_response_times_out_as_a_whole(&["-t", "2"]);
}

#[test]
fn a_trickled_response_is_a_timeout_on_fibers() {
    a_trickled_response_times_out_as_a_whole(&["-t", "1", "--fibers", "2"]);
}
