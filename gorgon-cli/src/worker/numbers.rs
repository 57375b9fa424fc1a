//! Handing out a worker's numbers to its lanes, each exactly once.
//!
//! A worker runs the indices `k` of its share (the number is
//! `offset + k·stride`, see [`crate::plan`]). Lanes take them from one
//! atomic counter: in chunks in the closed loop, one by one in the open
//! model, where an index is also an operation's place in the schedule.
//! A phase of the closed loop says how far it may go with a [`Source`].

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

/// The largest chunk of numbers a lane takes at once. Chunks amortise the
/// shared counter; the cap bounds how unevenly lanes can finish.
pub const MAX_CHUNK: u64 = 1024;

/// Where one phase of the closed loop takes its indices from.
pub enum Source {
    /// The indices up to (not including) this one. A count warm-up is
    /// `UpTo(w)` and the counted calls after it `UpTo(total)`, so warm-up
    /// calls get exactly the first numbers.
    UpTo(u64),
    /// This many more indices, wherever the counter is: the counted calls
    /// after a warm-up that ended in time.
    Counted(AtomicU64),
    /// No limit but time.
    Endless,
}

/// The shared index counter of one worker.
pub struct Numbers {
    next: AtomicU64,
    /// How many lanes take from it: the chunks are cut for them.
    lanes: u64,
}

impl Numbers {
    pub fn new(lanes: u32) -> Numbers {
        Numbers {
            next: AtomicU64::new(0),
            lanes: u64::from(lanes.max(1)),
        }
    }

    /// The next index, for the open model.
    #[inline]
    pub fn next(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// The next chunk from `source`, or `None` when it has none left.
    /// Chunks shrink towards the end (guided scheduling), so lanes finish
    /// close together.
    pub fn take(&self, source: &Source) -> Option<Range<u64>> {
        match source {
            Source::Endless => Some(self.fetch(MAX_CHUNK)),
            Source::Counted(left) => {
                let chunk = take_guided(left, self.lanes)?;
                Some(self.fetch(chunk))
            }
            Source::UpTo(limit) => {
                let mut start = self.next.load(Ordering::Relaxed);
                loop {
                    if start >= *limit {
                        return None;
                    }
                    let chunk = self.guided(*limit - start);
                    match self.next.compare_exchange_weak(
                        start,
                        start + chunk,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => return Some(start..start + chunk),
                        Err(now) => start = now,
                    }
                }
            }
        }
    }

    fn fetch(&self, n: u64) -> Range<u64> {
        let start = self.next.fetch_add(n, Ordering::Relaxed);
        start..start.saturating_add(n)
    }

    fn guided(&self, left: u64) -> u64 {
        (left / (self.lanes * 8)).clamp(1, MAX_CHUNK)
    }
}

/// Takes a guided chunk off a remaining count.
fn take_guided(left: &AtomicU64, lanes: u64) -> Option<u64> {
    let mut now = left.load(Ordering::Relaxed);
    loop {
        if now == 0 {
            return None;
        }
        let chunk = (now / (lanes * 8)).clamp(1, MAX_CHUNK);
        match left.compare_exchange_weak(now, now - chunk, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Some(chunk),
            Err(seen) => now = seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(numbers: &Numbers, source: &Source) -> Vec<u64> {
        let mut seen = Vec::new();
        while let Some(chunk) = numbers.take(source) {
            assert!(chunk.end - chunk.start <= MAX_CHUNK);
            seen.extend(chunk);
        }
        seen
    }

    #[test]
    fn a_warmup_takes_the_first_indices_and_the_rest_follow() {
        let numbers = Numbers::new(4);
        assert_eq!(
            drain(&numbers, &Source::UpTo(200)),
            (0..200).collect::<Vec<_>>()
        );
        assert_eq!(
            drain(&numbers, &Source::UpTo(10_000)),
            (200..10_000).collect::<Vec<_>>()
        );
    }

    #[test]
    fn lanes_sharing_a_source_take_each_index_once() {
        let numbers = Numbers::new(4);
        let counted = Source::Counted(AtomicU64::new(50_000));
        let taken: Vec<Vec<u64>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        let mut mine = drain(&numbers, &Source::UpTo(50_000));
                        mine.extend(drain(&numbers, &counted));
                        mine
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        let mut all: Vec<u64> = taken.into_iter().flatten().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100_000).collect::<Vec<_>>());
    }

    #[test]
    fn chunks_shrink_towards_the_end_so_lanes_finish_together() {
        let numbers = Numbers::new(2);
        let sizes: Vec<u64> = std::iter::from_fn(|| numbers.take(&Source::UpTo(100_000)))
            .map(|chunk| chunk.end - chunk.start)
            .collect();
        assert_eq!(sizes.iter().sum::<u64>(), 100_000);
        assert_eq!(sizes[0], MAX_CHUNK, "capped while much is left");
        assert!(sizes.windows(2).all(|w| w[1] <= w[0]), "never growing");
        assert_eq!(*sizes.last().unwrap(), 1, "single numbers at the very end");
    }

    #[test]
    fn a_count_after_a_timed_warmup_starts_where_the_warmup_stopped() {
        let numbers = Numbers::new(1);
        assert_eq!(numbers.take(&Source::Endless), Some(0..MAX_CHUNK));
        let counted = Source::Counted(AtomicU64::new(10));
        assert_eq!(
            drain(&numbers, &counted),
            (MAX_CHUNK..MAX_CHUNK + 10).collect::<Vec<_>>()
        );
        assert_eq!(numbers.take(&counted), None);
    }

    #[test]
    fn the_open_model_takes_one_index_at_a_time_in_order() {
        let numbers = Numbers::new(8);
        assert_eq!([numbers.next(), numbers.next(), numbers.next()], [0, 1, 2]);
    }
}
