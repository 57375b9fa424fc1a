//! The default report: tables on stdout in the spirit of the original
//! Gorgon's `small_report`, one section per run and a comparison of runs.

use std::fmt::Write as _;

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};

use super::model::{slow_phases, NamedSummary, Report, RunReport};
use super::shape_table;
use crate::stats::Summary;
use crate::units::{duration, rate, thousands};

pub(super) const HEADER: [&str; 9] = [
    "", "count", "ops/s", "avg", "p50", "p90", "p99", "max", "min",
];

/// Renders the whole report as text.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let state = if report.in_progress {
        " (a snapshot taken while the run was going on)"
    } else if report.interrupted {
        " (interrupted: the calls made until then)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "Total time: {}{state}",
        duration(report.total_elapsed_ns)
    );
    for skipped in &report.skipped_nodes {
        let _ = writeln!(out, "Skipped: {skipped}");
    }
    for run in &report.runs {
        out.push('\n');
        render_run(&mut out, run, report);
    }
    if report.runs.len() > 1 {
        out.push('\n');
        render_comparison(&mut out, &report.runs);
    }
    shape_table::thresholds(&mut out, report);
    out
}

pub(super) fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    // A fixed layout: with dynamic arrangement, a terminal that reports zero
    // columns (CI) collapses every column to one character.
    table
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    for index in 1..header.len() {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

fn render_run(out: &mut String, run: &RunReport, report: &Report) {
    let runs = report.runs.len();
    let plural = |n: u32, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "es" });
    let processes = plural(run.processes, "process");
    let threads = format!(
        "{} thread{}",
        run.threads,
        if run.threads == 1 { "" } else { "s" }
    );
    let of = if runs > 1 {
        format!(" of {runs}")
    } else {
        String::new()
    };
    let nodes = match run.nodes.len() {
        0 => String::new(),
        1 => "1 node × ".to_string(),
        n => format!("{n} nodes × "),
    };
    let _ = writeln!(
        out,
        "Run {}{of}: {nodes}{processes} × {threads}{}, {} operations in {}{}",
        run.index,
        report.load.fibers_text(),
        thousands(run.operations),
        duration(run.elapsed_ns),
        match (run.complete, run.failures.is_empty()) {
            (true, _) => "",
            (false, true) if report.interrupted => " (interrupted)",
            (false, true) if report.in_progress => " (in progress)",
            (false, _) => " (incomplete)",
        },
    );
    shape_table::run_notes(out, run, report.load.ok.as_deref());
    let mut table = new_table(&HEADER);
    table.add_row(summary_row("all", &run.all));
    for result in &run.results {
        table.add_row(named_row(result, ""));
    }
    for measurement in &run.measurements {
        table.add_row(named_row(measurement, "<"));
    }
    let _ = writeln!(out, "{table}");
    shape_table::service_table(out, run);
    render_nodes(out, run);
    for panic in &run.panics {
        let _ = writeln!(
            out,
            "  panic ×{}: {}",
            thousands(panic.count),
            panic.message
        );
    }
    for failure in &run.failures {
        let _ = writeln!(out, "  failed: {failure}");
    }
}

/// A cluster run's per-node figures: which nodes took part and how each
/// fared.
fn render_nodes(out: &mut String, run: &RunReport) {
    if run.nodes.is_empty() {
        return;
    }
    let names: Vec<&str> = run.nodes.iter().map(|n| n.name.as_str()).collect();
    let _ = writeln!(out, "Nodes: {}", names.join(", "));
    let mut table = new_table(&[
        "node", "workers", "count", "ops/s", "avg", "p99", "max", "status",
    ]);
    for node in &run.nodes {
        table.add_row(vec![
            node.name.clone(),
            node.workers.len().to_string(),
            thousands(node.operations),
            rate(node.all.ops_per_sec),
            duration(node.all.avg_ns),
            duration(node.all.p99_ns),
            duration(node.all.max_ns),
            if node.complete {
                "ok".to_string()
            } else if node.failures.is_empty() {
                "stopped".to_string()
            } else {
                "failed".to_string()
            },
        ]);
    }
    let _ = writeln!(out, "{table}");
    let slow: Vec<String> = slow_phases(&run.nodes)
        .iter()
        .map(|s| {
            let (slowest, median) = (duration(s.slowest_ns), duration(s.median_ns));
            format!("{} {} {slowest} (median {median})", s.phase, s.node)
        })
        .collect();
    if !slow.is_empty() {
        let _ = writeln!(out, "Slowest: {}", slow.join(", "));
    }
}

pub(super) fn named_row(named: &NamedSummary, mark: &str) -> Vec<String> {
    summary_row(&format!("{}{mark}", named.name), &named.summary)
}

pub(super) fn summary_row(name: &str, s: &Summary) -> Vec<String> {
    vec![
        name.to_string(),
        thousands(s.count),
        rate(s.ops_per_sec),
        duration(s.avg_ns),
        duration(s.p50_ns),
        duration(s.p90_ns),
        duration(s.p99_ns),
        duration(s.max_ns),
        duration(s.min_ns),
    ]
}

fn render_comparison(out: &mut String, runs: &[RunReport]) {
    let _ = writeln!(out, "Comparison of runs");
    let mut table = new_table(&[
        "run",
        "p × t",
        "operations",
        "elapsed",
        "ops/s",
        "avg",
        "p99",
    ]);
    for run in runs {
        table.add_row(vec![
            run.index.to_string(),
            format!("{} × {}", run.processes, run.threads),
            thousands(run.operations),
            duration(run.elapsed_ns),
            rate(run.all.ops_per_sec),
            duration(run.all.avg_ns),
            duration(run.all.p99_ns),
        ]);
    }
    let _ = writeln!(out, "{table}");
}
