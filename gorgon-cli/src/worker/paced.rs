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
use crate::plan::{Schedule, UNBOUNDED};
use crate::stats::LATE_AFTER_NS;

pub(super) fn run(t: &mut LaneRun<'_>, schedule: &Schedule) {
    let shared = t.shared;
    let load = &shared.load;
    let share = shared.share;
    // The measured operations are `first..end`; those before are warm-up.
    let (first, measured_from) = match load.warmup_ns {
        Some(until) => (schedule.first_from(until), until),
        None if load.warmup_calls > 0 => (load.warmup_calls, schedule.at(load.warmup_calls)),
        None => (0, 0),
    };
    let end = match (share.count, load.warmup_ns) {
        (UNBOUNDED, _) => u64::MAX,
        (count, Some(_)) => first.saturating_add(count),
        (count, None) => count,
    };
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
        if due >= deadline || !t.wait_until(due) {
            break;
        }
        let measuring = t.lane.measuring();
        let t0 = clock.raw();
        let mut returned = t.lane.call(share.number(k));
        let t1 = clock.raw();
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
