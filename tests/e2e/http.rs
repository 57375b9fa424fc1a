//! The HTTP plugin against a real HTTP server on loopback (http/server.rs):
//! text and HAR files, captures, `{number}`, refused connections, timeouts,
//! and malformed files.

mod dialect;
mod failures;
mod fibers;
mod har;
mod server;
mod table_width;
mod tls;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use server::{closed_port, TestServer};

use crate::support::{plugin, workspace, Gorgon};

/// A requests file in a fresh temporary directory.
struct RequestsFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn requests_file(name: &str, text: &str) -> RequestsFile {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    RequestsFile { _dir: dir, path }
}

/// `gorgon run` of the HTTP plugin on the requests file.
fn http(file: &RequestsFile) -> Gorgon {
    Gorgon::run(plugin("gorgon-http")).set("requests", file.path.display())
}

#[test]
fn a_text_file_replays_with_exact_counts_by_status() {
    let server = TestServer::start();
    let file = requests_file("mod.http", "GET {{base}}/mod/5/{number}\n");
    let report = http(&file)
        .set("base", server.base())
        .args(["-n", "1000", "-p", "2", "-t", "4"])
        .with_failed_calls()
        .json();
    let figures = report.run();
    assert_eq!(figures.all.count, 1000);
    assert_eq!(
        figures.labels(),
        BTreeMap::from([("200", 800), ("500", 200)])
    );
    // One unnamed request: no measurement repeating the call's.
    assert!(
        figures.measurements.is_empty(),
        "{:?}",
        figures.measurements
    );
    assert_eq!(server.seen().len(), 1000);
    // One kept-alive connection per thread, a 500 included.
    assert_eq!(server.connections(), 8);
}

#[test]
fn number_substitution_reaches_the_server() {
    let server = TestServer::start();
    let text = "\
### by path
GET {{base}}/n/{number}
X-Number: {number}

### by body
POST {{base}}/status/201
Content-Type: text/plain

n={number}
";
    let file = requests_file("numbers.http", text);
    let report = http(&file)
        .set("base", server.base())
        .args(["-n", "500", "-p", "2", "-t", "3"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("201", 500)]));
    assert_eq!(
        report.run().measured_names(),
        BTreeMap::from([("by body", 500), ("by path", 500)])
    );
    let seen = server.seen();
    let from_paths: BTreeSet<u64> = seen
        .iter()
        .filter_map(|s| s.path.strip_prefix("/n/"))
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(from_paths, (0..500).collect());
    for request in seen.iter().filter(|s| s.path.starts_with("/n/")) {
        assert_eq!(request.header("X-Number"), request.path.strip_prefix("/n/"));
    }
    let from_bodies: BTreeSet<u64> = seen
        .iter()
        .filter(|s| s.method == "POST")
        .map(|s| {
            assert_eq!(
                s.header("Content-Length"),
                Some(s.body.len().to_string().as_str())
            );
            s.body.strip_prefix("n=").unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(from_bodies, (0..500).collect());
}

const CREATE_THEN_GET: &str = "\
# File variables, overridden by --set.
@base = http://127.0.0.1:1

### create
POST {{base}}/items
Content-Type: application/json
@capture id = json id
@capture where = header Location

{\"name\": \"item {number}\"}

### get
GET {{base}}/items/{{id}}

### get by location
GET {{base}}{{where}}
";

#[test]
fn create_then_get_uses_the_captured_ids() {
    let server = TestServer::start();
    let file = requests_file("flow.http", CREATE_THEN_GET);
    let report = http(&file)
        .set("base", server.base())
        .args(["-n", "300", "-p", "2", "-t", "4"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("200", 300)]));
    assert_eq!(
        report.run().measured_names(),
        BTreeMap::from([("create", 300), ("get", 300), ("get by location", 300)])
    );
    let seen = server.seen();
    let created: BTreeSet<u64> = (1000..1300).collect();
    let read: Vec<u64> = seen
        .iter()
        .filter(|s| s.method == "GET")
        .map(|s| s.path.strip_prefix("/items/").unwrap().parse().unwrap())
        .collect();
    assert_eq!(read.len(), 600);
    assert_eq!(read.iter().copied().collect::<BTreeSet<_>>(), created);
    let names: BTreeSet<String> = seen
        .iter()
        .filter(|s| s.method == "POST")
        .map(|s| s.body.clone())
        .collect();
    assert!(names.contains("{\"name\": \"item 299\"}"), "{names:?}");
}

#[test]
fn a_capture_that_finds_nothing_is_counted_and_stops_the_call() {
    let server = TestServer::start();
    let text = format!(
        "### create\nPOST {}/items\n@capture id = json data.id\n\n### get\nGET {}/items/{{{{id}}}}\n",
        server.base(),
        server.base()
    );
    let file = requests_file("missing.http", &text);
    let report = http(&file).args(["-n", "20"]).with_failed_calls().json();
    assert_eq!(report.run().labels(), BTreeMap::from([("missing id", 20)]));
    assert_eq!(report.run().measured("get"), 0, "{report:?}");
    assert!(server.seen().iter().all(|s| s.method == "POST"));
}

#[test]
fn a_failure_ends_the_call_only_when_later_requests_use_its_captures() {
    let server = TestServer::start();
    let text = format!(
        "### missing\nGET {0}/status/404\n\n### still sent\nGET {0}/status/200\n\n\
         ### login\n# @name login\nPOST {0}/status/401\n\n\
         ### never\nGET {0}/n/{{{{login.response.body.$.token}}}}\n",
        server.base()
    );
    let file = requests_file("stop.http", &text);
    let report = http(&file)
        .args(["-n", "10", "-t", "2"])
        .with_failed_calls()
        .json();
    // The call's label is its first failure.
    assert_eq!(report.run().labels(), BTreeMap::from([("404", 10)]));
    // `never` is not sent: it uses the failed login's capture.
    assert_eq!(
        report.run().measured_names(),
        BTreeMap::from([("login", 10), ("missing", 10), ("still sent", 10)])
    );
    assert!(server.seen().iter().all(|s| !s.path.starts_with("/n/")));
}

#[test]
fn chunked_bodies_and_closed_connections_are_handled() {
    let server = TestServer::start();
    let text = format!(
        "### token\nGET {0}/chunked\n@capture token = json token\n\n\
         ### close\nGET {0}/close\n\n### use\nGET {0}/n/{{{{token}}}}\n",
        server.base()
    );
    let file = requests_file("chunked.http", &text);
    let report = http(&file).args(["-n", "50", "-t", "2"]).ok().json();
    assert_eq!(report.run().labels(), BTreeMap::from([("200", 50)]));
    let seen = server.seen();
    let tokens: BTreeSet<&str> = seen
        .iter()
        .filter_map(|s| s.path.strip_prefix("/n/"))
        .collect();
    assert_eq!(tokens.len(), 50);
    assert!(tokens.iter().all(|t| t.starts_with("t-")), "{tokens:?}");
    // Each `Connection: close` costs a new connection for the next call.
    assert!(server.connections() >= 50, "{}", server.connections());
}

#[test]
fn a_har_file_replays_with_exact_counts() {
    let server = TestServer::start();
    let har = format!(
        r#"{{"log": {{"version": "1.2", "creator": {{"name": "Firefox", "version": "130"}},
  "entries": [
    {{"startedDateTime": "2026-01-01T00:00:00Z", "time": 1,
      "request": {{"method": "GET", "url": "{0}/status/200", "httpVersion": "HTTP/2",
        "headers": [{{"name": ":authority", "value": "example.org"}},
                    {{"name": "Host", "value": "example.org"}},
                    {{"name": "Accept", "value": "application/json"}}],
        "cookies": [], "queryString": [], "headersSize": -1, "bodySize": 0}},
      "response": {{"status": 200}}, "timings": {{"wait": 1}}}},
    {{"startedDateTime": "2026-01-01T00:00:01Z", "time": 1,
      "request": {{"method": "POST", "url": "{0}/items", "httpVersion": "HTTP/1.1",
        "headers": [{{"name": "Content-Type", "value": "application/json"}},
                    {{"name": "Content-Length", "value": "999"}}],
        "postData": {{"mimeType": "application/json", "text": "{{\"name\": \"{{x}}\"}}"}},
        "cookies": [], "queryString": [], "headersSize": -1, "bodySize": 15}},
      "response": {{"status": 201}}, "timings": {{"wait": 1}}}},
    {{"request": {{"method": "GET", "url": "{0}/status/200", "headers": []}},
      "response": {{"status": 200}}}}
  ]}}}}"#,
        server.base()
    );
    let file = requests_file("session.har", &har);
    let report = http(&file)
        .args(["-n", "40", "-p", "2", "-t", "2"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("200", 40)]));
    assert_eq!(
        report.run().measured_names(),
        BTreeMap::from([
            ("GET /status/200", 40),
            ("GET /status/200 #2", 40),
            ("POST /items", 40)
        ])
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 120);
    for request in &seen {
        // The recorded Host and :authority are dropped; the target's used.
        assert_eq!(
            request.header("Host"),
            Some(format!("127.0.0.1:{}", server.port).as_str())
        );
    }
    let post = seen.iter().find(|s| s.method == "POST").unwrap();
    // HAR bodies are sent as recorded: an unknown {name} stays literal.
    assert_eq!(post.body, "{\"name\": \"{x}\"}");
    assert_eq!(post.header("Content-Length"), Some("15"));
}

#[test]
fn refused_connections_are_counted_when_not_checked_at_start() {
    let port = closed_port();
    let file = requests_file("refused.http", &format!("GET http://127.0.0.1:{port}/\n"));
    let report = http(&file)
        .set("connect_at_start", false)
        .args(["-n", "30", "-p", "2", "-t", "2"])
        .with_failed_calls()
        .json();
    assert_eq!(
        report.run().labels(),
        BTreeMap::from([("connect refused", 30)])
    );
}

#[test]
fn an_unreachable_target_at_start_stops_the_run_with_one_sentence() {
    let port = closed_port();
    let file = requests_file(
        "refused.http",
        &format!("### home\nGET http://127.0.0.1:{port}/\n"),
    );
    let run = http(&file).args(["-n", "30", "-p", "2"]).expect_exit(3);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    let expected = format!("cannot reach 127.0.0.1:{port}, the server of request `home` (");
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
    assert!(
        run.stderr.contains("refused.http:2): connection refused"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("connect_at_start=false"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn a_slow_response_is_a_timeout() {
    let server = TestServer::start();
    let file = requests_file("slow.http", &format!("GET {}/slow\n", server.base()));
    let report = http(&file)
        .set("timeout_ms", 200)
        .args(["-n", "2"])
        .with_failed_calls()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("timeout", 2)]));
}

#[test]
fn debug_mode_prints_each_call_with_its_requests() {
    let server = TestServer::start();
    let file = requests_file("flow.http", CREATE_THEN_GET);
    let run = http(&file)
        .set("base", server.base())
        .debug()
        .args(["-n", "3"])
        .ok();
    let calls: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(calls.len(), 3, "{}", run.stdout);
    assert!(calls
        .iter()
        .all(|l| l.contains("200") && l.contains("create<")));
}

#[test]
fn malformed_files_are_refused_with_file_and_line() {
    let cases: [(&str, &str, &str); 7] = [
        (
            "bad.http",
            "### a\nGET http://h/\nAccept\n",
            "bad.http:3: expected a header",
        ),
        (
            "bad.http",
            "### a\nfetch http://h/\n",
            "bad.http:2: expected a request line",
        ),
        (
            "bad.http",
            "### a\nGET http://h/\n\n### b\nGET http://h/{{id}}\n",
            "bad.http:5: {{id}} is not defined: set it with --set id=VALUE",
        ),
        (
            "bad.http",
            "### a\nPOST http://h/\n\n{\"a\": 1,\n \"b\": {{nope}}}\n",
            "bad.http:5: {{nope}} is not defined",
        ),
        (
            "bad.http",
            "GET ftp://h/\n",
            "bad.http:1: a URL must start with http:// or https://",
        ),
        (
            "bad.har",
            "{\"log\": {\n\"entries\": [,]}}",
            "bad.har:2: not a valid HAR file",
        ),
        ("empty.http", "# nothing\n", "empty.http: no request found"),
    ];
    for (name, text, expected) in cases {
        let file = requests_file(name, text);
        let run = http(&file)
            .args(["-n", "5", "-p", "2", "-t", "2"])
            .usage_error(expected);
        // The sentence names the file as it was given.
        assert!(
            run.stderr.contains(&file.path.display().to_string()),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_missing_requests_parameter_or_file_is_bad_input() {
    let http = || Gorgon::run(plugin("gorgon-http"));
    http()
        .args(["-n", "1"])
        .usage_error("say which requests to send with --set requests=FILE");
    http()
        .set("requests", "/nonexistent.http")
        .args(["-n", "1"])
        .usage_error("cannot read the requests file /nonexistent.http");
    http()
        .set("requests", "/nonexistent.http")
        .debug()
        .usage_error("cannot read the requests file /nonexistent.http");
}

#[test]
fn the_example_request_files_run() {
    let server = TestServer::start();
    let examples = workspace().join("examples/requests");
    for (name, label, steps) in [
        ("seed-get.http", "200", &[][..]),
        ("subcalls.http", "200", &["http call 1", "http call 2"][..]),
        ("create-then-get.http", "200", &["create", "get"][..]),
        (
            "item-lifecycle.http",
            "204",
            &[
                "create",
                "read it back where the server said it is",
                "delete",
            ][..],
        ),
    ] {
        let file = RequestsFile {
            _dir: tempfile::tempdir().unwrap(),
            path: examples.join(name),
        };
        let report = http(&file)
            .set("base", server.base())
            .args(["-n", "40", "-p", "2", "-t", "2"])
            .ok()
            .json();
        assert_eq!(
            report.run().labels(),
            BTreeMap::from([(label, 40)]),
            "{name}"
        );
        let measured: BTreeMap<&str, u64> = steps.iter().map(|step| (*step, 40)).collect();
        assert_eq!(report.run().measured_names(), measured, "{name}");
    }
}

/// The tutorial's API (examples/rest-api.py), killed when dropped.
struct ExampleApi {
    child: std::process::Child,
    port: u16,
}

impl ExampleApi {
    /// Starts the API on a port it picks itself (port 0): a port found
    /// free here could be taken by the time Python binds it. Its first
    /// line, printed once it listens, says which.
    fn start() -> ExampleApi {
        use std::io::BufRead;
        let mut child = std::process::Command::new("python3")
            .arg(workspace().join("examples/rest-api.py"))
            .arg("0")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs (scripts/setup.d/python3.sh installs it)");
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let port = line
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next()?.parse().ok());
        // Made before the assertion, so that a failed start is killed too.
        let api = ExampleApi {
            child,
            port: port.unwrap_or(0),
        };
        assert!(
            port.is_some(),
            "examples/rest-api.py printed no port: {line:?}"
        );
        api
    }
}

impl Drop for ExampleApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_tutorial_flow_runs_against_the_example_api() {
    let api = ExampleApi::start();
    let file = RequestsFile {
        _dir: tempfile::tempdir().unwrap(),
        path: workspace().join("examples/requests/create-then-get.http"),
    };
    let report = http(&file)
        .set("base", format!("http://127.0.0.1:{}", api.port))
        .args(["-n", "300", "-p", "2", "-t", "4"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("200", 300)]));
    assert_eq!(
        report.run().measured_names(),
        BTreeMap::from([("create", 300), ("get", 300)])
    );
}
