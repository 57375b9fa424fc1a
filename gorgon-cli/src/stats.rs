//! Latency statistics that merge exactly.
//!
//! Every duration goes into an HDR histogram (nanoseconds, 3 significant
//! digits, auto-resizing so a histogram costs memory for the range it saw,
//! not for the number of calls). Histograms from threads, processes and
//! nodes are added bucket by bucket, so a merged p99 is the true p99 of all
//! calls, never an average of percentiles.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The label under which a panicking call is counted.
pub const PANIC_LABEL: &str = "panic";
/// How many distinct result labels, and how many measurement names, a run
/// keeps: each costs a histogram per thread and per interval, so a plugin
/// that puts an id in its label (100,000 labels) would otherwise take
/// gigabytes. Beyond it, calls are counted under [`OTHER_LABELS`] (and
/// measurements under [`OTHER_MEASUREMENTS`]), and the report says so.
pub const MAX_NAMES: usize = 1_000;
/// Where calls with a label beyond the first [`MAX_NAMES`] are counted.
pub const OTHER_LABELS: &str = "(other labels)";
/// Where measurements with a name beyond the first [`MAX_NAMES`] go.
pub const OTHER_MEASUREMENTS: &str = "(other measurements)";

/// How many distinct panic messages a run keeps.
const PANIC_SAMPLES: usize = 10;

/// A fresh histogram in nanoseconds.
pub fn new_histogram() -> Histogram<u64> {
    // 3 significant digits is what HdrHistogram recommends for latency:
    // 0.1% value error, with auto-resize from 1 ns upward.
    Histogram::new(3).expect("3 significant digits is a valid precision")
}

/// One panic message and how many calls ended with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanicSample {
    pub message: String,
    pub count: u64,
}

/// Results of a set of calls: a histogram per result label and per
/// measurement, and the first distinct panic messages.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    #[serde(with = "histogram_map")]
    pub results: BTreeMap<String, Histogram<u64>>,
    #[serde(with = "histogram_map")]
    pub measurements: BTreeMap<String, Histogram<u64>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub panics: Vec<PanicSample>,
    /// Open model only: the service time (actual start to end) per result
    /// label, while `results` holds the latency from the intended start.
    #[serde(
        default,
        with = "histogram_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub service: BTreeMap<String, Histogram<u64>>,
    /// Open model only: calls that started more than
    /// [`LATE_AFTER_NS`] after their intended start.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub late: u64,
    /// Calls the plugin said failed (an operation returning `Err`), by
    /// result label; a label's other calls succeeded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failures: BTreeMap<String, u64>,
}

/// How far behind its intended start a call may begin before it counts as
/// late: beyond the scheduling jitter of an idle machine, well below any
/// latency worth reporting.
pub const LATE_AFTER_NS: u64 = 1_000_000;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Stats {
    /// Adds `other` into `self` exactly.
    pub fn merge(&mut self, other: &Stats) {
        merge_map(&mut self.results, &other.results, OTHER_LABELS);
        merge_map(
            &mut self.measurements,
            &other.measurements,
            OTHER_MEASUREMENTS,
        );
        merge_map(&mut self.service, &other.service, OTHER_LABELS);
        self.late += other.late;
        for (label, count) in &other.failures {
            let label = capped(&self.failures, label, OTHER_LABELS);
            *self.failures.entry(label.to_string()).or_default() += count;
        }
        for sample in &other.panics {
            add_panic(&mut self.panics, &sample.message, sample.count);
        }
    }

    /// All calls, whatever their result.
    pub fn all_calls(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for histogram in self.results.values() {
            all.add(histogram)
                .expect("auto-resizing histograms always add");
        }
        all
    }

    /// All calls' service times (open model; empty otherwise).
    pub fn all_service(&self) -> Histogram<u64> {
        let mut all = new_histogram();
        for histogram in self.service.values() {
            all.add(histogram)
                .expect("auto-resizing histograms always add");
        }
        all
    }
}

/// `name`, or `other` when `map` is full and does not know `name` yet.
fn capped<'a, V>(map: &BTreeMap<String, V>, name: &'a str, other: &'a str) -> &'a str {
    if map.len() >= MAX_NAMES && !map.contains_key(name) {
        other
    } else {
        name
    }
}

fn merge_map(
    into: &mut BTreeMap<String, Histogram<u64>>,
    from: &BTreeMap<String, Histogram<u64>>,
    other: &str,
) {
    for (name, histogram) in from {
        let name = capped(into, name, other);
        into.entry(name.to_string())
            .or_insert_with(new_histogram)
            .add(histogram)
            .expect("auto-resizing histograms always add");
    }
}

/// Counts a panic message, keeping at most [`PANIC_SAMPLES`] distinct ones.
pub fn add_panic(samples: &mut Vec<PanicSample>, message: &str, count: u64) {
    if let Some(sample) = samples.iter_mut().find(|s| s.message == message) {
        sample.count += count;
    } else if samples.len() < PANIC_SAMPLES {
        samples.push(PanicSample {
            message: message.to_string(),
            count,
        });
    }
}

/// The figures a report shows for one group of calls. Durations are in
/// nanoseconds, as the field names say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub ops_per_sec: f64,
    pub avg_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p95_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
}

impl Summary {
    /// Summarises `histogram` for calls spread over `elapsed`.
    pub fn of(histogram: &Histogram<u64>, elapsed: Duration) -> Summary {
        let count = histogram.len();
        let seconds = elapsed.as_secs_f64();
        let at = |q: f64| {
            if count == 0 {
                0
            } else {
                histogram.value_at_quantile(q)
            }
        };
        Summary {
            count,
            ops_per_sec: if seconds > 0.0 {
                count as f64 / seconds
            } else {
                0.0
            },
            avg_ns: if count == 0 {
                0
            } else {
                histogram.mean().round() as u64
            },
            min_ns: if count == 0 { 0 } else { histogram.min() },
            max_ns: if count == 0 { 0 } else { histogram.max() },
            p50_ns: at(0.50),
            p90_ns: at(0.90),
            p95_ns: at(0.95),
            p99_ns: at(0.99),
            p999_ns: at(0.999),
        }
    }
}

/// Serialises a map of histograms as name → base64 of the HdrHistogram V2
/// encoding: compact, exact, and readable by any HdrHistogram library.
/// Plain V2 rather than V2+deflate: ten times cheaper to encode, and the
/// frames are small already.
pub mod histogram_map {
    use std::collections::BTreeMap;

    use base64::Engine;
    use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
    use hdrhistogram::Histogram;
    use serde::de::Error as _;
    use serde::ser::Error as _;

    const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    pub fn encode(histogram: &Histogram<u64>) -> Result<String, String> {
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(histogram, &mut bytes)
            .map_err(|e| format!("cannot encode a histogram: {e:?}"))?;
        Ok(BASE64.encode(bytes))
    }

    pub fn decode(text: &str) -> Result<Histogram<u64>, String> {
        let bytes = BASE64
            .decode(text)
            .map_err(|e| format!("a histogram is not valid base64: {e}"))?;
        let mut histogram: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("a histogram cannot be decoded: {e:?}"))?;
        histogram.auto(true);
        Ok(histogram)
    }

    pub fn serialize<S: serde::Serializer>(
        map: &BTreeMap<String, Histogram<u64>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let encoded: Result<BTreeMap<&str, String>, String> = map
            .iter()
            .map(|(name, histogram)| Ok((name.as_str(), encode(histogram)?)))
            .collect();
        serde::Serialize::serialize(&encoded.map_err(S::Error::custom)?, serializer)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, Histogram<u64>>, D::Error> {
        let encoded: BTreeMap<String, String> = serde::Deserialize::deserialize(deserializer)?;
        encoded
            .into_iter()
            .map(|(name, text)| Ok((name, decode(&text).map_err(D::Error::custom)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_percentiles_are_true_percentiles() {
        // One worker saw fast calls, another slow ones: the merged p50 must
        // sit between them, where averaging percentiles would not put it.
        let mut a = Stats::default();
        let mut b = Stats::default();
        let fast = a.results.entry("OK".into()).or_insert_with(new_histogram);
        for _ in 0..900 {
            fast.record(1_000).unwrap();
        }
        let slow = b.results.entry("OK".into()).or_insert_with(new_histogram);
        for _ in 0..100 {
            slow.record(1_000_000).unwrap();
        }
        a.merge(&b);
        let all = a.all_calls();
        assert_eq!(all.len(), 1000);
        assert!(all.value_at_quantile(0.5) < 1_100);
        assert!(all.value_at_quantile(0.95) > 990_000);
    }

    #[test]
    fn histograms_round_trip_through_json() {
        let mut stats = Stats::default();
        let h = stats
            .results
            .entry("200".into())
            .or_insert_with(new_histogram);
        for v in [1, 10, 100, 1_000_000, 60_000_000_000] {
            h.record(v).unwrap();
        }
        add_panic(&mut stats.panics, "boom", 2);
        let text = serde_json::to_string(&stats).unwrap();
        let back: Stats = serde_json::from_str(&text).unwrap();
        assert_eq!(back.results["200"], stats.results["200"]);
        assert_eq!(back.panics, stats.panics);
    }

    #[test]
    fn panic_samples_are_capped_but_counted() {
        let mut samples = Vec::new();
        for i in 0..20 {
            add_panic(&mut samples, &format!("m{}", i % 12), 1);
        }
        assert_eq!(samples.len(), PANIC_SAMPLES);
        assert_eq!(samples[0].count, 2);
    }
}
