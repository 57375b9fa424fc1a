//! `gorgon`: multiply an operation across processes, threads and nodes.
//!
//! The modules follow the stages of a run: [`cli`] reads the command line,
//! [`plugin`] loads and checks the operation, [`plan`] splits the work,
//! [`worker`] runs it (with [`recorder`] as the host side of the plugin's
//! `Recorder`), [`protocol`] carries results back, [`collect`] merges them
//! into [`stats`], and [`report`] shows them. [`shape`] describes how the
//! load is applied (count or time, closed or open model, ramp-up, warm-up)
//! [`threshold`] the pass/fail gates checked at the end, and [`scaffold`]
//! starts a new plugin crate (`gorgon new`).

/// `println!` for gorgon's own output: a reader that went away
/// (`gorgon cluster list | head -1`) ends gorgon quietly, not with a panic.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout().lock(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

mod cli;
mod clock;
mod cluster;
mod collect;
mod config;
mod debug;
mod exit;
mod footprint;
mod plan;
mod plugin;
mod plugin_path;
mod progress;
mod protocol;
mod recorder;
mod report;
mod run;
mod scaffold;
mod shape;
mod stats;
mod threshold;
mod worker;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return cli::report_parse_error(error),
    };
    let outcome = match cli.command {
        Command::Run(args) => run::execute(args, cli.config.as_deref()),
        Command::Cluster(args) => cluster::execute(args, cli.config.as_deref()),
        Command::New(args) => scaffold::execute(args),
        Command::Plugins => plugin_path::execute(),
        Command::Worker(args) => worker::main(args),
        Command::Report(args) => report::execute(args),
    };
    match outcome {
        Ok(code) => code.into(),
        Err(failure) => {
            eprintln!("gorgon: {failure}");
            failure.exit_code().into()
        }
    }
}
