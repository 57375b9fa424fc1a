//! `gorgon compare BASE.json NEW.json`: two saved results side by side,
//! as a CI job asks "did this change make it slower?".
//!
//! One table of per-label changes (throughput, p50/p90/p99/p99.9, error
//! rate), overlaid spectra in `--svg`/`--html`, and relative gates such as
//! `p99<+10%` or `ops_per_sec>-5%` that make it exit 1 when one fails.
//! Results of different plugins, or suites of a different number of runs,
//! are refused (exit 2): their figures do not answer the question. A
//! different shape (processes, threads, load model, rate) is compared but
//! flagged in one sentence.
//!
//! `--output json|csv` prints the same comparison as data
//! ([`document`]) instead of the table.

mod document;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use maud::{html, PreEscaped, DOCTYPE};
use serde::Serialize;

use super::html::{figure, Text, STYLE};
use super::model::{NamedSummary, Report, RunReport};
use super::output::{check_dir, write_stdout, Format};
use super::svg::{spectrum_extent, spectrum_svg, Chart, Colors, Mark, Spectrum};
use super::table::fitted;
use super::text::{compact, table_width};
use super::verdict::Verdict;
use crate::exit::{Code, Failure};
use crate::stats::{histogram_map, Summary};
use crate::units::rate;
use document::{Bound, Comparison, GateResult, GateRun, Input, Row};

/// A figure the table and the gates compare.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Metric {
    OpsPerSec,
    Percentile(Percentile),
    Avg,
    Max,
    ErrorRate,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Percentile {
    P50,
    P90,
    P95,
    P99,
    P999,
}

impl Metric {
    fn parse(name: &str) -> Option<Metric> {
        Some(match name {
            "ops_per_sec" => Metric::OpsPerSec,
            "p50" | "median" => Metric::Percentile(Percentile::P50),
            "p90" => Metric::Percentile(Percentile::P90),
            "p95" => Metric::Percentile(Percentile::P95),
            "p99" => Metric::Percentile(Percentile::P99),
            "p99.9" | "p999" => Metric::Percentile(Percentile::P999),
            "avg" | "mean" => Metric::Avg,
            "max" => Metric::Max,
            "error_rate" => Metric::ErrorRate,
            _ => return None,
        })
    }

    /// Every figure, in the order the JSON and CSV give them.
    const ALL: [Metric; 9] = [
        Metric::OpsPerSec,
        Metric::Percentile(Percentile::P50),
        Metric::Percentile(Percentile::P90),
        Metric::Percentile(Percentile::P95),
        Metric::Percentile(Percentile::P99),
        Metric::Percentile(Percentile::P999),
        Metric::Avg,
        Metric::Max,
        Metric::ErrorRate,
    ];

    /// The name in the JSON and CSV, with its unit as the report's are.
    fn key(self) -> &'static str {
        match self {
            Metric::OpsPerSec => "ops_per_sec",
            Metric::Percentile(Percentile::P50) => "p50_ns",
            Metric::Percentile(Percentile::P90) => "p90_ns",
            Metric::Percentile(Percentile::P95) => "p95_ns",
            Metric::Percentile(Percentile::P99) => "p99_ns",
            Metric::Percentile(Percentile::P999) => "p999_ns",
            Metric::Avg => "avg_ns",
            Metric::Max => "max_ns",
            Metric::ErrorRate => "error_rate",
        }
    }

    /// The unit of [`Metric::change`].
    fn change_unit(self) -> &'static str {
        match self {
            Metric::ErrorRate => "points",
            _ => "%",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Metric::OpsPerSec => "ops/s",
            Metric::Percentile(Percentile::P50) => "p50",
            Metric::Percentile(Percentile::P90) => "p90",
            Metric::Percentile(Percentile::P95) => "p95",
            Metric::Percentile(Percentile::P99) => "p99",
            Metric::Percentile(Percentile::P999) => "p99.9",
            Metric::Avg => "avg",
            Metric::Max => "max",
            Metric::ErrorRate => "error rate",
        }
    }

    /// The value in a group: ns for latencies, ops/s, or a fraction.
    fn value(self, group: &Group) -> f64 {
        let s = group.summary;
        match self {
            Metric::OpsPerSec => s.ops_per_sec,
            Metric::Percentile(p) => {
                (match p {
                    Percentile::P50 => s.p50_ns,
                    Percentile::P90 => s.p90_ns,
                    Percentile::P95 => s.p95_ns,
                    Percentile::P99 => s.p99_ns,
                    Percentile::P999 => s.p999_ns,
                }) as f64
            }
            Metric::Avg => s.avg_ns as f64,
            Metric::Max => s.max_ns as f64,
            Metric::ErrorRate => group.error_rate,
        }
    }

    fn show(self, value: f64) -> String {
        match self {
            Metric::OpsPerSec => rate(value),
            Metric::ErrorRate => format!("{:.2}%", value * 100.0),
            _ => compact(value.round().max(0.0) as u64),
        }
    }

    /// The change from `base` to `new`: relative, in percent, except the
    /// error rate's, in percentage points (a relative change from 0 errors
    /// means nothing).
    fn change(self, base: f64, new: f64) -> Option<f64> {
        match self {
            Metric::ErrorRate => Some((new - base) * 100.0),
            _ if base == 0.0 => (new == 0.0).then_some(0.0),
            _ => Some((new - base) / base * 100.0),
        }
    }

    fn show_change(self, change: Option<f64>) -> String {
        let unit = match self.change_unit() {
            "points" => " pts",
            unit => unit,
        };
        match change {
            Some(c) => format!("{c:+.1}{unit}"),
            None => "new".to_string(),
        }
    }
}

/// The figures the table shows, in order.
const TABLE_METRICS: [Metric; 6] = [
    Metric::OpsPerSec,
    Metric::Percentile(Percentile::P50),
    Metric::Percentile(Percentile::P90),
    Metric::Percentile(Percentile::P99),
    Metric::Percentile(Percentile::P999),
    Metric::ErrorRate,
];

/// A relative gate: `[NAME:]METRIC<+10%` (the new value at most 10 %
/// above the base) or `METRIC>-5%` (at most 5 % below).
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    text: String,
    /// A result label or measurement (`name<`); `None`: all calls.
    scope: Option<String>,
    metric: Metric,
    below: bool,
    /// The allowed change, in percent (percentage points for error_rate).
    limit: f64,
}

impl FromStr for Gate {
    type Err = String;

    fn from_str(text: &str) -> Result<Gate, String> {
        let text = text.trim();
        let malformed = || {
            format!(
                "malformed comparison threshold '{text}': expected [NAME:]METRIC<+N% or \
                 METRIC>-N%, e.g. 'p99<+10%' or 'ops_per_sec>-5%'"
            )
        };
        let (scope, rest) = match text.rsplit_once(':') {
            Some((name, rest)) if !name.trim().is_empty() => {
                let name = name.trim();
                ((name != "all").then(|| name.to_string()), rest.trim())
            }
            Some(_) => return Err(malformed()),
            None => (None, text),
        };
        let (metric, below, limit) = match (rest.split_once('<'), rest.split_once('>')) {
            (Some((m, l)), None) => (m, true, l),
            (None, Some((m, l))) => (m, false, l),
            _ => return Err(malformed()),
        };
        let metric = Metric::parse(metric.trim()).ok_or_else(|| {
            format!(
                "unknown metric '{}' in '{text}': compare knows ops_per_sec, avg, max, p50, p90, \
                 p95, p99, p99.9 and error_rate",
                metric.trim()
            )
        })?;
        let limit = limit.trim();
        let number = limit
            .strip_suffix('%')
            .filter(|n| n.starts_with(['+', '-']))
            .ok_or_else(|| {
                format!(
                    "the limit of '{text}' must be a signed change in percent, like +10% or -5%"
                )
            })?;
        let limit: f64 = number
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite())
            .ok_or_else(malformed)?;
        Ok(Gate {
            text: text.to_string(),
            scope,
            metric,
            below,
            limit,
        })
    }
}

/// What kind of group of calls a row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// All calls of the run.
    All,
    /// The calls of one result label.
    Result,
    /// One measurement (`rec.measure`).
    Measurement,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::All => "all",
            Kind::Result => "result",
            Kind::Measurement => "measurement",
        }
    }
}

/// One group of calls of a run, as compared: all calls, a label or a
/// measurement.
struct Group<'a> {
    /// As a gate names it: `all`, the label, or `NAME<`.
    name: String,
    kind: Kind,
    summary: &'a Summary,
    error_rate: f64,
    histogram: Option<&'a str>,
}

impl Group<'_> {
    /// The label or measurement as the run named it.
    fn label(&self) -> &str {
        match self.kind {
            Kind::Measurement => self.name.strip_suffix('<').unwrap_or(&self.name),
            Kind::All | Kind::Result => &self.name,
        }
    }
}

fn label(named: &NamedSummary, name: String, kind: Kind) -> Group<'_> {
    Group {
        name,
        kind,
        summary: &named.summary,
        error_rate: named.failed as f64 / named.summary.count.max(1) as f64,
        histogram: Some(&named.histogram),
    }
}

fn groups(run: &RunReport) -> Vec<Group<'_>> {
    let mut out = vec![Group {
        name: "all".to_string(),
        kind: Kind::All,
        summary: &run.all,
        error_rate: run.error_rate,
        histogram: None,
    }];
    out.extend(
        run.results
            .iter()
            .map(|r| label(r, r.name.clone(), Kind::Result)),
    );
    out.extend(
        run.measurements
            .iter()
            .map(|m| label(m, format!("{}<", m.name), Kind::Measurement)),
    );
    out
}

/// What `gorgon compare` is asked: plain values, turned from its flags by
/// the command line.
#[derive(Debug, Clone)]
pub struct Request {
    pub base: PathBuf,
    pub new: PathBuf,
    pub gates: Vec<Gate>,
    /// What goes to stdout: the table, or the comparison as JSON or CSV.
    pub format: Format,
    /// A directory for the overlaid spectra (`--svg`).
    pub svg: Option<PathBuf>,
    /// One HTML page (`--html`).
    pub html: Option<PathBuf>,
}

/// `gorgon compare`: shows the changes, writes the charts and page asked
/// for, and exits 1 when a gate fails (3 when stdout cannot be written).
pub fn execute(request: &Request) -> Result<Code, Failure> {
    let (base_path, new_path) = (request.base.as_path(), request.new.as_path());
    let base = super::json::read(base_path).map_err(Failure::usage)?;
    let new = super::json::read(new_path).map_err(Failure::usage)?;
    refuse_incomparable(&base, &new)?;
    if let Some(dir) = &request.svg {
        check_dir(dir).map_err(Failure::usage)?;
    }
    let comparison = compare(base_path, new_path, &base, &new, &request.gates);
    let text = table_text(&comparison, &base, &new);
    let printed = match request.format {
        Format::Table => format!("{}\n", text.trim_end()),
        Format::Json => document::json(&comparison),
        Format::Csv => document::csv(&comparison),
    };
    let undelivered = write_stdout(printed.as_bytes())
        .err()
        .map(|e| format!("cannot write the comparison to stdout: {e}"));
    let charts = spectra(&base, &new)?;
    if let Some(dir) = &request.svg {
        for chart in &charts {
            let path = dir.join(&chart.file_name);
            std::fs::write(&path, &chart.svg).map_err(|e| {
                Failure::Run(anyhow::anyhow!("cannot write {}: {e}", path.display()))
            })?;
        }
    }
    if let Some(file) = &request.html {
        let page = page(base_path, new_path, &text, &charts);
        std::fs::write(file, page)
            .map_err(|e| Failure::Run(anyhow::anyhow!("cannot write {}: {e}", file.display())))?;
    }
    let mut verdict = comparison.verdict;
    if let Some(why) = undelivered {
        verdict = verdict.undelivered(why);
    }
    for reason in &verdict.reasons {
        eprintln!("gorgon: {reason}");
    }
    Ok(Code(verdict.exit_code()))
}

/// The comparison of two comparable results: every row, every gate
/// checked, and the verdict they come to.
fn compare(
    base_path: &Path,
    new_path: &Path,
    base: &Report,
    new: &Report,
    gates: &[Gate],
) -> Comparison {
    let gates = check(gates, base, new);
    let suite = base.runs.len() > 1;
    let reasons = gates
        .iter()
        .filter(|gate| !gate.passed)
        .map(|gate| {
            format!(
                "comparison threshold failed: {} (measured {})",
                gate.expression,
                gate.failed_runs(suite)
            )
        })
        .collect();
    Comparison {
        base: Input::of(base_path, base),
        new: Input::of(new_path, new),
        note: shape_note(base, new),
        rows: base
            .runs
            .iter()
            .zip(&new.runs)
            .flat_map(|(b, n)| rows(b, n))
            .collect(),
        gates,
        verdict: Verdict::of_gates(reasons),
    }
}

/// The rows of one run pair: the new result's groups, then those gone.
fn rows(base: &RunReport, new: &RunReport) -> Vec<Row> {
    let (base_groups, new_groups) = (groups(base), groups(new));
    let find = |among: &[Group<'_>], name: &str| among.iter().position(|g| g.name == name);
    let mut rows: Vec<Row> = new_groups
        .iter()
        .map(|n| {
            let b = find(&base_groups, &n.name).map(|i| &base_groups[i]);
            Row::of(new.index, b, Some(n))
        })
        .collect();
    rows.extend(
        base_groups
            .iter()
            .filter(|b| find(&new_groups, &b.name).is_none())
            .map(|b| Row::of(new.index, Some(b), None)),
    );
    rows
}

/// The comparison for people: the note, a change table per run, and the
/// gates, as printed and as put in the page.
fn table_text(comparison: &Comparison, base: &Report, new: &Report) -> String {
    let (base_path, new_path) = (&comparison.base.path, &comparison.new.path);
    let mut out = String::new();
    let _ = writeln!(out, "Comparing {base_path} (base) with {new_path} (new)");
    if let Some(note) = &comparison.note {
        let _ = writeln!(out, "Note: {note}");
    }
    let width = table_width();
    for (b, n) in base.runs.iter().zip(&new.runs) {
        if base.runs.len() > 1 {
            let _ = writeln!(out, "\nRun {}", b.index);
        }
        let _ = writeln!(out, "{}", change_table(b, n, width));
    }
    let gates = &comparison.gates;
    let checked: Vec<(&GateResult, &GateRun)> = gates
        .iter()
        .flat_map(|gate| gate.runs.iter().map(move |run| (gate, run)))
        .collect();
    let failed = checked.iter().filter(|(_, run)| !run.passed).count();
    if !checked.is_empty() {
        let _ = writeln!(
            out,
            "Comparison thresholds: {}",
            if failed == 0 {
                "all passed".to_string()
            } else {
                format!("{failed} of {} failed", checked.len())
            }
        );
        for (gate, run) in checked {
            let _ = writeln!(
                out,
                "  {} {}: {}",
                if run.passed { "pass" } else { "FAIL" },
                gate.expression,
                match run.value.change {
                    Some(change) => format!(
                        "{} in run {}",
                        gate.measured.show_change(Some(change)),
                        run.run
                    ),
                    None => format!("nothing to compare in run {}", run.run),
                }
            );
        }
    }
    out
}

/// Results that cannot answer "what changed" are refused in one sentence.
fn refuse_incomparable(base: &Report, new: &Report) -> Result<(), Failure> {
    let name = |r: &Report| {
        Path::new(&r.plugin)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| r.plugin.clone())
    };
    if name(base) != name(new) {
        return Err(Failure::usage(format!(
            "the two results come from different plugins ({} and {}): their figures measure \
             different operations",
            name(base),
            name(new)
        )));
    }
    if base.runs.len() != new.runs.len() {
        return Err(Failure::usage(format!(
            "the two results have {} and {} runs: compare suites of the same runs",
            base.runs.len(),
            new.runs.len()
        )));
    }
    Ok(())
}

/// One sentence when the two suites ran differently, or nothing.
fn shape_note(base: &Report, new: &Report) -> Option<String> {
    let shape = |r: &Report| {
        let runs: Vec<String> = r
            .runs
            .iter()
            .map(|run| format!("{}×{}", run.processes, run.threads))
            .collect();
        format!(
            "{} ({}{})",
            runs.join(", "),
            r.load.model,
            r.load
                .rate_per_sec
                .map(|rate| format!(" at {rate}/s"))
                .unwrap_or_default()
        )
    };
    let (b, n) = (shape(base), shape(new));
    let params_differ = base.params != new.params;
    match (b != n, params_differ) {
        (false, false) => None,
        (true, _) => Some(format!(
            "the runs were shaped differently (base {b}, new {n}), so part of any change is the \
             shape's"
        )),
        (false, true) => Some(
            "the plugin's parameters differ between the two results, so part of any change is \
             theirs"
                .to_string(),
        ),
    }
}

/// Each gate against each run pair; a gate holds when it holds in every
/// run.
fn check(gates: &[Gate], base: &Report, new: &Report) -> Vec<GateResult> {
    gates
        .iter()
        .map(|gate| {
            let wanted = gate.scope.as_deref().unwrap_or("all");
            let find = |run: &RunReport| -> Option<f64> {
                groups(run)
                    .iter()
                    .find(|g| g.name == wanted)
                    .map(|g| gate.metric.value(g))
            };
            let runs: Vec<GateRun> = base
                .runs
                .iter()
                .zip(&new.runs)
                .map(|(b, n)| {
                    let value = document::Change::of(gate.metric, find(b), find(n));
                    let passed = match value.change {
                        Some(c) if gate.below => c < gate.limit,
                        Some(c) => c > gate.limit,
                        None => false,
                    };
                    GateRun {
                        run: b.index,
                        value,
                        passed,
                    }
                })
                .collect();
            GateResult {
                expression: gate.text.clone(),
                scope: wanted.to_string(),
                metric: gate.metric.key(),
                bound: if gate.below {
                    Bound::Below
                } else {
                    Bound::Above
                },
                limit: gate.limit,
                unit: gate.metric.change_unit(),
                passed: runs.iter().all(|run| run.passed),
                runs,
                measured: gate.metric,
            }
        })
        .collect()
}

/// One row per group and figure: base, new, change.
fn change_table(base: &RunReport, new: &RunReport, width: usize) -> String {
    let base_groups = groups(base);
    let new_groups = groups(new);
    let mut rows = Vec::new();
    for group in &new_groups {
        let before = base_groups.iter().find(|g| g.name == group.name);
        for (i, metric) in TABLE_METRICS.iter().enumerate() {
            let now = metric.value(group);
            let (shown_base, change) = match before {
                Some(b) => {
                    let value = metric.value(b);
                    (metric.show(value), metric.change(value, now))
                }
                None => ("-".to_string(), None),
            };
            rows.push(vec![
                if i == 0 {
                    group.name.clone()
                } else {
                    String::new()
                },
                metric.name().to_string(),
                shown_base,
                metric.show(now),
                metric.show_change(change),
            ]);
        }
    }
    for gone in base_groups
        .iter()
        .filter(|b| !new_groups.iter().any(|g| g.name == b.name))
    {
        rows.push(vec![
            gone.name.clone(),
            "count".to_string(),
            gone.summary.count.to_string(),
            "0".to_string(),
            "gone".to_string(),
        ]);
    }
    fitted(
        &["calls", "figure", "base", "new", "change"],
        &rows,
        width,
        &[],
    )
    .to_string()
}

/// For each run, the spectra of base (dashed) and new (solid), one colour
/// per label.
fn spectra(base: &Report, new: &Report) -> Result<Vec<Chart>, Failure> {
    let colors = Colors::of_names(
        new.runs
            .iter()
            .chain(&base.runs)
            .flat_map(|run| groups(run).into_iter().map(|g| g.name)),
    );
    let mut charts = Vec::new();
    for (b, n) in base.runs.iter().zip(&new.runs) {
        let (decades, x_max) = spectrum_extent(b.all.count.max(n.all.count));
        let mut lines = Vec::new();
        for (run, which, mark) in [(b, "base", Mark::Dashed), (n, "new", Mark::Line)] {
            for group in groups(run) {
                let Some(encoded) = group.histogram else {
                    continue;
                };
                let histogram = histogram_map::decode(encoded).map_err(|e| {
                    Failure::usage(format!(
                        "the histogram of {:?} is unreadable: {e}",
                        group.name
                    ))
                })?;
                if histogram.is_empty() {
                    continue;
                }
                lines.push(Spectrum::of(
                    format!("{} ({which})", group.name),
                    colors.get(&group.name),
                    mark,
                    &histogram,
                    x_max,
                ));
            }
        }
        let title = format!(
            "Latency by percentile, run {}: base dashed, new solid",
            b.index
        );
        let svg = spectrum_svg(&title, &lines, decades, x_max).map_err(Failure::usage)?;
        charts.push(Chart {
            run: Some(b.index),
            file_name: format!("compare-spectrum-run{}.svg", b.index),
            title,
            svg,
        });
    }
    Ok(charts)
}

/// The comparison as one self-contained page: the text and the spectra.
fn page(base_path: &Path, new_path: &Path, text: &str, charts: &[Chart]) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Gorgon comparison" }
                style { (PreEscaped(STYLE)) }
            }
            body { main {
                h1 { "Gorgon comparison" }
                p { "Base " code { (Text(&base_path.display().to_string())) }
                    ", new " code { (Text(&new_path.display().to_string())) } }
                // Line by line: a label's control characters are escaped,
                // the table's own line breaks are kept.
                pre.compare { @for line in text.lines() { (Text(line)) "\n" } }
                div.charts { @for chart in charts { (figure(chart)) } }
            } }
        }
    }
    .into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_gates_parse_and_refuse() {
        let gate: Gate = "p99<+10%".parse().unwrap();
        assert_eq!(
            (gate.metric, gate.below, gate.limit),
            (Metric::Percentile(Percentile::P99), true, 10.0)
        );
        let gate: Gate = "ops_per_sec>-5%".parse().unwrap();
        assert_eq!((gate.below, gate.limit), (false, -5.0));
        let gate: Gate = "GET /a:p50<+0%".parse().unwrap();
        assert_eq!(gate.scope.as_deref(), Some("GET /a"));
        for bad in ["p99<10%", "p99<+10", "nope<+1%", "p99", ":p99<+1%"] {
            assert!(bad.parse::<Gate>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn changes_are_relative_except_the_error_rate() {
        let p99 = Metric::Percentile(Percentile::P99);
        assert_eq!(p99.change(100.0, 110.0), Some(10.0));
        assert_eq!(p99.change(0.0, 5.0), None);
        assert_eq!(Metric::ErrorRate.change(0.0, 0.01), Some(1.0));
    }
}
