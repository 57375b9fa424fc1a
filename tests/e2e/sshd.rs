//! Real SSH servers for the cluster tests: each test starts its own
//! `sshd` instances on loopback addresses and free ports, with generated
//! host keys, a generated client key, and a dedicated system user per node
//! (login shell `/bin/sh`). When the test ends, even by a failed
//! assertion, its sshd instances are stopped, the node users' processes
//! killed, and the users removed with their home directories: the machine
//! is left as it was found.
//!
//! Needs root (sshd switches to the node user) and openssh-server, which
//! scripts/setup.d/sshd.sh installs; scripts/test skips these tests when
//! not root. Nothing of the system's own ssh setup is used or touched:
//! gorgon gets its own known_hosts, ssh config and control directory
//! through the `[ssh]` table of a generated gorgon.toml. Everything a test
//! makes on disk is under a temporary directory named
//! `gorgon-e2e-t<pid>-*`.
//!
//! A test names its users (`gorgon-e2e-run-a`); the system user behind the
//! name carries this test process's id as well (`gorgon-e2e-run-a-t4711`,
//! see [`system_user`]), so two test runs at once (two checkouts on one
//! machine) never share, kill or remove each other's users, and
//! scripts/test can sweep up after a test process that was killed before
//! its cleanup ran: a user whose process is gone.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{gorgon_bin, wait_until, Gorgon};

const SSHD: &str = "/usr/sbin/sshd";

/// Runs a command that must succeed; returns its stdout.
pub fn sh(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} cannot start: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The system user behind a test's user `name`: `name-t<pid>`, the id of
/// this test process. Every function here that takes a user name maps it
/// (a name already mapped is kept), so a test uses its short names
/// throughout.
pub fn system_user(name: &str) -> String {
    let suffix = process_tag();
    if name.ends_with(&suffix) {
        name.to_string()
    } else {
        format!("{name}{suffix}")
    }
}

/// `-t<pid>`: what marks the users and directories of this test process
/// (no test's own name has a `-t` followed by digits).
fn process_tag() -> String {
    format!("-t{}", std::process::id())
}

/// Creates system user `name` afresh (a leftover of a killed run is
/// removed first), able to log in with a key (with `UsePAM no`, a locked
/// account is refused, hence `usermod -p '*'`), with `/bin/sh` as its shell
/// (a cheap login: every remote command pays for one). The test's
/// [`TestCluster`] removes it again when dropped.
pub fn create_user(name: &str) {
    let name = &system_user(name);
    assert!(
        name.starts_with("gorgon-e2e-"),
        "test users are named gorgon-e2e-* so that leftovers can be found: {name}"
    );
    if user_exists(name) {
        remove_user(name);
    }
    sh("useradd", &["--create-home", "--shell", "/bin/sh", name]);
    sh("usermod", &["--password", "*", name]);
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .args(["-u", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Kills every process of `name` and removes the user with its home
/// directory. `userdel` refuses while a process of the user lives, and
/// a killed process takes a moment to go: retried for a few seconds.
pub fn remove_user(name: &str) {
    let name = &system_user(name);
    let removed = wait_until(Duration::from_secs(10), || {
        kill_user(name);
        let removed = Command::new("userdel")
            .args(["--remove", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        removed || !user_exists(name)
    });
    if !removed {
        // A Drop must not panic while a failed test unwinds; the sweep in
        // scripts/test gets it.
        eprintln!("cannot remove test user {name}: scripts/test removes it at the end");
    }
}

/// Whether this process can start sshd as another user.
fn is_root() -> bool {
    sh("id", &["-u"]).trim() == "0"
}

/// The home directory of a user.
pub fn home_of(user: &str) -> PathBuf {
    let user = &system_user(user);
    let line = sh("getent", &["passwd", user]);
    PathBuf::from(line.trim().split(':').nth(5).expect("a passwd line"))
}

/// The uid of a user.
pub fn uid_of(user: &str) -> u32 {
    let user = &system_user(user);
    sh("id", &["-u", user]).trim().parse().unwrap()
}

/// A free port on `address`, found by binding to port 0.
fn free_port(address: &str) -> u16 {
    TcpListener::bind((address, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on {address}: {e}"))
}

/// Generates an ed25519 key pair at `path` (and `path.pub`).
pub fn keygen(path: &Path) -> String {
    sh(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "gorgon-e2e",
            "-f",
            path.to_str().unwrap(),
        ],
    );
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

/// One running sshd that lets one user in with one key.
pub struct Sshd {
    pub address: String,
    pub port: u16,
    pub user: String,
    /// `type base64` of its host key, for known_hosts.
    pub host_key: String,
    dir: PathBuf,
    child: Child,
}

impl Sshd {
    /// Starts sshd in `dir` (which must be readable by `user`: sshd reads
    /// the authorized keys as that user).
    pub fn start(dir: &Path, address: &str, user: &str, client_public_key: &str) -> Sshd {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let host_key_path = dir.join("host_key");
        let host_key = keygen(&host_key_path);
        let host_key = host_key
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let authorized = dir.join("authorized_keys");
        std::fs::write(&authorized, client_public_key).unwrap();
        std::fs::set_permissions(&authorized, std::fs::Permissions::from_mode(0o644)).unwrap();
        for _ in 0..5 {
            let port = free_port(address);
            let config = dir.join("sshd_config");
            let mut text = String::new();
            for line in [
                format!("Port {port}"),
                format!("ListenAddress {address}"),
                format!("HostKey {}", host_key_path.display()),
                format!("PidFile {}", dir.join("sshd.pid").display()),
                format!("AuthorizedKeysFile {}", authorized.display()),
                format!("AllowUsers {user}"),
                "UsePAM no".into(),
                "PasswordAuthentication no".into(),
                "KbdInteractiveAuthentication no".into(),
                "StrictModes no".into(),
                "PrintMotd no".into(),
                "MaxSessions 200".into(),
                "MaxStartups 200:30:400".into(),
                "LogLevel VERBOSE".into(),
            ] {
                let _ = writeln!(text, "{line}");
            }
            std::fs::write(&config, text).unwrap();
            let log = dir.join("sshd.log");
            let _ = std::fs::remove_file(dir.join("sshd.pid"));
            let child = Command::new(SSHD)
                .arg("-D")
                .arg("-f")
                .arg(&config)
                .arg("-E")
                .arg(&log)
                .stdin(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("{SSHD} cannot start (run scripts/setup.d/sshd.sh): {e}")
                });
            let mut sshd = Sshd {
                address: address.to_string(),
                port,
                user: user.to_string(),
                host_key: host_key.clone(),
                dir: dir.to_path_buf(),
                child,
            };
            if sshd.wait_until_listening() {
                return sshd;
            }
            // Lost a race for the port: try another one.
            sshd.stop();
        }
        panic!(
            "sshd did not start on {address}: {}",
            std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
        );
    }

    fn wait_until_listening(&mut self) -> bool {
        let target: SocketAddr = format!("{}:{}", self.address, self.port).parse().unwrap();
        let mut ended = false;
        let listening = wait_until(Duration::from_secs(10), || {
            ended = matches!(self.child.try_wait(), Ok(Some(_)));
            ended
                || (TcpStream::connect_timeout(&target, Duration::from_millis(100)).is_ok()
                    && self.dir.join("sshd.pid").exists())
        });
        listening && !ended
    }

    /// The known_hosts line for this server (`[addr]:port type key`).
    pub fn known_hosts_line(&self) -> String {
        format!("[{}]:{} {}\n", self.address, self.port, self.host_key)
    }

    /// How many sessions (remote commands) this server started so far.
    pub fn sessions(&self) -> usize {
        std::fs::read_to_string(self.dir.join("sshd.log"))
            .unwrap_or_default()
            .matches("Starting session:")
            .count()
    }

    /// How many logins this server accepted so far.
    pub fn logins(&self) -> usize {
        std::fs::read_to_string(self.dir.join("sshd.log"))
            .unwrap_or_default()
            .matches("Accepted publickey")
            .count()
    }

    /// Stops the listener by the PID in its PidFile. Sessions in progress
    /// live on: they are other processes.
    pub fn stop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("sshd.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        } else {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Kills every process of `user`: its sshd sessions and the remote
/// workers. As if the node died.
pub fn kill_user(user: &str) {
    let user = &system_user(user);
    let _ = Command::new("pkill").args(["-KILL", "-u", user]).status();
}

/// The processes of `user` whose command line contains `pattern`.
pub fn processes_of(user: &str, pattern: &str) -> Vec<String> {
    let user = &system_user(user);
    let output = Command::new("pgrep")
        .args(["-a", "-u", user, "-f", pattern])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A group of test nodes, each an sshd with its own user on its own
/// loopback address, and a gorgon.toml describing them.
pub struct TestCluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<(String, Sshd)>,
    pub config: PathBuf,
    pub known_hosts: PathBuf,
    pub key: PathBuf,
    /// A copy of the gorgon under test that every node user can run.
    pub gorgon: PathBuf,
}

/// A loopback address no other node of this test process uses (all of
/// 127/8 is on `lo`), so tests running in parallel never meet.
pub fn fresh_address() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let index = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("127.0.{}.{}", 10 + index / 200, 2 + index % 200)
}

impl TestCluster {
    /// Starts one node per `(name, user)`; the config lists them all with
    /// their host keys known and `gorgon_path` pointing at this build.
    pub fn start(nodes: &[(&str, &str)]) -> TestCluster {
        assert!(
            is_root(),
            "the cluster tests need root (sshd switches to each node's user); \
             scripts/test skips them when not root, `cargo test -- --skip cluster` too"
        );
        let dir = tempfile::Builder::new()
            .prefix(&format!("gorgon-e2e{}-", process_tag()))
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let key = dir.path().join("client_key");
        let public = keygen(&key);
        let gorgon = dir.path().join("gorgon");
        std::fs::copy(gorgon_bin(), &gorgon).unwrap();
        std::fs::set_permissions(&gorgon, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut started = Vec::new();
        for (name, user) in nodes {
            create_user(user);
            // Removes the user again if this node's sshd cannot start.
            let guard = UserGuard(user.to_string());
            let sshd = Sshd::start(
                &dir.path().join(name),
                &fresh_address(),
                &system_user(user),
                &public,
            );
            std::mem::forget(guard);
            started.push((name.to_string(), sshd));
        }
        let known_hosts = dir.path().join("known_hosts");
        let lines: String = started.iter().map(|(_, s)| s.known_hosts_line()).collect();
        std::fs::write(&known_hosts, lines).unwrap();
        std::fs::write(dir.path().join("ssh_config"), "").unwrap();
        let cluster = TestCluster {
            config: dir.path().join("gorgon.toml"),
            known_hosts,
            key,
            gorgon,
            nodes: started,
            dir,
        };
        let mut text = cluster.ssh_table();
        for (name, sshd) in &cluster.nodes {
            let _ = write!(
                text,
                "\n[nodes.{name}]\nhost = \"{}\"\nport = {}\nuser = \"{}\"\nkey = \"{}\"\n\
                 gorgon_path = \"{}\"\n",
                sshd.address,
                sshd.port,
                sshd.user,
                cluster.key.display(),
                cluster.gorgon.display()
            );
        }
        std::fs::write(&cluster.config, text).unwrap();
        cluster
    }

    /// The `[ssh]` table: this cluster's known_hosts, an empty ssh config
    /// and a private control directory.
    pub fn ssh_table(&self) -> String {
        format!(
            "[ssh]\nknown_hosts = \"{}\"\nconfig = \"{}\"\ncontrol_dir = \"{}\"\nconnect_timeout = 5\n",
            self.known_hosts.display(),
            self.dir.path().join("ssh_config").display(),
            self.dir.path().join("ctl").display()
        )
    }

    /// Adds a node to the config that nothing answers for (a free port
    /// on an unused loopback address: the connection is refused).
    pub fn add_unreachable_node(&self, name: &str) {
        let address = fresh_address();
        let port = free_port(&address);
        let mut text = std::fs::read_to_string(&self.config).unwrap();
        let _ = write!(
            text,
            "\n[nodes.{name}]\nhost = \"{address}\"\nport = {port}\nuser = \"nobody\"\nkey = \"{}\"\n",
            self.key.display()
        );
        std::fs::write(&self.config, text).unwrap();
    }

    pub fn node(&self, name: &str) -> &Sshd {
        &self
            .nodes
            .iter()
            .find(|(n, _)| n == name)
            .expect("a node")
            .1
    }

    /// `gorgon run --plugin PLUGIN` with this cluster's config.
    pub fn run(&self, plugin: impl AsRef<std::ffi::OsStr>) -> Gorgon {
        Gorgon::run(plugin).config(&self.config)
    }

    /// Another gorgon command (`cluster check`) with this cluster's config.
    pub fn command<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(&self, args: I) -> Gorgon {
        Gorgon::command(args).config(&self.config)
    }

    /// A directory every node user can write numbers into.
    pub fn numbers_dir(&self) -> PathBuf {
        let dir = self.dir.path().join("numbers");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        dir
    }
}

/// Stops every node and removes the node users: this runs when the test
/// ends, whether it passed or panicked.
impl Drop for TestCluster {
    fn drop(&mut self) {
        for (_, sshd) in &mut self.nodes {
            sshd.stop();
        }
        for (_, sshd) in &self.nodes {
            remove_user(&sshd.user);
        }
    }
}

/// Removes a user created for a node whose sshd then failed to start
/// (the node is not in a TestCluster yet, whose Drop would).
struct UserGuard(String);

impl Drop for UserGuard {
    fn drop(&mut self) {
        remove_user(&self.0);
    }
}
