//! HAR recordings as browsers save them, pointed at the test servers:
//! https entries sent elsewhere with base_url or host_map, filters,
//! multipart bodies rebuilt from their parameters, names that show the
//! host.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::server::TestServer;
use super::{http, requests_file};

/// A HAR entry as Chrome writes it (HTTP/2 pseudo-headers included).
fn entry(method: &str, url: &str, extra: Value) -> Value {
    let host = url.split('/').nth(2).unwrap_or("");
    let mut entry = json!({
        "startedDateTime": "2026-01-01T00:00:00.000Z", "time": 12.5,
        "request": {
            "method": method, "url": url, "httpVersion": "h2",
            "headers": [
                {"name": ":authority", "value": host},
                {"name": ":method", "value": method},
                {"name": "accept", "value": "*/*"},
                {"name": "user-agent", "value": "Mozilla/5.0"}
            ],
            "cookies": [], "queryString": [], "headersSize": -1, "bodySize": 0
        },
        "response": {"status": 200, "content": {"size": 2, "mimeType": "application/json"}},
        "cache": {}, "timings": {"send": 0, "wait": 10, "receive": 1}
    });
    if let (Value::Object(target), Value::Object(more)) = (&mut entry, extra) {
        for (key, value) in more {
            target.insert(key, value);
        }
    }
    entry
}

fn har(entries: Vec<Value>) -> String {
    json!({"log": {"version": "1.2", "creator": {"name": "WebInspector", "version": "537.36"},
                   "pages": [], "entries": entries}})
    .to_string()
}

#[test]
fn an_https_recording_replays_against_base_url() {
    let server = TestServer::start();
    let text = har(vec![
        entry("GET", "https://shop.example.com/n/1?q=a", json!({})),
        entry("GET", "https://shop.example.com:443/n/2", json!({})),
        entry("CONNECT", "shop.example.com:443", json!({})),
        entry(
            "GET",
            "wss://shop.example.com/live",
            json!({"_resourceType": "websocket"}),
        ),
    ]);
    let file = requests_file("shop.har", &format!("\u{feff}{text}"));
    let base_url = format!("base_url={}/", server.base());
    let report = http(&file)
        .args(["--set", &base_url, "-n", "10", "-t", "2"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("200", 10)]));
    assert_eq!(report.run().measured("GET /n/1"), 10, "{report:?}");
    let seen = server.seen();
    let paths: BTreeSet<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, BTreeSet::from(["/n/1?q=a", "/n/2"]));
    assert_eq!(seen.len(), 20);
    let host = format!("127.0.0.1:{}", server.port);
    assert!(seen.iter().all(|s| s.header("Host") == Some(host.as_str())));
}

#[test]
fn a_host_map_sends_each_recorded_host_to_its_server_and_names_say_which() {
    let api = TestServer::start();
    let auth = TestServer::start();
    let long = "x".repeat(150);
    let text = har(vec![
        entry("POST", "https://auth.example.com/login", json!({})),
        entry("GET", "https://api.example.com/n/1", json!({})),
        entry(
            "GET",
            &format!("https://api.example.com/n/{long}"),
            json!({}),
        ),
    ]);
    let file = requests_file("two.har", &text);
    let map = format!(
        "host_map=api.example.com=http://127.0.0.1:{},auth.example.com=http://127.0.0.1:{}",
        api.port, auth.port
    );
    let report = http(&file)
        .args(["--set", &map, "-n", "6", "-t", "2"])
        .ok()
        .json();
    let names = report.run().measured_names();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.values().all(|&count| count == 6), "{names:?}");
    assert!(
        names.contains_key("POST auth.example.com/login"),
        "{names:?}"
    );
    assert!(names.contains_key("GET api.example.com/n/1"), "{names:?}");
    // A long name is shortened, and says so.
    let long_name = names
        .keys()
        .find(|name| name.starts_with("GET api.example.com/n/xxx"))
        .expect("the long entry's measurement");
    assert!(long_name.ends_with('…'), "{long_name}");
    assert!(!long_name.contains(&long), "{long_name}");
    assert!(auth.seen().iter().all(|s| s.path == "/login"));
    assert_eq!(auth.seen().len(), 6);
    assert_eq!(api.seen().len(), 12);
}

#[test]
fn filters_keep_the_requests_wanted() {
    let server = TestServer::start();
    let text = har(vec![
        entry(
            "GET",
            "https://shop.example.com/n/page",
            json!({"response": {"status": 200, "content": {"mimeType": "text/html"}}}),
        ),
        entry("GET", "https://shop.example.com/n/style.css?v=3", json!({})),
        entry(
            "GET",
            "https://shop.example.com/n/logo",
            json!({"response": {"status": 200, "content": {"mimeType": "image/png"}}}),
        ),
        entry(
            "GET",
            "https://shop.example.com/n/font",
            json!({"_resourceType": "font"}),
        ),
        entry("GET", "https://shop.example.com/n/app.js", json!({})),
        entry("GET", "https://shop.example.com/n/api-items", json!({})),
        entry("GET", "https://tracker.example.net/n/pixel", json!({})),
    ]);
    let file = requests_file("page.har", &text);
    let base_url = format!("base_url={}", server.base());
    let sent = |args: &[&str]| -> BTreeSet<String> {
        let before = server.seen().len();
        let mut all = vec!["--set", &base_url, "-n", "1"];
        all.extend_from_slice(args);
        http(&file).args(&all).ok();
        server.seen()[before..]
            .iter()
            .map(|s| s.path.clone())
            .collect()
    };
    let strings = |paths: &[&str]| paths.iter().map(|p| p.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        sent(&["--set", "skip_static=true"]),
        strings(&["/n/page", "/n/api-items", "/n/pixel"])
    );
    assert_eq!(
        sent(&["--set", "hosts=*.example.com", "--set", "skip_static=true"]),
        strings(&["/n/page", "/n/api-items"])
    );
    assert_eq!(sent(&["--set", "urls=/n/api-"]), strings(&["/n/api-items"]));
    http(&file)
        .args(["--set", &base_url, "--set", "hosts=nowhere.org", "-n", "1"])
        .usage_error("page.har: none of its 7 entries is left to replay");
    http(&file)
        .args(["--set", &base_url, "--set", "urls=(", "-n", "1"])
        .usage_error("urls=( is not a regular expression");
}

#[test]
fn multipart_bodies_recorded_as_params_are_rebuilt() {
    let server = TestServer::start();
    let upload = entry(
        "POST",
        "https://shop.example.com/status/201",
        json!({"request": {
            "method": "POST", "url": "https://shop.example.com/status/201",
            "headers": [{"name": "Content-Type", "value": "multipart/form-data; boundary=----WebKitFormBoundaryAbC"}],
            "postData": {"mimeType": "multipart/form-data; boundary=----WebKitFormBoundaryAbC",
                         "params": [{"name": "title", "value": "a photo"},
                                    {"name": "file", "fileName": "a.txt", "contentType": "text/plain", "value": "AAA"}]}
        }}),
    );
    let form = entry(
        "POST",
        "https://shop.example.com/status/201",
        json!({"request": {
            "method": "POST", "url": "https://shop.example.com/status/201", "headers": [],
            "postData": {"mimeType": "application/x-www-form-urlencoded",
                         "params": [{"name": "q", "value": "a b&c"}]}
        }}),
    );
    let file = requests_file("upload.har", &har(vec![upload, form]));
    let base_url = format!("base_url={}", server.base());
    let report = http(&file)
        .args(["--set", &base_url, "-n", "2"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("201", 2)]));
    let seen = server.seen();
    let multipart = seen
        .iter()
        .find(|s| {
            s.header("Content-Type")
                .unwrap_or("")
                .starts_with("multipart/")
        })
        .unwrap();
    assert_eq!(
        multipart.body,
        "------WebKitFormBoundaryAbC\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\na photo\r\n\
         ------WebKitFormBoundaryAbC\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nAAA\r\n------WebKitFormBoundaryAbC--\r\n"
    );
    assert!(seen.iter().any(|s| s.body == "q=a+b%26c"));
}

#[test]
fn a_recorded_failure_does_not_stop_the_rest_of_the_page() {
    // A HAR has no captures: a 404 in the middle of a page is counted
    // (the call's label) and the rest of the page is still sent.
    let server = TestServer::start();
    let text = har(vec![
        entry("GET", "https://shop.example.com/status/404", json!({})),
        entry("GET", "https://shop.example.com/n/after", json!({})),
    ]);
    let file = requests_file("page.har", &text);
    let base_url = format!("base_url={}", server.base());
    let report = http(&file)
        .args(["--set", &base_url, "-n", "5"])
        .with_failed_calls()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("404", 5)]));
    assert_eq!(report.run().measured("GET /n/after"), 5, "{report:?}");
}

#[test]
fn a_long_recording_is_measured_per_host() {
    // A measurement per entry would cost every thread a histogram per
    // entry; above 100 entries they are per recorded host.
    let server = TestServer::start();
    let entries = (0..120)
        .map(|i| {
            let host = if i % 2 == 0 {
                "a.example.com"
            } else {
                "b.example.com"
            };
            entry("GET", &format!("https://{host}/n/{i}"), json!({}))
        })
        .collect();
    let file = requests_file("long.har", &har(entries));
    let base_url = format!("base_url={}", server.base());
    let report = http(&file)
        .args(["--set", &base_url, "-n", "3", "-t", "2"])
        .ok()
        .json();
    assert_eq!(report.run().measured("a.example.com"), 180, "{report:?}");
    assert_eq!(report.run().measured("b.example.com"), 180, "{report:?}");
    let report = http(&file)
        .args(["--set", &base_url, "--set", "measure=requests", "-n", "1"])
        .ok()
        .json();
    assert_eq!(
        report.run().measured("GET a.example.com/n/0"),
        1,
        "{report:?}"
    );
    assert_eq!(server.seen().len(), 480);
}
