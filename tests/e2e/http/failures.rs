//! Failures are failures: a status of 400 or more and a transport error
//! are errors in the report and the exit code without any `--ok`; `--ok`
//! still decides when given.

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
    let file = requests_file(
        "down.http",
        &format!("GET http://127.0.0.1:{}/\n", closed_port()),
    );
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
