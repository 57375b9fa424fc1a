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
//! a plugin's content is seen there, and one per worker process.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::arch;
use super::node::{self, Node};
use super::remote_link::{OnNode, RemoteLink};
use super::ssh::{Connection, Facts, Ssh, SshOptions, UploadKind, PLUGIN_DIR};
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
}

struct ReadyNode {
    connection: Connection,
    facts: Facts,
}

impl ReadyNode {
    fn name(&self) -> &str {
        self.connection.node.name.as_str()
    }
}

impl Cluster {
    /// Reaches and checks the selected nodes; `None` for a local run.
    /// An unreachable node stops the run unless `--skip-unreachable`.
    pub fn prepare(
        selection: &Selection,
        config: &Config,
        plugin: &Path,
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
        };
        let connections = cluster.connect(&nodes, selection.skip_unreachable)?;
        cluster.check(connections, selection.skip_unreachable)?;
        if cluster.nodes.is_empty() && !cluster.local {
            return Err(Failure::Run(anyhow!(
                "no node can be reached: {}",
                cluster.skipped.join("; ")
            )));
        }
        cluster.upload_plugin()?;
        Ok(Some(cluster))
    }

    fn connect(&mut self, nodes: &[Node], skip: bool) -> Result<Vec<Connection>, Failure> {
        let mut connections = Vec::new();
        let mut unreachable = Vec::new();
        for result in self.ssh.connect_all(nodes) {
            match result {
                Ok(connection) => connections.push(connection),
                Err(reason) => unreachable.push(reason),
            }
        }
        self.skip_or_stop(unreachable, skip, connections)
    }

    /// With `--skip-unreachable`, notes the unreachable nodes and goes on
    /// with the others; without, stops the run naming them.
    fn skip_or_stop<T>(
        &mut self,
        unreachable: Vec<String>,
        skip: bool,
        going_on: Vec<T>,
    ) -> Result<Vec<T>, Failure> {
        if unreachable.is_empty() {
            return Ok(going_on);
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
        Ok(going_on)
    }

    /// Probes every node (one command each) and keeps those ready to run
    /// the plugin; any other problem stops the run, naming the node.
    fn check(&mut self, connections: Vec<Connection>, skip: bool) -> Result<(), Failure> {
        let sha256 = self.sha256.clone();
        let probes = self.ssh.for_each(&connections, move |c| {
            let sha256 = sha256.clone();
            async move { c.probe(Some(&sha256), false).await }
        });
        let plugin_arch = arch::of_elf(&self.plugin);
        let mut lost = Vec::new();
        let mut problems = Vec::new();
        let mut ready = Vec::new();
        for (connection, probe) in connections.into_iter().zip(probes) {
            let facts = match probe {
                Ok(facts) => facts,
                Err(error) => {
                    lost.push(format!("{error:#}"));
                    continue;
                }
            };
            match readiness(&connection.node, &facts, plugin_arch) {
                Ok(()) => ready.push(ReadyNode { connection, facts }),
                Err(problem) => problems.push(problem),
            }
        }
        self.nodes = self.skip_or_stop(lost, skip, ready)?;
        if !problems.is_empty() {
            return Err(Failure::Run(anyhow!("{}", problems.join("; "))));
        }
        Ok(())
    }

    /// Uploads the plugin to the nodes that lack it (one command each).
    fn upload_plugin(&mut self) -> Result<(), Failure> {
        let missing: Vec<Connection> = self
            .nodes
            .iter()
            .filter(|n| n.facts.plugin_present != Some(true))
            .map(|n| n.connection.clone())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let (plugin, sha256) = (self.plugin.clone(), self.sha256.clone());
        let uploads = self.ssh.for_each(&missing, move |c| {
            let (plugin, sha256) = (plugin.clone(), sha256.clone());
            async move {
                let name = format!("{sha256}.so");
                c.upload(
                    &plugin,
                    &format!("~/{PLUGIN_DIR}"),
                    &name,
                    &sha256,
                    "500",
                    UploadKind::Private,
                )
                .await
            }
        });
        let failed: Vec<String> = uploads
            .into_iter()
            .filter_map(|r| r.err().map(|e| format!("{e:#}")))
            .collect();
        if !failed.is_empty() {
            return Err(Failure::Run(anyhow!("{}", failed.join("; "))));
        }
        for connection in &missing {
            eprintln!(
                "gorgon: node {}: uploaded the plugin to ~/{PLUGIN_DIR}/{}.so",
                connection.node.name, self.sha256
            );
        }
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
                pending.push(handle.spawn(async move {
                    RemoteLink::spawn(session, handle2, name, &program, &args)
                        .await
                        .map(|link| OnNode {
                            link: Box::new(link),
                            node: node_name,
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

    /// Names a node lost mid-run once, instead of once per worker, and
    /// keeps what its workers sent before.
    pub fn explain_losses(&self, result: &mut RunResult) {
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
