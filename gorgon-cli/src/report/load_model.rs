//! The parts of the report model that come from the load shape: how the
//! load was applied, the open model's figures (achieved rate, late starts,
//! service time beside the corrected latency), errors and thresholds.
//!
//! They live in their own file so the core model stays readable; every
//! field is additive to schema version 1.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::model::{by_count, named, NamedSummary, Report};
use crate::outcome::RunResult;
use crate::plan::LoadPlan;
use crate::shape::{Success, Warmup};
use crate::stats::{Summary, LATE_AFTER_NS};
use crate::threshold::{self, ThresholdReport};
use crate::units::{duration, rate, thousands};

/// How the load was applied to every run of the suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadSettings {
    /// `closed` (each thread calls again when its call ends) or `open`
    /// (calls start at `rate_per_sec`, whatever their latency).
    pub model: String,
    /// The time limit of each run (`--duration`), if any.
    pub duration_ns: Option<u64>,
    /// The open model's total arrival rate.
    pub rate_per_sec: Option<f64>,
    /// Threads start (closed) or the rate grows (open) over this time.
    pub ramp_up_ns: u64,
    /// A warm-up of this many calls, or of this time, before each run's
    /// measured part.
    pub warmup_operations: Option<u64>,
    pub warmup_ns: Option<u64>,
    /// The labels that count as success (`--ok`); absent: every label but
    /// `panic`.
    pub ok: Option<Vec<String>>,
    /// Calls at once per worker thread, each on a fiber (`--fibers`); 1
    /// when threads run one call at a time.
    #[serde(default = "one")]
    pub fibers: u32,
}

fn one() -> u32 {
    1
}

impl LoadSettings {
    /// ` × 16 fibers` after a run's processes and threads, or nothing.
    pub fn fibers_text(&self) -> String {
        match self.fibers {
            0 | 1 => String::new(),
            n => format!(" × {n} fibers"),
        }
    }
}

impl Default for LoadSettings {
    fn default() -> Self {
        LoadSettings {
            model: "closed".to_string(),
            duration_ns: None,
            rate_per_sec: None,
            ramp_up_ns: 0,
            warmup_operations: None,
            warmup_ns: None,
            ok: None,
            fibers: 1,
        }
    }
}

impl LoadSettings {
    fn of(plan: &LoadPlan) -> LoadSettings {
        LoadSettings {
            model: if plan.rate.is_some() {
                "open"
            } else {
                "closed"
            }
            .to_string(),
            duration_ns: plan.duration.map(nanos),
            rate_per_sec: plan.rate.map(|r| r.per_sec),
            ramp_up_ns: nanos(plan.ramp_up),
            warmup_operations: match plan.warmup {
                Some(Warmup::Calls(n)) => Some(n),
                _ => None,
            },
            warmup_ns: match plan.warmup {
                Some(Warmup::Time(d)) => Some(nanos(d)),
                _ => None,
            },
            ok: plan.success.ok.clone(),
            fibers: plan.fibers.max(1),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The figures of a run in the open model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenModel {
    /// The rate asked for.
    pub target_per_sec: f64,
    /// Counted calls over the measured time.
    pub achieved_per_sec: f64,
    /// Calls that started more than `late_after_ns` after they were due.
    pub late: u64,
    /// Operations due in the run's window that never started: every lane
    /// was still busy when the window closed.
    #[serde(default)]
    pub dropped: u64,
    pub late_after_ns: u64,
    /// Service time (actual start to end) of all calls. The run's `all`
    /// and `results` hold the latency from the intended start instead.
    pub service: Summary,
    /// Service time per result label.
    pub service_results: Vec<NamedSummary>,
    /// Set when the rate was not held: too few threads, or a stall.
    pub warning: Option<String>,
}

/// Share of late calls above which the report warns.
const LATE_WARNING_FRACTION: f64 = 0.01;

/// The open-model figures of `result`, if it ran in the open model.
pub fn open_model(result: &RunResult, elapsed: Duration) -> Option<OpenModel> {
    let target = result.load.rate?;
    let all = result.stats.all_calls();
    let service = Summary::of(&result.stats.all_service(), elapsed);
    let achieved = Summary::of(&all, elapsed).ops_per_sec;
    let late = result.stats.late;
    let lanes = u64::from(result.shape.processes)
        * u64::from(result.shape.threads)
        * u64::from(result.load.fibers.max(1));
    let dropped = result.load.dropped;
    let behind = late + dropped;
    let warning = (!all.is_empty() && behind as f64 > all.len() as f64 * LATE_WARNING_FRACTION)
        .then(|| {
            let needed = target.per_sec * service.avg_ns as f64 / 1e9;
            let mut late_part = format!(
                "{} of {} operations started more than {} late",
                thousands(late),
                thousands(all.len()),
                short_duration(LATE_AFTER_NS)
            );
            if dropped > 0 {
                late_part += &format!(
                    " and {} more never started before the window closed",
                    thousands(dropped)
                );
            }
            if needed > lanes as f64 {
                let (what, raise) = match result.load.fibers {
                    0 | 1 => ("threads", "-t or -p"),
                    _ => ("threads × fibers", "--fibers, -t or -p"),
                };
                format!(
                    "the {what} were too few to hold {target}: {late_part}; at an average \
                     service time of {} the rate needs about {} calls in progress at once, the \
                     run had {} {what} (raise {raise})",
                    duration(service.avg_ns),
                    thousands(needed.ceil() as u64),
                    thousands(lanes)
                )
            } else {
                format!(
                    "the rate of {target} was not held on time: {late_part} (a stall in the \
                     operation, bursts that need more threads than the run had, or a machine \
                     too busy to start them on time)"
                )
            }
        });
    Some(OpenModel {
        target_per_sec: target.per_sec,
        achieved_per_sec: achieved,
        late,
        dropped: result.load.dropped,
        late_after_ns: LATE_AFTER_NS,
        service,
        service_results: by_count(named(&result.stats.service, elapsed)),
        warning,
    })
}

/// Errors and their share of all calls.
pub fn errors(result: &RunResult, success: &Success) -> (u64, f64) {
    let errors = threshold::errors(result, success);
    let total: u64 = result.stats.results.values().map(Histogram::len).sum();
    let rate = if total == 0 {
        0.0
    } else {
        errors as f64 / total as f64
    };
    (errors, rate)
}

/// Adds what the load plan and the thresholds say to a finished report.
pub fn annotate(
    report: &mut Report,
    plan: &LoadPlan,
    results: &[RunResult],
    thresholds: Vec<ThresholdReport>,
) {
    report.load = LoadSettings::of(plan);
    for (run, result) in report.runs.iter_mut().zip(results) {
        (run.errors, run.error_rate) = errors(result, &plan.success);
    }
    report.thresholds = thresholds;
}

/// A duration in a sentence: `1ms`, `3s`, `1.5ms`.
pub fn short_duration(ns: u64) -> String {
    super::text::trimmed(ns)
}

/// How an open-model rate reads in a sentence: `50/s` for a whole number
/// (as a target usually is), `50.66/s` otherwise.
pub fn rate_per_sec(per_sec: f64) -> String {
    if per_sec.is_finite() && per_sec >= 0.0 && per_sec.fract() == 0.0 {
        format!("{}/s", thousands(per_sec as u64))
    } else {
        format!("{}/s", rate(per_sec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::RunLoad;
    use crate::shape::RunShape;
    use crate::stats::{new_histogram, Stats};

    fn open_run() -> RunResult {
        let mut stats = Stats::default();
        let mut corrected = new_histogram();
        let mut service = new_histogram();
        for i in 0..100u64 {
            corrected.record(1_000 + i * 10_000_000).unwrap();
            service.record(1_000).unwrap();
        }
        stats.results.insert("200".into(), corrected.clone());
        stats.results.insert("500".into(), corrected);
        stats.service.insert("200".into(), service.clone());
        stats.service.insert("500".into(), service);
        stats.late = 90;
        RunResult {
            shape: RunShape {
                processes: 1,
                threads: 2,
            },
            planned: None,
            workers: vec!["worker 1 of 1".into()],
            stats,
            timeline: Vec::new(),
            elapsed: Duration::from_secs(2),
            failures: Vec::new(),
            interrupted: false,
            load: RunLoad {
                warmup_calls: 7,
                rate: Some("100/s".parse().unwrap()),
                fibers: 1,
                dropped: 0,
                waited_on_fiber: false,
            },
            nodes: Vec::new(),
            footprint: Default::default(),
        }
    }

    #[test]
    fn the_report_model_carries_the_open_model_errors_and_thresholds() {
        let results = [open_run()];
        let plan = LoadPlan {
            duration: Some(Duration::from_secs(2)),
            rate: Some("100/s".parse().unwrap()),
            success: Success {
                ok: Some(vec!["200".into()]),
            },
            ..LoadPlan::default()
        };
        let thresholds = vec![
            "p99<500ms".parse().unwrap(),
            "error_rate<10%".parse().unwrap(),
        ];
        let verdicts = threshold::evaluate(&thresholds, &results, &plan.success);
        let mut report = Report::new(
            std::path::Path::new("libx.so"),
            &[],
            std::time::SystemTime::now(),
            Duration::from_secs(3),
            &results,
        );
        annotate(&mut report, &plan, &results, verdicts);
        let json = serde_json::to_value(&report).unwrap();
        let run = &json["runs"][0];
        assert_eq!(run["errors"], 100);
        assert_eq!(run["error_rate"], 0.5);
        assert_eq!(run["warmup_operations"], 7);
        let open = &run["open_model"];
        assert_eq!(open["target_per_sec"], 100.0);
        assert_eq!(open["late"], 90);
        assert_eq!(open["service"]["p99_ns"], 1_000);
        assert!(run["all"]["p99_ns"].as_u64().unwrap() > 900_000_000);
        assert!(open["warning"].as_str().unwrap().contains("90 of 200"));
        assert_eq!(json["load"]["model"], "open");
        assert_eq!(json["load"]["ok"][0], "200");
        assert_eq!(json["thresholds"][0]["passed"], false);
        assert_eq!(json["thresholds"][0]["unit"], "ns");
        assert_eq!(json["thresholds"][1]["runs"][0]["value"], 0.5);
        // And it reads back, as `gorgon report` will need.
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back.thresholds, report.thresholds);
    }
}
