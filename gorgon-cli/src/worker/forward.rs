//! The worker's main thread: waits for its threads to be ready, starts
//! them on the parent's `go`, and forwards their results, one frame per
//! interval, until every lane has finished.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use super::control::Start;
use super::{Message, Shared};
use crate::clock::{Calibration, Clock};
use crate::exit::{self, Code, Failure};
use crate::protocol::{self, Frame, PROTOCOL_VERSION};
use crate::spec::WorkerSpec;
use crate::stats::Stats;

/// Waits for the threads to be ready, starts them on the parent's `go`, and
/// forwards their results until they finish.
pub(super) fn supervise(
    args: &WorkerSpec,
    shared: &Shared,
    calibration: Calibration,
    receiver: &mpsc::Receiver<Message>,
    go: &mpsc::Receiver<()>,
    frames: &mut impl Write,
) -> Result<Code, Failure> {
    let mut ready = 0;
    // One `Ready` per thread, once all its lanes are set up; meanwhile a
    // `setting_up` every interval says this worker is still alive.
    while ready < args.threads {
        match receiver.recv_timeout(protocol::INTERVAL) {
            Ok(Message::Ready) => ready += 1,
            Err(RecvTimeoutError::Timeout) => {
                if protocol::write_frame(
                    frames,
                    &Frame::SettingUp {
                        threads_ready: ready,
                    },
                )
                .is_err()
                {
                    return Ok(Code(exit::OK));
                }
            }
            Ok(Message::StartFailed(message)) => {
                let _ = protocol::write_frame(frames, &Frame::Error { message });
                return Ok(Code(exit::RUN_FAILED));
            }
            Ok(Message::SetupRefusedInput(message)) => {
                let _ = protocol::write_frame(frames, &Frame::InputError { message });
                return Ok(Code(exit::USAGE));
            }
            _ => return Ok(Code(exit::RUN_FAILED)),
        }
    }
    calibration.settle();
    let ready = Frame::Ready {
        protocol: PROTOCOL_VERSION,
        pid: std::process::id(),
        threads: args.threads,
    };
    if protocol::write_frame(frames, &ready).is_err() || go.recv().is_err() {
        return Ok(Code(exit::OK));
    }
    let clock = calibration.finish();
    let origin = clock.raw();
    shared.gate.open(Some(Start { origin, clock }));
    forward_results(args, shared, receiver, frames, &clock, origin)
}

/// How long after an interval's end the worker sends it: the lanes hand an
/// interval over as their first call past its end returns, so a moment's
/// wait lets the calls of a fast plugin make the frame of the interval
/// that just ended, rather than the one after. Calls longer than this
/// follow with the next interval's frame.
const HAND_OVER: Duration = Duration::from_millis(5);

/// How often, past the run's end, the main thread looks for threads
/// stuck in a call (and, before it, for a stop): well within any grace.
const LOOK_NS: u64 = 100_000_000;

/// Whether the run is over for this worker: stopped, or its measured part
/// has lasted the planned duration. Past it, a call that does not return
/// soon gets the worker killed.
fn past_end(shared: &Shared, now_ns: u64) -> bool {
    if shared.stop.load(Ordering::Relaxed) {
        return true;
    }
    let from = shared.measured_from.load(Ordering::Relaxed);
    match shared.load.duration_ns {
        Some(duration) if from != u64::MAX => now_ns >= from.saturating_add(duration),
        _ => false,
    }
}

/// Gathers the unsent results of the threads stuck in a call since the
/// last look; true when there were some.
fn take_stuck(shared: &Shared, seen: &mut [u64], gathered: &mut Gathered) -> bool {
    let taken = shared.board.take_stuck(seen);
    let any = !taken.is_empty();
    for (index, stats) in taken {
        gathered.absorb(Message::Delta { index, stats });
    }
    any
}

fn forward_results(
    args: &WorkerSpec,
    shared: &Shared,
    receiver: &mpsc::Receiver<Message>,
    frames: &mut impl Write,
    clock: &Clock,
    origin: u64,
) -> Result<Code, Failure> {
    let schedule = args.schedule();
    let hand_over_ns = HAND_OVER.as_nanos() as u64;
    // From the start, by the lanes' own clock: the ticks fall just after
    // the boundaries the lanes hand their results over at.
    let since_start = || clock.delta_as_nanos(origin, clock.raw());
    let mut next_tick_ns = schedule.start_ns(1) + hand_over_ns;
    let mut next_look_ns = LOOK_NS;
    // Each thread's plugin-code stamp at the last look (see `Board::take_stuck`).
    let mut seen = vec![0; args.threads as usize];
    let mut gathered = Gathered::default();
    let send = |gathered: &mut Gathered, frames: &mut dyn Write| -> bool {
        gathered.take_intervals().into_iter().all(|(index, stats)| {
            protocol::write_frame(frames, &Frame::Interval { index, stats }).is_ok()
        })
    };
    // One `Finished` per lane: per thread, or per fiber with --fibers.
    while gathered.finished < shared.lanes {
        let wait_ns = next_tick_ns.min(next_look_ns).saturating_sub(since_start());
        match receiver.recv_timeout(Duration::from_nanos(wait_ns)) {
            Ok(message) => {
                let finished = matches!(message, Message::Finished { .. });
                gathered.absorb(message);
                // A lane that finished has handed its last results over:
                // they go at once, not at the next tick, in case another
                // lane is stuck and the worker is ended before that tick.
                if finished {
                    send(&mut gathered, frames);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now_ns = since_start();
        // Past the end, a thread stuck in a call is soon killed with the
        // worker: its results go out now, not at the next tick.
        if now_ns >= next_look_ns {
            next_look_ns = now_ns + LOOK_NS;
            if past_end(shared, now_ns) && take_stuck(shared, &mut seen, &mut gathered) {
                send(&mut gathered, frames);
            }
        }
        if now_ns < next_tick_ns {
            continue;
        }
        // The interval that ended last; a tick that came late
        // (a busy machine) skips to it rather than bunching.
        let current = schedule.index_at_ns(now_ns - hand_over_ns);
        next_tick_ns = schedule.start_ns(current + 1) + hand_over_ns;
        // A thread in the same call since the last tick hands nothing
        // over: its finished calls still make this interval's figures.
        take_stuck(shared, &mut seen, &mut gathered);
        let (in_flight, long) = shared.board.running(clock, clock.raw());
        let alive = Frame::Alive {
            interval: current.saturating_sub(1),
            in_flight,
            long,
        };
        if !send(&mut gathered, frames) || protocol::write_frame(frames, &alive).is_err() {
            // The parent is gone: nobody will read the results.
            return Ok(Code(exit::RUN_FAILED));
        }
    }
    send(&mut gathered, frames);
    let measured_from = shared.measured_from.load(Ordering::Relaxed);
    let dropped = super::paced::dropped(shared, measured_from, gathered.calls);
    let done = gathered.done(measured_from, dropped);
    let _ = protocol::write_frame(frames, &done);
    // The lanes' teardowns run after their `finished`: what they measure
    // still goes out, until the last thread ends (a teardown that hangs
    // keeps the process, which the parent then ends).
    while let Ok(message) = receiver.recv() {
        gathered.absorb(message);
        send(&mut gathered, frames);
    }
    Ok(Code(exit::OK))
}

/// What the main thread has gathered from the lanes since the run began.
#[derive(Default)]
struct Gathered {
    /// Results not yet sent, by interval: the threads' deltas of one
    /// interval merged into one.
    pending: BTreeMap<u64, Stats>,
    /// Lanes that have finished, and what they counted.
    finished: u32,
    calls: u64,
    warmup_calls: u64,
    /// When the last lane's last call ended, in ns from the start.
    elapsed_ns: u64,
}

impl Gathered {
    fn absorb(&mut self, message: Message) {
        match message {
            Message::Delta { index, stats } => match self.pending.get_mut(&index) {
                Some(known) => known.merge(&stats),
                None => {
                    self.pending.insert(index, stats);
                }
            },
            Message::Finished {
                calls,
                warmup_calls,
                end_ns,
            } => {
                self.finished += 1;
                self.calls += calls;
                self.warmup_calls += warmup_calls;
                self.elapsed_ns = self.elapsed_ns.max(end_ns);
            }
            Message::Ready | Message::StartFailed(_) | Message::SetupRefusedInput(_) => {}
        }
    }

    /// The results gathered since the last call, in interval order.
    fn take_intervals(&mut self) -> BTreeMap<u64, Stats> {
        std::mem::take(&mut self.pending)
    }

    /// The worker's last frame. `measured_from_ns` is when the first lane
    /// ended its warm-up (`u64::MAX` if none did).
    fn done(&self, measured_from_ns: u64, dropped: u64) -> Frame {
        Frame::Done {
            dropped,
            waited_on_fiber: crate::plugin::lane::waited_on_fiber(),
            elapsed_ns: self.elapsed_ns,
            calls: self.calls,
            // A worker stopped before its warm-up ended measured nothing:
            // its measured part is empty, at its end.
            measured_from_ns: measured_from_ns.min(self.elapsed_ns),
            warmup_calls: self.warmup_calls,
            peak_rss_bytes: crate::footprint::peak_rss_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::recorder::{Outcome, Params, ThreadRecorder};

    fn delta(index: u64, calls: u64) -> Message {
        let mut recorder = ThreadRecorder::new(Arc::new(Params::default()));
        for _ in 0..calls {
            recorder.record_outcome(&Outcome::Label(b"OK"), 1_000);
        }
        Message::Delta {
            index,
            stats: recorder.take_delta(),
        }
    }

    #[test]
    fn deltas_of_one_interval_from_several_threads_merge() {
        let mut gathered = Gathered::default();
        gathered.absorb(delta(1, 3));
        gathered.absorb(delta(0, 2));
        gathered.absorb(delta(1, 4));
        let intervals: Vec<(u64, u64)> = gathered
            .take_intervals()
            .into_iter()
            .map(|(index, stats)| (index, stats.results["OK"].len()))
            .collect();
        assert_eq!(intervals, [(0, 2), (1, 7)]);
        assert!(gathered.take_intervals().is_empty(), "each is sent once");
    }

    #[test]
    fn the_last_frame_adds_up_the_lanes() {
        let mut gathered = Gathered::default();
        for (calls, warmup_calls, end_ns) in [(10, 1, 500), (20, 2, 900), (5, 0, 700)] {
            gathered.absorb(Message::Finished {
                calls,
                warmup_calls,
                end_ns,
            });
        }
        assert_eq!(gathered.finished, 3);
        let Frame::Done {
            elapsed_ns,
            calls,
            measured_from_ns,
            warmup_calls,
            ..
        } = gathered.done(100, 0)
        else {
            panic!("not a Done frame");
        };
        assert_eq!((elapsed_ns, calls, warmup_calls), (900, 35, 3));
        assert_eq!(measured_from_ns, 100);
    }

    #[test]
    fn a_run_stopped_during_its_warmup_measured_nothing_at_its_end() {
        let mut gathered = Gathered::default();
        gathered.absorb(Message::Finished {
            calls: 0,
            warmup_calls: 8,
            end_ns: 300,
        });
        let Frame::Done {
            measured_from_ns, ..
        } = gathered.done(u64::MAX, 0)
        else {
            panic!("not a Done frame");
        };
        assert_eq!(measured_from_ns, 300);
    }
}
