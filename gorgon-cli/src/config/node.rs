//! The `[nodes.NAME]` tables of gorgon.toml: a node's name, where it is
//! reached, as whom, and where its `gorgon` lives, with every value
//! checked where it enters (the config file or `cluster add`), so nothing
//! odd can reach `ssh`'s argument list or a remote shell later.

use std::fmt;
use std::num::NonZeroU16;
use std::path::PathBuf;

use serde::Deserialize;

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
    /// [`DEFAULT_GORGON_PATH`].
    pub fn default_path() -> RemotePath {
        RemotePath(DEFAULT_GORGON_PATH.to_string())
    }

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
}
