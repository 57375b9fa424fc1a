//! The `.http` dialect of VS Code REST Client, the JetBrains HTTP Client
//! and httpyac, one feature per test, against the test server: what the
//! server received is what the file means, and what the plugin does not
//! understand is refused before anything is sent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::server::{Seen, TestServer};
use super::{http, RequestsFile};

/// A directory holding `files` (name, text); the first is the requests
/// file. Names may have folders (`.vscode/settings.json`).
fn fixture(files: &[(&str, &str)]) -> RequestsFile {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    let path = dir.path().join(files[0].0);
    RequestsFile { _dir: dir, path }
}

fn with_prefix<'a>(seen: &'a [Seen], prefix: &str) -> Vec<&'a Seen> {
    seen.iter().filter(|s| s.path.starts_with(prefix)).collect()
}

#[test]
fn separators_comments_request_lines_queries_bom_and_crlf() {
    let server = TestServer::start();
    let text = "\u{feff}// Written on Windows: a BOM and CRLF line ends.\r\n\
                # A comment.\r\n\
                \r\n\
                ### with a version\r\n\
                GET {{base}}/n/1 HTTP/1.1\r\n\
                Accept: text/plain\r\n\
                \r\n\
                ###\r\n\
                \r\n\
                ### a bare URL is a GET\r\n\
                {{base}}/n/2\r\n\
                \r\n\
                ###\r\n\
                // @name query\r\n\
                get {{base}}/n/3\r\n\
                \x20   ?a=1\r\n\
                \x20   &b=two%20words\r\n\
                X-After-Query: yes\r\n\
                \r\n\
                ###\r\n\
                GET {{base}}\r\n\
                \x20   /n\r\n\
                \x20   /4\r\n\
                \x20   ?x=1\r\n\
                \r\n\
                #### only comments: skipped\r\n\
                # nothing to send\r\n";
    let file = fixture(&[("syntax.http", text)]);
    let report = http(&file)
        .set("base", server.base())
        .args(["-n", "5", "-t", "2"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("200", 5)]));
    assert_eq!(
        report.run().measured_names(),
        BTreeMap::from([
            ("with a version", 5),
            ("a bare URL is a GET", 5),
            ("query", 5),
            ("GET /n/4", 5),
        ])
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 20);
    let paths: BTreeSet<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        BTreeSet::from(["/n/1", "/n/2", "/n/3?a=1&b=two%20words", "/n/4?x=1"])
    );
    let first = seen.iter().find(|s| s.path == "/n/1").unwrap();
    assert_eq!(first.header("Accept"), Some("text/plain"));
    let query = seen.iter().find(|s| s.path.starts_with("/n/3")).unwrap();
    assert_eq!(
        (query.method.as_str(), query.header("X-After-Query")),
        ("GET", Some("yes"))
    );
}

#[test]
fn file_variables_environments_and_set_parameters() {
    let server = TestServer::start();
    let port = server.port.to_string();
    let env = format!(
        r#"{{"dev": {{"host": "127.0.0.1", "port": "{port}", "who": "{{{{$shared team}}}}"}},
            "prod": {{"host": "prod.invalid", "port": "1"}}}}"#
    );
    let settings =
        "{\n  // VS Code settings have comments\n  \"rest-client.environmentVariables\": {\n    \
                    \"$shared\": {\"team\": \"blue\", \"prefix\": \"n\"},\n  },\n}\n";
    let text = "\
@base = http://{{host}}:{{port}}
@path = {{prefix}}/{{id}}

### one
GET {{base}}/{{path}}
Authorization: Bearer {{secret}}
X-Who: {{who}}
X-Late: {{late}}

###
# A file variable after the first request is still the file's.
@late = later
";
    let file = fixture(&[
        ("vars.http", text),
        ("http-client.env.json", &env),
        (
            "http-client.private.env.json",
            r#"{"dev": {"secret": "s3cret"}}"#,
        ),
        (".vscode/settings.json", settings),
    ]);
    let report = http(&file)
        .args(["--set", "env=dev", "--set", "id=7", "-n", "3"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("200", 3)]));
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        assert_eq!(request.path, "/n/7");
        assert_eq!(request.header("Authorization"), Some("Bearer s3cret"));
        assert_eq!(request.header("X-Who"), Some("blue"));
        assert_eq!(request.header("X-Late"), Some("later"));
    }
    // --set wins over the environment.
    http(&file)
        .args([
            "--set",
            "env=dev",
            "--set",
            "id=8",
            "--set",
            "secret=override",
            "-n",
            "1",
        ])
        .ok();
    let overridden = server
        .seen()
        .into_iter()
        .find(|s| s.path == "/n/8")
        .unwrap();
    assert_eq!(overridden.header("Authorization"), Some("Bearer override"));
    // No environment chosen: the sentence says which would define it.
    http(&file).args(["--set", "id=7", "-n", "1"]).usage_error(
        "vars.http:5: {{host}} is not defined: the environments dev, prod of the environment \
         files define it, and none is chosen: add --set env=dev",
    );
    http(&file)
        .args(["--set", "env=qa", "-n", "1"])
        .usage_error("--set env=qa: no such environment");
}

#[test]
fn named_requests_and_request_variables_carry_values_forward() {
    let server = TestServer::start();
    let text = "\
### log in
# @name login
POST {{base}}/login
Content-Type: application/json

{\"user\": \"u{{$number}}\"}

### create
POST {{base}}/items

### use
GET {{base}}/n/{{login.response.body.$.user.id}}
X-Token: {{login.response.body.$.token}}
X-Session: {{login.response.headers.X-Session}}
X-Item: {{create.response.headers.Location}}
";
    let file = fixture(&[("flow.http", text)]);
    let report = http(&file)
        .set("base", server.base())
        .args(["-n", "40", "-p", "2", "-t", "2"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("200", 40)]));
    let seen = server.seen();
    let uses = with_prefix(&seen, "/n/");
    assert_eq!(uses.len(), 40);
    for request in &uses {
        let id = request.path.strip_prefix("/n/").unwrap();
        assert_eq!(
            request.header("X-Token"),
            Some(format!("tok-{id}").as_str())
        );
        assert_eq!(
            request.header("X-Session"),
            Some(format!("s-{id}").as_str())
        );
        assert!(request.header("X-Item").unwrap().starts_with("/items/"));
    }
    let ids: BTreeSet<&str> = uses.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(ids.len(), 40, "each call used its own login");
}

#[test]
fn a_jetbrains_handler_that_keeps_a_value_is_a_capture_and_never_sent() {
    let server = TestServer::start();
    let text = "\
### create
POST {{base}}/items
Content-Type: application/json

{\"name\": \"x\"}

> {%
    // keep the id for the next request
    client.global.set(\"item\", response.body.id);
    client.global.set(\"where\", response.headers.valueOf(\"Location\"));
%}
<> 2026-01-01T120000.201.json

### read
GET {{base}}/items/{{item}}
X-Where: {{where}}

>> ./saved-response.json
";
    let file = fixture(&[("jetbrains.http", text)]);
    let report = http(&file)
        .set("base", server.base())
        .args(["-n", "20", "-t", "2"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("200", 20)]));
    let seen = server.seen();
    for post in seen.iter().filter(|s| s.method == "POST") {
        assert_eq!(post.body, "{\"name\": \"x\"}");
    }
    let reads = with_prefix(&seen, "/items/");
    assert_eq!(reads.len(), 20);
    for read in reads {
        assert_eq!(read.header("X-Where"), Some(read.path.as_str()));
        assert!(read.body.is_empty());
    }
}

#[test]
fn system_variables_are_made_afresh_for_each_request() {
    let server = TestServer::start();
    let text = "\
@which = PATH
GET {{base}}/n/{{$number}}?at={{$datetime rfc1123}}&old={number}
X-Guid: {{$guid}}
X-Uuid: {{$uuid}}
X-Random-Uuid: {{$random.uuid}}
X-Int: {{$randomInt 10 20}}
X-Jb-Int: {{$random.integer(1, 3)}}
X-Ts: {{$timestamp}}
X-Yesterday: {{$timestamp -1 d}}
X-Iso: {{$isoTimestamp}}
X-Rfc: {{$datetime rfc1123}}
X-Next-Year: {{$datetime \"YYYY\" 1 y}}
X-Local: {{$localDatetime iso8601}}
X-Env: {{$processEnv %which}}
X-Dotenv: {{$dotenv SECRET}}

{\"n\": {{$number}}}
";
    let file = fixture(&[
        ("system.http", text),
        (".env", "# a comment\nSECRET=from-dotenv\n"),
    ]);
    let report = http(&file)
        .set("base", server.base())
        .args(["-n", "30", "-t", "2"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("200", 30)]));
    let seen = server.seen();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut guids = BTreeSet::new();
    let mut numbers = BTreeSet::new();
    for request in &seen {
        let n = request.path.strip_prefix("/n/").unwrap();
        let (n, rest) = n.split_once("?at=").unwrap();
        // A date with spaces in a URL goes as %20, never splitting the line.
        let (at, old) = rest.split_once("&old=").unwrap();
        assert!(at.ends_with("%20GMT") && !at.contains(' '), "{at}");
        assert_eq!(n, old);
        assert_eq!(request.body, format!("{{\"n\": {n}}}"));
        numbers.insert(n.parse::<u64>().unwrap());
        for name in ["X-Guid", "X-Uuid", "X-Random-Uuid"] {
            let guid = request.header(name).unwrap();
            assert_eq!((guid.len(), &guid[14..15]), (36, "4"), "{guid}");
            guids.insert(guid.to_string());
        }
        let int: u64 = request.header("X-Int").unwrap().parse().unwrap();
        assert!((10..20).contains(&int));
        let int: u64 = request.header("X-Jb-Int").unwrap().parse().unwrap();
        assert!((1..3).contains(&int));
        let ts: u64 = request.header("X-Ts").unwrap().parse().unwrap();
        assert!(ts.abs_diff(now) < 600, "{ts} {now}");
        let yesterday: u64 = request.header("X-Yesterday").unwrap().parse().unwrap();
        assert!((ts - yesterday).abs_diff(86_400) < 5);
        assert!(request.header("X-Iso").unwrap().ends_with('Z'));
        assert!(request.header("X-Rfc").unwrap().ends_with(" GMT"));
        let year: u64 = request.header("X-Next-Year").unwrap().parse().unwrap();
        let this_year: u64 = request.header("X-Iso").unwrap()[..4].parse().unwrap();
        assert_eq!(year, this_year + 1);
        assert!(request.header("X-Local").unwrap().len() >= 25);
        assert_eq!(
            request.header("X-Env"),
            Some(std::env::var("PATH").unwrap().as_str())
        );
        assert_eq!(request.header("X-Dotenv"), Some("from-dotenv"));
    }
    assert_eq!(numbers, (0..30).collect());
    assert_eq!(guids.len(), 90, "every uuid is new");
}

#[test]
fn bodies_from_files_and_multipart_as_written() {
    let server = TestServer::start();
    let text = "\
### raw
POST {{base}}/status/201
Content-Type: text/plain

< ./raw.txt

### templated
POST {{base}}/status/201
Content-Type: application/json

<@ ./body.json

### multipart
POST {{base}}/status/201
Content-Type: multipart/form-data; boundary=XyZ

--XyZ
Content-Disposition: form-data; name=\"title\"

hello {{$number}}
--XyZ
Content-Disposition: form-data; name=\"file\"; filename=\"raw.txt\"
Content-Type: text/plain

< ./raw.txt
--XyZ--
";
    let file = fixture(&[
        ("files.http", text),
        ("raw.txt", "sent as {{it is}}"),
        ("body.json", "{\"n\": {{$number}}}"),
    ]);
    let report = http(&file)
        .set("base", server.base())
        .args(["-n", "4"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("201", 4)]));
    let bodies: BTreeSet<String> = server.seen().iter().map(|s| s.body.clone()).collect();
    assert!(bodies.contains("sent as {{it is}}"), "{bodies:?}");
    assert!(bodies.contains("{\"n\": 3}"), "{bodies:?}");
    let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nhello 2\r\n\
                     --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"raw.txt\"\r\n\
                     Content-Type: text/plain\r\n\r\nsent as {{it is}}\r\n--XyZ--\r\n";
    assert!(bodies.contains(multipart), "{bodies:?}");
}

#[test]
fn what_the_plugin_does_not_understand_is_refused_before_anything_is_sent() {
    let server = TestServer::start();
    let cases = [
        (
            "GET {{base}}/\nAuthorization: Bearer {{token}}\n",
            "bad.http:2: {{token}} is not defined: set it with --set token=VALUE, write \
             `@token = VALUE` in the file, or define it in an environment",
        ),
        ("GET {{base}}/{{$nope}}\n", "bad.http:1: {{$nope}} is not a system variable"),
        ("GET {{base}}/\nX-A: {{base\n", "bad.http:2: `{{` opens a variable that is not closed"),
        (
            "GET {{base}}/\n\n> {%\n  client.test(\"ok\", function() {\n    client.assert(response.status === 200);\n  });\n%}\n",
            "bad.http:3: response handler scripts do not run in Gorgon",
        ),
        (
            "< {%\n  request.variables.set(\"id\", \"1\");\n%}\nGET {{base}}/\n",
            "bad.http:1: pre-request scripts do not run in Gorgon",
        ),
        ("GET {{base}}/\n\n> ./check.js\n", "bad.http:3: cannot read the response handler"),
        (
            "GET {{base}}/{{login.response.body.$.token}}\n",
            "bad.http:1: {{login.response.body.$.token}}: no request before this one is named `login`",
        ),
        ("POST {{base}}/\n\n< ./missing.json\n", "bad.http:3: cannot read"),
        ("GET {{base}}/\nX-A: {{$aadToken}}\n", "bad.http:2: {{$aadToken}} asks an identity provider"),
    ];
    for (text, expected) in cases {
        let file = fixture(&[("bad.http", text)]);
        let run = http(&file)
            .set("base", server.base())
            .args(["-n", "3", "-p", "2"])
            .usage_error(expected);
        assert!(
            run.stderr.contains(&file.path.display().to_string()),
            "{}",
            run.stderr
        );
    }
    assert!(server.seen().is_empty(), "{:?}", server.seen());
}

#[test]
fn a_line_break_never_reaches_a_request_head() {
    let server = TestServer::start();
    // From --set: refused when the file is loaded.
    let file = fixture(&[(
        "crlf.http",
        "GET {{base}}/\nAuthorization: Bearer {{token}}\n",
    )]);
    http(&file)
        .set("base", server.base())
        .args(["--set", "token=abc\r\nX-Injected: yes", "-n", "2"])
        .usage_error("crlf.http:2: {{token}} has a line break (CR or LF)");
    let env = fixture(&[
        ("crlf.http", "GET {{base}}/{{path}}\n"),
        (
            "http-client.env.json",
            r#"{"dev": {"path": "x HTTP/1.1\r\nX-Injected: yes\r\n\r\nGET /"}}"#,
        ),
    ]);
    http(&env)
        .set("base", server.base())
        .args(["--set", "env=dev", "-n", "2"])
        .usage_error("crlf.http:1: {{path}} has a line break");
    assert!(server.seen().is_empty());
    // From a response: the call fails with a label saying so.
    let text = "\
### get
GET {{base}}/evil
> {% client.global.set(\"token\", response.body.token); %}

### use
GET {{base}}/n/1
Authorization: Bearer {{token}}
";
    let file = fixture(&[("crlf.http", text)]);
    let report = http(&file)
        .set("base", server.base())
        .args(["-n", "5"])
        .with_failed_calls()
        .json();
    assert_eq!(
        report.run().labels(),
        BTreeMap::from([("line break in token", 5)])
    );
    let seen = server.seen();
    assert!(seen.iter().all(|s| s.path == "/evil"), "{seen:?}");
    assert!(seen.iter().all(|s| s.header("X-Injected").is_none()));
}

#[test]
fn request_files_beside_the_requests_file_are_found_from_anywhere() {
    // Paths are relative to the requests file, not to where gorgon runs.
    let server = TestServer::start();
    let file = fixture(&[
        (
            "sub/req.http",
            "POST {{base}}/status/201\n\n< ../data/body.txt\n",
        ),
        ("data/body.txt", "payload"),
    ]);
    assert!(Path::new(&file.path).is_absolute());
    http(&file)
        .set("base", server.base())
        .args(["-n", "2"])
        .ok();
    assert!(server.seen().iter().all(|s| s.body == "payload"));
}

#[test]
fn graphql_basic_credentials_and_a_visual_studio_layout() {
    let server = TestServer::start();
    // Visual Studio finds the environment file in a folder above the
    // requests file; `$shared` is in every environment.
    let env = format!(
        r#"{{"$shared": {{"user": "ann"}}, "dev": {{"HostAddress": "{}"}}}}"#,
        server.base()
    );
    let text = "\
@WebApplication1_HostAddress = {{HostAddress}}

GET {{WebApplication1_HostAddress}}/n/1
Accept: application/json
Authorization: Basic {{user}}:secret

###

POST {{WebApplication1_HostAddress}}/status/201
X-Request-Type: GraphQL

query Item($id: ID!) {
  item(id: $id) { name }
}

{\"id\": \"{{$number}}\"}

###
";
    let file = fixture(&[
        ("WebApplication1/WebApplication1.http", text),
        ("http-client.env.json", &env),
    ]);
    let report = http(&file)
        .args(["--set", "env=dev", "-n", "3"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("201", 3)]));
    let seen = server.seen();
    let get = seen.iter().find(|s| s.method == "GET").unwrap();
    // ann:secret
    assert_eq!(get.header("Authorization"), Some("Basic YW5uOnNlY3JldA=="));
    let query = seen.iter().find(|s| s.method == "POST").unwrap();
    assert_eq!(query.header("Content-Type"), Some("application/json"));
    assert!(query.header("X-Request-Type").is_none());
    let body: serde_json::Value = serde_json::from_str(&query.body).unwrap();
    assert_eq!(
        body["query"],
        "query Item($id: ID!) {\n  item(id: $id) { name }\n}"
    );
    assert!(
        body["variables"]["id"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            < 3
    );
}

#[test]
fn cookies_are_kept_from_request_to_request_within_a_call() {
    let server = TestServer::start();
    let text = "\
### log in
POST {{base}}/login

### me
GET {{base}}/n/1

### without the jar
# @no-cookie-jar
GET {{base}}/n/2
";
    let file = fixture(&[("cookies.http", text)]);
    let report = http(&file)
        .set("base", server.base())
        .args(["-n", "20", "-t", "2"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("200", 20)]));
    let seen = server.seen();
    // Each call is a new visitor: its login carries no cookie.
    assert!(seen
        .iter()
        .filter(|s| s.path == "/login")
        .all(|s| s.header("Cookie").is_none()));
    let sessions: BTreeSet<&str> = seen
        .iter()
        .filter(|s| s.path == "/n/1")
        .map(|s| s.header("Cookie").unwrap())
        .collect();
    assert_eq!(sessions.len(), 20, "{sessions:?}");
    assert!(sessions.iter().all(|c| c.starts_with("session=s-")));
    assert!(seen
        .iter()
        .filter(|s| s.path == "/n/2")
        .all(|s| s.header("Cookie").is_none()));
}
