//! The parent's open files: a cluster run holds a few descriptors per
//! node and per remote worker (the channel's pipes and its socket to the
//! ssh master), so the usual soft limit of 1024 (or a CI's 256) would stop
//! a run of a few hundred nodes half-way, with "Too many open files" on
//! every node. The soft limit is raised to the hard one first, and a run
//! that still cannot fit is refused before the first connection, naming
//! the limit and the fix.

use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};

use crate::exit::Failure;

/// What the parent holds besides the nodes': its standard streams, the
/// SSH runtime's event descriptors, the plugin, output files, with room.
const BASE: u64 = 48;
/// Per node: the socket of a command in flight to its ssh master and the
/// master's log pipe while it logs in (measured: 2–3).
const PER_NODE: u64 = 4;
/// Per worker process, remote or local: its input and output pipes and,
/// for a remote one, its socket to the master (measured: 3).
const PER_WORKER: u64 = 4;

/// The soft limit now in force, after raising it to the hard limit where
/// that is higher.
pub fn raise_soft_limit() -> Option<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    // An unlimited hard limit still stops at the kernel's `nr_open`.
    let ceiling = if hard == RLIM_INFINITY {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(soft)
    } else {
        hard
    };
    if ceiling > soft && setrlimit(Resource::RLIMIT_NOFILE, ceiling, hard).is_ok() {
        return Some(ceiling);
    }
    Some(soft)
}

/// Descriptors the parent needs for `nodes` nodes running `processes`
/// worker processes each (plus `local_processes` here).
pub fn needed(nodes: u64, processes: u64, local_processes: u64) -> u64 {
    let workers = nodes
        .saturating_mul(processes)
        .saturating_add(local_processes);
    BASE.saturating_add(nodes.saturating_mul(PER_NODE))
        .saturating_add(workers.saturating_mul(PER_WORKER))
}

/// Raises the limit and refuses (exit 2) a run it cannot hold.
pub fn ensure(nodes: usize, processes: u32, local: bool) -> Result<(), Failure> {
    let Some(limit) = raise_soft_limit() else {
        return Ok(());
    };
    let processes = u64::from(processes);
    let local_processes = if local { processes } else { 0 };
    let need = needed(nodes as u64, processes, local_processes);
    if need <= limit {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "{nodes} nodes × {processes} processes need about {need} open files in gorgon, but \
         the open-files limit is {limit} (its hard limit, `ulimit -Hn`): raise it (e.g. \
         `ulimit -n {need}` as root, LimitNOFILE= in a systemd unit, or nofile in \
         /etc/security/limits.conf), or run on fewer nodes"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_need_grows_with_nodes_and_workers() {
        assert_eq!(needed(0, 0, 0), BASE);
        assert_eq!(needed(10, 2, 0), BASE + 10 * PER_NODE + 20 * PER_WORKER);
        assert!(needed(200, 4, 4) > 1024);
        assert_eq!(needed(u64::MAX, u64::MAX, 1), u64::MAX);
    }
}
