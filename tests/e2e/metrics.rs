//! `--metrics`: the live endpoint scraped while a run goes on, checked by
//! promtool, its final counters against the JSON report, a busy port
//! refused, and (when the prometheus package is installed) a real
//! Prometheus scraping it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{gorgon, gorgon_bin, plugin};

/// A gorgon run in the background: its stderr line by line, its stdout
/// gathered whole. Killed if the test ends first.
struct Background {
    child: Child,
    stderr: mpsc::Receiver<String>,
    stdout: Option<std::thread::JoinHandle<String>>,
    seen: Vec<String>,
}

impl Background {
    fn start(args: &[&str]) -> Background {
        let mut child = Command::new(gorgon_bin())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, stderr) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let mut out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            text
        });
        Background {
            child,
            stderr,
            stdout: Some(stdout),
            seen: Vec::new(),
        }
    }

    /// The address from `gorgon: metrics at http://ADDR/metrics`.
    fn metrics_address(&mut self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .stderr
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no metrics address; stderr: {:?}", self.seen));
            self.seen.push(line.clone());
            if let Some(rest) = line.strip_prefix("gorgon: metrics at http://") {
                return rest.strip_suffix("/metrics").unwrap().parse().unwrap();
            }
        }
    }

    /// Waits for the end (at most `limit`) and returns the exit code, the
    /// report on stdout and the rest of stderr.
    fn finish(mut self, limit: Duration) -> (i32, String, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "gorgon did not end within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = self.stdout.take().unwrap().join().unwrap();
        self.seen.extend(self.stderr.try_iter());
        (status.code().unwrap_or(-1), stdout, self.seen.join("\n"))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `gorgon` with `args`, a report in JSON on stdout and an endpoint
/// on a port of the system's choosing that waits, after the run, for a
/// scrape of the final figures (a minute at most); returns it and where
/// the endpoint listens.
fn with_metrics(args: &[&str]) -> (Background, SocketAddr) {
    let mut all = args.to_vec();
    all.extend([
        "--metrics",
        "127.0.0.1:0",
        "--metrics-linger",
        "60s",
        "--output",
        "json",
    ]);
    let mut run = Background::start(&all);
    let address = run.metrics_address();
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
    let deadline = Instant::now() + limit;
    loop {
        let (status, body) = get(address, "/metrics").expect("the endpoint answers");
        assert_eq!(status, 200, "{body}");
        if done(&samples(&body)) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "not reached within {limit:?}:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
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

fn count_of(results: &Value, name: &str) -> u64 {
    results
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {results}"))["count"]
        .as_u64()
        .unwrap()
}

#[test]
fn the_endpoint_serves_valid_metrics_mid_run_and_the_report_s_counts_at_the_end() {
    let testkit = plugin("gorgon-test-testkit").display().to_string();
    let (run, address) = with_metrics(&[
        "run",
        "--plugin",
        &testkit,
        "--duration",
        "3s",
        "-t",
        "2",
        "--set",
        "sleep_us=1000",
        "--set",
        "panic_every=50",
        "--set",
        "measure=work \"quoted\"",
        "--threshold",
        "error_rate<50%",
    ]);
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
    let (code, stdout, stderr) = run.finish(Duration::from_secs(30));
    assert_eq!(code, 0, "{stderr}");
    let end = samples(&end);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let first = &report["runs"][0];
    let ok = count_of(&first["results"], "OK");
    let panics = count_of(&first["results"], "panic");
    assert!(ok > 0 && panics > 0, "{first}");
    assert_eq!(end["gorgon_calls_total{label=\"OK\"}"], ok as f64);
    assert_eq!(end["gorgon_calls_total{label=\"panic\"}"], panics as f64);
    assert_eq!(
        end["gorgon_errors_total"],
        first["errors"].as_u64().unwrap() as f64
    );
    assert_eq!(end["gorgon_latency_seconds_count{label=\"OK\"}"], ok as f64);
    assert_eq!(
        end["gorgon_latency_seconds_bucket{label=\"OK\",le=\"+Inf\"}"],
        ok as f64
    );
    let measured = count_of(&first["measurements"], "work \"quoted\"");
    assert_eq!(
        end["gorgon_measurement_seconds_count{measurement=\"work \\\"quoted\\\"\"}"],
        measured as f64
    );
    // Each call sleeps a millisecond: most are under 2.5 ms, none under 1.
    let under =
        |le: &str| end[&format!("gorgon_latency_seconds_bucket{{label=\"OK\",le=\"{le}\"}}")];
    assert_eq!(under("0.001"), 0.0);
    assert!(under("0.0025") > ok as f64 / 2.0, "{}", under("0.0025"));
    // The endpoint stopped with gorgon.
    assert!(get(address, "/metrics").is_err());
}

#[test]
fn a_port_in_use_is_refused_before_the_run() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let hash = plugin("gorgon-hash").display().to_string();
    let started = Instant::now();
    let run = gorgon(&[
        "run",
        "--plugin",
        &hash,
        "--duration",
        "30s",
        "--metrics",
        &port,
    ]);
    run.assert_usage_error("in use");
    assert!(
        run.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the run started"
    );
    gorgon(&[
        "run",
        "--plugin",
        &hash,
        "-n",
        "10",
        "--metrics",
        "localhost:x",
    ])
    .assert_usage_error("PORT or ADDRESS:PORT");
    gorgon(&[
        "run",
        "--plugin",
        &hash,
        "-n",
        "10",
        "--metrics-linger",
        "5s",
    ])
    .assert_usage_error("--metrics");
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
    let hash = plugin("gorgon-hash").display().to_string();
    let (run, address) = with_metrics(&["run", "--plugin", &hash, "--duration", "3s"]);
    let prometheus = Prometheus::start(address, dir.path()).expect("prometheus starts");
    // gorgon waits, after its run, until a scrape has read its final
    // figures: Prometheus's, here.
    let (code, stdout, stderr) = run.finish(Duration::from_secs(90));
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let calls = report["runs"][0]["all"]["count"].as_u64().unwrap() as f64;
    let deadline = Instant::now() + Duration::from_secs(30);
    let stored = loop {
        // The last sample scraped, summed over the labels (the series went
        // stale when gorgon ended: a plain instant query would not see it).
        let stored = prometheus.query("sum(last_over_time(gorgon_calls_total[5m]))");
        if stored == Some(calls) || Instant::now() > deadline {
            break stored;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(
        stored,
        Some(calls),
        "Prometheus holds what the report counts"
    );
}
