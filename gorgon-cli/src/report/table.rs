//! The default report: tables on stdout in the spirit of the original
//! Gorgon's `small_report`, one section per run and a comparison of runs.

use std::fmt::Write as _;

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};

use super::model::{slow_phases, NamedSummary, Report, RunReport};
use super::shape_table;
use super::text::{compact as duration, escape_control, shorten, table_width, widest_line};
use super::verdict::Status;
use crate::stats::Summary;
use crate::units::{rate, thousands};

pub(super) const HEADER: [&str; 9] = [
    "", "count", "ops/s", "avg", "p50", "p90", "p99", "max", "min",
];

/// Renders the whole report as text, fitted to the terminal (or 80
/// columns when stdout is not one).
pub fn render(report: &Report) -> String {
    render_width(report, table_width())
}

/// Renders the whole report as text with tables at most `width` wide
/// (as far as a label shortened to a few characters allows).
pub fn render_width(report: &Report, width: usize) -> String {
    let mut out = String::new();
    verdict(&mut out, report);
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
        render_run(&mut out, run, report, width);
    }
    if report.runs.len() > 1 {
        out.push('\n');
        render_comparison(&mut out, &report.runs, width);
    }
    shape_table::thresholds(&mut out, report, width);
    out
}

/// The first lines: the verdict, matching the exit code, with its
/// reasons, and the command that ran the suite.
fn verdict(out: &mut String, report: &Report) {
    let verdict = report.verdict();
    let calls: u64 = report.runs.iter().map(|r| r.operations).sum();
    let errors: u64 = report.runs.iter().map(|r| r.errors).sum();
    let exit = match verdict.status {
        Status::InProgress => String::new(),
        _ => format!(" (exit {})", verdict.exit_code),
    };
    let _ = writeln!(
        out,
        "{}{exit}: {} calls, {} errors ({:.2}%)",
        verdict.status.headline(),
        thousands(calls),
        thousands(errors),
        errors as f64 * 100.0 / calls.max(1) as f64
    );
    for reason in &verdict.reasons {
        let _ = writeln!(out, "  {}", escape_control(reason));
    }
    if let Some(command) = &report.command_line {
        let _ = writeln!(out, "Command: {}", escape_control(command));
    }
}

/// The columns of a latency table dropped, in this order, when it is too
/// wide: `min`, then `avg` (the HTML, CSV and JSON keep both).
pub(super) const OPTIONAL: [usize; 2] = [8, 3];

/// A table of `rows` under `header` that fits in `width` if it can: the
/// `optional` columns go first, in their order, then the first column's
/// labels are shortened with an ellipsis, to no fewer than 8 characters.
pub(super) fn fitted(
    header: &[&str],
    rows: &[Vec<String>],
    width: usize,
    optional: &[usize],
) -> Table {
    let build = |dropped: &[usize], label_width: usize| {
        let keep = |i: &usize| !dropped.contains(i);
        let columns: Vec<usize> = (0..header.len()).filter(keep).collect();
        let names: Vec<&str> = columns.iter().map(|&i| header[i]).collect();
        let mut table = new_table(&names);
        for row in rows {
            let mut cells: Vec<String> = columns.iter().map(|&i| row[i].clone()).collect();
            cells[0] = shorten(&escape_control(&cells[0]), label_width).into_owned();
            table.add_row(cells);
        }
        table
    };
    let longest = rows
        .iter()
        .map(|row| escape_control(&row[0]).chars().count())
        .max()
        .unwrap_or(0);
    let too_wide = |table: &Table| widest_line(&table.to_string()).saturating_sub(width);
    let mut dropped: Vec<usize> = Vec::new();
    let mut table = build(&dropped, longest);
    for &column in optional {
        if too_wide(&table) == 0 {
            break;
        }
        dropped.push(column);
        table = build(&dropped, longest);
    }
    let excess = too_wide(&table);
    if excess > 0 && longest > 8 {
        table = build(&dropped, longest.saturating_sub(excess).max(8));
    }
    table
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

fn render_run(out: &mut String, run: &RunReport, report: &Report, width: usize) {
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
    let mut rows = vec![summary_row("all", &run.all)];
    rows.extend(run.results.iter().map(|r| named_row(r, "")));
    rows.extend(run.measurements.iter().map(|m| named_row(m, "<")));
    let _ = writeln!(out, "{}", fitted(&HEADER, &rows, width, &OPTIONAL));
    shape_table::service_table(out, run, width);
    render_nodes(out, run, width);
    for panic in &run.panics {
        let _ = writeln!(
            out,
            "  panic ×{}: {}",
            thousands(panic.count),
            escape_control(&panic.message)
        );
    }
    for failure in &run.failures {
        let _ = writeln!(out, "  failed: {}", escape_control(failure));
    }
}

/// A cluster run's per-node figures: which nodes took part and how each
/// fared.
fn render_nodes(out: &mut String, run: &RunReport, width: usize) {
    if run.nodes.is_empty() {
        return;
    }
    let names: Vec<&str> = run.nodes.iter().map(|n| n.name.as_str()).collect();
    let _ = writeln!(out, "Nodes: {}", escape_control(&names.join(", ")));
    let header = [
        "node", "workers", "count", "share", "ops/s", "avg", "p99", "max", "status",
    ];
    let mut rows = Vec::new();
    for node in &run.nodes {
        rows.push(vec![
            node.name.clone(),
            node.workers.len().to_string(),
            thousands(node.operations),
            share(node.operations, run.operations),
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
    let _ = writeln!(out, "{}", fitted(&header, &rows, width, &[]));
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

/// `part` of `whole` as a percentage with one decimal: `33.3%`.
pub(super) fn share(part: u64, whole: u64) -> String {
    format!("{:.1}%", part as f64 * 100.0 / whole.max(1) as f64)
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

fn render_comparison(out: &mut String, runs: &[RunReport], width: usize) {
    let _ = writeln!(out, "Comparison of runs");
    let header = [
        "run",
        "p × t",
        "operations",
        "elapsed",
        "ops/s",
        "avg",
        "p99",
    ];
    let mut rows = Vec::new();
    for run in runs {
        rows.push(vec![
            run.index.to_string(),
            format!("{} × {}", run.processes, run.threads),
            thousands(run.operations),
            duration(run.elapsed_ns),
            rate(run.all.ops_per_sec),
            duration(run.all.avg_ns),
            duration(run.all.p99_ns),
        ]);
    }
    let _ = writeln!(out, "{}", fitted(&header, &rows, width, &[]));
}
