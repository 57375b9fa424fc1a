//! Failures are failures: a status of 400 or more and a transport error
//! are errors in the report and the exit code without any `--ok`; `--ok`
//! still decides when given.

use super::server::{closed_port, TestServer};
use super::{requests_file, run_http};

#[test]
fn statuses_of_400_and_more_are_errors_unless_ok_says_otherwise() {
    let server = TestServer::start();
    let file = requests_file("mod.http", "GET {{base}}/mod/4/{{$number}}\n");
    let base = format!("base={}", server.base());
    let run =
        run_http(&file, &["--set", &base, "-n", "100", "--output", "json"]).with_failed_calls();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["runs"][0]["errors"], 25, "every 500 is an error");
    let run = run_http(
        &file,
        &[
            "--set", &base, "-n", "100", "--ok", "200,500", "--output", "json",
        ],
    )
    .ok();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["runs"][0]["errors"], 0, "--ok decides");
}

#[test]
fn a_refused_connection_throughout_fails_the_run() {
    let file = requests_file(
        "down.http",
        &format!("GET http://127.0.0.1:{}/\n", closed_port()),
    );
    let run = run_http(
        &file,
        &[
            "--set",
            "connect_at_start=false",
            "-n",
            "20",
            "--output",
            "json",
        ],
    )
    .with_failed_calls();
    assert!(
        run.stderr.contains("20 of 20 calls failed"),
        "{}",
        run.stderr
    );
}
