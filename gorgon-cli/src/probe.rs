//! Loading the plugin once in a throw-away child process before the run.
//!
//! `dlopen` runs the library's load-time code (constructors, static
//! initialisers of C++ or Rust `ctor`s) and resolves every symbol it needs
//! from other libraries. Either can fail in ways no header tells: a
//! missing `libssl.so.3`, a constructor that prints to stdout, exits, or
//! crashes. Done in the parent, the first would be fine but the others
//! would corrupt the report on stdout or end gorgon with an unexplained
//! exit code. Done in a child whose stdout goes nowhere, each becomes one
//! sentence and exit code 2 before any worker starts, and the parent never
//! runs a line of plugin code.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::exit::{self, Code, Failure};
use crate::plugin::Plugin;

/// How long a plugin's load-time code may take: far more than any sane
/// initialiser, far less than a user would wait before suspecting a hang.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Marks the child's own sentence among whatever the plugin printed on
/// stderr while it loaded.
const MARK: &str = "gorgon-probe: ";

/// The parent's side: loads `plugin` in a child `gorgon probe` and says in
/// one sentence why it could not be loaded.
pub fn check_loads(plugin: &Path) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find gorgon itself: {e}"))?;
    let mut child = Command::new(exe)
        .arg("probe")
        .arg(plugin)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start a process to load the plugin: {e}"))?;
    let stderr = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || read_lines(stderr));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < LOAD_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "plugin {} did not finish loading within {}: its load-time code \
                     (a constructor or static initialiser) hangs",
                    plugin.display(),
                    humantime::format_duration(LOAD_TIMEOUT)
                ));
            }
        }
    };
    let lines = reader.join().unwrap_or_default();
    if status.success() {
        // What the plugin prints while loading, the workers print again.
        return Ok(());
    }
    let (ours, theirs): (Vec<_>, Vec<_>) = lines.iter().partition(|l| l.starts_with(MARK));
    // What the plugin itself said while loading may explain its failure.
    for line in theirs {
        eprintln!("{line}");
    }
    if let Some(sentence) = ours.first() {
        return Err(sentence[MARK.len()..].to_string());
    }
    use std::os::unix::process::ExitStatusExt;
    let how = match (status.signal(), status.code()) {
        (Some(signal), _) => format!("crashed with {}", signal_name(signal)),
        (None, Some(code)) => format!("ended the process with exit code {code}"),
        (None, None) => "ended the process".to_string(),
    };
    Err(format!(
        "plugin {} {how} while it was being loaded, before any call (its load-time code: \
         a constructor or static initialiser): it cannot run in gorgon",
        plugin.display()
    ))
}

/// The child's side (`gorgon probe PATH`): loads the plugin and exits 0,
/// or says why not after the mark and exits 2.
pub fn main(plugin: &Path) -> Result<Code, Failure> {
    match Plugin::load(plugin) {
        Ok(_) => Ok(Code(exit::OK)),
        Err(error) => {
            eprintln!("{MARK}{error}");
            Ok(Code(exit::USAGE))
        }
    }
}

fn read_lines(stderr: impl Read) -> Vec<String> {
    BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .collect()
}

fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {signal}"))
}
