//! Fibers: several calls at once on one worker thread (`--fibers N`).
//!
//! A blocking operation holds its thread while it waits, so the
//! concurrency of a run is its number of threads, and every reply wakes a
//! thread of its own. For a server on the same machine that wake-up is
//! the server's cost, paid once per request: measured against nginx it is
//! what kept thread-per-connection clients about 6% below wrk, whose two
//! threads each serve many connections from one `epoll` wait
//! (docs/architecture.md, Fibers).
//!
//! With fibers, each worker thread runs N lanes, each with a stack of its
//! own (corosensei) and its own plugin state, running the same closed or
//! paced loop as a lane on a thread of its own does, and recording into
//! the thread's recorder. A plugin that waits
//! through [`Recorder::wait`](gorgon_plugin_api::Recorder::wait) suspends
//! its fiber; the thread's scheduler below then runs the fibers that are
//! ready, and when none is, makes one `epoll_wait` for all of them. The
//! operation stays plain sequential code, and its latency is still the
//! time from its start to its end, waits included.
//!
//! A plugin that never waits through the recorder runs its fibers one
//! after the other: correct, counted exactly, but no more concurrent
//! than one thread.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::os::fd::{BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use nix::errno::Errno;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

/// Each fiber's stack. It is reserved, not committed: pages are taken as
/// they are touched, so a thousand fibers cost their real depth, not
/// 512 MiB. Deep enough for the plugins we know (the HTTP plugin with
/// serde_json uses well under 64 KiB); a guard page turns an overflow
/// into a crash that is reported, not into corruption.
pub const STACK_BYTES: usize = 512 * 1024;

/// How a fiber's wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    Ready,
    TimedOut,
    /// The wait itself failed with this `errno` (a closed descriptor, say).
    Failed(i32),
}

/// What a fiber waits for when it hands the thread back.
#[derive(Debug, Clone, Copy)]
pub enum Suspend {
    Io {
        fd: RawFd,
        writable: bool,
        deadline: Option<Instant>,
    },
    Until(Instant),
}

type FiberYielder = Yielder<Wake, Suspend>;

/// A fiber's way back to its scheduler, kept in its recorder while its
/// calls run.
#[derive(Clone, Copy)]
pub struct FiberHandle(*const FiberYielder);

impl FiberHandle {
    /// Suspends the fiber until `fd` is ready or `timeout` has passed.
    pub fn wait_fd(self, fd: RawFd, writable: bool, timeout: Option<Duration>) -> Wake {
        let deadline = timeout.map(|t| Instant::now() + t);
        // SAFETY: the yielder lives as long as the fiber's body, which is
        // the only place this handle is used from (its lane's callbacks
        // and sleeps, all on the fiber).
        unsafe {
            (*self.0).suspend(Suspend::Io {
                fd,
                writable,
                deadline,
            })
        }
    }

    /// Suspends the fiber until `deadline`.
    pub fn sleep_until(self, deadline: Instant) {
        // SAFETY: as in `wait_fd`.
        unsafe { (*self.0).suspend(Suspend::Until(deadline)) };
    }
}

/// A wait off fibers: `poll(2)` on the calling thread.
pub fn poll_fd(fd: RawFd, writable: bool, timeout: Option<Duration>) -> Wake {
    let deadline = timeout.map(|t| Instant::now() + t);
    let fd = match lend(fd) {
        Ok(fd) => fd,
        Err(errno) => return Wake::Failed(errno as i32),
    };
    let events = if writable {
        PollFlags::POLLOUT
    } else {
        PollFlags::POLLIN
    };
    loop {
        let timeout = deadline.map_or(PollTimeout::NONE, |d| {
            poll_timeout(d.saturating_duration_since(Instant::now()))
        });
        let mut entry = [PollFd::new(fd, events)];
        match nix::poll::poll(&mut entry, timeout) {
            Ok(0) => match deadline {
                Some(d) if Instant::now() < d => continue,
                _ => return Wake::TimedOut,
            },
            Ok(_) => {
                if entry[0]
                    .revents()
                    .is_some_and(|r| r.contains(PollFlags::POLLNVAL))
                {
                    return Wake::Failed(libc::EBADF);
                }
                return Wake::Ready;
            }
            Err(Errno::EINTR) => continue,
            Err(errno) => return Wake::Failed(errno as i32),
        }
    }
}

/// A plugin's descriptor, lent for the length of one wait.
fn lend<'a>(fd: RawFd) -> Result<BorrowedFd<'a>, Errno> {
    if fd < 0 {
        return Err(Errno::EBADF);
    }
    // SAFETY: the plugin lends its descriptor for the wait it asked for,
    // and the borrow ends with the wait (the caller drops it, or, on a
    // fiber, drops it once epoll is armed). `poll` and `epoll_ctl` only
    // name the descriptor: one closed meanwhile fails with EBADF, which
    // goes back to the plugin, and touches no memory of ours.
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// A duration as a `poll`/`epoll_wait` timeout: whole milliseconds, rounded
/// up, so that a wait never ends before its deadline.
fn poll_timeout(d: Duration) -> PollTimeout {
    let ms = d.as_nanos().div_ceil(1_000_000);
    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
}

/// A fiber's body: its lane's whole part of the run. It gets the handle
/// its waits go through.
pub type Body<'a> = Box<dyn FnOnce(FiberHandle) + 'a>;

/// Why a thread's fibers could not be made, in one sentence. Each stack is
/// two memory mappings (the stack and its guard page), and Linux limits a
/// process to `vm.max_map_count` of them (65,530 by default), so about
/// 32,000 fibers fit in one worker process, whatever its threads.
pub fn cannot_make(fibers: u32, lanes_in_worker: u32, error: &std::io::Error) -> String {
    let limit = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    match (error.raw_os_error(), limit) {
        (Some(libc::ENOMEM), Some(limit)) => format!(
            "cannot make {fibers} fibers on a worker thread ({lanes_in_worker} in this worker \
             process): each fiber's stack takes 2 memory mappings and vm.max_map_count allows \
             {limit} per process; use fewer fibers per process (more processes with -p), or \
             raise vm.max_map_count"
        ),
        _ => format!("cannot make {fibers} fibers on a worker thread: {error}"),
    }
}

/// The stacks and the scheduler for one thread's fibers, made before the
/// run starts so that a failure to make them stops the run before its
/// first call.
pub struct Stacks {
    stacks: Vec<DefaultStack>,
    scheduler: Scheduler,
}

impl Stacks {
    pub fn new(fibers: usize) -> std::io::Result<Stacks> {
        Ok(Stacks {
            stacks: (0..fibers)
                .map(|_| DefaultStack::new(STACK_BYTES))
                .collect::<Result<_, _>>()?,
            scheduler: Scheduler::new(fibers)?,
        })
    }

    /// Runs `bodies` (one per stack) as fibers on the calling thread until
    /// every one has returned. On failure (the epoll set broke, or host
    /// code panicked on a fiber) the fibers are not dropped: some may be
    /// suspended inside the plugin, and unwinding their stacks would cross
    /// its C frames and abort. The caller ends the process instead.
    pub fn run(self, bodies: Vec<Body<'_>>) -> Result<(), String> {
        let Stacks {
            stacks,
            mut scheduler,
        } = self;
        debug_assert_eq!(stacks.len(), bodies.len());
        let mut fibers: Vec<Fiber> = stacks
            .into_iter()
            .zip(bodies)
            .map(|(stack, body)| {
                // SAFETY: every fiber is driven to completion below, before
                // this function returns, so what `body` borrows outlives
                // it; on failure the fibers are leaked, never dropped, so
                // their stacks are never unwound or freed while the
                // borrows they hold could end.
                unsafe {
                    Coroutine::with_stack_unchecked(
                        stack,
                        move |yielder: &FiberYielder, _: Wake| body(FiberHandle(yielder)),
                    )
                }
            })
            .collect();
        let driven = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            scheduler.drive(&mut fibers)
        }));
        let failure = match driven {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => format!("the fibers' scheduler failed: {error}"),
            Err(payload) => format!(
                "a fiber failed: {}",
                payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_default()
            ),
        };
        std::mem::forget(fibers);
        Err(failure)
    }
}

#[cfg(test)]
fn run_all(bodies: Vec<Body<'_>>) -> Result<(), String> {
    Stacks::new(bodies.len())
        .map_err(|e| e.to_string())?
        .run(bodies)
}

/// One thread's fibers: which are ready, which wait on what.
struct Scheduler {
    epoll: Epoll,
    /// Wakes the epoll wait for a near deadline, to the microsecond:
    /// `epoll_wait`'s own timeout is in whole milliseconds.
    timer: TimerFd,
    /// The deadline `timer` is set for, if any.
    timer_set: Option<Instant>,
    ready: VecDeque<(usize, Wake)>,
    /// The wait each fiber is in, numbered so that a timer or an event
    /// left over from an earlier wait is recognised and ignored.
    waits: Vec<Option<Waiting>>,
    next_wait: u64,
    /// Which fiber waits on a descriptor, indexed by the descriptor
    /// (small integers: a vector beats hashing them).
    by_fd: Vec<Option<usize>>,
    /// Deadlines of waits. A wait that ends otherwise leaves its entry
    /// behind until it reaches the top or the heap is pruned.
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
}

#[derive(Clone, Copy)]
struct Waiting {
    id: u64,
    fd: Option<RawFd>,
}

/// A deadline nearer than this is timed by the timerfd; a farther one (an
/// I/O timeout of seconds, say) by `epoll_wait`'s millisecond timeout,
/// which needs no system call to set.
const PRECISE: Duration = Duration::from_millis(50);

/// The epoll data of the timerfd: no descriptor has this number.
const TIMER_EVENT: u64 = u64::MAX;

type Fiber = Coroutine<Wake, Suspend, (), DefaultStack>;

impl Scheduler {
    fn new(fibers: usize) -> std::io::Result<Scheduler> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        epoll.add(&timer, EpollEvent::new(EpollFlags::EPOLLIN, TIMER_EVENT))?;
        Ok(Scheduler {
            epoll,
            timer,
            timer_set: None,
            ready: (0..fibers).map(|i| (i, Wake::Ready)).collect(),
            waits: vec![None; fibers],
            next_wait: 0,
            by_fd: Vec::new(),
            timers: BinaryHeap::new(),
        })
    }

    fn drive(&mut self, fibers: &mut [Fiber]) -> std::io::Result<()> {
        let mut live = fibers.len();
        let mut events = vec![EpollEvent::empty(); fibers.len().min(1024)];
        while live > 0 {
            while let Some((index, wake)) = self.ready.pop_front() {
                match fibers[index].resume(wake) {
                    CoroutineResult::Yield(suspend) => self.suspend(index, suspend),
                    CoroutineResult::Return(()) => live -= 1,
                }
            }
            if live > 0 {
                self.wait_for_events(&mut events)?;
            }
        }
        Ok(())
    }

    /// Files fiber `index` under what it waits for.
    fn suspend(&mut self, index: usize, suspend: Suspend) {
        let id = self.next_wait;
        self.next_wait += 1;
        let (fd, deadline) = match suspend {
            Suspend::Io {
                fd,
                writable,
                deadline,
            } => {
                if self.waiter(fd).is_some() {
                    // One wait per descriptor: a second would take the
                    // first one's event (docs/fibers.md).
                    self.ready.push_back((index, Wake::Failed(libc::EBUSY)));
                    return;
                }
                if let Err(errno) = self.arm(fd, writable) {
                    self.ready.push_back((index, Wake::Failed(errno as i32)));
                    return;
                }
                self.set_waiter(fd, Some(index));
                (Some(fd), deadline)
            }
            Suspend::Until(deadline) => (None, Some(deadline)),
        };
        self.waits[index] = Some(Waiting { id, fd });
        if let Some(deadline) = deadline {
            self.prune_timers();
            self.timers.push(Reverse((deadline, index, id)));
        }
    }

    /// Drops the entries of waits that ended by an event, once they
    /// outnumber the fibers: behind one long wait at the top, the short
    /// waits of the other fibers would otherwise pile up for as long as it
    /// lasts (a slow server, up to the plugin's timeout).
    fn prune_timers(&mut self) {
        if self.timers.len() > 2 * self.waits.len() + 64 {
            let waits = &self.waits;
            self.timers
                .retain(|Reverse((_, index, id))| waits[*index].is_some_and(|w| w.id == *id));
        }
    }

    fn set_waiter(&mut self, fd: RawFd, fiber: Option<usize>) {
        let slot = fd as usize;
        if slot >= self.by_fd.len() {
            self.by_fd.resize(slot + 1, None);
        }
        self.by_fd[slot] = fiber;
    }

    /// The fiber waiting on `fd`, no longer waiting on it.
    fn take_waiter(&mut self, fd: RawFd) -> Option<usize> {
        self.by_fd.get_mut(fd as usize).and_then(Option::take)
    }

    fn waiter(&self, fd: RawFd) -> Option<usize> {
        self.by_fd.get(fd as usize).copied().flatten()
    }

    /// Asks for one event when `fd` is ready. One-shot, so that an event
    /// comes only for a wait; re-armed per wait with `EPOLL_CTL_MOD`, or
    /// added when the descriptor is new (or was closed and its number
    /// reused, which removes it from the epoll set).
    fn arm(&self, fd: RawFd, writable: bool) -> Result<(), Errno> {
        let interest = if writable {
            EpollFlags::EPOLLOUT
        } else {
            EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP
        };
        let mut event = EpollEvent::new(interest | EpollFlags::EPOLLONESHOT, fd as u64);
        let fd = lend(fd)?;
        match self.epoll.modify(fd, &mut event) {
            Err(Errno::ENOENT) => self.epoll.add(fd, event),
            armed => armed,
        }
    }

    /// Sleeps until a descriptor is ready or the next timer is due, and
    /// makes the fibers concerned ready.
    fn wait_for_events(&mut self, events: &mut [EpollEvent]) -> std::io::Result<()> {
        let timeout = match self.next_timer() {
            None => PollTimeout::NONE,
            Some(due) => {
                let left = due.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    PollTimeout::ZERO
                } else if left < PRECISE {
                    self.set_timer(due, left)?;
                    PollTimeout::NONE
                } else {
                    poll_timeout(left)
                }
            }
        };
        let n = match self.epoll.wait(events, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(errno) => return Err(errno.into()),
        };
        for event in &events[..n] {
            if event.data() == TIMER_EVENT {
                self.timer_fired();
                continue;
            }
            let fd = event.data() as RawFd;
            if let Some(index) = self.take_waiter(fd) {
                self.waits[index] = None;
                self.ready.push_back((index, Wake::Ready));
            }
        }
        self.expire_timers();
        Ok(())
    }

    /// Sets the timerfd to fire `left` from now, for `due`, unless it is
    /// set for that already.
    fn set_timer(&mut self, due: Instant, left: Duration) -> std::io::Result<()> {
        if self.timer_set == Some(due) {
            return Ok(());
        }
        // A zero expiry would disarm the timer instead.
        let left = TimeSpec::from_duration(left.max(Duration::from_nanos(1)));
        self.timer
            .set(Expiration::OneShot(left), TimerSetTimeFlags::empty())?;
        self.timer_set = Some(due);
        Ok(())
    }

    /// Reads the timerfd's expiry count, so that it stops being readable.
    fn timer_fired(&mut self) {
        // Non-blocking: a failure (EAGAIN) only means there was nothing
        // to read.
        let _ = self.timer.wait();
        self.timer_set = None;
    }

    /// The earliest timer of a wait still in progress.
    fn next_timer(&mut self) -> Option<Instant> {
        while let Some(Reverse((due, index, id))) = self.timers.peek().copied() {
            if self.waits[index].is_some_and(|w| w.id == id) {
                return Some(due);
            }
            self.timers.pop();
        }
        None
    }

    fn expire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((due, index, id))) = self.timers.peek().copied() {
            if due > now {
                break;
            }
            self.timers.pop();
            let Some(waiting) = self.waits[index].filter(|w| w.id == id) else {
                continue;
            };
            self.waits[index] = None;
            let wake = match waiting.fd {
                // The descriptor stays armed; its event, if it comes, finds
                // no waiter and is dropped, and the next wait re-arms it.
                Some(fd) => {
                    if self.waiter(fd) == Some(index) {
                        self.take_waiter(fd);
                    }
                    Wake::TimedOut
                }
                None => Wake::Ready,
            };
            self.ready.push_back((index, wake));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn fibers_interleave_at_their_waits() {
        let log = RefCell::new(Vec::new());
        let (mut a, mut a_peer) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let log_ref = &log;
        let bodies: Vec<Body<'_>> = vec![
            Box::new(move |fiber: FiberHandle| {
                log_ref.borrow_mut().push("a waits");
                assert_eq!(fiber.wait_fd(a.as_raw_fd(), false, None), Wake::Ready);
                let mut buf = [0u8; 8];
                let n = a.read(&mut buf).unwrap();
                log_ref
                    .borrow_mut()
                    .push(if n == 2 { "a read" } else { "a short" });
            }),
            Box::new(move |fiber: FiberHandle| {
                log_ref.borrow_mut().push("b sleeps");
                fiber.sleep_until(Instant::now() + Duration::from_millis(5));
                log_ref.borrow_mut().push("b writes");
                a_peer.write_all(b"hi").unwrap();
            }),
        ];
        run_all(bodies).unwrap();
        assert_eq!(
            *log.borrow(),
            ["a waits", "b sleeps", "b writes", "a read"],
            "each fiber runs while the other waits"
        );
    }

    #[test]
    fn a_wait_times_out_and_a_sleep_ends_on_time() {
        let (a, _peer) = UnixStream::pair().unwrap();
        let started = Instant::now();
        let woke = RefCell::new(None);
        let woke_ref = &woke;
        run_all(vec![Box::new(move |fiber: FiberHandle| {
            *woke_ref.borrow_mut() =
                Some(fiber.wait_fd(a.as_raw_fd(), false, Some(Duration::from_millis(20))));
        })])
        .unwrap();
        assert_eq!(*woke.borrow(), Some(Wake::TimedOut));
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(20), "{took:?}");
    }

    #[test]
    fn timers_of_waits_that_ended_early_do_not_pile_up() {
        let mut scheduler = Scheduler::new(2).unwrap();
        let now = Instant::now();
        // One wait with a far deadline stays at the top of the heap …
        scheduler.suspend(0, Suspend::Until(now + Duration::from_secs(300)));
        // … while the other fiber makes 1,000 waits, each ending before
        // its deadline (the next wait replaces it).
        let mut most = 0;
        for _ in 0..1000 {
            scheduler.suspend(1, Suspend::Until(now + Duration::from_secs(600)));
            most = most.max(scheduler.timers.len());
        }
        assert!(most <= 2 * 2 + 64 + 1, "{most} timers pending at most");
        assert_eq!(scheduler.next_timer(), Some(now + Duration::from_secs(300)));
    }

    /// CPU time of the calling thread.
    fn thread_cpu() -> Duration {
        nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
            .unwrap()
            .into()
    }

    /// Twenty sleeps of 2 ms on a fiber: how many ended early, and the CPU
    /// time they took.
    fn twenty_short_sleeps() -> (u32, Duration) {
        let early = RefCell::new(0);
        let early_ref = &early;
        let cpu_before = thread_cpu();
        run_all(vec![Box::new(move |fiber: FiberHandle| {
            for _ in 0..20 {
                let due = Instant::now() + Duration::from_millis(2);
                fiber.sleep_until(due);
                if Instant::now() < due {
                    *early_ref.borrow_mut() += 1;
                }
            }
        })])
        .unwrap();
        let cpu = thread_cpu() - cpu_before;
        (early.into_inner(), cpu)
    }

    #[test]
    fn short_sleeps_end_on_time_without_spinning() {
        // Polling through the last stretch of each sleep would take about
        // 20 ms of CPU here, every time; sleeping on the timerfd takes well
        // under 1. Contention on a loaded machine (cache misses, locks in
        // the kernel, a virtual CPU's stolen time) only adds to what a try
        // is billed, so the least of a few tries is the figure.
        let mut least = Duration::MAX;
        for _ in 0..3 {
            let (early, cpu) = twenty_short_sleeps();
            assert_eq!(early, 0, "no sleep ends before its deadline");
            least = least.min(cpu);
            if least < Duration::from_millis(8) {
                break;
            }
        }
        assert!(
            least < Duration::from_millis(8),
            "{least:?} of CPU for 40 ms of sleeps, at least"
        );
    }

    #[test]
    fn a_second_wait_on_a_descriptor_is_refused_and_the_first_still_wakes() {
        let (a, mut peer) = UnixStream::pair().unwrap();
        let fd = a.as_raw_fd();
        let woke = RefCell::new(Vec::new());
        let woke_ref = &woke;
        run_all(vec![
            Box::new(move |fiber: FiberHandle| {
                let wake = fiber.wait_fd(fd, false, None);
                woke_ref.borrow_mut().push(("first", wake));
                drop(a);
            }),
            Box::new(move |fiber: FiberHandle| {
                let wake = fiber.wait_fd(fd, false, Some(Duration::from_millis(5)));
                woke_ref.borrow_mut().push(("second", wake));
                fiber.sleep_until(Instant::now() + Duration::from_millis(10));
                peer.write_all(b"x").unwrap();
            }),
        ])
        .unwrap();
        assert_eq!(
            *woke.borrow(),
            [
                ("second", Wake::Failed(libc::EBUSY)),
                ("first", Wake::Ready)
            ]
        );
    }

    #[test]
    fn waiting_on_a_closed_descriptor_fails_instead_of_hanging() {
        let woke = RefCell::new(None);
        let woke_ref = &woke;
        run_all(vec![Box::new(move |fiber: FiberHandle| {
            *woke_ref.borrow_mut() = Some(fiber.wait_fd(987_654, false, None));
        })])
        .unwrap();
        assert_eq!(*woke.borrow(), Some(Wake::Failed(libc::EBADF)));
        assert_eq!(poll_fd(987_654, false, None), Wake::Failed(libc::EBADF));
    }
}
