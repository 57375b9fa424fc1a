//! `gorgon compare --output json|csv`: the comparison as data, for a CI
//! script that acts on one figure rather than reading a table.
//!
//! The JSON is one [`Comparison`] (docs/reports.md shows its schema with
//! an example); the CSV is its rows, one line per run, group of calls and
//! figure. Both are serialised from these structs, so the two formats and
//! the exit code read the same values the table shows.

use std::collections::BTreeMap;
use std::path::Path;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::{Group, Kind, Metric};
use crate::report::model::Report;
use crate::report::text::escape_control;
use crate::report::verdict::Verdict;

/// The whole comparison: what was compared, every change, every gate,
/// and what it came to.
#[derive(Debug, Serialize)]
pub struct Comparison {
    pub base: Input,
    pub new: Input,
    /// One sentence when the two suites ran differently (shape or
    /// parameters), as the table's `Note:` line; absent otherwise.
    pub note: Option<String>,
    /// One row per run and group of calls: those of the new result in
    /// its order, then those only the base has.
    pub rows: Vec<Row>,
    /// The `--threshold` gates, in the order given.
    pub gates: Vec<GateResult>,
    /// `passed` (exit 0) or `thresholds_failed` (exit 1), with one
    /// sentence per failed gate.
    pub verdict: Verdict,
}

/// One of the two results compared.
#[derive(Debug, Serialize)]
pub struct Input {
    /// The file as given on the command line.
    pub path: String,
    /// The plugin as the result names it.
    pub plugin: String,
    pub started_at: String,
    pub params: BTreeMap<String, String>,
    pub shape: Shape,
}

/// How a result's suite ran: what makes two results comparable.
#[derive(Debug, Serialize)]
pub struct Shape {
    /// `closed` or `open`.
    pub load_model: String,
    pub rate_per_sec: Option<f64>,
    pub duration_ns: Option<u64>,
    pub fibers: u32,
    pub runs: Vec<RunShape>,
}

#[derive(Debug, Serialize)]
pub struct RunShape {
    pub run: usize,
    pub processes: u32,
    pub threads: u32,
    /// Calls made and counted.
    pub operations: u64,
}

impl Input {
    pub fn of(path: &Path, report: &Report) -> Input {
        Input {
            path: path.display().to_string(),
            plugin: report.plugin.clone(),
            started_at: report.started_at.clone(),
            params: report.params.clone(),
            shape: Shape {
                load_model: report.load.model.clone(),
                rate_per_sec: report.load.rate_per_sec,
                duration_ns: report.load.duration_ns,
                fibers: report.load.fibers,
                runs: report
                    .runs
                    .iter()
                    .map(|run| RunShape {
                        run: run.index,
                        processes: run.processes,
                        threads: run.threads,
                        operations: run.operations,
                    })
                    .collect(),
            },
        }
    }
}

/// One group of calls of one run: all calls, a result label or a
/// measurement, with the change of every figure.
#[derive(Debug, Serialize)]
pub struct Row {
    pub run: usize,
    pub kind: Kind,
    /// `all`, the label, or the measurement's name (a gate names a
    /// measurement `NAME<`).
    pub name: String,
    pub figures: Figures,
}

impl Row {
    /// The row of a group in `base`, `new` or both (a group one result
    /// lacks has nulls on that side).
    pub fn of(run: usize, base: Option<&Group>, new: Option<&Group>) -> Row {
        let group = new.or(base).expect("a group on one side at least");
        Row {
            run,
            kind: group.kind,
            name: group.label().to_string(),
            figures: Figures(
                Metric::ALL
                    .iter()
                    .map(|&metric| {
                        let value = |g: Option<&Group>| g.map(|g| metric.value(g));
                        (metric, Change::of(metric, value(base), value(new)))
                    })
                    .collect(),
            ),
        }
    }
}

/// Every figure of a row, keyed by [`Metric::key`] in a fixed order.
#[derive(Debug)]
pub struct Figures(Vec<(Metric, Change)>);

impl Serialize for Figures {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (metric, change) in &self.0 {
            map.serialize_entry(metric.key(), change)?;
        }
        map.end()
    }
}

/// One figure before and after.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Change {
    /// Latencies in ns, throughput in ops/s, the error rate as a fraction.
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// `new - base`, in the figure's unit.
    pub delta: Option<f64>,
    /// What a gate tests: the relative change in percent, the error
    /// rate's in percentage points; null from a base of 0 or a missing
    /// side.
    pub change: Option<f64>,
}

impl Change {
    pub fn of(metric: Metric, base: Option<f64>, new: Option<f64>) -> Change {
        let both = base.zip(new);
        Change {
            base,
            new,
            delta: both.map(|(b, n)| n - b),
            change: both.and_then(|(b, n)| metric.change(b, n)),
        }
    }
}

/// A `--threshold` gate and how each run pair fared.
#[derive(Debug, Serialize)]
pub struct GateResult {
    /// As given, e.g. `p99<+10%`.
    pub expression: String,
    /// The group it looks at: `all`, a label, or `NAME<` for a measurement.
    pub scope: String,
    /// The figure, as a key of a row's `figures`.
    pub metric: &'static str,
    /// `below`: the change must stay under `limit`; `above`: over it.
    pub bound: Bound,
    pub limit: f64,
    /// `%`, or `points` for the error rate.
    pub unit: &'static str,
    /// True when every run passed.
    pub passed: bool,
    pub runs: Vec<GateRun>,
    #[serde(skip)]
    pub(super) measured: Metric,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    Below,
    Above,
}

/// A gate in one run: the figure on both sides and the measured change.
#[derive(Debug, Serialize)]
pub struct GateRun {
    pub run: usize,
    #[serde(flatten)]
    pub value: Change,
    /// False too when there was nothing to compare (the group is missing
    /// from one side, or the base is 0).
    pub passed: bool,
}

impl GateResult {
    /// What the gate measured where it failed, as the table shows it.
    pub fn failed_runs(&self, suite: bool) -> String {
        self.runs
            .iter()
            .filter(|run| !run.passed)
            .map(|run| {
                let shown = match run.value.change {
                    Some(_) => self.measured.show_change(run.value.change),
                    None => "nothing to compare".to_string(),
                };
                if suite {
                    format!("{shown} in run {}", run.run)
                } else {
                    shown
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The comparison as pretty-printed JSON, ending in a newline.
pub fn json(comparison: &Comparison) -> String {
    let mut text =
        serde_json::to_string_pretty(comparison).expect("a comparison always serialises");
    text.push('\n');
    text
}

/// The header of the CSV; docs/reports.md describes each column.
pub const CSV_HEADER: [&str; 8] = [
    "run", "kind", "name", "metric", "base", "new", "delta", "change",
];

/// The rows as CSV, one line per run, group and figure; a missing value
/// is an empty cell.
pub fn csv(comparison: &Comparison) -> String {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    let cell = |value: Option<f64>| value.map(|v| v.to_string()).unwrap_or_default();
    writer
        .write_record(CSV_HEADER)
        .expect("writing CSV to memory cannot fail");
    for row in &comparison.rows {
        for (metric, change) in &row.figures.0 {
            writer
                .write_record([
                    row.run.to_string(),
                    row.kind.key().to_string(),
                    // A spreadsheet would act on a control character.
                    escape_control(&row.name).into_owned(),
                    metric.key().to_string(),
                    cell(change.base),
                    cell(change.new),
                    cell(change.delta),
                    cell(change.change),
                ])
                .expect("writing CSV to memory cannot fail");
        }
    }
    let bytes = writer
        .into_inner()
        .expect("flushing CSV to memory cannot fail");
    String::from_utf8(bytes).expect("CSV of UTF-8 strings is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_has_a_delta_and_the_gates_measure_with_nulls_where_a_side_is_missing() {
        let p99 = Metric::Percentile(super::super::Percentile::P99);
        let change = Change::of(p99, Some(200.0), Some(250.0));
        assert_eq!((change.delta, change.change), (Some(50.0), Some(25.0)));
        let errors = Change::of(Metric::ErrorRate, Some(0.0), Some(0.02));
        assert_eq!((errors.delta, errors.change), (Some(0.02), Some(2.0)));
        let new_label = Change::of(p99, None, Some(250.0));
        assert_eq!((new_label.delta, new_label.change), (None, None));
        let from_zero = Change::of(p99, Some(0.0), Some(5.0));
        assert_eq!((from_zero.delta, from_zero.change), (Some(5.0), None));
    }

    #[test]
    fn a_verdict_of_gates_fails_with_one_reason_and_exits_1() {
        assert_eq!(Verdict::of_gates(Vec::new()).exit_code(), 0);
        let failed = Verdict::of_gates(vec!["comparison threshold failed: p99<+1%".into()]);
        assert_eq!(failed.exit_code(), 1);
        assert_eq!(
            serde_json::to_value(&failed).unwrap()["status"],
            "thresholds_failed"
        );
    }
}
