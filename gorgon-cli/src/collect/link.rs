//! How the collector reaches a worker: the [`Link`] seam, and a local
//! child process behind it ([`LocalLink`]). A cluster node's worker is a
//! `RemoteLink` in [`crate::cluster`]; tests script one.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};

use anyhow::Context as _;

use crate::spec::WorkerSpec;

/// One worker process, wherever it runs.
pub trait Link: Send {
    /// How the report and messages name this worker.
    fn name(&self) -> &str;
    /// The worker's stdin, for control lines.
    fn control(&mut self) -> &mut dyn Write;
    /// The worker's stdout, where its frames arrive. Taken once.
    fn take_frames(&mut self) -> Box<dyn Read + Send>;
    /// Waits for the worker to end and says how it ended, for a message.
    fn wait(&mut self) -> String;
    /// Ends the worker at once.
    fn kill(&mut self);
    /// The cluster node it runs on, for per-node figures; `None` in a
    /// plain local run.
    fn node(&self) -> Option<&str> {
        None
    }
}

/// A worker that is a child process of this one.
pub struct LocalLink {
    name: String,
    child: Child,
    stdin: ChildStdin,
}

impl LocalLink {
    /// Starts `gorgon worker` (this same executable) with `spec`. The
    /// worker dies with this process, even of `SIGKILL`: the kernel sends
    /// it `SIGKILL` when its parent goes (a parent-death signal), so no
    /// worker is ever left calling a plugin for nobody.
    pub fn spawn(name: String, spec: &WorkerSpec) -> anyhow::Result<LocalLink> {
        use std::os::unix::process::CommandExt as _;
        let exe = std::env::current_exe().context("cannot find the gorgon executable")?;
        let parent = nix::unistd::getpid();
        let mut command = Command::new(exe);
        // SAFETY: between fork and exec only async-signal-safe calls are
        // made (prctl, getppid, _exit), and nothing is allocated.
        unsafe {
            command.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
                // The parent may have died before the signal was asked for.
                if nix::unistd::getppid() != parent {
                    nix::libc::_exit(1);
                }
                Ok(())
            })
        };
        let mut child = command
            .args(spec.arguments()?)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        Ok(LocalLink { name, child, stdin })
    }
}

impl Link for LocalLink {
    fn name(&self) -> &str {
        &self.name
    }

    fn control(&mut self) -> &mut dyn Write {
        &mut self.stdin
    }

    fn take_frames(&mut self) -> Box<dyn Read + Send> {
        Box::new(self.child.stdout.take().expect("frames are taken once"))
    }

    fn wait(&mut self) -> String {
        match self.child.wait() {
            Ok(status) => describe_exit(status),
            Err(error) => format!("could not be waited for ({error})"),
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
    }
}

/// Says how a process ended, the way a person would want to read it.
pub fn describe_exit(status: ExitStatus) -> String {
    if let Some(signal) = status.signal() {
        format!("was killed by signal {signal} ({})", signal_name(signal))
    } else {
        match status.code() {
            Some(code) => format!("exited with code {code}"),
            None => "ended for an unknown reason".to_string(),
        }
    }
}

/// `SIGABRT` for 6: the name people know a signal by.
pub fn signal_name(number: i32) -> &'static str {
    nix::sys::signal::Signal::try_from(number)
        .map(|s| s.as_str())
        .unwrap_or("unknown signal")
}
