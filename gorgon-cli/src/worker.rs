//! A worker process: loads the plugin, runs its share of the numbers on
//! its threads, and streams results to the parent (see [`crate::protocol`]).
//!
//! The hot loop is per thread and shares nothing written per call with other
//! threads: numbers are taken in chunks, latencies go into the thread's own
//! histograms, and the thread hands them over once per interval.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufWriter, Write};
use std::ops::Range;
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use gorgon_plugin_api::abi::{STATUS_BAD_INPUT, STATUS_OK};

use crate::cli::WorkerArgs;
use crate::exit::{self, Code, Failure};
use crate::plan::Share;
use crate::plugin::Plugin;
use crate::protocol::{self, Frame, PROTOCOL_VERSION};
use crate::recorder::{plugin_recorder, Outcome, Params, ThreadRecorder};
use crate::stats::Stats;

/// The largest chunk of numbers a thread takes at once. Chunks amortise the
/// shared counter; the cap bounds how unevenly threads can finish.
const MAX_CHUNK: u64 = 1024;

pub fn main(args: WorkerArgs) -> Result<Code, Failure> {
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
    let plugin = match Plugin::load(&args.plugin) {
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
    let share = Share {
        offset: args.offset,
        stride: args.stride,
        count: args.count,
    };
    let shared = Arc::new(Shared {
        numbers: Numbers::new(share.count, args.threads),
        share,
        stop: AtomicBool::new(false),
        gate: Gate::default(),
        clock: quanta::Clock::new(),
        interval_ns: args.interval_ms.max(1) * 1_000_000,
    });
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
                .spawn(move || run_thread(&plugin, &shared, params, &sender))
                .map_err(|e| Failure::Run(anyhow::anyhow!("cannot start thread {index}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    drop(sender);

    let outcome = supervise(&args, &shared, &receiver, &mut frames);
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
    args: &WorkerArgs,
    shared: &Arc<Shared>,
    receiver: &mpsc::Receiver<ThreadMessage>,
    frames: &mut impl Write,
) -> Result<Code, Failure> {
    let mut ready = 0;
    while ready < args.threads {
        match receiver.recv() {
            Ok(ThreadMessage::Ready) => ready += 1,
            Ok(ThreadMessage::SetupFailed(message)) => {
                let message = format!("the plugin's thread setup failed: {message}");
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
    let ready = Frame::Ready {
        protocol: PROTOCOL_VERSION,
        pid: std::process::id(),
        threads: args.threads,
    };
    if protocol::write_frame(frames, &ready).is_err() || !wait_for_go() {
        return Ok(Code(exit::OK));
    }
    shared.gate.open(Some(shared.clock.raw()));
    let watched = shared.clone();
    // The watcher blocks on stdin; it lives until the process exits.
    std::thread::spawn(move || {
        watch_for_stop();
        watched.stop.store(true, Ordering::Relaxed);
    });
    forward_results(args, receiver, frames)
}

fn forward_results(
    args: &WorkerArgs,
    receiver: &mpsc::Receiver<ThreadMessage>,
    frames: &mut impl Write,
) -> Result<Code, Failure> {
    let tick = Duration::from_millis(args.interval_ms.max(1));
    let mut next_tick = Instant::now() + tick;
    let mut pending: BTreeMap<u64, Stats> = BTreeMap::new();
    let (mut finished, mut calls, mut elapsed_ns) = (0, 0, 0);
    let mut send = |pending: &mut BTreeMap<u64, Stats>| -> bool {
        std::mem::take(pending).into_iter().all(|(index, stats)| {
            protocol::write_frame(frames, &Frame::Interval { index, stats }).is_ok()
        })
    };
    while finished < args.threads {
        match receiver.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
            Ok(ThreadMessage::Delta { index, stats }) => match pending.get_mut(&index) {
                Some(known) => known.merge(&stats),
                None => {
                    pending.insert(index, stats);
                }
            },
            Ok(ThreadMessage::Finished { calls: c, end_ns }) => {
                finished += 1;
                calls += c;
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
    let _ = protocol::write_frame(frames, &Frame::Done { elapsed_ns, calls });
    Ok(Code(exit::OK))
}

/// Blocks until the parent says `go`; false if it said `stop` or left.
fn wait_for_go() -> bool {
    let mut line = String::new();
    loop {
        line.clear();
        match io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) if line.trim() == protocol::GO => return true,
            Ok(_) if line.trim() == protocol::STOP => return false,
            Ok(_) => {}
        }
    }
}

/// Returns when the parent says `stop` or closes our stdin.
fn watch_for_stop() {
    let mut line = String::new();
    loop {
        line.clear();
        match io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line.trim() == protocol::STOP => return,
            Ok(_) => {}
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
    numbers: Numbers,
    /// Set when the run ends early; read once per call (a cache line that
    /// is written once, so reading it costs next to nothing).
    stop: AtomicBool,
    gate: Gate,
    clock: quanta::Clock,
    interval_ns: u64,
}

/// What a thread tells the worker's main thread. `SetupRefusedInput` is a
/// setup that said the user's input is wrong (`SetupError::bad_input`).
enum ThreadMessage {
    Ready,
    SetupFailed(String),
    SetupRefusedInput(String),
    Delta { index: u64, stats: Stats },
    Finished { calls: u64, end_ns: u64 },
}

/// Hands out the indices `0..count` in chunks that shrink towards the end
/// (guided scheduling), so threads finish close together.
struct Numbers {
    next: AtomicU64,
    count: u64,
    threads: u64,
}

impl Numbers {
    fn new(count: u64, threads: u32) -> Numbers {
        Numbers {
            next: AtomicU64::new(0),
            count,
            threads: u64::from(threads.max(1)),
        }
    }

    fn next_chunk(&self) -> Option<Range<u64>> {
        let seen = self.next.load(Ordering::Relaxed);
        if seen >= self.count {
            return None;
        }
        let chunk = ((self.count - seen) / (self.threads * 8)).clamp(1, MAX_CHUNK);
        let start = self.next.fetch_add(chunk, Ordering::Relaxed);
        (start < self.count).then(|| start..start.saturating_add(chunk).min(self.count))
    }
}

/// Holds threads until the run starts; carries the start instant, or
/// `None` when the run is called off.
#[derive(Default)]
struct Gate {
    state: Mutex<Option<Option<u64>>>,
    opened: Condvar,
}

impl Gate {
    fn open(&self, origin: Option<u64>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.get_or_insert(origin);
        self.opened.notify_all();
    }

    fn wait(&self) -> Option<u64> {
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
    plugin: &Plugin,
    shared: &Shared,
    params: Arc<Params>,
    sender: &mpsc::Sender<ThreadMessage>,
) {
    let mut owner = Box::new(ThreadRecorder::new(params));
    // From here on the recorder is reached only through this pointer, by the
    // plugin during a call and by this loop between calls.
    let host: *mut ThreadRecorder = &mut *owner;
    // SAFETY: `owner` lives until the end of this function, on this thread.
    let mut rec = unsafe { plugin_recorder(host) };
    if let Some(start) = plugin.thread_start {
        // SAFETY: the hook was checked at load; `rec` is this thread's.
        let raw = unsafe { start(&mut rec) };
        if raw.status != STATUS_OK {
            // SAFETY: `raw` was just returned on this thread.
            let text = unsafe { Outcome::from_raw(&raw) }.text();
            let _ = sender.send(if raw.status == STATUS_BAD_INPUT {
                ThreadMessage::SetupRefusedInput(text)
            } else {
                ThreadMessage::SetupFailed(text)
            });
            return;
        }
    }
    let _ = sender.send(ThreadMessage::Ready);
    let Some(origin) = shared.gate.wait() else {
        stop_thread(plugin, &mut rec);
        return;
    };
    let clock = shared.clock.clone();
    let (mut index, mut next_flush_ns, mut calls, mut end_ns) = (0, shared.interval_ns, 0u64, 0);
    'run: while let Some(chunk) = shared.numbers.next_chunk() {
        for k in chunk {
            if shared.stop.load(Ordering::Relaxed) {
                break 'run;
            }
            let number = shared.share.number(k);
            let t0 = clock.raw();
            // SAFETY: the plugin's ABI was checked at load.
            let raw = unsafe { (plugin.operation)(number, &mut rec) };
            let t1 = clock.raw();
            // SAFETY: `raw` was just returned on this thread; `host` is
            // not borrowed by the plugin between calls.
            unsafe {
                (*host).record_outcome(&Outcome::from_raw(&raw), clock.delta_as_nanos(t0, t1))
            };
            calls += 1;
            end_ns = clock.delta_as_nanos(origin, t1);
            if end_ns >= next_flush_ns {
                // SAFETY: as above.
                let stats = unsafe { (*host).take_delta() };
                let _ = sender.send(ThreadMessage::Delta { index, stats });
                index = end_ns / shared.interval_ns;
                next_flush_ns = (index + 1) * shared.interval_ns;
            }
        }
    }
    stop_thread(plugin, &mut rec);
    // SAFETY: as above.
    let stats = unsafe { (*host).take_delta() };
    let _ = sender.send(ThreadMessage::Delta { index, stats });
    let _ = sender.send(ThreadMessage::Finished { calls, end_ns });
}

fn stop_thread(plugin: &Plugin, rec: &mut gorgon_plugin_api::Recorder) {
    if let Some(stop) = plugin.thread_stop {
        // SAFETY: the hook was checked at load. A failing teardown has
        // nothing left to spoil: the thread's calls are all recorded.
        let _ = unsafe { stop(rec) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_range_once() {
        let numbers = Numbers::new(10_000, 4);
        let mut seen = Vec::new();
        while let Some(chunk) = numbers.next_chunk() {
            assert!(chunk.end - chunk.start <= MAX_CHUNK);
            seen.extend(chunk);
        }
        assert_eq!(seen, (0..10_000).collect::<Vec<_>>());
    }
}
