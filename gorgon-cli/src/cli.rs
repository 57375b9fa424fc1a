//! The command line: every flag, its parser, and how a parse error is told.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Args, Parser, Subcommand};

use crate::exit;
use crate::plan::{Param, RunShape};

#[derive(Debug, Parser)]
#[command(
    name = "gorgon",
    version,
    about = "Multiply an operation: run a compiled plugin N times across processes and threads, \
             then report counts, throughput and latency by result.",
    after_help = "Exit codes: 0 ok, 1 a threshold failed, 2 bad usage or input, \
                  3 the run failed (a worker crashed), 130 interrupted."
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
    /// Create a plugin crate NAME (a new directory) that builds offline and
    /// runs with `gorgon run --debug` at once.
    New(NewArgs),
    /// Run one worker process (started by `gorgon run`, locally or over SSH).
    #[command(hide = true)]
    Worker(WorkerArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plugin: a shared library exporting `operation` (see gorgon-plugin-api).
    #[arg(long, value_name = "PATH")]
    pub plugin: PathBuf,

    /// Number of operations in each run.
    #[arg(short = 'n', long = "operations", value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub operations: Option<u64>,

    /// Worker processes [default: 1, or defaults.processes in gorgon.toml].
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
    /// This worker's numbers are `offset + k * stride` for `k` in `0..count`.
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
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return ExitCode::SUCCESS;
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
