//! The cluster: SSH nodes kept in gorgon.toml, the `gorgon cluster …`
//! commands that manage them, and the part of `gorgon run` that starts
//! workers on them.
//!
//! - [`node`]: what a node is, every field checked where it enters;
//! - [`edit`]: `cluster add`/`remove` edit gorgon.toml in place;
//! - [`ssh`]: connections through the system `ssh` (the `openssh` crate,
//!   its tokio runtime confined there) and the few remote commands;
//! - [`remote_link`]: a remote `gorgon worker` as a collector [`Link`];
//! - [`distribute`]: checking nodes, uploading the plugin and starting
//!   every node's share of a run;
//! - [`commands`]: `cluster add|list|remove|check|setup`;
//! - [`arch`], [`checksum`]: can this code run there, is this the file.
//!
//! docs/cluster.md is the user's guide.
//!
//! [`Link`]: crate::collect::Link

pub mod arch;
pub mod checksum;
mod commands;
pub mod distribute;
mod edit;
pub mod node;
mod remote_link;
mod ssh;

use std::num::NonZeroU16;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::exit::{Code, Failure};
use node::{Host, NodeName, RemotePath, User};

pub use distribute::Cluster;

/// `gorgon cluster …`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Add a node to gorgon.toml, or update the fields given.
    Add(AddArgs),
    /// Show the nodes in gorgon.toml.
    List,
    /// Remove a node from gorgon.toml.
    Remove {
        /// The node's name.
        name: NodeName,
    },
    /// Connect to nodes and tell whether they are ready for a run.
    Check(CheckArgs),
    /// Install this gorgon on nodes where it is missing or another build.
    Setup(SetupArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The node's name (letters, digits, '-', '_', '.').
    pub name: NodeName,
    /// Host name or address to connect to (required for a new node).
    #[arg(long)]
    pub host: Option<Host>,
    /// Remote user [default: ssh's choice, usually yours].
    #[arg(long)]
    pub user: Option<User>,
    /// SSH port [default: 22, or the ssh config's].
    #[arg(long)]
    pub port: Option<NonZeroU16>,
    /// Private key file, by path (it is never copied).
    #[arg(long, value_name = "PATH")]
    pub key: Option<PathBuf>,
    /// Where gorgon is on the node [default: ~/.local/bin/gorgon].
    #[arg(long, value_name = "PATH")]
    pub gorgon_path: Option<RemotePath>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The nodes to check [default: all].
    pub names: Vec<NodeName>,
    /// Also tell whether this plugin can run on each node.
    #[arg(long, value_name = "PATH")]
    pub plugin: Option<PathBuf>,
    #[command(flatten)]
    pub host_keys: HostKeyArgs,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// The nodes to set up [default: all].
    pub names: Vec<NodeName>,
    #[command(flatten)]
    pub host_keys: HostKeyArgs,
}

#[derive(Debug, Args, Default)]
pub struct HostKeyArgs {
    /// Accept (and record in known_hosts) the host key of a node contacted
    /// for the first time; a changed key is refused regardless.
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

/// The nodes `gorgon run` uses (flattened into its flags).
#[derive(Debug, Args, Default)]
pub struct NodeSelection {
    /// Run on every node in gorgon.toml.
    #[arg(long, conflicts_with = "nodes")]
    pub cluster: bool,
    /// Run on these nodes of gorgon.toml.
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub nodes: Vec<NodeName>,
    /// With --cluster or --nodes: run on this machine too, as one more node.
    #[arg(long)]
    pub local: bool,
    /// With --cluster or --nodes: leave out nodes that cannot be reached
    /// instead of stopping.
    #[arg(long)]
    pub skip_unreachable: bool,
    #[command(flatten)]
    pub host_keys: HostKeyArgs,
}

impl NodeSelection {
    /// Whether the run goes to nodes at all.
    pub fn is_cluster(&self) -> bool {
        self.cluster || !self.nodes.is_empty()
    }
}

/// Runs `gorgon cluster …`.
pub fn execute(args: ClusterArgs, config: Option<&Path>) -> Result<Code, Failure> {
    match args.command {
        ClusterCommand::Add(add) => commands::add(add, config),
        ClusterCommand::List => commands::list(config),
        ClusterCommand::Remove { name } => commands::remove(&name, config),
        ClusterCommand::Check(check) => commands::check(check, config),
        ClusterCommand::Setup(setup) => commands::setup(setup, config),
    }
}
