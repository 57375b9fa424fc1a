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

use crate::plan::Param;

/// The parsed configuration, with where it came from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Values for `gorgon run` flags that were not given.
    #[serde(default)]
    pub defaults: Defaults,
    /// Plugin parameters; `--set` overrides them key by key.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    /// The file this was read from; `None` when no file exists.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// Defaults for `gorgon run`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub operations: Option<u64>,
    pub processes: Option<u32>,
    pub threads: Option<u32>,
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
        let mut config: Config = toml::from_str(&text).map_err(|error| ConfigError::Malformed {
            path: path.to_path_buf(),
            line: error
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1))
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
        for (key, value) in &self.params {
            if matches!(value, toml::Value::Array(_) | toml::Value::Table(_)) {
                return Err(invalid(format!(
                    "params.{key} must be a string, number or boolean"
                )));
            }
        }
        Ok(())
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
}

fn default_locations() -> Vec<PathBuf> {
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
