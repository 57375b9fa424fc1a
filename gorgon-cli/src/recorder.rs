//! The host side of the plugin's `Recorder`: where one thread's results go.
//!
//! Each worker thread owns one [`ThreadRecorder`]; nothing in it is shared
//! with other threads, so the hot path takes no lock and touches no atomic.
//! The thread hands its histograms over once per interval. Its lanes (the
//! thread itself, or each of its fibers with `--fibers`) record into it
//! one at a time, each through a lane of its own
//! ([`crate::plugin::lane`]): a thousand fibers share one set of
//! histograms, not a thousand.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hdrhistogram::Histogram;

use crate::plan::Param;
use crate::stats::{
    add_panic, new_histogram, PanicSample, Stats, MAX_NAMES, OTHER_LABELS, OTHER_MEASUREMENTS,
    PANIC_LABEL,
};

/// Histograms by name, found by a linear scan that tries the last name
/// first: a plugin returns one label most of the time, and a handful at
/// most, where a scan of a few byte slices beats hashing. Past
/// [`SCAN_NAMES`] names a hash index takes over, and past [`MAX_NAMES`]
/// new names are all counted under one `other` name, so memory stays
/// bounded whatever the plugin returns.
struct Tally {
    names: Vec<Box<[u8]>>,
    histograms: Vec<Histogram<u64>>,
    /// Calls the plugin said failed, by the same index.
    failed: Vec<u64>,
    last: usize,
    /// Name to index, once there are many names.
    index: HashMap<Box<[u8]>, usize>,
    /// Where names beyond [`MAX_NAMES`] go.
    other: &'static str,
}

/// Up to this many names a linear scan beats a hash lookup.
const SCAN_NAMES: usize = 16;

impl Tally {
    fn new(other: &'static str) -> Tally {
        Tally {
            names: Vec::new(),
            histograms: Vec::new(),
            failed: Vec::new(),
            last: 0,
            index: HashMap::new(),
            other,
        }
    }

    #[inline]
    fn record(&mut self, name: &[u8], nanos: u64) {
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
        self.last = match self.find(name) {
            Some(index) => index,
            None if self.names.len() >= MAX_NAMES => match self.find(self.other.as_bytes()) {
                Some(index) => index,
                None => self.add(self.other.as_bytes()),
            },
            None => self.add(name),
        };
        self.last
    }

    fn find(&self, name: &[u8]) -> Option<usize> {
        if self.names.len() > SCAN_NAMES {
            return self.index.get(name).copied();
        }
        self.names.iter().position(|known| **known == *name)
    }

    #[cold]
    fn add(&mut self, name: &[u8]) -> usize {
        let index = self.names.len();
        self.names.push(name.into());
        self.histograms.push(new_histogram());
        self.failed.push(0);
        if self.names.len() > SCAN_NAMES {
            if self.index.is_empty() {
                for (at, known) in self.names.iter().enumerate() {
                    self.index.insert(known.clone(), at);
                }
            } else {
                self.index.insert(name.into(), index);
            }
        }
        index
    }

    /// Hands over what was recorded since the last call and starts afresh,
    /// keeping the histograms' memory for the next interval.
    fn take(&mut self) -> BTreeMap<String, Histogram<u64>> {
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

    pub fn get(&self, key: &[u8]) -> Option<&str> {
        self.0
            .iter()
            .find(|p| p.key.as_bytes() == key)
            .map(|p| p.value.as_str())
    }
}

/// One thread's results since its last hand-over.
pub struct ThreadRecorder {
    results: Tally,
    measurements: Tally,
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

impl ThreadRecorder {
    pub fn new(params: Arc<Params>) -> ThreadRecorder {
        ThreadRecorder {
            results: Tally::new(OTHER_LABELS),
            measurements: Tally::new(OTHER_MEASUREMENTS),
            service: Tally::new(OTHER_LABELS),
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
            Outcome::Panic(message) => self.record_panic(message, nanos),
        }
    }

    /// Kept out of line: the hot path of a call that returned a label
    /// should not carry the copying of a panic's message.
    #[cold]
    #[inline(never)]
    fn record_panic(&mut self, message: &[u8], nanos: u64) {
        self.results.record(PANIC_LABEL.as_bytes(), nanos);
        add_panic(&mut self.panics, &String::from_utf8_lossy(message), 1);
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

    /// A measurement the plugin took inside a call (`Recorder::record`).
    pub fn record_measurement(&mut self, name: &[u8], nanos: u64) {
        self.measurements.record(name, nanos);
        if let Some(trace) = &mut self.trace {
            trace.push((String::from_utf8_lossy(name).into_owned(), nanos));
        }
    }

    /// The run parameters, for `Recorder::param`.
    pub fn params(&self) -> Arc<Params> {
        self.params.clone()
    }

    /// The measurements of the last call (debug mode), emptied.
    pub fn take_trace(&mut self) -> Vec<(String, u64)> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }
}

/// What a call returned, read from the plugin's `RawOutcome` (see
/// [`crate::plugin::lane`]).
pub enum Outcome<'a> {
    Label(&'a [u8]),
    /// A call the plugin said failed (ABI 3), with its label.
    Failed(&'a [u8]),
    Panic(&'a [u8]),
}

impl Outcome<'_> {
    pub fn text(&self) -> String {
        match self {
            Outcome::Label(text) | Outcome::Failed(text) | Outcome::Panic(text) => {
                String::from_utf8_lossy(text).into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(taken: &BTreeMap<String, Histogram<u64>>) -> Vec<(&str, u64)> {
        taken
            .iter()
            .map(|(name, histogram)| (name.as_str(), histogram.len()))
            .collect()
    }

    #[test]
    fn a_tally_keeps_one_histogram_per_name_whatever_the_order() {
        let mut tally = Tally::new(OTHER_LABELS);
        for name in ["OK", "OK", "ERR", "OK", "TIMEOUT", "ERR", "OK"] {
            tally.record(name.as_bytes(), 1_000);
        }
        assert_eq!(tally.names.len(), 3, "one entry per distinct label");
        assert_eq!(
            counts(&tally.take()),
            [("ERR", 2), ("OK", 4), ("TIMEOUT", 1)]
        );
    }

    #[test]
    fn taking_empties_the_tally_and_leaves_out_quiet_labels() {
        let mut tally = Tally::new(OTHER_LABELS);
        tally.record(b"OK", 10);
        tally.record(b"ERR", 20);
        tally.take();
        tally.record(b"ERR", 30);
        assert_eq!(counts(&tally.take()), [("ERR", 1)]);
        assert!(tally.take().is_empty());
    }

    #[test]
    fn panics_count_under_their_own_label_with_the_message_kept() {
        let mut recorder = ThreadRecorder::new(Arc::new(Params::default()));
        assert!(recorder.is_empty());
        recorder.record_outcome(&Outcome::Label(b"OK"), 5);
        recorder.record_outcome(&Outcome::Panic(b"boom"), 7);
        assert!(!recorder.is_empty());
        let delta = recorder.take_delta();
        assert_eq!(counts(&delta.results), [("OK", 1), (PANIC_LABEL, 1)]);
        assert_eq!(delta.panics.len(), 1);
        assert!(recorder.is_empty(), "a hand-over starts afresh");
    }

    #[test]
    fn paced_calls_keep_service_times_and_count_late_starts() {
        let mut recorder = ThreadRecorder::new(Arc::new(Params::default()));
        recorder.record_paced(&Outcome::Label(b"OK"), 900, 100, true);
        recorder.record_paced(&Outcome::Label(b"OK"), 100, 100, false);
        let delta = recorder.take_delta();
        assert_eq!(counts(&delta.service), [("OK", 2)]);
        assert_eq!(delta.late, 1);
        assert_eq!(
            delta.results["OK"].max(),
            900,
            "latency from when it was due"
        );
    }

    #[test]
    fn measurements_are_traced_only_when_debugging() {
        let params = Arc::new(Params::default());
        let mut quiet = ThreadRecorder::new(params.clone());
        quiet.record_measurement(b"connect", 40);
        assert!(quiet.take_trace().is_empty());
        let mut tracing = ThreadRecorder::tracing(params);
        tracing.record_measurement(b"connect", 40);
        assert_eq!(tracing.take_trace(), [("connect".to_string(), 40)]);
        assert!(
            tracing.take_trace().is_empty(),
            "one call's trace at a time"
        );
        assert_eq!(counts(&tracing.take_delta().measurements), [("connect", 1)]);
    }

    #[test]
    fn the_last_setting_of_a_parameter_wins() {
        let param = |key: &str, value: &str| Param {
            key: key.into(),
            value: value.into(),
        };
        let params = Params::new(&[param("a", "1"), param("b", "2"), param("a", "3")]);
        let params = ThreadRecorder::new(Arc::new(params)).params();
        assert_eq!(params.get(b"a"), Some("3"));
        assert_eq!(params.get(b"b"), Some("2"));
        assert_eq!(params.get(b"c"), None);
    }
}
