//! The plan of a run: the load shape resolved and checked ([`LoadPlan`]),
//! split into worker shares, and each worker's piece of it
//! ([`WorkerLoad`], [`Schedule`]).
//!
//! Every call must get a unique number, and a count-based run must cover
//! exactly `0..N`. A worker slot `i` of `S` takes the numbers
//! `i, i + S, i + 2S, …`: disjoint by construction, dense, and needing no
//! coordination between processes or nodes, however many there are.
//!
//! The parent hands each worker slot its own piece of the plan: its share
//! of the numbers, its share of the rate with a phase so the slots' start
//! times interleave, and when its threads start. A worker needs nothing
//! else to play its part, so the same split works for worker processes on
//! SSH nodes.
//!
//! The arrival schedule of the open model is one global sequence: the
//! `m`-th operation is meant to start at `m / rate` seconds of "unramped
//! time", warped by the ramp-up (see [`warp`]). Worker slot `i` of `S` owns
//! the operations `m = i + k·S`, which are also the numbers it hands the
//! plugin, so in an open model a call's number is its place in the schedule.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::shape::{Rate, Success, Warmup};
use crate::stats::PANIC_LABEL;

/// A plugin parameter from `--set KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    pub key: String,
    pub value: String,
}

impl FromStr for Param {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => Ok(Param {
                key: key.trim().to_string(),
                value: value.to_string(),
            }),
            _ => Err(format!("malformed parameter '{text}': expected KEY=VALUE")),
        }
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// The `count` of a share with no count limit (a time-based run): the
/// worker takes numbers until the time is up or it is told to stop.
pub const UNBOUNDED: u64 = u64::MAX;

/// The numbers one worker process runs: `offset + k * stride`, `k < count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Share {
    pub offset: u64,
    pub stride: u64,
    pub count: u64,
}

impl Share {
    /// The `k`-th number of this share.
    #[inline]
    pub fn number(&self, k: u64) -> u64 {
        self.offset + k * self.stride
    }
}

/// Splits `operations` over `slots` worker processes, as evenly as integers
/// allow (the first `operations % slots` take one more).
pub fn split(operations: u64, slots: u32) -> Vec<Share> {
    let stride = u64::from(slots);
    (0..stride)
        .map(|offset| Share {
            offset,
            stride,
            count: operations / stride + u64::from(offset < operations % stride),
        })
        .collect()
}

/// Shares for a time-based run: the same interleaving, no count limit.
pub fn split_unbounded(slots: u32) -> Vec<Share> {
    let stride = u64::from(slots);
    (0..stride)
        .map(|offset| Share {
            offset,
            stride,
            count: UNBOUNDED,
        })
        .collect()
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
    /// How long a worker may take past the run's end, a stop or its
    /// `done` before it is killed.
    pub grace: Duration,
    /// How long one call may run before the run is stopped.
    pub call_timeout: Duration,
}

/// The call timeout when `--call-timeout` is not given: a call that has
/// not returned in a minute is stuck in any load test worth the name (the
/// HTTP plugin's own timeout is 10 s).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The grace period when `--grace` is not given: room for any call with a
/// sane timeout to finish, short enough for a person at a terminal.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

impl LoadPlan {
    /// When, from `go`, the workers should have ended by themselves: the
    /// warm-up when it is a time, then the duration. `None` for a run of a
    /// count, or when the warm-up is a count (its length is unknown).
    pub fn end_by(&self) -> Option<Duration> {
        let warmup = match self.warmup {
            None => Duration::ZERO,
            Some(Warmup::Time(time)) => time,
            Some(Warmup::Calls(_)) => return None,
        };
        Some(warmup + self.duration?)
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
            None => split_unbounded(slots),
            Some(n) => split(n.saturating_add(self.warmup_calls()), slots),
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
                Some(Warmup::Calls(w)) => split(w, slots as u32)
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

/// One worker's part of the load plan, carried in its
/// [`WorkerSpec`](crate::spec::WorkerSpec). A field an older parent does
/// not send takes its default; one this worker does not know is refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerLoad {
    /// Length of the measured part, from its start.
    pub duration_ns: Option<u64>,
    /// The first this many indices of the share are warm-up calls.
    pub warmup_calls: u64,
    /// Calls started before this time are warm-up calls.
    pub warmup_ns: Option<u64>,
    /// Open model: this worker's arrival rate (its share of the total).
    pub rate_per_sec: Option<f64>,
    /// Open model: when this worker's first operation is due (unramped).
    pub phase_ns: u64,
    /// Open model: the rate ramps linearly from zero over this time.
    pub ramp_up_ns: u64,
    /// Closed model: this worker's first thread starts this late, and each
    /// next one `ramp_step_ns` later.
    pub ramp_offset_ns: u64,
    pub ramp_step_ns: u64,
    /// The threads run under `SCHED_BATCH`.
    pub batch_scheduling: bool,
    /// Lanes per thread, each on a fiber (1: the thread is the lane).
    pub fibers: u32,
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
    fn shares_cover_every_number_once() {
        for (n, slots) in [(4000, 2), (10, 3), (7, 10), (1, 1), (0, 4)] {
            let mut seen: Vec<u64> = split(n, slots)
                .iter()
                .flat_map(|s| (0..s.count).map(move |k| s.number(k)))
                .collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n={n} slots={slots}");
        }
    }

    #[test]
    fn params_keep_equals_in_values() {
        let p: Param = "url=http://h/?a=b".parse().unwrap();
        assert_eq!((p.key.as_str(), p.value.as_str()), ("url", "http://h/?a=b"));
        assert!("novalue".parse::<Param>().is_err());
        assert!("=v".parse::<Param>().is_err());
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
}
