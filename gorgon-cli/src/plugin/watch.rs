//! Whether a worker thread is inside plugin code, so that the worker's
//! main thread can take over the results of a thread stuck in a call.
//!
//! A thread hands its results over at interval boundaries, from its loop
//! of calls, after a call returns. A call that never returns (the run's
//! planned end, a stop or `--call-timeout` then kill the worker after
//! `--grace`) would take with it everything the thread finished since its
//! last hand-over. So each thread keeps a [`ThreadWatch`], and the main
//! thread, finding a thread in the same plugin call at two looks, takes
//! the thread's unsent results out of its recorder and sends them itself.
//!
//! # The protocol
//!
//! Three words per thread, on a cache line of their own:
//! - `in_plugin`: a stamp (a clock reading, never 0) taken as the thread
//!   entered plugin code; 0 while it runs host code;
//! - `touching`: 1 while a callback from plugin code writes the recorder
//!   (`Recorder::record`);
//! - `frozen`: 1 while the main thread may be taking the results.
//!
//! The thread, whenever it goes from plugin code to host code that uses
//! the recorder (a call returns; on fibers, a fiber's wait goes back to
//! the scheduler, where the thread's other fibers record), does
//! `in_plugin = 0; compiler fence; if frozen { wait until it clears }`;
//! a callback that records does `touching = 1; compiler fence; if frozen
//! { touching = 0; wait; retry }; write; touching = 0 (Release)`. The
//! thread enters plugin code with `compiler fence; in_plugin = stamp`.
//! Those are plain loads and stores on a line only this thread writes:
//! the hot path takes no atomic read-modify-write and no fence.
//!
//! The main thread (rarely) reads `in_plugin = s0`, and a moment later:
//! `frozen = 1; membarrier; if in_plugin == s0 != 0 and touching == 0 {
//! take; membarrier }; frozen = 0 (Release)`.
//!
//! # Why that is enough
//!
//! The thread side is Dekker's store-then-load, which on its own needs a
//! full fence on both sides. `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`
//! stands in for the thread's: before it returns, every other running
//! thread of the process has executed a full memory barrier (an
//! interrupt), and a thread not running has been switched out (which is
//! one too). Call that point in the thread's program order P. The compiler
//! fence keeps the thread's store and load in program order, so either:
//! - the thread's `in_plugin = 0` (or `touching = 1`) comes before P: it
//!   is then visible to the main thread once membarrier returns, which
//!   sees that the thread left the call (or is recording) and takes
//!   nothing; or
//! - it comes after P: then so does the thread's load of `frozen`, and
//!   `frozen = 1` was stored before membarrier began, so the thread sees
//!   it and waits before touching the recorder.
//!
//! `in_plugin == s0` with `s0` read *before* membarrier also makes the
//! thread's earlier writes to the recorder visible: the store of `s0` was
//! seen before membarrier began, so it comes before P, and so does
//! everything the thread wrote before it (the compiler fence keeps the
//! recorder's writes before the stamp). A stamp the thread stored after P
//! could not have been read before; the stamps of two entries differ, so
//! a thread that left and entered again meanwhile is not taken from.
//! `touching` is stored 0 with Release and read with Acquire, so a
//! measurement written just before is seen whole.
//!
//! The second membarrier, after the take, lets the thread's load of
//! `frozen` stay relaxed: a load before that barrier's point in the thread
//! reads 1 (and the wait then reads it with Acquire), a load after it
//! comes after the take in the thread's order, so the thread's later use
//! of the recorder sees the take.
//!
//! Where membarrier is unavailable (a kernel before 4.14, a seccomp
//! filter), nothing is ever taken: results then reach the parent only
//! through the thread's own hand-overs.

use std::ptr;
use std::sync::atomic::{compiler_fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::libc;

use crate::recorder::ThreadRecorder;
use crate::stats::Stats;

/// `membarrier(2)` commands (include/uapi/linux/membarrier.h).
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

/// Whether this process registered for expedited private membarriers.
static REGISTERED: AtomicBool = AtomicBool::new(false);

fn membarrier(cmd: libc::c_int) -> bool {
    // SAFETY: a system call that takes two integers (and a CPU number
    // ignored without MEMBARRIER_CMD_FLAG_CPU) and touches no memory of
    // ours.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0u32, 0i32) == 0 }
}

/// Registers the process for the barrier the main thread issues before it
/// takes a stuck thread's results; false when the kernel will not (then
/// [`ThreadWatch::take_if_stuck`] takes nothing). Once, before the threads
/// that may be taken from start.
pub fn register() -> bool {
    if !REGISTERED.load(Ordering::Relaxed) && membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)
    {
        REGISTERED.store(true, Ordering::Relaxed);
    }
    REGISTERED.load(Ordering::Relaxed)
}

/// One worker thread's state for the protocol above, on a cache line that
/// only its thread writes on the hot path.
#[repr(align(64))]
#[derive(Default)]
pub struct ThreadWatch {
    in_plugin: AtomicU64,
    touching: AtomicU32,
    frozen: AtomicU32,
    /// The thread's recorder, published once before its first call; null
    /// before and after.
    recorder: AtomicPtr<ThreadRecorder>,
}

impl ThreadWatch {
    /// The thread enters plugin code; `stamp` is a clock reading, which
    /// differs from one entry to the next.
    #[inline(always)]
    pub fn entering(&self, stamp: u64) {
        // The recorder's writes stay before the stamp (see the module's
        // doc).
        compiler_fence(Ordering::SeqCst);
        self.in_plugin.store(stamp.max(1), Ordering::Relaxed);
    }

    /// The thread is back in host code: returns once the main thread is
    /// not taking its results, so the recorder is the thread's again.
    #[inline(always)]
    pub fn returned(&self) {
        self.in_plugin.store(0, Ordering::Relaxed);
        compiler_fence(Ordering::SeqCst);
        if self.frozen.load(Ordering::Relaxed) != 0 {
            self.wait_thawed();
        }
        // The recorder's reads and writes stay after the check.
        compiler_fence(Ordering::SeqCst);
    }

    /// Runs `write` on the recorder from inside plugin code (a callback),
    /// once the main thread is not taking the results.
    #[inline]
    pub fn touching<R>(&self, write: impl FnOnce() -> R) -> R {
        loop {
            self.touching.store(1, Ordering::Relaxed);
            compiler_fence(Ordering::SeqCst);
            if self.frozen.load(Ordering::Relaxed) == 0 {
                // The recorder's writes stay after the check.
                compiler_fence(Ordering::SeqCst);
                break;
            }
            self.touching.store(0, Ordering::Relaxed);
            self.wait_thawed();
        }
        let written = write();
        self.touching.store(0, Ordering::Release);
        written
    }

    /// The main thread is taking the results: spins a little (a take is
    /// a few microseconds), then sleeps.
    #[cold]
    #[inline(never)]
    fn wait_thawed(&self) {
        let mut spins = 0u32;
        while self.frozen.load(Ordering::Acquire) != 0 {
            if spins < 1_000 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }

    /// A stamp for a thread that enters plugin code again after a wait on
    /// a fiber, where no call's clock reading is at hand: monotonic
    /// nanoseconds, with the top bit set so that it never equals a raw
    /// clock reading of the loops.
    pub fn fresh_stamp() -> u64 {
        static BASE: OnceLock<Instant> = OnceLock::new();
        let nanos = BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64;
        nanos | 1 << 63
    }

    /// Publishes the thread's recorder, before its first call.
    pub fn publish(&self, recorder: *mut ThreadRecorder) {
        self.recorder.store(recorder, Ordering::Release);
    }

    /// The thread no longer uses its recorder (it is about to be freed).
    pub fn withdraw(&self) {
        self.recorder.store(ptr::null_mut(), Ordering::Release);
    }

    /// The thread's stamp now: 0 in host code.
    pub fn stamp(&self) -> u64 {
        self.in_plugin.load(Ordering::Relaxed)
    }

    /// Takes the thread's unsent results, with their interval, if it is
    /// still in the plugin code it was in when [`ThreadWatch::stamp`] read
    /// `seen`; `None` when it is not, when it holds nothing, or when the
    /// kernel offers no membarrier. The thread, if its call returns, waits
    /// for this to end, then records into its emptied recorder.
    pub fn take_if_stuck(&self, seen: u64) -> Option<(u64, Stats)> {
        self.with_stuck(seen, |recorder| {
            (!recorder.is_empty()).then(|| (recorder.interval, recorder.take_delta()))
        })
    }

    /// Runs `take` on the thread's recorder if the thread is still in the
    /// plugin code it was in when [`ThreadWatch::stamp`] read `seen` (see
    /// the module's doc); `None` otherwise.
    fn with_stuck<R>(
        &self,
        seen: u64,
        take: impl FnOnce(&mut ThreadRecorder) -> Option<R>,
    ) -> Option<R> {
        if seen == 0 || !REGISTERED.load(Ordering::Relaxed) {
            return None;
        }
        let recorder = self.recorder.load(Ordering::Acquire);
        if recorder.is_null() {
            return None;
        }
        self.frozen.store(1, Ordering::Relaxed);
        let mut taken = None;
        if membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)
            && self.in_plugin.load(Ordering::Relaxed) == seen
            && self.touching.load(Ordering::Acquire) == 0
        {
            // SAFETY: by the protocol in the module's doc, the thread is
            // in plugin code, not inside a callback that writes the
            // recorder, and blocks before it touches the recorder again
            // until `frozen` clears; the recorder lives until the thread
            // ends, which it cannot do without returning to host code
            // first. So this is the only access to it meanwhile, and the
            // thread's earlier writes are visible here.
            taken = take(unsafe { &mut *recorder });
            // Orders the take before the thread's next use of the
            // recorder, whose load of `frozen` is relaxed.
            membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
        }
        self.frozen.store(0, Ordering::Release);
        taken
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use super::*;
    use crate::recorder::{Outcome, Params};

    fn recorder_with(calls: u64) -> Box<ThreadRecorder> {
        let mut recorder = Box::new(ThreadRecorder::new(Arc::new(Params::default())));
        for _ in 0..calls {
            recorder.record_outcome(&Outcome::Label(b"OK"), 1_000);
        }
        recorder
    }

    fn calls(stats: &Stats) -> u64 {
        stats.results.get("OK").map_or(0, |h| h.len())
    }

    fn steps(stats: &Stats) -> u64 {
        stats.measurements.get("step").map_or(0, |h| h.len())
    }

    #[test]
    fn a_thread_in_the_same_call_gives_its_results_up_and_none_other_does() {
        let available = register();
        let mut recorder = recorder_with(3);
        recorder.interval = 4;
        let watch = ThreadWatch::default();
        watch.publish(&mut *recorder);
        // In host code: never taken from.
        assert_eq!(watch.stamp(), 0);
        assert!(watch.take_if_stuck(0).is_none());
        // Left the call it was in, and entered another.
        watch.entering(7);
        watch.returned();
        watch.entering(8);
        assert!(watch.take_if_stuck(7).is_none(), "a later call");
        assert_eq!(recorder.interval, 4);
        assert!(!recorder.is_empty(), "nothing taken");
        // Still in the call it was seen in.
        let taken = watch.take_if_stuck(8);
        if !available {
            // Without membarrier nothing can be taken safely.
            assert!(taken.is_none());
            return;
        }
        let (index, stats) = taken.expect("taken");
        assert_eq!((index, calls(&stats)), (4, 3));
        assert!(recorder.is_empty(), "the thread's recorder is emptied");
        assert!(watch.take_if_stuck(8).is_none(), "nothing left to take");
        // Not frozen any more: the thread goes on.
        watch.returned();
        watch.withdraw();
        assert!(watch.take_if_stuck(8).is_none());
    }

    #[test]
    fn a_thread_writing_its_recorder_from_plugin_code_is_not_taken_from() {
        register();
        let mut recorder = recorder_with(2);
        let watch = ThreadWatch::default();
        watch.publish(&mut *recorder);
        watch.entering(5);
        let taken = watch.touching(|| watch.take_if_stuck(5));
        assert!(taken.is_none());
        assert!(!recorder.is_empty());
    }

    /// The thread records as fast as it can while the main thread takes
    /// whatever it may, each take made slow on purpose: the thread never
    /// touches its recorder during a take, and every call is counted
    /// exactly once, either by a take or by what the thread holds at the
    /// end.
    #[test]
    fn takes_racing_a_busy_thread_overlap_lose_and_double_nothing() {
        if !register() {
            return;
        }
        struct Shared(*mut ThreadRecorder);
        // SAFETY: the recorder is used by the test thread only in host
        // code, and by the main thread only through `with_stuck`, which
        // the protocol keeps apart.
        unsafe impl Sync for Shared {}
        const CALLS: u64 = 20_000;
        let recorder = Box::into_raw(recorder_with(0));
        let shared = Shared(recorder);
        let watch = ThreadWatch::default();
        watch.publish(recorder);
        let done = AtomicBool::new(false);
        let taking = AtomicBool::new(false);
        let overlaps = AtomicU64::new(0);
        let (mut taken, mut measured, mut takes) = (0, 0, 0);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                // Set however the thread ends, so the loop below ends.
                struct Done<'a>(&'a AtomicBool);
                impl Drop for Done<'_> {
                    fn drop(&mut self) {
                        self.0.store(true, Ordering::Release);
                    }
                }
                let _done = Done(&done);
                let shared = &shared;
                let touch = |write: &mut dyn FnMut(&mut ThreadRecorder)| {
                    if taking.load(Ordering::SeqCst) {
                        overlaps.fetch_add(1, Ordering::Relaxed);
                    }
                    // SAFETY: called in host code past `returned`, or
                    // inside `touching`, as the protocol asks.
                    write(unsafe { &mut *shared.0 });
                };
                for call in 1..=CALLS {
                    watch.entering(call);
                    // "Plugin code", which records a measurement now and
                    // then.
                    for _ in 0..call % 64 {
                        std::hint::spin_loop();
                    }
                    if call % 2 == 0 {
                        watch.touching(|| touch(&mut |r| r.record_measurement(b"step", 1)));
                    }
                    watch.returned();
                    touch(&mut |r| r.record_outcome(&Outcome::Label(b"OK"), 1));
                }
            });
            while !done.load(Ordering::Acquire) {
                let seen = watch.stamp();
                let stats = watch.with_stuck(seen, |recorder| {
                    taking.store(true, Ordering::SeqCst);
                    let stats = recorder.take_delta();
                    // Long enough for the thread to come back meanwhile.
                    let until = Instant::now() + Duration::from_micros(50);
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                    taking.store(false, Ordering::SeqCst);
                    Some(stats)
                });
                if let Some(stats) = stats {
                    taken += calls(&stats);
                    measured += steps(&stats);
                    takes += 1;
                }
                // As the worker looks only now and then: the thread moves
                // on before the next look.
                while seen != 0 && watch.stamp() == seen && !done.load(Ordering::Acquire) {
                    std::hint::spin_loop();
                }
            }
        });
        // SAFETY: made by `Box::into_raw` above; the thread has ended.
        let mut recorder = unsafe { Box::from_raw(recorder) };
        let left = recorder.take_delta();
        assert_eq!(overlaps.load(Ordering::Relaxed), 0, "after {takes} takes");
        assert_eq!(taken + calls(&left), CALLS, "after {takes} takes");
        assert_eq!(measured + steps(&left), CALLS / 2, "after {takes} takes");
        assert!(takes > 0, "the race was never run");
    }
}
