//! The flags of `gorgon cluster …` and of the node selection of `gorgon
//! run`, and how they become the cluster's plain values.

use std::num::NonZeroU16;
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::cluster::node::{Host, NodeName, RemotePath, User};
use crate::cluster::{self, NodeFields, Selection};

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
pub struct NodeArgs {
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

impl NodeArgs {
    /// Whether the run goes to nodes at all.
    pub fn is_cluster(&self) -> bool {
        self.cluster || !self.nodes.is_empty()
    }

    pub fn selection(&self) -> Selection {
        Selection {
            all: self.cluster,
            names: self.nodes.clone(),
            local: self.local,
            skip_unreachable: self.skip_unreachable,
            accept_new_host_keys: self.host_keys.accept_new_host_keys,
        }
    }
}

impl ClusterArgs {
    /// The command, in the cluster's own terms.
    pub fn command(self) -> cluster::Command {
        match self.command {
            ClusterCommand::Add(add) => cluster::Command::Add {
                name: add.name,
                fields: NodeFields {
                    host: add.host,
                    user: add.user,
                    port: add.port,
                    key: add.key,
                    gorgon_path: add.gorgon_path,
                },
            },
            ClusterCommand::List => cluster::Command::List,
            ClusterCommand::Remove { name } => cluster::Command::Remove { name },
            ClusterCommand::Check(check) => cluster::Command::Check {
                names: check.names,
                plugin: check.plugin,
                accept_new_host_keys: check.host_keys.accept_new_host_keys,
            },
            ClusterCommand::Setup(setup) => cluster::Command::Setup {
                names: setup.names,
                accept_new_host_keys: setup.host_keys.accept_new_host_keys,
            },
        }
    }
}
