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
use crate::plan::{Param, RunShape, Share};
use crate::protocol::{self, Frame, PROTOCOL_VERSION};
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
        let name = nix::sys::signal::Signal::try_from(signal)
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| "unknown signal".to_string());
        format!("was killed by signal {signal} ({name})")
    } else {
        match status.code() {
            Some(code) => format!("exited with code {code}"),
            None => "ended for an unknown reason".to_string(),
        }
    }
}

/// The parts of a `gorgon worker` command line that are the same for every
/// worker of a run.
pub struct WorkerCommand<'a> {
    pub plugin: &'a Path,
    pub threads: u32,
    pub params: &'a [Param],
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
        let all = Summary::of(&stats.all_calls(), length);
        self.closed.insert(
            index,
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
            },
        );
    }

    /// Summarises what is still open; the last interval is as long as the
    /// part of it the run lasted.
    fn finish(mut self, elapsed: Duration) -> Vec<TimelinePoint> {
        for (index, stats) in std::mem::take(&mut self.open) {
            let start = INTERVAL * index as u32;
            let length = elapsed
                .saturating_sub(start)
                .min(INTERVAL)
                .max(Duration::from_millis(1));
            self.close(index, &stats, length);
        }
        self.closed.into_values().collect()
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
) -> Result<RunResult, Failure> {
    let (sender, events) = mpsc::channel();
    for (index, link) in links.iter_mut().enumerate() {
        let frames = link.take_frames();
        let sender = sender.clone();
        std::thread::spawn(move || read_frames(index, frames, &sender));
    }
    drop(sender);

    let mut states = vec![WorkerState::Starting; links.len()];
    let mut result = RunResult {
        shape,
        planned,
        workers: links.iter().map(|l| l.name().to_string()).collect(),
        stats: Stats::default(),
        timeline: Vec::new(),
        elapsed: Duration::ZERO,
        failures: Vec::new(),
        interrupted: false,
    };

    // Start: every worker must be ready before any begins, so the run's
    // clock measures the operations, not process start-up.
    while states.contains(&WorkerState::Starting) {
        if interrupted.load(Ordering::Relaxed) {
            stop_all(&mut links);
            result.interrupted = true;
            return Ok(result);
        }
        match events.recv_timeout(Duration::from_millis(50)) {
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
    let mut stopping = false;
    while states.iter().any(|s| *s != WorkerState::Closed) {
        if !stopping && interrupted.load(Ordering::Relaxed) {
            stopping = true;
            result.interrupted = true;
            for link in &mut links {
                let _ = writeln!(link.control(), "{}", protocol::STOP);
            }
        }
        let event = match events.recv_timeout(Duration::from_millis(50)) {
            Ok(event) => event,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        match event {
            Event::Frame(_, Frame::Interval { index, stats }) => {
                result.stats.merge(&stats);
                timeline.add(index, &stats);
            }
            Event::Frame(i, Frame::Done { elapsed_ns, .. }) => {
                states[i] = WorkerState::Done;
                worker_elapsed = worker_elapsed.max(Duration::from_nanos(elapsed_ns));
            }
            Event::Frame(i, Frame::Error { message }) => {
                result
                    .failures
                    .push(format!("{}: {message}", links[i].name()));
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
                    result.failures.push(format!(
                        "{} {how}{detail} before finishing its share; its calls until then are counted",
                        links[i].name()
                    ));
                }
                states[i] = WorkerState::Closed;
            }
        }
    }
    // The workers' own clocks exclude the time frames spend in transit;
    // when none finished cleanly the parent's clock is all there is.
    result.elapsed = if worker_elapsed.is_zero() {
        started.elapsed()
    } else {
        worker_elapsed
    };
    result.timeline = timeline.finish(result.elapsed);
    Ok(result)
}

fn stop_all(links: &mut [Box<dyn Link>]) {
    for link in links.iter_mut() {
        let _ = writeln!(link.control(), "{}", protocol::STOP);
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
