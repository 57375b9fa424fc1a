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
use crate::plan::RunShape;
use crate::plugin::Plugin;
use crate::progress::{self, Progress};
use crate::report::output::Outputs;
use crate::report::snapshot::Snapshots;
use crate::report::{load_model, Report};
use crate::shape::LoadPlan;
use crate::threshold;

/// Exit code after an interrupt, as shells report a SIGINT death.
const INTERRUPTED: u8 = 130;

pub fn execute(mut args: RunArgs, config: Option<&Path>) -> Result<Code, Failure> {
    let config = Config::load(config).map_err(Failure::usage)?;
    args.params = config.params_with(&args.params);
    if args.debug {
        if args.nodes.is_cluster() {
            return Err(Failure::usage(
                "--debug runs here in one thread; leave out --cluster and --nodes",
            ));
        }
        if args.save.is_some()
            || args.output.svg.is_some()
            || args.output.html.is_some()
            || args.output.output != crate::cli::OutputFormat::Table
        {
            return Err(Failure::usage(
                "--debug prints each call as text: leave out --output, --save, --svg and --html",
            ));
        }
        if let Some(flag) = LoadPlan::given(&args.load).first() {
            return Err(Failure::usage(format!(
                "--debug makes its calls one by one in one thread, so {flag} does not apply: drop one of them"
            )));
        }
        args.operations = args.operations.or(config.defaults.operations);
        return debug::run(&args);
    }
    let load = LoadPlan::resolve(&args.load, args.operations, &config.defaults);
    let thresholds = if args.load.thresholds.is_empty() {
        config.thresholds.clone()
    } else {
        args.load.thresholds.clone()
    };
    // Refuse a bad plugin here, in one sentence, before starting workers
    // that would each refuse it.
    let plugin = Plugin::load(&args.plugin).map_err(Failure::usage)?.path;
    load.check().map_err(Failure::usage)?;
    let shapes = args.runs.clone().map(|suite| suite.0).unwrap_or_else(|| {
        vec![RunShape {
            processes: args.processes.or(config.defaults.processes).unwrap_or(1),
            threads: args.threads.or(config.defaults.threads).unwrap_or(1),
        }]
    });
    // Every output file is checked now, not after an hour of load.
    let outputs = Outputs::prepare(&args.output, args.save.as_deref())?;
    // Nodes are reached and checked before the first call; an
    // unreachable one stops the run here, naming it.
    let cluster = Cluster::prepare(&args.nodes, &config, &plugin)?;
    let interrupted = interrupt_flag()?;
    let started_at = SystemTime::now();
    let started = Instant::now();
    let mut progress = Progress::new(
        progress::Mode::detect(args.quiet),
        shapes.len(),
        load.success.clone(),
        load.fibers,
    );
    let mut snapshots = match (&args.save, args.snapshot_every) {
        (Some(path), Some(every)) => Some(Snapshots::new(
            path.clone(),
            every,
            args.plugin.clone(),
            args.params.clone(),
            started_at,
            started,
        )),
        _ => None,
    };
    let mut results: Vec<RunResult> = Vec::new();
    for shape in shapes {
        if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
            // Stopped between two runs of a suite: start no more.
            break;
        }
        let links = match &cluster {
            Some(cluster) => cluster.spawn(shape, &load, &args.params)?,
            None => spawn_local(&args, &plugin, shape, &load)?,
        };
        let mut observer = (&mut progress, &mut snapshots);
        let mut result = collect::run(shape, load.operations, links, &interrupted, &mut observer)?;
        result.load.rate = load.rate;
        result.load.fibers = load.fibers;
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
    report.interrupted |= interrupted.load(std::sync::atomic::Ordering::Relaxed);
    let verdicts = threshold::evaluate(&thresholds, &results, &load.success);
    load_model::annotate(&mut report, &load, &results, verdicts);
    if let Some(cluster) = &cluster {
        cluster.annotate(&mut report);
    }
    drop(cluster);
    // Files that cannot be written now (a disk filled during the run, say)
    // are told, but do not hide what the run itself came to.
    let undelivered = outputs.emit(&report).err();
    if let Some(failure) = &undelivered {
        eprintln!("gorgon: {failure}");
    }
    exit_code(&report, undelivered.is_some())
}

/// The exit code of a finished suite, most serious first: an interrupt,
/// a failed run (or a report that could not be written), a threshold.
fn exit_code(report: &Report, undelivered: bool) -> Result<Code, Failure> {
    if report.interrupted {
        eprintln!("gorgon: interrupted; the report covers the calls made until then");
        return Ok(Code(INTERRUPTED));
    }
    let failures: Vec<&str> = report.failures().collect();
    if !failures.is_empty() {
        eprintln!("gorgon: the run failed: {}", failures.join("; "));
        return Ok(Code(exit::RUN_FAILED));
    }
    let failed: Vec<&str> = report
        .thresholds
        .iter()
        .filter(|t| !t.passed)
        .map(|t| t.expression.as_str())
        .collect();
    if !failed.is_empty() {
        eprintln!("gorgon: threshold failed: {}", failed.join(", "));
    }
    Ok(Code(if undelivered {
        exit::RUN_FAILED
    } else if !failed.is_empty() {
        exit::THRESHOLD_FAILED
    } else {
        exit::OK
    }))
}

fn spawn_local(
    args: &RunArgs,
    plugin: &Path,
    shape: RunShape,
    load: &LoadPlan,
) -> Result<Vec<Box<dyn Link>>, Failure> {
    let command = WorkerCommand {
        plugin,
        threads: shape.threads,
        params: &args.params,
        load,
    };
    let shares = load.shares(shape.processes);
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
/// reports what they did, instead of dying with them. A second signal ends
/// gorgon at once (exit 130, no report), for an operation that does not
/// return; its workers then stop by themselves when their stdin closes.
fn interrupt_flag() -> Result<Arc<AtomicBool>, Failure> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let register = || -> std::io::Result<()> {
            // Registered first, so it sees the flag as it was before this
            // signal raised it.
            signal_hook::flag::register_conditional_shutdown(
                signal,
                i32::from(INTERRUPTED),
                flag.clone(),
            )?;
            signal_hook::flag::register(signal, flag.clone())?;
            Ok(())
        };
        register()
            .map_err(|e| Failure::Run(anyhow::anyhow!("cannot handle signal {signal}: {e}")))?;
    }
    Ok(flag)
}
