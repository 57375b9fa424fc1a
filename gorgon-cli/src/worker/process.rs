//! The worker process's own settings, made once at its start, and the
//! scheduling policy of its threads.

use std::fs::File;
use std::io::{self, BufWriter};
use std::os::fd::AsFd;

use nix::libc;
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::unistd::dup2_stdout;

/// Moves stdout aside for frames and points fd 1 at stderr, so a plugin
/// that prints cannot corrupt the frame stream. (The copy is
/// close-on-exec, above the standard descriptors: `F_DUPFD_CLOEXEC` 3.)
pub fn take_stdout() -> io::Result<BufWriter<File>> {
    let frames = io::stdout().as_fd().try_clone_to_owned()?;
    dup2_stdout(io::stderr())?;
    Ok(BufWriter::new(File::from(frames)))
}

/// Ctrl-C in a terminal reaches the whole process group; the parent
/// decides when workers stop and says so on stdin.
pub fn ignore_interrupts() {
    // SAFETY: installing SIG_IGN runs no handler code, so there is no
    // handler to be unsafe.
    let _ = unsafe { signal(Signal::SIGINT, SigHandler::SigIgn) };
}

/// Raises this worker's soft limit of open descriptors to the hard one, as
/// Go's runtime does for every program: with `--fibers` a worker may hold
/// a connection per fiber, thousands of them, and the usual soft limit
/// (1024) would fail the run for no reason the user chose. If it cannot
/// be raised, the plugin's own error names the limit when it is reached.
pub fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

/// Switches the calling thread to `SCHED_BATCH` (`--batch-scheduling`).
/// It keeps its share of CPU (same nice value) but gives up wakeup
/// preemption: a thread woken by a reply waits for the next tick or for
/// the running task to block, instead of preempting it. With the server
/// under test on the same machine, the server then answers the requests
/// it has before the client threads run, with fewer context switches on
/// both sides. It needs no privilege; if the system refuses, the thread
/// keeps the default policy, which only costs speed.
pub fn batch_this_thread() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: a plain system call on the calling thread (pid 0) with a
    // valid parameter block, which it only reads. (nix has no wrapper.)
    let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
}

/// Ends the process at once: no atexit handler (a plugin's included) and
/// no destructor runs, so nothing a stuck plugin holds can delay it.
pub(super) fn exit_now(code: u8) -> ! {
    // SAFETY: `_exit` takes no pointer and never returns; skipping the
    // handlers is the point.
    unsafe { nix::libc::_exit(i32::from(code)) }
}
