//! When a run must end, whatever its workers do: the parent's own clock.
//!
//! A worker ends its share by itself: at the end of `--duration`, after
//! its last number, or when told to stop. But a plugin call can block
//! forever, a teardown can hang, a process can be stopped (`SIGSTOP`):
//! then the worker never says `done` or never exits, and a run that waits
//! for it never ends. So the parent keeps deadlines of its own, each with
//! the same grace period (`--grace`): after the run's planned end, after
//! a stop (Ctrl-C), and after a worker's `done` (its process must then
//! exit). A worker past a deadline is killed and named; what it sent
//! before is kept. A second interrupt kills every worker at once.

use std::time::{Duration, Instant};

/// The deadlines of one run, after `go`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// When the workers should have ended their share by themselves,
    /// from `go`: the warm-up (when it is a time) and the duration. `None`
    /// for a run of a count, whose end no clock can tell.
    pub end_by: Option<Duration>,
    /// How long a worker may take past a deadline before it is killed.
    pub grace: Duration,
    /// How long a running worker may say nothing (it says `alive` every
    /// interval) before it is taken for stopped or wedged and killed.
    pub silence: Duration,
    /// How long one call may run before the run is stopped (`--call-timeout`).
    pub call_timeout: Option<Duration>,
    /// A timed run's measured window (`--duration`): its throughput is over
    /// it, whatever the last calls' latency.
    pub window: Option<Duration>,
}

/// How long a worker may be silent: ten intervals, far beyond any delay
/// of a loaded machine or a slow link, far below a user's patience.
pub const SILENCE: Duration = Duration::from_secs(10);

impl Bounds {
    /// A run with no planned end and the default grace (tests).
    #[cfg(test)]
    pub fn open_ended(grace: Duration) -> Bounds {
        Bounds {
            end_by: None,
            grace,
            silence: SILENCE,
            call_timeout: None,
            window: None,
        }
    }
}

/// The deadlines as a run goes: which workers are overdue, and why.
pub struct Ending {
    bounds: Bounds,
    started: Instant,
    /// When the workers were told to stop.
    stopped: Option<Instant>,
    /// When each worker said `done`.
    done: Vec<Option<Instant>>,
    /// When each worker last said anything.
    heard: Vec<Instant>,
}

impl Ending {
    pub fn new(bounds: Bounds, started: Instant, workers: usize) -> Ending {
        Ending {
            bounds,
            started,
            stopped: None,
            done: vec![None; workers],
            heard: vec![started; workers],
        }
    }

    pub fn heard(&mut self, worker: usize, now: Instant) {
        self.heard[worker] = now;
    }

    /// The longest a call may run, if limited.
    pub fn call_timeout(&self) -> Option<Duration> {
        self.bounds.call_timeout
    }

    /// Whether the workers were told to stop.
    pub fn stopped(&self) -> bool {
        self.stopped.is_some()
    }

    pub fn stop(&mut self, now: Instant) {
        self.stopped.get_or_insert(now);
    }

    pub fn done(&mut self, worker: usize, now: Instant) {
        self.done[worker].get_or_insert(now);
    }

    /// Why worker `worker`, whose stream is still open, must be killed
    /// now; `None` while it is within its time.
    pub fn overdue(&self, worker: usize, now: Instant) -> Option<String> {
        let grace = self.bounds.grace;
        let shown = humantime::format_duration(grace);
        if let Some(done) = self.done[worker] {
            return (now >= done + grace).then(|| {
                format!(
                    "sent all its results but did not exit within {shown} (a plugin teardown \
                     that hangs?); it was killed"
                )
            });
        }
        let silent = now.saturating_duration_since(self.heard[worker]);
        if silent >= self.bounds.silence {
            return Some(format!(
                "stopped answering: no word for {} (a stopped or wedged process); it was \
                 killed, and the results it had sent are kept",
                humantime::format_duration(Duration::from_secs(silent.as_secs()))
            ));
        }
        if let Some(stopped) = self.stopped {
            if now >= stopped + grace {
                return Some(format!(
                    "did not stop within {shown} of being told to (a call that does not \
                     return?); it was killed, and the results it had sent are kept"
                ));
            }
        }
        let end = self.started + self.bounds.end_by? + grace;
        (now >= end).then(|| {
            format!(
                "did not finish within {shown} after the run's planned end (a call that does \
                 not return?); it was killed, and the results it had sent are kept"
            )
        })
    }
}

/// How long a worker may take to say its first word (`setting_up`): its
/// process start, and over SSH a command on a fresh session, which a
/// loaded controller of many nodes can make slow.
pub const FIRST_WORD: Duration = Duration::from_secs(30);

/// The deadlines before `go`, while the workers set up the plugin. A
/// setup may take long (logins, loading data), but a worker that says
/// nothing (stopped, wedged) or a setup that never returns must not keep
/// the run from ending: the setup of a worker's threads counts as one
/// call for `--call-timeout`.
pub struct SetupWatch {
    bounds: Bounds,
    started: Instant,
    /// When each worker last said anything, and how many of its threads
    /// were then set up.
    heard: Vec<Option<(Instant, u32)>>,
}

impl SetupWatch {
    pub fn new(bounds: Bounds, started: Instant, workers: usize) -> SetupWatch {
        SetupWatch {
            bounds,
            started,
            heard: vec![None; workers],
        }
    }

    pub fn heard(&mut self, worker: usize, now: Instant, threads_ready: Option<u32>) {
        let ready = threads_ready
            .or(self.heard[worker].map(|(_, ready)| ready))
            .unwrap_or(0);
        self.heard[worker] = Some((now, ready));
    }

    /// Why worker `worker`, not ready yet, must be given up now; `None`
    /// while it is within its time.
    pub fn overdue(&self, worker: usize, now: Instant) -> Option<String> {
        let (since, limit, ready) = match self.heard[worker] {
            Some((at, ready)) => (at, self.bounds.silence, ready),
            None => (self.started, FIRST_WORD, 0),
        };
        let silent = now.saturating_duration_since(since);
        if silent >= limit {
            return Some(format!(
                "said nothing for {} while starting (a stopped or wedged process); it was \
                 killed and the run did not start",
                humantime::format_duration(Duration::from_secs(silent.as_secs()))
            ));
        }
        let limit = self.bounds.call_timeout?;
        let setting_up = now.saturating_duration_since(self.started);
        (setting_up > limit).then(|| {
            format!(
                "the plugin's setup has run for {} ({ready} of its threads set up), past \
                 --call-timeout {}; the run did not start (raise --call-timeout if the setup \
                 needs longer)",
                humantime::format_duration(Duration::from_secs(setting_up.as_secs())),
                humantime::format_duration(limit)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(5);

    fn at(start: Instant, secs: u64) -> Instant {
        start + Duration::from_secs(secs)
    }

    #[test]
    fn a_timed_run_allows_its_duration_and_the_grace() {
        let start = Instant::now();
        let bounds = Bounds {
            end_by: Some(Duration::from_secs(10)),
            ..Bounds::open_ended(GRACE)
        };
        let mut ending = Ending::new(bounds, start, 1);
        ending.heard(0, at(start, 14));
        assert_eq!(ending.overdue(0, at(start, 14)), None);
        let why = ending.overdue(0, at(start, 15)).unwrap();
        assert!(
            why.contains("within 5s after the run's planned end"),
            "{why}"
        );
    }

    #[test]
    fn a_counted_run_has_no_end_but_a_stop_has_one() {
        let start = Instant::now();
        let mut ending = Ending::new(Bounds::open_ended(GRACE), start, 2);
        ending.heard(1, at(start, 3599));
        ending.heard(0, at(start, 3599));
        assert_eq!(ending.overdue(0, at(start, 3600)), None);
        ending.stop(at(start, 3600));
        assert_eq!(ending.overdue(1, at(start, 3604)), None);
        assert!(ending
            .overdue(1, at(start, 3605))
            .unwrap()
            .contains("told to"));
    }

    #[test]
    fn a_silent_worker_is_overdue_after_the_silence() {
        let start = Instant::now();
        let mut ending = Ending::new(Bounds::open_ended(GRACE), start, 1);
        ending.heard(0, at(start, 20));
        assert_eq!(ending.overdue(0, at(start, 29)), None);
        let why = ending.overdue(0, at(start, 30)).unwrap();
        assert!(
            why.starts_with("stopped answering: no word for 10s"),
            "{why}"
        );
    }

    #[test]
    fn a_worker_that_is_done_must_exit_within_the_grace() {
        let start = Instant::now();
        let mut ending = Ending::new(Bounds::open_ended(GRACE), start, 2);
        ending.done(0, at(start, 2));
        ending.heard(1, at(start, 6));
        assert_eq!(ending.overdue(0, at(start, 6)), None);
        assert!(ending
            .overdue(0, at(start, 7))
            .unwrap()
            .contains("did not exit"));
        assert_eq!(
            ending.overdue(1, at(start, 7)),
            None,
            "the other one runs on"
        );
    }

    #[test]
    fn a_worker_setting_up_must_say_so_until_the_call_timeout() {
        let start = Instant::now();
        let bounds = Bounds {
            call_timeout: Some(Duration::from_secs(60)),
            ..Bounds::open_ended(GRACE)
        };
        let mut watch = SetupWatch::new(bounds, start, 2);
        // Its first word may take a while (an SSH session), then it must
        // keep talking.
        assert_eq!(watch.overdue(0, at(start, 29)), None);
        assert!(watch
            .overdue(0, at(start, 30))
            .unwrap()
            .contains("said nothing for 30s while starting"));
        watch.heard(0, at(start, 1), Some(0));
        assert_eq!(watch.overdue(0, at(start, 10)), None);
        assert!(watch
            .overdue(0, at(start, 11))
            .unwrap()
            .contains("said nothing for 10s"));
        // A worker that keeps saying it is setting up is given the call
        // timeout, and told how far it got.
        for second in 1..=61 {
            watch.heard(1, at(start, second), (second == 20).then_some(3));
        }
        assert_eq!(watch.overdue(1, at(start, 60)), None);
        let why = watch.overdue(1, at(start, 61)).unwrap();
        assert!(
            why.contains("has run for 1m 1s (3 of its threads set up)"),
            "{why}"
        );
        assert!(why.contains("past --call-timeout 1m"), "{why}");
    }
}
