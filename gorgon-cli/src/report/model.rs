//! The report model: what a finished (or interrupted) suite produced.
//!
//! This is the one source for every output format. It is what `--output
//! json` prints and what `gorgon report` reads back, so its field names are
//! a public schema (docs/json-schema.md); durations end in `_ns`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::load_model::{self, LoadSettings, OpenModel};
use super::verdict::Verdict;
use crate::outcome::{NodePhases, NodeResult, RunResult, TimelinePoint};
use crate::plan::Param;
use crate::shape::Success;
use crate::stats::{histogram_map, PanicSample, Summary};
use crate::threshold::ThresholdReport;

/// Bumped when a field changes meaning or disappears; adding a field does
/// not bump it.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub gorgon_version: String,
    pub plugin: String,
    /// When the suite started, RFC 3339 in UTC.
    pub started_at: String,
    /// Wall time of the whole suite, start-up included.
    pub total_elapsed_ns: u64,
    pub params: BTreeMap<String, String>,
    /// True when the suite was stopped early (Ctrl-C, SIGTERM).
    pub interrupted: bool,
    /// True in a snapshot written while the suite was still running
    /// (`--snapshot-every`); its last run is the part done by then.
    #[serde(default)]
    pub in_progress: bool,
    /// What the suite came to and the exit code it gave, decided by
    /// [`Verdict::of`]; absent in files written before it existed (then
    /// decided again on reading).
    #[serde(default)]
    pub verdict: Option<Verdict>,
    /// The command line that ran the suite, quoted for a POSIX shell.
    #[serde(default)]
    pub command_line: Option<String>,
    pub runs: Vec<RunReport>,
    /// How the load was applied (model, duration, rate, ramp-up, warm-up,
    /// success labels).
    #[serde(default)]
    pub load: LoadSettings,
    /// The pass/fail gates and how each run fared.
    #[serde(default)]
    pub thresholds: Vec<ThresholdReport>,
    /// Cluster nodes left out because they could not be reached
    /// (`--skip-unreachable`), one sentence each.
    #[serde(default)]
    pub skipped_nodes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// 1-based position in the suite.
    pub index: usize,
    pub processes: u32,
    pub threads: u32,
    /// The workers that took part, by name.
    pub workers: Vec<String>,
    /// The operation count asked for; absent for a time-based run.
    pub operations_planned: Option<u64>,
    /// Calls that were made and counted.
    pub operations: u64,
    /// From the start signal to the last call.
    pub elapsed_ns: u64,
    /// False when a worker failed or the run was interrupted.
    pub complete: bool,
    /// One sentence per worker that did not finish.
    pub failures: Vec<String>,
    /// All calls together.
    pub all: Summary,
    /// One entry per result label, most frequent first.
    pub results: Vec<NamedSummary>,
    /// One entry per measurement name (timed sub-step).
    pub measurements: Vec<NamedSummary>,
    /// The first distinct panic messages, with their counts.
    pub panics: Vec<PanicSample>,
    /// Throughput and latency per interval.
    pub timeline: Vec<TimelinePoint>,
    /// Calls made during the warm-up: in no other figure of the run.
    #[serde(default)]
    pub warmup_operations: u64,
    /// Calls whose label is an error: `panic`, and with `load.ok` every
    /// label not listed there.
    #[serde(default)]
    pub errors: u64,
    /// `errors` over all calls, 0 to 1.
    #[serde(default)]
    pub error_rate: f64,
    /// Open model only: rate held, late starts, and the service time.
    /// There `all` and `results` are latencies from each operation's
    /// intended start (coordinated omission corrected).
    #[serde(default)]
    pub open_model: Option<OpenModel>,
    /// In a cluster run, what each node did (the figures above merge them).
    #[serde(default)]
    pub nodes: Vec<NodeReport>,
    /// Peak resident memory of `gorgon run` at the end of this run, in
    /// bytes (a high-water mark over the suite so far).
    #[serde(default)]
    pub parent_peak_rss_bytes: Option<u64>,
    /// The largest peak resident memory of the run's workers, in bytes.
    #[serde(default)]
    pub worker_peak_rss_bytes: Option<u64>,
}

/// One node's part of a cluster run; `processes` × `threads` of the run
/// ran on each node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeReport {
    /// The node's name in gorgon.toml, or `local` for this machine.
    pub name: String,
    pub workers: Vec<String>,
    pub operations: u64,
    /// From the start signal to this node's last call.
    pub elapsed_ns: u64,
    /// False when one of its workers failed or the node was lost.
    pub complete: bool,
    pub failures: Vec<String>,
    pub all: Summary,
    /// One entry per result label, most frequent first.
    pub results: Vec<NamedSummary>,
    /// How long each phase took on this node, in nanoseconds (`null`
    /// where it did not happen): the skew between nodes shows here.
    #[serde(default)]
    pub phases: PhaseTimes,
}

/// A phase in which one node took much longer than the others.
#[derive(Debug, Clone, PartialEq)]
pub struct SlowPhase {
    pub phase: &'static str,
    pub node: String,
    pub slowest_ns: u64,
    pub median_ns: u64,
}

/// The phases a single node held up: its time at least twice the median
/// of the nodes and 100 ms more, the point where the others waited for it.
pub fn slow_phases(nodes: &[NodeReport]) -> Vec<SlowPhase> {
    const MARGIN_NS: u64 = 100_000_000;
    let mut slow = Vec::new();
    for index in 0..6 {
        let mut times: Vec<(u64, &str)> = nodes
            .iter()
            .filter_map(|n| Some((n.phases.named()[index].1?, n.name.as_str())))
            .collect();
        if times.len() < 2 {
            continue;
        }
        times.sort_unstable();
        let median_ns = times[times.len() / 2].0;
        let (slowest_ns, node) = times[times.len() - 1];
        if slowest_ns >= median_ns.saturating_mul(2) && slowest_ns >= median_ns + MARGIN_NS {
            slow.push(SlowPhase {
                phase: PhaseTimes::default().named()[index].0,
                node: node.to_string(),
                slowest_ns,
                median_ns,
            });
        }
    }
    slow
}

/// A node's phase times in nanoseconds; see [`NodePhases`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTimes {
    pub connect_ns: Option<u64>,
    pub probe_ns: Option<u64>,
    pub upload_ns: Option<u64>,
    pub ready_ns: Option<u64>,
    pub first_call_ns: Option<u64>,
    pub calls_ns: Option<u64>,
}

impl PhaseTimes {
    fn of(phases: &NodePhases) -> PhaseTimes {
        let ns = |d: Option<Duration>| d.map(|d| d.as_nanos() as u64);
        PhaseTimes {
            connect_ns: ns(phases.connect),
            probe_ns: ns(phases.probe),
            upload_ns: ns(phases.upload),
            ready_ns: ns(phases.ready),
            first_call_ns: ns(phases.first_call),
            calls_ns: ns(phases.calls),
        }
    }

    /// The phases by name, for the table's line on the slowest nodes.
    pub fn named(&self) -> [(&'static str, Option<u64>); 6] {
        [
            ("connect", self.connect_ns),
            ("probe", self.probe_ns),
            ("upload", self.upload_ns),
            ("ready", self.ready_ns),
            ("first call", self.first_call_ns),
            ("calls", self.calls_ns),
        ]
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamedSummary {
    pub name: String,
    #[serde(flatten)]
    pub summary: Summary,
    /// The full latency histogram (HdrHistogram V2, base64), so a saved
    /// report can be charted or merged again without loss.
    pub histogram: String,
    /// Result labels only: the calls under this label that the plugin said
    /// failed.
    #[serde(default)]
    pub failed: u64,
}

/// Sets each result label's count of failed calls.
fn with_failures(
    mut results: Vec<NamedSummary>,
    failures: &BTreeMap<String, u64>,
) -> Vec<NamedSummary> {
    for result in &mut results {
        result.failed = failures.get(&result.name).copied().unwrap_or(0);
    }
    results
}

impl Report {
    pub fn new(
        plugin: &std::path::Path,
        params: &[Param],
        started_at: SystemTime,
        total: Duration,
        results: &[RunResult],
    ) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            gorgon_version: env!("CARGO_PKG_VERSION").to_string(),
            plugin: plugin.display().to_string(),
            started_at: humantime::format_rfc3339_seconds(started_at).to_string(),
            total_elapsed_ns: total.as_nanos() as u64,
            params: params
                .iter()
                .map(|p| (p.key.clone(), p.value.clone()))
                .collect(),
            interrupted: results.iter().any(|r| r.interrupted),
            in_progress: false,
            verdict: None,
            command_line: None,
            skipped_nodes: Vec::new(),
            runs: results
                .iter()
                .enumerate()
                .map(|(i, result)| RunReport::new(i + 1, result))
                .collect(),
            load: LoadSettings::default(),
            thresholds: Vec::new(),
        }
    }

    /// The verdict: as decided when the report was made, or decided now.
    pub fn verdict(&self) -> Verdict {
        self.verdict.clone().unwrap_or_else(|| Verdict::of(self))
    }

    /// Every failure of every run, for the closing message.
    pub fn failures(&self) -> impl Iterator<Item = &str> {
        self.runs
            .iter()
            .flat_map(|r| r.failures.iter().map(String::as_str))
    }
}

/// Summaries of named histograms, with the histograms themselves.
pub(super) fn named(
    map: &BTreeMap<String, hdrhistogram::Histogram<u64>>,
    elapsed: Duration,
) -> Vec<NamedSummary> {
    map.iter()
        .map(|(name, histogram)| NamedSummary {
            name: name.clone(),
            summary: Summary::of(histogram, elapsed),
            histogram: histogram_map::encode(histogram).unwrap_or_default(),
            failed: 0,
        })
        .collect()
}

/// Result labels, most frequent first.
pub(super) fn by_count(mut results: Vec<NamedSummary>) -> Vec<NamedSummary> {
    results.sort_by(|a, b| {
        b.summary
            .count
            .cmp(&a.summary.count)
            .then(a.name.cmp(&b.name))
    });
    results
}

impl NodeReport {
    fn new(node: &NodeResult, interrupted: bool) -> NodeReport {
        let all = Summary::of(&node.stats.all_calls(), node.elapsed);
        NodeReport {
            name: node.name.clone(),
            workers: node.workers.clone(),
            operations: all.count,
            elapsed_ns: node.elapsed.as_nanos() as u64,
            complete: node.failures.is_empty() && !interrupted,
            failures: node.failures.clone(),
            all,
            results: by_count(with_failures(
                named(&node.stats.results, node.elapsed),
                &node.stats.failures,
            )),
            phases: PhaseTimes::of(&node.phases),
        }
    }
}

impl RunReport {
    /// The report of one run; `index` is its 1-based place in the suite.
    pub fn new(index: usize, result: &RunResult) -> RunReport {
        let elapsed = result.elapsed;
        let named = |map| named(map, elapsed);
        let results = by_count(with_failures(
            named(&result.stats.results),
            &result.stats.failures,
        ));
        let all = Summary::of(&result.stats.all_calls(), elapsed);
        let (errors, error_rate) = load_model::errors(result, &Success::default());
        RunReport {
            index,
            processes: result.shape.processes,
            threads: result.shape.threads,
            workers: result.workers.clone(),
            operations_planned: result.planned,
            operations: all.count,
            elapsed_ns: elapsed.as_nanos() as u64,
            complete: result.failures.is_empty() && !result.interrupted,
            failures: result.failures.clone(),
            all,
            results,
            measurements: named(&result.stats.measurements),
            panics: result.stats.panics.clone(),
            timeline: result.timeline.clone(),
            warmup_operations: result.load.warmup_calls,
            errors,
            error_rate,
            open_model: load_model::open_model(result, elapsed),
            nodes: result
                .nodes
                .iter()
                .map(|node| NodeReport::new(node, result.interrupted))
                .collect(),
            parent_peak_rss_bytes: result.footprint.parent_peak_rss_bytes,
            worker_peak_rss_bytes: result.footprint.worker_peak_rss_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::NodeResult;
    use crate::shape::RunShape;
    use crate::stats::{new_histogram, Stats};
    use std::path::Path;

    fn stats(label: &str, calls: u64) -> Stats {
        let mut histogram = new_histogram();
        for _ in 0..calls {
            histogram.saturating_record(1_000);
        }
        let mut stats = Stats::default();
        stats.results.insert(label.to_string(), histogram);
        stats
    }

    fn result(nodes: Vec<NodeResult>) -> RunResult {
        let mut merged = Stats::default();
        for node in &nodes {
            merged.merge(&node.stats);
        }
        RunResult {
            shape: RunShape {
                processes: 1,
                threads: 1,
            },
            planned: Some(5),
            workers: Vec::new(),
            stats: merged,
            timeline: Vec::new(),
            elapsed: Duration::from_secs(1),
            failures: Vec::new(),
            interrupted: false,
            load: Default::default(),
            nodes,
            footprint: Default::default(),
        }
    }

    #[test]
    fn cluster_runs_carry_per_node_figures_beside_the_merged_ones() {
        let node = |name: &str, calls, failures: Vec<String>| NodeResult {
            name: name.to_string(),
            workers: vec![format!("worker 1 of 1 on node {name}")],
            stats: stats("OK", calls),
            elapsed: Duration::from_secs(1),
            failures,
            phases: Default::default(),
        };
        let run = result(vec![
            node("a", 3, Vec::new()),
            node("b", 2, vec!["node b was lost".into()]),
        ]);
        let report = Report::new(
            Path::new("p.so"),
            &[],
            SystemTime::now(),
            Duration::ZERO,
            &[run],
        );
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        let run = &json["runs"][0];
        assert_eq!(run["operations"], 5);
        assert_eq!(run["nodes"][0]["name"], "a");
        assert_eq!(run["nodes"][0]["operations"], 3);
        assert_eq!(run["nodes"][0]["complete"], true);
        assert_eq!(run["nodes"][1]["operations"], 2);
        assert_eq!(run["nodes"][1]["complete"], false);
        assert_eq!(run["nodes"][1]["results"][0]["count"], 2);
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back.runs[0].nodes.len(), 2);

        // A local run has empty node lists (every field is always present).
        let local = Report::new(
            Path::new("p.so"),
            &[],
            SystemTime::now(),
            Duration::ZERO,
            &[result(Vec::new())],
        );
        let json = serde_json::to_value(&local).unwrap();
        assert_eq!(json["runs"][0]["nodes"], serde_json::json!([]));
        assert_eq!(json["skipped_nodes"], serde_json::json!([]));
    }

    #[test]
    fn a_node_that_held_a_phase_up_is_named() {
        let node = |name: &str, connect_ms: u64, calls_ms: u64| NodeResult {
            name: name.to_string(),
            workers: Vec::new(),
            stats: stats("OK", 1),
            elapsed: Duration::from_secs(1),
            failures: Vec::new(),
            phases: NodePhases {
                connect: Some(Duration::from_millis(connect_ms)),
                calls: Some(Duration::from_millis(calls_ms)),
                ..NodePhases::default()
            },
        };
        let run = result(vec![
            node("a", 150, 1000),
            node("b", 160, 1100),
            node("c", 1200, 1150),
        ]);
        let report = Report::new(
            Path::new("p.so"),
            &[],
            SystemTime::now(),
            Duration::ZERO,
            &[run],
        );
        let slow = slow_phases(&report.runs[0].nodes);
        // c's login took 8 times the median; nobody's calls stood out.
        assert_eq!(
            slow,
            [SlowPhase {
                phase: "connect",
                node: "c".into(),
                slowest_ns: 1_200_000_000,
                median_ns: 160_000_000,
            }]
        );
        assert_eq!(
            report.runs[0].nodes[2].phases.connect_ns,
            Some(1_200_000_000)
        );
        assert_eq!(report.runs[0].nodes[2].phases.upload_ns, None);
    }
}
