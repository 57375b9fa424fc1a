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

use crate::collect::{Live, Observer, RunResult};
use crate::plan::RunShape;
use crate::report::units::{duration, rate, thousands};
use crate::stats::{Stats, PANIC_LABEL};

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
    /// The call count and the run's elapsed time when it last changed.
    /// Workers report once per interval, so the rate is calls over the time
    /// they cover, not over the time since (which would read low).
    seen: (u64, Duration),
}

impl Progress {
    pub fn new(mode: Mode, runs: usize) -> Progress {
        Progress {
            mode,
            runs,
            run: 0,
            bar: None,
            last: Instant::now(),
            seen: (0, Duration::ZERO),
        }
    }

    /// `run 2/3 (2×4)`, or `run (2×4)` for a single run.
    fn name(&self, shape: RunShape) -> String {
        let shape = format!("{}×{}", shape.processes, shape.threads);
        if self.runs > 1 {
            format!("run {}/{} ({shape})", self.run, self.runs)
        } else {
            format!("run ({shape})")
        }
    }

    fn start_bar(&mut self, live: &Live<'_>) {
        let bar = match live.planned {
            Some(planned) => ProgressBar::with_draw_target(
                Some(planned),
                ProgressDrawTarget::stderr_with_hz(4),
            )
            .with_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {human_pos}/{human_len} ops · {msg} · {elapsed} elapsed · ETA {eta}",
                )
                .expect("the bar template is valid")
                .progress_chars("=> "),
            ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4))
                .with_style(
                    ProgressStyle::with_template("{prefix} {spinner} {human_pos} ops · {msg} · {elapsed} elapsed")
                        .expect("the spinner template is valid"),
                ),
        };
        bar.set_prefix(self.name(live.shape));
        bar.set_message(Figures::of(live.stats, live.elapsed).message());
        bar.enable_steady_tick(Duration::from_millis(250));
        self.bar = Some(bar);
    }

    /// The figures now, with the rate over the time the counts cover.
    fn figures(&mut self, live: &Live<'_>) -> Figures {
        let calls = live.calls();
        if calls != self.seen.0 {
            self.seen = (calls, live.elapsed);
        }
        Figures::of(live.stats, self.seen.1)
    }

    fn status_line(&mut self, live: &Live<'_>) -> String {
        let figures = self.figures(live);
        let done = match live.planned {
            Some(planned) if planned > 0 => format!(
                "{} of {} ops ({:.0}%)",
                thousands(figures.calls),
                thousands(planned),
                figures.calls as f64 * 100.0 / planned as f64
            ),
            _ => format!("{} ops", thousands(figures.calls)),
        };
        let eta = match live.planned {
            Some(planned) if figures.ops_per_sec > 0.0 => {
                let left = planned.saturating_sub(figures.calls) as f64 / figures.ops_per_sec;
                format!(", ETA {}", seconds(Duration::from_secs_f64(left)))
            }
            _ => String::new(),
        };
        format!(
            "gorgon: {}: {done}, {}, elapsed {}{eta}",
            self.name(live.shape),
            figures.message().replace(" · ", ", "),
            seconds(live.elapsed),
        )
    }
}

impl Observer for Progress {
    fn started(&mut self, live: &Live<'_>) {
        self.run += 1;
        self.last = Instant::now();
        self.seen = (0, Duration::ZERO);
        if self.mode == Mode::Bar {
            self.start_bar(live);
        }
    }

    fn update(&mut self, live: &Live<'_>) {
        match self.mode {
            Mode::Bar if self.last.elapsed() >= BAR_EVERY => {
                self.last = Instant::now();
                let figures = self.figures(live);
                if let Some(bar) = &self.bar {
                    bar.set_position(figures.calls);
                    bar.set_message(figures.message());
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
        let figures = Figures::of(&result.stats, result.elapsed);
        bar.set_position(figures.calls);
        bar.set_message(figures.message());
        if result.interrupted {
            bar.abandon_with_message(format!("{} · interrupted", figures.message()));
        } else {
            bar.finish();
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
}

impl Figures {
    fn of(stats: &Stats, elapsed: Duration) -> Figures {
        let all = stats.all_calls();
        let calls = all.len();
        let seconds = elapsed.as_secs_f64();
        Figures {
            calls,
            ops_per_sec: if seconds > 0.0 {
                calls as f64 / seconds
            } else {
                0.0
            },
            errors: stats.results.get(PANIC_LABEL).map_or(0, |h| h.len()),
            p99_ns: (calls > 0).then(|| all.value_at_quantile(0.99)),
        }
    }

    fn message(&self) -> String {
        format!(
            "{} ops/s · {} error{} · p99 {}",
            rate(self.ops_per_sec),
            thousands(self.errors),
            if self.errors == 1 { "" } else { "s" },
            self.p99_ns.map_or_else(|| "-".to_string(), duration),
        )
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
            .entry(PANIC_LABEL.into())
            .or_insert_with(new_histogram);
        panics.record(5_000_000).unwrap();
        panics.record(5_000_000).unwrap();
        let figures = Figures::of(&stats, Duration::from_secs(2));
        assert_eq!(figures.calls, 100);
        assert_eq!(figures.errors, 2);
        assert_eq!(figures.ops_per_sec, 50.0);
        assert!(figures.p99_ns.unwrap() > 4_000_000);
        assert_eq!(figures.message(), "50.00 ops/s · 2 errors · p99 5ms 1µs");
    }
}
