//! The timeline of a run: interval deltas summed as they arrive, old
//! intervals summarised so a long run stays small.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::outcome::TimelinePoint;
use crate::protocol::INTERVAL;
use crate::stats::{Stats, Summary};

/// Intervals this far behind the newest one are summarised and their
/// histograms dropped, so a long run's timeline stays small.
const OPEN_INTERVALS: u64 = 3;

/// Builds the timeline as interval deltas arrive, in bounded memory.
#[derive(Default)]
pub struct Timeline {
    open: BTreeMap<u64, Stats>,
    closed: BTreeMap<u64, TimelinePoint>,
}

impl Timeline {
    pub fn add(&mut self, index: u64, stats: &Stats) {
        // A straggler for an interval already summarised joins the oldest
        // open one rather than reopening a closed point.
        let index = match self.closed.keys().next_back() {
            Some(&last) if index <= last => last + 1,
            _ => index,
        };
        self.open.entry(index).or_default().merge(stats);
        let newest = *self.open.keys().next_back().expect("just inserted");
        while let Some((&oldest, _)) = self.open.first_key_value() {
            if oldest + OPEN_INTERVALS > newest {
                break;
            }
            let stats = self.open.remove(&oldest).expect("present");
            self.close(oldest, &stats, INTERVAL);
        }
    }

    fn close(&mut self, index: u64, stats: &Stats, length: Duration) {
        self.closed.insert(index, summarise(index, stats, length));
    }

    /// Summarises what is still open; the last interval is as long as the
    /// part of it the run lasted.
    pub fn finish(mut self, elapsed: Duration) -> Vec<TimelinePoint> {
        for (index, stats) in std::mem::take(&mut self.open) {
            self.close(index, &stats, open_length(index, elapsed));
        }
        self.closed.into_values().collect()
    }

    /// The newest interval that results arrived for.
    pub fn newest(&self) -> Option<u64> {
        let open = self.open.keys().next_back();
        let closed = self.closed.keys().next_back();
        open.max(closed).copied()
    }

    /// The timeline so far, as [`Timeline::finish`] would give it now.
    pub fn points(&self, elapsed: Duration) -> Vec<TimelinePoint> {
        let mut points = self.closed.clone();
        for (&index, stats) in &self.open {
            points.insert(index, summarise(index, stats, open_length(index, elapsed)));
        }
        points.into_values().collect()
    }
}

/// The part of interval `index` that a run of `elapsed` has lasted.
fn open_length(index: u64, elapsed: Duration) -> Duration {
    let start = INTERVAL * index as u32;
    elapsed
        .saturating_sub(start)
        .min(INTERVAL)
        .max(Duration::from_millis(1))
}

fn summarise(index: u64, stats: &Stats, length: Duration) -> TimelinePoint {
    let all = Summary::of(&stats.all_calls(), length);
    TimelinePoint {
        start_ms: index * INTERVAL.as_millis() as u64,
        duration_ms: length.as_millis() as u64,
        calls: all.count,
        ops_per_sec: all.ops_per_sec,
        results: stats
            .results
            .iter()
            .map(|(k, h)| (k.clone(), h.len()))
            .collect(),
        p50_ns: all.p50_ns,
        p90_ns: all.p90_ns,
        p99_ns: all.p99_ns,
        max_ns: all.max_ns,
    }
}
