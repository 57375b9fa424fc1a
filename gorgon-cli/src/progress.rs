//! Live progress on stderr while a run goes on.
//!
//! On a terminal, an indicatif bar per run: operations done of planned, the
//! rate, errors so far, the p99 so far, elapsed time and ETA. Elsewhere (CI,
//! a log file) a bar would be noise or nothing at all, so a short status
//! line every [`LINE_EVERY`] instead. `--quiet` shows neither.
//!
//! It is fed by the collector's merged results ([`Observer`]), not by the
//! workers, so it shows every worker of a run, local or remote.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::collect::{Live, Observer};
use crate::outcome::RunResult;
use crate::shape::{RunShape, Success};
use crate::stats::Stats;
use crate::units::{duration, rate, thousands};

/// How often the status line is printed when stderr is not a terminal. A
/// run shorter than this prints none.
pub const LINE_EVERY: Duration = Duration::from_secs(5);
/// How often the bar's figures are recomputed (the p99 merges histograms).
const BAR_EVERY: Duration = Duration::from_millis(250);

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bar,
    Lines,
    Quiet,
}

impl Mode {
    /// A bar when stderr is a terminal, lines otherwise, nothing if quiet.
    pub fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Lines
        }
    }
}

/// The progress display of a suite.
pub struct Progress {
    mode: Mode,
    runs: usize,
    run: usize,
    bar: Option<ProgressBar>,
    last: Instant,
    /// Which labels are errors (`--ok`), as the report counts them.
    success: Success,
    /// Calls at once per thread (`--fibers`), shown in the run's name.
    fibers: u32,
}

impl Progress {
    pub fn new(mode: Mode, runs: usize, success: Success, fibers: u32) -> Progress {
        Progress {
            mode,
            runs,
            fibers,
            run: 0,
            bar: None,
            last: Instant::now(),
            success,
        }
    }

    /// `run 2/3 (2×4)`, or `run (2×4)` for a single run; `(2×1×16)` with
    /// 16 fibers per thread.
    fn name(&self, shape: RunShape) -> String {
        let shape = match self.fibers {
            0 | 1 => format!("{}×{}", shape.processes, shape.threads),
            fibers => format!("{}×{}×{fibers}", shape.processes, shape.threads),
        };
        if self.runs > 1 {
            format!("run {}/{} ({shape})", self.run, self.runs)
        } else {
            format!("run ({shape})")
        }
    }

    fn start_bar(&mut self, live: &Live<'_>) {
        let target = ProgressDrawTarget::stderr_with_hz(4);
        let (bar, template) = match live.planned {
            Some(planned) => (
                ProgressBar::with_draw_target(Some(planned), target),
                "{prefix} [{bar:30}] {human_pos}/{human_len} ops · {msg} · {elapsed} elapsed",
            ),
            None => (
                ProgressBar::with_draw_target(None, target),
                "{prefix} {spinner} {human_pos} ops · {msg} · {elapsed} elapsed",
            ),
        };
        let style = ProgressStyle::with_template(template)
            .expect("the bar template is valid")
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(self.name(live.shape));
        bar.set_message(Figures::live(live, &self.success).message(" · "));
        bar.enable_steady_tick(Duration::from_millis(250));
        self.bar = Some(bar);
    }

    fn status_line(&self, live: &Live<'_>) -> String {
        let figures = Figures::live(live, &self.success);
        let done = match live.planned {
            Some(planned) => format!(
                "{} of {} ops ({:.0}%)",
                thousands(figures.calls),
                thousands(planned),
                figures.calls as f64 * 100.0 / planned.max(1) as f64
            ),
            None => format!("{} ops", thousands(figures.calls)),
        };
        format!(
            "gorgon: {}: {done}, {}, elapsed {}",
            self.name(live.shape),
            figures.message(", "),
            seconds(live.elapsed),
        )
    }
}

impl Observer for Progress {
    fn started(&mut self, live: &Live<'_>) {
        self.run += 1;
        self.last = Instant::now();
        if self.mode == Mode::Bar {
            self.start_bar(live);
        }
    }

    fn update(&mut self, live: &Live<'_>) {
        match self.mode {
            Mode::Bar if self.last.elapsed() >= BAR_EVERY => {
                self.last = Instant::now();
                if let Some(bar) = &self.bar {
                    let figures = Figures::live(live, &self.success);
                    bar.set_position(figures.calls);
                    bar.set_message(figures.message(" · "));
                }
            }
            Mode::Lines if self.last.elapsed() >= LINE_EVERY => {
                self.last = Instant::now();
                eprintln!("{}", self.status_line(live));
            }
            _ => {}
        }
    }

    fn finished(&mut self, result: &RunResult) {
        let Some(bar) = self.bar.take() else {
            return;
        };
        let figures = Figures::of(&result.stats, result.elapsed, None, &self.success);
        bar.set_position(figures.calls);
        let message = figures.message(" · ");
        if result.interrupted {
            bar.abandon_with_message(format!("{message} · interrupted"));
        } else {
            bar.finish_with_message(message);
        }
    }
}

/// Whole seconds the way humantime writes them (`1m 5s`): a status line
/// needs no milliseconds.
fn seconds(time: Duration) -> String {
    humantime::format_duration(Duration::from_secs(time.as_secs())).to_string()
}

/// The figures a progress display shows.
struct Figures {
    calls: u64,
    ops_per_sec: f64,
    errors: u64,
    p99_ns: Option<u64>,
    /// Time left at the current rate, while the run goes on.
    eta: Option<Duration>,
}

impl Figures {
    /// The figures of a run going on.
    fn live(live: &Live<'_>, success: &Success) -> Figures {
        let covered = live.covered();
        let mut figures = Figures::of(live.stats, covered, None, success);
        if let Some(planned) = live.planned {
            if figures.ops_per_sec > 0.0 {
                // What is left after the covered part, less the time already
                // spent beyond it.
                let left = planned.saturating_sub(figures.calls) as f64 / figures.ops_per_sec;
                let lag = live.elapsed.saturating_sub(covered).as_secs_f64();
                figures.eta = Some(Duration::from_secs_f64((left - lag).max(0.0)));
            }
        }
        figures
    }

    /// The figures of `stats` gathered over `span`.
    fn of(stats: &Stats, span: Duration, eta: Option<Duration>, success: &Success) -> Figures {
        let all = stats.all_calls();
        let calls = all.len();
        let seconds = span.as_secs_f64();
        Figures {
            calls,
            ops_per_sec: if seconds > 0.0 {
                calls as f64 / seconds
            } else {
                0.0
            },
            errors: success.errors_in(stats),
            p99_ns: (calls > 0).then(|| all.value_at_quantile(0.99)),
            eta,
        }
    }

    fn message(&self, separator: &str) -> String {
        let mut parts = vec![
            format!(
                "{} ops/s",
                if self.ops_per_sec > 0.0 {
                    rate(self.ops_per_sec)
                } else {
                    "-".to_string()
                }
            ),
            format!(
                "{} error{}",
                thousands(self.errors),
                if self.errors == 1 { "" } else { "s" }
            ),
            format!(
                "p99 {}",
                self.p99_ns.map_or_else(|| "-".to_string(), duration)
            ),
        ];
        if let Some(eta) = self.eta {
            parts.push(format!("ETA {}", seconds(eta)));
        }
        parts.join(separator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    #[test]
    fn figures_count_panics_as_errors() {
        let mut stats = Stats::default();
        let ok = stats
            .results
            .entry("OK".into())
            .or_insert_with(new_histogram);
        for _ in 0..98 {
            ok.record(1_000).unwrap();
        }
        let panics = stats
            .results
            .entry(crate::stats::PANIC_LABEL.into())
            .or_insert_with(new_histogram);
        panics.record(5_000_000).unwrap();
        panics.record(5_000_000).unwrap();
        let mut figures = Figures::of(&stats, Duration::from_secs(2), None, &Success::default());
        assert_eq!(figures.calls, 100);
        assert_eq!(figures.errors, 2);
        assert_eq!(figures.ops_per_sec, 50.0);
        assert!(figures.p99_ns.unwrap() > 4_000_000);
        assert_eq!(
            figures.message(" · "),
            "50.00 ops/s · 2 errors · p99 5ms 1µs"
        );
        figures.eta = Some(Duration::from_millis(65_400));
        assert_eq!(
            figures.message(", "),
            "50.00 ops/s, 2 errors, p99 5ms 1µs, ETA 1m 5s"
        );
    }
}
