//! The parts of the text report that load shapes add: notes under a run's
//! heading (open model, warm-up, errors), the service-time table of the
//! open model, and the pass/fail table of the thresholds.

use std::fmt::Write as _;

use comfy_table::CellAlignment;

use super::load_model::{rate_per_sec, short_duration};
use super::model::{Report, RunReport};
use super::table::{named_row, new_table, summary_row, HEADER};
use crate::units::thousands;

/// Lines under a run's heading, before its table. The errors line is
/// always there, with what counts as an error, so a clean run says so too.
pub fn run_notes(out: &mut String, run: &RunReport, ok: Option<&[String]>) {
    if let Some(open) = &run.open_model {
        let _ = writeln!(
            out,
            "Open model at {}: achieved {}; {} started late (more than {} after they were due), {} dropped (due, never started).",
            rate_per_sec(open.target_per_sec),
            rate_per_sec(open.achieved_per_sec),
            thousands(open.late),
            short_duration(open.late_after_ns),
            thousands(open.dropped),
        );
        if let Some(warning) = &open.warning {
            let _ = writeln!(out, "Warning: {warning}.");
        }
        let _ = writeln!(
            out,
            "Latency from each operation's intended start (corrected for coordinated omission):"
        );
    }
    if run.warmup_operations > 0 {
        let _ = writeln!(
            out,
            "Warm-up: {} operations before these, not counted.",
            thousands(run.warmup_operations)
        );
    }
    let counted = match ok {
        Some(ok) => format!("calls labelled other than {}", ok.join(", ")),
        None => "panics and calls the plugin said failed".to_string(),
    };
    let _ = writeln!(
        out,
        "Errors: {} of {} ({:.2}%): {counted}.",
        thousands(run.errors),
        thousands(run.operations),
        run.error_rate * 100.0
    );
}

/// The open model's second table: service time, from the actual start.
pub fn service_table(out: &mut String, run: &RunReport) {
    let Some(open) = &run.open_model else {
        return;
    };
    let _ = writeln!(out, "Service time (from the actual start, not corrected):");
    let mut table = new_table(&HEADER);
    table.add_row(summary_row("all", &open.service));
    for result in &open.service_results {
        table.add_row(named_row(result, ""));
    }
    let _ = writeln!(out, "{table}");
}

/// The thresholds, one row per threshold (and run, in a suite).
pub fn thresholds(out: &mut String, report: &Report) {
    if report.thresholds.is_empty() {
        return;
    }
    let failed = report.thresholds.iter().filter(|t| !t.passed).count();
    let _ = writeln!(
        out,
        "\nThresholds: {}",
        if failed == 0 {
            "all passed".to_string()
        } else {
            format!("{failed} of {} failed", report.thresholds.len())
        }
    );
    let suite = report.runs.len() > 1;
    let header: &[&str] = if suite {
        &["threshold", "run", "value", "result"]
    } else {
        &["threshold", "value", "result"]
    };
    let mut table = new_table(header);
    if let Some(result) = table.column_mut(header.len() - 1) {
        result.set_cell_alignment(CellAlignment::Left);
    }
    for threshold in &report.thresholds {
        for run in &threshold.runs {
            let mut row = vec![threshold.expression.clone()];
            if suite {
                row.push(run.run.to_string());
            }
            row.push(run.shown.clone());
            row.push(match (&run.note, run.passed) {
                (Some(note), _) => format!("FAIL ({note})"),
                (None, true) => "pass".to_string(),
                (None, false) => "FAIL".to_string(),
            });
            table.add_row(row);
        }
    }
    let _ = writeln!(out, "{table}");
}
