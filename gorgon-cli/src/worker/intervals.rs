//! Handing a thread's results over once per interval.
//!
//! The parent's timeline has one point per interval of the run's
//! [`Schedule`] (fine at first, then a second each), counted from the
//! start of the run. A thread's recorder holds
//! the results of one interval at a time; a lane whose call ends past the
//! interval's end first sends what the recorder holds, under that
//! interval, then records its call. The first lane of the thread to cross
//! a boundary sends; the others find the recorder already in the new
//! interval.

use std::sync::mpsc::Sender;

use super::Message;
use crate::protocol::Schedule;
use crate::recorder::ThreadRecorder;

/// One lane's view of the intervals: when to look next, and where to send.
pub(super) struct Intervals<'a> {
    schedule: Schedule,
    /// When this lane next checks whether an interval has ended, in ns
    /// from the start of the run.
    pub next_ns: u64,
    sender: &'a Sender<Message>,
}

impl<'a> Intervals<'a> {
    pub fn new(schedule: Schedule, sender: &'a Sender<Message>) -> Intervals<'a> {
        Intervals {
            schedule,
            next_ns: schedule.start_ns(1),
            sender,
        }
    }

    /// Hands the recorder's results over if the interval they belong to
    /// has ended (`now_ns` is past it), and schedules the next check.
    #[cold]
    pub fn flush(&mut self, recorder: &mut ThreadRecorder, now_ns: u64) {
        let index = self.schedule.index_at_ns(now_ns);
        if index > recorder.interval {
            self.hand_over(recorder);
            recorder.interval = index;
        }
        self.next_ns = self.schedule.start_ns(index + 1);
    }

    /// Sends what the recorder holds, under its interval.
    pub fn hand_over(&self, recorder: &mut ThreadRecorder) {
        if !recorder.is_empty() {
            let _ = self.sender.send(Message::Delta {
                index: recorder.interval,
                stats: recorder.take_delta(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{self, Receiver};
    use std::sync::Arc;

    use super::*;
    use crate::recorder::{Outcome, Params};

    const MS: u64 = 1_000_000;

    fn recorder() -> ThreadRecorder {
        ThreadRecorder::new(Arc::new(Params::default()))
    }

    /// The intervals and call counts sent so far.
    fn sent(receiver: &Receiver<Message>) -> Vec<(u64, u64)> {
        receiver
            .try_iter()
            .map(|message| match message {
                Message::Delta { index, stats } => (index, stats.results["OK"].len()),
                _ => panic!("only deltas are sent"),
            })
            .collect()
    }

    #[test]
    fn results_go_out_under_the_interval_they_were_recorded_in() {
        let (sender, receiver) = mpsc::channel();
        let mut intervals = Intervals::new(Schedule::even(100 * MS), &sender);
        let mut recorder = recorder();
        recorder.record_outcome(&Outcome::Label(b"OK"), 5);
        recorder.record_outcome(&Outcome::Label(b"OK"), 5);
        // Still in interval 0: nothing to send yet.
        intervals.flush(&mut recorder, 99 * MS);
        assert_eq!(sent(&receiver), []);
        assert_eq!(intervals.next_ns, 100 * MS);
        // A call ending in interval 2 sends interval 0's results first.
        intervals.flush(&mut recorder, 250 * MS);
        assert_eq!(sent(&receiver), [(0, 2)]);
        assert_eq!(recorder.interval, 2);
        assert_eq!(intervals.next_ns, 300 * MS);
        recorder.record_outcome(&Outcome::Label(b"OK"), 5);
        intervals.hand_over(&mut recorder);
        assert_eq!(sent(&receiver), [(2, 1)]);
    }

    #[test]
    fn an_interval_without_results_sends_nothing() {
        let (sender, receiver) = mpsc::channel();
        let mut intervals = Intervals::new(Schedule::even(10 * MS), &sender);
        let mut recorder = recorder();
        intervals.flush(&mut recorder, 35 * MS);
        intervals.hand_over(&mut recorder);
        assert_eq!(sent(&receiver), []);
        assert_eq!(recorder.interval, 3);
    }

    #[test]
    fn a_lane_behind_the_recorder_only_catches_up() {
        let (sender, receiver) = mpsc::channel();
        // Another lane of the thread has moved the recorder to interval 5.
        let mut recorder = recorder();
        recorder.interval = 5;
        recorder.record_outcome(&Outcome::Label(b"OK"), 5);
        let mut lagging = Intervals::new(Schedule::even(10 * MS), &sender);
        lagging.flush(&mut recorder, 42 * MS);
        assert_eq!(sent(&receiver), [], "interval 5's results stay");
        assert_eq!(recorder.interval, 5);
        assert_eq!(lagging.next_ns, 50 * MS);
    }

    #[test]
    fn the_first_intervals_are_handed_over_at_their_own_ends() {
        let (sender, receiver) = mpsc::channel();
        let schedule = Schedule {
            first_ns: 10 * MS,
            first_count: 3,
            then_ns: 100 * MS,
        };
        let mut intervals = Intervals::new(schedule, &sender);
        assert_eq!(intervals.next_ns, 10 * MS);
        let mut recorder = recorder();
        recorder.record_outcome(&Outcome::Label(b"OK"), 5);
        intervals.flush(&mut recorder, 25 * MS);
        assert_eq!(sent(&receiver), [(0, 1)]);
        assert_eq!((recorder.interval, intervals.next_ns), (2, 30 * MS));
        recorder.record_outcome(&Outcome::Label(b"OK"), 5);
        // Past the fine start, intervals are 100 ms: 30..130 ms is one.
        intervals.flush(&mut recorder, 129 * MS);
        assert_eq!(sent(&receiver), [(2, 1)]);
        assert_eq!((recorder.interval, intervals.next_ns), (3, 130 * MS));
    }
}
