//! Splitting a run into worker shares.
//!
//! Every call must get a unique number, and a count-based run must cover
//! exactly `0..N`. A worker slot `i` of `S` takes the numbers
//! `i, i + S, i + 2S, …`: disjoint by construction, dense, and needing no
//! coordination between processes or nodes, however many there are.

use std::fmt;
use std::str::FromStr;

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

/// A plugin parameter from `--set KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub key: String,
    pub value: String,
}

impl FromStr for Param {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => Ok(Param {
                key: key.trim().to_string(),
                value: value.to_string(),
            }),
            _ => Err(format!("malformed parameter '{text}': expected KEY=VALUE")),
        }
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// The `count` of a share with no count limit (a time-based run): the
/// worker takes numbers until the time is up or it is told to stop.
pub const UNBOUNDED: u64 = u64::MAX;

/// The numbers one worker process runs: `offset + k * stride`, `k < count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub offset: u64,
    pub stride: u64,
    pub count: u64,
}

impl Share {
    /// The `k`-th number of this share.
    #[inline]
    pub fn number(&self, k: u64) -> u64 {
        self.offset + k * self.stride
    }
}

/// Splits `operations` over `slots` worker processes, as evenly as integers
/// allow (the first `operations % slots` take one more).
pub fn split(operations: u64, slots: u32) -> Vec<Share> {
    let stride = u64::from(slots);
    (0..stride)
        .map(|offset| Share {
            offset,
            stride,
            count: operations / stride + u64::from(offset < operations % stride),
        })
        .collect()
}

/// Shares for a time-based run: the same interleaving, no count limit.
pub fn split_unbounded(slots: u32) -> Vec<Share> {
    let stride = u64::from(slots);
    (0..stride)
        .map(|offset| Share {
            offset,
            stride,
            count: UNBOUNDED,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_cover_every_number_once() {
        for (n, slots) in [(4000, 2), (10, 3), (7, 10), (1, 1), (0, 4)] {
            let mut seen: Vec<u64> = split(n, slots)
                .iter()
                .flat_map(|s| (0..s.count).map(move |k| s.number(k)))
                .collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n={n} slots={slots}");
        }
    }

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
    fn params_keep_equals_in_values() {
        let p: Param = "url=http://h/?a=b".parse().unwrap();
        assert_eq!((p.key.as_str(), p.value.as_str()), ("url", "http://h/?a=b"));
        assert!("novalue".parse::<Param>().is_err());
        assert!("=v".parse::<Param>().is_err());
    }
}
