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

    /// Interval `index` as it stands, summarised over a whole interval:
    /// for a display of the last seconds of a run going on.
    pub fn point(&self, index: u64) -> Option<TimelinePoint> {
        match self.open.get(&index) {
            Some(stats) => Some(summarise(index, stats, INTERVAL)),
            None => self.closed.get(&index).cloned(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    fn calls(n: u64) -> Stats {
        let mut stats = Stats::default();
        let histogram = stats
            .results
            .entry("OK".into())
            .or_insert_with(new_histogram);
        histogram.record_n(1_000, n).unwrap();
        stats
    }

    fn counts(points: &[TimelinePoint]) -> Vec<(u64, u64)> {
        points.iter().map(|p| (p.start_ms, p.calls)).collect()
    }

    #[test]
    fn old_intervals_close_and_a_straggler_joins_the_oldest_open_one() {
        let mut timeline = Timeline::default();
        for index in 0..5 {
            timeline.add(index, &calls(10));
        }
        // Intervals 0 and 1 are summarised: 2, 3 and 4 stay open.
        assert_eq!(timeline.closed.len(), 2);
        assert_eq!(timeline.newest(), Some(4));
        timeline.add(0, &calls(1));
        let points = timeline.finish(Duration::from_millis(4_500));
        assert_eq!(
            counts(&points),
            [(0, 10), (1000, 10), (2000, 11), (3000, 10), (4000, 10)]
        );
        // The last interval is as long as the part of it the run lasted.
        assert_eq!(points[4].duration_ms, 500);
        assert_eq!(points[4].ops_per_sec, 20.0);
    }

    #[test]
    fn points_so_far_match_what_finish_gives() {
        let mut timeline = Timeline::default();
        timeline.add(0, &calls(4));
        timeline.add(1, &calls(2));
        let elapsed = Duration::from_millis(1_250);
        let now = timeline.points(elapsed);
        assert_eq!(now, timeline.finish(elapsed));
    }
}
