//! A worker process: loads the plugin, runs its share of the numbers on
//! its threads, and streams results to the parent (see [`crate::protocol`]).
//!
//! Words: a *thread* is an OS thread of the worker; a *lane* is one
//! sequence of calls into the plugin, with its own plugin state
//! ([`crate::plugin::lane`]). Each thread runs one lane, or N with
//! `--fibers N`, each on a fiber of its own, so that a plugin waiting on
//! I/O lets the others run ([`crate::fibers`]).
//!
//! The parts, from the process down to a call:
//! - this file: the process's entry, and what its threads share;
//! - [`process`]: the process's own settings (stdout, signals, limits);
//! - [`control`]: the parent's `go` and `stop`, and the gate that holds
//!   the threads until `go`;
//! - [`forward`]: the main thread, which forwards the lanes' results to
//!   the parent interval by interval;
//! - [`threads`]: a thread, which sets its lanes up and runs them;
//! - [`lanes`]: a lane's part of the run and its bookkeeping, with
//!   [`intervals`] for handing results over once per interval;
//! - [`closed`] and [`paced`]: the two loops of calls (as fast as the
//!   operation allows, or on a schedule), with [`numbers`] for handing
//!   out the numbers.
//!
//! Lanes share nothing written per call with other threads: numbers are
//! taken from a shared counter (in chunks in the closed loop), latencies go
//! into their thread's own histograms, and the thread hands them over once
//! per interval.

mod board;
mod closed;
mod control;

mod forward;
mod intervals;
mod lanes;
mod numbers;
mod paced;
mod process;
mod threads;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use self::control::Gate;
use self::numbers::{Numbers, Source};
use crate::clock::Calibration;
use crate::exit::{self, Code, Failure};
use crate::plan::{Share, WorkerLoad, UNBOUNDED};
use crate::plugin::lane::SetupFailed;
use crate::plugin::Plugin;
use crate::protocol::{self, Frame, Schedule};
use crate::recorder::Params;
use crate::spec::WorkerSpec;
use crate::stats::Stats;

/// Runs the worker that `spec` (a [`WorkerSpec`] token) describes.
pub fn main(spec: &str) -> Result<Code, Failure> {
    // First thing, so that start-up fills the calibration's span.
    let calibration = Calibration::start();
    let mut frames = process::take_stdout().map_err(|e| Failure::Run(e.into()))?;
    // The parent's first sign of life from this worker: until it comes,
    // the parent cannot tell a slow start from a stopped process.
    if protocol::write_frame(&mut frames, &Frame::SettingUp { threads_ready: 0 }).is_err() {
        return Ok(Code(exit::OK));
    }
    process::ignore_interrupts();
    process::raise_open_files_limit();
    // A spec this worker cannot read (an older gorgon on a node) is told
    // as a frame, so the parent names the worker and the reason.
    let args = match WorkerSpec::decode(spec) {
        Ok(args) => args,
        Err(message) => {
            let _ = protocol::write_frame(&mut frames, &Frame::Error { message });
            return Ok(Code(exit::USAGE));
        }
    };
    let checked = match &args.plugin_sha256 {
        Some(expected) => crate::checksum::verify(&args.plugin, expected),
        None => Ok(()),
    };
    let loaded = checked.and_then(|()| Plugin::load(&args.plugin).map_err(|e| e.to_string()));
    let plugin = match loaded {
        Ok(plugin) => Arc::new(plugin),
        Err(error) => {
            let _ = protocol::write_frame(
                &mut frames,
                &Frame::Error {
                    message: error.to_string(),
                },
            );
            return Ok(Code(exit::USAGE));
        }
    };
    // Before the threads start: lets the main thread take the results of
    // a thread stuck in a call (none are taken where the kernel refuses).
    crate::plugin::watch::register();
    let shared = Arc::new(Shared::new(&args));
    let go = control::listen(shared.clone());
    let params = Arc::new(Params::new(&args.params));
    let (sender, receiver) = mpsc::channel();
    let threads: Result<Vec<_>, String> = (0..args.threads)
        .map(|index| {
            let (plugin, shared, params, sender) = (
                plugin.clone(),
                shared.clone(),
                params.clone(),
                sender.clone(),
            );
            std::thread::Builder::new()
                .name(format!("gorgon-worker-{index}"))
                .spawn(move || threads::run(index, &plugin, &shared, params, &sender))
                .map_err(|error| thread_refused(index, args.threads, &error))
        })
        .collect::<Result<_, _>>();
    let threads: Vec<_> = match threads {
        Ok(threads) => threads,
        Err(message) => {
            // Told as a frame, so the parent names this worker and the
            // cause instead of a worker that merely vanished.
            let _ = protocol::write_frame(&mut frames, &Frame::Error { message });
            return Ok(Code(exit::RUN_FAILED));
        }
    };
    drop(sender);

    let outcome = forward::supervise(&args, &shared, calibration, &receiver, &go, &mut frames);
    shared.stop.store(true, Ordering::Relaxed);
    shared.gate.open(None);
    for thread in threads {
        let _ = thread.join();
    }
    outcome
}

/// One sentence for a thread the system would not create, with the
/// limits that usually cause it.
fn thread_refused(index: u32, threads: u32, error: &std::io::Error) -> String {
    format!(
        "cannot start thread {} of {threads}: {error} (the system's limit on processes and \
         threads, ulimit -u or kernel.threads-max, or memory for thread stacks, is reached; \
         use fewer threads)",
        index + 1
    )
}

/// What the threads and the worker's main thread share.
struct Shared {
    share: Share,
    /// Indices into the share: chunks in the closed model, one operation
    /// at a time (its place in the schedule) in the open model.
    numbers: Numbers,
    /// Closed model: where the warm-up and the counted calls take theirs.
    warm: Source,
    counted: Source,
    load: WorkerLoad,
    /// When the measured part began, in ns from the start: set by the
    /// first lane to get there (`u64::MAX` until then).
    measured_from: AtomicU64,
    /// Set when the run ends early; read once per call (a cache line that
    /// is written once, so reading it costs next to nothing).
    stop: AtomicBool,
    gate: Gate,
    /// How the run is cut into intervals.
    intervals: Schedule,
    /// The worker's lanes: its threads, times their fibers.
    lanes: u32,
    /// What each lane is calling now.
    board: board::Board,
}

impl Shared {
    fn new(args: &WorkerSpec) -> Shared {
        let share = args.share;
        let load = args.load.clone();
        let unbounded = share.count == UNBOUNDED;
        let (warm, counted) = match load.warmup_ns {
            Some(_) if unbounded => (Source::Endless, Source::Endless),
            Some(_) => (Source::Endless, Source::Counted(share.count.into())),
            None if unbounded => (Source::UpTo(load.warmup_calls), Source::Endless),
            None => (Source::UpTo(load.warmup_calls), Source::UpTo(share.count)),
        };
        let lanes = args.threads.saturating_mul(args.load.fibers.max(1));
        Shared {
            share,
            numbers: Numbers::new(lanes),
            warm,
            counted,
            load,
            measured_from: AtomicU64::new(u64::MAX),
            stop: AtomicBool::new(false),
            gate: Gate::default(),
            intervals: args.schedule(),
            lanes,
            board: board::Board::new(lanes, args.threads),
        }
    }
}

/// What a thread, or one of its lanes, tells the worker's main thread.
enum Message {
    /// The thread's lanes are all set up (one per thread).
    Ready,
    /// The thread could not start (the plugin's setup failed, or its
    /// fibers could not be made), said in a whole sentence.
    StartFailed(String),
    /// A setup said the user's input is wrong (`SetupError::bad_input`).
    SetupRefusedInput(String),
    /// A thread's results of interval `index`.
    Delta { index: u64, stats: Stats },
    /// A lane is done (one per lane).
    Finished {
        calls: u64,
        warmup_calls: u64,
        end_ns: u64,
    },
}

impl From<SetupFailed> for Message {
    fn from(failed: SetupFailed) -> Message {
        match failed {
            SetupFailed::BadInput(text) => Message::SetupRefusedInput(text),
            SetupFailed::Failed(text) => {
                Message::StartFailed(format!("the plugin's thread setup failed: {text}"))
            }
        }
    }
}
