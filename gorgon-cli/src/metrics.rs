//! `--metrics ADDR`: the merged figures of a suite going on, served at
//! `/metrics` in the Prometheus text exposition format, so a soak test can
//! be watched in Grafana while it runs.
//!
//! It is an [`Observer`] of the collector like the progress display: it
//! sees the results merged over every worker, local or remote. Counters
//! add up over the runs of a suite, so they only ever grow, as Prometheus
//! expects of a counter.
//!
//! **std's `TcpListener` on one small thread**, one request at a time: a
//! scraper asks once every few seconds, so an HTTP server crate (or an
//! async runtime) would bring much code for nothing. The request head is
//! parsed by `httparse` (already in the workspace for the HTTP plugin), so
//! a partial or malformed request is recognised as such rather than by
//! hand-written splitting.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::collect::{Live, Observer};
use crate::outcome::RunResult;
use crate::shape::{RunShape, Success};
use crate::stats::Stats;

/// Upper bounds of the latency buckets, in nanoseconds: 1, 2.5 and 5 per
/// decade from 1 µs to 50 s. Fixed, so every scrape and every run has the
/// same series and PromQL's `histogram_quantile` can sum them.
const BOUNDS_NS: [u64; 24] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    25_000_000_000,
    50_000_000_000,
];
/// How often the served figures are refreshed from the collector's.
const REFRESH_EVERY: Duration = Duration::from_millis(250);
/// How often the server looks for a connection or for its end.
const POLL: Duration = Duration::from_millis(20);
/// A client that takes longer than this to send its request or read the
/// answer is dropped: the next one must not wait behind it.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest request head read.
const MAX_HEAD: usize = 8 * 1024;
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `--metrics`'s value: `ADDRESS:PORT`, or a bare `PORT` on 127.0.0.1 (the
/// figures are nobody else's business unless the user says so).
pub fn parse_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    text.to_socket_addrs()
        .ok()
        .and_then(|mut all| all.next())
        .ok_or_else(|| {
            format!("{text:?} is not an address to listen on: give PORT or ADDRESS:PORT, e.g. 9464 or 127.0.0.1:9464")
        })
}

/// What the run info says of a suite, fixed for its whole life.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The plugin as given on the command line.
    pub plugin: String,
    pub runs: usize,
    pub fibers: u32,
}

/// Latency counts at [`BOUNDS_NS`] (each bound counting the calls at or
/// below it), with their count and sum.
#[derive(Debug, Clone, Default, PartialEq)]
struct Buckets {
    cumulative: [u64; BOUNDS_NS.len()],
    count: u64,
    sum_ns: f64,
}

impl Buckets {
    /// A call counts at the first bound its HDR bucket lies wholly under
    /// (within HDR's 0.1%), as the report's percentiles take a bucket's
    /// highest value; its sum adds each bucket's middle, as HDR's mean does.
    fn of(histogram: &Histogram<u64>) -> Buckets {
        let mut buckets = Buckets::default();
        let mut each = [0u64; BOUNDS_NS.len()];
        for value in histogram.iter_recorded() {
            let highest = value.value_iterated_to();
            let count = value.count_at_value();
            if let Some(i) = BOUNDS_NS.iter().position(|bound| highest <= *bound) {
                each[i] += count;
            }
            buckets.count += count;
            buckets.sum_ns += histogram.median_equivalent(highest) as f64 * count as f64;
        }
        let mut running = 0;
        for (cumulative, count) in buckets.cumulative.iter_mut().zip(each) {
            running += count;
            *cumulative = running;
        }
        buckets
    }

    fn add(&mut self, other: &Buckets) {
        for (mine, theirs) in self.cumulative.iter_mut().zip(other.cumulative) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum_ns += other.sum_ns;
    }
}

/// The served counts: per result label, per measurement, and errors.
#[derive(Debug, Clone, Default, PartialEq)]
struct Tally {
    results: BTreeMap<String, Buckets>,
    measurements: BTreeMap<String, Buckets>,
    errors: u64,
}

impl Tally {
    fn of(stats: &Stats, success: &Success) -> Tally {
        let buckets = |map: &BTreeMap<String, Histogram<u64>>| {
            map.iter()
                .map(|(name, histogram)| (name.clone(), Buckets::of(histogram)))
                .collect()
        };
        Tally {
            results: buckets(&stats.results),
            measurements: buckets(&stats.measurements),
            errors: success.errors_in(stats),
        }
    }

    fn add(&mut self, other: &Tally) {
        for (into, from) in [
            (&mut self.results, &other.results),
            (&mut self.measurements, &other.measurements),
        ] {
            for (name, buckets) in from {
                into.entry(name.clone()).or_default().add(buckets);
            }
        }
        self.errors += other.errors;
    }
}

/// Where the suite is, for `gorgon_running` and the elapsed time.
#[derive(Debug, Clone, Copy)]
enum Clock {
    /// No run has started yet.
    Waiting,
    /// A run started at this instant.
    Running(Instant),
    /// The last run ended after this long.
    Ended(Duration),
}

/// What a scrape reads; the collector's thread writes it.
#[derive(Debug)]
struct Board {
    suite: Suite,
    run: usize,
    shape: Option<RunShape>,
    clock: Clock,
    finished_runs: usize,
    tally: Tally,
    /// Scrapes answered since the last run ended: after the last run of
    /// the suite, scrapes that read its final figures.
    scrapes_since_run_ended: u64,
}

impl Board {
    /// The exposition, in the Prometheus text format (version 0.0.4).
    fn render(&self) -> String {
        let mut out = String::new();
        self.render_run(&mut out);
        self.render_counts(&mut out);
        out
    }

    /// What runs: the info series and the gauges of the run.
    fn render_run(&self, out: &mut String) {
        family(
            out,
            "gorgon_run_info",
            "gauge",
            "The run going on (or the last one): the plugin, its place in the suite, its shape.",
        );
        if let Some(shape) = self.shape {
            let _ = writeln!(
                out,
                "gorgon_run_info{{plugin=\"{}\",run=\"{}\",runs=\"{}\",processes=\"{}\",\
                 threads=\"{}\",fibers=\"{}\"}} 1",
                escape_label(&self.suite.plugin),
                self.run,
                self.suite.runs,
                shape.processes,
                shape.threads,
                self.suite.fibers.max(1)
            );
        }
        let (processes, threads) = self.shape.map_or((0, 0), |s| (s.processes, s.threads));
        let (running, elapsed) = match self.clock {
            Clock::Waiting => (0, Duration::ZERO),
            Clock::Running(started) => (1, started.elapsed()),
            Clock::Ended(elapsed) => (0, elapsed),
        };
        let gauges = [
            (
                "gorgon_running",
                "1 while a run's calls go on, 0 before, between and after runs.",
                f64::from(running),
            ),
            (
                "gorgon_runs_finished",
                "Runs of the suite that have ended.",
                self.finished_runs as f64,
            ),
            (
                "gorgon_processes",
                "Worker processes of the run (on each node of a cluster run).",
                f64::from(processes),
            ),
            (
                "gorgon_threads",
                "Threads in each worker process of the run.",
                f64::from(threads),
            ),
            (
                "gorgon_elapsed_seconds",
                "Time since the run's calls started; at the end, the run's elapsed time.",
                elapsed.as_secs_f64(),
            ),
        ];
        for (name, help, value) in gauges {
            family(out, name, "gauge", help);
            let _ = writeln!(out, "{name} {value}");
        }
    }

    /// The counts: calls per label, errors, the histograms.
    fn render_counts(&self, out: &mut String) {
        family(
            out,
            "gorgon_calls_total",
            "counter",
            "Calls that ended, by result label, over the runs of the suite.",
        );
        for (label, buckets) in &self.tally.results {
            let label = escape_label(label);
            let _ = writeln!(
                out,
                "gorgon_calls_total{{label=\"{label}\"}} {}",
                buckets.count
            );
        }
        family(
            out,
            "gorgon_errors_total",
            "counter",
            "Calls counted as errors (panics, calls the plugin said failed, labels outside --ok), \
             over the runs of the suite.",
        );
        let _ = writeln!(out, "gorgon_errors_total {}", self.tally.errors);
        histogram(
            out,
            "gorgon_latency_seconds",
            "Latency of the calls, by result label.",
            "label",
            &self.tally.results,
        );
        histogram(
            out,
            "gorgon_measurement_seconds",
            "Durations of the plugin's measurements (rec.measure), by name.",
            "measurement",
            &self.tally.measurements,
        );
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    key: &str,
    series: &BTreeMap<String, Buckets>,
) {
    family(out, name, "histogram", help);
    for (value, buckets) in series {
        let value = escape_label(value);
        for (bound, count) in BOUNDS_NS.iter().zip(buckets.cumulative) {
            let le = *bound as f64 / 1e9;
            let _ = writeln!(
                out,
                "{name}_bucket{{{key}=\"{value}\",le=\"{le}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{key}=\"{value}\",le=\"+Inf\"}} {}",
            buckets.count
        );
        let _ = writeln!(
            out,
            "{name}_sum{{{key}=\"{value}\"}} {}",
            buckets.sum_ns / 1e9
        );
        let _ = writeln!(out, "{name}_count{{{key}=\"{value}\"}} {}", buckets.count);
    }
}

/// A label value as the text format wants it: `\`, `"` and line feeds
/// escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// HELP text as the text format wants it: `\` and line feeds escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
}

/// The endpoint: a listening socket, its thread, and the figures it serves.
pub struct Metrics {
    address: SocketAddr,
    board: Arc<Mutex<Board>>,
    stop: Arc<AtomicBool>,
    server: Option<JoinHandle<()>>,
    /// Which labels are errors (`--ok`), as the report counts them.
    success: Success,
    /// The runs of the suite that have ended, added up.
    done: Tally,
    refreshed: Instant,
}

impl Metrics {
    /// Listens on `address` and serves from a thread of its own. A port in
    /// use (or an address not of this machine) is the user's to change:
    /// the error is one sentence for exit code 2.
    pub fn serve(address: SocketAddr, suite: Suite, success: Success) -> Result<Metrics, String> {
        let listener = TcpListener::bind(address).map_err(|e| {
            let why = match e.kind() {
                ErrorKind::AddrInUse => "the port is in use: choose another".to_string(),
                ErrorKind::AddrNotAvailable => {
                    "that address is not one of this machine's".to_string()
                }
                ErrorKind::PermissionDenied => {
                    "permission denied (ports below 1024 need privileges)".to_string()
                }
                _ => e.to_string(),
            };
            format!("--metrics {address}: cannot listen there: {why}")
        })?;
        let address = listener.local_addr().unwrap_or(address);
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("--metrics {address}: {e}"))?;
        let board = Arc::new(Mutex::new(Board {
            suite,
            run: 0,
            shape: None,
            clock: Clock::Waiting,
            finished_runs: 0,
            tally: Tally::default(),
            scrapes_since_run_ended: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let server = {
            let (board, stop) = (board.clone(), stop.clone());
            std::thread::Builder::new()
                .name("metrics".into())
                .spawn(move || accept_until(&listener, &board, &stop))
                .map_err(|e| format!("--metrics {address}: cannot start its thread: {e}"))?
        };
        Ok(Metrics {
            address,
            board,
            stop,
            server: Some(server),
            success,
            done: Tally::default(),
            refreshed: Instant::now(),
        })
    }

    /// Where it listens (with the port chosen by the system for port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    fn board(&self) -> MutexGuard<'_, Board> {
        lock(&self.board)
    }

    /// Ends the endpoint after the suite. With `linger`, the final figures
    /// stay up until a scrape has read them or `linger` has passed (or
    /// `interrupted` says so): a scraper that asks every 15 s would
    /// otherwise miss the last seconds of the run.
    pub fn close(mut self, linger: Option<Duration>, interrupted: impl Fn() -> bool) {
        if let Some(linger) = linger {
            let until = Instant::now() + linger;
            while Instant::now() < until
                && self.board().scrapes_since_run_ended == 0
                && !interrupted()
            {
                std::thread::sleep(POLL);
            }
        }
        self.shut();
    }

    fn shut(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(server) = self.server.take() {
            let _ = server.join();
        }
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        self.shut();
    }
}

impl Observer for Metrics {
    fn started(&mut self, live: &Live<'_>) {
        let mut board = self.board();
        board.run += 1;
        board.shape = Some(live.shape);
        board.scrapes_since_run_ended = 0;
        board.clock = Clock::Running(Instant::now() - live.elapsed);
    }

    fn update(&mut self, live: &Live<'_>) {
        if self.refreshed.elapsed() < REFRESH_EVERY {
            return;
        }
        self.refreshed = Instant::now();
        // Counted outside the lock: a scrape need not wait for it.
        let mut tally = self.done.clone();
        tally.add(&Tally::of(live.stats, &self.success));
        self.board().tally = tally;
    }

    fn finished(&mut self, result: &RunResult) {
        self.done.add(&Tally::of(&result.stats, &self.success));
        let mut board = lock(&self.board);
        board.tally = self.done.clone();
        board.clock = Clock::Ended(result.elapsed);
        board.finished_runs += 1;
    }
}

/// A poisoned lock only means a panic elsewhere; the figures are still
/// worth serving.
fn lock(board: &Mutex<Board>) -> MutexGuard<'_, Board> {
    board
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Answers one connection at a time until told to stop. The listener does
/// not block, so the stop flag is seen within [`POLL`].
fn accept_until(listener: &TcpListener, board: &Mutex<Board>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            // A client that misbehaves only loses its own answer.
            Ok((stream, _)) => drop(answer(stream, board)),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// The request a client sent, as far as the endpoint cares.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// `GET /metrics` (`head`: `HEAD`, no body wanted).
    Metrics {
        head: bool,
    },
    /// Another method on `/metrics`.
    WrongMethod,
    /// Any other path.
    Elsewhere,
    Malformed,
}

impl Request {
    /// Parses a complete request head; `None` while it is incomplete.
    fn parse(bytes: &[u8]) -> Option<Request> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(bytes) {
            Ok(httparse::Status::Partial) => None,
            Err(_) => Some(Request::Malformed),
            Ok(httparse::Status::Complete(_)) => {
                let path = request.path.unwrap_or_default();
                let path = path.split('?').next().unwrap_or_default();
                Some(match (request.method.unwrap_or_default(), path) {
                    ("GET", "/metrics") => Request::Metrics { head: false },
                    ("HEAD", "/metrics") => Request::Metrics { head: true },
                    (_, "/metrics") => Request::WrongMethod,
                    _ => Request::Elsewhere,
                })
            }
        }
    }
}

fn read_request(stream: &mut TcpStream) -> std::io::Result<Request> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Ok(Request::Malformed);
        }
        bytes.extend_from_slice(&chunk[..read]);
        if let Some(request) = Request::parse(&bytes) {
            return Ok(request);
        }
        if bytes.len() > MAX_HEAD {
            return Ok(Request::Malformed);
        }
    }
}

fn answer(mut stream: TcpStream, board: &Mutex<Board>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let (status, extra, body, head) = match read_request(&mut stream)? {
        Request::Metrics { head } => {
            let text = {
                let mut board = lock(board);
                if matches!(board.clock, Clock::Ended(_)) {
                    board.scrapes_since_run_ended += 1;
                }
                board.render()
            };
            (
                "200 OK",
                format!("Content-Type: {CONTENT_TYPE}\r\n"),
                text,
                head,
            )
        }
        Request::WrongMethod => (
            "405 Method Not Allowed",
            "Allow: GET, HEAD\r\n".to_string(),
            "only GET /metrics\n".to_string(),
            false,
        ),
        Request::Elsewhere => (
            "404 Not Found",
            String::new(),
            "not found: the metrics are at /metrics\n".to_string(),
            false,
        ),
        Request::Malformed => (
            "400 Bad Request",
            String::new(),
            "bad request\n".to_string(),
            false,
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        response.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&response)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    fn stats(label: &str, values_ns: &[u64]) -> Stats {
        let mut stats = Stats::default();
        let histogram = stats
            .results
            .entry(label.into())
            .or_insert_with(new_histogram);
        for value in values_ns {
            histogram.record(*value).unwrap();
        }
        stats
    }

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(
            parse_address("9464").unwrap(),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(
            parse_address("0.0.0.0:80").unwrap(),
            "0.0.0.0:80".parse().unwrap()
        );
        assert_eq!(
            parse_address("[::1]:9464").unwrap(),
            "[::1]:9464".parse().unwrap()
        );
        assert!(parse_address("localhost:9464").unwrap().ip().is_loopback());
        let error = parse_address("nine").unwrap_err();
        assert!(error.contains("PORT or ADDRESS:PORT"), "{error}");
        assert!(parse_address("70000").is_err());
    }

    #[test]
    fn buckets_are_cumulative_and_count_every_call() {
        let stats = stats("OK", &[500, 1_000, 3_000, 2_000_000, 90_000_000_000]);
        let buckets = Buckets::of(&stats.results["OK"]);
        assert_eq!(buckets.count, 5);
        // 500 ns and 1 µs under 1 µs; 3 µs under 5 µs; 2 ms under 2.5 ms;
        // 90 s only under +Inf.
        assert_eq!(&buckets.cumulative[..4], &[2, 2, 3, 3]);
        assert_eq!(buckets.cumulative[10], 4);
        assert_eq!(*buckets.cumulative.last().unwrap(), 4);
        let sum = buckets.sum_ns / 1e9;
        assert!((sum - 90.002).abs() < 0.1, "{sum}");
    }

    #[test]
    fn tallies_add_up_over_runs() {
        let success = Success::default();
        let mut done = Tally::of(&stats("OK", &[1_000, 2_000]), &success);
        let mut panics = stats("panic", &[5_000]);
        panics.merge(&stats("OK", &[1_000]));
        done.add(&Tally::of(&panics, &success));
        assert_eq!(done.results["OK"].count, 3);
        assert_eq!(done.results["panic"].count, 1);
        assert_eq!(done.errors, 1);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\\b\"c\nd"), r#"a\\b\"c\nd"#);
        assert_eq!(escape_help("x\\y\nz"), r"x\\y\nz");
    }

    #[test]
    fn the_exposition_names_each_series_once() {
        let success = Success::default();
        let board = Board {
            suite: Suite {
                plugin: "my \"plugin\".so".into(),
                runs: 2,
                fibers: 1,
            },
            run: 1,
            shape: Some(RunShape {
                processes: 2,
                threads: 4,
            }),
            clock: Clock::Ended(Duration::from_millis(1_500)),
            finished_runs: 1,
            tally: Tally::of(&stats("2\"00", &[1_000, 20_000]), &success),
            scrapes_since_run_ended: 0,
        };
        let text = board.render();
        assert!(
            text.contains(
                r#"plugin="my \"plugin\".so",run="1",runs="2",processes="2",threads="4""#
            ),
            "{text}"
        );
        assert!(
            text.contains("gorgon_calls_total{label=\"2\\\"00\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("gorgon_latency_seconds_bucket{label=\"2\\\"00\",le=\"0.000001\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("gorgon_latency_seconds_bucket{label=\"2\\\"00\",le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("gorgon_elapsed_seconds 1.5\n"), "{text}");
        assert!(text.contains("gorgon_running 0\n"), "{text}");
        let mut seen = std::collections::BTreeSet::new();
        for line in text.lines() {
            let series = line.rsplit_once(' ').unwrap().0;
            assert!(seen.insert(series.to_string()), "twice: {series}");
        }
    }

    #[test]
    fn requests_are_routed_by_method_and_path() {
        assert_eq!(
            Request::parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(Request::Metrics { head: false })
        );
        assert_eq!(
            Request::parse(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Some(Request::Metrics { head: true })
        );
        assert_eq!(
            Request::parse(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Some(Request::WrongMethod)
        );
        assert_eq!(
            Request::parse(b"GET / HTTP/1.1\r\n\r\n"),
            Some(Request::Elsewhere)
        );
        assert_eq!(Request::parse(b"GET /metrics HTTP/1.1\r\n"), None);
        assert_eq!(
            Request::parse(b"\x01\x02 nonsense\r\n\r\n"),
            Some(Request::Malformed)
        );
    }
}
