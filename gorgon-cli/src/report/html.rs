//! One self-contained HTML page: the summary tables and the SVG charts
//! inline, the style in the page. It loads nothing (no script, no font, no
//! stylesheet from elsewhere), so it opens offline and can be attached to a
//! CI run or mailed as it is.
//!
//! maud writes the markup and escapes every text from the report.

use std::fmt::Write as _;

use maud::{html, Markup, PreEscaped, Render, DOCTYPE};

use super::model::{NamedSummary, Report, RunReport};
use super::svg::Chart;
use crate::stats::Summary;
use crate::units::{duration, rate, thousands};

const STYLE: &str = r#"
:root { color-scheme: light; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa; --accent: #4e79a7; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--ink);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 32px 48px; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 36px 0 8px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 20px 0 8px; color: var(--muted); }
.status { display: inline-block; padding: 2px 10px; border-radius: 12px; font-size: 13px; font-weight: 600; vertical-align: middle; margin-left: 8px; }
.status.ok { background: #dafbe1; color: #116329; }
.status.partial { background: #fff1c2; color: #7d4e00; }
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
                    h1 {
                        "Gorgon report"
                        (status(report))
                    }
                    (meta(report))
                    @if report.runs.len() > 1 {
                        h2 { "Comparison of runs" }
                        (comparison(&report.runs))
                    }
                    @if !suite_charts.is_empty() {
                        h2 { @if report.runs.len() > 1 { "Charts of the suite" } @else { "Charts" } }
                        div.charts { @for chart in &suite_charts { (figure(chart)) } }
                    }
                    @for run in &report.runs {
                        (run_section(run, &report.load.fibers_text(), charts))
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
struct Text<'a>(&'a str);

impl Render for Text<'_> {
    fn render_to(&self, buffer: &mut String) {
        let mut escaped = String::new();
        let _ = maud::Escaper::new(&mut escaped).write_str(self.0);
        buffer.push_str(&escaped.replace("://", ":&#47;&#47;"));
    }
}

fn plugin_name(report: &Report) -> String {
    std::path::Path::new(&report.plugin)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| report.plugin.clone())
}

fn status(report: &Report) -> Markup {
    let failed = report.runs.iter().any(|r| !r.failures.is_empty());
    let (class, text) = if report.in_progress {
        ("partial", "snapshot of a run in progress")
    } else if report.interrupted {
        ("partial", "interrupted: partial results")
    } else if failed {
        ("partial", "a worker failed: partial results")
    } else {
        ("ok", "complete")
    };
    html! { span class={"status " (class)} { (text) } }
}

fn meta(report: &Report) -> Markup {
    html! {
        dl.meta {
            dt { "Plugin" } dd { code { (Text(&report.plugin)) } }
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

fn run_section(run: &RunReport, fibers: &str, charts: &[Chart]) -> Markup {
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
            }
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
            div.charts {
                @for chart in charts.iter().filter(|c| c.run == Some(run.index)) {
                    (figure(chart))
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
fn figure(chart: &Chart) -> Markup {
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
