//! Helpers shared by the end-to-end tests: find the binary, build the
//! plugins, run gorgon and pick figures out of its report.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{mpsc, Once};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

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
/// `run` commands report in JSON unless `.table()`, `.output_format()` or
/// `.debug()` says otherwise, so that figures are read from the report
/// rather than from the table's layout. The assertions print stdout and
/// stderr when they fail. A test that acts on gorgon while it runs starts
/// it with `.spawn()` and ends with `.finish(limit)`, which gives the same
/// [`Outcome`].
#[derive(Debug)]
pub struct Gorgon {
    /// Flags before the command (`--config`).
    global: Vec<OsString>,
    command: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdout: Stdout,
    /// `COLUMNS` for gorgon: wide by default, so that `rows` finds each
    /// label in full; `None` leaves it unset (the tables fit 80 columns).
    columns: Option<&'static str>,
    /// A program (and its arguments) that runs gorgon: `prlimit …`.
    launcher: Vec<OsString>,
}

impl Gorgon {
    fn new(command: Vec<OsString>, stdout: Stdout) -> Gorgon {
        Gorgon {
            global: Vec::new(),
            command,
            env: Vec::new(),
            stdout,
            columns: Some("1000"),
            launcher: Vec::new(),
        }
    }

    /// `gorgon run --plugin PLUGIN`: a library's path or a plugin's name.
    pub fn run(plugin: impl AsRef<OsStr>) -> Gorgon {
        Gorgon::new(
            vec!["run".into(), "--plugin".into(), plugin.as_ref().into()],
            Stdout::Json,
        )
    }

    /// `gorgon run` of the testkit plugin, the one the tests steer with
    /// parameters (tests/plugins/testkit).
    pub fn testkit() -> Gorgon {
        Gorgon::run(plugin("gorgon-test-testkit"))
    }

    /// Any other command (`new DIR`, `report FILE`, `plugins`), with its
    /// arguments as given.
    pub fn command<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(args: I) -> Gorgon {
        Gorgon::new(
            args.into_iter().map(|a| a.as_ref().into()).collect(),
            Stdout::AsGiven,
        )
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

    /// `--output FORMAT` (`table`, `csv`): stdout exactly as that format
    /// prints it, and no report beside it for `.json()` to read.
    pub fn output_format(mut self, format: &str) -> Gorgon {
        self.stdout = Stdout::AsGiven;
        self.args(["--output", format])
    }

    /// No `COLUMNS`: the tables fit in 80 columns, as in a log or a CI
    /// page (by default the tests give gorgon a wide terminal).
    pub fn narrow(mut self) -> Gorgon {
        self.columns = None;
        self
    }

    /// Runs gorgon through `program` with `args` before gorgon's path
    /// (`prlimit --nofile=64:`), as a shell that sets a limit would.
    pub fn launched_by<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(
        mut self,
        program: &str,
        args: I,
    ) -> Gorgon {
        self.launcher = std::iter::once(program.into())
            .chain(args.into_iter().map(|a| a.as_ref().into()))
            .collect();
        self
    }

    /// The command line as a `Command`, for a test that needs a stdout of
    /// its own (`/dev/full`, a reader that stops); a test that only acts
    /// on a running gorgon uses [`Gorgon::spawn`]. It reports as
    /// `.output()` would.
    pub fn to_command(&self) -> Command {
        let mut command = match self.launcher.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(gorgon_bin());
                command
            }
            None => Command::new(gorgon_bin()),
        };
        command
            .args(&self.global)
            .args(&self.command)
            .env("RUST_BACKTRACE", "1");
        match self.columns {
            Some(columns) => command.env("COLUMNS", columns),
            None => command.env_remove("COLUMNS"),
        };
        if self.stdout == Stdout::Json {
            command.args(["--output", "json"]);
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// The command with, for a `.table()` run, `--save` into a temporary
    /// directory (returned, to be read when gorgon has ended).
    fn prepared(&self) -> (Command, Saved) {
        let mut command = self.to_command();
        let saved = (self.stdout == Stdout::Table).then(|| {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("report.json");
            command.arg("--save").arg(&file);
            (dir, file)
        });
        (command, Saved(saved))
    }

    /// Runs gorgon and returns what it did, whatever its exit code.
    pub fn output(self) -> Outcome {
        let (mut command, saved) = self.prepared();
        let run = Run::from(command.output().expect("gorgon starts"));
        Outcome {
            run,
            saved: saved.read(),
        }
    }

    /// Runs gorgon with its stdout on `/dev/full`, where every write
    /// fails, for the tests of a report that cannot be delivered.
    pub fn with_full_stdout(self) -> Run {
        let full = std::fs::File::options()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full opens");
        let output = self
            .to_command()
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .expect("gorgon starts");
        Run::from(output)
    }

    /// Starts gorgon in the background, for a test that acts on it while
    /// it runs (a signal, a scrape, a stopped worker). Its stderr is read
    /// line by line as it comes, its stdout gathered whole; it is killed
    /// if the test ends first.
    pub fn spawn(self) -> Running {
        self.start(Stdio::null())
    }

    /// [`Gorgon::spawn`] with a pipe for stdin, which [`Running::stdin`]
    /// writes to (`gorgon worker` reads its orders there).
    pub fn spawn_with_stdin(self) -> Running {
        self.start(Stdio::piped())
    }

    fn start(self, stdin: Stdio) -> Running {
        let (mut command, saved) = self.prepared();
        let mut child = command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gorgon starts");
        Running {
            stdin: child.stdin.take(),
            stdout: Lines::read(child.stdout.take().unwrap()),
            stderr: Lines::read(child.stderr.take().unwrap()),
            child,
            saved,
        }
    }

    /// Runs gorgon and asserts a clean run (exit 0).
    pub fn ok(self) -> Outcome {
        self.expect_exit(0)
    }

    /// Runs gorgon and asserts a run that finished but in which calls
    /// failed, with no threshold to say how many may (exit 1).
    pub fn with_failed_calls(self) -> Outcome {
        self.output().with_failed_calls()
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

/// Where a `.table()` run saves its report: a temporary directory, kept
/// until gorgon has ended, and the file in it.
#[derive(Debug)]
struct Saved(Option<(tempfile::TempDir, PathBuf)>);

impl Saved {
    fn read(&self) -> Option<String> {
        let (_, file) = self.0.as_ref()?;
        std::fs::read_to_string(file).ok()
    }
}

/// A gorgon started by [`Gorgon::spawn`]. Dropped before it ended (a
/// failed assertion), it is killed, and its workers end with it, as their
/// input closes.
#[derive(Debug)]
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines,
    stderr: Lines,
    saved: Saved,
}

/// One of gorgon's output pipes, read line by line as it comes by a
/// thread of its own (so that gorgon never blocks on a full pipe).
#[derive(Debug)]
struct Lines {
    receiver: mpsc::Receiver<String>,
    /// The lines received so far, each with its newline (if it had one).
    seen: Vec<String>,
}

impl Lines {
    fn read(pipe: impl Read + Send + 'static) -> Lines {
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut pipe = BufReader::new(pipe);
            loop {
                let mut line = Vec::new();
                match pipe.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&line).into_owned();
                        if sender.send(line).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Lines {
            receiver,
            seen: Vec::new(),
        }
    }

    /// Everything received so far.
    fn so_far(&mut self) -> String {
        self.seen.extend(self.receiver.try_iter());
        self.seen.concat()
    }

    /// Waits for a line containing `text` and returns it (without its
    /// newline); fails after `limit` or when the pipe closes without one.
    fn wait_for(&mut self, what: &str, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line.trim_end_matches('\n').to_string();
                    }
                }
                Err(_) => panic!(
                    "no line with {text:?} on {what}; saw:\n{}",
                    self.seen.concat()
                ),
            }
        }
    }

    /// Everything, once the pipe has closed: when gorgon and whatever
    /// it started and left holding the pipe have gone. Fails if that
    /// takes more than `limit`.
    fn all(mut self, what: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.receiver.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return self.seen.concat(),
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "gorgon ended, but its {what} stayed open {limit:?} (a process it \
                     started holds it); so far:\n{}",
                    self.seen.concat()
                ),
            }
        }
    }
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Gorgon's stdin, for a run started by [`Gorgon::spawn_with_stdin`].
    pub fn stdin(&mut self) -> &mut ChildStdin {
        self.stdin.as_mut().expect("spawned with a stdin")
    }

    /// Sends `signal` to gorgon.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid() as i32), signal).unwrap();
    }

    /// Whether gorgon is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Closes gorgon's stdin (the end of input).
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// What gorgon wrote on stderr so far.
    pub fn stderr_so_far(&mut self) -> String {
        self.stderr.so_far()
    }

    /// Waits for a stderr line containing `text` and returns it; fails
    /// after `limit` or when stderr ends without one.
    pub fn wait_for_line(&mut self, text: &str, limit: Duration) -> String {
        self.stderr.wait_for("stderr", text, limit)
    }

    /// Waits for a stdout line containing `text` and returns it.
    pub fn wait_for_stdout_line(&mut self, text: &str, limit: Duration) -> String {
        self.stdout.wait_for("stdout", text, limit)
    }

    /// Waits (see [`wait_until`]) for `condition` while gorgon runs; fails,
    /// naming `what`, if gorgon ends first or `limit` passes.
    pub fn wait_for(&mut self, what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
        let mut ended = false;
        let held = wait_until(limit, || {
            if condition() {
                return true;
            }
            ended = self.child.try_wait().unwrap().is_some();
            ended
        });
        assert!(
            held && !ended,
            "{} waiting for {what}; stderr:\n{}",
            if ended { "gorgon ended" } else { "timed out" },
            self.stderr_so_far()
        );
    }

    /// The running `gorgon worker` processes gorgon started on this machine.
    pub fn workers(&self) -> Vec<u32> {
        children_of(self.pid())
            .into_iter()
            .filter(|&p| is_worker(p))
            .collect()
    }

    /// Waits until `count` workers run, and returns them.
    pub fn wait_for_workers(&mut self, count: usize) -> Vec<u32> {
        let pid = self.pid();
        let workers = || {
            children_of(pid)
                .into_iter()
                .filter(|&p| is_worker(p))
                .count()
        };
        self.wait_for(&format!("{count} workers"), Duration::from_secs(30), || {
            workers() == count
        });
        self.workers()
    }

    /// Waits for gorgon to end, for at most `limit` (else kills it and
    /// fails), and returns what it did.
    pub fn finish(mut self, limit: Duration) -> Outcome {
        if !wait_until(limit, || self.child.try_wait().unwrap().is_some()) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "gorgon did not end within {limit:?}; stderr:\n{}",
                self.stderr_so_far()
            );
        }
        let status = self.child.wait().unwrap();
        let pipes = Duration::from_secs(30);
        let stdout = std::mem::replace(&mut self.stdout, Lines::read(std::io::empty()));
        let stderr = std::mem::replace(&mut self.stderr, Lines::read(std::io::empty()));
        Outcome {
            run: Run {
                code: status.code().unwrap_or(-1),
                stdout: stdout.all("stdout", pipes),
                stderr: stderr.all("stderr", pipes),
            },
            saved: self.saved.read(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The pids of the live processes whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
            // The fields after the command name (in parentheses): state, ppid.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            after.split_whitespace().nth(1) == Some(&pid.to_string())
        })
        .collect()
}

/// True while `pid` is a running `gorgon worker` (not a zombie, not reused).
pub fn is_worker(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(')').map_or("", |(_, rest)| rest.trim());
    String::from_utf8_lossy(&cmdline).contains("worker") && !state.starts_with('Z')
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
    /// Asserts a clean run (exit 0).
    pub fn ok(self) -> Outcome {
        self.expect_exit(0)
    }

    /// Asserts a run in which calls failed, with no threshold to say how
    /// many may (exit 1).
    pub fn with_failed_calls(self) -> Outcome {
        Outcome {
            run: self.run.with_failed_calls(),
            saved: self.saved,
        }
    }

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
    pub schema_version: u32,
    pub plugin: String,
    pub total_elapsed_ns: u64,
    pub params: BTreeMap<String, String>,
    pub interrupted: bool,
    pub in_progress: bool,
    pub verdict: Verdict,
    pub command_line: Option<String>,
    pub runs: Vec<RunFigures>,
    pub load: LoadSettings,
    pub skipped_nodes: Vec<String>,
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
    pub operations_planned: Option<u64>,
    pub operations: u64,
    pub elapsed_ns: u64,
    pub complete: bool,
    pub failures: Vec<String>,
    pub all: Summary,
    pub results: Vec<NamedSummary>,
    pub measurements: Vec<NamedSummary>,
    pub panics: Vec<PanicSample>,
    pub timeline: Vec<TimelinePoint>,
    pub nodes: Vec<Node>,
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

/// What the suite came to.
#[derive(Debug, Deserialize)]
pub struct Verdict {
    pub status: String,
    pub exit_code: i32,
    pub reasons: Vec<String>,
}

/// What one node of a cluster run did.
#[derive(Debug, Deserialize)]
pub struct Node {
    pub name: String,
    pub operations: u64,
    pub elapsed_ns: u64,
    pub complete: bool,
    #[serde(default)]
    pub failures: Vec<String>,
    pub phases: NodePhases,
}

/// How long each phase of a cluster run took on a node.
#[derive(Debug, Deserialize)]
pub struct NodePhases {
    pub connect_ns: Option<u64>,
    pub probe_ns: Option<u64>,
    pub upload_ns: Option<u64>,
    pub ready_ns: Option<u64>,
    pub first_call_ns: Option<u64>,
    pub calls_ns: Option<u64>,
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

/// `gorgon worker`'s arguments for one worker spec (docs/protocol.md),
/// written as JSON: the spec as URL-safe base64, the one argument.
pub fn worker_args(spec: &serde_json::Value) -> Vec<String> {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(spec.to_string());
    vec!["worker".to_string(), format!("--spec={token}")]
}

/// Threads of process `pid` asleep in a thread setup (`setup_sleep_ms`):
/// worker threads (`gorgon-worker-N`) in `nanosleep` before any call.
pub fn threads_in_setup(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|task| {
            let read =
                |name: &str| std::fs::read_to_string(task.path().join(name)).unwrap_or_default();
            read("comm").starts_with("gorgon-worker") && read("wchan") == "hrtimer_nanosleep"
        })
        .count()
}
