//! The host side of the plugin's `Recorder`: where one thread's results go.
//!
//! Each worker thread owns one [`ThreadRecorder`]; nothing in it is shared
//! with other threads, so the hot path takes no lock and touches no atomic.
//! The thread hands its histograms over once per interval. Its lanes (the
//! thread itself, or each of its fibers with `--fibers`) record into it
//! one at a time, each through a [`LaneHost`] of its own: a thousand fibers
//! share one set of histograms, not a thousand.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::sync::Arc;

use gorgon_plugin_api::abi::{HostVTable, RawOutcome, STATUS_FAILED, STATUS_OK, WAIT_TIMED_OUT};
use gorgon_plugin_api::Recorder;
use hdrhistogram::Histogram;

use crate::plan::Param;
use crate::stats::{add_panic, new_histogram, PanicSample, Stats, PANIC_LABEL};
use crate::worker::fibers::{FiberHandle, Wake};

/// Histograms by name, found by a linear scan that tries the last name
/// first: a plugin returns one label most of the time, and a handful at
/// most, where a scan of a few byte slices beats hashing.
#[derive(Default)]
pub struct Tally {
    names: Vec<Box<[u8]>>,
    histograms: Vec<Histogram<u64>>,
    /// Calls the plugin said failed, by the same index.
    failed: Vec<u64>,
    last: usize,
}

impl Tally {
    #[inline]
    pub fn record(&mut self, name: &[u8], nanos: u64) {
        let index = self.index_of(name);
        let histogram = &mut self.histograms[index];
        // Auto-resizing histograms grow to fit; `saturating_record` would
        // clamp to the current top instead, so it is only the fallback.
        if histogram.record(nanos).is_err() {
            histogram.saturating_record(nanos);
        }
    }

    /// Records a call the plugin said failed: counted under its label
    /// like any other, and as failed.
    #[inline]
    pub fn record_failed(&mut self, name: &[u8], nanos: u64) {
        self.record(name, nanos);
        self.failed[self.last] += 1;
    }

    #[inline]
    fn index_of(&mut self, name: &[u8]) -> usize {
        if self
            .names
            .get(self.last)
            .is_some_and(|last| **last == *name)
        {
            return self.last;
        }
        self.last = match self.names.iter().position(|known| **known == *name) {
            Some(index) => index,
            None => {
                self.names.push(name.into());
                self.histograms.push(new_histogram());
                self.failed.push(0);
                self.names.len() - 1
            }
        };
        self.last
    }

    /// Hands over what was recorded since the last call and starts afresh,
    /// keeping the histograms' memory for the next interval.
    pub fn take(&mut self) -> BTreeMap<String, Histogram<u64>> {
        let mut taken = BTreeMap::new();
        for (name, histogram) in self.names.iter().zip(&mut self.histograms) {
            if !histogram.is_empty() {
                taken.insert(
                    String::from_utf8_lossy(name).into_owned(),
                    histogram.clone(),
                );
                histogram.reset();
            }
        }
        taken
    }

    /// Hands over the failed calls counted since the last call.
    pub fn take_failures(&mut self) -> BTreeMap<String, u64> {
        let mut taken = BTreeMap::new();
        for (name, failed) in self.names.iter().zip(&mut self.failed) {
            if *failed > 0 {
                taken.insert(String::from_utf8_lossy(name).into_owned(), *failed);
                *failed = 0;
            }
        }
        taken
    }
}

/// The run parameters, as the plugin sees them through `rec.param`.
#[derive(Debug, Default)]
pub struct Params(Vec<Param>);

impl Params {
    pub fn new(params: &[Param]) -> Params {
        // The last --set of a key wins, as on most command lines.
        let mut unique: Vec<Param> = Vec::new();
        for param in params {
            unique.retain(|p| p.key != param.key);
            unique.push(param.clone());
        }
        Params(unique)
    }

    fn get(&self, key: &[u8]) -> Option<&str> {
        self.0
            .iter()
            .find(|p| p.key.as_bytes() == key)
            .map(|p| p.value.as_str())
    }
}

/// One thread's results since its last hand-over.
pub struct ThreadRecorder {
    pub results: Tally,
    pub measurements: Tally,
    /// Open model: service times by label, beside the corrected latencies
    /// in `results`.
    service: Tally,
    late: u64,
    panics: Vec<PanicSample>,
    params: Arc<Params>,
    /// The measurements of the current call, kept only in debug mode.
    trace: Option<Vec<(String, u64)>>,
    /// The interval (its index) the results held now belong to.
    pub interval: u64,
}

/// What a plugin's `Recorder` points to: one lane's way to its thread's
/// recorder.
pub struct LaneHost {
    /// The thread's recorder, shared by the thread's lanes; one lane runs
    /// at a time, and none holds a borrow of it across a fiber switch.
    pub recorder: *mut ThreadRecorder,
    /// False while the lane warms up: its calls' measurements are left out.
    pub measuring: bool,
    /// Set while the lane runs on a fiber: where the plugin's waits
    /// suspend to (see [`crate::worker::fibers`]).
    pub fiber: Option<FiberHandle>,
}

impl LaneHost {
    pub fn new(recorder: *mut ThreadRecorder) -> LaneHost {
        LaneHost {
            recorder,
            measuring: false,
            fiber: None,
        }
    }
}

impl ThreadRecorder {
    pub fn new(params: Arc<Params>) -> ThreadRecorder {
        ThreadRecorder {
            results: Tally::default(),
            measurements: Tally::default(),
            service: Tally::default(),
            late: 0,
            panics: Vec::new(),
            params,
            trace: None,
            interval: 0,
        }
    }

    /// A recorder that also keeps each call's measurements, for `--debug`.
    pub fn tracing(params: Arc<Params>) -> ThreadRecorder {
        ThreadRecorder {
            trace: Some(Vec::new()),
            ..ThreadRecorder::new(params)
        }
    }

    /// Counts a finished call under its result label.
    #[inline]
    pub fn record_outcome(&mut self, outcome: &Outcome<'_>, nanos: u64) {
        match outcome {
            Outcome::Label(label) => self.results.record(label, nanos),
            Outcome::Failed(label) => self.results.record_failed(label, nanos),
            Outcome::Panic(message) => {
                self.results.record(PANIC_LABEL.as_bytes(), nanos);
                add_panic(&mut self.panics, &String::from_utf8_lossy(message), 1);
            }
        }
    }

    /// Counts a finished call of the open model: `latency` runs from its
    /// intended start, `service` from its actual start.
    #[inline]
    pub fn record_paced(&mut self, outcome: &Outcome<'_>, latency: u64, service: u64, late: bool) {
        self.record_outcome(outcome, latency);
        let label = match outcome {
            Outcome::Label(label) | Outcome::Failed(label) => label,
            Outcome::Panic(_) => PANIC_LABEL.as_bytes(),
        };
        self.service.record(label, service);
        self.late += u64::from(late);
    }

    /// Nothing recorded since the last hand-over (results, or the
    /// measurements of calls still in progress or of a teardown).
    pub fn is_empty(&self) -> bool {
        self.results.histograms.iter().all(Histogram::is_empty)
            && self.measurements.histograms.iter().all(Histogram::is_empty)
    }

    /// Everything recorded since the last hand-over.
    pub fn take_delta(&mut self) -> Stats {
        Stats {
            failures: self.results.take_failures(),
            results: self.results.take(),
            measurements: self.measurements.take(),
            panics: std::mem::take(&mut self.panics),
            service: self.service.take(),
            late: std::mem::take(&mut self.late),
        }
    }

    /// The measurements of the last call (debug mode), emptied.
    pub fn take_trace(&mut self) -> Vec<(String, u64)> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }
}

/// What a call returned, read from the plugin's [`RawOutcome`].
pub enum Outcome<'a> {
    Label(&'a [u8]),
    /// A call the plugin said failed (ABI 3), with its label.
    Failed(&'a [u8]),
    Panic(&'a [u8]),
}

impl Outcome<'_> {
    /// Reads the outcome's text.
    ///
    /// # Safety
    /// `raw` must come straight from a plugin call on this thread: its text
    /// is valid until the next call.
    #[inline]
    pub unsafe fn from_raw(raw: &RawOutcome) -> Outcome<'_> {
        let text = if raw.text.is_null() {
            &[][..]
        } else {
            std::slice::from_raw_parts(raw.text, raw.len)
        };
        match raw.status {
            STATUS_OK => Outcome::Label(text),
            STATUS_FAILED => Outcome::Failed(text),
            _ => Outcome::Panic(text),
        }
    }

    pub fn text(&self) -> String {
        match self {
            Outcome::Label(text) | Outcome::Failed(text) | Outcome::Panic(text) => {
                String::from_utf8_lossy(text).into()
            }
        }
    }
}

static VTABLE: HostVTable = HostVTable {
    record_measurement,
    param,
    wait,
    cooperative,
};

/// A plugin `Recorder` whose callbacks land in `host`.
///
/// # Safety
/// `host` and its recorder must outlive the plugin's recorder and be used
/// only on this thread, and only through it while a plugin call is running.
pub unsafe fn plugin_recorder(host: *mut LaneHost) -> Recorder {
    Recorder::from_raw(host.cast::<c_void>(), &VTABLE)
}

unsafe extern "C" fn record_measurement(
    host: *mut c_void,
    name: *const u8,
    len: usize,
    nanos: u64,
) {
    let lane = &*host.cast::<LaneHost>();
    if !lane.measuring {
        return;
    }
    let host = &mut *lane.recorder;
    let name = std::slice::from_raw_parts(name, len);
    host.measurements.record(name, nanos);
    if let Some(trace) = &mut host.trace {
        trace.push((String::from_utf8_lossy(name).into_owned(), nanos));
    }
}

unsafe extern "C" fn param(
    host: *mut c_void,
    key: *const u8,
    len: usize,
    out_len: *mut usize,
) -> *const u8 {
    let host = &*(*host.cast::<LaneHost>()).recorder;
    let key = std::slice::from_raw_parts(key, len);
    match host.params.get(key) {
        Some(value) => {
            *out_len = value.len();
            value.as_ptr()
        }
        None => std::ptr::null(),
    }
}

unsafe extern "C" fn wait(host: *mut c_void, fd: i32, writable: u32, timeout_ns: u64) -> i32 {
    let timeout = (timeout_ns != u64::MAX).then(|| std::time::Duration::from_nanos(timeout_ns));
    // Copied out, so no borrow of the recorder is held while suspended.
    let fiber = (*host.cast::<LaneHost>()).fiber;
    let woke = match fiber {
        Some(fiber) => fiber.wait_fd(fd, writable != 0, timeout),
        None => crate::worker::fibers::poll_fd(fd, writable != 0, timeout),
    };
    match woke {
        Wake::Ready => 0,
        Wake::TimedOut => WAIT_TIMED_OUT,
        Wake::Failed(errno) => errno,
    }
}

unsafe extern "C" fn cooperative(host: *mut c_void) -> u32 {
    u32::from((*host.cast::<LaneHost>()).fiber.is_some())
}
