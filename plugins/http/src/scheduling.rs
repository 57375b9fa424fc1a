//! Running the plugin's threads under `SCHED_BATCH`.
//!
//! A blocking client sleeps in `read` after each request and is woken by
//! the response. Under the default policy that wakeup preempts whatever
//! runs on the CPU, often the server under test on the same machine, which
//! then answers the other connections one at a time: one context switch
//! per request on both sides. `SCHED_BATCH` keeps the same share of CPU
//! (same nice value) but gives up wakeup preemption, so the server finishes
//! the batch of requests it has before the client threads run, and each
//! side handles several requests per switch. On the loopback benchmark
//! (docs/benchmarks-http.md) this cut the plugin's CPU per request by
//! about a fifth and raised requests/s by as much. Any user may choose it;
//! no privilege is needed.

/// Switches the calling thread to `SCHED_BATCH`; false if the system
/// refused (then the thread keeps the default policy, which only costs
/// speed).
pub fn batch_this_thread() -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain syscall on the calling thread (pid 0) with a valid
    // parameter block.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) == 0 }
}

/// This thread's scheduling policy, for tests.
#[cfg(test)]
pub fn policy() -> i32 {
    // SAFETY: plain syscall on the calling thread.
    unsafe { libc::sched_getscheduler(0) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_thread_can_switch_to_batch() {
        std::thread::spawn(|| {
            assert!(super::batch_this_thread());
            assert_eq!(super::policy(), libc::SCHED_BATCH);
        })
        .join()
        .unwrap();
    }
}
