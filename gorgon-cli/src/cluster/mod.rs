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
//! - [`arch`]: can this code run there ([`crate::checksum`]: is this the
//!   file).
//!
//! docs/cluster.md is the user's guide.
//!
//! [`Link`]: crate::collect::Link

pub mod arch;
mod commands;
pub mod distribute;
mod edit;
pub mod node;
mod open_files;
mod remote_link;
mod ssh;

use std::path::{Path, PathBuf};

use crate::exit::{Code, Failure};
use node::NodeName;

pub use distribute::Cluster;
pub use edit::NodeFields;

/// A `gorgon cluster …` command, its flags read.
#[derive(Debug)]
pub enum Command {
    Add {
        name: NodeName,
        fields: NodeFields,
    },
    List,
    Remove {
        name: NodeName,
    },
    Check {
        names: Vec<NodeName>,
        /// Also tell whether this plugin can run on each node.
        plugin: Option<PathBuf>,
        accept_new_host_keys: bool,
    },
    Setup {
        names: Vec<NodeName>,
        accept_new_host_keys: bool,
    },
}

/// The nodes a run goes to.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Every node in gorgon.toml.
    pub all: bool,
    /// These nodes of gorgon.toml (when not `all`).
    pub names: Vec<NodeName>,
    /// This machine too, as one more node.
    pub local: bool,
    /// Leave out nodes that cannot be reached instead of stopping.
    pub skip_unreachable: bool,
    /// Accept and record the host key of a node seen for the first time.
    pub accept_new_host_keys: bool,
}

impl Selection {
    /// Whether the run goes to nodes at all.
    pub fn is_cluster(&self) -> bool {
        self.all || !self.names.is_empty()
    }
}

/// Runs `gorgon cluster …`.
pub fn execute(command: Command, config: Option<&Path>) -> Result<Code, Failure> {
    match command {
        Command::Add { name, fields } => commands::add(&name, fields, config),
        Command::List => commands::list(config),
        Command::Remove { name } => commands::remove(&name, config),
        Command::Check {
            names,
            plugin,
            accept_new_host_keys,
        } => commands::check(&names, plugin.as_deref(), accept_new_host_keys, config),
        Command::Setup {
            names,
            accept_new_host_keys,
        } => commands::setup(&names, accept_new_host_keys, config),
    }
}
