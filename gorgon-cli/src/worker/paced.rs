//! The paced loop of the open model: operations start on a schedule,
//! whatever the latency of the ones before.
//!
//! The worker's operations are due at [`Schedule::at`]`(k)`. Its lanes
//! take the next due operation from a shared counter, wait for its time,
//! and call it; a lane that is still busy when an operation falls due
//! leaves it to a free one, and when none is free the operation starts
//! late. Its latency is then measured from when it was *due*, not from
//! when it could start, so a stall shows in the percentiles instead of
//! being hidden by the calls that were never made on time (coordinated
//! omission, corrected as wrk2 does). The service time, from the actual
//! start to the end, is kept beside it.

use super::lanes::LaneRun;
use super::Shared;
use crate::plan::{Schedule, UNBOUNDED};
use crate::stats::LATE_AFTER_NS;

/// The measured operations of a worker's share: `first..end` (those
/// before `first` are its warm-up), and when the measured part begins.
fn measured(shared: &Shared, schedule: &Schedule) -> (u64, u64, u64) {
    let load = &shared.load;
    let (first, measured_from) = match load.warmup_ns {
        Some(until) => (schedule.first_from(until), until),
        None if load.warmup_calls > 0 => (load.warmup_calls, schedule.at(load.warmup_calls)),
        None => (0, 0),
    };
    let end = match (shared.share.count, load.warmup_ns) {
        (UNBOUNDED, _) => u64::MAX,
        (count, Some(_)) => first.saturating_add(count),
        (count, None) => count,
    };
    (first, end, measured_from)
}

/// Open model with a duration: how many of the worker's operations were
/// due in the measured window but never started, because every lane was
/// still busy when the window closed (an overloaded rate). They are the
/// run's dropped starts: the window does not stretch to make them.
pub(super) fn dropped(shared: &Shared, measured_from_ns: u64, calls: u64) -> u64 {
    let (Some(rate), Some(duration)) = (shared.load.rate_per_sec, shared.load.duration_ns) else {
        return 0;
    };
    if measured_from_ns == u64::MAX {
        return 0;
    }
    let schedule = Schedule::new(&shared.load, rate);
    let (first, end, _) = measured(shared, &schedule);
    let due = schedule
        .first_from(measured_from_ns.saturating_add(duration))
        .min(end);
    due.saturating_sub(first).saturating_sub(calls)
}

pub(super) fn run(t: &mut LaneRun<'_>, schedule: &Schedule) {
    let shared = t.shared;
    let share = shared.share;
    let (first, end, measured_from) = measured(shared, schedule);
    let clock = t.clock;
    let origin = t.origin;
    let mut deadline = u64::MAX;
    while !t.stopped() {
        let k = shared.numbers.next();
        if k >= end {
            break;
        }
        if k >= first && !t.lane.measuring() {
            deadline = t.start_measuring(measured_from);
        }
        let due = schedule.at(k);
        // Past the window's end nothing starts, however late it is: the
        // run ends on time and what could not start counts as dropped.
        if due >= deadline || !t.wait_until(due) || t.now_ns() >= deadline {
            break;
        }
        let measuring = t.lane.measuring();
        let number = share.number(k);
        let t0 = clock.raw();
        t.slot.calling(number, t0);
        t.watch.entering(t0);
        let mut returned = t.lane.call(number);
        let t1 = clock.raw();
        t.slot.idle();
        t.watch.returned();
        let started = clock.delta_as_nanos(origin, t0);
        let end_ns = clock.delta_as_nanos(origin, t1);
        if end_ns >= t.intervals.next_ns {
            // The interval that just ended is handed over before this call
            // lands in the one it ended in.
            t.intervals.flush(returned.recorder(), end_ns);
        }
        if measuring {
            returned.record_paced(
                end_ns.saturating_sub(due),
                clock.delta_as_nanos(t0, t1),
                started > due.saturating_add(LATE_AFTER_NS),
            );
            t.calls += 1;
        } else {
            // Warm-up calls are counted, not recorded.
            t.warmup_calls += 1;
        }
        t.end_ns = end_ns;
    }
}
