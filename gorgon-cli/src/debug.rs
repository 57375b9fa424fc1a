//! `gorgon run --debug`: the original Gorgon's test mode. One thread in
//! this process, every call printed, so a plugin can be checked (and
//! stepped through in a debugger) before it is multiplied.
//!
//! It takes plain values, as the rest of the run path does: the command
//! line checks `--debug`'s flags and resolves them once, so this module
//! knows no flag and sits below the command line.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::exit::{self, Code, Failure};
use crate::outcome::{RunResult, TimelinePoint};
use crate::plan::Param;
use crate::plugin::lane::{PluginLane, SetupFailed, SharedRecorder};
use crate::plugin::Plugin;
use crate::recorder::{Outcome, Params, ThreadRecorder};
use crate::report::{table, Report};
use crate::shape::RunShape;
use crate::stats::Stats;
use crate::units::duration;

/// Calls made in debug mode unless `-n` (or `defaults.operations`) says
/// otherwise.
pub const DEFAULT_CALLS: u64 = 10;

/// Loads `plugin` here and makes `calls` calls with `params` on this
/// thread, printing each, then the report's table.
pub fn run(plugin: &Path, params: &[Param], calls: u64) -> Result<Code, Failure> {
    let plugin = Plugin::load(plugin).map_err(Failure::usage)?;
    let recorder = SharedRecorder::new(ThreadRecorder::tracing(Arc::new(Params::new(params))));
    let mut lane = PluginLane::start(&plugin, &recorder, None).map_err(|failed| match failed {
        SetupFailed::BadInput(text) => Failure::usage(text),
        SetupFailed::Failed(text) => {
            Failure::Run(anyhow::anyhow!("the plugin's thread setup failed: {text}"))
        }
    })?;
    // Debug mode has no warm-up: every call's measurements are shown.
    lane.start_measuring();
    let started_at = std::time::SystemTime::now();
    let started = Instant::now();
    let mut out = std::io::stdout().lock();
    let mut made = 0;
    for number in 0..calls {
        let t0 = Instant::now();
        let mut returned = lane.call(number);
        let nanos = t0.elapsed().as_nanos() as u64;
        returned.record(nanos);
        let trace = returned.recorder().take_trace();
        made += 1;
        if print_call(&mut out, number, &returned.outcome(), nanos, &trace).is_err() {
            // Nobody reads any more (`gorgon run --debug … | head`): what
            // was asked for has been seen, so stop calling, quietly.
            break;
        }
    }
    lane.stop(|_| {});
    let elapsed = started.elapsed();
    let stats: Stats = recorder.into_inner().take_delta();
    let result = RunResult {
        shape: RunShape {
            processes: 1,
            threads: 1,
        },
        planned: Some(made),
        workers: vec!["debug (in process)".to_string()],
        stats,
        timeline: Vec::<TimelinePoint>::new(),
        elapsed,
        failures: Vec::new(),
        interrupted: false,
        load: Default::default(),
        nodes: Vec::new(),
        footprint: Default::default(),
    };
    let report = Report::new(&plugin.path, params, started_at, elapsed, &[result]);
    let _ = write!(out, "\n{}", table::render(&report)).and_then(|()| out.flush());
    Ok(Code(exit::OK))
}

fn print_call(
    out: &mut impl Write,
    number: u64,
    outcome: &Outcome<'_>,
    nanos: u64,
    trace: &[(String, u64)],
) -> std::io::Result<()> {
    let steps: Vec<String> = trace
        .iter()
        .map(|(name, ns)| format!("{name}< {}", duration(*ns)))
        .collect();
    let steps = if steps.is_empty() {
        String::new()
    } else {
        format!("  [{}]", steps.join(", "))
    };
    match outcome {
        Outcome::Label(_) => writeln!(
            out,
            "#{number:<6} {:<12} {:>10}{steps}",
            outcome.text(),
            duration(nanos)
        ),
        Outcome::Failed(_) => writeln!(
            out,
            "#{number:<6} {:<12} {:>10}{steps}  (failed)",
            outcome.text(),
            duration(nanos)
        ),
        Outcome::Panic(_) => writeln!(
            out,
            "#{number:<6} {:<12} {:>10}{steps}\n        panicked: {}",
            crate::stats::PANIC_LABEL,
            duration(nanos),
            outcome.text()
        ),
    }
}
