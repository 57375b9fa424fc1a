//! `gorgon`: multiply an operation across processes, threads and nodes.
//!
//! The modules form layers; each uses only its own layer and those below
//! (`architecture.rs` checks it, and that there is no import cycle):
//!
//! - values and statistics: [`exit`], [`units`], [`stats`], [`shape`]
//!   (processes × threads, rates, warm-ups), [`plan`] (the load plan and
//!   its worker shares), [`footprint`], [`checksum`], [`outcome`] (what a
//!   run produced), [`threshold`] (pass/fail gates);
//! - the parent-worker contract: [`protocol`] (frames and control lines),
//!   [`spec`] (what a worker is told);
//! - the worker side: [`worker`] runs a share of the calls, with
//!   [`recorder`] as the host side of the plugin's `Recorder`, [`plugin`]
//!   loading it (one safe lane type owns every call into it), [`fibers`]
//!   running several calls at once on one thread, and [`clock`] timing it;
//! - the parent side: [`config`] (gorgon.toml), [`collect`] (merging the
//!   workers' frames), [`cluster`] (SSH nodes), [`progress`];
//! - reports: [`report`];
//! - the debug run: [`debug`] (`run --debug`: the plugin's calls in this
//!   process, printed one by one, from plain values);
//! - the command line: [`cli`] (flags, turned into the plain values the
//!   layers below take), [`run`], [`scaffold`] (`gorgon new`).

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

#[cfg(test)]
mod architecture;
mod checksum;
mod cli;
mod clock;
mod cluster;
mod collect;
mod config;
mod debug;
mod exit;
mod fibers;
mod footprint;
mod limits;
mod metrics;
mod outcome;
mod plan;
mod plugin;
mod plugin_file;
mod plugin_path;
mod probe;
mod progress;
mod protocol;
mod recorder;
mod report;
mod run;
mod scaffold;
mod shape;
mod spec;
mod stats;
mod threshold;
mod units;
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
        Command::Run(args) => run::execute(*args, cli.config.as_deref()),
        Command::Cluster(args) => cluster::execute(args.command(), cli.config.as_deref()),
        Command::New(args) => scaffold::execute(&args.path),
        Command::Plugins => plugin_path::execute(),
        Command::Worker(args) => worker::main(&args.spec),
        Command::Probe(args) => probe::main(&args.plugin),
        Command::Report(args) => report::show(&args.file, args.output.destinations(None)),
        Command::Compare(args) => report::compare::execute(&args.request()),
    };
    match outcome {
        Ok(code) => code.into(),
        Err(failure) => {
            eprintln!("gorgon: {failure}");
            failure.exit_code().into()
        }
    }
}
