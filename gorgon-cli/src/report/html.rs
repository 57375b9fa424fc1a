//! One self-contained HTML page: the summary tables and the SVG charts
//! inline, the style in the page. It loads nothing (no script, no font, no
//! stylesheet from elsewhere), so it opens offline and can be attached to a
//! CI run or mailed as it is.
//!
//! maud writes the markup and escapes every text from the report.

use std::fmt::Write as _;

use maud::{html, Markup, PreEscaped, Render, DOCTYPE};

use super::load_model::{rate_per_sec, short_duration, OpenModel};
use super::model::{NamedSummary, Report, RunReport};
use super::shape_table::{shown, COORDINATED_OMISSION};
use super::svg::Chart;
use super::table::share;
use super::text::{compact as duration, escape_control};
use super::verdict::Status;
use crate::stats::Summary;
use crate::units::{rate, thousands};

pub(super) const STYLE: &str = r#"
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --accent: #4e79a7; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--ink);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 32px 48px; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 36px 0 8px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 20px 0 8px; color: var(--muted); }
.verdict { margin: 14px 0 18px; padding: 12px 18px; border-radius: 8px; border-left: 8px solid; }
.verdict strong { font-size: 22px; letter-spacing: .02em; }
.verdict .exit { color: var(--muted); margin-left: 10px; }
.verdict ul { margin: 6px 0 0; padding-left: 20px; }
.verdict p { margin: 4px 0 0; }
.verdict.passed { background: #dafbe1; border-color: #1a7f37; color: #0f3d1b; }
.verdict.thresholds_failed, .verdict.run_failed { background: #ffebe9; border-color: #cf222e; color: #5c0a10; }
.verdict.interrupted, .verdict.in_progress { background: #fff1c2; border-color: #bf8700; color: #4d3000; }
td.pass { color: #1a7f37; font-weight: 600; text-align: left; }
td.fail { color: #cf222e; font-weight: 600; text-align: left; }
.open { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; margin: 8px 0 14px; background: var(--soft); }
.open h3 { margin: 0 0 6px; color: var(--ink); }
.open p { margin: 6px 0; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 12px 0 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; overflow-wrap: anywhere; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--soft); padding: 1px 5px; border-radius: 4px; }
p.run { margin: 0 0 10px; color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { background: var(--soft); font-weight: 600; font-size: 13px; color: var(--muted); }
th:first-child, td:first-child { text-align: left; white-space: normal; overflow-wrap: anywhere; }
tr.all td { font-weight: 600; }
tr.measurement td:first-child::after { content: " (measurement)"; color: var(--muted); font-weight: normal; font-size: 13px; }
ul.notes { margin: 4px 0 12px; padding-left: 20px; }
ul.notes li { color: #7d4e00; }
.charts { display: grid; grid-template-columns: 1fr; gap: 18px; margin-top: 12px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 8px; background: #fff; }
figure svg { display: block; width: 100%; height: auto; }
pre.compare { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--soft); padding: 12px; border-radius: 8px; overflow-x: auto; }
footer { margin-top: 40px; color: var(--muted); font-size: 13px; }
@media print { main { padding: 0; } figure { break-inside: avoid; } }
"#;

/// The page for `report` with its `charts` (from [`super::svg::render`]).
pub fn render(report: &Report, charts: &[Chart]) -> String {
    let suite_charts: Vec<&Chart> = charts.iter().filter(|c| c.run.is_none()).collect();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Gorgon report · " (Text(&plugin_name(report))) " · " (report.started_at) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                main {
                    h1 { "Gorgon report" }
                    (verdict(report))
                    (meta(report))
                    (thresholds(report))
                    @if report.runs.len() > 1 {
                        h2 { "Comparison of runs" }
                        (comparison(&report.runs))
                    }
                    @if !suite_charts.is_empty() {
                        h2 { @if report.runs.len() > 1 { "Charts of the suite" } @else { "Charts" } }
                        div.charts { @for chart in &suite_charts { (figure(chart)) } }
                    }
                    @for run in &report.runs {
                        (run_section(run, report, charts))
                    }
                    footer {
                        "Written by gorgon " (report.gorgon_version)
                        ". This page is self-contained: it loads nothing and opens offline."
                    }
                }
            }
        }
    };
    page.into_string()
}

/// Text from the report (a label, a path, a parameter). Escaped by maud's
/// rules, and with `://` written as character references so that not even
/// a URL given as a parameter appears in the page's source: a plain check
/// for "http://" then proves the page loads nothing.
pub(super) struct Text<'a>(pub(super) &'a str);

impl Render for Text<'_> {
    fn render_to(&self, buffer: &mut String) {
        let mut escaped = String::new();
        let _ = maud::Escaper::new(&mut escaped).write_str(&escape_control(self.0));
        buffer.push_str(&escaped.replace("://", ":&#47;&#47;"));
    }
}

fn plugin_name(report: &Report) -> String {
    std::path::Path::new(&report.plugin)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| report.plugin.clone())
}

/// The verdict, first on the page, in the words and colour of its
/// status, with its reasons and the errors of the whole suite.
fn verdict(report: &Report) -> Markup {
    let verdict = report.verdict();
    let class = serde_json::to_value(verdict.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let calls: u64 = report.runs.iter().map(|r| r.operations).sum();
    let errors: u64 = report.runs.iter().map(|r| r.errors).sum();
    html! {
        div id="verdict" class={"verdict " (class)} {
            strong.headline { (verdict.status.headline()) }
            @if verdict.status != Status::InProgress {
                span.exit { "exit code " (verdict.exit_code) }
            }
            @if !verdict.reasons.is_empty() {
                ul { @for reason in &verdict.reasons { li { (Text(reason)) } } }
            }
            p.errors {
                (thousands(calls)) " calls, " (thousands(errors)) " errors ("
                (format!("{:.2}%", errors as f64 * 100.0 / calls.max(1) as f64)) "). "
                (Text(&errors_counted(report)))
            }
        }
    }
}

/// What counts as an error, in a sentence.
fn errors_counted(report: &Report) -> String {
    match &report.load.ok {
        Some(ok) => format!("Errors are calls labelled other than {}.", ok.join(", ")),
        None => "Errors are panics and calls the plugin said failed.".to_string(),
    }
}

/// Each threshold with its measured value and pass or fail, per run.
fn thresholds(report: &Report) -> Markup {
    let suite = report.runs.len() > 1;
    html! {
        @if !report.thresholds.is_empty() {
            h2 { "Thresholds" }
            table.thresholds {
                thead { tr {
                    th { "threshold" } @if suite { th { "run" } } th { "measured" } th { "result" }
                } }
                tbody {
                    @for threshold in &report.thresholds {
                        @for run in &threshold.runs {
                            tr {
                                td { code { (Text(&threshold.expression)) } }
                                @if suite { td { (run.run) } }
                                td { (shown(&threshold.unit, run)) }
                                @if run.passed {
                                    td.pass { "pass" }
                                } @else {
                                    td.fail {
                                        "FAIL"
                                        @if let Some(note) = &run.note { " (" (Text(note)) ")" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn meta(report: &Report) -> Markup {
    html! {
        dl.meta {
            @if let Some(command) = &report.command_line {
                dt { "Command" } dd { code.command { (Text(command)) } }
            }
            dt { "Plugin" } dd { code { (Text(&report.plugin)) } }
            dt { "Load" } dd { (load_text(report)) }
            dt { "Started" } dd { (report.started_at) }
            dt { "Total time" } dd { (duration(report.total_elapsed_ns)) }
            @if !report.params.is_empty() {
                dt { "Parameters" }
                dd {
                    @for (i, (key, value)) in report.params.iter().enumerate() {
                        @if i > 0 { " " }
                        code { (Text(key)) "=" (Text(value)) }
                    }
                }
            }
            dt { "Runs" } dd { (report.runs.len()) }
        }
    }
}

/// `closed model` or `open model at 200/s`, with the duration.
fn load_text(report: &Report) -> String {
    let load = &report.load;
    let mut text = match load.rate_per_sec {
        Some(rate) => format!("open model at {}", rate_per_sec(rate)),
        None => "closed model".to_string(),
    };
    if let Some(ns) = load.duration_ns {
        text.push_str(&format!(", {} per run", short_duration(ns)));
    }
    text
}

fn comparison(runs: &[RunReport]) -> Markup {
    html! {
        table {
            thead { tr {
                th { "run" } th { "processes × threads" } th { "operations" } th { "elapsed" }
                th { "ops/s" } th { "avg" } th { "p50" } th { "p99" } th { "max" }
            } }
            tbody {
                @for run in runs {
                    tr {
                        td { (run.index) @if !run.complete { " (partial)" } }
                        td { (run.processes) " × " (run.threads) }
                        td { (thousands(run.operations)) }
                        td { (duration(run.elapsed_ns)) }
                        td { (rate(run.all.ops_per_sec)) }
                        td { (duration(run.all.avg_ns)) }
                        td { (duration(run.all.p50_ns)) }
                        td { (duration(run.all.p99_ns)) }
                        td { (duration(run.all.max_ns)) }
                    }
                }
            }
        }
    }
}

fn run_section(run: &RunReport, report: &Report, charts: &[Chart]) -> Markup {
    let fibers = report.load.fibers_text();
    let plural = |n: u32, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    html! {
        section id={"run-" (run.index)} {
            h2 {
                "Run " (run.index) ": "
                (plural(run.processes, "process", "processes")) " × "
                (plural(run.threads, "thread", "threads")) (fibers)
            }
            p.run {
                (thousands(run.operations)) " operations"
                @if let Some(planned) = run.operations_planned {
                    " of " (thousands(planned)) " planned"
                }
                " in " (duration(run.elapsed_ns))
                @if !run.complete { " (partial)" }
                " · workers: " (run.workers.len())
                " · errors: " (thousands(run.errors)) " (" (format!("{:.2}%", run.error_rate * 100.0)) ")"
            }
            @if let Some(open) = &run.open_model { (open_model(run, open)) }
            table {
                thead { tr {
                    th { "calls" } th { "count" } th { "ops/s" } th { "avg" } th { "min" }
                    th { "p50" } th { "p90" } th { "p95" } th { "p99" } th { "p99.9" } th { "max" }
                } }
                tbody {
                    (summary_row("all", "all", &run.all))
                    @for result in &run.results { (named_row("result", result)) }
                    @for measurement in &run.measurements { (named_row("measurement", measurement)) }
                }
            }
            @if !run.panics.is_empty() || !run.failures.is_empty() {
                ul.notes {
                    @for panic in &run.panics {
                        li { "panic ×" (thousands(panic.count)) ": " (Text(&panic.message)) }
                    }
                    @for failure in &run.failures {
                        li { "failed: " (Text(failure)) }
                    }
                }
            }
            @if !run.nodes.is_empty() { (nodes(run)) }
            div.charts {
                @for chart in charts.iter().filter(|c| c.run == Some(run.index)) {
                    (figure(chart))
                }
            }
        }
    }
}

/// The open model's figures: the rate asked and held, the starts that
/// were late or dropped, and the two latencies side by side.
fn open_model(run: &RunReport, open: &OpenModel) -> Markup {
    let rows = [
        ("p50", run.all.p50_ns, open.service.p50_ns),
        ("p90", run.all.p90_ns, open.service.p90_ns),
        ("p99", run.all.p99_ns, open.service.p99_ns),
        ("p99.9", run.all.p999_ns, open.service.p999_ns),
        ("max", run.all.max_ns, open.service.max_ns),
    ];
    html! {
        div.open id={"open-model-" (run.index)} {
            h3 { "Open model" }
            dl.meta {
                dt { "Target rate" } dd.target { (rate_per_sec(open.target_per_sec)) }
                dt { "Achieved rate" } dd.achieved { (rate_per_sec(open.achieved_per_sec)) }
                dt { "Late starts" } dd.late {
                    (thousands(open.late)) " (more than " (short_duration(open.late_after_ns)) " after they were due)"
                }
                dt { "Dropped starts" } dd.dropped { (thousands(open.dropped)) }
            }
            @if let Some(warning) = &open.warning { ul.notes { li { (Text(warning)) } } }
            table.latencies {
                thead { tr {
                    th { "all calls" } th { "latency from the intended start" } th { "service time" }
                } }
                tbody {
                    @for (name, corrected, service) in rows {
                        tr { td { (name) } td { (duration(corrected)) } td { (duration(service)) } }
                    }
                }
            }
            p { "The run's tables and charts show the latency from the intended start: "
                (COORDINATED_OMISSION) }
        }
    }
}

/// A cluster run's nodes and their share of the calls.
fn nodes(run: &RunReport) -> Markup {
    html! {
        h3 { "Nodes" }
        table.nodes {
            thead { tr {
                th { "node" } th { "workers" } th { "calls" } th { "share" } th { "ops/s" }
                th { "p99" } th { "status" }
            } }
            tbody {
                @for node in &run.nodes {
                    tr {
                        td { (Text(&node.name)) }
                        td { (node.workers.len()) }
                        td { (thousands(node.operations)) }
                        td { (share(node.operations, run.operations)) }
                        td { (rate(node.all.ops_per_sec)) }
                        td { (duration(node.all.p99_ns)) }
                        td { @if node.complete { "ok" } @else if node.failures.is_empty() { "stopped" } @else { "failed" } }
                    }
                }
            }
        }
    }
}

fn named_row(class: &str, named: &NamedSummary) -> Markup {
    summary_row(class, &named.name, &named.summary)
}

fn summary_row(class: &str, name: &str, s: &Summary) -> Markup {
    html! {
        tr class=(class) {
            td { (Text(name)) }
            td { (thousands(s.count)) }
            td { (rate(s.ops_per_sec)) }
            td { (duration(s.avg_ns)) }
            td { (duration(s.min_ns)) }
            td { (duration(s.p50_ns)) }
            td { (duration(s.p90_ns)) }
            td { (duration(s.p95_ns)) }
            td { (duration(s.p99_ns)) }
            td { (duration(s.p999_ns)) }
            td { (duration(s.max_ns)) }
        }
    }
}

/// A chart inline. Inside HTML an `<svg>` needs no namespace declaration,
/// and leaving it out keeps the page free of any URL.
pub(super) fn figure(chart: &Chart) -> Markup {
    let svg = chart
        .svg
        .replacen(r#" xmlns="http://www.w3.org/2000/svg""#, "", 1)
        .replace("://", ":&#47;&#47;");
    let svg = match svg.find("<svg") {
        // Drop an XML declaration, if any: it is not HTML.
        Some(start) => svg[start..].to_string(),
        None => svg,
    };
    html! {
        figure role="img" aria-label=(chart.title) {
            (PreEscaped(svg))
        }
    }
}
