//! Helpers shared by the end-to-end tests: find the binary, build the
//! plugins, run gorgon and pick figures out of its report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

/// The workspace root (the parent of gorgon-cli/).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The `gorgon` binary cargo built for these tests.
pub fn gorgon_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gorgon"))
}

/// Builds every plugin of the workspace once per test process (a no-op
/// for cargo when they are fresh) and returns the path of `name`'s library.
pub fn plugin(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace())
            .args(["build", "--quiet", "--workspace", "--lib"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the plugins failed");
    });
    let dir = gorgon_bin().parent().unwrap().to_path_buf();
    let path = dir.join(format!("lib{}.so", name.replace('-', "_")));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// Runs gorgon with `args` and returns what it did.
pub fn gorgon(args: &[&str]) -> Run {
    let output = Command::new(gorgon_bin())
        .args(args)
        .env("RUST_BACKTRACE", "1")
        // Tables as wide as their labels, so `rows` finds each label in
        // full (without it they are fitted to 80 columns).
        .env("COLUMNS", "1000")
        .output()
        .expect("gorgon starts");
    Run::from(output)
}

/// One finished gorgon process.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Asserts a clean run and returns it for chaining.
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "gorgon failed:\n{}\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts a run that finished but in which calls failed, with no
    /// threshold to say how many may: exit 1, and one line saying how many
    /// failed.
    pub fn with_failed_calls(self) -> Run {
        assert_eq!(
            self.code, 1,
            "expected exit 1 for failed calls:\n{}\n{}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains("calls failed") && self.stderr.contains("no --threshold"),
            "{}",
            self.stderr
        );
        self
    }

    /// The table rows named `name` (first cell), as their cells, one entry
    /// per run section in order.
    pub fn rows(&self, name: &str) -> Vec<Vec<String>> {
        self.stdout
            .lines()
            .filter_map(|line| {
                let cells: Vec<String> = line
                    .split(['│', '┆'])
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect();
                (cells.first().map(String::as_str) == Some(name)).then_some(cells)
            })
            .collect()
    }

    /// The count column of the only row named `name`.
    pub fn count(&self, name: &str) -> u64 {
        let rows = self.rows(name);
        assert_eq!(
            rows.len(),
            1,
            "expected one row {name:?} in:\n{}",
            self.stdout
        );
        rows[0][1].replace(',', "").parse().expect("a count")
    }

    /// Asserts a run that could not start or failed (exit 3), saying why,
    /// with no panic.
    pub fn assert_run_failed(&self, mentions: &str) {
        assert_eq!(
            self.code, 3,
            "expected exit 3:\n{}\n{}",
            self.stdout, self.stderr
        );
        assert!(!self.stderr.contains("panicked at"), "{}", self.stderr);
        assert!(
            self.stderr.contains(mentions),
            "stderr should mention {mentions:?}: {}",
            self.stderr
        );
    }

    /// Asserts the one-sentence usage error: exit 2, one line, no panic.
    pub fn assert_usage_error(&self, mentions: &str) {
        assert_eq!(
            self.code, 2,
            "expected exit 2:\n{}\n{}",
            self.stdout, self.stderr
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one line on stderr, got:\n{}",
            self.stderr
        );
        assert!(!self.stderr.contains("panicked at"), "{}", self.stderr);
        assert!(
            self.stderr.contains(mentions),
            "stderr should mention {mentions:?}: {}",
            self.stderr
        );
    }
}

/// Reads every number written by the testkit plugin into `dir`, sorted.
pub fn numbers_seen(dir: &Path) -> Vec<u64> {
    let mut numbers: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|entry| {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            text.lines()
                .map(|l| l.parse::<u64>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    numbers.sort_unstable();
    numbers
}

/// The first run's timeline as (start in ms, calls) per interval.
pub fn timeline_calls(report: &serde_json::Value) -> Vec<(u64, u64)> {
    report["runs"][0]["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["start_ms"].as_u64().unwrap(),
                p["calls"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// `gorgon worker`'s arguments for one worker spec (docs/protocol.md),
/// written as JSON: the spec as URL-safe base64, the one argument.
pub fn worker_args(spec: &serde_json::Value) -> Vec<String> {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(spec.to_string());
    vec!["worker".to_string(), format!("--spec={token}")]
}
