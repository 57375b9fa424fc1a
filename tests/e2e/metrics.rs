//! `--metrics`: the live endpoint scraped while a run goes on, checked by
//! promtool, its final counters against the JSON report, a busy port
//! refused, and (when the prometheus package is installed) a real
//! Prometheus scraping it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{plugin, wait_until, Gorgon, Running};

/// Starts `gorgon` with a report in JSON on stdout and an endpoint on a
/// port of the system's choosing that waits, after the run, for a scrape
/// of the final figures (a minute at most); returns it and where the
/// endpoint listens (from `gorgon: metrics at http://ADDR/metrics`).
fn with_metrics(gorgon: Gorgon) -> (Running, SocketAddr) {
    let mut run = gorgon
        .args(["--metrics", "127.0.0.1:0", "--metrics-linger", "60s"])
        .spawn();
    let line = run.wait_for_line("gorgon: metrics at http://", Duration::from_secs(30));
    let address = line
        .strip_prefix("gorgon: metrics at http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("not an address: {line}"))
        .parse()
        .unwrap();
    (run, address)
}

/// A plain HTTP GET: the status code and the body.
fn get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").expect("a complete answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Ok((status, body.to_string()))
}

/// The samples of an exposition, by series (`name{labels}`).
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

/// Scrapes until `done` holds for the samples, for at most `limit`.
fn scrape_until(
    address: SocketAddr,
    limit: Duration,
    done: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> String {
    let mut body = String::new();
    let reached = wait_until(limit, || {
        let (status, text) = get(address, "/metrics").expect("the endpoint answers");
        assert_eq!(status, 200, "{text}");
        body = text;
        done(&samples(&body))
    });
    assert!(reached, "not reached within {limit:?}:\n{body}");
    body
}

/// `promtool`, or why it is missing.
fn promtool() -> Option<&'static str> {
    let found = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        eprintln!(
            "skipped the promtool check: promtool is not installed (Debian package `prometheus`; \
             scripts/setup.d/prometheus.sh installs it)"
        );
    }
    found.then_some("promtool")
}

fn promtool_check(exposition: &str) {
    let Some(promtool) = promtool() else { return };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool refused the exposition:\n{}{}\n{exposition}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_endpoint_serves_valid_metrics_mid_run_and_the_report_s_counts_at_the_end() {
    let (run, address) = with_metrics(
        Gorgon::testkit()
            .args([
                "--duration",
                "3s",
                "-t",
                "2",
                "--threshold",
                "error_rate<50%",
            ])
            .set("sleep_us", 1000)
            .set("panic_every", 50)
            .set("measure", "work \"quoted\""),
    );
    assert!(address.ip().is_loopback());
    let mid_run = scrape_until(address, Duration::from_secs(30), |s| {
        s.get("gorgon_running") == Some(&1.0)
            && s.get("gorgon_calls_total{label=\"OK\"}")
                .is_some_and(|n| *n > 0.0)
    });
    promtool_check(&mid_run);
    assert_eq!(get(address, "/").unwrap().0, 404);
    assert_eq!(get(address, "/metricsx").unwrap().0, 404);
    // The final figures stay up until this scrape has read them.
    let end = scrape_until(address, Duration::from_secs(60), |s| {
        s.get("gorgon_runs_finished") == Some(&1.0)
    });
    promtool_check(&end);
    let report = run.finish(Duration::from_secs(30)).ok().json();
    let end = samples(&end);
    let first = report.run();
    let ok = first.count("OK");
    let panics = first.count("panic");
    assert!(ok > 0 && panics > 0, "{first:#?}");
    assert_eq!(end["gorgon_calls_total{label=\"OK\"}"], ok as f64);
    assert_eq!(end["gorgon_calls_total{label=\"panic\"}"], panics as f64);
    assert_eq!(end["gorgon_errors_total"], first.errors as f64);
    assert_eq!(end["gorgon_latency_seconds_count{label=\"OK\"}"], ok as f64);
    assert_eq!(
        end["gorgon_latency_seconds_bucket{label=\"OK\",le=\"+Inf\"}"],
        ok as f64
    );
    let measured = first.measured("work \"quoted\"");
    assert!(measured > 0, "{first:#?}");
    assert_eq!(
        end["gorgon_measurement_seconds_count{measurement=\"work \\\"quoted\\\"\"}"],
        measured as f64
    );
    // Each call sleeps a millisecond: none is under 1 ms, and most are
    // under 10 ms even on a loaded machine (buckets read in milliseconds
    // or microseconds would put them all above or all below).
    let under =
        |le: &str| end[&format!("gorgon_latency_seconds_bucket{{label=\"OK\",le=\"{le}\"}}")];
    assert_eq!(under("0.001"), 0.0);
    assert!(under("0.01") > ok as f64 / 2.0, "{}", under("0.01"));
    // The endpoint stopped with gorgon.
    assert!(get(address, "/metrics").is_err());
}

#[test]
fn a_port_in_use_is_refused_before_the_run() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let hash = || Gorgon::run(plugin("gorgon-hash"));
    let started = Instant::now();
    let run = hash()
        .args(["--duration", "30s", "--metrics", &port])
        .usage_error("in use");
    assert!(
        run.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the run started"
    );
    hash()
        .args(["-n", "10", "--metrics", "localhost:x"])
        .usage_error("PORT or ADDRESS:PORT");
    hash()
        .args(["-n", "10", "--metrics-linger", "5s"])
        .usage_error("--metrics");
}

/// A Prometheus of the test's own, on loopback, stopped when dropped.
struct Prometheus {
    child: Child,
    web: SocketAddr,
}

impl Prometheus {
    /// Starts one scraping `target` every second, storing into `dir`.
    fn start(target: SocketAddr, dir: &Path) -> Option<Prometheus> {
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: gorgon\n    \
                 static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        // A free port for its web API: asked of the system, then released.
        let web = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        Some(Prometheus { child, web })
    }

    /// The value of an instant query with one result, if it has one.
    fn query(&self, expression: &str) -> Option<f64> {
        let encoded: String = expression
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (status, body) = get(self.web, &format!("/api/v1/query?query={encoded}")).ok()?;
        if status != 200 {
            return None;
        }
        let answer: Value = serde_json::from_str(&body).ok()?;
        answer["data"]["result"][0]["value"][1]
            .as_str()?
            .parse()
            .ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_real_prometheus_scrapes_the_run_to_its_last_call() {
    let found = Command::new("prometheus")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        eprintln!(
            "skipped: prometheus is not installed (Debian package `prometheus`; \
             scripts/setup.d/prometheus.sh installs it)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (run, address) =
        with_metrics(Gorgon::run(plugin("gorgon-hash")).args(["--duration", "3s"]));
    let prometheus = Prometheus::start(address, dir.path()).expect("prometheus starts");
    // gorgon waits, after its run, until a scrape has read its final
    // figures: Prometheus's, here.
    let report = run.finish(Duration::from_secs(90)).ok().json();
    let calls = report.run().all.count as f64;
    // The last sample scraped, summed over the labels (the series went
    // stale when gorgon ended: a plain instant query would not see it).
    let stored = || prometheus.query("sum(last_over_time(gorgon_calls_total[5m]))");
    wait_until(Duration::from_secs(30), || stored() == Some(calls));
    let stored = stored();
    assert_eq!(
        stored,
        Some(calls),
        "Prometheus holds what the report counts"
    );
}
