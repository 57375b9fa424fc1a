//! The closed loop: each lane starts its next call as soon as the last
//! one ended, so the load is as many calls at once as there are lanes.
//!
//! This is the hot path of a count-based run. Per call it reads the clock
//! twice, records one value into its thread's own histogram and compares
//! one number with the next time something needs doing (hand results
//! over, end the warm-up, stop at the deadline); everything else happens
//! once per chunk of numbers or once per interval.

use std::sync::atomic::Ordering;

use super::intervals::Intervals;
use super::lanes::LaneRun;
use super::numbers::Source;
use crate::recorder::ThreadRecorder;

/// Why a phase of calls ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// Its source of numbers is used up.
    Exhausted,
    /// Its time is up.
    Deadline,
    /// The run was stopped.
    Stopped,
}

/// Runs lane number `lane` of this worker: waits for its turn in the
/// ramp-up, runs the warm-up if any, then the counted calls.
pub(super) fn run(t: &mut LaneRun<'_>, lane: u32) {
    let shared = t.shared;
    let load = &shared.load;
    let start = load.ramp_offset_ns + u64::from(lane) * load.ramp_step_ns;
    if start > 0 && !t.wait_until(start) {
        return;
    }
    let from = match load.warmup_ns {
        // A timed warm-up ends at the same moment for every lane.
        Some(until) => {
            if calls(t, &shared.warm, until) == Ended::Stopped {
                return;
            }
            until
        }
        // A counted one ends for each lane when no warm-up call is left.
        None if load.warmup_calls > 0 => {
            if calls(t, &shared.warm, u64::MAX) == Ended::Stopped {
                return;
            }
            t.now_ns()
        }
        None => 0,
    };
    let deadline = t.start_measuring(from);
    calls(t, &shared.counted, deadline);
}

/// Makes calls back to back until `source` has no numbers left or
/// `until_ns` (from the start of the run) has passed.
fn calls(t: &mut LaneRun<'_>, source: &Source, until_ns: u64) -> Ended {
    if t.now_ns() >= until_ns {
        return Ended::Deadline;
    }
    // Locals, so the loop keeps them in registers across the plugin call.
    let shared = t.shared;
    let share = shared.share;
    let clock = t.clock;
    let origin = t.origin;
    let measuring = t.lane.measuring();
    let slot = t.slot;
    let watch = t.watch;
    let mut lane = t.lane.caller();
    let intervals = &mut t.intervals;
    let mut calls = 0u64;
    let mut end_ns = t.end_ns;
    let mut next_check_ns = intervals.next_ns.min(until_ns);
    let mut ended = Ended::Exhausted;
    'run: while let Some(chunk) = shared.numbers.take(source) {
        for k in chunk {
            if shared.stop.load(Ordering::Relaxed) {
                ended = Ended::Stopped;
                break 'run;
            }
            let number = share.number(k);
            let t0 = clock.raw();
            slot.calling(number, t0);
            watch.entering(t0);
            let mut returned = lane.call(number);
            let t1 = clock.raw();
            slot.idle();
            watch.returned();
            end_ns = clock.delta_as_nanos(origin, t1);
            let past_deadline = end_ns >= next_check_ns && {
                let recorder = returned.recorder();
                check(intervals, recorder, end_ns, until_ns, &mut next_check_ns)
            };
            // Warm-up calls are counted, not recorded.
            if measuring {
                returned.record(clock.delta_as_nanos(t0, t1));
            }
            calls += 1;
            if past_deadline {
                // The rest of the chunk is never called: its numbers stay
                // unused, never used twice.
                ended = Ended::Deadline;
                break 'run;
            }
        }
    }
    t.end_ns = end_ns;
    if measuring {
        t.calls += calls;
    } else {
        t.warmup_calls += calls;
    }
    ended
}

/// What a call that ended at `end_ns`, at or past the loop's next check,
/// does before it is recorded: hands the interval that just ended over
/// (so the call lands in the next one), sets the next check, and says
/// whether the phase's time is up. Out of line, so that the loop's usual
/// path runs straight through.
#[cold]
#[inline(never)]
fn check(
    intervals: &mut Intervals<'_>,
    recorder: &mut ThreadRecorder,
    end_ns: u64,
    until_ns: u64,
    next_check_ns: &mut u64,
) -> bool {
    if end_ns >= intervals.next_ns {
        intervals.flush(recorder, end_ns);
    }
    *next_check_ns = intervals.next_ns.min(until_ns);
    end_ns >= until_ns
}
