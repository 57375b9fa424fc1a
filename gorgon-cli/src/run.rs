//! `gorgon run`: check the plugin, run each run of the suite, report.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::cli::RunArgs;
use crate::cluster::Cluster;
use crate::collect::{self, Link, LocalLink, RunResult, WorkerCommand};
use crate::config::Config;
use crate::debug;
use crate::exit::{self, Code, Failure};
use crate::plan::{self, RunShape};
use crate::plugin::Plugin;
use crate::report::{table, Report};

/// Exit code after an interrupt, as shells report a SIGINT death.
const INTERRUPTED: u8 = 130;

pub fn execute(mut args: RunArgs, config: Option<&Path>) -> Result<Code, Failure> {
    let config = Config::load(config).map_err(Failure::usage)?;
    args.params = config.params_with(&args.params);
    args.operations = args.operations.or(config.defaults.operations);
    if args.debug {
        if args.nodes.is_cluster() {
            return Err(Failure::usage(
                "--debug runs here in one thread; leave out --cluster and --nodes",
            ));
        }
        return debug::run(&args);
    }
    // Refuse a bad plugin here, in one sentence, before starting workers
    // that would each refuse it.
    let plugin = Plugin::load(&args.plugin).map_err(Failure::usage)?.path;
    let operations = args.operations.ok_or_else(|| {
        Failure::usage(
            "say how many operations to run with -n/--operations \
             (or defaults.operations in gorgon.toml)",
        )
    })?;
    let shapes = args.runs.clone().map(|suite| suite.0).unwrap_or_else(|| {
        vec![RunShape {
            processes: args.processes.or(config.defaults.processes).unwrap_or(1),
            threads: args.threads.or(config.defaults.threads).unwrap_or(1),
        }]
    });
    // Nodes are reached and checked before the first call; an
    // unreachable one stops the run here, naming it.
    let cluster = Cluster::prepare(&args.nodes, &config, &plugin)?;
    let interrupted = interrupt_flag()?;
    let started_at = SystemTime::now();
    let started = Instant::now();
    let mut results: Vec<RunResult> = Vec::new();
    for shape in shapes {
        let links = match &cluster {
            Some(cluster) => cluster.spawn(shape, operations, &args.params)?,
            None => spawn_local(&args, &plugin, shape, operations)?,
        };
        let mut result = collect::run(shape, Some(operations), links, &interrupted)?;
        if let Some(cluster) = &cluster {
            cluster.explain_losses(&mut result);
        }
        let stop = result.interrupted || !result.failures.is_empty();
        results.push(result);
        if stop {
            break;
        }
    }
    let mut report = Report::new(
        &args.plugin,
        &args.params,
        started_at,
        started.elapsed(),
        &results,
    );
    if let Some(cluster) = &cluster {
        cluster.annotate(&mut report);
    }
    drop(cluster);
    print!("{}", table::render(&report));
    if report.interrupted {
        eprintln!("gorgon: interrupted; the report covers the calls made until then");
        return Ok(Code(INTERRUPTED));
    }
    let failures: Vec<&str> = report.failures().collect();
    if !failures.is_empty() {
        eprintln!("gorgon: the run failed: {}", failures.join("; "));
        return Ok(Code(exit::RUN_FAILED));
    }
    Ok(Code(exit::OK))
}

fn spawn_local(
    args: &RunArgs,
    plugin: &Path,
    shape: RunShape,
    operations: u64,
) -> Result<Vec<Box<dyn Link>>, Failure> {
    let command = WorkerCommand {
        plugin,
        threads: shape.threads,
        params: &args.params,
    };
    let shares = plan::split(operations, shape.processes);
    let count = shares.len();
    shares
        .into_iter()
        .enumerate()
        .map(|(i, share)| {
            let name = format!("worker {} of {count}", i + 1);
            LocalLink::spawn(name, &command, share)
                .map(|link| Box::new(link) as Box<dyn Link>)
                .map_err(Failure::Run)
        })
        .collect()
}

/// A flag raised by SIGINT or SIGTERM: the run stops its workers and
/// reports what they did, instead of dying with them.
fn interrupt_flag() -> Result<Arc<AtomicBool>, Failure> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, flag.clone())
            .map_err(|e| Failure::Run(anyhow::anyhow!("cannot handle signal {signal}: {e}")))?;
    }
    Ok(flag)
}
