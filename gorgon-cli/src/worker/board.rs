//! What each lane is calling right now, for the parent's watchdog.
//!
//! A call that never returns cannot report itself. So each lane writes,
//! before each call, its number and when it began into a slot of its own
//! (two relaxed stores into a cache line nobody else writes), and clears it
//! after; the worker's main thread reads every slot once per interval and
//! tells the parent which calls have been running long. The parent can then
//! name a stuck call (its number and how long it has run) and end the run
//! by `--call-timeout`, even when the call never comes back.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::Clock;
use crate::protocol::RunningCall;

/// The calls reported per worker and interval: the longest ones.
const REPORTED: usize = 5;
/// Calls running at least this long are reported by number.
const LONG_NS: u64 = 1_000_000_000;

/// One lane's slot, alone on its cache line.
#[repr(align(64))]
#[derive(Default)]
pub(super) struct Slot {
    number: AtomicU64,
    /// Raw clock reading when the current call began; 0 between calls.
    since: AtomicU64,
}

impl Slot {
    #[inline(always)]
    pub fn calling(&self, number: u64, since_raw: u64) {
        self.number.store(number, Ordering::Relaxed);
        self.since.store(since_raw.max(1), Ordering::Relaxed);
    }

    #[inline(always)]
    pub fn idle(&self) {
        self.since.store(0, Ordering::Relaxed);
    }
}

/// The slots of a worker's lanes.
pub(super) struct Board {
    slots: Box<[Slot]>,
}

impl Board {
    pub fn new(lanes: u32) -> Board {
        Board {
            slots: (0..lanes).map(|_| Slot::default()).collect(),
        }
    }

    pub fn slot(&self, lane: u32) -> &Slot {
        &self.slots[lane as usize]
    }

    /// How many calls are running, and the longest of those running for
    /// a second or more, as of `now_raw`.
    pub fn running(&self, clock: &Clock, now_raw: u64) -> (u32, Vec<RunningCall>) {
        let mut in_flight = 0;
        let mut long = Vec::new();
        for slot in self.slots.iter() {
            let since = slot.since.load(Ordering::Relaxed);
            if since == 0 {
                continue;
            }
            in_flight += 1;
            let running_ns = clock.delta_as_nanos(since, now_raw);
            if running_ns >= LONG_NS {
                long.push(RunningCall {
                    number: slot.number.load(Ordering::Relaxed),
                    running_ns,
                });
            }
        }
        long.sort_by_key(|call| std::cmp::Reverse(call.running_ns));
        long.truncate(REPORTED);
        (in_flight, long)
    }
}
