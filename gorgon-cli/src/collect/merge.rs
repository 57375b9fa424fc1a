//! The result of a run as its frames arrive: what each worker has said so
//! far, the merged statistics (per run and per node), and the timeline.
//! No threads and no I/O here: the loop in [`super::run`] feeds it.

use std::time::{Duration, Instant};

use super::observer::Live;
use super::timeline::Timeline;
use super::Link;
use crate::footprint::{self, Footprint};
use crate::outcome::{NodePhases, NodeResult, RunLoad, RunResult};
use crate::protocol::{Frame, RunningCall};
use crate::shape::RunShape;
use crate::stats::Stats;

/// Where one worker is, once the run has started.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WorkerState {
    Running,
    /// It sent `done`: its share is complete.
    Done,
    /// Its stream ended.
    Closed,
}

pub struct Merge {
    result: RunResult,
    states: Vec<WorkerState>,
    /// Each worker's calls in flight and its long-running ones, from its
    /// last `alive`.
    running: Vec<(u32, Vec<RunningCall>)>,
    /// Each worker's index in `result.nodes`, if it runs on a node.
    node_of: Vec<Option<usize>>,
    timeline: Timeline,
    /// The longest `elapsed` a worker reported in its `done`.
    worker_elapsed: Duration,
    /// The earliest start of a measured part (after any warm-up).
    measured_from: Duration,
    /// Per node: when its first results arrived, and when its last
    /// worker's stream ended without `done` (the node was lost).
    node_clocks: Vec<NodeClock>,
}

#[derive(Clone, Copy, Default)]
struct NodeClock {
    /// When its earliest worker began calling, by this machine's clock:
    /// the arrival of its `done` less the time it says it ran (so the
    /// transit of `go` and of `done` are in it).
    began: Option<Instant>,
    first_results: Option<Instant>,
    lost: Option<Instant>,
}

impl Merge {
    pub fn new(shape: RunShape, planned: Option<u64>, links: &[Box<dyn Link>]) -> Merge {
        let (nodes, node_of) = group_by_node(links);
        let node_clocks = vec![NodeClock::default(); nodes.len()];
        Merge {
            result: RunResult {
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
            },
            states: vec![WorkerState::Running; links.len()],
            running: vec![(0, Vec::new()); links.len()],
            node_of,
            timeline: Timeline::default(),
            worker_elapsed: Duration::ZERO,
            measured_from: Duration::MAX,
            node_clocks,
        }
    }

    /// The result of a run interrupted before its workers were all ready:
    /// nothing ran.
    pub fn interrupted_before_start(mut self) -> RunResult {
        self.result.interrupted = true;
        self.result
    }

    /// Whether a worker's stream is still open.
    pub fn any_open(&self) -> bool {
        self.states.iter().any(|s| *s != WorkerState::Closed)
    }

    /// Whether worker `i`'s stream is still open.
    pub fn is_open(&self, i: usize) -> bool {
        self.states[i] != WorkerState::Closed
    }

    /// Worker `i` was killed by the collector; `why` says why, after its
    /// name, and the calls it last said were running follow. What it sent
    /// before is kept.
    pub fn killed(&mut self, i: usize, name: &str, why: &str) {
        let running = describe_running(&self.running[i]);
        self.result
            .fail(&self.node_of, i, format!("{name} {why}{running}"));
        self.states[i] = WorkerState::Closed;
    }

    /// The longest call any worker says has been running, with its worker.
    pub fn longest_call(&self) -> Option<(usize, &RunningCall)> {
        self.running
            .iter()
            .enumerate()
            .filter(|(i, _)| self.states[*i] == WorkerState::Running)
            .flat_map(|(i, (_, long))| long.iter().map(move |call| (i, call)))
            .max_by_key(|(_, call)| call.running_ns)
    }

    /// Records a failure of worker `i` that is not its end (a call past
    /// `--call-timeout`).
    pub fn fail(&mut self, i: usize, failure: String) {
        self.result.fail(&self.node_of, i, failure);
    }

    pub fn stopping(&self) -> bool {
        self.result.interrupted
    }

    /// The run was interrupted: workers are told to stop, and one that
    /// ends early then is no failure.
    pub fn stop(&mut self) {
        self.result.interrupted = true;
    }

    pub fn live(&self, started: Instant) -> Live<'_> {
        let mut live = Live::new(&self.result, &self.timeline, started);
        // What the workers said in their last `alive`: calls in flight,
        // and those running for a second or more, by worker.
        let open = |i: &usize| self.states[*i] == WorkerState::Running;
        let heard = (0..self.running.len()).filter(open);
        live.in_flight = Some(heard.map(|i| u64::from(self.running[i].0)).sum());
        live.stuck = (0..self.running.len())
            .filter(open)
            .filter_map(|i| {
                let calls = describe_running(&self.running[i]);
                let name = self.result.workers.get(i)?;
                (!calls.is_empty()).then(|| format!("{name}{calls}"))
            })
            .collect();
        live
    }

    /// Takes one frame of worker `i`; true when the merged figures changed.
    pub fn frame(&mut self, i: usize, name: &str, frame: Frame) -> bool {
        match frame {
            Frame::Interval { index, stats } => {
                self.result.stats.merge(&stats);
                if let Some(node) = self.node_of[i] {
                    self.result.nodes[node].stats.merge(&stats);
                    let clock = &mut self.node_clocks[node];
                    if !stats.results.is_empty() && clock.first_results.is_none() {
                        clock.first_results = Some(Instant::now());
                    }
                }
                self.timeline.add(index, &stats);
                true
            }
            Frame::Done {
                elapsed_ns,
                measured_from_ns,
                warmup_calls,
                peak_rss_bytes,
                dropped,
                waited_on_fiber,
                ..
            } => {
                self.result.load.dropped += dropped;
                self.result.load.waited_on_fiber |= waited_on_fiber;
                self.states[i] = WorkerState::Done;
                let elapsed = Duration::from_nanos(elapsed_ns);
                self.result.footprint.add_worker(peak_rss_bytes);
                self.worker_elapsed = self.worker_elapsed.max(elapsed);
                self.measured_from = self
                    .measured_from
                    .min(Duration::from_nanos(measured_from_ns));
                self.result.load.warmup_calls += warmup_calls;
                if let Some(node) = self.node_of[i] {
                    let clock = &mut self.node_clocks[node];
                    if let Some(began) = Instant::now().checked_sub(elapsed) {
                        clock.began = Some(clock.began.map_or(began, |b| b.min(began)));
                    }
                    let node = &mut self.result.nodes[node];
                    node.elapsed = node.elapsed.max(elapsed);
                }
                false
            }
            Frame::Error { message } => {
                self.result
                    .fail(&self.node_of, i, format!("{name}: {message}"));
                false
            }
            Frame::Alive {
                interval,
                in_flight,
                long,
            } => {
                self.timeline.in_flight(interval, u64::from(in_flight));
                self.running[i] = (in_flight, long);
                // Observers hear of it with the next results or tick: a
                // cluster's workers all say `alive` each interval.
                false
            }
            Frame::Ready { .. } | Frame::SettingUp { .. } | Frame::InputError { .. } => false,
        }
    }

    /// Worker `i`'s stream ended; `how` says how the process ended, and
    /// `reason` why its stream could not be read, if so.
    pub fn closed(&mut self, i: usize, name: &str, how: &str, reason: Option<String>) {
        if self.states[i] == WorkerState::Closed {
            // Killed already, and said so.
            return;
        }
        if self.states[i] != WorkerState::Done && !self.result.interrupted {
            let detail = reason.map(|r| format!(" ({r})")).unwrap_or_default();
            let failure = format!(
                "{name} {how}{detail} before finishing its share; the results it had sent are kept"
            );
            self.result.fail(&self.node_of, i, failure);
            if let Some(node) = self.node_of[i] {
                self.node_clocks[node].lost = Some(Instant::now());
            }
        }
        self.states[i] = WorkerState::Closed;
    }

    /// The result once every stream has ended.
    pub fn finish(mut self, started: Instant) -> RunResult {
        // The workers' own clocks exclude the time frames spend in transit;
        // when none finished cleanly the parent's clock is all there is.
        let since_go = if self.worker_elapsed.is_zero() {
            started.elapsed()
        } else {
            self.worker_elapsed
        };
        // After a warm-up, the run's time is that of its measured part; the
        // timeline keeps counting from the start.
        // No worker said when its measured part began (none finished: all
        // were killed): the run's time is all of it.
        let measured_from = match self.measured_from {
            Duration::MAX => Duration::ZERO,
            from => from,
        };
        let result = &mut self.result;
        result.elapsed = since_go.saturating_sub(measured_from.min(since_go));
        result.timeline = self.timeline.finish(since_go);
        for (node, clock) in result.nodes.iter_mut().zip(&self.node_clocks) {
            let since = |at: Instant| at.saturating_duration_since(started);
            // A lost node's figures cover the time it was alive, not the
            // whole run.
            let alive = node.elapsed.max(clock.lost.map(since).unwrap_or_default());
            node.elapsed = if alive.is_zero() {
                result.elapsed
            } else {
                // As for the run: only the measured part, after any warm-up.
                alive.saturating_sub(measured_from.min(alive))
            };
            node.phases.first_call = clock.began.or(clock.first_results).map(since);
            node.phases.calls = Some(node.elapsed);
        }
        result.footprint.parent_peak_rss_bytes = footprint::peak_rss_bytes();
        self.result
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
                        phases: NodePhases::default(),
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

/// `; 2 calls were still running: #5 for 3s in step "login", #9 for 1s`,
/// from a worker's last `alive` (empty when none was running long).
fn describe_running((in_flight, long): &(u32, Vec<RunningCall>)) -> String {
    if long.is_empty() {
        return String::new();
    }
    let calls: Vec<String> = long
        .iter()
        .map(|call| {
            let running = std::time::Duration::from_millis(call.running_ns / 1_000_000);
            format!(
                "#{} for {}{}",
                call.number,
                humantime::format_duration(running),
                call.step_suffix()
            )
        })
        .collect();
    let what = match in_flight {
        1 => "1 call was".to_string(),
        n => format!("{n} calls were"),
    };
    format!("; {what} still running: {}", calls.join(", "))
}
