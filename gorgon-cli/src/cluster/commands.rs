//! `gorgon cluster add|list|remove|check|setup`.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use comfy_table::{presets, ContentArrangement, Table};

use super::arch;
use super::distribute::readiness;
use super::edit::{self, Added, NodeFields};
use super::node::{self, Node, NodeName};
use super::open_files;
use super::ssh::{Connection, Facts, Ssh, SshOptions, UploadKind};
use crate::checksum;
use crate::config::{self, Config};
use crate::exit::{self, Code, Failure};
use crate::units::duration;

/// The file `add` and `remove` edit: `--config`, else the first existing
/// default location, else (for a first `add`) the user's config directory.
fn file_to_edit(explicit: Option<&Path>) -> PathBuf {
    if let Some(path) = explicit {
        return path.to_path_buf();
    }
    let places = config::default_locations();
    places
        .iter()
        .find(|p| p.is_file())
        .or(places.last())
        .cloned()
        .unwrap_or_else(|| PathBuf::from("gorgon.toml"))
}

/// Writes `text` over `path` through a temporary file and a rename, so a
/// crash never leaves half a config; keeps the file's permissions.
fn write_config(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let temporary = path.with_extension(format!("toml.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        let _ = std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode));
    }
    std::fs::rename(&temporary, path).with_context(|| format!("cannot replace {}", path.display()))
}

/// Reads the file to edit (empty when it does not exist yet).
fn read_for_edit(path: &Path) -> Result<String, Failure> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Failure::usage(format!(
            "cannot read config file {}: {e}",
            path.display()
        ))),
    }
}

/// Checks an edited text parses as a valid config before writing it.
fn checked_write(path: &Path, text: &str) -> Result<(), Failure> {
    Config::parse(text, path).map_err(Failure::usage)?;
    write_config(path, text).map_err(Failure::Run)
}

pub fn add(name: &NodeName, fields: NodeFields, explicit: Option<&Path>) -> Result<Code, Failure> {
    let path = file_to_edit(explicit);
    let text = read_for_edit(&path)?;
    // Refuse to edit a file that does not parse: the user should see
    // their own mistake, not have it rewritten.
    if !text.is_empty() {
        Config::parse(&text, &path).map_err(Failure::usage)?;
    }
    let key = match fields.key {
        Some(key) => {
            let key = node::resolve_local(&key, None);
            let key = std::path::absolute(&key).unwrap_or(key);
            if !key.is_file() {
                return Err(Failure::usage(format!(
                    "the key file {} does not exist",
                    key.display()
                )));
            }
            Some(key)
        }
        None => None,
    };
    let fields = NodeFields { key, ..fields };
    let (new_text, added) = edit::add_node(&text, &path, name, &fields).map_err(Failure::usage)?;
    checked_write(&path, &new_text)?;
    let verb = match added {
        Added::New => "added",
        Added::Updated => "updated",
    };
    say!("{verb} node {name} in {}", path.display());
    Ok(Code(exit::OK))
}

pub fn remove(name: &NodeName, explicit: Option<&Path>) -> Result<Code, Failure> {
    let path = file_to_edit(explicit);
    if !path.is_file() {
        return Err(Failure::usage(format!(
            "there is no node {name}: config file {} does not exist",
            path.display()
        )));
    }
    let text = read_for_edit(&path)?;
    Config::parse(&text, &path).map_err(Failure::usage)?;
    let new_text = edit::remove_node(&text, &path, name).map_err(Failure::usage)?;
    checked_write(&path, &new_text)?;
    say!("removed node {name} from {}", path.display());
    Ok(Code(exit::OK))
}

fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    table
}

pub fn list(explicit: Option<&Path>) -> Result<Code, Failure> {
    let config = Config::load(explicit).map_err(Failure::usage)?;
    let file = config.describe();
    if config.nodes.is_empty() {
        say!("no nodes in {file}; add one with `gorgon cluster add NAME --host HOST`");
        return Ok(Code(exit::OK));
    }
    let mut table = new_table(&["node", "host", "port", "user", "key", "gorgon path"]);
    for node in node::select(&config, &[])? {
        table.add_row(vec![
            node.name.to_string(),
            node.host.to_string(),
            node.port
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            node.user
                .as_ref()
                .map(|u| u.as_str().to_string())
                .unwrap_or_else(|| "-".into()),
            node.key
                .as_ref()
                .map(|k| k.display().to_string())
                .unwrap_or_else(|| "-".into()),
            node.gorgon_path.to_string(),
        ]);
    }
    say!("Nodes in {file}");
    say!("{table}");
    Ok(Code(exit::OK))
}

/// What `check` learnt about one node.
struct Checked {
    node: Node,
    login: Option<Duration>,
    facts: Option<Facts>,
    /// Why the node is not ready for a run, if it is not.
    problem: Option<String>,
}

pub fn check(
    names: &[NodeName],
    plugin: Option<&Path>,
    accept_new_host_keys: bool,
    explicit: Option<&Path>,
) -> Result<Code, Failure> {
    let config = Config::load(explicit).map_err(Failure::usage)?;
    let nodes = node::select(&config, names)?;
    let plugin_arch = match plugin {
        Some(plugin) => {
            std::fs::metadata(plugin).map_err(|e| {
                Failure::usage(format!("cannot read the plugin {}: {e}", plugin.display()))
            })?;
            Some(arch::of_elf(plugin).ok_or_else(|| {
                Failure::usage(format!(
                    "{} is not a shared library for a known architecture",
                    plugin.display()
                ))
            })?)
        }
        None => None,
    };
    let ssh =
        Ssh::new(SshOptions::from_config(&config, accept_new_host_keys)).map_err(Failure::Run)?;
    let mut results: Vec<Checked> = Vec::new();
    let mut connections: Vec<Connection> = Vec::new();
    for (node, connected) in nodes.iter().zip(ssh.connect_all(&nodes)) {
        match connected {
            Ok(connection) => connections.push(connection),
            Err(reason) => results.push(Checked {
                node: node.clone(),
                login: None,
                facts: None,
                problem: Some(reason),
            }),
        }
    }
    let probes = ssh.for_each(&connections, |c| async move { c.probe(None, false).await });
    for (connection, probe) in connections.iter().zip(probes) {
        let node = connection.node.clone();
        let (facts, problem) = match probe {
            Ok(facts) => {
                let problem = readiness(&node, &facts, plugin_arch).err();
                (Some(facts), problem)
            }
            Err(error) => (None, Some(format!("{error:#}"))),
        };
        results.push(Checked {
            node,
            login: Some(connection.login),
            facts,
            problem,
        });
    }
    ssh.close_all(connections);
    results.sort_by_key(|c| nodes.iter().position(|n| n.name == c.node.name));
    print_check(&results, plugin_arch);
    let not_ready: Vec<&str> = results
        .iter()
        .filter(|c| c.problem.is_some())
        .map(|c| c.node.name.as_str())
        .collect();
    if not_ready.is_empty() {
        return Ok(Code(exit::OK));
    }
    eprintln!(
        "gorgon: {} of {} nodes not ready: {}",
        not_ready.len(),
        results.len(),
        not_ready.join(", ")
    );
    Ok(Code(exit::RUN_FAILED))
}

fn print_check(results: &[Checked], plugin_arch: Option<&str>) {
    let mut table = new_table(&[
        "node",
        "address",
        "reachable",
        "login",
        "round trip",
        "system",
        "gorgon",
        "plugin",
    ]);
    for checked in results {
        let facts = checked.facts.as_ref();
        let version = facts.map(|f| match (&f.gorgon_version, &f.gorgon_broken) {
            (Some(v), _) => v.trim_start_matches("gorgon ").to_string(),
            (None, Some(_)) => "does not run".to_string(),
            (None, None) => "missing".to_string(),
        });
        let plugin = match (facts, plugin_arch) {
            (None, _) => "-".to_string(),
            (Some(_), None) => "(give --plugin)".to_string(),
            (Some(f), Some(plugin)) if arch::runs_on(plugin, &f.os, &f.arch) => {
                format!("can run ({plugin})")
            }
            (Some(_), Some(plugin)) => format!("cannot run ({plugin})"),
        };
        table.add_row(vec![
            checked.node.name.to_string(),
            checked.node.address(),
            if facts.is_some() { "yes" } else { "no" }.to_string(),
            checked
                .login
                .map(|d| duration(d.as_nanos() as u64))
                .unwrap_or_else(|| "-".into()),
            facts
                .map(|f| duration(f.round_trip.as_nanos() as u64))
                .unwrap_or_else(|| "-".into()),
            facts
                .map(|f| format!("{} {}", f.os, f.arch))
                .unwrap_or_else(|| "-".into()),
            version.unwrap_or_else(|| "-".into()),
            plugin,
        ]);
    }
    say!("{table}");
    // Each problem is a sentence that names its node.
    for problem in results.iter().filter_map(|c| c.problem.as_ref()) {
        say!("{problem}");
    }
}

/// What `setup` did on one node, for its report line.
enum SetupOutcome {
    AlreadyThere {
        version: String,
        path: String,
    },
    Installed {
        replaced: Option<String>,
        version: String,
        path: String,
        bytes: u64,
        took: Duration,
    },
}

pub fn setup(
    names: &[NodeName],
    accept_new_host_keys: bool,
    explicit: Option<&Path>,
) -> Result<Code, Failure> {
    let config = Config::load(explicit).map_err(Failure::usage)?;
    let nodes = node::select(&config, names)?;
    open_files::ensure(nodes.len(), 0, false)?;
    let exe = std::env::current_exe()
        .map_err(|e| Failure::Run(anyhow!("cannot find this gorgon executable: {e}")))?;
    let sha256 = checksum::sha256_file(&exe)
        .map_err(|e| Failure::Run(anyhow!("cannot read {}: {e}", exe.display())))?;
    let ssh =
        Ssh::new(SshOptions::from_config(&config, accept_new_host_keys)).map_err(Failure::Run)?;
    let mut failures = Vec::new();
    // Each node from login to install at its own pace, the uploads a few
    // at a time, streamed from the file.
    let outcomes = ssh.for_each_node(&nodes, move |connector| {
        let (exe, sha256) = (exe.clone(), sha256.clone());
        async move {
            let connection = connector.connect().await?;
            let outcome = setup_node(&connection, &exe, &sha256).await;
            let name = connection.node.name.clone();
            connection.close().await;
            outcome.map_err(|error| format!("node {name}: {error:#}"))
        }
    });
    for (node, outcome) in nodes.iter().zip(outcomes) {
        let name = &node.name;
        match outcome {
            Ok(SetupOutcome::AlreadyThere { version, path }) => {
                say!("{name}: {version} at {path} is this build already; nothing to do")
            }
            Ok(SetupOutcome::Installed {
                replaced,
                version,
                path,
                bytes,
                took,
            }) => {
                let what = match replaced {
                    Some(old) => format!("replaced {old} (another build) with {version}"),
                    None => format!("installed {version}"),
                };
                say!(
                    "{name}: {what} at {path} ({:.1} MB in {})",
                    bytes as f64 / 1e6,
                    duration(took.as_nanos() as u64)
                );
            }
            Err(reason) => failures.push(reason),
        }
    }
    if failures.is_empty() {
        return Ok(Code(exit::OK));
    }
    Err(Failure::Run(anyhow!("{}", failures.join("; "))))
}

/// Installs this executable on one node unless the very same file is
/// there: a probe, then (when needed) one upload.
async fn setup_node(
    connection: &Connection,
    exe: &Path,
    sha256: &str,
) -> anyhow::Result<SetupOutcome> {
    let node = &connection.node;
    let facts = connection.probe(None, true).await?;
    let ours = arch::this_gorgon();
    if !arch::runs_on(ours, &facts.os, &facts.arch) {
        return Err(anyhow!(
            "the node runs {} {}, this gorgon is built for {} {ours}: not installed \
             (build gorgon for the node and put it at {})",
            facts.os,
            facts.arch,
            std::env::consts::OS,
            node.gorgon_path
        ));
    }
    if facts.gorgon_sha256.as_deref() == Some(sha256) {
        return Ok(SetupOutcome::AlreadyThere {
            version: facts.gorgon_version.unwrap_or_default(),
            path: facts.gorgon_path,
        });
    }
    let Some((dir, name)) = node.gorgon_path.split() else {
        return Err(anyhow!(
            "gorgon_path {:?} is a command name, not a path: set a path (e.g. ~/.local/bin/gorgon) \
             to let setup install there",
            node.gorgon_path.as_str()
        ));
    };
    let bytes = std::fs::metadata(exe).map(|m| m.len()).unwrap_or(0);
    let started = Instant::now();
    let version = connection
        .upload(exe, dir, name, sha256, "755", UploadKind::Executable)
        .await?;
    let replaced = facts.gorgon_version.or_else(|| {
        facts
            .gorgon_broken
            .map(|_| "a gorgon that did not run".to_string())
    });
    Ok(SetupOutcome::Installed {
        replaced,
        version,
        path: facts.gorgon_path,
        bytes,
        took: started.elapsed(),
    })
}
