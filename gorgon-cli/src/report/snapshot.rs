//! `--snapshot-every`: the `--save` file rewritten with the partial result
//! during a long run, so a run that is killed hard (SIGKILL, a lost machine)
//! still leaves what it had done by its last snapshot.
//!
//! It watches the collector's merged results like the progress display, so a
//! snapshot covers every worker, wherever it runs.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::collect::{Live, Observer};
use crate::outcome::RunResult;
use crate::plan::Param;

use super::destination::Destination;
use super::json;
use super::model::{Report, RunReport};

/// Writes snapshots of a suite to one file at a steady period.
pub struct Snapshots {
    path: PathBuf,
    every: Duration,
    plugin: PathBuf,
    params: Vec<Param>,
    started_at: SystemTime,
    started: Instant,
    /// The runs of the suite that have ended.
    finished: Vec<RunReport>,
    last: Instant,
    warned: bool,
}

impl Snapshots {
    pub fn new(
        path: PathBuf,
        every: Duration,
        plugin: PathBuf,
        params: Vec<Param>,
        started_at: SystemTime,
        started: Instant,
    ) -> Snapshots {
        Snapshots {
            path,
            every,
            plugin,
            params,
            started_at,
            started,
            finished: Vec::new(),
            last: Instant::now(),
            warned: false,
        }
    }

    /// The suite so far: the runs that ended and the one going on.
    fn report(&self, current: &RunResult) -> Report {
        let mut report = Report::new(
            &self.plugin,
            &self.params,
            self.started_at,
            self.started.elapsed(),
            &[],
        );
        report.in_progress = true;
        report.interrupted = current.interrupted;
        report.runs = self.finished.clone();
        let mut run = RunReport::new(self.finished.len() + 1, current);
        // Not over yet, whatever its figures say.
        run.complete = false;
        report.runs.push(run);
        report
    }

    fn write(&mut self, live: &Live<'_>) {
        self.last = Instant::now();
        let text = json::render(&self.report(&live.snapshot()));
        let written = Destination::resolve(&self.path)
            .and_then(|to| to.write(text.as_bytes()).map_err(|e| e.to_string()));
        if let Err(error) = written {
            // The run is worth more than its snapshot: say it once, go on.
            if !self.warned {
                self.warned = true;
                eprintln!(
                    "gorgon: cannot write the snapshot {}: {error} (the run goes on)",
                    self.path.display()
                );
            }
        }
    }
}

impl Observer for Snapshots {
    fn update(&mut self, live: &Live<'_>) {
        if self.last.elapsed() >= self.every {
            self.write(live);
        }
    }

    fn finished(&mut self, result: &RunResult) {
        self.finished
            .push(RunReport::new(self.finished.len() + 1, result));
    }
}
