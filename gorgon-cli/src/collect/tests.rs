//! The collector driven by scripted links: each replays frames as a worker
//! would, and answers `go` and `stop` on its control stream, without a
//! process. As hyperfine tests its scheduler with a mock executor, these
//! test the merge loop's decisions one situation at a time.

use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::stats::{new_histogram, Stats};

/// What a scripted worker does after its `ready` frames (or instead).
#[derive(Clone, Copy, PartialEq)]
enum End {
    /// Its stream ends after the last frame (a clean exit, or a crash).
    Close,
    /// It says nothing more and keeps its stream open until told to
    /// stop or killed.
    Hang,
    /// It says nothing more and ignores `stop`: only a kill ends it (a
    /// call that never returns).
    Stuck,
}

/// A worker as a script: `before_go` is sent at once, `after_go` once the
/// collector writes `go`.
struct Scripted {
    name: String,
    node: Option<String>,
    before_go: Vec<u8>,
    after_go: Vec<u8>,
    end: End,
    /// How the process "ended", for `wait`.
    exit: &'static str,
    control: Control,
    signals: Option<Receiver<Signal>>,
    /// The control lines the collector wrote, shared with the test.
    written: Arc<Mutex<Vec<String>>>,
}

enum Signal {
    Go,
    Stop,
}

fn lines(frames: &[Frame]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for frame in frames {
        protocol::write_frame(&mut bytes, frame).unwrap();
    }
    bytes
}

impl Scripted {
    fn new(name: &str, before_go: &[Frame], after_go: &[Frame], end: End) -> Scripted {
        let (sender, signals) = mpsc::channel();
        let written = Arc::new(Mutex::new(Vec::new()));
        Scripted {
            name: name.to_string(),
            node: None,
            before_go: lines(before_go),
            after_go: lines(after_go),
            end,
            exit: "exited with code 0",
            control: Control {
                sender: Some(sender),
                written: written.clone(),
                pending: String::new(),
            },
            signals: Some(signals),
            written,
        }
    }

    /// A worker that is ready, sends `after_go` once started, and exits.
    fn worker(name: &str, after_go: &[Frame]) -> Scripted {
        Scripted::new(name, &[ready(PROTOCOL_VERSION)], after_go, End::Close)
    }

    fn exiting(mut self, how: &'static str) -> Scripted {
        self.exit = how;
        self
    }

    fn on(mut self, node: &str) -> Scripted {
        self.node = Some(node.to_string());
        self
    }

    fn boxed(self) -> Box<dyn Link> {
        Box::new(self)
    }
}

/// The scripted worker's stdin: lines become signals to its stream.
struct Control {
    /// `None` once the worker is killed: its stream then ends.
    sender: Option<Sender<Signal>>,
    written: Arc<Mutex<Vec<String>>>,
    pending: String,
}

impl Write for Control {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.pending.push_str(&String::from_utf8_lossy(bytes));
        while let Some(end) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=end).collect();
            let line = line.trim().to_string();
            let signal = match line.as_str() {
                protocol::GO => Some(Signal::Go),
                protocol::STOP => Some(Signal::Stop),
                _ => None,
            };
            self.written.lock().unwrap().push(line);
            if let (Some(signal), Some(sender)) = (signal, &self.sender) {
                let _ = sender.send(signal);
            }
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The scripted worker's stdout.
struct Stream {
    now: io::Cursor<Vec<u8>>,
    after_go: Option<Vec<u8>>,
    end: End,
    signals: Receiver<Signal>,
}

impl Read for Stream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            let read = self.now.read(buffer)?;
            if read > 0 {
                return Ok(read);
            }
            if self.after_go.is_none() && self.end == End::Close {
                return Ok(0);
            }
            // Out of frames: wait for what the collector says. A `stop` or
            // a kill (the sender dropped) ends the stream.
            match self.signals.recv() {
                Ok(Signal::Go) => {
                    if let Some(next) = self.after_go.take() {
                        self.now = io::Cursor::new(next);
                    }
                }
                Ok(Signal::Stop) if self.end == End::Stuck => {}
                Ok(Signal::Stop) | Err(_) => return Ok(0),
            }
        }
    }
}

impl Link for Scripted {
    fn name(&self) -> &str {
        &self.name
    }

    fn control(&mut self) -> &mut dyn Write {
        &mut self.control
    }

    fn take_frames(&mut self) -> Box<dyn Read + Send> {
        let signals = self.signals.take().expect("frames are taken once");
        let close_at_once = self.end == End::Close && self.after_go.is_empty();
        Box::new(Stream {
            now: io::Cursor::new(std::mem::take(&mut self.before_go)),
            after_go: Some(std::mem::take(&mut self.after_go)).filter(|_| !close_at_once),
            end: self.end,
            signals,
        })
    }

    fn wait(&mut self) -> String {
        self.exit.to_string()
    }

    fn kill(&mut self) {
        self.control.sender = None;
    }

    fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }
}

fn ready(protocol: u32) -> Frame {
    Frame::Ready {
        protocol,
        pid: 1,
        threads: 1,
    }
}

/// An interval of `calls` calls of 1 ms labelled `label`.
fn interval(index: u64, label: &str, calls: u64) -> Frame {
    let mut stats = Stats::default();
    let histogram = stats
        .results
        .entry(label.to_string())
        .or_insert_with(new_histogram);
    histogram.record_n(1_000_000, calls).unwrap();
    Frame::Interval { index, stats }
}

fn done(calls: u64) -> Frame {
    Frame::Done {
        elapsed_ns: 2_000_000_000,
        calls,
        measured_from_ns: 0,
        warmup_calls: 0,
        peak_rss_bytes: Some(1 << 20),
        dropped: 0,
        waited_on_fiber: false,
    }
}

const BOUNDS: Bounds = Bounds {
    end_by: None,
    grace: Duration::from_secs(5),
    silence: SILENCE,
    call_timeout: None,
    window: None,
};

const SHAPE: RunShape = RunShape {
    processes: 2,
    threads: 1,
};

fn collect(links: Vec<Box<dyn Link>>) -> Result<RunResult, Failure> {
    run(
        SHAPE,
        Some(30),
        links,
        BOUNDS,
        &Interrupts::default(),
        &mut (),
    )
}

/// Returns once the collector has written `go` to a scripted worker (or
/// after 10 s: the test's assertions then say what went wrong).
fn wait_for_go(written: &Mutex<Vec<String>>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !written.lock().unwrap().iter().any(|line| line == "go")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn count(result: &RunResult, label: &str) -> u64 {
    result.stats.results.get(label).map_or(0, |h| h.len())
}

fn alive(interval: u64, in_flight: u32) -> Frame {
    Frame::Alive {
        interval,
        in_flight,
        long: Vec::new(),
    }
}

#[test]
fn the_calls_in_flight_of_every_worker_add_up_in_the_timeline() {
    let a = Scripted::worker(
        "a",
        &[interval(0, "OK", 4), alive(0, 3), alive(1, 2), done(4)],
    );
    let b = Scripted::worker(
        "b",
        &[
            interval(0, "OK", 2),
            alive(0, 1),
            interval(1, "OK", 1),
            done(3),
        ],
    );
    let result = collect(vec![a.boxed(), b.boxed()]).unwrap();
    let points: Vec<(u64, u64, u64, Option<u64>)> = result
        .timeline
        .iter()
        .map(|p| (p.start_ms, p.duration_ms, p.calls, p.in_flight))
        .collect();
    // The first intervals are 200 ms; the run lasted 2 s by the workers.
    assert_eq!(points, [(0, 200, 6, Some(4)), (200, 200, 1, Some(2))]);
}

#[test]
fn frames_of_every_worker_merge_into_one_result_and_timeline() {
    let a = Scripted::worker(
        "a",
        &[interval(0, "OK", 10), interval(1, "OK", 5), done(15)],
    );
    let b = Scripted::worker(
        "b",
        &[interval(0, "OK", 7), interval(1, "FAIL", 3), done(10)],
    );
    let written = a.written.clone();
    let result = collect(vec![a.on("n1").boxed(), b.on("n2").boxed()]).unwrap();
    assert!(result.failures.is_empty(), "{:?}", result.failures);
    assert!(!result.interrupted);
    assert_eq!((count(&result, "OK"), count(&result, "FAIL")), (22, 3));
    assert_eq!(result.workers, ["a", "b"]);
    assert_eq!(result.elapsed, Duration::from_secs(2), "the workers' clock");
    let calls: Vec<u64> = result.timeline.iter().map(|p| p.calls).collect();
    assert_eq!(calls, [17, 8]);
    let nodes: Vec<(&str, u64)> = result
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.stats.all_calls().len()))
        .collect();
    assert_eq!(nodes, [("n1", 15), ("n2", 10)]);
    assert_eq!(*written.lock().unwrap(), ["go"], "go once, no stop");
}

#[test]
fn a_worker_that_closes_early_is_a_failure_and_its_results_are_kept() {
    let finishes = Scripted::worker("worker 1 of 2", &[interval(0, "OK", 10), done(10)]);
    let dies = Scripted::worker("worker 2 of 2", &[interval(0, "OK", 4)])
        .exiting("was killed by signal 6 (SIGABRT)");
    let result = collect(vec![finishes.boxed(), dies.boxed()]).unwrap();
    assert_eq!(count(&result, "OK"), 14, "what it sent is kept");
    assert_eq!(
        result.failures,
        [
            "worker 2 of 2 was killed by signal 6 (SIGABRT) before finishing its share; \
          the results it had sent are kept"
        ]
    );
}

#[test]
fn an_error_frame_after_the_start_names_its_worker() {
    let failing = Scripted::worker(
        "w",
        &[
            interval(0, "OK", 2),
            Frame::Error {
                message: "the plugin's thread setup failed".into(),
            },
        ],
    )
    .exiting("exited with code 3");
    let result = collect(vec![failing.on("n").boxed()]).unwrap();
    assert_eq!(result.failures.len(), 2, "{:?}", result.failures);
    assert_eq!(result.failures[0], "w: the plugin's thread setup failed");
    assert_eq!(result.nodes[0].failures, result.failures);
}

#[test]
fn a_worker_of_another_protocol_stops_the_run_before_it_starts() {
    let current = Scripted::worker("worker 1 of 2", &[done(0)]);
    let written = current.written.clone();
    let other = Scripted::new(
        "worker 2 of 2",
        &[ready(PROTOCOL_VERSION + 1)],
        &[],
        End::Hang,
    );
    let Err(failure) = collect(vec![current.boxed(), other.boxed()]) else {
        panic!("a worker of another protocol was accepted");
    };
    let message = failure.to_string();
    assert!(
        message.contains(&format!(
            "worker 2 of 2 speaks worker protocol {}",
            PROTOCOL_VERSION + 1
        )),
        "{message}"
    );
    assert_eq!(failure.exit_code(), crate::exit::USAGE);
    assert_eq!(*written.lock().unwrap(), ["stop"], "never `go`");
}

#[test]
fn a_garbled_stream_is_a_failure_that_says_why() {
    let mut garbled = Scripted::worker("w", &[interval(0, "OK", 3)]);
    garbled
        .after_go
        .extend_from_slice(b"{\"type\":\"interval\",\"index\":\n");
    let result = collect(vec![garbled.boxed()]).unwrap();
    assert_eq!(count(&result, "OK"), 3);
    assert_eq!(result.failures.len(), 1);
    assert!(
        result.failures[0].contains("(unreadable frame:"),
        "{}",
        result.failures[0]
    );
}

#[test]
fn a_worker_that_refuses_the_input_is_bad_usage_naming_the_input() {
    let refuses = Scripted::new(
        "w",
        &[Frame::InputError {
            message: "the request file has no method".into(),
        }],
        &[],
        End::Hang,
    );
    let failure = collect(vec![refuses.boxed()]).err().expect("refused");
    assert_eq!(failure.to_string(), "the request file has no method");
    assert_eq!(failure.exit_code(), crate::exit::USAGE);
}

#[test]
fn a_worker_that_ends_before_it_is_ready_stops_the_run() {
    let gone = Scripted::new("worker 1 of 1", &[], &[], End::Close).exiting("exited with code 2");
    let failure = collect(vec![gone.boxed()]).err().expect("not started");
    assert_eq!(
        failure.to_string(),
        "worker 1 of 1 exited with code 2 before it was ready"
    );
}

/// A silent worker keeps a run waiting until it is interrupted; then it
/// is told to stop, and the run ends as interrupted, not failed.
#[test]
fn a_silent_worker_ends_with_the_interrupt() {
    for ready_first in [false, true] {
        let before: &[Frame] = if ready_first {
            &[ready(PROTOCOL_VERSION)]
        } else {
            &[]
        };
        let silent = Scripted::new("silent", before, &[], End::Hang);
        let written = silent.written.clone();
        let interrupted = Arc::new(Interrupts::default());
        let raise = {
            let interrupted = interrupted.clone();
            let written = written.clone();
            std::thread::spawn(move || {
                // A ready worker is interrupted once started, however
                // late the collector reads its `ready`; then the run has
                // waited a while for a worker that says nothing.
                if ready_first {
                    wait_for_go(&written);
                }
                std::thread::sleep(Duration::from_millis(200));
                interrupted.raise();
            })
        };
        let result = run(
            SHAPE,
            None,
            vec![silent.boxed()],
            BOUNDS,
            &interrupted,
            &mut (),
        )
        .unwrap();
        raise.join().unwrap();
        assert!(result.interrupted, "ready first: {ready_first}");
        assert!(result.failures.is_empty(), "{:?}", result.failures);
        let expected: &[&str] = if ready_first {
            &["go", "stop"]
        } else {
            &["stop"]
        };
        assert_eq!(*written.lock().unwrap(), expected);
    }
}

/// The observer sees the start, merged figures, and the end.
#[test]
fn the_observer_sees_the_run_merged() {
    #[derive(Default)]
    struct Seen {
        started: usize,
        most_calls: u64,
        finished: Option<u64>,
    }
    impl Observer for Seen {
        fn started(&mut self, _live: &Live<'_>) {
            self.started += 1;
        }
        fn update(&mut self, live: &Live<'_>) {
            self.most_calls = self.most_calls.max(live.stats.all_calls().len());
        }
        fn finished(&mut self, result: &RunResult) {
            self.finished = Some(result.stats.all_calls().len());
        }
    }
    let a = Scripted::worker("a", &[interval(0, "OK", 6), done(6)]);
    let b = Scripted::worker("b", &[interval(0, "OK", 4), done(4)]);
    let mut seen = Seen::default();
    run(
        SHAPE,
        Some(10),
        vec![a.boxed(), b.boxed()],
        BOUNDS,
        &Interrupts::default(),
        &mut seen,
    )
    .unwrap();
    assert_eq!(
        (seen.started, seen.most_calls, seen.finished),
        (1, 10, Some(10))
    );
}

/// A worker stuck past the run's planned end is killed after the grace
/// period and named; what it sent is kept, and the others finish.
#[test]
fn a_worker_stuck_past_the_planned_end_is_killed_and_named() {
    let stuck = Scripted::new(
        "stuck",
        &[ready(PROTOCOL_VERSION)],
        &[interval(0, "OK", 7)],
        End::Stuck,
    );
    let fine = Scripted::worker("fine", &[interval(0, "OK", 5), done(5)]);
    let bounds = Bounds {
        end_by: Some(Duration::from_millis(100)),
        grace: Duration::from_millis(200),
        silence: SILENCE,
        call_timeout: None,
        window: None,
    };
    let started = std::time::Instant::now();
    let result = run(
        SHAPE,
        None,
        vec![stuck.boxed(), fine.boxed()],
        bounds,
        &Interrupts::default(),
        &mut (),
    )
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "ended on time");
    assert_eq!(
        count(&result, "OK"),
        12,
        "the stuck worker's results are kept"
    );
    assert_eq!(result.failures.len(), 1, "{:?}", result.failures);
    assert!(
        result.failures[0]
            .starts_with("stuck did not finish within 200ms after the run's planned end"),
        "{:?}",
        result.failures
    );
}

/// After a stop (Ctrl-C), a worker that does not stop within the grace is
/// killed; a second interrupt kills at once.
#[test]
fn interrupts_end_a_stuck_worker_after_the_grace_or_at_once() {
    for (second, grace) in [(false, 300), (true, 60_000)] {
        let stuck = Scripted::new("stuck", &[ready(PROTOCOL_VERSION)], &[], End::Stuck);
        let written = stuck.written.clone();
        let interrupts = Arc::new(Interrupts::default());
        let raise = {
            let interrupts = interrupts.clone();
            std::thread::spawn(move || {
                // Interrupted while it runs, not before it started.
                wait_for_go(&written);
                std::thread::sleep(Duration::from_millis(100));
                interrupts.raise();
                if second {
                    std::thread::sleep(Duration::from_millis(100));
                    interrupts.raise();
                }
            })
        };
        let bounds = Bounds {
            end_by: None,
            grace: Duration::from_millis(grace),
            silence: SILENCE,
            call_timeout: None,
            window: None,
        };
        let started = std::time::Instant::now();
        let result = run(
            SHAPE,
            None,
            vec![stuck.boxed()],
            bounds,
            &interrupts,
            &mut (),
        )
        .unwrap();
        raise.join().unwrap();
        assert!(started.elapsed() < Duration::from_secs(5), "ended on time");
        assert!(result.interrupted);
        let expected = if second {
            "second interrupt"
        } else {
            "of being told to"
        };
        assert!(
            result.failures[0].contains(expected),
            "{:?}",
            result.failures
        );
    }
}

/// A worker that said `done` but does not exit is killed after the grace.
#[test]
fn a_worker_done_but_not_exiting_is_killed() {
    let lingering = Scripted::new(
        "lingering",
        &[ready(PROTOCOL_VERSION)],
        &[interval(0, "OK", 3), done(3)],
        End::Stuck,
    );
    let bounds = Bounds {
        end_by: None,
        grace: Duration::from_millis(200),
        silence: SILENCE,
        call_timeout: None,
        window: None,
    };
    let result = run(
        SHAPE,
        None,
        vec![lingering.boxed()],
        bounds,
        &Interrupts::default(),
        &mut (),
    )
    .unwrap();
    assert_eq!(count(&result, "OK"), 3);
    assert!(
        result.failures[0].contains("did not exit"),
        "{:?}",
        result.failures
    );
}
