//! The collector: runs one run over its workers, merges their frames, and
//! notices the ones that die.
//!
//! A worker is reached through a [`Link`]: a local child process, an SSH
//! channel to a cluster node, or (in tests) a script. All carry the same
//! frames, so this one loop merges every result however it travelled.
//!
//! - [`link`]: the [`Link`] seam and the local child process;
//! - [`observer`]: who watches a run while it goes, and what they see;
//! - [`timeline`]: interval deltas summed into a bounded timeline;
//! - [`merge`]: the result being built, frame by frame;
//! - [`ending`]: the parent's own deadlines, so a run always ends.

mod ending;
mod link;
mod merge;
mod observer;
mod timeline;

#[cfg(test)]
mod tests;

use std::io::{BufReader, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Instant;

use crate::exit::Failure;
use crate::outcome::RunResult;
use crate::protocol::{self, Frame, PROTOCOL_VERSION};
use crate::shape::RunShape;

pub use ending::{Bounds, SILENCE};
use ending::{Ending, SetupWatch};
pub use link::{describe_exit, signal_name, Link, LocalLink};
use merge::Merge;
pub use observer::{Live, Observer, TICK};

/// What the reader threads tell the collector.
enum Event {
    Frame(usize, Frame),
    /// The worker's stream ended; with a reason when it was not a clean end.
    Closed(usize, Option<String>),
}

/// Interrupts (Ctrl-C, `SIGTERM`) as the signal handler counts them: the
/// first stops the run gracefully, the second ends it at once.
#[derive(Debug, Default)]
pub struct Interrupts(AtomicUsize);

impl Interrupts {
    /// Counts one; cheap and lock-free, so a signal handler may call it.
    pub fn raise(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    pub fn any(&self) -> bool {
        self.count() > 0
    }
}

/// Runs one run over `links` and merges what they send, within `bounds`.
///
/// Returns `Err` only when the run could not start (a worker refused the
/// plugin or its setup failed); failures after the start are in the result.
pub fn run(
    shape: RunShape,
    planned: Option<u64>,
    mut links: Vec<Box<dyn Link>>,
    bounds: Bounds,
    interrupts: &Interrupts,
    observer: &mut dyn Observer,
) -> Result<RunResult, Failure> {
    let events = read_all(&mut links);
    let mut merge = Merge::new(shape, planned, &links);
    if wait_until_ready(&mut links, &events, bounds, interrupts)? == Start::Interrupted {
        stop_all(&mut links);
        let result = merge.interrupted_before_start();
        observer.finished(&result);
        return Ok(result);
    }
    for link in &mut links {
        let _ = writeln!(link.control(), "{}", protocol::GO);
    }
    let started = Instant::now();
    let mut ending = Ending::new(bounds, started, links.len());
    observer.started(&merge.live(started));
    while merge.any_open() {
        let now = Instant::now();
        if !merge.stopping() && interrupts.any() {
            merge.stop();
            ending.stop(now);
            for link in &mut links {
                let _ = writeln!(link.control(), "{}", protocol::STOP);
            }
        }
        if !merge.stopping() && !ending.stopped() {
            if let Some(failure) = past_call_timeout(&merge, &ending, &links) {
                let (i, failure) = failure;
                merge.fail(i, failure);
                ending.stop(now);
                for link in &mut links {
                    let _ = writeln!(link.control(), "{}", protocol::STOP);
                }
            }
        }
        end_overdue(&mut links, &mut merge, &ending, interrupts, now);
        match events.recv_timeout(TICK) {
            Ok(Event::Frame(i, frame)) => {
                ending.heard(i, Instant::now());
                if matches!(frame, Frame::Done { .. }) {
                    ending.done(i, Instant::now());
                }
                if merge.frame(i, links[i].name(), frame) {
                    observer.update(&merge.live(started));
                }
            }
            Ok(Event::Closed(i, _)) if !merge.is_open(i) => {}
            Ok(Event::Closed(i, reason)) => {
                if reason.is_some() {
                    // Its stream is garbled: nothing more it says can be read.
                    links[i].kill();
                }
                let how = links[i].wait();
                merge.closed(i, links[i].name(), &how, reason);
            }
            Err(RecvTimeoutError::Timeout) => observer.update(&merge.live(started)),
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let mut result = merge.finish(started);
    // `--rate 1/s --duration 3s` made about 1 call a second, not 3 calls
    // over the 2 s between the first and the last.
    if let Some(window) = bounds.window {
        if !result.interrupted && result.failures.is_empty() {
            result.elapsed = window;
        }
    }
    observer.finished(&result);
    Ok(result)
}

/// The worker and one sentence when a call has run past `--call-timeout`:
/// it cannot be cancelled, so the run is stopped (and the worker killed if
/// it does not stop within the grace period).
fn past_call_timeout(
    merge: &Merge,
    ending: &Ending,
    links: &[Box<dyn Link>],
) -> Option<(usize, String)> {
    let limit = ending.call_timeout()?;
    let (i, call) = merge.longest_call()?;
    let running = std::time::Duration::from_nanos(call.running_ns);
    (running > limit).then(|| {
        (
            i,
            format!(
                "{}: call #{} has run for {}{}, past --call-timeout {}; the run was stopped",
                links[i].name(),
                call.number,
                humantime::format_duration(std::time::Duration::from_secs(running.as_secs())),
                call.step_suffix(),
                humantime::format_duration(limit)
            ),
        )
    })
}

/// Kills the workers past a deadline, or every one still open after a
/// second interrupt, and records why. The process is waited for, not its
/// stream: a child the plugin forked may hold the stream open.
fn end_overdue(
    links: &mut [Box<dyn Link>],
    merge: &mut Merge,
    ending: &Ending,
    interrupts: &Interrupts,
    now: Instant,
) {
    for (i, link) in links.iter_mut().enumerate() {
        if !merge.is_open(i) {
            continue;
        }
        let why = match interrupts.count() {
            0 | 1 => ending.overdue(i, now),
            _ => Some("was ended at once by a second interrupt".to_string()),
        };
        if let Some(why) = why {
            link.kill();
            link.wait();
            merge.killed(i, link.name(), &why);
        }
    }
}

/// Starts one reader thread per link; their frames arrive on one channel.
fn read_all(links: &mut [Box<dyn Link>]) -> Receiver<Event> {
    let (sender, events) = mpsc::channel();
    for (index, link) in links.iter_mut().enumerate() {
        let frames = link.take_frames();
        let sender = sender.clone();
        std::thread::spawn(move || read_frames(index, frames, &sender));
    }
    events
}

/// How the wait for the workers' `ready` ended.
#[derive(Debug, PartialEq, Eq)]
enum Start {
    Ready,
    Interrupted,
}

/// Waits until every worker is ready, so the run's clock measures the
/// operations and not process start-up. A worker that cannot start stops
/// them all and is the run's `Err`.
fn wait_until_ready(
    links: &mut [Box<dyn Link>],
    events: &Receiver<Event>,
    bounds: Bounds,
    interrupts: &Interrupts,
) -> Result<Start, Failure> {
    let mut ready = vec![false; links.len()];
    let mut watch = SetupWatch::new(bounds, Instant::now(), links.len());
    while ready.contains(&false) {
        if interrupts.any() {
            return Ok(Start::Interrupted);
        }
        if let Some(failure) = overdue_setup(links, &ready, &watch) {
            stop_all(links);
            return Err(failure);
        }
        let event = events.recv_timeout(TICK);
        if let Ok(Event::Frame(i, frame)) = &event {
            let threads_ready = match frame {
                Frame::SettingUp { threads_ready } => Some(*threads_ready),
                _ => None,
            };
            watch.heard(*i, Instant::now(), threads_ready);
        }
        let refusal = match event {
            Ok(Event::Frame(i, Frame::Ready { protocol, .. })) if protocol == PROTOCOL_VERSION => {
                ready[i] = true;
                continue;
            }
            Ok(Event::Frame(i, Frame::Ready { protocol, .. })) => Failure::usage(format!(
                "{} speaks worker protocol {protocol}, this gorgon speaks {PROTOCOL_VERSION}: \
                 install the same gorgon version there",
                links[i].name()
            )),
            Ok(Event::Frame(i, Frame::Error { message })) => {
                Failure::Run(anyhow::anyhow!("{}: {message}", links[i].name()))
            }
            // Every worker gets the same input, so the sentence names the
            // input, not the worker.
            Ok(Event::Frame(_, Frame::InputError { message })) => Failure::usage(message),
            Ok(Event::Closed(i, reason)) => {
                stop_all(links);
                let how = reason.unwrap_or_else(|| links[i].wait());
                return Err(Failure::Run(anyhow::anyhow!(
                    "{} {how} before it was ready",
                    links[i].name()
                )));
            }
            Ok(Event::Frame(..)) | Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return Ok(Start::Ready),
        };
        stop_all(links);
        return Err(refusal);
    }
    Ok(Start::Ready)
}

/// The first worker not yet ready that is past a deadline of its setup,
/// as the run's failure.
fn overdue_setup(links: &[Box<dyn Link>], ready: &[bool], watch: &SetupWatch) -> Option<Failure> {
    let now = Instant::now();
    links.iter().enumerate().find_map(|(i, link)| {
        let why = (!ready[i]).then(|| watch.overdue(i, now))??;
        Some(Failure::Run(anyhow::anyhow!("{} {why}", link.name())))
    })
}

/// Ends every worker of a run that has not started: nothing they did is
/// worth keeping, and one stuck in the plugin's setup would not read a
/// `stop`, so they are told and then ended outright.
fn stop_all(links: &mut [Box<dyn Link>]) {
    for link in links.iter_mut() {
        let _ = writeln!(link.control(), "{}", protocol::STOP);
        link.kill();
    }
    for link in links.iter_mut() {
        link.wait();
    }
}

fn read_frames(index: usize, frames: Box<dyn Read + Send>, sender: &mpsc::Sender<Event>) {
    let mut reader = BufReader::new(frames);
    let mut line = String::new();
    loop {
        match protocol::read_frame(&mut reader, &mut line) {
            Ok(Some(frame)) => {
                if sender.send(Event::Frame(index, frame)).is_err() {
                    return;
                }
            }
            Ok(None) => {
                let _ = sender.send(Event::Closed(index, None));
                return;
            }
            Err(error) => {
                let _ = sender.send(Event::Closed(index, Some(error.to_string())));
                return;
            }
        }
    }
}
