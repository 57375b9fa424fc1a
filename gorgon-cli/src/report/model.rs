//! The report model: what a finished (or interrupted) suite produced.
//!
//! This is the one source for every output format. It is what `--output
//! json` prints and what `gorgon report` reads back, so its field names are
//! a public schema (docs/json-schema.md); durations end in `_ns`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::load_model::{self, LoadSettings, OpenModel};
use crate::collect::{RunResult, TimelinePoint};
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
    pub runs: Vec<RunReport>,
    /// How the load was applied (model, duration, rate, ramp-up, warm-up,
    /// success labels).
    #[serde(default)]
    pub load: LoadSettings,
    /// The pass/fail gates and how each run fared.
    #[serde(default)]
    pub thresholds: Vec<ThresholdReport>,
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamedSummary {
    pub name: String,
    #[serde(flatten)]
    pub summary: Summary,
    /// The full latency histogram (HdrHistogram V2, base64), so a saved
    /// report can be charted or merged again without loss.
    pub histogram: String,
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
            runs: results
                .iter()
                .enumerate()
                .map(|(i, result)| RunReport::new(i + 1, result))
                .collect(),
            load: LoadSettings::default(),
            thresholds: Vec::new(),
        }
    }

    /// Every failure of every run, for the closing message.
    pub fn failures(&self) -> impl Iterator<Item = &str> {
        self.runs
            .iter()
            .flat_map(|r| r.failures.iter().map(String::as_str))
    }
}

impl RunReport {
    /// The report of one run; `index` is its 1-based place in the suite.
    pub fn new(index: usize, result: &RunResult) -> RunReport {
        let elapsed = result.elapsed;
        let named = |map: &BTreeMap<String, hdrhistogram::Histogram<u64>>| {
            map.iter()
                .map(|(name, histogram)| NamedSummary {
                    name: name.clone(),
                    summary: Summary::of(histogram, elapsed),
                    histogram: histogram_map::encode(histogram).unwrap_or_default(),
                })
                .collect::<Vec<_>>()
        };
        let mut results = named(&result.stats.results);
        results.sort_by(|a, b| {
            b.summary
                .count
                .cmp(&a.summary.count)
                .then(a.name.cmp(&b.name))
        });
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
        }
    }
}
