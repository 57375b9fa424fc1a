//! The frames a worker sends its parent, one JSON object per line on the
//! worker's stdout, and the control lines the parent sends on its stdin.
//!
//! The same protocol runs over a pipe to a local child and over an SSH
//! channel to a remote one, so there is one way to collect results.
//! docs/protocol.md describes it for people; this module is the truth.
//!
//! A worker says, in order: `ready` (plugin loaded, threads set up), then
//! after the parent's `go`, any number of `interval` frames carrying
//! histogram *deltas*, and finally `done`. Instead of `ready` or at any
//! point it may send `error` and exit. The parent writes `go` to start and
//! `stop` to end early; end of input also means stop, so a worker whose
//! parent vanished winds down by itself.

use std::io::{self, BufRead, Write};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::stats::Stats;

/// Bumped when a frame changes incompatibly; a parent refuses a worker that
/// speaks another version (a stale `gorgon` on a node, say).
pub const PROTOCOL_VERSION: u32 = 3;

/// How often workers send partial results once a run is past its first
/// seconds: the length of one `interval` then.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The first seconds of a run are cut finer, so that a run of a second or
/// two still draws as a curve: [`FIRST_INTERVALS`] intervals this long.
pub const FIRST_INTERVAL: Duration = Duration::from_millis(200);

/// How many intervals of [`FIRST_INTERVAL`] a run starts with (2 s): a
/// worker sends at most 5 frames a second over them, then 1 a second, so
/// a cluster's frame rate stays that of 1 s intervals but for a bounded
/// start.
pub const FIRST_INTERVALS: u64 = 10;

/// How a run is cut into intervals, counted from `go`: `first_count`
/// intervals of `first_ns`, then intervals of `then_ns`. The worker hands
/// its results over by it and the parent places them in time by it, so an
/// `interval` frame's index means the same on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub first_ns: u64,
    pub first_count: u64,
    pub then_ns: u64,
}

impl Schedule {
    /// The schedule every run uses: [`FIRST_INTERVALS`] of
    /// [`FIRST_INTERVAL`], then [`INTERVAL`].
    pub const STANDARD: Schedule = Schedule {
        first_ns: FIRST_INTERVAL.as_nanos() as u64,
        first_count: FIRST_INTERVALS,
        then_ns: INTERVAL.as_nanos() as u64,
    };

    /// Intervals of one length from the start.
    pub fn even(length_ns: u64) -> Schedule {
        Schedule {
            first_ns: length_ns.max(1),
            first_count: 0,
            then_ns: length_ns.max(1),
        }
    }

    fn first_span_ns(&self) -> u64 {
        self.first_ns.saturating_mul(self.first_count)
    }

    /// The interval that `at_ns` (from `go`) falls in.
    pub fn index_at_ns(&self, at_ns: u64) -> u64 {
        let span = self.first_span_ns();
        if at_ns < span {
            at_ns / self.first_ns.max(1)
        } else {
            self.first_count + (at_ns - span) / self.then_ns.max(1)
        }
    }

    /// When interval `index` starts, in ns from `go`.
    pub fn start_ns(&self, index: u64) -> u64 {
        if index <= self.first_count {
            index * self.first_ns
        } else {
            self.first_span_ns() + (index - self.first_count) * self.then_ns
        }
    }

    pub fn start(&self, index: u64) -> Duration {
        Duration::from_nanos(self.start_ns(index))
    }

    /// When interval `index` ends: when the next one starts.
    pub fn end(&self, index: u64) -> Duration {
        self.start(index + 1)
    }

    pub fn length(&self, index: u64) -> Duration {
        self.end(index) - self.start(index)
    }

    /// The interval that `at` (from `go`) falls in.
    pub fn index_at(&self, at: Duration) -> u64 {
        self.index_at_ns(u64::try_from(at.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// The control line that starts the operations.
pub const GO: &str = "go";
/// The control line that ends them early.
pub const STOP: &str = "stop";

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    /// Sent as soon as the worker runs, then every [`INTERVAL`] while its
    /// threads set up the plugin (`threads_ready` of them have), so the parent can
    /// tell a long setup from a worker that was stopped or is wedged.
    SettingUp { threads_ready: u32 },
    /// The plugin is loaded and every thread's setup succeeded.
    Ready {
        protocol: u32,
        pid: u32,
        threads: u32,
    },
    /// Results of the calls that ended in one interval, counted from `go`.
    Interval { index: u64, stats: Stats },
    /// All threads finished; `elapsed_ns` runs from `go` to the last call.
    /// `calls` were counted; `warmup_calls` more ran during the warm-up,
    /// and the measured part began `measured_from_ns` after `go` (0
    /// without a warm-up).
    Done {
        elapsed_ns: u64,
        calls: u64,
        #[serde(default)]
        measured_from_ns: u64,
        #[serde(default)]
        warmup_calls: u64,
        /// The worker's peak resident set size (absent from older workers).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peak_rss_bytes: Option<u64>,
        /// Open model with a duration: operations due in the measured
        /// window that could not start before it ended.
        #[serde(default, skip_serializing_if = "is_zero")]
        dropped: u64,
        /// Whether the plugin ever waited through `rec.wait` on a fiber.
        #[serde(default)]
        waited_on_fiber: bool,
    },
    /// Sent right after each interval ends while the run goes on, calls
    /// or none: the parent knows the worker is alive, how many calls were
    /// running as interval `interval` ended (for the timeline and the
    /// progress display), and which have been running for a second or more (with the step each is in,
    /// when the plugin times steps).
    Alive {
        interval: u64,
        in_flight: u32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        long: Vec<RunningCall>,
    },
    /// The worker cannot go on; `message` is one sentence for the user.
    Error { message: String },
    /// The plugin's thread setup refused the user's input (a malformed
    /// file or parameter), before `ready`: bad usage, not a failed run.
    InputError { message: String },
}

/// Writes one frame as a line and flushes it, so the parent sees progress
/// as it happens.
pub fn write_frame(out: &mut (impl Write + ?Sized), frame: &Frame) -> io::Result<()> {
    serde_json::to_writer(&mut *out, frame)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Reads the next frame; `Ok(None)` at end of stream.
///
/// Lines that are not frames (say, a remote login banner) are skipped, but
/// a line that claims to be JSON and does not parse is an error: it means
/// a mismatched worker.
pub fn read_frame(input: &mut impl BufRead, line: &mut String) -> io::Result<Option<Frame>> {
    loop {
        line.clear();
        if input.read_line(line)? == 0 {
            return Ok(None);
        }
        let text = line.trim();
        if !text.starts_with('{') {
            continue;
        }
        return serde_json::from_str(text).map(Some).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("unreadable frame: {e}"))
        });
    }
}

/// A call that has been running long, for the parent's watchdog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningCall {
    pub number: u64,
    pub running_ns: u64,
    /// The step the call is in or last finished; absent when it has timed
    /// none yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<CallStep>,
}

/// A step (a measurement the plugin times) of a running call: the one it
/// is in, or, when `ended`, the last it finished. `name` is at most 48
/// bytes of the measurement's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallStep {
    pub name: String,
    #[serde(default)]
    pub ended: bool,
}

impl std::fmt::Display for CallStep {
    /// `in step "login"` or `after step "login"`, for the user.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = if self.ended { "after" } else { "in" };
        write!(f, "{place} step {:?}", self.name)
    }
}

impl RunningCall {
    /// ` in step "login"` when the step is known, else nothing: what
    /// follows the call's number and duration in a sentence.
    pub fn step_suffix(&self) -> String {
        self.step
            .as_ref()
            .map(|step| format!(" {step}"))
            .unwrap_or_default()
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn the_first_intervals_are_fine_then_a_second_each() {
        let schedule = Schedule::STANDARD;
        assert_eq!(schedule.index_at_ns(0), 0);
        assert_eq!(schedule.index_at_ns(199 * MS), 0);
        assert_eq!(schedule.index_at_ns(200 * MS), 1);
        assert_eq!(schedule.index_at_ns(1_999 * MS), 9);
        assert_eq!(schedule.index_at_ns(2_000 * MS), 10);
        assert_eq!(schedule.index_at_ns(2_999 * MS), 10);
        assert_eq!(schedule.index_at_ns(3_000 * MS), 11);
        assert_eq!(schedule.start(9), Duration::from_millis(1_800));
        assert_eq!(schedule.length(9), Duration::from_millis(200));
        assert_eq!(schedule.start(10), Duration::from_secs(2));
        assert_eq!(schedule.length(10), Duration::from_secs(1));
        assert_eq!(schedule.end(11), Duration::from_secs(4));
        // Every instant falls in the interval that starts at or before it.
        for at in (0..6_000).step_by(7) {
            let index = schedule.index_at_ns(at * MS);
            assert!(schedule.start_ns(index) <= at * MS, "{at} ms");
            assert!(schedule.start_ns(index + 1) > at * MS, "{at} ms");
        }
    }

    #[test]
    fn an_even_schedule_has_one_length() {
        let schedule = Schedule::even(1_000 * MS);
        assert_eq!(schedule.index_at_ns(2_500 * MS), 2);
        assert_eq!(schedule.start(3), Duration::from_secs(3));
        assert_eq!(schedule.length(0), Duration::from_secs(1));
    }

    fn round_trip(frame: &Frame) -> String {
        let mut line = Vec::new();
        write_frame(&mut line, frame).unwrap();
        let mut text = String::new();
        let read = read_frame(&mut &line[..], &mut text).unwrap().unwrap();
        assert_eq!(format!("{read:?}"), format!("{frame:?}"));
        String::from_utf8(line).unwrap()
    }

    #[test]
    fn an_alive_frame_carries_the_step_of_each_long_call() {
        let frame = Frame::Alive {
            interval: 7,
            in_flight: 2,
            long: vec![
                RunningCall {
                    number: 50,
                    running_ns: 12_000_000_000,
                    step: Some(CallStep {
                        name: "login".to_string(),
                        ended: false,
                    }),
                },
                RunningCall {
                    number: 9,
                    running_ns: 1_500_000_000,
                    step: None,
                },
            ],
        };
        let line = round_trip(&frame);
        assert_eq!(
            line,
            "{\"type\":\"alive\",\"interval\":7,\"in_flight\":2,\"long\":[{\"number\":50,\
             \"running_ns\":12000000000,\"step\":{\"name\":\"login\",\"ended\":false}},\
             {\"number\":9,\"running_ns\":1500000000}]}\n"
        );
        let Frame::Alive { long, .. } = frame else {
            unreachable!()
        };
        assert_eq!(long[0].step_suffix(), " in step \"login\"");
        assert_eq!(long[1].step_suffix(), "");
    }

    #[test]
    fn a_finished_step_reads_as_after_it() {
        let step = CallStep {
            name: "say \"hi\"".to_string(),
            ended: true,
        };
        assert_eq!(step.to_string(), "after step \"say \\\"hi\\\"\"");
    }
}
