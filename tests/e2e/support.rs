//! Helpers shared by the end-to-end tests: find the binary, build the
//! plugins, run gorgon and pick figures out of its report.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;
use std::time::{Duration, Instant};

use serde::Deserialize;

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

// ---- running gorgon as a test reads it -----------------------------------

/// What the run prints on stdout, and so where its report is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stdout {
    /// `--output json`: the report is stdout.
    Json,
    /// The table on stdout, the report saved beside it with `--save`: for
    /// tests that check what only the table shows.
    Table,
    /// Exactly the test's arguments: `--debug`, commands other than `run`.
    AsGiven,
}

/// One gorgon command line, built as a test reads it:
///
/// ```ignore
/// let report = Gorgon::testkit()
///     .args(["-n", "1000", "-p", "2"])
///     .set("panic_every", 4)
///     .with_failed_calls()
///     .json();
/// assert_eq!(report.run().count("panic"), 250);
/// ```
///
/// `run` commands report in JSON unless `.table()` or `.debug()` says
/// otherwise, so that figures are read from the report rather than from
/// the table's layout. The assertions print stdout and stderr when they
/// fail.
#[derive(Debug)]
pub struct Gorgon {
    /// Flags before the command (`--config`).
    global: Vec<OsString>,
    command: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdout: Stdout,
}

impl Gorgon {
    /// `gorgon run --plugin PLUGIN`: a library's path or a plugin's name.
    pub fn run(plugin: impl AsRef<OsStr>) -> Gorgon {
        Gorgon {
            global: Vec::new(),
            command: vec!["run".into(), "--plugin".into(), plugin.as_ref().into()],
            env: Vec::new(),
            stdout: Stdout::Json,
        }
    }

    /// `gorgon run` of the testkit plugin, the one the tests steer with
    /// parameters (tests/plugins/testkit).
    pub fn testkit() -> Gorgon {
        Gorgon::run(plugin("gorgon-test-testkit"))
    }

    /// Any other command (`new DIR`, `report FILE`, `plugins`), with its
    /// arguments as given.
    pub fn command<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) -> Gorgon {
        Gorgon {
            global: Vec::new(),
            command: args.into_iter().map(|a| a.as_ref().into()).collect(),
            env: Vec::new(),
            stdout: Stdout::AsGiven,
        }
    }

    /// Adds arguments after those already given.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Gorgon {
        self.command
            .extend(args.into_iter().map(|a| a.as_ref().into()));
        self
    }

    /// Adds one argument (a path, say) after those already given.
    pub fn arg(self, arg: impl AsRef<OsStr>) -> Gorgon {
        self.args([arg])
    }

    /// `--set KEY=VALUE`: a plugin parameter.
    pub fn set(self, key: &str, value: impl std::fmt::Display) -> Gorgon {
        self.args(["--set".to_string(), format!("{key}={value}")])
    }

    /// `gorgon --config FILE …`: the config file, before the command.
    pub fn config(mut self, file: impl AsRef<OsStr>) -> Gorgon {
        self.global
            .extend(["--config".into(), file.as_ref().to_os_string()]);
        self
    }

    /// An environment variable for gorgon (and its workers).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Gorgon {
        self.env.push((key.as_ref().into(), value.as_ref().into()));
        self
    }

    /// The human table on stdout; `.json()` still reads the report, which
    /// is saved beside it.
    pub fn table(mut self) -> Gorgon {
        self.stdout = Stdout::Table;
        self
    }

    /// `--debug`: every call printed on stdout, and no report.
    pub fn debug(mut self) -> Gorgon {
        self.stdout = Stdout::AsGiven;
        self.args(["--debug"])
    }

    /// The command line as a `Command`, for a test that spawns gorgon and
    /// acts on it while it runs. It reports as `.output()` would.
    pub fn to_command(&self) -> Command {
        let mut command = Command::new(gorgon_bin());
        command
            .args(&self.global)
            .args(&self.command)
            .env("RUST_BACKTRACE", "1");
        if self.stdout == Stdout::Json {
            command.args(["--output", "json"]);
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Runs gorgon and returns what it did, whatever its exit code.
    pub fn output(self) -> Outcome {
        let saved = tempfile::tempdir().unwrap();
        let save = saved.path().join("report.json");
        let mut command = self.to_command();
        if self.stdout == Stdout::Table {
            command.arg("--save").arg(&save);
        }
        let run = Run::from(command.output().expect("gorgon starts"));
        let saved = std::fs::read_to_string(&save).ok();
        Outcome { run, saved }
    }

    /// Runs gorgon and asserts a clean run (exit 0).
    pub fn ok(self) -> Outcome {
        self.expect_exit(0)
    }

    /// Runs gorgon and asserts a run that finished but in which calls
    /// failed, with no threshold to say how many may (exit 1).
    pub fn with_failed_calls(self) -> Outcome {
        let outcome = self.output();
        Outcome {
            run: outcome.run.with_failed_calls(),
            saved: outcome.saved,
        }
    }

    /// Runs gorgon and asserts its exit code.
    pub fn expect_exit(self, code: i32) -> Outcome {
        self.output().expect_exit(code)
    }

    /// Runs gorgon with exactly the arguments given (a refused run prints
    /// no report, so none is asked for) and asserts the one-sentence usage
    /// error: exit 2, one line on stderr mentioning `mentions`.
    pub fn usage_error(mut self, mentions: &str) -> Outcome {
        self.stdout = Stdout::AsGiven;
        let outcome = self.output();
        outcome.assert_usage_error(mentions);
        outcome
    }

    /// Runs gorgon with exactly the arguments given and asserts a run that
    /// could not start or failed (exit 3), saying `mentions`, with no panic.
    pub fn run_failed(mut self, mentions: &str) -> Outcome {
        self.stdout = Stdout::AsGiven;
        let outcome = self.output();
        outcome.assert_run_failed(mentions);
        outcome
    }
}

/// A finished gorgon process ([`Run`]: exit code, stdout, stderr) with its
/// report.
#[derive(Debug)]
pub struct Outcome {
    run: Run,
    /// The report saved by `.table()` runs.
    saved: Option<String>,
}

impl std::ops::Deref for Outcome {
    type Target = Run;

    fn deref(&self) -> &Run {
        &self.run
    }
}

impl Outcome {
    /// Asserts the exit code and returns the outcome for chaining.
    pub fn expect_exit(self, code: i32) -> Outcome {
        assert_eq!(
            self.run.code, code,
            "expected exit {code}:\n{}\n{}",
            self.run.stdout, self.run.stderr
        );
        self
    }

    /// The report: stdout of a JSON run, the saved file of a table run.
    pub fn json(&self) -> Report {
        let text = self.saved.as_deref().unwrap_or(&self.run.stdout);
        serde_json::from_str(text).unwrap_or_else(|e| {
            panic!(
                "no JSON report ({e}):\n{}\n{}",
                self.run.stdout, self.run.stderr
            )
        })
    }
}

/// The JSON report as the tests read it (docs/json-schema.md): the fields
/// they check, by type. Unknown fields are ignored, as the schema asks of
/// readers; tests/e2e/reports.rs checks the schema itself.
#[derive(Debug, Deserialize)]
pub struct Report {
    pub plugin: String,
    pub params: BTreeMap<String, String>,
    pub interrupted: bool,
    pub runs: Vec<RunFigures>,
    pub load: LoadSettings,
    pub thresholds: Vec<Threshold>,
}

impl Report {
    /// A report saved with `--save`.
    pub fn read(path: &Path) -> Report {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is no report ({e}):\n{text}", path.display()))
    }

    /// The one run of a report that is not a suite.
    pub fn run(&self) -> &RunFigures {
        assert_eq!(self.runs.len(), 1, "expected one run: {self:#?}");
        &self.runs[0]
    }
}

/// One run of the report (`Run` in the schema).
#[derive(Debug, Deserialize)]
pub struct RunFigures {
    pub processes: u32,
    pub threads: u32,
    pub operations: u64,
    pub elapsed_ns: u64,
    pub complete: bool,
    pub failures: Vec<String>,
    pub all: Summary,
    pub results: Vec<NamedSummary>,
    pub measurements: Vec<NamedSummary>,
    pub panics: Vec<PanicSample>,
    pub timeline: Vec<TimelinePoint>,
    pub warmup_operations: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub open_model: Option<OpenModel>,
    pub parent_peak_rss_bytes: Option<u64>,
    pub worker_peak_rss_bytes: Option<u64>,
}

impl RunFigures {
    /// Calls labelled `label`; 0 when no call was.
    pub fn count(&self, label: &str) -> u64 {
        self.result(label).map_or(0, |r| r.summary.count)
    }

    /// The figures of the result label `label`.
    pub fn result(&self, label: &str) -> Option<&NamedSummary> {
        find(&self.results, label)
    }

    /// Every result label with its count.
    pub fn labels(&self) -> BTreeMap<&str, u64> {
        counts(&self.results)
    }

    /// Calls that measured `name` (`rec.measure`); 0 when none did.
    pub fn measured(&self, name: &str) -> u64 {
        self.measurement(name).map_or(0, |m| m.summary.count)
    }

    /// The figures of the measurement `name`.
    pub fn measurement(&self, name: &str) -> Option<&NamedSummary> {
        find(&self.measurements, name)
    }

    /// The measurements' names with their counts.
    pub fn measured_names(&self) -> BTreeMap<&str, u64> {
        counts(&self.measurements)
    }

    /// The timeline as (start in ms, calls) per interval.
    pub fn timeline_calls(&self) -> Vec<(u64, u64)> {
        self.timeline
            .iter()
            .map(|p| (p.start_ms, p.calls))
            .collect()
    }
}

fn find<'a>(named: &'a [NamedSummary], name: &str) -> Option<&'a NamedSummary> {
    named.iter().find(|n| n.name == name)
}

fn counts(named: &[NamedSummary]) -> BTreeMap<&str, u64> {
    named
        .iter()
        .map(|n| (n.name.as_str(), n.summary.count))
        .collect()
}

/// The figures of a group of calls.
#[derive(Debug, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub ops_per_sec: f64,
    pub avg_ns: u64,
    pub max_ns: u64,
    pub p99_ns: u64,
}

/// A result label's or a measurement's figures.
#[derive(Debug, Deserialize)]
pub struct NamedSummary {
    pub name: String,
    #[serde(flatten)]
    pub summary: Summary,
    /// Calls under this label that the plugin said failed.
    #[serde(default)]
    pub failed: u64,
}

#[derive(Debug, Deserialize)]
pub struct PanicSample {
    pub message: String,
    pub count: u64,
}

#[derive(Debug, Deserialize)]
pub struct TimelinePoint {
    pub start_ms: u64,
    pub duration_ms: u64,
    pub calls: u64,
    pub ops_per_sec: f64,
    /// Calls running as the interval ended; `None` for the last one.
    pub in_flight: Option<u64>,
}

/// The open model's figures (`--rate`).
#[derive(Debug, Deserialize)]
pub struct OpenModel {
    pub target_per_sec: f64,
    pub late: u64,
    /// Starts due in the window that never began (an overloaded rate);
    /// 0 in files written before the field existed, as the schema says.
    #[serde(default)]
    pub dropped: u64,
    pub service: Summary,
    pub warning: Option<String>,
}

/// How the load was applied.
#[derive(Debug, Deserialize)]
pub struct LoadSettings {
    pub model: String,
    pub rate_per_sec: Option<f64>,
    pub ok: Option<Vec<String>>,
    pub fibers: u32,
}

/// A pass/fail gate and how each run fared.
#[derive(Debug, Deserialize)]
pub struct Threshold {
    pub expression: String,
    pub passed: bool,
    pub unit: String,
    pub runs: Vec<ThresholdRun>,
}

#[derive(Debug, Deserialize)]
pub struct ThresholdRun {
    pub value: Option<f64>,
    pub shown: String,
    pub passed: bool,
    pub note: Option<String>,
}

/// Waits for `condition` to hold, checking every 20 ms, for at most
/// `limit`: what a test waits for (a file, a line, a process) takes a
/// moment on an idle machine and much longer on a busy one, so the limit
/// is generous and the wait ends as soon as it holds. Says whether it held.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Calls the testkit plugin has begun with `numbers_dir=dir`: the lines
/// written so far (a line is written as its call begins).
pub fn numbers_written(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let text = std::fs::read(entry.unwrap().path()).unwrap_or_default();
            text.iter().filter(|&&b| b == b'\n').count()
        })
        .sum()
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

/// A timeline of (start in ms, calls) summed per second of the run: the
/// first seconds come in finer intervals (docs/reports.md).
pub fn per_second(points: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut seconds: Vec<(u64, u64)> = Vec::new();
    for &(start_ms, calls) in points {
        let second = start_ms / 1000 * 1000;
        match seconds.last_mut() {
            Some((last, sum)) if *last == second => *sum += calls,
            _ => seconds.push((second, calls)),
        }
    }
    seconds
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
