//! What the parent tells a worker, in one typed value: the [`WorkerSpec`].
//!
//! The parent builds one spec per worker slot and passes it as the single
//! argument `gorgon worker --spec=TOKEN`, where TOKEN is the spec as JSON
//! in URL-safe base64 without padding. The token's alphabet
//! (`A-Z a-z 0-9 - _`) means nothing to any shell, so it reaches a worker
//! on a node unchanged through SSH, which joins a command's words into one
//! line for the remote shell: no quoting layer can bend it, whatever the
//! plugin path or the `--set` values hold. Stdin is not used for it
//! because it already carries the control lines (`go`, `stop`), and a
//! worker that cannot read its spec must say so before anything else.
//!
//! A worker refuses a field it does not know (`deny_unknown_fields`): an
//! older gorgon on a node that would silently ignore, say, a new load
//! setting says so in one sentence instead. Fields a newer spec added with
//! a default are taken as their default from an older parent.
//!
//! docs/protocol.md describes the spec for people; this module and
//! [`crate::protocol`] are the truth.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::plan::{LoadPlan, Param, Share, WorkerLoad};
use crate::protocol::{Schedule, FIRST_INTERVAL, FIRST_INTERVALS, INTERVAL};

/// The longest `--spec=TOKEN` argument: Linux passes no argument longer
/// than 128 KiB (`MAX_ARG_STRLEN`), and over SSH the whole remote command
/// is one argument of the remote shell, so 4 KiB are left for the program's
/// path and the rest of the line.
const LONGEST_SPEC: usize = 124 * 1024;

/// Everything one worker process needs to play its part in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSpec {
    /// The plugin, as a path on the worker's machine.
    pub plugin: PathBuf,
    /// The plugin's SHA-256: the worker checks the file against it before
    /// loading it (a plugin uploaded to a node). `None` for a local worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_sha256: Option<String>,
    pub threads: u32,
    /// This worker's numbers (`count` = [`crate::plan::UNBOUNDED`]: no
    /// count limit).
    pub share: Share,
    /// How often partial results are sent, in milliseconds, once the
    /// first intervals below have passed.
    pub interval_ms: u64,
    /// The run starts with `first_intervals` intervals of
    /// `first_interval_ms` (none when left out: every interval is
    /// `interval_ms`), so that a short run has enough points to draw.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub first_interval_ms: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub first_intervals: u64,
    /// The plugin's parameters (`--set` over gorgon.toml's `[params]`).
    #[serde(default)]
    pub params: Vec<Param>,
    /// This worker's piece of the load shape.
    #[serde(default)]
    pub load: WorkerLoad,
}

impl WorkerSpec {
    /// The spec of the worker that runs `share` of a run of `threads`
    /// threads under `plan` (a local plugin: no checksum to verify).
    pub fn new(
        plugin: &Path,
        threads: u32,
        params: &[Param],
        plan: &LoadPlan,
        share: Share,
    ) -> WorkerSpec {
        WorkerSpec {
            plugin: plugin.to_path_buf(),
            plugin_sha256: None,
            threads,
            share,
            interval_ms: INTERVAL.as_millis() as u64,
            first_interval_ms: FIRST_INTERVAL.as_millis() as u64,
            first_intervals: FIRST_INTERVALS,
            params: params.to_vec(),
            load: plan.worker_load(share, threads),
        }
    }

    /// How this worker cuts the run into intervals.
    pub fn schedule(&self) -> Schedule {
        const MS: u64 = 1_000_000;
        let then_ns = self.interval_ms.max(1) * MS;
        match (self.first_interval_ms, self.first_intervals) {
            (0, _) | (_, 0) => Schedule::even(then_ns),
            (first_ms, count) => Schedule {
                first_ns: first_ms * MS,
                first_count: count,
                then_ns,
            },
        }
    }

    /// The same spec for a plugin uploaded to a node: the worker checks
    /// the file against `sha256` before loading it.
    pub fn checked_against(self, sha256: &str) -> WorkerSpec {
        WorkerSpec {
            plugin_sha256: Some(sha256.to_string()),
            ..self
        }
    }

    /// The `gorgon worker` arguments that carry this spec; refused when
    /// it is too long for one argument (the plugin's parameters, mostly).
    pub fn arguments(&self) -> anyhow::Result<Vec<String>> {
        let spec = format!("--spec={}", self.encode()?);
        if spec.len() > LONGEST_SPEC {
            anyhow::bail!(
                "the plugin parameters are too large to hand to a worker ({} KiB as its \
                 spec, at most {} KiB): put large values in a file the plugin reads",
                spec.len() / 1024,
                LONGEST_SPEC / 1024
            );
        }
        Ok(vec!["worker".to_string(), spec])
    }

    /// The spec as one shell-inert token; fails only for a path that is
    /// not UTF-8, which JSON cannot carry.
    pub fn encode(&self) -> anyhow::Result<String> {
        let json = serde_json::to_vec(self).with_context(|| {
            format!(
                "cannot pass the plugin path {} to a worker",
                self.plugin.display()
            )
        })?;
        Ok(URL_SAFE_NO_PAD.encode(json))
    }

    /// Reads a token made by [`WorkerSpec::encode`]; the error is one
    /// sentence for the user, naming what this worker did not understand.
    pub fn decode(token: &str) -> Result<WorkerSpec, String> {
        let json = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|e| {
            format!("this gorgon worker cannot read the spec it was given (not base64: {e})")
        })?;
        serde_json::from_slice(&json).map_err(|e| {
            format!(
                "this gorgon worker ({}) cannot read the spec it was given ({e}): \
                 the parent is another gorgon version; install the same version here",
                env!("CARGO_PKG_VERSION")
            )
        })
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> WorkerSpec {
        WorkerSpec {
            plugin: PathBuf::from("/tmp/a plugin/it's \"here\".so"),
            plugin_sha256: Some("ab".repeat(32)),
            threads: 4,
            share: Share {
                offset: 1,
                stride: 3,
                count: crate::plan::UNBOUNDED,
            },
            interval_ms: 1000,
            first_interval_ms: 200,
            first_intervals: 10,
            params: vec![
                "url=http://h/?a=b&c=$HOME".parse().unwrap(),
                "body=line one\nline 'two'".parse().unwrap(),
            ],
            load: WorkerLoad {
                duration_ns: Some(5_000_000_000),
                warmup_calls: 7,
                rate_per_sec: Some(333.25),
                phase_ns: 12,
                batch_scheduling: true,
                fibers: 16,
                ..WorkerLoad::default()
            },
        }
    }

    #[test]
    fn a_spec_survives_the_round_trip() {
        let spec = spec();
        let token = spec.encode().unwrap();
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{token}"
        );
        assert_eq!(WorkerSpec::decode(&token), Ok(spec.clone()));
        assert_eq!(spec.schedule(), Schedule::STANDARD);
        assert_eq!(
            spec.arguments().unwrap(),
            ["worker".to_string(), format!("--spec={token}")]
        );
    }

    #[test]
    fn a_field_the_worker_does_not_know_is_refused_by_name() {
        let mut json = serde_json::to_value(spec()).unwrap();
        json["load"]["jitter_ns"] = 5.into();
        let token = URL_SAFE_NO_PAD.encode(json.to_string());
        let error = WorkerSpec::decode(&token).unwrap_err();
        assert!(error.contains("unknown field `jitter_ns`"), "{error}");
        assert!(error.contains("install the same version"), "{error}");

        let mut json = serde_json::to_value(spec()).unwrap();
        json["priority"] = 1.into();
        let token = URL_SAFE_NO_PAD.encode(json.to_string());
        let error = WorkerSpec::decode(&token).unwrap_err();
        assert!(error.contains("unknown field `priority`"), "{error}");
    }

    #[test]
    fn a_spec_too_long_for_one_argument_is_refused_in_a_sentence() {
        let mut spec = spec();
        spec.params = vec![Param {
            key: "body".into(),
            value: "x".repeat(100_000),
        }];
        let error = spec.arguments().unwrap_err().to_string();
        assert!(
            error.contains("too large to hand to a worker (130 KiB"),
            "{error}"
        );
        spec.params[0].value.truncate(50_000);
        assert!(spec.arguments().is_ok());
    }

    #[test]
    fn fields_an_older_parent_leaves_out_take_their_defaults() {
        let json = r#"{"plugin":"/p.so","threads":1,"share":{"offset":0,"stride":1,"count":5},"interval_ms":1000}"#;
        let spec = WorkerSpec::decode(&URL_SAFE_NO_PAD.encode(json)).unwrap();
        assert_eq!(spec.load, WorkerLoad::default());
        assert_eq!(spec.schedule(), Schedule::even(1_000_000_000));
        assert!(spec.params.is_empty() && spec.plugin_sha256.is_none());
        assert!(WorkerSpec::decode("not base64!")
            .unwrap_err()
            .contains("not base64"));
    }
}
