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
pub const PROTOCOL_VERSION: u32 = 2;

/// How often workers send partial results: the length of one `interval`.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The control line that starts the operations.
pub const GO: &str = "go";
/// The control line that ends them early.
pub const STOP: &str = "stop";

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
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
    /// Sent every interval while the run goes on, calls or none: the parent
    /// knows the worker is alive, how many calls are running, and which
    /// have been running for a second or more.
    Alive {
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
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
