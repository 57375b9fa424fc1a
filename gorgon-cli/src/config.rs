//! `gorgon.toml`: defaults for `gorgon run`, plugin parameters, and (with
//! the cluster) SSH settings and nodes.
//!
//! Where it is read from: `--config PATH` if given, else `./gorgon.toml`,
//! else `$XDG_CONFIG_HOME/gorgon/gorgon.toml` (`~/.config/gorgon/…`). None
//! of them existing is fine: every key has a default. A file that exists
//! but does not parse stops gorgon with one sentence naming the file and
//! the line. `gorgon.toml.example` documents every key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod node;

use crate::plan::Param;
use crate::shape::{Rate, Span, Warmup};
use crate::stats::PANIC_LABEL;
use crate::threshold::Threshold;
use node::{NodeConfig, NodeName};

/// The parsed configuration, with where it came from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Pass/fail gates checked at the end of `gorgon run`; `--threshold`
    /// on the command line replaces the whole list.
    #[serde(default)]
    pub thresholds: Vec<Threshold>,
    /// Values for `gorgon run` flags that were not given.
    #[serde(default)]
    pub defaults: Defaults,
    /// Plugin parameters; `--set` overrides them key by key.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    /// How nodes are reached over SSH.
    #[serde(default)]
    pub ssh: SshSettings,
    /// The cluster's nodes, by name (`gorgon cluster add` writes them).
    #[serde(default)]
    pub nodes: BTreeMap<NodeName, NodeConfig>,
    /// The file this was read from; `None` when no file exists.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// The `[ssh]` table: which files the system `ssh` uses, so a setup other
/// than `~/.ssh` (or a test) needs no change there.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSettings {
    /// The known_hosts file host keys are checked against (ssh's
    /// `UserKnownHostsFile`); default: ssh's own (`~/.ssh/known_hosts`).
    pub known_hosts: Option<PathBuf>,
    /// An ssh client config file (`ssh -F`); default: ssh's own.
    pub config: Option<PathBuf>,
    /// Accept and record the key of a host seen for the first time
    /// (`StrictHostKeyChecking=accept-new`). A changed key is refused
    /// either way.
    #[serde(default)]
    pub accept_new_host_keys: bool,
    /// Where the control sockets of the SSH connections live (private,
    /// 0700); default: `$XDG_RUNTIME_DIR/gorgon`, else `~/.cache/gorgon/ssh`.
    pub control_dir: Option<PathBuf>,
    /// Seconds to wait for a node to answer (ssh's `ConnectTimeout`).
    pub connect_timeout: Option<std::num::NonZeroU64>,
    /// Seconds an idle connection to a node stays open after gorgon ends,
    /// for the next gorgon command to use without logging in again
    /// (ssh's `ControlPersist`); default: every command logs in.
    pub keep_connections: Option<std::num::NonZeroU64>,
}

/// Defaults for `gorgon run`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub operations: Option<u64>,
    pub processes: Option<u32>,
    pub threads: Option<u32>,
    /// `--duration`. With `operations`, the run stops at whichever comes
    /// first; `-n` or `--duration` on the command line replaces both.
    pub duration: Option<Span>,
    /// `--rate`, e.g. "500/s".
    pub rate: Option<Rate>,
    /// `--ramp-up`, e.g. "10s".
    pub ramp_up: Option<Span>,
    /// `--warmup`: a count (200) or a duration ("5s").
    pub warmup: Option<Warmup>,
    /// `--ok`: the labels that count as success.
    pub ok: Option<Vec<String>>,
    /// `--batch-scheduling`: worker threads under SCHED_BATCH.
    pub batch_scheduling: Option<bool>,
    /// `--fibers`: calls at once per worker thread, each on a fiber.
    pub fibers: Option<u32>,
}

/// Why a configuration file cannot be used: one sentence with the file and
/// the line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
    #[error("cannot read config file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}, line {line}: {message}")]
    Malformed {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Reads the configuration: `explicit` must exist; the implicit places
    /// may not.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let path = match explicit {
            Some(path) if !path.exists() => return Err(ConfigError::Missing(path.to_path_buf())),
            Some(path) => Some(path.to_path_buf()),
            None => default_locations().into_iter().find(|p| p.is_file()),
        };
        match path {
            Some(path) => Config::read(&path),
            None => Ok(Config::default()),
        }
    }

    fn read(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses `text` as if read from `path` (to check an edit before it
    /// is written).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|error| ConfigError::Malformed {
            path: path.to_path_buf(),
            line: error
                .span()
                .map(|span| {
                    text.as_bytes()[..span.start.min(text.len())]
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .count()
                        + 1
                })
                .unwrap_or(1),
            message: error.message().trim().replace('\n', " "),
        })?;
        config.path = Some(path.to_path_buf());
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: self.path.clone().unwrap_or_default(),
            message,
        };
        for (key, value) in [
            ("defaults.processes", self.defaults.processes.map(u64::from)),
            ("defaults.threads", self.defaults.threads.map(u64::from)),
            ("defaults.operations", self.defaults.operations),
        ] {
            if value == Some(0) {
                return Err(invalid(format!("{key} must be at least 1")));
            }
        }
        if self.defaults.duration.is_some_and(|d| d.0.is_zero()) {
            return Err(invalid("defaults.duration must be more than zero".into()));
        }
        if let Some(ok) = &self.defaults.ok {
            if ok.is_empty() || ok.iter().any(|l| l.trim().is_empty()) {
                return Err(invalid("defaults.ok must list result labels".into()));
            }
            if ok.iter().any(|l| l == PANIC_LABEL) {
                return Err(invalid(
                    "defaults.ok cannot name `panic`: a panicking call is always an error".into(),
                ));
            }
        }
        for (key, value) in &self.params {
            if matches!(value, toml::Value::Array(_) | toml::Value::Table(_)) {
                return Err(invalid(format!(
                    "params.{key} must be a string, number or boolean"
                )));
            }
        }
        Ok(())
    }

    /// The file this config came from, for messages; a config read from
    /// nowhere says so.
    pub fn describe(&self) -> String {
        self.path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "gorgon.toml (no config file was found)".to_string())
    }

    /// The config's parameters followed by `overrides`, so that a later
    /// `--set` of the same key wins.
    pub fn params_with(&self, overrides: &[Param]) -> Vec<Param> {
        self.params
            .iter()
            .map(|(key, value)| Param {
                key: key.clone(),
                value: match value {
                    toml::Value::String(text) => text.clone(),
                    other => other.to_string(),
                },
            })
            .chain(overrides.iter().cloned())
            .collect()
    }

    /// The directory that relative paths in the file are relative to.
    pub fn base_dir(&self) -> Option<&Path> {
        self.path.as_deref().and_then(Path::parent)
    }
}

/// The places searched when no `--config` is given, in order.
pub fn default_locations() -> Vec<PathBuf> {
    let mut places = vec![PathBuf::from("gorgon.toml")];
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")));
    if let Some(dir) = config_home {
        places.push(dir.join("gorgon").join("gorgon.toml"));
    }
    places
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gorgon.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path))
    }

    #[test]
    fn reads_defaults_and_params() {
        let config =
            parse("[defaults]\nthreads = 4\n[params]\nurl = \"http://x\"\nretries = 3\n").unwrap();
        assert_eq!(config.defaults.threads, Some(4));
        let params = config.params_with(&["url=http://y".parse().unwrap()]);
        let last_url = params.iter().rev().find(|p| p.key == "url").unwrap();
        assert_eq!(last_url.value, "http://y");
        assert!(params.iter().any(|p| p.key == "retries" && p.value == "3"));
    }

    #[test]
    fn a_malformed_file_names_its_line() {
        let error = parse("[defaults]\nthreads = 4\nprocesses = = 2\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 3"), "{error}");
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn reads_load_shapes_and_thresholds() {
        let config = parse(
            "thresholds = [\"p99<250ms\", \"http call 1:p95<50ms\"]\n\
             [defaults]\nduration = \"30s\"\nrate = \"500/s\"\nramp_up = \"10s\"\n\
             warmup = 200\nok = [\"200\", \"201\"]\n",
        )
        .unwrap();
        assert_eq!(config.thresholds.len(), 2);
        assert_eq!(config.thresholds[1].text, "http call 1:p95<50ms");
        let d = &config.defaults;
        assert_eq!(d.duration, Some(Span(std::time::Duration::from_secs(30))));
        assert_eq!(d.rate.map(|r| r.per_sec), Some(500.0));
        assert_eq!(d.ramp_up, Some(Span(std::time::Duration::from_secs(10))));
        assert_eq!(d.warmup, Some(Warmup::Calls(200)));
        assert_eq!(
            d.ok.as_deref(),
            Some(&["200".to_string(), "201".to_string()][..])
        );
        let timed = parse("[defaults]\nwarmup = \"5s\"\n").unwrap();
        assert_eq!(
            timed.defaults.warmup,
            Some(Warmup::Time(std::time::Duration::from_secs(5)))
        );
    }

    #[test]
    fn bad_load_shapes_and_thresholds_name_their_line() {
        for (text, line, says) in [
            ("[defaults]\nduration = \"soon\"\n", 2, "malformed duration"),
            (
                "[defaults]\nthreads = 2\nrate = \"500\"\n",
                3,
                "malformed rate",
            ),
            ("[defaults]\nwarmup = \"lots\"\n", 2, "malformed warm-up"),
            ("thresholds = [\"latency<1s\"]\n", 1, "unknown metric"),
            ("thresholds = [\"p99 1s\"]\n", 1, "malformed threshold"),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(&format!("line {line}")), "{text}: {error}");
            assert!(error.contains(says), "{text}: {error}");
        }
        for (text, says) in [
            ("[defaults]\nduration = \"0s\"\n", "more than zero"),
            (
                "[defaults]\nok = [\"200\", \"panic\"]\n",
                "cannot name `panic`",
            ),
            ("[defaults]\nok = []\n", "must list"),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
    }

    #[test]
    fn reads_ssh_settings_and_nodes() {
        let config = parse(
            "[ssh]\nknown_hosts = \"kh\"\naccept_new_host_keys = true\n\
             [nodes.a]\nhost = \"127.0.0.2\"\nport = 2222\nuser = \"bob\"\n",
        )
        .unwrap();
        assert!(config.ssh.accept_new_host_keys);
        let (name, node) = config.nodes.iter().next().unwrap();
        assert_eq!((name.as_str(), node.host.as_str()), ("a", "127.0.0.2"));
        assert_eq!(node.port.map(|p| p.get()), Some(2222));
    }

    #[test]
    fn bad_node_values_name_their_line() {
        for (text, line, mentions) in [
            ("[nodes.a]\nhost = \"-oProxyCommand=x\"\n", 2, "host"),
            ("[nodes.a]\nhost = \"h\"\nport = 0\n", 3, "nonzero"),
            ("[nodes.a]\nhost = \"h\"\npassword = \"x\"\n", 3, "password"),
            ("[nodes.\"a b\"]\nhost = \"h\"\n", 1, "node name"),
            ("[ssh]\nknown_host = \"x\"\n", 2, "known_host"),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(&format!("line {line}")), "{text:?}: {error}");
            assert!(error.contains(mentions), "{text:?}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }

    #[test]
    fn the_example_file_is_valid_and_covers_every_key() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../gorgon.toml.example");
        let text = std::fs::read_to_string(&path).unwrap();
        Config::load(Some(&path)).unwrap();
        // Every key is at least shown, commented out or not.
        for key in [
            "thresholds",
            "operations",
            "processes",
            "threads",
            "duration",
            "rate",
            "ramp_up",
            "warmup",
            "ok",
            "[params]",
        ] {
            assert!(text.contains(key), "{key} is not in gorgon.toml.example");
        }
        // With the commented defaults switched on, it still parses.
        let uncommented = text
            .replace("# duration", "duration")
            .replace("# rate", "rate")
            .replace("# ramp_up", "ramp_up")
            .replace("# warmup", "warmup")
            .replace("# ok", "ok");
        parse(&uncommented).unwrap();
    }

    #[test]
    fn unknown_keys_and_zero_counts_are_refused() {
        assert!(parse("[defaults]\nthreadz = 4\n")
            .unwrap_err()
            .to_string()
            .contains("threadz"));
        assert!(parse("[defaults]\nthreads = 0\n")
            .unwrap_err()
            .to_string()
            .contains("at least 1"));
    }
}
