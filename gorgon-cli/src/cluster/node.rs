//! A node ready to be reached, and the nodes a command selects. The
//! checked values a node is made of are read with the config
//! ([`crate::config::node`]).

use std::num::NonZeroU16;
use std::path::{Path, PathBuf};

pub use crate::config::node::{Host, NodeConfig, NodeName, RemotePath, User};
use crate::config::Config;
use crate::exit::Failure;

/// A node ready to be reached: the config entry with its name and the key
/// path resolved against the config file's directory.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: NodeName,
    pub host: Host,
    pub user: Option<User>,
    pub port: Option<NonZeroU16>,
    pub key: Option<PathBuf>,
    pub gorgon_path: RemotePath,
}

impl Node {
    pub fn new(name: NodeName, config: &NodeConfig, base: Option<&Path>) -> Node {
        Node {
            name,
            host: config.host.clone(),
            user: config.user.clone(),
            port: config.port,
            key: config.key.as_deref().map(|key| resolve_local(key, base)),
            gorgon_path: config
                .gorgon_path
                .clone()
                .unwrap_or_else(RemotePath::default_path),
        }
    }

    /// `user@host:port` for messages.
    pub fn address(&self) -> String {
        let host = if self.host.as_str().contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.to_string()
        };
        let user = self
            .user
            .as_ref()
            .map(|u| format!("{}@", u.as_str()))
            .unwrap_or_default();
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{user}{host}{port}")
    }
}

/// The node names in the order gorgon.toml lists them. The config keeps
/// nodes in a sorted map (`n1, n10, n11, n2…`), but reports promise the
/// file's order, which `toml_edit` keeps; empty when the file cannot be
/// read again.
fn file_order(config: &Config) -> Vec<String> {
    let Some(text) = config
        .path
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok())
    else {
        return Vec::new();
    };
    let Ok(doc) = text.parse::<toml_edit::DocumentMut>() else {
        return Vec::new();
    };
    doc.get("nodes")
        .and_then(toml_edit::Item::as_table_like)
        .map(|t| t.iter().map(|(k, _)| k.to_string()).collect())
        .unwrap_or_default()
}

/// The nodes named (in the order given), or every node of the config (in
/// the file's order) when `names` is empty; an unknown name is a usage
/// error.
pub fn select(config: &Config, names: &[NodeName]) -> Result<Vec<Node>, Failure> {
    let file = config.describe();
    if config.nodes.is_empty() {
        return Err(Failure::usage(format!(
            "there are no nodes in {file}: add one with `gorgon cluster add NAME --host HOST`"
        )));
    }
    let base = config.base_dir();
    if names.is_empty() {
        let order = file_order(config);
        let mut nodes: Vec<Node> = config
            .nodes
            .iter()
            .map(|(name, node)| Node::new(name.clone(), node, base))
            .collect();
        // Stable: a name the file does not show (it cannot happen, but a
        // file changed since it was read could) keeps name order, last.
        nodes.sort_by_key(|n| {
            order
                .iter()
                .position(|o| o == n.name.as_str())
                .unwrap_or(usize::MAX)
        });
        return Ok(nodes);
    }
    let mut nodes: Vec<Node> = Vec::new();
    for name in names {
        let Some(node) = config.nodes.get(name) else {
            let known: Vec<&str> = config.nodes.keys().map(NodeName::as_str).collect();
            return Err(Failure::usage(format!(
                "there is no node {name} in {file} (known nodes: {})",
                known.join(", ")
            )));
        };
        if !nodes.iter().any(|n| &n.name == name) {
            nodes.push(Node::new(name.clone(), node, base));
        }
    }
    Ok(nodes)
}

/// A local path from the config file: `~/` is this user's home, and a
/// relative path is relative to the config file's directory.
pub fn resolve_local(path: &Path, base: Option<&Path>) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    match base {
        Some(base) if path.is_relative() => base.join(path),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_like_ssh_destinations() {
        let config = NodeConfig {
            host: "::1".parse().unwrap(),
            user: Some("bob".parse().unwrap()),
            port: NonZeroU16::new(2222),
            key: Some("keys/id".into()),
            gorgon_path: None,
        };
        let node = Node::new("a".parse().unwrap(), &config, Some(Path::new("/etc/g")));
        assert_eq!(node.address(), "bob@[::1]:2222");
        assert_eq!(node.key.as_deref(), Some(Path::new("/etc/g/keys/id")));
        assert_eq!(
            node.gorgon_path.as_str(),
            crate::config::node::DEFAULT_GORGON_PATH
        );
    }
}
