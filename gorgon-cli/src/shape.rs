//! The values that describe a run's shape: processes × threads, how long
//! it lasts, how fast operations start, which calls are warm-up, and which
//! result labels are errors. They are plain values, parsed from text the
//! same way whether they come from a flag or from `gorgon.toml`; the plan
//! built from them is in [`crate::plan`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::stats::{Stats, PANIC_LABEL};

/// Processes × threads for one run of a suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunShape {
    pub processes: u32,
    pub threads: u32,
}

impl fmt::Display for RunShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.processes, self.threads)
    }
}

impl FromStr for RunShape {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let malformed = || {
            format!(
                "malformed run '{text}': expected PROCESSESxTHREADS such as 2x4, both at least 1"
            )
        };
        let (processes, threads) = text.split_once(['x', 'X']).ok_or_else(malformed)?;
        let processes: u32 = processes.trim().parse().map_err(|_| malformed())?;
        let threads: u32 = threads.trim().parse().map_err(|_| malformed())?;
        if processes == 0 || threads == 0 {
            return Err(malformed());
        }
        Ok(RunShape { processes, threads })
    }
}

/// Parses a human duration (`30s`, `1m 30s`, `500ms`) with a message that
/// says what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|_| {
        format!("malformed duration '{text}': expected a duration such as 30s, 1m 30s or 500ms")
    })
}

pub fn positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!("duration '{text}' must be more than zero")),
        d => Ok(d),
    }
}

/// A duration from the command line or the config file, written as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Span(pub Duration);

impl TryFrom<String> for Span {
    type Error = String;
    fn try_from(text: String) -> Result<Span, String> {
        parse_duration(&text).map(Span)
    }
}

/// A total arrival rate: operations per second across every process,
/// thread and node. Written `500/s`, `30/m` or `2/h`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub struct Rate {
    pub per_sec: f64,
}

/// The fastest schedule the open model can keep: one start a nanosecond,
/// the resolution of its clock.
pub const MAX_RATE_PER_SEC: f64 = 1e9;

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Rate, String> {
        let malformed = || {
            format!(
                "malformed rate '{text}': expected operations per time unit such as 500/s or 30/m"
            )
        };
        let (count, unit) = text.trim().split_once('/').ok_or_else(malformed)?;
        let count: f64 = count.trim().parse().map_err(|_| malformed())?;
        let seconds = match unit.trim() {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(malformed()),
        };
        if !count.is_finite() || count <= 0.0 {
            return Err(format!("rate '{text}' must be more than zero"));
        }
        let per_sec = count / seconds;
        if per_sec > MAX_RATE_PER_SEC {
            return Err(format!(
                "rate '{text}' cannot be scheduled: the open model times each start to the \
                 nanosecond, so at most {} starts per second (one a microsecond is already far \
                 beyond what one machine can call)",
                MAX_RATE_PER_SEC as u64
            ));
        }
        Ok(Rate { per_sec })
    }
}

impl TryFrom<String> for Rate {
    type Error = String;
    fn try_from(text: String) -> Result<Rate, String> {
        text.parse()
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.per_sec >= 1.0 || self.per_sec == 0.0 {
            write!(f, "{}/s", trim_float(self.per_sec))
        } else {
            write!(f, "{}/m", trim_float(self.per_sec * 60.0))
        }
    }
}

fn trim_float(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Calls that run before the measured part and are left out of the
/// statistics: a number of calls (`200`) or a time (`5s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "WarmupValue")]
pub enum Warmup {
    Calls(u64),
    Time(Duration),
}

impl FromStr for Warmup {
    type Err = String;

    fn from_str(text: &str) -> Result<Warmup, String> {
        let text = text.trim();
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse()
                .map(Warmup::Calls)
                .map_err(|_| format!("warm-up count '{text}' is too large"));
        }
        parse_duration(text).map(Warmup::Time).map_err(|_| {
            format!("malformed warm-up '{text}': expected a number of calls such as 200 or a duration such as 5s")
        })
    }
}

impl fmt::Display for Warmup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warmup::Calls(n) => write!(f, "{n} calls"),
            Warmup::Time(d) => write!(f, "{}", humantime::format_duration(*d)),
        }
    }
}

/// `warmup = 200` or `warmup = "5s"` in gorgon.toml.
#[derive(Deserialize)]
#[serde(untagged)]
enum WarmupValue {
    Calls(u64),
    Text(String),
}

impl TryFrom<WarmupValue> for Warmup {
    type Error = String;
    fn try_from(value: WarmupValue) -> Result<Warmup, String> {
        match value {
            WarmupValue::Calls(n) => Ok(Warmup::Calls(n)),
            WarmupValue::Text(text) => text.parse(),
        }
    }
}

/// Which result labels count as errors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Success {
    /// The labels named by `--ok`; `None` means every label but `panic`.
    pub ok: Option<Vec<String>>,
}

impl Success {
    /// Of `calls` calls under `label`, `failed` of which the plugin said
    /// failed, how many are errors: all of a panic's; with `--ok`, all
    /// of a label not listed and none of one listed (the user's word
    /// decides); without it, those the plugin said failed.
    pub fn errors_among(&self, label: &str, calls: u64, failed: u64) -> u64 {
        match &self.ok {
            _ if label == PANIC_LABEL => calls,
            Some(_) if self.is_error(label) => calls,
            Some(_) => 0,
            None => failed.min(calls),
        }
    }

    /// The errors among all calls of `stats`.
    pub fn errors_in(&self, stats: &Stats) -> u64 {
        stats
            .results
            .iter()
            .map(|(label, histogram)| {
                let failed = stats.failures.get(label).copied().unwrap_or(0);
                self.errors_among(label, histogram.len(), failed)
            })
            .sum()
    }

    pub fn is_error(&self, label: &str) -> bool {
        label == PANIC_LABEL
            || self
                .ok
                .as_ref()
                .is_some_and(|ok| !ok.iter().any(|l| l == label))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_shapes_parse_and_refuse() {
        assert_eq!(
            "2x4".parse(),
            Ok(RunShape {
                processes: 2,
                threads: 4
            })
        );
        for bad in ["", "2", "x4", "2x", "0x1", "1x0", "ax1", "2x4x1"] {
            assert!(bad.parse::<RunShape>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn rates_parse_per_second_and_minute() {
        assert_eq!("500/s".parse::<Rate>().unwrap().per_sec, 500.0);
        assert_eq!("30/m".parse::<Rate>().unwrap().per_sec, 0.5);
        assert_eq!(" 7200 / h ".parse::<Rate>().unwrap().per_sec, 2.0);
        for bad in ["500", "500/x", "fast/s", "0/s", "-3/s", "/s", "inf/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad} accepted");
        }
        assert_eq!("500/s".parse::<Rate>().unwrap().to_string(), "500/s");
        assert_eq!("30/m".parse::<Rate>().unwrap().to_string(), "30/m");
    }

    #[test]
    fn warmups_are_counts_or_durations() {
        assert_eq!("200".parse(), Ok(Warmup::Calls(200)));
        assert_eq!("5s".parse(), Ok(Warmup::Time(Duration::from_secs(5))));
        assert!("5x".parse::<Warmup>().is_err());
        assert!("".parse::<Warmup>().is_err());
        assert!(parse_duration("1m 30s").is_ok());
        assert!(positive_duration("0s").is_err());
    }

    #[test]
    fn success_defaults_to_everything_but_panic() {
        let default = Success::default();
        assert!(!default.is_error("FAIL"));
        assert!(default.is_error("panic"));
        let strict = Success {
            ok: Some(vec!["200".into(), "201".into()]),
        };
        assert!(!strict.is_error("201"));
        assert!(strict.is_error("500"));
        assert!(strict.is_error("panic"));
    }

    #[test]
    fn failed_calls_are_errors_unless_ok_says_otherwise() {
        let default = Success::default();
        assert_eq!(default.errors_among("404", 10, 10), 10);
        assert_eq!(default.errors_among("200", 10, 0), 0);
        assert_eq!(default.errors_among("panic", 3, 0), 3);
        let strict = Success {
            ok: Some(vec!["404".into()]),
        };
        assert_eq!(strict.errors_among("404", 10, 10), 0, "--ok decides");
        assert_eq!(strict.errors_among("500", 4, 0), 4);
    }
}
