//! Thresholds: pass/fail gates a CI script can act on.
//!
//! An expression is `[NAME:]METRIC OP VALUE`, e.g. `p99<250ms`,
//! `error_rate<1%`, `ops_per_sec>1000` or `http call 1:p95<50ms`. The
//! optional NAME (which may contain spaces; the metric is what follows the
//! last `:`) picks a result label or a measurement; without it the metric
//! covers all calls. Each threshold is checked against every run of the
//! suite and holds only if it holds in each of them.
//!
//! A metric that does not exist is refused when the expression is read
//! (exit 2). A NAME is only known once the run is over: counting metrics
//! (`count`, `ops_per_sec`) treat a name that never occurred as zero, while
//! latency metrics on it fail with a message saying nothing was measured.

use std::fmt;
use std::str::FromStr;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::outcome::RunResult;
use crate::shape::{parse_duration, Success};
use crate::units::{compact, rate, thousands};

const METRICS: &str = "avg, min, max, p50, p90, p95, p99, p99.9 (any pNN), count, ops_per_sec, \
                       errors, error_rate or dropped";

/// One parsed threshold expression.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub struct Threshold {
    /// The expression as written, for messages and the report.
    pub text: String,
    scope: Scope,
    metric: Metric,
    op: Op,
    limit: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum Scope {
    /// All calls of the run.
    All,
    /// A result label, or else a measurement of that name.
    Name(String),
    /// Only a measurement (written `NAME<:…`, as the table marks it).
    Measurement(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Metric {
    Avg,
    Min,
    Max,
    /// A percentile, 0 < p ≤ 100.
    Percentile(f64),
    Count,
    OpsPerSec,
    Errors,
    ErrorRate,
    /// Open model: starts due in the window that never happened.
    Dropped,
}

impl Metric {
    fn is_latency(self) -> bool {
        matches!(
            self,
            Metric::Avg | Metric::Min | Metric::Max | Metric::Percentile(_)
        )
    }

    fn parse(name: &str) -> Option<Metric> {
        Some(match name {
            "avg" | "mean" => Metric::Avg,
            "min" => Metric::Min,
            "max" => Metric::Max,
            "med" | "median" => Metric::Percentile(50.0),
            "count" => Metric::Count,
            "ops_per_sec" => Metric::OpsPerSec,
            "errors" => Metric::Errors,
            "error_rate" => Metric::ErrorRate,
            "dropped" => Metric::Dropped,
            _ => {
                let p: f64 = name.strip_prefix('p')?.parse().ok()?;
                if !(p > 0.0 && p <= 100.0) {
                    return None;
                }
                Metric::Percentile(p)
            }
        })
    }

    /// Shows a value of this metric in its unit.
    fn show(self, value: f64) -> String {
        match self {
            m if m.is_latency() => compact(value.round() as u64),
            Metric::ErrorRate => format!("{:.2}%", value * 100.0),
            Metric::OpsPerSec => format!("{}/s", rate(value)),
            _ => thousands(value.round() as u64),
        }
    }

    fn unit(self) -> &'static str {
        match self {
            m if m.is_latency() => "ns",
            Metric::ErrorRate => "fraction",
            Metric::OpsPerSec => "ops/s",
            _ => "calls",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, value: f64, limit: f64) -> bool {
        match self {
            Op::Lt => value < limit,
            Op::Le => value <= limit,
            Op::Gt => value > limit,
            Op::Ge => value >= limit,
        }
    }
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(text: &str) -> Result<Threshold, String> {
        let text = text.trim();
        let malformed = || {
            format!(
                "malformed threshold '{text}': expected [NAME:]METRIC<VALUE or METRIC>VALUE, \
                 e.g. p99<250ms or 'http call 1:p95<50ms'"
            )
        };
        let (scope, rest) = match text.rsplit_once(':') {
            Some((name, rest)) => {
                let name = name.trim();
                let scope = match name.strip_suffix('<') {
                    _ if name.is_empty() => return Err(malformed()),
                    _ if name == "all" => Scope::All,
                    Some(measurement) => Scope::Measurement(measurement.trim_end().to_string()),
                    None => Scope::Name(name.to_string()),
                };
                (scope, rest)
            }
            None => (Scope::All, text),
        };
        let at = rest.find(['<', '>']).ok_or_else(malformed)?;
        let (metric_name, tail) = rest.split_at(at);
        let (op, value) = match (tail.as_bytes()[0], tail.as_bytes().get(1)) {
            (b'<', Some(b'=')) => (Op::Le, &tail[2..]),
            (b'<', _) => (Op::Lt, &tail[1..]),
            (b'>', Some(b'=')) => (Op::Ge, &tail[2..]),
            _ => (Op::Gt, &tail[1..]),
        };
        let metric_name = metric_name.trim();
        let value = value.trim();
        if metric_name.is_empty() || value.is_empty() {
            return Err(malformed());
        }
        let metric = Metric::parse(metric_name).ok_or_else(|| {
            format!("unknown metric '{metric_name}' in threshold '{text}': use {METRICS}")
        })?;
        if matches!(metric, Metric::Errors | Metric::ErrorRate | Metric::Dropped)
            && scope != Scope::All
        {
            return Err(format!(
                "threshold '{text}': {metric_name} covers the whole run, so it takes no NAME: prefix"
            ));
        }
        let limit =
            parse_limit(metric, value).map_err(|why| format!("threshold '{text}': {why}"))?;
        Ok(Threshold {
            text: text.to_string(),
            scope,
            metric,
            op,
            limit,
        })
    }
}

impl TryFrom<String> for Threshold {
    type Error = String;
    fn try_from(text: String) -> Result<Threshold, String> {
        text.parse()
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_limit(metric: Metric, value: &str) -> Result<f64, String> {
    let number = |v: &str| -> Result<f64, String> {
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| format!("'{value}' is not a number"))
    };
    match metric {
        m if m.is_latency() => parse_duration(value)
            .map(|d| d.as_nanos() as f64)
            .map_err(|_| format!("'{value}' is not a duration such as 250ms or 1s")),
        Metric::ErrorRate => match value.strip_suffix('%') {
            Some(percent) => number(percent).map(|p| p / 100.0),
            None => match number(value)? {
                fraction if fraction <= 1.0 => Ok(fraction),
                _ => Err(format!(
                    "'{value}' is not a fraction (0.01) or a percentage (1%)"
                )),
            },
        },
        Metric::OpsPerSec => match value.strip_suffix("/s") {
            Some(n) => number(n),
            None => number(value),
        },
        _ => number(value),
    }
}

/// How one threshold fared over the suite: the `thresholds` field of the
/// report model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdReport {
    /// The expression as written.
    pub expression: String,
    /// True when it held in every run.
    pub passed: bool,
    /// The unit of `value`: `ns`, `fraction`, `ops/s` or `calls`.
    pub unit: String,
    pub runs: Vec<ThresholdRun>,
}

/// A threshold checked against one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdRun {
    /// 1-based position of the run in the suite.
    pub run: usize,
    /// The measured value; absent when there was nothing to measure.
    pub value: Option<f64>,
    /// The value for people, in human units.
    pub shown: String,
    pub passed: bool,
    /// Why there is no value, when there is none.
    #[serde(default)]
    pub note: Option<String>,
}

/// Checks every threshold against every run.
pub fn evaluate(
    thresholds: &[Threshold],
    results: &[RunResult],
    success: &Success,
) -> Vec<ThresholdReport> {
    thresholds
        .iter()
        .map(|threshold| {
            let runs: Vec<ThresholdRun> = results
                .iter()
                .enumerate()
                .map(|(i, result)| threshold.check(i + 1, result, success))
                .collect();
            ThresholdReport {
                expression: threshold.text.clone(),
                passed: runs.iter().all(|r| r.passed),
                unit: threshold.metric.unit().to_string(),
                runs,
            }
        })
        .collect()
}

impl Threshold {
    fn check(&self, run: usize, result: &RunResult, success: &Success) -> ThresholdRun {
        match self.measure(result, success) {
            Ok(value) => ThresholdRun {
                run,
                value: Some(value),
                shown: self.metric.show(value),
                passed: self.op.holds(value, self.limit),
                note: None,
            },
            Err(note) => ThresholdRun {
                run,
                value: None,
                shown: "-".to_string(),
                passed: false,
                note: Some(note),
            },
        }
    }

    fn measure(&self, result: &RunResult, success: &Success) -> Result<f64, String> {
        let stats = &result.stats;
        let all = stats.all_calls();
        let total = all.len();
        match self.metric {
            Metric::Errors => {
                return Ok(errors(result, success) as f64);
            }
            Metric::ErrorRate if total == 0 => return Err("no calls were made".to_string()),
            Metric::ErrorRate => return Ok(errors(result, success) as f64 / total as f64),
            Metric::Dropped => return Ok(result.load.dropped as f64),
            _ => {}
        }
        let histogram: Option<&Histogram<u64>> = match &self.scope {
            Scope::All => Some(&all),
            Scope::Name(name) => stats
                .results
                .get(name)
                .or_else(|| stats.measurements.get(name)),
            Scope::Measurement(name) => stats.measurements.get(name),
        };
        let count = histogram.map_or(0, Histogram::len);
        match self.metric {
            Metric::Count => return Ok(count as f64),
            Metric::OpsPerSec => {
                let seconds = result.elapsed.as_secs_f64();
                return Ok(if seconds > 0.0 {
                    count as f64 / seconds
                } else {
                    0.0
                });
            }
            _ => {}
        }
        let histogram = histogram
            .filter(|h| !h.is_empty())
            .ok_or_else(|| match &self.scope {
                Scope::All => "no calls were made".to_string(),
                Scope::Name(name) => {
                    format!("no call returned '{name}' and no measurement is named '{name}'")
                }
                Scope::Measurement(name) => format!("no measurement is named '{name}'"),
            })?;
        Ok(match self.metric {
            Metric::Avg => histogram.mean(),
            Metric::Min => histogram.min() as f64,
            Metric::Max => histogram.max() as f64,
            Metric::Percentile(p) => histogram.value_at_quantile(p / 100.0) as f64,
            _ => unreachable!("counting metrics returned above"),
        })
    }
}

/// Calls that are errors under `success`: panics, calls the plugin said
/// failed, or with `--ok` calls of any other label.
pub fn errors(result: &RunResult, success: &Success) -> u64 {
    success.errors_in(&result.stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Threshold {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn every_kind_parses() {
        let t = parse("p99<250ms");
        assert_eq!(
            (t.scope.clone(), t.metric, t.op, t.limit),
            (Scope::All, Metric::Percentile(99.0), Op::Lt, 250e6)
        );
        assert_eq!(parse("avg <= 1s").limit, 1e9);
        assert_eq!(parse("error_rate<1%").limit, 0.01);
        assert_eq!(parse("error_rate<0.05").limit, 0.05);
        assert_eq!(parse("ops_per_sec>1000").op, Op::Gt);
        assert_eq!(parse("ops_per_sec>=1000/s").limit, 1000.0);
        assert_eq!(parse("p99.9<1s").metric, Metric::Percentile(99.9));
        assert_eq!(parse("FAIL:count<10").metric, Metric::Count);
        assert_eq!(parse("dropped<1").metric, Metric::Dropped);
        let scoped = parse("http call 1:p95<50ms");
        assert_eq!(scoped.scope, Scope::Name("http call 1".into()));
        assert_eq!(
            parse("step<:max<1s").scope,
            Scope::Measurement("step".into())
        );
        assert_eq!(parse("all:avg<1s").scope, Scope::All);
    }

    #[test]
    fn bad_expressions_are_refused_with_a_reason() {
        for (text, reason) in [
            ("p99 250ms", "malformed threshold"),
            ("p99<", "malformed threshold"),
            ("<250ms", "malformed threshold"),
            (":p99<1s", "malformed threshold"),
            ("latency<1s", "unknown metric 'latency'"),
            ("p0<1s", "unknown metric"),
            ("p101<1s", "unknown metric"),
            ("p99<250", "not a duration"),
            ("error_rate<5", "not a fraction"),
            ("error_rate<lots", "not a number"),
            ("ops_per_sec>many", "not a number"),
            ("200:error_rate<1%", "takes no NAME"),
        ] {
            let error = text.parse::<Threshold>().unwrap_err();
            assert!(error.contains(reason), "{text}: {error}");
            assert!(!error.contains('\n'));
        }
    }
}
