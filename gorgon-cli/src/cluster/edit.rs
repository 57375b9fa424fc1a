//! Editing gorgon.toml in place for `cluster add` and `cluster remove`:
//! through `toml_edit`, so the user's other tables, comments and layout
//! survive; only the one `[nodes.NAME]` table changes.

use std::num::NonZeroU16;
use std::path::{Path, PathBuf};

use toml_edit::{value, DocumentMut, Item, Table};

use super::node::{Host, NodeName, RemotePath, User};

/// The fields `cluster add` sets; `None` leaves an existing value alone.
#[derive(Debug, Default)]
pub struct NodeFields {
    pub host: Option<Host>,
    pub user: Option<User>,
    pub port: Option<NonZeroU16>,
    pub key: Option<PathBuf>,
    pub gorgon_path: Option<RemotePath>,
}

/// Whether `add` created the node or changed an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    New,
    Updated,
}

fn parse(text: &str, file: &Path) -> Result<DocumentMut, String> {
    text.parse::<DocumentMut>()
        .map_err(|e| format!("cannot edit {}: {}", file.display(), e.message()))
}

/// The `nodes` table of `doc`, created (as headers only, `[nodes.NAME]`)
/// when missing.
fn nodes_table<'a>(
    doc: &'a mut DocumentMut,
    file: &Path,
) -> Result<&'a mut dyn toml_edit::TableLike, String> {
    let item = doc.entry("nodes").or_insert_with(|| {
        let mut table = Table::new();
        table.set_implicit(true);
        Item::Table(table)
    });
    item.as_table_like_mut()
        .ok_or_else(|| format!("cannot edit {}: `nodes` is not a table", file.display()))
}

/// Adds node `name`, or updates the fields given; a new node needs a host.
pub fn add_node(
    text: &str,
    file: &Path,
    name: &NodeName,
    fields: &NodeFields,
) -> Result<(String, Added), String> {
    let mut doc = parse(text, file)?;
    let nodes = nodes_table(&mut doc, file)?;
    let added = if nodes.contains_key(name.as_str()) {
        Added::Updated
    } else {
        if fields.host.is_none() {
            return Err(format!("node {name} is new: give its address with --host"));
        }
        nodes.insert(name.as_str(), Item::Table(Table::new()));
        Added::New
    };
    let node = nodes
        .get_mut(name.as_str())
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| {
            format!(
                "cannot edit {}: nodes.{name} is not a table",
                file.display()
            )
        })?;
    let mut set = |key: &str, item: Option<Item>| {
        if let Some(item) = item {
            node.insert(key, item);
        }
    };
    set("host", fields.host.as_ref().map(|h| value(h.as_str())));
    set("user", fields.user.as_ref().map(|u| value(u.as_str())));
    set("port", fields.port.map(|p| value(i64::from(p.get()))));
    set(
        "key",
        fields.key.as_ref().map(|k| value(k.display().to_string())),
    );
    set(
        "gorgon_path",
        fields.gorgon_path.as_ref().map(|p| value(p.as_str())),
    );
    Ok((doc.to_string(), added))
}

/// Removes node `name`; an error when there is none of that name.
pub fn remove_node(text: &str, file: &Path, name: &NodeName) -> Result<String, String> {
    let mut doc = parse(text, file)?;
    let nodes = nodes_table(&mut doc, file)?;
    if nodes.remove(name.as_str()).is_none() {
        return Err(format!("there is no node {name} in {}", file.display()));
    }
    if nodes.is_empty() {
        doc.remove("nodes");
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# my settings\n[defaults]\nthreads = 4 # four\n\n\
                        [nodes.a]\n# the first node\nhost = \"10.0.0.1\"\nport = 2200\n";

    fn file() -> &'static Path {
        Path::new("/x/gorgon.toml")
    }

    #[test]
    fn adding_keeps_comments_and_other_tables() {
        let fields = NodeFields {
            host: Some("10.0.0.2".parse().unwrap()),
            user: Some("bob".parse().unwrap()),
            ..NodeFields::default()
        };
        let (text, added) = add_node(FILE, file(), &"b".parse().unwrap(), &fields).unwrap();
        assert_eq!(added, Added::New);
        assert!(text.starts_with(FILE), "{text}");
        assert!(
            text.contains("[nodes.b]\nhost = \"10.0.0.2\"\nuser = \"bob\"\n"),
            "{text}"
        );
    }

    #[test]
    fn updating_changes_only_the_given_fields() {
        let fields = NodeFields {
            port: NonZeroU16::new(2201),
            ..NodeFields::default()
        };
        let (text, added) = add_node(FILE, file(), &"a".parse().unwrap(), &fields).unwrap();
        assert_eq!(added, Added::Updated);
        assert!(
            text.contains("# the first node\nhost = \"10.0.0.1\"\nport = 2201\n"),
            "{text}"
        );
        assert!(text.contains("threads = 4 # four"), "{text}");
    }

    #[test]
    fn a_new_node_needs_a_host() {
        let error =
            add_node(FILE, file(), &"c".parse().unwrap(), &NodeFields::default()).unwrap_err();
        assert!(error.contains("--host"), "{error}");
    }

    #[test]
    fn removing_keeps_the_rest() {
        let text = remove_node(FILE, file(), &"a".parse().unwrap()).unwrap();
        assert_eq!(text, "# my settings\n[defaults]\nthreads = 4 # four\n");
        let error = remove_node(FILE, file(), &"zz".parse().unwrap()).unwrap_err();
        assert!(error.contains("no node zz"), "{error}");
    }
}
