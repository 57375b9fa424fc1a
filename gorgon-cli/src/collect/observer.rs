//! Who watches a run while it goes ([`Observer`]) and what they see
//! ([`Live`]).

use std::time::{Duration, Instant};

use super::timeline::Timeline;
use crate::footprint::{self, Footprint};
use crate::outcome::{RunResult, TimelinePoint};
use crate::protocol::Schedule;
use crate::shape::RunShape;
use crate::stats::Stats;

/// Watches a run while it goes: the progress display, the snapshot writer.
///
/// The collector calls it on its own thread with the *merged* results (from
/// every worker, local or remote), after each frame and at least every
/// [`TICK`], so an observer sees the whole run and never a worker directly.
/// Observers throttle themselves and must stay quick: frames wait meanwhile.
pub trait Observer {
    /// Every worker is ready and the operations start now.
    fn started(&mut self, _live: &Live<'_>) {}
    /// Results arrived, or time passed.
    fn update(&mut self, _live: &Live<'_>) {}
    /// The run ended (completely or not); `result` is what it returns.
    fn finished(&mut self, _result: &RunResult) {}
}

/// Observes nothing.
impl Observer for () {}

/// Two observers, told in order.
impl<A: Observer, B: Observer> Observer for (A, B) {
    fn started(&mut self, live: &Live<'_>) {
        self.0.started(live);
        self.1.started(live);
    }
    fn update(&mut self, live: &Live<'_>) {
        self.0.update(live);
        self.1.update(live);
    }
    fn finished(&mut self, result: &RunResult) {
        self.0.finished(result);
        self.1.finished(result);
    }
}

impl<T: Observer + ?Sized> Observer for &mut T {
    fn started(&mut self, live: &Live<'_>) {
        (**self).started(live);
    }
    fn update(&mut self, live: &Live<'_>) {
        (**self).update(live);
    }
    fn finished(&mut self, result: &RunResult) {
        (**self).finished(result);
    }
}

impl<T: Observer> Observer for Option<T> {
    fn started(&mut self, live: &Live<'_>) {
        if let Some(inner) = self {
            inner.started(live);
        }
    }
    fn update(&mut self, live: &Live<'_>) {
        if let Some(inner) = self {
            inner.update(live);
        }
    }
    fn finished(&mut self, result: &RunResult) {
        if let Some(inner) = self {
            inner.finished(result);
        }
    }
}

/// How often the collector looks at the interrupt flag and, at the latest,
/// tells its observer that time passed.
pub const TICK: Duration = Duration::from_millis(50);

/// A run as it is now, merged over every worker.
pub struct Live<'a> {
    pub shape: RunShape,
    pub planned: Option<u64>,
    /// Since the operations started.
    pub elapsed: Duration,
    /// Everything merged so far.
    pub stats: &'a Stats,
    /// Calls going on right now over every worker, once workers report it
    /// (`None` until then: a display shows it only when known).
    pub in_flight: Option<u64>,
    /// Workers the run knows to be stuck (no progress past a deadline);
    /// empty when it knows of none.
    pub stuck: Vec<String>,
    result: &'a RunResult,
    timeline: &'a Timeline,
}

impl<'a> Live<'a> {
    pub(super) fn new(result: &'a RunResult, timeline: &'a Timeline, started: Instant) -> Live<'a> {
        Live {
            shape: result.shape,
            planned: result.planned,
            elapsed: started.elapsed(),
            stats: &result.stats,
            in_flight: None,
            stuck: Vec::new(),
            result,
            timeline,
        }
    }

    /// How much of the run the counts cover: workers report each interval
    /// right after it ends, so the counts lag the clock by up to an
    /// interval. A rate is the calls over this, not over [`Live::elapsed`].
    pub fn covered(&self) -> Duration {
        match self.timeline.newest() {
            Some(index) => self.schedule().end(index).min(self.elapsed),
            None => Duration::ZERO,
        }
    }

    /// How the run is cut into intervals (numbered from 0 at its start).
    pub fn schedule(&self) -> Schedule {
        self.timeline.schedule()
    }

    /// The newest interval that results arrived for.
    pub fn newest_interval(&self) -> Option<u64> {
        self.timeline.newest()
    }

    /// Interval `index` as it stands, if results arrived for it.
    pub fn interval(&self, index: u64) -> Option<TimelinePoint> {
        self.timeline.point(index)
    }

    /// The run so far as if it ended now (for a snapshot). Copies the
    /// histograms, so call it seldom.
    pub fn snapshot(&self) -> RunResult {
        RunResult {
            shape: self.shape,
            planned: self.planned,
            workers: self.result.workers.clone(),
            stats: self.stats.clone(),
            timeline: self.timeline.points(self.elapsed),
            elapsed: self.elapsed,
            failures: self.result.failures.clone(),
            interrupted: self.result.interrupted,
            load: self.result.load.clone(),
            nodes: self.result.nodes.clone(),
            footprint: Footprint {
                parent_peak_rss_bytes: footprint::peak_rss_bytes(),
                ..self.result.footprint
            },
        }
    }
}
