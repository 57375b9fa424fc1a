//! The clock of the hot path: the CPU's time-stamp counter, read directly,
//! with a scale to nanoseconds measured over the worker's own start-up.
//!
//! Every call is timed with two clock reads, so the clock is a large part
//! of gorgon's cost per call: `rdtsc` takes a few nanoseconds where
//! `Instant::now()` (the vDSO's `clock_gettime`) takes 25-35 here. The
//! counter ticks at a fixed rate on CPUs with an invariant TSC, and
//! converting ticks to nanoseconds is a multiplication and a shift, once
//! the rate is known.
//!
//! The rate is measured against `CLOCK_MONOTONIC`: one reading of both
//! clocks when the worker starts ([`Calibration::start`]) and one when the
//! run starts ([`Calibration::finish`]). Start-up (exec, loading the
//! plugin, the threads' setup, waiting for every worker to be ready) lies
//! between them, so the span costs nothing; only when it is shorter than
//! [`MIN_SPAN`] does the worker wait for the rest, before it says it is
//! ready ([`Calibration::settle`]). Each reading brackets the monotonic
//! read between two counter reads, so its error is tens of nanoseconds,
//! and over 1 ms or more the scale is right to within 1e-4, ten times
//! finer than the histograms' 3 significant digits.
//!
//! quanta (which gorgon used before) calibrates the same way but spins
//! for it, at least 0.5 ms per process and several ms when 8 workers start
//! together on 2 cores; the start-up benchmark (bench/startup.sh) showed
//! that spin as about a third of the time from `gorgon run` to the first
//! operation. Without an invariant TSC (or off x86-64) the clock is
//! `CLOCK_MONOTONIC` itself, in nanoseconds, with no calibration.

use std::time::{Duration, Instant};

/// The least time between the two readings of a calibration.
pub const MIN_SPAN: Duration = Duration::from_millis(1);

/// Fixed-point scale: nanoseconds = ticks × factor >> SHIFT.
const SHIFT: u32 = 32;

/// A clock whose readings are raw ticks; [`Clock::delta_as_nanos`] turns
/// the difference of two into nanoseconds. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    kind: Kind,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// The time-stamp counter, `factor / 2^SHIFT` nanoseconds a tick.
    Counter { factor: u64 },
    /// Nanoseconds of the monotonic clock since `base`.
    Monotonic { base: Instant },
}

impl Clock {
    /// The current time in raw ticks.
    #[inline(always)]
    pub fn raw(&self) -> u64 {
        match self.kind {
            Kind::Counter { .. } => counter::ticks(),
            Kind::Monotonic { base } => base.elapsed().as_nanos() as u64,
        }
    }

    /// Nanoseconds from `start` to `end` (both from [`Clock::raw`]); 0 if
    /// `end` is not after `start`.
    #[inline(always)]
    pub fn delta_as_nanos(&self, start: u64, end: u64) -> u64 {
        let delta = end.saturating_sub(start);
        match self.kind {
            Kind::Counter { factor } => {
                let nanos = (u128::from(delta) * u128::from(factor)) >> SHIFT;
                u64::try_from(nanos).unwrap_or(u64::MAX)
            }
            Kind::Monotonic { .. } => delta,
        }
    }

    /// The monotonic clock itself, for machines without a usable counter.
    pub fn monotonic() -> Clock {
        Clock {
            kind: Kind::Monotonic {
                base: Instant::now(),
            },
        }
    }

    /// Nanoseconds per tick, for tests and diagnostics.
    #[cfg(test)]
    fn nanos_per_tick(&self) -> f64 {
        match self.kind {
            Kind::Counter { factor } => factor as f64 / (1u64 << SHIFT) as f64,
            Kind::Monotonic { .. } => 1.0,
        }
    }
}

/// A calibration in progress: the first reading, taken as early as
/// possible so that start-up fills the span.
#[derive(Debug)]
pub struct Calibration {
    first: Option<Reading>,
}

/// The counter and the monotonic clock read at (nearly) the same moment.
#[derive(Debug, Clone, Copy)]
struct Reading {
    ticks: u64,
    at: Instant,
}

impl Calibration {
    /// Takes the first reading; `first` is `None` when there is no usable
    /// counter, and the clock will be the monotonic one.
    pub fn start() -> Calibration {
        Calibration {
            first: counter::usable().then(Reading::take),
        }
    }

    /// Waits until [`MIN_SPAN`] has passed since the first reading, if it
    /// has not. A worker calls it before it says it is ready, so that
    /// [`Calibration::finish`] at `go` never has to wait and every worker
    /// starts its calls at once.
    pub fn settle(&self) {
        if let Some(first) = &self.first {
            let wait = MIN_SPAN.saturating_sub(first.at.elapsed());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
    }

    /// Takes the second reading (after [`Calibration::settle`], in case
    /// it was not called) and returns the clock.
    pub fn finish(self) -> Clock {
        self.settle();
        let Some(first) = self.first else {
            return Clock::monotonic();
        };
        let second = Reading::take();
        let nanos = second.at.duration_since(first.at).as_nanos();
        let ticks = u128::from(second.ticks.saturating_sub(first.ticks));
        match u64::try_from((nanos << SHIFT) / ticks.max(1)) {
            // A counter that did not move, or a nonsensical rate: do not
            // trust it.
            Ok(factor) if ticks > 0 && factor > 0 => Clock {
                kind: Kind::Counter { factor },
            },
            _ => Clock::monotonic(),
        }
    }
}

impl Reading {
    /// Reads the counter, the monotonic clock and the counter again, and
    /// keeps the monotonic time with the middle of the two counter values.
    /// Of a few tries it keeps the tightest bracket, so that a preemption
    /// between the reads does not skew it.
    fn take() -> Reading {
        let mut best: Option<(u64, Reading)> = None;
        for _ in 0..5 {
            let before = counter::ticks();
            let at = Instant::now();
            let after = counter::ticks();
            let width = after.saturating_sub(before);
            let reading = Reading {
                ticks: before + width / 2,
                at,
            };
            if best.is_none_or(|(w, _)| width < w) {
                best = Some((width, reading));
            }
        }
        best.expect("at least one try").1
    }
}

#[cfg(target_arch = "x86_64")]
mod counter {
    /// The time-stamp counter.
    #[inline(always)]
    pub fn ticks() -> u64 {
        // SAFETY: RDTSC exists on every x86-64 CPU; `usable` checks that
        // its rate is constant before the clock relies on it.
        unsafe { std::arch::x86_64::_rdtsc() }
    }

    /// Whether the counter ticks at a constant rate, in every power state
    /// and on every core (the "invariant TSC" of CPUID leaf 0x80000007).
    pub fn usable() -> bool {
        use std::arch::x86_64::__cpuid;
        // SAFETY: CPUID is available on every x86-64 CPU; the extended
        // leaf is only read when the CPU says it has it. (Newer Rust
        // declares `__cpuid` safe; older needs the block.)
        #[allow(unused_unsafe)]
        unsafe {
            __cpuid(0x8000_0000).eax >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod counter {
    /// No counter is read directly here; the clock is the monotonic one.
    #[inline(always)]
    pub fn ticks() -> u64 {
        0
    }

    pub fn usable() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_clock_agrees_with_the_monotonic_clock() {
        let clock = Calibration::start().finish();
        let (a, start) = (clock.raw(), Instant::now());
        std::thread::sleep(Duration::from_millis(30));
        let (b, end) = (clock.raw(), Instant::now());
        let ours = clock.delta_as_nanos(a, b) as f64;
        let theirs = end.duration_since(start).as_nanos() as f64;
        // Within 1% (scheduling between the paired reads aside, the
        // calibration itself is good to 1e-4).
        assert!(
            (ours / theirs - 1.0).abs() < 0.01,
            "{ours} ns by the clock, {theirs} ns by Instant ({} ns/tick)",
            clock.nanos_per_tick()
        );
    }

    #[test]
    fn a_calibration_spans_at_least_the_minimum() {
        let calibration = Calibration::start();
        let started = Instant::now();
        let _clock = calibration.finish();
        if counter::usable() {
            assert!(started.elapsed() >= MIN_SPAN - Duration::from_micros(50));
        }
    }

    #[test]
    fn deltas_are_never_negative_and_saturate() {
        for clock in [Calibration::start().finish(), Clock::monotonic()] {
            assert_eq!(clock.delta_as_nanos(10, 5), 0);
            assert_eq!(clock.delta_as_nanos(7, 7), 0);
            assert!(clock.delta_as_nanos(0, u64::MAX) > 0);
        }
        let slow = Clock {
            kind: Kind::Counter {
                factor: u64::MAX >> 1,
            },
        };
        assert_eq!(slow.delta_as_nanos(0, u64::MAX), u64::MAX);
    }

    #[test]
    fn the_monotonic_clock_counts_nanoseconds() {
        let clock = Clock::monotonic();
        let a = clock.raw();
        std::thread::sleep(Duration::from_millis(5));
        let b = clock.raw();
        let d = clock.delta_as_nanos(a, b);
        assert!((5_000_000..1_000_000_000).contains(&d), "{d}");
    }
}
