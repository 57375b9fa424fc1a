//! The verdict of a suite: what it came to, in one word a person reads
//! first and one exit code a script acts on.
//!
//! [`Verdict::of`] is the only place that decides it. The table, the HTML
//! page and the JSON show its result, and `gorgon run`'s exit code is
//! [`Verdict::exit_code`], so a page can never say PASSED for a run that
//! exited 1.

use serde::{Deserialize, Serialize};

use super::model::Report;
use super::shape_table::shown;
use crate::exit;
use crate::units::thousands;

/// Exit code after an interrupt, as shells report a SIGINT death.
pub const INTERRUPTED: u8 = 130;

/// What a suite came to, most serious last in the order of the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every run finished and every gate held (exit 0).
    Passed,
    /// A threshold failed or, with no threshold, a call was an error (exit 1).
    ThresholdsFailed,
    /// A worker failed or was killed past its deadline, or the report
    /// could not be written (exit 3).
    RunFailed,
    /// Ctrl-C or SIGTERM stopped the suite (exit 130).
    Interrupted,
    /// A snapshot written while the suite was still running: no verdict yet.
    InProgress,
}

/// The verdict with the reasons behind it, as the JSON carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub status: Status,
    /// The exit code `gorgon run` ended (or ends) with.
    pub exit_code: u8,
    /// One sentence per reason the suite did not pass; empty when it passed.
    pub reasons: Vec<String>,
}

impl Status {
    /// The verdict as the terminal and the page headline show it.
    pub fn headline(self) -> &'static str {
        match self {
            Status::Passed => "PASSED",
            Status::ThresholdsFailed => "THRESHOLDS FAILED",
            Status::RunFailed => "RUN FAILED",
            Status::Interrupted => "INTERRUPTED",
            Status::InProgress => "IN PROGRESS",
        }
    }

    fn exit_code(self) -> u8 {
        match self {
            Status::Passed | Status::InProgress => exit::OK,
            Status::ThresholdsFailed => exit::THRESHOLD_FAILED,
            Status::RunFailed => exit::RUN_FAILED,
            Status::Interrupted => INTERRUPTED,
        }
    }
}

impl Verdict {
    /// Decides the verdict of `report`. Most serious first: an interrupt,
    /// a failed run, then the gates. With no `--threshold`, any error fails
    /// the suite, as Locust does: a load test in which calls failed and
    /// nobody said how many may fail has not passed.
    pub fn of(report: &Report) -> Verdict {
        let failures: Vec<String> = report.failures().map(str::to_string).collect();
        let (status, reasons) = if report.in_progress {
            (Status::InProgress, Vec::new())
        } else if report.interrupted {
            let mut reasons =
                vec!["interrupted; the report covers the calls made until then".into()];
            reasons.extend(failures);
            (Status::Interrupted, reasons)
        } else if !failures.is_empty() {
            (Status::RunFailed, failures)
        } else {
            let reasons = gate_failures(report);
            let status = if reasons.is_empty() {
                Status::Passed
            } else {
                Status::ThresholdsFailed
            };
            (status, reasons)
        };
        Verdict {
            status,
            exit_code: status.exit_code(),
            reasons,
        }
    }

    /// The verdict of `gorgon compare`: passed, or its gates failed, one
    /// reason each.
    pub fn of_gates(reasons: Vec<String>) -> Verdict {
        let status = if reasons.is_empty() {
            Status::Passed
        } else {
            Status::ThresholdsFailed
        };
        Verdict {
            status,
            exit_code: status.exit_code(),
            reasons,
        }
    }

    /// The verdict once the report's files were tried: one that could not
    /// be written makes a finished suite a failed run (the run happened,
    /// its report did not arrive).
    pub fn undelivered(mut self, why: String) -> Verdict {
        if matches!(self.status, Status::Passed | Status::ThresholdsFailed) {
            self.status = Status::RunFailed;
            self.exit_code = exit::RUN_FAILED;
        }
        self.reasons.push(why);
        self
    }

    pub fn exit_code(&self) -> u8 {
        self.exit_code
    }
}

/// The failed thresholds with their measured values, or, with none given,
/// the failed calls.
fn gate_failures(report: &Report) -> Vec<String> {
    if report.thresholds.is_empty() {
        let errors: u64 = report.runs.iter().map(|run| run.errors).sum();
        if errors == 0 {
            return Vec::new();
        }
        let calls: u64 = report.runs.iter().map(|run| run.all.count).sum();
        return vec![format!(
            "{} of {} calls failed ({:.2}%); with no --threshold any failed call fails the run: \
             accept some with e.g. --threshold 'error_rate<1%'",
            thousands(errors),
            thousands(calls),
            errors as f64 * 100.0 / calls.max(1) as f64
        )];
    }
    let suite = report.runs.len() > 1;
    report
        .thresholds
        .iter()
        .filter(|t| !t.passed)
        .map(|t| {
            let measured: Vec<String> = t
                .runs
                .iter()
                .filter(|run| !run.passed)
                .map(|run| {
                    let value = run.note.clone().unwrap_or_else(|| shown(&t.unit, run));
                    if suite {
                        format!("{value} in run {}", run.run)
                    } else {
                        value
                    }
                })
                .collect();
            format!(
                "threshold failed: {} (measured {})",
                t.expression,
                measured.join(", ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threshold::{ThresholdReport, ThresholdRun};

    fn report() -> Report {
        let mut report: Report = serde_json::from_value(serde_json::json!({
            "schema_version": 1, "gorgon_version": "0", "plugin": "p.so",
            "started_at": "2026-01-01T00:00:00Z", "total_elapsed_ns": 1,
            "params": {}, "interrupted": false, "runs": []
        }))
        .unwrap();
        report.runs = Vec::new();
        report
    }

    fn failed_threshold() -> ThresholdReport {
        ThresholdReport {
            expression: "p99<1ms".into(),
            passed: false,
            unit: "ns".into(),
            runs: vec![ThresholdRun {
                run: 1,
                value: Some(1_680_000.0),
                shown: "1ms 680µs".into(),
                passed: false,
                note: None,
            }],
        }
    }

    #[test]
    fn the_most_serious_outcome_decides_and_gives_the_exit_code() {
        let mut r = report();
        assert_eq!(Verdict::of(&r).status, Status::Passed);
        assert_eq!(Verdict::of(&r).exit_code(), 0);

        r.thresholds.push(failed_threshold());
        let verdict = Verdict::of(&r);
        assert_eq!(
            (verdict.status, verdict.exit_code()),
            (Status::ThresholdsFailed, 1)
        );
        assert_eq!(
            verdict.reasons,
            ["threshold failed: p99<1ms (measured 1.68ms)"]
        );

        r.interrupted = true;
        assert_eq!(Verdict::of(&r).exit_code(), INTERRUPTED);

        r.in_progress = true;
        assert_eq!(Verdict::of(&r).status, Status::InProgress);
    }

    #[test]
    fn an_undelivered_report_fails_a_finished_run_but_not_an_interrupted_one() {
        let r = report();
        let verdict = Verdict::of(&r).undelivered("cannot write r.json".into());
        assert_eq!(
            (verdict.status, verdict.exit_code()),
            (Status::RunFailed, 3)
        );
        let mut r = report();
        r.interrupted = true;
        let verdict = Verdict::of(&r).undelivered("cannot write r.json".into());
        assert_eq!(verdict.exit_code(), INTERRUPTED);
    }
}
