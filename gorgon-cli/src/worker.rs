//! A worker process: loads the plugin, runs its share of the numbers on
//! its threads, and streams results to the parent (see [`crate::protocol`]).
//!
//! Each thread runs one of two loops: [`closed`] (the next call starts when
//! the last one ends, as fast as the operation allows) or [`paced`] (the
//! open model: calls start on a schedule, whatever their latency). Both
//! share nothing written per call with other threads: numbers are taken
//! from a shared counter (in chunks in the closed loop), latencies go into
//! the thread's own histograms, and the thread hands them over once per
//! interval. With `--fibers N` each thread runs N such loops ("lanes") on
//! fibers, so that a plugin waiting on I/O lets the others run
//! ([`fibers`]).

mod closed;
pub mod fibers;
mod numbers;
mod paced;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufWriter, Write};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use gorgon_plugin_api::abi::{STATUS_BAD_INPUT, STATUS_OK};

use self::numbers::{Numbers, Source};
use crate::clock::{Calibration, Clock};
use crate::exit::{self, Code, Failure};
use crate::plan::{Schedule, Share, WorkerLoad, UNBOUNDED};
use crate::plugin::Plugin;
use crate::protocol::{self, Frame, PROTOCOL_VERSION};
use crate::recorder::{plugin_recorder, LaneHost, Outcome, Params, ThreadRecorder};
use crate::spec::WorkerSpec;
use crate::stats::Stats;

/// Runs the worker that `spec` (a [`WorkerSpec`] token) describes.
pub fn main(spec: &str) -> Result<Code, Failure> {
    // First thing, so that start-up fills the calibration's span.
    let calibration = Calibration::start();
    let mut frames = take_stdout().map_err(|e| Failure::Run(e.into()))?;
    // Ctrl-C in a terminal reaches the whole process group; the parent
    // decides when workers stop and says so on stdin.
    // SAFETY: installing SIG_IGN has no handler code to be unsafe.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::SIGINT,
            nix::sys::signal::SigHandler::SigIgn,
        )
    };
    raise_open_files_limit();
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
    let shared = Arc::new(Shared::new(&args));
    let go = listen_for_control(shared.clone());
    let params = Arc::new(Params::new(&args.params));
    let (sender, receiver) = mpsc::channel();
    let threads: Vec<_> = (0..args.threads)
        .map(|index| {
            let (plugin, shared, params, sender) = (
                plugin.clone(),
                shared.clone(),
                params.clone(),
                sender.clone(),
            );
            std::thread::Builder::new()
                .name(format!("gorgon-worker-{index}"))
                .spawn(move || run_thread(index, &plugin, &shared, params, &sender))
                .map_err(|e| Failure::Run(anyhow::anyhow!("cannot start thread {index}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    drop(sender);

    let outcome = supervise(&args, &shared, calibration, &receiver, &go, &mut frames);
    shared.stop.store(true, Ordering::Relaxed);
    shared.gate.open(None);
    for thread in threads {
        let _ = thread.join();
    }
    outcome
}

/// Waits for the threads to be ready, starts them on the parent's `go`, and
/// forwards their results until they finish.
fn supervise(
    args: &WorkerSpec,
    shared: &Shared,
    calibration: Calibration,
    receiver: &mpsc::Receiver<ThreadMessage>,
    go: &mpsc::Receiver<()>,
    frames: &mut impl Write,
) -> Result<Code, Failure> {
    let mut ready = 0;
    // One `Ready` per thread, once all its lanes are set up.
    while ready < args.threads {
        match receiver.recv() {
            Ok(ThreadMessage::Ready) => ready += 1,
            Ok(ThreadMessage::StartFailed(message)) => {
                let _ = protocol::write_frame(frames, &Frame::Error { message });
                return Ok(Code(exit::RUN_FAILED));
            }
            Ok(ThreadMessage::SetupRefusedInput(message)) => {
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
    shared.gate.open(Some(Start {
        origin: clock.raw(),
        clock,
    }));
    forward_results(args, shared, receiver, frames)
}

fn forward_results(
    args: &WorkerSpec,
    shared: &Shared,
    receiver: &mpsc::Receiver<ThreadMessage>,
    frames: &mut impl Write,
) -> Result<Code, Failure> {
    let tick = Duration::from_millis(args.interval_ms.max(1));
    let mut next_tick = Instant::now() + tick;
    let mut pending: BTreeMap<u64, Stats> = BTreeMap::new();
    let (mut finished, mut calls, mut warmup_calls, mut elapsed_ns) = (0, 0, 0, 0);
    let mut send = |pending: &mut BTreeMap<u64, Stats>| -> bool {
        std::mem::take(pending).into_iter().all(|(index, stats)| {
            protocol::write_frame(frames, &Frame::Interval { index, stats }).is_ok()
        })
    };
    // One `Finished` per lane: per thread, or per fiber with --fibers.
    while finished < shared.lanes {
        match receiver.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
            Ok(ThreadMessage::Delta { index, stats }) => match pending.get_mut(&index) {
                Some(known) => known.merge(&stats),
                None => {
                    pending.insert(index, *stats);
                }
            },
            Ok(ThreadMessage::Finished {
                calls: c,
                warmup_calls: w,
                end_ns,
            }) => {
                finished += 1;
                calls += c;
                warmup_calls += w;
                elapsed_ns = elapsed_ns.max(end_ns);
            }
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {
                next_tick += tick;
                if !send(&mut pending) {
                    // The parent is gone: nobody will read the results.
                    return Ok(Code(exit::RUN_FAILED));
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    send(&mut pending);
    // A worker stopped before its warm-up ended measured nothing: its
    // measured part is empty, at its end.
    let measured_from_ns = shared.measured_from.load(Ordering::Relaxed).min(elapsed_ns);
    let done = Frame::Done {
        elapsed_ns,
        calls,
        measured_from_ns,
        warmup_calls,
        peak_rss_bytes: crate::footprint::peak_rss_bytes(),
    };
    let _ = protocol::write_frame(frames, &done);
    Ok(Code(exit::OK))
}

/// Reads the parent's control lines for the whole life of the worker, from
/// before the plugin's thread setup: `go` is passed on through the returned
/// channel; `stop` or the end of input raises the stop flag. Before `go`
/// there is nothing to report, so the worker simply exits: a thread stuck
/// in the plugin's setup must not keep it (or its parent) waiting.
fn listen_for_control(shared: Arc<Shared>) -> mpsc::Receiver<()> {
    let (go, started) = mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let mut line = String::new();
        let mut running = false;
        loop {
            line.clear();
            let command = match io::stdin().lock().read_line(&mut line) {
                Ok(0) | Err(_) => protocol::STOP,
                Ok(_) => line.trim(),
            };
            if command == protocol::GO && !running {
                running = true;
                let _ = go.send(());
            } else if command == protocol::STOP {
                if !running {
                    std::process::exit(i32::from(exit::OK));
                }
                shared.stop.store(true, Ordering::Relaxed);
                return;
            }
        }
    });
    started
}

/// Raises this worker's soft limit of open descriptors to the hard one, as
/// Go's runtime does for every program: with `--fibers` a worker may hold
/// a connection per fiber, thousands of them, and the usual soft limit
/// (1024) would fail the run for no reason the user chose. If it cannot
/// be raised, the plugin's own error names the limit when it is reached.
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// Moves stdout aside for frames and points fd 1 at stderr, so a plugin
/// that prints cannot corrupt the frame stream.
fn take_stdout() -> io::Result<BufWriter<File>> {
    use nix::libc;
    // SAFETY: plain fd calls; the new fd is owned by the returned File.
    unsafe {
        let frames = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if frames < 0 || libc::dup2(2, 1) < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(BufWriter::new(File::from_raw_fd(frames)))
    }
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
    /// first thread to get there (`u64::MAX` until then).
    measured_from: AtomicU64,
    /// Set when the run ends early; read once per call (a cache line that
    /// is written once, so reading it costs next to nothing).
    stop: AtomicBool,
    gate: Gate,
    interval_ns: u64,
    /// The worker's loops of calls: its threads, times their fibers.
    lanes: u32,
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
            interval_ns: args.interval_ms.max(1) * 1_000_000,
            lanes,
        }
    }
}

/// What a thread tells the worker's main thread. `SetupRefusedInput` is a
/// setup that said the user's input is wrong (`SetupError::bad_input`).
enum ThreadMessage {
    Ready,
    /// The thread could not start (the plugin's setup failed, or its
    /// fibers could not be made), said in a whole sentence.
    StartFailed(String),
    SetupRefusedInput(String),
    Delta {
        index: u64,
        stats: Box<Stats>,
    },
    Finished {
        calls: u64,
        warmup_calls: u64,
        end_ns: u64,
    },
}

/// Holds threads until the run starts; carries the start, or `None` when
/// the run is called off.
#[derive(Default)]
struct Gate {
    state: Mutex<Option<Option<Start>>>,
    opened: Condvar,
}

/// The start of the run: the clock every thread uses and its reading at
/// `go`.
#[derive(Clone, Copy)]
struct Start {
    origin: u64,
    clock: Clock,
}

impl Gate {
    fn open(&self, origin: Option<Start>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.get_or_insert(origin);
        self.opened.notify_all();
    }

    fn wait(&self) -> Option<Start> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(origin) = *state {
                return origin;
            }
            state = self.opened.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn run_thread(
    thread: u32,
    plugin: &Plugin,
    shared: &Shared,
    params: Arc<Params>,
    sender: &mpsc::Sender<ThreadMessage>,
) {
    if shared.load.batch_scheduling {
        batch_this_thread();
    }
    let fibers = shared.load.fibers.max(1);
    // Stacks first: a worker out of memory mappings should stop before
    // thousands of setups have opened their connections.
    let stacks = match fibers {
        1 => None,
        _ => match fibers::Stacks::new(fibers as usize) {
            Ok(stacks) => Some(stacks),
            Err(error) => {
                let message = fibers::cannot_make(fibers, shared.lanes, &error);
                let _ = sender.send(ThreadMessage::StartFailed(message));
                return;
            }
        },
    };
    // The thread's results: its lanes take turns recording into it.
    let recorder = Pinned::new(ThreadRecorder::new(params));
    let mut lanes = Vec::with_capacity(fibers as usize);
    for _ in 0..fibers {
        match Lane::start(plugin, recorder.ptr()) {
            Ok(lane) => lanes.push(lane),
            Err(message) => {
                let _ = sender.send(message);
                stop_lanes(plugin, lanes);
                return;
            }
        }
    }
    let _ = sender.send(ThreadMessage::Ready);
    let Some(start) = shared.gate.wait() else {
        stop_lanes(plugin, lanes);
        return;
    };
    let first_lane = thread * fibers;
    let Some(stacks) = stacks else {
        for lane in lanes {
            lane.run(first_lane, plugin, shared, sender, start);
        }
        return;
    };
    let bodies = lanes
        .into_iter()
        .zip(first_lane..)
        .map(|(lane, index)| -> fibers::Body<'_> {
            Box::new(move |fiber| {
                // SAFETY: the lane's host is reached only through this
                // pointer, on this thread, and nothing else runs meanwhile.
                unsafe { (*lane.host.ptr()).fiber = Some(fiber) };
                lane.run(index, plugin, shared, sender, start);
            })
        })
        .collect();
    if let Err(failure) = stacks.run(bodies) {
        // Rare (a broken epoll set, a bug): the parent reports the
        // worker's exit and keeps what the other workers did.
        eprintln!("gorgon worker: {failure}");
        std::process::exit(i32::from(exit::RUN_FAILED));
    }
}

/// A value on the heap reached only through its raw pointer, which a
/// plugin's `Recorder` holds across calls; freed when this goes. (A `Box`
/// would be reborrowed by each use, which invalidates the pointer the
/// plugin holds, as far as Rust's aliasing rules go.)
struct Pinned<T>(*mut T);

impl<T> Pinned<T> {
    fn new(value: T) -> Pinned<T> {
        Pinned(Box::into_raw(Box::new(value)))
    }

    fn ptr(&self) -> *mut T {
        self.0
    }
}

impl<T> Drop for Pinned<T> {
    fn drop(&mut self) {
        // SAFETY: made by `Box::into_raw` in `new`, freed only here.
        drop(unsafe { Box::from_raw(self.0) });
    }
}

/// One loop of calls: a thread, or one fiber of a thread (`--fibers`),
/// with its own plugin state, recording into the thread's recorder.
struct Lane {
    /// Reached only through its pointer: by the plugin during a call and
    /// by the loops between calls.
    host: Pinned<LaneHost>,
    rec: gorgon_plugin_api::Recorder,
}

impl Lane {
    /// Makes the lane's plugin recorder and runs the plugin's setup on it.
    fn start(plugin: &Plugin, recorder: *mut ThreadRecorder) -> Result<Lane, ThreadMessage> {
        let host = Pinned::new(LaneHost::new(recorder));
        // SAFETY: the host outlives the plugin's recorder (both live in
        // the lane), the thread's recorder outlives its lanes, and a lane
        // is used on one thread.
        let mut rec = unsafe { plugin_recorder(host.ptr()) };
        if let Some(start) = plugin.thread_start {
            // SAFETY: the hook was checked at load; `rec` is this lane's.
            let raw = unsafe { start(&mut rec) };
            if raw.status != STATUS_OK {
                // SAFETY: `raw` was just returned on this thread.
                let text = unsafe { Outcome::from_raw(&raw) }.text();
                return Err(if raw.status == STATUS_BAD_INPUT {
                    ThreadMessage::SetupRefusedInput(text)
                } else {
                    ThreadMessage::StartFailed(format!("the plugin's thread setup failed: {text}"))
                });
            }
        }
        Ok(Lane { host, rec })
    }

    /// Runs the lane's calls, its teardown, and reports it finished.
    fn run(
        mut self,
        index: u32,
        plugin: &Plugin,
        shared: &Shared,
        sender: &mpsc::Sender<ThreadMessage>,
        start: Start,
    ) {
        let mut run = ThreadRun {
            plugin,
            shared,
            sender,
            // SAFETY: as in `start`.
            host: unsafe { (*self.host.ptr()).recorder },
            lane: self.host.ptr(),
            clock: start.clock,
            origin: start.origin,
            next_flush_ns: shared.interval_ns,
            calls: 0,
            warmup_calls: 0,
            end_ns: 0,
        };
        match shared.load.rate_per_sec {
            Some(rate) => paced::run(&mut run, &mut self.rec, &Schedule::new(&shared.load, rate)),
            None => closed::run(&mut run, &mut self.rec, index),
        }
        stop_thread(plugin, &mut self.rec);
        run.finish();
    }
}

/// One worker thread's side of the run: the plugin, where its results go,
/// and the bookkeeping the loops carry from one phase to the next.
struct ThreadRun<'a> {
    plugin: &'a Plugin,
    shared: &'a Shared,
    sender: &'a mpsc::Sender<ThreadMessage>,
    /// The thread's recorder, shared by its lanes; the plugin reaches it
    /// through its `Recorder` during a call, the loops through this
    /// pointer between calls.
    host: *mut ThreadRecorder,
    /// This lane's side of the plugin's `Recorder`.
    lane: *mut LaneHost,
    clock: Clock,
    /// The start of the run, in raw clock ticks.
    origin: u64,
    /// When this lane next checks whether an interval has ended.
    next_flush_ns: u64,
    calls: u64,
    warmup_calls: u64,
    /// When the last call ended, in ns from the start.
    end_ns: u64,
}

impl ThreadRun<'_> {
    /// False during the lane's warm-up, whose calls are counted and not
    /// recorded (the plugin's measurements check the same flag).
    fn measuring(&self) -> bool {
        // SAFETY: between calls the plugin holds no borrow of the lane.
        unsafe { (*self.lane).measuring }
    }

    /// Nanoseconds since the start of the run.
    #[inline]
    fn now_ns(&self) -> u64 {
        self.clock.delta_as_nanos(self.origin, self.clock.raw())
    }

    fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }

    /// Hands the thread's results over when the interval they belong to
    /// has ended (`now_ns` is past it), and schedules the next check. The
    /// first lane of the thread to cross a boundary sends; the others find
    /// the recorder already holding the new interval.
    #[cold]
    fn flush(&mut self, now_ns: u64) {
        let index = now_ns / self.shared.interval_ns;
        // SAFETY: between calls the plugin holds no borrow of the recorder.
        let recorder = unsafe { &mut *self.host };
        if index > recorder.interval {
            self.hand_over(recorder);
            recorder.interval = index;
        }
        self.next_flush_ns = (index + 1) * self.shared.interval_ns;
    }

    /// Sends what the thread's recorder holds, under its interval.
    fn hand_over(&self, recorder: &mut ThreadRecorder) {
        if !recorder.is_empty() {
            let _ = self.sender.send(ThreadMessage::Delta {
                index: recorder.interval,
                stats: Box::new(recorder.take_delta()),
            });
        }
    }

    /// Ends this lane's warm-up, whose calls were not recorded: the
    /// measured part starts at `from_ns` (or earlier, if another lane
    /// started it first). Returns the measured part's deadline.
    fn start_measuring(&mut self, from_ns: u64) -> u64 {
        // SAFETY: as in `flush`.
        unsafe { (*self.lane).measuring = true };
        let from = self
            .shared
            .measured_from
            .fetch_min(from_ns, Ordering::Relaxed)
            .min(from_ns);
        // What the thread holds from before `from` (other lanes' calls)
        // goes out under its own interval; this lane's first calls land in
        // the interval `from` is in, or a later one.
        self.flush(from);
        match self.shared.load.duration_ns {
            Some(duration) => from.saturating_add(duration),
            None => u64::MAX,
        }
    }

    /// Waits until `at_ns` from the start: sleeps while it is far, then
    /// yields and finally spins for the last stretch, where a sleep would
    /// overshoot. False when the run was stopped meanwhile.
    fn wait_until(&self, at_ns: u64) -> bool {
        /// Linux sleeps overshoot by about 50-100 µs (timer slack).
        const SPIN_NS: u64 = 200_000;
        /// Below this a yield (a system call) may itself overshoot.
        const YIELD_NS: u64 = 20_000;
        /// A long wait still looks at the stop flag this often.
        const SLICE_NS: u64 = 50_000_000;
        // SAFETY: between calls the plugin holds no borrow of the lane.
        let fiber = unsafe { (*self.lane).fiber };
        loop {
            let now = self.now_ns();
            if now >= at_ns {
                return true;
            }
            if self.stopped() {
                return false;
            }
            let left = at_ns - now;
            if let Some(fiber) = fiber {
                // The thread's scheduler runs the other fibers meanwhile
                // and times the wake-up itself.
                fiber.sleep_until(Instant::now() + Duration::from_nanos(left.min(SLICE_NS)));
            } else if left > SPIN_NS {
                std::thread::sleep(Duration::from_nanos((left - SPIN_NS).min(SLICE_NS)));
            } else if left > YIELD_NS {
                // Many waiting threads must not starve the busy ones.
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// Sends what is left and says the thread is done.
    fn finish(self) {
        let end_ns = self.end_ns;
        // SAFETY: as in `flush`; the lane makes no more calls. What the
        // thread holds belongs to its recorder's interval, whatever
        // interval this lane ended in.
        let recorder = unsafe { &mut *self.host };
        self.hand_over(recorder);
        let _ = self.sender.send(ThreadMessage::Finished {
            calls: self.calls,
            warmup_calls: self.warmup_calls,
            end_ns,
        });
    }
}

/// Switches the calling thread to `SCHED_BATCH` (`--batch-scheduling`).
/// It keeps its share of CPU (same nice value) but gives up wakeup
/// preemption: a thread woken by a reply waits for the next tick or for
/// the running task to block, instead of preempting it. With the server
/// under test on the same machine, the server then answers the requests
/// it has before the client threads run, with fewer context switches on
/// both sides. It needs no privilege; if the system refuses, the thread
/// keeps the default policy, which only costs speed.
fn batch_this_thread() {
    use nix::libc;
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a plain system call on the calling thread (pid 0) with a
    // valid parameter block.
    let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
}

/// Runs the teardown of lanes that were set up but will make no call.
fn stop_lanes(plugin: &Plugin, lanes: Vec<Lane>) {
    for mut lane in lanes {
        stop_thread(plugin, &mut lane.rec);
    }
}

fn stop_thread(plugin: &Plugin, rec: &mut gorgon_plugin_api::Recorder) {
    if let Some(stop) = plugin.thread_stop {
        // SAFETY: the hook was checked at load. A failing teardown has
        // nothing left to spoil: the thread's calls are all recorded.
        let _ = unsafe { stop(rec) };
    }
}
