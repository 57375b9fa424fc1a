//! The parts of the text report that load shapes add: notes under a run's
//! heading (open model, warm-up, errors), the service-time table of the
//! open model, and the pass/fail table of the thresholds.

use std::fmt::Write as _;

use comfy_table::CellAlignment;

use super::load_model::{rate_per_sec, short_duration};
use super::model::{Report, RunReport};
use super::table::{fitted, named_row, summary_row, HEADER, OPTIONAL};
use super::text::{compact, escape_control};
use crate::units::thousands;

/// What coordinated omission is, in the one sentence every format shows
/// beside the open model's two latencies.
pub const COORDINATED_OMISSION: &str = "a load tester that times a call only from when it \
    actually started omits the wait of the calls a slow one held up (coordinated omission), \
    so the latency from the intended start is what a user arriving at that rate sees, and the \
    gap to the service time is time spent queued.";

/// Lines under a run's heading, before its table. The errors line is
/// always there, with what counts as an error, so a clean run says so too.
pub fn run_notes(out: &mut String, run: &RunReport, ok: Option<&[String]>) {
    if let Some(open) = &run.open_model {
        let _ = writeln!(
            out,
            "Open model at {}: achieved {}; {} started late (more than {} after they were due), \
             {} dropped.",
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
            "Latency from each operation's intended start (p99 {}) beside service time from its \
             actual start (p99 {}): {}",
            compact(run.all.p99_ns),
            compact(open.service.p99_ns),
            COORDINATED_OMISSION
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
    let counted = match ok {
        Some(_) => escape_control(&counted).into_owned(),
        None => counted,
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
pub fn service_table(out: &mut String, run: &RunReport, width: usize) {
    let Some(open) = &run.open_model else {
        return;
    };
    let _ = writeln!(out, "Service time (from the actual start, not corrected):");
    let mut rows = vec![summary_row("all", &open.service)];
    rows.extend(open.service_results.iter().map(|r| named_row(r, "")));
    let _ = writeln!(out, "{}", fitted(&HEADER, &rows, width, &OPTIONAL));
}

/// The thresholds, one row per threshold (and run, in a suite).
pub fn thresholds(out: &mut String, report: &Report, width: usize) {
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
    let mut rows = Vec::new();
    // Why a value is missing goes under the table: a sentence would make
    // the table too wide.
    let mut notes = Vec::new();
    for threshold in &report.thresholds {
        for run in &threshold.runs {
            let mut row = vec![threshold.expression.clone()];
            if suite {
                row.push(run.run.to_string());
            }
            row.push(shown(&threshold.unit, run));
            row.push(if run.passed { "pass" } else { "FAIL" }.to_string());
            if let Some(note) = &run.note {
                notes.push(format!("{}: {note}", threshold.expression));
            }
            rows.push(row);
        }
    }
    let mut table = fitted(header, &rows, width, &[]);
    if let Some(result) = table.column_mut(header.len() - 1) {
        result.set_cell_alignment(CellAlignment::Left);
    }
    let _ = writeln!(out, "{table}");
    for note in notes {
        let _ = writeln!(out, "  {}", escape_control(&note));
    }
}

/// A threshold's measured value as the tables show it: a latency in the
/// report's compact form, anything else as the threshold wrote it.
pub fn shown(unit: &str, run: &crate::threshold::ThresholdRun) -> String {
    match (unit, run.value) {
        ("ns", Some(ns)) => compact(ns.round() as u64),
        _ => run.shown.clone(),
    }
}
