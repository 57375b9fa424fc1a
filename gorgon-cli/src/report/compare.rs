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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use maud::{html, PreEscaped, DOCTYPE};

use super::html::{figure, Text, STYLE};
use super::model::{NamedSummary, Report, RunReport};
use super::output::check_dir;
use super::svg::{spectrum_extent, spectrum_svg, Chart, Colors, Mark, Spectrum};
use super::table::fitted;
use super::text::{compact, table_width};
use crate::exit::{self, Code, Failure};
use crate::stats::{histogram_map, Summary};
use crate::units::rate;

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
        let unit = if self == Metric::ErrorRate {
            " pts"
        } else {
            "%"
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

/// One group of calls of a run, as compared: all calls, a label or a
/// measurement.
struct Group<'a> {
    name: String,
    summary: &'a Summary,
    error_rate: f64,
    histogram: Option<&'a str>,
}

fn label(named: &NamedSummary, name: String) -> Group<'_> {
    Group {
        name,
        summary: &named.summary,
        error_rate: named.failed as f64 / named.summary.count.max(1) as f64,
        histogram: Some(&named.histogram),
    }
}

fn groups(run: &RunReport) -> Vec<Group<'_>> {
    let mut out = vec![Group {
        name: "all".to_string(),
        summary: &run.all,
        error_rate: run.error_rate,
        histogram: None,
    }];
    out.extend(run.results.iter().map(|r| label(r, r.name.clone())));
    out.extend(
        run.measurements
            .iter()
            .map(|m| label(m, format!("{}<", m.name))),
    );
    out
}

/// A gate checked against one run pair.
struct Checked {
    gate: String,
    metric: Metric,
    run: usize,
    change: Option<f64>,
    passed: bool,
}

/// `gorgon compare`: shows the changes, writes the charts and page asked
/// for, and exits 1 when a gate fails.
pub fn execute(
    base_path: &Path,
    new_path: &Path,
    gates: &[Gate],
    svg: Option<&Path>,
    html_file: Option<&PathBuf>,
) -> Result<Code, Failure> {
    let base = super::json::read(base_path).map_err(Failure::usage)?;
    let new = super::json::read(new_path).map_err(Failure::usage)?;
    refuse_incomparable(&base, &new)?;
    if let Some(dir) = svg {
        check_dir(dir).map_err(Failure::usage)?;
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Comparing {} (base) with {} (new)",
        base_path.display(),
        new_path.display()
    );
    if let Some(note) = shape_note(&base, &new) {
        let _ = writeln!(out, "Note: {note}");
    }
    let checked = check(gates, &base, &new);
    let width = table_width();
    for (b, n) in base.runs.iter().zip(&new.runs) {
        if base.runs.len() > 1 {
            let _ = writeln!(out, "\nRun {}", b.index);
        }
        let _ = writeln!(out, "{}", change_table(b, n, width));
    }
    let failed: Vec<&Checked> = checked.iter().filter(|c| !c.passed).collect();
    if !checked.is_empty() {
        let _ = writeln!(
            out,
            "Comparison thresholds: {}",
            if failed.is_empty() {
                "all passed".to_string()
            } else {
                format!("{} of {} failed", failed.len(), checked.len())
            }
        );
        for c in &checked {
            let _ = writeln!(
                out,
                "  {} {}: {}",
                if c.passed { "pass" } else { "FAIL" },
                c.gate,
                match c.change {
                    Some(change) =>
                        format!("{} in run {}", c.metric.show_change(Some(change)), c.run),
                    None => format!("nothing to compare in run {}", c.run),
                }
            );
        }
    }
    say!("{}", out.trim_end());
    let charts = spectra(&base, &new)?;
    if let Some(dir) = svg {
        for chart in &charts {
            let path = dir.join(&chart.file_name);
            std::fs::write(&path, &chart.svg).map_err(|e| {
                Failure::Run(anyhow::anyhow!("cannot write {}: {e}", path.display()))
            })?;
        }
    }
    if let Some(file) = html_file {
        let page = page(base_path, new_path, &out, &charts);
        std::fs::write(file, page)
            .map_err(|e| Failure::Run(anyhow::anyhow!("cannot write {}: {e}", file.display())))?;
    }
    let mut told: Vec<&str> = failed.iter().map(|c| c.gate.as_str()).collect();
    told.dedup();
    for gate in told {
        eprintln!("gorgon: comparison threshold failed: {gate}");
    }
    Ok(Code(if failed.is_empty() {
        exit::OK
    } else {
        exit::THRESHOLD_FAILED
    }))
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

fn check(gates: &[Gate], base: &Report, new: &Report) -> Vec<Checked> {
    let mut checked = Vec::new();
    for gate in gates {
        for (b, n) in base.runs.iter().zip(&new.runs) {
            let find = |run: &RunReport| -> Option<f64> {
                let wanted = gate.scope.as_deref().unwrap_or("all");
                groups(run)
                    .iter()
                    .find(|g| g.name == wanted)
                    .map(|g| gate.metric.value(g))
            };
            let change = match (find(b), find(n)) {
                (Some(bv), Some(nv)) => gate.metric.change(bv, nv),
                _ => None,
            };
            let passed = match change {
                Some(c) if gate.below => c < gate.limit,
                Some(c) => c > gate.limit,
                None => false,
            };
            checked.push(Checked {
                gate: gate.text.clone(),
                metric: gate.metric,
                run: b.index,
                change,
                passed,
            });
        }
    }
    checked
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
