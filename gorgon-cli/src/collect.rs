//! The collector: starts the workers of one run, merges their frames, and
//! notices the ones that die.
//!
//! A worker is reached through a [`Link`]: a local child process today, an
//! SSH channel for a cluster node. Both carry the same frames, so this one
//! loop merges every result however it travelled.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::exit::Failure;
use crate::footprint::{self, Footprint};
use crate::plan::{Param, RunShape, Share};
use crate::protocol::{self, Frame, PROTOCOL_VERSION};
use crate::shape::{LoadPlan, Rate};
use crate::stats::{Stats, Summary};

/// How often workers send partial results.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Intervals this far behind the newest one are summarised and their
/// histograms dropped, so a long run's timeline stays small.
const OPEN_INTERVALS: u64 = 3;

/// One worker process, wherever it runs.
pub trait Link: Send {
    /// How the report and messages name this worker.
    fn name(&self) -> &str;
    /// The worker's stdin, for control lines.
    fn control(&mut self) -> &mut dyn Write;
    /// The worker's stdout, where its frames arrive. Taken once.
    fn take_frames(&mut self) -> Box<dyn Read + Send>;
    /// Waits for the worker to end and says how it ended, for a message.
    fn wait(&mut self) -> String;
    /// Ends the worker at once.
    fn kill(&mut self);
    /// The cluster node it runs on, for per-node figures; `None` in a
    /// plain local run.
    fn node(&self) -> Option<&str> {
        None
    }
}

/// A worker that is a child process of this one.
pub struct LocalLink {
    name: String,
    child: Child,
    stdin: ChildStdin,
}

impl LocalLink {
    /// Starts `gorgon worker` (this same executable) for one share.
    pub fn spawn(
        name: String,
        args: &WorkerCommand<'_>,
        share: Share,
    ) -> anyhow::Result<LocalLink> {
        let exe = std::env::current_exe().context("cannot find the gorgon executable")?;
        let mut child = Command::new(exe)
            .args(args.arguments(share))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        Ok(LocalLink { name, child, stdin })
    }
}

impl Link for LocalLink {
    fn name(&self) -> &str {
        &self.name
    }

    fn control(&mut self) -> &mut dyn Write {
        &mut self.stdin
    }

    fn take_frames(&mut self) -> Box<dyn Read + Send> {
        Box::new(self.child.stdout.take().expect("frames are taken once"))
    }

    fn wait(&mut self) -> String {
        match self.child.wait() {
            Ok(status) => describe_exit(status),
            Err(error) => format!("could not be waited for ({error})"),
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
    }
}

/// Says how a process ended, the way a person would want to read it.
pub fn describe_exit(status: ExitStatus) -> String {
    if let Some(signal) = status.signal() {
        format!("was killed by signal {signal} ({})", signal_name(signal))
    } else {
        match status.code() {
            Some(code) => format!("exited with code {code}"),
            None => "ended for an unknown reason".to_string(),
        }
    }
}

/// `SIGABRT` for 6: the name people know a signal by.
pub fn signal_name(number: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(number)
        .map(|s| s.as_str())
        .unwrap_or("unknown signal")
}

/// The parts of a `gorgon worker` command line that are the same for every
/// worker of a run.
pub struct WorkerCommand<'a> {
    pub plugin: &'a Path,
    pub threads: u32,
    pub params: &'a [Param],
    pub load: &'a LoadPlan,
}

impl WorkerCommand<'_> {
    pub fn arguments(&self, share: Share) -> Vec<String> {
        let mut args = vec![
            "worker".to_string(),
            "--plugin".to_string(),
            self.plugin.display().to_string(),
            format!("--threads={}", self.threads),
            format!("--offset={}", share.offset),
            format!("--stride={}", share.stride),
            format!("--count={}", share.count),
            format!("--interval-ms={}", INTERVAL.as_millis()),
        ];
        for param in self.params {
            args.push(format!("--set={param}"));
        }
        args.extend(self.load.worker_load(share, self.threads).arguments());
        args
    }
}

/// What one run produced, complete or not.
pub struct RunResult {
    pub shape: RunShape,
    pub planned: Option<u64>,
    pub workers: Vec<String>,
    pub stats: Stats,
    pub timeline: Vec<TimelinePoint>,
    pub elapsed: Duration,
    /// One sentence per worker that did not finish its share.
    pub failures: Vec<String>,
    pub interrupted: bool,
    pub load: RunLoad,
    /// Per-node figures of a cluster run, in the order the nodes' workers
    /// were given; empty when no link named a node.
    pub nodes: Vec<NodeResult>,
    /// Peak memory of the parent and the workers.
    pub footprint: Footprint,
}

/// What a run's load shape adds to its result.
#[derive(Debug, Clone, Default)]
pub struct RunLoad {
    /// Calls made during the warm-up and left out of `stats`.
    pub warmup_calls: u64,
    /// The open model's target rate; `None` for the closed model.
    pub rate: Option<Rate>,
    /// Calls at once per worker thread (`--fibers`; 0 or 1: one).
    pub fibers: u32,
}

/// What the workers of one node did in a run.
#[derive(Clone)]
pub struct NodeResult {
    pub name: String,
    pub workers: Vec<String>,
    pub stats: Stats,
    /// From `go` to the node's last call (its slowest worker).
    pub elapsed: Duration,
    /// The failures of this node's workers (also in the run's list).
    pub failures: Vec<String>,
}

impl RunResult {
    /// Adds a failure to the run and to the node of worker `link`.
    fn fail(&mut self, node_of: &[Option<usize>], link: usize, failure: String) {
        if let Some(node) = node_of[link] {
            self.nodes[node].failures.push(failure.clone());
        }
        self.failures.push(failure);
    }
}

/// Groups links by node: the nodes in order of first appearance, and
/// each link's index among them.
fn group_by_node(links: &[Box<dyn Link>]) -> (Vec<NodeResult>, Vec<Option<usize>>) {
    let mut nodes: Vec<NodeResult> = Vec::new();
    let node_of = links
        .iter()
        .map(|link| {
            let name = link.node()?;
            let index = match nodes.iter().position(|n| n.name == name) {
                Some(index) => index,
                None => {
                    nodes.push(NodeResult {
                        name: name.to_string(),
                        workers: Vec::new(),
                        stats: Stats::default(),
                        elapsed: Duration::ZERO,
                        failures: Vec::new(),
                    });
                    nodes.len() - 1
                }
            };
            nodes[index].workers.push(link.name().to_string());
            Some(index)
        })
        .collect();
    (nodes, node_of)
}

/// Throughput and latency in one interval of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimelinePoint {
    /// Start of the interval, from the start of the run.
    pub start_ms: u64,
    pub duration_ms: u64,
    pub calls: u64,
    pub ops_per_sec: f64,
    pub results: BTreeMap<String, u64>,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

/// Watches a run while it goes: the progress display, the snapshot writer.
///
/// The collector calls it on its own thread with the *merged* results (from
/// every worker, local or remote), after each frame and at least every
/// [`TICK`], so an observer sees the whole run and never a worker directly.
/// Observers throttle themselves and must stay quick: frames wait meanwhile.
pub trait Observer {
    /// Every worker is ready and the operations start now.
    fn started(&mut self, _live: &Live<'_>) {}
    /// Results arrived, or time passed.
    fn update(&mut self, _live: &Live<'_>) {}
    /// The run ended (completely or not); `result` is what it returns.
    fn finished(&mut self, _result: &RunResult) {}
}

/// Observes nothing.
impl Observer for () {}

/// Two observers, told in order.
impl<A: Observer, B: Observer> Observer for (A, B) {
    fn started(&mut self, live: &Live<'_>) {
        self.0.started(live);
        self.1.started(live);
    }
    fn update(&mut self, live: &Live<'_>) {
        self.0.update(live);
        self.1.update(live);
    }
    fn finished(&mut self, result: &RunResult) {
        self.0.finished(result);
        self.1.finished(result);
    }
}

impl<T: Observer + ?Sized> Observer for &mut T {
    fn started(&mut self, live: &Live<'_>) {
        (**self).started(live);
    }
    fn update(&mut self, live: &Live<'_>) {
        (**self).update(live);
    }
    fn finished(&mut self, result: &RunResult) {
        (**self).finished(result);
    }
}

impl<T: Observer> Observer for Option<T> {
    fn started(&mut self, live: &Live<'_>) {
        if let Some(inner) = self {
            inner.started(live);
        }
    }
    fn update(&mut self, live: &Live<'_>) {
        if let Some(inner) = self {
            inner.update(live);
        }
    }
    fn finished(&mut self, result: &RunResult) {
        if let Some(inner) = self {
            inner.finished(result);
        }
    }
}

/// How often the collector looks at the interrupt flag and, at the latest,
/// tells its observer that time passed.
pub const TICK: Duration = Duration::from_millis(50);

/// A run as it is now, merged over every worker.
pub struct Live<'a> {
    pub shape: RunShape,
    pub planned: Option<u64>,
    /// Since the operations started.
    pub elapsed: Duration,
    /// Everything merged so far.
    pub stats: &'a Stats,
    result: &'a RunResult,
    timeline: &'a Timeline,
}

impl<'a> Live<'a> {
    fn new(result: &'a RunResult, timeline: &'a Timeline, started: Instant) -> Live<'a> {
        Live {
            shape: result.shape,
            planned: result.planned,
            elapsed: started.elapsed(),
            stats: &result.stats,
            result,
            timeline,
        }
    }

    /// How much of the run the counts cover: workers report each interval
    /// when it ends, so the counts lag the clock by up to an interval or
    /// two. A rate is the calls over this, not over [`Live::elapsed`].
    pub fn covered(&self) -> Duration {
        match self.timeline.newest() {
            Some(index) => (INTERVAL * (index as u32 + 1)).min(self.elapsed),
            None => Duration::ZERO,
        }
    }

    /// The run so far as if it ended now (for a snapshot). Copies the
    /// histograms, so call it seldom.
    pub fn snapshot(&self) -> RunResult {
        RunResult {
            shape: self.shape,
            planned: self.planned,
            workers: self.result.workers.clone(),
            stats: self.stats.clone(),
            timeline: self.timeline.points(self.elapsed),
            elapsed: self.elapsed,
            failures: self.result.failures.clone(),
            interrupted: self.result.interrupted,
            load: self.result.load.clone(),
            nodes: self.result.nodes.clone(),
            footprint: Footprint {
                parent_peak_rss_bytes: footprint::peak_rss_bytes(),
                ..self.result.footprint
            },
        }
    }
}

/// Builds the timeline as interval deltas arrive, in bounded memory.
#[derive(Default)]
struct Timeline {
    open: BTreeMap<u64, Stats>,
    closed: BTreeMap<u64, TimelinePoint>,
}

impl Timeline {
    fn add(&mut self, index: u64, stats: &Stats) {
        // A straggler for an interval already summarised joins the oldest
        // open one rather than reopening a closed point.
        let index = match self.closed.keys().next_back() {
            Some(&last) if index <= last => last + 1,
            _ => index,
        };
        self.open.entry(index).or_default().merge(stats);
        let newest = *self.open.keys().next_back().expect("just inserted");
        while let Some((&oldest, _)) = self.open.first_key_value() {
            if oldest + OPEN_INTERVALS > newest {
                break;
            }
            let stats = self.open.remove(&oldest).expect("present");
            self.close(oldest, &stats, INTERVAL);
        }
    }

    fn close(&mut self, index: u64, stats: &Stats, length: Duration) {
        self.closed.insert(index, summarise(index, stats, length));
    }

    /// Summarises what is still open; the last interval is as long as the
    /// part of it the run lasted.
    fn finish(mut self, elapsed: Duration) -> Vec<TimelinePoint> {
        for (index, stats) in std::mem::take(&mut self.open) {
            self.close(index, &stats, open_length(index, elapsed));
        }
        self.closed.into_values().collect()
    }

    /// The newest interval that results arrived for.
    fn newest(&self) -> Option<u64> {
        let open = self.open.keys().next_back();
        let closed = self.closed.keys().next_back();
        open.max(closed).copied()
    }

    /// The timeline so far, as [`Timeline::finish`] would give it now.
    fn points(&self, elapsed: Duration) -> Vec<TimelinePoint> {
        let mut points = self.closed.clone();
        for (&index, stats) in &self.open {
            points.insert(index, summarise(index, stats, open_length(index, elapsed)));
        }
        points.into_values().collect()
    }
}

/// The part of interval `index` that a run of `elapsed` has lasted.
fn open_length(index: u64, elapsed: Duration) -> Duration {
    let start = INTERVAL * index as u32;
    elapsed
        .saturating_sub(start)
        .min(INTERVAL)
        .max(Duration::from_millis(1))
}

fn summarise(index: u64, stats: &Stats, length: Duration) -> TimelinePoint {
    let all = Summary::of(&stats.all_calls(), length);
    TimelinePoint {
        start_ms: index * INTERVAL.as_millis() as u64,
        duration_ms: length.as_millis() as u64,
        calls: all.count,
        ops_per_sec: all.ops_per_sec,
        results: stats
            .results
            .iter()
            .map(|(k, h)| (k.clone(), h.len()))
            .collect(),
        p50_ns: all.p50_ns,
        p90_ns: all.p90_ns,
        p99_ns: all.p99_ns,
        max_ns: all.max_ns,
    }
}

enum Event {
    Frame(usize, Frame),
    /// The worker's stream ended; with a reason when it was not a clean end.
    Closed(usize, Option<String>),
}

/// Per-worker bookkeeping while a run goes on.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum WorkerState {
    #[default]
    Starting,
    Ready,
    Done,
    Closed,
}

/// Runs one run over `links` and merges what they send.
///
/// Returns `Err` only when the run could not start (a worker refused the
/// plugin or its setup failed); failures after the start are in the result.
pub fn run(
    shape: RunShape,
    planned: Option<u64>,
    mut links: Vec<Box<dyn Link>>,
    interrupted: &AtomicBool,
    observer: &mut dyn Observer,
) -> Result<RunResult, Failure> {
    let (sender, events) = mpsc::channel();
    for (index, link) in links.iter_mut().enumerate() {
        let frames = link.take_frames();
        let sender = sender.clone();
        std::thread::spawn(move || read_frames(index, frames, &sender));
    }
    drop(sender);

    let mut states = vec![WorkerState::Starting; links.len()];
    let (nodes, node_of) = group_by_node(&links);
    let mut result = RunResult {
        shape,
        planned,
        workers: links.iter().map(|l| l.name().to_string()).collect(),
        stats: Stats::default(),
        timeline: Vec::new(),
        elapsed: Duration::ZERO,
        failures: Vec::new(),
        interrupted: false,
        load: RunLoad::default(),
        nodes,
        footprint: Footprint::default(),
    };

    // Start: every worker must be ready before any begins, so the run's
    // clock measures the operations, not process start-up.
    while states.contains(&WorkerState::Starting) {
        if interrupted.load(Ordering::Relaxed) {
            stop_all(&mut links);
            result.interrupted = true;
            observer.finished(&result);
            return Ok(result);
        }
        match events.recv_timeout(TICK) {
            Ok(Event::Frame(i, Frame::Ready { protocol, .. })) if protocol == PROTOCOL_VERSION => {
                states[i] = WorkerState::Ready
            }
            Ok(Event::Frame(i, Frame::Ready { protocol, .. })) => {
                stop_all(&mut links);
                return Err(Failure::usage(format!(
                    "{} speaks worker protocol {protocol}, this gorgon speaks {PROTOCOL_VERSION}: \
                     install the same gorgon version there",
                    links[i].name()
                )));
            }
            Ok(Event::Frame(i, Frame::Error { message })) => {
                stop_all(&mut links);
                return Err(Failure::Run(anyhow::anyhow!(
                    "{}: {message}",
                    links[i].name()
                )));
            }
            // Every worker gets the same input, so the sentence names the
            // input, not the worker.
            Ok(Event::Frame(_, Frame::InputError { message })) => {
                stop_all(&mut links);
                return Err(Failure::usage(message));
            }
            Ok(Event::Closed(i, reason)) => {
                stop_all(&mut links);
                let how = reason.unwrap_or_else(|| links[i].wait());
                return Err(Failure::Run(anyhow::anyhow!(
                    "{} {how} before it was ready",
                    links[i].name()
                )));
            }
            Ok(Event::Frame(..)) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }

    for link in &mut links {
        let _ = writeln!(link.control(), "{}", protocol::GO);
    }
    let started = Instant::now();
    let mut timeline = Timeline::default();
    let mut worker_elapsed = Duration::ZERO;
    let mut measured_from = Duration::MAX;
    let mut stopping = false;
    observer.started(&Live::new(&result, &timeline, started));
    while states.iter().any(|s| *s != WorkerState::Closed) {
        if !stopping && interrupted.load(Ordering::Relaxed) {
            stopping = true;
            result.interrupted = true;
            for link in &mut links {
                let _ = writeln!(link.control(), "{}", protocol::STOP);
            }
        }
        let event = match events.recv_timeout(TICK) {
            Ok(event) => event,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                observer.update(&Live::new(&result, &timeline, started));
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        match event {
            Event::Frame(i, Frame::Interval { index, stats }) => {
                result.stats.merge(&stats);
                if let Some(node) = node_of[i] {
                    result.nodes[node].stats.merge(&stats);
                }
                timeline.add(index, &stats);
                observer.update(&Live::new(&result, &timeline, started));
            }
            Event::Frame(
                i,
                Frame::Done {
                    elapsed_ns,
                    measured_from_ns,
                    warmup_calls,
                    peak_rss_bytes,
                    ..
                },
            ) => {
                states[i] = WorkerState::Done;
                result.footprint.add_worker(peak_rss_bytes);
                worker_elapsed = worker_elapsed.max(Duration::from_nanos(elapsed_ns));
                measured_from = measured_from.min(Duration::from_nanos(measured_from_ns));
                result.load.warmup_calls += warmup_calls;
                if let Some(node) = node_of[i] {
                    let node = &mut result.nodes[node];
                    node.elapsed = node.elapsed.max(Duration::from_nanos(elapsed_ns));
                }
            }
            Event::Frame(i, Frame::Error { message }) => {
                let failure = format!("{}: {message}", links[i].name());
                result.fail(&node_of, i, failure);
            }
            Event::Frame(..) => {}
            Event::Closed(i, reason) => {
                if reason.is_some() {
                    // Its stream is garbled: nothing more it says can be read.
                    links[i].kill();
                }
                let how = links[i].wait();
                if states[i] != WorkerState::Done && !result.interrupted {
                    let detail = reason.map(|r| format!(" ({r})")).unwrap_or_default();
                    let failure = format!(
                        "{} {how}{detail} before finishing its share; the results it had sent are kept",
                        links[i].name()
                    );
                    result.fail(&node_of, i, failure);
                }
                states[i] = WorkerState::Closed;
            }
        }
    }
    // The workers' own clocks exclude the time frames spend in transit;
    // when none finished cleanly the parent's clock is all there is.
    let since_go = if worker_elapsed.is_zero() {
        started.elapsed()
    } else {
        worker_elapsed
    };
    // After a warm-up, the run's time is that of its measured part; the
    // timeline keeps counting from the start.
    result.elapsed = since_go.saturating_sub(measured_from.min(since_go));
    result.timeline = timeline.finish(since_go);
    for node in &mut result.nodes {
        node.elapsed = if node.elapsed.is_zero() {
            result.elapsed
        } else {
            // As for the run: only the measured part, after any warm-up.
            node.elapsed.saturating_sub(measured_from.min(node.elapsed))
        };
    }
    result.footprint.parent_peak_rss_bytes = footprint::peak_rss_bytes();
    observer.finished(&result);
    Ok(result)
}

/// Ends every worker of a run that has not started: nothing they did is
/// worth keeping, and one stuck in the plugin's setup would not read a
/// `stop`, so they are told and then ended outright.
fn stop_all(links: &mut [Box<dyn Link>]) {
    for link in links.iter_mut() {
        let _ = writeln!(link.control(), "{}", protocol::STOP);
        link.kill();
    }
    for link in links.iter_mut() {
        link.wait();
    }
}

fn read_frames(index: usize, frames: Box<dyn Read + Send>, sender: &mpsc::Sender<Event>) {
    let mut reader = BufReader::new(frames);
    let mut line = String::new();
    loop {
        match protocol::read_frame(&mut reader, &mut line) {
            Ok(Some(frame)) => {
                if sender.send(Event::Frame(index, frame)).is_err() {
                    return;
                }
            }
            Ok(None) => {
                let _ = sender.send(Event::Closed(index, None));
                return;
            }
            Err(error) => {
                let _ = sender.send(Event::Closed(index, Some(error.to_string())));
                return;
            }
        }
    }
}
