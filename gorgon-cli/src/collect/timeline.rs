//! The timeline of a run: interval deltas summed as they arrive, old
//! intervals summarised so a long run stays small.
//!
//! Intervals follow the run's [`Schedule`]: fine for the first seconds,
//! then a second each, so each point carries its own start and length.
//! Besides the calls that ended in it, a point holds the calls in flight
//! as it ended, summed over the workers that said so in their `alive`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::outcome::TimelinePoint;
use crate::protocol::Schedule;
use crate::stats::{Stats, Summary};

/// Intervals that started this long before the newest one are summarised
/// and their histograms dropped, so a long run's timeline stays small.
const OPEN_SPAN: Duration = Duration::from_secs(3);

/// One interval still open to stragglers.
#[derive(Default)]
struct Open {
    stats: Stats,
    in_flight: Option<u64>,
}

/// Builds the timeline as interval deltas arrive, in bounded memory.
pub struct Timeline {
    schedule: Schedule,
    open: BTreeMap<u64, Open>,
    closed: BTreeMap<u64, TimelinePoint>,
}

impl Default for Timeline {
    fn default() -> Timeline {
        Timeline::new(Schedule::STANDARD)
    }
}

impl Timeline {
    pub fn new(schedule: Schedule) -> Timeline {
        Timeline {
            schedule,
            open: BTreeMap::new(),
            closed: BTreeMap::new(),
        }
    }

    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// The results of interval `index` from one worker.
    pub fn add(&mut self, index: u64, stats: &Stats) {
        // A straggler for an interval already summarised joins the oldest
        // open one rather than reopening a closed point.
        let index = match self.closed.keys().next_back() {
            Some(&last) if index <= last => last + 1,
            _ => index,
        };
        self.open.entry(index).or_default().stats.merge(stats);
        self.close_old();
    }

    /// One worker's calls in flight as interval `index` ended: added to
    /// what the other workers said. An interval nothing ended in still
    /// gets its point, with no calls, so a stall shows as one.
    pub fn in_flight(&mut self, index: u64, calls: u64) {
        let add = |total: &mut Option<u64>| *total = Some(total.unwrap_or(0) + calls);
        if let Some(point) = self.closed.get_mut(&index) {
            add(&mut point.in_flight);
            return;
        }
        if self
            .closed
            .keys()
            .next_back()
            .is_some_and(|&last| index <= last)
        {
            // A sample of an interval long summarised, without a point
            // of its own: too late to place.
            return;
        }
        add(&mut self.open.entry(index).or_default().in_flight);
        self.close_old();
    }

    fn close_old(&mut self) {
        let newest = *self.open.keys().next_back().expect("just inserted");
        let newest_start = self.schedule.start(newest);
        while let Some((&oldest, _)) = self.open.first_key_value() {
            if self.schedule.start(oldest) + OPEN_SPAN > newest_start {
                break;
            }
            let open = self.open.remove(&oldest).expect("present");
            let length = self.schedule.length(oldest);
            self.closed
                .insert(oldest, self.summarise(oldest, &open, length));
        }
    }

    /// Summarises what is still open; the last interval is as long as the
    /// part of it the run lasted. An interval past the run's end that a
    /// worker only said it was alive in (it was waiting for its last
    /// lanes) is no part of the run.
    pub fn finish(mut self, elapsed: Duration) -> Vec<TimelinePoint> {
        for (index, open) in std::mem::take(&mut self.open) {
            if self.schedule.start(index) >= elapsed && open.stats.results.is_empty() {
                continue;
            }
            let point = self.summarise(index, &open, self.open_length(index, elapsed));
            self.closed.insert(index, point);
        }
        self.closed.into_values().collect()
    }

    /// The newest interval that results or a worker's `alive` arrived for.
    pub fn newest(&self) -> Option<u64> {
        let open = self.open.keys().next_back();
        let closed = self.closed.keys().next_back();
        open.max(closed).copied()
    }

    /// Interval `index` as it stands, summarised over its whole length:
    /// for a display of the last seconds of a run going on.
    pub fn point(&self, index: u64) -> Option<TimelinePoint> {
        match self.open.get(&index) {
            Some(open) => Some(self.summarise(index, open, self.schedule.length(index))),
            None => self.closed.get(&index).cloned(),
        }
    }

    /// The timeline so far, as [`Timeline::finish`] would give it now.
    pub fn points(&self, elapsed: Duration) -> Vec<TimelinePoint> {
        let mut points = self.closed.clone();
        for (&index, open) in &self.open {
            let length = self.open_length(index, elapsed);
            points.insert(index, self.summarise(index, open, length));
        }
        points.into_values().collect()
    }

    /// The part of interval `index` that a run of `elapsed` has lasted.
    fn open_length(&self, index: u64, elapsed: Duration) -> Duration {
        elapsed
            .saturating_sub(self.schedule.start(index))
            .min(self.schedule.length(index))
            .max(Duration::from_millis(1))
    }

    fn summarise(&self, index: u64, open: &Open, length: Duration) -> TimelinePoint {
        let stats = &open.stats;
        let all = Summary::of(&stats.all_calls(), length);
        TimelinePoint {
            start_ms: self.schedule.start(index).as_millis() as u64,
            duration_ms: length.as_millis() as u64,
            calls: all.count,
            ops_per_sec: all.ops_per_sec,
            in_flight: open.in_flight,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    const MS: u64 = 1_000_000;

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

    /// Seconds only, as before the fine start.
    fn seconds() -> Timeline {
        Timeline::new(Schedule::even(1_000 * MS))
    }

    #[test]
    fn old_intervals_close_and_a_straggler_joins_the_oldest_open_one() {
        let mut timeline = seconds();
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
        timeline.in_flight(0, 3);
        let elapsed = Duration::from_millis(250);
        let now = timeline.points(elapsed);
        assert_eq!(now, timeline.finish(elapsed));
    }

    #[test]
    fn fine_intervals_then_seconds_keep_their_own_lengths_and_rates() {
        let mut timeline = Timeline::default();
        // Ten intervals of 200 ms, then seconds: 2 calls in each.
        for index in 0..13 {
            timeline.add(index, &calls(2));
        }
        let points = timeline.finish(Duration::from_millis(4_600));
        let spans: Vec<(u64, u64)> = points.iter().map(|p| (p.start_ms, p.duration_ms)).collect();
        let mut expected: Vec<(u64, u64)> = (0..10).map(|i| (i * 200, 200)).collect();
        expected.extend([(2_000, 1_000), (3_000, 1_000), (4_000, 600)]);
        assert_eq!(spans, expected);
        // The durations add up to the run, and the rates are per second.
        let total: u64 = points.iter().map(|p| p.duration_ms).sum();
        assert_eq!(total, 4_600);
        assert_eq!(points[0].ops_per_sec, 10.0);
        assert_eq!(points[10].ops_per_sec, 2.0);
        // The fine intervals close by time, not by count: 3 s of them
        // stay open behind the newest.
        let mut timeline = Timeline::default();
        for index in 0..12 {
            timeline.add(index, &calls(1));
        }
        // Interval 11 starts at 3 s: those that started at 0 s close.
        assert_eq!(timeline.closed.keys().copied().collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn a_straggler_for_a_fine_interval_joins_the_oldest_open_one() {
        let mut timeline = Timeline::default();
        for index in 0..13 {
            timeline.add(index, &calls(1));
        }
        // Intervals starting 3 s or more before 4 s (index 12) closed.
        let last_closed = *timeline.closed.keys().next_back().unwrap();
        assert_eq!(last_closed, 5);
        timeline.add(2, &calls(5));
        let points = timeline.finish(Duration::from_secs(5));
        let calls: u64 = points.iter().map(|p| p.calls).sum();
        assert_eq!(calls, 18, "nothing is lost");
        assert_eq!(points[2].calls, 1, "a closed point is not reopened");
        assert_eq!(points[6].calls, 6, "{:?}", counts(&points));
    }

    #[test]
    fn calls_in_flight_add_up_over_the_workers() {
        let mut timeline = Timeline::default();
        timeline.add(0, &calls(4));
        // Two workers' samples of interval 0, one of interval 1.
        timeline.in_flight(0, 3);
        timeline.in_flight(0, 2);
        timeline.in_flight(1, 4);
        timeline.add(1, &calls(1));
        // Interval 2 ended with calls running but none ending in it: it
        // is a point with no calls, so a stall shows.
        timeline.in_flight(2, 6);
        timeline.add(3, &calls(2));
        let points = timeline.finish(Duration::from_millis(700));
        let in_flight: Vec<Option<u64>> = points.iter().map(|p| p.in_flight).collect();
        assert_eq!(in_flight, [Some(5), Some(4), Some(6), None]);
        assert_eq!(counts(&points), [(0, 4), (200, 1), (400, 0), (600, 2)]);
        assert_eq!(points[3].duration_ms, 100);
    }

    #[test]
    fn a_sample_for_a_closed_interval_joins_its_point() {
        let mut timeline = seconds();
        for index in 0..5 {
            timeline.add(index, &calls(1));
        }
        timeline.in_flight(1, 7);
        let points = timeline.finish(Duration::from_secs(5));
        assert_eq!(points[1].in_flight, Some(7));
    }

    #[test]
    fn an_alive_past_the_end_of_the_run_is_no_point() {
        let mut timeline = Timeline::default();
        timeline.add(0, &calls(3));
        // The worker waited for a lane past the last call's end.
        timeline.in_flight(0, 1);
        timeline.in_flight(1, 0);
        let points = timeline.finish(Duration::from_millis(150));
        assert_eq!(counts(&points), [(0, 3)]);
        assert_eq!(points[0].duration_ms, 150);
    }
}
