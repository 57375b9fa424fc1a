//! What the machine allows, checked before a run starts anything.
//!
//! `-p 1000000000` would otherwise fork until the kernel says no, and
//! `-t 100000` would get as far as some thread's `clone` failing, long
//! after the first workers began calling. The kernel's limits are all
//! readable up front, so a run that cannot fit is refused with the limit
//! it would hit and how to raise it, before the first process starts.
//!
//! The estimates are deliberately on the low side (a worker's own threads
//! and memory as measured with the no-op plugin): a refusal is then always
//! right, and a plugin that needs more than the floor still fails later,
//! with the kernel's own error.

use std::path::Path;

/// Threads a worker process runs besides its calling threads (its main
/// thread and its control reader), measured in `/proc/PID/task`.
const WORKER_OWN_THREADS: u64 = 2;
/// Memory a worker needs before its threads do anything: about 6 MiB peak
/// resident with the no-op plugin.
const WORKER_BASE_BYTES: u64 = 6 << 20;
/// Memory mappings of a worker before its threads (the executable, its
/// libraries, the plugin, the heap): about 60 measured, with room.
const WORKER_BASE_MAPS: u64 = 200;
/// Mappings per thread or fiber stack: the stack and its guard page.
const MAPS_PER_STACK: u64 = 2;
/// The most processes one run may start on one machine, whatever the
/// limits say: beyond it the parent's own bookkeeping (a reader thread and
/// a pipe per worker) is the problem, not the kernel.
pub const MAX_PROCESSES: u64 = 10_000;

/// The work one machine is asked to carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand {
    pub processes: u64,
    pub threads: u64,
    /// Lanes per thread: 1 without `--fibers`.
    pub fibers: u64,
}

impl Demand {
    /// Tasks (processes and threads, as the kernel counts them) of the
    /// workers and of the parent's reader per worker.
    fn tasks(&self) -> u64 {
        self.processes
            .saturating_mul(self.threads.saturating_add(WORKER_OWN_THREADS + 1))
    }

    /// Memory mappings one worker needs: a stack per thread, and one per
    /// fiber when there are fibers.
    fn maps_per_worker(&self) -> u64 {
        let stacks = match self.fibers {
            0 | 1 => self.threads,
            fibers => self.threads.saturating_mul(fibers.saturating_add(1)),
        };
        WORKER_BASE_MAPS.saturating_add(stacks.saturating_mul(MAPS_PER_STACK))
    }

    fn bytes(&self) -> u64 {
        self.processes.saturating_mul(WORKER_BASE_BYTES)
    }
}

/// The kernel's limits that a run's size can hit; `None` where unknown or
/// unlimited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// `kernel.threads-max`: tasks on the whole machine.
    pub threads_max: Option<u64>,
    /// `kernel.pid_max`: task ids, so tasks too.
    pub pid_max: Option<u64>,
    /// The cgroup's `pids.max`: tasks in this container.
    pub cgroup_pids_max: Option<u64>,
    /// `ulimit -u` (RLIMIT_NPROC) less the tasks this user already runs;
    /// root is not held to it.
    pub user_tasks_left: Option<u64>,
    /// `vm.max_map_count`: mappings per process.
    pub max_map_count: Option<u64>,
    /// `MemAvailable` of /proc/meminfo.
    pub memory_available: Option<u64>,
}

impl Limits {
    /// Reads the limits of this machine from /proc and /sys.
    pub fn of_this_machine() -> Limits {
        Limits {
            threads_max: read_number("/proc/sys/kernel/threads-max"),
            pid_max: read_number("/proc/sys/kernel/pid_max"),
            cgroup_pids_max: cgroup_pids_max(),
            user_tasks_left: user_tasks_left(),
            max_map_count: read_number("/proc/sys/vm/max_map_count"),
            memory_available: memory_available(),
        }
    }

    /// Refuses `demand` in one sentence naming the first limit it breaks.
    pub fn check(&self, demand: Demand) -> Result<(), String> {
        let shape = format!(
            "{}×{}{}",
            demand.processes,
            demand.threads,
            match demand.fibers {
                0 | 1 => String::new(),
                fibers => format!("×{fibers} fibers"),
            }
        );
        if demand.processes > MAX_PROCESSES {
            return Err(format!(
                "-p {} is more processes than one machine runs well (at most {MAX_PROCESSES}): \
                 use threads (-t) or --fibers for more concurrency, or spread the run over nodes",
                demand.processes
            ));
        }
        let tasks = demand.tasks();
        let task_limits = [
            (
                self.threads_max,
                "the kernel's thread limit (sysctl kernel.threads-max)",
            ),
            (
                self.pid_max,
                "the kernel's process id limit (sysctl kernel.pid_max)",
            ),
            (
                self.cgroup_pids_max,
                "this container's task limit (cgroup pids.max)",
            ),
            (
                self.user_tasks_left,
                "what this user may still start (ulimit -u)",
            ),
        ];
        for (limit, name) in task_limits {
            if let Some(limit) = limit.filter(|&limit| tasks > limit) {
                return Err(format!(
                    "{shape} needs about {tasks} processes and threads but {name} allows \
                     {limit}: use fewer processes or threads, or raise that limit"
                ));
            }
        }
        if let Some(limit) = self.max_map_count {
            let maps = demand.maps_per_worker();
            if maps > limit {
                return Err(format!(
                    "{shape} needs about {maps} memory mappings per worker process (two per \
                     thread or fiber stack) but vm.max_map_count allows {limit}: use more \
                     processes and fewer threads or fibers, or raise it with sysctl"
                ));
            }
        }
        if let Some(available) = self.memory_available {
            let bytes = demand.bytes();
            if bytes > available {
                return Err(format!(
                    "{shape} needs at least {} MiB for its worker processes but {} MiB of \
                     memory is available: use fewer processes (threads share a process's memory)",
                    bytes >> 20,
                    available >> 20
                ));
            }
        }
        Ok(())
    }
}

fn read_number(path: impl AsRef<Path>) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `pids.max` of this process's cgroup, v2 or v1 ("max" is no limit).
fn cgroup_pids_max() -> Option<u64> {
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in groups.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let dir = match controllers {
            "" => format!("/sys/fs/cgroup{path}"),
            list if list.split(',').any(|c| c == "pids") => format!("/sys/fs/cgroup/pids{path}"),
            _ => continue,
        };
        if let Some(max) = read_number(format!("{dir}/pids.max")) {
            return Some(max);
        }
    }
    None
}

/// RLIMIT_NPROC less the tasks this user runs now; `None` for root (the
/// kernel does not hold root to it) or when unlimited.
fn user_tasks_left() -> Option<u64> {
    use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};
    let uid = nix::unistd::getuid();
    if uid.is_root() {
        return None;
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NPROC).ok()?;
    if soft == RLIM_INFINITY {
        return None;
    }
    Some(soft.saturating_sub(tasks_of_user(uid.as_raw())))
}

/// Tasks (threads included) of the processes owned by `uid`.
fn tasks_of_user(uid: u32) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
        .map(|e| std::fs::read_dir(e.path().join("task")).map_or(1, |tasks| tasks.count() as u64))
        .sum()
}

fn memory_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Limits {
        Limits {
            threads_max: Some(192_000),
            pid_max: Some(32_768),
            cgroup_pids_max: None,
            user_tasks_left: None,
            max_map_count: Some(65_530),
            memory_available: Some(22 << 30),
        }
    }

    fn demand(processes: u64, threads: u64, fibers: u64) -> Demand {
        Demand {
            processes,
            threads,
            fibers,
        }
    }

    #[test]
    fn ordinary_runs_fit() {
        machine().check(demand(4, 16, 1)).unwrap();
        machine().check(demand(2, 1, 1000)).unwrap();
        machine().check(demand(64, 64, 1)).unwrap();
    }

    #[test]
    fn absurd_process_counts_are_refused_before_any_arithmetic_matters() {
        let error = machine().check(demand(4_294_967_295, 1, 1)).unwrap_err();
        assert!(
            error.starts_with("-p 4294967295 is more processes"),
            "{error}"
        );
    }

    #[test]
    fn the_task_limit_that_breaks_is_named() {
        let error = machine().check(demand(1000, 100, 1)).unwrap_err();
        assert!(
            error.contains("kernel.threads-max") || error.contains("kernel.pid_max"),
            "{error}"
        );
        let error = machine().check(demand(2, 30_000, 1)).unwrap_err();
        assert!(error.contains("kernel.pid_max"), "{error}");
        assert!(error.contains("2×30000 needs about 60006"), "{error}");
    }

    #[test]
    fn a_container_or_user_limit_is_named() {
        let mut limits = machine();
        limits.cgroup_pids_max = Some(100);
        assert!(limits
            .check(demand(10, 10, 1))
            .unwrap_err()
            .contains("pids.max"));
        let mut limits = machine();
        limits.user_tasks_left = Some(50);
        assert!(limits
            .check(demand(10, 10, 1))
            .unwrap_err()
            .contains("ulimit -u"));
    }

    #[test]
    fn too_many_stacks_in_one_process_name_the_map_count() {
        let error = machine().check(demand(1, 10, 5000)).unwrap_err();
        assert!(error.contains("vm.max_map_count"), "{error}");
        assert!(error.contains("1×10×5000 fibers"), "{error}");
    }

    #[test]
    fn memory_for_the_workers_is_checked() {
        let mut limits = machine();
        limits.memory_available = Some(100 << 20);
        let error = limits.check(demand(100, 1, 1)).unwrap_err();
        assert!(
            error.contains("600 MiB") && error.contains("100 MiB"),
            "{error}"
        );
    }

    #[test]
    fn this_machine_has_readable_limits() {
        let limits = Limits::of_this_machine();
        assert!(limits.threads_max.is_some_and(|n| n > 100), "{limits:?}");
        assert!(limits.memory_available.is_some(), "{limits:?}");
        limits.check(demand(1, 1, 1)).unwrap();
    }
}
