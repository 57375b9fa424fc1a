//! `gorgon run`: check the plugin, run each run of the suite, report.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::cli::RunArgs;
use crate::collect::{self, Link, LocalLink, RunResult, WorkerCommand};
use crate::config::Config;
use crate::debug;
use crate::exit::{self, Code, Failure};
use crate::plan::RunShape;
use crate::plugin::Plugin;
use crate::report::{load_model, table, Report};
use crate::shape::LoadPlan;
use crate::threshold;

/// Exit code after an interrupt, as shells report a SIGINT death.
const INTERRUPTED: u8 = 130;

pub fn execute(mut args: RunArgs, config: Option<&Path>) -> Result<Code, Failure> {
    let config = Config::load(config).map_err(Failure::usage)?;
    args.params = config.params_with(&args.params);
    if args.debug {
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
    let interrupted = interrupt_flag()?;
    let started_at = SystemTime::now();
    let started = Instant::now();
    let mut results: Vec<RunResult> = Vec::new();
    for shape in shapes {
        let links = spawn_local(&args, &plugin, shape, &load)?;
        let mut result = collect::run(shape, load.operations, links, &interrupted)?;
        result.load.rate = load.rate;
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
    let verdicts = threshold::evaluate(&thresholds, &results, &load.success);
    load_model::annotate(&mut report, &load, &results, verdicts);
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
    let failed: Vec<&str> = report
        .thresholds
        .iter()
        .filter(|t| !t.passed)
        .map(|t| t.expression.as_str())
        .collect();
    if !failed.is_empty() {
        eprintln!("gorgon: threshold failed: {}", failed.join(", "));
        return Ok(Code(exit::THRESHOLD_FAILED));
    }
    Ok(Code(exit::OK))
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
/// reports what they did, instead of dying with them.
fn interrupt_flag() -> Result<Arc<AtomicBool>, Failure> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, flag.clone())
            .map_err(|e| Failure::Run(anyhow::anyhow!("cannot handle signal {signal}: {e}")))?;
    }
    Ok(flag)
}
