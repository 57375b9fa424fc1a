//! Load shapes: how long a run lasts, how fast operations start, how the
//! load ramps up, which calls are warm-up, and which labels are errors.
//!
//! The parent resolves the flags and `gorgon.toml` into one [`LoadPlan`],
//! then hands each worker slot its own piece of it ([`WorkerLoad`]): its
//! share of the numbers, its share of the rate with a phase so the slots'
//! start times interleave, and when its threads start. A worker needs
//! nothing else to play its part, so the same split works for worker
//! processes on SSH nodes.
//!
//! The arrival schedule of the open model is one global sequence: the
//! `m`-th operation is meant to start at `m / rate` seconds of "unramped
//! time", warped by the ramp-up (see [`warp`]). Worker slot `i` of `S` owns
//! the operations `m = i + k·S`, which are also the numbers it hands the
//! plugin, so in an open model a call's number is its place in the schedule.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};

use crate::config::Defaults;
use crate::plan::{self, Share};
use crate::stats::PANIC_LABEL;
use crate::threshold::Threshold;

/// Parses a human duration (`30s`, `1m 30s`, `500ms`) with a message that
/// says what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|_| {
        format!("malformed duration '{text}': expected a duration such as 30s, 1m 30s or 500ms")
    })
}

pub fn positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!("duration '{text}' must be more than zero")),
        d => Ok(d),
    }
}

/// A duration from the command line or the config file, written as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Span(pub Duration);

impl TryFrom<String> for Span {
    type Error = String;
    fn try_from(text: String) -> Result<Span, String> {
        parse_duration(&text).map(Span)
    }
}

/// A total arrival rate: operations per second across every process,
/// thread and node. Written `500/s`, `30/m` or `2/h`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub struct Rate {
    pub per_sec: f64,
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Rate, String> {
        let malformed = || {
            format!(
                "malformed rate '{text}': expected operations per time unit such as 500/s or 30/m"
            )
        };
        let (count, unit) = text.trim().split_once('/').ok_or_else(malformed)?;
        let count: f64 = count.trim().parse().map_err(|_| malformed())?;
        let seconds = match unit.trim() {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(malformed()),
        };
        if !count.is_finite() || count <= 0.0 {
            return Err(format!("rate '{text}' must be more than zero"));
        }
        Ok(Rate {
            per_sec: count / seconds,
        })
    }
}

impl TryFrom<String> for Rate {
    type Error = String;
    fn try_from(text: String) -> Result<Rate, String> {
        text.parse()
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.per_sec >= 1.0 || self.per_sec == 0.0 {
            write!(f, "{}/s", trim_float(self.per_sec))
        } else {
            write!(f, "{}/m", trim_float(self.per_sec * 60.0))
        }
    }
}

fn trim_float(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Calls that run before the measured part and are left out of the
/// statistics: a number of calls (`200`) or a time (`5s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "WarmupValue")]
pub enum Warmup {
    Calls(u64),
    Time(Duration),
}

impl FromStr for Warmup {
    type Err = String;

    fn from_str(text: &str) -> Result<Warmup, String> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse()
                .map(Warmup::Calls)
                .map_err(|_| format!("warm-up count '{text}' is too large"));
        }
        parse_duration(text).map(Warmup::Time).map_err(|_| {
            format!("malformed warm-up '{text}': expected a number of calls such as 200 or a duration such as 5s")
        })
    }
}

impl fmt::Display for Warmup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warmup::Calls(n) => write!(f, "{n} calls"),
            Warmup::Time(d) => write!(f, "{}", humantime::format_duration(*d)),
        }
    }
}

/// `warmup = 200` or `warmup = "5s"` in gorgon.toml.
#[derive(Deserialize)]
#[serde(untagged)]
enum WarmupValue {
    Calls(u64),
    Text(String),
}

impl TryFrom<WarmupValue> for Warmup {
    type Error = String;
    fn try_from(value: WarmupValue) -> Result<Warmup, String> {
        match value {
            WarmupValue::Calls(n) => Ok(Warmup::Calls(n)),
            WarmupValue::Text(text) => text.parse(),
        }
    }
}

/// The load-shape flags of `gorgon run` (flattened into its arguments).
#[derive(Debug, Clone, Default, Args)]
pub struct LoadArgs {
    /// Run for this long (30s, 1m 30s); with -n as well, stop at whichever
    /// comes first [or defaults.duration].
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub duration: Option<Duration>,

    /// Open model: start operations at this total rate across all processes
    /// and threads (500/s, 30/m), whatever their latency; latency is then
    /// measured from each operation's intended start [or defaults.rate].
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub rate: Option<Rate>,

    /// Start threads progressively over this time (closed model) or ramp
    /// the rate up linearly from zero (with --rate) [or defaults.ramp_up].
    #[arg(long = "ramp-up", value_name = "DURATION", value_parser = parse_duration)]
    pub ramp_up: Option<Duration>,

    /// Calls made first and left out of the statistics: a count (200) or a
    /// time (5s) [or defaults.warmup].
    #[arg(long, value_name = "N|DURATION", value_parser = parse_warmup)]
    pub warmup: Option<Warmup>,

    /// The result labels that count as success, e.g. 200,201; every other
    /// label, and always `panic`, is an error [default: every label but
    /// panic, or defaults.ok].
    #[arg(long, value_name = "LABEL,...", value_delimiter = ',')]
    pub ok: Option<Vec<String>>,

    /// A pass/fail gate checked at the end, e.g. 'p99<250ms',
    /// 'error_rate<1%', 'ops_per_sec>1000', 'http call 1:p95<50ms'
    /// (repeatable; replaces the config's `thresholds`). Exit code 1 when
    /// one fails.
    #[arg(long = "threshold", value_name = "EXPR", value_parser = parse_threshold)]
    pub thresholds: Vec<Threshold>,

    /// Run the worker threads under SCHED_BATCH: same share of CPU, but a
    /// thread woken by a reply does not preempt what runs (often the server
    /// under test on the same machine). Fewer context switches for
    /// plugins that block on a local server (docs/load-shapes.md)
    /// [or defaults.batch_scheduling; `--batch-scheduling=false` turns it
    /// off].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub batch_scheduling: Option<bool>,

    /// Run this many calls at once on each worker thread, each on a fiber
    /// of its own: for plugins that wait for I/O through `rec.wait` (the
    /// HTTP plugin does), one thread then serves many connections from
    /// one epoll wait, as an event loop does (docs/fibers.md)
    /// [default: 1, or defaults.fibers].
    #[arg(long, value_name = "F", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub fibers: Option<u32>,
}

fn parse_rate(text: &str) -> Result<Rate, String> {
    text.parse()
}

fn parse_warmup(text: &str) -> Result<Warmup, String> {
    text.parse()
}

fn parse_threshold(text: &str) -> Result<Threshold, String> {
    text.parse()
}

/// Which result labels count as errors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Success {
    /// The labels named by `--ok`; `None` means every label but `panic`.
    pub ok: Option<Vec<String>>,
}

impl Success {
    pub fn is_error(&self, label: &str) -> bool {
        label == PANIC_LABEL
            || self
                .ok
                .as_ref()
                .is_some_and(|ok| !ok.iter().any(|l| l == label))
    }
}

/// Everything about the shape of a run, resolved from the flags and the
/// config file and checked for consistency.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadPlan {
    /// Counted operations (warm-up excluded); `None` for a time-based run.
    pub operations: Option<u64>,
    pub duration: Option<Duration>,
    pub rate: Option<Rate>,
    pub ramp_up: Duration,
    pub warmup: Option<Warmup>,
    pub success: Success,
    /// Worker threads run under `SCHED_BATCH`.
    pub batch_scheduling: bool,
    /// Calls at once per worker thread, each on a fiber (1: no fibers).
    pub fibers: u32,
}

impl LoadPlan {
    /// Combines the command line with the config's defaults: a flag wins
    /// over its default. The length of a run is one setting: `-n` or
    /// `--duration` on the command line replaces both config defaults, so
    /// `defaults.operations` never cuts short a `--duration` run.
    pub fn resolve(args: &LoadArgs, operations: Option<u64>, defaults: &Defaults) -> LoadPlan {
        let (operations, duration) = if operations.is_some() || args.duration.is_some() {
            (operations, args.duration)
        } else {
            (defaults.operations, defaults.duration.map(|s| s.0))
        };
        let warmup = args.warmup.or(defaults.warmup).filter(|w| match w {
            Warmup::Calls(n) => *n > 0,
            Warmup::Time(d) => !d.is_zero(),
        });
        LoadPlan {
            operations,
            duration,
            rate: args.rate.or(defaults.rate),
            ramp_up: args
                .ramp_up
                .or(defaults.ramp_up.map(|s| s.0))
                .unwrap_or_default(),
            warmup,
            success: Success {
                ok: args.ok.clone().or_else(|| defaults.ok.clone()),
            },
            batch_scheduling: args
                .batch_scheduling
                .or(defaults.batch_scheduling)
                .unwrap_or(false),
            fibers: args.fibers.or(defaults.fibers).unwrap_or(1),
        }
    }

    /// The flags of `args` that only make sense for a real run, as they
    /// were written; `--debug` refuses them.
    pub fn given(args: &LoadArgs) -> Vec<&'static str> {
        [
            ("--duration", args.duration.is_some()),
            ("--rate", args.rate.is_some()),
            ("--ramp-up", args.ramp_up.is_some()),
            ("--warmup", args.warmup.is_some()),
            ("--threshold", !args.thresholds.is_empty()),
            ("--ok", args.ok.is_some()),
            ("--fibers", args.fibers.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }

    /// Checks that the pieces fit together; each refusal is one sentence.
    pub fn check(&self) -> Result<(), String> {
        if self.operations.is_none() && self.duration.is_none() {
            return Err(
                "say how many operations to run with -n/--operations, or for how long \
                 with --duration (or defaults.operations / defaults.duration in gorgon.toml)"
                    .to_string(),
            );
        }
        if let Some(ok) = &self.success.ok {
            if ok.iter().any(|l| l == PANIC_LABEL) {
                return Err(
                    "--ok cannot name `panic`: a panicking call is always an error".to_string(),
                );
            }
            if ok.iter().any(|l| l.trim().is_empty()) || ok.is_empty() {
                return Err("--ok needs result labels separated by commas, e.g. 200,201".into());
            }
        }
        if let Some(duration) = self.duration {
            if self.ramp_up > duration {
                return Err(format!(
                    "--ramp-up {} is longer than --duration {}: the ramp is part of the run",
                    humantime::format_duration(self.ramp_up),
                    humantime::format_duration(duration)
                ));
            }
        }
        if let (Some(rate), Some(n)) = (self.rate, self.operations) {
            // The schedule is kept in u64 nanoseconds (about 584 years).
            let last_due_ns = n.saturating_add(self.warmup_calls()) as f64 / rate.per_sec * 1e9;
            if last_due_ns >= u64::MAX as f64 {
                return Err(format!(
                    "--rate is so low that -n {n} operations would take centuries to start: \
                     raise the rate"
                ));
            }
        }
        if let (Some(rate), Some(n), Some(duration)) = (self.rate, self.operations, self.duration) {
            let most = self.reachable(rate, duration);
            if n > most {
                return Err(format!(
                    "--rate {rate} for {} starts at most {most} operations, fewer than -n {n}: \
                     raise the rate or the duration, or drop -n or --duration",
                    humantime::format_duration(duration)
                ));
            }
        }
        Ok(())
    }

    /// How many operations an open-model run of `duration` can start after
    /// its warm-up.
    fn reachable(&self, rate: Rate, duration: Duration) -> u64 {
        let ramp = self.ramp_up.as_nanos() as f64;
        let ns_per_call = 1e9 / rate.per_sec;
        let from = match self.warmup {
            Some(Warmup::Time(w)) => w.as_nanos() as f64,
            Some(Warmup::Calls(w)) => warp(w as f64 * ns_per_call, ramp),
            None => 0.0,
        };
        let to = from + duration.as_nanos() as f64;
        let calls = (unwarp(to, ramp) - unwarp(from, ramp)) / ns_per_call;
        (calls - 1e-6).ceil().max(0.0) as u64
    }

    /// The worker shares of a run over `slots` worker processes. A count
    /// warm-up takes numbers too: a count-based run with `--warmup W` hands
    /// out exactly `0..N+W`.
    pub fn shares(&self, slots: u32) -> Vec<Share> {
        match self.operations {
            None => plan::split_unbounded(slots),
            Some(n) => plan::split(n.saturating_add(self.warmup_calls()), slots),
        }
    }

    fn warmup_calls(&self) -> u64 {
        match self.warmup {
            Some(Warmup::Calls(n)) => n,
            _ => 0,
        }
    }

    /// What the worker that runs `share` with `threads` threads needs to
    /// know: its part of the rate, warm-up and ramp.
    pub fn worker_load(&self, share: Share, threads: u32) -> WorkerLoad {
        let (slot, slots) = (share.offset, share.stride.max(1));
        let ramp = self.ramp_up.as_nanos() as u64;
        // A fiber is a lane of its own, as a thread is.
        let threads = threads.max(1).saturating_mul(self.fibers.max(1));
        let lanes = slots.saturating_mul(u64::from(threads));
        WorkerLoad {
            duration_ns: self.duration.map(|d| d.as_nanos() as u64),
            warmup_calls: match self.warmup {
                Some(Warmup::Calls(w)) => plan::split(w, slots as u32)
                    .get(slot as usize)
                    .map_or(0, |s| s.count),
                _ => 0,
            },
            warmup_ns: match self.warmup {
                Some(Warmup::Time(w)) => Some(w.as_nanos() as u64),
                _ => None,
            },
            rate_per_sec: self.rate.map(|r| r.per_sec / slots as f64),
            phase_ns: self
                .rate
                .map_or(0, |r| (slot as f64 * 1e9 / r.per_sec) as u64),
            ramp_up_ns: ramp,
            // Closed model: the run's threads ("lanes") start evenly spread
            // over the ramp; this slot's threads are lanes slot, slot + S, …
            ramp_offset_ns: (u128::from(ramp) * u128::from(slot) / u128::from(lanes)) as u64,
            ramp_step_ns: ramp / u64::from(threads.max(1)),
            batch_scheduling: self.batch_scheduling,
            fibers: self.fibers.max(1),
        }
    }
}

/// One worker's part of the load plan, as `gorgon worker` flags.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct WorkerLoad {
    /// Length of the measured part, from its start.
    #[arg(long)]
    pub duration_ns: Option<u64>,
    /// The first this many indices of the share are warm-up calls.
    #[arg(long, default_value_t = 0)]
    pub warmup_calls: u64,
    /// Calls started before this time are warm-up calls.
    #[arg(long)]
    pub warmup_ns: Option<u64>,
    /// Open model: this worker's arrival rate (its share of the total).
    #[arg(long)]
    pub rate_per_sec: Option<f64>,
    /// Open model: when this worker's first operation is due (unramped).
    #[arg(long, default_value_t = 0)]
    pub phase_ns: u64,
    /// Open model: the rate ramps linearly from zero over this time.
    #[arg(long, default_value_t = 0)]
    pub ramp_up_ns: u64,
    /// Closed model: this worker's first thread starts this late, and each
    /// next one `ramp_step_ns` later.
    #[arg(long, default_value_t = 0)]
    pub ramp_offset_ns: u64,
    #[arg(long, default_value_t = 0)]
    pub ramp_step_ns: u64,
    /// The threads run under `SCHED_BATCH`.
    #[arg(long)]
    pub batch_scheduling: bool,
    /// Lanes per thread, each on a fiber (1: the thread is the lane).
    #[arg(long, default_value_t = 1)]
    pub fibers: u32,
}

impl WorkerLoad {
    /// The flags that carry this to a worker.
    pub fn arguments(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(d) = self.duration_ns {
            args.push(format!("--duration-ns={d}"));
        }
        if self.warmup_calls > 0 {
            args.push(format!("--warmup-calls={}", self.warmup_calls));
        }
        if let Some(w) = self.warmup_ns {
            args.push(format!("--warmup-ns={w}"));
        }
        if let Some(r) = self.rate_per_sec {
            args.push(format!("--rate-per-sec={r}"));
            args.push(format!("--phase-ns={}", self.phase_ns));
        }
        if self.ramp_up_ns > 0 {
            args.push(format!("--ramp-up-ns={}", self.ramp_up_ns));
            args.push(format!("--ramp-offset-ns={}", self.ramp_offset_ns));
            args.push(format!("--ramp-step-ns={}", self.ramp_step_ns));
        }
        // Only when set, so a node running an older gorgon still takes
        // every other run.
        if self.batch_scheduling {
            args.push("--batch-scheduling".to_string());
        }
        if self.fibers > 1 {
            args.push(format!("--fibers={}", self.fibers));
        }
        args
    }
}

/// A worker's arrival schedule: when its `k`-th operation is due, in
/// nanoseconds from the start of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    phase_ns: f64,
    period_ns: f64,
    ramp_ns: f64,
}

impl Schedule {
    pub fn new(load: &WorkerLoad, rate_per_sec: f64) -> Schedule {
        Schedule {
            phase_ns: load.phase_ns as f64,
            period_ns: 1e9 / rate_per_sec,
            ramp_ns: load.ramp_up_ns as f64,
        }
    }

    /// When operation `k` is due.
    #[inline]
    pub fn at(&self, k: u64) -> u64 {
        warp(self.phase_ns + k as f64 * self.period_ns, self.ramp_ns).round() as u64
    }

    /// The first operation due at or after `t_ns`.
    pub fn first_from(&self, t_ns: u64) -> u64 {
        let unramped = unwarp(t_ns as f64, self.ramp_ns);
        let k = ((unramped - self.phase_ns) / self.period_ns)
            .ceil()
            .max(0.0) as u64;
        // Rounding in `at` may put k a nanosecond early; step past it.
        if self.at(k) < t_ns {
            k + 1
        } else {
            k
        }
    }
}

/// Maps "unramped" time `s` (operations spaced evenly at the full rate) to
/// real time when the rate ramps linearly from zero over `ramp`: the
/// operations started by time `t` are `rate·t²/2ramp` during the ramp, and
/// `rate·(t − ramp/2)` after it; this is the inverse.
pub fn warp(s: f64, ramp: f64) -> f64 {
    if ramp <= 0.0 || s >= ramp / 2.0 {
        s + ramp / 2.0
    } else {
        (2.0 * ramp * s).sqrt()
    }
}

/// The inverse of [`warp`].
pub fn unwarp(t: f64, ramp: f64) -> f64 {
    if ramp <= 0.0 || t >= ramp {
        t - ramp / 2.0
    } else {
        t * t / (2.0 * ramp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_per_second_and_minute() {
        assert_eq!("500/s".parse::<Rate>().unwrap().per_sec, 500.0);
        assert_eq!("30/m".parse::<Rate>().unwrap().per_sec, 0.5);
        assert_eq!(" 7200 / h ".parse::<Rate>().unwrap().per_sec, 2.0);
        for bad in ["500", "500/x", "fast/s", "0/s", "-3/s", "/s", "inf/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad} accepted");
        }
        assert_eq!("500/s".parse::<Rate>().unwrap().to_string(), "500/s");
        assert_eq!("30/m".parse::<Rate>().unwrap().to_string(), "30/m");
    }

    #[test]
    fn warmups_are_counts_or_durations() {
        assert_eq!("200".parse(), Ok(Warmup::Calls(200)));
        assert_eq!("5s".parse(), Ok(Warmup::Time(Duration::from_secs(5))));
        assert!("5x".parse::<Warmup>().is_err());
        assert!("".parse::<Warmup>().is_err());
        assert!(parse_duration("1m 30s").is_ok());
        assert!(positive_duration("0s").is_err());
    }

    #[test]
    fn warp_and_unwarp_are_inverses_and_continuous() {
        let ramp = 10e9;
        for s in [0.0, 1e6, 1e9, 4.9e9, 5e9, 7e9, 1e11] {
            let t = warp(s, ramp);
            assert!((unwarp(t, ramp) - s).abs() < 1.0, "s={s}");
        }
        // At the end of the ramp, half a ramp's worth of calls have started.
        assert!((warp(5e9, ramp) - ramp).abs() < 1.0);
        assert_eq!(warp(3.0, 0.0), 3.0);
    }

    #[test]
    fn slots_interleave_into_one_schedule() {
        // 3 workers at 300/s together: every 1/300 s one of them starts.
        let plan = LoadPlan {
            rate: Some("300/s".parse().unwrap()),
            operations: Some(30),
            ..LoadPlan::default()
        };
        let mut due: Vec<(u64, u64)> = Vec::new();
        for share in plan.shares(3) {
            let load = plan.worker_load(share, 2);
            let schedule = Schedule::new(&load, load.rate_per_sec.unwrap());
            for k in 0..share.count {
                due.push((schedule.at(k), share.number(k)));
            }
        }
        due.sort_unstable();
        for (m, (at, number)) in due.iter().enumerate() {
            assert_eq!(*number, m as u64, "numbers follow the schedule");
            let expected = m as f64 * 1e9 / 300.0;
            assert!((*at as f64 - expected).abs() <= 1.0, "{m}: {at}");
        }
    }

    #[test]
    fn first_from_finds_the_first_due_operation() {
        let load = WorkerLoad {
            phase_ns: 5,
            ramp_up_ns: 1_000_000_000,
            ..WorkerLoad::default()
        };
        let schedule = Schedule::new(&load, 1000.0);
        for t in [0, 1, 3_000_000, 499_999_999, 1_500_000_000] {
            let k = schedule.first_from(t);
            assert!(schedule.at(k) >= t);
            assert!(k == 0 || schedule.at(k - 1) < t, "t={t} k={k}");
        }
    }

    #[test]
    fn a_count_warmup_takes_the_first_numbers() {
        let plan = LoadPlan {
            operations: Some(10),
            warmup: Some(Warmup::Calls(5)),
            ..LoadPlan::default()
        };
        let shares = plan.shares(2);
        assert_eq!(shares.iter().map(|s| s.count).sum::<u64>(), 15);
        let warm: Vec<u64> = shares
            .iter()
            .flat_map(|s| {
                let w = plan.worker_load(*s, 1).warmup_calls;
                (0..w).map(move |k| s.number(k))
            })
            .collect();
        let mut warm = warm;
        warm.sort_unstable();
        assert_eq!(warm, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn closed_ramp_spreads_every_thread_over_the_ramp() {
        let plan = LoadPlan {
            ramp_up: Duration::from_secs(8),
            duration: Some(Duration::from_secs(10)),
            ..LoadPlan::default()
        };
        let mut starts: Vec<u64> = plan
            .shares(2)
            .into_iter()
            .flat_map(|share| {
                let load = plan.worker_load(share, 4);
                (0..4).map(move |j| load.ramp_offset_ns + j * load.ramp_step_ns)
            })
            .collect();
        starts.sort_unstable();
        let expected: Vec<u64> = (0..8).map(|l| l * 1_000_000_000).collect();
        assert_eq!(starts, expected);
    }

    #[test]
    fn an_unreachable_count_is_refused() {
        let plan = LoadPlan {
            rate: Some("10/s".parse().unwrap()),
            operations: Some(1000),
            duration: Some(Duration::from_secs(5)),
            ..LoadPlan::default()
        };
        let error = plan.check().unwrap_err();
        assert!(error.contains("at most 50 operations"), "{error}");
        let plan = LoadPlan {
            operations: Some(50),
            ..plan
        };
        assert!(plan.check().is_ok());
        // A ramp halves what its own time can start.
        let plan = LoadPlan {
            ramp_up: Duration::from_secs(2),
            ..plan
        };
        assert!(plan.check().unwrap_err().contains("at most 40"));
    }

    #[test]
    fn success_defaults_to_everything_but_panic() {
        let default = Success::default();
        assert!(!default.is_error("FAIL"));
        assert!(default.is_error("panic"));
        let strict = Success {
            ok: Some(vec!["200".into(), "201".into()]),
        };
        assert!(!strict.is_error("201"));
        assert!(strict.is_error("500"));
        assert!(strict.is_error("panic"));
    }
}
