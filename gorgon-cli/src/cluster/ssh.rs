//! Reaching nodes: the system `ssh` driven by the `openssh` crate, one
//! multiplexed master connection per node, and the few remote commands
//! gorgon runs there.
//!
//! The crate is async; its tokio runtime lives in [`Ssh`] and nowhere else,
//! so a local run never starts one. Callers stay blocking: every method
//! here blocks on the runtime.
//!
//! Safety rules kept here: host keys are checked strictly (`accept-new`
//! only when the user opted in; a changed key is refused either way), keys
//! are passed by path, and every value sent to a node is one argument of a
//! command built with `command().arg()`, which quotes it for the remote
//! shell. The remote scripts are constants that read their values as
//! positional parameters, never text pasted into them.

use std::num::NonZeroUsize;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::AsyncWriteExt;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::Semaphore;

use super::node::{resolve_local, Node};
use crate::config::Config;

/// How long an idle master connection outlives gorgon (after a crash, say).
const CONTROL_PERSIST_SECS: usize = 30;
/// How long to wait for a node to answer at all.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the probe may take on a node: a few `uname`s, a `--version`
/// and two checksums. A node that takes longer is hung, and is named
/// after this, not after a generic command timeout.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);
/// An upload's deadline: a fixed part for the login shell and the
/// checksum, and one second per MiB (1 MiB/s is a slow link).
const UPLOAD_BASE_TIMEOUT: Duration = Duration::from_secs(20);
/// Uploads at once, whatever the number of nodes: each holds one read
/// buffer and one channel, so the parent's memory does not grow with the
/// nodes, and the uplink is shared by a few streams rather than hundreds.
const UPLOADS_AT_ONCE: usize = 8;
/// The read buffer of one upload: large enough that copying a 70 MB
/// gorgon costs a few hundred reads and writes, not thousands (the
/// default 8 KiB made copying most of `cluster setup`'s own CPU).
const UPLOAD_BUFFER: usize = 256 << 10;
/// Where uploaded plugins live on a node, relative to the remote home.
pub const PLUGIN_DIR: &str = ".cache/gorgon/plugins";

/// The `[ssh]` settings with paths resolved, and where they came from.
#[derive(Debug, Clone)]
pub struct SshOptions {
    pub known_hosts: Option<PathBuf>,
    pub config_file: Option<PathBuf>,
    pub accept_new_host_keys: bool,
    pub control_dir: PathBuf,
    pub connect_timeout: Duration,
    /// How long an idle connection outlives gorgon for the next command
    /// to reuse; `None`: each command logs in and closes its connections.
    pub keep_connections: Option<NonZeroUsize>,
}

impl SshOptions {
    /// The options of `config`; `accept_new` (a command-line flag) can only
    /// turn acceptance on.
    pub fn from_config(config: &Config, accept_new: bool) -> SshOptions {
        let base = config.base_dir();
        let ssh = &config.ssh;
        SshOptions {
            known_hosts: ssh.known_hosts.as_deref().map(|p| resolve_local(p, base)),
            config_file: ssh.config.as_deref().map(|p| resolve_local(p, base)),
            accept_new_host_keys: accept_new || ssh.accept_new_host_keys,
            control_dir: ssh
                .control_dir
                .as_deref()
                .map(|p| resolve_local(p, base))
                .unwrap_or_else(default_control_dir),
            connect_timeout: ssh
                .connect_timeout
                .map(|s| Duration::from_secs(s.get()))
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            keep_connections: ssh
                .keep_connections
                .and_then(|s| NonZeroUsize::new(usize::try_from(s.get()).unwrap_or(usize::MAX))),
        }
    }

    fn known_hosts_name(&self) -> String {
        self.known_hosts
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "your known_hosts file".to_string())
    }
}

fn default_control_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("gorgon"),
        _ => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache").join("gorgon").join("ssh")
        }
    }
}

/// Creates the control directory 0700 and refuses one that another user
/// could reach: the sockets in it give a shell on every node.
fn private_control_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the SSH control directory {}", dir.display()))?;
    let meta = std::fs::symlink_metadata(dir)
        .with_context(|| format!("cannot read the SSH control directory {}", dir.display()))?;
    let uid = nix::unistd::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != uid {
        return Err(anyhow!(
            "the SSH control directory {} is not a directory owned by you",
            dir.display()
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make {} private", dir.display()))?;
    }
    Ok(())
}

/// The runtime and options every SSH action of one gorgon command shares.
pub struct Ssh {
    runtime: Runtime,
    pub options: SshOptions,
    /// Permits to upload, shared by every connection of this command.
    uploads: Arc<Semaphore>,
}

/// An open, multiplexed connection to one node (cheap to clone: the
/// session is shared).
#[derive(Clone)]
pub struct Connection {
    pub node: Node,
    pub session: Arc<Session>,
    /// How long the login (the master connection) took.
    pub login: Duration,
    uploads: Arc<Semaphore>,
    /// The master outlives this gorgon (`keep_connections`): it is left
    /// running, not closed, at the end.
    kept: bool,
}

impl Ssh {
    pub fn new(options: SshOptions) -> anyhow::Result<Ssh> {
        private_control_dir(&options.control_dir)?;
        // One worker thread drives the connections' sockets; blocking
        // callers wait on it from their own threads.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gorgon-ssh")
            .enable_all()
            .build()
            .context("cannot start the SSH runtime")?;
        Ok(Ssh {
            runtime,
            options,
            uploads: Arc::new(Semaphore::new(UPLOADS_AT_ONCE)),
        })
    }

    pub fn handle(&self) -> Handle {
        self.runtime.handle().clone()
    }

    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Connects to every node at once; each result says why a node could
    /// not be reached, in one sentence naming it.
    pub fn connect_all(&self, nodes: &[Node]) -> Vec<Result<Connection, String>> {
        self.for_each_node(nodes, |connector| async move { connector.connect().await })
    }

    /// Runs `work` for every node at once, from its login on, and returns
    /// the results in the nodes' order. Each node goes through its steps
    /// at its own pace: a node silent until its connect timeout delays
    /// nobody else's probe or upload.
    pub fn for_each_node<T, F, Fut>(&self, nodes: &[Node], work: F) -> Vec<T>
    where
        T: Send + 'static,
        F: Fn(Connector) -> Fut,
        Fut: std::future::Future<Output = T> + Send + 'static,
    {
        let tasks: Vec<_> = nodes
            .iter()
            .map(|node| {
                self.runtime.spawn(work(Connector {
                    node: node.clone(),
                    options: self.options.clone(),
                    uploads: self.uploads.clone(),
                }))
            })
            .collect();
        self.join(tasks)
    }

    fn join<T: Send + 'static>(&self, tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
        self.runtime.block_on(async {
            let mut results = Vec::with_capacity(tasks.len());
            for task in tasks {
                match task.await {
                    Ok(result) => results.push(result),
                    Err(error) => std::panic::resume_unwind(error.into_panic()),
                }
            }
            results
        })
    }

    /// Ends the master connections (their remote commands are over).
    pub fn close_all(&self, connections: Vec<Connection>) {
        self.runtime.block_on(async {
            for connection in connections {
                connection.close().await;
            }
        });
    }

    /// Runs `work` for every connection at once and returns the results
    /// in the same order.
    pub fn for_each<T, F, Fut>(&self, connections: &[Connection], work: F) -> Vec<T>
    where
        T: Send + 'static,
        F: Fn(Connection) -> Fut,
        Fut: std::future::Future<Output = T> + Send + 'static,
    {
        let tasks: Vec<_> = connections
            .iter()
            .map(|c| self.runtime.spawn(work(c.clone())))
            .collect();
        self.join(tasks)
    }

    /// Whether the master connection to a node is still up.
    pub fn is_alive(&self, connection: &Connection) -> bool {
        self.runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), connection.session.check())
                .await
                .is_ok_and(|r| r.is_ok())
        })
    }
}

/// What a node's task starts with: the node and how to reach it.
pub struct Connector {
    pub node: Node,
    options: SshOptions,
    uploads: Arc<Semaphore>,
}

impl Connector {
    /// Logs in (the master connection); the error is one sentence naming
    /// the node.
    pub async fn connect(self) -> Result<Connection, String> {
        connect(&self.options, self.node, self.uploads).await
    }
}

async fn connect(
    options: &SshOptions,
    node: Node,
    uploads: Arc<Semaphore>,
) -> Result<Connection, String> {
    if let Some(key) = &node.key {
        if !key.is_file() {
            return Err(format!(
                "node {}: the key file {} does not exist",
                node.name,
                key.display()
            ));
        }
    }
    let started = Instant::now();
    let kept = options.keep_connections.is_some();
    let record = kept.then(|| kept_record(options, &node));
    if let Some(session) = match &record {
        Some(record) => resume(record).await,
        None => None,
    } {
        return Ok(Connection {
            login: started.elapsed(),
            session: Arc::new(session),
            node,
            uploads,
            kept,
        });
    }
    let mut builder = SessionBuilder::default();
    builder
        .known_hosts_check(if options.accept_new_host_keys {
            KnownHosts::Add
        } else {
            KnownHosts::Strict
        })
        .control_directory(&options.control_dir)
        .control_persist(ControlPersist::IdleFor(
            options
                .keep_connections
                .unwrap_or(NonZeroUsize::new(CONTROL_PERSIST_SECS).expect("not zero")),
        ))
        .connect_timeout(options.connect_timeout)
        .server_alive_interval(Duration::from_secs(5));
    if let Some(user) = &node.user {
        builder.user(user.as_str().to_string());
    }
    if let Some(port) = node.port {
        builder.port(port.get());
    }
    if let Some(key) = &node.key {
        builder.keyfile(key);
    }
    if let Some(file) = &options.config_file {
        builder.config_file(file);
    }
    if let Some(file) = &options.known_hosts {
        builder.user_known_hosts_file(file);
    }
    let session = match &record {
        Some(record) => launch_kept(&builder, &node, record).await,
        None => builder.connect_mux(node.host.as_str()).await,
    };
    match session {
        Ok(session) => Ok(Connection {
            login: started.elapsed(),
            session: Arc::new(session),
            node,
            uploads,
            kept,
        }),
        Err(error) => Err(explain_connect_error(&node, options, &error)),
    }
}

/// Where the control socket of a kept connection to `node` is recorded
/// (a symbolic link to it), named by everything that decides how ssh
/// logs in, so a changed key, port or known_hosts file never reuses an
/// old connection.
fn kept_record(options: &SshOptions, node: &Node) -> PathBuf {
    use sha2::Digest as _;
    let identity = format!(
        "{}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{}",
        node.host,
        node.port,
        node.user.as_ref().map(|u| u.as_str()),
        node.key,
        options.config_file,
        options.known_hosts,
        options.accept_new_host_keys
    );
    let digest = hex::encode(sha2::Sha256::digest(identity.as_bytes()));
    options
        .control_dir
        .join(format!("kept-{}-{}", node.name, &digest[..16]))
}

/// The kept connection recorded at `record`, if its master still
/// answers; a dead one's record and directory are removed.
async fn resume(record: &Path) -> Option<Session> {
    let socket = std::fs::read_link(record).ok()?;
    let session = Session::resume_mux(socket.clone().into_boxed_path(), None);
    let alive = tokio::time::timeout(Duration::from_secs(2), session.check())
        .await
        .is_ok_and(|r| r.is_ok());
    if alive {
        return Some(session);
    }
    // Detached: dropping it would try to shut a master that is gone.
    let _ = session.detach();
    let _ = std::fs::remove_file(record);
    if let Some(dir) = socket.parent().filter(|d| d.parent() == record.parent()) {
        let _ = std::fs::remove_dir_all(dir);
    }
    None
}

/// Starts a master that outlives this gorgon, and records its socket.
async fn launch_kept(
    builder: &SessionBuilder,
    node: &Node,
    record: &Path,
) -> Result<Session, openssh::Error> {
    let dir = builder.launch_master(node.host.as_str()).await?.keep();
    let socket = dir.join("master");
    let _ = std::fs::remove_file(record);
    // Another gorgon may have recorded its own just now: either works.
    let _ = std::os::unix::fs::symlink(&socket, record);
    Ok(Session::resume_mux(
        socket.into_boxed_path(),
        Some(dir.join("log").into_boxed_path()),
    ))
}

/// Turns the master's log (which the crate hands over as the source of a
/// vague "failed to connect") into one sentence saying what to do.
fn explain_connect_error(node: &Node, options: &SshOptions, error: &openssh::Error) -> String {
    let log = match error {
        openssh::Error::Connect(source) | openssh::Error::Master(source) => source.to_string(),
        other => format!("{other}"),
    };
    explain_log(node, options, &log)
}

fn explain_log(node: &Node, options: &SshOptions, log: &str) -> String {
    let who = format!("node {} ({})", node.name, node.address());
    let known_hosts = options.known_hosts_name();
    let offending = log
        .lines()
        .find_map(|l| l.trim().strip_prefix("Offending "))
        .map(|rest| format!(" (the recorded key: {})", rest.trim()))
        .unwrap_or_default();
    if log.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || log.contains("has changed and you have requested strict checking")
    {
        let entry = match node.port {
            Some(port) if port.get() != 22 => format!("[{}]:{port}", node.host),
            _ => node.host.to_string(),
        };
        let file = options
            .known_hosts
            .as_ref()
            .map(|p| format!(" -f '{}'", p.display()))
            .unwrap_or_default();
        return format!(
            "{who}: its host key has changed since it was recorded in {known_hosts}{offending}; \
             refusing to connect, as this can mean the connection is intercepted \
             (if the node was reinstalled, remove the old key with `ssh-keygen -R '{entry}'{file}` \
             and connect again)"
        );
    }
    if log.contains("host key is known for") || log.contains("Host key verification failed") {
        return format!(
            "{who}: its host key is not in {known_hosts}; refusing to connect to an unknown host \
             (add its key there, or accept it on first contact with --accept-new-host-keys \
             or ssh.accept_new_host_keys = true in gorgon.toml)"
        );
    }
    let last = log
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no reason given")
        .trim_start_matches("ssh: ");
    if log.contains("Permission denied") {
        return format!(
            "{who}: the login was refused ({last}); check the user, the key and the node's \
             authorized_keys"
        );
    }
    if log.contains("Connection refused") {
        return format!(
            "{who} is unreachable: the connection was refused (is sshd running there?)"
        );
    }
    if log.contains("timed out") {
        return format!(
            "{who} is unreachable: no answer within {}s",
            options.connect_timeout.as_secs()
        );
    }
    format!("{who} is unreachable: {last}")
}

/// What a node said about itself (one remote command, [`PROBE`]).
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// `uname -s`, e.g. `Linux`.
    pub os: String,
    /// `uname -m`, e.g. `x86_64`.
    pub arch: String,
    pub home: String,
    /// The gorgon path with `~/` expanded.
    pub gorgon_path: String,
    /// The first line of `gorgon --version` there; `None` when missing.
    pub gorgon_version: Option<String>,
    /// What a gorgon that is there but does not run said (e.g. a glibc
    /// too old for it).
    pub gorgon_broken: Option<String>,
    /// The SHA-256 of that gorgon, when asked for.
    pub gorgon_sha256: Option<String>,
    /// Whether the plugin asked about is already there, checksum verified.
    pub plugin_present: Option<bool>,
    /// How long the command took, login excluded.
    pub round_trip: Duration,
}

impl Facts {
    fn parse(text: &str) -> Facts {
        let mut facts = Facts::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim().to_string();
            match key {
                "os" => facts.os = value,
                "arch" => facts.arch = value,
                "home" => facts.home = value,
                "gorgon_path" => facts.gorgon_path = value,
                "gorgon" if !value.is_empty() => facts.gorgon_version = Some(value),
                "gorgon_broken" => facts.gorgon_broken = Some(value),
                "gorgon_sha256" if !value.is_empty() => facts.gorgon_sha256 = Some(value),
                "plugin" => facts.plugin_present = Some(value == "present"),
                _ => {}
            }
        }
        facts
    }

    /// The absolute path of the plugin with this checksum on the node.
    pub fn plugin_path(&self, sha256: &str) -> String {
        format!("{}/{PLUGIN_DIR}/{sha256}.so", self.home)
    }
}

/// Tells a node's OS, architecture, home, gorgon version (and checksum
/// with `$3 = hash`), and whether plugin `$2` (a SHA-256) is already
/// uploaded intact. `$1` is the gorgon path.
const PROBE: &str = r#"
g=$1
case $g in "~/"*) g=$HOME/${g#??} ;; esac
printf 'os=%s\narch=%s\nhome=%s\ngorgon_path=%s\n' "$(uname -s)" "$(uname -m)" "$HOME" "$g"
if p=$(command -v "$g" 2>/dev/null) && [ -x "$p" ]; then
    if v=$("$p" --version 2>&1); then
        printf 'gorgon=%s\n' "$(printf '%s\n' "$v" | head -n 1)"
    else
        printf 'gorgon_broken=%s\n' "$(printf '%s\n' "$v" | head -n 1)"
    fi
    if [ "$3" = hash ]; then
        printf 'gorgon_sha256=%s\n' "$(sha256sum < "$p" | cut -d ' ' -f 1)"
    fi
fi
if [ -n "$2" ]; then
    f=$HOME/.cache/gorgon/plugins/$2.so
    if [ -f "$f" ] && [ ! -L "$f" ] && [ "$(sha256sum < "$f" | cut -d ' ' -f 1)" = "$2" ]; then
        echo plugin=present
    else
        echo plugin=absent
    fi
fi
"#;

/// Receives a file on stdin into directory `$1` (`~/` allowed) as `$2`,
/// checks its SHA-256 against `$3` with `sha256sum` before moving it into
/// place (atomically), and sets mode `$4`. With `$5 = private` the
/// directory is made 0700 and must belong to the user; with `$5 = exec`
/// the new file's `--version` is printed.
const UPLOAD: &str = r#"
set -e
umask 077
d=$1
case $d in "~/"*) d=$HOME/${d#??} ;; esac
mkdir -p "$d"
if [ "$5" = private ]; then
    chmod 700 "$d"
    if [ -L "$d" ] || [ ! -O "$d" ]; then
        echo "$d is not a private directory of $(id -un)" >&2
        exit 1
    fi
fi
t=$d/.$2.$$.part
trap 'rm -f "$t"' EXIT
cat > "$t"
s=$(sha256sum < "$t" | cut -d ' ' -f 1)
if [ "$s" != "$3" ]; then
    echo "the uploaded copy is damaged (SHA-256 $s, expected $3)" >&2
    exit 1
fi
chmod "$4" "$t"
mv -f "$t" "$d/$2"
trap - EXIT
if [ "$5" = exec ]; then "$d/$2" --version | head -n 1; fi
"#;

impl Connection {
    /// Ends the master connection, when no one else holds it; a kept
    /// one is left running for the next gorgon command.
    pub async fn close(self) {
        if let Ok(session) = Arc::try_unwrap(self.session) {
            if self.kept {
                let _ = session.detach();
            } else {
                let _ = session.close().await;
            }
        }
    }

    /// Runs [`PROBE`]: one remote command.
    pub async fn probe(
        &self,
        plugin_sha256: Option<&str>,
        hash_gorgon: bool,
    ) -> anyhow::Result<Facts> {
        let started = Instant::now();
        let output = self
            .script(
                PROBE,
                &[
                    self.node.gorgon_path.as_str(),
                    plugin_sha256.unwrap_or(""),
                    if hash_gorgon { "hash" } else { "" },
                ],
                None,
                PROBE_TIMEOUT,
            )
            .await?;
        let mut facts = Facts::parse(&String::from_utf8_lossy(&output.stdout));
        facts.round_trip = started.elapsed();
        if facts.home.is_empty() {
            return Err(anyhow!(
                "node {} did not answer the probe: {}",
                self.node.name,
                first_line(&output.stderr)
            ));
        }
        Ok(facts)
    }

    /// Uploads a local file with [`UPLOAD`]: one remote command, the file
    /// streamed from disk (never held whole in memory), a few uploads at
    /// once per gorgon command. Returns what the script printed (the
    /// version, for an executable).
    pub async fn upload(
        &self,
        local: &Path,
        dir: &str,
        name: &str,
        sha256: &str,
        mode: &str,
        kind: UploadKind,
    ) -> anyhow::Result<String> {
        let file = tokio::fs::File::open(local)
            .await
            .with_context(|| format!("cannot read {}", local.display()))?;
        let size = file.metadata().await.map(|m| m.len()).unwrap_or(0);
        let kind = match kind {
            UploadKind::Private => "private",
            UploadKind::Executable => "exec",
        };
        let _permit = self
            .uploads
            .acquire()
            .await
            .context("the upload queue closed")?;
        let deadline = UPLOAD_BASE_TIMEOUT + Duration::from_secs(size >> 20);
        let output = self
            .script(
                UPLOAD,
                &[dir, name, sha256, mode, kind],
                Some(tokio::io::BufReader::with_capacity(UPLOAD_BUFFER, file)),
                deadline,
            )
            .await?;
        if !output.status.success() {
            return Err(anyhow!(
                "uploading {} to node {} failed: {}",
                local.display(),
                self.node.name,
                first_line(&output.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// Runs one constant script with `sh -c`, its values as positional
    /// parameters (each quoted by the crate), optionally feeding it the
    /// file `input`; a node that has not finished by `deadline` is named.
    async fn script(
        &self,
        script: &str,
        args: &[&str],
        input: Option<tokio::io::BufReader<tokio::fs::File>>,
        deadline: Duration,
    ) -> anyhow::Result<Output> {
        let name = &self.node.name;
        let what = if input.is_some() {
            "an upload"
        } else {
            "the probe"
        };
        let run = async {
            let mut command = self.session.command("sh");
            command
                .arg("-c")
                .arg(script)
                .arg("gorgon")
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .stdin(if input.is_some() {
                    Stdio::piped()
                } else {
                    Stdio::null()
                });
            let mut child = command
                .spawn()
                .await
                .with_context(|| format!("cannot run a command on node {name}"))?;
            if let Some(mut input) = input {
                let mut stdin = child.stdin().take().expect("stdin is piped");
                // A failed write shows up as the script's own error below.
                let _ = tokio::io::copy_buf(&mut input, &mut stdin).await;
                let _ = stdin.shutdown().await;
                drop(stdin);
            }
            child
                .wait_with_output()
                .await
                .with_context(|| format!("lost the connection to node {name}"))
        };
        tokio::time::timeout(deadline, run).await.map_err(|_| {
            anyhow!(
                "node {name} did not finish {what} within {}s",
                deadline.as_secs()
            )
        })?
    }
}

/// What an uploaded file is for.
#[derive(Debug, Clone, Copy)]
pub enum UploadKind {
    /// A plugin, in a directory only its user may enter.
    Private,
    /// The gorgon executable.
    Executable,
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no reason given")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::node::NodeConfig;

    fn node() -> Node {
        let config = NodeConfig {
            host: "127.0.0.2".parse().unwrap(),
            user: Some("bob".parse().unwrap()),
            port: std::num::NonZeroU16::new(2222),
            key: None,
            gorgon_path: None,
        };
        Node::new("a".parse().unwrap(), &config, None)
    }

    fn options() -> SshOptions {
        SshOptions {
            known_hosts: Some("/tmp/kh".into()),
            config_file: None,
            accept_new_host_keys: false,
            control_dir: "/tmp".into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            keep_connections: None,
        }
    }

    #[test]
    fn host_key_failures_are_told_plainly() {
        let changed = "@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
                       Offending ED25519 key in /tmp/kh:1\n\
                       Host key for [127.0.0.2]:2222 has changed and you have requested strict checking.\n\
                       Host key verification failed.";
        let text = explain_log(&node(), &options(), changed);
        assert!(text.contains("node a (bob@127.0.0.2:2222)"), "{text}");
        assert!(text.contains("host key has changed"), "{text}");
        assert!(text.contains("/tmp/kh:1"), "{text}");
        assert!(
            text.contains("ssh-keygen -R '[127.0.0.2]:2222' -f '/tmp/kh'"),
            "{text}"
        );
        let unknown = "No ED25519 host key is known for [127.0.0.2]:2222 and you have requested \
                       strict checking.\nHost key verification failed.";
        let text = explain_log(&node(), &options(), unknown);
        assert!(text.contains("not in /tmp/kh"), "{text}");
        assert!(text.contains("--accept-new-host-keys"), "{text}");
        let refused = "ssh: connect to host 127.0.0.2 port 2222: Connection refused";
        assert!(explain_log(&node(), &options(), refused).contains("unreachable"));
    }

    #[test]
    fn probe_output_is_read_by_key() {
        let facts = Facts::parse(
            "os=Linux\narch=x86_64\nhome=/home/b\ngorgon_path=/home/b/g\ngorgon=gorgon 0.1.0\n\
             plugin=absent\n",
        );
        assert_eq!(facts.arch, "x86_64");
        assert_eq!(facts.gorgon_version.as_deref(), Some("gorgon 0.1.0"));
        assert_eq!(facts.plugin_present, Some(false));
        assert_eq!(
            facts.plugin_path("ab"),
            "/home/b/.cache/gorgon/plugins/ab.so"
        );
    }
}
