//! One lane's part of the run: its loop of calls (closed or paced), and
//! the bookkeeping the loops carry from one phase to the next.

use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use super::control::Start;
use super::intervals::Intervals;
use super::{closed, paced, Message, Shared};
use crate::clock::Clock;
use crate::plan::Schedule;
use crate::plugin::lane::PluginLane;
use crate::plugin::slot::CallSlot;
use crate::plugin::watch::ThreadWatch;

/// Runs lane number `index` of the worker (its place in the ramp-up):
/// its calls, its teardown, and says it finished.
pub(super) fn run(
    lane: PluginLane<'_>,
    index: u32,
    shared: &Shared,
    sender: &Sender<Message>,
    start: Start,
) {
    let mut run = LaneRun {
        lane,
        slot: shared.board.slot(index),
        watch: shared.board.watch(index / shared.load.fibers.max(1)),
        shared,
        intervals: Intervals::new(shared.intervals, sender),
        sender,
        clock: start.clock,
        origin: start.origin,
        calls: 0,
        warmup_calls: 0,
        end_ns: 0,
    };
    match shared.load.rate_per_sec {
        Some(rate) => paced::run(&mut run, &Schedule::new(&shared.load, rate)),
        None => closed::run(&mut run, index),
    }
    run.finish();
}

/// A lane while it runs: its plugin state, where its results go, and what
/// it has counted.
pub(super) struct LaneRun<'a> {
    pub lane: PluginLane<'a>,
    /// Where the lane says what it is calling, for the watchdog.
    pub slot: &'a CallSlot,
    /// Where the lane's thread says whether it is in plugin code, so that
    /// the main thread can take its results if it gets stuck there.
    pub watch: &'a ThreadWatch,
    pub shared: &'a Shared,
    pub intervals: Intervals<'a>,
    sender: &'a Sender<Message>,
    pub clock: Clock,
    /// The start of the run, in raw clock ticks.
    pub origin: u64,
    pub calls: u64,
    pub warmup_calls: u64,
    /// When the last call ended, in ns from the start.
    pub end_ns: u64,
}

impl LaneRun<'_> {
    /// Nanoseconds since the start of the run.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.clock.delta_as_nanos(self.origin, self.clock.raw())
    }

    pub fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }

    /// Hands the thread's results over if their interval has ended by
    /// `now_ns` (see [`Intervals::flush`]).
    pub fn flush(&mut self, now_ns: u64) {
        self.intervals.flush(self.lane.recorder(), now_ns);
    }

    /// Ends this lane's warm-up, whose calls were not recorded: the
    /// measured part starts at `from_ns` (or earlier, if another lane
    /// started it first). Returns the measured part's deadline.
    pub fn start_measuring(&mut self, from_ns: u64) -> u64 {
        self.lane.start_measuring();
        let from = self
            .shared
            .measured_from
            .fetch_min(from_ns, Ordering::Relaxed)
            .min(from_ns);
        // What the thread holds from before `from` (other lanes' calls)
        // goes out under its own interval; this lane's first calls land in
        // the interval `from` is in, or a later one.
        self.flush(from);
        match self.shared.load.duration_ns {
            Some(duration) => from.saturating_add(duration),
            None => u64::MAX,
        }
    }

    /// Waits until `at_ns` from the start: on a fiber, lets the thread's
    /// other fibers run meanwhile; on a thread, sleeps while it is far,
    /// then yields and finally spins for the last stretch, where a sleep
    /// would overshoot. False when the run was stopped meanwhile.
    pub fn wait_until(&mut self, at_ns: u64) -> bool {
        /// Linux sleeps overshoot by about 50-100 µs (timer slack).
        const SPIN_NS: u64 = 200_000;
        /// Below this a yield (a system call) may itself overshoot.
        const YIELD_NS: u64 = 20_000;
        /// A long wait still looks at the stop flag this often.
        const SLICE_NS: u64 = 50_000_000;
        let on_fiber = self.lane.on_fiber();
        loop {
            let now = self.now_ns();
            if now >= at_ns {
                return true;
            }
            if self.stopped() {
                return false;
            }
            let left = at_ns - now;
            if on_fiber {
                // The thread's scheduler times the wake-up itself.
                let slice = Duration::from_nanos(left.min(SLICE_NS));
                self.lane.sleep_until(Instant::now() + slice);
            } else if left > SPIN_NS {
                std::thread::sleep(Duration::from_nanos((left - SPIN_NS).min(SLICE_NS)));
            } else if left > YIELD_NS {
                // Many waiting threads must not starve the busy ones.
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// Says the lane's calls are done, then runs the plugin's teardown and
    /// sends what the thread's recorder holds (the teardown's measurements
    /// included). Done comes first, so that a teardown that hangs cannot
    /// hold back the worker's last frame: its process is then ended by the
    /// parent, its results all sent. What the thread holds belongs to its
    /// recorder's interval, whatever interval this lane ended in.
    fn finish(self) {
        let LaneRun {
            mut lane,
            intervals,
            sender,
            calls,
            warmup_calls,
            end_ns,
            ..
        } = self;
        // The calls' results go before the lane says it finished.
        intervals.hand_over(lane.recorder());
        let _ = sender.send(Message::Finished {
            calls,
            warmup_calls,
            end_ns,
        });
        lane.stop(|recorder| intervals.hand_over(recorder));
    }
}
