//! The command line: every flag, its parser, and how a parse error is told.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit;
use crate::plan::{Param, RunShape};
use crate::shape::{LoadArgs, WorkerLoad};

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
    Run(RunArgs),
    /// Show a result saved with `gorgon run --save FILE.json` again, as a
    /// table or in another format.
    Report(ReportArgs),
    /// Manage the SSH nodes of a cluster (kept in gorgon.toml) and check
    /// or set them up.
    Cluster(crate::cluster::ClusterArgs),
    /// Create a plugin crate NAME (a new directory) that builds offline and
    /// runs with `gorgon run --debug` at once.
    New(NewArgs),
    /// List the plugins `--plugin NAME` finds: on GORGON_PLUGIN_PATH,
    /// beside gorgon, and bundled into it.
    Plugins,
    /// Run one worker process (started by `gorgon run`, locally or over SSH).
    #[command(hide = true)]
    Worker(WorkerArgs),
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
    pub nodes: crate::cluster::NodeSelection,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Also write the whole result as JSON to FILE (the table still goes to
    /// stdout); `gorgon report FILE` shows it again.
    #[arg(long, value_name = "FILE.json")]
    pub save: Option<PathBuf>,

    /// Rewrite the --save file with the partial result this often during
    /// the run (e.g. 10s, 1m), so a run killed hard leaves its last snapshot.
    #[arg(long, value_name = "DURATION", requires = "save", value_parser = crate::shape::positive_duration)]
    pub snapshot_every: Option<std::time::Duration>,

    /// No progress display on stderr.
    #[arg(short, long)]
    pub quiet: bool,
}

/// How a result is shown; shared by `gorgon run` and `gorgon report`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// What goes to stdout.
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

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A result saved by `gorgon run --save`.
    #[arg(value_name = "FILE.json")]
    pub file: PathBuf,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The new crate's directory; its last part is the crate name
    /// (letters, digits, `-` and `_`).
    #[arg(value_name = "NAME")]
    pub path: PathBuf,
}

/// Arguments of a worker process. They are an internal protocol between
/// `gorgon run` and `gorgon worker`, not a user interface.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    #[arg(long)]
    pub plugin: PathBuf,
    #[arg(long)]
    pub threads: u32,
    /// This worker's numbers are `offset + k * stride` for `k` in `0..count`
    /// (`count` = u64::MAX: no count limit).
    #[arg(long)]
    pub offset: u64,
    #[arg(long)]
    pub stride: u64,
    #[arg(long)]
    pub count: u64,
    /// How often partial results are sent, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub interval_ms: u64,
    #[arg(long = "set", value_parser = parse_param)]
    pub params: Vec<Param>,
    #[command(flatten)]
    pub load: WorkerLoad,
    /// The plugin's SHA-256: the worker checks the file against it before
    /// loading it (a plugin uploaded to a node).
    #[arg(long)]
    pub plugin_sha256: Option<String>,
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
