//! What a run cost the machine in memory: the peak resident set size of
//! the parent and of its workers, as each process measures it itself.
//!
//! From outside, `/usr/bin/time` reports the largest of a process and the
//! children it waited for, so it cannot tell the parent from a worker; and
//! a cluster worker is not a child at all. So each worker reads its own
//! peak (`getrusage(RUSAGE_SELF)`, the kernel's high-water mark) when it
//! finishes and sends it in its `done` frame, and the parent reads its own
//! at the end of each run. The benchmark (bench/memory.sh) checks that
//! neither grows with the number of operations.

/// Peak resident set sizes of one run, in bytes; `None` where unknown (a
/// worker that died, or a remote gorgon too old to say).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    /// The `gorgon run` process, at the end of this run (a high-water mark:
    /// it covers the runs of the suite before it too).
    pub parent_peak_rss_bytes: Option<u64>,
    /// The largest peak of the run's workers.
    pub worker_peak_rss_bytes: Option<u64>,
}

impl Footprint {
    /// Counts a worker's peak.
    pub fn add_worker(&mut self, peak: Option<u64>) {
        if let Some(peak) = peak {
            self.worker_peak_rss_bytes = Some(self.worker_peak_rss_bytes.unwrap_or(0).max(peak));
        }
    }
}

/// This process's peak resident set size so far, in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    use nix::sys::resource::{getrusage, UsageWho};
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let max_rss = u64::try_from(usage.max_rss()).ok()?;
    // Linux counts kibibytes, macOS bytes.
    Some(if cfg!(target_os = "macos") {
        max_rss
    } else {
        max_rss * 1024
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_grows_with_what_the_process_touches() {
        let before = peak_rss_bytes().expect("getrusage works");
        assert!(before > 100 * 1024, "a running test uses more than 100 KiB");
        // Touch 64 MiB more than the process has ever held.
        let block = vec![1u8; (64 << 20) + before as usize];
        std::hint::black_box(&block);
        let after = peak_rss_bytes().unwrap();
        assert!(after >= before + (60 << 20), "{before} -> {after}");
    }

    #[test]
    fn a_run_keeps_its_largest_worker() {
        let mut footprint = Footprint::default();
        footprint.add_worker(None);
        assert_eq!(footprint.worker_peak_rss_bytes, None);
        footprint.add_worker(Some(5));
        footprint.add_worker(Some(9));
        footprint.add_worker(None);
        footprint.add_worker(Some(7));
        assert_eq!(footprint.worker_peak_rss_bytes, Some(9));
    }
}
