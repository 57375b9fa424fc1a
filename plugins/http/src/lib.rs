#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
//! `gorgon-http`: replays HTTP requests from a file, so a load test of an
//! HTTP API needs no code at all.
//!
//! ```sh
//! gorgon run --plugin target/release/libgorgon_http.so --set requests=flow.http -n 10000 -p 2 -t 16
//! ```
//!
//! The file is a request file in the dialect of the editors' REST clients
//! (VS Code REST Client, the JetBrains HTTP Client, httpyac; see
//! [`textfile`]) or a HAR file exported by a browser ([`har`]). Each call
//! of the operation sends the requests in order, filling in `{{variables}}`:
//! values known at load ([`vars`]), system variables made per call
//! ([`system`]) and values captured from earlier responses of the same
//! call. Everything the plugin does not understand is refused when the
//! file is loaded ([`plan`]), never sent. Each request is a measurement,
//! and the call's result label is the last status code, or the first
//! failure: a short error kind (`connect refused`, `timeout`, …) or a
//! status of 400 and above; a failure ends the call when later requests
//! use what it captures. On fibers (`--fibers N`) the sockets are
//! non-blocking and wait through the recorder, so one thread keeps a
//! request in flight per fiber ([`client`]). docs/http-plugin.md is the
//! user's reference.
//!
//! Parameters (`--set key=value`):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `requests` | (required) | the file of requests |
//! | `timeout_ms` | 10000 | deadline for a request's whole exchange (connect, write, the complete response) |
//! | `connect_at_start` | `true` | connect to every server in each thread's setup and refuse to start if one is unreachable; `false` counts failed connections as results |
//! | `batch_scheduling` | `true` | run the threads under `SCHED_BATCH` (see [`scheduling`]) |
//! | `env` | | the environment of `http-client.env.json` and its kin |
//! | `measure` | `requests` up to 100 requests, else `hosts` | what the measurement lines are |
//! | `base_url`, `host_map`, `hosts`, `urls`, `skip_static` | | where a HAR recording goes, and which of its requests |
//! | `tls_ca` | | a PEM file of CA certificates that https servers may be signed by, besides the system's (see [`tls`]) |
//! | `tls_verify` | `true` | `false` accepts any certificate from an https server |
//! | any other | | a `{{name}}` variable of the file, over any other definition |

mod capture;
mod client;
mod handler;
mod har;
mod http1;
mod plan;
mod scheduling;
mod system;
mod template;
mod textfile;
mod tls;
mod url;
mod vars;

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use gorgon_plugin_api::{export, Recorder, SetupError};

use crate::client::{Client, Reply};
use crate::plan::{Options, Plan};

/// One lane's state (a worker thread, or one fiber of it with
/// `--fibers`): the shared plan, its own connections, and the variables
/// captured during the current call.
pub struct Session {
    plan: Arc<Plan>,
    client: Client,
    vars: Vec<String>,
}

/// A call's result label.
pub enum Label {
    Status(u16),
    Error(client::ErrorKind),
    /// A capture found nothing in a successful response.
    Missing(Arc<str>),
    /// A captured value with a line break, which would have split the
    /// request head it goes into.
    LineBreak(Arc<str>),
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Status(status) => write!(f, "{status}"),
            Label::Error(kind) => kind.fmt(f),
            Label::Missing(name) => write!(f, "missing {name}"),
            Label::LineBreak(name) => write!(f, "line break in {name}"),
        }
    }
}

fn setup(rec: &Recorder) -> Result<Session, SetupError> {
    let plan = shared_plan(rec)?;
    let tls = tls::shared_config(rec, &plan)?;
    let mut client = Client::new(&plan, tls);
    if plan.options.connect_at_start {
        client.connect_all(&plan).map_err(SetupError::failed)?;
    }
    if plan.options.batch_scheduling {
        scheduling::batch_this_thread();
    }
    Ok(Session {
        vars: vec![String::new(); plan.var_names.len()],
        client,
        plan,
    })
}

/// The plan is read once per worker process; its threads share it.
fn shared_plan(rec: &Recorder) -> Result<Arc<Plan>, SetupError> {
    static PLAN: OnceLock<Result<Arc<Plan>, SetupError>> = OnceLock::new();
    PLAN.get_or_init(|| load(rec).map(Arc::new)).clone()
}

fn load(rec: &Recorder) -> Result<Plan, SetupError> {
    let file = rec.param("requests").ok_or_else(|| {
        SetupError::bad_input(
            "say which requests to send with --set requests=FILE (a text file of requests or a \
             HAR file; see docs/http-plugin.md)",
        )
    })?;
    let text = std::fs::read_to_string(file)
        .map_err(|e| SetupError::bad_input(format!("cannot read the requests file {file}: {e}")))?;
    let param = |key: &str| rec.param(key).map(str::to_string);
    let raw = if text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('{')
    {
        har::parse(file, &text, &param)
    } else {
        textfile::parse(file, &text)
    }
    .map_err(SetupError::bad_input)?;
    let options = Options {
        timeout: Duration::from_millis(number_param(rec, "timeout_ms", 10_000)?),
        connect_at_start: bool_param(rec, "connect_at_start", true)?,
        batch_scheduling: bool_param(rec, "batch_scheduling", true)?,
    };
    plan::compile(file, raw, &param, options).map_err(SetupError::bad_input)
}

fn number_param(rec: &Recorder, key: &str, default: u64) -> Result<u64, SetupError> {
    match rec.param(key) {
        None => Ok(default),
        Some(text) => text.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            SetupError::bad_input(format!("{key} must be a positive number, not {text:?}"))
        }),
    }
}

fn bool_param(rec: &Recorder, key: &str, default: bool) -> Result<bool, SetupError> {
    match rec.param(key).map(|t| t.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(text) => match text.as_str() {
            "true" | "yes" | "1" | "on" => Ok(true),
            "false" | "no" | "0" | "off" => Ok(false),
            _ => Err(SetupError::bad_input(format!(
                "{key} must be true or false, not {text:?}"
            ))),
        },
    }
}

/// Sends the plan's requests in order. A request that fails (an error,
/// a status of 400 or more, a capture that finds nothing) ends the call
/// when later requests use a value it captures; otherwise the call goes
/// on, and its label is the first failure.
/// One call: the file's requests in order. A status of 400 or more, a
/// transport error (refused, reset, timeout, TLS) or a capture that found
/// nothing is a failed call (`Err`), counted as an error by gorgon whatever
/// the label; `--ok` still decides when the user gives it.
fn operation(number: u64, rec: &mut Recorder, session: &mut Session) -> Result<Label, Label> {
    let Session { plan, client, vars } = session;
    let mut label = Label::Status(0);
    let mut failed = None;
    // Each call is a new visitor: no cookies yet.
    for slot in &plan.cookie_jars {
        vars[*slot].clear();
    }
    for request in &plan.requests {
        if let Some(slot) = request
            .head_slots
            .iter()
            .find(|slot| vars[**slot].contains(['\r', '\n']))
        {
            return Err(Label::LineBreak(plan.var_names[*slot].clone()));
        }
        let result = if request.measured {
            let started = Instant::now();
            let result = client.exchange(rec, plan, request, number, vars);
            rec.record(&request.name, started.elapsed());
            result
        } else {
            client.exchange(rec, plan, request, number, vars)
        };
        let failure = match result {
            Ok(Reply {
                status,
                missing: Some(slot),
            }) if status < 400 => Label::Missing(plan.var_names[slot].clone()),
            Ok(Reply { status, .. }) if status < 400 => {
                label = Label::Status(status);
                continue;
            }
            Ok(Reply { status, .. }) => Label::Status(status),
            Err(kind) => Label::Error(kind),
        };
        if request.ends_call_on_failure {
            return Err(failed.unwrap_or(failure));
        }
        failed.get_or_insert(failure);
    }
    match failed {
        Some(failure) => Err(failure),
        None => Ok(label),
    }
}

export!(operation, setup = setup);
