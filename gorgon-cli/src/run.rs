//! `gorgon run`: resolve the flags into a plan, run each run of the suite,
//! build the report, emit it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::cli::{OutputFormat, RunArgs};
use crate::cluster::{Cluster, Selection};
use crate::collect::{self, Interrupts, Link, LocalLink};
use crate::config::Config;
use crate::debug;
use crate::exit::{Code, Failure};
use crate::limits::{Demand, Limits};
use crate::metrics::{self, Metrics};
use crate::outcome::RunResult;
use crate::plan::{split_unbounded, LoadPlan, Param};
use crate::plugin_file;
use crate::probe;
use crate::progress::{self, Progress};
use crate::report::output::{Destinations, Input, Outputs};
use crate::report::snapshot::Snapshots;
use crate::report::verdict::{Verdict, INTERRUPTED};
use crate::report::{load_model, Report};
use crate::shape::RunShape;
use crate::spec::WorkerSpec;
use crate::threshold::{self, Threshold};

pub fn execute(mut args: RunArgs, config: Option<&Path>) -> Result<Code, Failure> {
    let config = Config::load(config).map_err(Failure::usage)?;
    args.params = config.params_with(&args.params);
    if args.debug {
        return run_debug(&args, &config);
    }
    let plan = RunPlan::resolve(&args, &config)?;
    let session = Session::open(&plan, &config)?;
    let results = run_suite(&plan, &session)?;
    let report = build_report(&plan, &session, &results);
    // The nodes' connections close before the report is written: a
    // finished run has no more use for them.
    drop(session.cluster);
    emit(&report, &session.outputs)
}

/// `gorgon run`'s flags and gorgon.toml as plain, checked values: what
/// the rest of the run reads. The suite is `shapes`, one run each.
struct RunPlan {
    /// The plugin as given, for the report.
    plugin: PathBuf,
    /// The plugin as loaded and checked, for the workers.
    loaded: PathBuf,
    params: Vec<Param>,
    shapes: Vec<RunShape>,
    load: LoadPlan,
    thresholds: Vec<Threshold>,
    destinations: Destinations,
    nodes: Selection,
    snapshot_every: Option<Duration>,
    quiet: bool,
    metrics: Option<SocketAddr>,
    metrics_linger: Option<Duration>,
}

impl RunPlan {
    fn resolve(args: &RunArgs, config: &Config) -> Result<RunPlan, Failure> {
        let load = args.load.resolve(args.operations, &config.defaults);
        let thresholds = if args.load.thresholds.is_empty() {
            config.thresholds.clone()
        } else {
            args.load.thresholds.clone()
        };
        // Refuse a bad plugin here, in one sentence, before starting workers
        // that would each refuse it. Its headers are read, not loaded: no
        // plugin code runs in the parent, whose stdout is the report's.
        let loaded = plugin_file::inspect(&args.plugin, plugin_file::this_machine())
            .map_err(Failure::usage)?
            .path;
        probe::check_loads(&loaded).map_err(Failure::usage)?;
        load.check().map_err(Failure::usage)?;
        // Parameters too large for a worker's command line are bad input.
        WorkerSpec::new(&loaded, 1, &args.params, &load, split_unbounded(1)[0])
            .arguments()
            .map_err(Failure::usage)?;
        let shapes = args.runs.clone().map(|suite| suite.0).unwrap_or_else(|| {
            vec![RunShape {
                processes: args.processes.or(config.defaults.processes).unwrap_or(1),
                threads: args.threads.or(config.defaults.threads).unwrap_or(1),
            }]
        });
        let nodes = args.nodes.selection();
        // Workers run on this machine in a local run, or with --local.
        if nodes.local || (!nodes.all && nodes.names.is_empty()) {
            check_limits(&shapes, load.fibers)?;
        }
        Ok(RunPlan {
            plugin: args.plugin.clone(),
            loaded,
            params: args.params.clone(),
            shapes,
            load,
            thresholds,
            destinations: args.output.destinations(args.save.as_deref()),
            nodes,
            snapshot_every: args.snapshot_every,
            quiet: args.quiet,
            metrics: args.metrics,
            metrics_linger: args.metrics_linger,
        })
    }
}

impl RunPlan {
    /// The files the run reads, which no output may overwrite: the plugin,
    /// the config file, and any file named by a parameter (a requests
    /// file, a CA certificate…).
    fn inputs(&self, config: &Config) -> Vec<Input> {
        let mut inputs = vec![("the plugin".to_string(), self.loaded.clone())];
        if let Some(path) = &config.path {
            inputs.push(("the config file".to_string(), path.clone()));
        }
        for param in &self.params {
            let path = PathBuf::from(&param.value);
            if !param.value.is_empty() && path.is_file() {
                inputs.push((format!("the file of --set {}", param.key), path));
            }
        }
        inputs
    }
}

/// Says when `--fibers` had no effect: a plugin that never waits through
/// `rec.wait` runs one call at a time per thread, whatever the fibers.
fn warn_of_idle_fibers(fibers: u32, result: &RunResult) {
    let calls = result.stats.all_calls().len();
    if fibers > 1 && calls > 0 && !result.load.waited_on_fiber && result.failures.is_empty() {
        eprintln!(
            "gorgon: warning: --fibers {fibers} had no effect: the plugin never waited through \
             rec.wait, so each thread ran one call at a time (use -t for more calls at once, or \
             see docs/fibers.md)"
        );
    }
}

/// Says when a run had more distinct labels or measurement names than a
/// run keeps, and how many calls the extra ones hold.
fn warn_of_folded_names(result: &RunResult) {
    use crate::stats::{MAX_NAMES, OTHER_LABELS, OTHER_MEASUREMENTS};
    let stats = &result.stats;
    if let Some(other) = stats.results.get(OTHER_LABELS) {
        eprintln!(
            "gorgon: warning: the plugin returned more than {MAX_NAMES} distinct result labels; \
             {} calls with the others are counted under {OTHER_LABELS} (put ids in a \
             measurement or a debug print, not in the label)",
            other.len()
        );
    }
    if let Some(other) = stats.measurements.get(OTHER_MEASUREMENTS) {
        eprintln!(
            "gorgon: warning: the plugin recorded more than {MAX_NAMES} distinct measurement \
             names; {} measurements with the others are counted under {OTHER_MEASUREMENTS}",
            other.len()
        );
    }
}

/// Refuses, before anything starts, a suite whose largest run this machine
/// cannot hold (processes, threads, fiber stacks, memory), naming the limit.
fn check_limits(shapes: &[RunShape], fibers: u32) -> Result<(), Failure> {
    let machine = Limits::of_this_machine();
    for shape in shapes {
        machine
            .check(Demand {
                processes: u64::from(shape.processes),
                threads: u64::from(shape.threads),
                fibers: u64::from(fibers),
            })
            .map_err(Failure::usage)?;
    }
    Ok(())
}

/// What a suite runs with: its destinations checked, its nodes reached,
/// the interrupt flag raised by a signal, and when it started.
struct Session {
    outputs: Outputs,
    cluster: Option<Cluster>,
    interrupted: Arc<Interrupts>,
    started_at: SystemTime,
    started: Instant,
}

impl Session {
    fn open(plan: &RunPlan, config: &Config) -> Result<Session, Failure> {
        // Every output file is checked now, not after an hour of load.
        // The total time is the whole wall time, reaching the nodes too.
        let (started_at, started) = (SystemTime::now(), Instant::now());
        let outputs = Outputs::prepare(plan.destinations.clone(), &plan.inputs(config))?;
        // Nodes are reached and checked before the first call; an
        // unreachable one stops the run here, naming it.
        let processes = plan.shapes.iter().map(|s| s.processes).max().unwrap_or(1);
        let cluster = Cluster::prepare(&plan.nodes, config, &plan.loaded, processes)?;
        Ok(Session {
            outputs,
            cluster,
            interrupted: interrupt_flag()?,
            started_at,
            started,
        })
    }

    fn interrupted(&self) -> bool {
        self.interrupted.any()
    }

    /// Starts one run's workers, on the nodes or here.
    fn spawn(&self, plan: &RunPlan, shape: RunShape) -> Result<Vec<Box<dyn Link>>, Failure> {
        match &self.cluster {
            Some(cluster) => cluster.spawn(shape, &plan.load, &plan.params),
            None => spawn_local(plan, shape),
        }
    }
}

/// Runs the suite's runs in order, watched by the progress display, the
/// snapshot writer and the metrics endpoint; stops after an interrupt or a
/// failed run.
fn run_suite(plan: &RunPlan, session: &Session) -> Result<Vec<RunResult>, Failure> {
    let mut metrics = serve_metrics(plan)?;
    let mut progress = Progress::new(
        progress::Mode::detect(plan.quiet),
        plan.shapes.len(),
        plan.load.success.clone(),
        plan.load.fibers,
        plan.load.end_by(),
    );
    let mut snapshots = match (&plan.destinations.save, plan.snapshot_every) {
        (Some(path), Some(every)) => Some(Snapshots::new(
            path.clone(),
            every,
            plan.plugin.clone(),
            plan.params.clone(),
            session.started_at,
            session.started,
        )),
        _ => None,
    };
    let mut results: Vec<RunResult> = Vec::new();
    for &shape in &plan.shapes {
        if session.interrupted() {
            // Stopped between two runs of a suite: start no more.
            break;
        }
        let links = session.spawn(plan, shape)?;
        let mut observer = ((&mut progress, &mut snapshots), &mut metrics);
        let planned = plan.load.operations;
        let bounds = collect::Bounds {
            end_by: plan.load.end_by(),
            grace: plan.load.grace,
            silence: collect::SILENCE,
            call_timeout: Some(plan.load.call_timeout),
            window: plan.load.duration,
        };
        let mut result = collect::run(
            shape,
            planned,
            links,
            bounds,
            &session.interrupted,
            &mut observer,
        )?;
        result.load.rate = plan.load.rate;
        result.load.fibers = plan.load.fibers;
        if let Some(cluster) = &session.cluster {
            cluster.annotate(&mut result);
        }
        warn_of_folded_names(&result);
        warn_of_idle_fibers(plan.load.fibers, &result);
        let stop = result.interrupted || !result.failures.is_empty();
        results.push(result);
        if stop {
            break;
        }
    }
    if let Some(metrics) = metrics {
        metrics.close(plan.metrics_linger, || session.interrupted());
    }
    Ok(results)
}

/// `--metrics`: listens before the first run (a port in use is bad input)
/// and says where, unless quiet.
fn serve_metrics(plan: &RunPlan) -> Result<Option<Metrics>, Failure> {
    let Some(address) = plan.metrics else {
        return Ok(None);
    };
    let suite = metrics::Suite {
        plugin: plan.plugin.display().to_string(),
        runs: plan.shapes.len(),
        fibers: plan.load.fibers,
    };
    let metrics =
        Metrics::serve(address, suite, plan.load.success.clone()).map_err(Failure::usage)?;
    if !plan.quiet {
        eprintln!("gorgon: metrics at http://{}/metrics", metrics.address());
    }
    Ok(Some(metrics))
}

/// The report of the suite, with its load model, thresholds and nodes.
fn build_report(plan: &RunPlan, session: &Session, results: &[RunResult]) -> Report {
    let mut report = Report::new(
        &plan.plugin,
        &plan.params,
        session.started_at,
        session.started.elapsed(),
        results,
    );
    report.interrupted |= session.interrupted();
    let verdicts = threshold::evaluate(&plan.thresholds, results, &plan.load.success);
    load_model::annotate(&mut report, &plan.load, results, verdicts);
    if let Some(cluster) = &session.cluster {
        report.skipped_nodes = cluster.skipped().to_vec();
    }
    report.command_line = Some(command_line());
    report.verdict = Some(Verdict::of(&report));
    report
}

/// This process's command line, quoted for a POSIX shell where needed, so
/// the report says how to run the suite again.
fn command_line() -> String {
    let quote = |arg: String| {
        let plain = !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
        if plain {
            arg
        } else {
            format!("'{}'", arg.replace('\'', r"'\''"))
        }
    };
    let mut args = std::env::args();
    // The program as `gorgon`, whatever path started it.
    let program = args.next().map(|_| "gorgon".to_string());
    program
        .into_iter()
        .chain(args.map(quote))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sends the report where it was asked and tells the exit code. Files
/// that cannot be written now (a disk filled during the run, say) are
/// told, but do not hide what the run itself came to.
fn emit(report: &Report, outputs: &Outputs) -> Result<Code, Failure> {
    let undelivered = outputs
        .emit(report)
        .err()
        .map(|failure| failure.to_string());
    exit_code(report, undelivered)
}

/// `--debug`: the flags that only make sense for a real run are refused,
/// then the plugin runs here, call by call, with the plain values they
/// come to.
fn run_debug(args: &RunArgs, config: &Config) -> Result<Code, Failure> {
    if args.nodes.is_cluster() {
        return Err(Failure::usage(
            "--debug runs here in one thread; leave out --cluster and --nodes",
        ));
    }
    if args.save.is_some()
        || args.output.svg.is_some()
        || args.output.html.is_some()
        || args.output.output != OutputFormat::Table
    {
        return Err(Failure::usage(
            "--debug prints each call as text: leave out --output, --save, --svg and --html",
        ));
    }
    if let Some(flag) = args.load.given().first() {
        return Err(Failure::usage(format!(
            "--debug makes its calls one by one in one thread, so {flag} does not apply: drop one of them"
        )));
    }
    let calls = args
        .operations
        .or(config.defaults.operations)
        .unwrap_or(debug::DEFAULT_CALLS);
    debug::run(&args.plugin, &args.params, calls)
}

/// The exit code of a finished suite: its verdict's (see
/// [`Verdict::of`]), told on stderr with its reasons. A report that
/// could not be written makes a finished suite a failed run.
fn exit_code(report: &Report, undelivered: Option<String>) -> Result<Code, Failure> {
    let mut verdict = report.verdict();
    if let Some(why) = undelivered {
        verdict = verdict.undelivered(why);
    }
    for reason in &verdict.reasons {
        eprintln!("gorgon: {reason}");
    }
    Ok(Code(verdict.exit_code()))
}

/// Starts `shape.processes` workers here, each with its own share.
fn spawn_local(plan: &RunPlan, shape: RunShape) -> Result<Vec<Box<dyn Link>>, Failure> {
    let shares = plan.load.shares(shape.processes);
    let count = shares.len();
    shares
        .into_iter()
        .enumerate()
        .map(|(i, share)| {
            let name = format!("worker {} of {count}", i + 1);
            let spec =
                WorkerSpec::new(&plan.loaded, shape.threads, &plan.params, &plan.load, share);
            LocalLink::spawn(name, &spec)
                .map(|link| Box::new(link) as Box<dyn Link>)
                .map_err(Failure::Run)
        })
        .collect()
}

/// Counts SIGINT and SIGTERM: the collector stops the run gracefully on
/// the first and kills every worker on the second, printing what was
/// gathered either way. A third, for a parent stuck somewhere that does
/// not look at the count (connecting to a node), ends gorgon at once.
fn interrupt_flag() -> Result<Arc<Interrupts>, Failure> {
    let interrupts = Arc::new(Interrupts::default());
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let counted = interrupts.clone();
        let handler = move || {
            counted.raise();
            if counted.count() >= 3 {
                // SAFETY: `_exit` is async-signal-safe; workers end by
                // their parent-death signal or the end of their stdin.
                unsafe { nix::libc::_exit(i32::from(INTERRUPTED)) };
            }
        };
        // SAFETY: the handler only does an atomic add and load and may call
        // `_exit`, all async-signal-safe; it allocates and locks nothing.
        unsafe { signal_hook::low_level::register(signal, handler) }
            .map_err(|e| Failure::Run(anyhow::anyhow!("cannot handle signal {signal}: {e}")))?;
    }
    Ok(interrupts)
}
