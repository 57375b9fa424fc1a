//! What each lane is calling right now, for the parent's watchdog.
//!
//! A call that never returns cannot report itself. So each lane writes
//! what it calls into a slot of its own ([`CallSlot`]: the number and when
//! it began, and the step the plugin is in when it times steps); the
//! worker's main thread reads every slot once per interval and tells the
//! parent which calls have been running long. The parent can then name a
//! stuck call (its number, how long it has run, its step) and end the run
//! by `--call-timeout`, even when the call never comes back.

use crate::clock::Clock;
use crate::plugin::slot::CallSlot;
use crate::plugin::watch::ThreadWatch;
use crate::protocol::RunningCall;
use crate::stats::Stats;

/// The calls reported per worker and interval: the longest ones.
const REPORTED: usize = 5;
/// Calls running at least this long are reported by number.
const LONG_NS: u64 = 1_000_000_000;

/// The slots of a worker's lanes, and the watches of its threads.
pub(super) struct Board {
    slots: Box<[CallSlot]>,
    watches: Box<[ThreadWatch]>,
}

impl Board {
    pub fn new(lanes: u32, threads: u32) -> Board {
        Board {
            slots: (0..lanes).map(|_| CallSlot::default()).collect(),
            watches: (0..threads).map(|_| ThreadWatch::default()).collect(),
        }
    }

    pub fn slot(&self, lane: u32) -> &CallSlot {
        &self.slots[lane as usize]
    }

    pub fn watch(&self, thread: u32) -> &ThreadWatch {
        &self.watches[thread as usize]
    }

    /// The unsent results, by interval, of the threads found in the same
    /// plugin call as at the last look (`seen`, one stamp per thread,
    /// updated here): a thread stuck in a call hands nothing over itself.
    pub fn take_stuck(&self, seen: &mut [u64]) -> Vec<(u64, Stats)> {
        let mut taken = Vec::new();
        for (watch, seen) in self.watches.iter().zip(seen.iter_mut()) {
            let stamp = watch.stamp();
            if stamp != 0 && stamp == *seen {
                taken.extend(watch.take_if_stuck(stamp));
            }
            *seen = stamp;
        }
        taken
    }

    /// How many calls are running, and the longest of those running for
    /// a second or more, as of `now_raw`.
    pub fn running(&self, clock: &Clock, now_raw: u64) -> (u32, Vec<RunningCall>) {
        let mut in_flight = 0;
        let mut long = Vec::new();
        for slot in self.slots.iter() {
            let Some((number, since)) = slot.current() else {
                continue;
            };
            in_flight += 1;
            let running_ns = clock.delta_as_nanos(since, now_raw);
            if running_ns >= LONG_NS {
                long.push((slot, number, running_ns));
            }
        }
        long.sort_by_key(|(_, _, running_ns)| std::cmp::Reverse(*running_ns));
        long.truncate(REPORTED);
        // Only the reported calls' steps are read.
        let long = long
            .into_iter()
            .map(|(slot, number, running_ns)| RunningCall {
                number,
                running_ns,
                step: slot.step_of(number),
            })
            .collect();
        (in_flight, long)
    }
}
