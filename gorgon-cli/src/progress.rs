//! Live progress on stderr while a run goes on.
//!
//! On a terminal, an indicatif bar per run on two lines: how far the run is
//! (elapsed of its duration, or calls done of those planned) and the time
//! left, then the figures of the last seconds. Elsewhere (CI, a log file) a
//! bar would be noise or nothing at all, so one self-contained status line
//! per interval of [`line_due_after`]'s schedule, and one when the run ends.
//! `--quiet` shows neither.
//!
//! It is fed by the collector's merged results ([`Observer`]), not by the
//! workers, so it shows every worker of a run, local or remote.
//!
//! **The figures tell the present, not the average.** Workers hand over one
//! interval of calls right after it ends (a fifth of a second each over
//! the first 2 s, then a second each); the rate shown is over the
//! intervals of the last [`RATE_SPAN`] that have all arrived, and the p99
//! is that of the last such interval, so a run that slows down shows it
//! within seconds instead of the mean since the start drifting slowly.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::collect::{Live, Observer};
use crate::outcome::RunResult;
use crate::protocol::INTERVAL;
use crate::shape::{RunShape, Success};
use crate::units::{compact, rate, thousands};

/// How often the bar's figures are recomputed.
const BAR_EVERY: Duration = Duration::from_millis(250);
/// How long after an interval's end all of it has arrived from every
/// worker. A worker's lanes hand an interval over as their first call past
/// its end returns, and the worker sends what it holds a few ms after the
/// end; then the frame crosses a pipe or SSH. A straggler later than this
/// (a call longer than those few ms) still counts in the totals, only not
/// in that interval's rate.
const SETTLE: Duration = Duration::from_millis(250);
/// When a status line is printed after it is due: time for the frames of
/// a fast plugin's interval to arrive (a slow one's may wait a tick more).
const LINE_LAG: Duration = Duration::from_millis(300);
/// The time the current rate is taken over: a few seconds, so one slow
/// second does not swing it and a real change shows quickly.
const RATE_SPAN: Duration = Duration::from_secs(3);
/// The bar's length in steps: time and counts both map onto it.
const BAR_STEPS: u64 = 1_000;

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

/// When the next status line is due after one due at `time` (from the
/// start of the run): every second for the first 10 s, where a short run
/// lives; every 5 s to 3 minutes; then every 30 s, so an hour's soak test
/// writes about 150 lines, not 3,600.
pub fn line_due_after(time: Duration) -> Duration {
    let seconds = time.as_secs();
    let step = match seconds {
        0..10 => 1,
        10..180 => 5,
        _ => 30,
    };
    Duration::from_secs((seconds / step + 1) * step)
}

/// What a run is heading for: the end of its calls, of its time, or of
/// whichever comes first (`-n` with `--duration`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Goal {
    Calls(u64),
    Time(Duration),
    Either {
        calls: u64,
        time: Duration,
    },
    /// A duration after a warm-up of a count: when it ends is unknown.
    Open,
}

impl Goal {
    fn of(planned: Option<u64>, end_by: Option<Duration>) -> Goal {
        match (planned, end_by) {
            (Some(calls), Some(time)) => Goal::Either { calls, time },
            (Some(calls), None) => Goal::Calls(calls),
            (None, Some(time)) => Goal::Time(time),
            (None, None) => Goal::Open,
        }
    }

    fn calls(self) -> Option<u64> {
        match self {
            Goal::Calls(calls) | Goal::Either { calls, .. } => Some(calls),
            Goal::Time(_) | Goal::Open => None,
        }
    }

    fn time(self) -> Option<Duration> {
        match self {
            Goal::Time(time) | Goal::Either { time, .. } => Some(time),
            Goal::Calls(_) | Goal::Open => None,
        }
    }

    /// How much of the run is done, from 0 to 1: the further of the two
    /// when either may end it.
    fn fraction(self, now: &Now) -> f64 {
        let by_calls = self
            .calls()
            .map(|planned| now.calls as f64 / planned.max(1) as f64);
        let by_time = self
            .time()
            .map(|time| now.elapsed.as_secs_f64() / time.as_secs_f64().max(1e-9));
        by_calls
            .into_iter()
            .chain(by_time)
            .fold(0.0, f64::max)
            .min(1.0)
    }
}

/// The figures of a run at one moment, as every display shows them.
#[derive(Debug, Clone, PartialEq)]
struct Now {
    elapsed: Duration,
    calls: u64,
    /// Calls per second over the last few intervals (the mean so far
    /// until one interval has arrived).
    ops_per_sec: Option<f64>,
    errors: u64,
    /// The p99 of the last interval that arrived.
    p99_ns: Option<u64>,
    /// Time left: to the end of the duration, or at the current rate to
    /// the last planned call, whichever is sooner.
    left: Option<Duration>,
    in_flight: Option<u64>,
    stuck: usize,
}

impl Now {
    fn of(live: &Live<'_>, goal: Goal, success: &Success) -> Now {
        let all = live.stats.all_calls();
        let calls = all.len();
        let recent = Recent::of(live);
        let (ops_per_sec, p99_ns) = match recent {
            Some(recent) => (Some(recent.ops_per_sec), recent.p99_ns),
            None => {
                let covered = live.covered().as_secs_f64();
                let mean = (covered > 0.0).then(|| calls as f64 / covered);
                (mean, (calls > 0).then(|| all.value_at_quantile(0.99)))
            }
        };
        let by_time = goal.time().map(|time| time.saturating_sub(live.elapsed));
        let by_calls = goal.calls().and_then(|planned| {
            let per_sec = ops_per_sec.filter(|r| *r > 0.0)?;
            // What is left after the covered part, less the time already
            // spent beyond it.
            let left = planned.saturating_sub(calls) as f64 / per_sec;
            let lag = live.elapsed.saturating_sub(live.covered()).as_secs_f64();
            Some(Duration::from_secs_f64((left - lag).max(0.0)))
        });
        Now {
            elapsed: live.elapsed,
            calls,
            ops_per_sec,
            errors: success.errors_in(live.stats),
            p99_ns,
            // Rounded up: "0s left" while the run still goes on would lie.
            left: by_time
                .into_iter()
                .chain(by_calls)
                .min()
                .map(whole_seconds_up),
            in_flight: live.in_flight,
            stuck: live.stuck.len(),
        }
    }

    /// The figures of a finished run: its mean rate and its p99 over all
    /// calls, as the report will say.
    fn finished(result: &RunResult, success: &Success) -> Now {
        let all = result.stats.all_calls();
        let seconds = result.elapsed.as_secs_f64();
        Now {
            elapsed: result.elapsed,
            calls: all.len(),
            ops_per_sec: (seconds > 0.0).then(|| all.len() as f64 / seconds),
            errors: success.errors_in(&result.stats),
            p99_ns: (!all.is_empty()).then(|| all.value_at_quantile(0.99)),
            left: None,
            in_flight: None,
            stuck: 0,
        }
    }

    /// Rate, errors, p99.
    fn figures(&self) -> Vec<String> {
        vec![
            format!(
                "{} ops/s",
                self.ops_per_sec.map_or_else(|| "-".to_string(), rate)
            ),
            format!(
                "{} error{}",
                thousands(self.errors),
                if self.errors == 1 { "" } else { "s" }
            ),
            format!(
                "p99 {}",
                self.p99_ns.map_or_else(|| "-".to_string(), compact)
            ),
        ]
    }

    /// Calls in flight and stuck workers, when the run knows them.
    fn workers(&self) -> Vec<String> {
        let mut parts = Vec::new();
        if let Some(in_flight) = self.in_flight {
            parts.push(format!("{} in flight", thousands(in_flight)));
        }
        if self.stuck > 0 {
            parts.push(format!(
                "{} stuck worker{}",
                self.stuck,
                if self.stuck == 1 { "" } else { "s" }
            ));
        }
        parts
    }
}

/// The last seconds of a run: the intervals that every worker has sent.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Recent {
    ops_per_sec: f64,
    p99_ns: Option<u64>,
}

impl Recent {
    /// `None` until the first interval has settled.
    fn of(live: &Live<'_>) -> Option<Recent> {
        let schedule = live.schedule();
        let settled = live.elapsed.checked_sub(SETTLE)?;
        // The interval `settled` is in has not ended: the one before has.
        let last = schedule.index_at(settled).checked_sub(1)?;
        let last = last.min(live.newest_interval()?);
        let end = schedule.end(last);
        let first = schedule.index_at(end.saturating_sub(RATE_SPAN));
        let calls: u64 = (first..=last)
            .filter_map(|i| live.interval(i))
            .map(|point| point.calls)
            .sum();
        let span = (end - schedule.start(first)).as_secs_f64();
        let newest = live.interval(last).filter(|point| point.calls > 0);
        Some(Recent {
            ops_per_sec: calls as f64 / span,
            p99_ns: newest.map(|point| point.p99_ns),
        })
    }
}

fn whole_seconds_up(time: Duration) -> Duration {
    Duration::from_secs(time.as_secs() + u64::from(time.subsec_nanos() > 0))
}

/// Whole seconds the way humantime writes them (`1m 5s`): progress needs
/// no milliseconds.
fn seconds(time: Duration) -> String {
    humantime::format_duration(Duration::from_secs(time.as_secs())).to_string()
}

/// The progress display of a suite.
pub struct Progress {
    mode: Mode,
    runs: usize,
    run: usize,
    bar: Option<ProgressBar>,
    /// The name of the run going on (`run 2/3 (2×4)`).
    line_name: String,
    /// When the bar was last redrawn.
    drawn: Instant,
    /// When the next status line is due, from the start of the run.
    line_due: Duration,
    goal: Goal,
    /// When, from `go`, a timed run should end (`None` for a count).
    end_by: Option<Duration>,
    /// Which labels are errors (`--ok`), as the report counts them.
    success: Success,
    /// Calls at once per thread (`--fibers`), shown in the run's name.
    fibers: u32,
}

impl Progress {
    pub fn new(
        mode: Mode,
        runs: usize,
        success: Success,
        fibers: u32,
        end_by: Option<Duration>,
    ) -> Progress {
        Progress {
            mode,
            runs,
            fibers,
            run: 0,
            bar: None,
            line_name: String::new(),
            drawn: Instant::now(),
            line_due: INTERVAL,
            goal: Goal::Open,
            end_by,
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
        let bar =
            ProgressBar::with_draw_target(Some(BAR_STEPS), ProgressDrawTarget::stderr_with_hz(4));
        let style = ProgressStyle::with_template("{prefix} [{bar:24}] {msg}")
            .expect("the bar template is valid")
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(self.name(live.shape));
        self.bar = Some(bar);
        self.draw(live);
    }

    fn draw(&mut self, live: &Live<'_>) {
        self.drawn = Instant::now();
        let now = Now::of(live, self.goal, &self.success);
        if let Some(bar) = &self.bar {
            bar.set_position((self.goal.fraction(&now) * BAR_STEPS as f64) as u64);
            bar.set_message(bar_message(self.goal, &now));
        }
    }

    fn status_line(&self, now: &Now) -> String {
        let mut parts = vec![self.head(now)];
        parts.extend(now.figures());
        parts.extend(now.workers());
        // Always there once the run has an end, `-` until a rate is known,
        // so every line has the same fields.
        let left = now.left.map_or_else(|| "-".to_string(), seconds);
        match self.goal {
            Goal::Calls(_) => parts.push(format!("ETA {left}")),
            Goal::Time(_) | Goal::Either { .. } => parts.push(format!("{left} left")),
            Goal::Open => {}
        }
        format!("gorgon: {}: {}", self.line_name, parts.join(", "))
    }

    /// Elapsed time (of the duration), then calls (of those planned).
    fn head(&self, now: &Now) -> String {
        let elapsed = match self.goal.time() {
            Some(time) => format!("{} of {}", seconds(now.elapsed), seconds(time)),
            None => seconds(now.elapsed),
        };
        format!("{elapsed}, {}", calls_done(self.goal, now))
    }
}

/// `12,870 of 90,000 ops (14%)`, or `12,870 ops` with no count planned.
fn calls_done(goal: Goal, now: &Now) -> String {
    match goal.calls() {
        Some(planned) => format!(
            "{} of {} ops ({:.0}%)",
            thousands(now.calls),
            thousands(planned),
            now.calls as f64 * 100.0 / planned.max(1) as f64
        ),
        None => format!("{} ops", thousands(now.calls)),
    }
}

/// The lines right of the bar's name: where the run is and the time left,
/// then the figures of the last seconds, then (when the run knows them)
/// calls in flight and stuck workers. Every figure is always there (`-`
/// when not known yet), so the layout does not jump.
fn bar_message(goal: Goal, now: &Now) -> String {
    let left = now.left.map_or_else(|| "-".to_string(), seconds);
    let head = match goal {
        Goal::Calls(planned) => format!(
            "{}/{} · ETA {left}",
            thousands(now.calls),
            thousands(planned)
        ),
        Goal::Time(time) | Goal::Either { time, .. } => {
            format!("{} / {} · {left} left", seconds(now.elapsed), seconds(time))
        }
        Goal::Open => seconds(now.elapsed),
    };
    let mut figures = now.figures();
    if !matches!(goal, Goal::Calls(_)) {
        figures.insert(0, format!("{} ops", thousands(now.calls)));
    }
    let mut message = format!("{head}\n  {}", figures.join(" · "));
    let workers = now.workers();
    if !workers.is_empty() {
        message.push_str(&format!("\n  {}", workers.join(" · ")));
    }
    message
}

impl Observer for Progress {
    fn started(&mut self, live: &Live<'_>) {
        self.run += 1;
        self.goal = Goal::of(live.planned, self.end_by);
        self.line_due = INTERVAL;
        self.line_name = self.name(live.shape);
        if self.mode == Mode::Bar {
            self.start_bar(live);
        }
    }

    fn update(&mut self, live: &Live<'_>) {
        match self.mode {
            Mode::Bar if self.drawn.elapsed() >= BAR_EVERY => self.draw(live),
            Mode::Lines if live.elapsed >= self.line_due + LINE_LAG => {
                let now = Now::of(live, self.goal, &self.success);
                eprintln!("{}", self.status_line(&now));
                self.line_due = line_due_after(live.elapsed - LINE_LAG);
            }
            _ => {}
        }
    }

    fn finished(&mut self, result: &RunResult) {
        let now = Now::finished(result, &self.success);
        let ending = if result.interrupted {
            "interrupted after"
        } else if !result.failures.is_empty() {
            "failed after"
        } else {
            "done in"
        };
        // To the millisecond, as the report: a short run is not "0s".
        let elapsed = compact(now.elapsed.as_nanos() as u64);
        let (head, figures) = (format!("{ending} {elapsed}"), now.figures());
        let calls = calls_done(Goal::Open, &now);
        match (self.mode, self.bar.take()) {
            (Mode::Bar, Some(bar)) => {
                bar.set_position((self.goal.fraction(&now) * BAR_STEPS as f64) as u64);
                let message = format!("{head} · {calls}\n  {}", figures.join(" · "));
                if result.interrupted || !result.failures.is_empty() {
                    bar.abandon_with_message(message);
                } else {
                    bar.finish_with_message(message);
                }
            }
            (Mode::Lines, _) if self.run > 0 => {
                eprintln!(
                    "gorgon: {}: {head}, {calls}, {}",
                    self.line_name,
                    figures.join(", ")
                );
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now(calls: u64, elapsed_s: u64) -> Now {
        Now {
            elapsed: Duration::from_secs(elapsed_s),
            calls,
            ops_per_sec: Some(50.0),
            errors: 2,
            p99_ns: Some(5_001_000),
            left: Some(Duration::from_millis(65_400)),
            in_flight: None,
            stuck: 0,
        }
    }

    #[test]
    fn lines_come_every_second_then_every_five_then_every_thirty() {
        let mut due = vec![INTERVAL];
        while due.len() < 16 {
            due.push(line_due_after(*due.last().unwrap()));
        }
        let seconds: Vec<u64> = due.iter().map(Duration::as_secs).collect();
        assert_eq!(
            seconds,
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 35, 40]
        );
        assert_eq!(line_due_after(Duration::from_secs(180)).as_secs(), 210);
        assert_eq!(
            line_due_after(Duration::from_millis(179_500)).as_secs(),
            180
        );
        // A late update skips the lines it missed rather than bunching them.
        assert_eq!(line_due_after(Duration::from_millis(7_400)).as_secs(), 8);
    }

    #[test]
    fn the_goal_takes_the_further_of_calls_and_time() {
        let either = Goal::of(Some(1_000), Some(Duration::from_secs(10)));
        assert_eq!(either.fraction(&now(100, 5)), 0.5);
        assert_eq!(either.fraction(&now(800, 5)), 0.8);
        assert_eq!(Goal::of(Some(1_000), None).fraction(&now(2_000, 5)), 1.0);
        assert_eq!(Goal::of(None, None).fraction(&now(2_000, 5)), 0.0);
    }

    #[test]
    fn the_figures_keep_their_order_and_show_what_is_known() {
        let mut figures = now(100, 2);
        assert_eq!(
            figures.figures().join(", "),
            "50.00 ops/s, 2 errors, p99 5.00ms"
        );
        figures.in_flight = Some(1_600);
        figures.stuck = 1;
        figures.ops_per_sec = None;
        assert_eq!(
            figures.figures().join(" · "),
            "- ops/s · 2 errors · p99 5.00ms"
        );
        assert_eq!(figures.workers(), ["1,600 in flight", "1 stuck worker"]);
    }

    #[test]
    fn the_bar_fits_in_80_columns() {
        let mut figures = now(123_456_789, 3_599);
        figures.ops_per_sec = Some(1_234_567.0);
        figures.errors = 12_345_678;
        figures.p99_ns = Some(1_234_567_890);
        figures.in_flight = Some(1_000_000);
        figures.stuck = 120;
        for goal in [
            Goal::Calls(999_999_999),
            Goal::Time(Duration::from_secs(3_600)),
            Goal::Either {
                calls: 999_999_999,
                time: Duration::from_secs(3_600),
            },
        ] {
            let message = bar_message(goal, &figures);
            let mut lines = message.lines();
            let first = format!(
                "run 2/3 (8×64) [{}] {}",
                " ".repeat(24),
                lines.next().unwrap()
            );
            for line in std::iter::once(first.as_str()).chain(lines) {
                assert!(
                    line.chars().count() <= 80,
                    "{} columns: {line}",
                    line.chars().count()
                );
            }
        }
    }

    #[test]
    fn a_status_line_is_self_contained() {
        let mut progress = Progress::new(Mode::Lines, 1, Success::default(), 1, None);
        progress.goal = Goal::Time(Duration::from_secs(60));
        progress.line_name = "run (2×2)".to_string();
        assert_eq!(
            progress.status_line(&now(12_870, 5)),
            "gorgon: run (2×2): 5s of 1m, 12,870 ops, 50.00 ops/s, 2 errors, p99 5.00ms, \
             1m 5s left"
        );
        progress.goal = Goal::Calls(90_000);
        assert_eq!(
            progress.status_line(&now(12_870, 5)),
            "gorgon: run (2×2): 5s, 12,870 of 90,000 ops (14%), 50.00 ops/s, 2 errors, \
             p99 5.00ms, ETA 1m 5s"
        );
        let mut early = now(0, 1);
        (early.ops_per_sec, early.p99_ns, early.left) = (None, None, None);
        assert_eq!(
            progress.status_line(&early),
            "gorgon: run (2×2): 1s, 0 of 90,000 ops (0%), - ops/s, 2 errors, p99 -, ETA -"
        );
    }
}
