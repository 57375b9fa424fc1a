//! A run over nodes: before the first call every node is reached and
//! checked (gorgon there, same version, the plugin's architecture), the
//! plugin is uploaded where it is missing, and then each run of the suite
//! starts `processes` workers on every node.
//!
//! Numbers stay unique across the cluster because every worker process on
//! every node gets its own slot of [`crate::plan::split`]: with `K` nodes of `P`
//! processes there are `K × P` slots, and slot `s` runs `s, s + KP, …`.
//!
//! Remote commands per run, per node: one probe, one upload the first time
//! a plugin's content is seen there, and one per worker process. Each node
//! goes from login to upload on its own: a slow node holds up no other.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::anyhow;

use super::arch;
use super::node::{self, Node};
use super::open_files;
use super::remote_link::{OnNode, RemoteLink};
use super::ssh::{Connection, Connector, Facts, Ssh, SshOptions, UploadKind, PLUGIN_DIR};
use super::Selection;
use crate::checksum;
use crate::collect::{Link, LocalLink};
use crate::config::Config;
use crate::exit::Failure;
use crate::outcome::RunResult;
use crate::plan::{LoadPlan, Param};
use crate::shape::RunShape;
use crate::spec::WorkerSpec;

/// What this machine is called among the nodes with `--local`.
pub const LOCAL: &str = "local";

/// The nodes of a run, connected and checked, with the plugin in place.
pub struct Cluster {
    ssh: Ssh,
    nodes: Vec<ReadyNode>,
    local: bool,
    /// The plugin here (for `--local`) and its checksum.
    plugin: PathBuf,
    sha256: String,
    /// One sentence per node left out by `--skip-unreachable`.
    skipped: Vec<String>,
    /// The current run's start of its workers, and when each worker said
    /// it was ready, for the per-node "ready" phase.
    starts: Mutex<WorkerStarts>,
}

struct ReadyNode {
    connection: Connection,
    facts: Facts,
    /// How long uploading the plugin took, when it was not there.
    upload: Option<Duration>,
}

impl ReadyNode {
    fn name(&self) -> &str {
        self.connection.node.name.as_str()
    }
}

#[derive(Default)]
struct WorkerStarts {
    at: Option<Instant>,
    /// Each worker's node and the moment its `ready` arrived.
    ready: Vec<(String, Arc<OnceLock<Instant>>)>,
}

/// How one node's preparation ended.
enum Prepared {
    Ready(Box<ReadyNode>),
    /// Not reached, or hung or failed while probed or uploaded to: left
    /// out with `--skip-unreachable`.
    Unreachable(String),
    /// Reached, but cannot run this plugin: always stops the run.
    NotReady(String),
}

impl Cluster {
    /// Reaches and checks the selected nodes; `None` for a local run.
    /// An unreachable node stops the run unless `--skip-unreachable`.
    /// `processes` is the most worker processes a run of the suite
    /// starts per node.
    pub fn prepare(
        selection: &Selection,
        config: &Config,
        plugin: &Path,
        processes: u32,
    ) -> Result<Option<Cluster>, Failure> {
        if !selection.is_cluster() {
            if selection.local || selection.skip_unreachable {
                return Err(Failure::usage(
                    "--local and --skip-unreachable go with --cluster or --nodes",
                ));
            }
            return Ok(None);
        }
        let names = if selection.all {
            &[][..]
        } else {
            &selection.names[..]
        };
        let nodes = node::select(config, names)?;
        open_files::ensure(nodes.len(), processes, selection.local)?;
        let sha256 = checksum::sha256_file(plugin).map_err(|e| {
            Failure::usage(format!("cannot read the plugin {}: {e}", plugin.display()))
        })?;
        let options = SshOptions::from_config(config, selection.accept_new_host_keys);
        let ssh = Ssh::new(options).map_err(Failure::Run)?;
        let mut cluster = Cluster {
            ssh,
            nodes: Vec::new(),
            local: selection.local,
            plugin: plugin.to_path_buf(),
            sha256,
            skipped: Vec::new(),
            starts: Mutex::default(),
        };
        cluster.prepare_nodes(&nodes, selection.skip_unreachable)?;
        if cluster.nodes.is_empty() && !cluster.local {
            return Err(Failure::Run(anyhow!(
                "no node can be reached: {}",
                cluster.skipped.join("; ")
            )));
        }
        Ok(Some(cluster))
    }

    /// Takes every node through login, probe and upload, each at its own
    /// pace and each step with its own deadline; keeps the nodes ready to
    /// run the plugin.
    fn prepare_nodes(&mut self, nodes: &[Node], skip: bool) -> Result<(), Failure> {
        let plugin_arch = arch::of_elf(&self.plugin);
        let (plugin, sha256) = (self.plugin.clone(), self.sha256.clone());
        let outcomes = self.ssh.for_each_node(nodes, move |connector| {
            let (plugin, sha256) = (plugin.clone(), sha256.clone());
            async move { prepare_node(connector, plugin, sha256, plugin_arch).await }
        });
        let mut unreachable = Vec::new();
        let mut problems = Vec::new();
        for outcome in outcomes {
            match outcome {
                Prepared::Ready(node) => {
                    if node.upload.is_some() {
                        eprintln!(
                            "gorgon: node {}: uploaded the plugin to ~/{PLUGIN_DIR}/{}.so",
                            node.name(),
                            self.sha256
                        );
                    }
                    self.nodes.push(*node);
                }
                Prepared::Unreachable(reason) => unreachable.push(reason),
                Prepared::NotReady(problem) => problems.push(problem),
            }
        }
        self.skip_or_stop(unreachable, skip)?;
        if !problems.is_empty() {
            return Err(Failure::Run(anyhow!("{}", problems.join("; "))));
        }
        Ok(())
    }

    /// With `--skip-unreachable`, notes the unreachable nodes and goes on
    /// with the others; without, stops the run naming them.
    fn skip_or_stop(&mut self, unreachable: Vec<String>, skip: bool) -> Result<(), Failure> {
        if unreachable.is_empty() {
            return Ok(());
        }
        if !skip {
            return Err(Failure::Run(anyhow!(
                "{}; the run did not start (--skip-unreachable runs without the nodes \
                 that cannot be reached)",
                unreachable.join("; ")
            )));
        }
        for reason in &unreachable {
            eprintln!("gorgon: skipping {reason}");
        }
        self.skipped.extend(unreachable);
        Ok(())
    }

    /// Starts one run's workers: `shape.processes` on every node, each
    /// with its own slot of the numbers.
    pub fn spawn(
        &self,
        shape: RunShape,
        load: &LoadPlan,
        params: &[Param],
    ) -> Result<Vec<Box<dyn Link>>, Failure> {
        let per_node = shape.processes as usize;
        let node_count = self.nodes.len() + usize::from(self.local);
        let slots = u32::try_from(node_count * per_node).map_err(|_| {
            Failure::usage(format!(
                "{node_count} nodes × {per_node} processes is too many worker processes"
            ))
        })?;
        let shares = load.shares(slots);
        let handle = self.ssh.handle();
        let mut starts = self.starts.lock().unwrap_or_else(|e| e.into_inner());
        *starts = WorkerStarts {
            at: Some(Instant::now()),
            ready: Vec::new(),
        };
        let mut ready_clock = |node: &str| {
            let clock = Arc::new(OnceLock::new());
            starts.ready.push((node.to_string(), clock.clone()));
            clock
        };
        let mut pending = Vec::new();
        for (k, node) in self.nodes.iter().enumerate() {
            let remote_plugin = node.facts.plugin_path(&self.sha256);
            for (j, share) in shares[k * per_node..(k + 1) * per_node].iter().enumerate() {
                let plugin = Path::new(&remote_plugin);
                let args = WorkerSpec::new(plugin, shape.threads, params, load, *share)
                    .checked_against(&self.sha256)
                    .arguments()
                    .map_err(Failure::Run)?;
                let name = format!("worker {} of {per_node} on node {}", j + 1, node.name());
                let (session, handle2) = (node.connection.session.clone(), handle.clone());
                let (node_name, program) =
                    (node.name().to_string(), node.facts.gorgon_path.clone());
                let ready = ready_clock(node.name());
                pending.push(handle.spawn(async move {
                    RemoteLink::spawn(session, handle2, name, &program, &args)
                        .await
                        .map(|link| OnNode {
                            link: Box::new(link),
                            node: node_name,
                            ready,
                        })
                }));
            }
        }
        let mut links: Vec<Box<dyn Link>> = Vec::new();
        let mut failed = Vec::new();
        for started in self.ssh.block_on(async {
            let mut all = Vec::new();
            for task in pending {
                all.push(task.await);
            }
            all
        }) {
            match started {
                Ok(Ok(link)) => links.push(Box::new(link)),
                Ok(Err(error)) => failed.push(format!("{error:#}")),
                Err(error) => failed.push(format!("a worker could not be started: {error}")),
            }
        }
        if self.local {
            let offset = self.nodes.len() * per_node;
            for (j, share) in shares[offset..offset + per_node].iter().enumerate() {
                let name = format!("worker {} of {per_node} on node {LOCAL}", j + 1);
                let spec = WorkerSpec::new(&self.plugin, shape.threads, params, load, *share);
                match LocalLink::spawn(name, &spec) {
                    Ok(link) => links.push(Box::new(OnNode {
                        link: Box::new(link),
                        node: LOCAL.to_string(),
                        ready: ready_clock(LOCAL),
                    })),
                    Err(error) => failed.push(format!("{error:#}")),
                }
            }
        }
        if !failed.is_empty() {
            // Dropping the started links closes their input: they stop.
            return Err(Failure::Run(anyhow!("{}", failed.join("; "))));
        }
        Ok(links)
    }

    /// Adds what the cluster knows to a run's result: each node's phase
    /// times, and one sentence per node lost mid-run.
    pub fn annotate(&self, result: &mut RunResult) {
        self.record_phases(result);
        self.explain_losses(result);
    }

    /// Each node's login, probe, upload and workers-ready times.
    fn record_phases(&self, result: &mut RunResult) {
        let starts = self.starts.lock().unwrap_or_else(|e| e.into_inner());
        for node in &mut result.nodes {
            if let Some(ready) = self.nodes.iter().find(|n| n.name() == node.name) {
                node.phases.connect = Some(ready.connection.login);
                node.phases.probe = Some(ready.facts.round_trip);
                node.phases.upload = ready.upload;
            }
            // Its slowest worker; unknown unless every one said `ready`.
            let mut last = starts.at;
            for (_, clock) in starts.ready.iter().filter(|(n, _)| *n == node.name) {
                last = match clock.get() {
                    Some(at) => last.map(|l| l.max(*at)),
                    None => None,
                };
            }
            node.phases.ready = starts
                .at
                .zip(last)
                .map(|(from, to)| to.saturating_duration_since(from));
        }
    }

    /// Names a node lost mid-run once, instead of once per worker, and
    /// keeps what its workers sent before.
    fn explain_losses(&self, result: &mut RunResult) {
        for ready in &self.nodes {
            let Some(node) = result.nodes.iter_mut().find(|n| n.name == ready.name()) else {
                continue;
            };
            if node.failures.is_empty() || self.ssh.is_alive(&ready.connection) {
                continue;
            }
            let sentence = format!(
                "node {} ({}) was lost mid-run: its SSH connection closed; the calls it \
                 reported until then are counted",
                ready.name(),
                ready.connection.node.address(),
            );
            let own = std::mem::take(&mut node.failures);
            result.failures.retain(|f| !own.contains(f));
            result.failures.push(sentence.clone());
            node.failures.push(sentence);
        }
    }

    /// One sentence per node left out by `--skip-unreachable`, for the
    /// report.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }
}

/// One node's way to readiness: login, probe, check, and the plugin's
/// upload where it is missing, each with its own deadline. A node that
/// fails a step is closed at once.
async fn prepare_node(
    connector: Connector,
    plugin: PathBuf,
    sha256: String,
    plugin_arch: Option<&'static str>,
) -> Prepared {
    let connection = match connector.connect().await {
        Ok(connection) => connection,
        Err(reason) => return Prepared::Unreachable(reason),
    };
    let facts = match connection.probe(Some(&sha256), false).await {
        Ok(facts) => facts,
        Err(error) => {
            connection.close().await;
            return Prepared::Unreachable(format!("{error:#}"));
        }
    };
    if let Err(problem) = readiness(&connection.node, &facts, plugin_arch) {
        connection.close().await;
        return Prepared::NotReady(problem);
    }
    let mut upload = None;
    if facts.plugin_present != Some(true) {
        let started = Instant::now();
        let name = format!("{sha256}.so");
        let dir = format!("~/{PLUGIN_DIR}");
        let sent = connection
            .upload(&plugin, &dir, &name, &sha256, "500", UploadKind::Private)
            .await;
        if let Err(error) = sent {
            connection.close().await;
            return Prepared::Unreachable(format!("{error:#}"));
        }
        upload = Some(started.elapsed());
    }
    Prepared::Ready(Box::new(ReadyNode {
        connection,
        facts,
        upload,
    }))
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let connections = self.nodes.drain(..).map(|n| n.connection).collect();
        self.ssh.close_all(connections);
    }
}

/// Whether a probed node can run this plugin: one sentence naming the
/// node when not.
pub fn readiness(node: &Node, facts: &Facts, plugin_arch: Option<&str>) -> Result<(), String> {
    let ours = format!("gorgon {}", env!("CARGO_PKG_VERSION"));
    if let Some(error) = &facts.gorgon_broken {
        return Err(format!(
            "node {} has a gorgon at {} that does not run there ({error}): \
             put one built for that system there",
            node.name, node.gorgon_path
        ));
    }
    match &facts.gorgon_version {
        None => {
            return Err(format!(
                "node {} has no gorgon at {}: install it with `gorgon cluster setup {}`",
                node.name, node.gorgon_path, node.name
            ))
        }
        Some(theirs) if *theirs != ours => {
            return Err(format!(
            "node {} has {theirs} at {}, this is {ours}: update it with `gorgon cluster setup {}`",
            node.name, node.gorgon_path, node.name
        ))
        }
        Some(_) => {}
    }
    if let Some(plugin_arch) = plugin_arch {
        if !arch::runs_on(plugin_arch, &facts.os, &facts.arch) {
            return Err(format!(
                "node {} runs {} {}, but the plugin is built for Linux {plugin_arch}",
                node.name, facts.os, facts.arch
            ));
        }
    }
    Ok(())
}
