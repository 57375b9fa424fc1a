//! What a node is: its name, where it is reached, as whom, and where its
//! `gorgon` lives, with every value checked where it enters (the config
//! file or `cluster add`), so nothing odd can reach `ssh`'s argument list
//! or a remote shell later.

use std::fmt;
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::Config;
use crate::exit::Failure;

/// Where `gorgon` is on a node unless its `gorgon_path` says otherwise;
/// `~/` is the remote user's home.
pub const DEFAULT_GORGON_PATH: &str = "~/.local/bin/gorgon";

/// A node's name in gorgon.toml and on the command line: letters, digits,
/// `-`, `_` and `.`, not starting with `-`, at most 64 characters. It names
/// the node in messages and reports; it is never sent to the node.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct NodeName(String);

impl TryFrom<String> for NodeName {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        let fine = !name.is_empty()
            && name.len() <= 64
            && !name.starts_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if fine {
            Ok(NodeName(name))
        } else {
            Err(format!(
                "node name {name:?} is not allowed: use letters, digits, '-', '_' and '.' \
                 (not starting with '-', at most 64 characters)"
            ))
        }
    }
}

impl std::str::FromStr for NodeName {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        NodeName::try_from(text.to_string())
    }
}

impl NodeName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a value that ends up as one argument of the local `ssh` command
/// (host, user): it must not look like an option, and must not contain
/// whitespace, control characters or characters `ssh` gives a meaning to.
fn ssh_word(what: &str, text: &str, extra_allowed: &[char]) -> Result<(), String> {
    let fine = !text.is_empty()
        && text.len() <= 255
        && !text.starts_with('-')
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') || extra_allowed.contains(&c)
        });
    if fine {
        Ok(())
    } else {
        Err(format!(
            "{what} {text:?} is not allowed: use letters, digits, '-', '_', '.'{} \
             (not starting with '-')",
            extra_allowed
                .iter()
                .map(|c| format!(", '{c}'"))
                .collect::<String>()
        ))
    }
}

/// A host name or address (IPv6 without brackets, e.g. `::1`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Host(String);

impl TryFrom<String> for Host {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        ssh_word("host", &text, &[':', '%']).map(|()| Host(text))
    }
}

impl std::str::FromStr for Host {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Host::try_from(text.to_string())
    }
}

impl Host {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A remote user name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct User(String);

impl TryFrom<String> for User {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        ssh_word("user", &text, &['@', '$']).map(|()| User(text))
    }
}

impl std::str::FromStr for User {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        User::try_from(text.to_string())
    }
}

impl User {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where `gorgon` is on the node: an absolute path, a path starting with
/// `~/` (the remote user's home), or a bare command name looked up in the
/// remote `PATH` (which `cluster setup` cannot install to). It is always
/// sent quoted; the checks only keep it readable and option-free.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct RemotePath(String);

impl TryFrom<String> for RemotePath {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        if text.is_empty() || text.starts_with('-') || text.chars().any(char::is_control) {
            return Err(format!(
                "gorgon path {text:?} is not allowed: give an absolute path, a path starting \
                 with ~/, or a command name"
            ));
        }
        if text.ends_with('/') {
            return Err(format!(
                "gorgon path {text:?} names a directory: give the path of the gorgon executable"
            ));
        }
        Ok(RemotePath(text))
    }
}

impl std::str::FromStr for RemotePath {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        RemotePath::try_from(text.to_string())
    }
}

impl RemotePath {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory and the file name, for an upload; `None` for a bare
    /// command name.
    pub fn split(&self) -> Option<(&str, &str)> {
        let (dir, name) = self.0.rsplit_once('/')?;
        Some((if dir.is_empty() { "/" } else { dir }, name))
    }
}

impl fmt::Display for RemotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One `[nodes.NAME]` table of gorgon.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub host: Host,
    pub user: Option<User>,
    pub port: Option<NonZeroU16>,
    /// The private key, by path; never copied or read by gorgon itself.
    pub key: Option<PathBuf>,
    pub gorgon_path: Option<RemotePath>,
}

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
                .unwrap_or_else(|| RemotePath(DEFAULT_GORGON_PATH.to_string())),
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

/// The nodes named (in the order given), or every node of the config (in
/// name order) when `names` is empty; an unknown name is a usage error.
pub fn select(config: &Config, names: &[NodeName]) -> Result<Vec<Node>, Failure> {
    let file = config.describe();
    if config.nodes.is_empty() {
        return Err(Failure::usage(format!(
            "there are no nodes in {file}: add one with `gorgon cluster add NAME --host HOST`"
        )));
    }
    let base = config.base_dir();
    if names.is_empty() {
        return Ok(config
            .nodes
            .iter()
            .map(|(name, node)| Node::new(name.clone(), node, base))
            .collect());
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
    fn names_and_hosts_refuse_what_could_become_an_option_or_a_word() {
        for good in ["a", "node-1", "db_2.eu"] {
            assert!(good.parse::<NodeName>().is_ok(), "{good}");
        }
        for bad in ["", "-x", "a b", "a;b", "a/b", "$(x)", "ä"] {
            assert!(bad.parse::<NodeName>().is_err(), "{bad}");
        }
        for good in ["127.0.0.2", "host.example", "::1", "fe80::1%eth0"] {
            assert!(good.parse::<Host>().is_ok(), "{good}");
        }
        for bad in ["-oProxyCommand=x", "a b", "a;b", "", "h\n"] {
            assert!(bad.parse::<Host>().is_err(), "{bad}");
        }
        assert!("-l".parse::<User>().is_err());
        assert!("-x".parse::<RemotePath>().is_err());
        assert!("/opt/".parse::<RemotePath>().is_err());
    }

    #[test]
    fn remote_paths_split_for_upload() {
        let path: RemotePath = "~/.local/bin/gorgon".parse().unwrap();
        assert_eq!(path.split(), Some(("~/.local/bin", "gorgon")));
        let path: RemotePath = "/gorgon".parse().unwrap();
        assert_eq!(path.split(), Some(("/", "gorgon")));
        let bare: RemotePath = "gorgon".parse().unwrap();
        assert!(bare.split().is_none());
    }

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
        assert_eq!(node.gorgon_path.as_str(), DEFAULT_GORGON_PATH);
    }
}
