//! The command line: every flag, its parser, how a parse error is told,
//! and how flags become the plain values the rest of gorgon takes.
//!
//! Clap's types stop here. As ripgrep turns its low-level arguments into
//! high-level ones, this layer checks the flags and hands on plain values
//! ([`LoadPlan`], [`Destinations`], [`crate::cluster::Selection`]); no
//! module below knows there is a command line.

pub mod cluster;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Defaults;
use crate::exit;
use crate::plan::{LoadPlan, Param};
use crate::report::compare::{Gate, Request};
use crate::report::output::{Destinations, Format};
use crate::shape::{parse_duration, positive_duration, Rate, RunShape, Success, Warmup};
use crate::threshold::Threshold;

#[derive(Debug, Parser)]
#[command(
    name = "gorgon",
    version,
    about = "Multiply an operation: run a compiled plugin N times across processes and threads, \
             then report counts, throughput and latency by result.",
    after_help = "Exit codes: 0 ok, 1 a threshold failed, 2 bad usage or input, \
                  3 the run failed (a worker crashed, a node was unreachable or lost), \
                  130 interrupted."
)]
pub struct Cli {
    /// The configuration file (default: ./gorgon.toml, else
    /// ~/.config/gorgon/gorgon.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a plugin's operation N times and report the results.
    Run(Box<RunArgs>),
    /// Show a result saved with `gorgon run --save FILE.json` again, as a
    /// table or in another format.
    Report(ReportArgs),
    /// Compare two results saved with `--save`: per-label changes, and
    /// relative gates for CI (`--threshold 'p99<+10%'`, exit 1 if one fails).
    Compare(CompareArgs),
    /// Manage the SSH nodes of a cluster (kept in gorgon.toml) and check
    /// or set them up.
    Cluster(cluster::ClusterArgs),
    /// Create a plugin crate NAME (a new directory) that builds offline and
    /// runs with `gorgon run --debug` at once.
    New(NewArgs),
    /// List the plugins `--plugin NAME` finds: on GORGON_PLUGIN_PATH,
    /// beside gorgon, and bundled into it.
    Plugins,
    /// Run one worker process (started by `gorgon run`, locally or over SSH).
    #[command(hide = true)]
    Worker(WorkerArgs),
    /// Load a plugin once and exit (started by `gorgon run` before the run,
    /// so that no plugin code runs in the parent itself).
    #[command(hide = true)]
    Probe(ProbeArgs),
}

/// Arguments of `gorgon probe`: an internal step of `gorgon run`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    pub plugin: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plugin: a path to a shared library exporting `operation` (see
    /// gorgon-plugin-api), or a name (http, hash, noop, subcalls, or one
    /// on GORGON_PLUGIN_PATH); `gorgon plugins` lists the names.
    #[arg(long, value_name = "NAME|PATH", value_parser = crate::plugin_path::parse)]
    pub plugin: PathBuf,

    /// Number of operations in each run (warm-up excluded).
    #[arg(short = 'n', long = "operations", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub operations: Option<u64>,

    /// Worker processes (on each node, with --cluster/--nodes) [default: 1,
    /// or defaults.processes in gorgon.toml].
    #[arg(short = 'p', long = "processes", value_name = "P",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub processes: Option<u32>,

    /// Threads in each worker process [default: 1, or defaults.threads].
    #[arg(short = 't', long = "threads", value_name = "T",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,

    /// A suite: one run per PROCESSESxTHREADS pair, e.g. `1x1,2x1,2x4,4x10`
    /// (replaces -p and -t).
    #[arg(long, value_name = "PxT,...", value_parser = parse_runs)]
    pub runs: Option<Suite>,

    /// Set a plugin parameter (repeatable); the plugin reads it with
    /// `rec.param("key")`.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<Param>,

    /// Test mode: run in this process on one thread (10 operations unless
    /// -n is given) and print every call.
    #[arg(long)]
    pub debug: bool,

    #[command(flatten)]
    pub load: LoadArgs,

    #[command(flatten)]
    pub nodes: cluster::NodeArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Also write the whole result as JSON to FILE (the table still goes to
    /// stdout); `gorgon report FILE` shows it again.
    #[arg(long, value_name = "FILE.json")]
    pub save: Option<PathBuf>,

    /// Rewrite the --save file with the partial result this often during
    /// the run (e.g. 10s, 1m), so a run killed hard leaves its last snapshot.
    #[arg(long, value_name = "DURATION", requires = "save", value_parser = positive_duration)]
    pub snapshot_every: Option<std::time::Duration>,

    /// No progress display on stderr.
    #[arg(short, long)]
    pub quiet: bool,

    /// Serve the run's live figures at http://ADDR/metrics in the
    /// Prometheus text format while it goes on: PORT (on 127.0.0.1) or
    /// ADDRESS:PORT.
    #[arg(long, value_name = "ADDR", value_parser = crate::metrics::parse_address)]
    pub metrics: Option<std::net::SocketAddr>,

    /// After the last run, keep serving the final figures until one scrape
    /// has read them, for at most this long (e.g. 20s).
    #[arg(long, value_name = "DURATION", requires = "metrics", value_parser = positive_duration)]
    pub metrics_linger: Option<std::time::Duration>,
}

/// How a result is shown; shared by `gorgon run`, `gorgon report` and
/// `gorgon compare`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// What goes to stdout (from `gorgon compare`, JSON and CSV hold the
    /// comparison, its gates and verdict: docs/reports.md).
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// Write SVG charts into DIR (created if missing).
    #[arg(long, value_name = "DIR")]
    pub svg: Option<PathBuf>,

    /// Write one self-contained HTML page (tables and charts) to FILE.
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
}

/// The formats for stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Tables for people.
    Table,
    /// The whole result, as documented in docs/json-schema.md.
    Json,
    /// One row per run and per all/result/measurement.
    Csv,
}

impl OutputFormat {
    fn format(self) -> Format {
        match self {
            OutputFormat::Table => Format::Table,
            OutputFormat::Json => Format::Json,
            OutputFormat::Csv => Format::Csv,
        }
    }
}

impl OutputArgs {
    /// Where the report goes; `save` is `gorgon run --save`.
    pub fn destinations(&self, save: Option<&Path>) -> Destinations {
        Destinations {
            format: self.output.format(),
            save: save.map(Path::to_path_buf),
            svg: self.svg.clone(),
            html: self.html.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A result saved by `gorgon run --save`.
    #[arg(value_name = "FILE.json")]
    pub file: PathBuf,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The result to compare against (`gorgon run --save`).
    #[arg(value_name = "BASE.json")]
    pub base: PathBuf,

    /// The result to judge.
    #[arg(value_name = "NEW.json")]
    pub new: PathBuf,

    /// A relative gate, repeatable: `[NAME:]METRIC<+N%` or `METRIC>-N%`,
    /// e.g. 'p99<+10%', 'ops_per_sec>-5%' (error_rate in percentage points).
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<Gate>,

    /// `--output` (the table, or the comparison as JSON or CSV for a
    /// script, docs/reports.md), `--svg` (the overlaid spectra) and `--html`.
    #[command(flatten)]
    pub output: OutputArgs,
}

impl CompareArgs {
    /// The comparison asked for, as plain values.
    pub fn request(self) -> Request {
        Request {
            base: self.base,
            new: self.new,
            gates: self.thresholds,
            format: self.output.output.format(),
            svg: self.output.svg,
            html: self.output.html,
        }
    }
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The new crate's directory; its last part is the crate name
    /// (letters, digits, `-` and `_`).
    #[arg(value_name = "NAME")]
    pub path: PathBuf,
}

/// Arguments of a worker process: one [`crate::spec::WorkerSpec`] token,
/// an internal protocol between `gorgon run` and `gorgon worker`
/// (docs/protocol.md), not a user interface. The worker reads it itself,
/// so that a spec it cannot read is told to the parent as a frame.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[arg(long, value_name = "TOKEN")]
    pub spec: String,
}

/// The runs of a suite, in order (a newtype so clap takes the list as one
/// value).
#[derive(Debug, Clone)]
pub struct Suite(pub Vec<RunShape>);

fn parse_runs(text: &str) -> Result<Suite, String> {
    text.split(',')
        .map(|entry| entry.trim().parse())
        .collect::<Result<_, _>>()
        .map(Suite)
}

fn parse_param(text: &str) -> Result<Param, String> {
    text.parse()
}

/// The load-shape flags of `gorgon run` (flattened into its arguments).
#[derive(Debug, Clone, Default, Args)]
pub struct LoadArgs {
    /// Run for this long (30s, 1m 30s); with -n as well, stop at whichever
    /// comes first [or defaults.duration].
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub duration: Option<Duration>,

    /// Open model: start operations at this total rate across all processes
    /// and threads (500/s, 30/m), whatever their latency; latency is then
    /// measured from each operation's intended start [or defaults.rate].
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub rate: Option<Rate>,

    /// Start threads progressively over this time (closed model) or ramp
    /// the rate up linearly from zero (with --rate) [or defaults.ramp_up].
    #[arg(long = "ramp-up", value_name = "DURATION", value_parser = parse_duration)]
    pub ramp_up: Option<Duration>,

    /// Calls made first and left out of the statistics: a count (200) or a
    /// time (5s) [or defaults.warmup].
    #[arg(long, value_name = "N|DURATION", value_parser = parse_warmup)]
    pub warmup: Option<Warmup>,

    /// The result labels that count as success, e.g. 200,201; every other
    /// label, and always `panic`, is an error [default: every label but
    /// panic, or defaults.ok].
    #[arg(long, value_name = "LABEL,...", value_delimiter = ',')]
    pub ok: Option<Vec<String>>,

    /// A pass/fail gate checked at the end, e.g. 'p99<250ms',
    /// 'error_rate<1%', 'ops_per_sec>1000', 'http call 1:p95<50ms'
    /// (repeatable; replaces the config's `thresholds`). Exit code 1 when
    /// one fails.
    #[arg(long = "threshold", value_name = "EXPR", value_parser = parse_threshold)]
    pub thresholds: Vec<Threshold>,

    /// Run the worker threads under SCHED_BATCH: same share of CPU, but a
    /// thread woken by a reply does not preempt what runs (often the server
    /// under test on the same machine). Fewer context switches for
    /// plugins that block on a local server (docs/load-shapes.md)
    /// [or defaults.batch_scheduling; `--batch-scheduling=false` turns it
    /// off].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub batch_scheduling: Option<bool>,

    /// Run this many calls at once on each worker thread, each on a fiber
    /// of its own: for plugins that wait for I/O through `rec.wait` (the
    /// HTTP plugin does), one thread then serves many connections from
    /// one epoll wait, as an event loop does (docs/fibers.md)
    /// [default: 1, or defaults.fibers].
    #[arg(long, value_name = "F", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub fibers: Option<u32>,

    /// How long workers may take past the run's end (or Ctrl-C) to finish
    /// their calls before they are killed and named; the run then exits 3
    /// with everything gathered until then [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub grace: Option<Duration>,

    /// A watchdog: a call still running after this long stops the run (it
    /// cannot be cancelled); the report names it, with its number, and the
    /// run exits 3 [default: 60s].
    #[arg(long = "call-timeout", value_name = "DURATION", value_parser = positive_duration)]
    pub call_timeout: Option<Duration>,
}

fn parse_rate(text: &str) -> Result<Rate, String> {
    text.parse()
}

fn parse_warmup(text: &str) -> Result<Warmup, String> {
    text.parse()
}

fn parse_threshold(text: &str) -> Result<Threshold, String> {
    text.parse()
}

impl LoadArgs {
    /// Combines the command line with the config's defaults: a flag wins
    /// over its default. The length of a run is one setting: `-n` or
    /// `--duration` on the command line replaces both config defaults, so
    /// `defaults.operations` never cuts short a `--duration` run.
    pub fn resolve(&self, operations: Option<u64>, defaults: &Defaults) -> LoadPlan {
        let (operations, duration) = if operations.is_some() || self.duration.is_some() {
            (operations, self.duration)
        } else {
            (defaults.operations, defaults.duration.map(|s| s.0))
        };
        let warmup = self.warmup.or(defaults.warmup).filter(|w| match w {
            Warmup::Calls(n) => *n > 0,
            Warmup::Time(d) => !d.is_zero(),
        });
        LoadPlan {
            operations,
            duration,
            rate: self.rate.or(defaults.rate),
            ramp_up: self
                .ramp_up
                .or(defaults.ramp_up.map(|s| s.0))
                .unwrap_or_default(),
            warmup,
            success: Success {
                ok: self.ok.clone().or_else(|| defaults.ok.clone()),
            },
            batch_scheduling: self
                .batch_scheduling
                .or(defaults.batch_scheduling)
                .unwrap_or(false),
            fibers: self.fibers.or(defaults.fibers).unwrap_or(1),
            grace: self.grace.unwrap_or(crate::plan::DEFAULT_GRACE),
            call_timeout: self
                .call_timeout
                .unwrap_or(crate::plan::DEFAULT_CALL_TIMEOUT),
        }
    }

    /// The flags given that only make sense for a real run, as they were
    /// written; `--debug` refuses them.
    pub fn given(&self) -> Vec<&'static str> {
        [
            ("--duration", self.duration.is_some()),
            ("--rate", self.rate.is_some()),
            ("--ramp-up", self.ramp_up.is_some()),
            ("--warmup", self.warmup.is_some()),
            ("--threshold", !self.thresholds.is_empty()),
            ("--ok", self.ok.is_some()),
            ("--fibers", self.fibers.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }
}

/// Tells a command-line error in one line on stderr, exit code 2; help and
/// version go to stdout with exit code 0, as usual.
pub fn report_parse_error(error: clap::Error) -> ExitCode {
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        // `gorgon` alone: the help is the most useful answer, but it is
        // still a usage error for a script.
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprint!("{}", error.render());
            return ExitCode::from(exit::USAGE);
        }
        _ => {}
    }
    let rendered = error.render().to_string();
    let sentence = rendered
        .lines()
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let sentence = sentence.strip_prefix("error: ").unwrap_or(&sentence);
    eprintln!("gorgon: {sentence}");
    ExitCode::from(exit::USAGE)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn load_flags_win_over_the_config_defaults() {
        let args = LoadArgs {
            rate: Some("50/s".parse().unwrap()),
            ..LoadArgs::default()
        };
        let defaults = Defaults {
            operations: Some(100),
            duration: Some(crate::shape::Span(Duration::from_secs(9))),
            rate: Some("10/s".parse().unwrap()),
            fibers: Some(4),
            ..Defaults::default()
        };
        let plan = args.resolve(None, &defaults);
        assert_eq!(plan.rate.map(|r| r.per_sec), Some(50.0));
        assert_eq!((plan.operations, plan.fibers), (Some(100), 4));
        // -n on the command line replaces both lengths of the config.
        let plan = args.resolve(Some(7), &defaults);
        assert_eq!((plan.operations, plan.duration), (Some(7), None));
    }
}
