//! A worker on a node: `gorgon worker …` started over the node's SSH
//! connection, seen by the collector as one more [`Link`].
//!
//! With the crate's native multiplexing, the remote command's stdin and
//! stdout are plain pipes whose other ends the ssh master holds; turned
//! into blocking files they are read and written exactly like a local
//! child's, so the collector needs no async code. Only `wait` goes through
//! the runtime. Closing stdin is the protocol's "stop": a dropped link or a
//! dropped SSH channel makes the remote worker wind down by itself.

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use openssh::{Session, Stdio};
use tokio::runtime::Handle;

use crate::collect::{describe_exit, Link};

/// How long `wait` gives a remote worker to end after its input closed.
const WAIT_LIMIT: Duration = Duration::from_secs(30);
/// Runs the worker (`$0 $@`) as a child of `sh`, not in its place: a
/// worker killed by a signal is then reported as 128 + its number, where
/// a worker that replaced the shell would leave the channel without a
/// status, which looks the same as a dropped connection.
const WORKER_SHELL: &str = r#""$0" "$@"; exit $?"#;

pub struct RemoteLink {
    name: String,
    child: Option<openssh::Child<Arc<Session>>>,
    /// `None` once closed (by `kill`): writes then go nowhere.
    stdin: Option<File>,
    stdout: Option<File>,
    closed: Closed,
    handle: Handle,
}

impl RemoteLink {
    /// Starts `program args…` on the node; every argument is quoted for
    /// the remote shell by the crate.
    pub async fn spawn(
        session: Arc<Session>,
        handle: Handle,
        name: String,
        program: &str,
        args: &[String],
    ) -> anyhow::Result<RemoteLink> {
        let mut child = Session::arc_command(session, "sh")
            .arg("-c")
            .arg(WORKER_SHELL)
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .await
            .with_context(|| format!("cannot start {name}"))?;
        let stdin = child.stdin().take().expect("stdin is piped");
        let stdout = child.stdout().take().expect("stdout is piped");
        Ok(RemoteLink {
            stdin: Some(File::from(
                stdin
                    .into_owned_fd()
                    .context("cannot take the remote stdin")?,
            )),
            stdout: Some(File::from(
                stdout
                    .into_owned_fd()
                    .context("cannot take the remote stdout")?,
            )),
            child: Some(child),
            name,
            closed: Closed,
            handle,
        })
    }
}

impl Link for RemoteLink {
    fn name(&self) -> &str {
        &self.name
    }

    fn control(&mut self) -> &mut dyn Write {
        match &mut self.stdin {
            Some(stdin) => stdin,
            None => &mut self.closed,
        }
    }

    fn take_frames(&mut self) -> Box<dyn Read + Send> {
        Box::new(self.stdout.take().expect("frames are taken once"))
    }

    fn wait(&mut self) -> String {
        // Without input the worker stops; then its exit status arrives.
        self.stdin = None;
        let Some(child) = self.child.take() else {
            return "ended".to_string();
        };
        let waited = self
            .handle
            .block_on(async { tokio::time::timeout(WAIT_LIMIT, child.wait()).await });
        match waited {
            // The remote login shell runs the worker as its child and
            // reports a death by signal N as exit code 128 + N.
            Ok(Ok(status)) => match status.code() {
                Some(code @ 129..=192) => format!(
                    "was killed by signal {} ({})",
                    code - 128,
                    crate::collect::signal_name(code - 128)
                ),
                _ => describe_exit(status),
            },
            // Its shell, which outlives the worker, ended with no status:
            // the channel or the whole connection went away.
            Ok(Err(openssh::Error::RemoteProcessTerminated)) => {
                "lost its connection (or its shell on the node was killed)".to_string()
            }
            Ok(Err(_)) => "lost its connection".to_string(),
            Err(_) => format!(
                "did not end within {}s of being told to stop",
                WAIT_LIMIT.as_secs()
            ),
        }
    }

    fn kill(&mut self) {
        // There is no remote signal over a multiplexed channel; end of
        // input is the worker's order to stop.
        self.stdin = None;
    }
}

/// Where control lines go once a link's input is closed.
struct Closed;

impl Write for Closed {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Any link, tagged with the node it runs on, for the per-node figures,
/// and noting when its `ready` arrived (the node's "workers ready" phase).
pub struct OnNode {
    pub link: Box<dyn Link>,
    pub node: String,
    pub ready: Arc<OnceLock<Instant>>,
}

/// A worker's frames, watched for its `ready` line: a scan of the bytes
/// as they pass, which the collector then parses as usual.
struct WatchReady {
    frames: Box<dyn Read + Send>,
    ready: Arc<OnceLock<Instant>>,
}

impl Read for WatchReady {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.frames.read(buf)?;
        if self.ready.get().is_none() && contains(&buf[..n], br#""type":"ready""#) {
            let _ = self.ready.set(Instant::now());
        }
        Ok(n)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

impl Link for OnNode {
    fn name(&self) -> &str {
        self.link.name()
    }

    fn control(&mut self) -> &mut dyn Write {
        self.link.control()
    }

    fn take_frames(&mut self) -> Box<dyn Read + Send> {
        Box::new(WatchReady {
            frames: self.link.take_frames(),
            ready: self.ready.clone(),
        })
    }

    fn wait(&mut self) -> String {
        self.link.wait()
    }

    fn kill(&mut self) {
        self.link.kill()
    }

    fn node(&self) -> Option<&str> {
        Some(&self.node)
    }
}
