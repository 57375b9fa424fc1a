//! The HTTP plugin over https, against a real TLS server on loopback
//! (http/tls_server.py: Python's ssl module, that is OpenSSL) with a CA
//! and a certificate the test makes with the `openssl` command
//! (scripts/setup.d/tls.sh installs both): verification with `tls_ca`,
//! its failure without, `tls_verify=false`, keep-alive and session
//! resumption as the server counts them, on threads and on fibers.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{http, requests_file};
use crate::support::{wait_until, workspace, Gorgon};

/// A test CA and a certificate it signed for `localhost` and `127.0.0.1`
/// (a self-signed certificate would be a CA certificate, which webpki
/// refuses as a server's own).
struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    fn make() -> Certificates {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        std::fs::write(
            dir.path().join("ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Gorgon Test CA",
            "-keyout",
            &path("ca.key"),
            "-out",
            &path("ca.pem"),
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &path("leaf.key"),
            "-out",
            &path("leaf.csr"),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &path("leaf.csr"),
            "-CA",
            &path("ca.pem"),
            "-CAkey",
            &path("ca.key"),
            "-CAcreateserial",
            "-extfile",
            &path("ext"),
            "-out",
            &path("leaf.pem"),
        ]);
        Certificates { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `--set tls_ca=` the test CA.
    fn trusted(&self, run: Gorgon) -> Gorgon {
        run.set("tls_ca", self.path("ca.pem").display())
    }
}

fn openssl(args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs (scripts/setup.d/tls.sh installs it)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The TLS server, killed when dropped (a failed assertion included).
struct TlsServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl TlsServer {
    /// Serves with the test certificate; `version` limits TLS to "1.2" or
    /// "1.3".
    fn start(certificates: &Certificates, version: &str) -> TlsServer {
        let log = certificates.path(&format!("server-{version}.log"));
        let mut child = Command::new("python3")
            .arg(workspace().join("tests/e2e/http/tls_server.py"))
            .arg(certificates.path("leaf.pem"))
            .arg(certificates.path("leaf.key"))
            .arg(&log)
            .args(["--tls", version])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs (scripts/setup.d/python3.sh installs it)");
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let port = line.trim().parse().ok();
        // Built before the assertion, so that a failed start is killed too.
        let server = TlsServer {
            child,
            port: port.unwrap_or(0),
            log,
        };
        assert!(port.is_some(), "tls_server.py printed no port: {line:?}");
        server
    }

    /// The server's log: one line per connection it accepted.
    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The requests for `/trickle` the server began to answer.
    fn trickles(&self) -> usize {
        self.log().iter().filter(|line| *line == "trickle").count()
    }

    /// How many bytes each ended `/trickle` answer sent, once `expected`
    /// have ended (or after 10 s): the server sees the client gone only
    /// at its next write.
    fn trickled(&self, expected: usize) -> Vec<u32> {
        let sent = || -> Vec<u32> {
            self.log()
                .iter()
                .filter_map(|line| line.strip_prefix("trickled ")?.parse().ok())
                .collect()
        };
        wait_until(Duration::from_secs(10), || sent().len() >= expected);
        sent()
    }

    /// Completed handshakes, as (TLS version, resumed).
    fn handshakes(&self) -> Vec<(String, bool)> {
        self.log()
            .iter()
            .filter_map(|line| {
                let mut words = line.strip_prefix("handshake ")?.split(' ');
                let version = words.next()?.to_string();
                Some((version, words.next()? == "resumed=1"))
            })
            .collect()
    }

    /// The failed handshakes, once there are `expected` of them (or after
    /// 10 s): the server notes a failure on its own thread, possibly just
    /// after the client has moved on.
    fn failed_handshakes(&self, expected: usize) -> Vec<String> {
        let failed = || -> Vec<String> {
            self.log()
                .into_iter()
                .filter(|line| line.starts_with("failed "))
                .collect()
        };
        wait_until(Duration::from_secs(10), || failed().len() >= expected);
        failed()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request file for `path` on the server, by the name `host`.
fn https_file(server: &TlsServer, host: &str, path: &str) -> super::RequestsFile {
    requests_file(
        "tls.http",
        &format!("GET https://{host}:{}{path}\n", server.port),
    )
}

fn versions(handshakes: &[(String, bool)]) -> Vec<&str> {
    let mut seen: Vec<&str> = handshakes.iter().map(|(v, _)| v.as_str()).collect();
    seen.dedup();
    seen
}

#[test]
fn https_with_the_test_ca_keeps_one_connection_per_thread_over_tls_1_3() {
    let certificates = Certificates::make();
    let server = TlsServer::start(&certificates, "1.3");
    let file = https_file(&server, "localhost", "/");
    let report = certificates
        .trusted(http(&file))
        .args(["-n", "2000", "-p", "2", "-t", "2"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("200", 2000)]));
    let handshakes = server.handshakes();
    // Keep-alive: one handshake per thread, not per request.
    assert_eq!(handshakes.len(), 4, "{:?}", server.log());
    assert_eq!(versions(&handshakes), ["TLSv1.3"]);
}

#[test]
fn https_on_fibers_keeps_one_connection_per_fiber_over_tls_1_2() {
    let certificates = Certificates::make();
    let server = TlsServer::start(&certificates, "1.2");
    // By address: the certificate names 127.0.0.1 too.
    let file = https_file(&server, "127.0.0.1", "/");
    let report = certificates
        .trusted(http(&file))
        .args(["-n", "2000", "-p", "2", "-t", "1", "--fibers", "4"])
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("200", 2000)]));
    let handshakes = server.handshakes();
    assert_eq!(handshakes.len(), 8, "{:?}", server.log());
    assert_eq!(versions(&handshakes), ["TLSv1.2"]);
}

/// Every response closes its connection: each call reconnects, and the
/// process's shared session cache makes those reconnects resumptions.
fn reconnects_resume(version: &str, lanes: &[&str]) {
    let certificates = Certificates::make();
    let server = TlsServer::start(&certificates, version);
    let file = https_file(&server, "localhost", "/close");
    let report = certificates
        .trusted(http(&file))
        .args(["-n", "200", "-p", "2"])
        .args(lanes)
        .ok()
        .json();
    assert_eq!(report.run().labels(), BTreeMap::from([("200", 200)]));
    let handshakes = server.handshakes();
    assert!(handshakes.len() >= 200, "{:?}", server.log());
    let resumed = handshakes.iter().filter(|(_, resumed)| *resumed).count();
    // All but the first connections of each lane, opened at once before
    // any session existed.
    assert!(
        resumed >= 150,
        "{version}: {resumed} of {} handshakes resumed",
        handshakes.len()
    );
}

#[test]
fn reconnects_resume_the_tls_1_2_session_on_threads() {
    reconnects_resume("1.2", &["-t", "2"]);
}

#[test]
fn reconnects_resume_the_tls_1_3_session_on_fibers() {
    reconnects_resume("1.3", &["-t", "1", "--fibers", "4"]);
}

#[test]
fn without_the_ca_every_call_says_the_issuer_is_unknown() {
    let certificates = Certificates::make();
    let server = TlsServer::start(&certificates, "1.3");
    let file = https_file(&server, "localhost", "/");
    for lanes in [&["-t", "2"][..], &["-t", "1", "--fibers", "3"]] {
        let report = http(&file)
            .set("connect_at_start", false)
            .args(["-n", "30", "-p", "2"])
            .args(lanes)
            .with_failed_calls()
            .json();
        assert_eq!(
            report.run().labels(),
            BTreeMap::from([("tls: unknown issuer for localhost", 30)]),
            "{lanes:?}"
        );
    }
    assert!(server.handshakes().is_empty(), "{:?}", server.log());
    assert_eq!(server.failed_handshakes(60).len(), 60, "{:?}", server.log());
}

#[test]
fn without_the_ca_the_run_does_not_start_and_says_what_to_do() {
    let certificates = Certificates::make();
    let server = TlsServer::start(&certificates, "1.3");
    let file = https_file(&server, "localhost", "/");
    http(&file)
        .args(["-n", "10", "-p", "1", "-t", "1"])
        .run_failed("tls: unknown issuer for localhost; give its CA with --set tls_ca=FILE");
}

#[test]
fn tls_verify_false_accepts_the_server_and_warns_once() {
    let certificates = Certificates::make();
    let server = TlsServer::start(&certificates, "1.3");
    let file = https_file(&server, "localhost", "/");
    let run = http(&file)
        .set("tls_verify", false)
        .args(["-n", "500", "-p", "2", "-t", "1", "--fibers", "2"])
        .ok();
    assert_eq!(run.json().run().labels(), BTreeMap::from([("200", 500)]));
    let warnings = run.stderr.matches("tls_verify=false").count();
    assert_eq!(warnings, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("certificates of https servers are not checked"),
        "{}",
        run.stderr
    );
    assert_eq!(server.handshakes().len(), 4, "{:?}", server.log());
}

#[test]
fn a_bad_tls_ca_is_one_sentence_and_exit_2() {
    let certificates = Certificates::make();
    let server = TlsServer::start(&certificates, "1.3");
    let file = https_file(&server, "localhost", "/");
    let missing = certificates.path("missing.pem");
    let not_pem = certificates.path("ext");
    for (ca, says) in [
        (missing.as_path(), "cannot read tls_ca"),
        (not_pem.as_path(), "holds no PEM certificate"),
    ] {
        let ca = format!("tls_ca={}", ca.display());
        http(&file)
            .args(["--set", &ca, "-n", "10", "-p", "2", "-t", "1"])
            .usage_error(says);
    }
    http(&file)
        .set("tls_verify", "maybe")
        .args(["-n", "10", "-p", "1", "-t", "1"])
        .usage_error("tls_verify must be true or false");
    assert!(server.log().is_empty(), "{:?}", server.log());
}

#[test]
fn a_server_that_never_answers_the_handshake_is_a_handshake_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts (the backlog does) and never says a word.
    let file = requests_file("silent.http", &format!("GET https://localhost:{port}/\n"));
    for lanes in [&["-t", "2"][..], &["-t", "1", "--fibers", "2"]] {
        let report = http(&file)
            .set("connect_at_start", false)
            .set("timeout_ms", 200)
            .args(["-n", "4", "-p", "1"])
            .args(lanes)
            .with_failed_calls()
            .json();
        assert_eq!(
            report.run().labels(),
            BTreeMap::from([("tls: handshake timeout", 4)]),
            "{lanes:?}"
        );
    }
    drop(listener);
}

#[test]
fn a_plain_http_server_behind_an_https_url_fails_the_handshake_clearly_on_fibers() {
    let server = super::server::TestServer::start();
    let file = requests_file(
        "plain.http",
        &format!("GET https://127.0.0.1:{}/\n", server.port),
    );
    let report = http(&file)
        .set("connect_at_start", false)
        .args(["-n", "5", "-p", "1", "-t", "1"])
        .with_failed_calls()
        .json();
    // The test server closes a connection that sends it garbage.
    assert_eq!(
        report.run().labels(),
        BTreeMap::from([("tls: 127.0.0.1 closed the connection in the handshake", 5)])
    );
}

/// A response trickled over TLS, a byte (a TLS record) every 100 ms for
/// 10 s: `timeout_ms` bounds the whole exchange there too, so each call
/// ends as `timeout` after half a second, however steadily records come.
fn a_trickled_tls_response_times_out_as_a_whole(version: &str, lanes: &[&str]) {
    let certificates = Certificates::make();
    let server = TlsServer::start(&certificates, version);
    let file = https_file(&server, "localhost", "/trickle");
    // Built first (the plugins are compiled on first use), then timed.
    let gorgon = certificates
        .trusted(http(&file))
        .set("timeout_ms", 500)
        .args(["-n", "4", "-p", "1"])
        .args(lanes);
    let started = Instant::now();
    let report = gorgon.with_failed_calls().json();
    let took = started.elapsed();
    let run = report.run();
    assert_eq!(
        run.labels(),
        BTreeMap::from([("timeout", 4)]),
        "{version} {lanes:?}"
    );
    // Each call 0.5 s, not the 10 s of the trickle; four of them, two at
    // a time at worst one after the other, well under one whole trickle.
    let longest = Duration::from_nanos(run.all.max_ns);
    assert!(longest < Duration::from_secs(4), "a call took {longest:?}");
    assert!(took < Duration::from_secs(8), "the run took {took:?}");
    assert_eq!(server.trickles(), 4, "{:?}", server.log());
    // The records kept coming while the client read, so no wait for one
    // ever reached the timeout: only the deadline of the whole exchange
    // ended the calls.
    let sent = server.trickled(4);
    assert_eq!(sent.len(), 4, "{:?}", server.log());
    assert!(sent.iter().all(|&n| n >= 2), "bytes sent: {sent:?}");
}

#[test]
fn a_trickled_tls_response_is_a_timeout_on_threads() {
    a_trickled_tls_response_times_out_as_a_whole("1.3", &["-t", "2"]);
}

#[test]
fn a_trickled_tls_response_is_a_timeout_on_fibers() {
    a_trickled_tls_response_times_out_as_a_whole("1.2", &["-t", "1", "--fibers", "2"]);
}
