//! CSV: one row per run and per group of calls (all calls, each result
//! label, each measurement), for spreadsheets and scripts. Durations are
//! nanoseconds, as in the JSON.

use super::model::{Report, RunReport};
use super::text::escape_control;
use crate::stats::Summary;

/// The header row; docs/reports.md describes each column.
pub const HEADER: [&str; 17] = [
    "run",
    "processes",
    "threads",
    "run_elapsed_ns",
    "run_complete",
    "kind",
    "name",
    "count",
    "ops_per_sec",
    "avg_ns",
    "min_ns",
    "max_ns",
    "p50_ns",
    "p90_ns",
    "p95_ns",
    "p99_ns",
    "p999_ns",
];

/// The report as CSV text with a header row.
pub fn render(report: &Report) -> String {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    let mut write = |record: Vec<String>| {
        writer
            .write_record(&record)
            .expect("writing CSV to memory cannot fail");
    };
    write(HEADER.iter().map(|h| h.to_string()).collect());
    for run in &report.runs {
        write(row(run, "all", "all", &run.all));
        for result in &run.results {
            write(row(run, "result", &result.name, &result.summary));
        }
        for measurement in &run.measurements {
            write(row(
                run,
                "measurement",
                &measurement.name,
                &measurement.summary,
            ));
        }
    }
    let bytes = writer
        .into_inner()
        .expect("flushing CSV to memory cannot fail");
    String::from_utf8(bytes).expect("CSV of UTF-8 strings is UTF-8")
}

fn row(run: &RunReport, kind: &str, name: &str, s: &Summary) -> Vec<String> {
    vec![
        run.index.to_string(),
        run.processes.to_string(),
        run.threads.to_string(),
        run.elapsed_ns.to_string(),
        run.complete.to_string(),
        kind.to_string(),
        // A spreadsheet would act on a control character: escaped, as
        // in the table (the JSON keeps the label as it was).
        escape_control(name).into_owned(),
        s.count.to_string(),
        format!("{:.3}", s.ops_per_sec),
        s.avg_ns.to_string(),
        s.min_ns.to_string(),
        s.max_ns.to_string(),
        s.p50_ns.to_string(),
        s.p90_ns.to_string(),
        s.p95_ns.to_string(),
        s.p99_ns.to_string(),
        s.p999_ns.to_string(),
    ]
}
