//! What a run produced: counts and latencies merged over its workers, its
//! timeline, its failures, and per-node figures. Plain values, made by the
//! collector and read by thresholds and reports.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::footprint::Footprint;
use crate::shape::{Rate, RunShape};
use crate::stats::Stats;

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
    /// Open model with a duration: operations due in the window that
    /// could not start before it ended.
    pub dropped: u64,
    /// Whether the plugin waited through `rec.wait` on a fiber in any
    /// worker (what `--fibers` needs to run calls at once).
    pub waited_on_fiber: bool,
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
    /// How long each phase of the run took on this node.
    pub phases: NodePhases,
}

/// How long one node spent in each phase of a cluster run, so the
/// slowest node of a phase, and the skew between nodes, can be seen.
/// `None` where the phase did not happen (no upload needed) or is not
/// known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodePhases {
    /// The SSH login (the master connection).
    pub connect: Option<Duration>,
    /// The probe: one remote command.
    pub probe: Option<Duration>,
    /// Uploading the plugin, when it was not there.
    pub upload: Option<Duration>,
    /// From starting its workers to the last one's `ready`.
    pub ready: Option<Duration>,
    /// From `go` to the arrival of its first results.
    pub first_call: Option<Duration>,
    /// From `go` to its last call, or to its loss.
    pub calls: Option<Duration>,
}

impl RunResult {
    /// Adds a failure to the run and to the node of worker `link`.
    pub fn fail(&mut self, node_of: &[Option<usize>], link: usize, failure: String) {
        if let Some(node) = node_of[link] {
            self.nodes[node].failures.push(failure.clone());
        }
        self.failures.push(failure);
    }
}

/// Throughput and latency in one interval of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimelinePoint {
    /// Start of the interval, from the start of the run.
    pub start_ms: u64,
    pub duration_ms: u64,
    pub calls: u64,
    pub ops_per_sec: f64,
    /// Calls running as the interval ended, summed over the workers that
    /// said (`None` for the run's last interval, which the run ended in,
    /// and in reports of older versions).
    #[serde(default)]
    pub in_flight: Option<u64>,
    pub results: BTreeMap<String, u64>,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}
